"""The exact engine: Lemmas 8 and 9, hypotheses H1-H5 and (S), the exact annealed gradient.

Integers and :class:`fractions.Fraction` only; no torch is imported here.
"""

from .analysis import analyse, analyse_graph
from .results import (ExplicitValues, GraphAnalysis, GridValues, HypothesisCheck, InputValues, OutputAnalysis,
                      Witness)

__all__ = ["analyse", "analyse_graph", "GraphAnalysis", "OutputAnalysis", "HypothesisCheck", "Witness",
           "InputValues", "ExplicitValues", "GridValues"]
