"""Simulation-based calibration (Talts et al. 2018) of the fitting pipeline.

Draw parameters from the prior, simulate runs from the model with those
parameters, fit, and record where each true value ranks among its posterior
draws.  If the sampler and the model code are right, every rank is uniform;
a U shape means overconfident posteriors, a hump underconfident ones, a
slope bias.

SBC needs priors that do not depend on the data, so the data-relative prior
locations are fixed here (:data:`SBC_PRIORS`, centred on the Chinchilla
regime).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import laws
from .data import load_runs
from .fitting import FitWarning, fit_many
from .model import Priors
from .simulate import isoflop_design

__all__ = ["SBC_PRIORS", "SBCResult", "prior_draws", "simulation_based_calibration"]

#: Data-independent priors for SBC (the defaults, with the locations fixed).
SBC_PRIORS = Priors(E_loc=float(np.log(1.8)), t_loc=float(np.log(2.6) - 1.0))

PARAMS = ("E", "A", "B", "alpha", "beta", "sigma")


@dataclass(frozen=True, eq=False)
class SBCResult:
    """Ranks of the true parameters among posterior draws.

    Attributes
    ----------
    ranks : pandas.DataFrame
        One row per data set, one column per parameter: the number of
        (thinned) posterior draws below the truth, in ``0..n_ranks``.
    n_ranks : int
        Thinned draws per posterior (ranks take ``n_ranks + 1`` values).
    truths : pandas.DataFrame
        The drawn parameters.
    healthy : numpy.ndarray of bool
        Whether each fit's sampler diagnostics passed.
    """

    ranks: pd.DataFrame
    n_ranks: int
    truths: pd.DataFrame
    healthy: np.ndarray

    def uniformity(self, bins: int = 10) -> pd.DataFrame:
        """Chi-square test of uniform ranks per parameter (``bins`` equal bins).

        Returns
        -------
        pandas.DataFrame
            ``chi2``, ``dof`` and ``p_value`` per parameter.
        """
        from scipy.stats import chi2

        rows = {}
        for k in self.ranks:
            u = (self.ranks[k].to_numpy() + 0.5) / (self.n_ranks + 1)
            counts = np.histogram(u, bins=bins, range=(0, 1))[0]
            expected = len(u) / bins
            stat = float(((counts - expected) ** 2 / expected).sum())
            rows[k] = {"chi2": stat, "dof": bins - 1, "p_value": float(chi2.sf(stat, bins - 1))}
        return pd.DataFrame.from_dict(rows, orient="index")

    def coverage(self, levels=(0.5, 0.9)) -> pd.DataFrame:
        """Share of data sets whose central interval at each level contains the truth."""
        u = (self.ranks.to_numpy() + 0.5) / (self.n_ranks + 1)
        return pd.DataFrame({f"coverage_{round(p * 100)}": (np.abs(u - 0.5) <= p / 2).mean(axis=0) for p in levels},
                            index=self.ranks.columns)


def prior_draws(n: int, priors: Priors = SBC_PRIORS, *, c_N: float, c_D: float, seed: int = 0) -> pd.DataFrame:
    """Parameters drawn from the model's priors (natural scale)."""
    rng = np.random.default_rng(seed)
    p = priors
    alpha = np.exp(rng.normal(np.log(p.alpha_median), p.alpha_log_sd, n))
    beta = np.exp(rng.normal(np.log(p.beta_median), p.beta_log_sd, n))
    t_N, t_D = rng.normal(p.t_loc, p.t_scale, n), rng.normal(p.t_loc, p.t_scale, n)
    return pd.DataFrame({"E": np.exp(rng.normal(p.E_loc, p.E_scale, n)), "A": np.exp(t_N + alpha * c_N),
                         "B": np.exp(t_D + beta * c_D), "alpha": alpha, "beta": beta,
                         "sigma": np.abs(rng.normal(0, p.sigma_scale, n))})


def simulation_based_calibration(n_datasets: int = 200, *, chains: int = 2, warmup: int = 500, draws: int = 500,
                                 n_ranks: int = 99, design=None, seed: int = 0, device=None,
                                 progress: bool | None = None) -> SBCResult:
    """Run SBC: prior draws, simulated runs, fits, ranks.

    Parameters
    ----------
    n_datasets : int
        Simulated data sets (at least 200 for a real check).
    chains, warmup, draws : int
        Sampler settings of each fit.
    n_ranks : int
        Posterior draws kept (evenly thinned) per fit for the ranks.
    design : (N, D) arrays, optional
        The runs' design; default :func:`bayesscale.simulate.isoflop_design`.
    seed : int
        Random seed.

    Returns
    -------
    SBCResult
    """
    N, D = isoflop_design() if design is None else design
    N, D = np.asarray(N, float), np.asarray(D, float)
    c_N, c_D = np.log(N).mean(), np.log(D).mean()
    truths = prior_draws(n_datasets, c_N=c_N, c_D=c_D, seed=seed)
    rng = np.random.default_rng(seed + 1)
    datasets = []
    for _, t in truths.iterrows():
        mu = laws.log_loss(t, N, D)
        y = mu + t["sigma"] * rng.standard_t(SBC_PRIORS.df, N.shape)
        datasets.append(load_runs(pd.DataFrame({"N": N, "D": D, "loss": np.exp(y)})))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        posts = fit_many(datasets, chains=chains, warmup=warmup, draws=draws, seed=seed, priors=SBC_PRIORS,
                         extrapolation="none", device=device, progress=progress)
    S = chains * draws
    keep = np.linspace(0, S - 1, n_ranks).round().astype(int)
    ranks = {k: [] for k in PARAMS}
    for post, (_, t) in zip(posts, truths.iterrows()):
        for k in PARAMS:
            ranks[k].append(int(np.sum(post.params[k][keep] < t[k])))
    from .diagnostics import screen

    health = screen([p._natural for p in posts], [p.stats for p in posts], max_tree_depth=10)
    return SBCResult(ranks=pd.DataFrame(ranks), n_ranks=n_ranks, truths=truths, healthy=health.ok.to_numpy())
