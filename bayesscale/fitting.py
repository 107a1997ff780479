"""The entry points: :func:`fit` one table of runs, :func:`fit_many` many at once."""

from __future__ import annotations

import dataclasses
import platform
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .calibration import CURVES_NOT_CALIBRATED, calibrate
from .data import DataError, Runs, as_runs, load_runs
from .diagnostics import THRESHOLDS, diagnose, screen
from .inference import SamplerSettings, resume, sample
from .laws import get_law
from .model import ModelSpec, Priors
from .posterior import Posterior

__all__ = ["fit", "fit_many", "FitWarning", "retry_settings"]


class FitWarning(UserWarning):
    """The sampler diagnostics failed (the posterior should not be trusted yet), or a fit was retried."""


#: The retry's chains start from other points: its key is derived from ``seed + RETRY_SEED_OFFSET``.
RETRY_SEED_OFFSET = 104729

#: A fit whose only failed check is divergent transitions is retried by continuing its chains, from
#: where they ended, with this fraction of the adapted step size (:func:`bayesscale.inference.resume`).
CONTINUE_STEP_SCALE = 0.35


def retry_settings(settings: SamplerSettings) -> SamplerSettings:
    """The safer settings of the one automatic retry of a fit that failed its checks.

    A fit whose only failed check is divergent transitions is not rerun:
    its chains continue from their last draws with
    :data:`CONTINUE_STEP_SCALE` times the adapted step size
    (:func:`bayesscale.inference.resume`; its warm-up is kept, so the retry
    costs about one sampling phase).  Every other failure is rerun from
    fresh starting points with these settings:
    much smaller steps (``target_accept`` at least 0.98), the same warm-up,
    and a tree depth of at least 12.  Chosen by measurement
    (``benchmarks/RESULTS.md``, "robustness.py"): on the five hardest of 200
    well-specified data sets, four retry seeds each, 0.98 with the same
    warm-up passed 20 of 20 at about 1.8x the first run's leapfrog steps,
    where the earlier 0.95 with twice the warm-up left 10 of 20 divergent
    and cost more.  Single fits stay far below the depth limit (about 23
    steps per draw); grouped fits need long trajectories at 0.98 (300-470
    steps per draw on two-group data): with a limit of 10 (1,023 steps)
    five of six retried two-group fits hit it, with 12 four of six pass.
    """
    return dataclasses.replace(settings, target_accept=max(0.98, settings.target_accept),
                               max_tree_depth=max(12, settings.max_tree_depth))


def _describe(settings: SamplerSettings) -> str:
    return f"target_accept={settings.target_accept:g}, warmup={settings.warmup}, max_tree_depth={settings.max_tree_depth}"


def _versions() -> dict:
    import arviz_base
    import jax
    import numpy
    import numpyro

    from . import __version__

    return {"bayesscale": __version__, "jax": jax.__version__, "numpyro": numpyro.__version__,
            "arviz": arviz_base.__version__, "numpy": numpy.__version__, "pandas": pd.__version__,
            "python": platform.python_version()}


def _spec(likelihood, offsets, priors, law, bend="auto", pooling=None, centering="noncentred",
          profile="law") -> ModelSpec:
    """The model from fit's keywords; ``priors`` is a :class:`Priors` or a dict of site -> distribution."""
    config, overrides = (priors, {}) if isinstance(priors, Priors) or priors is None else (Priors(), priors)
    if not isinstance(overrides, Mapping):
        raise TypeError("priors must be a bayesscale.Priors or a dict of sampled variable -> numpyro "
                        f"distribution, got {type(priors).__name__}")
    return ModelSpec(likelihood=likelihood, offsets=offsets, priors=config or Priors(), law=get_law(law),
                     prior_overrides=overrides, bend=bend, pooling=pooling, centering=centering, profile=profile)


