"""The NumPyro model: a law, an observation model and priors, nothing else.

The model joins three orthogonal pieces (see :class:`ModelSpec`):

* a :class:`bayesscale.Law` (:mod:`bayesscale.laws`) giving ``mu = log L``
  for each run from the law's parameters and the run's covariates;
* an observation model (:mod:`bayesscale.observation`): how observed
  ``y = log(loss)`` scatter around ``mu`` (Student-t by default);
* optionally ``u[g] ~ Normal(0, tau)``, an offset shared by all runs of one
  compute budget (``offsets="budget"``).  Runs trained at one budget share
  hyper-parameters, data order and evaluation noise, so their errors are
  correlated; the offset turns that into a parameter and makes a *new*
  budget bring new uncertainty (see :mod:`bayesscale.backtest`).
  ``offsets="none"`` gives the plain law.

Parameterisation (centred, see DESIGN.md)
-----------------------------------------
For the default (Chinchilla) law the sampler does not see ``log A`` and
``log B`` directly.  It samples the values of the two power-law terms at the
centre of the data,

    t_N = log A - alpha * mean(log N)        t_D = log B - beta * mean(log D)

which are nearly uncorrelated with the exponents.  ``A`` and ``B`` are
recovered afterwards as ``exp(t_N + alpha * mean(log N))`` and likewise for
``B``.  Uncentred, NUTS needs about 30 times more leapfrog steps.  The other
built-in laws are centred the same way (see each law's ``sites``).

Nor does it sample ``log E``: it samples ``log_L0 = log(E + exp(t_N) +
exp(t_D))``, the loss at the data centre, and derives ``log E`` (the prior on
``log E`` is kept, with its Jacobian; see :func:`bayesscale.laws.level_form`).
With ``log E`` sampled, a weakly identified term bent the posterior into a
curved ridge that gave divergences on a third of well-specified data sets.

Priors (weakly informative; all overridable)
--------------------------------------------
Default priors of the Chinchilla law and the noise:

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
The numbers are tuned with :class:`Priors`; any prior of any law can be
replaced by a numpyro distribution (``fit(..., priors={"alpha":
dist.LogNormal(-1.2, 0.3)})``, keyed by the law's sampled ``sites``).

Every prior number travels to the compiled sampler as data (the priors are
flattened to their leaves), so changing a prior never recompiles.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .laws import CHINCHILLA, FLOPS_PER_PARAM_TOKEN, Law, _xp, get_law
from .observation import Observation, get_observation

__all__ = ["Priors", "ModelSpec", "LIKELIHOODS", "OFFSETS", "numpyro_model", "context",
           "describe_prior", "prior_to_dict", "prior_from_dict", "bend_term", "bend_frame", "BENDS", "PROFILES",
           "profile_term",
           "BEND_MIN_BUDGETS"]

LIKELIHOODS = ("student_t", "normal", "ar1")
OFFSETS = ("none", "budget")
BENDS = ("auto", "on", "none")

#: Fewest budget groups for ``bend="auto"`` to switch the bend on: with fewer, a curvature in log C is
#: confounded with the law's own exponents (measured: on a 4-budget split the bend doubled the held-out
#: error), and the bend's prior is shrunk to zero (the compiled program stays the same).
BEND_MIN_BUDGETS = 5

#: Shapes of the IsoFLOP profile (:class:`ModelSpec`).
PROFILES = ("law", "trend")
#: Prior sd of the bend when it is off (``auto`` with too few budgets): zero for every purpose.
BEND_OFF_SCALE = 1e-6


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
    bend_scale : float
        Prior sd of the bend ``kappa`` (log-loss units per squared decade
        of compute; see :class:`ModelSpec`).
    profile_scale : float
        Prior sd of ``profile_trend``, the change per decade of compute of
        the IsoFLOP profile's extra curvature (log-loss units per squared
        decade of ``N / N_opt``; ``profile="trend"``, see :class:`ModelSpec`).
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
    bend_scale: float = 0.01
    profile_scale: float = 0.05

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
            "kappa": f"kappa ~ Normal(0, {p.bend_scale:g}) (bend in log C; off with fewer than "
                     f"{BEND_MIN_BUDGETS} budgets)",
            "profile_trend": f"profile_trend ~ Normal(0, {p.profile_scale:g}) (the IsoFLOP profile's curvature "
                             "per decade of C; profile='trend' only)",
        }


def _fmt(v, default):
    return default if v is None else f"{v:.4g}"


@dataclass(frozen=True)
class ModelSpec:
    """The model: a law, an observation model, budget offsets and priors.

    Parameters
    ----------
    likelihood : str or Observation
        The observation model (:mod:`bayesscale.observation`):
        ``"student_t"`` (default) or ``"normal"``.
    offsets : {"none", "budget"}
        ``"budget"`` adds a random offset shared by the runs of each compute
        budget; ``"none"`` is the plain law.
    priors : Priors
        Tuning numbers of the default priors.
    law : Law or str
        The functional form (:mod:`bayesscale.laws`); ``"chinchilla"`` by default.
    prior_overrides : dict of str to numpyro distribution
        Replace the default prior of any sampled site (the law's ``sites``,
        the observation model's, ``tau``).
    bend : {"auto", "on", "none"}
        A bend in log compute on top of the law:
        ``log loss = log L + kappa * (log10 C - m)**2 + noise``, with ``m``
        the mean ``log10 C`` of the runs (continued along its tangent
        beyond the runs' range of compute, :func:`bend_term`), and ``kappa ~ Normal(0,
        Priors.bend_scale)`` (sampled non-centred as ``z_bend``).  Measured
        on real IsoFLOP sweeps held out by budget (Marin, Chinchilla,
        Farseer): every law fitted below predicts the larger budgets 1-2%
        too high because the runs bend more in log C than the law allows;
        the bend removes that bias (benchmarks/HELDOUT.md).  It depends on C
        only, so it moves the loss at a budget, never the compute-optimal
        split.  ``"auto"`` (default) turns it on with at least
        :data:`BEND_MIN_BUDGETS` budget groups, for laws of N and D (not
        for ``compute_only``, itself a curve in C); ``"none"`` is the plain
        law.
        Beyond the data the bend continues as a straight line in log C (a
        parabola would be a strong claim), and the calibrated extrapolation
        error (:mod:`bayesscale.discrepancy`) is fitted on top.
    profile : {"law", "trend"}
        The shape of each IsoFLOP profile.  ``"law"`` (default): the law's
        own.  ``"trend"`` (opt-in; the ``chinchilla`` law, single fits):
        ``log loss += profile_trend * (log10 C - m) * (log10 (N / N_opt(C)))**2``,
        with ``N_opt(C)`` the law's own optimum at the run's compute (so the
        compute-optimal split and the loss at it are the law's) and
        ``profile_trend ~ Normal(0, Priors.profile_scale)`` (sampled
        non-centred as ``z_profile``), continued linearly in ``log10 C``
        beyond the data.  Measured on every real sweep (benchmarks/HELDOUT.md,
        session 10): the law's residual curvature across a budget rises
        with compute, so its profiles are too sharp at small budgets and too
        flat at large ones, and held-out runs away from the optimum come out
        worse than predicted.
    pooling : {None, "partial", "shared", "separate"}
        None: one law for all runs.  Otherwise a grouped (hierarchical) fit
        of runs that carry groups (:mod:`bayesscale.hierarchy`).
    centering : {"noncentred", "centred"}
        Parameterisation of the partially pooled group parameters.
    """

    likelihood: str = "student_t"
    offsets: str = "none"
    priors: Priors = Priors()
    law: Law = CHINCHILLA
    prior_overrides: Mapping = field(default_factory=dict)
    bend: str = "auto"
    pooling: str | None = None
    profile: str = "law"
    centering: str = "noncentred"

    def __post_init__(self):
        if not isinstance(self.priors, Priors):
            raise TypeError(f"priors must be a bayesscale.Priors, got {type(self.priors).__name__}")
        object.__setattr__(self, "law", get_law(self.law))
        obs = get_observation(self.likelihood, self.priors)
        object.__setattr__(self, "likelihood", obs.name)
        object.__setattr__(self, "_observation", obs)
        if self.offsets not in OFFSETS:
            raise ValueError(f"offsets must be one of {OFFSETS}, got {self.offsets!r}")
        if self.bend not in BENDS:
            raise ValueError(f"bend must be one of {BENDS}, got {self.bend!r}")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {self.profile!r}")
        if self.profile != "law" and (self.law.name != "chinchilla" or self.pooling is not None):
            raise ValueError(f"profile={self.profile!r} needs the law's optimum inside the model: it is implemented "
                             f"for single fits of the 'chinchilla' law (this fit: law {self.law.name!r}"
                             f"{', grouped' if self.pooling is not None else ''}); use profile='law'.")
        if self.pooling is not None:
            from . import hierarchy

            if self.pooling not in hierarchy.POOLINGS:
                raise ValueError(f"pooling must be one of {hierarchy.POOLINGS}, got {self.pooling!r}")
            if self.centering not in hierarchy.CENTERINGS:
                raise ValueError(f"centering must be one of {hierarchy.CENTERINGS}, got {self.centering!r}")
            hierarchy.check_grouped_law(self.law)
            if self.offsets != "none":
                raise ValueError("grouped fits support offsets='none' only; per-budget offsets within groups "
                                 "are not implemented yet.")
        import numpyro.distributions as dist

        sites = self.sites
        overrides = dict(self.prior_overrides)
        for k, v in overrides.items():
            if k not in sites:
                raise ValueError(f"priors={{{k!r}: ...}}: {k!r} is not a sampled variable of this model; "
                                 f"the variables are {', '.join(sites)} (law {self.law.name!r}).")
            if not isinstance(v, dist.Distribution):
                raise TypeError(f"the prior of {k!r} must be a numpyro distribution, got {type(v).__name__}")
        object.__setattr__(self, "prior_overrides", overrides)

    @property
    def observation(self) -> Observation:
        """The observation model object."""
        return self._observation

    @property
    def sites(self) -> tuple:
        """Every sampled variable (except the budget offsets' standardised values), in sampling order."""
        if self.pooling is not None:
            from .hierarchy import grouped_sites

            return grouped_sites(self.pooling, self.centering, self.bend != "none") + self.observation.sites
        return (self.law.sites + self.observation.sites + (("tau",) if self.offsets == "budget" else ())
                + (("z_bend",) if self.bend != "none" else ()) + (("z_profile",) if self.profile != "law" else ()))

    @property
    def structure(self) -> tuple:
        """The part of the spec that shapes the compiled program."""
        grouping = None if self.pooling is None else (self.pooling, self.centering)
        return (self.law, self.observation, self.offsets, self.bend != "none", self.profile != "law", grouping)

    def resolve_priors(self, ctx: Mapping) -> dict:
        """Every prior as a numpyro distribution, in sampling order, for data with summary ``ctx``."""
        import numpyro.distributions as dist

        if self.pooling is not None:
            from .hierarchy import grouped_priors

            out = grouped_priors(self.law, ctx, self.priors, self.pooling, self.centering, self.bend != "none")
        else:
            out = dict(self.law.priors(ctx, self.priors))
        out.update(self.observation.priors(ctx, self.priors))
        if self.offsets == "budget":
            out["tau"] = dist.HalfNormal(self.priors.tau_scale)
        if self.bend != "none":
            out["z_bend"] = dist.Normal(0.0, 1.0)
        if self.profile != "law":
            out["z_profile"] = dist.Normal(0.0, 1.0)
        out.update(self.prior_overrides)
        return {k: out[k] for k in self.sites if k in out}

    def bend_scale(self, runs) -> float:
        """Prior sd of the bend for these runs (:data:`BEND_OFF_SCALE` when it is off)."""
        # auto: on with enough budgets, for laws of N and D (a compute-only law is itself a curve in log C,
        # and a bend on top of it is not identified apart from its exponent; likewise a law with such a term
        # of its own, Law.auto_bend = False)
        on = self.bend == "on" or (self.bend == "auto" and runs.n_budgets >= BEND_MIN_BUDGETS
                                   and self.law.depends_on_size() and self.law.auto_bend)
        return float(self.priors.bend_scale) if on else BEND_OFF_SCALE

    def to_dict(self) -> dict:
        out = {"likelihood": self.likelihood, "offsets": self.offsets, "law": self.law.name, "bend": self.bend,
               "profile": self.profile, "priors": dataclasses.asdict(self.priors),
               "prior_overrides": {k: prior_to_dict(v) for k, v in self.prior_overrides.items()}}
        if self.pooling is not None:
            out.update(pooling=self.pooling, centering=self.centering, deviations=GROUP_DEVIATIONS)
        return out

    @classmethod
    def from_dict(cls, d: dict, law: Law | None = None) -> "ModelSpec":
        name = d.get("law", "chinchilla")
        if law is None:
            try:
                law = get_law(name)
            except ValueError:
                raise ValueError(f"this posterior was fitted with the user-defined law {name!r}; pass it "
                                 f"again: load_posterior(path, law=my_law)") from None
        elif law.name != name:
            raise ValueError(f"law={law.name!r} was passed but the posterior was fitted with law {name!r}")
        if d.get("pooling") == "partial" and d.get("deviations") != GROUP_DEVIATIONS:
            raise ValueError("this grouped posterior was written by an earlier bayesscale, whose partially pooled "
                             "model had free group deviations; this version reads its draws as sum-to-zero "
                             "deviations and would give wrong group parameters. Refit it (bayesscale fit ... "
                             "--group COLUMN --out FILE).")
        return cls(likelihood=d["likelihood"], offsets=d["offsets"], priors=Priors(**d["priors"]), law=law,
                   bend=d.get("bend", "none"), profile=d.get("profile", "law"),
                   prior_overrides={k: prior_from_dict(v) for k, v in d.get("prior_overrides", {}).items()},
                   pooling=d.get("pooling"), centering=d.get("centering", "noncentred"))


#: How a partially pooled grouped model parametrises its group deviations (see
#: :mod:`bayesscale.hierarchy`); stored with a grouped posterior and checked when it is read back.
GROUP_DEVIATIONS = "sum_to_zero"


def context(covariates: Mapping, loss) -> dict:
    """The data summary that data-relative priors and centred parameters read.

    ``c_<covariate>``: the mean of each finite covariate; ``log_min_loss`` and
    ``log_median_loss``.
    """
    loss = np.asarray(loss, dtype=float)
    ctx = {"log_min_loss": float(np.log(loss.min())), "log_median_loss": float(np.log(np.median(loss)))}
    for k, v in covariates.items():
        v = np.asarray(v, dtype=float)
        fin = v[np.isfinite(v)]
        ctx[f"c_{k}"] = float(fin.mean()) if fin.size else 0.0
    return ctx


def bend_term(kappa, log_C, center, lo, hi):
    """The bend at natural-log compute ``log_C`` (numpy or jax; broadcasts).

    ``kappa * x**2`` with ``x = log10 C - center`` inside the data's range
    of ``x`` (``lo`` to ``hi``), continued along its tangent outside it: a
    bend the data can show is not extrapolated as a parabola, only as the
    slope it has at the edge of the data.
    """
    x = log_C / math.log(10.0) - center
    xc = _clip(x, lo, hi)
    return kappa * xc * (2.0 * x - xc)


def _clip(x, lo, hi):
    import numpy as _np

    if type(x).__module__.startswith("jax") or type(lo).__module__.startswith("jax"):
        import jax.numpy as jnp

        return jnp.clip(x, lo, hi)
    return _np.clip(x, lo, hi)


def profile_term(trend, params, log_N, log_C, center):
    """The extra curvature across an IsoFLOP profile (numpy or jax; broadcasts).

    ``trend * (log10 C - center) * u**2`` with ``u = log10(N / N_opt(C))``
    and ``N_opt`` the ``chinchilla`` law's own optimum under ``C = 6 N D``
    (``params``: ``A, B, alpha, beta``).  Zero at the optimum, so it moves
    neither the compute-optimal split nor the loss there.
    """
    xp = _xp(log_N, params["alpha"], trend)
    alpha, beta = params["alpha"], params["beta"]
    # laws.frontier_coefficients in logs: G itself can overflow float32 for a wild warm-up draw
    log_G = (xp.log(alpha) + xp.log(params["A"]) - xp.log(beta) - xp.log(params["B"])) / (alpha + beta)
    log_n_opt = log_G + beta / (alpha + beta) * (log_C - math.log(FLOPS_PER_PARAM_TOKEN))
    u = (log_N - log_n_opt) / math.log(10.0)
    return trend * (log_C / math.log(10.0) - center) * u**2


def bend_frame(C) -> tuple[float, float, float]:
    """Centre and range of ``log10 C`` of the runs a bend is fitted to: ``(center, lo, hi)``."""
    x = np.log10(np.asarray(C, dtype=float))
    c = float(x.mean())
    return c, float(x.min() - c), float(x.max() - c)


def numpyro_model(data, *, law: Law, observation: Observation, offsets: str, prior_def, bend: bool = False,
                  profile: bool = False):
    """NumPyro model of log loss.

    Parameters
    ----------
    data : dict of arrays
        Built by :func:`bayesscale.inference.model_data`: padded covariates
        (``logN``, ...), ``y``, a boolean ``mask`` of real runs, budget
        indices ``group`` (``group_slots`` slots), the data summary
        (``ctx:*``) and the priors' leaves (``prior:*``).
    law, observation, offsets
        See :class:`ModelSpec`.
    bend, profile : bool
        Whether the bend in log compute, and the profile's trend in
        curvature, are on (see :class:`ModelSpec`).
    prior_def : jax PyTreeDef
        Structure of the dict of priors whose leaves are ``prior:*``.
    """
    import jax
    import numpyro
    import numpyro.distributions as dist

    n_leaves = prior_def.num_leaves
    priors = jax.tree.unflatten(prior_def, [data[f"prior:{i}"] for i in range(n_leaves)])
    ctx = {k[4:]: v for k, v in data.items() if k.startswith("ctx:")}
    if law.sample_sites is not None:  # the law's better-conditioned coordinates, same prior
        s = law.sample_sites({k: priors[k] for k in law.sites}, ctx)
    else:
        s = {name: numpyro.sample(name, priors[name]) for name in law.sites}
    s.update({name: numpyro.sample(name, priors[name]) for name in observation.sites})
    mu = law.model_log_loss({k: s[k] for k in law.sites}, ctx, *(data[c] for c in law.covariates))
    if offsets == "budget":
        tau = numpyro.sample("tau", priors["tau"])
        z = numpyro.sample("z_budget", dist.Normal(0.0, 1.0).expand(data["group_slots"].shape).to_event(1))
        mu = mu + tau * z[data["group"]]
    if bend:
        z_bend = numpyro.sample("z_bend", priors["z_bend"])
        mu = mu + bend_term(data["bend_scale"] * z_bend, data["bend_logC"], data["bend_center"], data["bend_lo"],
                            data["bend_hi"])
    if profile:
        z_profile = numpyro.sample("z_profile", priors["z_profile"])
        mu = mu + profile_term(data["profile_scale"] * z_profile, law.natural({k: s[k] for k in law.sites}, ctx),
                               data["logN"], data["profile_logC"], data["profile_center"])
    order = {"y": data["y"], "prev": data["prev"]} if getattr(observation, "ordered", False) else {}
    noise = observation.distribution(mu, {k: s[k] for k in observation.sites}, **order)
    numpyro.sample("y", noise.mask(data["mask"]), obs=data["y"])


def describe_prior(d) -> str:
    """A short text for a numpyro distribution, e.g. ``LogNormal(loc=-1.2, scale=0.7)``."""
    try:
        args = prior_to_dict(d)["args"]
        return f"{type(d).__name__}(" + ", ".join(f"{k}={v:.4g}" for k, v in args.items()) + ")"
    except (TypeError, ValueError):
        return repr(d)


def prior_to_dict(d) -> dict:
    """A JSON-able record of a numpyro distribution (its class and scalar arguments)."""
    import numpyro.distributions as dist

    cls = type(d)
    if getattr(dist, cls.__name__, None) is not cls:
        raise ValueError(f"cannot store a prior of type {cls.__name__}; use a distribution from "
                         "numpyro.distributions")
    args = {}
    for k in cls.arg_constraints:
        v = np.asarray(getattr(d, k))
        if v.shape:
            raise ValueError(f"cannot store a prior with array argument {k}")
        args[k] = float(v)
    return {"dist": cls.__name__, "args": args}


def prior_from_dict(d: dict):
    """Inverse of :func:`prior_to_dict`."""
    import numpyro.distributions as dist

    return getattr(dist, d["dist"])(**d["args"])
