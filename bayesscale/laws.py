"""Scaling laws: one small, explicit :class:`Law` object per functional form.

A :class:`Law` names its parameters, their default priors, the covariates it
reads from each run (``"logN"``, ``"logD"``, ``"logU"``, ``"logC"``), a pure
array function giving ``log L`` and, where one exists, a closed-form
compute-optimal frontier.  Built-in laws live in :data:`LAWS`
(:func:`get_law` looks one up by name); :meth:`Law.from_function` wraps a
function a user writes.  Every law goes through the same NumPyro model, the
same compiled NUTS engine and the same analysis.

The rest of this module holds the Chinchilla law as pure array functions
(the default law, and the closed forms that the analysis uses for it).

Everything here is a pure function of a parameter mapping and arrays.  The
functions use only array arithmetic, so they run unchanged on NumPy arrays
(posterior analysis, over thousands of draws at once) and on JAX arrays
inside the NumPyro model (where they are traced and differentiated).

The law is

    L(N, D) = E + A / N**alpha + B / D**beta

and, in log space, ``log L = logsumexp(log E, log A - alpha log N,
log B - beta log D)``.  Working in logs keeps ``N ~ 1e12`` and
``D ~ 1e13`` away from float32 overflow.

Parameters are passed as a mapping with the keys ``E, A, B, alpha, beta``
(natural scale).  Every value may be a scalar or an array of posterior
draws; arrays broadcast against ``N`` and ``D`` by the usual rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Law",
    "LAWS",
    "get_law",
    "COVARIATES",
    "PARAMETERS",
    "FLOPS_PER_PARAM_TOKEN",
    "log_loss",
    "loss",
    "log_loss_from_logs",
    "frontier_coefficients",
    "optimal_allocation",
]

#: The law's parameters, in display order.
PARAMETERS = ("E", "A", "B", "alpha", "beta")

#: Training FLOPs per parameter per token in the standard cost model C = 6 N D.
FLOPS_PER_PARAM_TOKEN = 6.0


def _xp(*arrays):
    """Return the array namespace (numpy or jax.numpy) of the inputs."""
    for a in arrays:
        if type(a).__module__.startswith("jax"):
            import jax.numpy as jnp

            return jnp
    return np


def log_loss_from_logs(log_E, log_A, log_B, alpha, beta, log_N, log_D):
    """Log loss of the law from log-scale parameters and log covariates.

    This is the numerically stable core: a three-term log-sum-exp.

    Parameters
    ----------
    log_E, log_A, log_B, alpha, beta : array_like
        Law parameters; ``log_*`` are natural logs.
    log_N, log_D : array_like
        Natural logs of model parameters and training tokens.

    Returns
    -------
    array
        ``log L(N, D)``, broadcast over all inputs.
    """
    xp = _xp(log_E, log_A, log_B, alpha, beta, log_N, log_D)
    t_e = log_E + 0.0 * log_N
    t_n = log_A - alpha * log_N
    t_d = log_B - beta * log_D
    m = xp.maximum(xp.maximum(t_e, t_n), t_d)
    return m + xp.log(xp.exp(t_e - m) + xp.exp(t_n - m) + xp.exp(t_d - m))


def log_loss(params: Mapping, N, D):
    """Natural log of the predicted loss ``L(N, D)``.

    Parameters
    ----------
    params : mapping
        ``E, A, B, alpha, beta`` on their natural scale (scalars or arrays
        of draws).
    N, D : array_like
        Model parameters and training tokens.

    Returns
    -------
    array
        ``log L(N, D)``.
    """
    xp = _xp(*(params[k] for k in PARAMETERS), N, D)
    return log_loss_from_logs(
        xp.log(params["E"]),
        xp.log(params["A"]),
        xp.log(params["B"]),
        params["alpha"],
        params["beta"],
        xp.log(N),
        xp.log(D),
    )


def loss(params: Mapping, N, D):
    """Predicted loss ``L(N, D) = E + A / N**alpha + B / D**beta``.

    See :func:`log_loss` for the arguments.
    """
    xp = _xp(*(params[k] for k in PARAMETERS), N, D)
    return xp.exp(log_loss(params, N, D))


def frontier_coefficients(params: Mapping):
    """Exponents and coefficient of the compute-optimal frontier under C = 6 N D.

    Minimising ``L`` at fixed ``C = 6 N D`` gives ``N_opt = G (C/6)**a`` and
    ``D_opt = (C/6)**b / G`` with

    * ``a = beta / (alpha + beta)``
    * ``b = alpha / (alpha + beta)``
    * ``G = (alpha A / (beta B)) ** (1 / (alpha + beta))``

    Parameters
    ----------
    params : mapping
        ``E, A, B, alpha, beta`` (scalars or arrays of draws).

    Returns
    -------
    dict
        ``a``, ``b`` and ``G`` with the shape of the inputs.
    """
    alpha, beta = params["alpha"], params["beta"]
    s = alpha + beta
    xp = _xp(alpha, beta, params["A"], params["B"])
    log_G = (xp.log(alpha) + xp.log(params["A"]) - xp.log(beta) - xp.log(params["B"])) / s
    return {"a": beta / s, "b": alpha / s, "G": xp.exp(log_G)}


def optimal_allocation(params: Mapping, C):
    """Loss-optimal model size and tokens at compute ``C`` under C = 6 N D.

    Parameters
    ----------
    params : mapping
        ``E, A, B, alpha, beta``.  Arrays of draws broadcast against ``C``;
        pass ``params[k][:, None]`` and ``C[None, :]`` for a draws x budgets
        grid.
    C : array_like
        Training compute in FLOPs.

    Returns
    -------
    N_opt, D_opt : arrays
        With ``6 * N_opt * D_opt == C`` up to rounding.
    """
    f = frontier_coefficients(params)
    xp = _xp(f["a"], C)
    log_c6 = xp.log(C) - np.log(FLOPS_PER_PARAM_TOKEN)
    log_G = xp.log(f["G"])
    log_N = log_G + f["a"] * log_c6
    return xp.exp(log_N), xp.exp(log_c6 - log_N)


# ---------------------------------------------------------------------------
# Law objects


#: Covariates a law may read from each run.
COVARIATES = {
    "logN": "natural log of the model parameters N",
    "logD": "natural log of the training tokens D",
    "logC": "natural log of the training compute C (given, or 6 N D)",
    "logU": "natural log of the unique training tokens U (column 'unique_tokens'; +inf when absent: no repetition)",
    "logS": "natural log of the optimizer steps S of a checkpoint (training curves only)",
    "logB": "natural log of the batch size B in tokens of a checkpoint (training curves only)",
}


def _identity(sites, ctx):
    return dict(sites)


@dataclass(frozen=True, eq=False)
class Law:
    """One functional form of a scaling law.

    A law is a value: build a built-in with :func:`get_law` (``"chinchilla"``,
    ``"kaplan"``, ``"data_constrained"``, ``"compute_only"``,
    ``"coupled"``) or your own with :meth:`Law.from_function`.  It knows
    nothing of NumPyro's inference or of the data beyond its covariates.

    Attributes
    ----------
    name : str
        Short name (reports, tables, files).
    params : tuple of str
        The law's parameters on their natural scale, in display order.
    covariates : tuple of str
        What ``log_loss`` reads from each run, in order: names from
        :data:`COVARIATES`.
    log_loss : callable
        ``log_loss(p, *covariates) -> log L``: a pure array function of a
        mapping of natural parameters (scalars or arrays of draws) and the
        covariates.  Written with array arithmetic only, or with
        ``jax.numpy``; it must broadcast.
    sites : tuple of str
        The variables the sampler draws, in order (often a reparameterised,
        better-conditioned version of ``params``).
    priors : callable
        ``priors(ctx, config) -> {site: numpyro distribution}``: the default
        priors, given the data's summary ``ctx`` (``c_logN`` etc., the means
        of the covariates; ``log_min_loss``, ``log_median_loss``) and a
        :class:`bayesscale.Priors` of tuning numbers.  Every number of a
        prior travels to the compiled sampler as data: changing a prior
        never recompiles.
    to_natural : callable
        ``to_natural(sites, ctx) -> params``: from the sampler's variables
        to the natural parameters.
    sampler_log_loss : callable or None
        ``(sites, ctx, *covariates) -> log L``, a numerically better path
        used inside the sampler; by default ``log_loss(to_natural(...))``.
    sample_sites : callable or None
        ``sample_sites(priors, ctx) -> {site: value}``, called inside the
        NumPyro model to draw the law's sites in coordinates that NUTS
        explores better, with the same joint prior (a change of variables
        with its Jacobian, see :func:`level_form`).  None draws each site
        from its prior.
    frontier : callable or None
        Closed-form compute-optimal allocation under ``C = 6 N D``:
        ``frontier(p, C) -> (N_opt, D_opt)``.  Without one, allocation is
        solved numerically (:mod:`bayesscale.frontier`).
    formula, reference : str
        For people: the equation and where it comes from.
    source_key : str
        What identifies the law's code in the on-disk program cache
        (built-ins: their name; user laws: a hash of the function's source;
        empty: do not store compiled programs on disk).
    auto_bend : bool
        Whether ``bend="auto"`` may switch the bend in log compute on for
        this law (:class:`bayesscale.ModelSpec`).  False for laws with a
        term of their own that is a curve in log compute, next to which a
        bend is hard to tell apart (the ``coupled`` law's ``gamma``, which
        changes how the data term falls across budgets).  ``bend="on"``
        still forces it.
    """

    name: str
    params: tuple
    covariates: tuple
    log_loss: Callable
    sites: tuple
    priors: Callable
    to_natural: Callable = _identity
    sampler_log_loss: Callable | None = None
    sample_sites: Callable | None = None
    frontier: Callable | None = None
    formula: str = ""
    reference: str = ""
    source_key: str = ""
    auto_bend: bool = True

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"a law's name must be a Python identifier, got {self.name!r}")
        unknown = [c for c in self.covariates if c not in COVARIATES]
        if unknown:
            raise ValueError(f"law {self.name!r}: unknown covariates {unknown}; the covariates are "
                             f"{', '.join(COVARIATES)}")
        if not self.params or not self.sites:
            raise ValueError(f"law {self.name!r} has no parameters")
        reserved = {"sigma", "rho", "tau", "z_budget", "y", "lambda_", "log_lambda", "z_bend", "kappa"}
        clash = reserved & (set(self.params) | set(self.sites))
        if clash:
            raise ValueError(f"law {self.name!r}: parameter names {sorted(clash)} are reserved for the "
                             "observation model; rename them.")

    def __repr__(self) -> str:
        return f"Law({self.name!r}: {self.formula or ', '.join(self.params)})"

    # -- construction --------------------------------------------------------

    @classmethod
    def from_function(cls, fn: Callable, *, params: Mapping, covariates, name: str = "custom",
                      frontier: Callable | None = None, formula: str = "") -> "Law":
        """A law from a function you write.

        Parameters
        ----------
        fn : callable
            ``fn(p, *covariates) -> log L``, with ``p`` a dict of parameter
            values and the covariates in the order of ``covariates``.  Use
            ``jax.numpy`` (or plain array arithmetic); it must broadcast.
        params : dict of str to numpyro distribution
            Each parameter and its prior, e.g.
            ``{"E": dist.LogNormal(0.5, 0.5), "alpha": dist.LogNormal(-1.2, 0.5)}``.
        covariates : sequence of str
            Names from :data:`COVARIATES`, e.g. ``["logN", "logD"]``.
        name : str
            A short name for tables and reports.
        frontier : callable, optional
            Closed-form ``(p, C) -> (N_opt, D_opt)`` under ``C = 6 N D``.
        formula : str, optional
            The equation, for reports.

        Returns
        -------
        Law

        Examples
        --------
        >>> import jax.numpy as jnp, numpyro.distributions as dist
        >>> law = Law.from_function(
        ...     lambda p, logN, logD: jnp.logaddexp(jnp.log(p["E"]), jnp.log(p["A"]) - p["alpha"] * logN),
        ...     params={"E": dist.LogNormal(0.5, 0.5), "A": dist.LogNormal(5, 3), "alpha": dist.LogNormal(-1.2, 0.5)},
        ...     covariates=["logN", "logD"], name="size_only")
        """
        import numpyro.distributions as dist

        if not callable(fn):
            raise TypeError(f"fn must be a function (p, *covariates) -> log L, got {type(fn).__name__}")
        if not isinstance(params, Mapping) or not params:
            raise TypeError("params must be a non-empty dict of parameter name -> numpyro distribution")
        for k, v in params.items():
            if not isinstance(k, str) or not k.isidentifier():
                raise ValueError(f"parameter name {k!r} must be a Python identifier")
            if not isinstance(v, dist.Distribution):
                raise TypeError(f"the prior of {k!r} must be a numpyro distribution, got {type(v).__name__}")
            if v.batch_shape or v.event_shape:
                raise ValueError(f"the prior of {k!r} must be scalar (batch and event shape ()), "
                                 f"got {v.batch_shape + v.event_shape}")
        covariates = tuple(covariates)
        fixed = dict(params)
        return cls(name=name, params=tuple(fixed), covariates=covariates, log_loss=fn, sites=tuple(fixed),
                   priors=lambda ctx, config: dict(fixed), frontier=frontier, formula=formula,
                   source_key=_source_key(fn, fixed))

    # -- evaluation ----------------------------------------------------------

    def natural(self, sites: Mapping, ctx: Mapping) -> dict:
        """Natural parameters from the sampler's variables (arrays of draws broadcast)."""
        return self.to_natural(sites, ctx)

    def model_log_loss(self, sites: Mapping, ctx: Mapping, *covs):
        """``log L`` inside the sampler (the stabler path when the law has one)."""
        if self.sampler_log_loss is not None:
            return self.sampler_log_loss(sites, ctx, *covs)
        return self.log_loss(self.to_natural(sites, ctx), *covs)

    def evaluate(self, params: Mapping, covariates: Mapping) -> np.ndarray:
        """``log L`` for natural ``params`` and a mapping of covariate arrays (NumPy float64 out).

        Missing ``logU`` is +inf (no repetition); missing ``logC`` is
        ``log 6 + logN + logD``.
        """
        covs = _fill_covariates(self.covariates, covariates)
        out = self.log_loss(params, *(covs[c] for c in self.covariates))
        return np.asarray(out, dtype=float)

    def log_loss_ND(self, params: Mapping, N, D, *, U=None) -> np.ndarray:
        """``log L(N, D)`` (and ``U`` unique tokens, for laws that read it)."""
        cov = {"logN": np.log(np.asarray(N, dtype=float)), "logD": np.log(np.asarray(D, dtype=float))}
        if U is not None:
            cov["logU"] = np.log(np.asarray(U, dtype=float))
        return self.evaluate(params, cov)

    def depends_on_size(self) -> bool:
        """Whether the law separates N from D (allocation is defined), unlike a compute-only envelope."""
        return "logN" in self.covariates or "logD" in self.covariates


