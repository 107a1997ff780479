"""Compute-optimal allocation from posterior draws.

Every function here is a pure function of ``params``, a mapping of flat
float64 arrays of ``S`` posterior draws with the keys ``E, A, B, alpha,
beta`` (extra keys such as ``sigma`` are ignored; scalars count as one
draw).  Work is vectorised over draws and budgets at once: a ``(S, n)``
array per quantity, never a Python loop over draws.

Predictive uncertainty enters through the optional ``log_noise``: additive
draws on log loss, an array broadcastable to ``(S, n)`` (one value per draw
and budget) or of shape ``(S,)`` (one value per draw, shared by all
budgets).  The predictive loss of draw ``s`` is
``exp(log L_s + log_noise_s)``; :func:`bayesscale.posterior.log_noise`
supplies such draws.

Results: tables are :class:`pandas.DataFrame`.  Where a table summarises per-draw
quantities it comes wrapped in a :class:`DrawTable` (or its subclass
:class:`Allocation`): a frozen dataclass with the summary ``.table`` and the
underlying ``.draws`` (a dict of read-only ``(S, n)`` arrays, one column per
table row), so any other summary (a mean, a different interval, a
histogram) is one NumPy call away.  Intervals are equal-tailed: ``x_lo80``
and ``x_hi80`` (at ``ci=0.8``; the level is always in the name, see
:mod:`bayesscale.intervals`) are the ``(1 - ci) / 2`` and ``(1 + ci) / 2``
quantiles over draws, the plain column ``x`` is the median.  ``ci``
defaults to :data:`bayesscale.DEFAULT_CI` everywhere.

The law and its closed-form frontier live in :mod:`bayesscale.laws`; this
module only evaluates them over draws, inverts them and solves the cases
without a closed form (another cost model).

Every public function takes ``law=``: ``None`` (the default) or the
Chinchilla law use the closed forms above, with ``params`` holding ``E, A,
B, alpha, beta``; any other :class:`bayesscale.Law` (``kaplan``,
``coupled``, ``data_constrained``, ``compute_only``, a user's law) takes
draws of ``law.params`` and goes through the numeric frontier of
:mod:`bayesscale.frontier` (see "any law" at the end of this module).  The
tables have the same columns either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import laws
from ._validate import check_ci as _check_ci
from .intervals import DEFAULT_CI, band_names
from .intervals import quantiles as _band
from ._validate import positive as _positive

__all__ = [
    "DrawTable",
    "Allocation",
    "SizeRange",
    "allocate",
    "bayes_optimal_N",
    "bayes_decision",
    "prob_below",
    "best_D_for_N",
    "best_N_for_D",
    "compute_for_loss",
    "frontier_exponents",
    "excess_compute",
    "efficient_size_range",
]

_LOG6 = float(np.log(laws.FLOPS_PER_PARAM_TOKEN))


# ---------------------------------------------------------------------------
# result containers
# ---------------------------------------------------------------------------


def _freeze(draws: Mapping) -> dict:
    out = {}
    for k, v in draws.items():
        a = np.asarray(v)
        if a.flags.writeable:
            a = a.view()
            a.setflags(write=False)
        out[k] = a
    return out


@dataclass(frozen=True, eq=False)
class DrawTable:
    """A summary table together with the posterior draws it summarises.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per input value (budget, model size, target, ...): medians
        and equal-tailed ``ci`` intervals (columns ``x, x_lo80, x_hi80`` at
        ``ci=0.8``: the level is part of the name, see :mod:`bayesscale.intervals`).
    draws : dict of str to numpy.ndarray
        Read-only ``(S, n)`` arrays of per-draw values; column ``j`` belongs
        to row ``j`` of :attr:`table`.
    ci : float, optional
        Probability mass of the intervals in :attr:`table`.
        Default :data:`bayesscale.DEFAULT_CI`.
    """

    table: pd.DataFrame
    draws: dict = field(repr=False)
    ci: float = DEFAULT_CI

    def __post_init__(self):
        object.__setattr__(self, "draws", _freeze(self.draws))

    @property
    def n_draws(self) -> int:
        """Number of posterior draws behind the table."""
        return next(iter(self.draws.values())).shape[0] if self.draws else 0

    def to_frame(self) -> pd.DataFrame:
        """A copy of :attr:`table`."""
        return self.table.copy()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({len(self.table)} rows, {self.n_draws} draws, ci={self.ci:g})\n"
                f"{self.table.to_string()}")

    def _repr_html_(self) -> str:
        return self.table._repr_html_()


class Allocation(DrawTable):
    """Compute-optimal allocations: a :class:`DrawTable` of N, D, C and loss.

    Returned by :func:`allocate`, :func:`best_D_for_N`, :func:`best_N_for_D`
    and :func:`compute_for_loss`.  ``draws`` holds ``(S, n)`` arrays named
    like the table's median columns (``N_opt``, ``D_opt``, ``loss``, ...).
    """


@dataclass(frozen=True, eq=False)
class SizeRange:
    """Model sizes whose extra compute stays below a threshold.

    Returned by :func:`efficient_size_range`.  Sizes are multiples ``k`` of
    the compute-optimal size ``N_opt(C)`` of each draw.

    Attributes
    ----------
    C : float
        The compute budget.
    threshold : float
        Largest accepted excess compute (0.2 = 20% more compute).
    ci : float, optional
        Probability mass of the endpoint bands.
        Default :data:`bayesscale.DEFAULT_CI`.
    table : pandas.DataFrame
        Index ``k_lo, k_hi`` (the smallest and largest acceptable size as a
        multiple of ``N_opt``); columns ``median, lo80, hi80`` (at
        ``ci=0.8``), and ``N``, ``N_lo80``, ``N_hi80``: the same in
        parameters (per draw ``k * N_opt``).
    draws : dict of str to numpy.ndarray
        ``k_lo`` and ``k_hi``, one value per draw.
    """

    C: float
    threshold: float
    ci: float
    table: pd.DataFrame
    draws: dict = field(repr=False)

    def __post_init__(self):
        object.__setattr__(self, "draws", _freeze(self.draws))

    @property
    def k_lo(self) -> float:
        """Median smallest acceptable size, as a multiple of ``N_opt``."""
        return float(self.table.loc["k_lo", "median"])

    @property
    def k_hi(self) -> float:
        """Median largest acceptable size, as a multiple of ``N_opt``."""
        return float(self.table.loc["k_hi", "median"])

    @property
    def sentence(self) -> str:
        """The result in one sentence, for a report."""
        t = self.table
        lo, hi = band_names("", self.ci)
        if np.isnan(self.k_lo) or np.isnan(self.k_hi):
            return (f"At C = {self.C:.3g} FLOPs the law does not define a compute-optimal model size, so no "
                    "range of efficient sizes can be given.")
        return (f"At C = {self.C:.3g} FLOPs, model sizes between {self.k_lo:.2f}x and {self.k_hi:.2f}x the "
                f"compute-optimal size cost at most {self.threshold:.0%} more compute to reach the optimum's "
                f"loss (posterior medians; {self.ci:.0%} intervals of the bounds: "
                f"{t.loc['k_lo', lo]:.2f}x to {t.loc['k_lo', hi]:.2f}x and "
                f"{t.loc['k_hi', lo]:.2f}x to {t.loc['k_hi', hi]:.2f}x).")

    def __str__(self) -> str:
        return self.sentence



# ---------------------------------------------------------------------------
# a posterior in place of draws
# ---------------------------------------------------------------------------


def _unpack(params, law):
    """``(posterior or None, draws, law)``: a :class:`bayesscale.Posterior` gives its draws and its law."""
    if isinstance(params, Mapping):
        return None, params, law
    from .posterior import Posterior

    if isinstance(params, Posterior):
        if law is not None and laws.get_law(law) is not params.law:
            raise ValueError(f"law={getattr(law, 'name', law)!r} does not match the posterior's law "
                             f"{params.law.name!r}; drop law= when passing a posterior")
        return params, params.law_params, params.law
    if hasattr(params, "compare_groups"):
        raise ValueError("a grouped posterior holds one law per group: pass one group's posterior, "
                         "grouped.group(name), or its draws, grouped.params[name]")
    return None, params, law


def _predictive_noise(post, C) -> np.ndarray:
    """The posterior's predictive noise on log loss at compute ``C``, ``(S, C.size)``."""
    from .posterior import log_noise

    return log_noise(post, np.ravel(C))


# ---------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------


def _params(params: Mapping) -> dict:
    """Validate posterior draws; return flat float64 arrays of a common length S."""
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a mapping of posterior draws with keys {', '.join(laws.PARAMETERS)}; "
                         f"got {type(params).__name__}")
    missing = [k for k in laws.PARAMETERS if k not in params]
    if missing:
        raise ValueError(f"params lacks {', '.join(missing)}: give a dict of posterior draws with keys "
                         f"{', '.join(laws.PARAMETERS)} (for example Posterior.params)")
    out = {}
    for k in laws.PARAMETERS:
        a = np.asarray(params[k], dtype=np.float64)
        if a.ndim > 1:
            raise ValueError(f"params[{k!r}] has shape {a.shape}; give a flat array of draws "
                             "(reshape chains x draws with .reshape(-1))")
        out[k] = np.atleast_1d(a)
    sizes = {a.size for a in out.values()} - {1}
    if len(sizes) > 1:
        raise ValueError("params arrays have different numbers of draws: "
                         + ", ".join(f"{k}: {v.size}" for k, v in out.items()))
    S = sizes.pop() if sizes else 1
    if S == 0:
        raise ValueError("params holds no draws (empty arrays)")
    for k, a in out.items():
        bad = ~np.isfinite(a) | (a <= 0)
        if bad.any():
            raise ValueError(f"params[{k!r}] has {int(bad.sum())} draws that are not positive and finite "
                             f"(first: {a[np.argmax(bad)]!r}); the law needs E, A, B, alpha, beta > 0")
        out[k] = np.broadcast_to(a, (S,))
    return out


def _noise(log_noise, S: int, shape: tuple) -> np.ndarray | None:
    """Broadcast ``log_noise`` to ``(S,) + shape``; a 1-D array of length S is per draw."""
    if log_noise is None:
        return None
    z = np.asarray(log_noise, dtype=np.float64)
    if z.ndim == 1 and z.shape[0] == S and S > 1:
        z = z.reshape((S,) + (1,) * len(shape))
    try:
        z = np.broadcast_to(z, (S,) + tuple(shape))
    except ValueError:
        raise ValueError(f"log_noise has shape {np.shape(log_noise)}, which does not broadcast to "
                         f"(draws, n) = {(S,) + tuple(shape)}; give one value per draw (S,) or per draw and "
                         "input (S, n)") from None
    if not np.all(np.isfinite(z)):
        raise ValueError("log_noise has non-finite values")
    return z


