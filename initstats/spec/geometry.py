"""Window geometry along one spatial axis: which input positions each output position reads.

Convolutions and pools read windows of ``kernel`` entries spaced by ``dilation``, moved by
``stride``, over an input padded by ``pad`` positions on both sides.  Zero padding drops the
entries that land beyond a border; circular padding wraps them around; reflect padding mirrors
them without repeating the edge (torch's ``'reflect'``), so one input position can be read by
several entries of one window.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import SpecError

__all__ = ["AxisMap", "axis_map", "window_entries", "all_to_all"]


@dataclass(frozen=True)
class AxisMap:
    """How one spatial axis of a layer's output reads the axis of its input.

    ``taps[i]`` lists ``(input_position, multiplicity)`` for output position ``i``: the
    multiplicity counts the kernel entries that land on that input position (more than one
    when circular or reflect padding wraps a kernel onto itself).  ``kernel`` is the window
    length that enters the He fan-in.

    Examples
    --------
    >>> m = axis_map(5, 3, 2, 1, 1, "zero")       # kernel 3, stride 2, pad 1 over 5 positions
    >>> m.n_out, m.taps[0], [m.in_degree(i) for i in range(m.n_out)]
    (3, ((0, 1), (1, 1)), [2, 3, 2])
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

    Examples
    --------
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

    Examples
    --------
    >>> axis_map(4, 3, 1, 1, 1, "circular").taps[0]      # position 0 wraps around to read position 3
    ((0, 1), (1, 1), (3, 1))
    >>> axis_map(2, 3, 1, 1, 2, "circular").taps[0]      # a kernel longer than the input lands twice
    ((0, 2), (1, 1))
    >>> axis_map(2, 5, 1, 1, 0, "zero")
    Traceback (most recent call last):
        ...
    initstats.errors.SpecError: layer: kernel extent 5 (kernel 5, dilation 1) is larger than the padded input 2 + 2*0, so the output would be smaller than one position; use a smaller kernel or dilation, or a larger input
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


def all_to_all(n_in: int) -> AxisMap:
    """The map of a dense layer or a global pool: one output position reads every input position.

    Examples
    --------
    >>> all_to_all(3)
    AxisMap(n_in=3, n_out=1, kernel=3, taps=(((0, 1), (1, 1), (2, 1)),))
    """
    return AxisMap(n_in, 1, n_in, (tuple((j, 1) for j in range(n_in)),))