def _grouped_runs(runs, groups, law) -> Runs:
    """Runs that carry groups, from ``fit``'s ``runs`` and ``groups`` keywords."""
    if isinstance(groups, str):
        if isinstance(runs, Runs):
            if runs.group is None:
                raise DataError(f"groups={groups!r}: these runs carry no groups. Load them with "
                                f"bayesscale.load_runs(..., group={groups!r}), or pass the DataFrame or path.")
        else:
            runs = load_runs(runs, group=groups)
    elif groups is True:
        if not isinstance(runs, Runs) or runs.group is None:
            raise DataError("groups=True needs runs that carry groups: load them with "
                            "bayesscale.load_runs(..., group='column'), or pass groups='column'.")
    else:
        raise TypeError(f"groups must be a column name or True, got {groups!r}")
    return as_runs(runs, law)


def _extrapolation(extrapolation, runs: list[Runs]) -> str:
    """``"calibrated"`` by default for final losses (grouped fits: per group, see
    :func:`bayesscale.groups.calibrate_groups`); ``"none"`` for training curves, whose checkpoints are not
    runs at budgets that the rolling-origin folds could hold out."""
    curves = any(r.is_curves for r in runs)
    if extrapolation is None:
        return "none" if curves else "calibrated"
    if extrapolation == "calibrated" and curves:
        raise DataError(CURVES_NOT_CALIBRATED)
    return extrapolation



def _defaults(runs: list[Runs], likelihood, offsets, bend):
    """The observation model and offsets: for checkpoints of curves, per-run offsets and AR(1) residuals.

    Checkpoints of one curve are not independent (one run's seed, data
    order and hyper-parameters move the whole curve; evaluation noise
    lingers from one checkpoint to the next), so ``None`` means
    ``likelihood="ar1", offsets="budget"`` (budget = run) for curves and
    ``"student_t", "none"`` for final losses.  The bend in log compute
    (``bend="auto"``) is for final losses of runs at several budgets; along
    a curve, compute and steps move together, so curves get none.
    """
    curves = bool(runs) and all(r.is_curves for r in runs)
    if likelihood is None:
        likelihood = "ar1" if curves else "student_t"
    if offsets is None:
        offsets = "budget" if curves else "none"
    if bend == "auto" and curves:
        bend = "none"
    return likelihood, offsets, bend


