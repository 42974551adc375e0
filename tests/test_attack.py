"""One-step l_inf attacks (:func:`initstats.empirical.attack.fgsm`) against hand-computed loss increases.

Lemma 2 with p = inf: the attack ``x + eps sign(grad_x L)`` raises the cross-entropy loss by
``L(x + eps sign g) - L(x)`` (``true``), ``eps ||g||_1`` to first order (``first_order``).  The
tests compute both independently of the library: by hand for a two-class linear model at x = 0,
in float64 numpy for random linear models, and through the limit eps -> 0 for ReLU networks.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from initstats.empirical import attack
from initstats.empirical.attack import fgsm
from initstats.empirical.common import chunk_generator
from initstats.empirical.ensemble import ArchEnsemble
from initstats.empirical.measure import MeasureOptions
from initstats.errors import OptionError
from initstats.families import make_arch
from initstats.spec import Arch, Dense

F64 = torch.float64
COLUMNS = ["arch", "d", "px", "eps", "true_mean", "true_se", "first_order_mean", "first_order_se", "ratio_mean",
           "ratio_se", "n_nets"]


# --------------------------------------------------------------------------------------------
# by hand: two classes, two input coordinates, x = 0
# --------------------------------------------------------------------------------------------

A = math.log(3) / 4


class HandWeights(ArchEnsemble):
    """Every network gets ``W = [[a, -a], [a, -a]]`` (``(fan_in, classes)``, logits ``x @ W``)."""

    def resample(self, generator: torch.Generator) -> None:
        super().resample(generator)
        for w in self.weights.values():
            w.copy_(torch.tensor([[A, -A], [A, -A]], dtype=w.dtype).expand_as(w))


def test_fgsm_equals_the_hand_computed_loss_increase(tmp_path, monkeypatch):
    """Logits ``z = (a s, -a s)`` with ``s = x_1 + x_2``, at ``x = 0``: ``L(0) = ln 2`` whatever the label.

    Label 0: ``dL/dx_i = sum_k (q_k - [k = 0]) W_ik = (1/2 - 1) a + (1/2)(-a) = -a``, so
    ``||g||_1 = 2a`` and the attack moves to ``x = (-eps, -eps)``, ``z = (-2 a eps, 2 a eps)``,
    ``L = ln(1 + e^{4 a eps})``.  Label 1 is the mirror image.  With ``a = ln(3) / 4``:

    - eps = 1: true ``ln 4 - ln 2 = ln 2``; first order ``2 a = ln(3)/2``;
    - eps = 2: true ``ln 10 - ln 2 = ln 5``; first order ``ln 3``.

    Wrong implementations and what they would report at eps = 1: the sign of ``-grad`` (loss
    decreases) ``ln(4/3) - ln 2 < 0``; the sign of the logit gradient ``grad f_label`` (``(a, a)`` for
    label 0) the same decrease; ``eps ||g||_2`` as first order ``ln(3) / (2 sqrt 2)``; ``eps ||g||_inf``
    ``ln(3) / 4``; a step of ``eps g`` instead of ``eps sign g`` ``ln(1 + e^{4 a^2}) - ln 2 = 0.16``.
    """
    monkeypatch.setattr(attack, "ArchEnsemble", HandWeights)
    zeros = tmp_path / "zeros.npy"
    np.save(zeros, np.zeros((1, 2)))                    # every input drawn from this table is x = 0
    arch = Arch((2,), (Dense(2, activation=None),), name="hand")
    df = fgsm(arch, [1.0, 2.0], MeasureOptions(nets=5, chunk=3, inputs_per_net=2, inputs=zeros, device="cpu",
                                               dtype="float64", seed=4))
    assert list(df.columns) == COLUMNS and list(df["eps"]) == [1.0, 2.0]
    assert df["n_nets"].tolist() == [5, 5] and df["d"].tolist() == [2, 2] and df["arch"].tolist() == ["hand"] * 2
    np.testing.assert_allclose(df["true_mean"], [math.log(2), math.log(5)], rtol=1e-12)
    np.testing.assert_allclose(df["first_order_mean"], [math.log(3) / 2, math.log(3)], rtol=1e-12)
    np.testing.assert_allclose(df["ratio_mean"], [2 * math.log(2) / math.log(3), math.log(5) / math.log(3)],
                               rtol=1e-12)
    # every network and input gives the same numbers: no spread
    np.testing.assert_allclose(df[["true_se", "first_order_se", "ratio_se"]].to_numpy(), 0, atol=1e-14)


# --------------------------------------------------------------------------------------------
# float64 numpy reference: random linear models, several chunks
# --------------------------------------------------------------------------------------------

def _log_softmax(z: np.ndarray) -> np.ndarray:
    top = z.max(-1, keepdims=True)
    return z - top - np.log(np.exp(z - top).sum(-1, keepdims=True))


def numpy_fgsm(w: np.ndarray, x: np.ndarray, labels: np.ndarray, eps: list[float], direction: str = "loss",
               norm: str = "l1") -> tuple[np.ndarray, np.ndarray]:
    """Per network (rows) and eps (columns): mean over inputs of the true and first-order increase.

    ``w``: ``(nets, d, K)``; ``x``: ``(batch, nets, d)``; ``labels``: ``(batch, nets)``; logits
    ``x @ w``.  ``direction``/``norm`` select wrong variants (the sign of ``-grad L`` or of the
    labelled logit's gradient; ``||g||_2``) to show that the test below tells them apart.
    """
    onehot = np.eye(w.shape[2])[labels]                              # (batch, nets, K)

    def loss(inp: np.ndarray) -> np.ndarray:
        return -(_log_softmax(np.einsum("bnd,ndk->bnk", inp, w)) * onehot).sum(-1)

    q = np.exp(_log_softmax(np.einsum("bnd,ndk->bnk", x, w)))
    grad = np.einsum("ndk,bnk->bnd", w, q - onehot)                   # dL/dx = W (softmax - onehot)
    step = {"loss": np.sign(grad), "minus": -np.sign(grad),
            "logit": np.sign(np.einsum("ndk,bnk->bnd", w, onehot))}[direction]
    size = {"l1": np.abs(grad).sum(-1), "l2": np.sqrt((grad ** 2).sum(-1))}[norm]
    true = np.stack([(loss(x + e * step) - loss(x)).mean(0) for e in eps], 1)
    first = np.stack([(e * size).mean(0) for e in eps], 1)
    return true, first


def _summary(true: np.ndarray, first: np.ndarray) -> dict[str, np.ndarray]:
    n = len(true)
    ratio = true / first
    return {"true_mean": true.mean(0), "true_se": true.std(0, ddof=1) / math.sqrt(n),
            "first_order_mean": first.mean(0), "first_order_se": first.std(0, ddof=1) / math.sqrt(n),
            "ratio_mean": ratio.mean(0), "ratio_se": ratio.std(0, ddof=1) / math.sqrt(n)}


def _replay_linear(arch: Arch, nets: int, chunk: int, batch: int, seed: int):
    """Weights, inputs and labels ``fgsm`` draws: per chunk ``j`` the generator of ``(seed, j)`` gives
    the weights, then the inputs, then the labels (the stream of ``measure()``)."""
    ws, xs, ls = [], [], []
    for j, start in enumerate(range(0, nets, chunk)):
        n = min(chunk, nets - start)
        g = chunk_generator(seed, (j,), torch.device("cpu"))
        ens = ArchEnsemble(arch, n, dtype=F64)
        ens.resample(g)
        ws.append(ens.weights[1].numpy().copy())
        xs.append(torch.empty(batch, n, *arch.input_shape, dtype=F64).normal_(generator=g).numpy())
        ls.append(torch.randint(0, arch.num_classes, (batch, n), generator=g).numpy())
    return np.concatenate(ws), np.concatenate(xs, 1), np.concatenate(ls, 1)


def test_fgsm_equals_a_float64_numpy_reference_on_linear_models():
    """Linear logits ``f = x @ W`` (5 inputs, 4 classes), 7 networks in chunks of 3, 3 inputs each.

    The numpy reference computes ``L(x + eps sign(grad L)) - L(x)`` directly (cross-entropy of the
    softmax, gradient ``W (softmax - onehot)``); every column of the frame must agree to 1e-9.  The
    same reference with the sign of ``-grad L``, with the sign of the labelled logit's gradient, or
    with ``eps ||g||_2`` differs from it by far more than that (checked here), so an ``fgsm`` with one
    of those errors fails; so does one that reuses a chunk's generator, labels or inputs.
    """
    arch = Arch((5,), (Dense(4, activation=None),), name="linear")
    nets, chunk, batch, seed, eps = 7, 3, 3, 12, [1e-3, 0.1, 1.0]
    df = fgsm(arch, eps, MeasureOptions(nets=nets, chunk=chunk, inputs_per_net=batch, device="cpu",
                                        dtype="float64", seed=seed))
    w, x, labels = _replay_linear(arch, nets, chunk, batch, seed)
    want = _summary(*numpy_fgsm(w, x, labels, eps))
    for col, values in want.items():
        np.testing.assert_allclose(df[col], values, rtol=1e-9, err_msg=col)
    assert df["n_nets"].tolist() == [nets] * 3 and df["eps"].tolist() == eps
    # to first order the attack gains exactly eps ||g||_1: ratio -> 1 as eps -> 0
    assert abs(df["ratio_mean"].iloc[0] - 1) < 1e-2
    # the wrong variants are far from the right answer (relative differences >> 1e-9)
    for variant in ({"direction": "minus"}, {"direction": "logit"}, {"norm": "l2"}):
        wrong = _summary(*numpy_fgsm(w, x, labels, eps, **variant))
        gap = max(np.max(np.abs(wrong[c] / want[c] - 1)) for c in ("true_mean", "first_order_mean"))
        assert gap > 0.1, (variant, gap)


# --------------------------------------------------------------------------------------------
# ReLU networks: the first-order value is the limit of the true increase
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", [make_arch("fc", 2, width=16, depth=2), make_arch("cnn", 8, channels=2)],
                         ids=["fc", "cnn"])
def test_fgsm_first_order_is_the_small_eps_limit_on_relu_networks(arch):
    """In float64, ``true / first_order -> 1`` as eps -> 0, with an error linear in eps (the softmax's
    curvature).  eps stays at or below 1e-5: at 1e-4 a step of the cnn already crosses a ReLU kink
    (measured: the deviation jumps from 3e-6 to 1e-2), and below 1e-6 float64 cancellation in
    ``L(x') - L(x)`` shows.  A first-order value with ``||g||_2`` (ratio ``||g||_1 / ||g||_2``, far
    from 1 at d = 12 and 192), a step against the gradient (ratio -1) or along a logit's gradient
    would fail.  First-order values are exactly linear in eps."""
    eps = [1e-6, 1e-5]
    df = fgsm(arch, eps, MeasureOptions(nets=20, inputs_per_net=2, device="cpu", dtype="float64", seed=1))
    dev = (df["ratio_mean"] - 1).abs().to_numpy()
    assert dev[0] < 1e-5, dev                   # measured: 6e-7 (fc), 3e-7 (cnn)
    # error linear in eps: ten times the step, ten times the deviation (measured: 10.0 and 10.2)
    assert 7 < dev[1] / dev[0] < 13, dev
    fo = df["first_order_mean"].to_numpy()
    np.testing.assert_allclose(fo / fo[0], np.array(eps) / eps[0], rtol=1e-12)
    assert (df["true_mean"] > 0).all()          # the attack raises the loss (a -grad step would lower it)
    assert (df["px"] == arch.px).all() and (df["d"] == arch.d).all()


def test_fgsm_rejects_bad_options():
    arch = make_arch("fc", 2, width=4, depth=1)
    with pytest.raises(OptionError, match="nets"):
        fgsm(arch, [0.1], MeasureOptions(device="cpu"))
    for eps in ([], [0.0], [-0.1], [math.inf], [0.1, math.nan]):
        with pytest.raises(OptionError, match="positive"):
            fgsm(arch, eps, MeasureOptions(nets=2, device="cpu"))
    assert isinstance(fgsm(arch, (0.1,), MeasureOptions(nets=2, device="cpu")), pd.DataFrame)
