"""Grouped fits: one law per variant, and the compute multiplier between variants.

``bs.fit(runs, groups="dataset")`` fits the hierarchical Chinchilla law of
:mod:`bayesscale.hierarchy` to runs of several variants (data mixtures,
tokenizers, architectures) and returns a :class:`GroupedPosterior`.

Design
------
A grouped posterior holds the joint draws of every group's parameters.
:meth:`GroupedPosterior.group` turns one group's draws into an ordinary
:class:`bayesscale.Posterior` (the plain Chinchilla sites, re-centred on
that group's runs, with the group's runs as its data), so everything a
single fit offers works per group, unchanged: ``allocate``, ``predict``,
``summary``, ``frontier_exponents``, the figures and the report.  The draws
of different groups stay paired (draw ``s`` of every group comes from the
same joint draw), which is what the comparison between groups needs.
The model of each group is the single fit's: with ``bend="auto"`` each
group with enough budgets gets the bend in log compute
(:mod:`bayesscale.hierarchy`), and with ``extrapolation="calibrated"`` (the
default, as for a single fit) each group carries a calibrated extrapolation
error (:func:`calibrate_groups`): the group's view is then the posterior a
single calibrated fit would be, with the pooled parameter draws.

Calibration per group.  The extrapolation error describes how the law
extrapolates beyond a sweep, so it is calibrated on each group's own
rolling-origin folds (:func:`bayesscale.calibration.calibrate` with the
single-group model; all folds of all groups in one batched sampler call),
anchored on the group's view of the grouped fit.  The folds refit the
single-group law, whose parameter uncertainty is a little wider than the
pooled fit's, so the error added beyond it may be a little small for a
pooled group (a refit of the grouped model per origin would measure the
pooled model itself; not done).

The compute multiplier
----------------------
For groups A and B and a budget ``C``, per posterior draw: A's
compute-optimal loss ``L_A*(C)``; the least compute ``C_B`` at which B's
compute-optimal training reaches that loss; and the multiplier ``C / C_B``.
A multiplier of 1.4 says B reaches A's loss with 1/1.4 of the compute
("B is worth 1.4x compute"); below 1, B is worse.  Under ``C = 6 N D`` the
Chinchilla frontier is ``L*(C) = E + K (C/6)^-gamma`` with ``gamma = alpha
beta / (alpha + beta)`` and ``K = A G^-alpha + B G^beta`` (``G`` as in
:func:`bayesscale.laws.frontier_coefficients`), so ``C_B`` has the closed form
``6 ((L - E_B) / K_B)^(-1 / gamma_B)``, infinite (multiplier 0) where
``L <= E_B``.  ``P(B better)`` is the share of draws with a multiplier
above 1, i.e. with ``L_B*(C) < L_A*(C)``.  The multiplier depends on ``C``
whenever the groups' exponents differ.

With the bend (:mod:`bayesscale.hierarchy`), each frontier is the law's
times ``exp(kappa_g (...))`` in the group's frame, as in the group's
predictions; ``C_B`` is then found numerically (the least compute whose
bent frontier reaches the loss: first crossing on a 0.25-decade grid,
refined by bisection).  The calibrated extrapolation error is *not* drawn
into the multiplier: the per-group calibrations say how far each group's
law may be off beyond its runs, not how the errors of two variants trained
on one ladder move together, and an error common to both cancels in the
multiplier.  The multiplier's band is the laws' (bends included); each
group's own predictions and allocations carry its error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from . import hierarchy, laws
from ._validate import check_ci
from .intervals import band_names
from .intervals import quantiles as _band
from .data import Runs
from .diagnostics import Verdict, convergence_table, diagnose, pareto_k
from .inference import Draws, SamplerSettings, covariate_arrays
from .model import ModelSpec, bend_frame, bend_term, context
from .posterior import Posterior

__all__ = ["GroupedPosterior", "frontier_loss", "compute_for_frontier_loss", "compute_multiplier",
           "calibrate_groups"]


def _frontier_terms(p: Mapping):
    """``log K`` and ``gamma`` of the frontier ``L*(C) = E + K (C/6)^-gamma``."""
    alpha, beta = np.asarray(p["alpha"], float), np.asarray(p["beta"], float)
    log_A, log_B = np.log(p["A"]), np.log(p["B"])
    log_G = (np.log(alpha) + log_A - np.log(beta) - log_B) / (alpha + beta)
    log_K = np.logaddexp(log_A - alpha * log_G, log_B + beta * log_G)
    return log_K, alpha * beta / (alpha + beta)


def _log_frontier(p: Mapping, log_C, frame=None):
    """``log L*(C)`` (plus the bend, when ``frame`` and ``p["kappa"]`` are given); ``p`` broadcasts with ``log_C``."""
    log_K, gamma = _frontier_terms(p)
    out = np.logaddexp(np.log(p["E"]), log_K - gamma * (log_C - np.log(laws.FLOPS_PER_PARAM_TOKEN)))
    if frame is not None and "kappa" in p:
        out = out + bend_term(p["kappa"], log_C, *frame)
    return out


def _draws(params: Mapping, ndim: int = 2) -> dict:
    keys = list(laws.PARAMETERS) + (["kappa"] if "kappa" in params else [])
    return {k: np.asarray(params[k], float).reshape((-1,) + (1,) * (ndim - 1)) for k in keys}


def frontier_loss(params: Mapping, C, frame=None) -> np.ndarray:
    """Loss at the compute-optimal allocation, ``L*(C)``, per draw: ``(S, n)`` for draws x budgets.

    With ``frame`` (the group's :func:`bayesscale.model.bend_frame`) and a
    ``kappa`` in ``params``, the bend in log compute multiplies it (the bend
    depends on C only, so the optimal split is the law's).
    """
    C = np.atleast_1d(np.asarray(C, dtype=float))
    if frame is None or "kappa" not in params:
        p = {k: np.asarray(params[k], float).reshape(-1, 1) for k in laws.PARAMETERS}
        log_K, gamma = _frontier_terms(p)
        return p["E"] + np.exp(log_K - gamma * (np.log(C)[None, :] - np.log(laws.FLOPS_PER_PARAM_TOKEN)))
    return np.exp(_log_frontier(_draws(params), np.log(C)[None, :], frame))


#: The search range of the least compute on a bent frontier (natural log of FLOPs: 1 to 1e40) and its grid.
_SEARCH = np.linspace(0.0, 40.0, 161) * np.log(10.0)


def compute_for_frontier_loss(params: Mapping, loss, frame=None) -> np.ndarray:
    """Least compute whose compute-optimal training reaches ``loss`` (``+inf`` where it never does).

    ``loss`` broadcasts against ``(S, 1)`` draws (pass ``(S, n)`` or ``(n,)``).
    Without a bend the closed form (infinite where ``loss <= E``); with one
    (``frame`` and ``params["kappa"]``), the first crossing on a grid of
    0.25 decades from 1 to 1e40 FLOPs, refined by bisection.
    """
    if frame is None or "kappa" not in params:
        p = {k: np.asarray(params[k], float).reshape(-1, 1) for k in laws.PARAMETERS}
        log_K, gamma = _frontier_terms(p)
        loss = np.asarray(loss, dtype=float)
        gap = loss - p["E"]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_c6 = -(np.log(np.where(gap > 0, gap, np.nan)) - log_K) / gamma
        return np.where(gap > 0, laws.FLOPS_PER_PARAM_TOKEN * np.exp(log_c6), np.inf)
    p3 = _draws(params, 3)
    S = p3["E"].shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.log(np.broadcast_to(np.asarray(loss, dtype=float), np.broadcast_shapes(np.shape(loss), (S, 1))))
    target = np.broadcast_to(target, (S, target.shape[-1]))
    below = _log_frontier(p3, _SEARCH[None, None, :], frame) <= target[..., None]
    reached = below.any(axis=-1)
    idx = np.argmax(below, axis=-1)
    hi = _SEARCH[idx]
    lo = np.where(idx > 0, _SEARCH[np.maximum(idx - 1, 0)], _SEARCH[0])
    p2 = {k: v[..., 0] for k, v in p3.items()}
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        ok = _log_frontier(p2, mid, frame) <= target
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
    return np.where(reached, np.exp(hi), np.inf)


def compute_multiplier(params_a: Mapping, params_b: Mapping, C, frame_a=None, frame_b=None) -> np.ndarray:
    """``C / C_B`` per draw and budget, ``(S, n)``: the compute B needs to reach A's optimal loss at ``C``.

    ``frame_a``, ``frame_b``: each group's bend frame (with ``kappa`` in the
    parameters), so the frontiers include their bends.
    """
    C = np.atleast_1d(np.asarray(C, dtype=float))
    target = frontier_loss(params_a, C, frame_a)
    with np.errstate(divide="ignore", over="ignore"):
        return C[None, :] / compute_for_frontier_loss(params_b, target, frame_b)


def calibrate_groups(posts: list, *, seed: int, device=None, progress: bool | None = False) -> list:
    """Grouped posteriors that carry each group's calibrated extrapolation error.

    Each group of each posterior gets a
    :class:`~bayesscale.discrepancy.Discrepancy` from its own rolling-origin
    folds: :func:`bayesscale.calibration.calibrate` on the group's runs with
    the single-group model (:attr:`GroupedPosterior.group_spec`), anchored on
    the group's view, every fold of every group in one batched call.  With
    ``pooling="partial"`` or ``"shared"``, a group with too few folds of its
    own (fewer than :data:`~bayesscale.discrepancy.MIN_FOLDS`) borrows its
    siblings' log-loss folds: variants on one ladder fitted with one law
    share the scales of its loss extrapolation error, so three groups of 5
    budgets (3 folds each) are calibrated together instead of being refused;
    N_opt's error and the per-budget offsets stay each group's own.  With
    ``"separate"``, or enough folds, each group is calibrated alone; with
    ``"separate"`` and too few folds it gets the refused (prior)
    calibration, as a single fit would.

    Parameters
    ----------
    posts : list of GroupedPosterior
    seed : int
    device : str, optional
    progress : bool, optional

    Returns
    -------
    list of GroupedPosterior
        Copies with ``extrapolation_mode="calibrated"`` and ``discrepancies``.
    """
    from .calibration import calibrate

    if not posts:
        return []
    views = [(k, g, p.group(g)) for k, p in enumerate(posts) for g in p.groups]
    pools = [[i for i, (j, _, _) in enumerate(views) if j == k] for k, p in enumerate(posts) if p.pooling != "separate"]
    found = calibrate([v.runs for _, _, v in views], posts[0].group_spec, seed=seed, device=device,
                      progress=progress, full=[v for _, _, v in views], pools=pools)
    out = []
    for k, p in enumerate(posts):
        disc = {g: d for (j, g, _), d in zip(views, found) if j == k}
        out.append(dataclasses.replace(p, extrapolation_mode="calibrated", discrepancies=disc))
    return out


@dataclass(frozen=True, eq=False)
class GroupedPosterior:
    """The posterior of a grouped (hierarchical) fit: one law per group, draws paired across groups.

    Build one with ``bayesscale.fit(runs, groups=...)``.  See the module
    docstring for the design; :meth:`group` gives one group's
    :class:`bayesscale.Posterior`.

    Attributes
    ----------
    samples : dict of str to ndarray
        The grouped model's draws, ``(chains, draws[, groups])`` (padded
        group slots dropped).
    stats : dict of str to ndarray
        Sampler statistics per draw.
    runs : Runs
        The runs, with their groups.
    spec : ModelSpec
        The model (``spec.pooling`` is set).
    settings : SamplerSettings
        The sampler settings.
    info : dict
        Seed, device, timing and library versions.
    extrapolation_mode : {"calibrated", "none"}
        Whether each group's predictions beyond its runs carry a calibrated
        extrapolation error.
    discrepancies : dict of str to Discrepancy, optional
        Each group's extrapolation-error posterior (:func:`calibrate_groups`),
        carried by :meth:`group`'s views.
    """

    samples: dict
    stats: dict
    runs: Runs
    spec: ModelSpec
    settings: SamplerSettings
    info: dict = field(default_factory=dict)
    extrapolation_mode: str = "none"
    discrepancies: dict | None = None

    @classmethod
    def from_draws(cls, draws: Draws, runs: Runs, spec: ModelSpec, settings: SamplerSettings,
                   info: dict) -> "GroupedPosterior":
        vec = hierarchy.vector_sites(spec.pooling, spec.centering, spec.bend != "none")
        samples = {k: np.asarray(v, dtype=np.float64)[..., : runs.n_groups] if k in vec else
                   np.asarray(v, dtype=np.float64) for k, v in draws.samples.items()}
        info = dict(info, device=draws.device, timing=dict(draws.timing))
        return cls(samples=samples, stats=dict(draws.stats), runs=runs, spec=spec, settings=settings, info=info)

    # -- the record ------------------------------------------------------------

    @cached_property
    def tree(self):
        """The grouped posterior as an ArviZ ``DataTree``: the record, nothing per run and draw.

        ``posterior`` holds the grouped model's sampled variables (those with
        one value per group on a ``group`` dimension), ``sample_stats`` the
        sampler statistics, ``observed_data`` and ``constant_data`` the runs
        (``group_index`` per run, the group names as the ``group``
        coordinate).
        """
        from .posterior import _record_tree

        dims = {k: ["group"] for k, v in self.samples.items() if np.ndim(v) == 3}
        return _record_tree(self, data=dict(self.samples), dims=dims)

    def to_netcdf(self, path) -> Path:
        """Write the grouped posterior to a netCDF file, atomically.

        :func:`bayesscale.load_posterior` reads it back to an identical
        :class:`GroupedPosterior` (each group's extrapolation-error
        posterior included); the file carries a SHA-256 of its arrays and
        attributes, checked when it is read.
        """
        import json

        from .posterior import _save_tree

        found = None if self.discrepancies is None else {g: d.to_json() for g, d in self.discrepancies.items()}
        return _save_tree(self.tree, path, {"bayesscale_discrepancies": json.dumps(found)})

    # -- groups ----------------------------------------------------------------

    @property
    def law(self):
        """The law of every group (:class:`bayesscale.Law`)."""
        return self.spec.law

    @property
    def groups(self) -> tuple:
        """The group names, in index order."""
        return self.runs.group_names

    @property
    def pooling(self) -> str:
        """``"partial"``, ``"shared"`` or ``"separate"``."""
        return self.spec.pooling

    @property
    def n_draws(self) -> int:
        """Total posterior draws (chains x draws)."""
        return self.samples["t_N"][..., 0].size

    @cached_property
    def _ctx(self) -> dict:
        return context(covariate_arrays(self.runs, self.law.covariates), self.runs.loss)

    @cached_property
    def _sites(self) -> dict:
        """The plain law's sites per group, ``(chains, draws, groups)``."""
        return hierarchy.group_site_draws(self.samples, self.spec.pooling, self.spec.centering,
                                          self.runs.n_groups)

    @cached_property
    def bend_scales(self) -> np.ndarray:
        """Each group's prior sd of the bend (``BEND_OFF_SCALE`` where ``bend="auto"`` leaves it off)."""
        return hierarchy.group_bend_scales(self.spec, self.runs)

    @cached_property
    def _group_params(self) -> dict:
        """Natural parameters per group (and the bend ``kappa``): ``{name: {param: (chains, draws)}}``."""
        nat = dict(self.law.natural({k: self._sites[k] for k in self.law.sites}, self._ctx))
        if "z_bend" in self._sites:
            nat["kappa"] = self._sites["z_bend"] * self.bend_scales
        return {g: {k: np.asarray(v)[..., i] for k, v in nat.items()} for i, g in enumerate(self.groups)}

    @cached_property
    def _views(self) -> dict:
        return {}

    def group(self, name) -> Posterior:
        """One group's posterior: a :class:`bayesscale.Posterior` of the plain law on that group's runs.

        Its parameters are the group's natural parameters (draw ``s`` is the
        group's value in joint draw ``s``); its sampler statistics are the
        grouped fit's.  ``allocate``, ``predict``, ``summary``, the figures
        and the report work on it as on any single fit.
        """
        k = self.runs.group_index(name)
        name = self.groups[k]
        if name in self._views:
            return self._views[name]
        sub = self.runs.select_group(name)
        sub_ctx = context(covariate_arrays(sub, self.law.covariates), sub.loss)
        s = {key: v[..., k] for key, v in self._sites.items()}
        # the same log A and log B, re-centred on the group's own runs (the plain law's convention)
        s["t_N"] = s["t_N"] + s["alpha"] * (self._ctx["c_logN"] - sub_ctx["c_logN"])
        s["t_D"] = s["t_D"] + s["beta"] * (self._ctx["c_logD"] - sub_ctx["c_logD"])
        for key in self.spec.observation.sites:
            s[key] = self.samples[key]
        info = dict(self.info, label=name, group=name, pooling=self.spec.pooling)
        disc = None if self.discrepancies is None else self.discrepancies.get(name)
        view = Posterior(samples=s, stats=self.stats, runs=sub, spec=self.group_spec, settings=self.settings,
                         info=info, extrapolation_mode=self.extrapolation_mode if disc is not None else "none",
                         discrepancy=disc)
        self._views[name] = view
        return view

    @property
    def group_spec(self) -> ModelSpec:
        """The single-fit model of one group (the grouped spec without pooling; its prior overrides that apply)."""
        plain = dataclasses.replace(self.spec, pooling=None, centering="noncentred", prior_overrides={})
        return dataclasses.replace(plain, prior_overrides={k: v for k, v in self.spec.prior_overrides.items()
                                                           if k in plain.sites})

    @property
    def params(self) -> dict:
        """Flat draws of each group's natural parameters: ``{group: {param: (S,)}}``, plus the noise."""
        out = {g: {k: v.reshape(-1) for k, v in p.items()} for g, p in self._group_params.items()}
        for g in out:
            for key in self.spec.observation.sites:
                out[g][key] = self.samples[key].reshape(-1)
        return out

    # -- the comparison --------------------------------------------------------

    def compare_groups(self, a, b, budgets=None, *, losses=None, N=None, D=None,
                       ci: float | None = None) -> pd.DataFrame:
        """The compute multiplier of group ``b`` over group ``a`` (see the module docstring).

        Parameters
        ----------
        a, b : str
            Group names: ``a`` is the reference, ``b`` the candidate.
        budgets : array_like, optional
            Training compute in FLOPs (one row each).  By default eight
            budgets from the smallest run's compute to 100 times the largest.
        losses : array_like, optional
            Target losses instead of budgets: the multiplier is then
            ``C_A(L) / C_B(L)``, the ratio of the least compute each group
            needs to reach ``L`` on its frontier.
        N, D : array_like, optional
            Also report the loss difference ``L_B(N, D) - L_A(N, D)`` (the
            law, no noise) at fixed model size and tokens: give both, or
            one of them and the other is ``C / (6 x)`` at each budget.
        ci : float, optional
            Probability mass of the equal-tailed intervals.
            Default :data:`bayesscale.DEFAULT_CI`.

        Returns
        -------
        pandas.DataFrame
            One row per budget (or target loss): ``C`` (or ``loss``),
            ``multiplier`` (posterior median), ``multiplier_lo80``,
            ``multiplier_hi80`` (at ``ci=0.8``; the suffix is the level),
            ``prob_better`` (P(multiplier > 1)),
            ``loss_a``, ``loss_b`` (medians of each group's compute-optimal
            loss at ``C``; with ``losses``: ``C_a``, ``C_b``, the medians of
            each group's least compute) and with ``N``/``D`` the columns
            ``N``, ``D``, ``loss_diff``, ``loss_diff_lo80``, ``loss_diff_hi80``,
            ``prob_lower`` (P(L_B < L_A) at that N, D).
            ``df.attrs["draws"]`` holds the ``(S, n)`` multiplier draws.
        """
        ci = check_ci(ci)
        m_lo, m_hi = band_names("multiplier", ci)
        a, b = self.groups[self.runs.group_index(a)], self.groups[self.runs.group_index(b)]
        if a == b:
            raise ValueError(f"compare_groups needs two different groups, got {a!r} twice")
        pa, pb = self.params[a], self.params[b]
        fa, fb = self._frame(a), self._frame(b)
        if losses is not None:
            if budgets is not None:
                raise ValueError("give budgets or losses, not both")
            L = np.atleast_1d(np.asarray(losses, dtype=float))
            if np.any(~np.isfinite(L) | (L <= 0)):
                raise ValueError("losses must be positive, finite numbers")
            ca = compute_for_frontier_loss(pa, L[None, :], fa)
            cb = compute_for_frontier_loss(pb, L[None, :], fb)
            with np.errstate(invalid="ignore", divide="ignore"):
                m = np.where(np.isinf(ca) & np.isinf(cb), np.nan, ca / cb)
            med, lo, hi = _band(np.nan_to_num(m, nan=1.0, posinf=np.inf), ci)
            df = pd.DataFrame({"loss": L, "multiplier": med, m_lo: lo, m_hi: hi,
                               "prob_better": (m > 1).mean(axis=0), "C_a": np.median(ca, axis=0),
                               "C_b": np.median(cb, axis=0)})
        else:
            C = self._default_budgets() if budgets is None else np.atleast_1d(np.asarray(budgets, dtype=float))
            if np.any(~np.isfinite(C) | (C <= 0)):
                raise ValueError("budgets must be positive, finite numbers of FLOPs")
            m = compute_multiplier(pa, pb, C, fa, fb)
            med, lo, hi = _band(m, ci)
            df = pd.DataFrame({"C": C, "multiplier": med, m_lo: lo, m_hi: hi,
                               "prob_better": (m > 1).mean(axis=0),
                               "loss_a": np.median(frontier_loss(pa, C, fa), axis=0),
                               "loss_b": np.median(frontier_loss(pb, C, fb), axis=0)})
            if N is not None or D is not None:
                six = laws.FLOPS_PER_PARAM_TOKEN
                Nx = np.broadcast_to(np.asarray(N if N is not None else C / (six * np.asarray(D, float)), float),
                                     C.shape)
                Dx = np.broadcast_to(np.asarray(D if D is not None else C / (six * np.asarray(N, float)), float),
                                     C.shape)
                la = laws.loss({k: pa[k][:, None] for k in laws.PARAMETERS}, Nx[None, :], Dx[None, :])
                lb = laws.loss({k: pb[k][:, None] for k in laws.PARAMETERS}, Nx[None, :], Dx[None, :])
                log_c = np.log(six * Nx * Dx)[None, :]
                if fa is not None:  # the bend at C = 6 N D (it depends on compute only)
                    la = la * np.exp(bend_term(pa["kappa"][:, None], log_c, *fa))
                    lb = lb * np.exp(bend_term(pb["kappa"][:, None], log_c, *fb))
                dmed, dlo, dhi = _band(lb - la, ci)
                df["N"], df["D"] = Nx, Dx
                d_lo, d_hi = band_names("loss_diff", ci)
                df["loss_diff"], df[d_lo], df[d_hi] = dmed, dlo, dhi
                df["prob_lower"] = (lb < la).mean(axis=0)
        df.attrs.update(draws=m, a=a, b=b, ci=ci)
        return df

    def _frame(self, name):
        """The bend frame of group ``name`` (None without a bend)."""
        if "z_bend" not in self.samples:
            return None
        return bend_frame(self.runs.C[self.runs.group == self.runs.group_index(name)])

    def _default_budgets(self) -> np.ndarray:
        return np.geomspace(self.runs.C.min(), 100 * self.runs.C.max(), 8)

    # -- summaries and checks --------------------------------------------------

    @cached_property
    def _natural(self) -> dict:
        """Every group's natural parameters as ``"param[group]"``, the pooling scales and means, the noise."""
        out = {}
        for g, p in self._group_params.items():
            for k, v in p.items():
                out[f"{k}[{g}]"] = v
        for k, v in self.samples.items():  # the hyper-parameters and the noise (not the bend's coordinates)
            if v.ndim == 2 and k not in self.law.sites and k not in ("z_bend", "z_bend_mu"):
                out[k] = v
        return out

    def _log_lik_chunks(self):
        """The pointwise log-likelihood, chunk by chunk of runs (never held whole: ``S x n`` values)."""
        from .posterior import _run_chunks

        r = self.runs
        covs = covariate_arrays(r, self.law.covariates)
        bent = "z_bend" in self._sites  # each group's bend in its own frame
        if bent:
            kappa = np.stack([self._group_params[g]["kappa"] for g in self.groups], axis=-1)
            frames = [bend_frame(r.C[r.group == k]) for k in range(len(self.groups))]
        obs = self.spec.observation
        op = {k: self.samples[k][..., None] for k in obs.sites}
        y = np.log(r.loss)
        for idx in _run_chunks(self):
            nat = {k: np.stack([self._group_params[g][k] for g in self.groups], axis=-1)[..., r.group[idx]]
                   for k in self.law.params}
            mu = np.array(self.law.evaluate(nat, {c: a[idx] for c, a in covs.items()}), dtype=np.float64)
            if bent:
                for k in range(len(self.groups)):
                    sel = r.group[idx] == k
                    if sel.any():
                        mu[..., sel] += bend_term(kappa[..., k:k + 1], np.log(r.C[idx][sel]), *frames[k])
            yield obs.log_prob(y[idx], mu, op)

    def summary(self, *, ci: float | None = None) -> pd.DataFrame:
        """Posterior summary per group (rows ``(group, parameter)``), then the shared variables (group ``"*"``).

        Columns as :meth:`bayesscale.Posterior.summary`.
        """
        ci = check_ci(ci)
        lo_name, hi_name = band_names("", ci)
        nat = self._natural
        conv = convergence_table(nat)
        rows = []
        for key, v in nat.items():
            x = v.reshape(-1)
            med, lo, hi = _band(x, ci)
            group, param = (key[key.index("[") + 1:-1], key[: key.index("[")]) if "[" in key else ("*", key)
            rows.append({"group": group, "parameter": param, "median": med, "mean": x.mean(),
                         "sd": x.std(ddof=1), lo_name: lo, hi_name: hi, **conv.loc[key].to_dict()})
        df = pd.DataFrame(rows).set_index(["group", "parameter"])
        df.attrs["ci"] = ci
        return df

    def check(self) -> Verdict:
        """Verdict on the sampler over every group's parameters (see :mod:`bayesscale.diagnostics`)."""
        return self._verdict

    @cached_property
    def _verdict(self) -> Verdict:
        try:
            k = np.concatenate([pareto_k(ll) for ll in self._log_lik_chunks()])
        except (ValueError, FloatingPointError) as e:
            k = str(e)
        return diagnose(self._natural, self.stats, max_tree_depth=self.settings.max_tree_depth,
                        k_hat=k, run_ids=self.runs.run_id, retried=self.info.get("retried"))

    def __repr__(self) -> str:
        s = self.settings
        return (f"GroupedPosterior(law={self.law.name!r}, pooling={self.pooling!r}, groups={list(self.groups)}, "
                f"{len(self.runs)} runs, {s.chains} chains x {s.draws} draws)")
