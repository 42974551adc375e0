"""The infinite-width (NNGP) prediction of ``E_W (d f_k / d x_i)^2``, gate correlations included.

``K(x, x') = E_W f(x) f(x')`` and ``d^2 K / dx_i dx'_i`` at ``x' = x`` is ``E_W (d_i f(x))^2`` at
every width.  In the infinite-width limit the pre-activations of one channel at all positions and
their input derivatives, ``(h_p, d_i h_p)``, are jointly Gaussian, so a recursion over the stages
of an :class:`~initstats.spec.Arch` propagates, per pair of positions ``(p, q)``:

- ``S(p, q) = E h_p h_q`` (the forward kernel, all pairs),
- ``A_i(p, q) = E h_p d_i h_q`` (``q`` in the receptive region of input coordinate ``i``),
- ``D_i(p, q) = E d_i h_p d_i h_q`` (both in that region).

Convolutions and dense layers (weights of variance ``gain / fan_in``, shared over positions) sum
the same kernel entry at ``p + e`` and ``q + e`` (one reading a channel concatenation sums its
branches' kernels, weighted by their channels: its weights are independent across input channels,
so no cross term between branches remains); average pools and residual sums are linear; a
ReLU maps the moments through bivariate Gaussian integrals (arc-cosine kernels of order 0 and 1
and Gaussian integration by parts), with the closed form ``D/2``, ``A/2`` at correlation 1 (the
diagonal ``p = q``, where differentiating ``arccos`` would give NaN).  The logit's ``D_i`` is the
answer.  Inputs are sampled (``x ~ N(0, I)``, or given) and the answer is averaged over them with
its standard error; under circular padding the input shifts by the product of the strides leave
the network unchanged, so only one cell of input positions is computed per input.

Cost: ``S`` holds (positions)^2 pairs per stage; ``A`` holds, per input coordinate,
positions x box entries and ``D`` box^2, where the box is the (cyclic) box of positions an input
coordinate reaches; directions are processed in chunks within ``MEMORY_BUDGET`` bytes.  The work is
(input coordinates) x (positions) x box per stage: with zero padding at 64 px, minutes per input for
every coordinate.  ``coordinates`` then computes a systematic sample of them (every ``s``-th
position per axis from an offset drawn per input, balanced over the inputs): the total is the
Horvitz-Thompson estimate, unbiased, and its standard error over the inputs includes the sampling
(measured to be calibrated in ``tests/test_infinite_width.py``).  Where no gates merge,
:func:`equals_annealed` says the value is the annealed path sum, which the exact engine gives at
once (:func:`initstats.infinite.with_infinite_width` uses it).

Assumptions: Gaussian weights (any symmetric law gives the same limit), zero biases, He or LeCun
variance, ReLU only on Gaussian pre-activations (a ``sumrelu`` of two Gaussian branches is
fine; a ReLU after the sum with an identity shortcut of a post-ReLU signal is not), residual
sums whose branches are independent (one ends in a random linear layer), grouped convolutions
reading exchangeable channels (not the input or a concatenation: their groups would differ).
Max pooling, BatchNorm (in training mode) and those grouped convolutions are refused
(:class:`~initstats.errors.UnsupportedLayerError`); a folded evaluation-mode BatchNorm's
``var_factor`` scales its layer's variance.

Where the value is exact at *any* width (``InfiniteWidth.exact``): with one hidden random layer
(its branches all reading the input; their pre-activations are exactly Gaussian given ``x``), and where no deterministic node (average
pool, residual sum) merges paths after a ReLU -- there it equals the annealed path sum for every
``x`` (THEORY.md section 4c).  Otherwise it is the infinite-width limit; finite width adds an
``O(1/width)`` correction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ExactLimitError, OptionError
from ..spec import Arch
from .common import init_gain
from ._nngp_geometry import _apply, _geometry, _spatial2
from ._nngp_rules import _check, _exactness, _factor, _merges, _period

__all__ = ["InfiniteWidth", "infinite_width", "equals_annealed", "MEMORY_BUDGET", "AUTO_WORK"]

#: bytes the recursion may hold at once (the kernels of every ReLU stage plus one chunk)
MEMORY_BUDGET = 3 * 2**30
#: work units per input (:func:`_work`; about 3e-8 s each here) that ``coordinates="auto"`` spends on
#: input coordinates (or twice the forward kernels' units, if more): all when they fit, else a sample
AUTO_WORK = 6e7
_TINY_SIN = 1e-7  # below this sin(theta) the Gaussian-conditioning term is dropped (correlation 1)
_B = 8  # bytes per float64


@dataclass(frozen=True, kw_only=True)
class InfiniteWidth:
    """The infinite-width prediction of ``E_W (d f_k / d x_i)^2`` for one architecture.

    Attributes
    ----------
    grad_sq : numpy.ndarray
        ``E_x E_W (d f_k / d x_i)^2`` per input coordinate, in the input's shape.
    grad_sq_total : float
        Its sum, ``E ||grad_x f_k||^2``.
    grad_sq_total_se : float or None
        Standard error of the total over the sampled inputs (None with a single input).
    n_inputs : int
        Inputs ``x`` averaged over.
    exact : bool
        True where the value is ``E_W`` at any width, not only the infinite-width limit.
    exact_reason : str
        Why (or why not) it is exact.
    position_pairs : int
        The largest number of position pairs of one stage's forward kernel (what the cost grows with).
    period : tuple of int or None
        Input shifts (per spatial axis) that leave the network unchanged, used to compute one cell
        of positions per input; None when the network is not shift-invariant.
    coordinate_fraction : float
        The probability that a given input coordinate is computed for a given input: 1 when all
        are; below 1 the coordinates were sampled (``coordinates``), ``grad_sq_total`` is the unbiased
        (Horvitz-Thompson) estimate and its standard error includes the sampling, and ``grad_sq`` is
        the mean over the inputs that computed each coordinate (NaN where none did).
    coordinate_stride : tuple of int
        The systematic sample's step per spatial axis ((1, 1): every coordinate).

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> res = infinite_width(make_arch("fc", 3, width=4, depth=1), n_inputs=2)
    >>> round(res.grad_sq_total, 12), res.exact, res.grad_sq_total_se is not None
    (2.0, True, True)
    """

    grad_sq: np.ndarray
    grad_sq_total: float
    grad_sq_total_se: float | None
    n_inputs: int
    exact: bool
    exact_reason: str
    position_pairs: int
    period: tuple[int, ...] | None = None
    coordinate_fraction: float = 1.0
    coordinate_stride: tuple[int, int] = (1, 1)


# -- the ReLU: bivariate Gaussian moments --------------------

def _step_terms(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, same: torch.Tensor):
    """For ``(h_p, h_q)`` of variances ``a, b`` and covariance ``c``: ``P = E step step`` and
    ``1 / (2 pi sqrt(ab) sin theta)`` (0 at correlation 1), what the derivative update needs."""
    sq = torch.sqrt(a * b)
    rho = torch.where(same, torch.ones_like(c), (c / sq).clamp(-1.0, 1.0))
    sin = torch.where(same, torch.zeros_like(c), torch.sqrt(((1 - rho) * (1 + rho)).clamp_min(0.0)))
    step2 = (math.pi - torch.arccos(rho)) / (2 * math.pi)
    big = sin > _TINY_SIN
    inv = torch.where(big, 1.0 / (2 * math.pi * sq * torch.where(big, sin, torch.ones_like(sin))),
                      torch.zeros_like(sin))
    return step2, inv


def _relu_sigma(sig: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``E relu relu``, ``E step step`` and ``E relu(h_p) delta(h_q)`` for every pair of positions
    (arc-cosine kernels of order 1 and 0; in place: this runs on (positions)^2 entries)."""
    n0, n1 = sig.shape[:2]
    flat = sig.reshape(n0 * n1, n0 * n1)
    root = flat.diagonal().sqrt()
    rho = flat / root[:, None]
    rho.div_(root[None, :]).clamp_(-1.0, 1.0).fill_diagonal_(1.0)
    sin = torch.sub(1.0, rho).mul_(rho + 1.0).clamp_min_(0.0).sqrt_()
    step2 = torch.arccos(rho).neg_().add_(math.pi)              # pi - theta
    relu2 = torch.mul(step2, rho).add_(sin).mul_(root[:, None] / (2 * math.pi)).mul_(root[None, :])
    step2.div_(2 * math.pi)
    relu_delta = sin.mul_(root[:, None] / (2 * math.pi)).div_(root[None, :])
    return relu2.reshape(sig.shape), step2.reshape(sig.shape), relu_delta.reshape(sig.shape)


