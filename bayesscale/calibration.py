"""Running the rolling-origin refits behind the extrapolation error.

A posterior fitted to all runs describes the data well in-sample and can
still be overconfident one or more decades beyond it.  In-sample residuals
cannot reveal this; only extrapolations can.  So this module

1. builds rolling-origin folds with several horizons
   (:func:`horizon_folds`): at each origin, train on every budget below it
   and hold out the next 1, 2 and 3 budgets, so the distance beyond the
   data varies (the last :data:`MAX_ORIGINS` origins whose next budget was
   swept, :data:`TILT_MIN_RUNS` runs or more, then the latest others);
2. refits the law on every origin of every data set in ONE batched
   :func:`bayesscale.inference.sample` call with short chains
   (:data:`FOLD_SETTINGS`);
3. checks each fold fit (R-hat of the law's parameters at most
   :data:`FOLD_RHAT`, divergent transitions at most
   :data:`FOLD_DIVERGENT` of the draws); a failed fold is reported in the
   record and the verdict, and left out;
4. scores each held-out budget: the median error of its runs in log loss,
   the tilt of those errors along the budget (their slope in log tokens per
   parameter, :func:`fold_tilt`), and the error of the fold's N_opt against
   the budget's empirical optimum (vertex of a quadratic in log N fitted to
   the budget's runs, when the budget is IsoFLOP-shaped), otherwise against
   the full-data fit;
5. hands the fold facts to :func:`bayesscale.discrepancy.fit_discrepancy`,
   the Bayesian model of the errors.

:func:`calibrate_extrapolation` is the explicit call for one posterior;
``fit(..., extrapolation="calibrated")`` runs it inside the fit.
"""

from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np
import pandas as pd

from .data import DataError, Runs
from .discrepancy import MIN_FOLDS, Discrepancy, fit_discrepancy
from .inference import SamplerSettings, sample
from .posterior import CHUNK_ELEMENTS, bend, law_log_loss
from .model import BEND_OFF_SCALE, ModelSpec

__all__ = ["calibrate", "calibrate_extrapolation", "horizon_folds", "estimate_kappa", "isoflop_vertex", "fold_tilt",
           "FOLD_SETTINGS", "MAX_ORIGINS", "HORIZONS", "MIN_TRAIN", "FOLD_RHAT", "FOLD_DIVERGENT"]

#: Short chains for the rolling-origin refits.
FOLD_SETTINGS = SamplerSettings(chains=2, warmup=300, draws=300)
#: Rolling origins per data set (the largest).
MAX_ORIGINS = 6
#: Budgets held out ahead of each origin.
HORIZONS = (1, 2, 3)
#: Fewest training runs per fold.
MIN_TRAIN = 10
#: Fewest budgets a fold trains on.
MIN_TRAIN_BUDGETS = 3
#: Largest R-hat of a usable fold fit (2 short chains: looser than the main fit's 1.01).
FOLD_RHAT = 1.05
#: Largest share of divergent transitions in a usable fold fit.
FOLD_DIVERGENT = 0.01
#: Fewest runs, and least spread of log tokens per parameter, of a held-out budget whose tilt is measured.
TILT_MIN_RUNS, TILT_MIN_SPREAD = 5, 1.0


def horizon_folds(runs: Runs, horizons=HORIZONS, min_train_budgets: int = MIN_TRAIN_BUDGETS,
                  max_origins: int = MAX_ORIGINS) -> list[tuple[str, np.ndarray, list[tuple[int, np.ndarray]]]]:
    """Rolling-origin folds holding out several budgets ahead.

    Returns
    -------
    list of (origin label, train mask, [(horizon, test mask), ...])
        For the last ``max_origins`` origins with at least
        ``min_train_budgets`` budgets and :data:`MIN_TRAIN` runs below them,
        in order of compute.  Origins whose next budget holds at least
        :data:`TILT_MIN_RUNS` runs come first: a fold that holds out one or
        two runs measures little (no tilt, a level as noisy as a run), so on
        a sweep with sparse budgets (Chinchilla's) the folds move back to the
        budgets that were swept.  Where fewer such origins exist, the latest
        of the others fill the remaining places.
    """
    Cg = runs.budget_compute()
    order = np.argsort(Cg)
    out = []
    for i in range(min_train_budgets, len(order)):
        train = np.isin(runs.budget, order[:i])  # by budget group: a labelled budget's runs never leak
        if train.sum() < MIN_TRAIN or len(np.unique(runs.budget[train])) < min_train_budgets:
            continue
        tests = [(h, runs.budget == order[i + h - 1]) for h in horizons if i + h - 1 < len(order)]
        out.append((f"C < {Cg[order[i]]:.3g}", train, tests))
    swept = [k for k, (_, _, tests) in enumerate(out) if tests[0][1].sum() >= TILT_MIN_RUNS]
    keep = swept[-max_origins:]
    keep += [k for k in range(len(out)) if k not in keep][::-1][:max_origins - len(keep)]
    return [out[k] for k in sorted(keep)]