def fit(runs, *, law="chinchilla", chains: int = 4, warmup: int = 1000, draws: int = 1000, seed: int = 0,
        likelihood: str | None = None, offsets: str | None = None, extrapolation: str | None = None,
        bend: str = "auto", priors: Priors | Mapping | None = None,
        device: str | None = None, max_tree_depth: int = 10, target_accept: float | None = None,
        progress: bool | None = None, groups: str | bool | None = None, pooling: str = "partial",
        centering: str = "noncentred", retry: bool = True, profile: str = "law"):
    """Fit a scaling law (by default ``L(N, D) = E + A / N**alpha + B / D**beta``) to training runs with NUTS.

    Parameters
    ----------
    runs : Runs, Curves, pandas.DataFrame or path
        The runs (see :func:`bayesscale.load_runs`), or training curves
        (:func:`bayesscale.load_curves`, one row per checkpoint; see
        :meth:`bayesscale.Curves.to_runs` for the parameter convention).
    law : str or Law
        The functional form: a built-in's name (``"chinchilla"``, the
        default; ``"kaplan"``, ``"data_constrained"``, ``"compute_only"``,
        ``"coupled"``; see :mod:`bayesscale.laws`) or a
        :class:`bayesscale.Law`, e.g. from :meth:`bayesscale.Law.from_function`.
    chains, warmup, draws : int
        NUTS chains, warm-up iterations and kept draws per chain.
    seed : int
        Random seed; the same seed gives the same draws.
    likelihood : {"student_t", "normal", "ar1"}, optional
        Noise on log loss (see :mod:`bayesscale.observation`).  By default
        ``"student_t"``, and ``"ar1"`` (autocorrelated residuals along each
        curve) for training curves.
    offsets : {"none", "budget"}, optional
        ``"budget"`` adds an offset shared by the runs of each budget (for
        curves: by the checkpoints of each run).  By default ``"none"``, and
        ``"budget"`` for training curves.  ``likelihood="student_t",
        offsets="none"`` treats checkpoints as independent, which makes
        intervals too narrow (``benchmarks/curves_calibration.py``).
    extrapolation : {"calibrated", "none"}, optional
        ``"calibrated"`` (the default for final losses; training curves
        default to ``"none"`` and cannot be calibrated) calibrates the extrapolation error
        inside the fit: rolling-origin refits holding out 1-3 budgets ahead,
        one batched sampler call with short chains (about as much sampling
        as the fit; the progress bar says "calibrating"), and a Bayesian
        model of their errors (:mod:`bayesscale.discrepancy`) whose draws
        widen every prediction beyond the data: loss, N_opt, D_opt and
        tokens per parameter.  ``"none"`` keeps parameter and noise
        uncertainty only (the plain law); calibrate later with
        :func:`bayesscale.calibrate_extrapolation`.
    bend : {"auto", "on", "none"}
        A bend ``kappa (log10 C - m)^2`` in log compute on top of the law
        (see :class:`bayesscale.ModelSpec`): on by default when the runs span
        at least 5 budgets.  It moves predicted losses, never the
        compute-optimal split.  ``"none"`` fits the plain law.
    profile : {"law", "trend"}
        ``"trend"`` (opt-in, ``chinchilla`` law, single fits): the IsoFLOP
        profile's curvature changes linearly with log compute, about the
        law's own optimum (see :class:`bayesscale.ModelSpec`); the default
        ``"law"`` keeps the law's own profile.
    priors : Priors or dict, optional
        Tune the default priors (:class:`Priors`), or replace any sampled
        variable's prior with a numpyro distribution
        (``{"alpha": dist.LogNormal(-1.2, 0.3)}``; the variables are
        ``bs.ModelSpec(law=...).sites``).
    device : {"cpu", "gpu"}, optional
        JAX platform.  By default the CPU for small jobs (at most
        :data:`bayesscale.inference.AUTO_CPU_CHAINS` chains, data sets x
        chains in all: NUTS on a GPU is latency bound, and one
        fit ran about 30 times faster on a 2-core CPU than on an H100),
        else JAX's default (the GPU where there is one).
    max_tree_depth, target_accept
        NUTS settings.  ``target_accept`` defaults to 0.8, and to
        :data:`bayesscale.hierarchy.GROUPED_TARGET_ACCEPT` (0.95) for a grouped
        fit, whose first attempt otherwise rarely passes its checks.
    progress : bool, optional
        Progress bar; by default shown when stderr is a terminal.
    groups : str or True, optional
        Fit a grouped (hierarchical) model, one law per variant: a column
        naming each run's group (``"dataset"``), or True for runs loaded with
        ``load_runs(..., group=...)``.  Chinchilla law only; offsets
        ``"none"``.  Each group gets the bend by the single fit's rule and,
        with ``extrapolation="calibrated"``, an extrapolation error
        calibrated on its own rolling-origin folds.
        See :mod:`bayesscale.hierarchy` and :mod:`bayesscale.groups`.
    pooling : {"partial", "shared", "separate"}
        Grouped fits: how the groups' ``alpha``, ``beta`` and ``E`` are
        pooled (learned pooling scales, one shared value, or independent).
    centering : {"noncentred", "centred"}
        Grouped fits with partial pooling: the parameterisation (see
        :mod:`bayesscale.hierarchy`).
    retry : bool
        When the sampler checks fail, fit once more with safer settings and
        keep that fit: divergent transitions alone are retried by
        continuing the chains with a smaller step, anything else by a fresh
        run with :func:`retry_settings` (``target_accept`` 0.98, tree depth
        12).  ``posterior.info["retried"]`` then records why,
        and ``posterior.settings`` are the retry's.

    Returns
    -------
    Posterior, or GroupedPosterior for a grouped fit

    Warns
    -----
    FitWarning
        When the diagnostics fail, with the same sentences as
        ``posterior.check().problems``; and when the fit was retried.

    Notes
    -----
    Memory: the posterior keeps no array per run and draw (see
    :mod:`bayesscale.posterior`); the pointwise log-likelihood and
    replicated data are computed when asked.  Measured on a 2-core CPU at
    4 x (1,000 + 1,000): with ``extrapolation="none"`` a fit and its
    ``check()`` peak at 0.38 GB above the interpreter for 1,000 runs and
    0.57 GB for 10,000, 3.5 GB for 100,000 (most of it the sampler's
    process: glibc heap arenas holding XLA's per-step buffers); with the
    default calibration 0.51 GB for 10,000 (``benchmarks/memory.py``,
    RESULTS.md "memory").
    """
    law = get_law(law)
    grouped = groups is not None and groups is not False
    runs = _grouped_runs(runs, groups, law) if grouped else as_runs(runs, law)
    likelihood, offsets, bend = _defaults([runs], likelihood, offsets, bend)
    spec = _spec(likelihood, offsets, priors, law, bend, pooling if grouped else None, centering, profile)
    extrapolation = _extrapolation(extrapolation, [runs])
    target_accept = _target_accept(target_accept, grouped)
    return _fit_all([runs], spec,
                    SamplerSettings(chains=chains, warmup=warmup, draws=draws, max_tree_depth=max_tree_depth,
                                    target_accept=target_accept),
                    seed=seed, device=device, progress=progress, extrapolation=extrapolation, retry=retry)[0]


