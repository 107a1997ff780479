"""Candidate observation models around the Chinchilla law, as small standalone NumPyro models.

The law, in log space and centred like :mod:`bayesscale.model`::

    mu = log L(N, D) = logsumexp(log_E, t_N - alpha (log N - c_N), t_D - beta (log D - c_D))

with ``c_N = mean(log N)``, ``c_D = mean(log D)`` of the training runs, so
``log A = t_N + alpha c_N`` and ``log B = t_D + beta c_D``.  The priors of the
law are bayesscale's (see :mod:`bayesscale.model`).

An observation model says how the observed ``y = log(loss)`` scatters around
``mu``.  Each one is three pure pieces that can be lifted into the package:

* ``priors(info)``: a dict ``name -> numpyro distribution`` of its own
  parameters (sampled on unconstrained-friendly scales, e.g. log scales);
* ``log_prob(y, mu, p, x)``: JAX, the elementwise log density of ``y`` given
  ``mu`` and the parameter dict ``p`` (``x`` is ``log10 C - log10 C_ref``,
  used only by models whose scale moves with compute);
* ``sample(rng, mu, p, x, kind)``: NumPy predictive draws of ``y``;
  ``kind="run"`` is a run like the observed ones, ``kind="frontier"`` a
  well-tuned run (the law plus symmetric noise, no inefficiency).

Candidates
----------
``student_t``  y = mu + sigma t_4 (today's default).
``normal``     y = mu + sigma z.
``emg``        stochastic frontier: y = mu + u + eps, u ~ Exponential(mean lam),
               eps ~ Normal(0, sigma); exponentially modified Gaussian density.
``halfnormal`` stochastic frontier with u ~ HalfNormal(s_u): the skew-normal
               density with scale sqrt(sigma^2 + s_u^2) and shape s_u / sigma.
``emg_scale``  ``emg`` whose mean inefficiency moves with compute:
               lam(C) = lam0 * 10**(gamma * x), x = log10(C / C_ref).
``budget``     ``student_t`` plus an offset shared by the runs of one budget
               (this one is latent structure, handled by :func:`numpyro_model`).

:func:`fit` runs NUTS on one table of runs and returns posterior draws;
:func:`predict` turns them into predictive draws of loss at new runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import erfcx, log_ndtr

__all__ = ["ObsModel", "OBS_MODELS", "law_mu", "numpyro_model", "fit", "predict", "emg_log_prob",
           "skewnormal_log_prob", "student_t_log_prob"]

LOG_2PI = math.log(2 * math.pi)
SQRT2 = math.sqrt(2.0)
DF = 4.0

# ---------------------------------------------------------------------------
# elementwise log densities (JAX)


def student_t_log_prob(r, sigma, df=DF):
    """log density of r = y - mu under sigma * t_df."""
    c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return c - jnp.log(sigma) - (df + 1) / 2 * jnp.log1p((r / sigma) ** 2 / df)


def normal_log_prob(r, sigma):
    return -0.5 * (r / sigma) ** 2 - jnp.log(sigma) - 0.5 * LOG_2PI


def emg_log_prob(r, sigma, lam):
    """log density of r = u + eps, u ~ Exponential(mean lam), eps ~ Normal(0, sigma).

    f(r) = (1/lam) exp(sigma^2 / (2 lam^2) - r / lam) Phi(r / sigma - sigma / lam).

    With z = r / sigma - sigma / lam, the exponent and log Phi(z) cancel when
    z << 0 (lam << sigma, or r far below the frontier).  There
    log Phi(z) = log(erfcx(-z / sqrt 2) / 2) - z^2 / 2 and the exponent
    collapses to -r^2 / (2 sigma^2), so

        z < 0:   log f = -log lam - r^2 / (2 sigma^2) + log(erfcx(-z / sqrt2) / 2)
        z >= 0:  log f = -log lam + sigma^2 / (2 lam^2) - r / lam + log_ndtr(z)

    Both branches are evaluated on safe inputs (double ``where``), so
    neither values nor gradients overflow.
    """
    z = r / sigma - sigma / lam
    neg = z < 0
    z_neg = jnp.where(neg, z, -1.0)
    z_pos = jnp.where(neg, 1.0, z)
    a = -jnp.log(lam) - 0.5 * (r / sigma) ** 2 + jnp.log(0.5 * erfcx(-z_neg / SQRT2))
    b = -jnp.log(lam) + 0.5 * (sigma / lam) ** 2 - r / lam + log_ndtr(z_pos)
    return jnp.where(neg, a, b)


def skewnormal_log_prob(r, sigma, s_u):
    """log density of r = u + eps, u ~ HalfNormal(s_u), eps ~ Normal(0, sigma) (a skew-normal)."""
    omega = jnp.sqrt(sigma**2 + s_u**2)
    shape = s_u / sigma
    w = r / omega
    return math.log(2.0) - jnp.log(omega) - 0.5 * w**2 - 0.5 * LOG_2PI + log_ndtr(shape * w)


# ---------------------------------------------------------------------------
# observation models


@dataclass(frozen=True)
class ObsModel:
    """One observation model: its priors, its log density and its sampler.

    ``priors`` maps a dict of data facts (unused by the defaults; kept so a
    prior can be set in data units) to ``{name: distribution}``.
    """

    name: str
    priors: Callable[[dict], dict]
    log_prob: Callable  # (y, mu, p, x) -> elementwise log density (JAX)
    sample: Callable  # (rng, mu, p, x, kind) -> draws of y (NumPy)
    budget_offsets: bool = False
    curvature: bool = False
    description: str = ""


def _sigma_prior():
    # noise on log loss: median 1%, 95% between 0.14% and 7%
    return dist.Normal(math.log(0.01), 1.0)


def _lam_prior():
    # mean inefficiency on log loss: median 1%, 95% between 0.05% and 19%
    return dist.Normal(math.log(0.01), 1.5)


# Student-t (today's default) -------------------------------------------------

def _t_priors(info):
    return {"log_sigma": _sigma_prior()}


def _t_logp(y, mu, p, x=None):
    return student_t_log_prob(y - mu, jnp.exp(p["log_sigma"]))


def _t_sample(rng, mu, p, x=None, kind="run"):
    sigma = np.exp(p["log_sigma"])
    return mu + sigma * rng.standard_t(DF, np.shape(mu))


def _n_logp(y, mu, p, x=None):
    return normal_log_prob(y - mu, jnp.exp(p["log_sigma"]))


def _n_sample(rng, mu, p, x=None, kind="run"):
    return mu + np.exp(p["log_sigma"]) * rng.standard_normal(np.shape(mu))


# exponential inefficiency (EMG) ----------------------------------------------

def _emg_priors(info):
    return {"log_sigma": _sigma_prior(), "log_lam": _lam_prior()}


def _emg_logp(y, mu, p, x=None):
    return emg_log_prob(y - mu, jnp.exp(p["log_sigma"]), jnp.exp(p["log_lam"]))


def _emg_sample(rng, mu, p, x=None, kind="run"):
    shape = np.shape(mu)
    out = mu + np.exp(p["log_sigma"]) * rng.standard_normal(shape)
    if kind == "run":
        out = out + np.exp(p["log_lam"]) * rng.standard_exponential(shape)
    return out


# EMG on (total scale, skew ratio): the parameterisation that does not diverge ----
#
# s = sqrt(sigma^2 + lam^2) is what the data pin down best (the spread of the residuals),
# rho = lam / sigma is the skewness; sampling (log s, log rho) removes the funnel of
# (log sigma, log lam) when sigma -> 0 (the EMG tends to a shifted exponential whose cusp
# makes the law's parameters stiff).  log rho ~ Normal(0, 1): inefficiency between 1/7 and
# 7 times the noise, a proper frontier but never a pure cusp.

def _sr(p, xp):
    s, rho = xp.exp(p["log_s"]), xp.exp(p["log_rho"])
    c = 1.0 / xp.sqrt(1.0 + rho**2)
    return s * c, s * rho * c  # sigma, lam


def _emg2_priors(info):
    return {"log_s": dist.Normal(math.log(0.015), 1.0), "log_rho": dist.Normal(0.0, 1.0)}


def _emg2_logp(y, mu, p, x=None):
    sigma, lam = _sr(p, jnp)
    return emg_log_prob(y - mu, sigma, lam)


def _emg2_sample(rng, mu, p, x=None, kind="run"):
    sigma, lam = _sr(p, np)
    shape = np.shape(mu)
    out = mu + sigma * rng.standard_normal(shape)
    if kind == "run":
        out = out + lam * rng.standard_exponential(shape)
    return out


def _hn2_logp(y, mu, p, x=None):
    sigma, su = _sr(p, jnp)
    return skewnormal_log_prob(y - mu, sigma, su)


def _hn2_sample(rng, mu, p, x=None, kind="run"):
    sigma, su = _sr(p, np)
    shape = np.shape(mu)
    out = mu + sigma * rng.standard_normal(shape)
    if kind == "run":
        out = out + su * np.abs(rng.standard_normal(shape))
    return out


# half-normal inefficiency (skew-normal) --------------------------------------

def _hn_priors(info):
    return {"log_sigma": _sigma_prior(), "log_su": _lam_prior()}


def _hn_logp(y, mu, p, x=None):
    return skewnormal_log_prob(y - mu, jnp.exp(p["log_sigma"]), jnp.exp(p["log_su"]))


def _hn_sample(rng, mu, p, x=None, kind="run"):
    shape = np.shape(mu)
    out = mu + np.exp(p["log_sigma"]) * rng.standard_normal(shape)
    if kind == "run":
        out = out + np.exp(p["log_su"]) * np.abs(rng.standard_normal(shape))
    return out


# exponential inefficiency whose mean moves with compute ----------------------

def _emgs_priors(info):
    # gamma: change of log10(lam) per decade of compute; 95% within +-1 decade per decade
    return {"log_sigma": _sigma_prior(), "log_lam": _lam_prior(), "gamma": dist.Normal(0.0, 0.5)}


def _lam_at(p, x, xp):
    return xp.exp(p["log_lam"] + p["gamma"] * math.log(10.0) * x)


def _emgs_logp(y, mu, p, x):
    return emg_log_prob(y - mu, jnp.exp(p["log_sigma"]), _lam_at(p, x, jnp))


def _emgs_sample(rng, mu, p, x, kind="run"):
    shape = np.shape(mu)
    out = mu + np.exp(p["log_sigma"]) * rng.standard_normal(shape)
    if kind == "run":
        out = out + _lam_at(p, x, np) * rng.standard_exponential(shape)
    return out


OBS_MODELS: dict[str, ObsModel] = {
    "student_t": ObsModel("student_t", _t_priors, _t_logp, _t_sample,
                          description="y = mu + sigma t_4"),
    "normal": ObsModel("normal", _t_priors, _n_logp, _n_sample, description="y = mu + sigma z"),
    "emg": ObsModel("emg", _emg_priors, _emg_logp, _emg_sample,
                    description="y = mu + u + eps, u ~ Exp(mean lam), eps ~ N(0, sigma)"),
    "halfnormal": ObsModel("halfnormal", _hn_priors, _hn_logp, _hn_sample,
                           description="y = mu + u + eps, u ~ HalfNormal(s_u), eps ~ N(0, sigma) (skew-normal)"),
    "emg2": ObsModel("emg2", _emg2_priors, _emg2_logp, _emg2_sample,
                     description="emg sampled as total scale s and ratio rho = lam / sigma"),
    "halfnormal2": ObsModel("halfnormal2", _emg2_priors, _hn2_logp, _hn2_sample,
                            description="halfnormal sampled as total scale s and ratio rho = s_u / sigma"),
    "emg_scale": ObsModel("emg_scale", _emgs_priors, _emgs_logp, _emgs_sample,
                          description="emg with lam(C) = lam0 10^(gamma log10(C / C_ref))"),
    "budget": ObsModel("budget", _t_priors, _t_logp, _t_sample, budget_offsets=True,
                       description="student_t + Normal(0, tau) offset per budget"),
    # diagnostic, not a candidate default: does a bend in log C (a misspecified law) explain the bias?
    "curv_t": ObsModel("curv_t", _t_priors, _t_logp, _t_sample, curvature=True,
                       description="student_t around law + kappa (log10 C - mean)^2"),
    "curv_emg": ObsModel("curv_emg", _emg_priors, _emg_logp, _emg_sample, curvature=True,
                         description="emg around law + kappa (log10 C - mean)^2"),
}

#: prior scale of the curvature coefficient (log-loss units per squared decade of compute)
KAPPA_SCALE = 0.01

# ---------------------------------------------------------------------------
# the law and the NumPyro model


def law_mu(th, log_N, log_D, c_N, c_D, xp=jnp):
    """log L(N, D) from centred parameters ``th`` (log_E, alpha, beta, t_N, t_D)."""
    t_e = th["log_E"] + 0.0 * log_N
    t_n = th["t_N"] - th["alpha"] * (log_N - c_N)
    t_d = th["t_D"] - th["beta"] * (log_D - c_D)
    m = xp.maximum(xp.maximum(t_e, t_n), t_d)
    return m + xp.log(xp.exp(t_e - m) + xp.exp(t_n - m) + xp.exp(t_d - m))


def numpyro_model(d, obs: ObsModel):
    """Law priors (bayesscale's) + the observation model ``obs``.

    ``d``: log_N, log_D, y, x (log10 C - log10 C_ref), group (budget index),
    n_groups, c_N, c_D, E_loc, t_loc.
    """
    th = {
        "log_E": numpyro.sample("log_E", dist.Normal(d["E_loc"], 1.0)),
        "alpha": numpyro.sample("alpha", dist.LogNormal(math.log(0.3), 0.7)),
        "beta": numpyro.sample("beta", dist.LogNormal(math.log(0.3), 0.7)),
        "t_N": numpyro.sample("t_N", dist.Normal(d["t_loc"], 1.5)),
        "t_D": numpyro.sample("t_D", dist.Normal(d["t_loc"], 1.5)),
    }
    mu = law_mu(th, d["log_N"], d["log_D"], d["c_N"], d["c_D"])
    if obs.budget_offsets:
        tau = numpyro.sample("tau", dist.HalfNormal(0.02))
        z = numpyro.sample("z_budget", dist.Normal(0.0, 1.0).expand((d["n_groups"],)).to_event(1))
        mu = mu + tau * z[d["group"]]
    if obs.curvature:
        kappa = numpyro.sample("kappa", dist.Normal(0.0, KAPPA_SCALE))
        mu = mu + kappa * d["xc"] ** 2
    p = {k: numpyro.sample(k, v) for k, v in obs.priors(d).items()}
    numpyro.factor("y", obs.log_prob(d["y"], mu, p, d["x"]).sum())


def model_data(N, D, loss, C, group) -> dict:
    N, D, loss, C = (np.asarray(v, dtype=float) for v in (N, D, loss, C))
    log_N, log_D = np.log(N), np.log(D)
    return {"log_N": jnp.asarray(log_N), "log_D": jnp.asarray(log_D), "y": jnp.asarray(np.log(loss)),
            "x": jnp.asarray(np.log10(C) - np.log10(C.max())), "group": jnp.asarray(np.asarray(group, int)),
            "n_groups": int(np.max(group)) + 1, "c_N": float(log_N.mean()), "c_D": float(log_D.mean()),
            "E_loc": float(np.log(loss.min()) - 0.5), "t_loc": float(np.log(np.median(loss)) - 1.0),
            "log10_C_ref": float(np.log10(C.max())), "log10_C_mid": float(np.log10(C).mean()),
            "xc": jnp.asarray(np.log10(C) - np.log10(C).mean())}


@dataclass(frozen=True)
class Fit:
    obs: ObsModel
    samples: dict  # flat draws
    data: dict
    divergences: int
    n_draws: int
    seconds: float
    max_rhat: float


def fit(N, D, loss, C, group, obs: str | ObsModel, *, chains=2, warmup=500, draws=500, seed=0,
        target_accept=0.9) -> Fit:
    """NUTS on one table of runs; returns flat posterior draws and diagnostics."""
    import time

    from numpyro.diagnostics import summary
    from numpyro.infer import MCMC, NUTS

    obs = OBS_MODELS[obs] if isinstance(obs, str) else obs
    d = model_data(N, D, loss, C, group)
    kernel = NUTS(numpyro_model, dense_mass=True, target_accept_prob=target_accept)
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=chains, chain_method="sequential",
                progress_bar=False)
    t0 = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), d, obs, extra_fields=("diverging",))
    by_chain = mcmc.get_samples(group_by_chain=True)
    secs = time.perf_counter() - t0
    rh = summary({k: np.asarray(v) for k, v in by_chain.items() if k != "z_budget"}, group_by_chain=True)
    max_rhat = float(max(np.nanmax(np.asarray(s["r_hat"])) for s in rh.values()))
    samples = {k: np.asarray(v).reshape((-1,) + np.shape(v)[2:]) for k, v in by_chain.items()}
    div = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    return Fit(obs, samples, d, div, chains * draws, secs, max_rhat)


def predict(f: Fit, N, D, C, group_new=None, *, kind="run", seed=0) -> np.ndarray:
    """Predictive draws of loss at new runs, ``(S, n)``.

    ``group_new``: budget index of each new run in a numbering that continues
    the training groups; runs of a new budget share one fresh offset per draw
    (only for models with budget offsets).  ``kind``: "run" or "frontier".
    """
    rng = np.random.default_rng(seed)
    s = f.samples
    N, D, C = (np.asarray(v, dtype=float) for v in (N, D, C))
    th = {k: s[k][:, None] for k in ("log_E", "alpha", "beta", "t_N", "t_D")}
    mu = law_mu(th, np.log(N)[None], np.log(D)[None], f.data["c_N"], f.data["c_D"], xp=np)
    if f.obs.budget_offsets:
        g = np.asarray(group_new, int)
        G = f.data["n_groups"]
        uniq = np.unique(g[g >= G])
        fresh = {u: rng.standard_normal(mu.shape[0]) for u in uniq}
        zb = np.stack([s["z_budget"][:, gi] if gi < G else fresh[gi] for gi in g], axis=1)
        mu = mu + s["tau"][:, None] * zb
    if f.obs.curvature:
        mu = mu + s["kappa"][:, None] * ((np.log10(C) - f.data["log10_C_mid"]) ** 2)[None]
    p = {k: s[k][:, None] for k in f.obs.priors(f.data)}
    x = (np.log10(C) - f.data["log10_C_ref"])[None]
    y = f.obs.sample(rng, mu, p, x, kind)
    return np.exp(y)


def log_lik(f: Fit, N, D, C, loss, group_new=None, *, seed=0) -> np.ndarray:
    """Exact log predictive density of log loss per new run (mixture over draws; budget
    offsets of new budgets integrated by Monte Carlo, one draw per posterior draw)."""
    rng = np.random.default_rng(seed)
    s = f.samples
    N, D, C, loss = (np.asarray(v, dtype=float) for v in (N, D, C, loss))
    th = {k: jnp.asarray(s[k][:, None]) for k in ("log_E", "alpha", "beta", "t_N", "t_D")}
    mu = law_mu(th, jnp.log(N)[None], jnp.log(D)[None], f.data["c_N"], f.data["c_D"])
    if f.obs.budget_offsets:
        g = np.asarray(group_new, int)
        G = f.data["n_groups"]
        z = rng.standard_normal((mu.shape[0], g.size))
        zb = np.where(g[None] < G, s["z_budget"][:, np.minimum(g, G - 1)], z)
        mu = mu + s["tau"][:, None] * zb
    if f.obs.curvature:
        mu = mu + s["kappa"][:, None] * ((np.log10(C) - f.data["log10_C_mid"]) ** 2)[None]
    p = {k: jnp.asarray(s[k][:, None]) for k in f.obs.priors(f.data)}
    x = jnp.asarray(np.log10(C) - f.data["log10_C_ref"])[None]
    lp = np.asarray(f.obs.log_prob(jnp.log(loss)[None], mu, p, x))
    return np.asarray(jax.scipy.special.logsumexp(lp, axis=0) - np.log(lp.shape[0]))
