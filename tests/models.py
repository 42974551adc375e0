"""Models written in plain torch, as a user would: for the ``--module`` tests and the CLI examples.

``initstats graph --module tests/models.py:conv1d_net --dims 16,32`` reads these factories.  A
factory with a ``px`` argument is called once per input size; one without serves every size.
The standard models (MLP, 1-D conv net, VGG stack, ResNet-18 layout) are those of
:mod:`initstats.empirical.zoo`, re-exported here so that ``tests/models.py:resnet18_layout`` keeps working.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from initstats.empirical.zoo import (Conv1dNet, ResNet18Layout, ResNetBlock, conv1d_net, mlp,
                                     resnet18_layout, vgg_like)
from initstats.spec import Arch, AvgPool, Concat, Conv, Dense, MaxPool, Residual

__all__ = ["BasicBlock", "Branchy", "branchy", "conv1d_net", "Conv1dNet", "densenet_block", "DenseNetBlock",
           "functional_net", "FunctionalNet", "mlp", "module_of", "projection_block", "ProjectionBlock",
           "residual_net", "ResidualNet", "resnet18_layout", "ResNet18Layout", "ResNetBlock", "vgg_like"]


class BasicBlock(nn.Module):
    """``x + conv(relu(conv(x)))``: an identity shortcut, no ReLU after the sum."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="circular")
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="circular")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x).relu())


class ResidualNet(nn.Module):
    """A stem, two identity-shortcut blocks, adaptive average pooling and a dense head."""

    def __init__(self, channels: int = 4, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1, padding_mode="circular")
        self.blocks = nn.Sequential(BasicBlock(channels), BasicBlock(channels))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        x = self.blocks(x)
        return self.fc(torch.flatten(self.pool(x), 1))


def residual_net() -> nn.Module:
    return ResidualNet()