def _col(p: Mapping) -> dict:
    """Draws as column vectors ``(S, 1)`` for a draws x inputs grid."""
    return {k: v[:, None] for k, v in p.items()}


# ---------------------------------------------------------------------------
# summaries over draws
# ---------------------------------------------------------------------------


def _bands_by_rank(key: np.ndarray, arrays: Mapping, ci: float) -> dict:
    """Median and interval columns of several arrays that are monotone in ``key`` draw by draw.

    ``arrays`` maps a name to ``(values, increasing)``: along axis 0 (the
    draws) each array must be an increasing (or decreasing) function of
    ``key`` within every column, e.g. ``D = C / (6 N)`` against ``N``.  The
    order statistics of all of them then come from one ``argpartition`` of
    ``key``.  Between two order statistics the interpolation is geometric
    (the arrays are positive), so the summary columns keep the identities
    of the draws: the median ``N_opt`` and ``D_opt`` still satisfy
    ``6 N D = C`` to rounding.
    """
    S = key.shape[0]
    qs = (0.5, (1 - ci) / 2, (1 + ci) / 2)
    pos = []
    for q in qs:
        h = (S - 1) * q
        j = int(np.floor(h))
        pos.append((j, min(j + 1, S - 1), h - j))
    kth = sorted({r for j, j1, _ in pos for r in (j, j1, S - 1 - j, S - 1 - j1)})
    idx = np.argpartition(key, kth, axis=0)
    at = {r: idx[r][None, :] for r in kth}
    cols = {}
    for name, (x, increasing) in arrays.items():
        out = []
        for j, j1, t in pos:
            r0, r1 = (j, j1) if increasing else (S - 1 - j, S - 1 - j1)
            v0 = np.take_along_axis(x, at[r0], axis=0)[0]
            v1 = np.take_along_axis(x, at[r1], axis=0)[0]
            out.append(v0 * (v1 / v0) ** t)
        lo, hi = band_names(name, ci)
        cols.update({name: out[0], lo: out[1], hi: out[2]})
    return cols


def _summary(name: str, x: np.ndarray, ci: float) -> dict:
    med, lo, hi = _band(x, ci)
    lo_name, hi_name = band_names(name, ci)
    return {name: med, lo_name: lo, hi_name: hi}


# ---------------------------------------------------------------------------
# numeric solvers (vectorised over all elements at once)
# ---------------------------------------------------------------------------


def _root(fun: Callable, a: np.ndarray, b: np.ndarray, fa: np.ndarray, fb: np.ndarray, *, xtol: float,
          maxiter: int = 200) -> np.ndarray:
    """Elementwise root of ``fun`` on brackets ``[a, b]`` with ``fa * fb <= 0``.

    Regula falsi with the Illinois modification (superlinear, never leaves
    the bracket), falling back to bisection where the secant step is not
    finite.  An element stops moving once its step is below ``xtol`` or
    its function value is exactly zero; the loop ends when all have.
    """
    side = np.zeros(a.shape, dtype=np.int8)
    done = np.zeros(a.shape, dtype=bool)
    x = 0.5 * (a + b)
    for _ in range(maxiter):
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            x_new = (a * fb - b * fa) / (fb - fa)
        x_new = np.where(np.isfinite(x_new), np.clip(x_new, np.minimum(a, b), np.maximum(a, b)), 0.5 * (a + b))
        x_new = np.where(done, x, x_new)
        fx = fun(x_new)
        step = np.abs(x_new - x)
        x = x_new
        same_as_a = np.sign(fx) == np.sign(fa)  # the root lies in [x, b]: x replaces a
        fb = np.where(same_as_a & (side == -1), 0.5 * fb, fb)
        fa = np.where(~same_as_a & (side == 1), 0.5 * fa, fa)
        a = np.where(same_as_a, x, a)
        fa = np.where(same_as_a, fx, fa)
        b = np.where(same_as_a, b, x)
        fb = np.where(same_as_a, fb, fx)
        side = np.where(same_as_a, -1, 1).astype(np.int8)
        done |= (step <= xtol) | (fx == 0) | (np.abs(b - a) <= xtol)
        if done.all():
            break
    return x


def _log_cost_terms(cost: Callable, u: np.ndarray, h: float = 1e-4):
    """``log flops_per_token(N)`` and its elasticity ``d log g / d log N`` at ``N = e^u``."""
    vals = []
    for shift in (0.0, h, -h):
        g = np.asarray(cost(np.exp(u + shift)), dtype=np.float64)
        ok = np.isfinite(g) & (g > 0)
        if not np.all(ok):
            raise ValueError("cost(N) must return positive, finite FLOPs per token for every N; got "
                             f"{g[~ok].ravel()[0]!r}")
        try:
            vals.append(np.broadcast_to(np.log(g), u.shape))
        except ValueError:
            raise ValueError(f"cost(N) returned shape {g.shape} for N of shape {u.shape}; it must work "
                             "elementwise on a NumPy array") from None
    log_g, log_up, log_dn = vals
    eta = (log_up - log_dn) / (2 * h)
    return log_g, eta


def _solve_cost(P: Mapping, log_C: np.ndarray, cost: Callable, *, xtol: float = 1e-11) -> np.ndarray:
    """log N minimising ``L(N, C / cost(N))`` for every draw x budget.

    The first-order condition in ``u = log N`` is
    ``alpha A N^-alpha = beta B D^-beta (1 + eta)`` with
    ``D = C / (g(N) N)`` and ``eta = d log g / d log N``; its log is
    decreasing in ``u`` whenever ``N g(N)`` grows with ``N``, and is solved
    with a bracketed secant method (see :func:`_root`).
    """
    log_aA = np.log(P["alpha"]) + np.log(P["A"])
    log_bB = np.log(P["beta"]) + np.log(P["B"])
    alpha, beta = P["alpha"], P["beta"]

    def phi(u):
        log_g, eta = _log_cost_terms(cost, u)
        if np.any(1 + eta <= 0):
            raise ValueError("cost: training compute flops_per_token(N) * N * D must grow with N at fixed D "
                             "(d log flops_per_token / d log N > -1); this cost model has no compute-optimal size")
        log_D = log_C - log_g - u
        return (log_aA - alpha * u) - (log_bB - beta * log_D + np.log1p(eta))

    # Start from the C = 6 N D optimum; two secant steps (the first with the
    # slope -(alpha + beta) that phi has for a constant cost) land close to the
    # root, and a narrow bracket around that point is then checked.  Where it
    # does not hold the root, the bracket is six decades either side of u0.
    f = laws.frontier_coefficients(P)
    u0 = np.log(f["G"]) + f["a"] * (log_C - _LOG6)
    f0 = phi(u0)
    u1 = u0 + f0 / (alpha + beta)
    f1 = phi(u1)
    with np.errstate(divide="ignore", invalid="ignore"):
        u2 = np.where(f1 != f0, u1 - f1 * (u1 - u0) / (f1 - f0), u1)
    u2 = np.where(np.isfinite(u2), u2, u1)
    half = np.maximum(4 * np.abs(u2 - u1), 1e-8)
    a, b = u2 - half, u2 + half
    fa, fb = phi(a), phi(b)
    bad = ~((fa >= 0) & (fb <= 0))
    if bad.any():
        width = 6 * np.log(10.0)
        a, b = np.where(bad, u0 - width, a), np.where(bad, u0 + width, b)
        fa, fb = np.where(bad, phi(a), fa), np.where(bad, phi(b), fb)
        bad = ~((fa >= 0) & (fb <= 0))
        if bad.any():
            raise ValueError(f"cost: for {int(bad.sum())} draw x budget pairs the optimum under this cost model "
                             "is not within 1e6-fold of the C = 6 N D optimum; check that flops_per_token(N) is "
                             "FLOPs per token (about 6 for a dense transformer) and varies slowly with N")
    return _root(phi, a, b, fa, fb, xtol=xtol)


# ---------------------------------------------------------------------------
# allocation at a budget
# ---------------------------------------------------------------------------


