"""The exception hierarchy of initstats.

Every error that initstats raises on bad input derives from :class:`InitStatsError`, names
the offending value and says what would be valid.  The command line turns these into a
one-line message and exit code 2; Python users can catch the root class.
"""

from __future__ import annotations

__all__ = [
    "InitStatsError",
    "SpecError",
    "UnsupportedLayerError",
    "GraphError",
    "NotADAGError",
    "GraphFormatError",
    "SpecFileError",
    "OptionError",
    "DeviceError",
]


class InitStatsError(Exception):
    """Root of every error initstats raises on bad input."""


class SpecError(InitStatsError, ValueError):
    """An architecture specification is invalid (sizes, kernels, paddings, shapes)."""


class UnsupportedLayerError(SpecError):
    """A layer or layer option that initstats cannot represent."""


class GraphError(InitStatsError, ValueError):
    """A graph is not a valid network DAG."""


class NotADAGError(GraphError):
    """The graph has a directed cycle."""


class GraphFormatError(GraphError):
    """A node or edge attribute is missing, unknown or unparsable."""


class SpecFileError(InitStatsError, OSError):
    """A specification file cannot be read or parsed."""


class OptionError(InitStatsError, ValueError):
    """An option has a value outside its valid range."""


class DeviceError(InitStatsError, RuntimeError):
    """The requested compute device is not available."""
