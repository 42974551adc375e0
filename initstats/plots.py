"""Figures from result frames (seaborn and matplotlib, imported lazily).

Functions take the tidy frames and objects the library returns and give a matplotlib
``Figure``; :func:`save_figure` writes it atomically.  Nothing global changes: figures are made
without pyplot (no backend is selected, no figure is registered), and seaborn's whitegrid/paper
theme applies only while a figure is drawn (:func:`matplotlib.rc_context`), so a user's own
matplotlib settings and backend are left as they were.
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["plot_scaling", "plot_coordinate_map", "save_figure"]


@contextlib.contextmanager
def _theme():
    """seaborn's whitegrid style, paper context and deep palette, for the duration of the block."""
    import matplotlib as mpl
    import seaborn as sns

    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper"),
          "axes.prop_cycle": mpl.cycler(color=sns.color_palette("deep"))}
    with mpl.rc_context(rc):
        yield sns


def _figure(nrows: int = 1, ncols: int = 1, **kw):
    """A figure and its axes, made without pyplot (``Figure.subplots``)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=kw.pop("figsize", None))
    return fig, fig.subplots(nrows, ncols, **kw)


def plot_scaling(rows: pd.DataFrame, exponents: dict[str, float], *, x: str = "d", title: str | None = None,
                 log_corrected: tuple[str, ...] = ("grad_loss_linf",)):
    """Log-log panels of each statistic against ``x`` (mean ± 2 SE), with the predicted slope.

    The predicted line has the predicted exponent and passes through the geometric mean of the
    points; ``log_corrected`` statistics are divided by ``sqrt(2 ln d)`` first.

    Examples
    --------
    >>> rows = pd.DataFrame({"d": [768, 3072, 12288] * 2, "statistic": ["grad_logit_l2"] * 3 + ["grad_logit_l1"] * 3,
    ...                      "mean": [1.41, 1.40, 1.42, 20.0, 40.1, 79.8], "stderr": [0.01, 0.01, 0.01, 0.2, 0.4, 0.8]})
    >>> fig = plot_scaling(rows, {"grad_logit_l2": 0.0, "grad_logit_l1": 0.5}, title="norms against d")
    >>> [ax.get_title() for ax in fig.axes], fig.axes[0].get_xscale()
    (['grad_logit_l2', 'grad_logit_l1'], 'log')
    """
    with _theme() as sns:
        return _plot_scaling(sns, rows, exponents, x, title, log_corrected)


def _plot_scaling(sns, rows, exponents, x, title, log_corrected):
    stats = [s for s in exponents if s in set(rows["statistic"])]
    cols = min(3, len(stats)) or 1
    nrows = math.ceil(len(stats) / cols) or 1
    fig, axes = _figure(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    for ax, stat in zip(axes.flat, stats):
        sub = rows[rows["statistic"] == stat].sort_values(x)
        xs = sub[x].to_numpy(dtype=float)
        scale = np.sqrt(2 * np.log(sub["d"].to_numpy(dtype=float))) if stat in log_corrected else 1.0
        mean = sub["mean"].to_numpy(dtype=float) / scale
        se = sub["stderr"].to_numpy(dtype=float) / scale
        ax.errorbar(xs, mean, yerr=2 * se, fmt="o", color=sns.color_palette()[0], label="measured ± 2 SE")
        k = exponents[stat]
        anchor = np.exp(np.mean(np.log(mean)) - k * np.mean(np.log(xs)))
        grid = np.geomspace(xs.min(), xs.max(), 50)
        ax.plot(grid, anchor * grid ** k, "--", color=sns.color_palette()[1], label=f"slope {k:+g} (theory)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_ticks(ax)
        ax.set_xlabel(x)
        ax.set_title(stat + (" / sqrt(2 ln d)" if stat in log_corrected else ""))
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(stats):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_coordinate_map(measured: np.ndarray, predicted: np.ndarray, input_shape: tuple[int, ...], *,
                        title: str | None = None):
    """Measured against predicted per-coordinate ``E(df/dx_i)^2`` (averaged over channels).

    2-D inputs are shown as images side by side with a scatter of all coordinates; other inputs
    as a scatter only.

    Examples
    --------
    >>> predicted = np.full(3 * 8 * 8, 2 / 192)
    >>> measured = predicted * np.random.default_rng(0).normal(1, 0.05, predicted.size)
    >>> fig = plot_coordinate_map(measured, predicted, (3, 8, 8), title="fc, d=192")
    >>> [ax.get_title() for ax in fig.axes[:3]]        # two images (channels averaged) and a scatter
    ['measured E(df/dx)^2', 'exact (annealed) E(df/dx)^2', 'per coordinate']
    """
    with _theme():
        return _plot_coordinate_map(measured, predicted, input_shape, title)


def _plot_coordinate_map(measured, predicted, input_shape, title):
    spatial = input_shape[1:]
    c = input_shape[0]
    if len(spatial) == 2:
        meas_img = measured.reshape(c, *spatial).mean(0)
        pred_img = predicted.reshape(c, *spatial).mean(0)
        fig, axes = _figure(1, 3, figsize=(12, 3.6))
        vmax = max(float(meas_img.max()), float(pred_img.max()))
        for ax, img, name in ((axes[0], meas_img, "measured"), (axes[1], pred_img, "exact (annealed)")):
            im = ax.imshow(img, vmin=0, vmax=vmax, cmap="viridis")
            ax.set_title(f"{name} E(df/dx)^2")
            ax.axis("off")
        fig.colorbar(im, ax=axes[:2], shrink=0.8)
        ax = axes[2]
    else:
        fig, ax = _figure(1, 1, figsize=(4.5, 3.6))
    ax.scatter(predicted, measured, s=4, alpha=0.4)
    lim = [0, max(float(predicted.max()), float(measured.max())) * 1.05]
    ax.plot(lim, lim, "--", color="grey")
    ax.set_xlabel("exact (annealed)")
    ax.set_ylabel("measured")
    ax.set_title("per coordinate")
    if title:
        fig.suptitle(title)
    return fig


def _log_ticks(ax) -> None:
    """Readable log-axis labels: minor labels only on axes spanning less than a decade."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    short = FuncFormatter(lambda v, _: f"{v:.3g}")
    for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() != "log":
            continue
        axis.set_major_formatter(short)
        narrow = lim[0] > 0 and lim[1] / lim[0] < 10
        axis.set_minor_formatter(short if narrow else NullFormatter())


