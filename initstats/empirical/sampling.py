"""Chunks of freshly initialised networks with their inputs: the loop every Monte Carlo shares.

:func:`plan` derives from a network and its :class:`~initstats.measurement.MeasureOptions` how a
run proceeds (networks per batched pass, inputs per network, measured logits, the ensemble
constructor); :func:`chunks` then yields chunk after chunk: the ensemble with fresh weights, its
inputs and labels.  :func:`~initstats.empirical.measure.measure` and
:func:`~initstats.empirical.attack.fgsm` consume the same chunks.

Randomness comes only from the seed: chunk ``j`` draws its weights, inputs and labels, in that
order, from a generator derived from ``(seed, j)``
(:func:`~initstats.empirical.common.chunk_generator`), so the numbers depend on the seed, the
options and the device, never on timing, and a run of ``n`` networks is a prefix of a run of more.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import OptionError, SpecFileError
from ..measurement import INPUT_DISTRIBUTIONS, MeasureOptions
from ..spec import Arch, node_id
from .common import chunk_generator, resolve_device, resolve_dtype
from .ensemble import ArchEnsemble

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["Plan", "plan", "Chunk", "chunks", "InputSampler", "default_chunk"]


def _load_inputs(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise SpecFileError(f"cannot read inputs file {str(path)!r}: {err}") from None
    d = math.prod(input_shape)
    if data.ndim < 2 or math.prod(data.shape[1:]) != d or not np.issubdtype(data.dtype, np.number):
        raise OptionError(f"inputs file {str(path)!r} has shape {data.shape}; expected (M, {d}) or "
                          f"(M, {', '.join(map(str, input_shape))}) numbers")
    return data.reshape(len(data), d)


class InputSampler:
    """Draws a chunk's inputs, shape ``(batch, nets, *input_shape)``, from its generator.

    ``inputs`` is ``'normal'`` (``N(0, 1)`` per coordinate), ``'uniform'`` (``U[0, 1)``) or the path
    of an ``.npy`` file whose rows are drawn at random.

    Examples
    --------
    >>> sampler = InputSampler("uniform", (3, 4, 4), torch.device("cpu"), torch.float32)
    >>> x = sampler(2, 5, torch.Generator().manual_seed(0))        # 2 inputs for each of 5 networks
    >>> x.shape, bool((x >= 0).all() and (x < 1).all())
    (torch.Size([2, 5, 3, 4, 4]), True)
    """

    def __init__(self, inputs: str | Path, input_shape: tuple[int, ...], device: torch.device,
                 dtype: torch.dtype) -> None:
        self.shape = input_shape
        self.device, self.dtype = device, dtype
        self.table: torch.Tensor | None = None
        self.kind = str(inputs)
        if self.kind not in INPUT_DISTRIBUTIONS:
            self.table = torch.as_tensor(_load_inputs(Path(inputs), input_shape), dtype=dtype, device=device)

    def __call__(self, batch: int, nets: int, g: torch.Generator) -> torch.Tensor:
        shape = (batch, nets, *self.shape)
        if self.table is not None:
            rows = torch.randint(0, len(self.table), (batch * nets,), generator=g, device=self.device)
            return self.table[rows].reshape(shape).clone()
        x = torch.empty(shape, device=self.device, dtype=self.dtype)
        return x.normal_(generator=g) if self.kind == "normal" else x.uniform_(generator=g)


def default_chunk(largest_per_net: int, weights_per_net: int, batch: int, device: torch.device,
                  itemsize: int = 4, cpu_act_budget: int = 2 << 20) -> int:
    """Networks per batched pass, from the largest activation tensor and the weights of one network.

    On a CPU the largest activation of a chunk is kept near 2 MiB: measured on a 2-core machine,
    a 128-px CNN ran 3x faster with 1-4 networks per pass than with 64 (cache reuse; page faults
    on fresh large tensors, which :func:`~initstats.empirical.common.freed_memory_kept` also
    avoids), and small networks still get up to 256 per pass to amortise Python overheads.
    Weights are kept under 256 MiB per chunk.  On a GPU the budgets are 256 MiB and 4 GiB.  A
    power of two, between 1 and 256.  DAG ensembles pass a larger ``cpu_act_budget`` (their
    largest tensor is one gather over a block of edges, and their many small ops gain more from
    wide chunks than they lose in cache).

    Examples
    --------
    >>> default_chunk(10_000, 100_000, 1, torch.device("cpu"))   # 2 MiB / 40 kB: 52, rounded down
    32
    """
    act_budget, weight_budget = ((256 << 20, 4 << 30) if device.type == "cuda" else (cpu_act_budget, 256 << 20))
    n = min(act_budget // max(1, largest_per_net * batch * itemsize),
            weight_budget // max(1, weights_per_net * itemsize), 256)
    return 1 << max(0, int(n).bit_length() - 1) if n >= 1 else 1


@dataclass(frozen=True, kw_only=True, eq=False)
class Plan:
    """How a Monte Carlo run proceeds on one network (see :func:`plan`).

    Attributes
    ----------
    name, px, d, input_shape, input_names
        The network's name, image side (None for a DAG), input dimension and shape, and a DAG's
        input node names.
    outputs : tuple of str
        Every output of the network; ``k_total`` of them.
    exchangeable : bool
        An architecture's logits are exchangeable (measure the first ``n_logits`` and average);
        a DAG's are not (each is measured).
    n_logits, batch, chunk : int
        Logits differentiated, inputs per network, networks per batched pass.
    implicit_dense : bool
        Whether dense layers are sampled implicitly.
    device, dtype
    make : callable
        ``make(n)`` builds an ensemble of ``n`` networks.

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> p = plan(make_arch("fc", 4, width=8), MeasureOptions(nets=100, device="cpu"))
    >>> p.name, p.d, p.input_shape, p.k_total, p.outputs[:2], p.exchangeable
    ('fc', 48, (3, 4, 4), 10, ('logits[0]', 'logits[1]'), True)
    """

    name: str
    px: int | None
    d: int
    input_shape: tuple[int, ...]
    input_names: tuple[str, ...]
    outputs: tuple[str, ...]
    k_total: int
    exchangeable: bool
    n_logits: int
    batch: int
    chunk: int
    implicit_dense: bool
    device: torch.device
    dtype: torch.dtype
    make: Callable[[int], object] = field(repr=False)


def plan(network: Arch | nx.DiGraph, options: MeasureOptions | None = None) -> Plan:
    """The chunk size, inputs per network, logits and ensemble constructor of a run.

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> p = plan(make_arch("fc", 4, width=32, depth=2), MeasureOptions(nets=100, device="cpu"))
    >>> p.chunk, p.batch, p.n_logits, p.implicit_dense
    (100, 1, 1, True)
    """
    opt = options or MeasureOptions()
    device = resolve_device(opt.device)
    dtype = resolve_dtype(opt.dtype)
    if isinstance(network, Arch):
        arch = network
        has_bn = "batchnorm" in arch.node_kinds
        k_total = arch.num_classes
        outputs_all = tuple(node_id(arch.stages[-1].name, (k,)) for k in range(k_total))
        batch = opt.inputs_per_net or (16 if has_bn else 1)
        largest = max(s.size for s in arch.stages)
        implicit = opt.implicit_dense and all(s.fan_in >= batch for s in arch.stages if s.is_dense)
        weights = ArchEnsemble(arch, 1, init=opt.init, implicit_dense=implicit).num_parameters
        cpu_act_budget = 2 << 20

        def make(n: int):
            return ArchEnsemble(arch, n, init=opt.init, device=device, dtype=dtype, implicit_dense=implicit)

        name, px, d, input_shape, input_names = arch.name, arch.px, arch.d, arch.input_shape, ()
        exchangeable = True
    elif _is_digraph(network):
        from .dagnet import DagEnsemble

        probe = DagEnsemble(network, 1, init=opt.init, device=device, dtype=dtype)
        has_bn = any(k == "batchnorm" for _, k in network.nodes(data="kind"))
        k_total = probe.num_outputs
        outputs_all = tuple(str(o) for o in probe.outputs)
        batch = opt.inputs_per_net or (16 if has_bn else 1)
        largest = max((len(b.src_idx) for blocks in probe.blocks for b in blocks), default=1)
        weights = probe.n_random
        implicit = False
        cpu_act_budget = 32 << 20  # measured: a 356k-edge DAG ran 5x faster with 64 networks per pass than with 2

        def make(n: int):
            return DagEnsemble(network, n, init=opt.init, device=device, dtype=dtype)

        name, px, d = str(network.graph.get("name") or "graph"), None, len(probe.inputs)
        input_shape, input_names = probe.input_shape, tuple(str(x) for x in probe.inputs)
        exchangeable = False
    else:
        raise OptionError(f"cannot measure a {type(network).__name__}; pass an Arch or a networkx DiGraph")
    n_logits = opt.logits if opt.logits is not None else (1 if exchangeable else k_total)
    if n_logits > k_total:
        raise OptionError(f"logits={n_logits} exceeds the {k_total} outputs of the network")
    if has_bn and batch < 2:
        raise OptionError(f"inputs_per_net={batch}: BatchNorm needs at least 2 inputs per network")
    itemsize = torch.empty((), dtype=dtype).element_size()
    chunk = opt.chunk or default_chunk(largest, weights, batch, device, itemsize, cpu_act_budget)
    if opt.nets is not None:
        chunk = min(chunk, opt.nets)
    return Plan(name=name, px=px, d=d, input_shape=tuple(input_shape), input_names=input_names,
                outputs=outputs_all, k_total=k_total, exchangeable=exchangeable, n_logits=n_logits, batch=batch,
                chunk=chunk, implicit_dense=implicit, device=device, dtype=dtype, make=make)


def _is_digraph(network: object) -> bool:
    """A networkx DiGraph, without importing networkx (if it was never imported, nothing is one)."""
    nx = sys.modules.get("networkx")
    return nx is not None and isinstance(network, nx.DiGraph)


@dataclass(frozen=True, kw_only=True, eq=False)
class Chunk:
    """One chunk of a run: ``nets`` networks with fresh weights, their inputs and labels.

    ``x`` has shape ``(batch, nets, *input_shape)`` and requires grad; ``labels`` (uniform over the
    ``k_total`` classes) has shape ``(batch, nets)``; ``done`` networks came before this chunk.

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> opt = MeasureOptions(nets=6, chunk=4, device="cpu")
    >>> first = next(chunks(plan(make_arch("fc", 4, width=8), opt), opt, 6))
    >>> first.index, first.nets, first.done, tuple(first.x.shape), tuple(first.labels.shape), first.x.requires_grad
    (0, 4, 0, (1, 4, 3, 4, 4), (1, 4), True)
    """

    index: int
    nets: int
    done: int
    ensemble: object
    x: torch.Tensor
    labels: torch.Tensor
    generator: torch.Generator = field(repr=False)


def chunks(p: Plan, opt: MeasureOptions, target: int, *,
           make: Callable[[int], object] | None = None) -> Iterator[Chunk]:
    """Chunks of at most ``p.chunk`` networks until ``target`` networks are drawn (stop early by breaking).

    Chunk ``j`` (counted from ``opt.first_chunk``) resamples the ensemble's weights, then draws
    inputs and labels, from the generator of ``(opt.seed, *opt.stream, j)``.  One ensemble per chunk size is built (by ``make``, default ``p.make``)
    and reused.

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> opt = MeasureOptions(nets=10, chunk=4, device="cpu")
    >>> p = plan(make_arch("fc", 4, width=8), opt)
    >>> [(c.index, c.nets, c.done) for c in chunks(p, opt, 10)]
    [(0, 4, 0), (1, 4, 4), (2, 2, 8)]
    >>> a, b = (next(chunks(p, opt, 10)).x for _ in range(2))      # the seed alone fixes the numbers
    >>> torch.equal(a, b)
    True
    """
    make = make or p.make
    sampler = InputSampler(opt.inputs, p.input_shape, p.device, p.dtype)
    ensembles: dict[int, object] = {}
    done, j = 0, opt.first_chunk
    while done < target:
        n = min(p.chunk, target - done)
        ens = ensembles.get(n) or ensembles.setdefault(n, make(n))
        g = chunk_generator(opt.seed, (*opt.stream, j), p.device)
        ens.resample(g)  # type: ignore[attr-defined]
        x = sampler(p.batch, n, g).requires_grad_(True)
        labels = torch.randint(0, p.k_total, (p.batch, n), generator=g, device=p.device)
        yield Chunk(index=j, nets=n, done=done, ensemble=ens, x=x, labels=labels, generator=g)
        done += n
        j += 1
