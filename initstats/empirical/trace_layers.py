"""The layers of a traced model: torch convolutions and pools read as spec layers (:mod:`.trace`).

Each function takes the fx node (for the error message), the module and the shape of its input
(without the batch axis), and returns the spec layer with the same kernel, stride, dilation and
padding, or raises :class:`~initstats.errors.ModuleError` naming the node.
"""

from __future__ import annotations

from fractions import Fraction

import torch
import torch.fx
from torch import nn

from ..errors import ModuleError
from ..spec import AvgPool, Conv, Layer, MaxPool, batchnorm_factor

_PADDING_MODES = {"zeros": "zero", "circular": "circular", "reflect": "reflect"}
#: functional pooling, read through the module with the same arguments
_FUNCTIONAL_POOLS = {"avg_pool1d": nn.AvgPool1d, "avg_pool2d": nn.AvgPool2d, "max_pool1d": nn.MaxPool1d,
                     "max_pool2d": nn.MaxPool2d, "adaptive_avg_pool1d": nn.AdaptiveAvgPool1d,
                     "adaptive_avg_pool2d": nn.AdaptiveAvgPool2d, "adaptive_max_pool1d": nn.AdaptiveMaxPool1d,
                     "adaptive_max_pool2d": nn.AdaptiveMaxPool2d}


def _where(node: torch.fx.Node) -> str:
    """Where the model created a node: its module path or the source line fx recorded."""
    target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
    trace = node.stack_trace.strip().splitlines()[-2].strip() if node.stack_trace else ""
    return f"fx node {node.name!r} ({node.op} {target})" + (f" at {trace}" if trace else "")


def _fail(node: torch.fx.Node, why: str, hint: str = "") -> ModuleError:
    return ModuleError(f"{_where(node)}: {why}" + (f"; {hint}" if hint else ""))


def _pair(v, rank: int = 1) -> tuple[int, ...]:
    """A per-axis tuple: a tuple as it is, a scalar repeated ``rank`` times."""
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * rank


def _conv_layer(node: torch.fx.Node, m: nn.Conv1d | nn.Conv2d, shape: tuple[int, ...]) -> Conv:
    if m.padding_mode not in _PADDING_MODES:
        raise _fail(node, f"padding_mode={m.padding_mode!r} is not supported",
                    "use 'zeros', 'circular' or 'reflect'")
    if m.in_channels != shape[0]:
        raise _fail(node, f"in_channels={m.in_channels} but the input has {shape[0]} channels")
    rank = len(shape) - 1
    kernel, stride, dilation = _pair(m.kernel_size, rank), _pair(m.stride, rank), _pair(m.dilation, rank)
    if m.padding == "valid":
        pad: tuple[int, ...] = (0,) * len(kernel)
    elif m.padding == "same":
        if any(d * (k - 1) % 2 for k, d in zip(kernel, dilation)):
            raise _fail(node, "padding='same' with an even extent pads one side more than the other",
                        "use an odd kernel or explicit padding")
        pad = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    else:
        pad = _pair(m.padding, rank)
    return Conv(m.out_channels, kernel, stride, dilation, padding=_PADDING_MODES[m.padding_mode], pad=pad,
                activation=None, groups=m.groups)


def _pool_layer(node: torch.fx.Node, m: nn.Module, shape: tuple[int, ...]) -> Layer:
    if isinstance(m, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
        if any(o != 1 for o in _pair(m.output_size, len(shape) - 1)):
            raise _fail(node, "adaptive max pooling is supported only to size 1 (a global max pool)")
        return MaxPool(None)
    if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
        rank = len(shape) - 1
        out = tuple(shape[1 + a] if o is None else o for a, o in enumerate(_pair(m.output_size, rank)))
        if all(o == 1 for o in out):
            return AvgPool(None)
        if any(n % o for n, o in zip(shape[1:], out)):
            raise _fail(node, f"adaptive average pooling from {shape[1:]} to {out} uses windows of different "
                              "sizes", "use input sizes that the output size divides")
        k = tuple(n // o for n, o in zip(shape[1:], out))
        return AvgPool(k, k)
    cls = AvgPool if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d)) else MaxPool
    rank = len(shape) - 1
    if any(_pair(m.padding, rank)) or m.ceil_mode:  # type: ignore[attr-defined]
        raise _fail(node, "pooling with padding or ceil_mode is not supported", "use padding=0, ceil_mode=False")
    if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)) and any(d != 1 for d in _pair(m.dilation, rank)):
        raise _fail(node, "dilated max pooling is not supported")
    kernel = _pair(m.kernel_size, rank)  # type: ignore[attr-defined]
    stride = _pair(m.stride, rank) if m.stride is not None else kernel  # type: ignore[attr-defined]
    return cls(kernel, stride)


def _batchnorm_factor(node: torch.fx.Node, m: nn.modules.batchnorm._BatchNorm) -> Fraction | None:
    """The exact variance factor ``1/(1 + eps)`` of an evaluation-mode BatchNorm at its default
    initialisation, or None in training mode (batch statistics, measured only).

    Networks are drawn fresh at the default initialisation, so a BatchNorm whose affine parameters
    (or, in evaluation mode, running statistics) are not the defaults is refused.
    """
    uses_running = not m.training and m.running_mean is not None
    checks = [("weight", m.weight, 1.0), ("bias", m.bias, 0.0)]
    if uses_running:
        checks += [("running_mean", m.running_mean, 0.0), ("running_var", m.running_var, 1.0)]
    for name, tensor, default in checks:
        values = None if tensor is None else tensor.detach()
        if values is not None and not bool((values == default).all()):
            raise _fail(node, f"its {name} is not the default {default:g} at initialisation (e.g. "
                              f"{float(values[values != default][0]):.4g})",
                        "initstats draws fresh networks at the default initialisation: trace a freshly built "
                        "model, or call reset_parameters() and reset_running_stats()")
    return batchnorm_factor(m.eps) if uses_running else None
