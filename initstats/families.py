"""Named architecture families, parameterised by the input size in pixels.

Every family is a function ``family(px, **options) -> Arch`` built from the dataclasses of
:mod:`initstats.spec`; :func:`make_arch` looks one up by name and checks its options.

- ``fc``: ``depth`` dense ReLU layers of ``width`` units on a flattened ``in_channels x px x px``
  image, then dense logits.
- ``cnn``: the topology of the paper's Figure 3: eight 3x3 conv-ReLU layers with dilation
  ``max(1, px // 32)`` (1, 2, 4, 8 at 32, 64, 128, 256 px), downsampling after layers 2, 4, 6,
  a head and dense logits.  The downsampling after layers 2, 4, 6 is a 2x2 window with stride 2:
  ``downsample='stride'`` (default) a 2x2 stride-2 convolution with ReLU (random weights, no
  deterministic merge), ``'avg'``/``'max'`` a 2x2 average/max pooling.  ``head='dense'``
  (default) flattens, ``'avgpool'``/``'maxpool'`` pool globally first.  With the default zero
  padding the network is *not* inside (H): border neurons read fewer inputs than the kernel's
  fan-in yet keep the weight variance 2/fan_in (H3 fails), and (S) fails at the border, so its
  exact annealed ``E||grad f||^2`` is below the theorems' 2 (``initstats report`` lists it per px,
  and at a fixed dilation, in ``docs/report/theorems-4-5.md``).  ``padding='circular'`` with the other
  defaults satisfies H3 and (S).  ``downsample='max', head='maxpool', batchnorm=True`` is the
  paper's literal network (outside (H)).
  (Making the dilated 3x3 layers 2, 4, 6 themselves stride 2 would alias: with dilation 8 and
  three stride-2 layers only every 8th pixel per axis reaches the logits.)
- ``cnn-avgpool``: the Figure 4 variant: six 3x3 conv-ReLU blocks, a 2x2 downsampling after every
  second one (average pooling by default; ``'stride'``: a 2x2 stride-2 convolution; ``'max'``), a
  global average pool and dense logits.
- ``resnet``: a stem convolution and ``blocks`` residual blocks
  ``x + conv(relu(conv(x)))`` (so that ``sum`` nodes occur), then a head.

Examples
--------
>>> from initstats.families import make_arch
>>> arch = make_arch("cnn", 32, channels=8, padding="circular")
>>> arch.d, [s.shape for s in arch.stages][-2]
(3072, (8, 4, 4))
"""

from __future__ import annotations

import inspect
from typing import Callable

from .errors import OptionError, SpecError
from .spec import Arch, AvgPool, Conv, Dense, Layer, MaxPool, Residual

__all__ = ["FAMILIES", "fc", "cnn", "cnn_avgpool", "resnet", "make_arch", "with_avgpool", "with_logit_relu"]

DOWNSAMPLES = ("stride", "avg", "max")
HEADS = ("dense", "avgpool", "maxpool")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise OptionError(f"{name}={value!r} is unknown; expected one of {', '.join(choices)}")


def _head(head: str, classes: int) -> tuple[Layer, ...]:
    _choice("head", head, HEADS)
    pool: tuple[Layer, ...] = {"dense": (), "avgpool": (AvgPool(None),), "maxpool": (MaxPool(None),)}[head]
    return (*pool, Dense(classes, activation=None))


def _downsample(kind: str, channels: int, batchnorm: bool) -> Layer:
    """A 2x2, stride-2 downsampling: strided convolution (with ReLU), average or max pooling."""
    if kind == "stride":
        return Conv(channels, 2, stride=2, pad=0, batchnorm=batchnorm)
    return AvgPool(2) if kind == "avg" else MaxPool(2)


def _params(**kwargs: object) -> tuple[tuple[str, object], ...]:
    return tuple(kwargs.items())


