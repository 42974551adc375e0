"""Batched ensembles of independently initialised networks built from an :class:`~initstats.spec.Arch`.

``N`` networks run as one model: convolutions are grouped convolutions with ``groups=N``
(``N * g`` for a convolution of ``g`` groups)
(activations laid out ``(batch, N * channels, *spatial)``), dense layers are batched matrix
products over ``(N, fan_in, fan_out)`` weights.  Every network sees its own inputs.  Weights live
in preallocated buffers that :meth:`ArchEnsemble.resample` refills in place from an explicit
:class:`torch.Generator`.

Initialisation: weights Gaussian with variance ``gain / fan_in`` (He: gain 2, LeCun: gain 1) times
the layer's ``var_factor`` (an evaluation-mode BatchNorm folded in: ``1/(1 + eps)``), biases zero
(omitted).  Convolution weights are shared across positions, as in a real CNN.
Padding follows :func:`initstats.spec.axis_map` exactly: zero padding through the convolution,
circular by concatenating slices, reflect through ``F.pad``.  Max pooling and BatchNorm run as in
torch (BatchNorm with the statistics of the current batch, per network and channel, weight 1,
bias 0).  A layer after a :class:`~initstats.spec.Concat` reads its sources concatenated along each
network's channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..spec import Arch, Stage
from .common import init_gain
from .implicit import implicit_dense

__all__ = ["ArchEnsemble"]


def _circular_pad(x: torch.Tensor, pads: tuple[int, ...]) -> torch.Tensor:
    """Circular padding by slicing (``pads[a]`` on both sides of spatial axis ``a``)."""
    rank = len(pads)
    for a, p in enumerate(pads):
        if p == 0:
            continue
        dim = x.dim() - rank + a
        n = x.shape[dim]
        x = torch.cat([x.narrow(dim, n - p, p), x, x.narrow(dim, 0, p)], dim=dim)
    return x


class ArchEnsemble:
    """``n_nets`` independent networks of architecture ``arch``, evaluated together.

    Parameters
    ----------
    arch : Arch
    n_nets : int
        Networks per forward pass.
    init : {'he', 'lecun'}
        Weight variance ``2/fan_in`` or ``1/fan_in``.
    device, dtype : torch device and floating dtype.
    implicit_dense : bool
        Sample dense layers implicitly (exact in distribution, no weight matrix; see
        :mod:`initstats.empirical.implicit`).  Each call then draws fresh dense weights, so call
        it once per :meth:`resample`; backward passes of that call share them.

    Examples
    --------
    >>> import torch
    >>> from initstats.families import make_arch
    >>> ens = ArchEnsemble(make_arch("cnn", 8, channels=2), n_nets=3)
    >>> ens.resample(torch.Generator().manual_seed(0))
    >>> ens(torch.randn(5, 3, 3, 8, 8)).shape      # (batch, nets, logits)
    torch.Size([5, 3, 12])
    """

    def __init__(self, arch: Arch, n_nets: int, *, init: str = "he", device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, implicit_dense: bool = False) -> None:
        self.arch = arch
        self.implicit_dense = implicit_dense
        self._generator: torch.Generator | None = None
        self.n_nets = n_nets
        self.gain = init_gain(init)
        self.device = torch.device(device)
        self.dtype = dtype
        self.weights: dict[int, torch.Tensor] = {}
        self.std: dict[int, float] = {}
        for s in arch.stages[1:]:
            c_in = sum(arch.stages[k].channels for k in s.sources)  # several after a Concat
            if s.is_conv:
                shape: tuple[int, ...] = (n_nets * s.channels, c_in // s.groups, *s.kernel)
            elif s.is_dense:
                shape = (n_nets, c_in * math.prod(arch.stages[s.sources[0]].spatial), s.channels)
                if implicit_dense:  # drawn implicitly at each call, see initstats.empirical.implicit
                    self.std[s.index] = math.sqrt(self.gain * float(s.var_factor) / s.fan_in)
                    continue
            else:
                continue
            self.weights[s.index] = torch.empty(shape, device=self.device, dtype=dtype)
            self.std[s.index] = math.sqrt(self.gain * float(s.var_factor) / s.fan_in)

    @property
    def num_parameters(self) -> int:
        return sum(w.numel() for w in self.weights.values())

    def resample(self, generator: torch.Generator) -> None:
        """Draw fresh weights for every network, in place (implicit dense layers draw at each call)."""
        for idx, w in self.weights.items():
            w.normal_(0.0, self.std[idx], generator=generator)
        self._generator = generator

    def _conv(self, s: Stage, x: torch.Tensor) -> torch.Tensor:
        conv = F.conv1d if len(s.axes) == 1 else F.conv2d
        w = self.weights[s.index]
        groups = self.n_nets * s.groups  # network n's group j is group n * s.groups + j
        if s.padding == "zero":
            return conv(x, w, stride=s.stride, padding=s.pad, dilation=s.dilation, groups=groups)
        if s.padding == "circular":
            x = _circular_pad(x, s.pad)
        else:
            flat = []
            for p in reversed(s.pad):
                flat += [p, p]
            x = F.pad(x, flat, mode="reflect")
        return conv(x, w, stride=s.stride, dilation=s.dilation, groups=groups)

    def _pool(self, s: Stage, x: torch.Tensor) -> torch.Tensor:
        rank = len(s.axes)
        if not s.kernel:  # a global pool
            dims = tuple(range(2, 2 + rank))
            return x.mean(dim=dims, keepdim=True) if s.kind == "avgpool" else x.amax(dim=dims, keepdim=True)
        if s.kind == "avgpool":
            pool = F.avg_pool1d if rank == 1 else F.avg_pool2d
        else:
            pool = F.max_pool1d if rank == 1 else F.max_pool2d
        return pool(x, s.kernel, s.stride)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, n_nets, K)`` for inputs ``x`` of shape ``(batch, n_nets, *input_shape)``."""
        arch, n = self.arch, self.n_nets
        b = x.shape[0]
        h0 = x.reshape(b, n * arch.input_shape[0], *arch.input_shape[1:])
        if h0.dim() == 4:  # grouped 2-D convolutions run faster in channels-last layout on CPU (oneDNN)
            h0 = h0.contiguous(memory_format=torch.channels_last)
        outs: list[torch.Tensor] = [h0]
        for s in arch.stages[1:]:
            src = outs[s.sources[0]]
            if s.is_conv:
                if len(s.sources) > 1:  # a Concat: each network's channels, stage after stage
                    parts = [outs[k].reshape(b, n, -1, *src.shape[2:]) for k in s.sources]
                    src = torch.cat(parts, dim=2).reshape(b, -1, *src.shape[2:])
                h = self._conv(s, src)
            elif s.is_dense:
                flat = (src.reshape(b, n, -1) if len(s.sources) == 1
                        else torch.cat([outs[k].reshape(b, n, -1) for k in s.sources], dim=2))
                if s.index in self.weights:
                    h = torch.einsum("bni,nio->bno", flat, self.weights[s.index])
                else:
                    if self._generator is None:
                        raise RuntimeError("call resample(generator) before evaluating an ensemble")
                    h = implicit_dense(flat, self.std[s.index], s.channels, self._generator)
            elif s.is_pool:
                h = self._pool(s, src)
            else:  # residual sum
                h = outs[s.sources[0]] + outs[s.sources[1]]
            if s.kind == "batchnorm":
                shape = h.shape
                h = F.batch_norm(h.reshape(b, -1, *shape[3:]) if s.is_dense else h, None, None,
                                 training=True).reshape(shape)
            if s.kind in ("relu", "batchnorm", "sumrelu"):
                h = torch.relu(h)
            outs.append(h)
        return outs[-1]
