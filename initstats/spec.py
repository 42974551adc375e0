"""Architecture specifications: frozen dataclasses shared by the exact and the empirical engine.

One :class:`Arch` describes a feed-forward network on inputs of shape ``(channels, *spatial)``
with zero, one or two spatial axes.  The same object drives the networkx graph
(:func:`initstats.graph.build_graph`), the exact compressed analysis
(:func:`initstats.exact.analyse`) and the torch ensemble of the Monte Carlo engine, so the
exact prediction and the measurement always describe the same network.

Layers
------
- :class:`Dense`: fully connected, flattens its input; ReLU or no activation.
- :class:`Conv`: convolution with kernel, stride, dilation and padding mode
  ``zero | circular | reflect`` (padding amount ``pad`` on both sides, by default
  ``dilation * (kernel - 1) // 2``); ReLU or no activation; optional BatchNorm.
- :class:`AvgPool`, :class:`MaxPool`: per-channel pooling without padding; ``kernel=None``
  pools globally.
- :class:`Residual`: ``y = x + body(x)``, a ``sum`` node per neuron; the body must keep the
  shape.

The last layer must be a :class:`Dense` layer: its units are the logits.

Assumptions
-----------
Weights of convolutions and dense layers are random (He: variance ``2 / fan_in`` with
``fan_in = in_channels * prod(kernel)``); a zero-padded boundary neuron has fewer inputs
than ``fan_in`` but keeps that variance.  Max pooling and BatchNorm are representable but lie
outside the hypotheses (H) of the theory.

Examples
--------
>>> from initstats.spec import Arch, Conv, AvgPool, Dense
>>> arch = Arch((3, 8, 8), (Conv(4, padding="circular"), AvgPool(2), Dense(10, activation=None)))
>>> arch.d, arch.num_classes, arch.stages[-1].shape
(192, 10, (10,))
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, TypeAlias

from .errors import SpecError, UnsupportedLayerError

__all__ = [
    "PADDINGS",
    "Dense",
    "Conv",
    "AvgPool",
    "MaxPool",
    "Residual",
    "Layer",
    "Arch",
    "AxisMap",
    "Stage",
    "axis_map",
    "window_entries",
    "node_id",
    "classify_kinds",
]

Padding = Literal["zero", "circular", "reflect"]
PADDINGS: tuple[str, ...] = ("zero", "circular", "reflect")
ACTIVATIONS: tuple[str | None, ...] = ("relu", None)
IntOrTuple: TypeAlias = int | tuple[int, ...]

#: node kinds whose incoming weights are random (variance ``var``)
RANDOM_KINDS = frozenset({"relu", "linear", "batchnorm"})
#: node kinds with deterministic incoming weights
DETERMINISTIC_KINDS = frozenset({"avgpool", "sum", "maxpool"})
NODE_KINDS: tuple[str, ...] = ("input", "relu", "linear", "avgpool", "sum", "maxpool", "batchnorm")


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
    """

    out_features: int
    activation: str | None = "relu"
    batchnorm: bool = False

    def __post_init__(self) -> None:
        _check_positive("Dense", "out_features", self.out_features, allow_tuple=False)
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
    """

    out_channels: int
    kernel: IntOrTuple = 3
    stride: IntOrTuple = 1
    dilation: IntOrTuple = 1
    padding: str = "zero"
    pad: IntOrTuple | None = None
    activation: str | None = "relu"
    batchnorm: bool = False

    def __post_init__(self) -> None:
        _check_positive("Conv", "out_channels", self.out_channels, allow_tuple=False)
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
    """


@dataclass(frozen=True)
class MaxPool(_Pool):
    """Per-channel max pooling without padding; ``kernel=None`` is global.  Outside (H)."""


@dataclass(frozen=True)
class Residual:
    """A residual block ``y = x + body(x)``: one ``sum`` node per neuron, weights 1.

    The body must map its input shape to the same shape.
    """

    body: tuple["Layer", ...]

    def __post_init__(self) -> None:
        body = tuple(self.body) if isinstance(self.body, (list, tuple)) else self.body
        if not isinstance(body, tuple) or not body:
            raise SpecError(f"Residual: body={self.body!r} must be a non-empty tuple of layers")
        object.__setattr__(self, "body", body)


