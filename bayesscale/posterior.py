"""The fit result: an immutable record of the draws, and the pure functions that read it.

A :class:`Posterior` holds the draws, the sampler statistics, the runs it was
fitted to, the model and the settings, and a few methods that read them
(parameters, predictions, allocation, summary, verdict, the ArviZ tree and
netCDF output).  :meth:`Posterior.to_netcdf` and :func:`load_posterior`
round-trip it exactly.

Functions here evaluate the fitted model at the draws: :func:`law_log_loss`,
:func:`log_noise` and :func:`bend` for new runs (the building blocks of
predictions and allocations), and, at the fitted runs, the pointwise
:func:`log_likelihood`, the replicated data :func:`posterior_predictive` and
:func:`to_arviz`, all computed on demand and never kept.

Memory
------
A posterior holds no array per run and draw: its arrays are the parameter
draws (``chains x draws`` values per site, plus one per budget in the
budget-offset model), the sampler statistics and the runs, about 1 MB at
4 x 1,000 draws whatever the number of runs.  A pointwise array of ``n``
runs and ``S`` draws costs ``8 S n`` bytes only while it is asked for
(:func:`log_likelihood`, :func:`posterior_predictive`, :func:`to_arviz`,
a report's LOO-PIT, the PPC figure), and :meth:`Posterior.check` works
through the runs in chunks of :data:`CHUNK_ELEMENTS` values.  Measured
(``benchmarks/memory.py``, RESULTS.md "memory", 2-core CPU, 4 x (1,000 +
1,000), ``extrapolation="none"``): a fit and its check peak at 0.38 GB
above the interpreter with 1,000 runs and 0.57 GB with 10,000 (2.55 GB
before, when a checked posterior kept 67 bytes per run and draw).  The
default calibration (:mod:`bayesscale.calibration`) still evaluates the
fit's mean at every run and draw at once, about 56 bytes per run and draw
while it runs (a 10,000-run default fit peaks at 2.65 GB).
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
from .data import Runs, match_budgets
from .diagnostics import Verdict, convergence_table, diagnose, pareto_k
from .inference import Draws, SamplerSettings
from .discrepancy import Discrepancy, joint_draws, tilt_draws
from .inference import covariate_arrays
from .model import ModelSpec, bend_frame, bend_term, context, profile_term

__all__ = ["Posterior", "PosteriorFileError", "load_posterior", "atomic_write", "file_mode", "law_log_loss",
           "log_noise", "bend", "log_likelihood", "posterior_predictive", "to_arviz", "CHUNK_ELEMENTS",
           "POINTWISE_GROUPS"]


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


#: Draws x runs per chunk when a pointwise quantity (mean log loss, log-likelihood) is computed on
#: demand: 2**20 float64 values, 8 MiB per array; a chunk's temporaries (the law's log-sum-exp, the
#: likelihood, PSIS) are several such arrays.
CHUNK_ELEMENTS = 2**20

#: Calls that computed pointwise (per run and draw) arrays, for tests: reading a result must not.
_POINTWISE = {"chunks": 0}


@dataclass(frozen=True, eq=False)
class Posterior:
    """A fitted scaling law: the record of a fit.

    Build one with :func:`bayesscale.fit`; do not construct it by hand.

    A record holds the draws of the parameters, the sampler statistics, the
    runs, the model and the settings, and reads them with a small set of
    methods: :attr:`params`, :meth:`predict_draws`, :meth:`predict`,
    :meth:`allocate`, :meth:`summary`, :meth:`check`, :attr:`tree` and
    :meth:`to_netcdf` (plus :attr:`law`, :attr:`law_params`,
    :attr:`reported`, :attr:`n_draws`, :attr:`extrapolation` and
    :meth:`from_draws`).  Analyses are functions of a posterior:
    ``bs.frontier_exponents(post)``, ``bs.best_D_for_N(post, N)``,
    ``bs.compute_for_loss(post, target)``, ``bs.excess_compute(post, C)``,
    ``bs.efficient_size_range(post, C)``, ``bs.bayes_decision(post, C)``,
    ``bs.prob_below(post, N, D, target)`` (:mod:`bayesscale.allocation`);
    pointwise quantities are :func:`log_likelihood`,
    :func:`posterior_predictive` and :func:`to_arviz`.

    Memory: nothing per run and draw is held.  A posterior keeps its
    parameter draws (a few dozen float64 values per draw, plus one per
    budget in the budget-offset model) and the runs; the pointwise
    log-likelihood and the replicated data (``S x n x 8`` bytes each for
    ``S`` draws and ``n`` runs) are computed only when asked, and
    :meth:`check` computes PSIS-LOO and the residuals in chunks of
    :data:`CHUNK_ELEMENTS` draws x runs.  Reading a posterior (``repr``,
    :meth:`predict`, :meth:`allocate`, :attr:`tree`, :meth:`to_netcdf`)
    never runs the sampler, the calibration or PSIS-LOO.

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
        """The posterior of one data set's :class:`~bayesscale.inference.Draws` (used by the fit)."""
        samples = {k: np.asarray(v, dtype=np.float64) for k, v in draws.samples.items()}
        if "z_budget" in samples:  # a copy: the padded budget slots are not kept alive by a view
            samples["z_budget"] = np.ascontiguousarray(samples["z_budget"][..., : runs.n_budgets])
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
        if "z_profile" in s:
            out["profile_trend"] = self.spec.priors.profile_scale * np.asarray(s["z_profile"], dtype=np.float64)
        return out

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

    def predict_draws(self, N, D=None, *, U=None, S=None, B=None) -> np.ndarray:
        """Posterior predictive draws of loss for new runs, ``(S, n)``.

        The law at every draw (:func:`law_log_loss`) plus the predictive
        noise of a new run (:func:`log_noise`: observation noise, a new
        budget's offset, the bend, and beyond the data the calibrated
        extrapolation error and tilt along the budget).  Arguments as for
        :meth:`predict`.
        """
        N, D, extra = _new_runs(self, N, D, U=U, S=S, B=B)
        mu = law_log_loss(self, N, D, **extra)
        return np.exp(mu + log_noise(self, laws.FLOPS_PER_PARAM_TOKEN * N * D, N=N))

    def predict(self, N, D=None, *, U=None, S=None, B=None, ci: float | None = None) -> pd.DataFrame:
        """Posterior predictive loss for new runs.

        Parameters
        ----------
        N, D : array_like
            Model parameters and training tokens (broadcast together).  For
            a law of steps and batch size (``"kaplan_steps"``, fitted to
            training curves) give ``S`` and ``B`` instead of ``D``.
        U : array_like, optional
            Unique training tokens, for laws that read them
            (``"data_constrained"``); default: no repetition.
        S, B : array_like, optional
            Optimiser steps and batch size in tokens, for laws that read
            them; ``D`` is then the tokens seen, ``S * B``.
        ci : float, optional
            Probability mass of the equal-tailed interval.
            Default :data:`bayesscale.DEFAULT_CI`.

        Returns
        -------
        pandas.DataFrame
            Columns ``N, D, C, loss`` (predictive median), ``loss_lo80``,
            ``loss_hi80`` (at ``ci=0.8``; the suffix is the level, e.g.
            ``loss_lo95`` at ``ci=0.95``) and ``loss_mean``, after ``U``,
            ``S`` and ``B`` when given; ``df.attrs["ci"]`` holds the level.
        """
        ci = check_ci(ci)
        draws = self.predict_draws(N, D, U=U, S=S, B=B)
        med, lo, hi = quantiles(draws, ci)
        N, D, extra = _new_runs(self, N, D, U=U, S=S, B=B)
        lo_name, hi_name = band_names("loss", ci)
        df = pd.DataFrame({"N": N, "D": D, **{k: v for k, v in extra.items() if v is not None},
                           "C": laws.FLOPS_PER_PARAM_TOKEN * N * D, "loss": med,
                           lo_name: lo, hi_name: hi, "loss_mean": draws.mean(axis=0)})
        df.attrs["ci"] = ci
        return df

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
          log C fitted, draw by draw, to each posterior draw's N_opt
          against those budgets' vertices
          (:func:`bayesscale.discrepancy.anchored_posterior`), which moves
          the centre and sets the band, at every budget, and grows beyond
          the data.  Without IsoFLOP-shaped
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

        See Also
        --------
        bayesscale.bayes_decision, bayesscale.frontier_exponents,
        bayesscale.compute_for_loss, bayesscale.best_D_for_N,
        bayesscale.excess_compute, bayesscale.efficient_size_range
        """
        ci = check_ci(ci)
        budgets = positive(budgets, "budgets", unit=" of FLOPs")
        noise = log_noise(self, budgets)
        shift = joint_draws(self.extrapolation, budgets, self.n_draws, seed=int(self.info.get("seed", 0)),
                            quantity="n_opt")
        res = allocation.allocate(self.law_params, budgets, ci=ci, cost=cost, log_noise=noise, log_N_error=shift,
                                  law=self.law)
        table = res.table
        table.attrs["draws"] = res.draws
        table.attrs["ci"] = ci
        return table

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
            med, lo, hi = quantiles(x, ci)
            rows[k] = {"median": med, "mean": x.mean(), "sd": x.std(ddof=1), lo_name: lo, hi_name: hi,
                       **conv.loc[k].to_dict()}
        df = pd.DataFrame.from_dict(rows, orient="index")
        df.index.name = "parameter"
        df.attrs["ci"] = ci
        return df

    def check(self) -> Verdict:
        """Verdict on the sampler: R-hat, ESS, divergences, E-BFMI, tree depth, influential runs.

        See :mod:`bayesscale.diagnostics` for the thresholds.  The first
        call computes PSIS-LOO (influential runs) and the residuals (runs
        far off the law) from the pointwise log-likelihood, chunk by chunk
        of runs (:data:`CHUNK_ELEMENTS` draws x runs at a time), and keeps
        the verdict only.
        """
        return self._verdict

    @cached_property
    def _verdict(self) -> Verdict:
        n = len(self.runs)
        resid = np.empty(n)
        ks, why = [], None
        for idx, mu in _mean_chunks(self):
            resid[idx] = np.log(self.runs.loss[idx]) - np.median(mu.reshape(-1, idx.size), axis=0)
            if why is None:
                try:
                    ks.append(pareto_k(_log_lik_at(self, idx, mu)))
                except (ValueError, FloatingPointError) as e:
                    why = str(e)
        v = diagnose(self._natural, self.stats, max_tree_depth=self.settings.max_tree_depth,
                     k_hat=np.concatenate(ks) if why is None else why, run_ids=self.runs.run_id, residuals=resid,
                     retried=self.info.get("retried"))
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
        """The posterior as an ArviZ ``DataTree``: the record, nothing per run and draw.

        Groups: ``posterior`` (sampled and natural-scale parameters),
        ``sample_stats`` (``diverging``, ``tree_depth``, ``n_steps``,
        ``energy``, ``lp``, ``acceptance_rate``, ``step_size``,
        ``reached_max_treedepth``), ``observed_data`` (``y`` = log loss)
        and ``constant_data`` (the runs).  For ``log_likelihood`` and
        ``posterior_predictive`` (``S x n`` each, computed when asked), use
        :func:`to_arviz`.
        """
        return _record_tree(self)

    def to_netcdf(self, path: str | os.PathLike) -> Path:
        """Write the posterior to a netCDF file, atomically.

        :func:`load_posterior` reads it back to an identical posterior.  The
        file holds :attr:`tree` (the draws, the sampler statistics and the
        runs; the pointwise groups are recomputed from them on demand) and
        the extrapolation-error posterior, and carries a SHA-256 of every
        array and every ``bayesscale_*`` attribute (``bayesscale_checksum``),
        checked when it is read.
        """
        x = self.discrepancy
        return _save_tree(self.tree, path, {"bayesscale_discrepancy": json.dumps(None if x is None else x.to_json())})


# ---------------------------------------------------------------------------
# the model at the draws: building blocks of predictions (pure functions of a posterior)
# ---------------------------------------------------------------------------


def bend(post: Posterior, C) -> np.ndarray:
    """The bend in log compute at ``C`` for every draw, ``(S, n)`` (zeros without one).

    ``kappa * (log10 C - m)**2`` with ``m`` the runs' mean ``log10 C``,
    continued along its tangent beyond the runs' compute (see
    :class:`bayesscale.ModelSpec`): added to the law's log loss in every
    prediction.
    """
    C = np.atleast_1d(np.asarray(C, dtype=float)).ravel()
    if "kappa" not in post._natural:
        return np.zeros((post.n_draws, C.size))
    return bend_term(post.params["kappa"][:, None], np.log(C)[None, :], *bend_frame(post.runs.C))


def _offsets(post: Posterior, C, *, N=None, run=None) -> np.ndarray:
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
    S = post.n_draws
    if "tau" not in post.samples:
        return np.zeros((S, C.size))
    seed = int(post.info.get("seed", 0))
    tau = post.samples["tau"].reshape(S, 1)
    zb = post.samples["z_budget"].reshape(S, -1)
    runs = post.runs
    if runs.is_curves:
        names = None if run is None else np.broadcast_to(np.asarray(run, dtype=str), C.shape).ravel()
        Nk = np.zeros_like(C) if N is None else np.broadcast_to(np.asarray(N, dtype=float), C.shape).ravel()
        fitted = {}
        for rid, g in zip(runs.run_id.tolist(), runs.budget.tolist()):
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
    g = match_budgets(runs, C)
    known = g >= 0
    z[:, known] = zb[:, g[known]]
    return tau * z


def log_noise(post: Posterior, C, *, seed: int | None = None, N=None, run=None) -> np.ndarray:
    """Predictive noise on log loss for new runs at compute ``C``: ``(S, n)`` draws.

    Observation noise (Student-t or Normal with the drawn ``sigma``),
    in the budget-offset model the offset of a new budget, the bend, and
    beyond the data the calibrated extrapolation error
    (:attr:`Posterior.extrapolation`,
    :func:`bayesscale.discrepancy.joint_draws`: one error per distinct
    compute per draw, shared by runs at that compute, zero at the
    largest run).  A run whose size or tokens (``N`` given) lie farther
    beyond the data than its compute takes the extrapolation error of that
    distance (:func:`_reach`).  With ``N`` given, at a compute beyond the
    data, the calibrated tilt along the budget too (:func:`_tilt`).

    Every element's draws are seeded by its own value (``C``, and ``N``
    when given) and its repeat count, so a run's band does not depend on
    the other runs asked for in the same call.  For curves, ``run``
    names the run of each point (see :func:`_offsets`); without it each
    point is a new run.
    """
    C = np.atleast_1d(np.asarray(C, dtype=float)).ravel()
    seed = int(post.info.get("seed", 0)) if seed is None else int(seed)
    Nk = np.zeros_like(C) if N is None else np.broadcast_to(np.asarray(N, dtype=float), C.shape).ravel()
    S = post.n_draws
    obs = post.spec.observation
    noise_params = {k: post.params[k] for k in obs.sites}
    eps = np.empty((S, C.size))
    seen: dict = {}
    for i, key in enumerate(zip(C.view(np.uint64).tolist(), Nk.view(np.uint64).tolist())):
        rep = seen[key] = seen.get(key, -1) + 1
        rng = np.random.default_rng([seed, 11, key[0], key[1], rep])
        eps[:, i] = obs.sample(rng, np.zeros(S), noise_params)
    out = eps + _offsets(post, C, N=None if N is None else Nk, run=run) + bend(post, C)
    return (out + joint_draws(post.extrapolation, _reach(post, C, Nk), S, seed=seed, quantity="loss")
            + _tilt(post, C, Nk, seed))


def _tilt(post: Posterior, C: np.ndarray, N: np.ndarray, seed: int) -> np.ndarray:
    """The calibrated tilt along the budget for runs of size ``N`` at compute ``C``, ``(S, n)`` (zero where ``N = 0``).

    ``tilt (x - x_c(C))`` with ``x = log(D / N)`` and ``x_c(C)`` where a
    budget's runs sit: the least-squares line through the fitted budgets'
    median ``log(D / N)`` against ``log C``, continued (flat on an IsoFLOP
    ladder; rising on a grid of sizes x tokens).  The folds measure the
    level error as the median error of a held-out budget's runs, so the
    tilt turns the prediction about the point that error refers to.  Only
    at a compute beyond the data, the extrapolation the folds measure (a
    larger model at a compute inside the data gets the level error of its
    distance, :func:`_reach`, and no tilt: measured on Farseer's three
    largest sizes held out, a tilt there raised the median error from 0.56%
    to 1.77%); its size follows the compute's distance
    (:func:`bayesscale.discrepancy.tilt_draws`).
    """
    S = post.n_draws
    disc = post.extrapolation
    known = N > 0
    if disc is None or not disc.has_tilt or not np.any(known & (C > disc.c_max)):
        return np.zeros((S, C.size))
    x = np.log(C / laws.FLOPS_PER_PARAM_TOKEN) - 2 * np.log(np.where(known, N, 1.0))
    r = post.runs
    per = pd.DataFrame({"b": r.budget, "lc": np.log(r.C), "x": np.log(r.D / r.N)}).groupby("b").median()
    fit = np.polyfit(per["lc"], per["x"], 1) if len(per) > 1 else np.array([0.0, float(per["x"].iloc[0])])
    lever = np.where(known, x - np.polyval(fit, np.log(C)), 0.0)
    return tilt_draws(disc, C, S, seed=seed) * lever[None, :]


def _reach(post: Posterior, C: np.ndarray, N: np.ndarray) -> np.ndarray:
    """The compute at which a run's extrapolation error is drawn.

    Its own compute, unless its size or its tokens lie farther beyond the
    data (in decades) than its compute does: a model 0.2 decades larger
    than any fitted one extrapolates 0.2 decades even at a compute inside
    the data, so it takes the error at ``c_max * 10**0.2``.  ``N = 0``
    means unknown (compute only).
    """
    r = post.runs
    known = N > 0
    if not np.any(known):
        return C
    c_max = float(np.max(r.C))
    d_c = np.log10(C / c_max)
    Nk = np.where(known, N, 1.0)
    D = C / (laws.FLOPS_PER_PARAM_TOKEN * Nk)
    d = np.maximum(np.log10(Nk / np.max(r.N)), np.log10(D / np.max(r.D)))
    return np.where(known & (d > np.maximum(d_c, 0.0)), c_max * 10.0 ** d, C)


def _new_runs(post: Posterior, N, D=None, *, U=None, S=None, B=None) -> tuple:
    """``N``, ``D`` and the other covariates of new runs, broadcast to one flat shape and checked."""
    steps = {"logS", "logB"} & set(post.law.covariates)
    if steps and (S is None or B is None):
        raise ValueError(f"law {post.law.name!r} reads optimiser steps and batch size: pass S= (steps) and B= "
                         "(batch size in tokens), e.g. post.predict(N, S=1e5, B=5e5).")
    if not steps and (S is not None or B is not None):
        raise ValueError(f"law {post.law.name!r} does not read steps or batch size: pass D (training tokens).")
    if D is None:
        if not steps:
            raise ValueError("pass D, the training tokens of each new run.")
        D = np.asarray(S, dtype=float) * np.asarray(B, dtype=float)
    named = {"N": N, "D": D, "U": U, "S": S, "B": B}
    given = [k for k, v in named.items() if v is not None]
    arrays = dict(zip(given, np.broadcast_arrays(*(np.atleast_1d(np.asarray(named[k], dtype=float)).ravel()
                                                   for k in given))))
    bad = [k for k, a in arrays.items() if np.any(~np.isfinite(a) | (a <= 0)) and not (k == "U" and np.all(a > 0))]
    if bad:
        raise ValueError(f"{', '.join(bad)} must be positive and finite")
    return arrays.pop("N"), arrays.pop("D"), {k: arrays.get(k) for k in ("U", "S", "B")}


def law_log_loss(post: Posterior, N, D, *, U=None, S=None, B=None) -> np.ndarray:
    """The law's ``log L`` for every draw at new runs, ``(S, n)`` (no noise, no bend).

    With ``profile="trend"`` the profile's extra curvature is part of it
    (:func:`profile`): it belongs to the run's size and tokens, not to
    its compute.
    """
    N, D, extra = _new_runs(post, N, D, U=U, S=S, B=B)
    cov = {"logN": np.log(N), "logD": np.log(D)}
    cov.update({f"log{k}": np.log(v) for k, v in extra.items() if v is not None})
    p = {k: v[:, None] for k, v in post.law_params.items()}
    mu = post.law.evaluate(p, {k: v[None, :] for k, v in cov.items()})
    if "profile_trend" in post._natural:
        mu = mu + profile(post, N, laws.FLOPS_PER_PARAM_TOKEN * N * D)
    return mu


def profile(post: Posterior, N, C) -> np.ndarray | float:
    """The IsoFLOP profile's extra curvature (``profile="trend"``) at runs of size ``N`` and compute ``C``.

    ``(S,) + shape`` of ``N`` and ``C`` broadcast (0.0 without the term);
    see :func:`bayesscale.model.profile_term`.  It continues linearly in
    ``log10 C`` beyond the data.
    """
    nat = post._natural
    if "profile_trend" not in nat:
        return 0.0
    N, C = np.broadcast_arrays(np.asarray(N, dtype=float), np.asarray(C, dtype=float))
    lead = (slice(None),) + (None,) * N.ndim
    p = {k: post.law_params[k][lead] for k in ("A", "B", "alpha", "beta")}
    return profile_term(nat["profile_trend"].reshape(-1)[lead], p, np.log(N)[None], np.log(C)[None],
                        bend_frame(post.runs.C)[0])


# ---------------------------------------------------------------------------
# pointwise quantities at the fitted runs: computed on demand, chunk by chunk
# ---------------------------------------------------------------------------


def _run_chunks(post: Posterior, chunk: int | None = None):
    """Index arrays of consecutive runs, each at most ``chunk`` (default :data:`CHUNK_ELEMENTS`) draws x runs."""
    n = len(post.runs)
    step = max(1, int(chunk or CHUNK_ELEMENTS) // max(post.n_draws, 1))
    for a in range(0, n, step):
        yield np.arange(a, min(n, a + step))


def _mean_log_loss(post: Posterior, idx, chains=slice(None), covs: dict | None = None) -> np.ndarray:
    """The model's mean log loss at fitted runs ``idx``: law, budget offset and bend, ``(chains, draws, k)``."""
    _POINTWISE["chunks"] += 1
    r = post.runs
    idx = np.asarray(idx)
    nat = {k: v[chains][..., None] for k, v in post._natural.items()}
    covs = covariate_arrays(r, post.law.covariates) if covs is None else covs
    mu = post.law.evaluate({k: nat[k] for k in post.law.params}, {c: a[idx] for c, a in covs.items()})
    if "tau" in post.samples:
        mu = mu + post.samples["tau"][chains][..., None] * post.samples["z_budget"][chains][..., r.budget[idx]]
    if "kappa" in nat:
        mu = mu + bend_term(nat["kappa"], np.log(r.C[idx]), *bend_frame(r.C))
    if "profile_trend" in nat:
        p = {k: nat[k] for k in ("A", "B", "alpha", "beta")}
        mu = mu + profile_term(nat["profile_trend"], p, np.log(r.N[idx]), np.log(r.C[idx]), bend_frame(r.C)[0])
    return mu