def _fill_covariates(names, covariates: Mapping) -> dict:
    covs = {k: np.asarray(v, dtype=float) for k, v in covariates.items()}
    if "logC" in names and "logC" not in covs:
        covs["logC"] = np.log(FLOPS_PER_PARAM_TOKEN) + covs["logN"] + covs["logD"]
    if "logU" in names and "logU" not in covs:
        covs["logU"] = np.full(np.broadcast_shapes(*(np.shape(v) for v in covs.values())), np.inf)
    missing = [c for c in names if c not in covs]
    if missing:
        raise ValueError(f"covariates {missing} are needed by the law and were not given")
    return covs


def _source_key(fn, priors) -> str:
    """A stable key for a user's law, from its source code (empty if the source cannot be read)."""
    import hashlib
    import inspect

    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError):
        return ""
    return "user:" + hashlib.sha256((src + repr(sorted(priors))).encode()).hexdigest()[:16]


# -- built-in laws -------------------------------------------------------------


def _log(x):
    return _xp(x).log(x)


def _lse(*terms):
    """Stable log-sum-exp of broadcasting terms (numpy or jax)."""
    xp = _xp(*terms)
    m = terms[0]
    for t in terms[1:]:
        m = xp.maximum(m, t)
    return m + xp.log(sum(xp.exp(t - m) for t in terms))


