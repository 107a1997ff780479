"""Derived quantities with bands for a ``kaplan_steps`` posterior (Kaplan et al. 2020, Secs. 5-6, App. B).

The functions here read a :class:`bayesscale.Posterior` fitted with
``bs.fit(curves, law="kaplan_steps")``, evaluate the pure functions of
:mod:`bayesscale.kaplan` for every posterior draw of the law's parameters
(``post.law_params``), and summarise each quantity by its posterior median
and an equal-tailed interval:

============================  ===============================================================
:func:`frontier_exponents`    exponents of ``N``, ``B`` and ``S_min`` against ``C_min`` (eq. 1.7),
                              ``alpha_C_min`` (eq. 1.8), and of ``N`` against ``C`` at a fixed batch
:func:`critical_batch`        ``B_crit(L) = B_* / L^(1 / alpha_B)`` at given losses (eq. 1.4)
:func:`efficient_size`        compute-efficient ``N``, ``B``, ``S``, tokens and loss at a budget
:func:`excess`                excess compute ``C / C_eff`` and excess steps ``S / S_eff`` against
                              ``N / N_eff`` (App. B.4, Fig. 12)
:func:`size_range`            the sizes ``N / N_eff`` that cost at most 20% (any share) more compute
============================  ===============================================================

:func:`bayesscale.frontier_exponents` calls :func:`frontier_exponents`
for a ``kaplan_steps`` posterior.

Parameter conventions.  The law's ``N`` (and ``N_c``) is the parameter count
the curves were fitted with: :meth:`bayesscale.Curves.to_runs` uses
non-embedding parameters (``convention="kaplan"``, as Kaplan et al. count,
with ``C = 6 N B S``) when the curves have an ``N_nonembed`` column, else all
parameters (``"total"``), and records the choice in ``post.runs.source``.
Every function takes ``convention=``: ``None`` uses the fitted one; an explicit
value must match it (a law fitted in one count cannot be read in the other
without a map from one count to the other, which depends on the vocabulary
and width of each model), so asking for the other is an error that says how
to refit.  Compute is always ``C = 6 N B S`` in the chosen count, in FLOPs,
with PF-days alongside (``1 PF-day = 8.64e19 FLOPs``).

Bands carry parameter uncertainty only: the curves of the law, not the
noise of a new run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import kaplan
from ._validate import check_ci as _check_ci
from .intervals import band_names
from .intervals import quantiles as _band
from ._validate import positive as _positive

__all__ = [
    "KAPLAN_FITTED_EXPONENTS",
    "MAX_DRAWS_FIXED_BATCH",
    "fitted_convention",
    "frontier_exponents",
    "critical_batch",
    "efficient_size",
    "excess",
    "size_range",
    "fixed_batch_exponent",
    "reference_batch",
]

#: Kaplan et al.'s separately fitted exponents (Sec. 6.1, Fig. 14; eq. 1.8 for alpha_C_min; the
#: fixed-batch N ∝ C^0.88 as issue 13 quotes Fig. 14), for comparison columns.
KAPLAN_FITTED_EXPONENTS = {"alpha_C_min": 0.050, "N_vs_C_min": 0.73, "B_vs_C_min": 0.24, "S_min_vs_C_min": 0.03,
                           "N_vs_C_fixed_batch": 0.88}

#: Posterior draws (evenly thinned) used for the fixed-batch optimum, which is solved on a grid
#: per draw and budget; enough for stable 80-95% intervals.
MAX_DRAWS_FIXED_BATCH = 1000

_DESCRIPTIONS = {
    "alpha_C_min": "L(C_min) = (C_c / C_min)^alpha_C_min, 1 / (1/alpha_S + 1/alpha_B + 1/alpha_N)",
    "N_vs_C_min": "N_eff ∝ C_min^x (alpha_C_min / alpha_N)",
    "B_vs_C_min": "B_crit ∝ C_min^x on the frontier (alpha_C_min / alpha_B)",
    "S_min_vs_C_min": "S_min ∝ C_min^x on the frontier (alpha_C_min / alpha_S)",
    "N_vs_C_fixed_batch": "loss-optimal N ∝ C^x at a fixed batch (least squares over the budgets)",
    "C_c_pf_days": "C_c in PF-days",
    "N_at_1_pf_day": "N_eff at C_min = 1 PF-day (prefactor of N ∝ C_min^x, C_min in PF-days)",
    "B_at_1_pf_day": "B_crit in tokens at C_min = 1 PF-day",
    "S_min_at_1_pf_day": "S_min at C_min = 1 PF-day (Kaplan: 5.4e3)",
}


def _check_post(post):
    if not (hasattr(post, "law_params") and hasattr(post, "runs") and hasattr(post, "law")):
        raise ValueError(f"expected a bayesscale Posterior (from bayesscale.fit), got {type(post).__name__}")
    if post.law.name != "kaplan_steps":
        raise ValueError(f"these quantities need a posterior of the 'kaplan_steps' law (fitted with "
                         f"bs.fit(curves, law='kaplan_steps')), got law {post.law.name!r}")
    return {k: np.asarray(v, dtype=float) for k, v in post.law_params.items()}


def fitted_convention(post) -> str | None:
    """The parameter count the posterior's ``N`` is in: ``"kaplan"``, ``"total"`` or None when unrecorded.

    Read from ``post.runs.source`` (``"... [N: kaplan]"``), which
    :meth:`bayesscale.Curves.to_runs` writes.
    """
    src = str(getattr(post.runs, "source", ""))
    for c in ("kaplan", "total"):
        if src.endswith(f"[N: {c}]"):
            return c
    return None


def _convention(post, convention) -> str:
    fitted = fitted_convention(post)
    if convention is None:
        return fitted or "total"
    kaplan._check_convention(convention)
    if fitted is not None and convention != fitted:
        names = {"kaplan": "non-embedding parameters (N_nonembed)", "total": "all parameters (N)"}
        raise ValueError(f"convention={convention!r} asks for N counted as {names[convention]}, but this posterior "
                         f"was fitted with N counted as {names[fitted]} ({post.runs.source!r}); its N_c and "
                         f"every N it implies are in that count. Pass convention={fitted!r} (or None), or refit "
                         f"with bs.fit(curves.to_runs({convention!r}), law='kaplan_steps').")
    return convention


def _thin(params: dict, max_draws: int) -> dict:
    S = next(iter(params.values())).size
    if S <= max_draws:
        return params
    idx = np.unique(np.linspace(0, S - 1, max_draws).round().astype(int))
    return {k: v[idx] for k, v in params.items()}


def reference_batch(post) -> float:
    """The batch size (tokens) of the fitted runs closest, in log, to their geometric mean.

    The default fixed batch for :func:`fixed_batch_exponent` and the
    fixed-batch panels: a batch that was actually trained with.
    """
    B = getattr(post.runs, "B", None)
    if B is None:
        raise ValueError("the posterior's runs carry no batch size; pass batch= (tokens)")
    B = np.unique(np.asarray(B, dtype=float))
    return float(B[np.argmin(np.abs(np.log(B) - np.log(B).mean()))])


def fixed_batch_exponent(post, *, batch=None, budgets=None, ci: float | None = None,
                         max_draws: int = MAX_DRAWS_FIXED_BATCH) -> dict:
    """Loss-optimal ``N`` against ``C`` at a fixed batch, and its power-law exponent, per draw.

    For each draw and budget, :func:`bayesscale.kaplan.fixed_batch_optimum`
    finds the ``N`` that minimises the loss after ``S = C / (6 N B)`` steps
    at batch ``B``; the exponent is the least-squares slope of ``log N_opt``
    on ``log C`` over the budgets (the relation is not an exact power law;
    the slope depends on ``B`` and on the range).  Kaplan et al. fit
    ``N ∝ C^0.88`` this way (Fig. 14).

    Parameters
    ----------
    post : Posterior
        A ``kaplan_steps`` posterior.
    batch : float, optional
        Batch size in tokens; default :func:`reference_batch`.
    budgets : array_like, optional
        Budgets in FLOPs; default 9 log-spaced over the fitted runs'
        compute range.
    ci : float, optional
        Interval mass.
        Default :data:`bayesscale.DEFAULT_CI`.
    max_draws : int
        Draws used (evenly thinned).

    Returns
    -------
    dict
        ``C`` (budgets), ``N_opt`` ``(S, n)`` (NaN where the optimum left
        the search grid), ``exponent`` ``(S,)``, ``batch``.
    """
    p = _thin(_check_post(post), max_draws)
    _check_ci(ci)
    B = reference_batch(post) if batch is None else float(_positive(batch, "batch")[0])
    if budgets is None:
        C = np.geomspace(np.min(post.runs.C), np.max(post.runs.C), 9)
    else:
        C = np.sort(_positive(budgets, "budgets"))
    lo_n = min(1e3, float(np.min(post.runs.N)) / 1e3)
    hi_n = max(1e15, float(np.max(post.runs.N)) * 1e4)
    grid = np.exp(np.linspace(np.log(lo_n), np.log(hi_n), 241))
    N_opt, _ = kaplan.fixed_batch_optimum(p, C, B, N_grid=grid)
    x = np.log(C)
    y = np.log(N_opt)
    ok = np.isfinite(y)
    xm = np.where(ok, x[None, :], np.nan)
    xbar = np.nanmean(xm, axis=1, keepdims=True)
    ybar = np.nanmean(np.where(ok, y, np.nan), axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (np.nansum((xm - xbar) * (np.where(ok, y, np.nan) - ybar), axis=1)
                 / np.nansum((xm - xbar) ** 2, axis=1))
    slope = np.where(ok.sum(axis=1) >= 2, slope, np.nan)
    return {"C": C, "N_opt": N_opt, "exponent": slope, "batch": B}


def frontier_exponents(post, *, ci: float | None = None, batch=None, budgets=None,
                       convention: str | None = None) -> pd.DataFrame:
    """Exponents of the compute-efficient frontier with posterior bands (Kaplan et al. eqs. 1.7, 1.8; Fig. 14).

    Parameters
    ----------
    post : Posterior
        Fitted with ``law="kaplan_steps"``.
    ci : float, optional
        Probability mass of the equal-tailed intervals.
        Default :data:`bayesscale.DEFAULT_CI`.
    batch : float, optional
        Batch size in tokens for the fixed-batch exponent; default
        :func:`reference_batch`.
    budgets : array_like, optional
        Budgets in FLOPs over which the fixed-batch exponent is fitted;
        default 9 log-spaced over the fitted runs' compute range.
    convention : {"kaplan", "total"}, optional
        The parameter count of ``N`` (see the module docstring); default
        the fitted one.

    Returns
    -------
    pandas.DataFrame
        Indexed by quantity: ``alpha_C_min``, ``N_vs_C_min``,
        ``B_vs_C_min``, ``S_min_vs_C_min`` (the three sum to 1),
        ``N_vs_C_fixed_batch``, ``C_c_pf_days``, and the prefactors
        ``N_at_1_pf_day``, ``B_at_1_pf_day``, ``S_min_at_1_pf_day``.
        Columns ``median, lo80, hi80, mean, sd`` (the interval columns
        carry the level ``ci``), ``kaplan_constants`` (the
        value Kaplan's published constants imply: 0.684, 0.248, 0.068 for
        the three exponents), ``kaplan_fitted`` (their separately fitted
        0.73, 0.24, 0.03 and 0.88) and ``description``.  ``attrs`` hold
        ``ci``, ``convention`` and ``batch``.
    """
    ci = _check_ci(ci)
    p = _check_post(post)
    conv = _convention(post, convention)
    fe = kaplan.frontier_exponents(p)
    at1 = kaplan.frontier(p, kaplan.pf_days_to_flops(1.0))
    fb = fixed_batch_exponent(post, batch=batch, budgets=budgets, ci=ci)
    draws = {"alpha_C_min": fe["alpha_C_min"], "N_vs_C_min": fe["N"], "B_vs_C_min": fe["B"],
             "S_min_vs_C_min": fe["S"], "N_vs_C_fixed_batch": fb["exponent"], "C_c_pf_days": fe["C_c_pf_days"],
             "N_at_1_pf_day": at1["N"], "B_at_1_pf_day": at1["B"], "S_min_at_1_pf_day": at1["S"]}
    truth = kaplan.frontier_exponents(kaplan.KAPLAN_STEPS)
    t1 = kaplan.frontier(kaplan.KAPLAN_STEPS, kaplan.pf_days_to_flops(1.0))
    implied = {"alpha_C_min": truth["alpha_C_min"], "N_vs_C_min": truth["N"], "B_vs_C_min": truth["B"],
               "S_min_vs_C_min": truth["S"], "C_c_pf_days": truth["C_c_pf_days"], "N_at_1_pf_day": t1["N"],
               "B_at_1_pf_day": t1["B"], "S_min_at_1_pf_day": t1["S"]}
    # the fixed-batch exponent of Kaplan's constants at the same batch and budgets
    fb_truth = kaplan.fixed_batch_optimum(kaplan.KAPLAN_STEPS, fb["C"], fb["batch"])[0][0]
    ok = np.isfinite(fb_truth)
    if ok.sum() >= 2:
        implied["N_vs_C_fixed_batch"] = np.polyfit(np.log(fb["C"][ok]), np.log(fb_truth[ok]), 1)[0]
    rows = {}
    lo_name, hi_name = band_names("", ci)
    for k, d in draws.items():
        d = np.asarray(d, dtype=float)
        med, lo, hi = _band(d, ci)
        rows[k] = {"median": med, lo_name: lo, hi_name: hi, "mean": np.nanmean(d), "sd": np.nanstd(d, ddof=1),
                   "kaplan_constants": float(implied.get(k, np.nan)),
                   "kaplan_fitted": KAPLAN_FITTED_EXPONENTS.get(k, np.nan), "description": _DESCRIPTIONS[k]}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "quantity"
    df.attrs.update(ci=ci, convention=conv, batch=fb["batch"], fixed_batch_budgets=fb["C"])
    return df


def critical_batch(post, loss, *, ci: float | None = None) -> pd.DataFrame:
    """The critical batch size ``B_crit(L) = B_* / L^(1 / alpha_B)`` (eq. 1.4) with bands.

    With one batch size per model (as in the OPT curves) the data say
    little about ``B_*`` and ``alpha_B``, and this band is mostly the prior's.

    Parameters
    ----------
    post : Posterior
        A ``kaplan_steps`` posterior.
    loss : array_like
        Losses in nats (the fitted metric).
    ci : float, optional
        Interval mass.
        Default :data:`bayesscale.DEFAULT_CI`.

    Returns
    -------
    pandas.DataFrame
        One row per loss: ``loss``, ``B_crit``, ``B_crit_lo80``,
        ``B_crit_hi80`` (tokens; the suffix is the level ``ci``).
    """
    ci = _check_ci(ci)
    p = _check_post(post)
    L = _positive(loss, "loss")
    b = kaplan.critical_batch({k: v[:, None] for k, v in p.items()}, L[None, :])
    med, lo, hi = _band(b, ci)
    b_lo, b_hi = band_names("B_crit", ci)
    df = pd.DataFrame({"loss": L, "B_crit": med, b_lo: lo, b_hi: hi})
    df.attrs["ci"] = ci
    return df


def _units(units) -> str:
    key = str(units).lower().replace("-", "_").replace(" ", "_")
    if key in ("flops", "flop"):
        return "flops"
    if key in ("pf_days", "pfdays", "pf_day", "pfday"):
        return "pf_days"
    raise ValueError(f"units must be 'flops' or 'pf_days' (1 PF-day = {kaplan.PF_DAY:.3g} FLOPs), got {units!r}")


def efficient_size(post, budget, *, units: str = "flops", ci: float | None = None,
                   convention: str | None = None) -> pd.DataFrame:
    """The compute-efficient allocation at a budget ``C_min`` (Kaplan et al. Sec. 6, App. B).

    At compute ``C_min`` spent at the critical batch, the loss is
    ``(C_c / C_min)^alpha_C_min``, the efficient model has ``N_eff`` with
    ``(N_c / N_eff)^alpha_N = L / (1 + alpha_N / alpha_S)``, trained for
    ``S_min`` steps at ``B = B_crit(L)`` (:func:`bayesscale.kaplan.frontier`);
    ``6 N B S = C_min``.

    Parameters
    ----------
    post : Posterior
        A ``kaplan_steps`` posterior.
    budget : array_like
        Budgets ``C_min``, in ``units``.
    units : {"flops", "pf_days"}
        Unit of ``budget``.
    ci : float, optional
        Interval mass.
        Default :data:`bayesscale.DEFAULT_CI`.
    convention : {"kaplan", "total"}, optional
        Parameter count of ``N`` (must match the fit; see the module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per budget: ``C_min`` (FLOPs), ``C_min_pf_days``, then
        ``N``, ``B`` (tokens), ``S`` (steps), ``E`` (tokens ``B S``) and
        ``loss``, each with ``_lo80`` and ``_hi80`` (the suffix is the level
        ``ci``).  ``attrs``: ``ci``,
        ``convention``, ``units``.
    """
    ci = _check_ci(ci)
    p = _check_post(post)
    conv = _convention(post, convention)
    u = _units(units)
    b = _positive(budget, "budget")
    C = kaplan.pf_days_to_flops(b) if u == "pf_days" else b
    f = kaplan.frontier({k: v[:, None] for k, v in p.items()}, C[None, :])
    cols = {"C_min": C, "C_min_pf_days": kaplan.flops_to_pf_days(C)}
    for key, name in (("N", "N"), ("B", "B"), ("S", "S"), ("E", "E"), ("L", "loss")):
        med, lo, hi = _band(f[key], ci)
        lo_name, hi_name = band_names(name, ci)
        cols.update({name: med, lo_name: lo, hi_name: hi})
    df = pd.DataFrame(cols)
    df.attrs.update(ci=ci, convention=conv, units=u)
    return df


def size_range(post, *, threshold: float = 0.2, ci: float | None = None) -> pd.DataFrame:
    """Sizes ``N / N_eff`` that cost at most ``threshold`` more compute, with bands.

    Solved per draw by :func:`bayesscale.kaplan.size_range_within`
    (Kaplan et al.: 0.6x to 2.2x the efficient size for 20%).

    Parameters
    ----------
    post : Posterior
        A ``kaplan_steps`` posterior.
    threshold : float
        Extra compute as a fraction (0.2: 20% more).
    ci : float, optional
        Interval mass.
        Default :data:`bayesscale.DEFAULT_CI`.

    Returns
    -------
    pandas.DataFrame
        Index ``lo, hi`` (the smallest and largest ``N / N_eff``), columns
        ``median, lo80, hi80`` (the interval of each end, at level ``ci``);
        ``attrs["sentence"]`` says it in words.
    """
    ci = _check_ci(ci)
    p = _check_post(post)
    if not np.isfinite(threshold) or threshold <= 0:
        raise ValueError(f"threshold must be a positive fraction of extra compute (0.2 for 20%), got {threshold!r}")
    lo, hi = kaplan.size_range_within(p, 1.0 + threshold)
    rows = {}
    c_lo, c_hi = band_names("", ci)
    for name, d in (("lo", lo), ("hi", hi)):
        m, a, b = _band(d, ci)
        rows[name] = {"median": m, c_lo: a, c_hi: b}
    df = pd.DataFrame.from_dict(rows, orient="index")
    r = df
    df.attrs.update(ci=ci, threshold=threshold, sentence=(
        f"models between {r.loc['lo', 'median']:.2f}x [{r.loc['lo', c_lo]:.2f}, {r.loc['lo', c_hi]:.2f}] and "
        f"{r.loc['hi', 'median']:.2f}x [{r.loc['hi', c_lo]:.2f}, {r.loc['hi', c_hi]:.2f}] the compute-efficient "
        f"size cost at most {threshold:.0%} more compute to reach its loss ({ci:.0%} intervals)"))
    return df


def excess(post, r=None, *, ci: float | None = None, threshold: float = 0.2) -> pd.DataFrame:
    """Excess compute ``C / C_eff`` and excess steps ``S / S_eff`` against ``r = N / N_eff`` (App. B.4, Fig. 12).

    Both at the critical batch (``C`` means ``C_min``, ``S`` means
    ``S_min``), to reach the loss that ``N_eff`` reaches most efficiently
    (:func:`bayesscale.kaplan.excess_compute`,
    :func:`bayesscale.kaplan.excess_steps`).  The relation does not depend
    on the budget.  Sizes too small ever to reach that loss have infinite
    excess (below ``(1 + alpha_N / alpha_S)^(-1 / alpha_N)``, about 0.29x
    with Kaplan's constants).

    Parameters
    ----------
    post : Posterior
        A ``kaplan_steps`` posterior.
    r : array_like, optional
        Sizes relative to the efficient size; default 97 log-spaced from
        0.3 to 10.
    ci : float, optional
        Interval mass.
        Default :data:`bayesscale.DEFAULT_CI`.
    threshold : float
        Extra compute of the size range in ``attrs`` (see :func:`size_range`).

    Returns
    -------
    pandas.DataFrame
        Columns ``ratio``, ``excess_compute``, ``excess_compute_lo80``,
        ``excess_compute_hi80``, ``excess_steps`` (and ``_lo80``,
        ``_hi80``; the suffix is the level ``ci``);
        ``inf`` where a size never reaches the loss.  ``attrs``:
        ``size_range`` (:func:`size_range`'s table) and ``sentence``.
    """
    ci = _check_ci(ci)
    p = _check_post(post)
    r = np.geomspace(0.3, 10.0, 97) if r is None else np.sort(_positive(r, "r"))
    P = {k: v[:, None] for k, v in p.items()}
    with np.errstate(over="ignore", invalid="ignore"):
        c = kaplan.excess_compute(P, r[None, :])
        s = kaplan.excess_steps(P, r[None, :])
    cols = {"ratio": r}
    for name, d in (("excess_compute", c), ("excess_steps", s)):
        med, lo, hi = _band(d, ci)  # inf (never) stays inf
        lo_name, hi_name = band_names(name, ci)
        cols.update({name: med, lo_name: lo, hi_name: hi})
    df = pd.DataFrame(cols)
    sr = size_range(post, threshold=threshold, ci=ci)
    df.attrs.update(ci=ci, threshold=threshold, size_range=sr, sentence=sr.attrs["sentence"])
    return df
