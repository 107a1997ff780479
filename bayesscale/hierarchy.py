"""The hierarchical Chinchilla law: one law per group (variant), partially pooled.

Runs loaded with ``load_runs(..., group="dataset")`` carry a group (a data
mixture, a tokenizer, an architecture) per run.  Each group ``g`` gets its own
Chinchilla law

    L_g(N, D) = E_g + A_g / N^alpha_g + B_g / D^beta_g

sampled, like the plain law, through the centred terms
``t_N[g] = log A_g - alpha_g mean(log N)`` and ``t_D[g] = log B_g - beta_g
mean(log D)`` (one centre for all groups: the mean over every run).  The
observation model (``sigma``, Student-t by default) is shared by all groups.

Pooling (``pooling=``)
----------------------
``"partial"`` (the default)
    ``log E_g``, ``log alpha_g`` and ``log beta_g`` scatter around shared
    means with learned scales:

    * ``log E_g = log_E_mu + s_E u_E[g]``
    * ``alpha_g = alpha_mu exp(s_alpha u_alpha[g])``
    * ``beta_g = beta_mu exp(s_beta u_beta[g])``

    with ``u = (z - mean(z)) sqrt(n / (n - 1))`` over the ``n`` groups,
    ``z ~ Normal(0, 1)`` (sum-to-zero deviations, each of prior sd 1; zero
    with one group, which is then exactly the plain law), so ``*_mu`` is
    the groups' own mean; ``log_E_mu``, ``alpha_mu``, ``beta_mu`` under
    the plain law's priors on ``log E``, ``alpha`` and ``beta``, and
    ``s_E, s_alpha, s_beta ~ HalfNormal(0.1)`` (a 10% spread between
    variants is a priori typical; the data move it towards 0, full pooling,
    or towards large values, no pooling).  ``t_N[g]`` and ``t_D[g]`` (the
    group's ``log A`` and ``log B``) are given the plain law's priors,
    independently: they are what variants differ by most.
``"shared"``
    One ``alpha``, ``beta`` and ``E`` for all groups, per-group ``t_N`` and
    ``t_D`` (the limit ``s -> 0``).
``"separate"``
    Every parameter per group, each under the plain law's prior: separate
    fits that share only the noise scale.

Centred or non-centred (``centering=``)
---------------------------------------
``"noncentred"`` (the default) samples the standardised ``z``'s above;
``"centred"`` samples ``log E_g ~ Normal(log_E_mu, s_E)``, ``alpha_g ~
LogNormal(log alpha_mu, s_alpha)`` and ``beta_g`` likewise.  Chosen by
measurement (``benchmarks/pooling.py``, "Centred or non-centred" in
``benchmarks/RESULTS.md``; 4 chains x 500 + 500, two seeds each): on the
Marin sweeps the centred form took 28 leapfrog steps per draw but had 264
divergences in 4,000 draws at ``target_accept=0.8`` (55 at 0.95), on
synthetic groups 393 (67 at 0.95): the funnel of ``s -> 0``, which the data
favour here (the posterior of ``s_alpha`` sits near 0.03).  The non-centred
form had 10 divergences on Marin (0 at 0.95) and 12 on the synthetic groups
(45 at 0.95, all from one seed with a chain stuck in a second mode of E),
at the price of 115-310 leapfrog steps per draw (the ``s z`` product is
curved).  Divergences bias the posterior; more steps only cost time, so the
non-centred form is the default, and grouped fits sample at
``target_accept=0.95`` by default (:data:`GROUPED_TARGET_ACCEPT`).

Sum-to-zero deviations (session 7).  With free ``z``'s, ``*_mu`` and a
common shift of every group's ``z`` trade off along a ridge that only the
prior bounds (with two groups, two of the four coordinates of each pooled
parameter).  Centring the ``z``'s over the groups removes it: the shift
becomes a standard normal the likelihood never sees.  Measured on 2-group
synthetic pairs (``benchmarks/RESULTS.md``, "Sum-to-zero deviations").

Padding
-------
Group parameters live in ``group_slots`` slots (1, 2, 4, 8, ...; see
:func:`group_slots`), so data sets with 3 or 4 groups share one compiled
program.  Slots without runs are sampled from their prior and dropped.

The bend in log compute (``bend=``)
-----------------------------------
As in a single fit (:class:`bayesscale.ModelSpec`), each group's log loss
gets ``kappa_g (log10 C - m_g)^2``, continued along its tangent beyond the
group's runs (:func:`bayesscale.model.bend_term`), with ``m_g`` and the
range taken from the group's own runs, so that :meth:`GroupedPosterior.group
<bayesscale.groups.GroupedPosterior.group>` is exactly the single-fit model
of that group.  ``bend="auto"`` turns it on per group by the single fit's
rule (at least :data:`bayesscale.model.BEND_MIN_BUDGETS` budgets in the
group); a group where it is off has the prior sd
:data:`bayesscale.model.BEND_OFF_SCALE`.  With ``b_g`` the group's prior sd
(``Priors.bend_scale`` when on), sampled non-centred in units of ``b_g``:

* ``"partial"``: ``kappa_g = b_g (z_bend_mu + s_bend u_bend[g])``, ``u_bend``
  the sum-to-zero deviations of ``z_bend`` as above,
  ``z_bend_mu, z_bend[g] ~ Normal(0, 1)``, ``s_bend ~ HalfNormal(``
  :data:`BEND_POOLING_SCALE` ``)``: the curvature is shared in the mean and
  may differ between variants (always non-centred: the bend is a small
  term the data rarely pin down, the funnel case);
* ``"shared"``: one ``z_bend``, ``kappa_g = b_g z_bend``;
* ``"separate"``: ``kappa_g = b_g z_bend[g]``.

Why partial pooling of the bend (``benchmarks/RESULTS.md``, "Grouped fits
with the bend"): on Marin's three data sets (largest budget held out) the
learned ``s_bend`` has median 0.17 and every group's ``kappa`` is -0.0153
(80%: -0.018 to -0.013), as the three separate fits find (-0.015 each):
the data ask for one curvature and the partial model finds it without
imposing it, where variants that curve differently keep their own.

With a single group, ``pooling="shared"`` is exactly the plain Chinchilla
model (bend included); ``"partial"`` differs only by the (weak)
hierarchical prior.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["POOLINGS", "CENTERINGS", "POOLING_SCALE", "BEND_POOLING_SCALE", "GROUPED_TARGET_ACCEPT", "group_slots",
           "grouped_sites",
           "vector_sites", "grouped_priors", "grouped_model", "group_site_draws", "check_grouped_law",
           "group_bend_scales", "group_bend_data", "group_kappa"]

POOLINGS = ("partial", "shared", "separate")
CENTERINGS = ("noncentred", "centred")

#: Half-normal scale of the pooling scales ``s_E``, ``s_alpha``, ``s_beta`` (log scale).
POOLING_SCALE = 0.1

#: Half-normal scale of ``s_bend``, the spread of the groups' bends around their mean, in units of the
#: bend's prior sd (``Priors.bend_scale``): variants may curve differently, a priori by half as much as
#: the curvature itself.
BEND_POOLING_SCALE = 0.5

_HYPER = (("log_E", "s_E", "z_E"), ("alpha", "s_alpha", "z_alpha"), ("beta", "s_beta", "z_beta"))


#: NUTS's acceptance target for grouped fits by default (0.8 for a single fit).  Measured on 30
#: two-group synthetic pairs (4 x 1000 + 1000, sum-to-zero deviations; RESULTS.md "Sum-to-zero
#: deviations"): at 0.8 every first attempt failed a check and was retried (29/30 pass after the
#: retry, 361 s); at 0.95, 20 of 30 passed at once and 30/30 after the retry (256 s in all).
GROUPED_TARGET_ACCEPT = 0.95


def group_slots(n: int) -> int:
    """Padded number of group slots for ``n`` groups: the next power of two (1, 2, 4, 8, ...)."""
    n = max(int(n), 1)
    return 1 << (n - 1).bit_length()


def check_grouped_law(law) -> None:
    """Grouped fits are written for the Chinchilla law's sites; refuse others clearly."""
    if tuple(law.sites) != ("log_E", "alpha", "beta", "t_N", "t_D"):
        raise ValueError(f"grouped fits support the chinchilla law only (got law {law.name!r}); fit each group "
                         "separately with bayesscale.fit_many for other laws.")


