"""Hypothesis strategies for network DAGs and architecture specs, for tests of your own.

>>> from hypothesis import given
>>> from initstats.testing import network_dags
>>> from initstats.exact import analyse
>>> @given(network_dags())
... def test_lemma8(g):
...     assert all(o.lemma8_sum == 1 for o in analyse(g).outputs)

Requires the ``test`` extra (hypothesis).
"""

from __future__ import annotations

from fractions import Fraction

import networkx as nx
from hypothesis import assume
from hypothesis import strategies as st

from .errors import SpecError
from .spec import PADDINGS, Arch, AvgPool, Conv, Dense, Layer, MaxPool, Residual

__all__ = ["network_dags", "chain_specs", "specs"]

_HIDDEN_KINDS = ("relu", "linear", "avgpool", "sum", "sumrelu")


@st.composite
def network_dags(draw, *, max_inputs: int = 4, max_hidden: int = 7, kinds: tuple[str, ...] = _HIDDEN_KINDS,
                 explicit_var: bool = True) -> nx.DiGraph:
    """Random valid network DAGs: inputs, hidden nodes of ``kinds``, some explicit ``var``.

    Node ids are integers in topological order; every non-input node has at least one
    predecessor, so the sources are exactly the inputs.  Sinks are the outputs.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from initstats.exact import analyse
    >>> @settings(max_examples=25, database=None, derandomize=True)
    ... @given(network_dags(max_hidden=5))
    ... def test_lemma8(g):
    ...     assert all(out.lemma8_sum == 1 for out in analyse(g).outputs)
    >>> test_lemma8()                   # Lemma 8 on 25 random DAGs
    """
    n_in = draw(st.integers(1, max_inputs))
    n_hidden = draw(st.integers(1, max_hidden))
    g = nx.DiGraph()
    for i in range(n_in):
        g.add_node(i, kind="input")
    for v in range(n_in, n_in + n_hidden):
        kind = draw(st.sampled_from(kinds))
        g.add_node(v, kind=kind)
        preds = draw(st.lists(st.integers(0, v - 1), min_size=1, max_size=min(4, v), unique=True))
        for u in preds:
            attrs = {}
            if explicit_var and kind in ("relu", "linear", "batchnorm") and draw(st.booleans()):
                attrs["var"] = Fraction(draw(st.integers(1, 6)), draw(st.integers(1, 6)))
            g.add_edge(u, v, **attrs)
    return g


def _try_arch(input_shape: tuple[int, ...], layers: list[Layer]) -> Arch:
    try:
        return Arch(input_shape, tuple(layers))
    except SpecError:
        assume(False)
        raise  # unreachable


@st.composite
def _conv(draw, rank: int, max_channels: int) -> Conv:
    k = draw(st.integers(1, 3))
    return Conv(draw(st.integers(1, max_channels)), k, stride=draw(st.integers(1, 2)),
                dilation=draw(st.integers(1, 2)), padding=draw(st.sampled_from(PADDINGS)),
                activation=draw(st.sampled_from(("relu", "relu", None))))


@st.composite
def chain_specs(draw, *, max_channels: int = 2, max_side: int = 6, max_layers: int = 3,
                pooling: bool = True, max_pool: bool = True) -> Arch:
    """Random chains of convolutions (every padding), pools and dense layers, 1-D or 2-D.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from initstats.graph.build import build_graph, count_edges
    >>> @settings(max_examples=25, database=None, derandomize=True)
    ... @given(chain_specs())
    ... def test_edge_count(arch):
    ...     assert count_edges(arch) == build_graph(arch).number_of_edges()
    >>> test_edge_count()               # on 25 random chains of convolutions, pools and dense layers
    """
    rank = draw(st.integers(1, 2))
    shape = (draw(st.integers(1, max_channels)), *draw(st.lists(st.integers(2, max_side), min_size=rank,
                                                                  max_size=rank)))
    layers: list[Layer] = []
    for _ in range(draw(st.integers(1, max_layers))):
        choice = draw(st.sampled_from(("conv", "conv", "pool") if pooling else ("conv",)))
        if choice == "conv":
            layers.append(draw(_conv(rank, max_channels)))
        else:
            cls = draw(st.sampled_from((AvgPool, MaxPool) if max_pool else (AvgPool,)))
            layers.append(cls(draw(st.integers(1, 3)), draw(st.none() | st.integers(1, 2))))
    if draw(st.booleans()):
        layers.append(Dense(draw(st.integers(1, 3))))
    layers.append(Dense(draw(st.integers(1, 3)), activation=draw(st.sampled_from((None, None, "relu")))))
    return _try_arch(shape, layers)


@st.composite
def specs(draw, *, max_channels: int = 2, max_side: int = 5) -> Arch:
    """Random specs including residual blocks: one or two, identity shortcuts or strided 1x1
    projections, optionally a ReLU after the sum and average pools between blocks.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from initstats.exact import analyse
    >>> @settings(max_examples=15, database=None, derandomize=True)
    ... @given(specs())
    ... def test_engines_agree(arch):
    ...     compressed, neuron = analyse(arch).outputs[0], analyse(arch, method="neuron").outputs[0]
    ...     assert (compressed.lemma8_sum, compressed.grad_sq_total) == (neuron.lemma8_sum, neuron.grad_sq_total)
    >>> test_engines_agree()            # the compressed engine against the neuron-level one, residual blocks included
    """
    if draw(st.booleans()):
        return draw(chain_specs(max_channels=max_channels, max_side=max_side))
    rank = draw(st.integers(1, 2))
    c = draw(st.integers(1, max_channels))
    shape = (c, *draw(st.lists(st.integers(2, max_side), min_size=rank, max_size=rank)))
    padding = draw(st.sampled_from(PADDINGS))
    layers: list[Layer] = []
    if draw(st.booleans()):
        layers.append(Conv(c, 3, padding=padding))
    for _ in range(draw(st.integers(1, 2))):
        if draw(st.booleans()):      # a downsampling block: strided body, strided 1x1 projection
            out = draw(st.integers(1, max_channels))
            body: list[Layer] = [Conv(out, 3, stride=2, padding=padding),
                                 Conv(out, 3, padding=padding, activation=draw(st.sampled_from(("relu", None))))]
            shortcut: tuple[Layer, ...] = (Conv(out, 1, stride=2, activation=None),)
            c = out
        else:
            body = [Conv(c, draw(st.sampled_from((1, 3))), padding=padding,
                         activation=draw(st.sampled_from(("relu", None)))) for _ in range(draw(st.integers(1, 2)))]
            shortcut = ()
        layers.append(Residual(tuple(body), shortcut=shortcut, activation=draw(st.sampled_from(("relu", None)))))
        if draw(st.integers(0, 3)) == 0:
            layers.append(AvgPool(2))
    if draw(st.booleans()):
        layers.append(AvgPool(None))
    layers.append(Dense(draw(st.integers(1, 3)), activation=None))
    return _try_arch(shape, layers)
