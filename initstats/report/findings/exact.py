"""Findings selected from the exact atlas (Lemma 8, (S), padding, strides, aliasing).

Each selector takes the frames of :mod:`initstats.report.experiments.exact` and returns a
:class:`~.base.Finding` whose every clause is chosen by the values in those frames; the
opposite values give the opposite wording.
"""

from __future__ import annotations

from fractions import Fraction

import pandas as pd

from ..wording import listing, num
from .base import Finding

__all__ = ["lemma8", "strided_symmetry", "padding", "aliasing"]


def _conv_row(atlas: pd.DataFrame, padding: str, kernel: int, stride: int, dilation: int) -> pd.Series:
    sel = atlas[(atlas["architecture"] == "conv x2") & (atlas["padding"] == padding) & (atlas["kernel"] == kernel)
                & (atlas["stride"] == stride) & (atlas["dilation"] == dilation)]
    if len(sel) != 1:
        raise ValueError(f"the atlas has {len(sel)} rows for two {kernel}x{kernel} stride-{stride} dilation-{dilation} "
                         f"convolutions with {padding} padding; expected 1")
    return sel.iloc[0]


def _windows(lo: int, hi: int) -> str:
    text = str(lo) if lo == hi else f"{lo} to {hi}"
    return text + (" window" if (lo, hi) == (1, 1) else " windows")


def lemma8(atlas: pd.DataFrame) -> Finding:
    """Lemma 8's sum over every architecture of the atlas.

    Examples
    --------
    >>> from initstats.report.experiments.exact import atlas_frame, coverage_frame
    >>> atlas = atlas_frame(16)           # the report's atlas at 16 px instead of 32
    >>> f = lemma8(atlas)
    >>> f.relation
    'agrees'
    >>> print(f.text)
    The exact sum of walk probabilities `sum_x r(x)` is 1 on all 23 architectures of the atlas, whatever their
    padding, stride, dilation, pooling or residual sums.
    >>> lemma8(atlas.assign(lemma8_sum=["1"] * 22 + ["3/4"])).relation      # other data, other finding
    'disagrees'
    """
    bad = atlas[atlas["lemma8_sum"].astype(str) != "1"]
    if bad.empty:
        text = (f"The exact sum of walk probabilities `sum_x r(x)` is 1 on all {len(atlas)} architectures of the "
                "atlas, whatever their padding, stride, dilation, pooling or residual sums.")
        return Finding("lemma8", "lemmas", "agrees", "Lemma 8", text)
    rows = [f"{r.architecture} ({r.padding}): {r.lemma8_sum}" for r in bad.itertuples()]
    text = (f"The exact sum of walk probabilities `sum_x r(x)` differs from 1 on {len(bad)} of {len(atlas)} "
            f"architectures: {listing(rows)}.")
    return Finding("lemma8", "lemmas", "disagrees", "Lemma 8", text)


def strided_symmetry(atlas: pd.DataFrame, coverage: pd.DataFrame) -> Finding:
    """Whether the paper's stride condition suffices for (S), from the circular rows of the atlas.

    Examples
    --------
    >>> from initstats.report.experiments.exact import atlas_frame, coverage_frame
    >>> atlas = atlas_frame(16)           # the report's atlas at 16 px instead of 32
    >>> f = strided_symmetry(atlas, coverage_frame(16))
    >>> f.relation
    'disagrees'
    >>> print(f.text.split(";")[0])
    With circular padding on 16 px inputs, a multiple of the stride 2, two 3x3 stride-2 convolutions break (S) (x[0,0,0] vs x[0,0,1]: 256 vs 768 paths of path-degree [27, 144, 256]
    """
    s3 = _conv_row(atlas, "circular", 3, 2, 1)
    s2 = _conv_row(atlas, "circular", 2, 2, 1)
    s2d = _conv_row(atlas, "circular", 2, 2, 2)
    cov = coverage[(coverage["kernel"] == 3) & (coverage["stride"] == 2) & (coverage["dilation"] == 1)
                   & (coverage["padding"] == "circular")].iloc[0]
    n, multiple = int(cov["n"]), int(cov["n"]) % 2 == 0
    parts = []
    if not s3["symmetric"]:
        parts.append(f"With circular padding on {n} px inputs{', a multiple of the stride 2,' if multiple else ''} "
                     f"two 3x3 stride-2 convolutions break (S) ({s3['witness']}; `max |d r - 1|` = "
                     f"{num(s3['lemma9_max_dev'])}).")
    else:
        parts.append(f"With circular padding on {n} px inputs two 3x3 stride-2 convolutions satisfy (S) and Lemma 9.")
    even, odd = (int(cov["even_min"]), int(cov["even_max"])), (int(cov["odd_min"]), int(cov["odd_max"]))
    if even != odd:
        parts.append(f"One such layer reads each input at an even position with {_windows(*even)} and each input at "
                     f"an odd position with {_windows(*odd)} per axis.")
    parts.append(f"Two 2x2 stride-2 convolutions {'satisfy' if s2['symmetric'] else 'break'} (S)"
                 + (f"; with dilation 2 the same kernel and stride read only {num(s2d['inputs_reached'])} of the "
                    f"{num(s2d['d'])} inputs and (S) {'holds' if s2d['symmetric'] else 'fails'}."
                    if s2d["inputs_reached"] < s2d["d"] else
                    f", and with dilation 2 they {'satisfy' if s2d['symmetric'] else 'break'} it."))
    if not s3["symmetric"] and multiple:
        parts.append("So the paper's condition for strided layers (the layer size a multiple of the stride) is not "
                     "sufficient for (S)" + (", and neither is the stride dividing the kernel size once layers are "
                                             "dilated." if s2["symmetric"] and not s2d["symmetric"] else "."))
    circ = atlas[(atlas["architecture"] == "conv x2") & (atlas["padding"] == "circular")]
    uniform = circ["windows_min"] == circ["windows_max"]
    if (uniform == circ["symmetric"].astype(bool)).all() and uniform.any() and (~uniform).any():
        parts.append(f"In all {len(circ)} circular two-convolution rows of the atlas, (S) holds exactly where every "
                     "input position is read by the same number of windows of the layer.")
    relation = "disagrees" if not s3["symmetric"] and multiple else "agrees"
    return Finding("strided-symmetry", "lemmas", relation, "Strided layers and (S)", " ".join(parts))


