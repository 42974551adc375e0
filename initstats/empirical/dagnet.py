"""Batched ensembles of real networks drawn from a node-link DAG.

Each edge carries one independent Gaussian weight with variance ``var`` (default ``2/in-degree``,
halved for ``init='lecun'``).  Nodes compute:

- ``relu``: ReLU of the weighted sum of their inputs; ``linear``: the weighted sum; ``sumrelu``: ReLU of their sum;
- ``avgpool``: the mean of their inputs; ``sum``: their sum; ``maxpool``: their max;
- ``batchnorm``: the weighted sum, normalised over the batch (per network), then ReLU.

This is the *real* network, not its annealed prediction: where paths merge through ``avgpool`` or
``sum`` nodes, ReLU states and weights are correlated and the measured ``E||grad f||^2`` can exceed
the annealed value (THEORY.md section 4b).

Nodes are evaluated one topological generation at a time with gathers and ``index_add`` over all
``N`` networks at once; the outputs (non-input nodes without successors) are the logits, in graph
order.
"""

from __future__ import annotations

import math

import networkx as nx
import torch

from ..graph.io import check_graph
from ..spec import RANDOM_KINDS
from .common import init_gain

__all__ = ["DagEnsemble"]


class _Block:
    """The edges into one generation that come from one earlier generation."""

    def __init__(self, src_gen: int, src_idx: list[int], dst_idx: list[int], std: list[float],
                 fixed: list[float], is_random: list[bool], is_max: list[bool]) -> None:
        self.src_gen = src_gen
        self.src_idx = torch.tensor(src_idx, dtype=torch.long)
        self.dst_idx = torch.tensor(dst_idx, dtype=torch.long)
        self.std = torch.tensor(std, dtype=torch.float64)
        self.fixed = torch.tensor(fixed, dtype=torch.float64)
        self.is_random = torch.tensor(is_random)
        self.is_max = torch.tensor(is_max)


