"""Geometry and linear maps of the infinite-width recursion (:mod:`.infinite_width`).

Per stage of an :class:`~initstats.spec.Arch` and per (internal) axis: which source position each
kernel entry reads (tap tables, with a sentinel for zero padding), the cyclic box of positions each
input coordinate reaches, and the linear map of a convolution, dense layer, pool or sum applied on
both sides of a kernel tensor (the same kernel entry on both sides for random weights, each side on
its own for deterministic ones).  Private: the recursion's only consumer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..spec import Arch, Stage, window_entries
from ..spec.geometry import _reflect


# -- geometry: taps per axis and the cyclic box each input coordinate reaches --------------------

@dataclass
class _Link:
    """How one stage reads one source along one (internal) axis."""

    taps: np.ndarray       # (entries, n_out), sentinel n_src: position read by each kernel entry
    weight: float          # per-entry weight on each side (pools: 1/window), 1 for random stages
    slots: np.ndarray      # (entries, n_dirs, S_out), sentinel S_src: the same in box-slot coordinates
    strided: tuple | None = None  # (ext, starts, step): taps[e, i] == ext[starts[e] + step * i]; ext None = identity


@dataclass
class _Geo:
    n: tuple[int, int]
    lo: tuple[np.ndarray, np.ndarray]     # box start per input coordinate, per axis
    size: tuple[int, int]                  # box length per axis
    region: tuple[np.ndarray, np.ndarray]  # (n_dirs, n) bool: positions reached


def _spatial2(shape: tuple[int, ...]) -> tuple[int, int]:
    sp = tuple(shape[1:])
    return (sp + (1, 1))[:2]  # type: ignore[return-value]


def _taps(stage: Stage, src_n: tuple[int, int], n: tuple[int, int]) -> tuple[list[np.ndarray], list[float]]:
    """Tap tables per axis (entries x n_out, sentinel = source size) and per-entry pool weights."""
    taps, weights = [], []
    for a in range(2):
        m, k = src_n[a], n[a]
        if stage.kind in ("sum", "sumrelu"):
            t = np.arange(k)[None, :]
        elif a < len(stage.kernel):  # convolution or windowed pool
            t = np.full((stage.kernel[a], k), m, dtype=np.int64)
            for i in range(k):
                for e, pos in window_entries(i, m, stage.kernel[a], stage.stride[a], stage.dilation[a],
                                             stage.pad[a], stage.padding or "zero"):
                    t[e, i] = pos
        else:  # dense layer, global pool, or an axis the tensors lack: all to all
            t = np.arange(m)[:, None] if k == 1 else np.arange(k)[None, :]
        taps.append(t.astype(np.int64))
        weights.append(1.0 / t.shape[0] if stage.kind == "avgpool" else 1.0)
    return taps, weights


def _strided(stage: Stage, a: int, m: int, taps: np.ndarray) -> tuple | None:
    """The taps as strided views of one extended source: ``(ext, starts, step)`` with
    ``taps[e, i] == ext[starts[e] + step * i]`` (``ext`` None: the source itself; an entry ``m`` reads
    zero padding), or None when they are not (then the tables are used as they are)."""
    entries, n_out = taps.shape
    if a < len(stage.kernel) and stage.kind not in ("sum", "sumrelu"):
        k, stride, dil, pad = stage.kernel[a], stage.stride[a], stage.dilation[a], stage.pad[a]
        mode = stage.padding or "zero"
        v = np.arange(-pad, (n_out - 1) * stride - pad + (k - 1) * dil + 1)
        inside = (v >= 0) & (v < m)
        if mode == "circular":
            ext = v % m
        elif mode == "zero":
            ext = np.where(inside, v, m)
        else:
            ext = np.array([t if 0 <= t < m else _reflect(int(t), m) for t in v])
        starts, step = np.arange(k) * dil, stride
        if np.array_equal(ext, np.arange(m)):
            ext = None
    else:
        ext, starts, step = None, np.arange(entries) if n_out == 1 else np.zeros(1, np.int64), 1
    if len(starts) != entries:
        return None
    index = starts[:, None] + step * np.arange(n_out)[None, :]
    got = index if ext is None else ext[np.minimum(index, len(ext) - 1)]
    ok = (index < (m if ext is None else len(ext))).all() and np.array_equal(got, taps)
    return (ext, tuple(int(e) for e in starts), int(step)) if ok else None


def _box(region: np.ndarray) -> tuple[np.ndarray, int]:
    """Smallest cyclic interval covering each row's reached positions: (start per row, common length)."""
    n_dirs, n = region.shape
    lo, span = np.zeros(n_dirs, dtype=np.int64), 1
    for r in range(n_dirs):
        pos = np.flatnonzero(region[r])
        if len(pos) == 0:
            continue
        gaps = np.diff(np.append(pos, pos[0] + n))
        k = int(np.argmax(gaps))
        lo[r] = pos[(k + 1) % len(pos)]
        span = max(span, n - int(gaps[k]) + 1)
    return lo, min(span, n)