def _mean_chunks(post: Posterior, chunk: int | None = None):
    """``(idx, mean log loss at idx)`` for consecutive chunks of the runs."""
    covs = covariate_arrays(post.runs, post.law.covariates)
    for idx in _run_chunks(post, chunk):
        yield idx, _mean_log_loss(post, idx, covs=covs)


def _log_lik_at(post: Posterior, idx, mu, chains=slice(None), covs: dict | None = None) -> np.ndarray:
    """Pointwise log-likelihood of runs ``idx`` given their mean log loss ``mu`` ``(chains, draws, k)``.

    An ordered observation model (AR(1) along a curve) conditions each
    point on the previous one of its sequence, whose mean is computed here
    when it lies outside the chunk.
    """
    r, obs = post.runs, post.spec.observation
    idx = np.asarray(idx)
    op = {k: post._natural[k][chains][..., None] for k in obs.sites}
    y = np.log(r.loss)
    if not getattr(obs, "ordered", False):
        return obs.log_prob(y[idx], mu, op)
    prev = r.previous_index()
    before = prev[idx]
    extra = np.setdiff1d(before[before >= 0], idx)
    if extra.size:
        mu = np.concatenate([mu, _mean_log_loss(post, extra, chains, covs)], axis=-1)
    where = np.concatenate([idx, extra])
    local = {int(g): i for i, g in enumerate(where.tolist())}
    prev_local = np.array([local[int(j)] if j >= 0 else -1 for j in before] + [-1] * extra.size, dtype=np.int64)
    return obs.log_prob(y[where], mu, op, prev=prev_local)[..., : idx.size]


