"""How the runs sit around the fitted law: predicted against observed, and residuals.

==============================  ====================================================
:func:`predicted_vs_observed`   observed loss against the posterior predictive
:func:`residuals`               log-loss residuals against C, N or D
==============================  ====================================================
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from .._validate import check_ci as _check_ci
from ..intervals import quantiles
from ._common import (_BAND_ALPHA, _budget_cmap, _check_posterior, _replicated_log_loss, _single_axes, _style,
                      _thin_params, _unit)

__all__ = ["predicted_vs_observed", "residuals"]


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
    med, lo, hi = quantiles(pred, ci)
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
    from ..inference import covariate_arrays

    mu = post.law.evaluate({k: v[:, None] for k, v in p.items()},
                           {k: v[None, :] for k, v in covariate_arrays(runs, post.law.covariates).items()})
    centre = np.median(mu, axis=0)
    y = np.log(runs.loss)
    y_rep = _replicated_log_loss(post)
    res, rep = y - centre, y_rep - centre
    if kind == "standardized":
        sd = y_rep.std(axis=0, ddof=1)
        res, rep = res / sd, rep / sd
    _, lo_i, hi_i = quantiles(rep, ci)
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
        _, l_, h_ = quantiles(pooled, ci)
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
