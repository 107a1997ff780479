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
                            (ECDF, KDE, PIT or LOO-PIT; drawn by ArviZ)
:func:`rank_plot`           rank plots of the law's parameters, per chain (drawn by ArviZ)
:func:`backtest_coverage`   nominal against empirical interval coverage of a backtest
:func:`sbc_ranks`           ranks of the true parameters in a simulation-based calibration
:func:`compute_multiplier`  the compute multiplier of one group over another against C
                            (grouped fits)
==========================  ====================================================

and :func:`save_figure` writes a figure to disk atomically.  Kaplan's
steps-and-batch figures and Approach 1 from curves
(:func:`compute_efficient_frontier`, :func:`loss_vs_size`,
:func:`excess_compute_steps`, :func:`approach1_envelope`) are here too
(:mod:`bayesscale.plots.steps`).

Modules
-------
The functions live in modules named for what they draw, and are all
importable from ``bayesscale.plots``:

* :mod:`bayesscale.plots.scaling`: IsoFLOP profiles, optimal frontier, IsoLoss
  contours, excess compute;
* :mod:`bayesscale.plots.observed`: the runs against the fit (predicted against
  observed, residuals);
* :mod:`bayesscale.plots.diagnostics`: posterior predictive checks and rank
  plots, drawn with ``arviz_plots`` from the posterior's ``DataTree``;
* :mod:`bayesscale.plots.calibration`: backtest coverage, simulation-based
  calibration ranks;
* :mod:`bayesscale.plots.compare`: the compute multiplier of a grouped fit;
* :mod:`bayesscale.plots.steps`: Kaplan's steps-and-batch figures, Approach 1
  (also importable as ``bayesscale.plots_steps``);
* ``bayesscale.plots._common``: units, thinning, layout, style, the budget
  colour map, axis formatting, and :func:`save_figure`.

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

from ._common import MAX_DRAWS, PF_DAY_FLOPS, save_figure
from .calibration import backtest_coverage, sbc_ranks
from .compare import compute_multiplier
from .diagnostics import ppc, rank_plot
from .observed import predicted_vs_observed, residuals
from .scaling import excess_compute, isoflop_profiles, isoloss_contours, optimal_frontier
from .steps import approach1_envelope, compute_efficient_frontier, excess_compute_steps, loss_vs_size

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
    "compute_efficient_frontier",
    "loss_vs_size",
    "excess_compute_steps",
    "approach1_envelope",
]

# the public home of every function is this package, whichever module draws it (reprs, docs, pickling
# by reference and introspection over ``bayesscale.plots`` see ``bayesscale.plots.<name>``)
for _name in __all__:
    if callable(globals()[_name]):
        globals()[_name].__module__ = __name__
del _name
