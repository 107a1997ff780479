"""The figures scaling-law papers made famous: IsoFLOP profiles, the optimal frontier, IsoLoss
contours and the cost of a non-optimal size.

==========================  ====================================================
:func:`isoflop_profiles`    loss against N at fixed compute (Chinchilla Fig. 3 left)
:func:`optimal_frontier`    N_opt and D_opt against C, named budgets projected
                            (Chinchilla Fig. 3 middle and right)
:func:`isoloss_contours`    loss contours over (C, N) with the efficient frontier
                            (Chinchilla Fig. 4)
:func:`excess_compute`      extra compute and tokens at N != N_opt (Kaplan Fig. 12)
==========================  ====================================================

The compute-optimal ``N_opt`` and ``D_opt`` drawn here come from
:meth:`bayesscale.Posterior.allocate` itself, so a figure's median is the
table's median.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from .. import allocation as _alloc
from .. import laws
from .._validate import check_ci as _check_ci
from .._validate import positive as _positive
from ..data import match_budgets
from ..intervals import band_names, quantiles
from ..posterior import log_noise, profile
from ._common import (_BAND_ALPHA, _RUN_GREY, _budget_cmap, _check_posterior, _count, _loss_axis, _panel_figure,
                      _ratio_axis, _root_figure, _sci, _single_axes, _style, _thin_params, _unit)

__all__ = ["isoflop_profiles", "optimal_frontier", "isoloss_contours", "excess_compute"]


def _profile_at(post, idx, N, D):
    """The profile's extra curvature (``profile="trend"``) at draws ``idx`` and grid ``(N, D)``; 0.0 without it."""
    if "profile_trend" not in post._natural:
        return 0.0
    return profile(post, N, laws.FLOPS_PER_PARAM_TOKEN * N * D)[idx]


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
        groups = match_budgets(runs, C)
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
    mu = post.law.log_loss_ND(P, N[None], D[None]) + _profile_at(post, idx, N, D)  # (S, B, G)
    # one noise draw per (posterior draw, budget), shared along the curve: every point keeps its
    # exact predictive marginal, and the quantile curves come out smooth
    noise = log_noise(post, C)[idx][:, :, None]
    med, lo, hi = quantiles(np.exp(mu + noise), ci)

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
    idx, p = _thin_params(post, 400)
    Cg = np.geomspace(runs.C.min() / 3, runs.C.max() * 100, n_grid)
    Ng = np.geomspace(runs.N.min() / 3, runs.N.max() * 10, n_grid)
    CC, NN = np.meshgrid(Cg, Ng)  # (nN, nC)
    DD = CC / (laws.FLOPS_PER_PARAM_TOKEN * NN)
    P = {k: v[:, None, None] for k, v in p.items()}
    L = np.median(np.exp(post.law.log_loss_ND(P, NN[None], DD[None]) + _profile_at(post, idx, NN, DD)), axis=0)
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