def _target_accept(target_accept: float | None, grouped: bool) -> float:
    """The NUTS acceptance target: the caller's, else 0.8, or the grouped model's higher default."""
    if target_accept is not None:
        return target_accept
    from .hierarchy import GROUPED_TARGET_ACCEPT

    return GROUPED_TARGET_ACCEPT if grouped else 0.8


def fit_many(datasets, *, group: str | None = None, law="chinchilla", chains: int = 4, warmup: int = 1000,
             draws: int = 1000, seed: int = 0, likelihood: str | None = None, offsets: str | None = None,
             extrapolation: str | None = None, bend: str = "auto", priors: Priors | Mapping | None = None,
             device: str | None = None, batch_size: int | None = None, max_tree_depth: int = 10,
             target_accept: float | None = None, progress: bool | None = None, groups: str | bool | None = None,
             pooling: str = "partial", centering: str = "noncentred", retry: bool = True, profile: str = "law"):
    """Fit the law to many data sets in one vectorised, compiled program.

    Every data set gets its own posterior and its own diagnostics.  Data sets
    are padded to one size, batched as data sets x chains, and split across
    all visible devices (several GPUs, or CPU host devices).

    Parameters
    ----------
    datasets : sequence of (Runs, DataFrame or path), or DataFrame
        The data sets; or one DataFrame with a ``group`` column.
    group : str, optional
        Column of ``datasets`` (a DataFrame) that names each data set.
    batch_size : int, optional
        Most data sets per program call, when memory requires chunks.
    groups : str or True, optional
        Fit every data set with the grouped model (see :func:`fit`): each
        data set carries its own groups (a column name, or True for runs
        loaded with ``group=``); they share one compiled program.
    Other parameters
        As for :func:`fit`.  Data set ``k`` uses seed ``(seed, k)``.

    Returns
    -------
    list of Posterior, or dict of label to Posterior
        A list in the order of ``datasets``; a dict keyed by group label when
        ``group`` is given.

    Warns
    -----
    FitWarning
        Naming the data sets whose diagnostics fail, and those retried
        (each data set that fails its checks is refitted once with
        :func:`retry_settings`, unless ``retry=False``).
    """
    labels = None
    if isinstance(datasets, pd.DataFrame):
        if group is None or group not in datasets.columns:
            raise DataError(f"fit_many got a DataFrame: pass group= naming the column that labels each data set "
                            f"(columns: {', '.join(map(str, datasets.columns))}).")
        parts = list(datasets.groupby(group, sort=True))
        labels = [label for label, _ in parts]
        datasets = [load_runs(part.drop(columns=[group])) for _, part in parts]
    elif isinstance(datasets, (Runs, str)) or hasattr(datasets, "to_runs") or not isinstance(datasets, Sequence):
        raise DataError("fit_many expects a list of run tables (Runs, DataFrames or paths), or a DataFrame "
                        "with group=; for one table use bayesscale.fit.")
    law = get_law(law)
    grouped = groups is not None and groups is not False
    runs = [_grouped_runs(d, groups, law) if grouped else as_runs(d, law) for d in datasets]
    if not runs:
        raise DataError("fit_many got no data sets.")
    likelihood, offsets, bend = _defaults(runs, likelihood, offsets, bend)
    spec = _spec(likelihood, offsets, priors, law, bend, pooling if grouped else None, centering, profile)
    extrapolation = _extrapolation(extrapolation, runs)
    target_accept = _target_accept(target_accept, grouped)
    posts = _fit_all(runs, spec,
                     SamplerSettings(chains=chains, warmup=warmup, draws=draws, max_tree_depth=max_tree_depth,
                                     target_accept=target_accept),
                     seed=seed, device=device, progress=progress, batch_size=batch_size, labels=labels,
                     extrapolation=extrapolation, retry=retry)
    return dict(zip(labels, posts)) if labels is not None else posts


