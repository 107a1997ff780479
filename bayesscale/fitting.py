"""The entry points: :func:`fit` one table of runs, :func:`fit_many` many at once."""

from __future__ import annotations

import dataclasses
import platform
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .calibration import calibrate
from .data import DataError, Runs, as_runs, load_runs
from .diagnostics import THRESHOLDS, screen
from .inference import SamplerSettings, sample
from .laws import get_law
from .model import ModelSpec, Priors
from .posterior import Posterior

__all__ = ["fit", "fit_many", "FitWarning", "retry_settings"]


class FitWarning(UserWarning):
    """The sampler diagnostics failed (the posterior should not be trusted yet), or a fit was retried."""


def retry_settings(settings: SamplerSettings) -> SamplerSettings:
    """The safer settings of the one automatic retry of a fit that failed its checks.

    Smaller steps (``target_accept`` at least 0.95), twice the warm-up, and a
    tree depth of at least 10.
    """
    return dataclasses.replace(settings, target_accept=max(0.95, settings.target_accept),
                               warmup=2 * settings.warmup, max_tree_depth=max(10, settings.max_tree_depth))


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


def _spec(likelihood, offsets, priors, law) -> ModelSpec:
    """The model from fit's keywords; ``priors`` is a :class:`Priors` or a dict of site -> distribution."""
    config, overrides = (priors, {}) if isinstance(priors, Priors) or priors is None else (Priors(), priors)
    if not isinstance(overrides, Mapping):
        raise TypeError("priors must be a bayesscale.Priors or a dict of sampled variable -> numpyro "
                        f"distribution, got {type(priors).__name__}")
    return ModelSpec(likelihood=likelihood, offsets=offsets, priors=config or Priors(), law=get_law(law),
                     prior_overrides=overrides)


def fit(runs, *, law="chinchilla", chains: int = 4, warmup: int = 1000, draws: int = 1000, seed: int = 0,
        likelihood: str = "student_t", offsets: str = "none", extrapolation: str = "calibrated",
        priors: Priors | Mapping | None = None,
        device: str | None = None, max_tree_depth: int = 10, target_accept: float = 0.8,
        progress: bool | None = None, retry: bool = True) -> Posterior:
    """Fit a scaling law (by default ``L(N, D) = E + A / N**alpha + B / D**beta``) to training runs with NUTS.

    Parameters
    ----------
    runs : Runs, pandas.DataFrame or path
        The runs (see :func:`bayesscale.load_runs`).
    law : str or Law
        The functional form: a built-in's name (``"chinchilla"``, the
        default; ``"kaplan"``, ``"data_constrained"``, ``"compute_only"``,
        ``"coupled"``; see :mod:`bayesscale.laws`) or a
        :class:`bayesscale.Law`, e.g. from :meth:`bayesscale.Law.from_function`.
    chains, warmup, draws : int
        NUTS chains, warm-up iterations and kept draws per chain.
    seed : int
        Random seed; the same seed gives the same draws.
    likelihood : {"student_t", "normal"}
        Noise on log loss (see :mod:`bayesscale.model`).
    offsets : {"none", "budget"}
        ``"budget"`` adds an offset shared by the runs of each budget.
    extrapolation : {"calibrated", "none"}
        ``"calibrated"`` (the default) widens predictions beyond the data by
        the error of the data's own rolling-origin extrapolations (see
        :mod:`bayesscale.calibration`; a batch of short refits, run the
        first time a prediction needs it).  ``"none"`` keeps parameter and
        noise uncertainty only.
    priors : Priors or dict, optional
        Tune the default priors (:class:`Priors`), or replace any sampled
        variable's prior with a numpyro distribution
        (``{"alpha": dist.LogNormal(-1.2, 0.3)}``; the variables are
        ``bs.ModelSpec(law=...).sites``).
    device : {"cpu", "gpu"}, optional
        JAX platform; by default JAX's default.
    max_tree_depth, target_accept
        NUTS settings.
    progress : bool, optional
        Progress bar; by default shown when stderr is a terminal.
    retry : bool
        When the sampler checks fail, fit once more with safer settings
        (:func:`retry_settings`: ``target_accept`` 0.95, twice the warm-up)
        and keep that fit.  ``posterior.info["retried"]`` then records why,
        and ``posterior.settings`` are the retry's.

    Returns
    -------
    Posterior

    Warns
    -----
    FitWarning
        When the diagnostics fail, with the same sentences as
        ``posterior.check().problems``; and when the fit was retried.
    """
    spec = _spec(likelihood, offsets, priors, law)
    return _fit_all([as_runs(runs, spec.law)], spec,
                    SamplerSettings(chains=chains, warmup=warmup, draws=draws, max_tree_depth=max_tree_depth,
                                    target_accept=target_accept),
                    seed=seed, device=device, progress=progress, extrapolation=extrapolation, retry=retry)[0]


