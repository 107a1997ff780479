"""ArviZ diagnostics turned into a verdict with reasons.

A fit is trusted only when every check passes:

=====================  ==========================================
R-hat (rank, split)    <= 1.01 for every parameter
ESS bulk and tail      >= 400 for every parameter
divergences            none
E-BFMI                 >= 0.3 in every chain
tree depth             no draw hits the limit
=====================  ==========================================

Influential runs (PSIS-LOO Pareto k > 0.7) do not fail the verdict: they say
that the fit leans on single runs, not that the sampler failed.  They are
named in :attr:`Verdict.notes` and nothing is dropped.

Runs far off the law (gross outliers) are named in the notes too, whatever
the likelihood did with them: a Student-t likelihood absorbs a run ten times
off the law with a Pareto k near 0, so PSIS-LOO alone cannot see it.  A run
is far off when its residual (observed log loss minus the posterior median
law) exceeds ``THRESHOLDS["outlier"]`` robust noise scales (1.4826 times the
median absolute deviation of all residuals, which the outliers themselves do
not inflate).  Measured on the bundled Chinchilla runs (Student-t, all 245):
the five highest-loss runs, dropped in the published refit, lie 12 to 63
scales off; no other run lies beyond 10.6, in the 245 or the 240-run subset.
"""


from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Verdict", "THRESHOLDS", "diagnose", "pareto_k", "screen", "convergence_table", "outliers"]

#: The thresholds of :func:`diagnose`.
THRESHOLDS = {"r_hat": 1.01, "ess": 400, "bfmi": 0.3, "pareto_k": 0.7, "outlier": 11.0}


