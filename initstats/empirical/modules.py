"""User models for the command line and the Python API: ``SRC:FACTORY`` to one spec per input size.

A factory is a class or function returning an ``nn.Module``.  If it accepts a ``px`` argument it is
called once per input size; otherwise one instance serves every size (models with adaptive
pooling).  Each instance is traced into an :class:`~initstats.spec.Arch` by
:func:`~initstats.empirical.trace.from_module`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

from torch import nn

from ..errors import ModuleError
from ..spec import Arch
from .trace import from_module, input_shape_of

__all__ = ["module_instances", "load_factory", "module_archs"]


def load_factory(source: str) -> Callable[..., nn.Module]:
    """``SRC:FACTORY`` → the factory: SRC an importable module (``pkg.models``) or a ``.py`` path.

    Examples
    --------
    >>> load_factory("tests/models.py:residual_net")().__class__.__name__
    'ResidualNet'
    >>> load_factory("tests/models.py:nothing")
    Traceback (most recent call last):
    ...
    initstats.errors.ModuleError: --module 'tests/models.py:nothing': 'tests/models.py' has no callable 'nothing'
    """
    import importlib
    import importlib.util
    from pathlib import Path

    if ":" not in source:
        raise ModuleError(f"--module {source!r}: expected SRC:FACTORY, e.g. mypkg.models:resnet18 or models.py:Net")
    src, _, attr = source.rpartition(":")
    try:
        if src.endswith(".py") or "/" in src:
            path = Path(src)
            if not path.is_file():
                raise ModuleError(f"--module {source!r}: no file {src!r}")
            spec = importlib.util.spec_from_file_location(f"_initstats_user_{path.stem}", path)
            mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            spec.loader.exec_module(mod)  # type: ignore[union-attr]
        else:
            mod = importlib.import_module(src)
    except ModuleError:
        raise
    except Exception as err:
        raise ModuleError(f"--module {source!r}: cannot import {src!r}: {type(err).__name__}: {err}") from None
    factory = getattr(mod, attr, None)
    if factory is None or not callable(factory):
        raise ModuleError(f"--module {source!r}: {src!r} has no callable {attr!r}")
    return factory


def _takes_px(factory: Callable[..., object]) -> bool:
    try:
        return "px" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False


def _instance(factory: Callable[..., object], label: str, **kwargs) -> nn.Module:
    try:
        model = factory(**kwargs)
    except Exception as err:
        raise ModuleError(f"{label}: the factory raised {type(err).__name__}: {err}") from None
    if not isinstance(model, nn.Module):
        raise ModuleError(f"{label}: the factory returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def module_archs(source: str | Callable[..., nn.Module] | nn.Module, dims: Sequence[int] | None = None, *,
                 input_shape: tuple[int, ...] | None = None) -> list[Arch]:
    """One spec per input size of a user model.

    Parameters
    ----------
    source : str, callable or nn.Module
        ``"SRC:FACTORY"`` (see :func:`load_factory`), a factory, or a model (one instance for all sizes).
    dims : sequence of int, optional
        Input sizes in pixels: required for convolutional models, and for a factory taking ``px``.
    input_shape : tuple of int, optional
        The whole input shape without the batch axis (one size; not with ``dims``).

    Examples
    --------
    >>> archs = module_archs("tests/models.py:vgg_like", [8, 16])    # a factory taking px
    >>> [(a.name, a.input_shape, a.hypothesis_set()) for a in archs]
    [('vgg_like', (3, 8, 8), 'outside'), ('vgg_like', (3, 16, 16), 'outside')]
    >>> [a.input_shape for a in module_archs("tests/models.py:mlp")]   # a fixed input shape
    [(20,)]
    """
    archs = []
    for model, shape, name in module_instances(source, dims, input_shape=input_shape):
        try:
            archs.append(from_module(model, shape, name=name))
        except ModuleError as err:
            if "--empirical-only" in str(err):
                raise
            raise ModuleError(f"{err}; to measure the model as it is instead (every claim then not covered): "
                              "initstats verify --module ... --empirical-only") from err
    return archs


def module_instances(source: str | Callable[..., nn.Module] | nn.Module, dims: Sequence[int] | None = None, *,
                     input_shape: tuple[int, ...] | None = None) -> list[tuple[nn.Module, tuple[int, ...], str]]:
    """``(model, input shape, name)`` per input size, untraced (see :func:`module_archs` for the rules).

    Examples
    --------
    >>> [(shape, name) for _, shape, name in module_instances("tests/models.py:vgg_like", [8, 16])]
    [((3, 8, 8), 'vgg_like'), ((3, 16, 16), 'vgg_like')]
    """
    label = source if isinstance(source, str) else getattr(source, "__name__", type(source).__name__)
    name = source.rpartition(":")[2] if isinstance(source, str) else label
    factory = load_factory(source) if isinstance(source, str) else source
    if isinstance(factory, nn.Module):
        model, factory, takes_px = factory, None, False
    else:
        takes_px = _takes_px(factory)
        model = None
    if input_shape is not None and dims:
        raise ModuleError(f"{label}: give the input sizes (--dims) or the whole input shape (--input-shape), "
                          "not both")
    if takes_px and not dims:
        raise ModuleError(f"{label}: the factory takes px; give the input sizes, e.g. --dims 32,64")

    def sized(m: nn.Module, px: int | None) -> tuple[nn.Module, tuple[int, ...], str]:
        if input_shape is not None:
            return m, tuple(input_shape), name
        return m, tuple(px if s == -1 else s for s in input_shape_of(m)), name

    if takes_px:
        return [sized(_instance(factory, label, px=px), px) for px in dims]  # type: ignore[arg-type,union-attr]
    if model is None:
        model = _instance(factory, label)  # type: ignore[arg-type]
    if input_shape is not None:
        return [sized(model, None)]
    spatial = -1 in input_shape_of(model)
    if not spatial:
        if dims:
            raise ModuleError(f"{label}: the model reads a fixed number of features; --dims needs a factory "
                              "that takes px")
        return [sized(model, None)]
    if not dims:
        raise ModuleError(f"{label}: a convolutional model needs input sizes, e.g. --dims 32,64")
    return [sized(model, px) for px in dims]