def _fit_all(runs: list[Runs], spec: ModelSpec, settings: SamplerSettings, *, seed: int, device, progress,
             batch_size=None, labels=None, extrapolation: str = "calibrated", retry: bool = True) -> list:
    """Sample, screen, retry the fits that fail once with safer settings, then calibrate: the core of fit."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32 - 8000:
        raise ValueError(f"seed must be a non-negative integer below 2**32 - 8000, got {seed!r}")
    if extrapolation not in ("calibrated", "none"):
        raise ValueError(f"extrapolation must be 'calibrated' or 'none', got {extrapolation!r}")
    draws = sample(runs, spec, settings, seed=seed, device=device, batch_size=batch_size, progress=progress,
                   keep_state=retry)
    if retry:
        draws, cont = draws
    versions = _versions()

    def posterior(k, d, used, retried=None):
        info = {"seed": seed, "dataset_index": k, "versions": versions, "device_request": device}
        if labels is not None:
            info["label"] = str(labels[k])
        if retried:
            info["retried"] = retried
        if spec.pooling is not None:
            from .groups import GroupedPosterior

            return GroupedPosterior.from_draws(d, runs[k], spec, used, info)
        return Posterior.from_draws(d, runs[k], spec, used, info)

    posts = [posterior(k, d, settings) for k, d in enumerate(draws)]
    # the verdict's sampler checks, vectorised and cheap; PSIS-LOO (notes only) waits for posterior.check()
    health = _screen(posts)
    retried = [k for k in range(len(posts)) if retry and not health.ok.iloc[k]]
    if retried:
        # only divergent transitions failed, and every data set of the program call with them: continue
        # those chains with a smaller step (the sampling phase again, not the warm-up)
        divergent = {k for k in retried if _only_divergent(health.loc[k])}
        calls = tuple(c for c in cont.calls if set(c[0]) <= divergent)
        continued = [k for c in calls for k in c[0]]
        again = dict(zip(continued, resume(dataclasses.replace(cont, calls=calls), step_scale=CONTINUE_STEP_SCALE)))
        fresh = [k for k in retried if k not in again]
        safer = retry_settings(settings)
        # fresh starting points too (another key from the same seed): a chain stuck at its start gets out
        again.update(zip(fresh, sample([runs[k] for k in fresh], spec, safer, device=device,
                                       seed=(seed + RETRY_SEED_OFFSET) % (2**32 - 8000), batch_size=batch_size,
                                       progress=progress) if fresh else []))
        for k in retried:
            how = (f"the same chains continued from their last draws for {settings.draws} more each, with "
                   f"{CONTINUE_STEP_SCALE:g} x the adapted step size" if k not in fresh else _describe(safer))
            why = {"first_settings": _describe(settings), "first_checks": _failed(health.loc[k]),
                   "first_sampling_s": float(draws[k].timing.get("sampling", np.nan)), "settings": how,
                   "mode": "rerun" if k in fresh else "continued"}
            posts[k] = posterior(k, again[k], settings if k not in fresh else safer, why)
        redo = _screen([posts[k] for k in retried])
        for col in health.columns:
            health.loc[retried, col] = redo[col].to_numpy()
    ok = health.ok.to_numpy(dtype=bool)
    # calibration is an explicit step of the fit: all folds of all data sets in one batched call
    if extrapolation == "calibrated" and spec.pooling is not None:  # per group, from the group's own folds
        from .groups import calibrate_groups

        posts = calibrate_groups(posts, seed=seed, device=device, progress=progress)
    elif extrapolation == "calibrated":
        extra = calibrate(runs, spec, seed=seed, device=device, progress=progress,
                          full=posts)
        posts = [dataclasses.replace(p, extrapolation_mode="calibrated", discrepancy=x) for p, x in zip(posts, extra)]
    _warn(posts, retried, ok, settings, labels)
    return posts


def _warn(posts, retried: list, ok: np.ndarray, settings: SamplerSettings, labels) -> None:
    """One FitWarning naming the retried fits and those whose checks still fail."""
    said = []
    if len(posts) == 1:
        if retried:
            r = posts[0].info["retried"]
            how = f"rerun once with {r['settings']}" if r["mode"] == "rerun" else f"retried once: {r['settings']}"
            said.append(f"The first run ({r['first_settings']}) failed its checks ({r['first_checks']}); it was "
                        f"{how}, and that run " + ("passes." if ok[0] else "fails too."))
        if not ok[0]:
            # the sampler checks only: PSIS-LOO and the residuals (notes, never problems) wait for check()
            p0 = posts[0]
            problems = diagnose(p0._natural, p0.stats, max_tree_depth=p0.settings.max_tree_depth).problems
            said.append("The fit's diagnostics failed:\n" + "\n".join(f"- {p}" for p in problems))
        if said:
            warnings.warn("\n".join(said), FitWarning, stacklevel=4)
        return
    name = lambda k: labels[k] if labels is not None else k  # noqa: E731
    if retried:
        shown = ", ".join(str(name(k)) for k in retried[:10]) + \
            (f" and {len(retried) - 10} more" if len(retried) > 10 else "")
        said.append(f"{len(retried)} of {len(posts)} data sets failed their checks and were retried once (divergent "
                    f"transitions alone: their chains continued with {CONTINUE_STEP_SCALE:g} x the step size; "
                    f"otherwise rerun with {_describe(retry_settings(settings))}; {int(ok[retried].sum())} of them "
                    f"pass now): {shown}. posterior.info['retried'] says how and why.")
    bad = [name(k) for k in np.flatnonzero(~ok)]
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        said.append(f"{len(bad)} of {len(posts)} data sets failed their diagnostics: {shown}. "
                    "See posterior.check() for each.")
    if said:
        warnings.warn(" ".join(said), FitWarning, stacklevel=4)


def _screen(posts: list) -> pd.DataFrame:
    """The cheap sampler checks (:func:`bayesscale.diagnostics.screen`) of each posterior, in order."""
    depth = np.array([p.settings.max_tree_depth for p in posts])
    # grouped fits name their parameters by group, which differ between data sets: one at a time
    keys = depth if not any(p.spec.pooling for p in posts) else np.arange(len(posts))
    parts = []
    for d in np.unique(keys):  # vectorised per tree-depth limit (retried fits may have another)
        ks = np.flatnonzero(keys == d)
        h = screen([posts[k]._natural for k in ks], [posts[k].stats for k in ks],
                   max_tree_depth=int(depth[ks[0]]))
        parts.append(h.set_index(ks))
    return pd.concat(parts).sort_index()


def _only_divergent(row) -> bool:
    """Whether divergent transitions are the only failed check of a row of :func:`bayesscale.diagnostics.screen`."""
    t = THRESHOLDS
    return bool(row.divergences) and row.max_r_hat <= t["r_hat"] and row.min_bfmi >= t["bfmi"] \
        and min(row.min_ess_bulk, row.min_ess_tail) >= t["ess"] and not row.at_max_depth


def _failed(row) -> str:
    """The failed checks of one row of :func:`bayesscale.diagnostics.screen`, in words."""
    t = THRESHOLDS
    out = []
    if row.divergences:
        out.append(f"{int(row.divergences)} divergences")
    if not row.max_r_hat <= t["r_hat"]:
        out.append(f"max R-hat {row.max_r_hat:.3f}")
    if not min(row.min_ess_bulk, row.min_ess_tail) >= t["ess"]:
        out.append(f"min ESS {min(row.min_ess_bulk, row.min_ess_tail):.0f}")
    if not row.min_bfmi >= t["bfmi"]:
        out.append(f"E-BFMI {row.min_bfmi:.2f}")
    if row.at_max_depth:
        out.append(f"{int(row.at_max_depth)} draws at the maximum tree depth")
    return ", ".join(out) or "fewer than 2 chains"
