"""The layer types of an architecture specification, each validated when it is made.

Every value is checked in ``__post_init__``; a bad one raises :class:`~initstats.errors.SpecError`
(or :class:`~initstats.errors.UnsupportedLayerError`) naming the layer, the value and what is
expected.  How layers fit together (shapes, padding against sizes) is checked when an
:class:`~initstats.spec.Arch` builds its stages (:mod:`initstats.spec.stages`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, TypeAlias

from ..errors import SpecError, UnsupportedLayerError

__all__ = ["PADDINGS", "ACTIVATIONS", "Padding", "IntOrTuple", "Dense", "Conv", "AvgPool", "MaxPool", "Residual",
           "Concat", "dense_block", "batchnorm_factor", "Layer"]

Padding = Literal["zero", "circular", "reflect"]
PADDINGS: tuple[str, ...] = ("zero", "circular", "reflect")
ACTIVATIONS: tuple[str | None, ...] = ("relu", None)
IntOrTuple: TypeAlias = int | tuple[int, ...]



def _check_positive(layer: str, name: str, value: IntOrTuple | None, *, allow_none: bool = False,
                    minimum: int = 1, allow_tuple: bool = True) -> None:
    if value is None and allow_none:
        return
    values = value if isinstance(value, tuple) and allow_tuple else (value,)
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in values):
        raise SpecError(
            f"{layer}: {name}={value!r} is invalid; expected an integer >= {minimum}"
            + (" or a tuple of them" if allow_tuple else "")
        )


def _check_flag(layer: str, name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise SpecError(f"{layer}: {name}={value!r} is invalid; expected True or False")


def _check_activation(layer: str, activation: str | None) -> None:
    if activation not in ACTIVATIONS:
        raise SpecError(f"{layer}: activation={activation!r} is invalid; expected 'relu' or None")


def _check_var_factor(layer: object, value: object) -> None:
    """Store ``var_factor`` as an exact positive Fraction (a float is read exactly, as ``Fraction(x)``)."""
    ok = (isinstance(value, (int, Fraction)) and not isinstance(value, bool)) or (
        isinstance(value, float) and math.isfinite(value))
    if not ok or value <= 0:  # type: ignore[operator]
        raise SpecError(f"{type(layer).__name__}: var_factor={value!r} is invalid; expected a positive exact number, "
                        "e.g. batchnorm_factor(1e-5) for an evaluation-mode BatchNorm after the layer")
    object.__setattr__(layer, "var_factor", Fraction(value))  # type: ignore[arg-type]


def batchnorm_factor(eps: float = 1e-5) -> Fraction:
    """The exact variance factor ``1/(1 + eps)`` of an evaluation-mode BatchNorm at initialisation.

    At its default initialisation (weight 1, bias 0, running mean 0, running variance 1) an
    evaluation-mode BatchNorm is ``y = x / sqrt(1 + eps)``: it multiplies the variance of the
    weights of the layer before it by ``1/(1 + eps)`` (``eps`` read exactly, ``Fraction(eps)``).
    Pass it as that layer's ``var_factor``.

    Examples
    --------
    >>> batchnorm_factor(0.5), abs(float(batchnorm_factor()) - 1 / (1 + 1e-5)) < 1e-15     # torch's eps=1e-5
    (Fraction(2, 3), True)
    >>> Conv(8, var_factor=batchnorm_factor(0.5)).var_factor
    Fraction(2, 3)
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float, Fraction)) or not eps >= 0 or eps == math.inf:
        raise SpecError(f"batchnorm_factor: eps={eps!r} is invalid; expected a finite number >= 0 (torch: 1e-5)")
    return 1 / (1 + Fraction(eps))


