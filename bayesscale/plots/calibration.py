"""Calibration of the pipeline: backtest coverage and simulation-based calibration ranks.

=========================  ==============================================================
:func:`backtest_coverage`  nominal against empirical interval coverage of a backtest
:func:`sbc_ranks`          ranks of the true parameters in a simulation-based calibration
=========================  ==============================================================
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ._common import _budget_cmap, _panel_figure, _root_figure, _single_axes, _style

__all__ = ["backtest_coverage", "sbc_ranks"]




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