def _geometry(arch: Arch, dirs: tuple[np.ndarray, np.ndarray]):
    """Per stage: its :class:`_Geo` and, per source, the :class:`_Link` of each axis."""
    st = arch.stages
    n0 = _spatial2(st[0].shape)
    geos: list[_Geo] = []
    region = tuple(np.arange(n0[a])[None, :] == dirs[a][:, None] for a in range(2))
    geos.append(_Geo(n0, (dirs[0].copy(), dirs[1].copy()), (1, 1), region))
    links: list[list[list[_Link]]] = [[]]
    for s in st[1:]:
        n = _spatial2(s.shape) if s.is_conv or s.is_pool or s.kind in ("sum", "sumrelu") else (1, 1)
        if s.is_pool and not s.kernel:
            n = (1, 1)
        per_src, reach = [], [np.zeros((len(dirs[a]), n[a]), bool) for a in range(2)]
        tap_sets = [(_taps(s, geos[k].n, n), k) for k in s.sources]
        for (taps, _), k in tap_sets:
            for a in range(2):
                src = np.concatenate([geos[k].region[a], np.zeros((len(dirs[a]), 1), bool)], axis=1)
                reach[a] |= src[:, taps[a]].any(axis=1)
        boxes = [_box(reach[a]) for a in range(2)]
        geo = _Geo(n, (boxes[0][0], boxes[1][0]), (boxes[0][1], boxes[1][1]), tuple(reach))  # type: ignore[arg-type]
        for (taps, weights), k in tap_sets:
            src, axes = geos[k], []
            for a in range(2):
                pos = (geo.lo[a][:, None] + np.arange(geo.size[a])[None, :]) % n[a]          # (dirs, S)
                t = np.concatenate([taps[a], np.full((taps[a].shape[0], 1), src.n[a])], axis=1)[:, pos]
                slot = (t - src.lo[a][None, :, None]) % src.n[a]
                slot = np.where((t == src.n[a]) | (slot >= src.size[a]), src.size[a], slot)
                axes.append(_Link(taps[a], weights[a], slot, _strided(s, a, src.n[a], taps[a])))
            per_src.append(axes)
        geos.append(geo)
        links.append(per_src)
    return geos, links


# -- the linear maps (convolutions, dense layers, pools, sums) on the three kinds of tensor --------------------

