"""The report's figures, drawn to PNG bytes in memory.

Figure functions are looked up on :mod:`bayesscale.plots` by name at call
time, so the report follows them wherever they are defined (and a test can
replace one to make it fail).
"""

from __future__ import annotations

import io

import numpy as np

from .. import plots as _plots

__all__ = ["FIGURE_DPI", "FIG_DIR", "NAMES", "draw", "paths"]

#: Resolution of the figures (a 7-inch figure is 840 pixels wide).
FIGURE_DPI = 120

#: The folder of the report directory that holds the figures.
FIG_DIR = "figures"


#: The figures of every report, in order; a report with a backtest adds ``backtest_coverage``.
NAMES = ("isoflop_profiles", "isoloss_contours", "optimal_frontier", "excess_compute", "ppc", "predicted_vs_observed")


def draw(posterior, budgets, ci: float, backtest=None) -> dict[str, bytes]:
    """Draw every figure of the report and return its PNG bytes, by name (in the report's order)."""
    # optimal_frontier stacks the labels inside the panel, the largest budget on top; short labels keep
    # the boxes small (the caption and the tables give the compute)
    order = np.argsort(np.asarray(budgets), kind="stable")
    named = {f"Budget {int(i) + 1}": float(budgets[i]) for i in order}
    makers = {
        "isoflop_profiles": lambda: _plots.isoflop_profiles(posterior, ci=ci),
        "isoloss_contours": lambda: _plots.isoloss_contours(posterior, ci=ci),
        "optimal_frontier": lambda: _plots.optimal_frontier(posterior, named=named, ci=ci),
        "excess_compute": lambda: _plots.excess_compute(posterior, float(budgets[0]), ci=ci),
        "ppc": lambda: _plots.ppc(posterior, ci=ci),
        "predicted_vs_observed": lambda: _plots.predicted_vs_observed(posterior, ci=ci),
    }
    if backtest is not None:
        makers["backtest_coverage"] = lambda: _plots.backtest_coverage(backtest)
    out = {}
    for name in paths(backtest):
        fig = makers[name]()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=FIGURE_DPI, facecolor="white")
        out[name] = buf.getvalue()
    return out


def paths(backtest=None) -> dict[str, str]:
    """Where each figure :func:`draw` draws lies in the report directory, relative to it, in order:
    ``{"isoflop_profiles": "figures/isoflop_profiles.png", ...}``."""
    names = NAMES + (("backtest_coverage",) if backtest is not None else ())
    return {name: f"{FIG_DIR}/{name}.png" for name in names}