class FunctionalNet(nn.Module):
    """Pooling and flattening written functionally: ``F.avg_pool2d``, ``F.max_pool2d``, ``x.view(x.size(0), -1)``."""

    def __init__(self, px: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * (px // 4) ** 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), kernel_size=2, stride=2)
        return self.fc(x.view(x.size(0), -1))


def functional_net(px: int) -> nn.Module:
    return FunctionalNet(px)


class ProjectionBlock(nn.Module):
    """A ResNet downsampling block: the shortcut is a strided 1x1 convolution, not the identity."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=2)
        self.fc = nn.Linear(c_out, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x))) + self.shortcut(x)
        return self.fc(F.relu(h).mean((2, 3)))


def projection_block() -> nn.Module:
    return ProjectionBlock(3, 8)


class _Layers(nn.Module):
    """An Arch's layers as torch modules (a residual block adds its input to its body's output)."""

    def __init__(self, arch: Arch) -> None:
        super().__init__()
        self.body = self._build(arch.layers, arch.input_shape[0], len(arch.input_shape) - 1)

    @classmethod
    def _build(cls, layers, channels: int, rank: int) -> nn.ModuleList:
        mods = nn.ModuleList()
        for layer in layers:
            if isinstance(layer, Conv):
                conv = (nn.Conv1d if rank == 1 else nn.Conv2d)(
                    channels, layer.out_channels, layer.kernel, layer.stride,
                    padding=layer.pad if layer.pad is not None else _same(layer), dilation=layer.dilation,
                    padding_mode={"zero": "zeros", "circular": "circular", "reflect": "reflect"}[layer.padding],
                    groups=layer.groups)
                mods.append(nn.Sequential(conv, nn.ReLU()) if layer.activation == "relu" else conv)
                channels = layer.out_channels
            elif isinstance(layer, Dense):
                dense = nn.Sequential(nn.Flatten(), nn.LazyLinear(layer.out_features))
                mods.append(nn.Sequential(dense, nn.ReLU()) if layer.activation == "relu" else dense)
                rank = 0
            elif isinstance(layer, (AvgPool, MaxPool)):
                mods.append(_Pool(layer, rank))
            elif isinstance(layer, Residual):
                shortcut = cls._build(layer.shortcut, channels, rank) if layer.shortcut else None
                mods.append(_Residual(cls._build(layer.body, channels, rank), shortcut, layer.activation))
                channels = _out_channels(layer.body, channels)
            elif isinstance(layer, Concat):
                mods.append(_Concat([cls._build(b, channels, rank) for b in layer.branches]))
                channels = sum(_out_channels(b, channels) for b in layer.branches)
        return mods

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.body:
            x = m(x)
        return x


def _same(layer: Conv):
    """The spec's default padding ``dilation * (kernel - 1) // 2``, per axis."""
    if isinstance(layer.kernel, int) and isinstance(layer.dilation, int):
        return layer.dilation * (layer.kernel - 1) // 2
    rank = len(layer.kernel) if isinstance(layer.kernel, tuple) else len(layer.dilation)  # type: ignore[arg-type]
    k = layer.kernel if isinstance(layer.kernel, tuple) else (layer.kernel,) * rank
    d = layer.dilation if isinstance(layer.dilation, tuple) else (layer.dilation,) * rank
    return tuple(di * (ki - 1) // 2 for ki, di in zip(k, d))


class _Pool(nn.Module):
    def __init__(self, layer, rank: int) -> None:
        super().__init__()
        adaptive = nn.AdaptiveAvgPool1d if rank == 1 else nn.AdaptiveAvgPool2d
        avg, mx = (nn.AvgPool1d, nn.MaxPool1d) if rank == 1 else (nn.AvgPool2d, nn.MaxPool2d)
        if layer.kernel is None:
            self.pool = adaptive(1) if isinstance(layer, AvgPool) else (nn.AdaptiveMaxPool1d(1) if rank == 1
                                                                        else nn.AdaptiveMaxPool2d(1))
        else:
            self.pool = (avg if isinstance(layer, AvgPool) else mx)(layer.kernel, layer.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


def _out_channels(layers, channels: int) -> int:
    for layer in layers:
        if isinstance(layer, Conv):
            channels = layer.out_channels
        elif isinstance(layer, Concat):
            channels = sum(_out_channels(b, channels) for b in layer.branches)
    return channels


class _Concat(nn.Module):
    def __init__(self, branches: list[nn.ModuleList]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for branch in self.branches:
            h = x
            for m in branch:
                h = m(h)
            outs.append(h)
        return torch.cat(outs, 1)


class _Residual(nn.Module):
    def __init__(self, body: nn.ModuleList, shortcut: nn.ModuleList | None, activation: str | None) -> None:
        super().__init__()
        self.body, self.shortcut, self.relu = body, shortcut, activation == "relu"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, s = x, x
        for m in self.body:
            h = m(h)
        for m in self.shortcut or ():
            s = m(s)
        y = s + h
        return F.relu(y) if self.relu else y


def module_of(arch: Arch) -> nn.Module:
    """A torch model computing ``arch`` (lazy dense layers materialised on a first call)."""
    model = _Layers(arch)
    with torch.no_grad():
        model(torch.zeros(1, *arch.input_shape))
    return model


class Branchy(nn.Module):
    """Two convolutions concatenated along channels (``cat``), then a mean over the positions."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], 1).mean((2, 3)))


def branchy() -> nn.Module:
    return Branchy()


class DenseNetBlock(nn.Module):
    """A DenseNet-style model without BatchNorm: a stem, a dense block of three layers (each
    ``x = cat([x, relu(conv3x3(x))], 1)``, growth 4), a 1x1 transition with 2x2 average pooling,
    a mean over the positions and a dense head."""

    def __init__(self, growth: int = 4, layers: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.block = nn.ModuleList(nn.Conv2d(8 + i * growth, growth, 3, padding=1, bias=False) for i in range(layers))
        self.transition = nn.Conv2d(8 + layers * growth, 8, 1, bias=False)
        self.fc = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        for conv in self.block:
            x = torch.cat([x, F.relu(conv(x))], 1)
        x = F.avg_pool2d(F.relu(self.transition(x)), 2)
        return self.fc(x.mean((2, 3)))


def densenet_block() -> nn.Module:
    return DenseNetBlock()
