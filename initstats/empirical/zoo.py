"""Standard models in plain torch, for ``--module initstats.empirical.zoo:NAME`` and the report.

No torchvision build matching the pinned CPU torch installs here, so the standard layouts are
written out in plain torch, as a user would write them:

- :func:`resnet18_layout` -- the ResNet-18 layout (CIFAR stem, BasicBlocks with projection
  shortcuts, adaptive average pooling, no BatchNorm), width 4 by default; one instance serves
  every input size;
- :func:`vgg_like` -- a VGG-style stack of 3x3 convolutions with 2x2 max pooling (outside (H));
  takes the input size ``px``;
- :func:`densenet_block` -- a DenseNet-style block: a stem, two layers each concatenating their
  output with their input along channels (``torch.cat``), a 1x1 transition, global average
  pooling and a dense head; one instance serves every input size;
- :func:`conv1d_net` -- a 1-D conv net (circular convolutions, a mean over the length); one
  instance serves every length;
- :func:`mlp` -- a fully connected ReLU network with dropout (the identity at evaluation).

Every factory returns an ``nn.Module`` mapping ``(batch, *input_shape)`` to logits
``(batch, classes)``; the module's own weights are irrelevant to initstats, which draws fresh
He-initialised weights (zero biases) for every network it measures.

Examples
--------
>>> from initstats.empirical.modules import module_archs
>>> [a.input_shape for a in module_archs("initstats.empirical.zoo:resnet18_layout", [16, 32])]
[(3, 16, 16), (3, 32, 32)]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MODELS", "ResNetBlock", "ResNet18Layout", "resnet18_layout", "vgg_like", "DenseNetBlock",
           "densenet_block", "Conv1dNet", "conv1d_net", "mlp"]


class ResNetBlock(nn.Module):
    """torchvision's BasicBlock without BatchNorm: ``relu(conv(relu(conv(x))) + shortcut(x))``, the shortcut a
    strided 1x1 convolution when the block changes size or channels, else the identity.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    stride : int
        Stride of the first 3x3 convolution and of the projection shortcut.

    Examples
    --------
    >>> block = ResNetBlock(4, 8, stride=2)
    >>> tuple(block(torch.zeros(1, 4, 8, 8)).shape), type(block.shortcut).__name__
    ((1, 8, 4, 4), 'Conv2d')
    >>> type(ResNetBlock(4, 4, 1).shortcut).__name__
    'Identity'
    """

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False) if stride != 1 or c_in != c_out
                         else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))) + self.shortcut(x))


class ResNet18Layout(nn.Module):
    """The ResNet-18 layout (CIFAR stem): a 3x3 stem, four stages of two BasicBlocks (strides 1, 2, 2, 2,
    widths w, 2w, 4w, 8w), adaptive average pooling and a dense head; ``width=64`` is the original.

    Parameters
    ----------
    width : int
        Channels of the first stage.
    classes : int
        Logits.

    Examples
    --------
    >>> model = ResNet18Layout(width=2)
    >>> tuple(model(torch.zeros(2, 3, 16, 16)).shape), len(model.layers)
    ((2, 10), 8)
    """

    def __init__(self, width: int = 4, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1, bias=False)
        blocks, c = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            out = width * 2 ** i
            blocks += [ResNetBlock(c, out, stride), ResNetBlock(out, out, 1)]
            c = out
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(F.relu(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet18_layout(width: int = 4, classes: int = 10) -> nn.Module:
    """The ResNet-18 layout of :class:`ResNet18Layout` (one instance for every input size).

    Examples
    --------
    >>> tuple(resnet18_layout()(torch.zeros(1, 3, 32, 32)).shape)
    (1, 10)
    """
    return ResNet18Layout(width, classes)


def vgg_like(px: int, channels: int = 4, classes: int = 10) -> nn.Module:
    """Conv-ReLU pairs with 2x2 max pooling (outside (H)): a factory that takes the input size.

    Parameters
    ----------
    px : int
        Input side (a multiple of 4): the dense head reads ``channels * (px / 4)^2`` features.
    channels : int
        Channels of every convolution.
    classes : int
        Logits.

    Examples
    --------
    >>> tuple(vgg_like(8)(torch.zeros(1, 3, 8, 8)).shape)
    (1, 10)
    """
    c = channels
    return nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(c * (px // 4) ** 2, classes))


class DenseNetBlock(nn.Module):
    """A DenseNet-style block without BatchNorm: ``x = relu(conv3x3(input))``, then per layer
    ``x = cat([x, relu(conv3x3(x))], dim=1)`` (growth ``growth``), a 1x1 transition with its ReLU,
    global average pooling and a dense head.

    Parameters
    ----------
    channels : int
        Channels of the stem and of the transition.
    growth : int
        Channels each dense layer adds.
    layers : int
        Dense layers (each concatenates its output with its input).
    classes : int
        Logits.

    Examples
    --------
    >>> model = DenseNetBlock()
    >>> [conv.in_channels for conv in model.block], model.transition.in_channels
    ([4, 8], 12)
    >>> tuple(model(torch.zeros(1, 3, 8, 8)).shape)
    (1, 10)
    """

    def __init__(self, channels: int = 4, growth: int = 4, layers: int = 2, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.block = nn.ModuleList(nn.Conv2d(channels + i * growth, growth, 3, padding=1, bias=False)
                                   for i in range(layers))
        self.transition = nn.Conv2d(channels + layers * growth, channels, 1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        for conv in self.block:
            x = torch.cat([x, F.relu(conv(x))], 1)
        x = F.relu(self.transition(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def densenet_block(channels: int = 4, growth: int = 4, layers: int = 2, classes: int = 10) -> nn.Module:
    """The DenseNet-style block of :class:`DenseNetBlock` (one instance for every input size).

    Examples
    --------
    >>> tuple(densenet_block()(torch.zeros(1, 3, 16, 16)).shape)
    (1, 10)
    """
    return DenseNetBlock(channels, growth, layers, classes)


class Conv1dNet(nn.Module):
    """A 1-D conv net: circular 5-tap and 3-tap convolutions, functional ReLUs, a mean over the length.

    Parameters
    ----------
    channels : int
        Input channels are 2; both convolutions have ``channels`` outputs.
    classes : int
        Logits.

    Examples
    --------
    >>> tuple(Conv1dNet()(torch.zeros(4, 2, 16)).shape)
    (4, 3)
    """

    def __init__(self, channels: int = 6, classes: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(2, channels, 5, padding=2, padding_mode="circular")
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1, padding_mode="circular", bias=False)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        return self.fc(x.mean(dim=-1))


def conv1d_net(channels: int = 6, classes: int = 3) -> nn.Module:
    """The 1-D conv net of :class:`Conv1dNet` (one instance for every length).

    Examples
    --------
    >>> tuple(conv1d_net()(torch.zeros(1, 2, 32)).shape)
    (1, 3)
    """
    return Conv1dNet(channels, classes)


def mlp(features: int = 20, width: int = 32, classes: int = 5) -> nn.Module:
    """Two hidden ReLU layers of ``width`` units on ``features`` inputs, with dropout (the identity at evaluation).

    Examples
    --------
    >>> tuple(mlp()(torch.zeros(3, 20)).shape), tuple(mlp(features=64)(torch.zeros(1, 64)).shape)
    ((3, 5), (1, 5))
    """
    return nn.Sequential(nn.Flatten(), nn.Linear(features, width), nn.ReLU(), nn.Dropout(0.1), nn.Linear(width, width),
                         nn.ReLU(inplace=True), nn.Linear(width, classes))


#: the zoo's factories by name, with a one-line description each
MODELS: dict[str, tuple[object, str]] = {
    "resnet18_layout": (resnet18_layout, "ResNet-18 layout: CIFAR stem, BasicBlocks with projection shortcuts, "
                                         "adaptive average pool, no BatchNorm"),
    "densenet_block": (densenet_block, "DenseNet-style block: two layers concatenating their output with their "
                                       "input (cat), 1x1 transition, global average pool"),
    "vgg_like": (vgg_like, "VGG-style stack: 3x3 convolutions with 2x2 max pooling"),
    "conv1d_net": (conv1d_net, "1-D conv net: circular convolutions, a mean over the length"),
    "mlp": (mlp, "MLP: two hidden ReLU layers with dropout"),
}
