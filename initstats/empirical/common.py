"""Shared pieces of the empirical engine: initialisations, devices, dtypes, random streams."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import platform

import numpy as np
import torch

from ..errors import DeviceError, OptionError
from ..measurement import INITS

__all__ = ["INITS", "DTYPES", "init_gain", "resolve_device", "resolve_dtype", "chunk_generator",
           "keep_freed_memory", "freed_memory_kept", "strict_numerics"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def init_gain(init: str) -> float:
    """Variance gain of an initialisation: weights have variance ``gain / fan_in``.

    Examples
    --------
    >>> init_gain("he"), init_gain("lecun")        # weights of variance 2/fan_in and 1/fan_in
    (2.0, 1.0)
    """
    if init not in INITS:
        raise OptionError(f"init={init!r} is unknown; expected one of {', '.join(INITS)}")
    return 2.0 if init == "he" else 1.0


def resolve_device(device: str) -> torch.device:
    """``'auto'`` (CUDA when present, else CPU), ``'cpu'`` or ``'cuda[:i]'``, checked.

    Examples
    --------
    >>> resolve_device("cpu"), resolve_device("auto").type in ("cpu", "cuda")
    (device(type='cpu'), True)
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r} was requested but no CUDA GPU is available; use --device cpu or auto")
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise DeviceError(f"device {device!r} is not a valid CUDA device name; use cuda or cuda:0") from None
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r} does not exist; this machine has {torch.cuda.device_count()} GPU(s)")
        return dev
    raise DeviceError(f"device {device!r} is unknown; expected auto, cpu or cuda")


def resolve_dtype(dtype: str) -> torch.dtype:
    """The torch dtype of a dtype name (``'float32'`` or ``'float64'``), checked.

    Examples
    --------
    >>> resolve_dtype("float64")
    torch.float64
    >>> resolve_dtype("half")
    Traceback (most recent call last):
        ...
    initstats.errors.OptionError: dtype 'half' is unknown; expected one of float32, float64
    """
    if dtype not in DTYPES:
        raise OptionError(f"dtype {dtype!r} is unknown; expected one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def chunk_generator(seed: int, stream: tuple[int, ...], device: torch.device) -> torch.Generator:
    """An independent torch generator for one chunk of networks, derived from ``seed`` and ``stream``.

    Streams come from :class:`numpy.random.SeedSequence`, so chunks are statistically independent
    and the numbers depend only on the seed and the chunk's position, not on timing.

    Examples
    --------
    >>> cpu = torch.device("cpu")
    >>> a, b = (torch.randn(3, generator=chunk_generator(0, (7,), cpu)) for _ in range(2))
    >>> torch.equal(a, b)                          # the same seed and chunk: the same numbers
    True
    >>> torch.equal(a, torch.randn(3, generator=chunk_generator(0, (8,), cpu)))     # the next chunk: others
    False
    """
    ss = np.random.SeedSequence([int(seed), *map(int, stream)])
    g = torch.Generator(device=device)
    g.manual_seed(int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)))
    return g


@contextlib.contextmanager
def strict_numerics(device: torch.device):
    """On CUDA: float32 arithmetic without TF32, and deterministic algorithms; nothing on a CPU.

    By default torch lets cuDNN convolutions on recent GPUs compute in TF32 (a 10-bit mantissa), so
    that ``dtype=float32`` would not mean float32, and lets cuDNN and atomic-add kernels (such as
    ``index_add``, which the DAG ensemble and its backward pass use) sum in a varying order, so
    that a rerun with the same seed could differ in the last bits.  Inside this context TF32 is off
    for convolutions and matrix products, cuDNN is deterministic and does not benchmark, and
    ``torch.use_deterministic_algorithms(True, warn_only=True)`` holds (an operation without a
    deterministic implementation warns instead of failing); ``CUBLAS_WORKSPACE_CONFIG`` is set to
    ``:4096:8``, cuBLAS's reproducible workspace, unless already set.  Every setting, the
    environment variable included, is restored on exit.  The settings are process-wide while the context is open.

    Examples
    --------
    >>> with strict_numerics(torch.device("cpu")):   # a no-op on the CPU
    ...     torch.are_deterministic_algorithms_enabled()
    False
    """
    if device.type != "cuda":
        yield
        return
    saved_env = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.allow_tf32, matmul.allow_tf32, cudnn.deterministic, cudnn.benchmark,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        cudnn.allow_tf32 = matmul.allow_tf32 = False
        cudnn.deterministic, cudnn.benchmark = True, False
        torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved[:4]
        torch.use_deterministic_algorithms(saved[4], warn_only=saved[5])
        if saved_env is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)
#: glibc's default mmap and trim thresholds (mallopt(3)): 128 KiB each
_GLIBC_DEFAULT_THRESHOLD = 128 * 1024
_KEPT = (32 << 20, 256 << 20)  # mmap, trim thresholds while freed memory is kept
_kept_for_process = False


def _mallopt(param: int, value: int) -> bool:
    """glibc's ``mallopt``; False where it is unavailable."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(param, value))
    except (OSError, AttributeError):
        return False


def _set_thresholds(mmap: int, trim: int) -> bool:
    if os.environ.get("INITSTATS_NO_MALLOPT") == "1" or platform.libc_ver()[0] != "glibc":
        return False
    return _mallopt(_M_MMAP_THRESHOLD, mmap) and _mallopt(_M_TRIM_THRESHOLD, trim)


@functools.cache
def keep_freed_memory() -> bool:
    """Let glibc keep freed CPU memory for reuse, for the rest of the process (benchmarks use this).

    Every chunk of networks allocates its activations afresh.  glibc serves allocations above its
    mmap threshold (128 KiB at first, adjusted up to 32 MiB) with fresh mappings and trims the
    heap when freed memory exceeds its trim threshold, so each chunk's activations page-fault
    again.  Measured on a 2-core CPU with ``measure()`` on the 128-px ``cnn``, that was ~1,600
    minor page faults per network, and raising the thresholds (mmap 32 MiB, trim 256 MiB) ran
    35 % more networks per second.  :func:`measure() <initstats.empirical.measure.measure>` does
    this only while it runs (:func:`freed_memory_kept`); this function does it for good, and the
    process then keeps up to 256 MiB of freed memory.  It does nothing outside glibc (other
    allocators, macOS, Windows) or when the environment variable ``INITSTATS_NO_MALLOPT=1`` is
    set.  Returns whether the thresholds were set (cached: later calls return the first answer
    and change nothing).
    """
    global _kept_for_process
    _kept_for_process = _set_thresholds(*_KEPT)
    return _kept_for_process


@contextlib.contextmanager
def freed_memory_kept(device: torch.device):
    """On a CPU, glibc keeps freed memory while the context is open (see :func:`keep_freed_memory`).

    On exit glibc's default thresholds (128 KiB) are set again; glibc's dynamic adjustment of the
    mmap threshold stays off, as after any ``mallopt``.  Nothing happens on CUDA, outside glibc,
    with ``INITSTATS_NO_MALLOPT=1``, or after :func:`keep_freed_memory` made the setting permanent.
    The thresholds are process-wide while the context is open.

    Examples
    --------
    >>> with freed_memory_kept(torch.device("cuda")):   # a no-op off the CPU
    ...     pass
    """
    changed = device.type == "cpu" and not _kept_for_process and _set_thresholds(*_KEPT)
    try:
        yield
    finally:
        if changed:
            _set_thresholds(_GLIBC_DEFAULT_THRESHOLD, _GLIBC_DEFAULT_THRESHOLD)