@dataclass(frozen=True)
class Dense:
    """A fully connected layer with ``out_features`` units; flattens its input.

    Parameters
    ----------
    out_features : int
        Number of units.
    activation : {'relu', None}
        ReLU after the weighted sum, or none (the logits have none).
    batchnorm : bool
        Batch-normalise the pre-activation before the ReLU (outside (H)).
    var_factor : Fraction
        Multiplies the variance of the weights (``gain / fan_in``): an evaluation-mode BatchNorm
        after the layer folds to :func:`batchnorm_factor`.  H3 fails unless it is 1.

    Examples
    --------
    >>> from initstats.spec import Arch
    >>> arch = Arch((3, 4, 4), (Dense(16), Dense(10, activation=None)))
    >>> [(s.kind, s.shape, s.fan_in) for s in arch.stages[1:]]        # flattens 3x4x4 = 48 inputs
    [('relu', (16,), 48), ('linear', (10,), 16)]
    >>> Dense(4, activation=None, batchnorm=True)
    Traceback (most recent call last):
        ...
    initstats.errors.UnsupportedLayerError: Dense: batchnorm=True needs activation='relu' (BatchNorm is supported only as conv/dense -> BatchNorm -> ReLU)
    """

    out_features: int
    activation: str | None = "relu"
    batchnorm: bool = False
    var_factor: Fraction = Fraction(1)

    def __post_init__(self) -> None:
        _check_positive("Dense", "out_features", self.out_features, allow_tuple=False)
        _check_var_factor(self, self.var_factor)
        _check_activation("Dense", self.activation)
        _check_flag("Dense", "batchnorm", self.batchnorm)
        if self.batchnorm and self.activation != "relu":
            raise UnsupportedLayerError(
                "Dense: batchnorm=True needs activation='relu' (BatchNorm is supported only as "
                "conv/dense -> BatchNorm -> ReLU)"
            )


@dataclass(frozen=True)
class Conv:
    """A convolution over every spatial axis of its input.

    Parameters
    ----------
    out_channels : int
        Number of output channels.
    kernel, stride, dilation : int or tuple of int
        Per spatial axis (an int applies to every axis).
    padding : {'zero', 'circular', 'reflect'}
        How the ``pad`` positions beyond each border are filled.
    pad : int or tuple of int, optional
        Padding on both sides of each axis; default ``dilation * (kernel - 1) // 2``
        ("same" output size for stride 1 and odd kernels).
    activation : {'relu', None}
    batchnorm : bool
        Conv -> BatchNorm -> ReLU (outside (H)).
    groups : int
        Grouped convolution (``nn.Conv2d(..., groups=g)``): output channel ``c`` reads only the
        input channels of its group ``c // (out_channels / g)``; ``g`` must divide both channel
        counts, and the fan-in is ``in_channels / g * prod(kernel)``.
    var_factor : Fraction
        Multiplies the weights' variance, as for :class:`Dense` (e.g. :func:`batchnorm_factor`).

    Examples
    --------
    >>> from initstats.spec import Arch
    >>> arch = Arch((3, 8, 8), (Conv(4, padding="circular"), Conv(4, 2, stride=2), Dense(10, activation=None)))
    >>> [(s.shape, s.kernel, s.stride, s.pad, s.fan_in) for s in arch.stages[1:3]]
    [((4, 8, 8), (3, 3), (1, 1), (1, 1), 27), ((4, 4, 4), (2, 2), (2, 2), (0, 0), 16)]
    >>> Conv(4, padding="same")
    Traceback (most recent call last):
        ...
    initstats.errors.SpecError: Conv: padding='same' is unknown; expected one of zero, circular, reflect
    >>> Arch((4, 8, 8), (Conv(6, 3, groups=2), Dense(1, activation=None))).stages[1].fan_in   # 4/2 channels x 9
    18
    """

    out_channels: int
    kernel: IntOrTuple = 3
    stride: IntOrTuple = 1
    dilation: IntOrTuple = 1
    padding: str = "zero"
    pad: IntOrTuple | None = None
    activation: str | None = "relu"
    batchnorm: bool = False
    groups: int = 1
    var_factor: Fraction = Fraction(1)

    def __post_init__(self) -> None:
        _check_positive("Conv", "out_channels", self.out_channels, allow_tuple=False)
        _check_var_factor(self, self.var_factor)
        _check_positive("Conv", "groups", self.groups, allow_tuple=False)
        if self.out_channels % self.groups:
            raise SpecError(f"Conv: groups={self.groups} does not divide out_channels={self.out_channels}; "
                            "every group needs the same number of output channels")
        _check_positive("Conv", "kernel", self.kernel)
        _check_positive("Conv", "stride", self.stride)
        _check_positive("Conv", "dilation", self.dilation)
        _check_positive("Conv", "pad", self.pad, allow_none=True, minimum=0)
        if self.padding not in PADDINGS:
            raise SpecError(
                f"Conv: padding={self.padding!r} is unknown; expected one of {', '.join(PADDINGS)}"
            )
        _check_activation("Conv", self.activation)
        _check_flag("Conv", "batchnorm", self.batchnorm)
        if self.batchnorm and self.activation != "relu":
            raise UnsupportedLayerError(
                "Conv: batchnorm=True needs activation='relu' (BatchNorm is supported only as "
                "conv -> BatchNorm -> ReLU)"
            )