def level_form(terms: tuple, level: str = "log_L0") -> Callable:
    """Draw ``log_E`` through the loss level at the data's centre (a ``Law.sample_sites``).

    For laws ``L = E + sum of terms``, whose terms' logs at the data centre
    are the sites ``terms`` (``t_N``, ``t_D``), NUTS samples

        log_L0 = log(E + exp(t_N) + exp(t_D))      (the loss at the data centre)

    instead of ``log_E``, and ``log_E = log(L0 - exp(t_N) - exp(t_D))`` is
    derived.  The prior is unchanged: ``log_E`` keeps its prior, with the
    Jacobian ``d log_E / d log_L0 = L0 / E``.

    Why: the data pin the loss at the centre and each term's slope
    (``alpha exp(t_N)``) far better than the split of the level between
    ``E`` and a term with a small exponent.  Along that weak direction
    ``t_D + log beta`` and ``log_L0`` stay fixed while ``log_E`` bends (it
    falls faster and faster as ``beta`` shrinks and ``exp(t_D)`` grows): a
    curved ridge in ``log_E`` that a (dense) mass matrix cannot follow, which
    caused divergences and R-hat failures on a third of well-specified data
    sets.  In ``log_L0`` the ridge is straight.

    ``log_L0`` is drawn from a reference ``Normal(log(0.6 min loss + sum of
    terms), 0.1)`` whose density is cancelled in the model: it only sets the
    starting point (``E`` near its prior median, whatever the terms).
    ``log_L0 <= log(sum of terms)`` (E <= 0) has zero density.
    """
    def sample_sites(priors, ctx):
        """``priors``: the law's sites' priors, in order; returns every site's value."""
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as dist

        s = {name: numpyro.sample(name, prior) for name, prior in priors.items() if name != "log_E"}
        log_terms = _lse(*(s[t] for t in terms))
        # centred on E = 0.6 x the smallest loss (the default prior's median) on top of the terms: always E > 0
        ref = dist.Normal(jnp.logaddexp(log_terms, ctx["log_min_loss"] - 0.5), 0.1)
        ell = numpyro.sample(level, ref)
        # log(L0 - sum of terms); zero density (and finite values, for gradients) when the terms exceed the level
        valid = log_terms < ell
        log_E = ell + jnp.log(-jnp.expm1(jnp.where(valid, log_terms - ell, -1.0)))
        lp = priors["log_E"].log_prob(log_E) + ell - log_E - ref.log_prob(ell)
        numpyro.factor(f"{level}_jacobian", jnp.where(valid, lp, -jnp.inf))
        s["log_E"] = numpyro.deterministic("log_E", log_E)
        return {name: s[name] for name in priors}

    # sampler-only coordinates, not kept in the draws
    sample_sites.hidden = (level,)
    return sample_sites