def save_figure(fig, path: str | Path) -> None:
    """Write a figure as PNG atomically (a figure made with pyplot is also closed).

    Examples
    --------
    >>> import tempfile
    >>> from matplotlib.figure import Figure
    >>> fig = Figure()
    >>> _ = fig.subplots().plot([1, 2, 3], [1, 4, 9])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     save_figure(fig, Path(tmp) / "squares.png")
    ...     (Path(tmp) / "squares.png").read_bytes()[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    from .files import write_atomic

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    write_atomic(path, buf.getvalue())
    if getattr(fig.canvas, "manager", None) is not None:  # registered with pyplot: release it
        import matplotlib.pyplot as plt

        plt.close(fig)


def plot_lines(frame: pd.DataFrame, x: str, y: str, *, hue: str, yerr: str | None = None, logx: bool = True,
               logy: bool = True, reference: tuple[np.ndarray, np.ndarray, str] | None = None,
               xlabel: str | None = None, ylabel: str | None = None, title: str | None = None):
    """Lines of ``y`` against ``x`` per ``hue`` (with ``±2 yerr`` bars), optionally a reference curve."""
    with _theme() as sns:
        fig, ax = _figure(figsize=(5.2, 3.8))
        return _plot_lines(sns, fig, ax, frame, x, y, hue, yerr, logx, logy, reference, xlabel, ylabel, title)


def _plot_lines(sns, fig, ax, frame, x, y, hue, yerr, logx, logy, reference, xlabel, ylabel, title):
    palette = sns.color_palette(n_colors=max(1, frame[hue].nunique()))
    for color, (name, sub) in zip(palette, frame.groupby(hue, sort=False)):
        sub = sub.sort_values(x)
        ax.errorbar(sub[x], sub[y], yerr=None if yerr is None else 2 * sub[yerr], fmt="o-", color=color,
                    label=str(name), capsize=2)
    if reference is not None:
        rx, ry, label = reference
        ax.plot(rx, ry, "--", color="grey", label=label)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    _log_ticks(ax)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
