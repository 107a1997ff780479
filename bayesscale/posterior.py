"""The fit result: an immutable posterior with the methods that read it.

A :class:`Posterior` holds the draws, the sampler statistics, the runs it was
fitted to, the model and the settings.  Everything else is derived from
those, lazily and once: the ArviZ ``DataTree`` (:attr:`Posterior.tree`), the
parameters on their natural scale (:attr:`Posterior.params`), the summary
table and the verdict.  :meth:`Posterior.to_netcdf` and
:func:`load_posterior` round-trip it exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from . import allocation, laws
from ._validate import check_ci, positive
from .intervals import band_names, quantiles
from .data import BUDGET_TOL_DEX, Runs
from .diagnostics import Verdict, convergence_table, diagnose
from .inference import Draws, SamplerSettings
from .discrepancy import Discrepancy, joint_draws
from .inference import covariate_arrays
from .model import ModelSpec, bend_frame, bend_term, context

__all__ = ["Posterior", "PosteriorFileError", "load_posterior", "atomic_write", "file_mode"]


class PosteriorFileError(ValueError):
    """A saved posterior cannot be read back: not a bayesscale file, incomplete or corrupted."""


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: the classic read-and-restore
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Permissions of a new file under the current umask (``0o666 & ~umask``, as ``open`` gives)."""
    return 0o666 & ~_umask()


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` in one step.

    A failure leaves nothing behind: no half-written file at ``path``.  The
    file gets the permissions a plain ``open`` would give under the current
    umask (``0o666 & ~umask``, e.g. 0644), not the 0600 of a temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _quantiles(x: np.ndarray, ci: float, axis=0):
    return quantiles(x, check_ci(ci), axis=axis)


@dataclass(frozen=True, eq=False)
class Posterior:
    """A fitted scaling law: posterior draws, diagnostics and derived quantities.

    Build one with :func:`bayesscale.fit`; do not construct it by hand.

    Attributes
    ----------
    samples : dict of str to ndarray
        Sampled variables, ``(chains, draws, ...)``, on the sampler's scale
        (centred terms ``t_N, t_D``; see :mod:`bayesscale.model`).
    stats : dict of str to ndarray
        Sampler statistics per draw.
    runs : Runs
        The data the law was fitted to.
    spec : ModelSpec
        The model.
    settings : SamplerSettings
        The sampler settings.
    info : dict
        Seed, device, timing and library versions.
    extrapolation_mode : {"calibrated", "none"}
        Whether predictions beyond the data carry the calibrated
        extrapolation error (see :attr:`extrapolation`).
    discrepancy : Discrepancy or None
        The posterior of the extrapolation error, computed by the fit
        (``extrapolation="calibrated"``) or by
        :func:`bayesscale.calibrate_extrapolation`, and stored in the
        netCDF file.  Never computed behind the user's back.
    """

    samples: dict
    stats: dict
    runs: Runs
    spec: ModelSpec
    settings: SamplerSettings
    info: dict = field(default_factory=dict)
    extrapolation_mode: str = "none"
    discrepancy: Discrepancy | None = None

    # -- construction ------------------------------------------------------

    @classmethod
    def from_draws(cls, draws: Draws, runs: Runs, spec: ModelSpec, settings: SamplerSettings,
                   info: dict, extrapolation_mode: str = "none",
                   discrepancy: Discrepancy | None = None) -> "Posterior":
        samples = {k: np.asarray(v, dtype=np.float64) for k, v in draws.samples.items()}
        if "z_budget" in samples:
            samples["z_budget"] = samples["z_budget"][..., : runs.n_budgets]
        info = dict(info, device=draws.device, timing=dict(draws.timing))
        return cls(samples=samples, stats=dict(draws.stats), runs=runs, spec=spec, settings=settings, info=info,
                   extrapolation_mode=extrapolation_mode, discrepancy=discrepancy)

    @property
    def extrapolation(self) -> Discrepancy | None:
        """The extrapolation-error posterior in use (None for ``extrapolation="none"``).

        A stored value, never computed here: the fit computes it, or
        :func:`bayesscale.calibrate_extrapolation` does, explicitly.  When
        the calibration was refused (too few folds) the record says why and
        adds nothing to predictions.
        """
        return None if self.extrapolation_mode == "none" else self.discrepancy

    # -- parameters --------------------------------------------------------

    @property
    def law(self):
        """The fitted :class:`bayesscale.Law`."""
        return self.spec.law

    @cached_property
    def _ctx(self) -> dict:
        """The data summary the law's centred parameters and priors are relative to."""
        return context(covariate_arrays(self.runs, self.law.covariates), self.runs.loss)

    @cached_property
    def _natural(self) -> dict:
        """Natural-scale parameters of the law, then the observation model's (and ``tau``), ``(chains, draws)``."""
        s = self.samples
        out = {k: np.asarray(v, dtype=np.float64)
               for k, v in self.law.natural({k: s[k] for k in self.law.sites}, self._ctx).items()}
        for k in self.spec.observation.sites + ("tau",):
            if k in s:
                out[k] = s[k]
        if "z_bend" in s:
            out["kappa"] = self.spec.bend_scale(self.runs) * s["z_bend"]
        return out

    def bend(self, C) -> np.ndarray:
        """The bend in log compute at ``C`` for every draw, ``(S, n)`` (zeros without one).

        ``kappa * (log10 C - m)**2`` with ``m`` the runs' mean ``log10 C``,
        continued along its tangent beyond the runs' compute (see
        :class:`bayesscale.ModelSpec`): added to the law's log loss in every
        prediction.
        """
        C = np.atleast_1d(np.asarray(C, dtype=float)).ravel()
        if "kappa" not in self._natural:
            return np.zeros((self.n_draws, C.size))
        return bend_term(self.params["kappa"][:, None], np.log(C)[None, :], *bend_frame(self.runs.C))

    @property
    def reported(self) -> tuple:
        """The parameters that summaries report, in order: the law's, the observation model's, ``tau``."""
        return tuple(self._natural)

    @property
    def params(self) -> dict:
        """Flat arrays of draws of the law's natural parameters, the noise (``sigma``, ...) and ``tau``."""
        return {k: v.reshape(-1) for k, v in self._natural.items()}

    @property
    def law_params(self) -> dict:
        """Flat arrays of draws of the law's natural parameters only."""
        return {k: v.reshape(-1) for k, v in self._natural.items() if k in self.law.params}

    @property
    def n_draws(self) -> int:
        """Total posterior draws (chains x draws)."""
        return self.samples[self.law.sites[0]].size

    # -- predictions -------------------------------------------------------

    def _offsets(self, C, *, N=None, run=None) -> np.ndarray:
        """Budget (for curves: run) offset draws ``(S, n)`` for new points at compute ``C``.

        Runs: a run whose compute matches a fitted budget group shares that
        group's offset; a new budget draws a fresh offset from ``Normal(0,
        tau)``, seeded by the budget (to 0.01 decades), so runs at one new
        budget share it and it does not depend on the other budgets asked for.

        Curves (``runs.is_curves``: the offset belongs to a run, not to a
        compute): compute says nothing about which run a point is on, so
        each point is a new run with a fresh offset, seeded by its ``C``,
        ``N`` and repeat count, unless ``run`` names the run of each point:
        a fitted run's label shares that run's offset; another label is a
        new run whose points share one fresh offset, seeded by the label.
        """
        C = np.atleast_1d(np.asarray(C, dtype=float))
        S = self.n_draws
        if "tau" not in self.samples:
            return np.zeros((S, C.size))
        seed = int(self.info.get("seed", 0))
        tau = self.samples["tau"].reshape(S, 1)
        zb = self.samples["z_budget"].reshape(S, -1)
        if self.runs.is_curves:
            names = None if run is None else np.broadcast_to(np.asarray(run, dtype=str), C.shape).ravel()
            Nk = np.zeros_like(C) if N is None else np.broadcast_to(np.asarray(N, dtype=float), C.shape).ravel()
            fitted = {}
            for rid, g in zip(self.runs.run_id.tolist(), self.runs.budget.tolist()):
                fitted.setdefault(rid.rsplit("@", 1)[0], g)
            z = np.empty((S, C.size))
            seen: dict = {}
            for i in range(C.size):
                if names is not None and names[i] in fitted:
                    z[:, i] = zb[:, fitted[names[i]]]
                    continue
                if names is not None:   # a new run by name: its points share one offset
                    key = [int(hashlib.sha256(names[i].encode()).hexdigest()[:15], 16)]
                else:                   # an anonymous point: a new run of its own
                    k = (C[i:i + 1].view(np.uint64)[0].item(), Nk[i:i + 1].view(np.uint64)[0].item())
                    rep = seen[k] = seen.get(k, -1) + 1
                    key = [*k, rep]
                z[:, i] = np.random.default_rng([seed, 13, *key]).standard_normal(S)
            return tau * z
        z = np.stack([np.random.default_rng([seed, 7, int(round(np.log10(c) * 100)) % 2**32]).standard_normal(S)
                      for c in C], axis=1)
        dist = np.abs(np.log10(C)[:, None] - np.log10(self.runs.budget_compute())[None, :])
        nearest = dist.argmin(axis=1)
        known = dist[np.arange(C.size), nearest] <= 1.5 * BUDGET_TOL_DEX
        z[:, known] = zb[:, nearest[known]]
        return tau * z

    def log_noise(self, C, *, seed: int | None = None, N=None, run=None) -> np.ndarray:
        """Predictive noise on log loss for new runs at compute ``C``: ``(S, n)`` draws.

        Observation noise (Student-t or Normal with the drawn ``sigma``),
        in the budget-offset model the offset of a new budget, and beyond
        the data the calibrated extrapolation error (:attr:`extrapolation`,
        :func:`bayesscale.discrepancy.joint_draws`: one error per distinct
        compute per draw, shared by runs at that compute, zero at the
        largest run).

        A run whose size or tokens (``N`` given) lie farther beyond the data
        than its compute takes the extrapolation error of that distance
        (:meth:`_reach`).

        Every element's draws are seeded by its own value (``C``, and ``N``
        when given) and its repeat count, so a run's band does not depend on
        the other runs asked for in the same call.  For curves, ``run``
        names the run of each point (see :meth:`_offsets`); without it each
        point is a new run.
        """
        C = np.atleast_1d(np.asarray(C, dtype=float)).ravel()
        seed = int(self.info.get("seed", 0)) if seed is None else int(seed)
        Nk = np.zeros_like(C) if N is None else np.broadcast_to(np.asarray(N, dtype=float), C.shape).ravel()
        S = self.n_draws
        obs = self.spec.observation
        noise_params = {k: self.params[k] for k in obs.sites}
        eps = np.empty((S, C.size))
        seen: dict = {}
        for i, key in enumerate(zip(C.view(np.uint64).tolist(), Nk.view(np.uint64).tolist())):
            rep = seen[key] = seen.get(key, -1) + 1
            rng = np.random.default_rng([seed, 11, key[0], key[1], rep])
            eps[:, i] = obs.sample(rng, np.zeros(S), noise_params)
        out = eps + self._offsets(C, N=None if N is None else Nk, run=run) + self.bend(C)
        return out + joint_draws(self.extrapolation, self._reach(C, Nk), S, seed=seed, quantity="loss")

    def _reach(self, C: np.ndarray, N: np.ndarray) -> np.ndarray:
        """The compute at which a run's extrapolation error is drawn.

        Its own compute, unless its size or its tokens lie farther beyond the
        data (in decades) than its compute does: a model 0.2 decades larger
        than any fitted one extrapolates 0.2 decades even at a compute inside
        the data, so it takes the error at ``c_max * 10**0.2``.  ``N = 0``
        means unknown (compute only).
        """
        r = self.runs
        known = N > 0
        if not np.any(known):
            return C
        c_max = float(np.max(r.C))
        d_c = np.log10(C / c_max)
        Nk = np.where(known, N, 1.0)
        D = C / (laws.FLOPS_PER_PARAM_TOKEN * Nk)
        d = np.maximum(np.log10(Nk / np.max(r.N)), np.log10(D / np.max(r.D)))
        return np.where(known & (d > np.maximum(d_c, 0.0)), c_max * 10.0 ** d, C)

    def law_log_loss(self, N, D, *, U=None) -> np.ndarray:
        """The law's ``log L`` for every draw at new runs, ``(S, n)`` (no noise)."""
        arrays = [np.atleast_1d(np.asarray(a, dtype=float)) for a in ((N, D) if U is None else (N, D, U))]
        arrays = np.broadcast_arrays(*arrays)
        if any(np.any(~np.isfinite(a) | (a <= 0)) for a in arrays[:2]) or (U is not None and np.any(arrays[2] <= 0)):
            raise ValueError("N, D (and U) must be positive and finite")
        p = {k: v[:, None] for k, v in self.law_params.items()}
        return self.law.log_loss_ND(p, arrays[0][None, :], arrays[1][None, :],
                                    U=None if U is None else arrays[2][None, :])

    def predict_draws(self, N, D, *, U=None) -> np.ndarray:
        """Posterior predictive draws of loss for new runs, ``(S, n)``."""
        mu = self.law_log_loss(N, D, U=U)
        N, D = np.broadcast_arrays(np.atleast_1d(np.asarray(N, dtype=float)), np.atleast_1d(np.asarray(D, dtype=float)))
        return np.exp(mu + self.log_noise(laws.FLOPS_PER_PARAM_TOKEN * N * D, N=N))

    def predict(self, N, D, *, ci: float | None = None) -> pd.DataFrame:
        """Posterior predictive loss for new runs.

        Parameters
        ----------
        N, D : array_like
            Model parameters and training tokens (broadcast together).
        ci : float, optional
            Probability mass of the equal-tailed interval.
            Default :data:`bayesscale.DEFAULT_CI`.

        Returns
        -------
        pandas.DataFrame
            Columns ``N, D, C, loss`` (predictive median), ``loss_lo80``,
            ``loss_hi80`` (at ``ci=0.8``; the suffix is the level, e.g.
            ``loss_lo95`` at ``ci=0.95``) and ``loss_mean``;
            ``df.attrs["ci"]`` holds the level.
        """
        ci = check_ci(ci)
        draws = self.predict_draws(N, D)
        med, lo, hi = _quantiles(draws, ci)
        N, D = np.broadcast_arrays(np.atleast_1d(np.asarray(N, float)), np.atleast_1d(np.asarray(D, float)))
        lo_name, hi_name = band_names("loss", ci)
        df = pd.DataFrame({"N": N, "D": D, "C": laws.FLOPS_PER_PARAM_TOKEN * N * D, "loss": med,
                           lo_name: lo, hi_name: hi, "loss_mean": draws.mean(axis=0)})
        df.attrs["ci"] = ci
        return df

    @cached_property
    def _fitted(self) -> dict:
        """Mean log loss, pointwise log-likelihood and replicated log loss at the runs."""
        r = self.runs
        nat = {k: v[..., None] for k, v in self._natural.items()}
        mu = self.law.evaluate({k: nat[k] for k in self.law.params}, covariate_arrays(r, self.law.covariates))
        if "tau" in self.samples:
            mu = mu + self.samples["tau"][..., None] * self.samples["z_budget"][..., r.budget]
        if "kappa" in nat:
            mu = mu + bend_term(nat["kappa"], np.log(r.C), *bend_frame(r.C))
        obs = self.spec.observation
        op = {k: nat[k] for k in obs.sites}
        y = np.log(r.loss)
        rng = np.random.default_rng([int(self.info.get("seed", 0)), 3])
        order = {"prev": r.previous_index()} if getattr(obs, "ordered", False) else {}
        return {"mu": mu, "log_lik": obs.log_prob(y, mu, op, **order), "y_rep": obs.sample(rng, mu, op, **order)}

    # -- compute-optimal allocation (see bayesscale.allocation) ---------------

    def allocate(self, budgets, *, ci: float | None = None, cost=None) -> pd.DataFrame:
        """Compute-optimal N, D, tokens per parameter and loss at each budget.

        Evaluated for every posterior draw (closed form under ``C = 6 N D``,
        numerically for another ``cost``).  What the bands include:

        * ``loss``: posterior predictive (law's parameters, noise, in the
          budget-offset model a new budget's offset, and beyond the data the
          calibrated extrapolation error of log loss);
        * ``N_opt``, ``D_opt``, ``tokens_per_param``: parameter uncertainty,
          and, when the data have at least three IsoFLOP-shaped budgets, the
          law's misplacement of the empirical optimum: a Gaussian process in
          log C fitted to the full fit's N_opt against those budgets'
          vertices (:func:`bayesscale.discrepancy.anchored_posterior`),
          which moves the centre as well as widening the band, at every
          budget, and grows beyond the data.  Without IsoFLOP-shaped
          budgets, beyond the data the extrapolation error of log N_opt
          fitted on the rolling-origin folds (the fold fit's N_opt against
          the full-data fit; drawn from its prior when the calibration was
          refused).  With ``extrapolation="none"``, parameter uncertainty
          only: the law's own optimum.

        Parameters
        ----------
        budgets : array_like
            Training compute in FLOPs.
        ci : float, optional
            Probability mass of the equal-tailed intervals.
            Default :data:`bayesscale.DEFAULT_CI`.
        cost : callable, optional
            ``flops_per_token(N)`` for another cost model ``C = cost(N) N D``.

        Returns
        -------
        pandas.DataFrame
            One row per budget: ``C``, ``N_opt``, ``N_opt_lo80``,
            ``N_opt_hi80``, ``D_opt``..., ``tokens_per_param``..., ``loss``,
            ``loss_lo80``, ``loss_hi80`` (at ``ci=0.8``; the suffix is the
            level).  ``df.attrs["ci"]`` holds the level and
            ``df.attrs["draws"]`` the ``(S, n_budgets)`` draws behind it
            (``N_opt, D_opt, tokens_per_param, loss``).
        """
        ci = check_ci(ci)
        budgets = positive(budgets, "budgets", unit=" of FLOPs")
        noise = self._budget_noise(budgets)
        shift = joint_draws(self.extrapolation, budgets, self.n_draws, seed=int(self.info.get("seed", 0)),
                            quantity="n_opt")
        res = allocation.allocate(self.law_params, budgets, ci=ci, cost=cost, log_noise=noise, log_N_error=shift,
                                  law=self.law)
        table = res.table
        table.attrs["draws"] = res.draws
        table.attrs["ci"] = ci
        return table

    def _budget_noise(self, budgets):
        return self.log_noise(positive(budgets, "budgets", unit=" of FLOPs"))

    def bayes_decision(self, budgets) -> pd.DataFrame:
        """The N that minimises the posterior *expected* loss at each budget.

        A decision, not a quantile: it differs from the median of ``N_opt``
        when the posterior is skewed.  See
        :func:`bayesscale.allocation.bayes_optimal_N`.
        """
        return allocation.bayes_optimal_N(self.law_params, budgets, log_noise=self._budget_noise(budgets), law=self.law)

    def prob_below(self, N, D, target) -> np.ndarray:
        """Posterior predictive probability that a run of (N, D) ends with loss below ``target``."""
        N, D = np.broadcast_arrays(np.asarray(N, dtype=float), np.asarray(D, dtype=float))
        noise = self.log_noise(laws.FLOPS_PER_PARAM_TOKEN * np.ravel(N) * np.ravel(D)).reshape(
            (self.n_draws,) + N.shape)
        return allocation.prob_below(self.law_params, N, D, target, log_noise=noise, law=self.law)

    def best_D_for_N(self, N, *, C=None, ci: float | None = None) -> pd.DataFrame:
        """Tokens for a fixed model size (see :func:`bayesscale.allocation.best_D_for_N`)."""
        return allocation.best_D_for_N(self.law_params, N, C=C, ci=ci, law=self.law).table

    def best_N_for_D(self, D, *, C=None, ci: float | None = None) -> pd.DataFrame:
        """Model size for a fixed token count (see :func:`bayesscale.allocation.best_N_for_D`)."""
        return allocation.best_N_for_D(self.law_params, D, C=C, ci=ci, law=self.law).table

    def compute_for_loss(self, target, *, ci: float | None = None) -> pd.DataFrame:
        """The least compute that reaches a target loss on the frontier, with its band."""
        return allocation.compute_for_loss(self.law_params, target, ci=ci, law=self.law).table

    def frontier_exponents(self, *, ci: float | None = None, budgets=None) -> pd.DataFrame:
        """``a``, ``b`` and ``G`` of ``N_opt = G (C/6)^a``, ``D_opt = (C/6)^b / G`` with intervals.

        The analogue of Table 2 of Hoffmann et al. (2022).  A law without the
        Chinchilla closed form gives local exponents at ``budgets`` (default:
        the largest fitted budget, 10x and 100x it); see
        :func:`bayesscale.allocation.frontier_exponents`.  For a
        ``kaplan_steps`` posterior: the exponents of ``N``, ``B`` and
        ``S_min`` against ``C_min`` and of ``N`` against ``C`` at a fixed
        batch (fitted over ``budgets``, default the fitted compute range;
        :func:`bayesscale.steps_analysis.frontier_exponents`).
        """
        if self.law.name == "kaplan_steps":
            from .steps_analysis import frontier_exponents
            return frontier_exponents(self, ci=ci, budgets=budgets)
        if budgets is None and self.law is not laws.LAWS["chinchilla"]:
            budgets = self.runs.C.max() * np.array([1.0, 10.0, 100.0])
        return allocation.frontier_exponents(self.law_params, ci=ci, law=self.law, budgets=budgets)

    def excess_compute(self, C, k=None, *, ci: float | None = None) -> pd.DataFrame:
        """Excess compute and tokens for model sizes ``k * N_opt(C)`` (Kaplan et al. 2020, Fig. 12)."""
        k = np.geomspace(0.25, 4, 49) if k is None else k
        return allocation.excess_compute(self.law_params, C, k, ci=ci, law=self.law).table

    def efficient_size_range(self, C, *, threshold: float = 0.2, ci: float | None = None):
        """Range of ``k = N / N_opt`` whose extra compute stays under ``threshold``.

        Returns a :class:`bayesscale.allocation.SizeRange`; ``.sentence``
        reads like "sizes between 0.53x and 2.25x the optimum cost at most
        20% more compute".
        """
        return allocation.efficient_size_range(self.law_params, C, threshold=threshold, ci=ci, law=self.law)

    # -- summaries and checks ----------------------------------------------

    def summary(self, *, ci: float | None = None) -> pd.DataFrame:
        """Posterior summary of the law's parameters.

        Parameters
        ----------
        ci : float, optional
            Probability mass of the equal-tailed interval; default
            :data:`bayesscale.DEFAULT_CI` (0.8).

        Returns
        -------
        pandas.DataFrame
            Indexed by parameter, with columns ``median, mean, sd, lo80,
            hi80, r_hat, ess_bulk, ess_tail`` (at ``ci=0.8``; the interval
            columns carry the level, ``lo95, hi95`` at ``ci=0.95``);
            ``df.attrs["ci"]`` holds ``ci``.
        """
        ci = check_ci(ci)
        lo_name, hi_name = band_names("", ci)
        nat = self._natural
        conv = convergence_table(nat)
        rows = {}
        for k in self.reported:
            x = nat[k].reshape(-1)
            med, lo, hi = _quantiles(x, ci)
            rows[k] = {"median": med, "mean": x.mean(), "sd": x.std(ddof=1), lo_name: lo, hi_name: hi,
                       **conv.loc[k].to_dict()}
        df = pd.DataFrame.from_dict(rows, orient="index")
        df.index.name = "parameter"
        df.attrs["ci"] = ci
        return df

    def check(self) -> Verdict:
        """Verdict on the sampler: R-hat, ESS, divergences, E-BFMI, tree depth, influential runs.

        See :mod:`bayesscale.diagnostics` for the thresholds.
        """
        return self._verdict

    @cached_property
    def _verdict(self) -> Verdict:
        mu = self._fitted["mu"]
        v = diagnose(self._natural, self.stats, max_tree_depth=self.settings.max_tree_depth,
                     log_lik=self._fitted["log_lik"], run_ids=self.runs.run_id,
                     residuals=np.log(self.runs.loss) - np.median(mu.reshape(-1, mu.shape[-1]), axis=0))
        x = self.extrapolation
        if x is None:
            return v
        notes = list(v.notes)
        if not x.calibrated("loss"):
            notes.append(f"Extrapolation error {x.reasons.get('loss', 'not calibrated')}.")
        notes += [f"Calibration refit failed its checks and was left out: {f}" for f in x.failed_folds]
        return dataclasses.replace(v, notes=notes)

    def __repr__(self) -> str:
        s = self.settings
        return (f"Posterior(law={self.law.name!r}, {len(self.runs)} runs, {s.chains} chains x {s.draws} draws, "
                f"likelihood={self.spec.likelihood!r}, offsets={self.spec.offsets!r})")

    # -- ArviZ -------------------------------------------------------------

    @cached_property
    def tree(self):
        """The posterior as an ArviZ ``DataTree``.

        Groups: ``posterior`` (sampled and natural-scale parameters),
        ``sample_stats`` (``diverging``, ``tree_depth``, ``n_steps``,
        ``energy``, ``lp``, ``acceptance_rate``, ``step_size``,
        ``reached_max_treedepth``), ``observed_data`` and
        ``posterior_predictive`` (``y`` = log loss), ``log_likelihood``
        and ``constant_data`` (the runs).
        """
        from arviz_base import from_dict

        r = self.runs
        post = {**self.samples, **{k: v for k, v in self._natural.items() if k not in self.samples}}
        st = self.stats
        sample_stats = {"diverging": st["diverging"].astype(bool), "tree_depth": st["tree_depth"],
                        "n_steps": st["num_steps"], "energy": st["energy"], "lp": -st["potential_energy"],
                        "acceptance_rate": st["accept_prob"], "step_size": st["step_size"],
                        "reached_max_treedepth": st["reached_max_depth"].astype(bool)}
        fitted = self._fitted
        dims = {"y": ["run"], "z_budget": ["budget"], "N": ["run"], "D": ["run"], "C": ["run"],
                "loss": ["run"], "budget_index": ["run"]}
        coords = {"run": r.run_id.tolist(), "budget": np.arange(r.n_budgets)}
        constant = {"N": r.N, "D": r.D, "C": r.C, "loss": r.loss, "budget_index": r.budget}
        for k in ("U", "S", "B"):
            if getattr(r, k) is not None:
                constant[k] = getattr(r, k)
                dims[k] = ["run"]
        tree = from_dict(
            {"posterior": post, "sample_stats": sample_stats,
             "observed_data": {"y": np.log(r.loss)},
             "posterior_predictive": {"y": fitted["y_rep"]},
             "log_likelihood": {"y": fitted["log_lik"]},
             "constant_data": constant},
            dims=dims, coords=coords, check_conventions=False)
        tree.attrs.update(self._attrs())
        return tree

    def _attrs(self) -> dict:
        import dataclasses

        return {"bayesscale_spec": json.dumps(self.spec.to_dict()),
                "bayesscale_extrapolation_mode": self.extrapolation_mode,
                "bayesscale_settings": json.dumps(dataclasses.asdict(self.settings)),
                "bayesscale_info": json.dumps(self.info, default=str),
                "bayesscale_source": self.runs.source, "bayesscale_sha256": self.runs.sha256}

    def to_netcdf(self, path: str | os.PathLike) -> Path:
        """Write the posterior to a netCDF file, atomically.

        :func:`load_posterior` reads it back to an identical posterior.  The
        file carries a SHA-256 of every array and every ``bayesscale_*``
        attribute (``bayesscale_checksum``), checked when it is read.
        """
        tree = self.tree.copy()
        x = self.discrepancy
        tree.attrs["bayesscale_discrepancy"] = json.dumps(None if x is None else x.to_json())
        tree.attrs[_CHECKSUM] = _tree_checksum(tree)
        return atomic_write(path, lambda tmp: tree.to_netcdf(tmp, engine="netcdf4"))


#: The attribute that holds the checksum of a saved posterior.
_CHECKSUM = "bayesscale_checksum"


def _tree_checksum(tree) -> str:
    """SHA-256 over every variable and coordinate of every group, and the ``bayesscale_*`` attributes.

    Values are normalised (floats to float64, integers and booleans to int64,
    text to UTF-8) so that the netCDF round trip of dtypes does not matter.
    """
    import hashlib

    h = hashlib.sha256()
    for key in sorted(k for k in tree.attrs if k.startswith("bayesscale_") and k != _CHECKSUM):
        h.update(f"attr {key}={tree.attrs[key]}\n".encode())
    for node in sorted(tree.subtree, key=lambda n: n.path):
        ds = node.to_dataset(inherit=False)
        for name in sorted(map(str, ds.variables)):
            a = np.asarray(ds.variables[name].values)
            h.update(f"var {node.path}/{name} {a.shape}\n".encode())
            if a.dtype.kind in "fc":
                h.update(np.ascontiguousarray(a, dtype=np.complex128 if a.dtype.kind == "c" else "<f8").tobytes())
            elif a.dtype.kind in "biu":
                h.update(np.ascontiguousarray(a, dtype="<i8").tobytes())
            else:
                h.update("\x1f".join(map(str, a.ravel().tolist())).encode())
    return "sha256:" + h.hexdigest()


def _json_attr(attrs, key: str, path: Path, default=None):
    if key not in attrs:
        if default is not None:
            return json.loads(default)
        raise PosteriorFileError(f"{path}: the attribute {key} is missing, so this is not a complete bayesscale "
                                 "posterior. Refit and save it again with post.to_netcdf (or bayesscale fit --out).")
    try:
        return json.loads(attrs[key])
    except (TypeError, ValueError) as e:
        raise PosteriorFileError(f"{path}: the attribute {key} is not valid JSON ({e}); the file is damaged or "
                                 "was edited by hand. Refit and save it again with post.to_netcdf "
                                 "(or bayesscale fit --out).") from None


def load_posterior(path: str | os.PathLike, *, law=None) -> Posterior:
    """Read a posterior written by :meth:`Posterior.to_netcdf`.

    A posterior of a law you wrote (:meth:`bayesscale.Law.from_function`)
    needs that law again: ``load_posterior(path, law=my_law)``; built-in
    laws are found by name.

    The file is read completely and closed before this returns, so a path
    overwritten later reads back the new posterior.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    PosteriorFileError
        (a ValueError) If the file is not a bayesscale posterior, misses a
        group or an attribute, or its arrays or attributes do not match the
        checksum stored when it was written (a damaged file).  The message
        names the file and the fix.
    """
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with xr.open_datatree(path, engine="netcdf4", cache=False) as opened:
            tree = opened.load()
    except Exception as e:  # noqa: BLE001 - any reader failure means "not a posterior file"
        raise PosteriorFileError(f"{path} is not a netCDF posterior file ({e})") from None
    attrs = tree.attrs
    if "bayesscale_spec" not in attrs:
        raise PosteriorFileError(f"{path} was not written by bayesscale (no bayesscale_spec attribute)")
    stored = attrs.get(_CHECKSUM)
    if stored is not None and stored != _tree_checksum(tree):
        raise PosteriorFileError(f"{path}: the posterior's arrays or attributes do not match the checksum stored "
                                 "when the file was written: the file is damaged. Restore it from a copy, or "
                                 "refit and save it again (post.to_netcdf or bayesscale fit --out).")
    spec_dict = _json_attr(attrs, "bayesscale_spec", path)
    try:
        spec = ModelSpec.from_dict(spec_dict, law=law)
    except ValueError as e:
        if "law" in str(e):
            raise PosteriorFileError(f"{path}: {e}") from None
        raise
    try:
        settings = SamplerSettings(**_json_attr(attrs, "bayesscale_settings", path))
        info = _json_attr(attrs, "bayesscale_info", path)
        x = _json_attr(attrs, "bayesscale_discrepancy", path, default="null")
        cd = tree["constant_data"]
        runs = Runs(N=cd["N"].values, D=cd["D"].values, C=cd["C"].values, loss=cd["loss"].values,
                    run_id=cd["run"].values.astype(str), budget=cd["budget_index"].values,
                    source=attrs["bayesscale_source"], sha256=attrs["bayesscale_sha256"],
                    U=cd["U"].values if "U" in cd else None, S=cd["S"].values if "S" in cd else None,
                    B=cd["B"].values if "B" in cd else None)
        post = tree["posterior"]
        names = [k for k in post.data_vars if k in spec.sites or k == "z_budget"]
        samples = {k: post[k].values for k in names}
        ss = tree["sample_stats"]
        stats = {"diverging": ss["diverging"].values, "tree_depth": ss["tree_depth"].values,
                 "num_steps": ss["n_steps"].values, "energy": ss["energy"].values,
                 "potential_energy": -ss["lp"].values, "accept_prob": ss["acceptance_rate"].values,
                 "step_size": ss["step_size"].values, "reached_max_depth": ss["reached_max_treedepth"].values}
        discrepancy = None if x is None else Discrepancy.from_json(x)
    except PosteriorFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"the entry {e.args[0]!r} is missing" if isinstance(e, KeyError) and e.args else str(e)
        raise PosteriorFileError(f"{path}: not a complete bayesscale posterior ({what}). It was written by another "
                                 "version or changed by hand; refit and save it again with post.to_netcdf "
                                 "(or bayesscale fit --out).") from None
    return Posterior(samples=samples, stats=stats, runs=runs, spec=spec, settings=settings, info=info,
                     extrapolation_mode=attrs.get("bayesscale_extrapolation_mode", "none"),
                     discrepancy=discrepancy)