def isoflop_vertex(N, loss, *, min_runs: int = 5) -> tuple[float, float]:
    """Empirical loss-optimal log N of one budget's runs: vertex of a quadratic in log N.

    Least squares of log loss on ``(x, x**2)``, ``x = log N``; the vertex's
    variance by the delta method.  NaNs unless the budget is IsoFLOP-shaped:
    at least ``min_runs`` distinct sizes, a convex fit (curvature more than
    two standard errors above zero) and a vertex inside the sizes run.

    Returns
    -------
    log_N, variance : float
    """
    x, y = np.log(np.asarray(N, float)), np.log(np.asarray(loss, float))
    if len(np.unique(np.round(x, 6))) < min_runs:
        return math.nan, math.nan
    xb = x.mean()
    X = np.stack([np.ones_like(x), x - xb, (x - xb) ** 2], axis=1)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    s2 = float(resid @ resid) / max(len(y) - 3, 1)
    V = s2 * np.linalg.inv(X.T @ X)
    c, b = coef[2], coef[1]
    if c <= 2 * math.sqrt(max(V[2, 2], 0.0)):
        return math.nan, math.nan
    v = -b / (2 * c)
    g = np.array([-1 / (2 * c), b / (2 * c**2)])
    var = float(g @ V[1:, 1:] @ g)
    if not (x.min() <= v + xb <= x.max()):
        return math.nan, math.nan
    return float(v + xb), var


def _median_noise_factor(likelihood: str, df: float) -> float:
    """Variance of the median of n draws of unit scale, times n (large-n limit)."""
    if likelihood == "normal":
        return math.pi / 2
    f0 = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    return 1 / (4 * f0**2)


def log_n_opt(law, params, C: float) -> np.ndarray:
    """log of the compute-optimal N at budget ``C`` for each draw (NaN where the law has none)."""
    from .allocation import allocate

    res = allocate({k: np.asarray(params[k], dtype=float) for k in law.params}, [float(C)], law=law)
    return np.log(res.draws["N_opt"][:, 0])


def estimate_kappa(errors, scales, distances) -> tuple[float, float]:
    """The former grid-maximum-likelihood ``kappa0, kappa1`` (kept for the benchmark's comparison only).

    ``e ~ Normal(0, s^2 + k0^2 + k1^2 d)`` per held-out run, maximised on a
    grid; replaced by :mod:`bayesscale.discrepancy`.
    """
    grid = np.concatenate([[0.0], np.geomspace(1e-4, 0.2, 80)])
    e, s, d = (np.asarray(a, dtype=float)[None, None, :] for a in (errors, scales, distances))
    k0, k1 = grid[:, None, None], grid[None, :, None]
    v = s**2 + k0**2 + k1**2 * d
    ll = -0.5 * np.sum(np.log(v) + e**2 / v, axis=-1)
    i, j = np.unravel_index(np.argmax(ll), ll.shape)
    return float(grid[i]), float(grid[j])


def fold_tilt(x, err, mu) -> tuple[float, float]:
    """Tilt of a held-out budget's errors: their slope in ``x = log(D / N)``, and its standard deviation.

    The slope is Theil-Sen's (the median of pairwise slopes: one bad run
    cannot swing it); its variance adds the spread of the Theil-Sen 90%
    interval (as a normal sd) and the fold fit's own uncertainty about the
    law's slope there (the variance over its draws of the least-squares
    slope of ``mu``, ``(S, n)``).  NaN when the budget has fewer than
    :data:`TILT_MIN_RUNS` runs or spans less than :data:`TILT_MIN_SPREAD`
    in ``x``.
    """
    from scipy.stats import theilslopes

    x, err = np.asarray(x, float), np.asarray(err, float)
    if x.size < TILT_MIN_RUNS or np.ptp(x) < TILT_MIN_SPREAD:
        return math.nan, math.nan
    fit = theilslopes(err, x, alpha=0.9)
    xc = x - x.mean()
    law_slopes = (np.asarray(mu, float) - np.asarray(mu, float).mean(axis=1, keepdims=True)) @ xc / (xc @ xc)
    sd = math.sqrt(((fit.high_slope - fit.low_slope) / (2 * 1.645)) ** 2 + float(np.var(law_slopes)))
    return float(fit.slope), sd