def _chinchilla_priors(ctx, config):
    import numpyro.distributions as dist

    return {
        "log_E": dist.Normal(ctx["log_min_loss"] - 0.5 if config.E_loc is None else config.E_loc, config.E_scale),
        "alpha": dist.LogNormal(np.log(config.alpha_median), config.alpha_log_sd),
        "beta": dist.LogNormal(np.log(config.beta_median), config.beta_log_sd),
        "t_N": dist.Normal(ctx["log_median_loss"] - 1.0 if config.t_loc is None else config.t_loc, config.t_scale),
        "t_D": dist.Normal(ctx["log_median_loss"] - 1.0 if config.t_loc is None else config.t_loc, config.t_scale),
    }


def _chinchilla_natural(s, ctx):
    xp = _xp(s["log_E"], s["t_N"])
    return {"E": xp.exp(s["log_E"]), "A": xp.exp(s["t_N"] + s["alpha"] * ctx["c_logN"]),
            "B": xp.exp(s["t_D"] + s["beta"] * ctx["c_logD"]), "alpha": s["alpha"], "beta": s["beta"]}


def _chinchilla_sampler(s, ctx, log_N, log_D):
    return log_loss_from_logs(s["log_E"], s["t_N"] + s["alpha"] * ctx["c_logN"],
                              s["t_D"] + s["beta"] * ctx["c_logD"], s["alpha"], s["beta"], log_N, log_D)


