"""What one network of an :class:`~initstats.spec.Arch` costs: FLOPs, weights, activations."""

from __future__ import annotations

from initstats.spec import Arch

__all__ = ["FLOP_PER_MAC", "PASSES", "flops_per_sample", "forward_macs", "largest_activation", "weights_per_net"]

#: FLOPs counted per multiply-accumulate
FLOP_PER_MAC = 2
#: passes of one sample that each cost the forward MACs: the forward and two data-gradient passes
PASSES = 3


def forward_macs(arch: Arch) -> int:
    """Multiply-accumulates of one forward pass of one network, as a dense implementation computes
    them: ``fan_in`` per output neuron of every conv/dense stage (zero-padded taps included)."""
    return sum(s.size * s.fan_in for s in arch.stages if s.is_conv or s.is_dense)


def flops_per_sample(arch: Arch) -> int:
    """FLOPs of one sample: 2 per MAC, for the forward pass and for two backward passes.

    The weights do not require gradients, so each backward pass computes only the data gradient
    (down to ``x``), which costs the forward MACs again: 2 * 3 * forward MACs.  ReLU, softmax,
    reductions and random number generation are not counted.
    """
    return FLOP_PER_MAC * PASSES * forward_macs(arch)


def weights_per_net(arch: Arch) -> int:
    """Weights of one network drawn explicitly (every conv and dense stage)."""
    return sum(s.channels * s.fan_in for s in arch.stages if s.is_conv or s.is_dense)


def largest_activation(arch: Arch) -> int:
    """Neurons of the largest stage of one network."""
    return max(s.size for s in arch.stages)

