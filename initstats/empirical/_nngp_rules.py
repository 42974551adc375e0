"""What the infinite-width recursion (:mod:`.infinite_width`) supports, and what it can use.

``_check`` refuses the layers and layouts outside its assumptions (with the reason and a way out),
``_period`` finds the input shifts that leave a network unchanged (circular convolutions and tiling
windows: one cell of input coordinates then serves all), ``_exactness`` says whether the value is
exact at every width, and ``_factor`` is the weight variance a random stage gives each source's
kernel.  Private: the recursion's only consumer.
"""

from __future__ import annotations

import math

from ..errors import UnsupportedLayerError
from ..spec import Arch, Stage
from ._nngp_geometry import _spatial2


def _check(arch: Arch) -> None:
    st = arch.stages
    gauss = [False] * len(st)
    for s in st[1:]:
        if s.groups > 1 and (len(s.sources) > 1 or _summed(arch, s.sources[0])):
            what = "a concatenation" if len(s.sources) > 1 else "the input"
            raise UnsupportedLayerError(
                f"{s.name}: a grouped convolution reading {what} gives its groups differently distributed "
                "channels, which the recursion's one kernel per stage cannot hold; put an ungrouped convolution "
                "first, use the exact annealed value, or measure it")
        if s.kind in ("maxpool", "batchnorm"):
            what = "max pooling" if s.kind == "maxpool" else "BatchNorm"
            raise UnsupportedLayerError(
                f"{s.name}: {what} has no closed-form infinite-width kernel here; use average pooling / no "
                f"BatchNorm, or measure it (initstats.empirical.measure)")
        if s.kind in ("sum", "sumrelu"):
            x, y = s.sources
            if _summed(arch, x) or _summed(arch, y):
                raise UnsupportedLayerError(f"{s.name}: a residual sum reading the input directly is not supported; "
                                            f"put a convolution before the first residual block")
            if st[x].kind != "linear" and st[y].kind != "linear":
                raise UnsupportedLayerError(
                    f"{s.name}: neither branch ends in a random linear layer, so the branches are correlated; "
                    f"end the body with Conv(..., activation=None)")
            if s.kind == "sumrelu" and not (gauss[x] and gauss[y]):
                raise UnsupportedLayerError(
                    f"{s.name}: a ReLU after a sum with a post-ReLU branch ({st[x].name} + {st[y].name}) acts on a "
                    f"non-Gaussian pre-activation; the recursion needs Gaussian ones (use activation=None on the "
                    f"sum, or a projection shortcut)")
            gauss[s.index] = s.kind == "sum" and gauss[x] and gauss[y]
        elif s.is_pool:
            gauss[s.index] = gauss[s.sources[0]]
        else:
            gauss[s.index] = s.kind == "linear"


def _period(arch: Arch) -> tuple[int, int] | None:
    """Input shifts per axis under which the network is unchanged (circular convolutions, tiling windows)."""
    cum = {0: (1, 1)}
    period = [1, 1]
    for s in arch.stages[1:]:
        src = arch.stages[s.sources[0]]
        step = [math.lcm(*(cum[k][a] for k in s.sources)) for a in range(2)]  # a concatenation: every branch
        if s.kernel:
            for a, n in enumerate(src.spatial):
                k, stride = s.kernel[a], s.stride[a]
                extent = s.dilation[a] * (k - 1) + 1
                tiles = s.pad[a] == 0 and extent <= stride  # windows side by side, no padding read
                ok = n % stride == 0 and ((s.is_conv and s.padding == "circular") or tiles)
                if not ok:
                    return None
                step[a] *= stride
        cum[s.index] = tuple(step)
        period = [math.lcm(period[a], step[a]) for a in range(2)]
    spatial = _spatial2(arch.input_shape)
    return tuple(min(period[a], spatial[a]) for a in range(2))  # type: ignore[return-value]


def _merges(arch: Arch) -> bool:
    """Whether a deterministic node (average pool over more than one position, residual sum) merges
    paths after a ReLU: where none does, the value equals the annealed path sum (THEORY.md 4c)."""
    st = arch.stages
    after_relu = [False] * len(st)
    merge = False
    for s in st[1:]:
        up = any(after_relu[k] or st[k].kind in ("relu", "sumrelu") for k in s.sources)
        after_relu[s.index] = up
        window = s.kind in ("sum", "sumrelu") or (s.is_pool and (not s.kernel or math.prod(s.kernel) > 1))
        merge |= up and window
    return merge


def _exactness(arch: Arch) -> tuple[bool, str]:
    st = arch.stages
    random = [s for s in st[1:] if s.kind in ("relu", "linear")]
    if not _merges(arch):
        return True, ("no deterministic merge (average pool, residual sum) after a ReLU: equals the annealed "
                      "path sum for every x at any width")
    hidden = random[:-1]
    if random and random[-1] is st[-1] and hidden and all(
            s.kind == "relu" and all(_summed(arch, k) for k in s.sources) for s in hidden):
        return True, ("one hidden random layer (its branches read the input): its pre-activations are exactly "
                      "Gaussian given x, so the value is E_W at any width")
    return False, ("gates merged by average pooling or residual sums after ReLUs deeper "
                   "than one hidden layer; finite width adds an O(1/width) correction")


def _summed(arch: Arch, k: int) -> bool:
    """Whether stage ``k``'s kernels hold the sum over its channels (the input, and average pools of it)
    rather than one channel's (hidden stages, whose channels are exchangeable)."""
    s = arch.stages[k]
    return k == 0 or (s.kind == "avgpool" and _summed(arch, s.sources[0]))


def _factor(arch: Arch, s: Stage, gain: float, k: int) -> float:
    """The weight of source ``k``'s kernel in random stage ``s``'s: ``gain / fan_in`` per input channel.

    A layer reading a channel concatenation (several sources) sums the kernels of all of them:
    its weights are independent across input channels, so no cross term between branches remains.
    A grouped convolution reads ``channels / groups`` exchangeable channels; a folded BatchNorm
    factor (``var_factor``) scales the weights' variance.
    """
    src = arch.stages[k]
    per_channel = src.channels // s.groups  # a grouped convolution reads the channels of one group
    return gain * float(s.var_factor) / s.fan_in * (1 if _summed(arch, k) else per_channel)


