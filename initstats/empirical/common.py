"""Shared pieces of the empirical engine: initialisations, devices, dtypes, random streams."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DeviceError, OptionError

__all__ = ["INITS", "DTYPES", "init_gain", "resolve_device", "resolve_dtype", "chunk_generator"]

INITS = ("he", "lecun")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def init_gain(init: str) -> float:
    """Variance gain of an initialisation: weights have variance ``gain / fan_in``."""
    if init not in INITS:
        raise OptionError(f"init={init!r} is unknown; expected one of {', '.join(INITS)}")
    return 2.0 if init == "he" else 1.0


def resolve_device(device: str) -> torch.device:
    """``'auto'`` (CUDA when present, else CPU), ``'cpu'`` or ``'cuda[:i]'``, checked."""
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
    if dtype not in DTYPES:
        raise OptionError(f"dtype {dtype!r} is unknown; expected one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def chunk_generator(seed: int, stream: tuple[int, ...], device: torch.device) -> torch.Generator:
    """An independent torch generator for one chunk of networks, derived from ``seed`` and ``stream``.

    Streams come from :class:`numpy.random.SeedSequence`, so chunks are statistically independent
    and the numbers depend only on the seed and the chunk's position, not on timing.
    """
    ss = np.random.SeedSequence([int(seed), *map(int, stream)])
    g = torch.Generator(device=device)
    g.manual_seed(int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)))
    return g