def log_likelihood(post: Posterior, *, chunk: int | None = None) -> np.ndarray:
    """The pointwise log-likelihood of every fitted run, ``(chains, draws, runs)``: computed now.

    ``log p(y_i | draw)`` of the model the posterior was fitted with (the
    law, budget offsets, bend and observation model), evaluated in chunks
    of runs (``chunk`` draws x runs at a time, default
    :data:`CHUNK_ELEMENTS`) into one array of ``S x n x 8`` bytes.  A
    posterior does not keep it: each call computes it again.
    """
    out = np.empty(post.samples[post.law.sites[0]].shape + (len(post.runs),))
    covs = covariate_arrays(post.runs, post.law.covariates)
    for idx in _run_chunks(post, chunk):
        out[..., idx] = _log_lik_at(post, idx, _mean_log_loss(post, idx, covs=covs), covs=covs)
    return out


def posterior_predictive(post: Posterior) -> np.ndarray:
    """Replicated log loss of every fitted run, ``(chains, draws, runs)``: computed now.

    One replicated data set per draw from the fitted model (the law,
    budget offsets, bend and observation noise), chain by chain: chain
    ``c`` uses the generator seeded ``(seed, 3, c)``, so the result does
    not depend on anything but the posterior.  ``S x n x 8`` bytes; a
    posterior does not keep it.
    """
    r, obs = post.runs, post.spec.observation
    seed = int(post.info.get("seed", 0))
    order = {"prev": r.previous_index()} if getattr(obs, "ordered", False) else {}
    chains = post.samples[post.law.sites[0]].shape[0]
    covs = covariate_arrays(r, post.law.covariates)
    out = np.empty(post.samples[post.law.sites[0]].shape + (len(r),))
    every = np.arange(len(r))
    for c in range(chains):
        sl = slice(c, c + 1)
        mu = _mean_log_loss(post, every, sl, covs)
        op = {k: post._natural[k][sl][..., None] for k in obs.sites}
        out[sl] = obs.sample(np.random.default_rng([seed, 3, c]), mu, op, **order)
    return out


