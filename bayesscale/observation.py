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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Observation", "StudentT", "Normal", "get_observation", "OBSERVATIONS"]


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


#: The built-in observation models by name (each built with its default settings).
OBSERVATIONS = {"student_t": StudentT, "normal": Normal}


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