def _pad(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x`` with one slab of zeros appended along ``dim`` (what the sentinel indices read)."""
    return torch.cat([x, torch.zeros_like(x.narrow(dim, 0, 1))], dim=dim)


def _take(x: torch.Tensor, dim: int, rdim: int | None, index: torch.Tensor) -> torch.Tensor:
    """Positions along ``dim``: ``index`` (n_out,) for a dense side; for a box side ``index`` is
    ``(n_dirs, S_out)`` and ``y[.., r, .., j, ..] = x[.., r, .., index[r, j], ..]``."""
    if rdim is None:
        return x.index_select(dim, index)
    shape = [1] * x.dim()
    shape[rdim], shape[dim] = index.shape
    out = list(x.shape)
    out[dim] = index.shape[1]
    return torch.gather(x, dim, index.reshape(shape).expand(out))


def _extend(x: torch.Tensor, dim: int, ext: np.ndarray | None, n_src: int) -> torch.Tensor:
    """``x`` along ``dim`` laid out as the extended source ``ext`` (padding included); a copy unless identity.

    Zero padding (``ext`` = sentinels, ``0 .. n-1``, sentinels) and circular padding (the last
    positions, ``0 .. n-1``, the first ones) are one copy; any other layout an index copy."""
    if ext is None:
        return x
    lo = int(np.argmax(ext == 0)) if (ext == 0).any() else -1
    hi = len(ext) - lo - n_src
    if lo >= 0 and hi >= 0 and np.array_equal(ext[lo:lo + n_src], np.arange(n_src)):
        head, tail = ext[:lo], ext[lo + n_src:]
        if (head == n_src).all() and (tail == n_src).all():
            widths = [0, 0] * (x.dim() - 1 - dim) + [lo, hi]
            return torch.nn.functional.pad(x, widths)
        if np.array_equal(head, np.arange(n_src - lo, n_src)) and np.array_equal(tail, np.arange(hi)):
            return torch.cat([x.narrow(dim, n_src - lo, lo), x, x.narrow(dim, 0, hi)], dim=dim)
    if (ext == n_src).any():
        x = _pad(x, dim)
    return x.index_select(dim, torch.from_numpy(ext))


def _own(t: torch.Tensor) -> torch.Tensor:
    """``t`` if it owns its memory (a gather's or index copy's result), else a copy (a view of the source)."""
    return t.clone() if t._base is not None else t


def _view(x: torch.Tensor, dim: int, start: int, step: int, n: int) -> torch.Tensor:
    """Positions ``start, start + step, ...`` (``n`` of them) along ``dim``: a view, no copy."""
    y = x.narrow(dim, start, (n - 1) * step + 1)
    return y if step == 1 else y[(slice(None),) * dim + (slice(None, None, step),)]


def _apply(x: torch.Tensor, sides, coupled: bool, link_axes: list[_Link], tabs) -> torch.Tensor:
    """One stage's linear map along both axes; ``sides[a]`` holds the two ``(dim, rdim or None)`` of
    axis ``a`` (``rdim``: the direction axis of a box side) and ``tabs[a]`` their index tables.

    A dense side whose taps are strided (:func:`_strided`: convolutions and pools with zero or
    circular padding) reads each kernel entry as a view of the source extended once; box sides and
    other layouts gather through the tables."""
    for a in range(2):
        link, ((d1, r1), (d2, r2)) = link_axes[a], sides[a]
        taps_t, slot_t = tabs[a]
        entries, n_out = link.taps.shape
        fast = link.strided is not None
        xp = x
        for d, r in ((d1, r1), (d2, r2)):
            if fast and r is None:
                xp = _extend(xp, d, link.strided[0], x.shape[d])
            else:
                xp = _pad(xp, d)

        def side(y: torch.Tensor, d: int, r: int | None, e: int) -> torch.Tensor:
            if r is None and fast:
                return _view(y, d, link.strided[1][e], link.strided[2], n_out)
            return _take(y, d, r, taps_t[e] if r is None else slot_t[e])

        acc = None
        if coupled:  # a random weight: the same kernel entry on both sides
            for e in range(entries):
                t = side(side(xp, d1, r1, e), d2, r2, e)
                acc = _own(t) if acc is None else acc.add_(t)
        else:        # deterministic weights: each side on its own
            for e in range(entries):
                t = side(xp, d1, r1, e)
                acc = _own(t) if acc is None else acc.add_(t)
            y, acc = acc.mul_(link.weight), None
            for e in range(entries):
                t = side(y, d2, r2, e)
                acc = _own(t) if acc is None else acc.add_(t)
            acc.mul_(link.weight)
        x = acc
    return x