def _relu_chunk(kernels, A: torch.Tensor, D: torch.Tensor, pos: tuple[torch.Tensor, torch.Tensor]):
    """ReLU on a chunk of directions: ``A`` (c, R0, R1, n0, n1, S0, S1), ``D`` (c, R0, R1, S0, S1, S0, S1);
    ``kernels``: the pre-activation kernel and the pairwise ``E step step``, ``E relu delta``."""
    sig, step_pq, relu_delta_pq = kernels
    p0, p1 = pos                              # (R0, S0), (R1, S1): positions of the box slots
    R0, S0 = p0.shape
    R1, S1 = p1.shape
    n0, n1 = sig.shape[:2]
    diag = sig.reshape(n0 * n1, -1).diagonal().reshape(n0, n1)
    # A at the box rows: A_rows[c, r, i, j] = A[c, r, pos(i), j]
    ir0, ir1 = torch.arange(R0)[:, None, None, None], torch.arange(R1)[None, :, None, None]
    A_rows = A[:, ir0, ir1, p0[:, None, :, None], p1[None, :, None, :]]
    Adiag = torch.einsum("crsijij->crsij", A_rows)                         # A(q, q) at slot q
    # D: both ends in the box
    P0i, P1i = p0[:, None, :, None, None, None], p1[None, :, None, :, None, None]
    P0j, P1j = p0[:, None, None, None, :, None], p1[None, :, None, None, None, :]
    c = sig[P0i, P1i, P0j, P1j]
    a, b = diag[P0i, P1i], diag[P0j, P1j]
    step2, inv = _step_terms(a.expand_as(c), b.expand_as(c), c, (P0i == P0j) & (P1i == P1j))
    App, Aqq = Adiag[:, :, :, :, :, None, None], Adiag[:, :, :, None, None, :, :]
    Aqp = A_rows.permute(0, 1, 2, 5, 6, 3, 4)
    D = D * step2 + inv * (App * (Aqq - c * A_rows / a) + Aqp * (A_rows - c * Aqq / b))
    # A: p anywhere, q in the box
    A = A.mul_(_at_box(step_pq, p0, p1)).addcmul_(Adiag[:, :, :, None, None, :, :], _at_box(relu_delta_pq, p0, p1))
    return A, D


