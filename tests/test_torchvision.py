"""``--module torchvision.models:resnet18``, as docs/getting-started.md describes it (skipped without torchvision).

No torchvision build matching the pinned CPU torch installs here, so these tests run only where
torchvision imports.  What they pin down is what the guide says: torchvision's resnet18 does not
trace today (exit 2 at its padded stem max pool, before anything is measured; past it, BatchNorm
feeding each block's residual sum, and BatchNorm in evaluation mode, are refused too), and the same
model with those parts taken out traces, is measured, and has its claims reported ``not-covered``
because of its max pooling.
"""

from __future__ import annotations

import json

import pytest
from torch import nn

from initstats.empirical.trace import from_module
from initstats.errors import ModuleError

from .console import assert_bad_input

torchvision = pytest.importorskip("torchvision")


def resnet18_traceable() -> nn.Module:
    """torchvision's resnet18 without what the tracer refuses: no normalisation layers
    (``norm_layer=nn.Identity``) and an unpadded 2x2 stem max pool.  Still max pooling: outside (H)."""
    model = torchvision.models.resnet18(num_classes=10, norm_layer=nn.Identity)
    model.maxpool = nn.MaxPool2d(2)
    return model


def _cli(*args: str):
    from typer.testing import CliRunner

    from initstats.cli import app

    return CliRunner().invoke(app, list(args))


def test_from_module_stops_at_the_padded_stem_max_pool():
    with pytest.raises(ModuleError, match=r"fx node 'maxpool' \(call_module maxpool\): pooling with padding"):
        from_module(torchvision.models.resnet18(num_classes=10), px=32)


def test_past_the_max_pool_batchnorm_before_the_residual_sum_is_refused():
    model = torchvision.models.resnet18(num_classes=10)
    model.maxpool = nn.MaxPool2d(2)
    with pytest.raises(ModuleError, match="follows BatchNorm 'layer1_0_bn2' directly"):
        from_module(model, px=32)


def test_in_evaluation_mode_the_first_batchnorm_is_refused():
    with pytest.raises(ModuleError, match="fx node 'bn1'.*BatchNorm in evaluation mode"):
        from_module(torchvision.models.resnet18(num_classes=10).eval(), px=32)


def test_verify_torchvision_resnet18_exits_2_naming_the_max_pool(tmp_path):
    out = tmp_path / "out"
    result = _cli("verify", "--module", "torchvision.models:resnet18", "--dims", "32", "--nets", "64",
                  "--device", "cpu", "--out", str(out))
    assert_bad_input(result, "fx node 'maxpool'", "pooling with padding")
    assert not out.exists()                                  # nothing partially written


def test_verify_reports_the_max_pooled_resnet18_not_covered():
    """At 8 px: at 32 px the exact engine's symmetry check (S) of this 64-channel ResNet needs more path-degree
    multisets than its budget allows (exit 2); the max pool, and so the verdict, is there at every size."""
    result = _cli("verify", "--module", "tests.test_torchvision:resnet18_traceable", "--dims", "8", "--nets", "64",
                  "--device", "cpu", "--format", "json")
    assert result.exit_code == 0, (result.stdout[-2000:], result.stderr)
    claims = json.loads(result.stdout)["claims"]
    assert claims and {c["kind"] for c in claims} == {"not-covered"}, claims
    for c in claims:
        assert "outside (H): max pooling" in c["detail"] and c["estimate"] > 0, c
