"""The flattened layer DAG of an architecture: stages of neurons with their resolved geometry.

:func:`build_stages` turns an input shape and a tuple of layers into :class:`Stage` objects in
topological order, and is where a specification is validated as a whole: every convolution and
pool is resolved against the size of its input (kernel, stride, dilation and padding per axis,
:func:`~initstats.spec.geometry.axis_map`), residual bodies must keep their shape, and the last
layer gives the logits.  Every problem raises :class:`~initstats.errors.SpecError` naming the
stage, the value and a hint.

Stages use one vocabulary, the node kinds of the graph: ``input``, ``relu``, ``linear``,
``batchnorm`` (random incoming weights), ``avgpool``, ``maxpool``, ``sum`` (deterministic ones).
Which layer made a stage is ``Stage.layer`` (``is_conv``, ``is_dense`` and ``is_pool`` ask it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from ..errors import SpecError, UnsupportedLayerError
from .geometry import AxisMap, all_to_all, axis_map
from .layers import AvgPool, Concat, Conv, Dense, IntOrTuple, Layer, MaxPool, Residual

__all__ = ["Stage", "build_stages", "NODE_KINDS", "RANDOM_KINDS", "DETERMINISTIC_KINDS", "POOL_KINDS", "SUM_KINDS"]

#: node kinds whose incoming weights are random (variance ``var``)
RANDOM_KINDS = frozenset({"relu", "linear", "batchnorm"})
#: node kinds with deterministic incoming weights
DETERMINISTIC_KINDS = frozenset({"avgpool", "sum", "sumrelu", "maxpool"})
POOL_KINDS = frozenset({"avgpool", "maxpool"})
#: residual sums: weights 1 from each branch (``sumrelu``: then a ReLU)
SUM_KINDS = frozenset({"sum", "sumrelu"})
NODE_KINDS: tuple[str, ...] = ("input", "relu", "linear", "avgpool", "sum", "sumrelu", "maxpool", "batchnorm")


@dataclass(frozen=True, kw_only=True)
class Stage:
    """One layer of neurons in the flattened layer DAG of an :class:`~initstats.spec.Arch`.

    Attributes
    ----------
    index, name : int, str
        Position in topological order (stage 0 is the input) and name (``conv1``, ``logits``, ...).
    kind : str
        The node kind of its neurons (see the module docstring).
    shape : tuple of int
        ``(channels, *spatial)``, or ``(units,)`` for a dense stage.
    sources : tuple of int
        Indices of the stages it reads (two for a residual ``sum``: the block input and the body;
        a convolution or dense layer after a :class:`~initstats.spec.Concat` reads every
        concatenated stage, its input channels being theirs in order).
    axes : tuple of AxisMap
        How each spatial axis of ``sources[0]`` maps to this stage's (all-to-all for dense layers
        and global pools; empty when the source has no spatial axes).
    fan_in : int
        The He fan-in of random-weight stages (``in_channels / groups * prod(kernel)``), else 0.
    groups : int
        Channel groups of a grouped convolution (1 otherwise): output channel ``c`` reads the input
        channels of group ``c // (channels / groups)`` only.
    var_factor : Fraction
        Multiplies the variance ``2/fan_in`` of its random weights (an evaluation-mode BatchNorm
        folded in: ``1/(1 + eps)``); 1 otherwise.
    kernel, stride, dilation, pad : tuple of int
        The resolved window geometry per spatial axis of convolutions and windowed pools (pools:
        dilation 1, pad 0); empty for other stages.
    padding : str or None
        The padding mode of a convolution (``zero``, ``circular``, ``reflect``); pools read no padding.
    layer : Layer or None
        The layer that made the stage (None for the input).

    Examples
    --------
    >>> stages = build_stages((3, 8, 8), (Conv(4, padding="circular"), AvgPool(2), Dense(10, activation=None)))
    >>> conv, pool = stages[1], stages[2]
    >>> conv.kind, conv.shape, conv.fan_in, conv.padding, conv.is_conv, conv.mixes_channels
    ('relu', (4, 8, 8), 27, 'circular', True, True)
    >>> pool.kind, pool.kernel, pool.stride, pool.is_pool, pool.mixes_channels, pool.size
    ('avgpool', (2, 2), (2, 2), True, False, 64)
    """

    index: int
    name: str
    kind: str
    shape: tuple[int, ...]
    sources: tuple[int, ...] = ()
    axes: tuple[AxisMap, ...] = ()
    fan_in: int = 0
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    pad: tuple[int, ...] = ()
    padding: str | None = None
    groups: int = 1
    var_factor: Fraction = Fraction(1)
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

    @property
    def is_conv(self) -> bool:
        return isinstance(self.layer, Conv)

    @property
    def is_dense(self) -> bool:
        return isinstance(self.layer, Dense)

    @property
    def is_pool(self) -> bool:
        return self.kind in POOL_KINDS

    @property
    def mixes_channels(self) -> bool:
        """True for convolutions and dense layers (random weights across channels)."""
        return self.is_conv or self.is_dense


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


def build_stages(input_shape: tuple[int, ...], layers: tuple[Layer, ...]) -> tuple[Stage, ...]:
    """The stages of ``layers`` on inputs of ``input_shape``, in topological order, validated.

    Examples
    --------
    >>> stages = build_stages((3, 8, 8), (Conv(4, stride=2), Dense(10, activation=None)))
    >>> [(s.name, s.kind, s.shape) for s in stages]
    [('x', 'input', (3, 8, 8)), ('conv1', 'relu', (4, 4, 4)), ('logits', 'linear', (10,))]
    >>> stages[1].kernel, stages[1].stride, stages[1].pad, stages[1].fan_in
    ((3, 3), (2, 2), (1, 1), 27)
    """
    stages: list[Stage] = [Stage(index=0, name="x", kind="input", shape=tuple(input_shape))]
    n_layers = len(layers)
    counter = [0]

    def add(block: tuple[Layer, ...], srcs: tuple[int, ...], prefix: str, top: bool) -> tuple[int, ...]:
        for pos, layer in enumerate(block):
            if top:
                counter[0] += 1
            number = counter[0] if top else pos + 1
            last = top and pos == n_layers - 1
            srcs = _add_layer(stages, layer, srcs, prefix, number, last, add)
        return srcs

    add(tuple(layers), (0,), "", True)
    return tuple(stages)


def _single(stages: list[Stage], srcs: tuple[int, ...], name: str, what: str) -> int:
    if len(srcs) > 1:
        raise SpecError(f"{name}: {what} reads a concatenation of {', '.join(stages[k].name for k in srcs)}; "
                        "put a Conv (e.g. a 1x1 transition) or a Dense layer after a Concat first")
    return srcs[0]


def _add_layer(stages: list[Stage], layer: Layer, srcs: tuple[int, ...], prefix: str, number: int, last: bool,
               add) -> tuple[int, ...]:
    src = srcs[0]
    source = stages[src]
    c_in, spatial = sum(stages[k].channels for k in srcs), source.spatial
    rank = len(spatial)
    idx = len(stages)
    if isinstance(layer, Dense):
        name = "logits" if last else f"{prefix}dense{number}"
        stages.append(Stage(index=idx, name=name, kind=_layer_kind(layer), shape=(layer.out_features,),
                            sources=srcs, axes=tuple(all_to_all(n) for n in spatial),
                            fan_in=c_in * math.prod(spatial), var_factor=layer.var_factor, layer=layer))
    elif isinstance(layer, Conv):
        name = f"{prefix}conv{number}"
        if rank == 0:
            raise SpecError(f"{name}: a convolution needs spatial axes, but its input has shape {source.shape}")
        k = _tuple(layer.kernel, rank, name, "kernel")
        s = _tuple(layer.stride, rank, name, "stride")
        dil = _tuple(layer.dilation, rank, name, "dilation")
        p = (tuple(di * (ki - 1) // 2 for di, ki in zip(dil, k)) if layer.pad is None
             else _tuple(layer.pad, rank, name, "pad"))
        axes = tuple(axis_map(spatial[a], k[a], s[a], dil[a], p[a], layer.padding, where=f"{name} (axis {a})")
                     for a in range(rank))
        if c_in % layer.groups:
            raise SpecError(f"{name}: groups={layer.groups} does not divide its {c_in} input channels; use a "
                            f"number of groups dividing both {c_in} and out_channels={layer.out_channels}")
        stages.append(Stage(index=idx, name=name, kind=_layer_kind(layer),
                            shape=(layer.out_channels, *(m.n_out for m in axes)), sources=srcs, axes=axes,
                            fan_in=c_in // layer.groups * math.prod(k), kernel=k, stride=s, dilation=dil, pad=p,
                            padding=layer.padding, groups=layer.groups, var_factor=layer.var_factor, layer=layer))
    elif isinstance(layer, (AvgPool, MaxPool)):
        kind = "avgpool" if isinstance(layer, AvgPool) else "maxpool"
        name = f"{prefix}{kind}{number}"
        if rank == 0:
            raise SpecError(f"{name}: pooling needs spatial axes, but its input has shape {source.shape}")
        geometry: dict = {}
        if layer.kernel is None:
            axes = tuple(all_to_all(n) for n in spatial)
        else:
            k = _tuple(layer.kernel, rank, name, "kernel")
            s = _tuple(layer.stride if layer.stride is not None else layer.kernel, rank, name, "stride")
            axes = tuple(axis_map(spatial[a], k[a], s[a], 1, 0, "zero", where=f"{name} (axis {a})")
                         for a in range(rank))
            geometry = dict(kernel=k, stride=s, dilation=(1,) * rank, pad=(0,) * rank)
        out = []
        for j, k_src in enumerate(srcs):  # pooling a concatenation: one pool per branch, channel by channel
            stages.append(Stage(index=len(stages), name=name if len(srcs) == 1 else f"{name}.{j}", kind=kind,
                                shape=(stages[k_src].channels, *(m.n_out for m in axes)), sources=(k_src,),
                                axes=axes, layer=layer, **geometry))
            out.append(len(stages) - 1)
        return tuple(out)
    elif isinstance(layer, Residual):
        name = f"{prefix}res{number}"
        if last:
            raise SpecError(f"{name}: the last layer must be Dense (the logits), not Residual")
        out = _single(stages, add(layer.body, srcs, f"{name}.", False), name, "the residual sum")
        short = (_single(stages, add(layer.shortcut, srcs, f"{name}.shortcut.", False), name, "the residual sum")
                 if layer.shortcut else _single(stages, srcs, name, "an identity shortcut"))
        if stages[out].shape != stages[short].shape:
            what = "the shortcut's output" if layer.shortcut else "its input"
            raise SpecError(
                f"{name}: the body maps shape {(c_in, *spatial)} to {stages[out].shape}, but {what} has shape "
                f"{stages[short].shape}; a residual sum needs the same shape (use stride 1, 'same' padding and "
                f"{c_in} channels, or a shortcut that matches)"
            )
        idx = len(stages)
        kind = "sumrelu" if layer.activation == "relu" else "sum"
        stages.append(Stage(index=idx, name=f"{name}.sum", kind=kind, shape=stages[out].shape, sources=(short, out),
                            layer=layer))
    elif isinstance(layer, Concat):
        return _concat(stages, layer, srcs, f"{prefix}cat{number}", last, add)
    else:
        raise UnsupportedLayerError(f"layer {layer!r} is not supported; use Dense, Conv, AvgPool, MaxPool, Residual "
                                    "or Concat")
    return (idx,)


def _concat(stages: list[Stage], layer: Concat, srcs: tuple[int, ...], name: str, last: bool, add) -> tuple[int, ...]:
    """The stages a concatenation's reader reads: each branch's output stages, in order (no stage of its own)."""
    if last:
        raise SpecError(f"{name}: the last layer must be Dense (the logits), not Concat")
    out: list[int] = []
    for j, branch in enumerate(layer.branches):
        out.extend(add(branch, srcs, f"{name}.{j}.", False) if branch else srcs)
    spatial = {stages[k].spatial for k in out}
    if len(spatial) > 1:
        raise SpecError(f"{name}: its branches end in shapes {[stages[k].shape for k in out]}; a channel "
                        "concatenation needs the same spatial size (use stride 1 and 'same' padding in the branches)")
    if len(set(out)) < len(out):
        twice = next(stages[k].name for k in out if out.count(k) > 1)
        raise SpecError(f"{name}: it concatenates {twice} more than once; concatenate each tensor once")
    return tuple(out)