def _at_box(kernel: torch.Tensor, p0: torch.Tensor, p1: torch.Tensor) -> torch.Tensor:
    """``kernel[p, pos(r, j)]`` laid out as ``(R0, R1, n0, n1, S0, S1)``: two index copies and a view."""
    (n0, n1), (R0, S0), (R1, S1) = kernel.shape[:2], p0.shape, p1.shape
    picked = kernel.index_select(2, p0.reshape(-1)).index_select(3, p1.reshape(-1))
    return picked.reshape(n0, n1, R0, S0, R1, S1).permute(2, 4, 0, 1, 3, 5)


# -- the recursion --------------------

def _tables(links):
    return [[[(torch.from_numpy(ax.taps), torch.from_numpy(ax.slots)) for ax in per] for per in st]
            for st in links]


def _sigmas(arch: Arch, x: torch.Tensor, links, gain: float) -> dict[int, torch.Tensor]:
    """Pre-activation forward kernels of the ReLU stages (and of every stage, transiently)."""
    st = arch.stages
    n0 = _spatial2(st[0].shape)
    xs = x.reshape(st[0].channels, *n0)
    out = {0: torch.einsum("cab,cde->abde", xs, xs)}
    keep: dict[int, torch.Tensor] = {}
    sides = [((0, None), (2, None)), ((1, None), (3, None))]
    tabs = _tables(links)
    for s in st[1:]:
        vals = [_apply(out[k], sides, s.kind in ("relu", "linear"), links[s.index][j],
                       [(t[0], None) for t in tabs[s.index][j]]) for j, k in enumerate(s.sources)]
        if s.kind in ("relu", "linear"):
            sig = sum(v * _factor(arch, s, gain, k) for v, k in zip(vals, s.sources))
        else:
            sig = vals[0] if len(vals) == 1 else vals[0] + vals[1]
        if s.kind in ("relu", "sumrelu"):
            post, step2, relu_delta = _relu_sigma(sig)
            keep[s.index] = (sig, step2, relu_delta)
            sig = post
        out[s.index] = sig
    return keep


