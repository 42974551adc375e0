"""What a verification measures: its networks in order, and the coordinate groups of its map claims.

:func:`family_grid` lists the networks of a family run (one per input size and average-pooling
size); :func:`border_rings` groups the coordinates of an image by their distance to the border and
:func:`graph_groups` those of a DAG by quantiles of their exact value: the per-coordinate map is
tested group by group, with standard errors over networks.  :mod:`initstats.verify` and the sweeps
of :mod:`initstats.sweep` share them, so a sweep measures exactly the networks ``verify`` would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .errors import OptionError
from .families import make_arch, with_avgpool, with_logit_relu
from .spec import Arch

__all__ = ["family_grid", "border_rings", "graph_groups"]


def family_grid(name: str, dims: Sequence[int], *, pools: Sequence[int] = (1,), family_options: dict | None = None,
                literal_h1: bool = False) -> list[tuple[int, int, Arch]]:
    """The networks :func:`verify_family` measures, in its order: ``(px, pool, spec)`` per size and pool.

    Examples
    --------
    >>> grid = family_grid("cnn", [32, 64], pools=[1, 2], family_options={"channels": 2, "downsample": "avg"})
    >>> [(px, a, arch.d) for px, a, arch in grid]
    [(32, 1, 3072), (32, 2, 3072), (64, 1, 12288), (64, 2, 12288)]
    """
    if not dims:
        raise OptionError("give at least one input size, e.g. dims=[32, 64]")
    if len(set(dims)) != len(dims) or len(set(pools)) != len(pools):
        raise OptionError(f"dims {list(dims)} and pools {list(pools)} must not repeat values")
    grid: list[tuple[int, int, Arch]] = []
    for px in dims:
        base = make_arch(name, px, **(family_options or {}))
        for a in pools:
            arch = with_avgpool(base, a)
            grid.append((px, a, with_logit_relu(arch) if literal_h1 else arch))
    return grid


def border_rings(input_shape: tuple[int, ...]) -> tuple[np.ndarray, list[str]]:
    """Group input coordinates by their distance to the nearest border of the spatial grid.

    Rings ``0``, ``1``, ``2-3`` and ``>=4`` (those that occur), the same for every channel.
    Without spatial axes every coordinate is in one group.

    Examples
    --------
    >>> groups, labels = border_rings((1, 6, 6))
    >>> labels
    ['border', 'ring 1', 'rings 2-3']
    >>> groups.reshape(6, 6)[2].tolist()        # the third row: border, ring 1, rings 2-3, ..., border
    [0, 1, 2, 2, 1, 0]
    >>> border_rings((5,))[1]                   # no spatial axes: one group
    ['all']
    """
    spatial = input_shape[1:]
    if not spatial:
        return np.zeros(math.prod(input_shape), dtype=np.int64), ["all"]
    grids = np.meshgrid(*(np.minimum(np.arange(n), n - 1 - np.arange(n)) for n in spatial), indexing="ij")
    dist = np.minimum.reduce([g for g in grids]).reshape(-1)
    bins = np.digitize(dist, [1, 2, 4])  # 0 | 1 | 2-3 | >=4
    labels_all = ["border", "ring 1", "rings 2-3", "interior"]
    present = sorted(set(bins.tolist()))
    remap = {b: i for i, b in enumerate(present)}
    groups = np.array([remap[b] for b in bins.tolist()], dtype=np.int64)
    return np.tile(groups, input_shape[0]), [labels_all[b] for b in present]


def graph_groups(exact) -> tuple[np.ndarray, list[str]]:
    """The coordinate groups of a DAG's map claim: quantiles of the first output's exact value.

    Examples
    --------
    >>> from initstats.exact import analyse
    >>> from initstats.families import make_arch
    >>> from initstats.graph import build_graph
    >>> groups, labels = graph_groups(analyse(build_graph(make_arch("cnn", 8, channels=2))))
    >>> len(groups), labels[0]
    (192, 'quantile group 1')
    """
    first = exact.outputs[0]
    return _value_groups(first.grad_sq.to_numpy() if first.grad_sq is not None else np.zeros(exact.d))


def _value_groups(pred: np.ndarray, max_groups: int = 4) -> tuple[np.ndarray, list[str]]:
    """Group coordinates of a DAG by quantiles of their predicted value."""
    distinct = np.unique(pred)
    if len(distinct) == 1:
        return np.zeros(len(pred), dtype=np.int64), ["all"]
    edges = np.unique(np.quantile(pred, np.linspace(0, 1, max_groups + 1)[1:-1]))
    groups = np.searchsorted(edges, pred, side="right")
    present = sorted(set(groups.tolist()))
    remap = {b: i for i, b in enumerate(present)}
    return np.array([remap[b] for b in groups.tolist()], dtype=np.int64), [f"quantile group {i + 1}" for i in range(len(present))]