@dataclass(frozen=True)
class _Pool:
    kernel: IntOrTuple | None = 2
    stride: IntOrTuple | None = None

    def __post_init__(self) -> None:
        name = type(self).__name__
        _check_positive(name, "kernel", self.kernel, allow_none=True)
        _check_positive(name, "stride", self.stride, allow_none=True)
        if self.kernel is None and self.stride is not None:
            raise SpecError(f"{name}: a global pool (kernel=None) takes no stride, got stride={self.stride!r}")

    @property
    def is_global(self) -> bool:
        return self.kernel is None


@dataclass(frozen=True)
class AvgPool(_Pool):
    """Per-channel average pooling without padding (weights ``1/window``); ``kernel=None`` is global.

    ``stride`` defaults to ``kernel``.

    Examples
    --------
    >>> from initstats.spec import Arch
    >>> arch = Arch((2, 8, 8), (AvgPool(2), AvgPool(None), Dense(1, activation=None)))
    >>> [(s.kind, s.shape) for s in arch.stages[1:3]], arch.hypothesis_set()
    ([('avgpool', (2, 4, 4)), ('avgpool', (2, 1, 1))], "H'")
    """


@dataclass(frozen=True)
class MaxPool(_Pool):
    """Per-channel max pooling without padding; ``kernel=None`` is global.  Outside (H).

    Examples
    --------
    >>> from initstats.spec import Arch
    >>> arch = Arch((1, 4, 4), (MaxPool(2), Dense(1, activation=None)))
    >>> arch.stages[1].shape, arch.hypothesis_set(), MaxPool(None).is_global
    ((1, 2, 2), 'outside', True)
    """


@dataclass(frozen=True)
class Residual:
    """A residual block ``y = shortcut(x) + body(x)``, optionally followed by a ReLU.

    One ``sum`` node per neuron with weights 1 (``sumrelu`` with ``activation='relu'``: the sum,
    then a ReLU).  ``shortcut`` is the identity when empty, else its own layers (e.g. a strided
    1x1 convolution, a ResNet projection); both branches must map the input to the same shape.

    Examples
    --------
    >>> from initstats.spec import Arch
    >>> block = Residual((Conv(2, 3, padding="circular"), Conv(2, 3, padding="circular", activation=None)))
    >>> arch = Arch((2, 4), (block, Dense(1, activation=None)))
    >>> [(s.name, s.kind, s.sources) for s in arch.stages]
    [('x', 'input', ()), ('res1.conv1', 'relu', (0,)), ('res1.conv2', 'linear', (1,)), ('res1.sum', 'sum', (0, 2)),
     ('logits', 'linear', (3,))]
    >>> down = Residual((Conv(4, 3, stride=2), Conv(4, 3, activation=None)),
    ...                 shortcut=(Conv(4, 1, stride=2, activation=None),), activation="relu")
    >>> [(s.name, s.kind, s.shape, s.sources) for s in Arch((2, 8), (down, Dense(1, activation=None))).stages[1:4]]
    [('res1.conv1', 'relu', (4, 4), (0,)), ('res1.conv2', 'linear', (4, 4), (1,)), ('res1.shortcut.conv1', 'linear', (4, 4), (0,))]
    """

    body: tuple["Layer", ...]
    shortcut: tuple["Layer", ...] = ()
    activation: str | None = None

    def __post_init__(self) -> None:
        body = tuple(self.body) if isinstance(self.body, (list, tuple)) else self.body
        if not isinstance(body, tuple) or not body:
            raise SpecError(f"Residual: body={self.body!r} must be a non-empty tuple of layers")
        shortcut = tuple(self.shortcut) if isinstance(self.shortcut, (list, tuple)) else self.shortcut
        if not isinstance(shortcut, tuple):
            raise SpecError(f"Residual: shortcut={self.shortcut!r} must be a tuple of layers (empty: the identity)")
        _check_activation("Residual", self.activation)
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "shortcut", shortcut)