def _chunk(arch: Arch, x: torch.Tensor, sigmas, geos, tabs, links, gain: float, rows: slice) -> torch.Tensor:
    """``E (d_i f)^2`` for the input coordinates ``(c, r0 in rows, r1)``: a (c, R0, R1) tensor."""
    st = arch.stages
    n0 = _spatial2(st[0].shape)
    xs = x.reshape(st[0].channels, *n0)
    R0, R1 = len(geos[0].lo[0][rows]), len(geos[0].lo[1])
    A = xs[:, None, None, :, :, None, None].expand(-1, R0, R1, -1, -1, 1, 1)
    D = torch.ones(st[0].channels, R0, R1, 1, 1, 1, 1, dtype=x.dtype)
    outs = {0: (A, D)}
    a_sides = [((3, None), (5, 1)), ((4, None), (6, 2))]
    d_sides = [((3, 1), (5, 1)), ((4, 2), (6, 2))]
    last_use = {k: s.index for s in st[1:] for k in s.sources}
    for s in st[1:]:
        coupled = s.kind in ("relu", "linear")
        As, Ds = [], []
        for j, k in enumerate(s.sources):
            t = tabs[s.index][j]
            a_tabs = [(t[a][0], t[a][1][:, rows] if a == 0 else t[a][1]) for a in range(2)]
            As.append(_apply(outs[k][0], a_sides, coupled, links[s.index][j], a_tabs))
            Ds.append(_apply(outs[k][1], d_sides, coupled, links[s.index][j], a_tabs))
        if coupled:
            fs = [_factor(arch, s, gain, k) for k in s.sources]
            A, D = sum(a * f for a, f in zip(As, fs)), sum(d * f for d, f in zip(Ds, fs))
        else:
            A, D = (As[0], Ds[0]) if len(As) == 1 else (As[0] + As[1], Ds[0] + Ds[1])
        if s.kind in ("relu", "sumrelu"):
            g = geos[s.index]
            pos = tuple(torch.from_numpy((g.lo[a][:, None] + np.arange(g.size[a])[None, :]) % g.n[a]) for a in range(2))
            A, D = _relu_chunk(sigmas[s.index], A, D, (pos[0][rows], pos[1]))
        outs[s.index] = (A, D)
        for k in s.sources:
            if last_use[k] == s.index:
                del outs[k]
    return outs[st[-1].index][1].reshape(st[0].channels, R0, R1)