def allocate(params: Mapping, budgets, *, ci: float | None = None, cost: Callable | None = None,
             log_noise=None, log_N_error=None, law=None, U=None) -> Allocation:
    """Compute-optimal model size, tokens and loss at each budget, per draw.

    Parameters
    ----------
    params : mapping
        Posterior draws ``E, A, B, alpha, beta`` (flat arrays of length S).
    budgets : array_like
        Training compute budgets C in FLOPs (positive, finite).
    ci : float, optional
        Probability mass of the equal-tailed intervals.
        Default :data:`bayesscale.DEFAULT_CI`.
    cost : callable, optional
        Another cost model: ``cost(N)`` returns training FLOPs per token for
        model size ``N`` (vectorised over a NumPy array), so that
        ``C = cost(N) * N * D``.  Default: ``C = 6 N D``, solved in closed
        form (:func:`bayesscale.laws.optimal_allocation`).  With a cost
        model the optimum is found numerically for every draw and budget at
        once, to about 1e-10 relative in N; ``N * cost(N)`` must grow with
        N.
    log_noise : array_like, optional
        Predictive noise draws on log loss, broadcastable to ``(S, n)`` or
        of shape ``(S,)``.  Without it, ``loss`` is the law's value at the
        optimum (parameter uncertainty only).
    log_N_error : array_like, optional
        Extrapolation error of log N_opt, ``(S, n)`` draws (see
        :func:`bayesscale.discrepancy.joint_draws`): the optimum moves to
        ``N_opt * exp(error)`` and ``D_opt`` follows from the budget.  The
        loss stays the law's value at its own optimum (plus ``log_noise``).
        Without it, the bands of ``N_opt``, ``D_opt`` and tokens per
        parameter are parameter uncertainty only.
    law : Law or str, optional
        The fitted law (:attr:`bayesscale.Posterior.law`).  ``None`` or the
        Chinchilla law: the closed forms.  Any other law: the numeric path
        (see "any law" at the end of this module).
    U : float, optional
        Unique training tokens, for laws that read them
        (``data_constrained``); default unlimited (``logU = +inf``).
        For a law without the closed form the frontier is
        :func:`bayesscale.frontier.solve` (``cost`` must then be
        jax-traceable); draws without an interior optimum are NaN and left
        out of the bands, and a compute-only law gives NaN ``N_opt``,
        ``D_opt`` with a finite ``loss`` (``table.attrs["note"]`` says why).

    Returns
    -------
    Allocation
        ``table``: one row per budget with columns ``C, N_opt, N_opt_lo80,
        N_opt_hi80, D_opt, D_opt_lo80, D_opt_hi80, tokens_per_param,
        tokens_per_param_lo80, tokens_per_param_hi80, loss, loss_lo80,
        loss_hi80`` (medians over draws and equal-tailed ``ci`` intervals;
        the suffix is the level, ``_lo95`` at ``ci=0.95``);
        ``draws``: ``N_opt, D_opt, tokens_per_param, loss``, each
        ``(S, n_budgets)``.

    Raises
    ------
    ValueError
        On non-positive or non-finite budgets, ``ci`` outside (0, 1),
        malformed params or noise, or a cost model without an optimum.

    Examples
    --------
    >>> from bayesscale.simulate import CHINCHILLA_FIT
    >>> alloc = allocate(CHINCHILLA_FIT, [5.76e23])
    >>> round(float(alloc.table["tokens_per_param"].iloc[0]), 1)
    18.4
    """
    law = _resolve_law(law)
    if law is not None:
        return _allocate_law(law, params, budgets, ci=ci, cost=cost, log_noise=log_noise, U=U,
                             log_N_error=log_N_error)
    p = _params(params)
    C = _positive(budgets, "budgets", unit=" (training FLOPs)")
    ci = _check_ci(ci)
    S = p["E"].shape[0]
    noise = _noise(log_noise, S, (C.size,))
    P = _col(p)
    log_C = np.log(C)[None, :]
    if cost is None:
        N, D = laws.optimal_allocation(P, C[None, :])
    else:
        if not callable(cost):
            raise ValueError(f"cost must be a callable flops_per_token(N), got {type(cost).__name__}")
        log_N = _solve_cost(P, np.broadcast_to(log_C, (S, C.size)), cost)
        log_g, _ = _log_cost_terms(cost, log_N)
        N, D = np.exp(log_N), np.exp(log_C - log_g - log_N)
    log_L = laws.log_loss(P, N, D)
    if noise is not None:
        log_L = log_L + noise
    N, D = _shift_optimum(N, D, C, cost, _noise(log_N_error, S, (C.size,)))
    draws = {"N_opt": N, "D_opt": D, "tokens_per_param": D / N, "loss": np.exp(log_L)}
    # At a fixed budget D and D/N fall as N grows (N * cost(N) grows with N), so one
    # ranking of N gives the quantiles of all three.
    cols = {"C": C}
    cols.update(_bands_by_rank(N, {"N_opt": (N, True), "D_opt": (D, False),
                                   "tokens_per_param": (draws["tokens_per_param"], False)}, ci))
    cols.update(_summary("loss", draws["loss"], ci))
    return Allocation(table=pd.DataFrame(cols), draws=draws, ci=ci)


def bayes_optimal_N(params: Mapping, budgets, *, log_noise=None, tol: float = 1e-10, law=None,
                    U=None) -> pd.DataFrame:
    """The model size minimising the posterior expected loss at each budget.

    A decision, not a quantile: for budget C it is the N minimising
    ``mean over draws of L_s(N, C / (6 N))`` (times ``exp(log_noise)``
    when given, i.e. the posterior predictive expected loss).  On a skewed
    posterior it differs from the median of the draws' ``N_opt``.

    Each draw's loss is ``E + A e^(-alpha u) + B (C/6)^(-beta) e^(beta u)``
    in ``u = log N``, a positive combination of exponentials and so convex;
    the expectation is convex too, with its minimum between the smallest
    and the largest per-draw optimum.  A safeguarded Newton iteration on the
    analytic derivative, inside that bracket, finds it for all budgets at
    once (no grid is needed).

    Parameters
    ----------
    params : mapping
        Posterior draws ``E, A, B, alpha, beta`` (for a
        :class:`bayesscale.Posterior`, see :func:`bayes_decision`).
    budgets : array_like
        Training compute in FLOPs (C = 6 N D).
    log_noise : array_like, optional
        Predictive noise on log loss, ``(S, n)`` or ``(S,)``.
    tol : float
        Convergence tolerance on ``log N``.
    law : Law or str, optional
        The fitted law (:attr:`bayesscale.Posterior.law`).  ``None`` or the
        Chinchilla law: the closed forms.  Any other law: the numeric path
        (see "any law" at the end of this module).
    U : float, optional
        Unique training tokens, for laws that read them
        (``data_constrained``); default unlimited (``logU = +inf``).
        Other laws: the expected loss is minimised over a grid of ``log N``
        spanning the draws' optima, refined by successive zooms (to ``tol``).

    Returns
    -------
    pandas.DataFrame
        Columns ``C, N_bayes, D_bayes, tokens_per_param, expected_loss``.
    """
    law = _resolve_law(law)
    if law is not None:
        return _bayes_law(law, params, budgets, log_noise=log_noise, tol=tol, U=U)
    p = _params(params)
    C = _positive(budgets, "budgets", unit=" (training FLOPs)")
    S = p["E"].shape[0]
    noise = _noise(log_noise, S, (C.size,))
    w = np.full((S, C.size), 1.0 / S) if noise is None else np.exp(noise) / S
    P = _col(p)
    log_c = (np.log(C) - _LOG6)[None, :]
    f = laws.frontier_coefficients(P)
    u_s = np.log(f["G"]) + f["a"] * log_c  # per-draw optima (S, n)
    lo, hi = u_s.min(axis=0), u_s.max(axis=0)
    log_A = np.log(P["A"])
    log_Bc = np.log(P["B"]) - P["beta"] * log_c
    alpha, beta = P["alpha"], P["beta"]

    def derivs(u):
        tA = np.exp(log_A - alpha * u)
        tB = np.exp(log_Bc + beta * u)
        d1 = np.sum(w * (beta * tB - alpha * tA), axis=0)
        d2 = np.sum(w * (beta**2 * tB + alpha**2 * tA), axis=0)
        return d1, d2

    u = np.clip(np.sum(w * u_s, axis=0) / np.sum(w, axis=0), lo, hi)
    for _ in range(100):
        d1, d2 = derivs(u)
        hi = np.where(d1 > 0, u, hi)
        lo = np.where(d1 < 0, u, lo)
        u_new = u - d1 / d2
        outside = (u_new < lo) | (u_new > hi)
        u_new = np.where(outside, 0.5 * (lo + hi), u_new)
        step = np.abs(u_new - u)
        u = u_new
        if np.all((step <= tol) | (hi - lo <= tol)):
            break
    N = np.exp(u)
    D = C / (laws.FLOPS_PER_PARAM_TOKEN * N)
    expected = np.sum(w * laws.loss(P, N[None, :], D[None, :]), axis=0)
    return pd.DataFrame({"C": C, "N_bayes": N, "D_bayes": D, "tokens_per_param": D / N,
                         "expected_loss": expected})


def bayes_decision(params, budgets, *, log_noise=None, tol: float = 1e-10, law=None, U=None) -> pd.DataFrame:
    """The N that minimises the posterior *expected* predictive loss at each budget.

    :func:`bayes_optimal_N` for a :class:`bayesscale.Posterior`: its draws,
    its law and, unless ``log_noise`` is given, its predictive noise at each
    budget (observation noise, a new budget's offset and beyond the data the
    calibrated extrapolation error).  A decision, not a quantile: it differs
    from the median of ``N_opt`` when the posterior is skewed.

    Parameters
    ----------
    params : Posterior or mapping
        The fit (or posterior draws, as for :func:`bayes_optimal_N`).
    budgets : array_like
        Training compute in FLOPs.
    log_noise, tol, law, U
        As for :func:`bayes_optimal_N`.

    Returns
    -------
    pandas.DataFrame
        Columns ``C, N_bayes, D_bayes, tokens_per_param, expected_loss``.
    """
    post, params, law = _unpack(params, law)
    if post is not None and log_noise is None:
        log_noise = _predictive_noise(post, _positive(budgets, "budgets", unit=" of FLOPs"))
    return bayes_optimal_N(params, budgets, log_noise=log_noise, tol=tol, law=law, U=U)