def _chinchilla_log_loss(p, log_N, log_D):
    return log_loss_from_logs(_log(p["E"]), _log(p["A"]), _log(p["B"]), p["alpha"], p["beta"], log_N, log_D)


CHINCHILLA = Law(
    name="chinchilla", params=PARAMETERS, covariates=("logN", "logD"), log_loss=_chinchilla_log_loss,
    sites=("log_E", "alpha", "beta", "t_N", "t_D"), priors=_chinchilla_priors, to_natural=_chinchilla_natural,
    sampler_log_loss=_chinchilla_sampler, sample_sites=level_form(("t_N", "t_D")),
    frontier=lambda p, C: optimal_allocation(p, C),
    formula="L = E + A / N^alpha + B / D^beta", reference="Hoffmann et al. 2022 (Approach 3)",
    source_key="builtin:chinchilla")


def _kaplan_priors(ctx, config):
    import numpyro.distributions as dist

    # at the data's centre log L = alpha_D * logaddexp(t_N, t_D), so each term is about log L / alpha_D
    loc = ctx["log_median_loss"] / 0.1 - 0.7
    return {"alpha_D": dist.LogNormal(np.log(0.1), 0.7), "ratio": dist.LogNormal(np.log(0.75), 0.5),
            "t_N": dist.Normal(loc, 5.0), "t_D": dist.Normal(loc, 5.0)}


def _kaplan_natural(s, ctx):
    xp = _xp(s["alpha_D"], s["t_N"])
    return {"N_c": xp.exp(ctx["c_logN"] + s["t_N"] / s["ratio"]), "D_c": xp.exp(ctx["c_logD"] + s["t_D"]),
            "alpha_N": s["ratio"] * s["alpha_D"], "alpha_D": s["alpha_D"]}


def _kaplan_sampler(s, ctx, log_N, log_D):
    return s["alpha_D"] * _lse(s["t_N"] - s["ratio"] * (log_N - ctx["c_logN"]), s["t_D"] - (log_D - ctx["c_logD"]))


def _kaplan_log_loss(p, log_N, log_D):
    r = p["alpha_N"] / p["alpha_D"]
    return p["alpha_D"] * _lse(r * (_log(p["N_c"]) - log_N), _log(p["D_c"]) - log_D)


KAPLAN = Law(
    name="kaplan", params=("N_c", "D_c", "alpha_N", "alpha_D"), covariates=("logN", "logD"),
    log_loss=_kaplan_log_loss, sites=("alpha_D", "ratio", "t_N", "t_D"), priors=_kaplan_priors,
    to_natural=_kaplan_natural, sampler_log_loss=_kaplan_sampler,
    formula="L = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D",
    reference="Kaplan et al. 2020, eq. 1.5 (alpha_N = 0.076, alpha_D = 0.103, N_c = 6.4e13, D_c = 1.8e13)",
    source_key="builtin:kaplan")


def _dc_priors(ctx, config):
    import numpyro.distributions as dist

    out = _chinchilla_priors(ctx, config)
    out["log_RD"] = dist.Normal(np.log(10.0), 1.5)
    out["log_RN"] = dist.Normal(np.log(10.0), 1.5)
    return out


