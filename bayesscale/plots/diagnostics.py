"""Generic Bayesian diagnostics, drawn by ArviZ (``arviz_plots``) from the posterior's ``DataTree``.

==========================  ====================================================
:func:`ppc`                 posterior predictive check of the log loss: ECDF or KDE of
                            replicated data sets (``arviz_plots.plot_ppc_dist``), the
                            PIT Delta-ECDF (``plot_ppc_pit``) or the LOO-PIT Delta-ECDF
                            (``plot_loo_pit``)
:func:`rank_plot`           rank Delta-ECDF plots of the law's parameters, per chain
                            (``arviz_plots.plot_rank``)
==========================  ====================================================

ArviZ draws these with its matplotlib backend into axes made here without
pyplot (:func:`_collection`), so they follow the package's conventions:
``ax=`` / ``fig=`` draw into your layout, a :class:`~matplotlib.figure.Figure`
is returned, nothing is registered with pyplot and ``rcParams`` are left alone.
What ArviZ does not draw is added on the same axes and said so in each
docstring: the pointwise band of the replicates' ECDF, the posterior
predictive p-values and R-hat in the rank plots' titles.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .._validate import check_ci as _check_ci
from ..intervals import quantiles
from ..posterior import posterior_predictive, to_arviz
from ._common import _TEX, _check_posterior, _panel_figure, _replicated_log_loss, _root_figure, _single_axes, _style
from ._common import _thin_index

__all__ = ["ppc", "rank_plot"]

_REP_COLOR = "#6fa8dc"
_OBS_COLOR = "black"

#: ``ppc`` kinds and what draws them.
_PPC_KINDS = ("ecdf", "kde", "pit", "loo_pit")


def _collection(data: xr.Dataset, targets: Mapping[str, Axes], fig, *, aes: Mapping | None = None):
    """An ``arviz_plots.PlotCollection`` that draws each variable of ``data`` into the given axes.

    ``PlotCollection.wrap`` makes its figure with ``pyplot.subplots``
    (registered with pyplot, always a new figure); this builds the same
    ``viz`` tree (``figure``, and per variable ``plot``, ``row_index``,
    ``col_index``) around axes made here, so ArviZ's plotting functions
    draw into a figure of ours, a ``SubFigure`` or a caller's axes.
    ``data`` is what the aesthetics (``aes``, e.g. ``{"color": ["chain"]}``)
    are generated from, as ``wrap`` would.
    """
    from arviz_plots import PlotCollection

    names = list(targets)
    children = {
        "plot": xr.Dataset({v: xr.DataArray(np.array(targets[v], dtype=object)) for v in names}),
        "row_index": xr.Dataset({v: xr.DataArray(0) for v in names}),
        "col_index": xr.Dataset({v: xr.DataArray(i) for i, v in enumerate(names)}),
    }
    viz = xr.DataTree(xr.Dataset({"figure": xr.DataArray(np.array(_root_figure(fig), dtype=object))}),
                      children={k: xr.DataTree(ds) for k, ds in children.items()})
    return PlotCollection(data, viz, backend="matplotlib", aes=dict(aes or {}))


# ---------------------------------------------------------------------------
# posterior predictive check
# ---------------------------------------------------------------------------


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


def _replicates_tree(post, n_replicates: int):
    """A ``DataTree`` with ``n_replicates`` evenly spaced replicated data sets and the observed log loss.

    ``plot_ppc_dist`` draws a random subset of the replicates; handing it
    exactly the ones to draw keeps the figure the same from call to call and
    the subset spread over all chains.
    """
    tree = post.tree
    y_rep = posterior_predictive(post)
    y_rep = y_rep.reshape(-1, y_rep.shape[-1])
    reps = y_rep[_thin_index(y_rep.shape[0], max(int(n_replicates), 1))]
    run = tree["observed_data"]["run"].values
    pp = xr.Dataset({"y": (("chain", "draw", "run"), reps[None])},
                    coords={"chain": [0], "draw": np.arange(reps.shape[0]), "run": run})
    obs = tree["observed_data"].to_dataset()[["y"]]
    return xr.DataTree.from_dict({"posterior_predictive": pp, "observed_data": obs}), pp


def ppc(post, *, ax=None, kind: str = "ecdf", n_replicates: int = 60, ci: float | None = None) -> Figure:
    """Posterior predictive check: observed log loss against replicated data sets.

    ``kind="ecdf"`` (default) or ``"kde"``: ArviZ
    (``arviz_plots.plot_ppc_dist``) draws the distribution of the observed
    log loss over all runs (black) and of ``n_replicates`` replicated data
    sets from the tree's ``posterior_predictive`` group (thin blue lines,
    evenly spaced over all chains).  For ``"ecdf"`` the pointwise ``ci``
    band of the replicates' ECDF (over up to :data:`MAX_DRAWS` draws) is
    shaded beneath them.

    ``kind="pit"`` is the sharper check for a regression: ArviZ
    (``plot_ppc_pit``) draws the ECDF of the probability integral transform
    ``P(y_rep_i <= y_i)`` of every run minus the uniform CDF, which a
    calibrated model keeps near zero (a U shape means the predictive
    intervals are too narrow, a hump too wide, a tilt a bias).  ArviZ tests
    the uniformity with its recommended dependence-aware test (``pot_c``, at
    its default level ``alpha = 0.01``): the p-value is printed in the
    panel and the points that make the curve suspicious are marked.  These
    PIT values are in-sample (each run also informed the fit); ``"loo_pit"``
    is the same display for leave-one-out PIT values (``plot_loo_pit``,
    Pareto-smoothed importance sampling over the ``log_likelihood`` group),
    which do not reuse the run they check.

    For ``"ecdf"`` and ``"kde"`` the legend gives posterior predictive
    p-values ``P(T(y_rep) >= T(y))`` for the mean and the standard
    deviation: values near 0 or 1 flag a misfit.

    Parameters
    ----------
    post : Posterior
        A fitted posterior.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is made when omitted.
    kind : {"ecdf", "kde", "pit", "loo_pit"}
        Distribution display.
    n_replicates : int
        Replicated data sets drawn as lines (``"ecdf"`` and ``"kde"``).
    ci : float, optional
        Probability mass of the pointwise band of ``"ecdf"``, in (0, 1).
        Default :data:`bayesscale.DEFAULT_CI`.  The PIT kinds use ArviZ's
        test level instead.

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
    if kind not in _PPC_KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, _PPC_KINDS))}, got {kind!r}")
    # the figure ArviZ drew into: the one made here, or the root figure of the caller's axes
    return _ppc_collection(post, ax=ax, kind=kind, n_replicates=n_replicates, ci=ci).viz["figure"].item()