def prob_below(params, N, D, target, *, log_noise=None, law=None, U=None) -> np.ndarray:
    """Posterior probability that a planned run reaches a loss below ``target``.

    Parameters
    ----------
    params : mapping or Posterior
        Posterior draws ``E, A, B, alpha, beta`` (or the fitted law's
        parameters, with ``law=``), or a :class:`bayesscale.Posterior`,
        whose draws and law are then used.
    N, D : array_like
        Planned model size and training tokens.
    target : array_like
        Target loss.  ``N``, ``D`` and ``target`` broadcast together.
    log_noise : array_like, optional
        Predictive noise on log loss, broadcastable to ``(S,) + shape`` or
        of shape ``(S,)``.  Without it the probability covers parameter
        uncertainty only (whether the law's mean loss is below target);
        with it, whether an actual run's loss is.  With a posterior for
        ``params`` the default is its predictive noise at ``(N, D)``
        (:func:`bayesscale.posterior.log_noise`, as in
        :meth:`bayesscale.Posterior.predict`): whether the run itself ends
        below target.
    law : Law or str, optional
        The fitted law; default the Chinchilla law.
    U : array_like, optional
        Unique tokens of the planned run, for laws that read them
        (broadcast with ``N`` and ``D``); default unlimited.

    Returns
    -------
    numpy.ndarray
        ``P(loss < target)`` with the broadcast shape of the inputs (a 0-d
        array for scalar inputs).
    """
    post, params, law = _unpack(params, law)
    law = _resolve_law(law)
    p = _params(params) if law is None else _law_params(params, law)
    N = np.asarray(N, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    for name, a in (("N", N), ("D", D), ("target", target)):
        if a.size == 0 or not np.all(np.isfinite(a) & (a > 0)):
            raise ValueError(f"{name} must be positive and finite (and not empty)")
    try:
        shape = np.broadcast_shapes(N.shape, D.shape, target.shape)
    except ValueError:
        raise ValueError(f"N {N.shape}, D {D.shape} and target {target.shape} do not broadcast together") from None
    S = next(iter(p.values())).shape[0]
    if post is not None and log_noise is None:  # a posterior: the predictive noise of a new run at (N, D)
        Nb, Db = np.broadcast_arrays(N, D)
        log_noise = _predictive_noise(post, laws.FLOPS_PER_PARAM_TOKEN * Nb * Db).reshape(
            (S,) + (1,) * (len(shape) - Nb.ndim) + Nb.shape)
    P = {k: v.reshape((S,) + (1,) * len(shape)) for k, v in p.items()}
    if law is None:
        log_L = laws.log_loss(P, N, D)
    else:
        if U is not None and "logU" not in law.covariates:
            raise ValueError(f"law {law.name!r} does not read unique tokens; drop U=")
        log_L = law.log_loss_ND(P, N, D, U=U)
    if post is not None and "profile_trend" in post._natural:  # profile="trend": part of the run's mean
        from .posterior import profile

        Nb, Db = np.broadcast_arrays(N, D)
        log_L = log_L + profile(post, Nb, laws.FLOPS_PER_PARAM_TOKEN * Nb * Db).reshape(
            (S,) + (1,) * (len(shape) - Nb.ndim) + Nb.shape)
    noise = _noise(log_noise, S, shape)
    if noise is not None:
        log_L = log_L + noise
    return np.mean(log_L < np.log(target), axis=0)


# ---------------------------------------------------------------------------
# inverting the frontier
# ---------------------------------------------------------------------------


def _allocation_table(first: dict, draws: dict, ci: float) -> Allocation:
    cols = dict(first)
    for name, x in draws.items():
        cols.update(_summary(name, x, ci))
    return Allocation(table=pd.DataFrame(cols), draws=draws, ci=ci)


def best_D_for_N(params, N, *, C=None, ci: float | None = None, law=None, U=None) -> Allocation:
    """Training tokens for a model of fixed size ``N``.

    Without a compute constraint the loss falls with every extra token, so
    "the best D for N" needs a definition.  Two are offered:

    * ``C=None`` (default): the budget at which ``N`` *is* the
      compute-optimal size, and the tokens that go with it.  Per draw this
      inverts the frontier ``N_opt(C) = G (C/6)^a``:
      ``C*(N) = 6 (N / G)^(1/a)`` and ``D = D_opt(C*) = C* / (6 N)``.
      Training ``N`` on fewer tokens wastes compute on a too-large model;
      on more, a larger model would have been better for the same compute.
    * ``C`` given: the tokens are forced, ``D = C / (6 N)``; the table
      reports the loss this reaches and the penalty against the optimal
      allocation of the same compute.

    Parameters
    ----------
    params : mapping or Posterior
        Posterior draws ``E, A, B, alpha, beta`` (or the fitted law's
        parameters, with ``law=``), or a :class:`bayesscale.Posterior`,
        whose draws and law are then used.
    N : array_like
        Model sizes (parameters).
    C : array_like, optional
        Compute budgets, broadcast against ``N``.
    ci : float, optional
        Probability mass of the intervals.
        Default :data:`bayesscale.DEFAULT_CI`.
    law : Law or str, optional
        The fitted law (:attr:`bayesscale.Posterior.law`).  ``None`` or the
        Chinchilla law: the closed forms.  Any other law: the numeric path
        (see "any law" at the end of this module).
    U : float, optional
        Unique training tokens, for laws that read them
        (``data_constrained``); default unlimited (``logU = +inf``).
        Other laws: ``C*`` is found per draw by a bracketed secant search in
        ``log C`` on the numeric frontier.

    Returns
    -------
    Allocation
        ``C=None``: columns ``N``, then median/``_lo80``/``_hi80`` (at ``ci=0.8``) of ``C``,
        ``D``, ``tokens_per_param`` and ``loss`` (the law at ``(N, D)``).
        ``C`` given: columns ``N, C, D, tokens_per_param`` (fixed) and
        bands of ``loss``, ``loss_opt`` (optimal allocation of ``C``) and
        ``loss_penalty = loss - loss_opt``.
    """
    post, params, law = _unpack(params, law)
    law = _resolve_law(law)
    if law is not None:
        return _best_for_law(law, params, N, which="N", C=C, ci=ci, U=U)
    p = _params(params)
    Nv = _positive(N, "N", unit=" (model parameters)")
    ci = _check_ci(ci)
    P = _col(p)
    if C is None:
        f = laws.frontier_coefficients(P)
        log_c = (np.log(Nv)[None, :] - np.log(f["G"])) / f["a"]  # log(C/6)
        Cd = np.exp(log_c + _LOG6)
        Dd = np.exp(log_c - np.log(Nv)[None, :])
        Nd = np.broadcast_to(Nv[None, :], Cd.shape)
        draws = {"C": Cd, "D": Dd, "tokens_per_param": Dd / Nd, "loss": laws.loss(P, Nd, Dd)}
        return _allocation_table({"N": Nv}, draws, ci)
    return _forced(P, Nv, None, C, ci)


def best_N_for_D(params, D, *, C=None, ci: float | None = None, law=None, U=None) -> Allocation:
    """Model size for a fixed number of training tokens ``D``.

    The mirror image of :func:`best_D_for_N`:

    * ``C=None`` (default): the budget at which ``D`` is the
      compute-optimal token count, ``C*(D) = 6 (G D)^(1/b)``, and the model
      size that goes with it, ``N = N_opt(C*) = C* / (6 D)``.  Useful when
      the data set is fixed: a larger model than this would be better
      served by more data.
    * ``C`` given: the size is forced, ``N = C / (6 D)``; the table reports
      the loss and the penalty against the optimal allocation of ``C``.

    Parameters
    ----------
    params : mapping or Posterior
        Posterior draws ``E, A, B, alpha, beta`` (or the fitted law's
        parameters, with ``law=``), or a :class:`bayesscale.Posterior`,
        whose draws and law are then used.
    D : array_like
        Training tokens.
    C : array_like, optional
        Compute budgets, broadcast against ``D``.
    ci : float, optional
        Probability mass of the intervals.
        Default :data:`bayesscale.DEFAULT_CI`.
    law : Law or str, optional
        The fitted law (:attr:`bayesscale.Posterior.law`).  ``None`` or the
        Chinchilla law: the closed forms.  Any other law: the numeric path
        (see "any law" at the end of this module).
    U : float, optional
        Unique training tokens, for laws that read them
        (``data_constrained``); default unlimited (``logU = +inf``).

    Returns
    -------
    Allocation
        ``C=None``: columns ``D``, then median/``_lo80``/``_hi80`` (at ``ci=0.8``) of ``C``,
        ``N``, ``tokens_per_param`` and ``loss``.  ``C`` given: columns
        ``N, C, D, tokens_per_param`` and bands of ``loss``, ``loss_opt``
        and ``loss_penalty``.
    """
    post, params, law = _unpack(params, law)
    law = _resolve_law(law)
    if law is not None:
        return _best_for_law(law, params, D, which="D", C=C, ci=ci, U=U)
    p = _params(params)
    Dv = _positive(D, "D", unit=" (training tokens)")
    ci = _check_ci(ci)
    P = _col(p)
    if C is None:
        f = laws.frontier_coefficients(P)
        log_c = (np.log(Dv)[None, :] + np.log(f["G"])) / f["b"]  # log(C/6)
        Cd = np.exp(log_c + _LOG6)
        Nd = np.exp(log_c - np.log(Dv)[None, :])
        Dd = np.broadcast_to(Dv[None, :], Cd.shape)
        draws = {"C": Cd, "N": Nd, "tokens_per_param": Dd / Nd, "loss": laws.loss(P, Nd, Dd)}
        return _allocation_table({"D": Dv}, draws, ci)
    return _forced(P, None, Dv, C, ci)


def _forced(P: Mapping, N, D, C, ci: float) -> Allocation:
    """Loss of a forced allocation (one of N, D given with C) against the optimum."""
    C = _positive(C, "C", unit=" (training FLOPs)")
    given = N if N is not None else D
    try:
        given, C = np.broadcast_arrays(given, C)
    except ValueError:
        raise ValueError(f"C (length {C.size}) does not broadcast against the sizes (length {given.size})") from None
    other = C / (laws.FLOPS_PER_PARAM_TOKEN * given)
    N, D = (given, other) if N is not None else (other, given)
    L = laws.loss(P, N[None, :], D[None, :])
    L_opt = laws.loss(P, *laws.optimal_allocation(P, C[None, :]))
    draws = {"loss": L, "loss_opt": L_opt, "loss_penalty": L - L_opt}
    return _allocation_table({"N": N, "C": C, "D": D, "tokens_per_param": D / N}, draws, ci)


def compute_for_loss(params, target, *, ci: float | None = None, law=None, U=None) -> Allocation:
    """Least compute that reaches a target loss, with its optimal N and D.

    Along the compute-optimal frontier (C = 6 N D) the two power-law terms
    share one exponent, so the frontier loss is itself a power law::

        L_opt(C) = E + K (C / 6)^(-gamma),  gamma = alpha beta / (alpha + beta),
        K = A G^-alpha + B G^beta

    and ``C*(target) = 6 (K / (target - E))^(1/gamma)``, per draw, in
    closed form.  A draw with ``E >= target`` never reaches the target: its
    ``C`` (and ``N``, ``D``) is ``inf``, and a quantile that falls among
    such draws is ``inf`` too.

    Parameters
    ----------
    params : mapping or Posterior
        Posterior draws ``E, A, B, alpha, beta`` (or the fitted law's
        parameters, with ``law=``), or a :class:`bayesscale.Posterior`,
        whose draws and law are then used.
    target : array_like
        Target losses (law value, no observation noise).
    ci : float, optional
        Probability mass of the intervals.
        Default :data:`bayesscale.DEFAULT_CI`.
    law : Law or str, optional
        The fitted law (:attr:`bayesscale.Posterior.law`).  ``None`` or the
        Chinchilla law: the closed forms.  Any other law: the numeric path
        (see "any law" at the end of this module).
    U : float, optional
        Unique training tokens, for laws that read them
        (``data_constrained``); default unlimited (``logU = +inf``).
        Other laws: per draw, the budget whose frontier loss equals the
        target, by a bracketed secant search in ``log C`` on the numeric
        frontier (budgets 1e6 to 1e42 FLOPs; a target not reached by then
        is ``inf``).  A compute-only law inverts ``L(C)`` directly; its
        ``N_opt``, ``D_opt`` are NaN.

    Returns
    -------
    Allocation
        ``table``: columns ``target, reachable`` (share of draws with
        ``E < target``), then median/``_lo80``/``_hi80`` (at ``ci=0.8``) of ``C``, ``N_opt``
        and ``D_opt``; ``draws``: ``C, N_opt, D_opt``, each
        ``(S, n_targets)``.
    """
    post, params, law = _unpack(params, law)
    law = _resolve_law(law)
    if law is not None:
        return _compute_for_loss_law(law, params, target, ci=ci, U=U)
    p = _params(params)
    T = _positive(target, "target", unit=" (a loss)")
    ci = _check_ci(ci)
    P = _col(p)
    f = laws.frontier_coefficients(P)
    log_G = np.log(f["G"])
    alpha, beta = P["alpha"], P["beta"]
    log_K = np.logaddexp(np.log(P["A"]) - alpha * log_G, np.log(P["B"]) + beta * log_G)
    gamma = alpha * beta / (alpha + beta)
    gap = T[None, :] - P["E"]
    reach = gap > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_c = np.where(reach, (log_K - np.log(np.where(reach, gap, 1.0))) / gamma, np.inf)
        log_N = log_G + f["a"] * log_c
        log_D = log_c - log_N
    log_D = np.where(reach, log_D, np.inf)
    draws = {"C": np.exp(log_c + _LOG6), "N_opt": np.exp(log_N), "D_opt": np.exp(log_D)}
    return _allocation_table({"target": T, "reachable": reach.mean(axis=0)}, draws, ci)


def frontier_exponents(params, *, ci: float | None = None, law=None, budgets=None, U=None) -> pd.DataFrame:
    """Posterior of the frontier's exponents and coefficient (Chinchilla Table 2).

    ``N_opt = G (C/6)^a`` and ``D_opt = G^-1 (C/6)^b`` with
    ``a = beta / (alpha + beta)``, ``b = alpha / (alpha + beta)`` and
    ``G = (alpha A / (beta B))^(1 / (alpha + beta))``.

    Parameters
    ----------
    params : mapping or Posterior
        Posterior draws ``E, A, B, alpha, beta`` (or the fitted law's
        parameters, with ``law=``), or a :class:`bayesscale.Posterior`,
        whose draws and law are then used.
    ci : float, optional
        Probability mass of the intervals.
        Default :data:`bayesscale.DEFAULT_CI`.
    law : Law or str, optional
        The fitted law (:attr:`bayesscale.Posterior.law`).  ``None`` or the
        Chinchilla law: the closed forms.  Any other law: the numeric path
        (see "any law" at the end of this module).
    U : float, optional
        Unique training tokens, for laws that read them
        (``data_constrained``); default unlimited (``logU = +inf``).
        Other laws have no power-law frontier; their exponents are *local*:
        ``a(C) = d log N_opt / d log C`` and ``b(C) = d log D_opt / d log C``
        by central differences (step 0.01 in ``log C``) on the numeric
        frontier, per draw, and ``G(C) = N_opt / (C/6)^a``.
    budgets : array_like, optional
        Budgets (FLOPs) at which to give the local exponents; required for
        laws without the closed form.  With the Chinchilla law and budgets,
        the closed form is given in the same per-budget layout.  With a
        posterior of another law the default is the largest fitted budget,
        10x and 100x it; with a ``kaplan_steps`` posterior this is
        :func:`bayesscale.steps_analysis.frontier_exponents` (the exponents
        of ``N``, ``B`` and ``S_min`` against ``C_min``, and of ``N``
        against ``C`` at a fixed batch, fitted over ``budgets``).

    Returns
    -------
    pandas.DataFrame
        Without ``budgets`` (Chinchilla law): index ``a, b, G``; columns
        ``median, lo80, hi80, mean, sd`` (the level in the name: ``lo95,
        hi95`` at ``ci=0.95``).  The draws are
        :func:`bayesscale.laws.frontier_coefficients` of ``params``.
        With ``budgets``: rows ``a, b, G`` for each budget (the index
        repeats; ``df.loc["a"]`` gives one row per budget) and a column
        ``C``; ``df.attrs["note"]`` says how they were computed.  A
        compute-only law gives NaN.
    """
    post, params, law = _unpack(params, law)
    if post is not None:
        if post.law.name == "kaplan_steps":
            from .steps_analysis import frontier_exponents as steps_exponents

            return steps_exponents(post, ci=ci, budgets=budgets)
        if budgets is None and post.law is not laws.LAWS["chinchilla"]:
            budgets = post.runs.C.max() * np.array([1.0, 10.0, 100.0])
    law = _resolve_law(law)
    if law is not None:
        return _frontier_exponents_law(law, params, budgets, ci=ci, U=U)
    p = _params(params)
    ci = _check_ci(ci)
    f = laws.frontier_coefficients(p)
    if budgets is not None:
        C = _positive(budgets, "budgets", unit=" (training FLOPs)")
        S = p["E"].shape[0]
        df = _exponent_table({k: np.broadcast_to(np.asarray(v)[:, None], (S, C.size)) for k, v in f.items()},
                             C, ci)
        df.attrs["note"] = "closed form: a = beta / (alpha + beta), b = alpha / (alpha + beta), the same at every C"
        return df
    rows = {}
    lo_name, hi_name = band_names("", ci)
    for k in ("a", "b", "G"):
        x = np.asarray(f[k], dtype=np.float64)
        med, lo, hi = _band(x, ci)
        rows[k] = {"median": float(med), lo_name: float(lo), hi_name: float(hi), "mean": float(x.mean()),
                   "sd": float(x.std(ddof=1)) if x.size > 1 else 0.0}
    return pd.DataFrame.from_dict(rows, orient="index")


# ---------------------------------------------------------------------------
# the cost of deviating from the optimum
# ---------------------------------------------------------------------------


def _excess_terms(p: Mapping, C: float):
    """Per-draw ``r = (A / N_opt^alpha) / (B / D_opt^beta)`` at budget C, ``(S,)``.

    By the first-order condition ``r = beta / alpha`` under C = 6 N D; it is
    computed from the allocation rather than assumed.
    """
    N_opt, D_opt = laws.optimal_allocation(p, C)
    log_r = (np.log(p["A"]) - p["alpha"] * np.log(N_opt)) - (np.log(p["B"]) - p["beta"] * np.log(D_opt))
    return np.exp(log_r), N_opt, D_opt


def _scalar_budget(C) -> float:
    c = _positive(C, "C", unit=" (training FLOPs)")
    if c.size != 1:
        raise ValueError(f"C must be a single compute budget, got {c.size} values; call once per budget")
    return float(c[0])


def _check_threshold(threshold) -> float:
    try:
        thr = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a positive number, got {threshold!r}") from None
    if not (np.isfinite(thr) and thr > 0):
        raise ValueError(f"threshold must be a positive fraction of extra compute (0.2 = 20%), got {threshold!r}")
    return thr


def excess_compute(params, C, k=None, *, ci: float | None = None, law=None, U=None) -> DrawTable:
    """Extra compute and tokens needed at a non-optimal model size (Kaplan et al. 2020, Fig. 12).

    For a model of size ``N = k N_opt(C)`` the loss ``L_opt`` of the optimal
    allocation at ``C`` is reached with ``D'`` tokens where
    ``B / D'^beta = L_opt - E - A / (k N_opt)^alpha``; if the right side is
    not positive the model is too small ever to reach ``L_opt`` and the
    draw's ratios are ``inf``.  The compute is ``C' = 6 k N_opt D'``.
    Written relative to the optimum,
    ``D' / D_opt = (1 + r (1 - k^-alpha))^(-1/beta)`` with
    ``r = (A N_opt^-alpha) / (B D_opt^-beta)`` (which equals
    ``beta / alpha`` at the optimum, so under C = 6 N D the curve does not
    depend on ``C``), and ``C' / C = k D' / D_opt``: exactly 1 at
    ``k = 1``, above 1 elsewhere.

    Parameters
    ----------
    params : mapping or Posterior
        Posterior draws ``E, A, B, alpha, beta`` (or the fitted law's
        parameters, with ``law=``), or a :class:`bayesscale.Posterior`,
        whose draws and law are then used.
    C : float
        The compute budget defining ``N_opt`` and ``L_opt``.
    k : array_like, optional
        Model sizes as multiples of ``N_opt``; default
        ``np.geomspace(0.25, 4, 49)``.
    ci : float, optional
        Probability mass of the intervals.
        Default :data:`bayesscale.DEFAULT_CI`.
    law : Law or str, optional
        The fitted law (:attr:`bayesscale.Posterior.law`).  ``None`` or the
        Chinchilla law: the closed forms.  Any other law: the numeric path
        (see "any law" at the end of this module).
    U : float, optional
        Unique training tokens, for laws that read them
        (``data_constrained``); default unlimited (``logU = +inf``).
        Other laws: ``N_opt``, ``L_opt`` from the numeric frontier and ``D'``
        per draw by a bracketed secant search in ``log D`` on
        ``L(k N_opt, D') = L_opt``.

    Returns
    -------
    DrawTable
        ``table``: columns ``k, reachable`` (share of draws that reach
        ``L_opt`` at that size), then median/``_lo80``/``_hi80`` (at ``ci=0.8``) of
        ``excess_compute`` (``C' / C``) and ``excess_tokens``
        (``D' / D_opt``); ``draws``: those two, ``(S, n_k)``.
    """
    post, params, law = _unpack(params, law)
    k = np.geomspace(0.25, 4, 49) if k is None else k
    law = _resolve_law(law)
    if law is not None:
        return _excess_compute_law(law, params, C, k, ci=ci, U=U)
    p = _params(params)
    C = _scalar_budget(C)
    kv = _positive(k, "k", unit=" (multiples of the optimal size)")
    ci = _check_ci(ci)
    r, _, _ = _excess_terms(p, C)
    alpha, beta = p["alpha"][:, None], p["beta"][:, None]
    rel = 1.0 + r[:, None] * (1.0 - kv[None, :] ** -alpha)
    reach = rel > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        tokens = np.where(reach, np.exp(-np.log(np.where(reach, rel, 1.0)) / beta), np.inf)
    draws = {"excess_compute": kv[None, :] * tokens, "excess_tokens": tokens}
    cols = {"k": kv, "reachable": reach.mean(axis=0)}
    for name, x in draws.items():
        cols.update(_summary(name, x, ci))
    return DrawTable(table=pd.DataFrame(cols), draws=draws, ci=ci)


def efficient_size_range(params, C, *, threshold: float = 0.2, ci: float | None = None, law=None,
                         U=None) -> SizeRange:
    """The range of model sizes whose excess compute stays within ``threshold``.

    Per draw, the excess compute ``C'/C`` of :func:`excess_compute` falls
    monotonically in ``k`` below 1 and rises above 1, so the acceptable
    sizes form one interval ``[k_lo, k_hi]`` around ``k = 1``; its endpoints
    are found by bisection in ``log k`` for all draws at once.  Kaplan et
    al. (2020) report about 0.6x to 2.2x for 20% extra compute.

    Parameters
    ----------
    params : mapping or Posterior
        Posterior draws ``E, A, B, alpha, beta`` (or the fitted law's
        parameters, with ``law=``), or a :class:`bayesscale.Posterior`,
        whose draws and law are then used.
    C : float
        The compute budget.
    threshold : float
        Largest accepted excess compute, as a fraction (0.2 = 20% more).
    ci : float, optional
        Probability mass of the endpoints' intervals.
        Default :data:`bayesscale.DEFAULT_CI`.
    law : Law or str, optional
        The fitted law (:attr:`bayesscale.Posterior.law`).  ``None`` or the
        Chinchilla law: the closed forms.  Any other law: the numeric path
        (see "any law" at the end of this module).
    U : float, optional
        Unique training tokens, for laws that read them
        (``data_constrained``); default unlimited (``logU = +inf``).
        Other laws: the excess compute of :func:`excess_compute` per draw,
        its crossings of ``1 + threshold`` by bisection in ``log k`` (within
        1e8-fold of ``N_opt``; no crossing: ``k_lo = 0`` or ``k_hi = inf``).

    Returns
    -------
    SizeRange
        Medians and bands of ``k_lo`` and ``k_hi`` (and the sizes in
        parameters), per-draw endpoints, and :attr:`SizeRange.sentence`.
    """
    post, params, law = _unpack(params, law)
    law = _resolve_law(law)
    if law is not None:
        return _efficient_size_range_law(law, params, C, threshold=threshold, ci=ci, U=U)
    p = _params(params)
    C = _scalar_budget(C)
    thr = _check_threshold(threshold)
    ci = _check_ci(ci)
    r, N_opt, _ = _excess_terms(p, C)
    alpha, beta = p["alpha"], p["beta"]
    log_thr = np.log1p(thr)

    def excess(v):  # log(C'/C) - log(1 + threshold) at k = e^v; +inf where unreachable
        rel = 1.0 + r * (1.0 - np.exp(-alpha * v))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = v - np.log(np.where(rel > 0, rel, 1.0)) / beta - log_thr
        return np.where(rel > 0, out, np.inf)

    def bisect(a, b):  # excess(a) > 0 >= excess(b) or the reverse; returns the crossing
        fa = excess(a)
        for _ in range(200):
            m = 0.5 * (a + b)
            fm = excess(m)
            left = np.sign(fm) == np.sign(fa)
            a, fa = np.where(left, m, a), np.where(left, fm, fa)
            b = np.where(left, b, m)
            if np.all(np.abs(b - a) <= 1e-13):
                break
        return 0.5 * (a + b)

    v_min = -np.log1p(1.0 / r) / alpha  # below this size L_opt is out of reach
    v_max = log_thr + np.log1p(r) / beta + 1.0  # excess(v_max) > 0
    k_lo = np.exp(bisect(v_min, np.zeros_like(r)))
    k_hi = np.exp(bisect(v_max, np.zeros_like(r)))
    rows = {}
    lo_name, hi_name = band_names("", ci)
    N_lo, N_hi = band_names("N", ci)
    for name, kd in (("k_lo", k_lo), ("k_hi", k_hi)):
        med, lo, hi = _band(kd, ci)
        nmed, nlo, nhi = _band(kd * N_opt, ci)
        rows[name] = {"median": float(med), lo_name: float(lo), hi_name: float(hi),
                      "N": float(nmed), N_lo: float(nlo), N_hi: float(nhi)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    return SizeRange(C=C, threshold=thr, ci=ci, table=table, draws={"k_lo": k_lo, "k_hi": k_hi})


# ---------------------------------------------------------------------------
# any law: the numeric path (bayesscale.frontier) for laws without the closed forms
# ---------------------------------------------------------------------------
#
# The public functions above take ``law=``.  ``None`` or the Chinchilla law keeps the closed
# forms; any other :class:`bayesscale.Law` goes through the functions below:
#
# * the law is evaluated with :meth:`bayesscale.Law.evaluate` (NumPy, over draws); a law that
#   reads ``logU`` (``data_constrained``) gets ``U`` unique tokens when the caller passes ``U=``,
#   else ``logU = +inf`` (unlimited unique data, no repetition);
# * the compute-optimal frontier is :func:`bayesscale.frontier.solve` (JAX/optimistix, per draw
#   and budget), with the law wrapped as ``(p, log_N, log_D) -> log L``;
# * inverting the frontier (the budget at which N, D or the loss takes a value) is a bracketed
#   secant search in ``log C`` (:func:`_root`) over per-draw budgets, from a coarse bracket on a
#   shared grid of budgets;
# * a law with no N/D covariates (``compute_only``: ``L(C)``) has no N_opt, D_opt: those are NaN
#   (``table.attrs["note"]`` says why), while the loss at a budget is defined.

#: Budgets (FLOPs) of the coarse grid that brackets frontier inversions.
_INVERT_GRID = np.geomspace(1e6, 1e42, 37)
#: Step in log C of the finite differences of the local frontier exponents.
_SLOPE_STEP = 1e-2

_NOTE_NO_SPLIT = ("law {name!r} reads only the compute C (covariates {covs}), so it does not say how to split "
                  "a budget between N and D: N_opt, D_opt and everything derived from them are NaN; the loss "
                  "at a budget is defined.")


def _resolve_law(law):
    """``None`` for the closed-form Chinchilla path, else the :class:`bayesscale.Law`."""
    if law is None:
        return None
    law = laws.get_law(law)
    return None if law is laws.LAWS["chinchilla"] else law


def _law_params(params: Mapping, law) -> dict:
    """Flat float64 arrays of draws of ``law.params``, of a common length S."""
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a mapping of posterior draws with keys {', '.join(law.params)}; "
                         f"got {type(params).__name__}")
    missing = [k for k in law.params if k not in params]
    if missing:
        raise ValueError(f"params lacks {', '.join(missing)} of law {law.name!r}: give a dict of posterior draws "
                         f"with keys {', '.join(law.params)} (for example Posterior.law_params)")
    out = {}
    for k in law.params:
        a = np.asarray(params[k], dtype=np.float64)
        if a.ndim > 1:
            raise ValueError(f"params[{k!r}] has shape {a.shape}; give a flat array of draws "
                             "(reshape chains x draws with .reshape(-1))")
        a = np.atleast_1d(a)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"params[{k!r}] has draws that are not finite")
        out[k] = a
    sizes = {a.size for a in out.values()} - {1}
    if len(sizes) > 1:
        raise ValueError("params arrays have different numbers of draws: "
                         + ", ".join(f"{k}: {v.size}" for k, v in out.items()))
    S = sizes.pop() if sizes else 1
    if S == 0:
        raise ValueError("params holds no draws (empty arrays)")
    return {k: np.broadcast_to(a, (S,)) for k, a in out.items()}


