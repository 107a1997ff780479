"""The fit result: an immutable posterior with the methods that read it.

A :class:`Posterior` holds the draws, the sampler statistics, the runs it was
fitted to, the model and the settings.  Everything else is derived from
those, lazily and once: the ArviZ ``DataTree`` (:attr:`Posterior.tree`), the
parameters on their natural scale (:attr:`Posterior.params`), the summary
table and the verdict.  :meth:`Posterior.to_netcdf` and
:func:`load_posterior` round-trip it exactly.
"""

from __future__ import annotations

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
from .data import BUDGET_TOL_DEX, Runs
from .diagnostics import Verdict, convergence_table, diagnose
from .inference import Draws, SamplerSettings
from .model import Extrapolation, ModelSpec, observation_logpdf, observation_sample

__all__ = ["Posterior", "PosteriorFileError", "load_posterior", "atomic_write", "file_mode"]

#: Parameters reported in summaries, in order.
REPORTED = laws.PARAMETERS + ("sigma", "tau")


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
    ci = check_ci(ci)
    lo, med, hi = np.quantile(x, [(1 - ci) / 2, 0.5, (1 + ci) / 2], axis=axis)
    return med, lo, hi


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
    calibration : Extrapolation or None
        The calibration, when it was computed with the fit (``fit_many``
        calibrates all data sets in one batch) or read from a file;
        otherwise :attr:`extrapolation` computes it on first use.
    """

    samples: dict
    stats: dict
    runs: Runs
    spec: ModelSpec
    settings: SamplerSettings
    info: dict = field(default_factory=dict)
    extrapolation_mode: str = "none"
    calibration: Extrapolation | None = None

    # -- construction ------------------------------------------------------

    @classmethod
    def from_draws(cls, draws: Draws, runs: Runs, spec: ModelSpec, settings: SamplerSettings,
                   info: dict, extrapolation_mode: str = "none",
                   calibration: Extrapolation | None = None) -> "Posterior":
        samples = {k: np.asarray(v, dtype=np.float64) for k, v in draws.samples.items()}
        if "z_budget" in samples:
            samples["z_budget"] = samples["z_budget"][..., : runs.n_budgets]
        info = dict(info, device=draws.device, timing=dict(draws.timing))
        return cls(samples=samples, stats=dict(draws.stats), runs=runs, spec=spec, settings=settings, info=info,
                   extrapolation_mode=extrapolation_mode, calibration=calibration)

    @cached_property
    def extrapolation(self) -> Extrapolation | None:
        """The calibrated extra error of predictions beyond the data (None for ``"none"``).

        Computed on first use, by rolling-origin refits of the runs (see
        :mod:`bayesscale.calibration`; about as much sampling as the fit
        itself), unless the fit or the file supplied it.  It depends only on
        the runs, the model and the seed, so the posterior stays a value.
        """
        if self.extrapolation_mode == "none":
            return None
        if self.calibration is not None:
            return self.calibration
        from .calibration import calibrate

        return calibrate([self.runs], self.spec, seed=int(self.info.get("seed", 0)),
                         device=self.info.get("device_request"))[0]

    # -- parameters --------------------------------------------------------

    @cached_property
    def _natural(self) -> dict:
        """Natural-scale parameters, ``(chains, draws)``."""
        s = self.samples
        c_N, c_D = np.log(self.runs.N).mean(), np.log(self.runs.D).mean()
        out = {
            "E": np.exp(s["log_E"]),
            "A": np.exp(s["t_N"] + s["alpha"] * c_N),
            "B": np.exp(s["t_D"] + s["beta"] * c_D),
            "alpha": s["alpha"],
            "beta": s["beta"],
            "sigma": s["sigma"],
        }
        if "tau" in s:
            out["tau"] = s["tau"]
        return out

    @property
    def params(self) -> dict:
        """Flat arrays of draws: ``E, A, B, alpha, beta, sigma`` (and ``tau``)."""
        return {k: v.reshape(-1) for k, v in self._natural.items()}

    @property
    def n_draws(self) -> int:
        """Total posterior draws (chains x draws)."""
        return self.samples["alpha"].size

    # -- predictions -------------------------------------------------------

    def _offsets(self, C) -> np.ndarray:
        """Budget offset draws ``(S, n)`` for runs at compute ``C``.

        A run whose compute matches a fitted budget group shares that group's
        offset; a new budget draws a fresh offset from ``Normal(0, tau)``.
        """
        C = np.atleast_1d(np.asarray(C, dtype=float))
        S = self.n_draws
        if "tau" not in self.samples:
            return np.zeros((S, C.size))
        rng = np.random.default_rng([int(self.info.get("seed", 0)), 7])
        tau = self.samples["tau"].reshape(S, 1)
        z = rng.standard_normal((S, C.size))
        dist = np.abs(np.log10(C)[:, None] - np.log10(self.runs.budget_compute())[None, :])
        nearest = dist.argmin(axis=1)
        known = dist[np.arange(C.size), nearest] <= 1.5 * BUDGET_TOL_DEX
        zb = self.samples["z_budget"].reshape(S, -1)
        z[:, known] = zb[:, nearest[known]]
        return tau * z

    def log_noise(self, C, *, seed: int | None = None) -> np.ndarray:
        """Predictive noise on log loss for new runs at compute ``C``: ``(S, n)`` draws.

        Observation noise (Student-t or Normal with the drawn ``sigma``),
        in the budget-offset model the offset of a new budget, and beyond
        the data the calibrated extrapolation error (:attr:`extrapolation`).
        """
        C = np.atleast_1d(np.asarray(C, dtype=float))
        rng = np.random.default_rng([int(self.info.get("seed", 0)) if seed is None else seed, 11])
        sigma = self.params["sigma"][:, None]
        eps = observation_sample(rng, np.zeros((self.n_draws, C.size)), sigma, self.spec.likelihood,
                                 self.spec.priors.df)
        out = eps + self._offsets(C)
        if self.extrapolation is not None:
            out = out + np.sqrt(self.extrapolation.variance(C)) * rng.standard_normal(out.shape)
        return out

    def predict_draws(self, N, D) -> np.ndarray:
        """Posterior predictive draws of loss for new runs, ``(S, n)``."""
        N, D = np.broadcast_arrays(np.atleast_1d(np.asarray(N, dtype=float)),
                                   np.atleast_1d(np.asarray(D, dtype=float)))
        if np.any(~np.isfinite(N) | (N <= 0)) or np.any(~np.isfinite(D) | (D <= 0)):
            raise ValueError("N and D must be positive and finite")
        p = {k: v[:, None] for k, v in self.params.items()}
        mu = laws.log_loss(p, N[None, :], D[None, :])
        return np.exp(mu + self.log_noise(laws.FLOPS_PER_PARAM_TOKEN * N * D))

    def predict(self, N, D, *, ci: float = 0.9) -> pd.DataFrame:
        """Posterior predictive loss for new runs.

        Parameters
        ----------
        N, D : array_like
            Model parameters and training tokens (broadcast together).
        ci : float
            Probability mass of the equal-tailed interval.

        Returns
        -------
        pandas.DataFrame
            Columns ``N, D, C, loss`` (predictive median), ``loss_lo``,
            ``loss_hi`` and ``loss_mean``.
        """
        draws = self.predict_draws(N, D)
        med, lo, hi = _quantiles(draws, ci)
        N, D = np.broadcast_arrays(np.atleast_1d(np.asarray(N, float)), np.atleast_1d(np.asarray(D, float)))
        return pd.DataFrame({"N": N, "D": D, "C": laws.FLOPS_PER_PARAM_TOKEN * N * D, "loss": med,
                             "loss_lo": lo, "loss_hi": hi, "loss_mean": draws.mean(axis=0)})

    @cached_property
    def _fitted(self) -> dict:
        """Mean log loss, pointwise log-likelihood and replicated log loss at the runs."""
        r = self.runs
        nat = {k: v[..., None] for k, v in self._natural.items()}
        mu = laws.log_loss(nat, r.N, r.D)
        if "tau" in self.samples:
            mu = mu + self.samples["tau"][..., None] * self.samples["z_budget"][..., r.budget]
        sigma, lik, df = nat["sigma"], self.spec.likelihood, self.spec.priors.df
        y = np.log(r.loss)
        rng = np.random.default_rng([int(self.info.get("seed", 0)), 3])
        return {"mu": mu, "log_lik": observation_logpdf(y, mu, sigma, lik, df),
                "y_rep": observation_sample(rng, mu, sigma, lik, df)}

    # -- compute-optimal allocation (see bayesscale.allocation) ---------------

    def allocate(self, budgets, *, ci: float = 0.8, cost=None) -> pd.DataFrame:
        """Compute-optimal N, D, tokens per parameter and loss at each budget.

        Evaluated for every posterior draw (closed form under ``C = 6 N D``,
        numerically for another ``cost``); the loss is posterior predictive
        (law, noise and, in the budget-offset model, a new budget's offset).

        Parameters
        ----------
        budgets : array_like
            Training compute in FLOPs.
        ci : float
            Probability mass of the equal-tailed intervals.
        cost : callable, optional
            ``flops_per_token(N)`` for another cost model ``C = cost(N) N D``.

        Returns
        -------
        pandas.DataFrame
            One row per budget: ``C``, ``N_opt``, ``N_opt_lo``, ``N_opt_hi``,
            ``D_opt``..., ``tokens_per_param``..., ``loss``, ``loss_lo``,
            ``loss_hi``.  ``df.attrs["draws"]`` holds the ``(S, n_budgets)``
            draws behind it (``N_opt, D_opt, tokens_per_param, loss``).
        """
        budgets = positive(budgets, "budgets", unit=" of FLOPs")
        res = allocation.allocate(self.params, budgets, ci=ci, cost=cost, log_noise=self._budget_noise(budgets))
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
        return allocation.bayes_optimal_N(self.params, budgets, log_noise=self._budget_noise(budgets))

    def prob_below(self, N, D, target) -> np.ndarray:
        """Posterior predictive probability that a run of (N, D) ends with loss below ``target``."""
        N, D = np.broadcast_arrays(np.asarray(N, dtype=float), np.asarray(D, dtype=float))
        noise = self.log_noise(laws.FLOPS_PER_PARAM_TOKEN * np.ravel(N) * np.ravel(D)).reshape(
            (self.n_draws,) + N.shape)
        return allocation.prob_below(self.params, N, D, target, log_noise=noise)

    def best_D_for_N(self, N, *, C=None, ci: float = 0.8) -> pd.DataFrame:
        """Tokens for a fixed model size (see :func:`bayesscale.allocation.best_D_for_N`)."""
        return allocation.best_D_for_N(self.params, N, C=C, ci=ci).table

    def best_N_for_D(self, D, *, C=None, ci: float = 0.8) -> pd.DataFrame:
        """Model size for a fixed token count (see :func:`bayesscale.allocation.best_N_for_D`)."""
        return allocation.best_N_for_D(self.params, D, C=C, ci=ci).table

    def compute_for_loss(self, target, *, ci: float = 0.8) -> pd.DataFrame:
        """The least compute that reaches a target loss on the frontier, with its band."""
        return allocation.compute_for_loss(self.params, target, ci=ci).table

    def frontier_exponents(self, *, ci: float = 0.95) -> pd.DataFrame:
        """``a``, ``b`` and ``G`` of ``N_opt = G (C/6)^a``, ``D_opt = (C/6)^b / G`` with intervals.

        The analogue of Table 2 of Hoffmann et al. (2022).
        """
        return allocation.frontier_exponents(self.params, ci=ci)

    def excess_compute(self, C, k=None, *, ci: float = 0.8) -> pd.DataFrame:
        """Excess compute and tokens for model sizes ``k * N_opt(C)`` (Kaplan et al. 2020, Fig. 12)."""
        k = np.geomspace(0.25, 4, 49) if k is None else k
        return allocation.excess_compute(self.params, C, k, ci=ci).table

    def efficient_size_range(self, C, *, threshold: float = 0.2, ci: float = 0.8):
        """Range of ``k = N / N_opt`` whose extra compute stays under ``threshold``.

        Returns a :class:`bayesscale.allocation.SizeRange`; ``.sentence``
        reads like "sizes between 0.53x and 2.25x the optimum cost at most
        20% more compute".
        """
        return allocation.efficient_size_range(self.params, C, threshold=threshold, ci=ci)

    # -- summaries and checks ----------------------------------------------

    def summary(self, *, ci: float = 0.9) -> pd.DataFrame:
        """Posterior summary of the law's parameters.

        Parameters
        ----------
        ci : float
            Probability mass of the equal-tailed interval ``lo .. hi``.

        Returns
        -------
        pandas.DataFrame
            Indexed by parameter, with columns ``median, mean, sd, lo, hi,
            r_hat, ess_bulk, ess_tail``; ``df.attrs["ci"]`` holds ``ci``.
        """
        nat = self._natural
        conv = convergence_table(nat)
        rows = {}
        for k in [p for p in REPORTED if p in nat]:
            x = nat[k].reshape(-1)
            med, lo, hi = _quantiles(x, ci)
            rows[k] = {"median": med, "mean": x.mean(), "sd": x.std(ddof=1), "lo": lo, "hi": hi,
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
        return diagnose(self._natural, self.stats, max_tree_depth=self.settings.max_tree_depth,
                        log_lik=self._fitted["log_lik"], run_ids=self.runs.run_id,
                        residuals=np.log(self.runs.loss) - np.median(mu.reshape(-1, mu.shape[-1]), axis=0))

    def __repr__(self) -> str:
        s = self.settings
        return (f"Posterior({len(self.runs)} runs, {s.chains} chains x {s.draws} draws, "
                f"likelihood={self.spec.likelihood!r}, offsets={self.spec.offsets!r}, "
                f"ok={self.check().ok})")

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
        post = {**self.samples, **{k: v for k, v in self._natural.items() if k in ("E", "A", "B")}}
        st = self.stats
        sample_stats = {"diverging": st["diverging"].astype(bool), "tree_depth": st["tree_depth"],
                        "n_steps": st["num_steps"], "energy": st["energy"], "lp": -st["potential_energy"],
                        "acceptance_rate": st["accept_prob"], "step_size": st["step_size"],
                        "reached_max_treedepth": st["reached_max_depth"].astype(bool)}
        fitted = self._fitted
        dims = {"y": ["run"], "z_budget": ["budget"], "N": ["run"], "D": ["run"], "C": ["run"],
                "loss": ["run"], "budget_index": ["run"]}
        coords = {"run": r.run_id.tolist(), "budget": np.arange(r.n_budgets)}
        tree = from_dict(
            {"posterior": post, "sample_stats": sample_stats,
             "observed_data": {"y": np.log(r.loss)},
             "posterior_predictive": {"y": fitted["y_rep"]},
             "log_likelihood": {"y": fitted["log_lik"]},
             "constant_data": {"N": r.N, "D": r.D, "C": r.C, "loss": r.loss, "budget_index": r.budget}},
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
        x = self.extrapolation  # calibrated now if it was not yet: the file carries it
        tree.attrs["bayesscale_extrapolation"] = json.dumps(None if x is None else x.to_dict())
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


def load_posterior(path: str | os.PathLike) -> Posterior:
    """Read a posterior written by :meth:`Posterior.to_netcdf`.

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
    try:
        spec = ModelSpec.from_dict(_json_attr(attrs, "bayesscale_spec", path))
        settings = SamplerSettings(**_json_attr(attrs, "bayesscale_settings", path))
        info = _json_attr(attrs, "bayesscale_info", path)
        x = _json_attr(attrs, "bayesscale_extrapolation", path, default="null")
        cd = tree["constant_data"]
        runs = Runs(N=cd["N"].values, D=cd["D"].values, C=cd["C"].values, loss=cd["loss"].values,
                    run_id=cd["run"].values.astype(str), budget=cd["budget_index"].values,
                    source=attrs["bayesscale_source"], sha256=attrs["bayesscale_sha256"])
        post = tree["posterior"]
        names = [k for k in post.data_vars if k not in ("E", "A", "B")]
        samples = {k: post[k].values for k in names}
        ss = tree["sample_stats"]
        stats = {"diverging": ss["diverging"].values, "tree_depth": ss["tree_depth"].values,
                 "num_steps": ss["n_steps"].values, "energy": ss["energy"].values,
                 "potential_energy": -ss["lp"].values, "accept_prob": ss["acceptance_rate"].values,
                 "step_size": ss["step_size"].values, "reached_max_depth": ss["reached_max_treedepth"].values}
        calibration = None if x is None else Extrapolation(**x)
    except PosteriorFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"the entry {e.args[0]!r} is missing" if isinstance(e, KeyError) and e.args else str(e)
        raise PosteriorFileError(f"{path}: not a complete bayesscale posterior ({what}). It was written by another "
                                 "version or changed by hand; refit and save it again with post.to_netcdf "
                                 "(or bayesscale fit --out).") from None
    return Posterior(samples=samples, stats=stats, runs=runs, spec=spec, settings=settings, info=info,
                     extrapolation_mode=attrs.get("bayesscale_extrapolation_mode", "none"),
                     calibration=calibration)
