"""Measured input-gradient statistics as data: options, per-network values and sums that merge.

A :class:`Measurement` holds, for one network family at one input size, the per-network values of
the statistics below (one row per independently initialised network) and running sums over
networks of the per-coordinate squared gradients:

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

Inputs to one network are strongly correlated, so every statistic is first averaged within a
network (over its inputs and, for exchangeable logits, over the measured logits); means and
standard errors are over *independent networks*.

Everything here is a sufficient statistic that adds: per-network rows concatenate and sums add,
so measurements of disjoint sets of networks of the same network and size merge into the
measurement of their union (:meth:`Measurement.merge`), bit for bit in the per-network values.
This module imports neither torch nor networkx: results can be stored, merged and tested without
the empirical engine (:mod:`initstats.empirical.measure` produces them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from .errors import OptionError

__all__ = ["STATISTICS", "LOGIT_STATISTICS", "LOSS_STATISTICS", "DEFAULT_REL_SE", "INITS", "DTYPES",
           "INPUT_DISTRIBUTIONS", "MeasureOptions", "Measurement", "detectable_rel_se"]

LOGIT_STATISTICS = ("grad_logit_l1", "grad_logit_l2_sq", "grad_logit_l2", "grad_logit_linf")
LOSS_STATISTICS = ("grad_loss_l1", "grad_loss_l2", "grad_loss_linf", "damage_l1")
STATISTICS = LOGIT_STATISTICS + LOSS_STATISTICS
INPUT_DISTRIBUTIONS = ("normal", "uniform")
#: initialisations: weights of variance ``2 / fan_in`` (He) or ``1 / fan_in`` (LeCun)
INITS = ("he", "lecun")
DTYPES = ("float32", "float64")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def detectable_rel_se(error: float = 0.05, confidence: float = 0.99, power: float = 0.8) -> float:
    """Relative standard error at which a relative ``error`` is detected with ``power``.

    A two-sided test at ``confidence`` rejects a prediction off by ``error`` with probability
    ``power`` when ``(z_{1-alpha/2} + z_power) * se <= error``.

    Examples
    --------
    >>> round(detectable_rel_se(), 4), round(detectable_rel_se(power=0.9), 4)
    (0.0146, 0.013)
    """
    z = NormalDist().inv_cdf
    return error / (z(0.5 + confidence / 2) + z(power))


#: default target relative standard error: a 5 % error is detected at 99 % confidence with 90 % power.
#: Verdicts ask for 80 % power (claims.exact_claim), so the sampling target leaves a margin for the
#: standard error relative to the prediction being slightly larger than relative to the measured mean.
DEFAULT_REL_SE = round(detectable_rel_se(power=0.9), 4)


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise OptionError(f"{name}={value!r} is unknown; expected one of {', '.join(map(repr, choices))}")


@dataclass(frozen=True, kw_only=True)
class MeasureOptions:
    """How to sample networks and inputs; every value is checked here, before any work.

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
        (``Measurement.stopped``) and whether ``rel_se`` was reached.  Not with ``nets``.
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
    first_chunk : int
        Index of the first chunk: chunk ``j`` draws from the stream ``(seed, j)``, so a run with
        ``first_chunk=k`` draws the networks that follow the first ``k`` chunks of a run with
        ``first_chunk=0`` and the same ``chunk``; the two measurements merge
        (:meth:`Measurement.merge`) into that of the longer run.
    stream : tuple of int
        A prefix of every chunk's stream: chunk ``j`` draws from ``(seed, *stream, j)``.  Empty by
        default; a sweep (:mod:`initstats.sweep`) gives each case and input size its own, so that
        their networks are independent and do not depend on what else the sweep runs.
    device : {'auto', 'cpu', 'cuda', 'cuda:i'}
        Checked for its form here; whether that device exists is checked when measuring.
    dtype : {'float32', 'float64'}

    Examples
    --------
    >>> MeasureOptions(nets=100, seed=1).nets
    100
    >>> MeasureOptions(init="xavier")
    Traceback (most recent call last):
    ...
    initstats.errors.OptionError: init='xavier' is unknown; expected one of 'he', 'lecun'
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
    first_chunk: int = 0
    stream: tuple[int, ...] = ()
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
        if isinstance(self.first_chunk, bool) or not isinstance(self.first_chunk, int) or self.first_chunk < 0:
            raise OptionError(f"first_chunk={self.first_chunk!r} is invalid; expected a non-negative integer")
        if not isinstance(self.stream, tuple) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in self.stream):
            raise OptionError(f"stream={self.stream!r} is invalid; expected a tuple of non-negative integers")
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
        _choice("init", self.init, INITS)
        _choice("dtype", self.dtype, DTYPES)
        if not isinstance(self.device, str) or not _DEVICE.fullmatch(self.device):
            raise OptionError(f"device={self.device!r} is unknown; expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
        if not isinstance(self.implicit_dense, bool):
            raise OptionError(f"implicit_dense={self.implicit_dense!r} is invalid; expected True or False")


@dataclass(frozen=True, kw_only=True, eq=False)
class Measurement:
    """Per-network statistics of one network at one input size, and sums that merge.

    Attributes
    ----------
    name : str
        The network's name (an architecture's name, or the DAG's ``name`` attribute).
    d, px : int, int or None
        Input dimension and, for an architecture, the image side.
    outputs : tuple of str
        The measured outputs (one label for an architecture's exchangeable logits).
    per_net : dict of str to array
        ``per_net[statistic]`` has shape ``(n_nets, n_outputs)`` for logit statistics and
        ``(n_nets, 1)`` for loss statistics.
    coord_sum, coord_sq_sum : array, shape ``(n_outputs, d)``
        Sums over networks of the per-network ``(d f_k / d x_i)^2`` and of its square (float64):
        :attr:`coord_mean` and :attr:`coord_se` derive from them.
    inputs_per_net : int
    seconds : float
        Sampling time (summed over merged parts).
    device : str
    input_mean, input_ss : array or None
        Per network, the mean over its inputs of ``||grad f||^2`` (averaged over the measured
        logits) and the sum of squared deviations from it: the intraclass correlation's sufficient
        statistics (None with one input per network).
    input_names : tuple of str
        A DAG's input node names (empty for an architecture).
    group_sums : array or None
        Per network, ``sum_{i in group} (d f / d x_i)^2`` per coordinate group, shape
        ``(n_nets, n_outputs, n_groups)``.
    stopped : {'nets', 'rel_se', 'max_nets', 'max_time'}
        Why sampling stopped: a fixed number, the target reached, or short of it.
    rel_se : float or None
        The target of adaptive sampling (None with a fixed number).

    Examples
    --------
    >>> from initstats.empirical.measure import measure
    >>> from initstats.families import make_arch
    >>> m = measure(make_arch("fc", 4, width=32, depth=2), MeasureOptions(nets=300, seed=0, device="cpu"))
    >>> m.n_nets, m.d, m.per_net["grad_logit_l2_sq"].shape, m.coord_mean.shape
    (300, 48, (300, 1), (1, 48))
    >>> mean, se = m.mean_se("grad_logit_l2_sq")
    >>> abs(mean - 2) < 3 * se                     # He initialisation: E||grad f||^2 = 2
    True
    >>> list(m.to_frame().columns)
    ['arch', 'd', 'px', 'statistic', 'output', 'mean', 'stderr', 'n_nets']
    """

    name: str
    d: int
    px: int | None
    outputs: tuple[str, ...]
    per_net: dict[str, np.ndarray]
    coord_sum: np.ndarray
    coord_sq_sum: np.ndarray
    inputs_per_net: int
    seconds: float
    device: str
    input_mean: np.ndarray | None = field(default=None, repr=False)
    input_ss: np.ndarray | None = field(default=None, repr=False)
    input_names: tuple[str, ...] = field(default=(), repr=False)
    group_sums: np.ndarray | None = field(default=None, repr=False)
    stopped: str = "nets"
    rel_se: float | None = None

    @property
    def n_nets(self) -> int:
        return int(next(iter(self.per_net.values())).shape[0])

    @property
    def coord_mean(self) -> np.ndarray:
        """Per-coordinate ``E (d f_k / d x_i)^2`` over networks, shape ``(n_outputs, d)``."""
        return self.coord_sum / self.n_nets

    @property
    def coord_se(self) -> np.ndarray:
        """Standard errors over networks of :attr:`coord_mean`."""
        n = self.n_nets
        mean = self.coord_mean
        var = (self.coord_sq_sum / n - mean ** 2) * n / max(1, n - 1)
        return np.sqrt(np.maximum(var, 0) / n)

    @property
    def icc(self) -> float | None:
        """One-way ANOVA intraclass correlation of ``||grad f||^2`` between inputs of one network."""
        from .inference import icc

        if self.input_mean is None or self.input_ss is None:
            return None
        return icc(self.input_mean, self.input_ss, self.inputs_per_net)

    @property
    def rel_se_reached(self) -> float:
        """The largest *effective* relative standard error of ``E||grad f||^2`` over the outputs.

        The wider half of the calibrated 99 % interval (:func:`initstats.inference.mean_interval`)
        divided by 2.576 and by the mean: the plain ``se / mean`` where the tail is light, larger
        where a heavy tail widens the interval.  Adaptive sampling stops when it reaches ``rel_se``.
        """
        from .inference import effective_rel_se

        return effective_rel_se(self.per_net["grad_logit_l2_sq"])

    @property
    def short(self) -> bool:
        """True when adaptive sampling stopped before reaching its ``rel_se`` target."""
        return self.stopped in ("max_nets", "max_time")

    def _column(self, statistic: str, output: int) -> np.ndarray:
        return self.per_net[statistic][:, output if statistic in LOGIT_STATISTICS else 0]

    def mean_se(self, statistic: str, output: int = 0) -> tuple[float, float]:
        """Mean and standard error over networks of one statistic."""
        col = self._column(statistic, output)
        n = len(col)
        return float(col.mean()), float(col.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf

    def skewness(self, statistic: str, output: int = 0) -> float:
        """Sample skewness of the per-network values of a statistic."""
        from .inference import sample_skewness

        return sample_skewness(self._column(statistic, output))

    def _groups(self, output: int) -> np.ndarray:
        if self.group_sums is None:
            raise ValueError("this measurement has no coordinate groups; pass coord_groups to measure()")
        return self.group_sums[:, output, :]

    def group_skewness(self, output: int = 0) -> np.ndarray:
        """Sample skewness of the per-network group sums."""
        from .inference import sample_skewness

        return np.array([sample_skewness(c) for c in self._groups(output).T])

    def group_mean_se(self, output: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard error over networks of ``sum_{i in group} (d f / d x_i)^2`` per group."""
        col = self._groups(output)
        if len(col) < 2:  # one network: no standard error (as in mean_se)
            return col.mean(0), np.full(col.shape[1], math.inf)
        return col.mean(0), col.std(0, ddof=1) / math.sqrt(len(col))

    def to_frame(self) -> pd.DataFrame:
        """Tidy rows ``arch, d, px, statistic, output, mean, stderr, n_nets``."""
        rows = []
        for stat in STATISTICS:
            outs = range(len(self.outputs)) if stat in LOGIT_STATISTICS else [0]
            for k in outs:
                mean, se = self.mean_se(stat, k)
                rows.append({"arch": self.name, "d": self.d, "px": self.px, "statistic": stat,
                             "output": self.outputs[k] if stat in LOGIT_STATISTICS else None,
                             "mean": mean, "stderr": se, "n_nets": self.n_nets})
        return pd.DataFrame(rows)

    def merge(self, other: Measurement) -> Measurement:
        """The measurement of both parts' networks: rows of ``other`` after those of ``self``.

        The parts must describe the same network at the same size with the same outputs, inputs
        and coordinate groups (disjoint networks, e.g. other chunks of one seed).  Sampling
        metadata: the seconds add, ``stopped`` and ``rel_se`` are ``other``'s, and the device is
        kept when both agree (else both are named, ``'cpu+cuda'``).

        Examples
        --------
        >>> import numpy as np
        >>> def part(values):
        ...     v = np.asarray(values, dtype=float).reshape(-1, 1)
        ...     per_net = {s: v for s in STATISTICS}
        ...     return Measurement(name="toy", d=1, px=None, outputs=("o",), per_net=per_net,
        ...                        coord_sum=v.sum(0, keepdims=True), coord_sq_sum=(v ** 2).sum(0, keepdims=True),
        ...                        inputs_per_net=1, seconds=1.0, device="cpu")
        >>> both = part([1.0, 3.0]).merge(part([2.0]))
        >>> both.n_nets, both.mean_se("grad_logit_l2_sq")[0], both.coord_mean.tolist(), both.seconds
        (3, 2.0, [[2.0]], 2.0)
        """
        return Measurement.merge_all([self, other])

    @staticmethod
    def merge_all(parts: Sequence[Measurement]) -> Measurement:
        """The measurement of all parts' networks, in order: ``parts[0].merge(parts[1]).merge(...)``.

        The same sums, added in the same order (so the same floats), but each per-network array
        is concatenated once instead of once per part: merging ``k`` chunks costs ``O(k)``, not
        ``O(k^2)``.  The device is kept when all parts agree, else the devices are named.

        Examples
        --------
        >>> import numpy as np
        >>> def part(values):
        ...     v = np.asarray(values, dtype=float).reshape(-1, 1)
        ...     return Measurement(name="toy", d=1, px=None, outputs=("o",), per_net={s: v for s in STATISTICS},
        ...                        coord_sum=v.sum(0, keepdims=True), coord_sq_sum=(v ** 2).sum(0, keepdims=True),
        ...                        inputs_per_net=1, seconds=1.0, device="cpu")
        >>> parts = [part([0.1]), part([0.2, 0.7]), part([0.3])]
        >>> folded = parts[0].merge(parts[1]).merge(parts[2])
        >>> merged = Measurement.merge_all(parts)
        >>> merged.n_nets, bool((merged.coord_sum == folded.coord_sum).all()), merged.seconds
        (4, True, 3.0)
        """
        if not parts:
            raise OptionError("merge_all needs at least one measurement")
        first, last = parts[0], parts[-1]
        for other in parts[1:]:
            first._check_mergeable(other)

        def fold(values):  # left to right, as repeated merges add
            total = values[0]
            for v in values[1:]:
                total = total + v
            return total

        def cat(name: str) -> np.ndarray | None:
            arrays = [getattr(m, name) for m in parts]
            return None if any(a is None for a in arrays) else np.concatenate(arrays)

        devices = sorted({m.device for m in parts})
        return Measurement(
            name=first.name, d=first.d, px=first.px, outputs=first.outputs,
            per_net={s: np.concatenate([m.per_net[s] for m in parts]) for s in first.per_net},
            coord_sum=fold([m.coord_sum for m in parts]), coord_sq_sum=fold([m.coord_sq_sum for m in parts]),
            inputs_per_net=first.inputs_per_net, seconds=fold([m.seconds for m in parts]), device="+".join(devices),
            input_mean=cat("input_mean"), input_ss=cat("input_ss"), input_names=first.input_names,
            group_sums=cat("group_sums"), stopped=last.stopped, rel_se=last.rel_se)

    def _check_mergeable(self, other: Measurement) -> None:
        """An :class:`OptionError` unless ``other`` measured the same network, outputs and coordinate groups."""
        same = ("name", "d", "px", "outputs", "inputs_per_net", "input_names")
        for attr in same:
            if getattr(self, attr) != getattr(other, attr):
                raise OptionError(f"cannot merge measurements with different {attr}: "
                                  f"{getattr(self, attr)!r} and {getattr(other, attr)!r}")
        if set(self.per_net) != set(other.per_net):
            raise OptionError("cannot merge measurements of different statistics")
        if (self.group_sums is None) != (other.group_sums is None) or (
                self.group_sums is not None and self.group_sums.shape[1:] != other.group_sums.shape[1:]):  # type: ignore[union-attr]
            raise OptionError("cannot merge measurements with different coordinate groups")
