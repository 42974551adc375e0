"""The exact engine: Lemmas 8 and 9, assumption (S), the annealed gradient prediction.

Integers and :class:`fractions.Fraction` only; no torch is imported here.
"""

from .analysis import analyse, analyse_graph
from .results import ExplicitValues, GraphAnalysis, GridValues, InputValues, OutputAnalysis, Witness

__all__ = ["analyse", "analyse_graph", "GraphAnalysis", "OutputAnalysis", "Witness", "InputValues",
           "ExplicitValues", "GridValues"]