def _ppc_collection(post, *, ax, kind: str, n_replicates: int, ci: float):
    """Draw :func:`ppc` (arguments checked) and return ArviZ's ``PlotCollection``."""
    import arviz_plots as azp

    tree = to_arviz(post) if kind in ("pit", "loo_pit") else post.tree  # pointwise groups only where drawn
    y = np.asarray(tree["observed_data"]["y"].values, dtype=float)
    n = y.size
    fig, ax = _single_axes(ax, (6.5, 4.4))
    ax_visuals = {"title": False, "remove_axis": False}

    if kind in ("pit", "loo_pit"):
        pp = tree["posterior_predictive"].to_dataset()[["y"]]
        pc = _collection(pp, {"y": ax}, fig)
        label = "PIT" if kind == "pit" else "LOO-PIT"
        visuals = {**ax_visuals, "ecdf_lines": {"color": _OBS_COLOR, "width": 1.6},
                   "xlabel": {"text": rf"{label}, $P(y_\mathrm{{rep}} \leq y)$ per run"},
                   "ylabel": {"text": f"ECDF of {label} minus uniform"}}
        plot = azp.plot_ppc_pit if kind == "pit" else azp.plot_loo_pit
        pc = plot(tree, var_names=["y"], method="pot_c", plot_collection=pc, visuals=visuals)
        ax.set_title("Posterior predictive check" + (" (leave-one-out)" if kind == "loo_pit" else ""))
        ax.legend(handles=[Line2D([], [], color=_OBS_COLOR, linewidth=1.6, label=f"{label} of the {n} runs")],
                  loc="lower right", fontsize=8, frameon=False)
        _style(ax)
        return pc

    y_rep = _replicated_log_loss(post)
    small, pp = _replicates_tree(post, n_replicates)
    n_rep = pp.sizes["draw"]
    pc = _collection(pp.stack(sample=("chain", "draw")), {"y": ax}, fig, aes={"overlay_ppc": ["sample"]})
    width = {"width": 0.6} if kind == "ecdf" else {"width": 0.8}
    pc = azp.plot_ppc_dist(small, var_names=["y"], kind=kind, num_samples=n_rep, plot_collection=pc,
                           visuals={**ax_visuals, "predictive_dist": {"color": _REP_COLOR, "alpha": 0.3, **width},
                                    "observed_dist": {"color": _OBS_COLOR, "width": 1.6}})
    handles = [Line2D([], [], color=_OBS_COLOR, linewidth=1.6, label="observed $y$"),
               Line2D([], [], color=_REP_COLOR, linewidth=0.8, label=f"{n_rep} replicated data sets")]
    if kind == "ecdf":
        lo_x = min(y.min(), np.quantile(y_rep.min(axis=1), 0.05))
        hi_x = max(y.max(), np.quantile(y_rep.max(axis=1), 0.95))
        grid = np.linspace(lo_x - 0.03 * (hi_x - lo_x), hi_x + 0.03 * (hi_x - lo_x), 300)
        _, flo, fhi = quantiles(_ecdf_rows(y_rep, grid), ci)
        ax.fill_between(grid, flo, fhi, step="post", color=_REP_COLOR, alpha=0.3, linewidth=0, zorder=1)
        handles.insert(1, Patch(color=_REP_COLOR, alpha=0.3, linewidth=0, label=rf"$y_\mathrm{{rep}}$ {ci:.0%} band"))
        ax.set_xlim(grid[0], grid[-1])
        ax.set_ylim(0, 1.01)
        ax.set_ylabel("ECDF")
    else:
        ax.set_ylim(bottom=0)
        ax.set_ylabel("Density")
    p_mean = float(np.mean(y_rep.mean(axis=1) >= y.mean()))
    p_sd = float(np.mean(y_rep.std(axis=1) >= y.std()))
    handles.append(Line2D([], [], linestyle="none", label=f"p-value: mean {p_mean:.2f}, sd {p_sd:.2f}"))
    ax.set_xlabel("Log loss $y$")
    ax.set_title("Posterior predictive check")
    ax.legend(handles=handles, loc="upper right" if kind == "kde" else "upper left", fontsize=8, frameon=False)
    _style(ax)
    return pc


