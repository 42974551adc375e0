"""Monte Carlo measurement of input-gradient statistics over independent networks.

For every network of a batched ensemble and every one of its inputs ``x`` (``N(0, I)`` by
default), the input gradients of the measured logits ``grad_x f_k`` and of the cross-entropy loss
``grad_x L`` (label uniform over the ``K`` classes) are reduced to the statistics

=====================  =====================================================
``grad_logit_l1``      ``||grad f_k||_1``
``grad_logit_l2_sq``   ``||grad f_k||_2^2``
``grad_logit_l2``      ``||grad f_k||_2``
``grad_logit_linf``    ``||grad f_k||_inf``
``grad_loss_l1``       ``||grad L||_1``
``grad_loss_l2``       ``||grad L||_2``
``grad_loss_linf``     ``||grad L||_inf``
``damage_l1``          ``eps_inf * ||grad L||_1``: the first-order loss increase of an
                       l_inf attack of size ``eps_inf`` (eq. 3 with p = inf)
=====================  =====================================================

and the per-coordinate map ``E (d f_k / d x_i)^2``.  Inputs to one network are strongly
correlated, so every statistic is first averaged within a network (over its inputs and, for
exchangeable logits, over the measured logits); the reported mean and standard error are over
*independent networks*.  With ``nets=None`` networks are drawn chunk by chunk until the relative
standard error of ``E||grad f||^2`` reaches ``rel_se``, also as measured by the calibrated
interval (:class:`MeasureOptions`), or until ``max_nets`` or ``max_time``.

Randomness comes only from ``seed``: chunk ``j`` uses a generator derived from ``(seed, j)``, so
the same seed, options and device give the same numbers.  On CUDA the run uses deterministic
algorithms and no TF32 (:func:`~initstats.empirical.common.strict_numerics`), so that float32
means float32 there too and reruns agree bit for bit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..errors import OptionError, SpecFileError
from ..spec import Arch, node_id
from .common import chunk_generator, keep_freed_memory, resolve_device, resolve_dtype, strict_numerics
from .dagnet import DagEnsemble
from .ensemble import ArchEnsemble

__all__ = ["STATISTICS", "LOGIT_STATISTICS", "LOSS_STATISTICS", "DEFAULT_REL_SE", "MeasureOptions",
           "Measurement", "Plan", "plan", "measure", "detectable_rel_se"]

LOGIT_STATISTICS = ("grad_logit_l1", "grad_logit_l2_sq", "grad_logit_l2", "grad_logit_linf")
LOSS_STATISTICS = ("grad_loss_l1", "grad_loss_l2", "grad_loss_linf", "damage_l1")
STATISTICS = LOGIT_STATISTICS + LOSS_STATISTICS
INPUT_DISTRIBUTIONS = ("normal", "uniform")


def detectable_rel_se(error: float = 0.05, confidence: float = 0.99, power: float = 0.8) -> float:
    """Relative standard error at which a relative ``error`` is detected with ``power``.

    A two-sided test at ``confidence`` rejects a prediction off by ``error`` with probability
    ``power`` when ``(z_{1-alpha/2} + z_power) * se <= error``.
    """
    from scipy.stats import norm

    return error / (norm.ppf(0.5 + confidence / 2) + norm.ppf(power))


#: default target relative standard error: a 5 % error is detected at 99 % confidence with 90 % power.
#: Verdicts ask for 80 % power (claims.exact_claim), so the sampling target leaves a margin for the
#: standard error relative to the prediction being slightly larger than relative to the measured mean.
DEFAULT_REL_SE = round(detectable_rel_se(power=0.9), 4)


@dataclass(frozen=True)
class MeasureOptions:
    """How to sample networks and inputs.

    Parameters
    ----------
    nets : int, optional
        A fixed number of networks; by default sample until ``rel_se`` is reached.
    rel_se : float
        Target relative standard error of ``E||grad f||_2^2`` (default: a 5 % error detected).
        Reached when both ``se / mean`` and the *effective* relative SE (the wider half of the
        calibrated 99 % interval over 2.576, :attr:`Measurement.rel_se_reached`) are at most
        ``rel_se``: a heavy right tail keeps sampling going.
    min_nets, max_nets : int
        Bounds on the number of networks in adaptive sampling.
    max_time : float, optional
        A time budget in seconds: adaptive sampling also stops after the chunk that exceeds it
        (at least ``min_nets`` networks are drawn).  The measurement says why it stopped
        (``Measurement.stopped``) and whether ``rel_se`` was reached.
    chunk : int, optional
        Networks per batched pass (default: chosen from the network size; fixed for a given
        architecture so that results do not depend on timing).
    inputs_per_net : int, optional
        Inputs drawn per network (default 1, or 16 when the network has BatchNorm, whose batch
        statistics need a batch).  Inputs to one network are strongly correlated, so extra inputs
        add little information.
    logits : int, optional
        How many logits to differentiate (the first ones).  An architecture's logits are
        exchangeable, so the default is 1; a DAG's outputs are measured all.
    inputs : {'normal', 'uniform'} or path
        ``N(0, 1)`` or ``U[0, 1]`` per coordinate, or an ``.npy`` file of inputs of shape
        ``(M, *input_shape)`` or ``(M, d)`` from which rows are drawn at random.
    eps : float
        ``eps_inf`` of the damage statistic.
    init : {'he', 'lecun'}
    implicit_dense : bool
        Sample dense layers of architectures implicitly, exactly in distribution but without
        drawing the weight matrix (:mod:`initstats.empirical.implicit`); much faster for fully
        connected networks.  Used when every dense layer has at least as many inputs as there are
        inputs per network (16 assumed when that is not given).
    seed : int
    device : {'auto', 'cpu', 'cuda', 'cuda:i'}
    dtype : {'float32', 'float64'}
    """

    nets: int | None = None
    rel_se: float = DEFAULT_REL_SE
    min_nets: int = 64
    max_nets: int = 20000
    max_time: float | None = None
    chunk: int | None = None
    inputs_per_net: int | None = None
    logits: int | None = None
    inputs: str | Path = "normal"
    eps: float = 1.0
    init: str = "he"
    implicit_dense: bool = True
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        def positive(name: str, value, allow_none: bool = True) -> None:
            if value is None and allow_none:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OptionError(f"{name}={value!r} is invalid; expected a positive integer")

        positive("nets", self.nets)
        positive("min_nets", self.min_nets, False)
        positive("max_nets", self.max_nets, False)
        positive("chunk", self.chunk)
        positive("inputs_per_net", self.inputs_per_net)
        positive("logits", self.logits)
        if not (isinstance(self.rel_se, (int, float)) and 0 < self.rel_se < 1):
            raise OptionError(f"rel_se={self.rel_se!r} is invalid; expected a number in (0, 1), e.g. 0.0146")
        if not (isinstance(self.eps, (int, float)) and self.eps > 0 and math.isfinite(self.eps)):
            raise OptionError(f"eps={self.eps!r} is invalid; expected a positive number")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise OptionError(f"seed={self.seed!r} is invalid; expected a non-negative integer")
        if self.max_time is not None and not (isinstance(self.max_time, (int, float)) and self.max_time > 0
                                               and math.isfinite(self.max_time)):
            raise OptionError(f"max_time={self.max_time!r} is invalid; expected a positive number of seconds")
        if self.max_time is not None and self.nets is not None:
            raise OptionError(f"max_time={self.max_time!r} with nets={self.nets}: a time budget applies only to "
                              "adaptive sampling; drop nets to sample until rel_se or max_time, or drop max_time")
        if self.min_nets > self.max_nets:
            raise OptionError(f"min_nets={self.min_nets} exceeds max_nets={self.max_nets}")
        if isinstance(self.inputs, str) and self.inputs not in INPUT_DISTRIBUTIONS and not str(self.inputs).endswith(".npy"):
            raise OptionError(f"inputs={self.inputs!r} is unknown; expected normal, uniform or a path to an .npy file")


@dataclass(frozen=True, eq=False)
class Measurement:
    """Per-network statistics of one network family at one input size.

    ``per_net[statistic]`` has shape ``(n_nets, n_outputs)`` for logit statistics and
    ``(n_nets, 1)`` for loss statistics; ``coord_mean``/``coord_se`` (shape ``(n_outputs, d)``)
    are the per-coordinate ``E (d f_k / d x_i)^2`` with standard errors over networks.
    ``stopped`` says why sampling stopped: ``'nets'`` (a fixed number), ``'rel_se'`` (the target
    was reached), ``'max_nets'`` or ``'max_time'`` (stopped short of the target); ``rel_se`` is the
    target of adaptive sampling (None with a fixed number).
    """

    arch: str
    d: int
    px: int | None
    outputs: tuple[str, ...]
    per_net: dict[str, np.ndarray]
    coord_mean: np.ndarray
    coord_se: np.ndarray
    inputs_per_net: int
    seconds: float
    device: str
    icc: float | None
    input_names: tuple[str, ...] = field(default=(), repr=False)
    group_sums: np.ndarray | None = field(default=None, repr=False)
    stopped: str = "nets"
    rel_se: float | None = None

    @property
    def rel_se_reached(self) -> float:
        """The largest *effective* relative standard error of ``E||grad f||^2`` over the outputs.

        The wider half of the calibrated 99 % interval (:func:`initstats.inference.mean_interval`)
        divided by 2.576 and by the mean: the plain ``se / mean`` where the tail is light, larger
        where a heavy tail widens the interval.  Adaptive sampling stops when it reaches ``rel_se``.
        """
        return _effective_rel_se(self.per_net["grad_logit_l2_sq"])

    @property
    def short(self) -> bool:
        """True when adaptive sampling stopped before reaching its ``rel_se`` target."""
        return self.stopped in ("max_nets", "max_time")

    def skewness(self, statistic: str, output: int = 0) -> float:
        """Sample skewness of the per-network values of a statistic (used by the verdicts)."""
        return _skewness(self.per_net[statistic][:, output if statistic in LOGIT_STATISTICS else 0])

    def group_skewness(self, output: int = 0) -> np.ndarray:
        """Sample skewness of the per-network group sums."""
        if self.group_sums is None:
            raise ValueError("this measurement has no coordinate groups; pass coord_groups to measure()")
        return np.array([_skewness(c) for c in self.group_sums[:, output, :].T])

    def group_mean_se(self, output: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard error over networks of ``sum_{i in group} (d f / d x_i)^2`` per group."""
        if self.group_sums is None:
            raise ValueError("this measurement has no coordinate groups; pass coord_groups to measure()")
        col = self.group_sums[:, output, :]
        if len(col) < 2:  # one network: no standard error (as in mean_se)
            return col.mean(0), np.full(col.shape[1], math.inf)
        return col.mean(0), col.std(0, ddof=1) / math.sqrt(len(col))

    @property
    def n_nets(self) -> int:
        return int(next(iter(self.per_net.values())).shape[0])

    def mean_se(self, statistic: str, output: int = 0) -> tuple[float, float]:
        """Mean and standard error over networks of one statistic."""
        col = self.per_net[statistic][:, output if statistic in LOGIT_STATISTICS else 0]
        n = len(col)
        return float(col.mean()), float(col.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf

    def to_frame(self) -> pd.DataFrame:
        """Tidy rows ``arch, d, px, statistic, output, mean, stderr, n_nets``."""
        rows = []
        for stat in STATISTICS:
            outs = range(len(self.outputs)) if stat in LOGIT_STATISTICS else [0]
            for k in outs:
                mean, se = self.mean_se(stat, k)
                rows.append({"arch": self.arch, "d": self.d, "px": self.px, "statistic": stat,
                             "output": self.outputs[k] if stat in LOGIT_STATISTICS else None,
                             "mean": mean, "stderr": se, "n_nets": self.n_nets})
        return pd.DataFrame(rows)


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


class _Sampler:
    """Draws inputs and labels for one chunk from its generator."""

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


def _default_chunk(largest_per_net: int, weights_per_net: int, batch: int, device: torch.device,
                   itemsize: int = 4, cpu_act_budget: int = 2 << 20) -> int:
    """Networks per batched pass, from the largest activation tensor and the weights of one network.

    On a CPU the largest activation of a chunk is kept near 2 MiB: measured on a 2-core machine,
    a 128-px CNN ran 3x faster with 1-4 networks per pass than with 64 (cache reuse; page faults
    on fresh large tensors, which :func:`~initstats.empirical.common.keep_freed_memory` now also
    avoids), and small networks still get up to 256 per pass to amortise Python overheads.
    Weights are kept under 256 MiB per chunk.  On a GPU the budgets are 256 MiB and 4 GiB.  A
    power of two, between 1 and 256.  DAG ensembles pass a larger ``cpu_act_budget`` (their
    largest tensor is one gather over a block of edges, and their many small ops gain more from
    wide chunks than they lose in cache).
    """
    act_budget, weight_budget = ((256 << 20, 4 << 30) if device.type == "cuda" else (cpu_act_budget, 256 << 20))
    n = min(act_budget // max(1, largest_per_net * batch * itemsize),
            weight_budget // max(1, weights_per_net * itemsize), 256)
    return 1 << max(0, int(n).bit_length() - 1) if n >= 1 else 1


@dataclass(frozen=True, eq=False)
class Plan:
    """How :func:`measure` will run a network: the sizes it derives from the options (see :func:`plan`)."""

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
    """The chunk size, inputs per network, logits and ensemble constructor :func:`measure` uses."""
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
        implicit = opt.implicit_dense and all(s.fan_in >= batch for s in arch.stages if s.op == "dense")
        weights = ArchEnsemble(arch, 1, init=opt.init, implicit_dense=implicit).num_parameters
        cpu_act_budget = 2 << 20

        def make(n: int):
            return ArchEnsemble(arch, n, init=opt.init, device=device, dtype=dtype, implicit_dense=implicit)

        name, px, d, input_shape, input_names = arch.name, arch.px, arch.d, arch.input_shape, ()
        exchangeable = True
    elif isinstance(network, nx.DiGraph):
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
    chunk = opt.chunk or _default_chunk(largest, weights, batch, device, itemsize, cpu_act_budget)
    if opt.nets is not None:
        chunk = min(chunk, opt.nets)
    return Plan(name, px, d, tuple(input_shape), input_names, outputs_all, k_total, exchangeable, n_logits, batch,
                chunk, implicit, device, dtype, make)


def measure(network: Arch | nx.DiGraph, options: MeasureOptions | None = None,
            progress: Callable[[int, int], None] | None = None,
            coord_groups: np.ndarray | None = None) -> Measurement:
    """Draw independent initialised networks and measure their input-gradient statistics.

    Parameters
    ----------
    network : Arch or networkx.DiGraph
        A specification (real layers, shared convolution weights) or a node-link DAG (one
        independent weight per edge).
    options : MeasureOptions
    progress : callable, optional
        Called as ``progress(nets_done, nets_target)`` after each chunk.
    coord_groups : array of int, optional
        A group index per input coordinate; the per-network sums of ``(d f / d x_i)^2`` over each
        group are kept (``Measurement.group_sums``) so that parts of the per-coordinate map can be
        tested with standard errors over networks.

    Returns
    -------
    Measurement

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> m = measure(make_arch("fc", 4, width=32, depth=2), MeasureOptions(nets=64, device="cpu"))
    >>> mean, se = m.mean_se("grad_logit_l2_sq")
    >>> abs(mean - 2) < 4 * se
    True
    """
    opt = options or MeasureOptions()
    p = plan(network, opt)
    with strict_numerics(p.device):
        return _measure(opt, p, progress, coord_groups)


def _measure(opt: MeasureOptions, p: Plan, progress: Callable[[int, int], None] | None,
             coord_groups: np.ndarray | None) -> Measurement:
    """The sampling loop of :func:`measure`, on the sizes ``p`` that :func:`plan` derived."""
    device, dtype, batch, chunk, n_logits = p.device, p.dtype, p.batch, p.chunk, p.n_logits
    name, px, d, input_shape, input_names = p.name, p.px, p.d, p.input_shape, p.input_names
    exchangeable, k_total, outputs_all, make = p.exchangeable, p.k_total, p.outputs, p.make
    sampler = _Sampler(opt.inputs, input_shape, device, dtype)
    if device.type == "cpu":
        keep_freed_memory()  # no page faults on every chunk's fresh activations
    n_out = 1 if exchangeable else n_logits
    out_names = (f"{outputs_all[0]}" if n_logits == 1 else f"mean over {outputs_all[0]}..{outputs_all[n_logits - 1]}",) \
        if exchangeable else tuple(outputs_all[:n_logits])

    stats: dict[str, list[np.ndarray]] = {s: [] for s in STATISTICS}
    coord_sum = torch.zeros((n_out, d), dtype=torch.float64, device=device)
    coord_sq = torch.zeros((n_out, d), dtype=torch.float64, device=device)
    icc_parts: list[tuple[np.ndarray, np.ndarray]] = []
    groups_t = None
    group_parts: list[np.ndarray] = []
    if coord_groups is not None:
        coord_groups = np.asarray(coord_groups)
        if coord_groups.shape != (d,) or coord_groups.min() < 0:
            raise OptionError(f"coord_groups must hold one non-negative group index per input coordinate ({d})")
        groups_t = torch.as_tensor(coord_groups, dtype=torch.long, device=device)
        n_groups = int(coord_groups.max()) + 1
    ensembles: dict[int, object] = {}
    start = time.perf_counter()
    done, j = 0, 0
    target = opt.nets if opt.nets is not None else opt.max_nets
    stopped = "nets"
    while True:
        n = min(chunk, target - done)  # never more than --nets, or than max_nets when adaptive
        ens = ensembles.get(n) or ensembles.setdefault(n, make(n))
        g = chunk_generator(opt.seed, (j,), device)
        ens.resample(g)  # type: ignore[attr-defined]
        x = sampler(batch, n, g).requires_grad_(True)
        labels = torch.randint(0, k_total, (batch, n), generator=g, device=device)
        out = ens(x)  # type: ignore[operator]
        per_logit = []
        for k in range(n_logits):
            grad, = torch.autograd.grad(out[..., k].sum(), x, retain_graph=True)
            per_logit.append(grad.reshape(batch, n, d).to(torch.float64))
        loss = F.cross_entropy(out.reshape(batch * n, k_total), labels.reshape(-1), reduction="sum")
        grad_loss, = torch.autograd.grad(loss, x)
        gl = grad_loss.reshape(batch, n, d).to(torch.float64)
        with torch.no_grad():
            gk = torch.stack(per_logit, dim=2)  # (batch, n, logits, d)
            l1 = gk.abs().sum(-1)
            l2sq = gk.square().sum(-1)
            values = {
                "grad_logit_l1": l1, "grad_logit_l2_sq": l2sq, "grad_logit_l2": l2sq.sqrt(),
                "grad_logit_linf": gk.abs().amax(-1),
            }
            for key, v in values.items():  # (batch, n, logits) -> (n, n_out)
                v = v.mean(0)
                stats[key].append((v.mean(1, keepdim=True) if exchangeable else v).cpu().numpy())
            loss_l1 = gl.abs().sum(-1)
            loss_values = {"grad_loss_l1": loss_l1, "grad_loss_l2": gl.square().sum(-1).sqrt(),
                           "grad_loss_linf": gl.abs().amax(-1), "damage_l1": opt.eps * loss_l1}
            for key, v in loss_values.items():
                stats[key].append(v.mean(0).unsqueeze(1).cpu().numpy())
            sq = gk.square().mean(0)  # (n, logits, d)
            sq = sq.mean(1, keepdim=True) if exchangeable else sq
            coord_sum += sq.sum(0)
            coord_sq += sq.square().sum(0)
            if groups_t is not None:
                gs = torch.zeros((*sq.shape[:2], n_groups), dtype=torch.float64, device=device)
                group_parts.append(gs.index_add_(2, groups_t, sq).cpu().numpy())
            if batch > 1:
                per_input = l2sq.mean(2)  # (batch, n)
                icc_parts.append((per_input.cpu().numpy(), per_input.mean(0).cpu().numpy()))
        done += n
        j += 1
        if progress is not None:
            progress(done, target)
        if opt.nets is not None:
            if done >= opt.nets:
                break
        elif done >= opt.min_nets and _precision_reached(np.concatenate(stats["grad_logit_l2_sq"]), opt.rel_se):
            stopped = "rel_se"
            break
        elif done >= opt.max_nets:
            stopped = "max_nets"
            break
        elif opt.max_time is not None and done >= opt.min_nets and time.perf_counter() - start > opt.max_time:
            stopped = "max_time"
            break
    seconds = time.perf_counter() - start
    per_net = {k: np.concatenate(v) for k, v in stats.items()}
    mean = (coord_sum / done).cpu().numpy()
    var = ((coord_sq / done).cpu().numpy() - mean ** 2) * done / max(1, done - 1)
    se = np.sqrt(np.maximum(var, 0) / done)
    return Measurement(name, d, px, out_names, per_net, mean, se, batch, seconds, str(device),
                       _icc(icc_parts), input_names, np.concatenate(group_parts) if group_parts else None,
                       stopped, None if opt.nets is not None else opt.rel_se)


def _skewness(values: np.ndarray) -> float:
    """Sample skewness ``m3 / m2^1.5`` (NaN for fewer than 3 values or no spread)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 3:
        return math.nan
    c = v - v.mean()
    m2 = float(np.mean(c * c))
    return float(np.mean(c ** 3) / m2 ** 1.5) if m2 > 0 else math.nan


def _worst_rel_se(values: np.ndarray) -> float:
    """Largest relative standard error over the measured outputs (columns)."""
    mean = values.mean(0)
    se = values.std(0, ddof=1) / math.sqrt(len(values))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(mean != 0, se / np.abs(mean), np.inf)
    return float(rel.max())


#: confidence of the interval behind the effective relative standard error (verify's default)
_PRECISION_CONFIDENCE = 0.99


def _effective_rel_se(values: np.ndarray) -> float:
    """Largest relative half-width, in standard errors, of the calibrated interval over the columns."""
    from ..inference import mean_interval, z_value

    z = z_value(_PRECISION_CONFIDENCE)
    worst = 0.0
    for column in np.asarray(values, dtype=np.float64).T:
        iv = mean_interval(column, _PRECISION_CONFIDENCE, seed=0)
        if iv.mean == 0 or not math.isfinite(iv.high):
            return math.inf
        worst = max(worst, max(iv.half_widths()) / z / abs(iv.mean))
    return worst


def _precision_reached(values: np.ndarray, rel_se: float) -> bool:
    """Whether adaptive sampling may stop: the plain relative SE, then the calibrated one, reach ``rel_se``.

    The cheap plain check comes first; the bootstrap runs only once it passes, so a heavy tail that
    widens the verdict's interval keeps sampling instead of leaving the claim inconclusive.
    """
    return _worst_rel_se(values) <= rel_se and _effective_rel_se(values) <= rel_se


def _icc(parts: list[tuple[np.ndarray, np.ndarray]]) -> float | None:
    """One-way ANOVA intraclass correlation of ``||grad f||^2`` between inputs of one network."""
    if not parts:
        return None
    per_input = np.concatenate([p[0] for p in parts], axis=1)  # (batch, nets)
    k, n = per_input.shape
    if n < 2:
        return None
    grand = per_input.mean()
    msb = k * ((per_input.mean(0) - grand) ** 2).sum() / (n - 1)
    msw = ((per_input - per_input.mean(0)) ** 2).sum() / (n * (k - 1))
    denom = msb + (k - 1) * msw
    return float((msb - msw) / denom) if denom > 0 else None