@dataclass(frozen=True)
class Verdict:
    """Whether to trust a fit, and why.

    Attributes
    ----------
    ok : bool
        True when every sampler diagnostic passes.
    problems : list of str
        One plain sentence per failed check (empty when ``ok``).
    notes : list of str
        Things worth knowing that do not fail the fit (influential runs).
    table : pandas.DataFrame
        The numbers behind the verdict: one row per check.
    """

    ok: bool
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    table: pd.DataFrame | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        head = "OK: the sampler diagnostics pass." if self.ok else "NOT OK: do not trust this fit yet."
        lines = [head] + [f"  - {p}" for p in self.problems] + [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _ds(draws: dict):
    import xarray as xr

    return xr.Dataset({k: (("chain", "draw"), np.asarray(v, dtype=float)) for k, v in draws.items()})


def convergence_table(draws: dict) -> pd.DataFrame:
    """R-hat, bulk ESS and tail ESS of each ``(chains, draws)`` array."""
    import arviz_stats as azs

    ds = _ds(draws)
    with np.errstate(divide="ignore", invalid="ignore"):  # a chain stuck on one value: R-hat NaN/inf, a failed check
        rhat, bulk, tail = azs.rhat(ds), azs.ess(ds, method="bulk"), azs.ess(ds, method="tail")
    return pd.DataFrame({"r_hat": [float(rhat[k]) for k in draws],
                         "ess_bulk": [float(bulk[k]) for k in draws],
                         "ess_tail": [float(tail[k]) for k in draws]}, index=list(draws))


#: How many times PSIS-LOO ran in this process (for tests: reading a posterior must not run it).
_CALLS = {"pareto_k": 0}


def pareto_k(log_lik: np.ndarray) -> np.ndarray:
    """PSIS-LOO Pareto k of each observation from ``(chains, draws, runs)`` log-likelihoods.

    Each run's k depends on its own column only, so the runs can be given
    in chunks and the results concatenated (as :meth:`bayesscale.Posterior.check`
    does, to keep memory bounded).
    """
    import arviz_stats as azs
    import xarray as xr

    _CALLS["pareto_k"] += 1

    da = xr.DataArray(log_lik, dims=("chain", "draw", "run"))
    with warnings.catch_warnings():
        # ArviZ warns about high k; diagnose() names those runs itself
        warnings.simplefilter("ignore", UserWarning)
        res = azs.loo(xr.DataTree.from_dict({"log_likelihood": xr.Dataset({"y": da}),
                                             "posterior": xr.Dataset({"_": da.isel(run=0)})}), pointwise=True)
    return np.asarray(res.pareto_k)


def outliers(residuals, *, threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Runs far off the law: indices (farthest first) and every run's residual in robust noise scales.

    Parameters
    ----------
    residuals : array_like
        Observed minus fitted log loss of each run (the posterior median law).
    threshold : float, optional
        Robust noise scales beyond which a run is an outlier; default
        ``THRESHOLDS["outlier"]``.

    Returns
    -------
    (ndarray of int, ndarray of float)
        The outliers' indices, and ``residual / (1.4826 * MAD)`` per run.
    """
    t = THRESHOLDS["outlier"] if threshold is None else float(threshold)
    r = np.asarray(residuals, dtype=float)
    scale = 1.4826 * np.median(np.abs(r - np.median(r)))
    if not scale > 0:
        scale = np.finfo(float).tiny
    z = r / scale
    far = np.flatnonzero(np.abs(z) > t)
    return far[np.argsort(-np.abs(z[far]))], z


def diagnose(draws: dict, stats: dict, *, max_tree_depth: int, log_lik: np.ndarray | None = None,
             run_ids=None, residuals=None, k_hat=None, retried: dict | None = None) -> Verdict:
    """Check convergence and sampler health.

    Parameters
    ----------
    draws : dict of str to ndarray
        Parameters to check, each ``(chains, draws)``.
    stats : dict of str to ndarray
        Sampler statistics with ``diverging``, ``energy`` and ``num_steps``.
    max_tree_depth : int
        The sampler's tree-depth limit.
    log_lik : ndarray, optional
        ``(chains, draws, runs)`` pointwise log-likelihood, for PSIS-LOO.
    k_hat : ndarray or str, optional
        The PSIS-LOO Pareto k of each run, already computed (e.g. chunk by
        chunk of runs with :func:`pareto_k`, as
        :meth:`bayesscale.Posterior.check` does, which never holds the whole
        log-likelihood), or a string saying why it could not be; instead
        of ``log_lik``.
    run_ids : sequence of str, optional
        Names of the runs, for the notes.
    residuals : array_like, optional
        Observed minus posterior-median fitted log loss per run: runs more
        than ``THRESHOLDS["outlier"]`` robust noise scales off are named in
        the notes (see :func:`outliers`).
    retried : dict, optional
        ``posterior.info["retried"]`` of a fit that was retried: the
        verdict says so in its notes.

    Returns
    -------
    Verdict
    """
    import arviz_stats as azs

    t = THRESHOLDS
    problems, notes, rows = [], [], []
    conv = convergence_table(draws)
    n_chains = next(iter(draws.values())).shape[0]
    for name, r in conv.iterrows():
        if n_chains > 1 and not r.r_hat <= t["r_hat"]:
            problems.append(f"R-hat of {name} is {r.r_hat:.3f} (> {t['r_hat']}): the chains disagree; "
                            "run longer warm-up or more draws.")
        for kind in ("bulk", "tail"):
            ess = r[f"ess_{kind}"]
            if not ess >= t["ess"]:
                problems.append(f"{kind.capitalize()} ESS of {name} is {ess:.0f} (< {t['ess']}): too few "
                                "effective draws for stable intervals; run more draws or chains.")
    if n_chains < 2:
        problems.append("Only one chain: R-hat cannot detect non-convergence; run at least 2 chains.")
    rows += [("max R-hat", conv.r_hat.max(), f"<= {t['r_hat']}"),
             ("min ESS bulk", conv.ess_bulk.min(), f">= {t['ess']}"),
             ("min ESS tail", conv.ess_tail.min(), f">= {t['ess']}")]

    div = np.asarray(stats["diverging"])
    n_div = int(div.sum())
    if n_div:
        problems.append(f"{n_div} divergent transitions ({n_div / div.size:.1%} of draws): the posterior has "
                        "regions the sampler cannot explore; results may be biased. Raise target_accept "
                        "(e.g. 0.95) or reconsider the priors.")
    rows.append(("divergences", n_div, "= 0"))

    bfmi = np.asarray(azs.bfmi(np.asarray(stats["energy"], dtype=float)))
    if np.any(bfmi < t["bfmi"]):
        bad = ", ".join(f"chain {i} ({b:.2f})" for i, b in enumerate(bfmi) if b < t["bfmi"])
        problems.append(f"E-BFMI below {t['bfmi']} in {bad}: the momentum resampling explores the energy "
                        "poorly; the warm-up may be too short.")
    rows.append(("min E-BFMI", float(bfmi.min()), f">= {t['bfmi']}"))

    saturated = np.asarray(stats["num_steps"]) >= 2 ** max_tree_depth - 1
    if saturated.any():
        problems.append(f"{int(saturated.sum())} draws ({saturated.mean():.1%}) hit the maximum tree depth "
                        f"{max_tree_depth}: trajectories were cut short. Raise max_tree_depth or "
                        "reparameterise.")
    rows.append(("draws at max tree depth", int(saturated.sum()), "= 0"))

    k = None
    if isinstance(k_hat, str):
        notes.append(f"PSIS-LOO could not be computed ({k_hat}); influential runs are not checked.")
    elif k_hat is not None:
        k = np.asarray(k_hat, dtype=float)
    elif log_lik is not None:
        try:
            k = pareto_k(log_lik)
        except (ValueError, FloatingPointError) as e:
            notes.append(f"PSIS-LOO could not be computed ({e}); influential runs are not checked.")
    if k is not None:
        high = np.flatnonzero(k > t["pareto_k"])
        if len(high):
            ids = np.asarray(run_ids) if run_ids is not None else np.arange(len(k)).astype(str)
            order = high[np.argsort(-k[high])]
            named = ", ".join(f"{ids[i]} (k = {k[i]:.2f})" for i in order[:10])
            more = f" and {len(order) - 10} more" if len(order) > 10 else ""
            notes.append(f"{len(high)} influential run{'s' * (len(high) > 1)} (PSIS-LOO Pareto k > "
                         f"{t['pareto_k']}): {named}{more}. The fit leans on them; check them, and refit "
                         "without them to see how much the answer moves. Nothing was dropped.")
        rows.append(("max Pareto k", float(k.max()), f"<= {t['pareto_k']} (note only)"))

    if residuals is not None:
        far, z = outliers(residuals)
        if len(far):
            ids = np.asarray(run_ids) if run_ids is not None else np.arange(len(z)).astype(str)
            named = ", ".join(f"{ids[i]} ({z[i]:+.0f} scales, {'above' if z[i] > 0 else 'below'} the law)"
                              for i in far[:10])
            more = f" and {len(far) - 10} more" if len(far) > 10 else ""
            n = len(far)
            notes.append(f"{n} run{'s' * (n > 1)} far off the law (more than {t['outlier']:g} robust noise "
                         f"scales of log loss): {named}{more}. The law cannot explain {'them' if n > 1 else 'it'}, "
                         "whatever the likelihood does with them; check those runs (diverged, mislabelled, "
                         "another setup?) and refit without them to see how much the answer moves (API: "
                         "runs.subset(...) or datasets.chinchilla(drop_highest_loss=5); CLI: --drop RUN_ID or "
                         "--drop-highest-loss K). Nothing was dropped.")
        rows.append(("max |residual| (noise scales)", float(np.max(np.abs(z))),
                     f"<= {t['outlier']:g} (note only)"))

    table = pd.DataFrame(rows, columns=["check", "value", "target"]).set_index("check")
    if retried:
        notes.append(f"Retried once automatically with safer settings ({retried.get('settings', '?')}) after the "
                     f"first run did not pass its checks ({retried.get('first_checks', '?')}); these are the retry's "
                     "draws.")
    return Verdict(ok=not problems, problems=problems, notes=notes, table=table)


def screen(draws: list[dict], stats: list[dict], *, max_tree_depth: int) -> pd.DataFrame:
    """The sampler checks of :func:`diagnose` for many fits at once, vectorised.

    Parameters
    ----------
    draws : list of dict
        Per fit, parameters ``(chains, draws)`` (the same names in every fit).
    stats : list of dict
        Per fit, sampler statistics.
    max_tree_depth : int
        The sampler's tree-depth limit.

    Returns
    -------
    pandas.DataFrame
        One row per fit: ``max_r_hat``, ``min_ess_bulk``, ``min_ess_tail``,
        ``divergences``, ``min_bfmi``, ``at_max_depth`` and ``ok``.
    """
    import arviz_stats as azs
    import xarray as xr

    t = THRESHOLDS
    names = list(draws[0])
    ds = xr.Dataset({k: (("fit", "chain", "draw"), np.stack([d[k] for d in draws]).astype(float)) for k in names})
    with np.errstate(divide="ignore", invalid="ignore"):  # a chain stuck on one value: R-hat NaN/inf, a failed check
        rhat = azs.rhat(ds).to_array().max("variable", skipna=False).values
        bulk = azs.ess(ds, method="bulk").to_array().min("variable", skipna=False).values
        tail = azs.ess(ds, method="tail").to_array().min("variable", skipna=False).values
    energy = np.stack([s["energy"] for s in stats]).astype(float)
    bfmi = np.asarray(azs.bfmi(energy)).reshape(len(draws), -1).min(axis=1)
    div = np.array([int(np.sum(s["diverging"])) for s in stats])
    sat = np.array([int(np.sum(np.asarray(s["num_steps"]) >= 2 ** max_tree_depth - 1)) for s in stats])
    n_chains = ds.sizes["chain"]
    ok = (n_chains >= 2) & (rhat <= t["r_hat"]) & (bulk >= t["ess"]) & (tail >= t["ess"]) & (div == 0) \
        & (bfmi >= t["bfmi"]) & (sat == 0)
    return pd.DataFrame({"max_r_hat": rhat, "min_ess_bulk": bulk, "min_ess_tail": tail, "divergences": div,
                         "min_bfmi": bfmi, "at_max_depth": sat, "ok": ok})
