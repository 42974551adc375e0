"""Implicit dense layers: consistent across backward passes and equal in law to explicit weights."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from initstats.empirical import ensemble, implicit
from initstats.empirical.ensemble import ArchEnsemble
from initstats.empirical.implicit import implicit_dense
from initstats.families import make_arch, with_logit_relu

F64 = torch.float64


@pytest.mark.parametrize("batch,n_in,n_out", [(1, 20, 7), (3, 20, 7), (16, 40, 10)])
def test_backward_passes_share_one_weight_matrix(batch, n_in, n_out):
    """W^T is linear across calls, and <h, W^T g> = <W h, g> exactly (the adjoint identity)."""
    g = torch.Generator().manual_seed(0)
    h = torch.randn(batch, 4, n_in, dtype=F64, generator=g).requires_grad_(True)
    z = implicit_dense(h, 0.3, n_out, g)
    g1, g2 = (torch.randn(batch, 4, n_out, dtype=F64, generator=g) for _ in range(2))
    a1, = torch.autograd.grad(z, h, g1, retain_graph=True)
    a2, = torch.autograd.grad(z, h, g2, retain_graph=True)
    a3, = torch.autograd.grad(z, h, 2 * g1 - 3 * g2, retain_graph=True)
    torch.testing.assert_close(a3, 2 * a1 - 3 * a2, rtol=1e-9, atol=1e-9)
    for a, c in ((a1, g1), (a2, g2)):
        torch.testing.assert_close((h * a).sum((0, 2)), (z * c).sum((0, 2)), rtol=1e-7, atol=1e-7)


def test_forward_has_the_variance_of_explicit_weights():
    g = torch.Generator().manual_seed(1)
    h = torch.randn(2, 20000, 30, dtype=F64, generator=g)
    h[1] = 0.6 * h[0] + 0.8 * h[1]  # correlated inputs: independent draws per input would be caught
    z = implicit_dense(h, 0.5, 3, g)
    # z_b = W h_b: Var = 0.25 |h_b|^2 and Cov(z_1, z_2) = 0.25 <h_1, h_2>
    scaled = z / (0.5 * h.norm(dim=2, keepdim=True))
    assert abs(scaled.var().item() - 1) < 0.02
    resid = (z[0] * z[1] - 0.25 * (h[0] * h[1]).sum(-1, keepdim=True)).reshape(-1)
    assert abs(resid.mean().item()) < 4 * resid.std().item() / math.sqrt(len(resid))
    assert (0.25 * (h[0] * h[1]).sum(-1)).mean().item() > 4  # the covariance tested is far from 0


def _gradient_stats(arch, implicit: bool, batch: int, seed: int, chunks: int = 12, n: int = 128):
    vals = []
    for j in range(chunks):
        ens = ArchEnsemble(arch, n, implicit_dense=implicit, dtype=F64)
        gen = torch.Generator().manual_seed(seed + j)
        ens.resample(gen)
        x = torch.randn(batch, n, *arch.input_shape, generator=gen, dtype=F64).requires_grad_(True)
        out = ens(x)
        gf, = torch.autograd.grad(out[..., 0].sum(), x, retain_graph=True)
        gl, = torch.autograd.grad(out.logsumexp(-1).sum(), x)
        vals.append(torch.stack([gf.square().flatten(2).sum(-1).mean(0), gl.square().flatten(2).sum(-1).mean(0),
                                 (gf * gl).flatten(2).sum(-1).mean(0)], 1))
    return torch.cat(vals).numpy()


def _arch(logit_relu: bool):
    arch = make_arch("fc", 4, width=48, depth=2)
    return with_logit_relu(arch) if logit_relu else arch


@functools.lru_cache(maxsize=None)
def _explicit(logit_relu: bool, batch: int) -> np.ndarray:
    return _gradient_stats(_arch(logit_relu), False, batch, seed=100)


def _z(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-sample z statistics of the three columns."""
    return (a.mean(0) - b.mean(0)) / np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))


@pytest.mark.parametrize("logit_relu,batch", [(False, 1), (True, 1), (True, 8), (False, 8)])
def test_implicit_and_explicit_weights_give_the_same_statistics(logit_relu, batch):
    """Two-sample z-tests on ||grad f||^2, ||grad L||^2 and <grad f, grad L> (the cross term checks
    that the two backward passes see the same weights); 99.9 % per statistic."""
    z = _z(_explicit(logit_relu, batch), _gradient_stats(_arch(logit_relu), True, batch, seed=500))
    assert np.all(np.abs(z) < 3.29), z


class _Forgetful:
    """A ``_State`` that forgets the cotangent directions: every backward pass draws its own ``Y``."""

    q = property(lambda self: None, lambda self, value: None)
    v = property(lambda self: None, lambda self, value: None)


WRONG_LAWS = {
    "fresh Y in every backward pass": lambda mp: mp.setattr(implicit, "_State", _Forgetful),
    "weight variance 5 % too large": lambda mp: mp.setattr(
        ensemble, "implicit_dense", lambda h, std, out, g: implicit_dense(h, std * math.sqrt(1.05), out, g)),
}


@pytest.mark.parametrize("logit_relu", [False, True])
@pytest.mark.parametrize("wrong", list(WRONG_LAWS))
def test_the_comparison_rejects_wrong_implicit_laws(wrong, logit_relu, monkeypatch):
    """The test above at the same sizes and seeds, with the implicit sampler broken on purpose.

    A fresh ``Y`` per backward pass leaves ||grad f||^2 and ||grad L||^2 unchanged in law (each
    pass alone sees Gaussian weights) and is caught only by the cross term (measured z: 11 and
    16); a 5 % larger weight variance moves ||grad f||^2 by 1.05^3 (measured max |z|: 8.4 and 5.3).
    """
    WRONG_LAWS[wrong](monkeypatch)
    z = _z(_explicit(logit_relu, 1), _gradient_stats(_arch(logit_relu), True, 1, seed=500))
    assert np.max(np.abs(z)) > 3.29, z