Layer: TypeAlias = Dense | Conv | AvgPool | MaxPool | Residual


@dataclass(frozen=True)
class AxisMap:
    """How one spatial axis of a layer's output reads the axis of its input.

    ``taps[i]`` lists ``(input_position, multiplicity)`` for output position ``i``: the
    multiplicity counts the kernel entries that land on that input position (more than one
    when circular or reflect padding wraps a kernel onto itself).  ``kernel`` is the window
    length that enters the He fan-in.
    """

    n_in: int
    n_out: int
    kernel: int
    taps: tuple[tuple[tuple[int, int], ...], ...]

    def in_degree(self, i: int) -> int:
        """Distinct input positions read by output position ``i``."""
        return len(self.taps[i])


def _reflect(t: int, n: int) -> int:
    if n == 1:
        return 0
    period = 2 * (n - 1)
    t %= period
    return period - t if t >= n else t


def window_entries(i: int, n_in: int, kernel: int, stride: int, dilation: int, pad: int,
                   mode: str) -> Iterator[tuple[int, int]]:
    """``(kernel index, input position)`` for each kernel entry of window ``i`` that reads an input.

    One spatial axis; entries in zero padding are skipped, circular padding wraps around and
    reflect padding mirrors without repeating the edge (torch's ``'reflect'``).

    >>> list(window_entries(0, 3, 3, 1, 1, 1, "reflect"))   # reads (1, 0, 1)
    [(0, 1), (1, 0), (2, 1)]
    """
    for a in range(kernel):
        t = i * stride - pad + a * dilation
        if 0 <= t < n_in:
            yield a, t
        elif mode == "circular":
            yield a, t % n_in
        elif mode != "zero":
            yield a, _reflect(t, n_in)


def axis_map(n_in: int, kernel: int, stride: int, dilation: int, pad: int, mode: str,
             *, where: str = "layer") -> AxisMap:
    """The :class:`AxisMap` of a 1-D window operation, validated.

    Raises :class:`SpecError` when the kernel is larger than the padded input, the output
    would be smaller than one position, the padding is too large for its mode, or a window
    lies entirely in zero padding.
    """
    extent = dilation * (kernel - 1) + 1
    if extent > n_in + 2 * pad:
        raise SpecError(
            f"{where}: kernel extent {extent} (kernel {kernel}, dilation {dilation}) is larger than "
            f"the padded input {n_in} + 2*{pad}, so the output would be smaller than one position; "
            f"use a smaller kernel or dilation, or a larger input"
        )
    if mode == "circular" and pad > n_in:
        raise SpecError(f"{where}: circular padding {pad} exceeds the input size {n_in}; it must be <= {n_in}")
    if mode == "reflect" and pad >= n_in:
        raise SpecError(f"{where}: reflect padding {pad} needs an input larger than {pad}, got size {n_in}")
    n_out = (n_in + 2 * pad - extent) // stride + 1
    taps = []
    for i in range(n_out):
        counts: dict[int, int] = {}
        for _, j in window_entries(i, n_in, kernel, stride, dilation, pad, mode):
            counts[j] = counts.get(j, 0) + 1
        if not counts:
            raise SpecError(
                f"{where}: the window of output position {i} lies entirely in the zero padding "
                f"(pad={pad}); use pad <= dilation*(kernel-1)"
            )
        taps.append(tuple(sorted(counts.items())))
    return AxisMap(n_in, n_out, kernel, tuple(taps))


def _all_to_all(n_in: int) -> AxisMap:
    return AxisMap(n_in, 1, n_in, (tuple((j, 1) for j in range(n_in)),))


