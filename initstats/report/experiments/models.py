"""Standard models (:mod:`initstats.empirical.zoo`) through ``verify --module``: tidy frames, no text.

Each model is traced per size by :func:`~initstats.empirical.modules.module_archs` and verified
by :func:`~initstats.verify.verify_archs`, the functions behind ``initstats verify --module``, so
the rows, claims and verdicts here are those the command line prints.  The hypotheses and their
witnesses are the exact engine's (:func:`initstats.exact.analyse`, run inside ``verify_archs``).
A model the tracer (or an engine) rejects gets no rows; its message is kept in ``errors``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pandas as pd

from ...empirical.measure import MeasureOptions
from ...errors import InitStatsError
from ...exact.results import OutputAnalysis
from ...spec import Arch
from ...verify import VerifySettings, claim_kind, verify_archs
from ..profiles import Profile
from ..verdicts import claims_frame

__all__ = ["ModelCase", "ModelsResult", "model_cases", "run_models", "failed_hypotheses", "SIZE_NAMES",
           "MERGE_KINDS"]

#: the name of an input size, by the rank of the input shape
SIZE_NAMES = {1: "features", 2: "length", 3: "px"}

#: deterministic merges, in words, by node kind
MERGE_KINDS = {"avgpool": "average pools", "sum": "residual sums", "sumrelu": "residual sums"}

_ROW_COLUMNS = ["model", "size", "d", "hypothesis", "failed", "witnesses", "merges", "claim_kind", "annealed", "theorem",
                "not_covered", "mean", "se", "networks", "verdict", "excess", "excess_se", "excess_ci_low",
                "excess_ci_high", "tolerance"]


@dataclass(frozen=True)
class ModelCase:
    """One zoo model of the page: ``name`` (its zoo factory), a one-line ``description``, the
    ``sizes`` it is run at, ``archs``, which traces it at those sizes (one spec per size), and the
    number of networks per size.

    Examples
    --------
    >>> from initstats.spec import Arch, Dense
    >>> case = ModelCase("linear", "one dense layer", (4, 8), lambda ds: [Arch((d,), (Dense(2, activation=None),))
    ...                                                                  for d in ds], nets=100)
    >>> [a.d for a in case.archs(case.sizes)]
    [4, 8]
    """

    name: str
    description: str
    sizes: tuple[int, ...]
    archs: Callable[[Sequence[int]], list[Arch]]
    nets: int


def model_cases(profile: Profile) -> list[ModelCase]:
    """The zoo models at the profile's sizes (``model_px``, ``model_lengths``, ``model_features``).

    The 2-D convnets get ``model_nets`` networks per size; the much cheaper 1-D net four times
    and the MLP ten times as many.

    Examples
    --------
    >>> from initstats.report.profiles import PROFILES
    >>> [(c.name, c.sizes) for c in model_cases(PROFILES["quick"])]
    [('resnet18_layout', (8, 16, 32)), ('densenet_block', (8, 16, 32)), ('vgg_like', (8, 16, 32)),
     ('conv1d_net', (32, 64, 128)), ('mlp', (16, 64, 256))]
    """
    from ...empirical import zoo
    from ...empirical.modules import module_archs

    w, nets = profile.model_width, profile.model_nets

    def vgg_like(px: int):
        return zoo.vgg_like(px, channels=w)

    return [
        ModelCase("resnet18_layout", f"ResNet-18 layout, width {w} (CIFAR stem, BasicBlocks with projection "
                  "shortcuts, adaptive average pool, no BatchNorm)", profile.model_px,
                  lambda px: module_archs(zoo.resnet18_layout(width=w), px), nets),
        ModelCase("densenet_block", f"DenseNet-style block, {w} channels, growth {w} (two layers concatenating "
                  "their output with their input, 1x1 transition, global average pool)", profile.model_px,
                  lambda px: module_archs(zoo.densenet_block(channels=w, growth=w), px), nets),
        ModelCase("vgg_like", f"VGG-style stack, {w} channels (3x3 convolutions, two 2x2 max pools, dense head)",
                  profile.model_px, lambda px: module_archs(vgg_like, px), nets),
        ModelCase("conv1d_net", "1-D conv net, 6 channels (circular 5- and 3-tap convolutions, mean over the "
                  "length)", profile.model_lengths, lambda n: module_archs(zoo.conv1d_net(), n), 4 * nets),
        ModelCase("mlp", "MLP, two hidden ReLU layers of 32 units with dropout", profile.model_features,
                  lambda ns: [a for n in ns for a in module_archs(zoo.mlp(features=n))], 10 * nets),
    ]


def failed_hypotheses(out: OutputAnalysis) -> tuple[str, str]:
    """The engine's failing hypotheses and their witnesses: ``('H3, (S)', 'H3: ...; (S): ...')``.

    Examples
    --------
    >>> from initstats.exact import analyse
    >>> from initstats.spec import Arch, Conv, Dense
    >>> failed, witnesses = failed_hypotheses(analyse(Arch((1, 4, 4), (Conv(2), Dense(1, activation=None)))).outputs[0])
    >>> failed, witnesses.split("; ")[0]
    ('H3, (S)', "H3: edge 'x[0,0,0]' -> 'conv1[0,0,0]' has variance 2/9, not 2/in-degree = 2/4")
    """
    failing = [c for c in out.hypotheses if not c.holds]
    names = ["(S)" if c.name == "S" else c.name for c in failing]
    return ", ".join(names), "; ".join(f"{n}: {c.witness or c.detail}" for n, c in zip(names, failing))


@dataclass(frozen=True, eq=False)
class ModelsResult:
    """``cases``: ``model, description, size_name, sizes, networks`` per zoo model; ``rows``: one row per
    (model, size): ``size`` (px, length or features), ``d``, the engine's ``hypothesis`` set
    (``H``, ``H'`` or ``outside``), the ``failed`` hypotheses and their ``witnesses``, the
    deterministic ``merges`` on the paths (average pools, residual sums),
    ``claim_kind`` (``exact``, ``excess`` or ``not-covered``), the exact ``annealed``
    ``E||grad f||^2`` (None where not covered) and the ``theorem``'s 2/prod a_i (string), the reason
    a size is ``not_covered``, the measured ``mean, se, networks``, the ``verdict`` of its
    ``grad_sq_total`` claim and, for excess claims, that claim's ``excess`` (measured/annealed - 1),
    ``excess_se``, interval and ``tolerance``; ``exponents``: the scaling claims across sizes as a
    verdict frame with a ``model`` column; ``errors``: ``model, message`` of the models that could
    not be traced or verified.

    Examples
    --------
    >>> from initstats.report.profiles import PROFILES
    >>> tiny = replace(PROFILES["quick"], model_px=(8, 16), model_lengths=(8, 16), model_features=(8, 16),
    ...                model_width=2, model_nets=60)
    >>> res = run_models(tiny, MeasureOptions(seed=0, device="cpu"), VerifySettings())
    >>> res.rows[["model", "size", "hypothesis", "claim_kind"]].values.tolist()
    [['resnet18_layout', 8, "H'", 'excess'], ['resnet18_layout', 16, "H'", 'excess'], ['densenet_block', 8, "H'", 'excess'],
     ['densenet_block', 16, "H'", 'excess'], ['vgg_like', 8, 'outside', 'not-covered'],
     ['vgg_like', 16, 'outside', 'not-covered'], ['conv1d_net', 8, "H'", 'excess'], ['conv1d_net', 16, "H'", 'excess'],
     ['mlp', 8, 'H', 'exact'], ['mlp', 16, 'H', 'exact']]
    >>> sorted(set(res.exponents["kind"])), len(res.errors)
    (['not-covered', 'scaling'], 0)
    """

    cases: pd.DataFrame
    rows: pd.DataFrame
    exponents: pd.DataFrame
    errors: pd.DataFrame


def _rows(name: str, archs: list[Arch], res) -> list[dict]:
    totals = {c.d: c for c in res.claims if c.name.startswith("grad_sq_total[")}
    rows = []
    for arch, analysis, m in zip(archs, res.analyses, res.measurements):
        out = analysis.outputs[0]
        failed, witnesses = failed_hypotheses(out)
        mean, se = m.mean_se("grad_logit_l2_sq")
        claim = totals[m.d]
        kind = claim_kind(out)
        excess = kind == "excess"
        merges = ", ".join(dict.fromkeys(w for k, w in MERGE_KINDS.items() if k in out.node_kinds))
        rows.append({"model": name, "size": arch.px if arch.px is not None else arch.d, "d": arch.d,
                     "hypothesis": out.hypothesis_set, "failed": failed or None, "witnesses": witnesses or None,
                     "merges": merges or None,
                     "claim_kind": kind,
                     "annealed": None if out.grad_sq_total is None else float(out.grad_sq_total),
                     "theorem": None if out.theorem_total is None else str(out.theorem_total),
                     "not_covered": out.grad_sq_reason if out.grad_sq is None else None,
                     "mean": mean, "se": se, "networks": m.n_nets, "verdict": claim.verdict,
                     "excess": claim.estimate if excess else None, "excess_se": claim.stderr if excess else None,
                     "excess_ci_low": claim.ci_low if excess else None,
                     "excess_ci_high": claim.ci_high if excess else None,
                     "tolerance": claim.tolerance if excess else None})
    return rows


def run_models(profile: Profile, options: MeasureOptions, settings: VerifySettings,
               cases: Sequence[ModelCase] | None = None) -> ModelsResult:
    """``verify --module`` on each zoo model at its sizes, a fixed number of networks per size.

    ``cases`` replaces :func:`model_cases` (tests pass models of their own).

    Examples
    --------
    >>> from initstats.report.profiles import PROFILES
    >>> def broken(sizes):                      # a model the tracer rejects: its message is kept
    ...     raise InitStatsError("node 'sigmoid' (call_function sigmoid): not supported")
    >>> res = run_models(PROFILES["quick"], MeasureOptions(seed=0, device="cpu"), VerifySettings(),
    ...                  cases=[ModelCase("odd", "a sigmoid net", (8, 16), broken, 60)])
    >>> res.errors.values.tolist(), len(res.rows)
    ([['odd', "node 'sigmoid' (call_function sigmoid): not supported"]], 0)
    """
    info, rows, exps, errors = [], [], [], []
    for case in model_cases(profile) if cases is None else cases:
        try:
            archs = case.archs(case.sizes)
            res = verify_archs(archs, options=replace(options, nets=case.nets, max_time=None), settings=settings)
        except InitStatsError as err:
            size_name = None
            errors.append({"model": case.name, "message": str(err)})
        else:
            size_name = SIZE_NAMES.get(len(archs[0].input_shape), "size")
            rows += _rows(case.name, archs, res)
            exps.append(claims_frame([c for c in res.claims if c.name.startswith("scaling:")], model=case.name))
        info.append({"model": case.name, "description": case.description, "size_name": size_name,
                     "sizes": ", ".join(map(str, case.sizes)), "networks": case.nets})
    return ModelsResult(pd.DataFrame(info, columns=["model", "description", "size_name", "sizes", "networks"]),
                        pd.DataFrame(rows, columns=_ROW_COLUMNS),
                        pd.concat(exps, ignore_index=True) if exps else claims_frame([], model=""),
                        pd.DataFrame(errors, columns=["model", "message"]))
