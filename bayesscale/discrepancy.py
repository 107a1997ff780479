"""A Bayesian model of extrapolation error, fitted to the data's own rolling-origin refits.

The law fitted to the runs describes them well and can still be wrong a
decade beyond them.  Only extrapolations reveal how wrong, so
:func:`bayesscale.calibration.calibrate` refits the law on rolling-origin
folds (train on the budgets below an origin, predict the next 1, 2 and 3
budgets) and this module models the errors of those predictions.

The model
---------
Let ``d = log10(C / c_max)`` be the distance in decades beyond the largest
training run.  The extrapolation error of log loss (and, separately, of
log N_opt) at ``d`` is a Gaussian process in ``d``,

    delta(d) = sqrt(w) * (kappa_rw * W(d) + kappa_slope * d * Z),

``W`` a standard Brownian motion (a random walk in log compute), ``Z`` a
standard normal slope and ``w ~ InverseGamma(df / 2, df / 2)`` a scale
mixture that makes the process a multivariate Student-t (``df = 4``):
robust to one wild fold.  ``delta(0) = 0`` and the paths are continuous, so
predictions do not jump at ``c_max``; inside the data nothing is added.

Fold likelihood.  All runs of one held-out budget share one error (the
fold's parameter error, the budget's offset and the discrepancy), so each
fold contributes one number, not one per run: the median over its runs of
``observed - predictive median`` (robust to a bad run).  The folds of one
origin (horizons 1, 2, 3) share the origin's fit and form one path of the
process, so they are modelled jointly:

    e_origin ~ MultivariateT(df, 0, K(d) + P)

with ``K(d)_ij = kappa_rw^2 min(d_i, d_j) + kappa_slope^2 d_i d_j`` and
``P`` the fold fit's own predictive covariance of those medians (covariance
over its posterior draws, plus the noise of a median of ``n`` runs).  So
the fit's parameter uncertainty is not counted twice.  Folds from different
origins are treated as independent (they share training runs; this makes
the posterior a little too confident, never too wide).

Spike and slab.  With prior probability :data:`PRIOR_ZERO` (one half) the
law extrapolates as its fold fits say (``kappa_rw = kappa_slope = 0``);
the posterior probability of that spike is a Bayes factor, so folds whose
errors sit inside their fold fits' own uncertainty leave the predictive
almost as the plain law's (measured: the well-specified control loses 0.04
mlpd instead of 0.25), and folds that miss turn the error on.

Nuggets.  Errors that do not grow with distance: for log loss a per-budget
offset, learned from the full fit's median residual at each training
budget and from the folds, rising from zero at ``c_max`` to full size one
budget spacing beyond it (so predictions stay continuous).  Needs
:data:`MIN_ANCHORS` training budgets.

N_opt on IsoFLOP data: the anchored model.  Where at least
:data:`MIN_ANCHORS` training budgets are IsoFLOP-shaped, the law's
misplacement of the empirical optimum is observed directly, at every one of
them (the full fit's N_opt against the budget's vertex).  On real sweeps it
is not noise around zero but a drift in log C (Marin: the vertices sit 5-10%
below the law's optimum at the smallest budgets and 15-20% above it at the
largest; Farseer: 3-18% below, with a curve), so a zero-mean error that
starts at ``c_max`` misses the held-out optimum (measured: 80% bands held 4
of 12 real held-out vertices).  :func:`anchored_posterior` models it as a
Gaussian process in log C (level, trend, random walk, per-budget nugget),
fitted exactly to the anchors; its draws move the law's N_opt at every
budget, inside the data and beyond, where the trend and the walk carry on.
It is conditioned draw by draw (each posterior draw of the law against the
vertices), so the law's parameter uncertainty enters once: counted as
noise of the anchors and again in the law's band, it had made the 80%
bands hold 0.89-0.95 of held-out synthetic vertices (0.81 draw by draw).
Otherwise (no IsoFLOP-shaped budgets) N_opt uses the fold model above,
scored against the full-data fit.

Tilt along a budget.  The folds show more than a level error: within a
held-out budget the errors slope with the runs' log tokens per parameter
``x = log(D / N)``, fold after fold with the same sign (the law fitted below
predicts the next budget's IsoFLOP curve turned).  Measured with the
default model (slope of the errors per unit ``x``; benchmarks/RESULTS.md):
Farseer's folds +0.003 (posterior median; 90% +0.002 to +0.004) and its
two held-out budgets +0.004 and +0.005; Chinchilla's -0.002 (its held-out
budgets -0.005 and -0.009: small, data-rich models beat the law); Marin's
about zero in the folds and +0.001 to +0.003 at the held-out budgets.  A
budget-level error cannot express this, so it is modelled
on its own: each fold's tilt ``tau_f`` (Theil-Sen slope of its runs'
errors in ``x``, :func:`bayesscale.calibration.fold_tilt`, with sd ``s_f``)
is ``tau_f = theta + eta_f``, ``eta_f ~ t_4(0, sqrt(omega^2 + s_f^2))``,
``theta ~ Normal(0, 0.01)`` the sweep's systematic tilt and
``omega ~ HalfNormal(0.005)`` its spread between budgets; one held-out
budget appears in up to three folds, so each fold's likelihood is raised
to the power (distinct budgets / folds).  Exact on a grid
(:func:`tilt_posterior`).  A new run at compute ``C`` beyond the data gets
``(theta + omega eta_C) min(1, d / ramp) (x - x_c(C))`` (:func:`tilt_draws`),
``x_c(C)`` where a budget's runs sit (the line through the fitted budgets'
median ``x`` against ``log C``, continued; see
``bayesscale.posterior._tilt``), because the folds measure the level error
as the median over a held-out budget's runs: pivoting anywhere else (the
law's optimum was tried) shifts the level on sweeps whose runs drift in
``x`` with compute (Farseer: median error 0.39% -> 0.46% instead of 0.29%).
It is zero at ``c_max`` (continuous) and the same for a run whatever else
is asked for; the allocation's bands (which ask for no particular run) do
not carry it.  With
fewer than :data:`TILT_MIN_BUDGETS` distinct budgets whose tilt can be measured
(at least 5 runs spanning a factor e in tokens per parameter) no tilt is
added.

Priors and posterior.  ``kappa_rw, kappa_slope ~ HalfNormal(s)`` with
``s = 0.02`` (log loss; 2% per decade) and ``s = 0.15`` (log N_opt).  (A
first choice of 0.05 and 0.3 let the poorly identified slope term, fed by
the prior, make the intervals 2-5 times too wide on well-specified
synthetic sweeps; see benchmarks/RESULTS.md.)  Two
scale parameters: the posterior is computed exactly on a 48 x 48 grid
(quadratic in each scale, so resolution is finest near zero) in a few
milliseconds; :attr:`Discrepancy.draws` holds 4,000 draws from it
(jittered within cells).  A grid is exact for two parameters, needs no
compilation and cannot diverge, which a small NUTS run could.

Draws.  :func:`joint_draws` gives one error per distinct compute per
posterior draw.  The random walk is built on a fixed grid of 0.01 decades
whose innovations are seeded by the decade they lie in, so a budget's draws
do not depend on which other budgets are asked for in the same call (same
seed, same band), and runs at the same compute share their error.

Too few folds.  With fewer than :data:`MIN_FOLDS` usable folds the
calibration is refused (``status="prior"``) and the verdict says so; the
error is then drawn from its prior (the posterior of a model that has seen
no fold), not dropped: a budget beyond the data still carries an
extrapolation error, of about 2% in loss at one decade.  (Adding nothing
had given 90% intervals covering 63-80% of held-out Marin budgets.)  The threshold comes from a simulation (``benchmarks/calibration.py``,
"threshold" table): below it, the 90% predictive interval of a new fold's
error at 1-2 decades covered less than 85% of the time for some realistic
scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Discrepancy", "GridPosterior", "fit_discrepancy", "joint_draws", "grid_posterior", "anchored_posterior",
           "tilt_posterior", "tilt_draws", "MIN_FOLDS", "DF", "ANCHOR_PRIOR", "TILT_PRIOR",
           "PRIOR_SCALE", "PRIOR_ZERO", "NUGGET_SCALE", "QUANTITIES"]

#: Fewest usable folds (held-out budgets over all origins) to calibrate (chosen by simulation, see module doc).
MIN_FOLDS = 4
#: Degrees of freedom of the multivariate Student-t of a fold path.
DF = 4.0
#: Half-normal prior scales of (kappa_rw, kappa_slope) per quantity.
PRIOR_SCALE = {"loss": 0.02, "n_opt": 0.15}
#: The calibrated quantities: log loss and log N_opt.
QUANTITIES = ("loss", "n_opt")
#: Grid points per scale parameter.
GRID = 48
#: Grid points of the nugget (log N_opt only).
NUGGET_GRID = 24
#: Prior probability that the law extrapolates within its fold fits' own uncertainty (no extra error).
PRIOR_ZERO = 0.5
#: Half-normal prior scales of the nuggets: a per-budget offset of log loss at a new budget, and the law's
#: misplacement of the loss-optimal log N at any budget.
NUGGET_SCALE = {"loss": 0.02, "n_opt": 0.15}
#: Fewest training budgets (IsoFLOP-shaped ones for N_opt) to learn a nugget.
MIN_ANCHORS = 3
#: Ramp of the loss nugget (decades) when the budgets' spacing is unknown.
RAMP_DEFAULT = 0.5
#: Posterior draws of the scales kept in the record.
N_DRAWS = 4000
#: Step of the random-walk grid, decades.
STEP = 0.01
#: Prior sds of the anchored N_opt discrepancy: its level at ``c_max`` and its trend per decade (log N_opt).
ANCHOR_PRIOR = {"level": 0.3, "trend": 0.2, "rw": 0.15, "nugget": 0.15}
#: Grid points per scale (random walk, nugget) of the anchored N_opt discrepancy.
ANCHOR_GRID = 24
#: Prior sds of the tilt along a budget (per unit log tokens per parameter): its systematic part (Normal)
#: and its spread between budgets (half-normal).
TILT_PRIOR = {"mean": 0.01, "spread": 0.005}
#: Fewest distinct held-out budgets whose tilt can be measured to fit the tilt.
TILT_MIN_BUDGETS = 3


@dataclass(frozen=True, eq=False)
class Discrepancy:
    """The posterior of the extrapolation error beyond the data.

    Build one with :func:`bayesscale.calibration.calibrate` (or
    :func:`fit_discrepancy` from fold facts); read it from
    ``Posterior.discrepancy``.

    Attributes
    ----------
    c_max : float
        Largest training compute: the error is zero at and below it.
    draws : dict of str to ndarray
        Posterior draws of ``<quantity>_rw`` and ``<quantity>_slope``
        (``quantity`` in ``"loss"``, ``"n_opt"``); a quantity is absent when
        it was not calibrated.
    status : dict of str to str
        Per quantity: ``"calibrated"`` or ``"prior"`` (too few folds: the
        error is drawn from its prior).
    reasons : dict of str to str
        Per quantity, a sentence on what the calibration rests on or why it
        was refused.
    folds : pandas.DataFrame
        One row per fold (origin x held-out budget): ``origin``, ``budget_C``,
        ``horizon``, ``d`` (decades beyond the fold's data), ``n_runs``,
        ``ok`` (the fold fit passed its checks), ``problem``,
        ``loss_error``, ``loss_sd`` (the fold fit's own sd of that error),
        ``n_opt_error``, ``n_opt_sd``, ``n_opt_reference``.  Rows with
        ``horizon == 0`` (origin ``"in-sample"``) are the full fit's
        training budgets, the anchors of the nuggets (see
        :attr:`held_out` for the folds proper).
        ``tilt``, ``tilt_sd``: the slope of the held-out runs' errors in log
        tokens per parameter, NaN where it cannot be measured.
    ramp : float
        Distance in decades over which the loss nugget (and the tilt) grows
        from zero at ``c_max`` to full size (the median spacing of the
        budgets).
    df : float
        Degrees of freedom of the Student-t scale mixture.
    """

    c_max: float
    draws: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)
    reasons: dict = field(default_factory=dict)
    folds: pd.DataFrame = field(default_factory=pd.DataFrame)
    df: float = DF
    run_points: pd.DataFrame | None = field(default=None, repr=False)
    ramp: float = 0.5

    def calibrated(self, quantity: str = "loss") -> bool:
        """Whether ``quantity`` carries an extrapolation error calibrated on folds."""
        return self.status.get(quantity) == "calibrated"

    def has_error(self, quantity: str = "loss") -> bool:
        """Whether ``quantity`` carries an extrapolation error (calibrated, or its prior)."""
        return f"{quantity}_rw" in self.draws

    def anchored(self, quantity: str = "n_opt") -> bool:
        """Whether ``quantity``'s error is the anchored model (:func:`anchored_posterior`): N_opt on IsoFLOP data."""
        return f"{quantity}_W" in self.draws

    @property
    def has_tilt(self) -> bool:
        """Whether predictions beyond the data carry a tilt along the budget (:func:`tilt_draws`)."""
        return "tilt_mean" in self.draws

    @property
    def held_out(self) -> pd.DataFrame:
        """The fold rows proper (held-out budgets; without the in-sample N_opt anchors)."""
        return self.folds[self.folds["horizon"] > 0] if len(self.folds) else self.folds

    @property
    def n_folds(self) -> int:
        """Usable folds (fold fits that passed their checks)."""
        return int(self.held_out["ok"].sum()) if len(self.folds) else 0

    @property
    def failed_folds(self) -> list[str]:
        """One sentence per fold fit that failed its checks (left out of the calibration)."""
        if not len(self.folds):
            return []
        held = self.held_out
        bad = held[~held["ok"].astype(bool)]
        return [f"fold {r.origin} -> {r.budget_C:.3g} FLOPs: {r.problem}" for r in bad.itertuples()]

    def sd(self, C, quantity: str = "loss") -> np.ndarray:
        """Predictive standard deviation of the error at compute ``C`` (posterior mean of the variance)."""
        C = np.atleast_1d(np.asarray(C, dtype=float))
        d = np.maximum(np.log10(C / self.c_max), 0.0)
        if not self.has_error(quantity):
            return np.zeros_like(d)
        if self.anchored(quantity):  # Monte Carlo: root mean square of the misplacement (level's shift included)
            return np.sqrt(np.mean(joint_draws(self, C, N_DRAWS, quantity=quantity) ** 2, axis=0))
        rw, sl = self.draws[f"{quantity}_rw"], self.draws[f"{quantity}_slope"]
        ng = self.draws.get(f"{quantity}_nugget", np.zeros_like(rw))[:, None] * _ramp(quantity, d, self.ramp)[None, :]
        var = np.mean(rw[:, None] ** 2 * d + sl[:, None] ** 2 * d**2 + ng**2, axis=0) * self.df / (self.df - 2)
        return np.sqrt(var)

    def variance(self, C) -> np.ndarray:
        """Predictive variance of the log-loss error at ``C`` (zero at and below ``c_max``)."""
        return self.sd(C, "loss") ** 2

    def to_dict(self) -> dict:
        """A JSON-ready summary (and, with :meth:`to_json`, the full record)."""
        out = {"c_max": self.c_max, "n_folds": self.n_folds, "n_failed": len(self.failed_folds),
               "status": dict(self.status), "reasons": dict(self.reasons)}
        for q in QUANTITIES:
            if self.has_error(q):
                if not self.anchored(q):
                    rw, sl = self.draws[f"{q}_rw"], self.draws[f"{q}_slope"]
                    out[f"{q}_p_zero"] = float(np.mean((rw == 0) & (sl == 0)))
                for part in ("rw", "slope", "nugget", "level", "trend"):
                    if f"{q}_{part}" not in self.draws:
                        continue
                    x = self.draws[f"{q}_{part}"]
                    out[f"{q}_{part}_median"] = float(np.median(x))
                    out[f"{q}_{part}_90"] = [float(v) for v in np.quantile(x, [0.05, 0.95])]
                out[f"{q}_sd_at_1_decade"] = float(self.sd(self.c_max * 10, q)[0])
        if self.has_tilt:
            out["tilt_p_zero"] = float(self.draws["tilt_p_zero"][0]) if "tilt_p_zero" in self.draws else 0.0
            for part in ("mean", "spread"):
                x = self.draws[f"tilt_{part}"]
                out[f"tilt_{part}_median"] = float(np.median(x))
                out[f"tilt_{part}_90"] = [float(v) for v in np.quantile(x, [0.05, 0.95])]
        return out

    def to_json(self) -> dict:
        """Everything needed to rebuild the record (see :meth:`from_json`)."""
        return {"c_max": self.c_max, "df": self.df, "ramp": self.ramp, "status": self.status, "reasons": self.reasons,
                "draws": {k: np.asarray(v, dtype=float).tolist() for k, v in self.draws.items()},
                "folds": json_records(self.folds)}

    def __eq__(self, other) -> bool:
        if not isinstance(other, Discrepancy):
            return NotImplemented
        import json

        return json.dumps(self.to_json(), sort_keys=True) == json.dumps(other.to_json(), sort_keys=True)

    __hash__ = None

    @classmethod
    def from_json(cls, d: dict) -> "Discrepancy":
        return cls(c_max=float(d["c_max"]), df=float(d["df"]), ramp=float(d.get("ramp", RAMP_DEFAULT)),
                   status=dict(d["status"]), reasons=dict(d["reasons"]),
                   draws={k: np.asarray(v, dtype=float) for k, v in d["draws"].items()},
                   folds=pd.DataFrame(d["folds"]))


def json_records(df: pd.DataFrame) -> list[dict]:
    out = []
    for r in df.to_dict("records"):
        out.append({k: (None if isinstance(v, float) and not math.isfinite(v) else
                        v.item() if isinstance(v, np.generic) else v) for k, v in r.items()})
    return out


# ---------------------------------------------------------------------------
# the grid posterior
# ---------------------------------------------------------------------------


def _grid(scale: float, n: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    """Grid points on [0, 6 scale], quadratic spacing; their cell widths."""
    u = np.linspace(0.0, 1.0, n)
    top = 6.0 * scale
    k = top * u**2
    w = np.gradient(k)
    return k, w


def _log_prior(k: np.ndarray, w: np.ndarray, scale: float) -> np.ndarray:
    """Normalised log prior mass of each grid cell under HalfNormal(scale)."""
    lp = -0.5 * (k / scale) ** 2 + np.log(w + 1e-300)
    return lp - np.logaddexp.reduce(lp)


def _mvt_logpdf(e: np.ndarray, cov: np.ndarray, df: float) -> np.ndarray:
    """Log density of a zero-mean multivariate t at ``e`` (k,) for a batch of covariances (..., k, k)."""
    k = e.shape[-1]
    chol = np.linalg.cholesky(cov)
    z = np.linalg.solve(chol, np.broadcast_to(e, cov.shape[:-1])[..., None])[..., 0]
    maha = np.sum(z**2, axis=-1)
    logdet = 2 * np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    return (math.lgamma((df + k) / 2) - math.lgamma(df / 2) - 0.5 * k * math.log(df * math.pi)
            - 0.5 * logdet - (df + k) / 2 * np.log1p(maha / df))


@dataclass(frozen=True)
class GridPosterior:
    """The posterior of the error's scales on a grid (see :func:`grid_posterior`).

    ``rw``, ``slope``, ``nugget`` are the grid points of each scale;
    ``slab`` the normalised posterior mass of each cell given an error
    beyond the fold fits' own (shape ``(rw, slope, nugget)``);
    ``spike`` the posterior mass over ``nugget`` given none
    (``kappa_rw = kappa_slope = 0``); ``p_zero`` the posterior probability
    of that spike.
    """

    rw: np.ndarray
    slope: np.ndarray
    nugget: np.ndarray
    slab: np.ndarray
    spike: np.ndarray
    p_zero: float

    def sample(self, n: int, rng: np.random.Generator) -> dict:
        """``n`` draws of ``rw``, ``slope``, ``nugget`` (jittered within cells, in the grid's own coordinate)."""
        zero = rng.uniform(size=n) < self.p_zero
        idx = rng.choice(self.slab.size, size=n, p=self.slab.ravel())
        i, j, m = np.unravel_index(idx, self.slab.shape)
        m = np.where(zero, rng.choice(self.spike.size, size=n, p=self.spike), m)

        def jitter(k, pts):
            if pts.size == 1:
                return np.zeros(n)
            u = np.linspace(0.0, 1.0, pts.size)
            v = np.clip(u[k] + rng.uniform(-0.5, 0.5, n) * (u[1] - u[0]), 0.0, 1.0)
            return pts[-1] * v**2

        return {"rw": np.where(zero, 0.0, jitter(i, self.rw)), "slope": np.where(zero, 0.0, jitter(j, self.slope)),
                "nugget": jitter(m, self.nugget)}


def grid_posterior(paths, *, scale: float, df: float = DF, anchors=None, nugget_scale: float | None = None,
                   prior_zero: float = PRIOR_ZERO) -> GridPosterior:
    """Posterior of ``(kappa_rw, kappa_slope, kappa_nugget)`` on a grid.

    The prior is a spike and slab: with probability ``prior_zero`` the law
    extrapolates as its fold fits say (``kappa_rw = kappa_slope = 0``),
    otherwise both scales are half-normal with scale ``scale``.  The spike's
    posterior probability is the Bayes factor at work: folds whose errors sit
    inside their fold fit's own uncertainty leave the predictive (nearly) as
    the plain law's, folds that miss by more turn the error on.

    Parameters
    ----------
    paths : list of (errors, distances, covariance[, ramp])
        One entry per origin: the fold errors ``(k,)``, their distances in
        decades ``(k,)``, the fold fit's own covariance ``(k, k)`` and
        optionally the share of the nugget's sd at each distance ``(k,)``.
    scale : float
        Half-normal prior scale of the slab.
    anchors : (errors, variances), optional
        In-sample errors (log N_opt only: the full fit's optimum against
        each training budget's empirical one) that identify the nugget.
    nugget_scale : float, optional
        Half-normal prior scale of the nugget, an error at every budget
        (inside the data too) independent between budgets; ``None``: no
        nugget.
    prior_zero : float
        Prior probability of the spike.
    """
    rw, w_rw = _grid(scale)
    sl, w_sl = _grid(scale)
    if nugget_scale is None:
        ng, lp_ng = np.zeros(1), np.zeros(1)
    else:
        ng, w_ng = _grid(nugget_scale, NUGGET_GRID)
        lp_ng = _log_prior(ng, w_ng, nugget_scale)
    R, L, G = (rw[:, None, None] ** 2)[..., None, None], (sl[None, :, None] ** 2)[..., None, None], \
        (ng[None, None, :] ** 2)[..., None, None]
    loglik = np.zeros((rw.size, sl.size, ng.size))
    for e, d, P, *r in paths:
        e, d, P = np.asarray(e, float), np.asarray(d, float), np.asarray(P, float)
        r = np.asarray(r[0], float) if r else np.ones_like(d)
        K = R * np.minimum.outer(d, d) + L * np.outer(d, d) + G * np.diag(r**2) + P
        loglik = loglik + _mvt_logpdf(e, K, df)
    if anchors is not None and len(anchors[0]) and ng.size > 1:
        e, v = (np.asarray(a, float) for a in anchors)
        var = ng[:, None] ** 2 + v[None, :]  # (nugget, budgets): independent Student-t per budget
        ll = (math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * np.log(df * math.pi * var)
              - (df + 1) / 2 * np.log1p(e[None, :] ** 2 / (df * var)))
        loglik = loglik + ll.sum(axis=1)[None, None, :]
    log_slab = _log_prior(rw, w_rw, scale)[:, None, None] + _log_prior(sl, w_sl, scale)[None, :, None] \
        + lp_ng[None, None, :] + loglik
    log_spike = lp_ng + loglik[0, 0, :]
    m_slab, m_spike = np.logaddexp.reduce(log_slab.ravel()), np.logaddexp.reduce(log_spike)
    p_zero = 0.0 if prior_zero <= 0 else 1.0 / (1.0 + math.exp(min(700.0, math.log((1 - prior_zero) / prior_zero)
                                                                  + m_slab - m_spike)))
    return GridPosterior(rw=rw, slope=sl, nugget=ng, slab=np.exp(log_slab - m_slab), spike=np.exp(log_spike - m_spike),
                         p_zero=float(p_zero))


# ---------------------------------------------------------------------------
# the anchored N_opt discrepancy
# ---------------------------------------------------------------------------


def anchored_posterior(x, y, v, *, law=None, n: int = N_DRAWS, rng: np.random.Generator | None = None,
                       prior: dict | None = None) -> dict:
    """Posterior draws of the law's misplacement of the optimum, from its in-sample anchors.

    ``y_b`` is the empirical optimum (IsoFLOP vertex) minus the full fit's
    median log N_opt at training budget ``b``, at ``x_b = log10(C_b / c_max)``
    (``<= 0``), measured with variance ``v_b`` (the vertex's).  The
    misplacement is a Gaussian process in ``x`` (a Kennedy-O'Hagan model
    discrepancy):

        delta(x) = level + trend * x + q * W(x - x_0),  y_b = delta(x_b) + nugget * e_b + noise_b,

    ``W`` a standard Brownian motion started at the smallest anchor ``x_0``,
    ``level ~ N(0, 0.3^2)``, ``trend ~ N(0, 0.2^2)`` per decade, ``q`` and
    ``nugget`` half-normal on a grid (:data:`ANCHOR_PRIOR`).  Given a grid
    cell the latent ``(level, trend, W(x_1..x_k))`` is Gaussian and exact;
    the cells are weighted by their marginal likelihood.  Beyond the data
    the process continues: the level the anchors show at ``c_max``, the
    trend, and a random walk whose spread grows with distance.

    With ``law`` (the law's log N_opt at the anchors for each of its ``S``
    posterior draws) the misplacement is conditioned draw by draw: draw
    ``s`` sees ``y_b + median_b - law_{s,b}``, the vertices against its own
    optimum, so the law's parameter uncertainty is counted once (in the
    law's draws, which the misplacement then corrects) instead of twice (as
    noise of the anchors and again in the law's band).  The result is
    aligned with the law's draws (``n = S``; ``n_opt_aligned``).

    Returns
    -------
    dict
        ``n_opt_level, n_opt_trend, n_opt_rw, n_opt_nugget`` ``(n,)``,
        ``n_opt_W`` ``(n, k)`` (the walk at the anchors),
        ``n_opt_anchor_d`` ``(k,)`` (sorted anchor positions) and, with
        ``law``, ``n_opt_aligned`` ``(1,)``.
    """
    prior = {**ANCHOR_PRIOR, **(prior or {})}
    rng = np.random.default_rng(0) if rng is None else rng
    order = np.argsort(np.asarray(x, float))
    x, y, v = (np.asarray(a, float)[order] for a in (x, y, v))
    k = x.size
    if law is None:
        Y = np.repeat(y[:, None], n, axis=1)                   # (k, n): one data set for every draw
    else:
        lw = np.asarray(law, float)[order]                     # (k, S)
        Y = y[:, None] + np.nanmedian(lw, axis=1, keepdims=True) - lw
        Y = np.where(np.isfinite(Y), Y, y[:, None])            # a draw without an optimum sees the median's
        n = Y.shape[1]
    H0 = np.stack([np.ones(k), x], axis=1)                     # (k, 2): level, trend
    Sw = np.minimum.outer(x - x[0], x - x[0]) + 1e-10 * np.eye(k)  # unit Brownian motion at the anchors
    qs, w_q = _grid(prior["rw"], ANCHOR_GRID)
    es, w_e = _grid(prior["nugget"], ANCHOR_GRID)
    lp_q, lp_e = _log_prior(qs, w_q, prior["rw"]), _log_prior(es, w_e, prior["nugget"])
    Sz = np.block([[np.diag([prior["level"] ** 2, prior["trend"] ** 2]), np.zeros((2, k))],
                   [np.zeros((k, 2)), Sw]])                    # prior of z = (level, trend, W)

    def cell(i, j):
        H = np.concatenate([H0, qs[i] * np.eye(k)], axis=1)
        L = np.linalg.cholesky(H @ Sz @ H.T + np.diag(v + es[j] ** 2))
        return H, L

    pick = np.empty(n, dtype=int)  # a cell per draw, from its own posterior (Gumbel-max; in chunks of draws)
    for cols in np.array_split(np.arange(n), max(1, n // N_DRAWS)):
        logw = np.empty((qs.size * es.size, cols.size))
        for c in range(logw.shape[0]):
            i, j = divmod(c, es.size)
            _, L = cell(i, j)
            a = np.linalg.solve(L, Y[:, cols])
            logw[c] = lp_q[i] + lp_e[j] - 0.5 * np.sum(a * a, axis=0) - np.log(np.diag(L)).sum()
        pick[cols] = np.argmax(logw + rng.gumbel(size=logw.shape), axis=0)
    z = np.empty((n, k + 2))
    for c in np.unique(pick):
        at = np.flatnonzero(pick == c)
        H, L = cell(*divmod(c, es.size))
        G = np.linalg.solve(L, H @ Sz)                         # (k, k + 2)
        chol = np.linalg.cholesky(Sz - G.T @ G + 1e-12 * np.eye(k + 2))
        z[at] = (G.T @ np.linalg.solve(L, Y[:, at])).T + rng.standard_normal((at.size, k + 2)) @ chol.T
    qi, ei = np.divmod(pick, es.size)
    out = {"n_opt_level": z[:, 0], "n_opt_trend": z[:, 1], "n_opt_W": z[:, 2:], "n_opt_rw": qs[qi],
           "n_opt_nugget": es[ei], "n_opt_anchor_d": x}
    if law is not None:
        out["n_opt_aligned"] = np.ones(1)
    return out


def _anchored_draws(disc: "Discrepancy", C: np.ndarray, S: int, seed: int) -> np.ndarray:
    """Joint draws of the anchored N_opt misplacement at computes ``C`` (see :func:`anchored_posterior`).

    Request-independent: beyond the last anchor the walk continues on the
    seeded grid of :func:`_walk`; between two anchors it is their Brownian
    bridge, whose noise is seeded by the compute; the nugget is seeded by
    the compute too.
    """
    dr = disc.draws
    tag = QUANTITIES.index("n_opt")
    xa = dr["n_opt_anchor_d"]
    x = np.log10(C / disc.c_max)
    rng = np.random.default_rng([seed, 31, tag, 1])
    m = dr["n_opt_level"].size
    # aligned with the law's draws (see anchored_posterior): draw s corrects the law's draw s
    pick = np.arange(S) if "n_opt_aligned" in dr and m == S else rng.integers(0, m, S)
    level, trend, q, ng = (dr[f"n_opt_{k}"][pick] for k in ("level", "trend", "rw", "nugget"))
    Wa = dr["n_opt_W"][pick]                                    # (S, k)
    W = np.zeros((S, C.size))
    beyond = x >= xa[-1]
    W[:, beyond] = Wa[:, -1:] + _walk(x[beyond] - xa[-1], S, seed, tag)
    key = np.round(np.log10(C), 6)
    for i in np.flatnonzero((x > xa[0]) & ~beyond):
        r = int(np.searchsorted(xa, x[i], side="right"))
        lft, rgt = xa[r - 1], xa[r]
        f = (x[i] - lft) / (rgt - lft)
        bridge = math.sqrt((x[i] - lft) * (rgt - x[i]) / (rgt - lft))
        eps = np.random.default_rng([seed, 43, tag, int(round((key[i] + 100) * 1e6))]).standard_normal(S)
        W[:, i] = Wa[:, r - 1] * (1 - f) + Wa[:, r] * f + bridge * eps
    out = level[:, None] + trend[:, None] * x[None, :] + q[:, None] * W
    for c in np.unique(key):  # one independent misplacement per distinct budget
        at = key == c
        eps = np.random.default_rng([seed, 37, tag, int(round((c + 100) * 1e6))]).standard_normal(S)
        out[:, at] += (ng * eps)[:, None]
    return out


def tilt_posterior(tilts, sds, *, weight: float = 1.0, df: float = DF, n: int = N_DRAWS,
                   rng: np.random.Generator | None = None, prior: dict | None = None,
                   prior_zero: float = PRIOR_ZERO) -> dict:
    """Posterior draws of the tilt along a budget from the folds' measured tilts (see the module doc).

    ``tau_f ~ t_df(theta, sqrt(omega^2 + s_f^2))`` for each fold, each
    likelihood raised to ``weight`` (distinct budgets / folds: folds that
    share a held-out budget are not independent).  Spike and slab, as for
    the level: with prior probability ``prior_zero`` there is no tilt
    (``theta = omega = 0``: the folds' tilts are their own noise), otherwise
    ``theta ~ Normal(0, prior["mean"])``, ``omega ~ HalfNormal(prior["spread"])``.
    Exact on a grid.  Returns ``{"tilt_mean": theta, "tilt_spread": omega,
    "tilt_p_zero": [posterior probability of the spike]}``, ``n`` draws each.
    """
    prior = {**TILT_PRIOR, **(prior or {})}
    rng = np.random.default_rng(0) if rng is None else rng
    tau, s = np.asarray(tilts, float), np.asarray(sds, float)
    th = np.linspace(-6.0, 6.0, 241) * prior["mean"]
    om, w_om = _grid(prior["spread"])

    def loglik(theta, omega):
        var = omega[..., None] ** 2 + s**2
        return weight * np.sum(-0.5 * np.log(var) - (df + 1) / 2 * np.log1p((tau - theta[..., None]) ** 2 / (df * var)),
                               axis=-1)

    lp_th = -0.5 * (th / prior["mean"]) ** 2
    lp_th -= np.logaddexp.reduce(lp_th)
    log_slab = loglik(th[:, None], om[None, :]) + lp_th[:, None] + _log_prior(om, w_om, prior["spread"])[None, :]
    m_slab, m_spike = np.logaddexp.reduce(log_slab.ravel()), float(loglik(np.zeros(()), np.zeros(())))
    p_zero = 0.0 if prior_zero <= 0 else 1.0 / (1.0 + math.exp(min(700.0, math.log((1 - prior_zero) / prior_zero)
                                                                  + m_slab - m_spike)))
    p = np.exp(log_slab - m_slab).ravel()
    i, j = np.unravel_index(rng.choice(p.size, size=n, p=p / p.sum()), log_slab.shape)
    u = np.linspace(0.0, 1.0, om.size)
    v = np.clip(u[j] + rng.uniform(-0.5, 0.5, n) * (u[1] - u[0]), 0.0, 1.0)
    zero = rng.uniform(size=n) < p_zero
    theta = np.where(zero, 0.0, th[i] + rng.uniform(-0.5, 0.5, n) * (th[1] - th[0]))
    return {"tilt_mean": theta, "tilt_spread": np.where(zero, 0.0, om[-1] * v**2), "tilt_p_zero": np.array([p_zero])}


def tilt_draws(disc: "Discrepancy | None", C, S: int, *, seed: int = 0) -> np.ndarray:
    """Draws of the tilt along the budget at computes ``C``, ``(S, n)``: slope of log loss in ``log(D / N)``.

    ``(theta + omega eta_C) min(1, d / ramp)`` beyond the data, zero at and
    below ``c_max``; ``eta_C`` is one standard normal per distinct compute,
    seeded by its value (request-independent).  Zeros without a tilt.
    """
    C = np.atleast_1d(np.asarray(C, dtype=float)).ravel()
    if disc is None or not disc.has_tilt:
        return np.zeros((S, C.size))
    rng = np.random.default_rng([seed, 53])
    pick = rng.integers(0, disc.draws["tilt_mean"].size, S)
    theta, omega = disc.draws["tilt_mean"][pick], disc.draws["tilt_spread"][pick]
    d = np.maximum(np.log10(C / disc.c_max), 0.0)
    key = np.round(np.log10(C), 6)
    out = np.zeros((S, C.size))
    for c in np.unique(key):
        at = key == c
        eta = np.random.default_rng([seed, 59, int(round((c + 100) * 1e6))]).standard_normal(S)
        out[:, at] = (theta + omega * eta)[:, None]
    return out * _ramp("loss", d, disc.ramp)[None, :]


def _fit_tilt(folds: pd.DataFrame, min_budgets: int, rng: np.random.Generator) -> tuple[dict, str, str]:
    """Tilt draws, status and reason from the held-out folds (see :func:`tilt_posterior`)."""
    need = (f"at least {min_budgets} distinct held-out budgets with 5 or more runs spanning a factor e in tokens per "
            "parameter")
    if "tilt" not in folds.columns or not len(folds):
        return {}, "none", f"no tilt along the budget: {need} are needed"
    held = folds[(folds["horizon"] > 0) & folds["ok"].astype(bool)]
    ok = held[np.isfinite(held["tilt"].astype(float)) & np.isfinite(held["tilt_sd"].astype(float))]
    n_budgets = int(np.unique(np.round(np.log10(ok["budget_C"].to_numpy(float)), 3)).size) if len(ok) else 0
    if n_budgets < min_budgets:
        return {}, "none", f"no tilt along the budget: {n_budgets} held-out budget(s) where it can be measured, {need}"
    draws = tilt_posterior(ok["tilt"].to_numpy(float), ok["tilt_sd"].to_numpy(float), weight=n_budgets / len(ok),
                           rng=rng)
    lo, med, hi = np.quantile(draws["tilt_mean"], [0.05, 0.5, 0.95])
    reason = (f"a tilt along the budget of {med:+.4f} per unit log tokens per parameter (90%: {lo:+.4f} to {hi:+.4f}; "
              f"spread between budgets {np.median(draws['tilt_spread']):.4f}; posterior probability "
              f"{float(draws['tilt_p_zero'][0]):.2f} of none), from {len(ok)} held-out folds at "
              f"{n_budgets} distinct budgets: beyond the data, runs with more tokens per parameter than is usual at "
              f"their budget come out {'worse' if med > 0 else 'better'} than the law says, and runs with fewer "
              f"{'better' if med > 0 else 'worse'}")
    return draws, "calibrated", reason


def _in_sample(folds: pd.DataFrame) -> pd.DataFrame:
    return folds[folds["horizon"] == 0] if len(folds) else folds


def _usable(folds: pd.DataFrame, quantity: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The held-out fold rows, and those usable for ``quantity`` (fit passed, error finite)."""
    held = folds[folds["horizon"] > 0] if len(folds) else folds
    ok = held[held["ok"].astype(bool) & np.isfinite(held[f"{quantity}_error"].astype(float))] if len(held) else held
    return held, ok


def _fold_paths(held: pd.DataFrame, ok: pd.DataFrame, covariances: dict, quantity: str, ramp: float) -> list:
    """One path (errors, distances, covariance, nugget share) per origin of the usable folds."""
    paths = []
    for origin, g in ok.groupby("origin", sort=False):
        P = covariances[(quantity, origin)]
        pos = [list(held.index[held["origin"] == origin]).index(i) for i in g.index]
        d = g["d"].to_numpy(float)
        paths.append((g[f"{quantity}_error"].to_numpy(float), d, P[np.ix_(pos, pos)], _ramp(quantity, d, ramp)))
    return paths


def fit_discrepancy(folds: pd.DataFrame, covariances: dict, c_max: float, *, seed: int = 0,
                    min_folds: int = MIN_FOLDS, run_points: pd.DataFrame | None = None,
                    pooled=(), anchor_law: np.ndarray | None = None) -> Discrepancy:
    """The discrepancy posterior from fold facts (a pure function).

    Parameters
    ----------
    folds : pandas.DataFrame
        One row per fold, the columns of :attr:`Discrepancy.folds`; rows
        with ``horizon == 0`` are in-sample anchors of the N_opt nugget
        (the full fit's optimum at a training budget against its empirical
        one; ``n_opt_error`` and ``n_opt_sd`` only).
    covariances : dict
        ``(quantity, origin) -> (k, k)`` covariance of that origin's fold
        errors under the fold fit (rows in the order of ``folds``).
    c_max : float
        Largest compute of the full data.
    seed : int
        Seed of the posterior draws.
    min_folds : int
        Fewest usable folds.
    pooled : sequence of (folds, covariances)
        The fold facts of related data sets (the other groups of a grouped
        fit: variants on one ladder, one law).  When this data set has fewer
        than ``min_folds`` usable log-loss folds of its own, theirs join its
        own and the scales of the loss error are learned from all of them,
        instead of being refused and drawn from the prior; with enough folds
        of its own they are not used (measured on Marin's three sweeps:
        pooling groups that could each be calibrated alone lowered the
        held-out mlpd from 2.53 to 1.88).  N_opt and the in-sample nuggets
        stay the data set's own.
    anchor_law : ndarray, optional
        ``(k, S)``: the full fit's log N_opt for each of its ``S`` draws at
        the ``k`` anchors with a finite ``n_opt_error`` (in their order).
        The anchored N_opt model is then conditioned draw by draw and
        aligned with the fit's draws (see :func:`anchored_posterior`).
    """
    draws, status, reasons = {}, {}, {}
    rng = np.random.default_rng([seed, 41])
    anchors = _in_sample(folds)
    ramp = budget_spacing(anchors["budget_C"].to_numpy(float)) if len(anchors) else RAMP_DEFAULT
    folds_out = folds[folds["horizon"] > 0] if len(folds) else folds
    n_failed = int((~folds_out["ok"].astype(bool)).sum()) if len(folds_out) else 0
    failed = f"; {n_failed} fold fit(s) failed their checks and were left out" if n_failed else ""
    for q in QUANTITIES:
        held, ok = _usable(folds, q)
        # related data sets' folds only when this one has too few of its own (borrow, do not override)
        others = [(*_usable(f, q), cov) for f, cov in pooled] if q == "loss" and len(ok) < min_folds else []
        anc = None
        nugget = None
        if len(anchors):
            a = anchors[np.isfinite(anchors[f"{q}_error"].astype(float))]
            if len(a) >= MIN_ANCHORS:
                anc, nugget = (a[f"{q}_error"].to_numpy(float), a[f"{q}_sd"].to_numpy(float) ** 2), NUGGET_SCALE[q]
        n_own = len(ok)
        n = n_own + sum(len(o) for _, o, _ in others)
        if q == "n_opt" and anc is not None:  # IsoFLOP-shaped budgets: the anchored model (see anchored_posterior)
            law = anchor_law if anchor_law is not None and len(anchor_law) == len(a) else None
            draws.update(anchored_posterior(a["d"].to_numpy(float), anc[0], anc[1], law=law,
                                            rng=np.random.default_rng([seed, 41, 1])))  # its own stream
            status[q] = "calibrated"
            shift = float(np.median(draws["n_opt_level"]))
            reasons[q] = (f"fitted to the law's misplacement of the empirical optimum at {len(anc[0])} IsoFLOP-shaped "
                          f"training budgets (a Gaussian process in log compute: level, trend, random walk and a "
                          f"per-budget nugget{', conditioned on each posterior draw of the law' if law is not None else ''}"
                          f"); at the largest budget the empirical optimum sits "
                          f"{100 * (math.exp(shift) - 1):+.0f}% from the law's (median), and beyond the data the "
                          f"trend and the walk carry on")
            continue
        paths = []
        if n >= min_folds:
            for h, o, cov in [(held, ok, covariances)] + others:
                paths += _fold_paths(h, o, cov, q, ramp)
        gp = grid_posterior(paths, scale=PRIOR_SCALE[q], anchors=anc, nugget_scale=nugget,
                            prior_zero=PRIOR_ZERO if paths else 0.0)
        x = gp.sample(N_DRAWS, rng)
        if not paths:  # refused: the slab prior beyond the data (the nugget still learns from the anchors)
            s = PRIOR_SCALE[q]
            x["rw"], x["slope"] = np.abs(rng.normal(0.0, s, N_DRAWS)), np.abs(rng.normal(0.0, s, N_DRAWS))
        draws[f"{q}_rw"], draws[f"{q}_slope"] = x["rw"], x["slope"]
        if nugget is not None:
            draws[f"{q}_nugget"] = x["nugget"]
        nug = "" if nugget is None else (
            f"; a nugget of {np.median(x['nugget']):.3g} (median) at every budget, inside the data too, from "
            f"{len(anc[0])} IsoFLOP-shaped training budgets whose empirical optimum the law misplaces" if q == "n_opt"
            else f"; a per-budget offset of {np.median(x['nugget']):.3g} (median) at a new budget, rising from zero at "
                 f"the largest run to full size {ramp:.2g} decades beyond it, from the offsets of {len(anc[0])} "
                 "training budgets")
        if not paths:
            status[q] = "prior"
            reasons[q] = (f"not calibrated: {n} usable fold(s), fewer than the {min_folds} needed (rolling-origin "
                          f"refits holding out 1-3 budgets ahead{failed}); the error beyond the data is drawn from "
                          f"its prior (half-normal scales {PRIOR_SCALE[q]:g} per decade){nug}; add runs at more "
                          f"budgets to calibrate it")
            continue
        status[q] = "calibrated"
        used = pd.concat([ok] + [o for _, o, _ in others])
        span = f"{used['d'].min():.2f}-{used['d'].max():.2f}"
        shared = "" if not others else (f" ({n_own} of this data set's own and {n - n_own} of {len(others)} related "
                                         "ones, borrowed because its own are too few)")
        n_refits = ok["origin"].nunique() + sum(o["origin"].nunique() for _, o, _ in others)
        reasons[q] = (f"calibrated on {n} held-out budgets{shared} in {n_refits} rolling-origin refits "
                      f"(1-3 budgets ahead, {span} decades beyond each fold's data{failed}); posterior probability "
                      f"{gp.p_zero:.2f} that the law extrapolates within its own uncertainty{nug}")
    # the tilt draws from a stream of its own: a change to the other parts never moves it
    tilt, status["tilt"], reasons["tilt"] = _fit_tilt(folds, TILT_MIN_BUDGETS, np.random.default_rng([seed, 41, 2]))
    draws.update(tilt)
    return Discrepancy(c_max=float(c_max), draws=draws, status=status, reasons=reasons,
                       folds=folds.reset_index(drop=True), run_points=run_points, ramp=ramp)


def budget_spacing(C) -> float:
    """Median gap between consecutive budgets in decades: the distance over which a loss offset ramps up."""
    x = np.unique(np.round(np.log10(np.asarray(C, float)), 3))
    return float(np.median(np.diff(x))) if x.size > 1 else RAMP_DEFAULT


def _ramp(quantity: str, d, ramp: float) -> np.ndarray:
    """How much of the nugget applies at distance ``d``: all of it for N_opt; for loss, ``min(1, d / ramp)`` beyond the data."""
    d = np.asarray(d, float)
    if quantity == "n_opt":
        return np.ones_like(d)
    return np.clip(d / ramp, 0.0, 1.0)


# ---------------------------------------------------------------------------
# joint draws
# ---------------------------------------------------------------------------


def _walk(d: np.ndarray, S: int, seed: int, tag: int) -> np.ndarray:
    """A standard Brownian motion at distances ``d >= 0`` for ``S`` paths, ``(S, n)``.

    Built on a fixed grid of :data:`STEP` decades whose innovations are
    seeded by the decade they fall in: the value at ``d`` never depends on
    the other distances asked for.
    """
    out = np.zeros((S, d.size))
    if d.size == 0 or not np.any(d > 0):
        return out
    per = int(round(1 / STEP))
    top = int(np.floor(d.max())) + 1
    level = np.zeros(S)
    for k in range(top):
        inc = np.random.default_rng([seed, 29, tag, k]).standard_normal((S, per)) * math.sqrt(STEP)
        path = np.concatenate([level[:, None], level[:, None] + np.cumsum(inc, axis=1)], axis=1)  # (S, per + 1)
        sel = (d >= k) & (d < k + 1) if k < top - 1 else (d >= k)
        if np.any(sel):
            x = (d[sel] - k) / STEP
            i = np.clip(np.floor(x).astype(int), 0, per - 1)
            f = x - i
            out[:, sel] = path[:, i] * (1 - f) + path[:, i + 1] * f
        level = path[:, -1]
    return out


def joint_draws(disc: Discrepancy | None, C, S: int, *, seed: int = 0, quantity: str = "loss") -> np.ndarray:
    """Joint draws of the extrapolation error at computes ``C``, ``(S, n)``.

    One error per distinct compute per draw, correlated across computes,
    zero at and below ``c_max`` and continuous there; the same seed gives
    the same draws at a compute whatever else is asked for.  Drawn from the
    prior when the calibration was refused; zeros without a discrepancy.

    Parameters
    ----------
    disc : Discrepancy or None
    C : array_like
        Training compute in FLOPs.
    S : int
        Number of draws (one per posterior draw of the law).
    seed : int
        Random seed.
    quantity : {"loss", "n_opt"}
        Error of log loss or of log N_opt.
    """
    C = np.atleast_1d(np.asarray(C, dtype=float)).ravel()
    if disc is None or not disc.has_error(quantity):
        return np.zeros((S, C.size))
    if disc.anchored(quantity):
        return _anchored_draws(disc, C, S, seed)
    tag = QUANTITIES.index(quantity)
    d = np.maximum(np.log10(C / disc.c_max), 0.0)
    rng = np.random.default_rng([seed, 31, tag])
    rw, sl = disc.draws[f"{quantity}_rw"], disc.draws[f"{quantity}_slope"]
    pick = rng.integers(0, rw.size, S)
    z = rng.standard_normal(S)
    w = disc.df / rng.chisquare(disc.df, S)
    W = _walk(d, S, seed, tag)
    out = rw[pick][:, None] * W + sl[pick][:, None] * z[:, None] * d[None, :]
    if f"{quantity}_nugget" in disc.draws:  # one independent error per distinct compute, seeded by its value
        ng = disc.draws[f"{quantity}_nugget"][pick]
        key = np.round(np.log10(C), 6)
        share = _ramp(quantity, d, disc.ramp)
        for c in np.unique(key):
            at = key == c
            if share[at][0] == 0:
                continue
            eps = np.random.default_rng([seed, 37, tag, int(round((c + 100) * 1e6))]).standard_normal(S)
            out[:, at] += (ng * eps * share[at][0])[:, None]
    return np.sqrt(w)[:, None] * out

