"""Monte Carlo measurement of input-gradient statistics over independent networks.

For every network of a batched ensemble and every one of its inputs ``x`` (``N(0, I)`` by
default), the input gradients of the measured logits ``grad_x f_k`` and of the cross-entropy loss
``grad_x L`` (label uniform over the ``K`` classes) are reduced to the statistics of
:mod:`initstats.measurement` (``grad_logit_l2_sq`` = ``||grad f_k||_2^2`` and seven more) and to the
per-coordinate map ``E (d f_k / d x_i)^2``.  Inputs to one network are strongly correlated, so
every statistic is first averaged within a network (over its inputs and, for exchangeable logits,
over the measured logits); the reported mean and standard error are over *independent networks*.
With ``nets=None`` networks are drawn chunk by chunk until the relative standard error of
``E||grad f||^2`` reaches ``rel_se``, also as measured by the calibrated interval
(:class:`MeasureOptions`), or until ``max_nets`` or ``max_time``.

Randomness comes only from ``seed``: chunk ``j`` uses a generator derived from ``(seed, j)``
(:mod:`initstats.empirical.sampling`), so the same seed, options and device give the same
numbers.  On CUDA the run uses deterministic algorithms and no TF32
(:func:`~initstats.empirical.common.strict_numerics`), so that float32 means float32 there too
and reruns agree bit for bit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import OptionError
from ..inference import precision_reached
from ..measurement import (DEFAULT_REL_SE, LOGIT_STATISTICS, LOSS_STATISTICS, STATISTICS, MeasureOptions,
                           Measurement, detectable_rel_se)
from ..spec import Arch
from .common import freed_memory_kept, strict_numerics
from .sampling import Chunk, Plan, chunks, plan

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["STATISTICS", "LOGIT_STATISTICS", "LOSS_STATISTICS", "DEFAULT_REL_SE", "MeasureOptions",
           "Measurement", "Plan", "plan", "measure", "detectable_rel_se"]


def measure(network: Arch | nx.DiGraph, options: MeasureOptions | None = None,
            progress: Callable[[int, int], None] | None = None,
            coord_groups: np.ndarray | None = None) -> Measurement:
    """Draw independent initialised networks and measure their input-gradient statistics.

    On CUDA the run holds :func:`~initstats.empirical.common.strict_numerics` (no TF32,
    deterministic kernels); on a CPU :func:`~initstats.empirical.common.freed_memory_kept` (glibc
    keeps freed memory for the next chunk).  Both are process-wide while the run lasts and are
    undone when it returns.

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
    with strict_numerics(p.device), freed_memory_kept(p.device):
        return _measure(opt, p, progress, coord_groups)


