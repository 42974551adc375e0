"""initstats: verify theorems about neural networks at initialization."""

__version__ = "0.1.0"
