"""One-step l_inf attacks (FGSM) against initialised networks: Lemma 2 at initialisation.

Lemma 2 says an l_p attack of size ``eps`` raises the loss, to first order, by
``eps * ||grad_x L||_q`` (``1/p + 1/q = 1``); for ``p = inf`` the optimal first-order attack is
``x + eps * sign(grad_x L)`` and the predicted increase ``eps * ||grad_x L||_1``.  For each
network and each ``eps`` this module measures the true increase ``L(x + eps sign g) - L(x)`` next
to that first-order value, as means with standard errors over independent networks.

The attack needs several forward passes through the *same* network, so dense layers are drawn
explicitly here (no implicit sampling).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..errors import OptionError
from ..spec import Arch
from ..measurement import MeasureOptions
from .common import strict_numerics
from .ensemble import ArchEnsemble
from .sampling import chunks, plan

__all__ = ["fgsm"]


def fgsm(arch: Arch, eps: Sequence[float], options: MeasureOptions | None = None) -> pd.DataFrame:
    """True and first-order loss increase of one-step l_inf attacks, per ``eps``.

    Parameters
    ----------
    arch : Arch
    eps : sequence of float
        Attack sizes ``eps_inf`` (positive).
    options : MeasureOptions
        ``nets`` (required), ``seed``, ``device``, ``dtype``, ``init``, ``inputs``, ``inputs_per_net``.

    Returns
    -------
    pandas.DataFrame
        One row per ``eps``: ``arch, d, px, eps, true_mean, true_se, first_order_mean,
        first_order_se, ratio_mean, ratio_se, n_nets`` where ``ratio`` is the per-network ratio of
        the mean true increase to the mean first-order increase over its inputs.

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> df = fgsm(make_arch("cnn", 8, channels=2), [1e-4], MeasureOptions(nets=8, device="cpu"))
    >>> bool(abs(df["ratio_mean"].iloc[0] - 1) < 0.05)
    True
    """
    opt = options or MeasureOptions()
    if opt.nets is None:
        raise OptionError("fgsm needs a fixed number of networks: MeasureOptions(nets=N)")
    eps = [float(e) for e in eps]
    if not eps or any(not (e > 0 and math.isfinite(e)) for e in eps):
        raise OptionError(f"eps={eps!r}: attack sizes must be positive numbers")
    p = plan(arch, opt)
    true_inc = np.zeros((0, len(eps)))
    first = np.zeros((0, len(eps)))

    def explicit(n: int) -> ArchEnsemble:  # the attack reuses each network: dense layers drawn explicitly
        return ArchEnsemble(arch, n, init=opt.init, device=p.device, dtype=p.dtype, implicit_dense=False)

    with strict_numerics(p.device):
        for c in chunks(p, opt, opt.nets, make=explicit):
            n, x, ens = c.nets, c.x, c.ensemble

            def loss_of(inp: torch.Tensor) -> torch.Tensor:
                out = ens(inp)  # type: ignore[operator]
                return F.cross_entropy(out.reshape(-1, p.k_total), c.labels.reshape(-1),
                                       reduction="none").reshape(p.batch, n)

            base = loss_of(x)
            grad, = torch.autograd.grad(base.sum(), x)
            with torch.no_grad():
                l1 = grad.reshape(p.batch, n, -1).abs().sum(-1)
                direction = grad.sign()
                t_rows, f_rows = [], []
                for e in eps:
                    t_rows.append((loss_of(x + e * direction) - base).mean(0))  # per network, mean over inputs
                    f_rows.append((e * l1).mean(0))
                true_inc = np.concatenate([true_inc, torch.stack(t_rows, 1).double().cpu().numpy()])
                first = np.concatenate([first, torch.stack(f_rows, 1).double().cpu().numpy()])
    n_nets = len(true_inc)
    rows = []
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(first > 0, true_inc / first, np.nan)
    for k, e in enumerate(eps):
        r = ratio[:, k][np.isfinite(ratio[:, k])]
        rows.append({
            "arch": arch.name, "d": arch.d, "px": arch.px, "eps": e,
            "true_mean": true_inc[:, k].mean(), "true_se": true_inc[:, k].std(ddof=1) / math.sqrt(n_nets),
            "first_order_mean": first[:, k].mean(), "first_order_se": first[:, k].std(ddof=1) / math.sqrt(n_nets),
            "ratio_mean": r.mean() if len(r) else math.nan,
            "ratio_se": r.std(ddof=1) / math.sqrt(len(r)) if len(r) > 1 else math.nan,
            "n_nets": n_nets,
        })
    return pd.DataFrame(rows)
