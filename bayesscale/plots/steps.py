"""Kaplan et al. (2020)'s steps-and-batch figures and Chinchilla's Approach 1, drawn from curves.

==================================  ==============================================================
:func:`compute_efficient_frontier`  ``N`` and ``S_min`` against ``C_min`` (critical batch) beside
                                    ``N`` and ``S`` against ``C`` at a fixed batch (Kaplan Fig. 14)
:func:`loss_vs_size`                loss against ``N`` at fixed compute (U-shaped) and at fixed
                                    steps (monotone), on log colour bars (Kaplan Figs. 4, 10 style)
:func:`excess_compute_steps`        excess compute and excess steps against ``N / N_eff``
                                    (Kaplan Fig. 12)
:func:`approach1_envelope`          all curves in ``(C, loss)``, their lower envelope and the
                                    ``N_opt(C)`` power law of Approach 1 (Chinchilla Sec. 3.1)
==================================  ==============================================================

The first three take a posterior of the ``kaplan_steps`` law
(``bs.fit(curves, law="kaplan_steps")``); their bands are the law's
(parameter uncertainty, ``ci`` equal-tailed intervals over posterior draws,
thinned to at most :data:`bayesscale.plots.MAX_DRAWS`), the derived numbers
come from :mod:`bayesscale.steps_analysis`.  Observed points are the
checkpoints of the curves: the fitted ones (``post.runs``) unless ``curves``
are given.  Quantities that need the law to be computed from a checkpoint
(``C_min``, ``S_min``) use, per checkpoint, the posterior median over draws.

Conventions follow :mod:`bayesscale.plots`: compute is given in FLOPs,
``compute_unit="pfdays"`` only changes how it is shown; ``fig=`` draws into
your Figure or SubFigure; a new Figure is made without pyplot otherwise;
nothing calls ``plt.show()``.  These functions are also reachable as
``bayesscale.plots.<name>``, and (the module's old home) as
``bayesscale.plots_steps.<name>``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .. import kaplan
from .. import steps_analysis as _sa
from .._validate import check_ci as _check_ci
from .._validate import positive as _positive
from ..intervals import band_names, quantiles
from ..laws import FLOPS_PER_PARAM_TOKEN
from ._common import (_BAND_ALPHA, MAX_DRAWS, _budget_cmap, _count, _loss_axis, _panel_figure, _ratio_axis,
                      _root_figure, _style, _thin_index, _unit)

__all__ = ["compute_efficient_frontier", "loss_vs_size", "excess_compute_steps", "approach1_envelope"]

_BLUE = "#2c6e9b"
_ORANGE = "#d9822b"
_ENV = "#1a1a1a"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _law_draws(post, max_draws: int = MAX_DRAWS) -> dict:
    p = _sa._check_post(post)
    idx = _thin_index(next(iter(p.values())).size, max_draws)
    return {k: v[idx] for k, v in p.items()}


def _checkpoints(post, curves) -> dict:
    """Checkpoint arrays in the posterior's parameter convention: run, N, S, B, tokens, loss, C."""
    if curves is None:
        r = post.runs
        if r.S is None or r.B is None:
            raise ValueError("the posterior's runs carry no steps or batch sizes; pass the curves")
        run = r.budget
        N, S, B, E, L = r.N, r.S, r.B, r.D, r.loss
    else:
        from ..curves import Curves, load_curves

        c = curves if isinstance(curves, Curves) else load_curves(curves)
        conv = _sa._convention(post, None)
        run, N, S, B, E, L = c.run_index, c.params(conv), c.step, c.batch_tokens, c.tokens, c.loss
    arr = {k: np.asarray(v, dtype=float) for k, v in dict(N=N, S=S, B=B, E=E, loss=L).items()}
    arr["run"] = np.asarray(run, dtype=np.int64)
    arr["C"] = FLOPS_PER_PARAM_TOKEN * arr["N"] * arr["E"]
    return arr