@dataclass(frozen=True)
class Stage:
    """One layer of neurons in the flattened layer DAG of an :class:`Arch`.

    ``op`` is ``'input' | 'conv' | 'dense' | 'pool' | 'sum'``; ``axes`` maps the spatial axes
    of ``sources[0]`` to this stage's (empty when the source has no spatial axes);
    ``mixes_channels`` is true for conv and dense; ``fan_in`` is the He fan-in of random-weight
    stages and 0 otherwise.
    """

    index: int
    name: str
    kind: str
    op: str
    shape: tuple[int, ...]
    sources: tuple[int, ...] = ()
    axes: tuple[AxisMap, ...] = ()
    mixes_channels: bool = False
    fan_in: int = 0
    layer: object = field(default=None, compare=False, repr=False)

    @property
    def channels(self) -> int:
        return self.shape[0]

    @property
    def spatial(self) -> tuple[int, ...]:
        return self.shape[1:]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _tuple(value: IntOrTuple, rank: int, where: str, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * rank
    if len(value) != rank:
        raise SpecError(f"{where}: {name}={value!r} has {len(value)} entries but the input has {rank} spatial axes")
    return tuple(value)


def _layer_kind(layer: Dense | Conv) -> str:
    if layer.batchnorm:
        return "batchnorm"
    return "relu" if layer.activation == "relu" else "linear"


@dataclass(frozen=True)
class Arch:
    """A feed-forward architecture: an input shape and a tuple of layers.

    Parameters
    ----------
    input_shape : tuple of int
        ``(channels, *spatial)`` with 0, 1 or 2 spatial axes.
    layers : tuple of Layer
        The last one is a :class:`Dense` layer whose units are the logits.
    name : str
        A label used in tables and reports.

    The architecture validates itself on construction; every problem raises
    :class:`~initstats.errors.SpecError` naming the layer and the value.
    """

    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]
    name: str = "custom"
    params: tuple[tuple[str, object], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        shape = tuple(self.input_shape) if isinstance(self.input_shape, (list, tuple)) else self.input_shape
        if (not isinstance(shape, tuple) or not 1 <= len(shape) <= 3
                or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape)):
            raise SpecError(
                f"input_shape={self.input_shape!r} is invalid; expected (channels, *spatial) with "
                f"positive integers and at most 2 spatial axes"
            )
        layers = tuple(self.layers) if isinstance(self.layers, (list, tuple)) else self.layers
        if not isinstance(layers, tuple) or not layers:
            raise SpecError(f"layers={self.layers!r} must be a non-empty tuple of layers")
        if not isinstance(layers[-1], Dense):
            raise SpecError(
                f"the last layer must be Dense (the logits), got {type(layers[-1]).__name__}; "
                f"add Dense(num_classes, activation=None)"
            )
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "layers", layers)
        _ = self.stages  # validate now

    # -- derived quantities ---------------------------------------------------------------
    @property
    def d(self) -> int:
        """Input dimension: the number of input coordinates."""
        return math.prod(self.input_shape)

    @property
    def px(self) -> int | None:
        """Side length of the first spatial axis, or None without spatial axes."""
        return self.input_shape[1] if len(self.input_shape) > 1 else None

    @property
    def num_classes(self) -> int:
        return self.layers[-1].out_features  # type: ignore[union-attr]

    @property
    def has_residual(self) -> bool:
        return any(s.op == "sum" for s in self.stages)

    @property
    def node_kinds(self) -> frozenset[str]:
        return frozenset(s.kind for s in self.stages)

    @cached_property
    def stages(self) -> tuple[Stage, ...]:
        """The flattened layer DAG, in topological order (stage 0 is the input)."""
        stages: list[Stage] = [Stage(0, "x", "input", "input", self.input_shape)]
        n_layers = len(self.layers)
        counter = [0]

        def add(layers: tuple[Layer, ...], src: int, prefix: str, top: bool) -> int:
            for pos, layer in enumerate(layers):
                if top:
                    counter[0] += 1
                number = counter[0] if top else pos + 1
                last = top and pos == n_layers - 1
                src = self._add_layer(stages, layer, src, prefix, number, last, add)
            return src

        add(self.layers, 0, "", True)
        return tuple(stages)

    def _add_layer(self, stages: list[Stage], layer: Layer, src: int, prefix: str, number: int,
                   last: bool, add) -> int:
        source = stages[src]
        c_in, spatial = source.channels, source.spatial
        rank = len(spatial)
        idx = len(stages)
        if isinstance(layer, Dense):
            name = "logits" if last else f"{prefix}dense{number}"
            axes = tuple(_all_to_all(n) for n in spatial)
            stages.append(Stage(idx, name, _layer_kind(layer), "dense", (layer.out_features,), (src,),
                                axes, True, c_in * math.prod(spatial), layer))
        elif isinstance(layer, Conv):
            name = f"{prefix}conv{number}"
            if rank == 0:
                raise SpecError(f"{name}: a convolution needs spatial axes, but its input has shape {source.shape}")
            k = _tuple(layer.kernel, rank, name, "kernel")
            s = _tuple(layer.stride, rank, name, "stride")
            dil = _tuple(layer.dilation, rank, name, "dilation")
            p = (tuple(di * (ki - 1) // 2 for di, ki in zip(dil, k)) if layer.pad is None
                 else _tuple(layer.pad, rank, name, "pad"))
            axes = tuple(axis_map(spatial[a], k[a], s[a], dil[a], p[a], layer.padding,
                                  where=f"{name} (axis {a})") for a in range(rank))
            stages.append(Stage(idx, name, _layer_kind(layer), "conv",
                                (layer.out_channels, *(m.n_out for m in axes)), (src,), axes, True,
                                c_in * math.prod(k), layer))
        elif isinstance(layer, (AvgPool, MaxPool)):
            kind = "avgpool" if isinstance(layer, AvgPool) else "maxpool"
            name = f"{prefix}{kind}{number}"
            if rank == 0:
                raise SpecError(f"{name}: pooling needs spatial axes, but its input has shape {source.shape}")
            if layer.kernel is None:
                axes = tuple(_all_to_all(n) for n in spatial)
            else:
                k = _tuple(layer.kernel, rank, name, "kernel")
                s = _tuple(layer.stride if layer.stride is not None else layer.kernel, rank, name, "stride")
                axes = tuple(axis_map(spatial[a], k[a], s[a], 1, 0, "zero", where=f"{name} (axis {a})")
                             for a in range(rank))
            stages.append(Stage(idx, name, kind, "pool", (c_in, *(m.n_out for m in axes)), (src,), axes,
                                layer=layer))
        elif isinstance(layer, Residual):
            name = f"{prefix}res{number}"
            if last:
                raise SpecError(f"{name}: the last layer must be Dense (the logits), not Residual")
            out = add(layer.body, src, f"{name}.", False)
            if stages[out].shape != source.shape:
                raise SpecError(
                    f"{name}: the body maps shape {source.shape} to {stages[out].shape}; a residual "
                    f"sum needs the same shape (use stride 1, 'same' padding and {c_in} channels)"
                )
            idx = len(stages)
            stages.append(Stage(idx, f"{name}.sum", "sum", "sum", source.shape, (src, out), layer=layer))
        else:
            raise UnsupportedLayerError(
                f"layer {layer!r} is not supported; use Dense, Conv, AvgPool, MaxPool or Residual"
            )
        return idx

    def hypothesis(self) -> str:
        """``'H'``, ``"H'"`` (average pooling or residual sums) or ``'outside'`` (max pool, BatchNorm),
        from the layer kinds alone (see :func:`classify_kinds`; the exact engine also checks H5)."""
        return classify_kinds(self.node_kinds)

    def describe(self) -> str:
        """A one-line summary, e.g. ``cnn (3, 32, 32): conv1 relu (16, 32, 32) -> ...``."""
        parts = [f"{s.name} {s.kind} {s.shape}" for s in self.stages[1:]]
        return f"{self.name} {self.input_shape}: " + " -> ".join(parts)


def classify_kinds(kinds: frozenset[str] | set[str]) -> str:
    """Which hypothesis set a collection of node kinds allows: ``'H'``, ``"H'"`` or ``'outside'``.

    From the kinds alone; an output's label (:attr:`initstats.exact.OutputAnalysis.hypothesis`) also
    needs H5, which fails with overlapping pooling windows or reflect padding and makes it ``'outside'``.
    """
    if kinds & {"maxpool", "batchnorm"}:
        return "outside"
    if kinds & {"avgpool", "sum"}:
        return "H'"
    return "H"


def node_id(stage_name: str, index: tuple[int, ...]) -> str:
    """The graph node id of neuron ``index = (channel, *position)`` of a stage, e.g. ``'conv1[0,2,3]'``."""
    return f"{stage_name}[{','.join(map(str, index))}]"
