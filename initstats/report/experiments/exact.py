"""Exact experiments of the report: graph-engine analyses returned as tidy frames, no text.

Every value here is computed with integers and fractions by :func:`initstats.exact.analyse` or
from the layer geometry of :func:`initstats.spec.axis_map`; nothing is sampled.  The frames'
columns are documented per function; :mod:`initstats.report.findings` selects sentences from
them and :mod:`initstats.report.pages` renders them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...exact import analyse
from ...exact.results import OutputAnalysis
from ...families import make_arch
from ...spec import Arch, AvgPool, Conv, Dense, Residual, axis_map
from ..wording import listing

__all__ = ["ExactResults", "run_exact", "atlas_frame", "window_coverage", "coverage_frame", "alias_frame",
           "zero_padding_frame", "hypotheses_note"]


@dataclass(frozen=True, eq=False)
class ExactResults:
    """The frames of the exact experiments (see each ``*_frame`` function for the columns).

    Examples
    --------
    >>> exact = ExactResults(atlas_frame(16), coverage_frame(16), alias_frame(64, dilation=2), zero_padding_frame((8,)))
    >>> exact.atlas.shape, exact.coverage.shape, exact.alias.shape, exact.zero_padding.shape
    ((23, 20), (9, 11), (1, 6), (1, 12))
    """

    atlas: pd.DataFrame
    coverage: pd.DataFrame
    alias: pd.DataFrame
    zero_padding: pd.DataFrame


def _output(arch: Arch) -> OutputAnalysis:
    return analyse(arch).outputs[0]


#: node kinds of a spec that no annealed model covers, in words
UNCOVERED_KINDS = {"maxpool": "max pooling", "batchnorm": "BatchNorm"}


def hypotheses_note(out: OutputAnalysis, arch: Arch | None = None) -> str:
    """Which of the checked hypotheses fail for one output, in words (from the engine's fields).

    The failing checks among H1-H5 and (S) where the engine reports them one by one (else
    among H3 and (S)); ``'outside (H)'`` is prefixed when the engine labels the output outside
    (with the uncovered layer kinds of ``arch``), ``"(H')"`` added when it has deterministic merges.

    Examples
    --------
    >>> from initstats.exact import analyse
    >>> from initstats.families import make_arch
    >>> for arch in (make_arch("cnn", 16, channels=2),
    ...              make_arch("cnn", 16, channels=2, downsample="max", head="maxpool", batchnorm=True),
    ...              make_arch("cnn-avgpool", 16, channels=2, padding="circular")):
    ...     print(hypotheses_note(analyse(arch).outputs[0], arch))
    H3 and (S) fail
    outside (H) with max pooling and BatchNorm; H1, H3 and (S) fail
    no checked hypothesis fails; deterministic merges (H')
    """
    checks = getattr(out, "hypotheses", None)
    if checks:
        failing = [("(S)" if c.name == "S" else c.name) for c in checks if not c.holds]
    else:
        failing = [name for name, ok in (("H3", out.h3_holds), ("(S)", out.symmetric)) if not ok]
    text = listing(failing) + (" fails" if len(failing) == 1 else " fail") if failing else "no checked hypothesis fails"
    if out.hypothesis_set == "outside":
        kinds = [w for k, w in UNCOVERED_KINDS.items() if arch is not None and k in arch.node_kinds]
        return "outside (H)" + (f" with {listing(kinds)}" if kinds else "") + "; " + text
    return text + ("; deterministic merges (H')" if out.hypothesis_set == "H'" else "")


def _witness(out: OutputAnalysis) -> str | None:
    w = out.witness
    if w is None:
        return None
    if w.path_degree is None:
        return w.text()
    return f"{w.inputs[0]} vs {w.inputs[1]}: {w.counts[0]} vs {w.counts[1]} paths of path-degree {list(w.path_degree)}"


def window_coverage(n: int, kernel: int, stride: int, dilation: int, pad: int, padding: str) -> np.ndarray:
    """How many windows of one layer read each input position along one axis.

    Uses the layer geometry of :func:`initstats.spec.axis_map` (the one the exact engine uses);
    a window that reads a position through several taps (wrapped padding) counts once.

    Returns
    -------
    numpy.ndarray of int, shape (n,)

    Examples
    --------
    >>> window_coverage(8, 3, 2, 1, 1, "circular").tolist()      # 3x3 stride 2: odd positions read twice
    [1, 2, 1, 2, 1, 2, 1, 2]
    >>> window_coverage(8, 2, 2, 2, 0, "zero").tolist()          # kernel 2, dilation 2: odd positions never
    [1, 0, 2, 0, 2, 0, 1, 0]
    """
    amap = axis_map(n, kernel, stride, dilation, pad, padding)
    counts = np.zeros(n, dtype=np.int64)
    for taps in amap.taps:
        for j, _ in taps:
            counts[j] += 1
    return counts


def _pad(kernel: int, stride: int, dilation: int) -> int:
    """The atlas' padding: ``dilation`` pixels for odd kernels, ``(k - s) // 2`` for even ones."""
    return dilation * (kernel - 1) // 2 if kernel % 2 else (kernel - stride) // 2


#: (kernel, stride, dilation) of the two-convolution rows of the atlas
CONV_GEOMETRIES: tuple[tuple[int, int, int], ...] = ((3, 1, 1), (3, 2, 1), (2, 2, 1), (2, 2, 2), (3, 1, 2))
PADDINGS = ("zero", "circular", "reflect")


def _atlas_archs(px: int) -> list[tuple[dict, Arch]]:
    shape = (3, px, px)
    out: list[tuple[dict, Arch]] = [({"architecture": "fc", "convolutions": 0}, make_arch("fc", px))]
    for padding in PADDINGS:
        for k, s, dil in CONV_GEOMETRIES:
            conv = Conv(16, k, stride=s, dilation=dil, padding=padding, pad=_pad(k, s, dil))
            out.append(({"architecture": "conv x2", "padding": padding, "kernel": k, "stride": s, "dilation": dil,
                         "convolutions": 2}, Arch(shape, (conv, conv, Dense(10, activation=None)), name="conv x2")))
    for padding in ("zero", "circular"):
        c = Conv(16, 3, padding=padding)
        out.append(({"architecture": "conv, 2x2 avgpool, conv", "padding": padding, "kernel": 3, "stride": 1,
                     "dilation": 1, "merges": "avg pool 2x2"},
                    Arch(shape, (c, AvgPool(2), c, Dense(10, activation=None)), name="conv-avgpool")))
        out.append(({"architecture": "conv, residual block", "padding": padding, "kernel": 3, "stride": 1,
                     "dilation": 1, "merges": "residual sum"},
                    Arch(shape, (c, Residual((c, Conv(16, 3, padding=padding, activation=None))),
                                 Dense(10, activation=None)), name="resnet block")))
    for padding in PADDINGS:
        arch = make_arch("cnn", px, padding=padding)
        out.append(({"architecture": "cnn (Fig. 3 topology)", "padding": padding, "kernel": 3, "stride": 1,
                     "dilation": dict(arch.params)["dilation"]}, arch))
    for meta, arch in out:
        meta["convolutions"] = sum(isinstance(layer, Conv) for layer in _flat(arch.layers))
    return out


def _flat(layers: Sequence) -> list:
    flat: list = []
    for layer in layers:
        flat.extend(_flat(layer.body) if isinstance(layer, Residual) else [layer])
    return flat


def atlas_frame(px: int = 32) -> pd.DataFrame:
    """Lemma 8, (S), Lemma 9 and the annealed total for a set of small architectures at ``px``.

    Returns
    -------
    pandas.DataFrame
        One row per architecture: ``architecture, padding, kernel, stride, dilation, merges,
        convolutions`` (Conv layers counted in the spec), ``d``, ``lemma8_sum`` (exact, as a
        string), ``symmetric``, ``lemma9_holds``, ``lemma9_max_dev``, ``inputs_reached`` (inputs
        with a path to the first logit, ``r(x) > 0``), ``windows_min``/``windows_max`` (windows
        of the first layer reading an input position, per axis; two-convolution rows only),
        ``h3_holds``, ``grad_sq_total`` (exact annealed, float), ``theorem_total`` (string),
        ``hypothesis`` (the engine's label), ``witness``.

    Examples
    --------
    >>> atlas = atlas_frame(16)
    >>> set(atlas["lemma8_sum"])                                  # Lemma 8 on every architecture
    {'1'}
    >>> circular = atlas.query("architecture == 'conv x2' and padding == 'circular'")
    >>> circular[["kernel", "stride", "dilation", "symmetric", "inputs_reached"]].values.tolist()
    [[3.0, 1.0, 1.0, True, 768], [3.0, 2.0, 1.0, False, 768], [2.0, 2.0, 1.0, True, 768],
     [2.0, 2.0, 2.0, False, 192], [3.0, 1.0, 2.0, True, 768]]
    """
    rows = []
    for meta, arch in _atlas_archs(px):
        out = _output(arch)
        walk = out.walk.to_numpy()
        cov = None
        if meta["architecture"] == "conv x2":
            cov = window_coverage(px, meta["kernel"], meta["stride"], meta["dilation"],
                                  _pad(meta["kernel"], meta["stride"], meta["dilation"]), meta["padding"])
        rows.append({
            "architecture": meta["architecture"], "padding": meta.get("padding"), "kernel": meta.get("kernel"),
            "stride": meta.get("stride"), "dilation": meta.get("dilation"), "merges": meta.get("merges"),
            "convolutions": meta["convolutions"], "d": arch.d, "lemma8_sum": str(out.lemma8_sum),
            "symmetric": bool(out.symmetric), "lemma9_holds": bool(out.lemma9_holds),
            "lemma9_max_dev": float(out.lemma9_max_dev), "inputs_reached": int(np.count_nonzero(walk > 0)),
            "windows_min": None if cov is None else int(cov.min()),
            "windows_max": None if cov is None else int(cov.max()),
            "h3_holds": bool(out.h3_holds),
            "grad_sq_total": None if out.grad_sq_total is None else float(out.grad_sq_total),
            "theorem_total": None if out.theorem_total is None else str(out.theorem_total),
            "hypothesis": out.hypothesis_set, "witness": _witness(out),
        })
    return pd.DataFrame(rows)


def coverage_frame(n: int = 32) -> pd.DataFrame:
    """Windows per input position by parity, for the strided geometries of the atlas.

    Returns
    -------
    pandas.DataFrame
        One row per (kernel, stride, dilation, padding) with stride 2: ``n, kernel, stride,
        dilation, padding, pad, even_min, even_max, odd_min, odd_max`` (windows of one layer
        reading an even / odd position along one axis), ``uncovered`` (positions read by no
        window).

    Examples
    --------
    >>> frame = coverage_frame(8)
    >>> circular = frame.query("kernel == 3 and padding == 'circular'")
    >>> circular[["even_min", "even_max", "odd_min", "odd_max"]].values.tolist()
    [[1, 1, 2, 2]]
    >>> frame.query("dilation == 2")["uncovered"].tolist()        # half the positions are read by no window
    [4, 4, 4]
    """
    rows = []
    for k, s, dil in CONV_GEOMETRIES:
        if s == 1:
            continue
        for padding in PADDINGS:
            pad = _pad(k, s, dil)
            cov = window_coverage(n, k, s, dil, pad, padding)
            rows.append({"n": n, "kernel": k, "stride": s, "dilation": dil, "padding": padding, "pad": pad,
                         "even_min": int(cov[0::2].min()), "even_max": int(cov[0::2].max()),
                         "odd_min": int(cov[1::2].min()), "odd_max": int(cov[1::2].max()),
                         "uncovered": int(np.count_nonzero(cov == 0))})
    return pd.DataFrame(rows)


def alias_frame(px: int = 256, dilation: int = 8) -> pd.DataFrame:
    """Figure 3's dilated layers with layers 2, 4, 6 themselves 3x3 stride 2 (no separate window).

    Returns
    -------
    pandas.DataFrame
        One row: ``px, dilation, strided_layers, d, inputs_reached`` (annealed gradient > 0),
        ``inputs_unreached``.

    Examples
    --------
    >>> alias_frame(64, dilation=2)[["d", "inputs_reached", "inputs_unreached"]].values.tolist()
    [[12288, 3072, 9216]]
    """
    layers = tuple(Conv(16, 3, stride=2 if i in (2, 4, 6) else 1, dilation=dilation) for i in range(1, 9))
    arch = Arch((3, px, px), layers + (Dense(12, activation=None),), name="cnn, layers 2/4/6 strided")
    grad = _output(arch).grad_sq.to_numpy()  # type: ignore[union-attr]
    reached = int(np.count_nonzero(grad > 0))
    return pd.DataFrame([{"px": px, "dilation": dilation, "strided_layers": "2, 4, 6", "d": arch.d,
                          "inputs_reached": reached, "inputs_unreached": arch.d - reached}])


def zero_padding_frame(dims: Sequence[int], fixed_dilation: int = 1) -> pd.DataFrame:
    """Exact annealed ``E||grad f||^2`` of the ``cnn`` family across px, and at a fixed dilation.

    Returns
    -------
    pandas.DataFrame
        One row per px: ``px, d, family_dilation, exact_family`` (zero padding, the family's
        dilation ``max(1, px // 32)``), ``fixed_dilation, exact_fixed`` (zero padding, that
        dilation), ``exact_circular`` (circular padding, the family's dilation),
        ``theorem_total`` (float), ``h3_holds``, ``symmetric``, ``hypothesis`` (family, zero
        padding), ``note`` (:func:`hypotheses_note`).

    Examples
    --------
    >>> frame = zero_padding_frame((8, 16))
    >>> frame[["px", "exact_circular", "theorem_total", "h3_holds", "note"]].values.tolist()
    [[8, 2.0, 2.0, False, 'H3 and (S) fail'], [16, 2.0, 2.0, False, 'H3 and (S) fail']]
    >>> bool((frame["exact_family"] < frame["exact_circular"]).all())    # zero padding loses gradient at the border
    True
    """
    rows = []
    for px in dims:
        fam = make_arch("cnn", px)
        out = _output(fam)
        fixed = _output(make_arch("cnn", px, dilation=fixed_dilation))
        circ = _output(make_arch("cnn", px, padding="circular"))
        rows.append({"px": px, "d": fam.d, "family_dilation": dict(fam.params)["dilation"],
                     "exact_family": _float(out.grad_sq_total), "fixed_dilation": fixed_dilation,
                     "exact_fixed": _float(fixed.grad_sq_total), "exact_circular": _float(circ.grad_sq_total),
                     "theorem_total": _float(out.theorem_total), "h3_holds": bool(out.h3_holds),
                     "symmetric": bool(out.symmetric), "hypothesis": out.hypothesis_set, "note": hypotheses_note(out)})
    return pd.DataFrame(rows)


def _float(x: object) -> float | None:
    return None if x is None else float(x)  # type: ignore[arg-type]


def run_exact(dims: Sequence[int], px: int = 32) -> ExactResults:
    """All exact experiments of the report.

    Examples
    --------
    >>> exact = run_exact((8, 16), px=16)
    >>> exact.zero_padding["px"].tolist(), int(exact.atlas["d"].iloc[0]), int(exact.alias["d"].iloc[0])
    ([8, 16], 768, 196608)
    """
    return ExactResults(atlas_frame(px), coverage_frame(px), alias_frame(), zero_padding_frame(dims))