def _dc_natural(s, ctx):
    xp = _xp(s["log_RD"])
    out = _chinchilla_natural(s, ctx)
    out["R_D"] = xp.exp(s["log_RD"])
    out["R_N"] = xp.exp(s["log_RN"])
    return out


def _effective(log_x, log_unique, log_R_star):
    """log of U (1 + R* (1 - exp(-R / R*))) with R = x / U - 1 repetitions beyond the unique amount."""
    xp = _xp(log_x, log_unique, log_R_star)
    log_u = xp.minimum(log_unique, log_x)
    R = xp.expm1(log_x - log_u)
    R_star = xp.exp(log_R_star)
    return log_u + xp.log1p(-R_star * xp.expm1(-R / R_star))


def _dc_effective(log_E, log_A, log_B, alpha, beta, log_RD, log_RN, log_N, log_D, log_U):
    # effective data D' from the unique tokens U_D; effective parameters N' from U_N, the size that is
    # compute-optimal for U_D under the law's own frontier (D_opt = U_D):
    # log U_N = log G (1 + a/b) + (a/b) log U_D, with a/b = beta/alpha
    log_D_eff = _effective(log_D, log_U, log_RD)
    log_UD = _xp(log_U, log_D).minimum(log_U, log_D)
    log_G = (_log(alpha) + log_A - _log(beta) - log_B) / (alpha + beta)
    ab = beta / alpha
    log_UN = log_G * (1 + ab) + ab * log_UD
    log_N_eff = _effective(log_N, log_UN, log_RN)
    return log_loss_from_logs(log_E, log_A, log_B, alpha, beta, log_N_eff, log_D_eff)


def _dc_sampler(s, ctx, log_N, log_D, log_U):
    return _dc_effective(s["log_E"], s["t_N"] + s["alpha"] * ctx["c_logN"], s["t_D"] + s["beta"] * ctx["c_logD"],
                         s["alpha"], s["beta"], s["log_RD"], s["log_RN"], log_N, log_D, log_U)


def _dc_log_loss(p, log_N, log_D, log_U):
    return _dc_effective(_log(p["E"]), _log(p["A"]), _log(p["B"]), p["alpha"], p["beta"], _log(p["R_D"]),
                         _log(p["R_N"]), log_N, log_D, log_U)


DATA_CONSTRAINED = Law(
    name="data_constrained", params=PARAMETERS + ("R_D", "R_N"), covariates=("logN", "logD", "logU"),
    log_loss=_dc_log_loss, sites=("log_E", "alpha", "beta", "t_N", "t_D", "log_RD", "log_RN"), priors=_dc_priors,
    to_natural=_dc_natural, sampler_log_loss=_dc_sampler,
    formula="L = E + A / N'^alpha + B / D'^beta, D' = U_D (1 + R_D (1 - exp(-(D/U_D - 1) / R_D))), N' likewise",
    reference="Muennighoff et al. 2023 (R*_D ~ 15.4, R*_N ~ 5.3); U_N from the law's own frontier",
    source_key="builtin:data_constrained")


def _co_priors(ctx, config):
    import numpyro.distributions as dist

    return {"log_E": dist.Normal(ctx["log_min_loss"] - 0.5 if config.E_loc is None else config.E_loc, config.E_scale),
            "gamma": dist.LogNormal(np.log(0.1), 0.7),
            "t_C": dist.Normal(ctx["log_median_loss"] - 1.0 if config.t_loc is None else config.t_loc,
                               config.t_scale)}


def _co_natural(s, ctx):
    xp = _xp(s["log_E"])
    return {"E": xp.exp(s["log_E"]), "A": xp.exp(s["t_C"] + s["gamma"] * ctx["c_logC"]), "gamma": s["gamma"]}


def _co_sampler(s, ctx, log_C):
    return _lse(s["log_E"] + 0.0 * log_C, s["t_C"] - s["gamma"] * (log_C - ctx["c_logC"]))


def _co_log_loss(p, log_C):
    return _lse(_log(p["E"]) + 0.0 * log_C, _log(p["A"]) - p["gamma"] * log_C)


COMPUTE_ONLY = Law(
    name="compute_only", params=("E", "A", "gamma"), covariates=("logC",), log_loss=_co_log_loss,
    sites=("log_E", "gamma", "t_C"), priors=_co_priors, to_natural=_co_natural, sampler_log_loss=_co_sampler,
    formula="L = E + A / C^gamma", reference="the compute-efficient envelope (Kaplan et al. 2020, Fig. 1)",
    source_key="builtin:compute_only")


def _coupled_priors(ctx, config):
    import numpyro.distributions as dist

    out = _chinchilla_priors(ctx, config)
    out["gamma"] = dist.Normal(0.0, COUPLING_PRIOR_SD)
    return out