@dataclass(frozen=True)
class Concat:
    """Channel concatenation ``y = cat([branch(x) for branch in branches], dim=1)``, as DenseNets write it.

    An empty branch is the input itself.  The concatenation is not a neuron operation: it makes no
    stage, and the layer after it reads every branch's neurons directly (no extra node, no extra
    path-degree).  Its channels are the branches' channels in order; every branch must keep the
    spatial size.  What may read a concatenation: a ``Conv`` or ``Dense`` layer (its fan-in is the
    sum of the branches' channels), another ``Concat``, and pools (one per branch, channel by
    channel); a residual sum needs layers after it (e.g. a 1x1 ``Conv``).  :func:`dense_block`
    writes a DenseNet block.

    Examples
    --------
    >>> from initstats.spec import Arch
    >>> arch = Arch((2, 6, 6), (Conv(3), Concat(((), (Conv(4),))), Conv(5, 1), Dense(1, activation=None)))
    >>> [(s.name, s.shape, s.sources, s.fan_in) for s in arch.stages[1:4]]    # conv3 reads conv1 and cat2.1.conv1
    [('conv1', (3, 6, 6), (0,), 18), ('cat2.1.conv1', (4, 6, 6), (1,), 27), ('conv3', (5, 6, 6), (1, 2), 7)]
    """

    branches: tuple[tuple["Layer", ...], ...]

    def __post_init__(self) -> None:
        branches = self.branches
        if (not isinstance(branches, (list, tuple)) or len(branches) < 2
                or any(not isinstance(b, (list, tuple)) for b in branches)):
            raise SpecError(f"Concat: branches={branches!r} must be a tuple of at least two tuples of layers "
                            "(an empty tuple is the input itself), e.g. Concat(((), (Conv(12),)))")
        object.__setattr__(self, "branches", tuple(tuple(b) for b in branches))


def dense_block(layers: int, growth: int, *, kernel: IntOrTuple = 3, padding: str = "zero",
                bottleneck: int | None = None) -> tuple[Concat, ...]:
    """A DenseNet block: ``layers`` times ``x = cat([x, relu(conv(x))])``, each adding ``growth`` channels.

    With ``bottleneck=b`` each new branch is a ReLU 1x1 convolution to ``b`` channels before the
    ``kernel`` one (DenseNet-B).  Unpack it into an architecture's layers.

    Examples
    --------
    >>> from initstats.spec import Arch
    >>> arch = Arch((4, 8, 8), (*dense_block(3, growth=2), Conv(6, 1), Dense(10, activation=None)))
    >>> [s.fan_in for s in arch.stages[1:5]], arch.stages[4].sources      # the 1x1 conv reads all four stages
    ([36, 54, 72, 10], (0, 1, 2, 3))
    """
    _check_positive("dense_block", "layers", layers, allow_tuple=False)
    _check_positive("dense_block", "growth", growth, allow_tuple=False)
    _check_positive("dense_block", "bottleneck", bottleneck, allow_none=True, allow_tuple=False)
    neck = (Conv(bottleneck, 1, padding=padding),) if bottleneck is not None else ()
    return tuple(Concat(((), neck + (Conv(growth, kernel, padding=padding),))) for _ in range(layers))


Layer: TypeAlias = Dense | Conv | AvgPool | MaxPool | Residual | Concat