def _budget_rows(arch: Arch, geos, n_r1: int) -> tuple[int, int, int]:
    """(bytes of the stored kernels, bytes per row of directions, largest number of position pairs)."""
    st = arch.stages
    pairs = max(math.prod(g.n) ** 2 for g in geos)
    kernels = 3 * sum(math.prod(geos[s.index].n) ** 2 for s in st if s.kind in ("relu", "sumrelu")) * _B
    per_row = max(st[0].channels * n_r1 * (math.prod(g.n) + math.prod(g.size)) * math.prod(g.size) for g in geos)
    return kernels + 6 * pairs * _B, 12 * per_row * _B, pairs


def equals_annealed(arch: Arch) -> bool:
    """Whether the infinite-width value equals the annealed path sum for every input, at every width.

    True where no deterministic node (average pool over more than one position, residual sum)
    merges paths after a ReLU (THEORY.md section 4c): each pair of paths through one gate then
    carries the same weights, so gate correlations cannot enter.  :func:`initstats.infinite.with_infinite_width`
    then takes the exact annealed value instead of running the recursion (the tests check that
    the two agree).  Raises :class:`~initstats.errors.UnsupportedLayerError` where the recursion does
    not apply at all (max pooling, BatchNorm, ...).

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> equals_annealed(make_arch("cnn", 64)), equals_annealed(make_arch("cnn-avgpool", 64))
    (True, False)
    """
    _check(arch)
    return not _merges(arch)


def _work(geos, coords: int) -> float:
    """Work units of one input: per computed input coordinate and stage, (positions + box) x box
    entries of the derivative covariances; plus each stage's (positions)^2 forward-kernel pairs."""
    return float(sum(coords * (math.prod(g.n) + math.prod(g.size)) * math.prod(g.size) + math.prod(g.n) ** 2
                     for g in geos))


def _sample_stride(coordinates: int | str, channels: int, cell: tuple[int, int], geos) -> int:
    """The step of the systematic sample of spatial positions (1: every coordinate)."""
    full = channels * cell[0] * cell[1]
    if coordinates == "all":
        return 1
    if coordinates == "auto":
        fixed = _work(geos, 0)  # the forward kernels' share: coordinates may take as much again, or AUTO_WORK
        wanted = max(channels, int(max(AUTO_WORK, 2 * fixed) / max((_work(geos, full) - fixed) / full, 1.0)))
    elif isinstance(coordinates, (int, np.integer)) and not isinstance(coordinates, bool) and coordinates >= channels:
        wanted = int(coordinates)
    else:
        raise OptionError(f"coordinates={coordinates!r} is invalid; expected 'all', 'auto' or an integer >= "
                          f"{channels} (at least one position per input channel)")
    step = 1
    while channels * math.ceil(cell[0] / min(step, cell[0])) * math.ceil(cell[1] / min(step, cell[1])) > wanted \
            and step < max(cell):
        step += 1
    return step