def _bend_sites(pooling: str) -> tuple:
    return ("z_bend_mu", "s_bend", "z_bend") if pooling == "partial" else ("z_bend",)


def grouped_sites(pooling: str, centering: str, bend: bool = False) -> tuple:
    """Every sampled variable of the grouped model, in sampling order (the noise's excepted)."""
    extra = _bend_sites(pooling) if bend else ()
    if pooling == "partial":
        out = []
        for base, scale, z in _HYPER:
            out += [base + "_mu", scale, z if centering == "noncentred" else base]
        return tuple(out) + ("t_N", "t_D") + extra
    if pooling in ("shared", "separate"):
        return ("log_E", "alpha", "beta", "t_N", "t_D") + extra
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


def vector_sites(pooling: str, centering: str, bend: bool = False) -> tuple:
    """The sampled variables that have one value per group slot."""
    extra = ("z_bend",) if bend and pooling != "shared" else ()
    if pooling == "partial":
        return tuple(z if centering == "noncentred" else base for base, _, z in _HYPER) + ("t_N", "t_D") + extra
    if pooling == "shared":
        return ("t_N", "t_D")
    return ("log_E", "alpha", "beta", "t_N", "t_D") + extra


def grouped_priors(law, ctx: Mapping, config, pooling: str, centering: str, bend: bool = False) -> dict:
    """Priors of the variables that have a fixed prior (scalar numpyro distributions, expanded per slot).

    ``z_bend``'s standard normal is added by :meth:`bayesscale.ModelSpec.resolve_priors`.
    """
    import numpyro.distributions as dist

    base = law.priors(ctx, config)
    if pooling == "partial":
        out = {}
        for name, scale, _ in _HYPER:
            out[name + "_mu"] = base[name]
            out[scale] = dist.HalfNormal(POOLING_SCALE)
        out["t_N"], out["t_D"] = base["t_N"], base["t_D"]
        if bend:
            out["z_bend_mu"] = dist.Normal(0.0, 1.0)
            out["s_bend"] = dist.HalfNormal(BEND_POOLING_SCALE)
        return out
    return dict(base)