def _per_checkpoint_min(p: dict, ck: dict) -> tuple[np.ndarray, np.ndarray]:
    """Posterior-median ``C_min`` and ``S_min`` of each checkpoint (eqs. 5.4, 5.5)."""
    P = {k: v[:, None] for k, v in p.items()}
    cm = kaplan.c_min(P, ck["C"][None, :], ck["B"][None, :], ck["loss"][None, :])
    sm = kaplan.s_min(P, ck["S"][None, :], ck["B"][None, :], ck["loss"][None, :])
    return np.exp(np.median(np.log(cm), axis=0)), np.exp(np.median(np.log(sm), axis=0))


def _envelope(run: np.ndarray, cost: np.ndarray, loss: np.ndarray, steps: np.ndarray, n_bins: int = 40,
              min_runs: int = 2) -> dict:
    """Lower envelope of loss against ``cost`` over runs (no extrapolation beyond a run's checkpoints).

    Each run is interpolated linearly in (log cost, log loss); the cost is
    made non-decreasing along a run first (a cost computed from a noisy loss,
    like ``C_min``, can step back by a hair).  Returns the grid values where
    at least ``min_runs`` runs take part, with the winning run, its loss and
    its interpolated steps.
    """
    ids = np.unique(run)
    lc = np.log(cost)
    grid = np.linspace(lc.min(), lc.max(), n_bins)
    ll = np.full((ids.size, n_bins), np.inf)
    ls = np.full((ids.size, n_bins), np.nan)
    for i, r in enumerate(ids):
        sel = run == r
        x = np.maximum.accumulate(lc[sel])
        keep = np.r_[True, np.diff(x) > 0]
        x = x[keep]
        if x.size < 2:
            continue
        inside = (grid >= x[0]) & (grid <= x[-1])
        ll[i, inside] = np.interp(grid[inside], x, np.log(loss[sel][keep]))
        ls[i, inside] = np.interp(grid[inside], x, np.log(steps[sel][keep]))
    n_cover = np.isfinite(ll).sum(axis=0)
    j = np.flatnonzero(n_cover >= min_runs)
    win = np.argmin(ll[:, j], axis=0)
    return {"cost": np.exp(grid[j]), "run": ids[win], "loss": np.exp(ll[win, j]), "steps": np.exp(ls[win, j])}


def _band(ax, x, draws, ci, color, label=None, *, linestyle="-", zorder=2):
    med, lo, hi = quantiles(draws, ci)
    ax.fill_between(x, lo, hi, color=color, alpha=_BAND_ALPHA, linewidth=0, zorder=zorder)
    ax.plot(x, med, color=color, linewidth=2, linestyle=linestyle, label=label, zorder=zorder + 1)
    return med


def _plain_log_ticks(axis):
    """Plain numbers on a log axis of losses: at least 5 round values over less than a decade."""
    _loss_axis(axis)


def _log_colorbar(fig, ax, values, label):
    cmap = _budget_cmap()
    v = np.asarray(values, dtype=float)
    norm = LogNorm(v.min() / 1.0001, v.max() * 1.0001)
    cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, pad=0.02)
    cb.set_label(label)
    return cmap, norm


# ---------------------------------------------------------------------------
# (a) the compute-efficient frontier, Kaplan Fig. 14
# ---------------------------------------------------------------------------


