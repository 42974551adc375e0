"""The infinite-width (NNGP) prediction of E_W (d f / d x_i)^2 (initstats.empirical.infinite_width).

Checked against: a one-hidden-layer convolution with a global pool computed by hand (a 1-D
angular integral, independent of the Gaussian-conditioning formulas), the exact annealed engine
where no deterministic node merges gates (must be equal, per coordinate, at every input), the
independent neural-tangents values of issue 13 (within 0.3 %), Monte Carlo of real networks
(one hidden layer: exact at any width; a wrong prediction is rejected by the same test) and the
finite-width trend on two layers.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

import initstats.empirical.infinite_width as iw
from initstats.claims import exact_claim
from initstats.empirical.infinite_width import InfiniteWidth, infinite_width
from initstats.empirical.measure import measure
from initstats.errors import ExactLimitError, OptionError, UnsupportedLayerError
from initstats.exact import analyse
from initstats.families import make_arch
from initstats.measurement import MeasureOptions
from initstats.spec import Arch, AvgPool, Concat, Conv, Dense, MaxPool, Residual, dense_block

#: issue 13: 8x8x3 inputs, circular 3x3 convolutions, k x k average pool, one dense logit
REFERENCE = {(1, 4): 0.13101, (1, 8): 0.033999, (2, 4): 0.13357, (2, 8): 0.035845}


@pytest.fixture(autouse=True)
def one_thread():
    """Many small tensor operations: one thread is much faster on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pooled(depth: int, k: int, channels: int = 16) -> Arch:
    layers = tuple(Conv(channels, padding="circular") for _ in range(depth))
    return Arch((3, 8, 8), (*layers, AvgPool(k), Dense(1, activation=None)), name=f"pooled-{depth}-{k}")


def quadrant_moments(u: np.ndarray, v: np.ndarray, points: int = 400_000) -> np.ndarray:
    """``E[1{u.z > 0} 1{v.z > 0} z z^T]`` for ``z ~ N(0, I_2)``: ``E|z|^2 = 2`` times the mean of
    ``zhat zhat^T`` over the arc of angles where both half-planes hold (density ``1/2pi``)."""
    phi = (np.arange(points) + 0.5) * (2 * np.pi / points)
    z = np.stack([np.cos(phi), np.sin(phi)])
    inside = (u @ z > 0) & (v @ z > 0)
    return 2 * (z[:, inside] @ z[:, inside].T) / points


def test_one_conv_layer_global_pool_by_hand():
    """h_0 = w_0 x_0 + w_1 x_1, h_1 = w_0 x_1 + w_1 x_2 (kernel 2, no padding, var(w) = 2/2),
    ReLU, mean over the two positions, dense logit: E(d_i f)^2 = 2/4 sum_pq m_pi^T M(u_p, u_q) m_qi."""
    arch = Arch((1, 3), (Conv(8, 2, pad=0), AvgPool(None), Dense(1, activation=None)))
    rng = np.random.default_rng(0)
    for x in (np.array([1.0, 0.0, 1.0]), rng.standard_normal(3), rng.standard_normal(3)):
        u = [x[0:2], x[1:3]]                                    # what each position reads
        m = {0: [np.array([1.0, 0]), np.zeros(2)], 1: [np.array([0, 1.0]), np.array([1.0, 0])],
             2: [np.zeros(2), np.array([0, 1.0])]}             # d h_p / d x_i as a kernel vector
        want = [0.5 * sum(m[i][p] @ quadrant_moments(u[p], u[q]) @ m[i][q] for p in range(2) for q in range(2))
                for i in range(3)]
        got = infinite_width(arch, inputs=x[None, None, :])
        np.testing.assert_allclose(got.grad_sq[0], want, rtol=2e-5)
    # x = (1, 0, 1): gates of the two positions read independent weights: by hand 1/4, (1 + 1/pi)/2, 1/4
    got = infinite_width(arch, inputs=np.array([[[1.0, 0.0, 1.0]]]))
    np.testing.assert_allclose(got.grad_sq[0], [0.25, (1 + 1 / math.pi) / 2, 0.25], rtol=1e-12)
    assert got.exact and "one hidden" in got.exact_reason and got.grad_sq_total_se is None


