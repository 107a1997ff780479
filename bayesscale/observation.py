"""Observation models: how observed runs scatter around a law.

The law gives ``mu = log L(x)`` for a run; an observation model gives the
density of the observed ``y = log(loss)`` around it.  The two are orthogonal:
every law gets every observation model (see :class:`bayesscale.ModelSpec`).

Each model offers the same four things: its own parameters (sites) and their
default priors, a NumPyro distribution for the sampler, and NumPy versions
of the log density and of predictive draws for analysis over posterior
draws.

Built-in models
---------------
``"student_t"``
    ``y ~ StudentT(df, mu, sigma)``: robust to digitisation errors and
    outlying runs (``df`` from :class:`bayesscale.Priors`, 4 by default).
``"normal"``
    ``y ~ Normal(mu, sigma)``.
``"ar1"``
    Autocorrelated Normal noise along an ordered sequence (the checkpoints of
    one training curve): residuals ``e = y - mu`` follow a stationary AR(1),
    ``e[0] ~ Normal(0, sigma)``, ``e[t] = rho e[t-1] + sqrt(1 - rho^2)
    Normal(0, sigma)``, so ``Cov(e[s], e[t]) = sigma^2 rho^|s - t|``.  The
    likelihood is written as the exact product of conditionals (each point
    given the previous point of its sequence), which equals that
    multivariate normal density.  The order comes from ``prev``: the index
    of the previous point of the same sequence, -1 for the first
    (:meth:`bayesscale.Runs.previous_index`: the previous row of the same
    budget group, i.e. the previous checkpoint of the same run for curves).
    Priors: ``sigma ~ HalfNormal(sigma_scale)``, ``rho ~ Uniform(-1, 1)``.

Models with ``ordered = True`` receive ``y`` and ``prev`` as keywords in
:meth:`Observation.distribution`, ``prev`` in :meth:`Observation.log_prob`
and :meth:`Observation.sample` (without it, every point is taken as the first
of its sequence: the stationary marginal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Observation", "StudentT", "Normal", "AR1", "get_observation", "OBSERVATIONS"]


@dataclass(frozen=True)
class Observation:
    """Base class of observation models (see the module docstring).

    Attributes
    ----------
    name : str
        The model's name.
    sites : tuple of str
        The model's own parameters, sampled after the law's.
    """

    name: str = ""
    sites: tuple = ("sigma",)
    #: Whether the density depends on the order of the points (gets ``y`` and ``prev``).
    ordered = False

    def priors(self, ctx, config) -> dict:
        """Default priors of the model's parameters (numpyro distributions)."""
        import numpyro.distributions as dist

        return {"sigma": dist.HalfNormal(config.sigma_scale)}

    def distribution(self, mu, p):
        """The NumPyro distribution of ``y`` given the law's ``mu`` and the model's parameters ``p``."""
        raise NotImplementedError

    def log_prob(self, y, mu, p) -> np.ndarray:
        """NumPy log density of ``y`` (broadcasts over draws and runs)."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, mu, p) -> np.ndarray:
        """NumPy predictive draws of ``y`` around ``mu`` (broadcasts)."""
        raise NotImplementedError

    def noise_scale(self, p):
        """A typical scale of the scatter, in log loss (for outlier screens and reports)."""
        return p["sigma"]


@dataclass(frozen=True)
class StudentT(Observation):
    """``y ~ StudentT(df, mu, sigma)`` (see the module docstring)."""

    name: str = "student_t"
    df: float = 4.0

    def distribution(self, mu, p):
        import numpyro.distributions as dist

        return dist.StudentT(self.df, mu, p["sigma"])

    def log_prob(self, y, mu, p):
        sigma, df = p["sigma"], self.df
        z = (y - mu) / sigma
        c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
        return c - np.log(sigma) - (df + 1) / 2 * np.log1p(z**2 / df)

    def sample(self, rng, mu, p):
        shape = np.broadcast_shapes(np.shape(mu), np.shape(p["sigma"]))
        return mu + p["sigma"] * rng.standard_t(self.df, shape)


@dataclass(frozen=True)
class Normal(Observation):
    """``y ~ Normal(mu, sigma)``."""

    name: str = "normal"

    def distribution(self, mu, p):
        import numpyro.distributions as dist

        return dist.Normal(mu, p["sigma"])

    def log_prob(self, y, mu, p):
        z = (y - mu) / p["sigma"]
        return -0.5 * z**2 - np.log(p["sigma"]) - 0.5 * math.log(2 * math.pi)

    def sample(self, rng, mu, p):
        shape = np.broadcast_shapes(np.shape(mu), np.shape(p["sigma"]))
        return mu + p["sigma"] * rng.standard_normal(shape)


@dataclass(frozen=True)
class AR1(Observation):
    """Stationary AR(1) Normal residuals along each sequence (see the module docstring).

    ``sigma`` is the marginal scale of a residual, ``rho`` the correlation
    of consecutive residuals of one sequence.
    """

    name: str = "ar1"
    sites: tuple = ("sigma", "rho")
    ordered = True

    def priors(self, ctx, config) -> dict:
        import numpyro.distributions as dist

        return {"sigma": dist.HalfNormal(config.sigma_scale), "rho": dist.Uniform(-1.0, 1.0)}

    @staticmethod
    def _conditional(xp, y, mu, p, prev):
        """Conditional mean and scale of each point given the previous one of its sequence."""
        rho, sigma = p["rho"], p["sigma"]
        if prev is None:
            return mu, sigma + 0.0 * mu
        prev = xp.asarray(prev)
        first = prev < 0
        e = y - mu
        e_prev = xp.take(e, xp.maximum(prev, 0), axis=-1)
        loc = mu + xp.where(first, 0.0, rho * e_prev)
        scale = xp.where(first, sigma, sigma * xp.sqrt(1.0 - rho**2))
        return loc, scale

    def distribution(self, mu, p, *, y=None, prev=None):
        import jax.numpy as jnp
        import numpyro.distributions as dist

        if y is None:
            return dist.Normal(mu, p["sigma"])
        loc, scale = self._conditional(jnp, y, mu, p, prev)
        return dist.Normal(loc, scale)

    def log_prob(self, y, mu, p, prev=None):
        y = np.broadcast_to(y, np.broadcast_shapes(np.shape(y), np.shape(mu)))
        loc, scale = self._conditional(np, y, mu, p, prev)
        z = (y - loc) / scale
        return -0.5 * z**2 - np.log(scale) - 0.5 * math.log(2 * math.pi)

    def sample(self, rng, mu, p, prev=None):
        shape = np.broadcast_shapes(np.shape(mu), np.shape(p["sigma"]), np.shape(p["rho"]))
        sigma = np.broadcast_to(p["sigma"], shape)
        rho = np.broadcast_to(p["rho"], shape)
        z = rng.standard_normal(shape)
        if prev is None:
            return mu + sigma * z
        prev = np.asarray(prev)
        e = np.empty(shape)
        for i in range(shape[-1]):  # prev[i] < i: rows of a sequence are in order
            j = prev[i]
            if j < 0:
                e[..., i] = sigma[..., i] * z[..., i]
            else:
                e[..., i] = rho[..., i] * e[..., j] + sigma[..., i] * np.sqrt(1 - rho[..., i] ** 2) * z[..., i]
        return mu + e


#: The built-in observation models by name (each built with its default settings).
OBSERVATIONS = {"student_t": StudentT, "normal": Normal, "ar1": AR1}


def get_observation(likelihood, config=None) -> Observation:
    """An :class:`Observation` from a model or a built-in's name.

    ``config`` (a :class:`bayesscale.Priors`) supplies the Student-t ``df``.
    """
    if isinstance(likelihood, Observation):
        return likelihood
    if likelihood == "student_t":
        return StudentT(df=4.0 if config is None else float(config.df))
    if likelihood in OBSERVATIONS:
        return OBSERVATIONS[likelihood]()
    raise ValueError(f"likelihood must be one of {tuple(OBSERVATIONS)} or a bayesscale Observation, "
                     f"got {likelihood!r}")