def _coupled_natural(s, ctx):
    xp = _xp(s["t_D"])
    out = _chinchilla_natural(s, ctx)
    out["B"] = xp.exp(s["t_D"] + s["beta"] * ctx["c_logD"] + s["gamma"] * ctx["c_logN"])
    out["gamma"] = s["gamma"]
    return out


def _coupled_sampler(s, ctx, log_N, log_D):
    dN, dD = log_N - ctx["c_logN"], log_D - ctx["c_logD"]
    return _lse(s["log_E"] + 0.0 * dN, s["t_N"] - s["alpha"] * dN, s["t_D"] - s["beta"] * dD - s["gamma"] * dN)


def _coupled_log_loss(p, log_N, log_D):
    return _lse(_log(p["E"]) + 0.0 * log_N, _log(p["A"]) - p["alpha"] * log_N,
                _log(p["B"]) - p["gamma"] * log_N - p["beta"] * log_D)


def _coupled_frontier(p, C):
    """Closed form under C = 6 N D: ``N_opt = G (C/6)^(beta / s)``, ``s = alpha + beta - gamma``,
    ``G = (alpha A / ((beta - gamma) B))^(1 / s)``; NaN where ``gamma >= beta`` (no interior optimum)."""
    alpha, beta, gamma = p["alpha"], p["beta"], p["gamma"]
    xp = _xp(alpha, beta, gamma, p["A"], p["B"], C)
    slope = beta - gamma
    ok = slope > 0
    s = alpha + slope
    log_G = (xp.log(alpha) + xp.log(p["A"]) - xp.log(xp.where(ok, slope, 1.0)) - xp.log(p["B"])) / s
    log_c6 = xp.log(C) - np.log(FLOPS_PER_PARAM_TOKEN)
    log_N = xp.where(ok, log_G + beta / s * log_c6, np.nan)
    return xp.exp(log_N), xp.exp(log_c6 - log_N)


#: Prior scale of the coupling exponent ``gamma`` of :data:`COUPLED` (``Normal(0, 0.1)``).
COUPLING_PRIOR_SD = 0.1

#: The additive law with an N x D coupling: the data term's coefficient scales with model size,
#: ``B(N) = B / N^gamma`` (``gamma > 0``: larger models learn more from each token; ``gamma < 0``: they
#: need more; ``gamma = 0`` is Chinchilla's law).  The cross-derivative
#: ``d^2 L / (d log N d log D) = beta gamma B / (N^gamma D^beta)`` is what the additive form sets to zero.
#: On an isoFLOP sweep the coupling shows as a mismatch between the data term's slope within a budget
#: (``beta - gamma`` in log N) and its fall across budgets (``beta`` in log C), which the additive law
#: cannot fit.  Fitted to the 245 Chinchilla runs, ``gamma = -0.059`` (90%: -0.080 to -0.039) and elpd
#: +6.4 over Chinchilla's law.  The first form tried, ``+ F / (N^alpha D^beta)``, is a function of
#: compute alone when ``alpha ~ beta``: the additive law refitted it away even at 13% of the loss, and on
#: the Chinchilla data it scored 2.2 nats below the additive law (benchmarks/RESULTS.md).
#: Sites as for ``chinchilla`` plus ``gamma`` (prior ``Normal(0, COUPLING_PRIOR_SD)``); NUTS moves
#: ``log_L0`` instead of ``log_E`` (:func:`level_form`).  Closed-form frontier (``_coupled_frontier``).
#: ``auto_bend=False``: the bend and ``gamma`` both bend the law across budgets; with both, 11 of 20
#: synthetic fits passed their checks, with ``gamma`` alone 20 of 20 (4 x 500 + 500, RESULTS.md).
COUPLED = Law(
    name="coupled", params=PARAMETERS + ("gamma",), covariates=("logN", "logD"), log_loss=_coupled_log_loss,
    sites=("log_E", "alpha", "beta", "t_N", "t_D", "gamma"), priors=_coupled_priors, to_natural=_coupled_natural,
    sampler_log_loss=_coupled_sampler, sample_sites=level_form(("t_N", "t_D")), frontier=_coupled_frontier,
    formula="L = E + A / N^alpha + B / (N^gamma D^beta)",
    reference="the additive law with an N x D coupling (the data term's coefficient scales as N^-gamma)",
    source_key="builtin:coupled", auto_bend=False)

def _ks_priors(ctx, config):
    """Priors of ``kaplan_steps`` (see :data:`KAPLAN_STEPS_LAW`)."""
    import numpyro.distributions as dist

    t_loc = ctx["log_median_loss"] - 1.0 if config.t_loc is None else config.t_loc
    return {"alpha_N": dist.LogNormal(np.log(0.08), 0.5), "alpha_S": dist.LogNormal(np.log(0.76), 0.5),
            "alpha_B": dist.LogNormal(np.log(0.21), 0.3), "t_N": dist.Normal(t_loc, config.t_scale),
            "t_S": dist.Normal(t_loc, config.t_scale), "log_B_star": dist.Normal(np.log(2.1e8), 1.5)}


