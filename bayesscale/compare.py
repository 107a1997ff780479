"""Which law to believe: compare fitted laws, stack them, and average their allocations.

:func:`compare` puts the laws fitted to the same runs side by side:

* PSIS-LOO elpd and its standard error (``arviz_stats.compare``), with the
  number of runs whose Pareto k exceeds 0.7 (where the estimate is
  unreliable), and the stacking weights of the laws' predictive
  distributions;
* the score that matters for a budget, *beyond* the data: each law is refit
  on rolling-origin folds (train below a budget, predict it; see
  :func:`bayesscale.backtest`) and scored by the mean log predictive density
  and the 90% coverage of the held-out runs;
* the compute-optimal allocation each law recommends at the user's budgets,
  with its band.

In-sample fit (LOO) and out-of-sample extrapolation can disagree: a flexible
law may fit the runs best and extrapolate worst.  The table shows both.

:func:`average` turns the weights into one model-averaged allocation: draws
from each law's allocation in proportion to its weight, so the band includes
the disagreement between laws.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._validate import check_ci
from .intervals import band_names, quantiles
from .posterior import to_arviz

__all__ = ["compare", "average", "law_labels", "preferred_law", "PARSIMONY_SE"]

#: Standard errors of the elpd difference within which two laws count as tied (the simpler one is preferred).
PARSIMONY_SE = 2.0


def law_labels(posteriors: Sequence) -> list[str]:
    """Unique labels for posteriors: the law's name, with the observation model when names repeat."""
    names = [p.law.name for p in posteriors]
    if len(set(names)) < len(names):
        names = [f"{p.law.name}/{p.spec.likelihood}/{p.spec.offsets}" for p in posteriors]
    if len(set(names)) < len(names):
        names = [f"{n}#{i}" for i, n in enumerate(names)]
    return names


def _check(posteriors) -> list:
    from .posterior import Posterior

    posteriors = list(posteriors.values()) if isinstance(posteriors, dict) else list(posteriors)
    if len(posteriors) < 1 or not all(isinstance(p, Posterior) for p in posteriors):
        raise TypeError("give a list of Posterior objects (bs.fit(runs, law=...) for each law)")
    sha = {p.runs.sha256 for p in posteriors}
    if len(sha) > 1 or len({len(p.runs) for p in posteriors}) > 1:
        raise ValueError("the posteriors were fitted to different runs; compare laws fitted to the same table")
    return posteriors