def infinite_width(arch: Arch, *, n_inputs: int = 8, seed: int = 0, output: int = 0, init: str = "he",
                   inputs: np.ndarray | torch.Tensor | None = None,
                   coordinates: int | str = "auto", control: np.ndarray | None = None) -> InfiniteWidth:
    """The infinite-width prediction of ``E_W (d f_k / d x_i)^2`` per input coordinate and its total.

    Parameters
    ----------
    arch : Arch
        The network (conv, dense, average pool, residual sums; zero, circular or reflect padding).
    n_inputs : int
        Inputs ``x ~ N(0, I)`` averaged over (float64 generator seeded with ``seed``).
    seed : int
    output : int
        The logit ``k``; every logit has the same infinite-width value (checked to be in range).
    init : {'he', 'lecun'}
        Weight variance ``2 / fan_in`` or ``1 / fan_in``.
    inputs : array, optional
        Explicit inputs of shape ``(n, *arch.input_shape)`` instead of sampled ones.
    coordinates : {'auto', 'all'} or int
        Which input coordinates to compute per input.  ``'all'``: every one (per-coordinate values
        everywhere; the cost grows with their number, see the module docstring).  An integer ``m``:
        about ``m`` per input, a systematic sample (every ``s``-th position along each spatial axis,
        all channels, from an offset drawn per input, the offsets balanced over the inputs), which
        computes each coordinate with probability ``1 / s^2``; the total is then an unbiased estimate
        whose standard error, over the inputs, includes the sampling (needs ``n_inputs >= 2``).
        ``'auto'`` (default): all when their work fits :data:`AUTO_WORK` per input (and a row of them
        :data:`MEMORY_BUDGET`), else that sample.
    control : array, optional
        Per-coordinate values of a cheap approximation, in the input's shape (the exact annealed
        map, say: :func:`initstats.infinite.with_infinite_width` passes it).  With sampled
        coordinates the total becomes ``sum(control) + s^2 sum_sample(value - control)``: still
        unbiased, with a smaller error where the control tracks the values.  Unused when every
        coordinate is computed.

    Returns
    -------
    InfiniteWidth

    Raises
    ------
    UnsupportedLayerError
        Max pooling, BatchNorm, or a residual sum outside the assumptions (module docstring).
    ExactLimitError
        When the position pairs would not fit in :data:`MEMORY_BUDGET` bytes.

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> res = infinite_width(make_arch("fc", 4, width=8, depth=2), n_inputs=2)
    >>> round(res.grad_sq_total, 10), res.exact, res.grad_sq.shape      # no merge: the annealed 2
    (2.0, True, (3, 4, 4))
    >>> from initstats.spec import Arch, AvgPool, Conv, Dense
    >>> pooled = Arch((3, 8, 8), (Conv(4, padding="circular"), AvgPool(8), Dense(1, activation=None)))
    >>> res = infinite_width(pooled, n_inputs=4)
    >>> res.exact, 0.0335 < res.grad_sq_total < 0.0345                   # above the annealed 2/64
    (True, True)
    """
    if isinstance(n_inputs, bool) or not isinstance(n_inputs, int) or n_inputs < 1:
        raise OptionError(f"n_inputs={n_inputs!r} is invalid; expected a positive integer")
    if not 0 <= output < arch.num_classes:
        raise OptionError(f"output={output!r} is out of range; the network has {arch.num_classes} logits")
    gain = init_gain(init)
    _check(arch)
    if inputs is None:
        gen = torch.Generator().manual_seed(seed)
        xs = torch.randn(n_inputs, *arch.input_shape, generator=gen, dtype=torch.float64)
    else:
        xs = torch.as_tensor(np.asarray(inputs), dtype=torch.float64)
        if tuple(xs.shape[1:]) != tuple(arch.input_shape):
            raise OptionError(f"inputs have shape {tuple(xs.shape)}; expected (n, {', '.join(map(str, arch.input_shape))})")
        n_inputs = xs.shape[0]
    period = _period(arch)
    n_in = _spatial2(arch.input_shape)
    cell = period if period is not None else n_in
    channels = arch.input_shape[0]
    geos, links = _geometry(arch, (np.arange(cell[0]), np.arange(cell[1])))
    step = _sample_stride(coordinates, channels, cell, geos)
    fixed, per_row, pairs = _budget_rows(arch, geos, -(-cell[1] // min(step, cell[1])))
    while coordinates == "auto" and fixed < MEMORY_BUDGET < fixed + per_row and step < cell[1]:
        step += 1  # "auto" also samples where one row of all coordinates would not fit in memory
        fixed, per_row, pairs = _budget_rows(arch, geos, -(-cell[1] // step))
    strides = (min(step, cell[0]), min(step, cell[1]))
    classes = strides[0] * strides[1]
    if classes > 1 and n_inputs < 2:
        raise OptionError(f"{arch.name}: sampling input coordinates (coordinates={coordinates!r} computes 1 in "
                          f"{classes}) needs n_inputs >= 2 for a standard error; use more inputs or coordinates='all'")
    if fixed + per_row > MEMORY_BUDGET:
        raise ExactLimitError(
            f"{arch.name}: the infinite-width recursion needs about {(fixed + per_row) / 2**30:.1f} GiB "
            f"(budget {MEMORY_BUDGET / 2**30:.1f} GiB): "
            + (f"its forward kernels alone take {fixed / 2**30:.1f} GiB, {pairs:,} position pairs in the largest "
               f"stage, growing as (positions)^2; use fewer pixels" if fixed >= MEMORY_BUDGET else
               f"one row of input coordinates takes {per_row / 2**30:.1f} GiB, growing as (coordinates) x "
               f"(positions) x (receptive box); sample fewer coordinates (coordinates=N) or use fewer pixels"))
    rows_per_chunk = max(1, int((MEMORY_BUDGET - fixed) // per_row))
    ctrl = np.zeros((channels, *cell))
    if control is not None and classes > 1:
        full = np.asarray(control, dtype=np.float64)
        if full.shape != tuple(arch.input_shape) or not np.isfinite(full).all():
            raise OptionError(f"control has shape {full.shape} (or non-finite values); expected finite values of "
                              f"the input's shape {tuple(arch.input_shape)}")
        ctrl = full.reshape(channels, *n_in)[:, :cell[0], :cell[1]]
    rng = np.random.default_rng(seed)  # the sample's offsets: each input's uniform, balanced over inputs
    offsets = np.concatenate([rng.permutation(classes) for _ in range(-(-n_inputs // classes))])[:n_inputs]
    plans: dict[int, tuple] = {}
    sums = np.zeros((channels, *cell))
    counts = np.zeros(cell)
    totals = np.zeros(n_inputs)
    with torch.no_grad():
        for t in range(n_inputs):
            o = int(offsets[t])
            if o not in plans:
                dirs = (np.arange(o // strides[1], cell[0], strides[0]), np.arange(o % strides[1], cell[1], strides[1]))
                g, lk = (geos, links) if classes == 1 else _geometry(arch, dirs)
                plans[o] = (dirs, g, lk, _tables(lk))
            dirs, g, lk, tabs = plans[o]
            sig = _sigmas(arch, xs[t], lk, gain)
            for start in range(0, len(dirs[0]), rows_per_chunk):
                rows = slice(start, min(len(dirs[0]), start + rows_per_chunk))
                vals = _chunk(arch, xs[t], sig, g, tabs, lk, gain, rows).numpy()
                sums[:, dirs[0][rows][:, None], dirs[1][None, :]] += vals
                totals[t] += (vals - ctrl[:, dirs[0][rows][:, None], dirs[1][None, :]]).sum()
            counts[np.ix_(dirs[0], dirs[1])] += 1
    reps = (n_in[0] // cell[0]) * (n_in[1] // cell[1])
    # Horvitz-Thompson: each coordinate computed with probability 1 / classes (the control's part exactly)
    totals = (totals * classes + ctrl.sum()) * reps
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_cell = np.where(counts > 0, sums / counts, np.nan)
    per_x = np.tile(mean_cell, (1, n_in[0] // cell[0], n_in[1] // cell[1]))
    exact, reason = _exactness(arch)
    se = float(totals.std(ddof=1) / math.sqrt(n_inputs)) if n_inputs > 1 else None
    return InfiniteWidth(grad_sq=per_x.reshape(arch.input_shape), grad_sq_total=float(totals.mean()),
                         grad_sq_total_se=se, n_inputs=n_inputs, exact=exact, exact_reason=reason,
                         position_pairs=pairs, period=None if period is None else period[:len(arch.input_shape) - 1],
                         coordinate_fraction=1.0 / classes, coordinate_stride=strides)