def _ks_natural(s, ctx):
    xp = _xp(s["alpha_N"], s["t_N"])
    return {"N_c": xp.exp(ctx["c_logN"] + s["t_N"] / s["alpha_N"]), "alpha_N": s["alpha_N"],
            "S_c": xp.exp(ctx["c_logS"] + s["t_S"] / s["alpha_S"]), "alpha_S": s["alpha_S"],
            "B_star": xp.exp(s["log_B_star"]), "alpha_B": s["alpha_B"]}


def _ks_sampler(s, ctx, log_N, log_S, log_B):
    # the same fixed point with every covariate centred on the data: N_c, S_c and B_* become
    # exp(t_N / alpha_N), exp(t_S / alpha_S) and B_* / exp(mean log B), numbers near 1 in float32
    from .kaplan import log_loss_steps

    xp = _xp(s["alpha_N"], s["t_N"])
    p = {"N_c": xp.exp(s["t_N"] / s["alpha_N"]), "alpha_N": s["alpha_N"],
         "S_c": xp.exp(s["t_S"] / s["alpha_S"]), "alpha_S": s["alpha_S"],
         "B_star": xp.exp(s["log_B_star"] - ctx["c_logB"]), "alpha_B": s["alpha_B"]}
    return log_loss_steps(p, log_N - ctx["c_logN"], log_S - ctx["c_logS"], log_B - ctx["c_logB"])


def _ks_log_loss(p, log_N, log_S, log_B):
    from .kaplan import log_loss_steps

    return log_loss_steps(p, log_N, log_S, log_B)


#: Kaplan et al.'s loss after ``S`` steps at batch ``B`` (:mod:`bayesscale.kaplan`), fitted to
#: training curves (``bs.fit(curves, law="kaplan_steps")``).  Sampled sites, centred like the other
#: laws: ``t_N = alpha_N (log N_c - mean log N)`` and ``t_S = alpha_S (log S_c - mean log S)`` (the
#: log of each term at the data's centre, with ``S_min = S``), the exponents and ``log B_*``.
#: Default priors (the exponents' medians are Kaplan et al.'s published values):
#:
#: ============  =================================================================
#: ``alpha_N``   ``LogNormal(log 0.08, 0.5)``
#: ``alpha_S``   ``LogNormal(log 0.76, 0.5)``
#: ``alpha_B``   ``LogNormal(log 0.21, 0.3)`` (tight: with one batch size per model,
#:               as in OPT, B_crit is known from this prior only)
#: ``log B_*``   ``Normal(log 2.1e8, 1.5)`` (B_* in tokens)
#: ``t_N, t_S``  ``Normal(log(median loss) - 1, 1.5)`` (``Priors.t_loc``, ``t_scale``)
#: ============  =================================================================
#:
#: No closed-form frontier under ``C = 6 N D`` (the frontier in ``C_min`` is
#: :func:`bayesscale.kaplan.frontier`).
KAPLAN_STEPS_LAW = Law(
    name="kaplan_steps", params=("N_c", "alpha_N", "S_c", "alpha_S", "B_star", "alpha_B"),
    covariates=("logN", "logS", "logB"), log_loss=_ks_log_loss,
    sites=("alpha_N", "alpha_S", "alpha_B", "t_N", "t_S", "log_B_star"), priors=_ks_priors,
    to_natural=_ks_natural, sampler_log_loss=_ks_sampler, frontier=None,
    formula="L = (N_c / N)^alpha_N + (S_c / S_min)^alpha_S, S_min = S / (1 + B_crit(L) / B), "
            "B_crit(L) = B_* / L^(1 / alpha_B)",
    reference="Kaplan et al. 2020, eqs. 1.4, 5.4, 5.6 (alpha_N = 0.076, N_c = 6.5e13, alpha_S = 0.76, "
              "S_c = 2.1e3, B_* = 2.1e8 tokens, alpha_B = 0.21)",
    source_key="builtin:kaplan_steps")

#: The built-in laws by name.
LAWS = {law.name: law for law in (CHINCHILLA, KAPLAN, DATA_CONSTRAINED, COMPUTE_ONLY, COUPLED, KAPLAN_STEPS_LAW)}


def get_law(law) -> Law:
    """A :class:`Law` from a law or a built-in's name.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the built-ins).
    """
    if isinstance(law, Law):
        return law
    if isinstance(law, str) and law in LAWS:
        return LAWS[law]
    raise ValueError(f"unknown law {law!r}; the built-in laws are {', '.join(LAWS)}, or pass a "
                     "bayesscale.Law (Law.from_function(fn, params=..., covariates=...)).")