def _record_tree(post, extra: dict | None = None, *, data: dict | None = None, dims: dict | None = None):
    """The ArviZ DataTree of a record, with ``extra`` groups (name -> ``{"y": (chains, draws, runs)}``).

    ``post`` is a :class:`Posterior` or a grouped posterior (then ``data``,
    its draws, and ``dims`` of its per-group sites are given); the runs'
    groups, if any, are stored as ``group_index`` per run, the names as the
    ``group`` coordinate of per-group sites and in the
    ``bayesscale_group_names`` attribute.
    """
    from arviz_base import from_dict

    r = post.runs
    if data is None:
        data = {**post.samples, **{k: v for k, v in post._natural.items() if k not in post.samples}}
    st = post.stats
    sample_stats = {"diverging": st["diverging"].astype(bool), "tree_depth": st["tree_depth"],
                    "n_steps": st["num_steps"], "energy": st["energy"], "lp": -st["potential_energy"],
                    "acceptance_rate": st["accept_prob"], "step_size": st["step_size"],
                    "reached_max_treedepth": st["reached_max_depth"].astype(bool)}
    dims = {"y": ["run"], "z_budget": ["budget"], "N": ["run"], "D": ["run"], "C": ["run"],
            "loss": ["run"], "budget_index": ["run"], **(dims or {})}
    coords = {"run": r.run_id.tolist(), "budget": np.arange(r.n_budgets)}
    constant = {"N": r.N, "D": r.D, "C": r.C, "loss": r.loss, "budget_index": r.budget}
    for k in ("U", "S", "B"):
        if getattr(r, k) is not None:
            constant[k] = getattr(r, k)
            dims[k] = ["run"]
    if r.group is not None:
        constant["group_index"], dims["group_index"], coords["group"] = r.group, ["run"], list(r.group_names)
    tree = from_dict({"posterior": data, "sample_stats": sample_stats, "observed_data": {"y": np.log(r.loss)},
                      **(extra or {}), "constant_data": constant},
                     dims=dims, coords=coords, check_conventions=False)
    tree.attrs.update(_attrs(post))
    return tree


