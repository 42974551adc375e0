"""The naive baseline: a Python loop over networks, each a fresh ``torch.nn.Sequential`` of real
torch layers built for that one network, one input, the input gradients of one logit and of the
cross-entropy loss."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from _timing import CPU, sync
from initstats.empirical.ensemble import ArchEnsemble
from initstats.spec import Arch

__all__ = ["NaiveTimer", "check_naive_matches", "naive_layers", "naive_net", "naive_sample"]


def naive_layers(arch: Arch, device: torch.device = CPU) -> list[tuple[nn.Module, int]]:
    """Real torch layers for one network of ``arch`` (uninitialised, on ``device``), with the stage
    index of each weight layer (-1 for the others).  Covers the stages ``fc`` and ``cnn`` with zero
    padding use."""
    modules: list[tuple[nn.Module, int]] = []
    flat = False
    for s in arch.stages[1:]:
        src = arch.stages[s.sources[0]]
        if s.is_conv:
            if s.padding != "zero" or len(s.axes) != 2:
                raise ValueError("the naive baseline covers 2-D zero-padded convolutions only")
            mod: nn.Module = torch.nn.utils.skip_init(nn.Conv2d, src.channels, s.channels, s.kernel, stride=s.stride,
                                                      padding=s.pad, dilation=s.dilation, bias=False, device=device)
        elif s.is_dense:
            if not flat:
                modules.append((nn.Flatten(), -1))
                flat = True
            mod = torch.nn.utils.skip_init(nn.Linear, src.size, s.channels, bias=False, device=device)
        else:
            raise ValueError(f"the naive baseline does not cover {s.kind} stages")
        mod.weight.requires_grad_(False)
        modules.append((mod, s.index))
        if s.kind == "relu":
            modules.append((nn.ReLU(), -1))
        elif s.kind != "linear":
            raise ValueError(f"the naive baseline does not cover {s.kind} stages")
    return modules


def naive_net(arch: Arch, g: torch.Generator, device: torch.device) -> nn.Sequential:
    """A fresh network with He weights (``kaiming_normal_``, fan-in: variance 2/fan_in), for one sample."""
    modules = naive_layers(arch, device)
    for mod, idx in modules:
        if idx >= 0:
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu", generator=g)
    return nn.Sequential(*(m for m, _ in modules))


def naive_sample(arch: Arch, g: torch.Generator, device: torch.device) -> tuple[float, float]:
    """One sample of the naive loop; returns (seconds building the network, seconds computing)."""
    sync(device)
    t0 = time.perf_counter()
    net = naive_net(arch, g, device)
    sync(device)
    t1 = time.perf_counter()
    x = torch.randn((1, *arch.input_shape), generator=g, device=device).requires_grad_(True)
    label = torch.randint(0, arch.num_classes, (1,), generator=g, device=device)
    out = net(x)
    grad, = torch.autograd.grad(out[:, 0].sum(), x, retain_graph=True)
    grad_loss, = torch.autograd.grad(F.cross_entropy(out, label, reduction="sum"), x)
    sync(device)
    t2 = time.perf_counter()
    if not (torch.isfinite(grad).all() and torch.isfinite(grad_loss).all()):
        raise AssertionError(f"{arch.name}: non-finite input gradient in the naive loop")
    return t1 - t0, t2 - t1


def check_naive_matches(arch: Arch) -> float:
    """Copy the weights of a 1-network ArchEnsemble into the naive net; the logits must agree.
    Returns the largest relative error of the logits."""
    ens = ArchEnsemble(arch, 1)
    ens.resample(torch.Generator().manual_seed(123))
    modules = naive_layers(arch)
    with torch.no_grad():
        for mod, idx in modules:
            if idx >= 0:
                w = ens.weights[idx]
                mod.weight.copy_(w[0].t() if isinstance(mod, nn.Linear) else w)
    net = nn.Sequential(*(m for m, _ in modules))
    x = torch.randn((1, *arch.input_shape), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = ens(x.unsqueeze(1))[0, 0]
        got = net(x)[0]
    scale = float(ref.abs().max())
    err = float((ref - got).abs().max()) / max(scale, 1e-30)
    assert torch.allclose(got, ref, rtol=1e-4, atol=1e-5 * scale), (
        f"{arch.name} {arch.px} px: the naive network's logits differ from ArchEnsemble's "
        f"(max relative error {err:.2e})")
    return err


class NaiveTimer:
    """The naive loop, timed in rounds of at least ``min_nets`` networks, after ``warm`` untimed ones.

    :meth:`accept` adds a round that stands to the totals: ``nets``, ``seconds`` and ``init`` (the
    seconds spent building and initialising the networks).
    """

    def __init__(self, arch: Arch, warm: int, min_nets: int, device: torch.device) -> None:
        self.arch, self.min_nets, self.device = arch, min_nets, device
        self.g = torch.Generator(device=device).manual_seed(3)
        for _ in range(warm):
            naive_sample(arch, self.g, device)
        self.nets, self.seconds, self.init = 0, 0.0, 0.0

    def round(self, min_seconds: float) -> tuple[int, float, float]:
        """Networks until ``min_nets`` and ``min_seconds``: (networks, seconds, seconds building them)."""
        nets, t_init, t_comp = 0, 0.0, 0.0
        while nets < self.min_nets or t_init + t_comp < min_seconds:
            a, b = naive_sample(self.arch, self.g, self.device)
            t_init += a
            t_comp += b
            nets += 1
        return nets, t_init + t_comp, t_init

    def accept(self, nets: int, total: float, init: float) -> None:
        self.nets += nets
        self.seconds += total
        self.init += init

    @property
    def rate(self) -> float:
        """Samples per second over the accepted rounds."""
        return self.nets / self.seconds
