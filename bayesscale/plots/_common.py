"""Shared pieces of the figures: units, draws, layout, style, colours and axis formatting.

Nothing here draws a figure; every module of :mod:`bayesscale.plots` builds
on these so that all figures share one look: the budget colour map, the
band transparency, tick formatting of losses and ratios, compute units,
thinning of posterior draws, and how a figure, an ``ax=`` or a ``fig=`` is
accepted.  :func:`save_figure` writes any of them to disk atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import FuncFormatter, Locator, LogLocator, NullFormatter, NullLocator

from ..posterior import atomic_write, posterior_predictive

__all__ = ["PF_DAY_FLOPS", "MAX_DRAWS", "save_figure"]
#: FLOPs in one petaflop/s-day.
PF_DAY_FLOPS = 8.64e19

#: Posterior draws used for bands (evenly thinned); enough for stable 80-90% intervals.
MAX_DRAWS = 1000

_UNITS = {"flops": (1.0, "FLOPs"), "pfdays": (PF_DAY_FLOPS, "PF-days")}

#: Display names of the law's parameters.
_TEX = {"E": "$E$", "A": "$A$", "B": "$B$", "alpha": r"$\alpha$", "beta": r"$\beta$", "sigma": r"$\sigma$",
        "tau": r"$\tau$"}

_BAND_ALPHA = 0.22
_RUN_GREY = "0.45"


# ---------------------------------------------------------------------------
# option checks and small helpers
# ---------------------------------------------------------------------------


def _unit(compute_unit) -> tuple[float, str]:
    """FLOPs per display unit, and the unit's label."""
    key = str(compute_unit).lower().replace("-", "").replace("_", "").replace(" ", "")
    if key in ("flop", "flops"):
        key = "flops"
    if key in ("pfday", "pfdays", "petaflopdays"):
        key = "pfdays"
    if key not in _UNITS:
        raise ValueError(f"compute_unit must be 'flops' or 'pfdays' (1 PF-day = {PF_DAY_FLOPS:.3g} FLOPs), "
                         f"got {compute_unit!r}")
    return _UNITS[key]


def _check_posterior(post):
    if not (hasattr(post, "params") and hasattr(post, "runs")):
        raise ValueError(f"expected a bayesscale Posterior (from bayesscale.fit), got {type(post).__name__}")


def _thin_index(S: int, max_draws: int = MAX_DRAWS) -> np.ndarray:
    """Evenly spaced draw indices (all chains are represented)."""
    if S <= max_draws:
        return np.arange(S)
    return np.unique(np.linspace(0, S - 1, max_draws).round().astype(int))


def _thin_params(post, max_draws: int = MAX_DRAWS):
    params = post.params
    S = next(iter(params.values())).shape[0]
    idx = _thin_index(S, max_draws)
    return idx, {k: np.asarray(params[k])[idx] for k in post.law.params}


def _root_figure(obj) -> Figure:
    f = obj
    while not isinstance(f, Figure):
        f = f.figure
    return f


def _single_axes(ax, figsize):
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    if not isinstance(ax, Axes):
        raise ValueError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
    return _root_figure(ax), ax


def _panel_figure(fig, figsize):
    if fig is None:
        return Figure(figsize=figsize, layout="constrained")
    if not isinstance(fig, (Figure, SubFigure)):
        raise ValueError(f"fig must be a matplotlib Figure or SubFigure, got {type(fig).__name__}")
    return fig


def _style(ax, *, grid: bool = True):
    ax.spines[["top", "right"]].set_visible(False)
    if grid:
        ax.grid(True, which="major", color="0.88", linewidth=0.7)
        ax.set_axisbelow(True)


def _budget_cmap():
    """Viridis without its palest yellow, which vanishes on white."""
    base = mpl.colormaps["viridis"]
    return mpl.colors.ListedColormap(base(np.linspace(0.0, 0.88, 256)), name="viridis_dark")


def _sci(x: float, sig: int = 2) -> str:
    """Mathtext number: 6e18 -> $6\\times10^{18}$, 0.069 -> 0.069."""
    x = float(x)
    if x == 0 or 1e-2 <= abs(x) < 1e4:
        return f"{x:.{sig}g}"
    e = int(np.floor(np.log10(abs(x))))
    m = x / 10**e
    if round(m, sig - 1) >= 10:
        m, e = m / 10, e + 1
    ms = f"{m:.{sig - 1}f}".rstrip("0").rstrip(".")
    return rf"${ms}\times10^{{{e}}}$" if ms != "1" else rf"$10^{{{e}}}$"