def _save_tree(tree, path, attrs: dict) -> Path:
    """Add ``attrs`` and the checksum to a record's tree and write it atomically."""
    tree = tree.copy()
    tree.attrs.update(attrs)
    tree.attrs[_CHECKSUM] = _tree_checksum(tree)
    return atomic_write(path, lambda tmp: tree.to_netcdf(tmp, engine="netcdf4"))


#: The pointwise groups :func:`to_arviz` can add.
POINTWISE_GROUPS = ("log_likelihood", "posterior_predictive")


def to_arviz(post: Posterior, *, groups=POINTWISE_GROUPS):
    """The posterior as an ArviZ ``DataTree`` with pointwise groups, computed now.

    :attr:`Posterior.tree` plus ``log_likelihood`` (:func:`log_likelihood`)
    and ``posterior_predictive`` (:func:`posterior_predictive`), each
    ``y`` of shape ``(chains, draws, runs)`` and ``S x n x 8`` bytes: what
    ArviZ's PSIS-LOO, LOO-PIT and model comparison read
    (``arviz_stats.loo(bs.to_arviz(post))``).  The tree is new on every
    call and the posterior does not keep it.

    Parameters
    ----------
    post : Posterior
    groups : sequence of str
        Which of ``"log_likelihood"`` and ``"posterior_predictive"`` to add.
    """
    groups = tuple(groups)
    unknown = [g for g in groups if g not in POINTWISE_GROUPS]
    if unknown:
        raise ValueError(f"unknown group(s) {unknown}; to_arviz adds {', '.join(POINTWISE_GROUPS)}")
    extra = {}
    if "posterior_predictive" in groups:
        extra["posterior_predictive"] = {"y": posterior_predictive(post)}
    if "log_likelihood" in groups:
        extra["log_likelihood"] = {"y": log_likelihood(post)}
    return _record_tree(post, extra)


