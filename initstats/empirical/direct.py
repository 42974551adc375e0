"""Measuring a PyTorch model without translating it: ``torch.func`` over freshly drawn parameters.

For a model the tracer cannot translate (:mod:`initstats.empirical.trace`: another nonlinearity,
a padded max pool, BatchNorm before a sum, ...), ``initstats verify --module ... --empirical-only``
still measures it: :class:`ModuleEnsemble` stacks ``N`` independent parameter sets and evaluates
the user's own module on all of them at once with ``torch.func.functional_call`` under
``torch.func.vmap``; :func:`measure_module` runs the same chunk loop, statistics and stopping rules
as :func:`~initstats.empirical.measure.measure`.  There is no spec, hence no exact value: every claim
of such a run is *not covered*.

Initialisation of every network, drawn from the chunk's generator: the weight of every
``Conv1d/2d/3d`` and ``Linear`` ~ N(0, gain / fan_in) (``gain`` 2 for He, 1 for LeCun; fan-in of
the grouped kernel), every bias 0, BatchNorm weight 1 and bias 0; any other parameter keeps the
value the factory gave it.  Dropout is switched off (its identity at evaluation); BatchNorm keeps
the model's mode (training mode: statistics of each network's own ``inputs_per_net`` inputs;
evaluation mode: the default running statistics 0 and 1).

Assumptions: the model maps ``(batch, *input_shape)`` to logits ``(batch, K)`` and is a pure
function of its parameters and input (no state carried between calls).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..errors import ModuleError
from ..measurement import Measurement, MeasureOptions
from .common import freed_memory_kept, init_gain, resolve_device, resolve_dtype, strict_numerics
from .sampling import Plan

__all__ = ["ModuleEnsemble", "measure_module", "module_chunk"]

_RANDOM = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class ModuleEnsemble:
    """``n_nets`` independent copies of ``model``'s parameters, evaluated at once with ``torch.func``.

    Examples
    --------
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    >>> ens = ModuleEnsemble(model, (4,), 5)
    >>> ens.resample(torch.Generator().manual_seed(0))
    >>> tuple(ens(torch.randn(2, 5, 4)).shape)          # (inputs per network, networks, logits)
    (2, 5, 3)
    >>> round(float(ens.params["0.weight"].var()), 1)      # He: variance 2 / fan_in = 0.5
    0.5
    """

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], n_nets: int, *, init: str = "he",
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> None:
        self.model = copy.deepcopy(model).to(device=device, dtype=dtype)
        for m in self.model.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.eval()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training:
                m.track_running_stats = False          # batch statistics only: no state under vmap
                m.running_mean = m.running_var = None
        self.n_nets, self.gain = n_nets, init_gain(init)
        self.input_shape = tuple(input_shape)
        owners = {f"{name}.{p}": m for name, m in self.model.named_modules() for p, _ in m.named_parameters(recurse=False)}
        self.params = {name: p.detach().unsqueeze(0).repeat(n_nets, *([1] * p.dim())).contiguous()
                       for name, p in self.model.named_parameters()}
        self._owner = owners
        self.buffers = dict(self.model.named_buffers())

    def resample(self, generator: torch.Generator) -> None:
        """Fresh He (or LeCun) weights, zero biases and default BatchNorm affine maps for every network."""
        for name, p in self.params.items():
            m, leaf = self._owner[name], name.rsplit(".", 1)[-1]
            if isinstance(m, _RANDOM) and leaf == "weight":
                fan_in = math.prod(p.shape[2:])                # (nets, out, in / groups, *kernel)
                p.normal_(0.0, 1.0, generator=generator).mul_(math.sqrt(self.gain / fan_in))
            elif isinstance(m, (*_RANDOM, nn.modules.batchnorm._BatchNorm)) and leaf == "bias":
                p.zero_()
            elif isinstance(m, nn.modules.batchnorm._BatchNorm) and leaf == "weight":
                p.fill_(1.0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call, vmap

        def one(params, xi):
            return functional_call(self.model, (params, self.buffers), (xi,))

        out = vmap(one, in_dims=(0, 1), out_dims=1)(self.params, x)
        if out.dim() != 3:
            raise ModuleError(f"the model returned outputs of shape {tuple(out.shape[:1]) + tuple(out.shape[2:])} "
                              "per network; expected logits of shape (batch, K)")
        return out


def module_chunk(options: MeasureOptions) -> int:
    """Networks per chunk of :func:`measure_module`: ``options.chunk``, else 32, at most ``options.nets``.

    Examples
    --------
    >>> module_chunk(MeasureOptions()), module_chunk(MeasureOptions(nets=10)), module_chunk(MeasureOptions(chunk=8))
    (32, 10, 8)
    """
    chunk = options.chunk or 32
    return min(chunk, options.nets) if options.nets is not None else chunk


def measure_module(model: nn.Module, input_shape: tuple[int, ...], options: MeasureOptions | None = None, *,
                   name: str | None = None, progress=None, coord_groups=None) -> Measurement:
    """Monte Carlo of ``model`` itself over freshly drawn parameters (see the module docstring).

    Examples
    --------
    >>> model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 4))
    >>> m = measure_module(model, (6,), MeasureOptions(nets=2000, seed=0, device="cpu"))
    >>> mean, se = m.mean_se("grad_logit_l2_sq")
    >>> abs(mean - 2) < 4 * se                            # Theorem 4: E||grad f||^2 = 2
    True
    """
    from .measure import _measure

    opt = options or MeasureOptions()
    device, dtype = resolve_device(opt.device), resolve_dtype(opt.dtype)
    shape = tuple(input_shape)
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in model.modules())
    batch = opt.inputs_per_net or (16 if has_bn else 1)
    probe = ModuleEnsemble(model, shape, 1, init=opt.init, device=device, dtype=dtype)
    try:
        out = probe(torch.zeros(max(batch, 2), 1, *shape, device=device, dtype=dtype))
    except ModuleError:
        raise
    except Exception as err:  # the user's forward pass: report it as bad input, not a traceback
        raise ModuleError(f"{name or type(model).__name__}: the model fails on inputs of shape "
                          f"(batch, {', '.join(map(str, shape))}): {type(err).__name__}: {err}") from err
    k_total = out.shape[-1]
    n_logits = opt.logits if opt.logits is not None else 1
    if n_logits > k_total:
        raise ModuleError(f"logits={n_logits} exceeds the {k_total} outputs of the model")
    chunk = module_chunk(opt)

    def make(n: int) -> ModuleEnsemble:
        return ModuleEnsemble(model, shape, n, init=opt.init, device=device, dtype=dtype)

    px = shape[1] if len(shape) > 1 else None
    p = Plan(name=name or type(model).__name__, px=px, d=math.prod(shape), input_shape=shape, input_names=(),
             outputs=tuple(f"logits[{k}]" for k in range(k_total)), k_total=k_total, exchangeable=True,
             n_logits=n_logits, batch=batch, chunk=chunk, implicit_dense=False, device=device, dtype=dtype, make=make)
    with strict_numerics(device), freed_memory_kept(device):
        return _measure(opt, p, progress, coord_groups)
