"""The figures scaling-law papers made famous, drawn from a posterior.

Every function takes a fitted :class:`bayesscale.Posterior` and returns a
:class:`matplotlib.figure.Figure`:

==========================  ====================================================
:func:`isoflop_profiles`    loss against N at fixed compute (Chinchilla Fig. 3 left)
:func:`optimal_frontier`    N_opt and D_opt against C, named budgets projected
                            (Chinchilla Fig. 3 middle and right)
:func:`isoloss_contours`    loss contours over (C, N) with the efficient frontier
                            (Chinchilla Fig. 4)
:func:`excess_compute`      extra compute and tokens at N != N_opt (Kaplan Fig. 12)
:func:`predicted_vs_observed`  observed loss against the posterior predictive
:func:`residuals`           log-loss residuals against C, N or D
:func:`ppc`                 posterior predictive check of the log-loss distribution
:func:`rank_plot`           rank plots of the law's parameters, per chain
:func:`backtest_coverage`   nominal against empirical interval coverage of a backtest
:func:`compute_multiplier`  the compute multiplier of one group over another against C
                            (grouped fits)
==========================  ====================================================

and :func:`save_figure` writes a figure to disk atomically.

Conventions
-----------
* Bands are equal-tailed posterior intervals (``ci`` defaults to
  :data:`bayesscale.DEFAULT_CI`, 0.8) around a median line, and every
  legend says their level.  Work is vectorised over posterior draws; long
  chains are thinned to at most :data:`MAX_DRAWS` evenly spaced draws, which
  changes the bands by far less than their width.  The exception is what a
  table also reports: the compute-optimal ``N_opt`` and ``D_opt`` (curves,
  bands, diamonds and stars of :func:`isoflop_profiles`,
  :func:`optimal_frontier`, :func:`isoloss_contours` and the ``N_opt`` of
  :func:`excess_compute`) come from :meth:`bayesscale.Posterior.allocate`
  itself, all draws, so a figure's median is the table's median.
* Compute is given in FLOPs everywhere (``budgets``, ``named``, ``C``).
  ``compute_unit="pfdays"`` only changes how compute is *shown*: axes and
  labels in PF-days (1 PF-day = 8.64e19 FLOPs).  The unit is part of every
  compute axis label.
* Pass ``ax=`` (single-panel figures) or ``fig=`` (multi-panel figures, a
  :class:`~matplotlib.figure.Figure` or ``SubFigure``) to draw into your own
  layout.  Without one, a new :class:`~matplotlib.figure.Figure` is made
  *without* pyplot: nothing is registered with pyplot's global state, so
  nothing needs closing, and a notebook shows the returned figure once.
  To show a figure in a script window, create the axes with
  ``plt.subplots()`` and pass them in.
* Nothing here calls ``plt.show()`` or changes ``rcParams``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, Locator, LogLocator, NullFormatter, NullLocator

from . import allocation as _alloc
from . import laws
from ._validate import check_ci as _check_ci
from ._validate import positive as _positive
from .intervals import band_names, quantiles
from .posterior import atomic_write, log_noise, posterior_predictive

__all__ = [
    "PF_DAY_FLOPS",
    "MAX_DRAWS",
    "isoflop_profiles",
    "optimal_frontier",
    "isoloss_contours",
    "excess_compute",
    "predicted_vs_observed",
    "residuals",
    "ppc",
    "rank_plot",
    "save_figure",
    "backtest_coverage",
    "sbc_ranks",
    "compute_multiplier",
]

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


def _quantiles(x: np.ndarray, ci: float, axis: int = 0):
    """Median, lower and upper equal-tailed bounds; NaN draws are ignored (:func:`bayesscale.intervals.quantiles`)."""
    return quantiles(x, ci, axis=axis)


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


# ---------------------------------------------------------------------------
# 1. IsoFLOP profiles
# ---------------------------------------------------------------------------


def _default_profile_budgets(runs, max_profiles: int = 9):
    counts = np.bincount(runs.budget, minlength=runs.n_budgets)
    groups = np.flatnonzero(counts >= 3)
    if groups.size == 0:
        groups = np.argsort(counts)[::-1][:max_profiles]
        groups = np.sort(groups)
    if groups.size > max_profiles:
        pick = np.unique(np.linspace(0, groups.size - 1, max_profiles).round().astype(int))
        groups = groups[pick]
    return runs.budget_compute()[groups], groups


def _match_groups(runs, C: np.ndarray) -> np.ndarray:
    """Budget group of each compute value, or -1 where no group lies within 0.075 dex."""
    from .data import BUDGET_TOL_DEX

    bc = runs.budget_compute()
    dist = np.abs(np.log10(C)[:, None] - np.log10(bc)[None, :])
    nearest = dist.argmin(axis=1)
    ok = dist[np.arange(C.size), nearest] <= 1.5 * BUDGET_TOL_DEX
    return np.where(ok, nearest, -1)


def isoflop_profiles(post, budgets=None, *, ci: float | None = None, ax=None, compute_unit: str = "flops",
                     n_points: int = 80) -> Figure:
    """Loss against model size at fixed compute budgets (Chinchilla Fig. 3, left).

    Each budget ``C`` gives a U-shaped curve ``L(N, C / (6 N))``: the
    posterior predictive median (law plus observation noise, and budget
    offsets where the model has them) with its ``ci`` band, the observed
    runs of that budget on top in the same colour, and the compute-optimal
    size marked by a diamond at the median ``N_opt`` with a horizontal error
    bar spanning its ``ci`` interval.

    Parameters
    ----------
    post : Posterior
        A fitted posterior.
    budgets : array_like, optional
        Compute budgets in FLOPs.  Default: the runs' budget groups that
        hold at least 3 runs (at most 9 of them, evenly spread), at their
        geometric-mean compute.  Runs whose budget group lies within
        0.075 decades of a given budget are drawn on its curve.
    ci : float, optional
        Probability mass of the bands and error bars, in (0, 1).
        Default :data:`bayesscale.DEFAULT_CI`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is made when omitted.
    compute_unit : {"flops", "pfdays"}
        Unit in which budgets are shown in the legend.
    n_points : int
        Points per curve.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        On ``ci`` outside (0, 1), an unknown ``compute_unit`` or
        non-positive budgets.
    """
    _check_posterior(post)
    ci = _check_ci(ci)
    scale, unit = _unit(compute_unit)
    runs = post.runs
    if budgets is None:
        C, groups = _default_profile_budgets(runs)
    else:
        C = np.sort(_positive(budgets, "budgets"))
        groups = _match_groups(runs, C)
    fig, ax = _single_axes(ax, (7.0, 5.0))

    idx, p = _thin_params(post)
    # the diamonds are the posterior's own allocation: the numbers of Posterior.allocate and the report
    t = post.allocate(C, ci=ci)
    n_lo, n_hi = band_names("N_opt", ci)

    # N range of each curve: the runs of its budget and the optimum's interval, with margins
    log_lo = np.log(t[n_lo].to_numpy() / 3.0)
    log_hi = np.log(t[n_hi].to_numpy() * 3.0)
    for j, g in enumerate(groups):
        if g >= 0:
            Ng = runs.N[runs.budget == g]
            log_lo[j] = min(log_lo[j], np.log(Ng.min() / 1.5))
            log_hi[j] = max(log_hi[j], np.log(Ng.max() * 1.5))
    n_points = max(int(n_points), 10)
    u = np.linspace(0.0, 1.0, n_points)
    N = np.exp(log_lo[:, None] + (log_hi - log_lo)[:, None] * u[None, :])  # (B, G)
    D = C[:, None] / (laws.FLOPS_PER_PARAM_TOKEN * N)
    P = {k: v[:, None, None] for k, v in p.items()}
    mu = post.law.log_loss_ND(P, N[None], D[None])  # (S, B, G)
    # one noise draw per (posterior draw, budget), shared along the curve: every point keeps its
    # exact predictive marginal, and the quantile curves come out smooth
    noise = log_noise(post, C)[idx][:, :, None]
    med, lo, hi = _quantiles(np.exp(mu + noise), ci)

    cmap = _budget_cmap()
    norm = LogNorm(C.min() / 1.0001, C.max() * 1.0001) if C.size > 1 else None
    colors = [cmap(norm(c)) if norm is not None else cmap(0.35) for c in C]
    y_top = []
    for j, c in enumerate(C):
        col = colors[j]
        ax.fill_between(N[j], lo[j], hi[j], color=col, alpha=_BAND_ALPHA, linewidth=0)
        ax.plot(N[j], med[j], color=col, linewidth=1.8, label=_sci(c / scale))
        if groups[j] >= 0:
            sel = runs.budget == groups[j]
            ax.scatter(runs.N[sel], runs.loss[sel], s=22, color=col, edgecolor="white", linewidth=0.6, zorder=4)
            y_top.append(runs.loss[sel].max())
        ax.errorbar(t["N_opt"].iloc[j], t["loss"].iloc[j],
                    xerr=[[t["N_opt"].iloc[j] - t[n_lo].iloc[j]], [t[n_hi].iloc[j] - t["N_opt"].iloc[j]]],
                    fmt="D", color=col, markeredgecolor="black", markeredgewidth=0.8, markersize=6,
                    ecolor="black", elinewidth=1.1, capsize=3, zorder=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    y_min = min(lo.min(), runs.loss.min() if runs.N.size else lo.min())
    y_max = max([med[:, [0, -1]].min(axis=1).max()] + y_top)
    ax.set_ylim(y_min / 1.02, y_max * 1.05)
    _loss_axis(ax.yaxis)
    ax.set_xlabel("Model parameters $N$")
    ax.set_ylabel("Loss")
    ax.set_title("IsoFLOP profiles")
    _style(ax)
    leg = ax.legend(title=f"Compute ({unit})", fontsize=8, title_fontsize=8, loc="upper right",
                    frameon=False, ncols=1 if C.size <= 6 else 2)
    ax.add_artist(leg)
    keys = [Patch(color="0.5", alpha=0.35, linewidth=0, label=f"{ci:.0%} predictive interval"),
            Line2D([], [], color="0.3", marker="o", linestyle="none", markersize=5, label="observed runs"),
            Line2D([], [], color="0.7", marker="D", markeredgecolor="black", linestyle="-", markersize=5,
                   label=rf"$N_\mathrm{{opt}}$: median, {ci:.0%} interval")]
    ax.legend(handles=keys, fontsize=8, loc="lower left", frameon=False)
    return fig


# ---------------------------------------------------------------------------
# 2. Optimal N and D against compute
# ---------------------------------------------------------------------------

_DEFAULT_NAMED = {"Gopher (5.76e23)": 5.76e23}


def optimal_frontier(post, *, budgets=None, named: Mapping | None = None, ci: float | None = None, fig=None,
                     compute_unit: str = "flops") -> Figure:
    """Compute-optimal model size and tokens against compute (Chinchilla Fig. 3, middle and right).

    Two log-log panels: ``N_opt(C)`` and ``D_opt(C)`` under ``C = 6 N D``,
    each the posterior median with its ``ci`` band, the frontier exponent
    (``N_opt ~ C^a``, ``D_opt ~ C^b``) with its interval, the runs' ``(C, N)``
    and ``(C, D)`` as faint points, and the ``named`` budgets projected and
    labelled with their medians and intervals.

    Parameters
    ----------
    post : Posterior
        A fitted posterior.
    budgets : array_like, optional
        Compute values in FLOPs at which to draw the frontier.  Default:
        120 points from a third of the smallest run's compute to ten times
        the largest of the runs' and the named budgets.
    named : dict of str to float, optional
        Labelled budgets in FLOPs to project, e.g. ``{"Gopher": 5.76e23}``.
        Default ``{"Gopher (5.76e23)": 5.76e23}``; pass ``{}`` for none.
    ci : float, optional
        Probability mass of the bands, in (0, 1).
        Default :data:`bayesscale.DEFAULT_CI`.
    fig : matplotlib.figure.Figure or SubFigure, optional
        Figure to draw the two panels into; a new one is made when omitted.
    compute_unit : {"flops", "pfdays"}
        Unit of the compute axes.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        On ``ci`` outside (0, 1), an unknown ``compute_unit``, or
        non-positive budgets or named compute.
    """
    _check_posterior(post)
    ci = _check_ci(ci)
    scale, unit = _unit(compute_unit)
    named = dict(_DEFAULT_NAMED if named is None else named)
    named_C = _positive(list(named.values()), "named compute values") if named else np.empty(0)
    runs = post.runs
    if budgets is None:
        c_max = max(runs.C.max(), named_C.max() if named_C.size else 0.0) * 10
        grid = np.geomspace(runs.C.min() / 3, c_max, 120)
    else:
        grid = np.sort(_positive(budgets, "budgets"))
    _, p = _thin_params(post)
    # the curve, its band and the stars are the posterior's own allocation (all draws, and beyond the
    # data its calibrated extrapolation error): the numbers of Posterior.allocate and the report's tables
    t = post.allocate(grid, ci=ci)
    # a law without the closed form: its local exponents at the middle of the grid
    mid = None if post.law is laws.LAWS["chinchilla"] else [float(np.exp(np.log(grid).mean()))]
    fe = _alloc.frontier_exponents(p, ci=ci, law=post.law, budgets=mid)
    e_lo, e_hi = band_names("", ci)
    nt = post.allocate(named_C, ci=ci) if named_C.size else None

    fig = _panel_figure(fig, (11.0, 4.6))
    axes = fig.subplots(1, 2)
    color = "#2c6e9b"
    x = grid / scale
    panels = (("N_opt", runs.N, r"Optimal parameters $N_\mathrm{opt}$", "a", "N", ""),
              ("D_opt", runs.D, r"Optimal tokens $D_\mathrm{opt}$", "b", "D", " tokens"))
    for ax, (key, run_vals, ylabel, expo, sym, suffix) in zip(axes, panels):
        k_lo, k_hi = band_names(key, ci)
        ax.scatter(runs.C / scale, run_vals, s=9, color=_RUN_GREY, alpha=0.3, linewidth=0, label="training runs",
                   zorder=1)
        ax.fill_between(x, t[k_lo], t[k_hi], color=color, alpha=_BAND_ALPHA, linewidth=0,
                        label=f"{ci:.0%} interval", zorder=2)
        e = fe.loc[expo]
        ax.plot(x, t[key], color=color, linewidth=2,
                label=rf"median, ${sym}_\mathrm{{opt}} \propto C^{{{e['median']:.3f}}}$ "
                      f"({ci:.0%}: {e[e_lo]:.3f}–{e[e_hi]:.3f})", zorder=3)
        if budgets is not None and grid.size <= 12:
            ax.errorbar(x, t[key], yerr=[t[key] - t[k_lo], t[k_hi] - t[key]], fmt="o",
                        color=color, markersize=4, capsize=2, zorder=3)
        if nt is not None:
            slot = np.argsort(np.argsort(-named_C, kind="stable"))  # the largest budget's label on top
            for i, (label, c) in enumerate(zip(named, named_C)):
                m, lo_, hi_ = nt[key].iloc[i], nt[k_lo].iloc[i], nt[k_hi].iloc[i]
                ax.errorbar(c / scale, m, yerr=[[m - lo_], [hi_ - m]], fmt="*", color="#c0392b", markersize=11,
                            markeredgecolor="black", markeredgewidth=0.5, ecolor="#c0392b", elinewidth=1.4,
                            capsize=3, zorder=5)
                # the labels stack down the empty upper left of the panel (the frontier rises to the right),
                # inside the axes: never over the panel's title, whatever the number of budgets
                ax.annotate(f"{label}\n" + rf"${sym}_\mathrm{{opt}}$ = {_count(m)}{suffix}"
                            f"\n({ci:.0%}: {_count(lo_)}–{_count(hi_)})",
                            xy=(c / scale, m), xytext=(0.03, 0.97 - 0.16 * slot[i]), textcoords="axes fraction",
                            ha="left", va="top", fontsize=8, color="#7b241c",
                            bbox=dict(boxstyle="round,pad=0.3", facecolor="white", edgecolor="0.8", alpha=0.9),
                            arrowprops=dict(arrowstyle="-", color="0.5", linewidth=0.8), zorder=6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"Training compute $C$ ({unit})")
        ax.set_ylabel(ylabel)
        ax.legend(loc="lower right", fontsize=8, frameon=False)
        _style(ax)
    axes[0].set_title("Compute-optimal model size")
    axes[1].set_title("Compute-optimal training tokens")
    return _root_figure(fig)


# ---------------------------------------------------------------------------
# 3. IsoLoss contours
# ---------------------------------------------------------------------------


def _nice_levels(lo: float, hi: float, n: int = 12) -> np.ndarray:
    raw = np.geomspace(lo, hi, n)
    levels = np.unique(np.array([float(f"{v:.2g}") if v < 10 else float(f"{v:.3g}") for v in raw]))
    return levels


def isoloss_contours(post, *, ci: float | None = None, ax=None, compute_unit: str = "flops", levels=None,
                     n_grid: int = 120) -> Figure:
    """Loss contours over compute and model size with the efficient frontier (Chinchilla Fig. 4).

    The contours are the posterior median of the law's loss
    ``L(N, C / (6 N))`` over a grid of ``C`` (x axis) and ``N`` (y axis).
    The efficient frontier (median ``N_opt(C)``) runs through the minima of
    the iso-compute verticals, with its ``ci`` band; the runs are drawn as
    points coloured by their observed loss on the contours' colour scale.

    Parameters
    ----------
    post : Posterior
        A fitted posterior.
    ci : float, optional
        Probability mass of the frontier band, in (0, 1).
        Default :data:`bayesscale.DEFAULT_CI`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is made when omitted.
    compute_unit : {"flops", "pfdays"}
        Unit of the compute axis.
    levels : array_like, optional
        Loss values of the contours.  Default: about 12 log-spaced round
        values across the plotted range.
    n_grid : int
        Grid points per axis.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        On ``ci`` outside (0, 1), an unknown ``compute_unit`` or
        non-positive levels.
    """
    _check_posterior(post)
    ci = _check_ci(ci)
    scale, unit = _unit(compute_unit)
    if levels is not None:
        levels = np.unique(_positive(levels, "levels"))
    runs = post.runs
    n_grid = max(int(n_grid), 20)
    _, p = _thin_params(post, 400)
    Cg = np.geomspace(runs.C.min() / 3, runs.C.max() * 100, n_grid)
    Ng = np.geomspace(runs.N.min() / 3, runs.N.max() * 10, n_grid)
    CC, NN = np.meshgrid(Cg, Ng)  # (nN, nC)
    DD = CC / (laws.FLOPS_PER_PARAM_TOKEN * NN)
    P = {k: v[:, None, None] for k, v in p.items()}
    L = np.median(np.exp(post.law.log_loss_ND(P, NN[None], DD[None])), axis=0)
    if levels is None:
        levels = _nice_levels(np.quantile(L, 0.01), np.quantile(L, 0.85))
    norm = LogNorm(levels.min(), levels.max()) if levels.size > 1 else Normalize(levels[0] * 0.9, levels[0] * 1.1)
    cmap = mpl.colormaps["viridis"]

    fig, ax = _single_axes(ax, (7.0, 5.2))
    ax.contour(CC / scale, NN, L, levels=levels, cmap=cmap, norm=norm, linewidths=1.1)
    alloc = post.allocate(Cg, ci=ci)  # the posterior's own allocation, as in the report's tables
    ax.fill_between(Cg / scale, *(alloc[c] for c in band_names("N_opt", ci)), color="#c0392b", alpha=0.2, linewidth=0,
                    label=rf"$N_\mathrm{{opt}}$ {ci:.0%} interval")
    ax.plot(Cg / scale, alloc["N_opt"], color="#c0392b", linewidth=2, label="efficient frontier (median)")
    sc = ax.scatter(runs.C / scale, runs.N, c=runs.loss, cmap=cmap, norm=norm, s=16, edgecolor="black",
                    linewidth=0.4, zorder=4, label="training runs")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(Cg[0] / scale, Cg[-1] / scale)
    ax.set_ylim(Ng[0], Ng[-1])
    ax.set_xlabel(f"Training compute $C$ ({unit})")
    ax.set_ylabel("Model parameters $N$")
    ax.set_title("IsoLoss contours and the efficient frontier")
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    _style(ax, grid=False)
    cb = ax.figure.colorbar(sc, ax=ax, pad=0.02)
    cb.set_label("Loss")
    cb.set_ticks(levels)
    cb.ax.minorticks_off()
    cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    return fig


# ---------------------------------------------------------------------------
# 4. Excess compute (Kaplan Fig. 12)
# ---------------------------------------------------------------------------


def excess_compute(post, C, *, k=None, ci: float | None = None, fig=None, threshold: float = 0.2) -> Figure:
    """Extra compute and tokens at a non-optimal model size (Kaplan et al. 2020, Fig. 12).

    For a model of ``k`` times the compute-optimal size at budget ``C``,
    the left panel shows the compute needed to reach the optimum's loss
    relative to ``C``, the right panel the tokens relative to ``D_opt``
    (see :func:`bayesscale.allocation.excess_compute`), each with its
    median and ``ci`` band.  The sizes costing at most ``threshold`` extra
    compute are shaded and annotated, with the ``ci`` intervals of the
    range's ends (:func:`bayesscale.allocation.efficient_size_range`).
    Sizes too small ever to reach the optimum's loss have no curve.

    Parameters
    ----------
    post : Posterior
        A fitted posterior.
    C : float
        Compute budget in FLOPs.
    k : array_like, optional
        Model sizes as multiples of ``N_opt``; default 0.2 to 5.
    ci : float, optional
        Probability mass of the bands, in (0, 1).
        Default :data:`bayesscale.DEFAULT_CI`.
    fig : matplotlib.figure.Figure or SubFigure, optional
        Figure to draw the two panels into; a new one is made when omitted.
    threshold : float
        Extra compute, as a fraction, that defines the shaded range.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        On a non-positive ``C`` or ``k``, ``ci`` outside (0, 1) or a
        non-positive ``threshold``.
    """
    _check_posterior(post)
    ci = _check_ci(ci)
    Cv = _positive(C, "C")
    if Cv.size != 1:
        raise ValueError(f"C must be a single compute budget in FLOPs, got {Cv.size} values")
    C = float(Cv[0])
    k = np.geomspace(0.2, 5.0, 161) if k is None else np.sort(_positive(k, "k"))
    _, p = _thin_params(post)
    t = _alloc.excess_compute(p, C, k, ci=ci, law=post.law).table
    rng = _alloc.efficient_size_range(p, C, threshold=threshold, ci=ci, law=post.law)
    rt = rng.table
    n_opt = float(post.allocate([C], ci=ci)["N_opt"].iloc[0])  # the median of the report's table

    fig = _panel_figure(fig, (11.0, 4.4))
    axes = fig.subplots(1, 2, sharex=True)
    color = "#2c6e9b"
    span_label = (f"≤{threshold:.0%} extra compute: {rng.k_lo:.2f}×–{rng.k_hi:.2f}× " + r"$N_\mathrm{opt}$")
    for ax, key, ylabel in ((axes[0], "excess_compute", r"Excess compute $C' / C$"),
                            (axes[1], "excess_tokens", r"Excess tokens $D' / D_\mathrm{opt}$")):
        med, lo, hi = (t[c].to_numpy(dtype=float) for c in (key, *band_names(key, ci)))
        med, lo, hi = (np.where(np.isfinite(v), v, np.nan) for v in (med, lo, hi))
        ax.axvspan(rng.k_lo, rng.k_hi, color="#f0b429", alpha=0.18, linewidth=0, label=span_label)
        ax.fill_between(k, lo, hi, color=color, alpha=_BAND_ALPHA, linewidth=0, label=f"{ci:.0%} interval")
        ax.plot(k, med, color=color, linewidth=2, label="posterior median")
        ax.axhline(1.0, color="0.3", linewidth=0.9, linestyle="--")
        ax.axvline(1.0, color="0.3", linewidth=0.9, linestyle=":")
        ax.set_xscale("log")
        _ratio_axis(ax.xaxis)
        ax.set_xlabel(r"Model size relative to optimal, $N / N_\mathrm{opt}$")
        ax.set_ylabel(ylabel)
        _style(ax)
    ax0, ax1 = axes
    ax0.axhline(1 + threshold, color="#b7791f", linewidth=0.9, linestyle="-.")
    ends = rt.loc[["k_lo", "k_hi"]]
    e_lo, e_hi = band_names("", ci)
    ax0.errorbar(ends["median"], np.full(2, 1 + threshold),
                 xerr=[ends["median"] - ends[e_lo], ends[e_hi] - ends["median"]], fmt="o", color="#b7791f",
                 markersize=4, capsize=3, zorder=5)
    finite_hi = t[band_names("excess_compute", ci)[1]].to_numpy(dtype=float)
    finite_hi = finite_hi[np.isfinite(finite_hi)]
    top = min(3.0, max(1.6, np.nanmax(finite_hi) if finite_hi.size else 1.6))
    ax0.set_ylim(0.95, top)
    ax1.set_yscale("log")
    _ratio_axis(ax1.yaxis)
    handles, labels = ax0.get_legend_handles_labels()
    handles.append(Line2D([], [], color="#b7791f", linewidth=0.9, linestyle="-.", marker="o", markersize=4))
    labels.append(f"{1 + threshold:g}× compute: range ends, {ci:.0%} intervals")
    ax1.legend(handles, labels, loc="upper right", fontsize=8, frameon=False)
    fig.suptitle(f"Cost of a non-optimal model size at $C$ = {_sci(C, 3)} FLOPs "
                 rf"(median $N_\mathrm{{opt}}$ = {_count(n_opt)})", fontsize=11)
    return _root_figure(fig)


# ---------------------------------------------------------------------------
# 5. Predicted against observed, residuals
# ---------------------------------------------------------------------------


def _replicated_log_loss(post, max_draws: int = MAX_DRAWS) -> np.ndarray:
    """Replicated log loss at the runs from the tree's posterior_predictive group, ``(S, n)``."""
    y = posterior_predictive(post)  # computed now (S x n), not kept by the posterior
    y = y.reshape(-1, y.shape[-1])
    return y[_thin_index(y.shape[0], max_draws)]