def compute_efficient_frontier(post, curves=None, *, ci: float | None = None, batch=None, budgets=None,
                               compute_unit: str = "pfdays", fig=None) -> Figure:
    """Model size and steps against compute: critical batch against fixed batch (Kaplan Fig. 14).

    Left: ``N_eff`` against ``C_min`` (compute adjusted to the critical
    batch, :func:`bayesscale.kaplan.frontier`) with its band, beside the
    loss-optimal ``N`` against ``C`` when every run uses the fixed batch
    ``batch`` (:func:`bayesscale.kaplan.fixed_batch_optimum`).  Right:
    ``S_min`` against ``C_min`` on the frontier, beside the steps ``S = C /
    (6 N B)`` of the fixed-batch optimum.  Observed points: the lower
    envelope of the curves in ``C_min`` (each checkpoint converted with the
    posterior-median ``B_crit`` at its loss; the winner's ``N`` and
    ``S_min``), and in ``C`` for the runs trained at ``batch``.  The
    exponents with their ``ci`` intervals are annotated (from
    :func:`bayesscale.steps_analysis.frontier_exponents`: the fixed-batch
    exponent is the slope over the fitted runs' compute range).

    Parameters
    ----------
    post : Posterior
        A ``kaplan_steps`` posterior.
    curves : Curves, DataFrame or path, optional
        Curves for the observed points; default the fitted checkpoints.
    ci : float, optional
        Band mass.
        Default :data:`bayesscale.DEFAULT_CI`.
    batch : float, optional
        The fixed batch in tokens; default
        :func:`bayesscale.steps_analysis.reference_batch`.
    budgets : array_like, optional
        Compute values (FLOPs) for the lines; default 25 log-spaced from a
        tenth of the smallest checkpoint ``C_min`` to ten times the largest
        checkpoint ``C``.
    compute_unit : {"flops", "pfdays"}
        Unit of the compute axes.
    fig : Figure or SubFigure, optional
        Where to draw the two panels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ci = _check_ci(ci)
    scale, unit = _unit(compute_unit)
    p = _law_draws(post)
    ck = _checkpoints(post, curves)
    B = _sa.reference_batch(post) if batch is None else float(_positive(batch, "batch")[0])
    cmin_ck, smin_ck = _per_checkpoint_min(p, ck)
    if budgets is None:
        grid = np.geomspace(cmin_ck.min() / 10, ck["C"].max() * 10, 25)
    else:
        grid = np.sort(_positive(budgets, "budgets"))
    table = _sa.frontier_exponents(post, ci=ci, batch=B)
    P = {k: v[:, None] for k, v in p.items()}
    fr = kaplan.frontier(P, grid[None, :])
    fb = _sa.fixed_batch_exponent(post, batch=B, budgets=grid, max_draws=min(MAX_DRAWS, 400))
    S_fb = grid[None, :] / (FLOPS_PER_PARAM_TOKEN * fb["N_opt"] * B)

    env_min = _envelope(ck["run"], cmin_ck, ck["loss"], smin_ck)
    at_b = np.isclose(ck["B"], B, rtol=1e-6)
    env_fb = (_envelope(ck["run"][at_b], ck["C"][at_b], ck["loss"][at_b], ck["S"][at_b])
              if np.unique(ck["run"][at_b]).size >= 2 else None)
    N_run = {int(r): ck["N"][ck["run"] == r][0] for r in np.unique(ck["run"])}

    fig = _panel_figure(fig, (11.5, 4.8))
    axes = fig.subplots(1, 2)
    x = grid / scale
    bname = f"{_count(B)} tokens" + (f" ($2^{{{int(round(np.log2(B)))}}}$)" if abs(np.log2(B) - round(np.log2(B))) < 1e-9
                                      else "")
    eN, eS, eF = table.loc["N_vs_C_min"], table.loc["S_min_vs_C_min"], table.loc["N_vs_C_fixed_batch"]
    ax = axes[0]
    _band(ax, x, fr["N"], ci, _BLUE, label=r"$N_\mathrm{eff}(C_\mathrm{min})$, critical batch")
    _band(ax, x, fb["N_opt"], ci, _ORANGE, label=f"loss-optimal $N(C)$, fixed batch {bname}", linestyle="--")
    ax.scatter(env_min["cost"] / scale, [N_run[int(r)] for r in env_min["run"]], s=16, color=_BLUE,
               edgecolor="black", linewidth=0.5, zorder=5, label=r"curves' envelope in $C_\mathrm{min}$")
    if env_fb is not None and env_fb["cost"].size:
        ax.scatter(env_fb["cost"] / scale, [N_run[int(r)] for r in env_fb["run"]], s=18, facecolor="none",
                   edgecolor=_ORANGE, linewidth=1.0, zorder=5, label=f"envelope of the runs at batch {_count(B)}")
    e_lo, e_hi = band_names("", ci)
    ax.text(0.03, 0.97, rf"$N \propto C_\mathrm{{min}}^{{{eN['median']:.3f}}}$ "
                        f"[{eN[e_lo]:.3f}, {eN[e_hi]:.3f}]\n"
                        rf"$N \propto C^{{{eF['median']:.3f}}}$ [{eF[e_lo]:.3f}, {eF[e_hi]:.3f}] at fixed batch"
                        f"\n(Kaplan: 0.73 and 0.88; {ci:.0%} intervals)",
            transform=ax.transAxes, va="top", ha="left", fontsize=8.5,
            bbox=dict(boxstyle="round,pad=0.3", facecolor="white", edgecolor="0.8"))
    ax.set_ylabel("Parameters $N$")
    ax.set_title("Model size: critical batch vs fixed batch")

    ax = axes[1]
    _band(ax, x, fr["S"], ci, _BLUE, label=r"$S_\mathrm{min}(C_\mathrm{min})$, critical batch")
    _band(ax, x, S_fb, ci, _ORANGE, label=f"steps $S(C)$ at the optimum, fixed batch {bname}", linestyle="--")
    ax.scatter(env_min["cost"] / scale, env_min["steps"], s=16, color=_BLUE, edgecolor="black", linewidth=0.5,
               zorder=5, label=r"curves' envelope: $S_\mathrm{min}$ of the winner")
    if env_fb is not None and env_fb["cost"].size:
        ax.scatter(env_fb["cost"] / scale, env_fb["steps"], s=18, facecolor="none", edgecolor=_ORANGE,
                   linewidth=1.0, zorder=5, label="envelope at fixed batch: steps $S$")
    ax.text(0.03, 0.97, rf"$S_\mathrm{{min}} \propto C_\mathrm{{min}}^{{{eS['median']:.3f}}}$ "
                        f"[{eS[e_lo]:.3f}, {eS[e_hi]:.3f}]\n(Kaplan: 0.03; {ci:.0%} intervals)",
            transform=ax.transAxes, va="top", ha="left", fontsize=8.5,
            bbox=dict(boxstyle="round,pad=0.3", facecolor="white", edgecolor="0.8"))
    ax.set_ylabel("Steps")
    ax.set_title("Optimization steps")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(rf"Compute $C_\mathrm{{min}}$ (critical batch) or $C$ (fixed batch) ({unit})")
        ax.legend(loc="lower right", fontsize=7.5, frameon=False)
        _style(ax)
    fig.suptitle(f"Compute-efficient frontier (N counted as: {table.attrs['convention']})", fontsize=11)
    return _root_figure(fig)


# ---------------------------------------------------------------------------
# (b) loss against size at fixed compute and at fixed steps
# ---------------------------------------------------------------------------


def _interp_at(ck: dict, key: np.ndarray, targets: np.ndarray) -> list:
    """Per run and target: the run's loss interpolated at ``key == target`` (log-log), where spanned."""
    out = []
    for r in np.unique(ck["run"]):
        sel = ck["run"] == r
        x = np.maximum.accumulate(np.log(key[sel]))
        keep = np.r_[True, np.diff(x) > 0]
        x, y = x[keep], np.log(ck["loss"][sel][keep])
        for j, t in enumerate(np.log(targets)):
            if x.size >= 2 and x[0] <= t <= x[-1]:
                out.append((j, ck["N"][sel][0], float(np.exp(np.interp(t, x, y)))))
    return out


