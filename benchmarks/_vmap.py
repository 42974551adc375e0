"""The ``torch.func`` alternative to the grouped-convolution ensemble: the user's own ``nn.Module`` run by
``torch.func.functional_call`` under ``torch.func.vmap`` over stacked, freshly drawn parameter sets.

:class:`VmapEnsemble` draws ``n`` networks at a time (He weights: ``kaiming_normal_``'s law, fan-in, ReLU
gain, variance 2/fan_in; zero biases; every other parameter at the module's own default value, e.g.
BatchNorm's weight 1 and bias 0), one input ``x ~ N(0, I)`` and one uniform label per network, and
returns per network ``||grad_x f_0||^2`` and ``||grad_x L||^2`` (``L`` the cross-entropy loss).  One
forward pass per network under :func:`torch.func.vjp` gives both gradients: the cotangent of logit 0
and the gradient of the loss with respect to the logits (:func:`torch.func.grad` of
``F.cross_entropy``), each pulled back through the same ``vjp_fn``, which is what ``measure()`` and the
naive loop do with ``retain_graph=True``.

:func:`nchw_engine` runs ``measure()`` with the ensemble's channels-last conversion of 2-D inputs turned
off, a diagnostic: it tells the batching method (grouped convolutions against vmap) apart from the memory
layout (vmap's convolutions run in the default NCHW layout).

:func:`check_same_weights` evaluates a few networks of a chunk one at a time, with the same weights,
inputs and labels, by plain ``torch.autograd`` on the model itself, so that the timed code is shown to compute
what it claims (not only the same law).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vjp, vmap

__all__ = ["VmapEnsemble", "check_same_weights", "engine_layout_switch", "nchw_engine"]

_HE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class VmapEnsemble:
    """``n`` networks of ``model`` at a time: stacked parameters, ``vmap(functional_call)``."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], num_classes: int,
                 device: torch.device, seed: int = 5) -> None:
        self.model = copy.deepcopy(model).to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.shape, self.k, self.device = tuple(input_shape), num_classes, device
        self.buffers = dict(self.model.named_buffers())
        # name -> ("he", std) | ("zero", None) | ("keep", default value)
        self.rules: dict[str, tuple[str, object]] = {}
        for mname, m in self.model.named_modules():
            for pname, p in m.named_parameters(recurse=False):
                full = f"{mname}.{pname}" if mname else pname
                if isinstance(m, _HE) and pname == "weight":
                    fan_in = p[0].numel()
                    self.rules[full] = ("he", math.sqrt(2.0 / fan_in))
                elif isinstance(m, _HE) and pname == "bias":
                    self.rules[full] = ("zero", None)
                else:
                    self.rules[full] = ("keep", p.detach().clone())
        self.shapes = {name: tuple(p.shape) for name, p in self.model.named_parameters()}
        self.g = torch.Generator(device=device).manual_seed(seed)
        self._batched = vmap(self._one, in_dims=(0, 0, 0), randomness="error")

    def draw(self, n: int) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """``n`` fresh parameter sets (stacked on a leading axis), inputs ``(n, *shape)`` and labels ``(n,)``."""
        params = {}
        for name, (rule, arg) in self.rules.items():
            shape = (n, *self.shapes[name])
            if rule == "he":
                params[name] = torch.randn(shape, generator=self.g, device=self.device).mul_(arg)
            elif rule == "zero":
                params[name] = torch.zeros(shape, device=self.device)
            else:
                params[name] = arg.expand(shape)  # type: ignore[union-attr]
        x = torch.randn((n, *self.shape), generator=self.g, device=self.device)
        labels = torch.randint(0, self.k, (n,), generator=self.g, device=self.device)
        return params, x, labels

    def _logits(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """One network's logits ``(K,)`` for one input (a batch of 1 inside the model)."""
        return functional_call(self.model, (params, self.buffers), (x.unsqueeze(0),))[0]

    def _one(self, params: dict[str, torch.Tensor], x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """``(||grad_x f_0||^2, ||grad_x L||^2)`` for one network and one input."""
        out, pull = vjp(lambda inp: self._logits(params, inp), x)
        g0, = pull(F.one_hot(torch.zeros((), dtype=torch.long, device=x.device), self.k).to(out.dtype))
        dl = grad(lambda o: F.cross_entropy(o, label, reduction="sum"))(out)
        gl, = pull(dl)
        return torch.stack((g0.square().sum(), gl.square().sum()))

    def __call__(self, params: dict[str, torch.Tensor], x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``(n, 2)``: per network ``||grad_x f_0||^2`` and ``||grad_x L||^2``."""
        return self._batched(params, x, labels)

    def sample(self, n: int) -> torch.Tensor:
        """``n`` fresh networks, one input each: ``(n, 2)`` as :meth:`__call__`."""
        return self(*self.draw(n))


def check_same_weights(ens: VmapEnsemble, params: dict[str, torch.Tensor], x: torch.Tensor, labels: torch.Tensor,
                       batched: torch.Tensor, nets: int = 2) -> float:
    """The largest relative difference between ``batched = ens(params, x, labels)`` and plain autograd on the
    model itself, network by network, with the same weights, inputs and labels (the first ``nets`` networks)."""
    worst = 0.0
    model = copy.deepcopy(ens.model)
    for i in range(min(nets, x.shape[0])):
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(params[name][i])
        xi = x[i:i + 1].clone().requires_grad_(True)
        out = model(xi)
        g0, = torch.autograd.grad(out[:, 0].sum(), xi, retain_graph=True)
        gl, = torch.autograd.grad(F.cross_entropy(out, labels[i:i + 1], reduction="sum"), xi)
        ref = torch.stack((g0.square().sum(), gl.square().sum())).double()
        worst = max(worst, float(((batched[i].double() - ref).abs() / ref.abs().clamp_min(1e-30)).max()))
    return worst


def engine_layout_switch() -> bool:
    """Whether :func:`nchw_engine` can switch the layout: ``ArchEnsemble.__call__`` converts its 2-D input
    with ``memory_format=torch.channels_last`` (read from its source, so a change there is noticed)."""
    from initstats.empirical.ensemble import ArchEnsemble

    return "memory_format=torch.channels_last" in inspect.getsource(ArchEnsemble.__call__)


@contextlib.contextmanager
def nchw_engine():
    """``torch.channels_last`` aliased to ``torch.contiguous_format`` while the block runs (the ensemble's
    conversion then keeps NCHW); nothing else in the benchmark reads it meanwhile."""
    saved = torch.channels_last
    torch.channels_last = torch.contiguous_format
    try:
        yield
    finally:
        torch.channels_last = saved