def compare(posteriors, *, budgets=None, backtest: bool = True, ci: float | None = None, seed: int = 0,
            backtest_settings: dict | None = None, progress: bool | None = None) -> pd.DataFrame:
    """Compare laws fitted to the same runs: in-sample LOO, out-of-sample backtest, allocations.

    Parameters
    ----------
    posteriors : list of Posterior (or dict of label to Posterior)
        Fits of several laws (or observation models) to the same runs.
    budgets : array_like, optional
        Compute budgets (FLOPs) at which to show each law's recommended
        ``N_opt`` with its band.
    backtest : bool
        Refit each law on rolling-origin folds and score its predictions
        beyond the data (``leave_one_budget_out``; short chains, one batched
        program per law).  This costs about one fit per law.
    ci : float, optional
        Mass of the allocation bands.
        Default :data:`bayesscale.DEFAULT_CI`.
    seed : int
        Seed of the backtest refits.
    backtest_settings : dict, optional
        Sampler settings of the refits (default ``chains=2, warmup=300,
        draws=300``).
    progress : bool, optional
        Progress bars of the refits.

    Returns
    -------
    pandas.DataFrame
        One row per law, sorted by ``elpd_loo``: ``law``, ``n_params``,
        ``elpd_loo``, ``elpd_se``, ``elpd_diff``, ``diff_se``, ``p_loo``,
        ``pareto_k_bad`` (runs with k > 0.7), ``weight`` (stacking),
        ``preferred`` (True for the law to believe: the simplest law within
        :data:`PARSIMONY_SE` standard errors of the best elpd, see
        :func:`preferred_law`; also ``df.attrs["preferred"]``), and
        with ``backtest``: ``backtest_mlpd``, ``backtest_coverage_90``,
        ``backtest_folds``; with ``budgets``: ``N_opt@C``,
        ``N_opt_lo80@C``, ``N_opt_hi80@C`` per budget (``ci`` band; the
        level is in the name, ``N_opt_lo95@C`` at ``ci=0.95``).
        ``df.attrs["ci"]`` holds ``ci``.
    """
    import arviz_stats as azs

    posteriors = _check(posteriors)
    ci = check_ci(ci)
    labels = law_labels(posteriors)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ warns about high Pareto k; we count them in a column
        loos = {lab: azs.loo(to_arviz(p, groups=("log_likelihood",)), pointwise=True)
                for lab, p in zip(labels, posteriors)}
        table = (azs.compare(loos, method="stacking", round_to="none") if len(posteriors) > 1 else None)
    rows = []
    for lab, p in zip(labels, posteriors):
        loo = loos[lab]
        k = np.asarray(loo.pareto_k).ravel()
        row = {"law": lab, "n_params": len(p.law.params), "elpd_loo": float(loo.elpd), "elpd_se": float(loo.se),
               "p_loo": float(loo.p), "pareto_k_bad": int(np.sum(k > 0.7))}
        if table is not None:
            row.update(elpd_diff=float(table.loc[lab, "elpd_diff"]), diff_se=float(table.loc[lab, "dse"]),
                       weight=float(table.loc[lab, "weight"]))
        else:
            row.update(elpd_diff=0.0, diff_se=0.0, weight=1.0)
        rows.append(row)
    if backtest:
        for row, p in zip(rows, posteriors):
            row.update(_backtest_score(p, seed=seed, settings=backtest_settings, progress=progress))
    if budgets is not None:
        C = np.atleast_1d(np.asarray(budgets, dtype=float))
        for row, p in zip(rows, posteriors):
            alloc = p.allocate(C, ci=ci)
            lo, hi = band_names("N_opt", ci)
            for c, (_, a) in zip(C, alloc.iterrows()):
                row[f"N_opt@{c:.3g}"] = a["N_opt"]
                row[f"{lo}@{c:.3g}"] = a[lo]
                row[f"{hi}@{c:.3g}"] = a[hi]
    out = pd.DataFrame(rows).sort_values("elpd_loo", ascending=False, ignore_index=True)
    out["preferred"] = out["law"] == preferred_law(out)
    cols = ["law", "n_params", "elpd_loo", "elpd_se", "elpd_diff", "diff_se", "p_loo", "pareto_k_bad", "weight",
            "preferred"]
    out = out[cols + [c for c in out.columns if c not in cols]]
    out.attrs["ci"] = ci
    out.attrs["preferred"] = preferred_law(out)
    return out


def preferred_law(table: pd.DataFrame, *, n_se: float = PARSIMONY_SE) -> str:
    """The law to believe from a :func:`compare` table: the simplest one that is not clearly worse.

    Among the laws whose elpd is within ``n_se`` standard errors of the
    difference from the best (``|elpd_diff| <= n_se * diff_se``: a tie LOO
    cannot resolve), the one with the fewest parameters, ties broken by
    elpd.  Nested laws make this necessary: when the data come from the
    smaller of two nested laws, the larger one fits them as well (measured:
    chinchilla data, coupled law ahead by elpd in 15 of 20 trials, never by
    more than 2 standard errors), so ranking by elpd alone picks the larger
    law more often than not.
    """
    gap = table["elpd_loo"].max() - table["elpd_loo"]
    within = table[gap <= n_se * table["diff_se"]]
    return str(within.sort_values(["n_params", "elpd_loo"], ascending=[True, False])["law"].iloc[0])


