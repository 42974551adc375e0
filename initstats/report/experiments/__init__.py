"""The report's experiments: functions that run networks or exact analyses and return frames.

:mod:`.exact` analyses graphs with the exact engine (no sampling); :mod:`.measured` draws
He-initialised networks and keeps verdicts as frames.  Neither writes text.
"""

from .exact import ExactResults, run_exact
from .measured import (Fig3Result, Fig4Result, Lemma2Result, PoolingResult, Thm45Result, run_figure3, run_figure4,
                       run_lemma2, run_pooling, run_theorems_4_5)
from .models import ModelCase, ModelsResult, run_models
from .width import WidthResult, run_width_trend

__all__ = ["ExactResults", "run_exact", "Thm45Result", "PoolingResult", "Fig3Result", "Fig4Result", "Lemma2Result",
           "run_theorems_4_5", "run_pooling", "run_figure3", "run_figure4", "run_lemma2", "ModelCase", "ModelsResult",
           "run_models", "WidthResult", "run_width_trend"]
