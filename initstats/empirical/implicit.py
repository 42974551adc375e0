"""Dense layers with implicit Gaussian weights: exact in distribution, without drawing the matrix.

A dense layer ``z = W h`` with i.i.d. ``N(0, s^2)`` weights (``out x in``) costs ``out * in``
random numbers per network to draw, which dominates fully connected ensembles on a CPU
(``Tensor.normal_`` runs on one thread).  But a measurement only ever sees ``W`` through the
pre-activations ``Z = W H`` of the network's ``B`` inputs ``H`` (``in x B``) and through the
products ``W^T G`` with the back-propagated cotangents ``G``.  Their joint law can be sampled
directly:

- forward: the rows of ``Z`` are i.i.d. ``N(0, s^2 H^T H)``, so ``Z = s E L^T`` with
  ``L L^T = H^T H`` and ``E`` an ``out x B`` standard normal matrix;
- given ``Z``, ``W = Z H^+ + s Y (I - P_H)`` with ``P_H`` the projection onto the span of ``H``
  and ``Y`` an independent ``out x in`` standard normal matrix, so
  ``W^T G = (H^+)^T Z^T G + s (I - P_H) Y^T G``;
- ``Y^T G`` is linear in ``G``: the cotangents of successive backward passes are orthonormalised
  (Gram-Schmidt) and each new direction ``q`` gets a fresh ``Y^T q ~ N(0, I_in)``, so every
  backward pass sees the same ``Y``.

Each network then costs ``O((in + out) * B)`` random numbers per cotangent direction instead of
``out * in``; the statistics of ``(Z, W^T G)`` -- hence of every input gradient -- are exactly
those of an explicitly drawn ``W``.  Requirements: ``B <= in`` with linearly independent inputs
(true almost surely for continuous inputs), and ``W`` used only in this product.
"""

from __future__ import annotations

import torch

__all__ = ["implicit_dense"]


class _State:
    """Per-layer memory of the cotangent directions already sampled (shared across backward calls)."""

    def __init__(self) -> None:
        self.q: torch.Tensor | None = None  # (n, k, out): orthonormal cotangent directions
        self.v: torch.Tensor | None = None  # (n, k, in): Y^T q for each direction


class _ImplicitDense(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: torch.Tensor, std: float, out_features: int, generator: torch.Generator) -> torch.Tensor:
        # h: (B, n, in) -> per network (n, in, B)
        hb = h.permute(1, 2, 0)
        hd = hb.double()
        gram = hd.transpose(1, 2) @ hd  # (n, B, B)
        # a tiny ridge keeps the factorisation defined when an input is 0 or two inputs coincide
        # after a layer (e.g. every ReLU off); relative 1e-10, it is below float32 precision
        eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
        ridge = 1e-10 * gram.diagonal(dim1=1, dim2=2).mean(-1, keepdim=True).unsqueeze(-1) + 1e-300
        chol = torch.linalg.cholesky(gram + ridge * eye)
        e = torch.empty((h.shape[1], out_features, h.shape[0]), device=h.device, dtype=h.dtype)
        e.normal_(generator=generator)
        z = std * e @ chol.transpose(1, 2).to(h.dtype)  # (n, out, B): rows ~ N(0, std^2 H^T H)
        ctx.save_for_backward(hb, z, chol)
        ctx.std, ctx.generator, ctx.state = std, generator, _State()
        return z.permute(2, 0, 1)  # (B, n, out)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        hb, z, chol = ctx.saved_tensors
        state: _State = ctx.state
        g = grad.permute(1, 2, 0)  # (n, out, B): cotangents, one column per input
        gt = g.transpose(1, 2)  # (n, B, out)
        # Y^T g for each column: project on earlier directions, fresh normals for what is new
        if state.q is None:
            resid, coef = gt, None
        else:
            coef = gt @ state.q.transpose(1, 2)  # (n, B, k)
            resid = gt - coef @ state.q
        # orthonormal basis of the new directions (SVD: robust when the columns are dependent, e.g.
        # a ReLU logit off for some inputs); directions below round-off are dropped (zeroed)
        u, sv, _ = torch.linalg.svd(resid.transpose(1, 2).double(), full_matrices=False)  # (n, out, r)
        scale = gt.double().abs().amax(dim=(1, 2)).unsqueeze(-1)
        keep = sv > 1e-9 * torch.clamp(scale, min=1e-300) * max(resid.shape[1], resid.shape[2])
        q_new = (u * keep.unsqueeze(1)).transpose(1, 2).to(g.dtype)  # (n, r, out)
        c = q_new @ resid.transpose(1, 2)  # (n, r, B): resid = q_new^T c
        v_new = torch.empty((g.shape[0], q_new.shape[1], hb.shape[1]), device=g.device, dtype=g.dtype)
        v_new.normal_(generator=ctx.generator)
        yt_g = c.transpose(1, 2) @ v_new  # (n, B, in): rows Y^T g_b
        if coef is not None:
            yt_g = yt_g + coef @ state.v
            state.q = torch.cat([state.q, q_new], dim=1)
            state.v = torch.cat([state.v, v_new], dim=1)
        else:
            state.q, state.v = q_new, v_new
        # W^T G = (H^+)^T Z^T G + s (I - P_H) Y^T G, with H^+ = (H^T H)^-1 H^T
        ztg = (z.transpose(1, 2) @ g).double()  # (n, B, B)
        coeff = torch.cholesky_solve(ztg, chol).to(g.dtype)  # (H^T H)^-1 Z^T G
        fixed = hb @ coeff  # (n, in, B)
        y = yt_g.transpose(1, 2)  # (n, in, B)
        proj = hb @ torch.cholesky_solve((hb.transpose(1, 2) @ y).double(), chol).to(g.dtype)
        grad_h = fixed + ctx.std * (y - proj)
        return grad_h.permute(2, 0, 1), None, None, None


def implicit_dense(h: torch.Tensor, std: float, out_features: int, generator: torch.Generator) -> torch.Tensor:
    """``W h`` for fresh ``W ~ N(0, std^2)`` per network, sampled implicitly (see the module docstring).

    ``h`` has shape ``(B, n_nets, in)``; the result ``(B, n_nets, out_features)``.  Backward passes
    (any number, e.g. one per logit and one for the loss) are consistent with one single ``W``.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> h = torch.randn(1, 4000, 16, generator=g)          # one input for each of 4000 networks, 16 features
    >>> z = implicit_dense(h, 0.25, 8, g)
    >>> z.shape
    torch.Size([1, 4000, 8])
    >>> ratio = (z ** 2).mean() / (0.25 ** 2 * (h ** 2).sum(-1).mean())    # E z_k^2 = std^2 ||h||^2
    >>> abs(ratio.item() - 1) < 0.05
    True
    """
    return _ImplicitDense.apply(h, std, out_features, generator)