def fc(px: int = 32, *, width: int = 256, depth: int = 4, classes: int = 10, in_channels: int = 3) -> Arch:
    """Fully connected ReLU network on a flattened ``in_channels x px x px`` input.

    Examples
    --------
    >>> arch = fc(8, width=32, depth=2)
    >>> arch.d, [type(layer).__name__ for layer in arch.layers], arch.hypothesis_set()
    (192, ['Dense', 'Dense', 'Dense'], 'H')
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise OptionError(f"depth={depth!r} is invalid; expected an integer >= 0 (the number of hidden layers)")
    layers = tuple(Dense(width) for _ in range(depth)) + (Dense(classes, activation=None),)
    return Arch((in_channels, px, px), layers, name="fc",
                params=_params(px=px, width=width, depth=depth, classes=classes))


def cnn(px: int = 32, *, channels: int = 16, downsample: str = "stride", head: str = "dense",
        padding: str = "zero", batchnorm: bool = False, classes: int = 12, in_channels: int = 3,
        dilation: int | None = None) -> Arch:
    """The paper's Figure 3 topology (see the module docstring).

    Examples
    --------
    >>> arch = cnn(32, channels=4)
    >>> dict(arch.params)["dilation"], dict(cnn(128, channels=4).params)["dilation"]
    (1, 4)
    >>> arch.stages[-2].shape, arch.num_classes       # three 2x2 stride-2 downsamplings: 32 -> 4 px
    ((4, 4, 4), 12)
    >>> cnn(32, downsample="max", head="maxpool", batchnorm=True).hypothesis_set()   # the paper's literal network
    'outside'
    """
    _choice("downsample", downsample, DOWNSAMPLES)
    dil = max(1, px // 32) if dilation is None else dilation
    layers: list[Layer] = []
    for i in range(1, 9):
        layers.append(Conv(channels, 3, dilation=dil, padding=padding, batchnorm=batchnorm))
        if i in (2, 4, 6):
            layers.append(_downsample(downsample, channels, batchnorm))
    layers.extend(_head(head, classes))
    return Arch((in_channels, px, px), tuple(layers), name="cnn",
                params=_params(px=px, channels=channels, downsample=downsample, head=head,
                               padding=padding, batchnorm=batchnorm, dilation=dil))


def cnn_avgpool(px: int = 32, *, channels: int = 16, downsample: str = "avg", head: str = "avgpool",
                padding: str = "zero", batchnorm: bool = False, classes: int = 10,
                in_channels: int = 3) -> Arch:
    """The paper's Figure 4 network: 6 conv blocks, pooling after every second, global pool.

    Examples
    --------
    >>> arch = cnn_avgpool(16, channels=4)
    >>> [s.shape for s in arch.stages if s.kind == "avgpool"]     # three 2x2 pools, then the global one
    [(4, 8, 8), (4, 4, 4), (4, 2, 2), (4, 1, 1)]
    >>> arch.hypothesis_set()
    "H'"
    """
    _choice("downsample", downsample, DOWNSAMPLES)
    layers: list[Layer] = []
    for i in range(1, 7):
        layers.append(Conv(channels, 3, padding=padding, batchnorm=batchnorm))
        if i % 2 == 0:
            layers.append(_downsample(downsample, channels, batchnorm))
    layers.extend(_head(head, classes))
    return Arch((in_channels, px, px), tuple(layers), name="cnn-avgpool",
                params=_params(px=px, channels=channels, downsample=downsample, head=head,
                               padding=padding, batchnorm=batchnorm))


def resnet(px: int = 32, *, channels: int = 16, blocks: int = 2, head: str = "dense",
           padding: str = "zero", classes: int = 10, in_channels: int = 3) -> Arch:
    """A stem convolution, ``blocks`` residual blocks ``x + conv(relu(conv(x)))`` and a head.

    Examples
    --------
    >>> arch = resnet(8, channels=4, blocks=2)
    >>> [s.kind for s in arch.stages]
    ['input', 'relu', 'relu', 'linear', 'sum', 'relu', 'linear', 'sum', 'linear']
    >>> arch.hypothesis_set()
    "H'"
    """
    if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
        raise OptionError(f"blocks={blocks!r} is invalid; expected an integer >= 1")
    block = Residual((Conv(channels, 3, padding=padding), Conv(channels, 3, padding=padding, activation=None)))
    layers = (Conv(channels, 3, padding=padding), *(block,) * blocks, *_head(head, classes))
    return Arch((in_channels, px, px), layers, name="resnet",
                params=_params(px=px, channels=channels, blocks=blocks, head=head, padding=padding))


FAMILIES: dict[str, Callable[..., Arch]] = {
    "fc": fc,
    "cnn": cnn,
    "cnn-avgpool": cnn_avgpool,
    "resnet": resnet,
}


def family_options(name: str) -> tuple[str, ...]:
    """The keyword options a family accepts."""
    sig = inspect.signature(FAMILIES[name])
    return tuple(p for p in sig.parameters if p != "px")


def make_arch(name: str, px: int, **options: object) -> Arch:
    """Build family ``name`` at ``px`` pixels; options left as ``None`` take the family default.

    Raises :class:`~initstats.errors.OptionError` for an unknown family or an option the family
    does not take, and :class:`~initstats.errors.SpecError` when the size is too small.

    Examples
    --------
    >>> make_arch("fc", 8, width=32).d
    192
    """
    if name not in FAMILIES:
        raise OptionError(f"unknown architecture {name!r}; expected one of {', '.join(FAMILIES)}")
    if isinstance(px, bool) or not isinstance(px, int) or px < 1:
        raise OptionError(f"input size {px!r} is invalid; expected a positive number of pixels")
    given = {k: v for k, v in options.items() if v is not None}
    allowed = family_options(name)
    for key in given:
        if key not in allowed:
            raise OptionError(f"option {key!r} does not apply to {name!r}; it takes {', '.join(allowed)}")
    try:
        return FAMILIES[name](px, **given)
    except SpecError as err:
        raise type(err)(f"{name} at {px} px: {err}") from None


def with_avgpool(arch: Arch, a: int) -> Arch:
    """``arch`` with an ``a x a`` average pooling (stride ``a``) inserted before the logits.

    Used to sweep the pooling degree of Theorems 7 and 11.  ``a = 1`` returns ``arch`` itself.
    Every spatial size before the head must be divisible by ``a`` so that no input is dropped.

    Examples
    --------
    >>> from initstats.exact import analyse
    >>> arch = with_avgpool(make_arch("cnn", 32, channels=4, padding="circular"), 2)
    >>> arch.stages[-2].kind, arch.stages[-2].shape
    ('avgpool', (4, 2, 2))
    >>> out = analyse(arch).outputs[0]
    >>> out.pool_degrees, out.theorem_total            # Theorems 7, 11: 2 / a with a = 2 x 2
    ((4,), Fraction(1, 2))
    """
    if isinstance(a, bool) or not isinstance(a, int) or a < 1:
        raise OptionError(f"pooling size {a!r} is invalid; expected a positive integer")
    if a == 1:
        return arch
    # insert before the logits, and before a global pooling head if there is one
    at = len(arch.layers) - 1
    head = arch.layers[at - 1] if at >= 1 else None
    if isinstance(head, (AvgPool, MaxPool)) and head.is_global:
        at -= 1
    spatial = _shape_before(arch, at)
    if not spatial:
        raise OptionError(f"{arch.name}: pooling size {a} needs spatial axes before the head")
    if any(n % a for n in spatial):
        raise OptionError(
            f"{arch.name}: pooling size {a} does not divide the spatial size {spatial} before the "
            f"head; use a divisor of {spatial[0]}"
        )
    layers = (*arch.layers[:at], AvgPool(a), *arch.layers[at:])
    return Arch(arch.input_shape, layers, name=arch.name,
                params=(*arch.params, ("pool", a)))


def with_logit_relu(arch: Arch) -> Arch:
    """``arch`` with a ReLU on the logits: hypothesis H1 taken literally (total 1 instead of 2).

    Examples
    --------
    >>> from initstats.exact import analyse
    >>> arch = with_logit_relu(make_arch("fc", 4, width=8))
    >>> arch.stages[-1].kind, analyse(arch).outputs[0].grad_sq_total     # half of the linear logit's 2
    ('relu', Fraction(1, 1))
    """
    last = arch.layers[-1]
    return Arch(arch.input_shape, (*arch.layers[:-1], Dense(last.out_features, activation="relu",  # type: ignore[union-attr]
                                                               batchnorm=last.batchnorm)),  # type: ignore[union-attr]
                name=arch.name, params=(*arch.params, ("logit_relu", True)))


def _shape_before(arch: Arch, layer_index: int) -> tuple[int, ...]:
    """Spatial shape of the input of top-level layer ``layer_index``."""
    prefix = Arch(arch.input_shape, (*arch.layers[:layer_index], Dense(1)))
    return prefix.stages[-2].spatial if layer_index else arch.input_shape[1:]