def test_one_dense_relu_layer_arc_cosine():
    """K(x, x') = (2 / (pi d)) (|x||x'| sin t + (pi - t) x.x'); its mixed derivative at x' = x is
    2/d per coordinate (grad_x' k1 = (pi - t) x + |x| sin t x'/|x'|, then d/dx_i at t = 0 gives pi)."""
    arch = make_arch("fc", 4, width=16, depth=1)
    res = infinite_width(arch, n_inputs=3, seed=5)
    np.testing.assert_allclose(res.grad_sq, np.full(arch.input_shape, 2 / arch.d), rtol=1e-12)
    assert res.exact


@pytest.mark.parametrize("arch", [
    make_arch("fc", 4, width=8, depth=3),
    Arch((3, 8, 8), (Conv(4), Conv(4, 2, stride=2, pad=0), Conv(4, dilation=2), Dense(5, activation=None))),
    Arch((2, 6, 6), (Conv(4, padding="reflect"), Conv(4, padding="circular"), Dense(1, activation=None))),
    make_arch("cnn", 16, channels=2, padding="circular"),    # shift-invariant: one 8x8 cell per input
], ids=["fc", "cnn-zero-strided", "cnn-reflect", "cnn-circular"])
def test_equals_annealed_without_merges(arch):
    """No pooling or sum after a ReLU: the annealed path sum is exact at every input (THEORY 4c),
    so the infinite-width value equals the exact engine's per coordinate, with no spread over x."""
    res = infinite_width(arch, n_inputs=2, seed=1)
    annealed = analyse(arch).outputs[0]
    np.testing.assert_allclose(res.grad_sq, np.asarray(annealed.grad_sq.to_numpy(), float).reshape(arch.input_shape),
                               rtol=1e-10, atol=1e-15)
    assert res.exact and "annealed" in res.exact_reason
    assert res.grad_sq_total_se < 1e-12


@pytest.mark.parametrize("depth,k", sorted(REFERENCE))
def test_issue_reference_values(depth, k):
    res = infinite_width(pooled(depth, k), n_inputs=256 if k == 4 else 64, seed=0)   # a 4x4 cell: more inputs
    assert abs(res.grad_sq_total / REFERENCE[depth, k] - 1) < 0.003
    assert res.grad_sq_total_se / res.grad_sq_total < 0.0008
    assert res.period == (k, k) and res.exact == (depth == 1)
    # shift invariance: every position of a channel has the same value (one cell, tiled)
    assert np.allclose(res.grad_sq[:, :k, :k], res.grad_sq[:, -k:, -k:])


def test_shift_invariance_matches_all_positions(monkeypatch):
    """Computing one cell per input (circular padding) and every position give the same mean."""
    arch = pooled(1, 4, channels=4)
    cell = infinite_width(arch, n_inputs=32, seed=3)
    monkeypatch.setattr(iw, "_period", lambda arch: None)
    full = infinite_width(arch, n_inputs=32, seed=3)
    assert full.period is None
    assert abs(cell.grad_sq_total - full.grad_sq_total) < 4 * math.hypot(cell.grad_sq_total_se, full.grad_sq_total_se)


def _z(pred: float, m) -> float:
    mean, se = m.mean_se("grad_logit_l2_sq")
    return (mean - pred) / se


def test_monte_carlo_one_hidden_layer_exact_claim():
    """One hidden conv layer + 8x8 pool: exact at any width; 4 channels measured with 40k networks.
    The prediction passes within 3.5 SE; the annealed 2/64 is rejected by the same test."""
    arch = pooled(1, 8, channels=4)
    pred = infinite_width(arch, n_inputs=64, seed=0)
    assert pred.exact
    m = measure(arch, MeasureOptions(nets=40_000, seed=11, device="cpu"))
    assert abs(_z(pred.grad_sq_total, m)) < 3.5
    assert abs(_z(2 / 64, m)) > 3.5