# ---------------------------------------------------------------------------
# rank plots
# ---------------------------------------------------------------------------


def rank_plot(post, *, fig=None, var_names=None) -> Figure:
    """Rank plots of the law's parameters for convergence diagnosis, drawn by ArviZ.

    ``arviz_plots.plot_rank``: for each parameter the draws of all chains
    are pooled and ranked, and each chain's fractional ranks are shown as a
    Delta-ECDF (its ECDF minus the uniform CDF), one line per chain.  With
    converged, well-mixed chains every line stays near zero; a chain stuck
    high or low bends away.  ArviZ's multi-chain uniformity test (``mtc_c``,
    level ``alpha = 0.01``) gives the p-value printed in each panel and
    marks the ranks that make it suspicious.  Panel titles carry the
    rank-normalised split R-hat.

    Parameters
    ----------
    post : Posterior
        A fitted posterior.
    fig : matplotlib.figure.Figure or SubFigure, optional
        Figure to draw the panels into; a new one is made when omitted.
    var_names : sequence of str, optional
        Parameters to show, from the tree's ``posterior`` group; default the
        law's parameters.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per parameter.

    Raises
    ------
    ValueError
        On an unknown parameter name.
    """
    _check_posterior(post)
    posterior = post.tree["posterior"]
    names = list(post.law.params if var_names is None else var_names)
    unknown = [v for v in names if v not in posterior.data_vars]
    if unknown or not names:
        raise ValueError(f"unknown parameters {unknown}; choose from {sorted(posterior.data_vars)}")
    return _rank_collection(post, fig=fig, names=names).viz["figure"].item()


def _rank_collection(post, *, fig, names: list):
    """Draw :func:`rank_plot` (arguments checked) and return ArviZ's ``PlotCollection``."""
    import arviz_plots as azp

    try:
        rhat = post.summary()["r_hat"]
    except Exception:  # noqa: BLE001 - the plot is still useful without R-hat
        rhat = {}
    fig = _panel_figure(fig, (2.6 * len(names) + 0.6, 3.0))
    axes = np.atleast_1d(fig.subplots(1, len(names), sharex=True))
    data = post.tree["posterior"].to_dataset()[names]
    pc = _collection(data, dict(zip(names, axes)), fig, aes={"color": ["chain"], "overlay": ["chain"]})
    pc = azp.plot_rank(post.tree, var_names=names, method="mtc_c", plot_collection=pc,
                       visuals={"title": False, "xlabel": {"text": "Fractional rank of pooled draws"}})
    for ax, name in zip(axes, names):
        title = _TEX.get(name, name)
        if name in getattr(rhat, "index", ()):
            title += rf"   $\hat R$ = {float(rhat[name]):.3f}"
        ax.set_title(title, fontsize=10)
        ax.axhline(0.0, color="0.6", linewidth=0.8, linestyle="--", zorder=1)
        ax.spines[["top", "right"]].set_visible(False)
    lines = pc.viz["ecdf_lines"][names[-1]]  # ArviZ's line of each chain, in the chains' colours
    chains = lines["chain"].values
    handles = [lines.sel(chain=c).item() for c in chains]
    axes[-1].legend(handles, [f"chain {c}" for c in chains], fontsize=7, frameon=False,
                    loc="lower center", ncols=min(len(handles), 4), handlelength=1.2, columnspacing=0.8)
    return pc