def _attrs(post: Posterior) -> dict:
    return {"bayesscale_spec": json.dumps(post.spec.to_dict()),
            "bayesscale_extrapolation_mode": post.extrapolation_mode,
            "bayesscale_settings": json.dumps(dataclasses.asdict(post.settings)),
            "bayesscale_info": json.dumps(post.info, default=str),
            "bayesscale_source": post.runs.source, "bayesscale_sha256": post.runs.sha256,
            **({} if post.runs.group_names is None else
               {"bayesscale_group_names": json.dumps(list(post.runs.group_names))})}


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


def load_posterior(path: str | os.PathLike, *, law=None):
    """Read a posterior written by :meth:`Posterior.to_netcdf` (or :meth:`GroupedPosterior.to_netcdf`).

    A posterior of a law you wrote (:meth:`bayesscale.Law.from_function`)
    needs that law again: ``load_posterior(path, law=my_law)``; built-in
    laws are found by name.

    The file is read completely and closed before this returns, so a path
    overwritten later reads back the new posterior.

    Returns
    -------
    Posterior or GroupedPosterior
        A grouped fit (``fit(runs, groups=...)``) reads back as a
        :class:`bayesscale.GroupedPosterior`.

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
        if "law" in str(e) or "grouped posterior" in str(e):
            raise PosteriorFileError(f"{path}: {e}") from None
        raise
    try:
        settings = SamplerSettings(**_json_attr(attrs, "bayesscale_settings", path))
        info = _json_attr(attrs, "bayesscale_info", path)
        cd = tree["constant_data"]
        grouped = "group_index" in cd
        runs = Runs(N=cd["N"].values, D=cd["D"].values, C=cd["C"].values, loss=cd["loss"].values,
                    run_id=cd["run"].values.astype(str), budget=cd["budget_index"].values,
                    source=attrs["bayesscale_source"], sha256=attrs["bayesscale_sha256"],
                    U=cd["U"].values if "U" in cd else None, S=cd["S"].values if "S" in cd else None,
                    B=cd["B"].values if "B" in cd else None,
                    group=cd["group_index"].values if grouped else None,
                    group_names=tuple(_json_attr(attrs, "bayesscale_group_names", path)) if grouped else None)
        post = tree["posterior"]
        names = list(post.data_vars) if grouped else [k for k in post.data_vars if k in spec.sites or k == "z_budget"]
        samples = {k: post[k].values for k in names}
        ss = tree["sample_stats"]
        stats = {"diverging": ss["diverging"].values, "tree_depth": ss["tree_depth"].values,
                 "num_steps": ss["n_steps"].values, "energy": ss["energy"].values,
                 "potential_energy": -ss["lp"].values, "accept_prob": ss["acceptance_rate"].values,
                 "step_size": ss["step_size"].values, "reached_max_depth": ss["reached_max_treedepth"].values}
        if grouped:
            found = _json_attr(attrs, "bayesscale_discrepancies", path, default="null")
            discrepancy = None if found is None else {g: Discrepancy.from_json(d) for g, d in found.items()}
        else:
            x = _json_attr(attrs, "bayesscale_discrepancy", path, default="null")
            discrepancy = None if x is None else Discrepancy.from_json(x)
    except PosteriorFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"the entry {e.args[0]!r} is missing" if isinstance(e, KeyError) and e.args else str(e)
        raise PosteriorFileError(f"{path}: not a complete bayesscale posterior ({what}). It was written by another "
                                 "version or changed by hand; refit and save it again with post.to_netcdf "
                                 "(or bayesscale fit --out).") from None
    mode = attrs.get("bayesscale_extrapolation_mode", "none")
    if grouped:
        from .groups import GroupedPosterior

        return GroupedPosterior(samples=samples, stats=stats, runs=runs, spec=spec, settings=settings, info=info,
                                extrapolation_mode=mode, discrepancies=discrepancy)
    return Posterior(samples=samples, stats=stats, runs=runs, spec=spec, settings=settings, info=info,
                     extrapolation_mode=mode, discrepancy=discrepancy)
