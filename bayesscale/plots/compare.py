"""Comparing groups of a grouped fit: the compute multiplier of one group over another."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .._validate import check_ci as _check_ci
from ..intervals import band_names
from ._common import _ratio_axis, _single_axes, _style, _unit

__all__ = ["compute_multiplier"]




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