class _Sums:
    """Per-chunk reduction of gradients to per-network values and running per-coordinate sums."""

    def __init__(self, p: Plan, coord_groups: np.ndarray | None) -> None:
        self.p = p
        self.n_out = 1 if p.exchangeable else p.n_logits
        self.stats: dict[str, list[np.ndarray]] = {s: [] for s in STATISTICS}
        self.coord_sum = torch.zeros((self.n_out, p.d), dtype=torch.float64, device=p.device)
        self.coord_sq = torch.zeros((self.n_out, p.d), dtype=torch.float64, device=p.device)
        self.input_mean: list[np.ndarray] = []
        self.input_ss: list[np.ndarray] = []
        self.group_parts: list[np.ndarray] = []
        self.groups_t, self.n_groups = None, 0
        if coord_groups is not None:
            coord_groups = np.asarray(coord_groups)
            if coord_groups.shape != (p.d,) or coord_groups.min() < 0:
                raise OptionError(f"coord_groups must hold one non-negative group index per input coordinate ({p.d})")
            self.groups_t = torch.as_tensor(coord_groups, dtype=torch.long, device=p.device)
            self.n_groups = int(coord_groups.max()) + 1

    def add(self, c: Chunk, eps: float) -> None:
        p, n, x = self.p, c.nets, c.x
        batch, d = p.batch, p.d
        out = c.ensemble(x)  # type: ignore[operator]
        per_logit = []
        for k in range(p.n_logits):
            grad, = torch.autograd.grad(out[..., k].sum(), x, retain_graph=True)
            per_logit.append(grad.reshape(batch, n, d).to(torch.float64))
        loss = F.cross_entropy(out.reshape(batch * n, p.k_total), c.labels.reshape(-1), reduction="sum")
        grad_loss, = torch.autograd.grad(loss, x)
        gl = grad_loss.reshape(batch, n, d).to(torch.float64)
        with torch.no_grad():
            gk = torch.stack(per_logit, dim=2)  # (batch, n, logits, d)
            l2sq = gk.square().sum(-1)
            values = {"grad_logit_l1": gk.abs().sum(-1), "grad_logit_l2_sq": l2sq, "grad_logit_l2": l2sq.sqrt(),
                      "grad_logit_linf": gk.abs().amax(-1)}
            for key, v in values.items():  # (batch, n, logits) -> (n, n_out)
                v = v.mean(0)
                self.stats[key].append((v.mean(1, keepdim=True) if p.exchangeable else v).cpu().numpy())
            loss_l1 = gl.abs().sum(-1)
            loss_values = {"grad_loss_l1": loss_l1, "grad_loss_l2": gl.square().sum(-1).sqrt(),
                           "grad_loss_linf": gl.abs().amax(-1), "damage_l1": eps * loss_l1}
            for key, v in loss_values.items():
                self.stats[key].append(v.mean(0).unsqueeze(1).cpu().numpy())
            sq = gk.square().mean(0)  # (n, logits, d)
            sq = sq.mean(1, keepdim=True) if p.exchangeable else sq
            self.coord_sum += sq.sum(0)
            self.coord_sq += sq.square().sum(0)
            if self.groups_t is not None:
                gs = torch.zeros((*sq.shape[:2], self.n_groups), dtype=torch.float64, device=p.device)
                self.group_parts.append(gs.index_add_(2, self.groups_t, sq).cpu().numpy())
            if batch > 1:
                per_input = l2sq.mean(2)  # (batch, n)
                means = per_input.mean(0)
                self.input_mean.append(means.cpu().numpy())
                self.input_ss.append((per_input - means).square().sum(0).cpu().numpy())

    def l2_sq(self) -> np.ndarray:
        return np.concatenate(self.stats["grad_logit_l2_sq"])

    def result(self, out_names: tuple[str, ...], seconds: float, stopped: str, rel_se: float | None) -> Measurement:
        p = self.p
        return Measurement(
            name=p.name, d=p.d, px=p.px, outputs=out_names,
            per_net={k: np.concatenate(v) for k, v in self.stats.items()},
            coord_sum=self.coord_sum.cpu().numpy(), coord_sq_sum=self.coord_sq.cpu().numpy(),
            inputs_per_net=p.batch, seconds=seconds, device=str(p.device),
            input_mean=np.concatenate(self.input_mean) if self.input_mean else None,
            input_ss=np.concatenate(self.input_ss) if self.input_ss else None,
            input_names=p.input_names,
            group_sums=np.concatenate(self.group_parts) if self.group_parts else None,
            stopped=stopped, rel_se=rel_se)


def _measure(opt: MeasureOptions, p: Plan, progress: Callable[[int, int], None] | None,
             coord_groups: np.ndarray | None) -> Measurement:
    """The sampling loop of :func:`measure`: chunks until ``nets``, ``rel_se``, ``max_nets`` or ``max_time``."""
    sums = _Sums(p, coord_groups)
    outs = p.outputs
    if p.exchangeable:
        out_names = (outs[0] if p.n_logits == 1 else f"mean over {outs[0]}..{outs[p.n_logits - 1]}",)
    else:
        out_names = tuple(outs[:p.n_logits])
    target = opt.nets if opt.nets is not None else opt.max_nets
    start = time.perf_counter()
    stopped = "nets" if opt.nets is not None else "max_nets"
    for c in chunks(p, opt, target):
        sums.add(c, opt.eps)
        done = c.done + c.nets
        if progress is not None:
            progress(done, target)
        if opt.nets is not None or done < opt.min_nets:
            continue
        if precision_reached(sums.l2_sq(), opt.rel_se):
            stopped = "rel_se"
            break
        if done < target and opt.max_time is not None and time.perf_counter() - start > opt.max_time:
            stopped = "max_time"
            break
    return sums.result(out_names, time.perf_counter() - start, stopped,
                       None if opt.nets is not None else opt.rel_se)
