"""Interval levels: the one default, its validation, column names and the quantile helper.

Every public function that takes an interval level ``ci`` defaults to
``ci=None``, which means :data:`DEFAULT_CI`; pass a probability in (0, 1)
for another level.

Column names carry the level as a percentage (``f"{100 * ci:g}"``):

* a quantity ``x`` with its median in column ``x`` has its equal-tailed
  interval in ``x_lo80`` and ``x_hi80`` at ``ci=0.8`` (``x_lo95``,
  ``x_hi95`` at ``ci=0.95``; ``x_lo97.5`` at ``ci=0.975``);
* tables indexed by parameter (``Posterior.summary``,
  ``frontier_exponents``) have columns ``median, lo80, hi80``.

:func:`band_names` builds the names, so code reading a table never spells
the level by hand.  Intervals are equal-tailed: the bounds are the
``(1 - ci) / 2`` and ``(1 + ci) / 2`` quantiles over posterior draws.
"""

from __future__ import annotations

import warnings

__all__ = ["DEFAULT_CI", "band_names", "level_tag", "quantiles", "resolve_ci"]

#: Default probability mass of every interval (summaries, predictions, allocations, frontier
#: exponents, figures, reports, the command line).  80%: the report's decision bands are 80%
#: intervals, it is one of the levels the calibration tables check (50/80/90), and with a few
#: thousand draws its 10% and 90% quantiles are far steadier than the tails of a 95% interval.
DEFAULT_CI = 0.8


def resolve_ci(ci=None, name: str = "ci") -> float:
    """The interval level as a float in (0, 1): ``None`` gives :data:`DEFAULT_CI`.

    Parameters
    ----------
    ci : float or None
        Probability mass of an equal-tailed interval.
    name : str
        Name of the argument, for the error message.

    Raises
    ------
    ValueError
        When ``ci`` is not a number strictly between 0 and 1.
    """
    if ci is None:
        return DEFAULT_CI
    if isinstance(ci, (str, bytes, bool)):
        raise ValueError(f"{name} must be a probability in (0, 1), got {ci!r} (e.g. {name}=0.8 for an 80% interval)")
    try:
        c = float(ci)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a probability in (0, 1), got {ci!r} "
                         f"(e.g. {name}=0.8 for an 80% interval)") from None
    if not 0 < c < 1:  # also refuses NaN
        raise ValueError(f"{name} must be a probability in (0, 1), got {ci!r} (e.g. {name}=0.8 for an 80% interval; "
                         "a percentage like 80 is not accepted)")
    return c


def level_tag(ci) -> str:
    """The level as it appears in column names: 0.8 -> ``"80"``, 0.975 -> ``"97.5"``."""
    return f"{round(100 * resolve_ci(ci), 4):g}"


def band_names(name: str, ci) -> tuple[str, str]:
    """Names of the lower and upper interval columns of ``name`` at level ``ci``.

    ``band_names("loss", 0.8) == ("loss_lo80", "loss_hi80")``;
    ``band_names("", 0.9) == ("lo90", "hi90")`` (tables indexed by parameter).
    """
    tag = level_tag(ci)
    if not name:
        return f"lo{tag}", f"hi{tag}"
    return f"{name}_lo{tag}", f"{name}_hi{tag}"


def quantiles(x, ci, axis: int = 0):
    """Median and equal-tailed ``ci`` bounds of ``x`` along ``axis``: ``(median, lo, hi)``.

    The one quantile helper of the package: tables, figures, allocations,
    group comparisons and summaries all call it, so a figure's median is the
    table's median for the same draws.  Linear interpolation between order
    statistics (NumPy's default), with two extensions:

    * NaN draws are ignored (a slice of NaN only stays NaN);
    * infinite draws (``+inf`` for "never reached", say) take part in the
      ranking, and a quantile whose interpolation touches one is that
      infinity (NumPy would give NaN where the weight is 0).
    """
    import numpy as np  # here, not at the top: the command line reads DEFAULT_CI without NumPy

    c = resolve_ci(ci)
    x = np.asarray(x, dtype=np.float64)
    q = [0.5, (1 - c) / 2, (1 + c) / 2]
    if np.isinf(x).any():
        med, lo, hi = _quantiles_inf(np.moveaxis(x, axis, 0), q)
    elif np.isnan(x).any():
        with warnings.catch_warnings():  # an all-NaN slice gives NaN, which is the answer
            warnings.filterwarnings("ignore", message="All-NaN slice", category=RuntimeWarning)
            med, lo, hi = np.nanquantile(x, q, axis=axis)
    else:
        med, lo, hi = np.quantile(x, q, axis=axis)
    return med, lo, hi


def _quantiles_inf(x, q):
    """Linear-interpolation quantiles over axis 0 of ``x`` with infinite (and NaN) values, ``(len(q), ...)``."""
    import numpy as np

    s = np.sort(x, axis=0)  # NaN sorts last
    n = (~np.isnan(x)).sum(axis=0)
    out = []
    for p in q:
        h = (np.maximum(n, 1) - 1) * p
        j = np.floor(h).astype(np.int64)
        g = h - j
        v0 = np.take_along_axis(s, j[None, ...], axis=0)[0]
        v1 = np.take_along_axis(s, np.minimum(j + 1, np.maximum(n - 1, 0))[None, ...], axis=0)[0]
        with np.errstate(invalid="ignore"):
            v = np.where((g == 0) | (v0 == v1), v0, v0 + (v1 - v0) * g)
        v = np.where(np.isposinf(v1) & (g > 0), np.inf, v)
        v = np.where(np.isneginf(v0) & (g > 0), -np.inf, v)
        out.append(np.where(n == 0, np.nan, v))
    return out
