"""The route factorisation of residual networks (initstats.exact.routes) against the channel quotient.

The quotient (one node per stage position) is the reference: its walk and linear passes are the
neuron-level passes up to the channel automorphism (tests/test_exact.py checks that against the
neuron graph).  Here the route engine must give identical Fractions on traced ResNet layouts, and
(S) must be decided as documented: cyclic symmetry proves it, small networks get the full-profile
witness, large ones a walk-probability witness, and an undecidable case is refused.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from initstats import from_module
from initstats.errors import ExactLimitError
from initstats.exact import analyse
from initstats.exact import compress
from initstats.exact.paths import at_inputs, linear_pass, walk_pass
from initstats.exact.routes import route_count, route_values, shift_invariant, stage_routes
from initstats.families import make_arch
from initstats.spec import Arch, Conv, Dense, Residual

from .models import projection_block, resnet18_layout


def _quotient_values(arch: Arch) -> tuple[tuple[Fraction, ...], tuple[Fraction, ...]]:
    bg, _ = compress._quotient_graph(arch)
    o = bg.outputs[0]
    return at_inputs(walk_pass(bg, o), bg.inputs), at_inputs(linear_pass(bg, o), bg.inputs)


@pytest.mark.parametrize("factory, px", [(resnet18_layout, 8), (resnet18_layout, 12), (projection_block, 9)])
def test_routes_equal_the_quotient_on_traced_resnets(factory, px):
    arch = from_module(factory(), px=px, check=False)
    walk, grad = _quotient_values(arch)
    v = route_values(arch)
    assert v.walk.table == walk and v.grad is not None and v.grad.table == grad
    assert v.walk.total == 1                                     # Lemma 8


def test_route_count_doubles_per_block():
    for blocks in (1, 2, 3):
        arch = make_arch("resnet", 6, channels=2, blocks=blocks)
        assert route_count(arch) == len(stage_routes(arch)) == 2 ** blocks
    with pytest.raises(ExactLimitError, match="routes"):
        stage_routes(make_arch("resnet", 6, channels=2, blocks=3), limit=7)


def test_shift_invariance_proves_s_only_for_circulant_maps():
    assert shift_invariant(make_arch("resnet", 8, channels=2, padding="circular"))
    assert not shift_invariant(make_arch("resnet", 8, channels=2, padding="zero"))
    strided = Arch((1, 8, 8), (Conv(2, 3, padding="circular"),
                               Residual((Conv(2, 3, padding="circular"), Conv(2, 3, stride=2, padding="circular"
                                                                              )), shortcut=(Conv(2, 1, stride=2),)),
                               Dense(3, activation=None)))
    assert not shift_invariant(strided)
    assert analyse(make_arch("resnet", 8, channels=2, padding="circular")).outputs[0].symmetric


def test_large_networks_get_a_walk_witness(monkeypatch):
    arch = make_arch("resnet", 8, channels=2, padding="zero")
    small = analyse(arch).outputs[0].witness
    assert small is not None and small.path_degree is not None            # full profiles at this size
    monkeypatch.setattr(compress, "QUOTIENT_PROFILE_NODES", 0)
    big = analyse(arch).outputs[0]
    w = big.witness
    assert w.path_degree is None and w.counts is None and w.walk[0] != w.walk[1]
    assert w.walk == (big.walk.at((0, 0)), big.walk.at((0, 1))) and w.inputs == ("x[0,0,0]", "x[0,0,1]")
    assert not big.symmetric and "walk probabilities" in next(h for h in big.hypotheses if h.name == "S").witness


def test_undecidable_s_is_refused(monkeypatch):
    # stride 2 with kernel 2: every input is read once, walk probabilities are uniform, yet no
    # cyclic shift by one position is an automorphism; without profiles (S) cannot be decided
    arch = Arch((1, 8), (Conv(2, 2, stride=2, padding="circular"),
                         Residual((Conv(2, 3, padding="circular"),)), Dense(2, activation=None)))
    assert not shift_invariant(arch)
    full = analyse(arch).outputs[0]
    assert full.walk.uniform
    monkeypatch.setattr(compress, "QUOTIENT_PROFILE_NODES", 0)
    with pytest.raises(ExactLimitError, match=r"\(S\) cannot be decided"):
        analyse(arch)


@pytest.mark.slow
def test_resnet18_layout_at_224_px_is_exact():
    arch = from_module(resnet18_layout(), px=224, check=False)
    out = analyse(arch).outputs[0]
    assert out.lemma8_sum == 1 and not out.symmetric and out.witness.walk is not None
    assert out.grad_sq is not None and out.grad_sq.total == out.path_sum_total
