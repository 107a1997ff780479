"""The NumPyro model: priors and a likelihood around the law, nothing else.

Parameterisation (centred, see DESIGN.md)
-----------------------------------------
The sampler does not see ``log A`` and ``log B`` directly.  It samples the
values of the two power-law terms at the centre of the data,

    t_N = log A - alpha * mean(log N)        t_D = log B - beta * mean(log D)

which are nearly uncorrelated with the exponents.  ``A`` and ``B`` are
recovered afterwards as ``exp(t_N + alpha * mean(log N))`` and likewise for
``B``.  Uncentred, NUTS needs about 30 times more leapfrog steps.

Observation model
-----------------
``y = log(loss)`` is modelled as ``y = log L(N, D) + u[budget] + eps`` with

* ``eps ~ StudentT(df, 0, sigma)`` (``likelihood="student_t"``, the default,
  robust to digitisation errors and outlying runs) or ``Normal(0, sigma)``
  (``likelihood="normal"``);
* ``u[g] ~ Normal(0, tau)``, an offset shared by all runs of one compute
  budget (``offsets="budget"``).  Runs trained at one budget share
  hyper-parameters, data order and evaluation noise, so their errors are
  correlated; the offset turns that into a parameter and makes a *new*
  budget bring new uncertainty (see :mod:`bayesscale.backtest`).
  ``offsets="none"`` gives the plain law.

Priors (weakly informative; all overridable through :class:`Priors`)
----------------------------------------------------------------------
=========  ===============================================================
``E``      ``log E ~ Normal(log(min loss) - 0.5, 1)``
``alpha``  ``LogNormal(log 0.3, 0.7)`` (95%: 0.08 to 1.2)
``beta``   ``LogNormal(log 0.3, 0.7)``
``t_N``    ``Normal(log(median loss) - 1, 1.5)``
``t_D``    ``Normal(log(median loss) - 1, 1.5)``
``sigma``  ``HalfNormal(0.05)`` (noise on log loss: 5% relative)
``tau``    ``HalfNormal(0.02)`` (per-budget offset scale)
``df``     fixed at 4 (Student-t degrees of freedom)
=========  ===============================================================

The data-relative locations (``min loss``, ``median loss``) only fix the
units: a loss measured in bits instead of nats moves them along.  Physics
constraints hold by construction: ``E, A, B > 0`` and ``alpha, beta > 0``.

Every prior number travels to the compiled sampler as data, so changing a
prior never recompiles.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .laws import log_loss_from_logs

__all__ = ["Priors", "ModelSpec", "LIKELIHOODS", "OFFSETS", "numpyro_model", "observation_logpdf",
           "observation_sample"]

LIKELIHOODS = ("student_t", "normal")
OFFSETS = ("none", "budget")


@dataclass(frozen=True)
class Priors:
    """Prior distributions of the model (see the module docstring).

    ``None`` locations are set from the data: ``E_loc = log(min loss) - 0.5``
    and ``t_loc = log(median loss) - 1``.

    Parameters
    ----------
    E_loc, E_scale : float
        Normal prior on ``log E``.
    alpha_median, alpha_log_sd, beta_median, beta_log_sd : float
        Log-normal priors on the exponents.
    t_loc, t_scale : float
        Normal priors on the two power-law terms (log scale) at the data
        centre.
    sigma_scale : float
        Half-normal scale of the noise on log loss.
    tau_scale : float
        Half-normal scale of the per-budget offsets (``offsets="budget"``).
    df : float
        Degrees of freedom of the Student-t likelihood.
    """

    E_loc: float | None = None
    E_scale: float = 1.0
    alpha_median: float = 0.3
    alpha_log_sd: float = 0.7
    beta_median: float = 0.3
    beta_log_sd: float = 0.7
    t_loc: float | None = None
    t_scale: float = 1.5
    sigma_scale: float = 0.05
    tau_scale: float = 0.02
    df: float = 4.0

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"Priors.{f.name} must be a finite number, got {v!r}")
            if f.name not in ("E_loc", "t_loc") and v <= 0:
                raise ValueError(f"Priors.{f.name} must be positive, got {v!r}")

    def resolve(self, loss) -> "Priors":
        """Return a copy with the data-relative locations filled in from ``loss``."""
        loss = np.asarray(loss, dtype=float)
        return dataclasses.replace(
            self,
            E_loc=float(np.log(loss.min()) - 0.5) if self.E_loc is None else self.E_loc,
            t_loc=float(np.log(np.median(loss)) - 1.0) if self.t_loc is None else self.t_loc,
        )

    def describe(self) -> dict[str, str]:
        """Plain-text description of each prior, for summaries and reports."""
        p = self
        return {
            "E": f"log E ~ Normal({_fmt(p.E_loc, 'log(min loss) - 0.5')}, {p.E_scale:g})",
            "alpha": f"alpha ~ LogNormal(log {p.alpha_median:g}, {p.alpha_log_sd:g})",
            "beta": f"beta ~ LogNormal(log {p.beta_median:g}, {p.beta_log_sd:g})",
            "A": f"log A - alpha mean(log N) ~ Normal({_fmt(p.t_loc, 'log(median loss) - 1')}, {p.t_scale:g})",
            "B": f"log B - beta mean(log D) ~ Normal({_fmt(p.t_loc, 'log(median loss) - 1')}, {p.t_scale:g})",
            "sigma": f"sigma ~ HalfNormal({p.sigma_scale:g})",
            "tau": f"tau ~ HalfNormal({p.tau_scale:g}) (budget offsets only)",
            "df": f"Student-t df = {p.df:g} (student_t likelihood only)",
        }


def _fmt(v, default):
    return default if v is None else f"{v:.4g}"


@dataclass(frozen=True)
class ModelSpec:
    """The structural choices of the model (these shape the compiled program).

    Parameters
    ----------
    likelihood : {"student_t", "normal"}
        Noise distribution on log loss.
    offsets : {"none", "budget"}
        ``"budget"`` adds a random offset shared by the runs of each compute
        budget; ``"none"`` is the plain law.
    priors : Priors
        Prior distributions (their numbers do not shape the program).
    """

    likelihood: str = "student_t"
    offsets: str = "none"
    priors: Priors = Priors()

    def __post_init__(self):
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if self.offsets not in OFFSETS:
            raise ValueError(f"offsets must be one of {OFFSETS}, got {self.offsets!r}")
        if not isinstance(self.priors, Priors):
            raise TypeError(f"priors must be a bayesscale.Priors, got {type(self.priors).__name__}")

    @property
    def structure(self) -> tuple[str, str]:
        """The part of the spec that shapes the compiled program."""
        return (self.likelihood, self.offsets)

    def to_dict(self) -> dict:
        return {"likelihood": self.likelihood, "offsets": self.offsets,
                "priors": dataclasses.asdict(self.priors)}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        return cls(likelihood=d["likelihood"], offsets=d["offsets"], priors=Priors(**d["priors"]))


def numpyro_model(data, *, likelihood: str, offsets: str):
    """NumPyro model of log loss.

    Parameters
    ----------
    data : dict of arrays
        Built by :func:`bayesscale.inference.model_data`: padded covariates
        ``log_N, log_D, y``, a boolean ``mask`` of real runs, budget indices
        ``group`` (``n_groups`` slots), centres ``c_N, c_D`` and the prior
        numbers.
    likelihood, offsets : str
        See :class:`ModelSpec`.
    """
    import numpyro
    import numpyro.distributions as dist

    p = data
    log_E = numpyro.sample("log_E", dist.Normal(p["E_loc"], p["E_scale"]))
    alpha = numpyro.sample("alpha", dist.LogNormal(jnp_log(p["alpha_median"]), p["alpha_log_sd"]))
    beta = numpyro.sample("beta", dist.LogNormal(jnp_log(p["beta_median"]), p["beta_log_sd"]))
    t_N = numpyro.sample("t_N", dist.Normal(p["t_loc"], p["t_scale"]))
    t_D = numpyro.sample("t_D", dist.Normal(p["t_loc"], p["t_scale"]))
    sigma = numpyro.sample("sigma", dist.HalfNormal(p["sigma_scale"]))
    mu = log_loss_from_logs(log_E, t_N + alpha * p["c_N"], t_D + beta * p["c_D"], alpha, beta,
                            p["log_N"], p["log_D"])
    if offsets == "budget":
        tau = numpyro.sample("tau", dist.HalfNormal(p["tau_scale"]))
        z = numpyro.sample("z_budget", dist.Normal(0.0, 1.0).expand(p["group_slots"].shape).to_event(1))
        mu = mu + tau * z[p["group"]]
    if likelihood == "student_t":
        noise = dist.StudentT(p["df"], mu, sigma)
    else:
        noise = dist.Normal(mu, sigma)
    numpyro.sample("y", noise.mask(p["mask"]), obs=p["y"])


def jnp_log(x):
    import jax.numpy as jnp

    return jnp.log(x)


def observation_logpdf(y, mu, sigma, likelihood: str, df: float):
    """Log density of observed log loss ``y`` (NumPy; broadcasts).

    The same noise model as :func:`numpyro_model`, for log-likelihood and
    predictive evaluation over posterior draws outside the sampler.
    """
    z = (y - mu) / sigma
    if likelihood == "normal":
        return -0.5 * z**2 - np.log(sigma) - 0.5 * math.log(2 * math.pi)
    c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return c - np.log(sigma) - (df + 1) / 2 * np.log1p(z**2 / df)


def observation_sample(rng: np.random.Generator, mu, sigma, likelihood: str, df: float):
    """Draw noisy log loss around ``mu`` (NumPy; broadcasts)."""
    shape = np.broadcast_shapes(np.shape(mu), np.shape(sigma))
    eps = rng.standard_normal(shape) if likelihood == "normal" else rng.standard_t(df, shape)
    return mu + sigma * eps