def _count(x: float) -> str:
    """Human count: 6.3e10 -> 63B, 1.4e12 -> 1.4T, 4e8 -> 400M."""
    x = float(x)
    for div, suf in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= div:
            v = x / div
            return (f"{v:.3g}" if v < 1000 else f"{v:.0f}") + suf
    return f"{x:.3g}"


def _ratio_axis(axis):
    """Plain-number ticks (0.2, 0.5, 1, 2, 5) on a log axis of ratios."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


_NICE_STEPS = (1.0, 2.0, 2.5, 5.0)


def _nice_ticks(lo: float, hi: float, min_ticks: int = 5, max_ticks: int = 9) -> np.ndarray:
    """Round values (steps 1, 2, 2.5 or 5 times a power of ten) inside ``[lo, hi]``: 5 to 9 of them."""
    span = hi - lo
    best = None
    for e in range(int(np.floor(np.log10(span))) - 2, int(np.floor(np.log10(span))) + 2):
        for m in _NICE_STEPS:
            step = m * 10.0**e
            ticks = np.arange(np.ceil(lo / step - 1e-9), np.floor(hi / step + 1e-9) + 1) * step
            if min_ticks <= ticks.size <= max_ticks and (best is None or ticks.size > best.size):
                best = ticks
    if best is None:  # no step gives 5 to 9: the one closest to 5
        best = np.linspace(lo, hi, min_ticks)
    return np.round(best, 12)


class _LossLocator(Locator):
    """Ticks of a log loss axis: at least 5 round values when the view spans less than a decade.

    Over less than a decade matplotlib's log ticks label only the integers
    (on a loss range of 2.6 to 5.5: just 3, 4 and 5); this locator gives
    evenly spaced round numbers instead (2.5, 3, 3.5, ...).  Over a decade
    or more it defers to the usual log ticks.
    """

    def __init__(self):
        self._log = LogLocator(base=10)

    def set_axis(self, axis):
        super().set_axis(axis)
        self._log.set_axis(axis)

    def __call__(self):
        lo, hi = sorted(self.axis.get_view_interval())
        return self.tick_values(lo, hi)

    def tick_values(self, vmin, vmax):
        lo, hi = sorted((float(vmin), float(vmax)))
        if not (lo > 0 and np.isfinite(hi)) or hi / lo >= 10:
            return self._log.tick_values(vmin, vmax)
        return _nice_ticks(lo, hi)


def _loss_axis(axis):
    """Plain-number labels on a log axis of losses, at least 5 of them (see :class:`_LossLocator`)."""
    axis.set_major_locator(_LossLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def _replicated_log_loss(post, max_draws: int = MAX_DRAWS) -> np.ndarray:
    """Replicated log loss at the runs from the tree's posterior_predictive group, ``(S, n)``."""
    y = posterior_predictive(post)
    y = y.reshape(-1, y.shape[-1])
    return y[_thin_index(y.shape[0], max_draws)]



def save_figure(fig, path, *, dpi: int = 150) -> Path:
    """Write a figure to an image file atomically.

    The figure is rendered to a temporary file in the target directory and
    moved over ``path`` in one step, so a reader never sees a half-written
    file and a failure leaves nothing behind.  The format follows the file
    suffix (PNG when there is none; ``.pdf`` and ``.svg`` work too).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (a SubFigure's parent figure is saved).
    path : str or os.PathLike
        Destination; missing parent directories are created.
    dpi : int
        Resolution of raster output.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        On something that is not a figure, a non-positive ``dpi`` or an
        unsupported suffix.
    """
    if isinstance(fig, SubFigure):
        fig = _root_figure(fig)
    if not isinstance(fig, Figure):
        raise ValueError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    try:
        dpi_v = float(dpi)
    except (TypeError, ValueError):
        raise ValueError(f"dpi must be a positive number, got {dpi!r}") from None
    if not (np.isfinite(dpi_v) and dpi_v > 0):
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".") or "png"
    if fmt not in fig.canvas.get_supported_filetypes():
        raise ValueError(f"cannot write {path.name!r}: unsupported image format {fmt!r}; use .png, .pdf or .svg")

    def write(tmp):
        fig.savefig(tmp, format=fmt, dpi=dpi_v)
        os.chmod(tmp, 0o644)

    return atomic_write(path, write)

