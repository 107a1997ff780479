"""Backtests: fit on small budgets, predict larger ones, and score the predictions.

A budget decision is an extrapolation.  :func:`backtest` measures how well a
model's predictive intervals hold *beyond* the data it was fitted to, the
way a decision uses them: fit on the smaller budgets, predict the held-out
larger ones, and score coverage, log predictive density, CRPS and bias.

Hold-out modes
--------------
``"largest_budget"``
    Fit on every budget group but the largest; predict the largest.
a number (compute threshold, FLOPs)
    Hold out the runs at or above the threshold.  The comparison uses the
    budget tolerance of :func:`bayesscale.data.budget_groups` (0.05
    decades), so a run digitised at 9.3e20 FLOPs counts as the 1e21 budget.
``"leave_one_budget_out"``
    Rolling origin: for each budget group from the smallest upward (once at
    least ``min_train_budgets`` groups lie below it), fit on the smaller
    budgets and predict that one.  All folds run in one batched program
    (:func:`bayesscale.fit_many`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data import BUDGET_TOL_DEX, DataError, Runs, as_runs, rolling_folds
from .fitting import FitWarning, fit_many

__all__ = ["backtest", "BacktestResult", "score_predictions", "summarize", "LEVELS"]

#: Central interval levels whose coverage is reported.
LEVELS = (0.5, 0.8, 0.9)


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Scores of a backtest.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per held-out fold and an ``overall`` row: ``n_runs``,
        ``n_folds`` (held-out budgets: coverage is counted by budget, see
        :func:`summarize`), ``coverage_50``, ``coverage_80``, ``coverage_90``, ``mlpd`` (mean
        log predictive density of log loss), ``crps`` (of log loss),
        ``bias`` (mean observed minus predictive median, log loss),
        ``width_90`` (median 90% interval width, in loss) and
        ``extrapolation_dex`` (decades of compute beyond the largest
        training run).
    points : pandas.DataFrame
        One row per held-out run: fold, N, D, C, observed loss, predictive
        median and intervals, PIT value.
    allocation : pandas.DataFrame
        Per fold: median N_opt at the held-out compute from the fold's fit
        and from a fit on all runs, and their ratio.
    posteriors : list of Posterior
        The fold fits.
    holdout : str
        The hold-out mode.
    """

    table: pd.DataFrame
    points: pd.DataFrame
    allocation: pd.DataFrame
    posteriors: list
    holdout: str

    def __str__(self) -> str:
        cols = ["n_runs", "n_folds", "extrapolation_dex", "coverage_50", "coverage_80", "coverage_90", "width_90",
                "bias", "mlpd", "crps"]
        with pd.option_context("display.float_format", "{:.3g}".format, "display.width", 140):
            return f"Backtest ({self.holdout})\n{self.table[cols].to_string()}"