def _check_U(U, law):
    if U is None:
        return None
    u = np.asarray(U, dtype=np.float64)
    if u.ndim != 0 or not (np.isfinite(u) or np.isposinf(u)) or u <= 0:
        raise ValueError(f"U must be one positive number of unique training tokens, got {U!r}")
    if "logU" not in law.covariates:
        raise ValueError(f"law {law.name!r} does not read unique tokens (covariates {list(law.covariates)}); "
                         "drop U=")
    return float(u)


def _eval(law, P: Mapping, log_N, log_D, U=None) -> np.ndarray:
    """``log L`` of the law at ``(log N, log D)`` for draws ``P`` (broadcasting)."""
    cov = {"logN": np.asarray(log_N, dtype=np.float64), "logD": np.asarray(log_D, dtype=np.float64)}
    if U is not None and "logU" in law.covariates:
        cov["logU"] = np.log(U) + 0.0 * cov["logN"]
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return law.evaluate(P, cov)


def _eval_C(law, P: Mapping, log_C) -> np.ndarray:
    """``log L`` of a compute-only law at ``log C``."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return law.evaluate(P, {"logC": np.asarray(log_C, dtype=np.float64)})


def _splits(law) -> bool:
    """Whether the law depends on N and D separately (a frontier exists)."""
    return "logN" in law.covariates or "logD" in law.covariates


_ND_FNS: dict = {}


def _nd_fn(law, shift: bool = False):
    """The law as ``(p, log_N, log_D) -> log L`` for :mod:`bayesscale.frontier` (one object per law).

    ``p["_logU"]`` carries the unique tokens of laws that read them.  With ``shift``
    the tokens are ``log_D + p["_shift"]``: a budget ``C0`` then stands for ``C0 e^shift``
    per draw, so one call solves pairs with different budgets.
    """
    key = (id(law), shift)
    hit = _ND_FNS.get(key)
    if hit is not None and hit[0] is law:
        return hit[1]
    names = law.covariates

    def fn(p, log_N, log_D):
        if shift:
            log_D = log_D + p["_shift"]
        cov = {"logN": log_N, "logD": log_D}
        if "logU" in names:
            cov["logU"] = p["_logU"] + 0.0 * log_N
        if "logC" in names:
            cov["logC"] = _LOG6 + log_N + log_D
        return law.log_loss({k: p[k] for k in law.params}, *(cov[c] for c in names))

    _ND_FNS[key] = (law, fn)
    return fn


def _with_U(law, P: Mapping, U) -> dict:
    P = dict(P)
    if "logU" in law.covariates:
        P["_logU"] = np.inf if U is None else float(np.log(U))
    return P


def _solve(law, P: Mapping, budgets, U=None, cost=None):
    """The numeric frontier ``(S, B)`` of the law (see :func:`bayesscale.frontier.solve`)."""
    from . import frontier

    return frontier.solve(_nd_fn(law), _with_U(law, P, U), budgets, cost=cost)


def _solve_pairs(law, P: Mapping, log_C: np.ndarray, U=None):
    """Frontier at a budget per draw x input pair: ``log N_opt, log D_opt, log L_opt`` of ``log_C``'s shape.

    ``P`` holds ``(S,)`` draws and ``log_C`` is ``(S, n)``; every pair becomes one "draw" of a
    single shared budget ``C0`` (the largest) with its tokens shifted by ``log C - log C0``.
    """
    from . import frontier

    S, n = log_C.shape
    lc = log_C.reshape(-1)
    c0 = float(np.max(lc))
    Q = {k: np.repeat(np.asarray(v, dtype=np.float64), n) for k, v in P.items()}
    Q["_shift"] = lc - c0
    Q = _with_U(law, Q, U)
    fr = frontier.solve(_nd_fn(law, shift=True), Q, [np.exp(c0)])
    log_N = np.log(fr.N_opt[:, 0])
    log_D = np.log(fr.D_opt[:, 0]) + Q["_shift"]
    log_L = np.log(fr.loss[:, 0])
    return log_N.reshape(S, n), log_D.reshape(S, n), log_L.reshape(S, n)


def _invert(law, P: Mapping, values: np.ndarray, which: str, U=None):
    """Per draw, the budget at which the frontier's ``which`` (``"N"``, ``"D"``, ``"L"``) equals ``values``.

    ``log N_opt`` and ``log D_opt`` grow with ``log C``, the frontier loss falls.  A coarse grid of
    budgets (:data:`_INVERT_GRID`) brackets each crossing; a bracketed secant search in ``log C``
    refines it to 1e-11.  Returns ``log C, log N, log D, log L`` ``(S, n)``, and the mask of pairs
    whose crossing lies on the grid (others: ``log C = +inf`` for a loss never reached, NaN else).
    """
    idx = {"N": 0, "D": 1, "L": 2}[which]
    sign = -1.0 if which == "L" else 1.0
    t = np.log(values)[None, None, :]
    grid = np.log(_INVERT_GRID)
    fr = _solve(law, P, _INVERT_GRID, U=U)
    q = np.log(np.stack([fr.N_opt, fr.D_opt, fr.loss])[idx])  # (S, K)
    H = sign * (q[:, :, None] - t)  # increasing in log C; NaN where no interior optimum
    above = H >= 0
    found = above.any(axis=1) & ~above[:, 0, :]
    k = np.argmax(above, axis=1)  # first grid point at or past the crossing (S, n)
    k = np.where(found, k, 1)
    fa = np.take_along_axis(H, (k - 1)[:, None, :], axis=1)[:, 0]
    fb = np.take_along_axis(H, k[:, None, :], axis=1)[:, 0]
    found &= np.isfinite(fa) & np.isfinite(fb)
    a, b = grid[k - 1], grid[k]
    fa, fb = np.where(found, fa, -1.0), np.where(found, fb, 1.0)

    def fun(x):
        out = _solve_pairs(law, P, x, U)[idx]
        return sign * (out - t[0])

    x = _root(fun, a, b, fa, fb, xtol=1e-11)
    log_N, log_D, log_L = _solve_pairs(law, P, x, U)
    never = ~above.any(axis=1)  # past the whole grid: unreachable (a loss) or beyond 1e42 FLOPs
    bad = ~found
    x = np.where(found, x, np.where(never & (which == "L"), np.inf, np.nan))
    fill = np.where(never & (which == "L"), np.inf, np.nan)
    log_N, log_D, log_L = (np.where(bad, fill, v) for v in (log_N, log_D, log_L))
    return x, log_N, log_D, log_L, found


def _note_missing(table: pd.DataFrame, law, frac_nan: float, what: str = "N_opt") -> None:
    if not _splits(law):
        table.attrs["note"] = _NOTE_NO_SPLIT.format(name=law.name, covs=list(law.covariates))
    elif frac_nan > 0:
        table.attrs["note"] = (f"law {law.name!r} has no interior compute-optimal {what} for {frac_nan:.1%} of "
                               "draw x input pairs (the loss keeps falling towards N = 1 or D = 1 along the "
                               "budget); those draws are NaN and left out of the bands.")


def _shift_optimum(N, D, C, cost, shift):
    """Move the optimum to ``N exp(shift)`` (extrapolation error of log N_opt); D follows from the budget."""
    if shift is None or not np.any(shift != 0):
        return N, D
    N = N * np.exp(shift)
    if cost is None:
        return N, C[None, :] / (laws.FLOPS_PER_PARAM_TOKEN * N)
    log_g, _ = _log_cost_terms(cost, np.log(N))
    return N, np.exp(np.log(C)[None, :] - log_g - np.log(N))


def _allocate_law(law, params, budgets, *, ci, cost, log_noise, U, log_N_error=None) -> Allocation:
    P = _law_params(params, law)
    C = _positive(budgets, "budgets", unit=" (training FLOPs)")
    ci = _check_ci(ci)
    U = _check_U(U, law)
    if cost is not None and not callable(cost):
        raise ValueError(f"cost must be a callable flops_per_token(N), got {type(cost).__name__}")
    S = next(iter(P.values())).shape[0]
    noise = _noise(log_noise, S, (C.size,))
    if _splits(law):
        fr = _solve(law, P, C, U=U, cost=cost)
        N, D = np.asarray(fr.N_opt), np.asarray(fr.D_opt)
        log_L = np.log(fr.loss)
        N, D = _shift_optimum(N, D, C, cost, _noise(log_N_error, S, (C.size,)))
    else:
        N = D = np.full((S, C.size), np.nan)
        log_L = _eval_C(law, {k: v[:, None] for k, v in P.items()}, np.log(C)[None, :]) + np.zeros((S, C.size))
    if noise is not None:
        log_L = log_L + noise
    draws = {"N_opt": N, "D_opt": D, "tokens_per_param": D / N, "loss": np.exp(log_L)}
    cols = {"C": C}
    if np.isnan(N).any():
        for name in ("N_opt", "D_opt", "tokens_per_param"):
            cols.update(_summary(name, draws[name], ci))
    else:
        cols.update(_bands_by_rank(N, {"N_opt": (N, True), "D_opt": (D, False),
                                       "tokens_per_param": (draws["tokens_per_param"], False)}, ci))
    cols.update(_summary("loss", draws["loss"], ci))
    table = pd.DataFrame(cols)
    _note_missing(table, law, float(np.isnan(N).mean()))
    return Allocation(table=table, draws=draws, ci=ci)


def _bayes_law(law, params, budgets, *, log_noise, tol, U) -> pd.DataFrame:
    """Minimise the posterior expected loss over ``log N`` by a grid and successive zooms."""
    P = _law_params(params, law)
    C = _positive(budgets, "budgets", unit=" (training FLOPs)")
    U = _check_U(U, law)
    S = next(iter(P.values())).shape[0]
    noise = _noise(log_noise, S, (C.size,))
    w = np.full((S, C.size), 1.0 / S) if noise is None else np.exp(noise) / S
    log_c6 = np.log(C) - _LOG6
    Pc = {k: v[:, None, None] for k, v in P.items()}
    if not _splits(law):
        L = np.exp(_eval_C(law, {k: v[:, None] for k, v in P.items()}, np.log(C)[None, :]))
        nan = np.full(C.size, np.nan)
        df = pd.DataFrame({"C": C, "N_bayes": nan, "D_bayes": nan, "tokens_per_param": nan,
                           "expected_loss": np.sum(w * L, axis=0)})
        _note_missing(df, law, 1.0)
        return df
    u_s = np.log(_solve(law, P, C, U=U).N_opt)  # per-draw optima (S, n), NaN where none
    with np.errstate(all="ignore"):
        lo = np.where(np.isnan(u_s).all(axis=0), 0.0, np.nanmin(u_s, axis=0)) - 1.0
        hi = np.where(np.isnan(u_s).all(axis=0), log_c6, np.nanmax(u_s, axis=0)) + 1.0
    lo, hi = np.clip(lo, 0.0, log_c6), np.clip(hi, 0.0, log_c6)
    n_grid = 33

    def expected(u):  # (G, n) -> (G, n)
        log_L = _eval(law, Pc, u[None], log_c6[None, None, :] - u[None], U)
        return np.sum(w[:, None, :] * np.exp(log_L), axis=0)

    t = np.linspace(0.0, 1.0, n_grid)[:, None]
    for _ in range(60):
        grid = lo[None, :] + t * (hi - lo)[None, :]
        f = expected(grid)
        f = np.where(np.isfinite(f), f, np.inf)
        k = np.argmin(f, axis=0)
        cols = np.arange(C.size)
        lo = grid[np.maximum(k - 1, 0), cols]
        hi = grid[np.minimum(k + 1, n_grid - 1), cols]
        if np.all(hi - lo <= tol):
            break
    u = 0.5 * (lo + hi)
    N = np.exp(u)
    D = C / (laws.FLOPS_PER_PARAM_TOKEN * N)
    return pd.DataFrame({"C": C, "N_bayes": N, "D_bayes": D, "tokens_per_param": D / N,
                         "expected_loss": expected(u[None, :])[0]})


def _best_for_law(law, params, given, *, which: str, C, ci, U) -> Allocation:
    """:func:`best_D_for_N` (``which="N"``) and :func:`best_N_for_D` (``which="D"``) for any law."""
    P = _law_params(params, law)
    name = "N" if which == "N" else "D"
    v = _positive(given, name, unit=" (model parameters)" if which == "N" else " (training tokens)")
    ci = _check_ci(ci)
    U = _check_U(U, law)
    S = next(iter(P.values())).shape[0]
    if C is not None:
        return _forced_law(law, P, v if which == "N" else None, v if which == "D" else None, C, ci, U)
    if _splits(law):
        log_C, log_N, log_D, log_L, _ = _invert(law, P, v, which, U)
    else:
        log_C = log_N = log_D = log_L = np.full((S, v.size), np.nan)
    log_given = np.broadcast_to(np.log(v)[None, :], log_C.shape)
    if which == "N":
        log_N = np.where(np.isnan(log_N), np.nan, log_given)  # exact, as in the closed form
        Nd, Dd = np.exp(log_N), np.exp(log_D)
        draws = {"C": np.exp(log_C), "D": Dd, "tokens_per_param": Dd / Nd, "loss": np.exp(log_L)}
    else:
        log_D = np.where(np.isnan(log_D), np.nan, log_given)
        Nd, Dd = np.exp(log_N), np.exp(log_D)
        draws = {"C": np.exp(log_C), "N": Nd, "tokens_per_param": Dd / Nd, "loss": np.exp(log_L)}
    cols = {name: v}
    for k, x in draws.items():
        cols.update(_summary(k, x, ci))
    table = pd.DataFrame(cols)
    _note_missing(table, law, float(np.isnan(log_C).mean()), "allocation")
    return Allocation(table=table, draws=draws, ci=ci)


def _forced_law(law, P: Mapping, N, D, C, ci: float, U) -> Allocation:
    C = _positive(C, "C", unit=" (training FLOPs)")
    given = N if N is not None else D
    try:
        given, C = np.broadcast_arrays(given, C)
    except ValueError:
        raise ValueError(f"C (length {C.size}) does not broadcast against the sizes (length {given.size})") from None
    other = C / (laws.FLOPS_PER_PARAM_TOKEN * given)
    N, D = (given, other) if N is not None else (other, given)
    Pc = {k: v[:, None] for k, v in P.items()}
    L = np.exp(_eval(law, Pc, np.log(N)[None, :], np.log(D)[None, :], U))
    if _splits(law):
        L_opt = np.asarray(_solve(law, P, C, U=U).loss)
    else:
        L_opt = np.exp(_eval_C(law, Pc, np.log(C)[None, :]))
    draws = {"loss": L, "loss_opt": L_opt, "loss_penalty": L - L_opt}
    cols = {"N": N, "C": C, "D": D, "tokens_per_param": D / N}
    for name, x in draws.items():
        cols.update(_summary(name, x, ci))
    table = pd.DataFrame(cols)
    _note_missing(table, law, float(np.isnan(L_opt).mean()))
    return Allocation(table=table, draws=draws, ci=ci)


def _compute_for_loss_law(law, params, target, *, ci, U) -> Allocation:
    P = _law_params(params, law)
    T = _positive(target, "target", unit=" (a loss)")
    ci = _check_ci(ci)
    U = _check_U(U, law)
    S = next(iter(P.values())).shape[0]
    if _splits(law):
        log_C, log_N, log_D, _, found = _invert(law, P, T, "L", U)
        reach = found
    else:
        # L(C) falls with C: bracket on the grid, then the secant search on the law itself
        Pc = {k: v[:, None, None] for k, v in P.items()}
        grid = np.log(_INVERT_GRID)
        H = np.log(T)[None, None, :] - _eval_C(law, Pc, grid[None, :, None])  # increasing in log C
        above = H >= 0
        reach = above.any(axis=1) & ~above[:, 0, :]
        k = np.where(reach, np.argmax(above, axis=1), 1)
        fa = np.where(reach, np.take_along_axis(H, (k - 1)[:, None, :], axis=1)[:, 0], -1.0)
        fb = np.where(reach, np.take_along_axis(H, k[:, None, :], axis=1)[:, 0], 1.0)
        Pf = {kk: v[:, None] for kk, v in P.items()}
        x = _root(lambda lc: np.log(T)[None, :] - _eval_C(law, Pf, lc), grid[k - 1], grid[k], fa, fb, xtol=1e-11)
        log_C = np.where(reach, x, np.where(above[:, 0, :], np.nan, np.inf))
        log_N = log_D = np.full((S, T.size), np.nan)
    draws = {"C": np.exp(log_C), "N_opt": np.exp(log_N), "D_opt": np.exp(log_D)}
    cols = {"target": T, "reachable": reach.mean(axis=0)}
    for name, x in draws.items():
        cols.update(_summary(name, x, ci))
    table = pd.DataFrame(cols)
    if not _splits(law):
        _note_missing(table, law, 1.0)
    return Allocation(table=table, draws=draws, ci=ci)


def _frontier_exponents_law(law, params, budgets, *, ci, U) -> pd.DataFrame:
    """Local frontier exponents ``d log N_opt / d log C`` and ``d log D_opt / d log C`` at each budget."""
    P = _law_params(params, law)
    ci = _check_ci(ci)
    U = _check_U(U, law)
    if budgets is None:
        raise ValueError(f"law {law.name!r} has no closed-form power-law frontier: its exponents vary with the "
                         "budget; give budgets= (FLOPs) at which to take the local slopes")
    C = _positive(budgets, "budgets", unit=" (training FLOPs)")
    S = next(iter(P.values())).shape[0]
    if _splits(law):
        h = _SLOPE_STEP
        fr = _solve(law, P, np.concatenate([C * np.exp(-h), C, C * np.exp(h)]), U=U)
        n = C.size
        log_N, log_D = np.log(fr.N_opt), np.log(fr.D_opt)
        a = (log_N[:, 2 * n:] - log_N[:, :n]) / (2 * h)
        b = (log_D[:, 2 * n:] - log_D[:, :n]) / (2 * h)
        G = np.exp(log_N[:, n:2 * n] - a * (np.log(C) - _LOG6)[None, :])
    else:
        a = b = G = np.full((S, C.size), np.nan)
    return _exponent_table({"a": a, "b": b, "G": G}, C, ci, law)


def _exponent_table(f: Mapping, C: np.ndarray, ci: float, law=None) -> pd.DataFrame:
    """Rows ``a, b, G`` per budget (index repeated; column ``C``) with ``median, lo80, hi80, mean, sd``."""
    lo_name, hi_name = band_names("", ci)
    rows, index = [], []
    for j, c in enumerate(C):
        for k in ("a", "b", "G"):
            x = np.asarray(f[k], dtype=np.float64)[:, j]
            x = x[~np.isnan(x)]
            if x.size:
                med, lo, hi = _band(x, ci)
                row = {"C": c, "median": float(med), lo_name: float(lo), hi_name: float(hi), "mean": float(x.mean()),
                       "sd": float(x.std(ddof=1)) if x.size > 1 else 0.0}
            else:
                row = {"C": c, "median": np.nan, lo_name: np.nan, hi_name: np.nan, "mean": np.nan, "sd": np.nan}
            rows.append(row)
            index.append(k)
    df = pd.DataFrame(rows, index=pd.Index(index, name="quantity"))
    df.attrs["note"] = ("local exponents: a = d log N_opt / d log C, b = d log D_opt / d log C (central "
                        f"differences on the numeric frontier, step {_SLOPE_STEP:g} in log C), and "
                        "G = N_opt / (C/6)^a, at each budget C")
    if law is not None and not _splits(law):
        df.attrs["note"] = _NOTE_NO_SPLIT.format(name=law.name, covs=list(law.covariates))
    return df


def _tokens_to_reach(law, P: Mapping, log_N: np.ndarray, log_target: np.ndarray, log_D_ref: np.ndarray, U):
    """``log D`` at which the law at size ``log N`` reaches ``log_target`` (+inf where it never does)."""
    def f(v):
        return _eval(law, P, log_N, v, U) - log_target

    a = log_D_ref - 40.0 + 0.0 * log_N
    b = log_D_ref + 60.0 + 0.0 * log_N
    fa, fb = f(a), f(b)
    ok = (fa > 0) & (fb <= 0)
    x = _root(f, a, b, np.where(ok, fa, 1.0), np.where(ok, fb, -1.0), xtol=1e-13)
    return np.where(ok, x, np.where(fb > 0, np.inf, np.nan))


def _optimum_at(law, P: Mapping, C: float, U):
    fr = _solve(law, P, [C], U=U)
    return np.log(fr.N_opt[:, 0]), np.log(fr.D_opt[:, 0]), np.log(fr.loss[:, 0])


def _excess_compute_law(law, params, C, k, *, ci, U) -> DrawTable:
    P = _law_params(params, law)
    C = _scalar_budget(C)
    kv = _positive(k, "k", unit=" (multiples of the optimal size)")
    ci = _check_ci(ci)
    U = _check_U(U, law)
    S = next(iter(P.values())).shape[0]
    if _splits(law):
        log_N, log_D, log_L = _optimum_at(law, P, C, U)
        Pc = {kk: v[:, None] for kk, v in P.items()}
        log_Dp = _tokens_to_reach(law, Pc, log_N[:, None] + np.log(kv)[None, :], log_L[:, None],
                                  log_D[:, None], U)
        tokens = np.exp(log_Dp - log_D[:, None])
    else:
        tokens = np.full((S, kv.size), np.nan)
    draws = {"excess_compute": kv[None, :] * tokens, "excess_tokens": tokens}
    cols = {"k": kv, "reachable": np.isfinite(tokens).mean(axis=0)}
    for name, x in draws.items():
        cols.update(_summary(name, x, ci))
    table = pd.DataFrame(cols)
    _note_missing(table, law, float(np.isnan(tokens).mean()))
    return DrawTable(table=table, draws=draws, ci=ci)


def _efficient_size_range_law(law, params, C, *, threshold, ci, U) -> SizeRange:
    P = _law_params(params, law)
    C = _scalar_budget(C)
    thr = _check_threshold(threshold)
    ci = _check_ci(ci)
    U = _check_U(U, law)
    S = next(iter(P.values())).shape[0]
    if not _splits(law):
        nan = np.full(S, np.nan)
        return _size_range(C, thr, ci, nan, nan, nan)
    log_N, log_D, log_L = _optimum_at(law, P, C, U)
    log_thr = np.log1p(thr)

    def excess(v):  # log(C'/C) - log(1 + threshold) at k = e^v; +inf where L_opt is out of reach
        lp = _tokens_to_reach(law, P, log_N + v, log_L, log_D, U)
        return np.where(np.isnan(lp), np.nan, v + lp - log_D - log_thr)

    def edge(direction):  # a v on the side `direction` with excess > 0 (or the cap)
        v = np.full(S, direction * np.log(2.0))
        cap = np.log(1e8)
        for _ in range(8):
            need = ~(excess(v) > 0) & (np.abs(v) < cap)
            if not need.any():
                break
            v = np.where(need, np.clip(2 * v, -cap, cap), v)
        return v

    def bisect(a, b):  # excess(a) > 0 >= excess(b); returns the crossing
        for _ in range(200):
            m = 0.5 * (a + b)
            fm = excess(m)
            left = fm > 0
            a, b = np.where(left, m, a), np.where(left, b, m)
            if np.all(np.abs(b - a) <= 1e-12):
                break
        return 0.5 * (a + b)

    out = []
    for direction in (-1.0, 1.0):
        v = edge(direction)
        ev = excess(v)
        k = np.exp(bisect(v, np.zeros(S)))
        # no crossing within 1e8-fold: every size that far is within the threshold
        k = np.where(ev > 0, k, 0.0 if direction < 0 else np.inf)
        out.append(np.where(np.isnan(log_N) | np.isnan(ev), np.nan, k))
    return _size_range(C, thr, ci, out[0], out[1], np.exp(log_N))


def _size_range(C, thr, ci, k_lo, k_hi, N_opt) -> SizeRange:
    rows = {}
    lo_name, hi_name = band_names("", ci)
    N_lo, N_hi = band_names("N", ci)
    for name, kd in (("k_lo", k_lo), ("k_hi", k_hi)):
        med, lo, hi = (float(v) for v in _band(kd, ci))
        with np.errstate(invalid="ignore"):
            nd = kd * N_opt
        nmed, nlo, nhi = (float(v) for v in _band(nd, ci))
        rows[name] = {"median": float(med), lo_name: float(lo), hi_name: float(hi),
                      "N": float(nmed), N_lo: float(nlo), N_hi: float(nhi)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    return SizeRange(C=C, threshold=thr, ci=ci, table=table, draws={"k_lo": k_lo, "k_hi": k_hi})