def _score_origin(post, runs: Runs, label: str, tests, full, ok: bool, problem: str):
    """Fold rows and covariances of one origin."""
    spec = post.spec
    p = post.params
    S = post.n_draws
    obs = spec.observation
    noise_f = _median_noise_factor(spec.likelihood, spec.priors.df)
    sigma2 = float(np.median(obs.noise_scale(p)) ** 2)
    tau2 = float(np.mean(p["tau"] ** 2)) if "tau" in p else 0.0
    c_train = float(post.runs.C.max())
    rows, m_loss, m_nopt, extra_loss, extra_nopt, pts = [], [], [], [], [], []
    for h, mask in tests:
        te = runs.subset(mask)
        Cb = float(np.exp(np.log(te.C).mean()))
        mu = law_log_loss(post, te.N, te.D, U=te.U) + bend(post, te.C)  # (S, n): the fold model's mean, bend included
        err_runs = np.log(te.loss) - np.median(mu, axis=0)
        m_loss.append(mu.mean(axis=1))
        extra_loss.append(tau2 + noise_f * sigma2 / len(te))
        log_n = log_n_opt(post.law, post.law_params, Cb)  # (S,)
        m_nopt.append(log_n)
        vx, vvar = isoflop_vertex(te.N, te.loss)
        if np.isfinite(vx):
            ref, ref_var, source = vx, vvar, "isoflop vertex"
        elif full is not None:
            fl = log_n_opt(post.law, full.law_params, Cb)
            fl = fl[np.isfinite(fl)]
            ref, ref_var, source = float(np.median(fl)), float(np.var(fl)), "full-data fit"
        else:
            ref, ref_var, source = math.nan, math.nan, "none"
        extra_nopt.append(ref_var)
        tilt, tilt_sd = fold_tilt(np.log(te.D / te.N), err_runs, mu)
        rows.append({"origin": label, "budget_C": Cb, "horizon": h, "d": float(np.log10(Cb / c_train)),
                     "n_runs": len(te), "ok": ok, "problem": problem,
                     "loss_error": float(np.median(err_runs)), "n_opt_error": float(ref - np.median(log_n)),
                     "n_opt_reference": source, "n_opt_empirical": float(np.exp(ref)) if np.isfinite(ref) else math.nan,
                     "n_opt_fold_median": float(np.exp(np.median(log_n))), "tilt": tilt, "tilt_sd": tilt_sd})
        if h == 1:  # per-run points of the former estimator (benchmark comparison)
            rng = np.random.default_rng([int(post.info.get("seed", 0)), 5])
            yrep = obs.sample(rng, mu, {k: p[k][:, None] for k in obs.sites})
            q16, med, q84 = np.quantile(yrep, [0.16, 0.5, 0.84], axis=0)
            pts.append(pd.DataFrame({"origin": label, "error": np.log(te.loss) - med, "scale": (q84 - q16) / 2,
                                     "d": np.maximum(np.log10(te.C / c_train), 0.0)}))
    cov_loss = np.atleast_2d(np.cov(np.stack(m_loss))) + np.diag(extra_loss)
    cov_nopt = np.atleast_2d(np.cov(np.stack(m_nopt))) + np.diag(np.nan_to_num(extra_nopt))
    for i, r in enumerate(rows):
        r["loss_sd"] = float(math.sqrt(cov_loss[i, i]))
        r["n_opt_sd"] = float(math.sqrt(cov_nopt[i, i]))
    del S
    return rows, cov_loss, cov_nopt, pts


def _fold_spec(spec: ModelSpec) -> ModelSpec:
    """The model of a fold fit whose full fit has its bend on: the bend stays on with fewer budgets."""
    return dataclasses.replace(spec, bend="on") if spec.bend == "auto" else spec