def _folds(runs: Runs, holdout, min_train_budgets: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, train mask, test mask) per fold."""
    logc = np.log10(runs.C)
    if isinstance(holdout, str) and holdout == "largest_budget":
        top = runs.budget == runs.budget[np.argmax(runs.C)]
        return [(f"budget {runs.budget_compute()[runs.budget[np.argmax(runs.C)]]:.3g}", ~top, top)]
    if isinstance(holdout, str) and holdout == "leave_one_budget_out":
        return rolling_folds(runs, min_train_budgets)
    if isinstance(holdout, (int, float, np.floating)) and not isinstance(holdout, bool):
        if not np.isfinite(holdout) or holdout <= 0:
            raise ValueError(f"holdout threshold must be a positive number of FLOPs, got {holdout!r}")
        test = logc >= np.log10(holdout) - BUDGET_TOL_DEX
        return [(f"C >= {holdout:.3g}", ~test, test)]
    raise ValueError(f"holdout must be 'largest_budget', 'leave_one_budget_out' or a compute threshold, "
                     f"got {holdout!r}")


def score_predictions(draws: np.ndarray, observed: np.ndarray, levels=LEVELS) -> dict:
    """Score predictive draws of loss against observed losses.

    Parameters
    ----------
    draws : ndarray, shape (S, n)
        Posterior predictive draws of loss.
    observed : ndarray, shape (n,)
        Observed losses.

    Returns
    -------
    dict
        Per-run arrays: ``median``, ``lo_<p>``/``hi_<p>`` and ``covered_<p>``
        for each level, ``pit``, ``lpd`` (log predictive density of log
        loss, from a kernel density estimate over draws), ``crps`` (of log
        loss) and ``error`` (log observed minus log median).
    """
    y = np.log(observed)
    x = np.sort(np.log(draws), axis=0)
    S = x.shape[0]
    out = {"median": np.exp(np.median(x, axis=0)), "pit": (x < y).mean(axis=0)}
    for p in levels:
        lo, hi = np.quantile(x, [(1 - p) / 2, (1 + p) / 2], axis=0)
        tag = f"{round(p * 100)}"
        out[f"lo_{tag}"], out[f"hi_{tag}"] = np.exp(lo), np.exp(hi)
        out[f"covered_{tag}"] = (lo <= y) & (y <= hi)
    # CRPS from sorted samples: E|X - y| - 0.5 E|X - X'|
    i = np.arange(1, S + 1)[:, None]
    e_xy = np.abs(x - y).mean(axis=0)
    e_xx = (2 * ((2 * i - S - 1) * x).sum(axis=0)) / S**2
    out["crps"] = e_xy - 0.5 * e_xx
    # log predictive density of y with a Gaussian KDE over the draws (Silverman bandwidth)
    sd = x.std(axis=0)
    bw = 1.06 * np.maximum(sd, 1e-12) * S ** (-0.2)
    z = (y - x) / bw
    out["lpd"] = np.log(np.mean(np.exp(-0.5 * z**2), axis=0) / (bw * np.sqrt(2 * np.pi)) + 1e-300)
    out["error"] = y - np.log(out["median"])
    return out


def backtest(runs, *, holdout="largest_budget", min_train_budgets: int = 3, seed: int = 0,
             compare_allocation: bool = True, **fit_kwargs) -> BacktestResult:
    """Fit on smaller budgets, predict larger ones, and score the predictions.

    Parameters
    ----------
    runs : Runs, DataFrame or path
        The runs.
    holdout : {"largest_budget", "leave_one_budget_out"} or float
        The hold-out mode (see the module docstring).
    min_train_budgets : int
        ``leave_one_budget_out`` only: the fewest budget groups a fold
        trains on.
    seed : int
        Random seed of the fits.
    compare_allocation : bool
        Also fit all runs, and report how the compute-optimal N at each
        held-out budget moved.
    **fit_kwargs
        Passed to :func:`bayesscale.fit_many` (``chains``, ``draws``,
        ``likelihood``, ``offsets``, ...).

    Returns
    -------
    BacktestResult
    """
    runs = as_runs(runs)
    folds = _folds(runs, holdout, min_train_budgets)
    usable = [(lab, tr, te) for lab, tr, te in folds if tr.sum() >= 10 and te.sum() > 0]
    if not usable:
        raise DataError(f"holdout={holdout!r} leaves no fold with at least 10 training runs and 1 held-out run; "
                        "choose a larger threshold or add runs at smaller budgets.")
    datasets = [runs.subset(tr) for _, tr, _ in usable]
    if compare_allocation:
        datasets.append(runs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitWarning)
        posts = fit_many(datasets, seed=seed, **fit_kwargs)
    for w in caught:
        if issubclass(w.category, FitWarning):
            warnings.warn(f"backtest fits: {w.message}", FitWarning, stacklevel=2)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    full = posts.pop() if compare_allocation else None

    rows, points, alloc = [], [], []
    for (label, train, test), post in zip(usable, posts):
        te = runs.subset(test)
        # the covariates the law reads beyond N and D (unique tokens; steps and batch size)
        extra = {k: getattr(te, k) for k in ("U", "S", "B") if f"log{k}" in post.law.covariates}
        sc = score_predictions(post.predict_draws(te.N, te.D, **extra), te.loss)
        pts = pd.DataFrame({"fold": label, "run": te.run_id, "budget": runs.budget[test], "N": te.N, "D": te.D,
                            "C": te.C, "loss": te.loss, **sc})
        rows.append({"fold": label, **summarize(pts),
                     "extrapolation_dex": float(np.log10(te.C.max() / runs.C[train].max()))})
        points.append(pts)
        if full is not None:
            from .allocation import allocate

            c = float(np.exp(np.log(te.C).mean()))
            n_fold = float(allocate(post.law_params, [c], law=post.law).table["N_opt"].iloc[0])
            n_full = float(allocate(full.law_params, [c], law=full.law).table["N_opt"].iloc[0])
            alloc.append({"fold": label, "C": c, "N_opt_fold": n_fold, "N_opt_all": n_full,
                          "ratio": n_fold / n_full})
    points = pd.concat(points, ignore_index=True)
    rows.append({"fold": "overall", **summarize(points),
                 "extrapolation_dex": max(r["extrapolation_dex"] for r in rows)})
    table = pd.DataFrame(rows).set_index("fold")
    return BacktestResult(table=table, points=points, allocation=pd.DataFrame(alloc), posteriors=posts,
                          holdout=str(holdout))


def summarize(points: pd.DataFrame) -> dict:
    """Scores of a set of held-out runs (rows of :attr:`BacktestResult.points`).

    Runs of one held-out budget share that budget's error (the fold fit's
    parameter error, the budget's offset, the law's bend), so they are not
    independent trials.  Coverage is counted by held-out budget: the share
    of each budget's runs inside their interval, averaged over budgets
    (``n_folds`` of them, the effective sample size of the verdict and of
    the chance band).  Budgets are ``(fold, budget)`` pairs when
    ``points`` has those columns, otherwise every run is its own budget.

    Returns
    -------
    dict
        ``n_runs``, ``n_folds``, ``coverage_<level>``, ``mlpd``, ``crps``,
        ``bias`` and ``width_90`` (median 90% interval width, in loss).
    """
    keys = [k for k in ("dataset", "fold", "budget") if k in points.columns]
    cov_cols = [k for k in points.columns if k.startswith("covered_")]
    if "budget" in keys:
        by = points.groupby(keys, sort=False)[cov_cols].mean()
    else:
        by = points[cov_cols].astype(float)
    return {"n_runs": len(points), "n_folds": len(by),
            **{f"coverage_{k.split('_')[1]}": float(by[k].mean()) for k in cov_cols},
            "mlpd": points["lpd"].mean(), "crps": points["crps"].mean(), "bias": points["error"].mean(),
            "width_90": float(np.median(points["hi_90"] - points["lo_90"]))}
