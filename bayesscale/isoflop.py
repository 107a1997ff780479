"""IsoFLOP profiles: Chinchilla's Approach 2, with posterior uncertainty.

At each compute budget the runs trace a U-shaped profile of loss against
``x = log N``.  Each profile gets a Bayesian quadratic::

    loss = c0 + c1 (x - xbar) + c2 (x - xbar)^2 + noise,  noise ~ Normal(0, sigma^2)

whose conjugate Normal-inverse-gamma posterior is sampled exactly (no MCMC).
Every draw with ``c2 > 0`` has a minimum at ``x* = xbar - c1 / (2 c2)``
with loss ``c0 - c1^2 / (4 c2)``.  Pairing the ``s``-th draw of every
budget and fitting ``log N_opt = log k + a log C`` by least squares gives
one draw of the exponent ``a``; over all ``s`` that is a distribution of
``a`` that carries each profile's uncertainty.  A draw uses the budgets
whose profile has a minimum (``c2 > 0``) in that draw.  Budgets whose
minimum mostly lies outside the sampled sizes are set aside (and listed in
``skipped``): a quadratic's extrapolated vertex can drag the line far off.
Compare the result with the parametric fit's ``a = beta / (alpha + beta)``
(Approach 3) with :func:`compare_approaches`.

The prior, in standardised units (``x`` and ``loss`` centred and scaled per
budget), is ``c | sigma^2 ~ Normal(0, 10^6 sigma^2 I)`` with
``sigma^2 ~ InvGamma(a0 = -3/2, b0 = 1e-12)``: the conjugate limit of the
reference prior ``p(c, sigma^2) proportional to 1 / sigma^2``.  With ``n``
runs the coefficients then have the classical Student-t posterior with
``n - 3`` degrees of freedom, so a budget with few runs gets honestly wide
(heavy-tailed) intervals; ``min_runs`` (at least 4) guards against too few.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import laws
from ._validate import check_ci as _check_ci
from .intervals import DEFAULT_CI, band_names
from .allocation import _params
from .data import as_runs, budget_groups

__all__ = ["IsoFLOPResult", "isoflop_analysis", "compare_approaches"]

#: Prior precision of the standardised coefficients (relative to 1 / sigma^2).
_PRIOR_PRECISION = 1e-6
#: Floor on the posterior scale of sigma^2 (standardised units), for noiseless profiles.
_B0 = 1e-12
_P = 3  # quadratic: three coefficients


@dataclass(frozen=True, eq=False)
class IsoFLOPResult:
    """The result of :func:`isoflop_analysis`.

    Attributes
    ----------
    profiles : pandas.DataFrame
        One row per budget used, in increasing compute: ``budget`` (the
        group's number in ``runs.budget``, or in the ``tol_dex``
        regrouping), ``C`` (geometric-mean compute of its runs),
        ``n_runs``, ``N_min``/``N_max`` (sizes sampled), ``x_centre`` (the ``xbar`` of
        the quadratic, mean log N), ``N_opt``/``N_opt_lo80``/``N_opt_hi80``,
        ``D_opt``/``D_opt_lo80``/``D_opt_hi80`` (``C / (6 N_opt)``),
        ``loss_min``/``loss_min_lo80``/``loss_min_hi80`` (the suffix is the
        level ``ci``: ``_lo95`` at 0.95), ``sigma`` (posterior
        median noise scale), ``frac_no_minimum`` (share of draws with
        ``c2 <= 0``: no minimum) and ``frac_outside`` (share of draws with a
        minimum whose ``N_opt`` lies outside the sampled sizes, i.e. is an
        extrapolation).  Quantiles are over draws with ``c2 > 0``.
    skipped : pandas.DataFrame
        Budgets not used, with ``budget, C, n_runs, reason``: too few runs,
        too few distinct sizes, or (see ``max_outside``) no minimum inside
        the sampled sizes.  Nothing is dropped silently.
    exponent : pandas.DataFrame
        Index ``a, b, log_k`` for ``N_opt = k C^a`` and ``D_opt = C^b / (6 k)``
        with ``b = 1 - a`` (``log_k`` is a natural log, with N in
        parameters and C in FLOPs); columns ``median, lo80, hi80, mean, sd``
        (at ``ci=0.8``).
    draws : dict of str to numpy.ndarray
        ``log_N_opt`` and ``loss_min`` ``(S, n_budgets)`` (NaN where
        ``c2 <= 0``); ``coef`` ``(S, n_budgets, 3)``, the coefficients
        ``c0, c1, c2`` in loss units around ``x_centre``; ``sigma``
        ``(S, n_budgets)``; ``a`` and ``log_k`` ``(S,)`` (NaN where fewer
        than two budgets had a minimum in that draw).
    ci : float, optional
        Probability mass of the intervals.
        Default :data:`bayesscale.DEFAULT_CI`.
    frac_exponent_draws : float
        Share of draws from which the exponent could be fitted.
    """

    profiles: pd.DataFrame
    skipped: pd.DataFrame
    exponent: pd.DataFrame
    draws: dict = field(repr=False)
    ci: float = DEFAULT_CI
    frac_exponent_draws: float = 1.0

    def __post_init__(self):
        frozen = {}
        for k, v in self.draws.items():
            a = np.asarray(v).view()
            a.setflags(write=False)
            frozen[k] = a
        object.__setattr__(self, "draws", frozen)

    @property
    def a(self) -> float:
        """Posterior median of the exponent ``a`` in ``N_opt = k C^a``."""
        return float(self.exponent.loc["a", "median"])

    def profile_loss(self, N) -> np.ndarray:
        """Posterior draws of each fitted profile's mean loss at sizes ``N``.

        Parameters
        ----------
        N : array_like
            Model sizes.

        Returns
        -------
        numpy.ndarray
            ``(S, n_budgets, len(N))``, for drawing profile bands.
        """
        x = np.log(np.atleast_1d(np.asarray(N, dtype=np.float64)))
        z = x[None, None, :] - self.profiles["x_centre"].to_numpy()[None, :, None]
        c = self.draws["coef"]
        return c[..., 0:1] + c[..., 1:2] * z + c[..., 2:3] * z**2

    def __repr__(self) -> str:
        e = self.exponent
        lo, hi = band_names("", self.ci)
        return (f"IsoFLOPResult({len(self.profiles)} budgets used, {len(self.skipped)} skipped; "
                f"a = {e.loc['a', 'median']:.3f} [{e.loc['a', lo]:.3f}, {e.loc['a', hi]:.3f}] at ci={self.ci:g})")


def _nanband(x: np.ndarray, ci: float):
    """Median and equal-tailed interval over axis 0, ignoring NaN; NaN where a column has no value."""
    x = np.asarray(x, dtype=np.float64)
    qs = [0.5, (1 - ci) / 2, (1 + ci) / 2]
    shape = x.shape[1:]
    ok = np.isfinite(x).any(axis=0)
    out = np.full((3,) + shape, np.nan)
    if np.all(ok):
        out = np.nanquantile(x, qs, axis=0)
    elif np.any(ok):
        out[:, ok] = np.nanquantile(x[:, ok], qs, axis=0)
    return out[0], out[1], out[2]


def _quadratic_posterior(x: np.ndarray, y: np.ndarray, S: int, rng: np.random.Generator):
    """Exact draws of a quadratic's coefficients (loss units, around mean x) and noise scale.

    Returns ``coef (S, 3)``, ``sigma (S,)`` and the centre ``xbar``.
    """
    xbar, sx = x.mean(), x.std()
    ybar, sy = y.mean(), y.std()
    sy = sy if sy > 0 else 1.0
    z = (x - xbar) / sx
    X = np.stack([np.ones_like(z), z, z**2], axis=1)
    ys = (y - ybar) / sy
    n = len(y)
    Lam = X.T @ X + _PRIOR_PRECISION * np.eye(_P)
    V = np.linalg.inv(Lam)
    V = 0.5 * (V + V.T)
    m = V @ (X.T @ ys)
    resid = ys - X @ m
    a_n = (n - _P) / 2  # a0 + n / 2 with a0 = -p / 2, the reference-prior limit
    b_n = _B0 + 0.5 * (resid @ resid + _PRIOR_PRECISION * (m @ m))
    sig2 = b_n / rng.gamma(a_n, 1.0, size=S)
    L = np.linalg.cholesky(V)
    beta = m[None, :] + np.sqrt(sig2)[:, None] * (rng.standard_normal((S, _P)) @ L.T)
    # back to loss units around xbar: loss = c0 + c1 (x - xbar) + c2 (x - xbar)^2
    coef = np.empty_like(beta)
    coef[:, 0] = ybar + sy * beta[:, 0]
    coef[:, 1] = sy * beta[:, 1] / sx
    coef[:, 2] = sy * beta[:, 2] / sx**2
    return coef, sy * np.sqrt(sig2), xbar


def _exponent_table(a: np.ndarray, log_k: np.ndarray, ci: float) -> pd.DataFrame:
    rows = {}
    lo_name, hi_name = band_names("", ci)
    for name, d in (("a", a), ("b", 1.0 - a), ("log_k", log_k)):
        d = d[np.isfinite(d)]
        if d.size == 0:
            rows[name] = dict.fromkeys(("median", lo_name, hi_name, "mean", "sd"), np.nan)
            continue
        med, lo, hi = np.quantile(d, [0.5, (1 - ci) / 2, (1 + ci) / 2])
        rows[name] = {"median": med, lo_name: lo, hi_name: hi, "mean": d.mean(),
                      "sd": d.std(ddof=1) if d.size > 1 else 0.0}
    return pd.DataFrame.from_dict(rows, orient="index")


def isoflop_analysis(runs, *, tol_dex: float | None = None, min_runs: int = 5, max_outside: float | None = 0.5,
                     draws: int = 4000, ci: float | None = None, seed: int = 0) -> IsoFLOPResult:
    """Chinchilla Approach 2: fit each isoFLOP profile, then N_opt against C.

    Parameters
    ----------
    runs : Runs, pandas.DataFrame or path
        The runs (see :func:`bayesscale.data.load_runs`).
    tol_dex : float, optional
        Regroup the runs by compute with this tolerance in decades (see
        :func:`bayesscale.data.budget_groups`).  Default: the runs' own
        groups (``runs.budget``: a ``budget`` column if the table had one,
        else compute groups with the default tolerance).
    min_runs : int
        Fewest runs a budget needs to be fitted (at least 4: a quadratic
        and its noise).  Smaller budgets, and budgets with fewer than three
        distinct sizes, are listed in ``skipped``.
    max_outside : float or None
        A budget whose profile has no minimum inside the sampled sizes (no
        minimum at all, ``c2 <= 0``, or one outside ``[N_min, N_max]``) in
        more than this share of its draws is moved to ``skipped``: its
        ``N_opt`` would be an extrapolation of a quadratic, and one such
        budget can drag the exponent far off.  ``None`` keeps every budget.
    draws : int
        Posterior draws per profile.
    ci : float, optional
        Probability mass of the reported intervals.
        Default :data:`bayesscale.DEFAULT_CI`.
    seed : int
        Random seed; each budget's draws come from ``(seed, budget)``.

    Returns
    -------
    IsoFLOPResult

    Raises
    ------
    ValueError
        On bad arguments, or when fewer than two budgets can be fitted
        (the message lists the skipped budgets).
    """
    r = as_runs(runs)
    ci = _check_ci(ci)
    if isinstance(min_runs, bool) or not isinstance(min_runs, (int, np.integer)) or min_runs < _P + 1:
        raise ValueError(f"min_runs must be an integer >= {_P + 1} (a quadratic profile has 3 coefficients "
                         f"and a noise scale), got {min_runs!r}")
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 2:
        raise ValueError(f"draws must be an integer >= 2, got {draws!r}")
    if max_outside is not None and not (0 <= max_outside <= 1):
        raise ValueError(f"max_outside must be a share in [0, 1] or None, got {max_outside!r}")
    if tol_dex is None:
        labels = np.asarray(r.budget)
    else:
        if not (isinstance(tol_dex, (int, float, np.number)) and np.isfinite(tol_dex) and tol_dex > 0):
            raise ValueError(f"tol_dex must be a positive number of decades, got {tol_dex!r}")
        labels = budget_groups(r.C, tol_dex)
    x_all, logC_all = np.log(r.N), np.log(r.C)
    groups = sorted(np.unique(labels), key=lambda g: logC_all[labels == g].mean())

    used, skipped = [], []
    for g in groups:
        sel = labels == g
        n = int(sel.sum())
        C_g = float(np.exp(logC_all[sel].mean()))
        n_sizes = np.unique(r.N[sel]).size
        if n < min_runs:
            skipped.append({"budget": int(g), "C": C_g, "n_runs": n,
                            "reason": f"only {n} run{'s' if n != 1 else ''}; a profile needs at least {min_runs} "
                                      "(min_runs)"})
        elif n_sizes < 3:
            skipped.append({"budget": int(g), "C": C_g, "n_runs": n,
                            "reason": f"only {n_sizes} distinct model size(s); a quadratic needs at least 3"})
        else:
            used.append((int(g), C_g, sel))
    S = int(draws)
    fits = []
    for g, C_g, sel in used:
        rng = np.random.default_rng([seed, g])
        coef_g, sigma_g, centre = _quadratic_posterior(x_all[sel], r.loss[sel], S, rng)
        c0, c1, c2 = coef_g[:, 0], coef_g[:, 1], coef_g[:, 2]
        has_min = c2 > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            x_opt = np.where(has_min, centre - c1 / (2 * c2), np.nan)
            loss_min = np.where(has_min, c0 - c1**2 / (4 * c2), np.nan)
        lo_x, hi_x = np.log(r.N[sel].min()), np.log(r.N[sel].max())
        outside = has_min & ((x_opt < lo_x) | (x_opt > hi_x))
        frac_bad = float(np.mean(~has_min | outside))
        if max_outside is not None and frac_bad > max_outside:
            skipped.append({"budget": g, "C": C_g, "n_runs": int(sel.sum()),
                            "reason": f"in {frac_bad:.0%} of draws the profile has no minimum within the sampled "
                                      f"sizes ({np.exp(lo_x):.3g} to {np.exp(hi_x):.3g}); its N_opt would be an "
                                      "extrapolation (max_outside)"})
            continue
        fits.append({"budget": g, "C": C_g, "sel": sel, "coef": coef_g, "sigma": sigma_g, "centre": centre,
                     "x_opt": x_opt, "loss_min": loss_min, "has_min": has_min, "outside": outside})
    skipped_df = pd.DataFrame(skipped, columns=["budget", "C", "n_runs", "reason"])
    skipped_df = skipped_df.sort_values("C", kind="stable").reset_index(drop=True)
    if len(fits) < 2:
        detail = "; ".join(f"budget {s['budget']} (C = {s['C']:.3g}): {s['reason']}" for s in skipped) or "none"
        raise ValueError(f"isoFLOP analysis needs at least two usable budgets (each with {min_runs} or more runs "
                         f"at three or more sizes and a minimum inside the sampled sizes); {len(fits)} qualify. "
                         f"Skipped: {detail}")

    x_opt = np.stack([f["x_opt"] for f in fits], axis=1)  # (S, B)
    # Approach 2 line, one least-squares fit per draw, over the budgets with a minimum in that draw
    lc = np.log(np.array([f["C"] for f in fits]))[None, :]
    w = np.isfinite(x_opt).astype(float)
    nw = w.sum(axis=1)
    xo = np.where(w > 0, x_opt, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lbar = (w * lc).sum(axis=1) / nw
        xbar = (w * xo).sum(axis=1) / nw
        dl = (lc - lbar[:, None]) * w
        sxx = (dl**2).sum(axis=1)
        a = (dl * (xo - xbar[:, None])).sum(axis=1) / sxx
    fit_ok = (nw >= 2) & (sxx > 0)
    a = np.where(fit_ok, a, np.nan)
    log_k = np.where(fit_ok, xbar - a * lbar, np.nan)

    rows = []
    for f in fits:
        N_sel = r.N[f["sel"]]
        row = {"budget": f["budget"], "C": f["C"], "n_runs": int(f["sel"].sum()), "N_min": N_sel.min(),
               "N_max": N_sel.max(), "x_centre": f["centre"]}
        (n_lo, n_hi), (d_lo, d_hi), (l_lo, l_hi) = (band_names(k, ci) for k in ("N_opt", "D_opt", "loss_min"))
        med, lo, hi = _nanband(f["x_opt"][:, None], ci)
        row.update({"N_opt": np.exp(med[0]), n_lo: np.exp(lo[0]), n_hi: np.exp(hi[0])})
        D6 = f["C"] / laws.FLOPS_PER_PARAM_TOKEN
        row.update({"D_opt": D6 / row["N_opt"], d_lo: D6 / row[n_hi], d_hi: D6 / row[n_lo]})
        med, lo, hi = _nanband(f["loss_min"][:, None], ci)
        row.update({"loss_min": med[0], l_lo: lo[0], l_hi: hi[0]})
        row["sigma"] = float(np.median(f["sigma"]))
        n_min = int(f["has_min"].sum())
        row["frac_no_minimum"] = 1.0 - n_min / S
        row["frac_outside"] = float(f["outside"].sum() / n_min) if n_min else np.nan
        rows.append(row)
    profiles = pd.DataFrame(rows)
    for col in profiles.columns:
        if col not in ("budget", "n_runs"):
            profiles[col] = profiles[col].astype(float)

    return IsoFLOPResult(
        profiles=profiles,
        skipped=skipped_df,
        exponent=_exponent_table(a, log_k, ci),
        draws={"log_N_opt": x_opt, "loss_min": np.stack([f["loss_min"] for f in fits], axis=1),
               "coef": np.stack([f["coef"] for f in fits], axis=1),
               "sigma": np.stack([f["sigma"] for f in fits], axis=1), "a": a, "log_k": log_k},
        ci=ci,
        frac_exponent_draws=float(fit_ok.mean()),
    )


def compare_approaches(iso_result: IsoFLOPResult, params: Mapping, *, ci: float | None = None,
                       approach1=None) -> pd.DataFrame:
    """Approach 2 (isoFLOP profiles) against Approach 3 (the parametric law), and Approach 1 from curves.

    Parameters
    ----------
    iso_result : IsoFLOPResult
        From :func:`isoflop_analysis`.
    params : mapping
        Posterior draws ``E, A, B, alpha, beta`` of the fitted law.
    ci : float, optional
        Probability mass of the approaches' intervals.
        Default :data:`bayesscale.DEFAULT_CI`.
    approach1 : Approach1Result or Curves, optional
        Chinchilla's Approach 1 from training curves
        (:func:`bayesscale.approach1`; given curves, it is computed with its
        defaults and this ``ci``).  Adds the columns ``approach1,
        approach1_lo80, approach1_hi80`` (its ``N_opt`` at the isoFLOP budgets,
        from its power law) and ``overlap_1_3`` (whether its interval
        overlaps Approach 3's).  Its ``b`` is fitted to the envelope's
        tokens, not ``1 - a``.

    Returns
    -------
    pandas.DataFrame
        Rows ``a`` and ``b`` (exponents of ``N_opt`` and ``D_opt`` in
        ``C``), then one ``N_opt`` row per isoFLOP budget (column ``C``).
        Columns ``quantity, C, isoflop, isoflop_lo80, isoflop_hi80,
        parametric, parametric_lo80, parametric_hi80, overlap`` (whether
        the two intervals overlap; the suffix is the level ``ci``), and
        with ``approach1`` the columns above.  Approach 3 uses C = 6 N D.
    """
    if not isinstance(iso_result, IsoFLOPResult):
        raise ValueError(f"iso_result must be an IsoFLOPResult from isoflop_analysis, got "
                         f"{type(iso_result).__name__}")
    ci = _check_ci(ci)
    p = _params(params)
    f = laws.frontier_coefficients(p)
    a2 = iso_result.draws["a"]
    C = iso_result.profiles["C"].to_numpy()
    N3 = laws.optimal_allocation({k: v[:, None] for k, v in p.items()}, C[None, :])[0]
    entries = [("a", np.nan, a2, f["a"]), ("b", np.nan, 1.0 - a2, f["b"])]
    with np.errstate(over="ignore"):  # a flat profile's vertex can lie absurdly far out: inf, summarised as such
        n2 = np.exp(iso_result.draws["log_N_opt"])
    entries += [("N_opt", C[j], n2[:, j], N3[:, j]) for j in range(C.size)]
    rows = []
    (i_lo, i_hi), (p_lo, p_hi) = band_names("isoflop", ci), band_names("parametric", ci)
    for name, c, d2, d3 in entries:
        m2, l2, h2 = _nanband(d2[:, None], ci)
        m3, l3, h3 = _nanband(np.asarray(d3, dtype=float)[:, None], ci)
        rows.append({"quantity": name, "C": c, "isoflop": m2[0], i_lo: l2[0], i_hi: h2[0],
                     "parametric": m3[0], p_lo: l3[0], p_hi: h3[0],
                     "overlap": bool(max(l2[0], l3[0]) <= min(h2[0], h3[0]))})
    table = pd.DataFrame(rows)
    if approach1 is None:
        return table
    from .curves import Approach1Result, Curves
    from .curves import approach1 as _approach1

    if isinstance(approach1, Curves):
        approach1 = _approach1(approach1, ci=ci)
    if not isinstance(approach1, Approach1Result):
        raise ValueError(f"approach1 must be an Approach1Result from bayesscale.approach1 or Curves, got "
                         f"{type(approach1).__name__}")
    a1 = approach1.table(C, ci=ci)
    a_lo, a_hi = band_names("approach1", ci)
    for col in ("approach1", a_lo, a_hi):
        table[col] = a1[col].to_numpy()
    table["overlap_1_3"] = [bool(max(r[a_lo], r[p_lo]) <= min(r[a_hi], r[p_hi])) for _, r in table.iterrows()]
    return table