class DagEnsemble:
    """``n_nets`` independent real networks on a validated DAG.

    Inputs ``x`` have shape ``(batch, n_nets, n_inputs)`` (inputs in graph order); the call returns
    ``(batch, n_nets, n_outputs)``.

    Examples
    --------
    >>> import networkx as nx, torch
    >>> g = nx.DiGraph()
    >>> g.add_nodes_from(["x0", "x1"], kind="input"); g.add_node("h", kind="relu"); g.add_node("o", kind="linear")
    >>> g.add_edges_from([("x0", "h"), ("x1", "h"), ("h", "o")])
    >>> ens = DagEnsemble(g, n_nets=4)
    >>> ens.resample(torch.Generator().manual_seed(0))
    >>> ens(torch.randn(2, 4, 2)).shape
    torch.Size([2, 4, 1])
    """

    def __init__(self, g: nx.DiGraph, n_nets: int, *, init: str = "he", device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        check_graph(g)
        gain = init_gain(init) / 2.0  # He is the graph's own variance; LeCun halves it
        self.n_nets = n_nets
        self.device = torch.device(device)
        self.dtype = dtype
        gens = [list(gen) for gen in nx.topological_generations(g)]
        kinds = dict(g.nodes(data="kind"))
        # generation 0 holds every source; keep inputs in graph order there
        self.inputs = [n for n in g.nodes if kinds[n] == "input"]
        self.outputs = [n for n in g.nodes if kinds[n] != "input" and g.out_degree(n) == 0]
        gens[0] = self.inputs + [n for n in gens[0] if kinds[n] != "input"]
        where = {n: (gi, i) for gi, gen in enumerate(gens) for i, n in enumerate(gen)}
        self.sizes = [len(gen) for gen in gens]
        self.blocks: list[list[_Block]] = [[] for _ in gens]
        self.relu_mask: list[torch.Tensor | None] = [None]
        self.bn_mask: list[torch.Tensor | None] = [None]
        self.max_mask: list[torch.Tensor | None] = [None]
        n_random = 0
        for gi, gen in enumerate(gens[1:], start=1):
            per_src: dict[int, tuple[list, list, list, list, list, list]] = {}
            for i, v in enumerate(gen):
                kind, d = kinds[v], g.in_degree(v)
                for u, data in g.pred[v].items():
                    sg, si = where[u]
                    lists = per_src.setdefault(sg, ([], [], [], [], [], []))
                    lists[0].append(si)
                    lists[1].append(i)
                    random = kind in RANDOM_KINDS
                    var = float(data.get("var", 2 / d)) * gain if random else 0.0
                    lists[2].append(math.sqrt(var))
                    lists[3].append(1.0 / d if kind == "avgpool" else 1.0)
                    lists[4].append(random)
                    lists[5].append(kind == "maxpool")
                    n_random += random
            self.blocks[gi] = [_Block(sg, *lists) for sg, lists in sorted(per_src.items())]
            self.relu_mask.append(torch.tensor([kinds[v] in ("relu", "batchnorm", "sumrelu") for v in gen]))
            self.bn_mask.append(torch.tensor([kinds[v] == "batchnorm" for v in gen]))
            self.max_mask.append(torch.tensor([kinds[v] == "maxpool" for v in gen]))
        self.out_pos = [where[o] for o in self.outputs]
        self.n_random = n_random
        self._to_device()
        self.weights = [[torch.empty((n_nets, len(b.src_idx)), device=self.device, dtype=dtype)
                         if bool(b.is_random.any()) else None for b in blocks] for blocks in self.blocks]

    def _to_device(self) -> None:
        dev = self.device
        for blocks in self.blocks:
            for b in blocks:
                b.src_idx, b.dst_idx = b.src_idx.to(dev), b.dst_idx.to(dev)
                b.std, b.fixed = b.std.to(dev, self.dtype), b.fixed.to(dev, self.dtype)
                b.is_random, b.is_max = b.is_random.to(dev), b.is_max.to(dev)
        for masks in (self.relu_mask, self.bn_mask, self.max_mask):
            for i, m in enumerate(masks):
                if m is not None:
                    masks[i] = m.to(dev)

    @property
    def input_shape(self) -> tuple[int]:
        return (len(self.inputs),)

    @property
    def num_outputs(self) -> int:
        return len(self.outputs)

    def resample(self, generator: torch.Generator) -> None:
        """Draw fresh weights for every network, in place."""
        for blocks, weights in zip(self.blocks, self.weights):
            for b, w in zip(blocks, weights):
                if w is not None:
                    w.normal_(0.0, 1.0, generator=generator)
                    w.mul_(b.std)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        values: list[torch.Tensor] = [x]
        for gi in range(1, len(self.sizes)):
            shape = (batch, self.n_nets, self.sizes[gi])
            z = torch.zeros(shape, device=x.device, dtype=x.dtype)
            m = None
            max_mask = self.max_mask[gi]
            for b, w in zip(self.blocks[gi], self.weights[gi]):
                src = values[b.src_gen].index_select(2, b.src_idx)
                coef = b.fixed if w is None else torch.where(b.is_random, w, b.fixed)
                weighted = src * coef
                if bool(b.is_max.any()):
                    vals = torch.where(b.is_max, src, torch.full_like(src, -math.inf))
                    init = torch.full(shape, -math.inf, device=x.device, dtype=x.dtype)
                    part = init.scatter_reduce(2, b.dst_idx.expand(batch, self.n_nets, -1), vals, "amax",
                                               include_self=True)
                    m = part if m is None else torch.maximum(m, part)
                    weighted = torch.where(b.is_max, torch.zeros_like(weighted), weighted)
                z = z.index_add(2, b.dst_idx, weighted)
            if m is not None:
                z = torch.where(max_mask, m, z)
            bn = self.bn_mask[gi]
            if bool(bn.any()):
                mean = z.mean(0, keepdim=True)
                var = z.var(0, unbiased=False, keepdim=True)
                z = torch.where(bn, (z - mean) / torch.sqrt(var + 1e-5), z)
            z = torch.where(self.relu_mask[gi], torch.relu(z), z)
            values.append(z)
        return torch.stack([values[gi][:, :, i] for gi, i in self.out_pos], dim=2)
