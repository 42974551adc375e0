"""The backward pass over a DAG: walk probabilities, annealed gradients and path-degree profiles.

Lemma 8's walk probabilities, the annealed prediction ``E(df_o/dx)^2`` and the (S) path-degree
profiles are one backward pass from an output ``o`` in reverse topological order,

    acc[o] = 1,    acc[u] = sum over successors v of  mult(u->v) * w(u->v) (x) acc[v],

with three weights:

- walk: ``w = 1/d_v`` (Fractions); at an input ``x``, ``acc[x] = r(x)``, the probability that a
  walk from ``o`` stepping to a uniformly chosen predecessor ends at ``x``;
- annealed gradient (the path sum): ``w = c(u->v)`` (Fractions), ``c = var/2`` into a ReLU node,
  ``var`` into a linear node, ``1/d_v^2`` into an average pool, ``1`` into a sum -- the annealed
  value where H5 holds; :mod:`initstats.exact.crossterms` adds the cross terms where it fails;
- profile: ``w`` appends ``label(v)`` to every multiset (Counters of multisets, each multiset
  coded as a product of primes, one prime per distinct label); at an input this is the multiset,
  over paths, of the multisets of labels along each path.

Everything is exact (integers and :class:`fractions.Fraction`) and costs O(edges) operations
on values of bounded size per pass; paths are never enumerated.  ``mult`` lets a compressed
graph (one node per class of interchangeable neurons) feed the same pass.

Assumptions: the graph is a DAG given in topological order; a node that cannot reach ``o``
gets no value (``None``), which the passes treat as 0.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from ..errors import ExactLimitError

__all__ = ["BackwardGraph", "CoefficientTable", "walk_pass", "linear_pass", "profile_pass", "LabelCode", "exact_sum", "at_inputs"]


class CoefficientTable:
    """Distinct edge coefficients, each stored once: the ``coefs`` of a :class:`BackwardGraph`.

    Examples
    --------
    >>> table = CoefficientTable()
    >>> table.intern(Fraction(1, 2)), table.intern(None), table.intern(Fraction(2, 4))
    (0, 1, 0)
    >>> table.values
    [Fraction(1, 2), None]
    """

    def __init__(self) -> None:
        self.values: list[Fraction | None] = []
        self._index: dict[Fraction | None, int] = {}

    def intern(self, c: Fraction | None) -> int:
        """The index of ``c`` in :attr:`values`, appending it the first time."""
        k = self._index.setdefault(c, len(self.values))
        if k == len(self.values):
            self.values.append(c)
        return k


@dataclass(frozen=True, eq=False)
class BackwardGraph:
    """A DAG in the integer form the passes read.

    Attributes
    ----------
    names : sequence
        Node ids, indexed by node number.
    kinds : sequence of str
        Node kinds.
    degree : sequence of int
        In-degree ``d_v`` of the neuron each node stands for.
    succ : sequence of sequence of (int, int, int)
        ``succ[u]`` lists ``(v, mult, coef)``: ``mult`` neuron-level successors of class ``v``
        reached through edges whose annealed coefficient is ``coefs[coef]``.
    coefs : sequence of Fraction or None
        Annealed coefficients ``c(u->v)``; ``None`` where no annealed value exists (max pool,
        BatchNorm).
    order : sequence of int
        A topological order of all nodes.
    inputs, outputs : sequence of int
        Input nodes (in graph order) and output nodes.

    Examples
    --------
    >>> import networkx as nx
    >>> from initstats.exact.analysis import to_backward_graph
    >>> g = nx.DiGraph()
    >>> g.add_nodes_from(["x0", "x1"], kind="input")
    >>> g.add_node("h", kind="relu")
    >>> g.add_node("y", kind="linear")
    >>> g.add_edges_from([("x0", "h"), ("x1", "h"), ("h", "y"), ("x1", "y")])    # x1 also skips to y
    >>> bg, _ = to_backward_graph(g)
    >>> y = bg.names.index("y")
    >>> bg.names, bg.kinds, bg.degree
    (['x0', 'x1', 'h', 'y'], ['input', 'input', 'relu', 'linear'], [0, 0, 2, 2])
    >>> bg.succ[1], bg.coefs          # x1 -> h (coefficient var/2 = 1/2) and x1 -> y (var = 1)
    ([(2, 1, 0), (3, 1, 1)], [Fraction(1, 2), Fraction(1, 1)])
    """

    names: Sequence[Hashable]
    kinds: Sequence[str]
    degree: Sequence[int]
    succ: Sequence[Sequence[tuple[int, int, int]]]
    coefs: Sequence[Fraction | None]
    order: Sequence[int]
    inputs: Sequence[int]
    outputs: Sequence[int]


def exact_sum(groups: dict[int, int]) -> Fraction:
    """``sum(n / q for q, n in groups.items())`` exactly; few distinct denominators are cheap.

    Examples
    --------
    >>> exact_sum({3: 2, 6: 1})        # 2/3 + 1/6
    Fraction(5, 6)
    """
    if len(groups) == 1:
        (q, n), = groups.items()
        return Fraction(n, q)
    total = Fraction(0)
    for q, n in groups.items():
        total += Fraction(n, q)
    return total


def at_inputs(acc: Sequence[Fraction | None], inputs: Sequence[int]) -> tuple[Fraction, ...]:
    """A pass's values at the inputs, 0 for an input that cannot reach the output.

    Examples
    --------
    >>> at_inputs([Fraction(1, 4), None, Fraction(1)], [0, 1])    # input 1 has no path to the output
    (Fraction(1, 4), Fraction(0, 1))
    """
    zero = Fraction(0)
    return tuple(acc[x] if acc[x] is not None else zero for x in inputs)


def _as_pair(x: Fraction) -> tuple[int, int]:
    return x.numerator, x.denominator


def walk_pass(g: BackwardGraph, o: int) -> list[Fraction | None]:
    """Walk probabilities toward ``o``: ``acc[u]`` for every node (``None`` if ``u`` cannot reach ``o``).

    For an input ``x``, ``acc[x] = r(x) = sum over paths p from x to o of prod_{v in p~} 1/d_v``.

    Examples
    --------
    >>> import networkx as nx
    >>> from initstats.exact.analysis import to_backward_graph
    >>> g = nx.DiGraph()
    >>> g.add_nodes_from(["x0", "x1"], kind="input")
    >>> g.add_node("h", kind="relu")
    >>> g.add_node("y", kind="linear")
    >>> g.add_edges_from([("x0", "h"), ("x1", "h"), ("h", "y"), ("x1", "y")])    # x1 also skips to y
    >>> bg, _ = to_backward_graph(g)
    >>> y = bg.names.index("y")
    >>> r = at_inputs(walk_pass(bg, y), bg.inputs)
    >>> r, sum(r)                      # Lemma 8: the walk probabilities sum to 1
    ((Fraction(1, 4), Fraction(3, 4)), Fraction(1, 1))
    """
    acc: list[Fraction | None] = [None] * len(g.names)
    msg: list[tuple[int, int] | None] = [None] * len(g.names)
    degree, succ = g.degree, g.succ
    for u in reversed(g.order):
        if u == o:
            val = Fraction(1)
        else:
            groups: dict[int, int] = {}
            for v, m, _ in succ[u]:
                t = msg[v]
                if t is not None:
                    groups[t[1]] = groups.get(t[1], 0) + m * t[0]
            if not groups:
                continue
            val = exact_sum(groups)
        acc[u] = val
        if degree[u]:
            msg[u] = _as_pair(val / degree[u])
    return acc


def linear_pass(g: BackwardGraph, o: int) -> list[Fraction | None]:
    """The path sum of ``E(d f_o / d u)^2`` for every node ``u`` (``None`` if ``u`` cannot reach ``o``).

    It is the annealed value where H5 holds (no node has two deterministic out-edges leading to ``o``).

    Raises ``ValueError`` if a path to ``o`` crosses an edge without annealed coefficient.

    Examples
    --------
    >>> import networkx as nx
    >>> from initstats.exact.analysis import to_backward_graph
    >>> g = nx.DiGraph()
    >>> g.add_nodes_from(["x0", "x1"], kind="input")
    >>> g.add_node("h", kind="relu")
    >>> g.add_node("y", kind="linear")
    >>> g.add_edges_from([("x0", "h"), ("x1", "h"), ("h", "y"), ("x1", "y")])    # x1 also skips to y
    >>> bg, _ = to_backward_graph(g)
    >>> y = bg.names.index("y")
    >>> grad = at_inputs(linear_pass(bg, y), bg.inputs)
    >>> grad, sum(grad)                # annealed E(dy/dx)^2: x1 adds its skip path
    ((Fraction(1, 2), Fraction(3, 2)), Fraction(2, 1))
    """
    acc: list[Fraction | None] = [None] * len(g.names)
    msg: list[dict[int, tuple[int, int]] | None] = [None] * len(g.names)
    succ, coefs = g.succ, g.coefs
    for u in reversed(g.order):
        if u == o:
            val = Fraction(1)
        else:
            groups: dict[int, int] = {}
            for v, m, k in succ[u]:
                mv = msg[v]
                if mv is None:
                    continue
                t = mv.get(k)
                if t is None:
                    c = coefs[k]
                    if c is None:
                        raise ValueError(f"edge {g.names[u]!r} -> {g.names[v]!r} has no annealed coefficient")
                    t = mv[k] = _as_pair(c * acc[v])  # type: ignore[operator]
                groups[t[1]] = groups.get(t[1], 0) + m * t[0]
            if not groups:
                continue
            val = exact_sum(groups)
        acc[u] = val
        msg[u] = {}
    return acc


class LabelCode:
    """Multisets of hashable labels coded as products of primes (exact, hashable, cheap to extend).

    Examples
    --------
    >>> code = LabelCode()
    >>> code.prime("relu"), code.prime("avgpool"), code.prime("relu")
    (2, 3, 2)
    >>> code.decode(2 * 2 * 3)         # the multiset {relu, relu, avgpool}
    ['relu', 'relu', 'avgpool']
    """

    def __init__(self) -> None:
        self._prime: dict[Hashable, int] = {}
        self._label: dict[int, Hashable] = {}
        self._next = 2

    def prime(self, label: Hashable) -> int:
        p = self._prime.get(label)
        if p is None:
            p = self._next
            self._prime[label] = p
            self._label[p] = label
            n = p + 1
            while any(n % q == 0 for q in range(2, int(n ** 0.5) + 1)):
                n += 1
            self._next = n
        return p

    def decode(self, code: int) -> list[Hashable]:
        """The labels of a code (with repetitions), in the order primes were assigned."""
        out: list[Hashable] = []
        for p, label in self._label.items():
            while code % p == 0:
                code //= p
                out.append(label)
        if code != 1:
            raise ValueError("code contains a prime this LabelCode did not assign")
        return out


#: most (node, path-degree multiset) entries a profile pass may hold (about 1 GB): beyond, it stops
PROFILE_BUDGET = 5_000_000


def profile_pass(g: BackwardGraph, o: int, labels: Sequence[Hashable | None], code: LabelCode,
                 budget: int | None = None) -> list[dict[int, int] | None]:
    """Path-label profiles toward ``o``.

    ``acc[u]`` maps each multiset code to the number of neuron-level paths from ``u`` to ``o``
    whose nodes after ``u`` (``o`` included) carry that multiset of labels; nodes whose label is
    ``None`` add nothing.  With ``labels = degree`` the profile of an input ``x`` is
    ``{d_p : p in P(x, o)}`` of assumption (S).  More than ``budget`` multisets over all nodes
    (default :data:`PROFILE_BUDGET`) raise :class:`~initstats.errors.ExactLimitError`.

    Examples
    --------
    >>> import networkx as nx
    >>> from initstats.exact.analysis import to_backward_graph
    >>> g = nx.DiGraph()
    >>> g.add_nodes_from(["x0", "x1"], kind="input")
    >>> g.add_node("h", kind="relu")
    >>> g.add_node("y", kind="linear")
    >>> g.add_edges_from([("x0", "h"), ("x1", "h"), ("h", "y"), ("x1", "y")])    # x1 also skips to y
    >>> bg, _ = to_backward_graph(g)
    >>> y = bg.names.index("y")
    >>> code = LabelCode()
    >>> prof = profile_pass(bg, y, bg.degree, code)        # labels: in-degrees, as in (S)
    >>> [sorted((tuple(code.decode(k)), n) for k, n in prof[x].items()) for x in bg.inputs]
    [[((2, 2), 1)], [((2,), 1), ((2, 2), 1)]]
    """
    primes = [1 if lab is None else code.prime(lab) for lab in labels]
    limit = PROFILE_BUDGET if budget is None else budget
    budget = limit
    acc: list[dict[int, int] | None] = [None] * len(g.names)
    msg: list[dict[int, int] | None] = [None] * len(g.names)
    succ = g.succ
    for u in reversed(g.order):
        if u == o:
            val = {1: 1}
        else:
            val = {}
            for v, m, _ in succ[u]:
                mv = msg[v]
                if mv is None:
                    continue
                for key, n in mv.items():
                    val[key] = val.get(key, 0) + m * n
            if not val:
                continue
        acc[u] = val
        budget -= len(val)
        if budget < 0:
            raise ExactLimitError(
                f"the symmetry check (S) needs more than {limit:,} distinct path-degree multisets on this "
                f"network (node {g.names[u]!r} alone has {len(val):,}); deep residual networks multiply them with "
                "every block and every border position; analyse a smaller input size")
        p = primes[u]
        msg[u] = val if p == 1 else {key * p: n for key, n in val.items()}
    return acc
