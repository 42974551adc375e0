"""initstats: verify theorems about neural networks at initialization.

The curated public API.  The exact side (specs, graphs, :func:`analyse`) imports no torch; the
empirical names (:func:`measure`, :func:`verify_family`, ...) load torch on first use.

>>> import initstats
>>> out = initstats.analyse(initstats.make_arch("fc", 4, width=8)).outputs[0]
>>> out.lemma8_sum, out.grad_sq_total
(Fraction(1, 1), Fraction(2, 1))
"""

from __future__ import annotations

import importlib

from .errors import (DeviceError, ExactLimitError, GraphError, GraphFormatError, InitStatsError, ModuleError, NotADAGError,
                     OptionError, SpecError, SpecFileError, UnsupportedLayerError)
from .exact import GraphAnalysis, OutputAnalysis, Witness, analyse
from .families import FAMILIES, make_arch, with_avgpool, with_logit_relu
from .graph import build_graph, read_graph, write_graph
from .measurement import MeasureOptions, Measurement
from .spec import Arch, AvgPool, Concat, Conv, Dense, MaxPool, Residual, dense_block

__version__ = "0.1.0"

#: names loaded on first use (they import torch)
_LAZY = {
    "measure": "initstats.empirical.measure",
    "verify_family": "initstats.verify",
    "verify_graph": "initstats.verify",
    "verify_archs": "initstats.verify",
    "verify_module": "initstats.verify",
    "from_module": "initstats.empirical.trace",
    "module_archs": "initstats.empirical.modules",
    "Verification": "initstats.verify",
    "VerifySettings": "initstats.verify",
    "fgsm": "initstats.empirical.attack",
    "build_report": "initstats.report",
    "width_trend": "initstats.width_trend",
    "load_sweep": "initstats.sweep",
    "run_sweep": "initstats.sweep",
}

__all__ = [
    # specifications and families
    "Arch", "Dense", "Conv", "AvgPool", "MaxPool", "Residual", "Concat", "dense_block", "FAMILIES", "make_arch",
    "with_avgpool", "with_logit_relu",
    # graphs and the exact engine
    "build_graph", "read_graph", "write_graph", "analyse", "GraphAnalysis", "OutputAnalysis", "Witness",
    # measurements as data
    "MeasureOptions", "Measurement",
    # the empirical engine, user models and verdicts
    *_LAZY,
    # errors
    "InitStatsError", "SpecError", "UnsupportedLayerError", "GraphError", "NotADAGError", "GraphFormatError",
    "SpecFileError", "OptionError", "DeviceError", "ModuleError", "ExactLimitError",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'initstats' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
