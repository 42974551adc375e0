"""The architecture: an input shape and layers, the one object both engines read.

An :class:`Arch` validates itself when made (each layer in its own ``__post_init__``, the whole
through :func:`~initstats.spec.stages.build_stages`) and derives its stages, input dimension and
node kinds from the layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

from ..errors import SpecError
from .layers import Dense, Layer
from .stages import SUM_KINDS, Stage, build_stages

__all__ = ["Arch", "classify_kinds", "node_id"]


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

    Examples
    --------
    >>> from initstats.spec import AvgPool, Conv
    >>> arch = Arch((3, 8, 8), (Conv(4, padding="circular"), AvgPool(2), Dense(10, activation=None)), name="small")
    >>> arch.d, arch.px, arch.num_classes, arch.hypothesis_set()
    (192, 8, 10, "H'")
    >>> arch.describe()
    'small (3, 8, 8): conv1 relu (4, 8, 8) -> avgpool2 avgpool (4, 4, 4) -> logits linear (10,)'
    >>> Arch((3, 8, 8), (Conv(4),))
    Traceback (most recent call last):
        ...
    initstats.errors.SpecError: the last layer must be Dense (the logits), got Conv; add Dense(num_classes, activation=None)
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
        return any(s.kind in SUM_KINDS for s in self.stages)

    @property
    def has_branches(self) -> bool:
        """Whether some stage reads several stages (a residual sum, or a layer after a :class:`Concat`)."""
        return any(len(s.sources) > 1 for s in self.stages)

    @property
    def node_kinds(self) -> frozenset[str]:
        return frozenset(s.kind for s in self.stages)

    @cached_property
    def stages(self) -> tuple[Stage, ...]:
        """The flattened layer DAG, in topological order (stage 0 is the input); see :func:`build_stages`."""
        return build_stages(self.input_shape, self.layers)

    def hypothesis_set(self) -> str:
        """``'H'``, ``"H'"`` (average pooling or residual sums) or ``'outside'`` (max pool, BatchNorm),
        from the layer kinds alone (see :func:`classify_kinds`; the exact engine also checks H5)."""
        return classify_kinds(self.node_kinds)

    def describe(self) -> str:
        """A one-line summary, e.g. ``cnn (3, 32, 32): conv1 relu (16, 32, 32) -> ...``."""
        parts = [f"{s.name} {s.kind} {s.shape}" for s in self.stages[1:]]
        return f"{self.name} {self.input_shape}: " + " -> ".join(parts)


def classify_kinds(kinds: frozenset[str] | set[str]) -> str:
    """Which hypothesis set a collection of node kinds allows: ``'H'``, ``"H'"`` or ``'outside'``.

    From the kinds alone; an output's label (:attr:`initstats.exact.OutputAnalysis.hypothesis_set`) also
    needs H5, which fails with overlapping pooling windows or reflect padding and makes it ``'outside'``.

    Examples
    --------
    >>> classify_kinds({"relu", "linear"}), classify_kinds({"relu", "avgpool"}), classify_kinds({"relu", "maxpool"})
    ('H', "H'", 'outside')
    """
    if kinds & {"maxpool", "batchnorm"}:
        return "outside"
    if kinds & {"avgpool", "sum", "sumrelu"}:
        return "H'"
    return "H"


def node_id(stage_name: str, index: tuple[int, ...]) -> str:
    """The graph node id of neuron ``index = (channel, *position)`` of a stage, e.g. ``'conv1[0,2,3]'``.

    Examples
    --------
    >>> node_id("conv1", (0, 2, 3)), node_id("logits", (7,))
    ('conv1[0,2,3]', 'logits[7]')
    """
    return f"{stage_name}[{','.join(map(str, index))}]"

