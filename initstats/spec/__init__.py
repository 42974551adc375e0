"""Architecture specifications: frozen dataclasses shared by the exact and the empirical engine.

One :class:`Arch` describes a feed-forward network on inputs of shape ``(channels, *spatial)``
with zero, one or two spatial axes.  The same object drives the networkx graph
(:func:`initstats.graph.build_graph`), the exact compressed analysis
(:func:`initstats.exact.analyse`) and the torch ensemble of the Monte Carlo engine, so the
exact prediction and the measurement always describe the same network.

Layers
------
- :class:`Dense`: fully connected, flattens its input; ReLU or no activation.
- :class:`Conv`: convolution with kernel, stride, dilation and padding mode
  ``zero | circular | reflect`` (padding amount ``pad`` on both sides, by default
  ``dilation * (kernel - 1) // 2``); ReLU or no activation; optional BatchNorm.
- :class:`AvgPool`, :class:`MaxPool`: per-channel pooling without padding; ``kernel=None``
  pools globally.
- :class:`Residual`: ``y = x + body(x)``, a ``sum`` node per neuron; the body must keep the
  shape.
- :class:`Concat`: ``y = cat([branch(x), ...])`` along channels (DenseNet; :func:`dense_block`),
  no node of its own: the next layer reads the branches' neurons.

The last layer must be a :class:`Dense` layer: its units are the logits.

Assumptions
-----------
Weights of convolutions and dense layers are random (He: variance ``2 / fan_in`` with
``fan_in = in_channels * prod(kernel)``); a zero-padded boundary neuron has fewer inputs
than ``fan_in`` but keeps that variance.  Max pooling and BatchNorm are representable but lie
outside the hypotheses (H) of the theory.

Modules: :mod:`~initstats.spec.layers` (the layer types), :mod:`~initstats.spec.geometry`
(windows along one axis), :mod:`~initstats.spec.stages` (the validated layer DAG with its resolved
geometry) and :mod:`~initstats.spec.arch` (:class:`Arch`).

Examples
--------
>>> from initstats.spec import Arch, Conv, AvgPool, Dense
>>> arch = Arch((3, 8, 8), (Conv(4, padding="circular"), AvgPool(2), Dense(10, activation=None)))
>>> arch.d, arch.num_classes, arch.stages[-1].shape
(192, 10, (10,))
"""

from __future__ import annotations

from .arch import Arch, classify_kinds, node_id
from .geometry import AxisMap, axis_map, window_entries
from .layers import (ACTIVATIONS, PADDINGS, AvgPool, Concat, Conv, Dense, IntOrTuple, Layer, MaxPool, Padding, Residual,
                     batchnorm_factor, dense_block)
from .stages import DETERMINISTIC_KINDS, NODE_KINDS, POOL_KINDS, RANDOM_KINDS, SUM_KINDS, Stage, build_stages

__all__ = [
    "PADDINGS",
    "ACTIVATIONS",
    "Padding",
    "IntOrTuple",
    "Dense",
    "Conv",
    "AvgPool",
    "MaxPool",
    "Residual",
    "Concat",
    "dense_block",
    "batchnorm_factor",
    "Layer",
    "Arch",
    "AxisMap",
    "Stage",
    "axis_map",
    "window_entries",
    "build_stages",
    "node_id",
    "classify_kinds",
    "NODE_KINDS",
    "RANDOM_KINDS",
    "DETERMINISTIC_KINDS",
    "POOL_KINDS",
    "SUM_KINDS",
]