def loss_vs_size(post, curves=None, *, budgets=None, steps=None, ci: float | None = None, compute_unit: str = "pfdays",
                 n_points: int = 80, fig=None) -> Figure:
    """Loss against model size at fixed compute (U-shaped) and at fixed steps (monotone).

    Left (Kaplan's "performance vs compute budget"): for each budget
    ``C_min`` (compute at the critical batch), the loss that ``N``
    parameters reach with it (:func:`bayesscale.kaplan.log_loss_at_compute`),
    with its band, and the efficient size marked.  Right ("performance vs
    steps"): ``L(N, S_min)`` at fixed numbers of steps ``S_min``
    (:func:`bayesscale.kaplan.log_loss_n_smin`).  One line per budget or
    step count, coloured on a logarithmic colour bar.  Observed points: each
    run's loss interpolated (log-log) at the budget's ``C_min`` or at the
    step count's ``S_min``, where its checkpoints span it.

    Parameters
    ----------
    post : Posterior
        A ``kaplan_steps`` posterior.
    curves : Curves, DataFrame or path, optional
        Curves for the observed points; default the fitted checkpoints.
    budgets : array_like, optional
        Budgets ``C_min`` in FLOPs; default 5 log-spaced over the
        checkpoints' ``C_min``.
    steps : array_like, optional
        Step counts ``S_min``; default 5 log-spaced over the checkpoints'.
    ci : float, optional
        Band mass.
        Default :data:`bayesscale.DEFAULT_CI`.
    compute_unit : {"flops", "pfdays"}
        Unit in which budgets are shown.
    n_points : int
        Points per line.
    fig : Figure or SubFigure, optional
        Where to draw the two panels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ci = _check_ci(ci)
    scale, unit = _unit(compute_unit)
    p = _law_draws(post)
    ck = _checkpoints(post, curves)
    cmin_ck, smin_ck = _per_checkpoint_min(p, ck)
    if budgets is None:
        budgets = np.geomspace(cmin_ck.min() * 1.5, cmin_ck.max() / 1.5, 5)
    budgets = np.sort(_positive(budgets, "budgets"))
    if steps is None:
        steps = np.geomspace(smin_ck.min() * 1.5, smin_ck.max() / 1.5, 5)
    steps = np.sort(_positive(steps, "steps"))
    P = {k: v[:, None, None] for k, v in p.items()}
    P1 = {k: v[:, None] for k, v in p.items()}
    fr = kaplan.frontier(P1, budgets[None, :])
    n_eff = np.median(fr["N"], axis=0)
    lo_n = min(ck["N"].min() / 10, n_eff.min() / 30)
    hi_n = max(ck["N"].max() * 10, n_eff.max() * 30)
    N = np.geomspace(lo_n, hi_n, max(int(n_points), 10))

    fig = _panel_figure(fig, (12.0, 4.8))
    axes = fig.subplots(1, 2)
    # left: fixed compute
    ax = axes[0]
    cmap, norm = _log_colorbar(fig, ax, budgets / scale, rf"Compute $C_\mathrm{{min}}$ ({unit})")
    ll = kaplan.log_loss_at_compute(P, np.log(N)[None, None, :], np.log(budgets)[None, :, None])
    loss = np.exp(ll)
    for j, c in enumerate(budgets):
        _band(ax, N, loss[:, j, :], ci, cmap(norm(c / scale)))
    Lmin = np.median(fr["L"], axis=0)
    ax.scatter(n_eff, Lmin, marker="D", s=30, color=[cmap(norm(c / scale)) for c in budgets], edgecolor="black",
               linewidth=0.7, zorder=6)
    obs = _interp_at(ck, cmin_ck, budgets)
    if obs:
        ax.scatter([o[1] for o in obs], [o[2] for o in obs], s=24, color=[cmap(norm(budgets[o[0]] / scale)) for o in obs],
                   edgecolor="white", linewidth=0.6, zorder=5)
    ax.set_title("Loss at fixed compute (critical batch)")
    y_top = max(float(Lmin.max()) * 1.35, max((o[2] for o in obs), default=0.0) * 1.05)
    ax.set_ylim(min(float(np.quantile(loss, (1 - ci) / 2, axis=0).min()), ck["loss"].min()) / 1.03, y_top)
    ax.legend(handles=[Patch(color="0.5", alpha=0.35, linewidth=0, label=f"{ci:.0%} interval (law)"),
                       Line2D([], [], color="0.7", marker="D", markeredgecolor="black", linestyle="none",
                              label=r"efficient size $N_\mathrm{eff}$ (median)"),
                       Line2D([], [], color="0.4", marker="o", linestyle="none", markersize=5,
                              label=r"curves at that $C_\mathrm{min}$")], fontsize=8, frameon=False,
              loc="lower left")
    # right: fixed steps
    ax = axes[1]
    cmap, norm = _log_colorbar(fig, ax, steps, r"Steps $S_\mathrm{min}$")
    ls = kaplan.log_loss_n_smin(P, np.log(N)[None, None, :], np.log(steps)[None, :, None])
    for j, s in enumerate(steps):
        _band(ax, N, np.exp(ls[:, j, :]), ci, cmap(norm(s)))
    obs2 = _interp_at(ck, smin_ck, steps)
    if obs2:
        ax.scatter([o[1] for o in obs2], [o[2] for o in obs2], s=24, color=[cmap(norm(steps[o[0]])) for o in obs2],
                   edgecolor="white", linewidth=0.6, zorder=5)
    ax.set_title(r"Loss at fixed steps $S_\mathrm{min}$ (critical batch)")
    ax.legend(handles=[Patch(color="0.5", alpha=0.35, linewidth=0, label=f"{ci:.0%} interval (law)"),
                       Line2D([], [], color="0.4", marker="o", linestyle="none", markersize=5,
                              label=r"curves at that $S_\mathrm{min}$")], fontsize=8, frameon=False,
              loc="upper right")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"Parameters $N$ ({_sa._convention(post, None)} count)")
        ax.set_ylabel("Loss")
        _plain_log_ticks(ax.yaxis)
        _style(ax)
    return _root_figure(fig)


# ---------------------------------------------------------------------------
# (c) excess compute and excess steps, Kaplan Fig. 12
# ---------------------------------------------------------------------------


def excess_compute_steps(post, *, r=None, ci: float | None = None, threshold: float = 0.2, fig=None) -> Figure:
    """Excess compute and excess steps of a non-efficient model size (Kaplan et al. Fig. 12).

    Left: ``C / C_eff`` against ``N / N_eff`` (the compute to reach the loss
    the efficient model reaches, at the critical batch), with its band, the
    sizes costing at most ``threshold`` more compute shaded and the
    sentence "models between 0.6x and 2.2x ..." computed from the posterior
    (:func:`bayesscale.steps_analysis.size_range`).  Right: ``S / S_eff``:
    smaller models need more steps, larger ones fewer.

    Parameters
    ----------
    post : Posterior
        A ``kaplan_steps`` posterior.
    r : array_like, optional
        Sizes relative to ``N_eff``; default 0.3 to 10.
    ci : float, optional
        Band mass.
        Default :data:`bayesscale.DEFAULT_CI`.
    threshold : float
        Extra compute of the shaded range (0.2: 20%).
    fig : Figure or SubFigure, optional
        Where to draw the two panels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ci = _check_ci(ci)
    _law_draws(post)
    t = _sa.excess(post, r=r, ci=ci, threshold=threshold)
    sr = t.attrs["size_range"]
    x = t["ratio"].to_numpy()
    fig = _panel_figure(fig, (11.0, 4.6))
    axes = fig.subplots(1, 2, sharex=True)
    k_lo, k_hi = sr.loc["lo", "median"], sr.loc["hi", "median"]
    for ax, key, ylabel in ((axes[0], "excess_compute", r"Excess compute $C / C_\mathrm{eff}$"),
                            (axes[1], "excess_steps", r"Excess steps $S / S_\mathrm{eff}$")):
        med, lo, hi = (np.where(np.isfinite(v), v, np.nan) for v in
                       (t[c].to_numpy(dtype=float) for c in (key, *band_names(key, ci))))
        ax.axvspan(k_lo, k_hi, color="#f0b429", alpha=0.18, linewidth=0,
                   label=f"≤{threshold:.0%} extra compute: {k_lo:.2f}×–{k_hi:.2f}× " + r"$N_\mathrm{eff}$")
        ax.fill_between(x, lo, hi, color=_BLUE, alpha=_BAND_ALPHA, linewidth=0, label=f"{ci:.0%} interval")
        ax.plot(x, med, color=_BLUE, linewidth=2, label="posterior median")
        ax.axhline(1.0, color="0.3", linewidth=0.9, linestyle="--")
        ax.axvline(1.0, color="0.3", linewidth=0.9, linestyle=":")
        ax.set_xscale("log")
        _ratio_axis(ax.xaxis)
        ax.set_xlabel(r"Model size relative to the efficient size, $N / N_\mathrm{eff}$")
        ax.set_ylabel(ylabel)
        _style(ax)
    ax0, ax1 = axes
    ax0.axhline(1 + threshold, color="#b7791f", linewidth=0.9, linestyle="-.")
    r_lo, r_hi = band_names("", ci)
    ax0.errorbar(sr["median"], np.full(2, 1 + threshold), xerr=[sr["median"] - sr[r_lo], sr[r_hi] - sr["median"]],
                 fmt="o", color="#b7791f", markersize=4, capsize=3, zorder=5)
    s_lo, s_hi = band_names("excess_steps", ci)
    finite = t[band_names("excess_compute", ci)[1]].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    ax0.set_ylim(0.95, min(3.0, max(1.6, finite.max() if finite.size else 1.6)))
    sentence = sr.attrs["sentence"]
    ax0.text(0.5, 0.62, sentence[0].upper() + sentence[1:].replace(" the compute-efficient", "\nthe compute-efficient")
             .replace(" cost at most", "\ncost at most"),
             transform=ax0.transAxes, ha="center", va="center", fontsize=8,
             bbox=dict(boxstyle="round,pad=0.3", facecolor="white", edgecolor="0.8"))
    ax0.legend(loc="center", bbox_to_anchor=(0.5, 0.3), fontsize=8, frameon=False)
    ax1.set_yscale("log")
    fin = t["excess_steps"].to_numpy(dtype=float)
    fin = fin[np.isfinite(fin)]
    ax1.set_ylim(0.8 * float(t[s_lo].min()), min(20.0, 1.25 * float(fin.max())) if fin.size else 20.0)
    _ratio_axis(ax1.yaxis)
    i_half = int(np.argmin(np.abs(np.log(x) - np.log(0.5))))
    i_two = int(np.argmin(np.abs(np.log(x) - np.log(2.0))))
    ax1.text(0.03, 0.03, f"Smaller models need more steps:\nat {x[i_half]:.2g}× the efficient size, "
                         f"{t['excess_steps'].iloc[i_half]:.2g}× the steps "
                         f"[{t[s_lo].iloc[i_half]:.2g}, {t[s_hi].iloc[i_half]:.2g}];\n"
                         f"at {x[i_two]:.2g}×, {t['excess_steps'].iloc[i_two]:.2g}× "
                         f"[{t[s_lo].iloc[i_two]:.2g}, {t[s_hi].iloc[i_two]:.2g}]",
             transform=ax1.transAxes, ha="left", va="bottom", fontsize=8,
             bbox=dict(boxstyle="round,pad=0.3", facecolor="white", edgecolor="0.8"))
    fig.suptitle("Cost of a non-efficient model size (critical batch; independent of the budget)", fontsize=11)
    return _root_figure(fig)


