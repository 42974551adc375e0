"""Any PyTorch model as an :class:`~initstats.spec.Arch`: ``torch.fx`` tracing into the spec both engines read.

:func:`from_module` traces a model symbolically and maps every operation on the path from the
input to the logits onto the spec's layers, so the exact engine and the Monte Carlo describe the
same network as the model:

==========================================  ==================================================
torch                                       spec
==========================================  ==================================================
``Conv1d`` / ``Conv2d`` (any ``groups``;    :class:`~initstats.spec.Conv` with the same kernel,
zeros, circular or reflect padding)         stride, dilation, padding and ``groups``
``Linear``                                  :class:`~initstats.spec.Dense` (flattens its input)
``ReLU``, ``F.relu``, ``torch.relu``,       the ``activation`` of the layer before it
``.relu()`` (in place or not)
``AvgPool1d/2d`` (no padding)               :class:`~initstats.spec.AvgPool`
``AdaptiveAvgPool1d/2d``, ``.mean`` over    a global or windowed ``AvgPool`` (the output size
every spatial axis                          must divide the input size)
``MaxPool1d/2d`` (no padding),              :class:`~initstats.spec.MaxPool` (outside (H))
``AdaptiveMaxPool1d/2d(1)``
``BatchNorm1d/2d`` in training mode         ``batchnorm=True`` on the layer before it (outside (H))
``BatchNorm1d/2d`` in evaluation mode,      ``var_factor=1/(1 + eps)`` on the Conv or Linear before
default initialisation (after a Conv or     it (``x / sqrt(1 + eps)``, exact; H3 then fails);
Linear, or its ReLU)                        other parameters or statistics: refused
``s(x) + f(x)``, then optionally a ReLU      :class:`~initstats.spec.Residual` with body ``f``, shortcut
                                            ``s`` (the identity, or its own layers) and activation
``torch.cat([a, b, ...], dim=1)`` of        :class:`~initstats.spec.Concat` (no node: the next
equal spatial sizes (DenseNet)              layer reads every branch; an unchanged one is the
                                            identity branch)
``flatten``, ``view``/``reshape`` to        nothing (a dense layer flattens)
``(batch, -1)``, ``Dropout``, ``Identity``
==========================================  ==================================================

Biases are ignored: initstats draws networks with zero biases (He initialisation of the weights,
variance ``gain / fan_in``).  Anything else (another nonlinearity, ``cat`` along another dim,
training-mode BatchNorm not followed by its ReLU, a layer used twice)
raises :class:`~initstats.errors.ModuleError` naming the fx node, its operation and where the
model created it, so nothing is silently approximated.  After the mapping, the model and the spec
are evaluated with the same weights on the same input (float64) and must agree
(:func:`check_translation`).

Assumptions: the model maps a batch of inputs of shape ``(batch, *input_shape)`` to logits of
shape ``(batch, K)``; ``input_shape`` is ``(channels, length)`` or ``(channels, height, width)``
for convolutional models (read from the first layer unless given) and ``(features,)`` for MLPs.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import operator
from dataclasses import dataclass, replace

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from ..errors import ModuleError
from ..spec import Arch, AvgPool, Concat, Conv, Dense, Layer, Residual
from .trace_layers import _FUNCTIONAL_POOLS, _batchnorm_factor, _conv_layer, _fail, _pair, _pool_layer

__all__ = ["from_module", "input_shape_of", "check_translation"]

_RELU = (F.relu, torch.relu, torch.relu_)
_FLATTEN = (torch.flatten,)
_SKIP_MODULES = (nn.Dropout, nn.Identity, nn.Dropout1d, nn.Dropout2d)

@dataclass(frozen=True)
class _Res:
    """The weight paths of a residual block's two branches."""

    body: tuple
    shortcut: tuple


@dataclass(frozen=True)
class _Cat:
    """The weight paths of a concatenation's branches."""

    branches: tuple


@dataclass(frozen=True)
class _Value:
    """A tensor of the traced model: the spec layers that produce it from the input, and their fx nodes."""

    layers: tuple[Layer, ...]
    nodes: tuple[str, ...]
    shape: tuple[int, ...]  # without the batch axis
    weights: tuple = ()  # per layer: the module path of its weights, None, or a residual block's _Res
    bn_pending: str | None = None  # a BatchNorm node after the last layer, waiting for its ReLU