def _compute_colorbar(ax, runs, scale, unit, sc):
    cb = ax.figure.colorbar(sc, ax=ax, pad=0.02)
    cb.set_label(f"Training compute $C$ ({unit})")
    return cb


def predicted_vs_observed(post, *, ci: float | None = None, ax=None, compute_unit: str = "flops") -> Figure:
    """Observed loss against the posterior predictive loss of each run.

    Each run is a point at (observed loss, predictive median) with a
    vertical error bar over its ``ci`` predictive interval, coloured by its
    compute; the dashed line is ``y = x``.  The legend reports how many
    runs fall inside their interval (about ``ci`` of them in a calibrated
    model).

    Parameters
    ----------
    post : Posterior
        A fitted posterior.
    ci : float, optional
        Probability mass of the predictive intervals, in (0, 1).
        Default :data:`bayesscale.DEFAULT_CI`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is made when omitted.
    compute_unit : {"flops", "pfdays"}
        Unit of the colour scale.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_posterior(post)
    ci = _check_ci(ci)
    scale, unit = _unit(compute_unit)
    runs = post.runs
    pred = np.exp(_replicated_log_loss(post))
    med, lo, hi = _quantiles(pred, ci)
    obs = runs.loss
    inside = (obs >= lo) & (obs <= hi)
    fig, ax = _single_axes(ax, (5.8, 5.0))
    ax.errorbar(obs, med, yerr=[med - lo, hi - med], fmt="none", ecolor="0.7", elinewidth=0.8, zorder=1)
    sc = ax.scatter(obs, med, c=runs.C / scale, cmap=_budget_cmap(), norm=LogNorm(), s=16, edgecolor="white",
                    linewidth=0.4, zorder=3,
                    label=f"runs: {inside.sum()} of {obs.size} ({inside.mean():.0%}) inside their {ci:.0%} interval")
    lims = [min(obs.min(), lo.min()), max(obs.max(), hi.max())]
    pad = 0.03 * (lims[1] - lims[0])
    lims = [lims[0] - pad, lims[1] + pad]
    ax.plot(lims, lims, color="0.25", linestyle="--", linewidth=1, label="$y = x$", zorder=2)
    ax.set_xlim(lims)
    ax.set_ylim(lims)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("Observed loss")
    ax.set_ylabel(f"Posterior predictive loss (median, {ci:.0%} interval)")
    ax.set_title("Predicted vs observed")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    _style(ax)
    _compute_colorbar(ax, runs, scale, unit, sc)
    return fig


_AGAINST = {"C": "Training compute $C$", "N": "Model parameters $N$", "D": "Training tokens $D$"}
_KINDS = {"log": "log", "standardized": "standardized", "standardised": "standardized"}


def residuals(post, *, ax=None, against: str = "C", kind: str = "log", ci: float | None = None,
              compute_unit: str = "flops", n_bins: int = 20) -> Figure:
    """Residuals of the runs' log loss against compute, model size or tokens.

    A residual is the observed log loss minus the posterior median of the
    law's mean log loss at that run (``kind="log"``), or that divided by
    the posterior predictive standard deviation (``kind="standardized"``).
    The shaded band is the ``ci`` interval of the replicated residuals
    (posterior predictive draws from the tree's ``posterior_predictive``
    group, minus the same median), pooled over runs in bins of the x axis.
    Runs outside their own predictive interval are highlighted.

    Parameters
    ----------
    post : Posterior
        A fitted posterior.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is made when omitted.
    against : {"C", "N", "D"}
        The x axis.
    kind : {"log", "standardized"}
        Residual scale ("standardised" is accepted too).
    ci : float, optional
        Probability mass of the band, in (0, 1).
        Default :data:`bayesscale.DEFAULT_CI`.
    compute_unit : {"flops", "pfdays"}
        Unit of the x axis when ``against="C"``.
    n_bins : int
        Bins of the x axis for the band.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        On an unknown ``against``, ``kind`` or ``compute_unit``, or ``ci``
        outside (0, 1).
    """
    _check_posterior(post)
    ci = _check_ci(ci)
    scale, unit = _unit(compute_unit)
    if against not in _AGAINST:
        raise ValueError(f"against must be one of 'C', 'N', 'D', got {against!r}")
    if kind not in _KINDS:
        raise ValueError(f"kind must be 'log' or 'standardized', got {kind!r}")
    kind = _KINDS[kind]
    runs = post.runs
    idx, p = _thin_params(post)
    from .inference import covariate_arrays

    mu = post.law.evaluate({k: v[:, None] for k, v in p.items()},
                           {k: v[None, :] for k, v in covariate_arrays(runs, post.law.covariates).items()})
    centre = np.median(mu, axis=0)
    y = np.log(runs.loss)
    y_rep = _replicated_log_loss(post)
    res, rep = y - centre, y_rep - centre
    if kind == "standardized":
        sd = y_rep.std(axis=0, ddof=1)
        res, rep = res / sd, rep / sd
    _, lo_i, hi_i = _quantiles(rep, ci)
    outside = (res < lo_i) | (res > hi_i)
    x = {"C": runs.C / scale, "N": runs.N, "D": runs.D}[against]

    # band: replicated residuals pooled over runs in log-spaced bins of x
    lx = np.log10(x)
    n_bins = max(1, min(int(n_bins), np.unique(x).size))
    edges = np.linspace(lx.min(), lx.max() + 1e-12, n_bins + 1)
    which = np.clip(np.digitize(lx, edges) - 1, 0, n_bins - 1)
    centres, blo, bhi = [], [], []
    for b in np.unique(which):
        pooled = rep[:, which == b].ravel()
        _, l_, h_ = _quantiles(pooled, ci)
        centres.append(np.median(lx[which == b]))
        blo.append(l_)
        bhi.append(h_)
    centres = 10 ** np.concatenate([[lx.min()], centres, [lx.max()]])
    blo, bhi = [blo[0]] + blo + [blo[-1]], [bhi[0]] + bhi + [bhi[-1]]

    fig, ax = _single_axes(ax, (7.0, 4.2))
    if centres.size > 1:
        ax.fill_between(centres, blo, bhi, color="#2c6e9b", alpha=_BAND_ALPHA, linewidth=0,
                        label=f"{ci:.0%} predictive band")
    else:
        ax.axhspan(blo[0], bhi[0], color="#2c6e9b", alpha=_BAND_ALPHA, linewidth=0,
                   label=f"{ci:.0%} predictive band")
    ax.axhline(0.0, color="0.25", linewidth=0.9, linestyle="--")
    ax.scatter(x[~outside], res[~outside], s=14, color="#2c6e9b", edgecolor="white", linewidth=0.4, zorder=3,
               label="runs")
    ax.scatter(x[outside], res[outside], s=18, color="#c0392b", edgecolor="white", linewidth=0.4, zorder=4,
               label=f"outside their {ci:.0%} interval: {outside.sum()} of {outside.size}")
    ax.set_xscale("log")
    xlabel = _AGAINST[against] + (f" ({unit})" if against == "C" else "")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Standardized residual" if kind == "standardized" else "Residual in log loss")
    ax.set_title("Residuals: observed minus posterior median of the law")
    ax.legend(loc="best", fontsize=8, frameon=False)
    _style(ax)
    return fig


# ---------------------------------------------------------------------------
# 6. Posterior predictive check
# ---------------------------------------------------------------------------


def _kde(samples: np.ndarray, grid: np.ndarray, h: float) -> np.ndarray:
    """Gaussian KDE of each row of ``samples`` on an even ``grid``, ``(R, G)``.

    Rows are binned onto the grid (one bincount) and smoothed with one
    matrix product, so memory stays ``O(R G + G^2)`` whatever the number of
    runs.  All rows share the bandwidth ``h``, as a fair comparison needs.
    """
    R, n = samples.shape
    G = grid.size
    dg = grid[1] - grid[0]
    h = max(float(h), 2 * dg)
    pos = np.clip(np.rint((samples - grid[0]) / dg).astype(np.int64), 0, G - 1)
    counts = np.bincount((pos + (np.arange(R) * G)[:, None]).ravel(), minlength=R * G).reshape(R, G)
    kernel = np.exp(-0.5 * ((grid[:, None] - grid[None, :]) / h) ** 2) / (h * np.sqrt(2 * np.pi))
    return counts @ kernel / n


def _ecdf_rows(samples: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """ECDF of each row of ``samples`` evaluated on ``grid``, ``(R, G)``, in one searchsorted."""
    R, n = samples.shape
    srt = np.sort(samples, axis=1)
    lo = min(srt[:, 0].min(), grid.min())
    width = max(srt[:, -1].max(), grid.max()) - lo + 1.0
    shift = (np.arange(R) * width)[:, None]
    flat = (srt - lo + shift).ravel()
    pos = np.searchsorted(flat, (grid[None, :] - lo + shift).ravel(), side="right").reshape(R, grid.size)
    return (pos - np.arange(R)[:, None] * n) / n


def ppc(post, *, ax=None, kind: str = "ecdf", n_replicates: int = 60, ci: float | None = None) -> Figure:
    """Posterior predictive check: observed log loss against replicated data sets.

    ``kind="ecdf"`` (default) or ``"kde"`` draws the distribution of the
    observed log loss over all runs, thin lines for ``n_replicates``
    replicated data sets from the tree's ``posterior_predictive`` group,
    and the pointwise ``ci`` band of the replicates' distribution.

    ``kind="pit"`` is the sharper check for a regression: the probability
    integral transform ``P(y_rep_i <= y_i)`` of every run, whose ECDF minus
    the uniform CDF should stay within the ``ci`` band of a calibrated
    model (a U shape means the predictive intervals are too narrow, a hump
    too wide, a tilt a bias).

    The legend gives posterior predictive p-values ``P(T(y_rep) >= T(y))``
    for the mean and the standard deviation: values near 0 or 1 flag a
    misfit.

    Parameters
    ----------
    post : Posterior
        A fitted posterior.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is made when omitted.
    kind : {"ecdf", "kde", "pit"}
        Distribution display.
    n_replicates : int
        Replicated data sets drawn as lines.
    ci : float, optional
        Probability mass of the pointwise band, in (0, 1).
        Default :data:`bayesscale.DEFAULT_CI`.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        On an unknown ``kind`` or ``ci`` outside (0, 1).
    """
    _check_posterior(post)
    ci = _check_ci(ci)
    if kind not in ("ecdf", "kde", "pit"):
        raise ValueError(f"kind must be 'ecdf', 'kde' or 'pit', got {kind!r}")
    tree = post.tree
    y = np.asarray(tree["observed_data"]["y"].values, dtype=float)
    y_rep = _replicated_log_loss(post)
    n = y.size
    reps = y_rep[_thin_index(y_rep.shape[0], max(int(n_replicates), 1))]
    lo_x = min(y.min(), np.quantile(y_rep.min(axis=1), 0.05))
    hi_x = max(y.max(), np.quantile(y_rep.max(axis=1), 0.95))
    grid = np.linspace(lo_x - 0.03 * (hi_x - lo_x), hi_x + 0.03 * (hi_x - lo_x), 300)

    fig, ax = _single_axes(ax, (6.5, 4.4))
    rep_color, obs_color = "#6fa8dc", "black"
    if kind == "ecdf":
        F = _ecdf_rows(y_rep, grid)
        _, flo, fhi = _quantiles(F, ci)
        ax.fill_between(grid, flo, fhi, step="post", color=rep_color, alpha=0.3, linewidth=0,
                        label=rf"$y_\mathrm{{rep}}$ {ci:.0%} band")
        xs = np.sort(reps, axis=1).T
        ys = np.arange(1, n + 1) / n
        ax.plot(xs, np.broadcast_to(ys[:, None], xs.shape), drawstyle="steps-post", color=rep_color,
                alpha=0.25, linewidth=0.6)
        ys_obs = np.arange(1, n + 1) / n
        ax.plot(np.sort(y), ys_obs, drawstyle="steps-post", color=obs_color, linewidth=1.6, label="observed $y$")
        ax.set_ylabel("ECDF")
        ax.set_ylim(0, 1.01)
    elif kind == "pit":
        pit = np.mean(y_rep <= y[None, :], axis=0)
        grid = np.linspace(0.0, 1.0, 201)
        calibrated = np.random.default_rng(20240).uniform(size=(1000, n))
        _, flo, fhi = _quantiles(_ecdf_rows(calibrated, grid) - grid, ci)
        ax.fill_between(grid, flo, fhi, color=rep_color, alpha=0.35, linewidth=0,
                        label=f"{ci:.0%} band of a calibrated model")
        ax.axhline(0.0, color="0.4", linewidth=0.9, linestyle="--")
        ax.plot(grid, _ecdf_rows(pit[None, :], grid)[0] - grid, drawstyle="steps-post", color=obs_color,
                linewidth=1.6, label=f"PIT of the {n} runs")
        ax.set_ylabel("ECDF of PIT minus uniform")
    else:
        h = 1.06 * y.std(ddof=1) * n ** (-1 / 5)  # Scott's rule on the observed data
        dens = _kde(reps, grid, h)
        band = _kde(y_rep, grid, h)
        _, dlo, dhi = _quantiles(band, ci)
        ax.fill_between(grid, dlo, dhi, color=rep_color, alpha=0.3, linewidth=0,
                        label=rf"$y_\mathrm{{rep}}$ {ci:.0%} band")
        ax.plot(grid, dens.T, color=rep_color, alpha=0.25, linewidth=0.6)
        ax.plot(grid, _kde(y[None, :], grid, h)[0], color=obs_color, linewidth=1.6, label="observed $y$")
        ax.set_ylabel("Density")
        ax.set_ylim(bottom=0)
    if kind != "pit":
        ax.plot([], [], color=rep_color, linewidth=0.8, label=f"{reps.shape[0]} replicated data sets")
    p_mean = float(np.mean(y_rep.mean(axis=1) >= y.mean()))
    p_sd = float(np.mean(y_rep.std(axis=1) >= y.std()))
    ax.plot([], [], " ", label=f"p-value: mean {p_mean:.2f}, sd {p_sd:.2f}")
    ax.set_xlim(grid[0], grid[-1])
    ax.set_xlabel(r"PIT, $P(y_\mathrm{rep} \leq y)$ per run" if kind == "pit" else "Log loss $y$")
    ax.set_title("Posterior predictive check")
    ax.legend(loc="upper right" if kind == "kde" else "upper left", fontsize=8, frameon=False)
    _style(ax)
    return fig


# ---------------------------------------------------------------------------
# 7. Rank plots
# ---------------------------------------------------------------------------


def rank_plot(post, *, fig=None, var_names=None, bins: int = 20) -> Figure:
    """Rank plots of the law's parameters for convergence diagnosis.

    For each parameter the draws of all chains are pooled and ranked; each
    chain's ranks are histogrammed.  With converged, well-mixed chains
    every histogram is flat, within the shaded 99% band of a uniform
    histogram; a chain stuck high or low shows a slope or a hump.  Panel
    titles carry the rank-normalised split R-hat.

    Parameters
    ----------
    post : Posterior
        A fitted posterior.
    fig : matplotlib.figure.Figure or SubFigure, optional
        Figure to draw the panels into; a new one is made when omitted.
    var_names : sequence of str, optional
        Parameters to show, from the tree's ``posterior`` group; default the
        law's parameters.
    bins : int
        Histogram bins.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        On an unknown parameter name or fewer than 2 bins.
    """
    _check_posterior(post)
    bins = int(bins)
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    posterior = post.tree["posterior"]
    names = list(post.law.params if var_names is None else var_names)
    unknown = [v for v in names if v not in posterior.data_vars]
    if unknown or not names:
        raise ValueError(f"unknown parameters {unknown}; choose from {sorted(posterior.data_vars)}")
    try:
        rhat = post.summary()["r_hat"]
    except Exception:  # noqa: BLE001 - the plot is still useful without R-hat
        rhat = {}

    fig = _panel_figure(fig, (2.6 * len(names) + 0.6, 3.0))
    axes = np.atleast_1d(fig.subplots(1, len(names), sharey=True))
    chain_colors = mpl.colormaps["tab10"].colors
    for ax, name in zip(axes, names):
        x = np.asarray(posterior[name].values, dtype=float)
        x = x.reshape(x.shape[0], -1)  # (chains, draws)
        n_chains, n_draws = x.shape
        total = x.size
        ranks = np.empty(total, dtype=np.int64)
        ranks[np.argsort(x.ravel(), kind="stable")] = np.arange(total)
        b = (ranks * bins // total).reshape(n_chains, n_draws)
        counts = np.bincount((np.arange(n_chains)[:, None] * bins + b).ravel(),
                             minlength=n_chains * bins).reshape(n_chains, bins)
        expected = n_draws / bins
        half = 2.576 * np.sqrt(expected * (1 - 1 / bins))
        ax.axhspan(expected - half, expected + half, color="0.85", linewidth=0)
        ax.axhline(expected, color="0.4", linewidth=0.9, linestyle="--")
        edges = np.linspace(0, total, bins + 1)
        for c in range(n_chains):
            ax.stairs(counts[c], edges, baseline=None, color=chain_colors[c % len(chain_colors)],
                      linewidth=1.4, label=f"chain {c}")
        ax.set_xlim(0, total)
        ax.set_ylim(0, max(counts.max(), expected + half) * 1.3)
        title = _TEX.get(name, name)
        if name in getattr(rhat, "index", ()):
            title += rf"   $\hat R$ = {float(rhat[name]):.3f}"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("Rank of pooled draws")
        ax.set_xticks([0, total // 2, total])
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("Draws per bin")
    axes[-1].legend(fontsize=7, frameon=False, loc="upper center", ncols=min(n_chains, 4), handlelength=1.2,
                    columnspacing=0.8)
    return _root_figure(fig)


# ---------------------------------------------------------------------------
# 8. Saving
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# 9. Backtest calibration
# ---------------------------------------------------------------------------


def _binomial_band(n: int, p: float, mass: float) -> tuple[float, float]:
    """Equal-tailed ``mass`` interval of ``k / n`` for ``k ~ Binomial(n, p)``."""
    import math

    k = np.arange(n + 1)
    log_pmf = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in k])
    with np.errstate(divide="ignore"):
        log_pmf = log_pmf + k * np.log(p) + (n - k) * np.log1p(-p)
    cdf = np.cumsum(np.exp(log_pmf - log_pmf.max()))
    cdf /= cdf[-1]
    lo = int(np.searchsorted(cdf, (1 - mass) / 2))
    hi = int(np.searchsorted(cdf, (1 + mass) / 2))
    return lo / n, min(hi, n) / n


def backtest_coverage(result, *, ax=None) -> Figure:
    """Calibration of a backtest: nominal against empirical coverage of held-out runs.

    For each central predictive interval level of the backtest (50%, 80%
    and 90% by default) the fraction of held-out runs whose observed loss
    fell inside the interval is drawn against the level: one thin line per
    fold (markers sized by the fold's number of runs, coloured from the
    smallest to the largest held-out budget) and a thick black line for all
    held-out runs together.  A calibrated model lies on the dashed
    diagonal; the grey bar at each level is where the overall coverage of
    a calibrated model would fall by chance (90% binomial interval for the
    overall number of runs).  Points below the diagonal mean the intervals
    were too narrow (over-confident extrapolation), above it too wide.

    Parameters
    ----------
    result : BacktestResult
        The output of :func:`bayesscale.backtest`; its ``table`` has one
        row per fold and an ``overall`` row, with ``n_runs`` and
        ``coverage_<level>`` columns.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is made when omitted.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If ``result`` is not a backtest result with coverage columns.
    """
    table = getattr(result, "table", None)
    if table is None or not hasattr(table, "columns"):
        raise ValueError(f"expected a bayesscale BacktestResult (from bayesscale.backtest), "
                         f"got {type(result).__name__}")
    cov_cols = sorted((c for c in table.columns if str(c).startswith("coverage_")),
                      key=lambda c: float(str(c).split("_", 1)[1]))
    try:
        levels = np.array([float(str(c).split("_", 1)[1]) / 100 for c in cov_cols])
    except ValueError:
        raise ValueError(f"unexpected coverage columns {cov_cols} in the backtest table") from None
    if not cov_cols or "n_runs" not in table.columns or len(table) == 0:
        raise ValueError("the backtest table has no coverage_<level> or n_runs columns; "
                         "pass the result of bayesscale.backtest")
    folds = table.drop(index="overall", errors="ignore")
    overall = table.loc["overall"] if "overall" in table.index else None

    fig, ax = _single_axes(ax, (8.6, 4.8))
    ax.plot([0, 1], [0, 1], color="0.3", linestyle="--", linewidth=1, label="calibrated (diagonal)", zorder=1)
    if overall is not None and int(overall["n_runs"]) > 0:
        # runs of one held-out budget share its error: the chance range counts budgets, not runs
        by_budget = "n_folds" in overall.index and np.isfinite(overall["n_folds"])
        n = int(overall["n_folds"]) if by_budget else int(overall["n_runs"])
        band = np.array([_binomial_band(n, p, 0.9) for p in levels])
        ax.vlines(levels, band[:, 0], band[:, 1], color="0.55", alpha=0.35, linewidth=14, zorder=0,
                  label=f"90% chance range of a calibrated model ({n} {'budgets' if by_budget else 'runs'})")
    if len(folds):
        cmap = _budget_cmap()
        sizes = folds["n_runs"].to_numpy(dtype=float)
        for j, (label, row) in enumerate(folds.iterrows()):
            col = cmap(j / max(len(folds) - 1, 1))
            y = row[cov_cols].to_numpy(dtype=float)
            ax.plot(levels, y, color=col, linewidth=1.0, alpha=0.75, zorder=2)
            ax.scatter(levels, y, s=12 + 10 * np.sqrt(sizes[j]), color=col, edgecolor="white", linewidth=0.5,
                       zorder=3, label=f"{label} ({int(sizes[j])} run{'' if sizes[j] == 1 else 's'})")
    if overall is not None:
        y = overall[cov_cols].to_numpy(dtype=float)
        ax.plot(levels, y, color="black", linewidth=2.2, marker="o", markersize=7, zorder=4,
                label=f"all held-out runs ({int(overall['n_runs'])})")
        for x_, y_ in zip(levels, y):
            ax.annotate(f"{y_:.0%}", (x_, y_), xytext=(6, -12), textcoords="offset points", fontsize=8,
                        color="black", zorder=5)
    ax.text(0.97, 0.04, "below the diagonal:\nintervals too narrow", transform=ax.transAxes, ha="right",
            va="bottom", fontsize=8, color="#7b241c")
    ax.text(0.03, 0.96, "above the diagonal:\nintervals too wide", transform=ax.transAxes, ha="left", va="top",
            fontsize=8, color="0.35")
    ax.set_xlim(max(levels.min() - 0.1, 0.0), min(levels.max() + 0.08, 1.0))
    ax.set_ylim(-0.03, 1.03)
    ax.set_xticks(levels)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel("Nominal coverage of the central predictive interval")
    ax.set_ylabel("Empirical coverage of held-out runs")
    holdout = getattr(result, "holdout", "")
    ax.set_title("Backtest calibration" + (f" ({holdout})" if holdout else ""))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False,
              ncols=2 if len(folds) > 12 else 1)
    _style(ax)
    return fig


def sbc_ranks(result, *, bins: int = 10, fig=None) -> Figure:
    """Rank histograms of a simulation-based calibration, one panel per parameter.

    Each histogram counts where the true parameter fell among its posterior
    draws, over all simulated data sets.  A calibrated pipeline gives flat
    histograms within the shaded 99% band of a uniform one; a U shape means
    overconfident posteriors, a hump underconfident ones, a slope bias.

    Parameters
    ----------
    result : bayesscale.sbc.SBCResult
        The output of :func:`bayesscale.sbc.simulation_based_calibration`.
    bins : int
        Histogram bins.
    fig : matplotlib.figure.Figure or SubFigure, optional
        Figure to draw into.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from scipy.stats import binom

    if not hasattr(result, "ranks") or not hasattr(result, "uniformity"):
        raise ValueError(f"result must be an SBCResult, got {type(result).__name__}")
    if not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    names = list(result.ranks.columns)
    n = len(result.ranks)
    p_values = result.uniformity(bins=bins).p_value
    fig = _panel_figure(fig, (2.4 * len(names) + 0.6, 2.8))
    axes = np.atleast_1d(fig.subplots(1, len(names), sharey=True))
    lo, hi = binom.ppf([0.005, 0.995], n, 1 / bins)
    for ax, name in zip(axes, names):
        u = (result.ranks[name].to_numpy() + 0.5) / (result.n_ranks + 1)
        ax.axhspan(lo, hi, color="0.9", zorder=0, label="99% band of a uniform histogram")
        ax.axhline(n / bins, color="0.5", linewidth=0.8)
        ax.hist(u, bins=bins, range=(0, 1), color="#3b6ea5", edgecolor="white")
        ax.set_title(f"{name}  (p = {p_values[name]:.2f})", fontsize=10)
        ax.set_xlabel("rank of the truth (fraction)")
        _style(ax, grid=False)
    axes[0].set_ylabel(f"data sets (of {n})")
    axes[0].legend(loc="lower left", fontsize=7, frameon=False)
    fig.suptitle("Simulation-based calibration: ranks of the true parameters", fontsize=11)
    return _root_figure(fig)