def _theorem_value(text: object) -> float | None:
    if text is None or (isinstance(text, float) and text != text):
        return None
    return float(Fraction(str(text)))


def padding(atlas: pd.DataFrame) -> Finding:
    """(S), H3 and the exact total per padding mode, over the convolutional rows of the atlas.

    Examples
    --------
    >>> from initstats.report.experiments.exact import atlas_frame, coverage_frame
    >>> atlas = atlas_frame(16)           # the report's atlas at 16 px instead of 32
    >>> f = padding(atlas)
    >>> f.relation                      # zero and reflect padding break (S) and H3
    'outside'
    >>> print(f.text.split(". ")[0])
    Circular padding: (S) holds in 6 of 8 architectures and H3 in 7 of 8; the exact annealed `E||grad f||^2` is below the theorems' value in 0 of the 7 that have one
    """
    conv = atlas[atlas["padding"].notna()]
    sentences, outside = [], False
    for mode in ("circular", "zero", "reflect"):
        rows = conv[conv["padding"] == mode]
        if rows.empty:
            continue
        n = len(rows)
        sym, h3 = int(rows["symmetric"].astype(bool).sum()), int(rows["h3_holds"].astype(bool).sum())
        theorems = [(r.grad_sq_total, _theorem_value(r.theorem_total)) for r in rows.itertuples()]
        with_theorem = [(g, t) for g, t in theorems if t is not None and g is not None and g == g]
        below = sum(g < t for g, t in with_theorem)
        sentences.append(f"{mode.capitalize()} padding: (S) holds in {sym} of {n} architectures and H3 in {h3} of {n}; "
                         f"the exact annealed `E||grad f||^2` is below the theorems' value in {below} of the "
                         f"{len(with_theorem)} that have one.")
        outside = outside or sym < n or h3 < n
    text = " ".join(sentences)
    if not conv["h3_holds"].astype(bool).all():
        text += (" Where H3 fails, border neurons read fewer distinct inputs than the kernel's fan-in yet keep the "
                 "weight variance 2/fan_in.")
    return Finding("padding", "lemmas", "outside" if outside else "agrees", "Padding and the hypotheses", text)


def aliasing(alias: pd.DataFrame) -> Finding:
    """How many inputs a strided, dilated Figure 3 network would leave without a path.

    Examples
    --------
    >>> from initstats.report.experiments.exact import alias_frame
    >>> f = aliasing(alias_frame(64, dilation=2))
    >>> f.relation, "(75.0%) would have no path to the logits" in f.text
    ('note', True)
    """
    r = alias.iloc[0]
    lead = (f"If Figure 3's network at {int(r['px'])} px (dilation {int(r['dilation'])}) had its layers "
            f"{r['strided_layers']} as 3x3 stride-2 convolutions instead of separate 2x2 downsampling windows, ")
    if r["inputs_unreached"] > 0:
        text = lead + (f"{num(r['inputs_unreached'])} of its {num(r['d'])} inputs "
                       f"({r['inputs_unreached'] / r['d']:.1%}) would have no path to the logits (exact annealed "
                       "gradient 0). The `cnn` family used in this report downsamples with separate 2x2 windows.")
    else:
        text = lead + f"every one of its {num(r['d'])} inputs would still have a path to the logits."
    return Finding("aliasing", "lemmas", "note", "Dilation and strides", text)