def group_bend_scales(spec, runs) -> np.ndarray:
    """The prior sd of each group's bend, ``(n_groups,)``: the single fit's rule applied to the group's runs."""
    return np.array([spec.bend_scale(runs.select_group(g)) for g in runs.group_names], dtype=np.float64)


def group_bend_data(runs, spec, k_pad: int) -> dict:
    """Per group slot: the bend's frame (centre, range of ``log10 C`` of the group's runs) and prior sd.

    Padded slots get a zero frame and the off scale.
    """
    from .model import BEND_OFF_SCALE, bend_frame

    frame = np.zeros((3, k_pad))
    scale = np.full(k_pad, BEND_OFF_SCALE)
    scale[: runs.n_groups] = group_bend_scales(spec, runs)
    for k in range(runs.n_groups):
        frame[:, k] = bend_frame(runs.C[runs.group == k])
    return {"bend_center": frame[0].astype(np.float32), "bend_lo": frame[1].astype(np.float32),
            "bend_hi": frame[2].astype(np.float32), "bend_scale": scale.astype(np.float32)}


def _z_bend(s: Mapping, pooling: str, active, xp=np):
    """The bend of each group slot in units of its prior sd (``kappa_g / b_g``); ``active`` marks slots with runs."""
    if pooling == "partial":
        return s["z_bend_mu"][..., None] + s["s_bend"][..., None] * _deviations(s["z_bend"], active, xp)
    return s["z_bend"]


def group_kappa(samples: Mapping, pooling: str, scales, n_groups: int) -> np.ndarray:
    """Each group's bend ``kappa_g``, ``(chains, draws, n_groups)``, from the grouped model's draws."""
    s = {k: np.asarray(v, np.float64) for k, v in samples.items()}
    active = (np.arange(s["z_bend"].shape[-1]) < n_groups).astype(np.float64) if pooling == "partial" else None
    z = np.asarray(_z_bend(s, pooling, active), np.float64)
    if pooling == "shared":
        z = np.broadcast_to(z[..., None], z.shape + (n_groups,))
    return z[..., :n_groups] * np.asarray(scales, np.float64)[:n_groups]