@pytest.mark.slow
def test_finite_width_trend_two_layers():
    """Two conv layers: the measured excess over the infinite-width value shrinks from C=4 to C=16."""
    arch4, arch16 = pooled(2, 8, channels=4), pooled(2, 8, channels=16)
    pred = infinite_width(arch4, n_inputs=64, seed=0).grad_sq_total
    assert pred == pytest.approx(infinite_width(arch16, n_inputs=64, seed=0).grad_sq_total, rel=1e-12)
    means = []
    for arch in (arch4, arch16):
        mean, se = measure(arch, MeasureOptions(nets=30_000, seed=5, device="cpu")).mean_se("grad_logit_l2_sq")
        means.append((mean - pred, se))
    (dev4, se4), (dev16, se16) = means
    assert dev4 > 5 * se4 and dev4 - dev16 > 3 * math.hypot(se4, se16)


def test_resnet_sum_is_linear():
    """A residual sum of independent branches adds the kernels; the family runs and is not exact."""
    arch = make_arch("resnet", 6, channels=4, blocks=1, padding="circular")
    res = infinite_width(arch, n_inputs=2)
    assert isinstance(res, InfiniteWidth) and np.isfinite(res.grad_sq).all() and not res.exact
    assert res.grad_sq_total > 0


def test_unsupported_and_too_big(monkeypatch):
    with pytest.raises(UnsupportedLayerError, match="maxpool2.*max pooling"):
        infinite_width(Arch((1, 4, 4), (Conv(2), MaxPool(2), Dense(1, activation=None))))
    with pytest.raises(UnsupportedLayerError, match="BatchNorm"):
        infinite_width(Arch((1, 4, 4), (Conv(2, batchnorm=True), Dense(1, activation=None))))
    block = Residual((Conv(2), Conv(2, activation=None)), activation="relu")
    with pytest.raises(UnsupportedLayerError, match="non-Gaussian"):
        infinite_width(Arch((1, 4, 4), (Conv(2), block, block, Dense(1, activation=None))))
    monkeypatch.setattr(iw, "MEMORY_BUDGET", 10_000)
    with pytest.raises(ExactLimitError, match="position pairs"):
        infinite_width(make_arch("cnn", 16, channels=2))
    # the kernels fit but not one row of coordinates: the hint is to sample coordinates
    arch = make_arch("cnn-avgpool", 16, channels=2)
    geos, _ = iw._geometry(arch, (np.arange(16), np.arange(16)))
    fixed, per_row, _ = iw._budget_rows(arch, geos, 16)
    monkeypatch.setattr(iw, "MEMORY_BUDGET", fixed + per_row // 2)
    with pytest.raises(ExactLimitError, match=r"one row of input coordinates.*coordinates=N"):
        infinite_width(arch, n_inputs=2, coordinates="all")
    assert infinite_width(arch, n_inputs=2, coordinates=48).coordinate_fraction < 1   # a sample fits
    assert infinite_width(arch, n_inputs=2).coordinate_fraction < 1                   # and "auto" takes one


# -- channel concatenations (DenseNet blocks) --------------------------------------------------------

CONCATS = {
    "dense-block": Arch((2, 6, 6), (Conv(3), *dense_block(2, growth=2), Conv(3, 1), Dense(3, activation=None))),
    "block-then-residual": Arch((2, 6, 6), (Conv(4), *dense_block(1, growth=2, bottleneck=3),
                                            Residual((Conv(4, 3), Conv(4, 3, activation=None)),
                                                     shortcut=(Conv(4, 1, activation=None),)),
                                            Dense(3, activation=None))),
    "input-and-conv": Arch((2, 6, 6), (Concat(((Conv(3),), ())), Dense(2, activation=None))),
    # grouped convolutions read channels / groups exchangeable channels; var_factor scales the variance
    "grouped": Arch((3, 6, 6), (Conv(4), Conv(4, 3, groups=2), Conv(4, 3, groups=4, padding="circular"),
                                Dense(2, activation=None))),
    "grouped-1d-reflect": Arch((2, 7), (Conv(4, 3), Conv(8, 3, groups=2, padding="reflect"), Dense(2, activation=None))),
    "grouped-residual": Arch((4, 6, 6), (Conv(4, 3), Residual((Conv(4, 3, groups=4), Conv(4, 3, activation=None, groups=2))),
                                         Dense(3, activation=None))),
    "var-factor": Arch((2, 6, 6), (Conv(3), Conv(3, var_factor=Fraction(2, 3)), Dense(2, activation=None))),
}


@pytest.mark.parametrize("name", list(CONCATS))
def test_concatenations_groups_and_var_factors_without_merges_equal_the_annealed_value(name):
    """A layer reading a concatenation sums its branches' kernels by channels, a grouped one reads its
    group's channels, a var_factor scales the variance; without a merge after a ReLU the value must be
    the exact engine's (which reads every edge)."""
    arch = CONCATS[name]
    res = infinite_width(arch, n_inputs=2, seed=0)
    assert res.grad_sq_total == pytest.approx(float(analyse(arch).outputs[0].grad_sq_total), rel=1e-12)


def test_a_pooled_concatenation_matches_real_networks_and_not_the_annealed_value():
    """Three branches of one hidden layer (a 3x3 and a 1x1 convolution, the input) then an 8x8 pool:
    exact at any width, so the Monte Carlo of real networks (float64) must agree; the annealed 2/64
    must not."""
    arch = Arch((2, 8, 8), (Concat(((Conv(4, padding="circular"),), (Conv(2, 1, padding="circular"),), ())),
                            AvgPool(8), Dense(2, activation=None)))
    res = infinite_width(arch, n_inputs=32, seed=0)
    assert res.exact and "one hidden random layer" in res.exact_reason
    values = measure(arch, MeasureOptions(nets=40000, seed=3, device="cpu", dtype="float64")
                     ).per_net["grad_logit_l2_sq"][:, 0]
    assert exact_claim("iw", "", predicted=res.grad_sq_total, values=values).verdict == "pass"
    annealed = float(analyse(arch).outputs[0].grad_sq_total)
    assert exact_claim("annealed", "", predicted=annealed, values=values).verdict == "fail"


@pytest.mark.parametrize("padding", ["zero", "circular", "reflect"])
def test_strided_views_equal_the_tap_tables(monkeypatch, padding):
    """The fast path (each kernel entry a strided view of the source extended once) gives the same
    value, to rounding, as gathering through the tap tables, with strides, dilation and pools; and it
    is used for every convolution and pool axis (a representation that does not reproduce the tables
    is refused, so the check cannot pass by falling back everywhere)."""
    from initstats.empirical import _nngp_geometry as geo
    arch = Arch((2, 9, 9), (Conv(4, 3, padding=padding), Conv(4, 3, stride=2, dilation=2, padding=padding),
                            AvgPool(2), Conv(4, 3, padding=padding), Dense(1, activation=None)))
    geos, links = geo._geometry(arch, (np.arange(9), np.arange(9)))
    windowed = [ax for s, per in zip(arch.stages[1:], links[1:]) if s.kernel for ax in per[0]]
    assert windowed and all(ax.strided is not None for ax in windowed)
    for ax in windowed:
        ext, starts, step = ax.strided
        index = np.asarray(starts)[:, None] + step * np.arange(ax.taps.shape[1])[None, :]
        assert np.array_equal(index if ext is None else ext[index], ax.taps)
    fast = infinite_width(arch, n_inputs=2, seed=1)
    monkeypatch.setattr(geo, "_strided", lambda *args: None)
    slow = infinite_width(arch, n_inputs=2, seed=1)
    assert np.allclose(fast.grad_sq, slow.grad_sq, rtol=1e-12, atol=0)
    assert fast.grad_sq_total == pytest.approx(slow.grad_sq_total, rel=1e-13)


def _zero_pooled() -> Arch:
    return Arch((2, 12, 12), (Conv(4, 3), AvgPool(2), Conv(4, 3), AvgPool(6), Dense(1, activation=None)),
                name="zero-pooled")


def test_sampled_coordinates_are_unbiased_and_their_standard_error_is_calibrated():
    """Systematic samples of input coordinates (1 in 9 per input), drawn 300 times on the same 6
    inputs: the mean of the estimates equals the all-coordinates value (unbiased), and the stated
    standard errors cover it as often as they claim (z-scores with spread ~1, 99 % coverage).
    Zero padding: coordinates near the border differ, so a biased or mis-weighted sample shows."""
    arch = _zero_pooled()
    xs = np.random.default_rng(5).standard_normal((6, *arch.input_shape))
    full = infinite_width(arch, inputs=xs, coordinates="all")
    assert full.coordinate_fraction == 1.0 and not np.isnan(full.grad_sq).any()
    per_coord = full.grad_sq
    assert per_coord.std() / per_coord.mean() > 0.2  # the border matters: a flat map would test nothing
    est = [infinite_width(arch, inputs=xs, coordinates=32, seed=s) for s in range(300)]
    assert {e.coordinate_stride for e in est} == {(3, 3)} and est[0].coordinate_fraction == pytest.approx(1 / 9)
    vals = np.array([e.grad_sq_total for e in est])
    z = (vals - full.grad_sq_total) / np.array([e.grad_sq_total_se for e in est])
    assert abs(vals.mean() / full.grad_sq_total - 1) < 4 * vals.std() / math.sqrt(len(vals)) / full.grad_sq_total
    assert 0.7 < z.std() < 1.3 and np.mean(np.abs(z) > 2.576) < 0.04
    # a sample that forgets the 1/fraction weight is far off
    assert abs(vals.mean() / 9 / full.grad_sq_total - 1) > 0.5


def test_sampled_coordinates_per_coordinate_values_and_options():
    arch = _zero_pooled()
    few = infinite_width(arch, n_inputs=4, coordinates=32, seed=1)     # 4 of the 9 offsets: gaps
    assert np.isnan(few.grad_sq).any() and not np.isnan(few.grad_sq).all()
    every = infinite_width(arch, n_inputs=9, coordinates=32, seed=1)   # balanced: each offset once
    assert not np.isnan(every.grad_sq).any()
    assert infinite_width(arch, n_inputs=2, coordinates=10**6).coordinate_fraction == 1.0
    with pytest.raises(OptionError, match="n_inputs >= 2"):
        infinite_width(arch, n_inputs=1, coordinates=32)
    for bad in (0, 1, "some", 2.5, True):
        with pytest.raises(OptionError, match="coordinates="):
            infinite_width(arch, n_inputs=2, coordinates=bad)


def test_sampling_inside_the_shift_invariant_cell_is_unbiased():
    """Circular padding computes one cell of positions (4 x 4 here) and tiles it; sampling 1 in 4
    of the cell's positions on top stays unbiased (mean over 120 samples on the same inputs) and
    keeps the tiling (every coordinate of the input gets its cell's value)."""
    arch = pooled(1, 4, channels=4)
    xs = np.random.default_rng(2).standard_normal((4, *arch.input_shape))
    full = infinite_width(arch, inputs=xs, coordinates="all")
    est = [infinite_width(arch, inputs=xs, coordinates=12, seed=s) for s in range(120)]
    assert full.period == (4, 4) and est[0].coordinate_stride == (2, 2)
    vals = np.array([e.grad_sq_total for e in est])
    assert abs(vals.mean() - full.grad_sq_total) < 4 * vals.std() / math.sqrt(len(vals))
    assert vals.std() > 0                      # the sample does vary: the check above is not vacuous
    one = est[0].grad_sq
    assert np.array_equal(np.isnan(one[:, :4, :4]), np.isnan(one[:, 4:, 4:]))


def test_a_control_variate_keeps_the_sample_unbiased_and_narrows_it():
    """The exact annealed map as control (what with_infinite_width passes): 150 samples of 1 in 9
    coordinates stay unbiased against every coordinate, and spread less than without it; a control of
    the wrong shape is refused."""
    arch = _zero_pooled()
    xs = np.random.default_rng(5).standard_normal((6, *arch.input_shape))
    full = infinite_width(arch, inputs=xs, coordinates="all").grad_sq_total
    control = np.asarray(analyse(arch).outputs[0].grad_sq.to_numpy(), float).reshape(arch.input_shape)
    plain = np.array([infinite_width(arch, inputs=xs, coordinates=32, seed=s).grad_sq_total for s in range(150)])
    cv = [infinite_width(arch, inputs=xs, coordinates=32, seed=s, control=control) for s in range(150)]
    vals = np.array([e.grad_sq_total for e in cv])
    assert abs(vals.mean() - full) < 4 * vals.std() / math.sqrt(len(vals))
    assert vals.std() < 0.8 * plain.std()
    z = (vals - full) / np.array([e.grad_sq_total_se for e in cv])
    assert 0.6 < z.std() < 1.4
    with pytest.raises(OptionError, match="control has shape"):
        infinite_width(arch, n_inputs=2, coordinates=32, control=control[0])