# ---------------------------------------------------------------------------
# the compute multiplier of a grouped fit
# ---------------------------------------------------------------------------


def compute_multiplier(post, a, b, budgets=None, *, ci: float | None = None, ax=None, compute_unit: str = "flops",
                       n_budgets: int = 40) -> Figure:
    """The compute multiplier of group ``b`` over group ``a`` against compute, with its band.

    Parameters
    ----------
    post : GroupedPosterior
        A grouped fit (``bayesscale.fit(runs, groups=...)``).
    a, b : str
        The reference group and the candidate (see
        :meth:`bayesscale.groups.GroupedPosterior.compare_groups`).
    budgets : array_like, optional
        Compute range in FLOPs: its smallest and largest values span the x
        axis (``n_budgets`` points, log-spaced).  By default from the
        smallest run's compute to 100 times the largest.
    ci : float, optional
        Mass of the equal-tailed band.
        Default :data:`bayesscale.DEFAULT_CI`.
    ax : matplotlib Axes, optional
        Draw into these axes.
    compute_unit : {"flops", "pfdays"}
        Unit shown on the x axis.
    n_budgets : int
        Points on the curve.

    Returns
    -------
    matplotlib.figure.Figure
        Median multiplier (line) with its band, 1 (no difference) dashed,
        the largest run's compute dotted (beyond it, extrapolation), and
        P(B better) at the two ends in the legend.
    """
    if not hasattr(post, "compare_groups"):
        raise ValueError(f"expected a grouped posterior (bayesscale.fit(runs, groups=...)), got "
                         f"{type(post).__name__}")
    ci = _check_ci(ci)
    scale, unit = _unit(compute_unit)
    if budgets is None:
        lo_c, hi_c = post.runs.C.min(), 100 * post.runs.C.max()
    else:
        budgets = np.atleast_1d(np.asarray(budgets, dtype=float))
        lo_c, hi_c = budgets.min(), budgets.max()
    C = np.geomspace(lo_c, hi_c, n_budgets) if hi_c > lo_c else np.array([lo_c])
    df = post.compare_groups(a, b, budgets=C, ci=ci)
    fig, ax = _single_axes(ax, (6.0, 4.0))
    x = C / scale
    ax.fill_between(x, *(df[c] for c in band_names("multiplier", ci)), color="C0", alpha=0.25, linewidth=0,
                    label=f"{ci:.0%} interval")
    ax.plot(x, df["multiplier"], color="C0", linewidth=2,
            label=f"median (P({df.attrs['b']} better) = {df.prob_better.iloc[0]:.2f} .. {df.prob_better.iloc[-1]:.2f})")
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    c_max = post.runs.C.max() / scale
    if x[0] <= c_max <= x[-1]:
        ax.axvline(c_max, color="0.5", linestyle=":", linewidth=1, label="largest run")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _ratio_axis(ax.yaxis)
    ax.set_xlabel(f"compute C ({unit})")
    ax.set_ylabel(f"compute multiplier of {df.attrs['b']} over {df.attrs['a']}")
    ax.set_title(f"{df.attrs['b']} vs {df.attrs['a']}: compute to reach {df.attrs['a']}'s optimal loss", fontsize=10)
    _style(ax)
    ax.legend(fontsize=8, frameon=False)
    return fig


# ---------------------------------------------------------------------------
# Kaplan's steps-and-batch figures and Approach 1 from curves live in bayesscale.plots_steps;
# they are reachable here too (lazily, so either module can be imported first).
# ---------------------------------------------------------------------------

_STEPS_FIGURES = ("compute_efficient_frontier", "loss_vs_size", "excess_compute_steps", "approach1_envelope")
__all__ += list(_STEPS_FIGURES)


def __getattr__(name):
    if name in _STEPS_FIGURES:
        from . import plots_steps

        return getattr(plots_steps, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