def input_shape_of(module: nn.Module) -> tuple[int, ...]:
    """``(channels, px, px)``, ``(channels, px)`` or ``(features,)`` from the model's first layer,
    with the spatial sizes left as ``-1`` (filled in by :func:`from_module` from ``px``).

    Examples
    --------
    >>> input_shape_of(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()))
    (3, -1, -1)
    >>> input_shape_of(nn.Sequential(nn.Flatten(), nn.Linear(20, 4)))
    (20,)
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            return (m.in_channels, -1, -1)
        if isinstance(m, nn.Conv1d):
            return (m.in_channels, -1)
        if isinstance(m, nn.Linear):
            return (m.in_features,)
    raise ModuleError(f"{type(module).__name__}: no Conv1d, Conv2d or Linear layer to read the input shape from; "
                      "give the input shape (--input-shape C,H,W or C,L)")


def _shape_after(layer: Layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    return Arch(shape, (layer, Dense(1, activation=None))).stages[-2].shape


class _Translator:
    def __init__(self, gm: torch.fx.GraphModule) -> None:
        self.gm = gm
        self.modules = dict(gm.named_modules())
        self.values: dict[torch.fx.Node, _Value] = {}
        self.used: set[str] = set()

    def value(self, node: torch.fx.Node, arg, *, after_bn: bool = False) -> _Value:
        if not isinstance(arg, torch.fx.Node) or arg not in self.values:
            raise _fail(node, "an input of this operation is not a tensor derived from the model's input")
        v = self.values[arg]
        if v.bn_pending is not None and not after_bn:
            raise _fail(node, f"it follows BatchNorm {v.bn_pending!r} directly; BatchNorm is supported only as "
                              "conv/linear -> BatchNorm -> ReLU")
        return v

    def append(self, node: torch.fx.Node, v: _Value, layer: Layer, weights: str | None = None) -> _Value:
        if weights is not None:
            if weights in self.used:
                raise _fail(node, f"module {weights!r} is applied more than once (its weights are shared)",
                            "initstats draws every layer's weights independently; define one module per use")
            self.used.add(weights)
        return _Value(v.layers + (layer,), v.nodes + (node.name,), _shape_after(layer, v.shape),
                      v.weights + (weights,))

    def relu(self, node: torch.fx.Node, v: _Value) -> _Value:
        last = v.layers[-1] if v.layers else None
        if isinstance(last, (Conv, Dense)) and last.activation is None:
            relu = replace(last, activation="relu", batchnorm=v.bn_pending is not None)
            return _Value(v.layers[:-1] + (relu,), v.nodes, v.shape, v.weights)
        if isinstance(last, Residual) and last.activation is None and v.bn_pending is None:
            return _Value(v.layers[:-1] + (replace(last, activation="relu"),), v.nodes, v.shape, v.weights)
        what = ("the input" if last is None else f"a {type(last).__name__} layer that already has one"
                if isinstance(last, (Conv, Dense)) else f"a {type(last).__name__} layer")
        raise _fail(node, f"a ReLU after {what} cannot be represented",
                    "a ReLU must follow a convolution, a linear layer or a residual sum (not a pool or another ReLU)")

    def batchnorm(self, node: torch.fx.Node, m: nn.Module, v: _Value) -> _Value:
        factor = _batchnorm_factor(node, m)  # type: ignore[arg-type]
        last = v.layers[-1] if v.layers else None
        if factor is not None:  # evaluation mode: x / sqrt(1 + eps), folded into the layer before (or its ReLU)
            if not isinstance(last, (Conv, Dense)) or last.batchnorm or v.bn_pending is not None:
                raise _fail(node, "BatchNorm in evaluation mode is folded only into the convolution or linear layer "
                                  "just before it (or that layer's ReLU)", "put it right after a Conv or Linear")
            folded = replace(last, var_factor=last.var_factor * factor)
            return _Value(v.layers[:-1] + (folded,), v.nodes, v.shape, v.weights)
        if not isinstance(last, (Conv, Dense)) or last.activation is not None or last.batchnorm:
            raise _fail(node, "BatchNorm is supported only directly after a convolution or linear layer")
        return _Value(v.layers, v.nodes, v.shape, v.weights, bn_pending=node.name)

    def add(self, node: torch.fx.Node) -> _Value:
        """``a + b``: two branches from a common value; the shorter one (or the identity) is the shortcut."""
        a, b = (self.value(node, x) for x in node.args[:2])
        common = 0
        while common < min(len(a.nodes), len(b.nodes)) and a.nodes[common] == b.nodes[common]:
            common += 1
        if a.layers[:common] != b.layers[:common] or (common == len(a.nodes) and common == len(b.nodes)):
            raise _fail(node, "a sum of a tensor and itself (or of its ReLU) is not a residual block")
        long, short = (b, a) if len(b.nodes) >= len(a.nodes) else (a, b)
        body, shortcut = long.layers[common:], short.layers[common:]
        if long.shape != short.shape:
            raise _fail(node, f"the residual branches end in shapes {long.shape} and {short.shape}")
        block = _Res(long.weights[common:], short.weights[common:])
        return _Value(long.layers[:common] + (Residual(body, shortcut),), long.nodes[:common] + (node.name,),
                      long.shape, long.weights[:common] + (block,))

    def cat(self, node: torch.fx.Node, out_shape: tuple[int, ...]) -> _Value:
        """``torch.cat([a, b, ...], dim=1)``: branches from a common value; an unchanged one is the identity."""
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        if not isinstance(tensors, (list, tuple)) or len(tensors) < 2:
            raise _fail(node, "a cat of fewer than two tensors is not a concatenation")
        vals = [self.value(node, t) for t in tensors]
        rank = len(out_shape)
        if not isinstance(dim, int) or dim % (rank + 1) != 1 or len({v.shape[1:] for v in vals}) > 1:
            raise _fail(node, f"cat along dim {dim} of shapes {[v.shape for v in vals]} is not a channel "
                              "concatenation", "only torch.cat([...], dim=1) of tensors with equal spatial sizes "
                              "is supported")
        common = 0
        while all(common < len(v.nodes) for v in vals) and len({v.nodes[common] for v in vals}) == 1:
            common += 1
        branches = tuple(v.layers[common:] for v in vals)
        if any(v.layers[:common] != vals[0].layers[:common] for v in vals) or sum(not b for b in branches) > 1:
            raise _fail(node, "it concatenates a tensor with itself (or with its own ReLU)",
                        "concatenate each tensor once")
        base = vals[0]
        return _Value(base.layers[:common] + (Concat(branches),), base.nodes[:common] + (node.name,), out_shape,
                      base.weights[:common] + (_Cat(tuple(v.weights[common:] for v in vals)),))

    def module(self, node: torch.fx.Node) -> _Value:
        m = self.modules[node.target]  # type: ignore[index]
        v = self.value(node, node.args[0], after_bn=isinstance(m, nn.ReLU))
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            return self.append(node, v, _conv_layer(node, m, v.shape), str(node.target))
        if isinstance(m, nn.Linear):
            if m.in_features != math.prod(v.shape):
                raise _fail(node, f"in_features={m.in_features} but its input has {math.prod(v.shape)} values "
                                  f"(shape {v.shape})", "check --input-shape or the model's sizes")
            return self.append(node, v, Dense(m.out_features, activation=None), str(node.target))
        if isinstance(m, nn.ReLU):
            return self.relu(node, v)
        if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d, nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveAvgPool1d,
                          nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
            return self.append(node, v, _pool_layer(node, m, v.shape))
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return self.batchnorm(node, m, v)
        if isinstance(m, nn.Flatten):
            return _Value(v.layers, v.nodes, (math.prod(v.shape),), v.weights)
        if isinstance(m, _SKIP_MODULES):
            return v
        raise _fail(node, f"module {type(m).__name__} is not supported",
                    "supported: Conv1d/2d, Linear, ReLU, AvgPool, AdaptiveAvgPool, MaxPool, BatchNorm (training mode), "
                    "Flatten, Dropout, Identity and x + f(x)")

    def function(self, node: torch.fx.Node, out_shape: tuple[int, ...] | None) -> _Value:
        fn = node.target
        name = fn if node.op == "call_method" else getattr(fn, "__name__", str(fn))
        if node.op != "call_method" and (fn in (operator.add, torch.add) or name == "add"):
            return self.add(node)
        if node.op != "call_method" and (fn in (torch.cat, torch.concat) or name in ("cat", "concat")):
            return self.cat(node, out_shape)  # type: ignore[arg-type]
        v = self.value(node, node.args[0], after_bn=fn in _RELU or name in ("relu", "relu_"))
        if name in _FUNCTIONAL_POOLS:
            try:
                kwargs = node.normalized_arguments(self.gm, normalize_to_only_use_kwargs=True).kwargs  # type: ignore
            except Exception:
                raise _fail(node, "its arguments cannot be read") from None
            kwargs = {k: v for k, v in kwargs.items() if k != "input"}
            if kwargs.get("stride") in ([], ()):  # torch's schema default: the kernel size
                kwargs["stride"] = None
            return self.append(node, v, _pool_layer(node, _FUNCTIONAL_POOLS[name](**kwargs), v.shape))
        if fn in _RELU or name in ("relu", "relu_"):
            return self.relu(node, v)
        if name in ("add", "add_", "__add__", "__iadd__") or fn is operator.iadd:
            return self.add(node)
        if fn in _FLATTEN or name in ("flatten", "view", "reshape"):
            if out_shape is None or out_shape != (math.prod(v.shape),):
                raise _fail(node, f"a reshape to {out_shape} (other than flattening to (batch, -1)) is not supported")
            return _Value(v.layers, v.nodes, out_shape, v.weights)
        if name in ("dropout", "contiguous", "clone"):
            return v
        if name == "mean" or fn is torch.mean:
            dims = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
            dims = tuple(d % (len(v.shape) + 1) for d in _pair(dims)) if dims is not None else ()
            if len(v.shape) < 2 or set(dims) != set(range(2, len(v.shape) + 1)):
                raise _fail(node, f"mean over dims {dims} is not a mean over every spatial axis")
            pooled = self.append(node, v, AvgPool(None))
            keep = node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 else False)
            return pooled if keep else _Value(pooled.layers, pooled.nodes, (v.shape[0],), pooled.weights)
        raise _fail(node, f"operation {name!r} is not supported",
                    "supported: relu, +, cat along channels, flatten/view to (batch, -1), mean over the spatial "
                    "axes, functional pooling, dropout")

    def run(self) -> _Value:
        result = None
        for node in self.gm.graph.nodes:
            meta = node.meta.get("tensor_meta")
            out_shape = tuple(meta.shape[1:]) if meta is not None and hasattr(meta, "shape") else None
            if node.op == "placeholder":
                if self.values:
                    raise _fail(node, "the model takes more than one input")
                self.values[node] = _Value((), (), out_shape)  # type: ignore[arg-type]
            elif node.op == "call_module":
                self.values[node] = self.module(node)
            elif node.op in ("call_function", "call_method"):
                if not any(a in self.values for a in node.all_input_nodes) or out_shape is None:
                    continue  # sizes (x.size(0), x.shape[0]), their arithmetic and constants: no tensor
                self.values[node] = self.function(node, out_shape)
            elif node.op == "output":
                arg = node.args[0]
                if not isinstance(arg, torch.fx.Node):
                    raise _fail(node, "the model returns several values; it must return the logits")
                result = self.value(node, arg)
            elif node.op == "get_attr":
                raise _fail(node, "the model reads a parameter or buffer outside a supported layer")
            if node in self.values and out_shape is not None and self.values[node].shape != out_shape:
                raise _fail(node, f"the translation gives shape {self.values[node].shape} where the model has "
                                  f"{out_shape}")
        assert result is not None
        return result


def from_module(module: nn.Module, input_shape: tuple[int, ...] | None = None, *, px: int | None = None,
                name: str | None = None, check: bool = True) -> Arch:
    """The :class:`~initstats.spec.Arch` of a PyTorch model (see the module docstring).

    Parameters
    ----------
    module : torch.nn.Module
        Maps ``(batch, *input_shape)`` to logits ``(batch, K)``.
    input_shape : tuple of int, optional
        Without the batch axis; default from the first layer (:func:`input_shape_of`) with spatial
        sizes ``px``.
    px : int, optional
        The spatial size, for a convolutional model whose input shape is read from its first layer.
    name : str, optional
        The architecture's name (default: the model's class name).
    check : bool
        Evaluate the model and the spec with the same weights and compare (:func:`check_translation`).

    Examples
    --------
    >>> model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
    ...                       nn.Flatten(), nn.Linear(4 * 4 * 4, 10))
    >>> arch = from_module(model, px=8)
    >>> [(s.name, s.kind, s.shape) for s in arch.stages]
    [('x', 'input', (3, 8, 8)), ('conv1', 'relu', (4, 8, 8)), ('avgpool2', 'avgpool', (4, 4, 4)), ('logits', 'linear', (10,))]
    """
    if not isinstance(module, nn.Module):
        raise ModuleError(f"expected a torch.nn.Module, got {type(module).__name__}")
    shape = tuple(input_shape) if input_shape is not None else input_shape_of(module)
    if any(s == -1 for s in shape):
        if px is None:
            raise ModuleError(f"{type(module).__name__} is convolutional: give px (the input size) or input_shape")
        shape = tuple(px if s == -1 else s for s in shape)
    if not 1 <= len(shape) <= 3 or any(not isinstance(s, int) or s < 1 for s in shape):
        raise ModuleError(f"input_shape={shape!r} is invalid; expected (C,), (C, L) or (C, H, W) positive integers")
    try:
        gm = torch.fx.symbolic_trace(module)
    except Exception as err:  # fx raises many kinds (TraceError, TypeError, NotImplementedError)
        raise ModuleError(f"torch.fx cannot trace {type(module).__name__}: {type(err).__name__}: {err}; "
                          "data-dependent control flow in forward() cannot be traced") from None
    dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # fx prints the failing node's traceback itself
            ShapeProp(gm).propagate(torch.zeros(2, *shape, dtype=dtype))
    except Exception as err:
        cause = err.__cause__ or err  # ShapeProp wraps the model's own error
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        raise ModuleError(f"{type(module).__name__} fails on inputs of shape (batch, {', '.join(map(str, shape))}): "
                          f"{type(cause).__name__}: {first}; check --input-shape or the input size") from None
    out = _Translator(gm).run()
    if not out.layers or not isinstance(out.layers[-1], Dense) or out.layers[-1].activation is not None:
        raise ModuleError(f"{type(module).__name__}: the logits must come from a Linear layer without activation, "
                          f"got {type(out.layers[-1]).__name__ if out.layers else 'the input itself'}")
    arch = Arch(shape, out.layers, name=name or type(module).__name__)
    if check:
        check_translation(module, arch, _stage_weights(arch, out))
    return arch


def _stage_weights(arch: Arch, out: _Value) -> list[str | None]:
    """Per stage after the input, the module path of its weights (None for weightless stages), by layer."""
    paths: dict[int, str] = {}

    def walk(layers: tuple, weights: tuple) -> None:
        for layer, w in zip(layers, weights):
            if isinstance(w, _Res):
                walk(layer.body, w.body)
                walk(layer.shortcut, w.shortcut)
            elif isinstance(w, _Cat):
                for branch, wb in zip(layer.branches, w.branches):
                    walk(branch, wb)
            elif w is not None:
                paths[id(layer)] = w

    walk(out.layers, out.weights)
    return [paths.get(id(s.layer)) for s in arch.stages[1:]]


def check_translation(module: nn.Module, arch: Arch, weights: list[str | None], *, tol: float = 1e-9) -> None:
    """Evaluate ``module`` (biases zeroed, evaluation mode, float64) and the spec with the same weights.

    ``weights`` names, per stage after the input, the module whose weight the stage uses (None for
    weightless stages).  Training-mode BatchNorm runs on batch statistics, as the spec's batchnorm stage
    does per network; an evaluation-mode one runs as the model has it, the spec's weights scaled by
    ``sqrt(var_factor)``.  Raises :class:`ModuleError` when the logits differ.

    Examples
    --------
    >>> model = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3))
    >>> arch = from_module(model, check=False)
    >>> check_translation(model, arch, ["0", "2", "4"])        # the spec computes what the model does
    >>> check_translation(model, arch, ["2", "0", "4"])        # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    initstats.errors.ModuleError: Sequential: its translation into a spec disagrees with the model ...
    """
    from .ensemble import ArchEnsemble

    model = copy.deepcopy(module).double().eval()  # dropout is the identity at evaluation, as in the spec
    for orig, m in zip(module.modules(), model.modules()):
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and orig.training:
            m.train()  # batch statistics, as the spec's batchnorm stage computes them per network
    mods = dict(model.named_modules())
    for m in model.modules():
        if isinstance(getattr(m, "bias", None), torch.Tensor):
            with torch.no_grad():
                m.bias.zero_()
    ens = ArchEnsemble(arch, 1, dtype=torch.float64)
    with torch.no_grad():
        for s, path in zip(arch.stages[1:], weights):
            if s.index in ens.weights:
                w, target = mods[path].weight, ens.weights[s.index]  # type: ignore[index, union-attr]
                if w.numel() != target.numel():
                    raise ModuleError(f"{type(module).__name__}: module {path!r} has {w.numel()} weights where the "
                                      f"spec's stage {s.name} has {target.numel()}")
                scale = math.sqrt(float(s.var_factor))  # an evaluation-mode BatchNorm folded into the weights
                target.copy_((w.t() if s.is_dense else w).reshape(target.shape) * scale)
        x = torch.randn(4, *arch.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        want = model(x)
        got = ens(x.unsqueeze(1))[:, 0]
    if want.shape != got.shape:
        raise ModuleError(f"{type(module).__name__} returns shape {tuple(want.shape)}, expected (batch, "
                          f"{arch.num_classes}) logits")
    err = float((want - got).abs().max())
    scale = float(want.abs().max())
    if not err <= tol * max(1.0, scale):
        raise ModuleError(f"{type(module).__name__}: its translation into a spec disagrees with the model "
                          f"(max |difference| {err:.3g} on logits of size {scale:.3g}); the model computes "
                          "something the translation does not see")