# ---------------------------------------------------------------------------
# (d) Approach 1 from curves
# ---------------------------------------------------------------------------


def approach1_envelope(curves, result, *, ci: float | None = None, compute_unit: str = "flops",
                       fig=None) -> Figure:
    """Chinchilla's Approach 1 from curves: the envelope and the ``N_opt(C)`` power law.

    Left: every curve in ``(C, loss)``, coloured by its size on a
    logarithmic colour bar, the lower envelope (:func:`bayesscale.envelope`)
    on top, and the mid-points of its segments that were fitted.  Right: the
    envelope's winning sizes against ``C``, the fitted points, and ``N_opt =
    k C^a`` with its band (:class:`bayesscale.Approach1Result`), the
    exponent annotated with its interval.

    Parameters
    ----------
    curves : Curves, DataFrame or path
        The curves the result was computed from.
    result : Approach1Result
        From :func:`bayesscale.approach1`.
    ci : float, optional
        Band mass; default the result's.
    compute_unit : {"flops", "pfdays"}
        Unit of the compute axes.
    fig : Figure or SubFigure, optional
        Where to draw the two panels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..curves import Approach1Result, Curves, load_curves

    if not isinstance(result, Approach1Result):
        raise ValueError(f"result must be an Approach1Result from bayesscale.approach1, got {type(result).__name__}")
    ci = result.ci if ci is None else _check_ci(ci)
    scale, unit = _unit(compute_unit)
    c = curves if isinstance(curves, Curves) else load_curves(curves)
    C = c.compute(result.convention)
    Np = c.params(result.convention)
    env, pts = result.envelope, result.points
    fig = _panel_figure(fig, (11.5, 4.6))
    axes = fig.subplots(1, 2)
    ax = axes[0]
    sizes = np.array([Np[c.run_index == r][0] for r in range(c.n_runs)])
    cmap, norm = _log_colorbar(fig, ax, sizes, f"Parameters $N$ ({result.convention} count)")
    for r in range(c.n_runs):
        sel = c.run_index == r
        ax.plot(C[sel] / scale, c.loss[sel], color=cmap(norm(sizes[r])), linewidth=1.1, alpha=0.85)
    ax.plot(env["C"] / scale, env["loss"], color=_ENV, linewidth=2.4, label="lower envelope", zorder=4)
    used = pts[pts["used"]]
    ax.scatter(used["C"] / scale, used["loss"], s=36, color="#c0392b", edgecolor="white", linewidth=0.8, zorder=5,
               label="segment mid-points fitted")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"Training compute $C$ ({unit})")
    ax.set_ylabel("Loss")
    _plain_log_ticks(ax.yaxis)
    ax.set_title("All curves and their lower envelope")
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    _style(ax)

    ax = axes[1]
    grid = np.geomspace(env["C"].min() / 3, env["C"].max() * 3, 60)
    d = result.predict(grid)["N_opt"]
    _band(ax, grid / scale, d, ci, _BLUE, label=r"$N_\mathrm{opt} = k\,C^a$, median")
    ax.step(env["C"] / scale, env["N_opt"], where="mid", color="0.55", linewidth=1.0, label="envelope winner's $N$")
    ax.scatter(used["C"] / scale, used["N_opt"], s=36, color="#c0392b", edgecolor="white", linewidth=0.8, zorder=5,
               label="fitted points")
    unused = pts[~pts["used"]]
    if len(unused):
        ax.scatter(unused["C"] / scale, unused["N_opt"], s=30, facecolor="none", edgecolor="#c0392b", linewidth=1.0,
                   zorder=5, label="left out (censored)")
    qa = np.quantile(result.draws["a"], [0.5, (1 - ci) / 2, (1 + ci) / 2])
    ax.text(0.03, 0.97, rf"$N_\mathrm{{opt}} \propto C^{{{qa[0]:.3f}}}$ [{qa[1]:.3f}, {qa[2]:.3f}]"
                        f"\n({ci:.0%} interval, {len(used)} segments)", transform=ax.transAxes, va="top",
            ha="left", fontsize=9, bbox=dict(boxstyle="round,pad=0.3", facecolor="white", edgecolor="0.8"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"Training compute $C$ ({unit})")
    ax.set_ylabel(r"Compute-optimal parameters $N_\mathrm{opt}$")
    ax.set_title("Approach 1: N_opt from the envelope")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    _style(ax)
    return _root_figure(fig)