def fit_many(datasets, *, group: str | None = None, law="chinchilla", chains: int = 4, warmup: int = 1000,
             draws: int = 1000, seed: int = 0, likelihood: str = "student_t", offsets: str = "none",
             extrapolation: str = "calibrated", priors: Priors | Mapping | None = None, device: str | None = None, batch_size: int | None = None, max_tree_depth: int = 10,
             target_accept: float = 0.8, progress: bool | None = None, retry: bool = True):
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
    elif isinstance(datasets, (Runs, str)) or not isinstance(datasets, Sequence):
        raise DataError("fit_many expects a list of run tables (Runs, DataFrames or paths), or a DataFrame "
                        "with group=; for one table use bayesscale.fit.")
    spec = _spec(likelihood, offsets, priors, law)
    runs = [as_runs(d, spec.law) for d in datasets]
    if not runs:
        raise DataError("fit_many got no data sets.")
    posts = _fit_all(runs, spec,
                     SamplerSettings(chains=chains, warmup=warmup, draws=draws, max_tree_depth=max_tree_depth,
                                     target_accept=target_accept),
                     seed=seed, device=device, progress=progress, batch_size=batch_size, labels=labels,
                     extrapolation=extrapolation, retry=retry)
    return dict(zip(labels, posts)) if labels is not None else posts


def _fit_all(runs: list[Runs], spec: ModelSpec, settings: SamplerSettings, *, seed: int, device, progress,
             batch_size=None, labels=None, extrapolation: str = "calibrated", retry: bool = True) -> list[Posterior]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32 - 8000:
        raise ValueError(f"seed must be a non-negative integer below 2**32 - 8000, got {seed!r}")
    if extrapolation not in ("calibrated", "none"):
        raise ValueError(f"extrapolation must be 'calibrated' or 'none', got {extrapolation!r}")
    draws = sample(runs, spec, settings, seed=seed, device=device, batch_size=batch_size, progress=progress)
    # many data sets: calibrate them all now, in one batch; one: on first use (Posterior.extrapolation)
    batch = extrapolation == "calibrated" and len(runs) > 1
    extra = calibrate(runs, spec, seed=seed, device=device) if batch else [None] * len(runs)
    versions = _versions()

    def posterior(k, d, used, retried=None):
        info = {"seed": seed, "dataset_index": k, "versions": versions, "device_request": device}
        if labels is not None:
            info["label"] = str(labels[k])
        if retried:
            info["retried"] = retried
        return Posterior.from_draws(d, runs[k], spec, used, info, extrapolation_mode=extrapolation,
                                    calibration=extra[k])

    posts = [posterior(k, d, settings) for k, d in enumerate(draws)]
    # the verdict's sampler checks, vectorised and cheap; PSIS-LOO (notes only) waits for posterior.check()
    health = _screen(posts)
    retried = [k for k in range(len(posts)) if retry and not health.ok.iloc[k]]
    if retried:
        safer = retry_settings(settings)
        again = sample([runs[k] for k in retried], spec, safer, seed=seed, device=device, batch_size=batch_size,
                       progress=progress)
        for k, d in zip(retried, again):
            why = {"first_settings": _describe(settings), "first_checks": _failed(health.loc[k]),
                   "first_sampling_s": float(draws[k].timing.get("sampling", np.nan)), "settings": _describe(safer)}
            posts[k] = posterior(k, d, safer, why)
        redo = _screen([posts[k] for k in retried])
        for col in health.columns:
            health.loc[retried, col] = redo[col].to_numpy()
    ok = health.ok.to_numpy(dtype=bool)
    if len(posts) == 1:
        said = []
        if retried:
            r = posts[0].info["retried"]
            said.append(f"The first run ({r['first_settings']}) failed its checks ({r['first_checks']}); it was "
                        f"rerun once with {r['settings']}, and that run " + ("passes." if ok[0] else "fails too."))
        if not ok[0]:
            said.append("The fit's diagnostics failed:\n" + "\n".join(f"- {p}" for p in posts[0].check().problems))
        if said:
            warnings.warn("\n".join(said), FitWarning, stacklevel=3)
    else:
        name = lambda k: labels[k] if labels is not None else k  # noqa: E731
        said = []
        if retried:
            shown = ", ".join(str(name(k)) for k in retried[:10]) + \
                (f" and {len(retried) - 10} more" if len(retried) > 10 else "")
            said.append(f"{len(retried)} of {len(posts)} data sets failed their checks and were rerun once with "
                        f"{_describe(retry_settings(settings))} ({int(ok[retried].sum())} of them pass now): "
                        f"{shown}. posterior.info['retried'] says why.")
        bad = [name(k) for k in np.flatnonzero(~ok)]
        if bad:
            shown = ", ".join(map(str, bad[:10])) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
            said.append(f"{len(bad)} of {len(posts)} data sets failed their diagnostics: {shown}. "
                        "See posterior.check() for each.")
        if said:
            warnings.warn(" ".join(said), FitWarning, stacklevel=3)
    return posts


def _screen(posts: list[Posterior]) -> pd.DataFrame:
    """The cheap sampler checks (:func:`bayesscale.diagnostics.screen`) of each posterior, in order."""
    depth = np.array([p.settings.max_tree_depth for p in posts])
    parts = []
    for d in np.unique(depth):  # vectorised per tree-depth limit (retried fits may have another)
        ks = np.flatnonzero(depth == d)
        h = screen([posts[k]._natural for k in ks], [posts[k].stats for k in ks], max_tree_depth=int(d))
        parts.append(h.set_index(ks))
    return pd.concat(parts).sort_index()


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