def _backtest_score(post, *, seed, settings, progress) -> dict:
    """mlpd and 90% coverage of a law's rolling-origin refits (folds = held-out budgets)."""
    from .backtest import backtest
    from .data import DataError

    kw = dict(chains=2, warmup=300, draws=300)
    kw.update(settings or {})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # short refits: their diagnostics are summarised, not warned
            res = backtest(post.runs, holdout="leave_one_budget_out", seed=seed, compare_allocation=False,
                           law=post.law, likelihood=post.spec.observation, offsets=post.spec.offsets,
                           extrapolation="none", progress=progress, **kw)
    except DataError:
        return {"backtest_mlpd": np.nan, "backtest_coverage_90": np.nan, "backtest_folds": 0}
    overall = res.table.loc["overall"]
    return {"backtest_mlpd": float(overall["mlpd"]), "backtest_coverage_90": float(overall["coverage_90"]),
            "backtest_folds": int(len(res.table) - 1)}


def average(posteriors, weights=None, budgets=None, *, ci: float | None = None, seed: int = 0) -> pd.DataFrame:
    """A model-averaged compute-optimal allocation across laws.

    Each law contributes draws of its allocation (``Posterior.allocate``) in
    proportion to its weight, so the band of the mixture includes the
    disagreement between the laws as well as each law's own uncertainty.

    Parameters
    ----------
    posteriors : list of Posterior (or dict of label to Posterior)
        Laws fitted to the same runs.
    weights : array_like or "stacking", optional
        One non-negative weight per posterior (normalised here); by default
        (or ``"stacking"``) the stacking weights of :func:`compare` (without
        its backtest).
    budgets : array_like
        Compute budgets in FLOPs.
    ci : float, optional
        Mass of the equal-tailed bands.
        Default :data:`bayesscale.DEFAULT_CI`.
    seed : int
        Seed of the subsampling of each law's draws.

    Returns
    -------
    pandas.DataFrame
        One row per budget: ``C``, ``N_opt``, ``N_opt_lo80``,
        ``N_opt_hi80`` (at ``ci=0.8``; the suffix is the level),
        ``D_opt``..., ``tokens_per_param``..., ``loss``... (medians and
        bands of the mixture); ``df.attrs["weights"]`` maps each law to its
        weight and ``df.attrs["draws"]`` holds the mixture's draws.
    """
    posteriors = _check(posteriors)
    ci = check_ci(ci)
    if budgets is None:
        raise ValueError("average needs budgets= (training FLOPs)")
    C = np.atleast_1d(np.asarray(budgets, dtype=float))
    labels = law_labels(posteriors)
    if weights is None or (isinstance(weights, str) and weights == "stacking"):
        w = compare(posteriors, backtest=False).set_index("law").loc[labels, "weight"].to_numpy()
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(posteriors),) or np.any(~np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be {len(posteriors)} non-negative numbers, not all zero; got {weights!r}")
    w = w / w.sum()
    rng = np.random.default_rng(seed)
    S = min(p.n_draws for p in posteriors)
    counts = np.floor(w * S).astype(int)
    counts[np.argmax(w)] += S - counts.sum()
    parts: dict[str, list] = {}
    for p, n in zip(posteriors, counts):
        if n == 0:
            continue
        d = p.allocate(C, ci=ci).attrs["draws"]
        idx = rng.choice(d["N_opt"].shape[0], size=n, replace=False)
        for k, v in d.items():
            parts.setdefault(k, []).append(np.asarray(v)[idx])
    draws = {k: np.concatenate(v, axis=0) for k, v in parts.items()}
    cols = {"C": C}
    for k in ("N_opt", "D_opt", "tokens_per_param", "loss"):
        lo, hi = band_names(k, ci)
        cols[k], cols[lo], cols[hi] = quantiles(draws[k], ci)
    out = pd.DataFrame(cols)
    out.attrs.update(weights=dict(zip(labels, w.tolist())), draws=draws, ci=ci)
    return out