def grouped_model(data, *, law, observation, offsets, prior_def, pooling: str, centering: str,
                  bend: bool = False):
    """NumPyro model of log loss for grouped runs (see the module docstring).

    ``data`` is :func:`bayesscale.inference.model_data`'s, plus ``gid`` (the
    group slot of each run) and ``gid_slots`` (one entry per slot).
    """
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    if offsets != "none":
        raise ValueError("grouped fits support offsets='none' only")
    priors = jax.tree.unflatten(prior_def, [data[f"prior:{i}"] for i in range(prior_def.num_leaves)])
    ctx = {k[4:]: v for k, v in data.items() if k.startswith("ctx:")}
    G = data["gid_slots"].shape[0]

    def vec(name, d):
        return numpyro.sample(name, d.expand((G,)).to_event(1))

    s = {}
    if pooling == "partial":
        for name, scale, z in _HYPER:
            mu = numpyro.sample(name + "_mu", priors[name + "_mu"])
            sd = numpyro.sample(scale, priors[scale])
            log_mu = mu if name == "log_E" else jnp.log(mu)
            if centering == "noncentred":
                val = log_mu + sd * _deviations(vec(z, dist.Normal(0.0, 1.0)), data["gid_slots"], jnp)
                s[name] = val if name == "log_E" else jnp.exp(val)
            elif name == "log_E":
                s[name] = vec(name, dist.Normal(log_mu, sd))
            else:
                s[name] = vec(name, dist.LogNormal(log_mu, sd))
    elif pooling == "shared":
        for name, _, _ in _HYPER:
            s[name] = jnp.broadcast_to(numpyro.sample(name, priors[name]), (G,))
    else:
        for name, _, _ in _HYPER:
            s[name] = vec(name, priors[name])
    s["t_N"] = vec("t_N", priors["t_N"])
    s["t_D"] = vec("t_D", priors["t_D"])
    g = data["gid"]
    mu = law.model_log_loss({k: v[g] for k, v in s.items()}, ctx, *(data[c] for c in law.covariates))
    if bend:
        from .model import bend_term

        zb = {}
        if pooling == "partial":
            zb["z_bend_mu"] = numpyro.sample("z_bend_mu", priors["z_bend_mu"])
            zb["s_bend"] = numpyro.sample("s_bend", priors["s_bend"])
        zb["z_bend"] = (numpyro.sample("z_bend", priors["z_bend"]) if pooling == "shared"
                        else vec("z_bend", priors["z_bend"]))
        kappa = data["bend_scale"] * _z_bend(zb, pooling, data["gid_slots"], jnp)  # (G,)
        mu = mu + bend_term(kappa[g], data["bend_logC"], data["bend_center"][g], data["bend_lo"][g],
                            data["bend_hi"][g])
    obs_s = {name: numpyro.sample(name, priors[name]) for name in observation.sites}
    order = {"y": data["y"], "prev": data["prev"]} if getattr(observation, "ordered", False) else {}
    numpyro.sample("y", observation.distribution(mu, obs_s, **order).mask(data["mask"]), obs=data["y"])


def _deviations(z, active, xp):
    """Standardised group deviations from the groups' mean: ``z`` centred over the groups with runs.

    ``z ~ Normal(0, 1)`` per slot; the deviations of the ``n`` groups with runs are
    ``(z - mean(z)) sqrt(n / (n - 1))`` (each still has prior sd 1; they sum to zero, and with one
    group it is exactly zero), so ``*_mu`` is the groups' own mean and the mean of the ``z``'s is a
    direction the likelihood never sees, a standard normal that NUTS crosses in one step.  Without
    it, ``*_mu`` and the common shift of every ``z`` trade off along a ridge only the prior bounds:
    with two groups, two of the four coordinates per parameter.  Padded slots keep their ``z``.
    """
    n = xp.sum(active)
    zbar = xp.sum(z * active, axis=-1, keepdims=True) / n
    factor = xp.where(n > 1, xp.sqrt(n / xp.maximum(n - 1, 1)), 0.0)
    return xp.where(active > 0, (z - zbar) * factor, z)


def group_site_draws(samples: Mapping, pooling: str, centering: str, n_groups: int) -> dict:
    """The plain model's sites (``log_E, alpha, beta, t_N, t_D``, and ``z_bend``) per group: ``(..., n_groups)``.

    ``samples`` are the grouped model's draws, ``(chains, draws[, slots])``.
    ``z_bend`` (with a bend) is the group's bend in units of its prior sd,
    the single fit's coordinate: ``kappa_g = b_g z_bend[g]``.
    """
    s = {k: np.asarray(v, dtype=np.float64) for k, v in samples.items()}
    shape = s["t_N"].shape[:-1]
    out = {}
    for name, scale, z in _HYPER:
        if pooling == "partial":
            if centering == "noncentred":
                mu = s[name + "_mu"] if name == "log_E" else np.log(s[name + "_mu"])
                active = (np.arange(s[z].shape[-1]) < n_groups).astype(np.float64)
                val = mu[..., None] + s[scale][..., None] * _deviations(s[z], active, np)[..., :n_groups]
                out[name] = val if name == "log_E" else np.exp(val)
            else:
                out[name] = s[name][..., :n_groups]
        elif pooling == "shared":
            out[name] = np.broadcast_to(s[name][..., None], shape + (n_groups,)).copy()
        else:
            out[name] = s[name][..., :n_groups]
    out["t_N"] = s["t_N"][..., :n_groups]
    out["t_D"] = s["t_D"][..., :n_groups]
    if "z_bend" in s:
        out["z_bend"] = group_kappa(s, pooling, np.ones(n_groups), n_groups)
    return out
