"""Calibrating extrapolation error on the data's own rolling-origin refits.

A posterior fitted to all runs describes the data well in-sample and can
still be overconfident one or more decades beyond it (measured on the
Chinchilla data: the plain law's 90% intervals cover 56% of the runs at
1e21 FLOPs and above when it is fitted on the smaller budgets).  In-sample
residuals cannot reveal this; only extrapolations can.  So, for each fit,
this module

1. refits the law on rolling-origin folds of the same runs (train on the
   budgets below a budget, predict that budget; the last ``MAX_FOLDS``
   budgets), all folds in one batched program with short chains;
2. collects each held-out run's error ``e`` (observed minus predictive
   median, log loss), its predictive scale ``s`` and its distance ``d``
   beyond its fold's data (decades of compute);
3. fits ``e ~ Normal(0, s**2 + kappa0**2 + kappa1**2 d)`` by maximum
   likelihood on a grid.

The result, an :class:`bayesscale.model.Extrapolation`, widens every
prediction beyond the data (``Posterior.predict``, ``allocate``,
``prob_below`` and the report).  With fewer than ``MIN_POINTS`` held-out
runs nothing is added, and the verdict says so.
"""

from __future__ import annotations

import numpy as np

from .data import Runs, rolling_folds
from .inference import SamplerSettings, sample
from .model import Extrapolation, ModelSpec

__all__ = ["calibrate", "estimate_kappa", "FOLD_SETTINGS", "MAX_FOLDS", "MIN_POINTS"]

#: Short chains for the rolling-origin refits: only predictive medians and scales are needed.
FOLD_SETTINGS = SamplerSettings(chains=2, warmup=300, draws=300)
#: Rolling-origin folds per fit (the largest budgets).
MAX_FOLDS = 6
#: Fewest held-out runs for an estimate.
MIN_POINTS = 5
#: Fewest training runs per fold.
MIN_TRAIN = 10

_GRID = np.concatenate([[0.0], np.geomspace(1e-4, 0.2, 80)])


def estimate_kappa(errors, scales, distances) -> tuple[float, float]:
    """Maximum-likelihood ``kappa0, kappa1`` of ``e ~ Normal(0, s^2 + k0^2 + k1^2 d)`` on a grid."""
    e, s, d = (np.asarray(a, dtype=float)[None, None, :] for a in (errors, scales, distances))
    k0, k1 = _GRID[:, None, None], _GRID[None, :, None]
    v = s**2 + k0**2 + k1**2 * d
    ll = -0.5 * np.sum(np.log(v) + e**2 / v, axis=-1)
    i, j = np.unravel_index(np.argmax(ll), ll.shape)
    return float(_GRID[i]), float(_GRID[j])


def calibrate(datasets: list[Runs], spec: ModelSpec, *, seed: int, device=None) -> list[Extrapolation]:
    """An :class:`Extrapolation` for each data set, from its rolling-origin refits.

    All folds of all data sets run as one batched :func:`bayesscale.inference.sample` call.
    """
    from .posterior import Posterior

    jobs = []  # (dataset index, train runs, test runs)
    for k, runs in enumerate(datasets):
        for _, train, test in rolling_folds(runs)[-MAX_FOLDS:]:
            if train.sum() >= MIN_TRAIN and len(np.unique(runs.budget[train])) >= 3:
                jobs.append((k, runs.subset(train), runs.subset(test)))
    points: dict[int, list] = {k: [] for k in range(len(datasets))}
    if jobs:
        # padded like the full data sets, and for one data set always MAX_FOLDS folds per call:
        # refits of similar data reuse one compiled program
        draws = sample([tr for _, tr, _ in jobs], spec, FOLD_SETTINGS, seed=seed + 7919, device=device,
                       progress=False, pad_like=datasets, batch_size=MAX_FOLDS if len(datasets) == 1 else None)
        for (k, tr, te), d in zip(jobs, draws):
            post = Posterior.from_draws(d, tr, spec, FOLD_SETTINGS, {"seed": seed})
            logd = np.log(post.predict_draws(te.N, te.D))
            q16, med, q84 = np.quantile(logd, [0.16, 0.5, 0.84], axis=0)
            dist = np.maximum(np.log10(te.C / tr.C.max()), 0.0)
            points[k].append((np.log(te.loss) - med, (q84 - q16) / 2, dist))
    out = []
    for k, runs in enumerate(datasets):
        pts = points[k]
        n = sum(len(p[0]) for p in pts)
        if n < MIN_POINTS:
            out.append(Extrapolation(c_max=float(runs.C.max()), n_folds=len(pts), n_points=n))
            continue
        e, s, d = (np.concatenate([p[i] for p in pts]) for i in range(3))
        k0, k1 = estimate_kappa(e, s, d)
        out.append(Extrapolation(kappa0=k0, kappa1=k1, c_max=float(runs.C.max()), n_folds=len(pts), n_points=n))
    return out