def _anchors(full) -> list[dict]:
    """In-sample rows (``horizon = 0``) of the full fit ``full``, one per training budget.

    ``loss_error``: the median residual of the budget's runs in log loss
    (what a per-budget offset looks like in the data); ``n_opt_error``: the
    full fit's median N_opt against the budget's empirical optimum
    (IsoFLOP-shaped budgets only), ``n_opt_sd`` the empirical optimum's own
    sd.  They identify the nuggets and the anchored N_opt model: errors
    that a new budget carries however close it is to the data.

    Returns
    -------
    rows : list of dict
    law : ndarray or None
        ``(k, S)``: the full fit's log N_opt for each of its draws at the
        ``k`` rows with a finite ``n_opt_error``, in their order.
    """
    if full is None:
        return [], None
    runs, obs = full.runs, full.spec.observation
    c_max = float(runs.C.max())
    noise_f = _median_noise_factor(full.spec.likelihood, full.spec.priors.df)
    sigma2 = float(np.median(obs.noise_scale(full.params)) ** 2)
    S = full.n_draws
    rows, law = [], []
    for b in np.unique(runs.budget):
        sel = runs.budget == b
        idx = np.flatnonzero(sel)
        Cb = float(np.exp(np.log(runs.C[sel]).mean()))
        med, total = np.empty(idx.size), np.zeros(S)  # chunked: never S x n values at once
        for part in np.array_split(np.arange(idx.size), max(1, idx.size * S // CHUNK_ELEMENTS)):
            i = idx[part]
            mu = law_log_loss(full, runs.N[i], runs.D[i], U=None if runs.U is None else runs.U[i]) + bend(full, runs.C[i])
            med[part] = np.median(mu, axis=0)
            total += mu.sum(axis=1)
        resid = np.log(runs.loss[sel]) - med
        loss_sd = math.sqrt(float(np.var(total / idx.size)) + noise_f * sigma2 / int(sel.sum()))
        vx, vvar = isoflop_vertex(runs.N[sel], runs.loss[sel])
        ln = log_n_opt(full.law, full.law_params, Cb) if np.isfinite(vx) else np.array([])
        if ln.size and np.isfinite(ln).any():
            law.append(ln)
        ln = ln[np.isfinite(ln)]
        rows.append({"origin": "in-sample", "budget_C": Cb, "horizon": 0, "d": float(np.log10(Cb / c_max)),
                     "n_runs": int(sel.sum()), "ok": True, "problem": "", "loss_error": float(np.median(resid)),
                     "loss_sd": loss_sd,
                     "n_opt_error": float(vx - np.median(ln)) if ln.size else math.nan,
                     "n_opt_sd": float(math.sqrt(vvar)) if ln.size else math.nan,
                     "n_opt_reference": "isoflop vertex" if ln.size else "none",
                     "n_opt_empirical": float(np.exp(vx)) if ln.size else math.nan,
                     "n_opt_fold_median": float(np.exp(np.median(ln))) if ln.size else math.nan,
                     "tilt": math.nan, "tilt_sd": math.nan})
    return rows, (np.stack(law) if law else None)


def calibrate(datasets: list[Runs], spec: ModelSpec, *, seed: int, device=None, progress: bool | None = False,
              full: list | None = None, min_folds: int = MIN_FOLDS, pools=None) -> list[Discrepancy]:
    """A :class:`~bayesscale.discrepancy.Discrepancy` for each data set, from its rolling-origin refits.

    All origins of all data sets run as one batched
    :func:`bayesscale.inference.sample` call.

    Parameters
    ----------
    datasets : list of Runs
    spec : ModelSpec
    seed : int
    device : str, optional
    progress : bool, optional
        Progress bar and "calibrating: fold k of n" on stderr.
    full : list of Posterior, optional
        Per data set, the full fit: the reference for N_opt at held-out
        budgets that are not IsoFLOP-shaped, and the in-sample anchors of
        the nuggets (see :func:`_anchors`).
    min_folds : int
        Fewest usable folds to calibrate.
    pools : list of list of int, optional
        Sets of related data sets (indices): a member with too few log-loss
        folds of its own borrows the others' (see ``pooled`` in
        :func:`~bayesscale.discrepancy.fit_discrepancy`).
    """
    from .diagnostics import screen
    from .posterior import Posterior

    jobs = []  # (dataset index, origin label, train runs, tests)
    for k, runs in enumerate(datasets):
        for label, train, tests in horizon_folds(runs):
            jobs.append((k, label, runs.subset(train), tests))
    facts: dict[int, list] = {k: [] for k in range(len(datasets))}
    if jobs:
        n = len(jobs)
        # the folds refit the model of the full fit: where its bend is on, theirs is too (fewer budgets
        # would switch ``bend="auto"`` off, and the folds would then measure a model the fit does not use)
        bent = _fold_spec(spec)
        specs = [bent if spec.bend_scale(datasets[k]) > BEND_OFF_SCALE else spec for k, _, _, _ in jobs]
        draws = [None] * n
        for s in {id(x): x for x in specs}.values():
            idx = [j for j in range(n) if specs[j] is s]
            part = sample([jobs[j][2] for j in idx], s, FOLD_SETTINGS, seed=seed + 7919, device=device,
                          progress=progress, pad_like=datasets,
                          batch_size=MAX_ORIGINS if len(datasets) == 1 else None,
                          desc=f"calibrating: {len(idx)} fold refit{'s' * (len(idx) > 1)}")
            for j, d in zip(idx, part):
                draws[j] = d
        posts = [Posterior.from_draws(d, tr, s, FOLD_SETTINGS, {"seed": seed})
                 for (_, _, tr, _), d, s in zip(jobs, draws, specs)]
        health = screen([q._natural for q in posts], [q.stats for q in posts], max_tree_depth=FOLD_SETTINGS.max_tree_depth)
        n_draws = FOLD_SETTINGS.chains * FOLD_SETTINGS.draws
        show = progress if progress is not None else sys.stderr.isatty()
        for j, ((k, label, tr, tests), post) in enumerate(zip(jobs, posts)):
            if show:
                print(f"calibrating: fold {j + 1} of {n}", file=sys.stderr, flush=True)
            h = health.iloc[j]
            problems = []
            if not np.isfinite(h.max_r_hat) or h.max_r_hat > FOLD_RHAT:
                problems.append(f"R-hat {h.max_r_hat:.3g} > {FOLD_RHAT}")
            if h.divergences > FOLD_DIVERGENT * n_draws:
                problems.append(f"{int(h.divergences)} divergent transitions")
            fp = None if full is None else full[k]
            facts[k].append(_score_origin(post, datasets[k], label, tests, fp, not problems, "; ".join(problems)))
    built = []  # per data set: (folds, covariances, run points)
    for k in range(len(datasets)):
        (rows, law), cov, pts = _anchors(None if full is None else full[k]), {}, []
        for r, cl, cn, p in facts[k]:
            rows.extend(r)
            cov[("loss", r[0]["origin"])] = cl
            cov[("n_opt", r[0]["origin"])] = cn
            pts.extend(p)
        folds = pd.DataFrame(rows, columns=["origin", "budget_C", "horizon", "d", "n_runs", "ok", "problem",
                                            "loss_error", "loss_sd", "n_opt_error", "n_opt_sd", "n_opt_reference",
                                            "n_opt_empirical", "n_opt_fold_median", "tilt", "tilt_sd"])
        built.append((folds, cov, pd.concat(pts, ignore_index=True) if pts else None, law))
    pool_of = {k: [j for j in pool if j != k] for pool in (pools or []) for k in pool}
    return [fit_discrepancy(folds, cov, float(runs.C.max()), seed=seed, min_folds=min_folds, run_points=pts,
                            pooled=[built[j][:2] for j in pool_of.get(k, [])], anchor_law=law)
            for k, (runs, (folds, cov, pts, law)) in enumerate(zip(datasets, built))]


#: Why training curves are not calibrated (the error of ``fit(curves, extrapolation="calibrated")``).
CURVES_NOT_CALIBRATED = (
    "extrapolation='calibrated' learns the extrapolation error from rolling-origin refits that hold out whole "
    "budgets of final losses; training curves (checkpoints of runs) have no such budgets. Fit curves with "
    "extrapolation='none' (their default); the per-run offsets and AR(1) residuals carry their uncertainty.")


def calibrate_extrapolation(posterior, *, progress: bool | None = None, device=None):
    """Calibrate a posterior's extrapolation error: an explicit, expensive step.

    Refits the law on the rolling-origin folds of ``posterior.runs`` (one
    batched sampler call, about as much sampling as the fit itself) and
    returns a copy of the posterior that carries the
    :class:`~bayesscale.discrepancy.Discrepancy` (``extrapolation_mode =
    "calibrated"``).

    Parameters
    ----------
    posterior : Posterior
    progress : bool, optional
        Progress on stderr; by default when stderr is a terminal.
    device : str, optional
        JAX platform of the refits; by default the fit's.
    """
    if posterior.runs.is_curves:
        raise DataError(CURVES_NOT_CALIBRATED)
    disc = calibrate([posterior.runs], posterior.spec, seed=int(posterior.info.get("seed", 0)),
                     device=device if device is not None else posterior.info.get("device_request"),
                     progress=progress, full=[posterior])[0]
    return dataclasses.replace(posterior, extrapolation_mode="calibrated", discrepancy=disc)
