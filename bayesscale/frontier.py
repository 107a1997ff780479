"""Numeric compute-optimal frontier for any scaling law, per posterior draw.

Given a law as a pure ``jax.numpy`` function ``log_loss(params, log_N,
log_D) -> log L`` and posterior draws of its parameters, this module finds,
for every draw and every compute budget ``C``, the model size ``N_opt`` and
token count ``D_opt`` that minimise the loss at that budget, under the
standard cost model ``C = 6 N D`` or any other ``C = cost(N) * N * D``.
It is the path for laws without a closed-form frontier (Kaplan-style forms
under another cost model, laws with an N x D coupling term, user laws) and
the reference the closed forms are checked against.

Method
------
At a fixed budget the problem is one-dimensional.  With ``u = log N`` the
tokens follow from the budget, ``log D(u) = log C - log cost(e^u) - u``, and
the objective is ``f(u) = log_loss(params, u, log D(u))``.  For every draw x
budget pair, all at once (``jax.vmap`` over both, one ``jax.jit``
compilation per law, cost model and shape):

1. **Bracket.**  The feasible sizes are ``1 <= N`` and ``D >= 1``, i.e.
   ``0 <= u <= u_max`` with ``N cost(N) = C`` at ``u_max`` (``log(C / 6)``
   for ``C = 6 N D``; otherwise found by :class:`optimistix.Bisection` on
   ``u + log cost(e^u) - log C`` in ``[0, log C]``, which needs
   ``cost(N) >= 1`` FLOP per parameter per token at ``N = C``, true of any
   real model).
2. **Coarse grid.**  ``f`` is evaluated on ``n_grid`` equally spaced points
   of ``[0, u_max]`` (default 32, a spacing of about 1.9 in ``u``, a factor
   6.6 in ``N``, at ``C = 1e27``); its smallest value picks the basin.  This
   makes the method robust to objectives that are not convex in ``u``: the
   refinement starts in the basin of the grid's global minimum instead of
   wherever a local search would wander.  Points where ``f`` is not finite
   or ``D < 1`` are excluded.
3. **Refinement.**  Between the grid minimum and the neighbour towards
   which ``f`` decreases, the derivative ``f'(u)`` (by automatic
   differentiation) changes sign from negative to positive; its root is
   found by :class:`optimistix.Newton`, started at the secant point and
   clipped to that sub-bracket.  Pairs where Newton does not converge, or
   leaves the sub-bracket, are solved again by :class:`optimistix.Bisection`
   on the same sign-changing bracket, which cannot fail.

Everything runs in float64 (inside ``jax.enable_x64``, local to the call;
the global JAX setting, used in float32 by the sampler, is not touched).
Inputs may be NumPy or JAX arrays of any float dtype; outputs are NumPy
float64.

Accuracy
--------
The Newton iteration stops when both the step in ``u`` and ``|f'(u)|`` are
below ``1e-12``; ``f'`` is computed to about ``1e-16`` in float64, so
``N_opt`` is limited by that, not by the tolerance: against the Chinchilla
closed form (``C = 6 N D``, budgets 1e18-1e27, random draws) the relative
error of ``N_opt`` and ``D_opt`` is below 1e-11 in the tests
(``tests/test_frontier.py``), far inside the 1e-6 target.

No interior optimum
-------------------
Entries get ``NaN`` (in ``N_opt``, ``D_opt`` and the loss) when the law has
no interior optimum at that budget, rather than a bracket edge passed off
as an optimum:

* the grid minimum is at ``N = 1`` or at ``D = 1`` (the loss keeps falling
  towards an edge of the feasible range), or next to excluded points;
* the objective is flat along the budget (the minimum is not below both
  edges by more than ``1e-12`` relative), as for a compute-only law
  ``L(C)`` under ``C = 6 N D``, which does not depend on the split;
* no sign change of ``f'`` brackets the grid minimum (a law that wiggles on
  the grid's scale; raise ``n_grid``), or no ``N >= 1`` is affordable.

:attr:`Frontier.interior` marks the entries that were solved.

Performance
-----------
4,000 draws x 100 budgets of the Chinchilla law take well under a second
warm on 2 CPU cores; ``benchmarks/frontier_speed.py`` measures it and
records the numbers in ``benchmarks/RESULTS.md``.  A second call with new
parameter values of the same shapes reuses the compiled program (the jit
cache is keyed on the ``log_loss`` and ``cost`` objects, so pass the same
function objects, not fresh lambdas, to avoid recompiling).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

__all__ = [
    "DEFAULT_GRID",
    "Frontier",
    "solve",
    "optimal_allocation",
    "optimal_loss",
    "loss_at_budget",
]

#: Default number of coarse grid points in ``log N`` per budget.
DEFAULT_GRID = 32

_LOG6 = math.log(6.0)
_TOL = 1e-12  # Newton / bisection tolerance on u = log N and on f'(u)
_FLAT = 1e-12  # relative depth below which the objective counts as flat along the budget
_NEWTON_STEPS = 32
_BISECTION_STEPS = 128


@dataclass(frozen=True, eq=False)
class Frontier:
    """The compute-optimal frontier of a law, per draw and budget.

    Attributes
    ----------
    budgets : numpy.ndarray
        ``(B,)`` training compute budgets in FLOPs.
    N_opt, D_opt : numpy.ndarray
        ``(S, B)`` loss-optimal model size and tokens; ``NaN`` where the law
        has no interior optimum at that budget.
    loss : numpy.ndarray
        ``(S, B)`` the law's loss at the optimum (``NaN`` likewise).
    interior : numpy.ndarray
        ``(S, B)`` boolean, ``True`` where an interior optimum was found.
    """

    budgets: np.ndarray
    N_opt: np.ndarray
    D_opt: np.ndarray
    loss: np.ndarray
    interior: np.ndarray

    def __post_init__(self):
        for name in ("budgets", "N_opt", "D_opt", "loss", "interior"):
            a = np.asarray(getattr(self, name))
            a = a.view() if not a.flags.writeable else a.copy()
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    @property
    def tokens_per_param(self) -> np.ndarray:
        """``(S, B)`` ratio ``D_opt / N_opt``."""
        return self.D_opt / self.N_opt


# ---------------------------------------------------------------------------
# input checks (plain NumPy, before anything is traced)
# ---------------------------------------------------------------------------


def _check_params(params: Mapping) -> tuple[dict, int]:
    if not isinstance(params, Mapping) or not params:
        raise ValueError("params must be a non-empty mapping of parameter name -> array of posterior draws")
    arrays, S = {}, None
    for name, value in params.items():
        try:
            a = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"params[{name!r}] must be numeric, got {type(value).__name__}") from None
        if a.ndim > 1:
            raise ValueError(f"params[{name!r}] must be a scalar or a flat array of draws, got shape {a.shape}")
        if a.ndim == 1:
            if S is not None and a.shape[0] != S:
                raise ValueError(f"params[{name!r}] has {a.shape[0]} draws but other parameters have {S}; "
                                 "pass the same number of draws for every parameter (or a scalar)")
            S = a.shape[0]
        arrays[name] = a
    S = 1 if S is None else S
    if S == 0:
        raise ValueError("params hold zero draws")
    return {k: np.broadcast_to(v, (S,)).copy() for k, v in arrays.items()}, S


def _check_budgets(budgets) -> np.ndarray:
    C = np.atleast_1d(np.asarray(budgets, dtype=np.float64))
    if C.ndim != 1 or C.size == 0:
        raise ValueError(f"budgets must be a non-empty flat array of FLOPs, got shape {C.shape}")
    bad = ~(np.isfinite(C) & (C > 1.0))
    if bad.any():
        raise ValueError(f"budgets must be finite training FLOPs above 1, got {C[bad][0]!r}")
    return C


def _check_callable(fn, name: str):
    if fn is not None and not callable(fn):
        raise ValueError(f"{name} must be callable, got {type(fn).__name__}")


# ---------------------------------------------------------------------------
# the jitted solver
# ---------------------------------------------------------------------------


def _log_cost(cost, u):
    """``log flops_per_token(e^u)``."""
    if cost is None:
        return jnp.full_like(u, _LOG6)
    return jnp.log(cost(jnp.exp(u)))


def _u_max(cost, log_C):
    """``log N`` at which ``N cost(N) = C`` (so ``D = 1``), for one budget."""
    if cost is None:
        return log_C - _LOG6

    def h(u, _):
        return u + _log_cost(cost, u) - log_C

    sol = optx.root_find(h, optx.Bisection(rtol=0.0, atol=_TOL, flip=False), 0.5 * log_C,
                         options=dict(lower=jnp.zeros_like(log_C), upper=log_C),
                         max_steps=_BISECTION_STEPS, throw=False)
    return sol.value


def _objective(log_loss, cost, p, log_C):
    def f(u):
        return log_loss(p, u, log_C - _log_cost(cost, u) - u)

    return f


def _bracket(df, grid, fg, k):
    """Sub-bracket of the grid minimum ``k`` on which ``f'`` goes from negative to non-negative.

    Returns ``lo, hi``, the secant start ``u0`` and whether the sign change holds.
    """
    n = grid.shape[0]
    km, kp = jnp.maximum(k - 1, 0), jnp.minimum(k + 1, n - 1)
    d_m, d_k, d_p = df(grid[km]), df(grid[k]), df(grid[kp])
    right = d_k < 0  # the minimum lies between grid[k] and grid[k+1]
    lo = jnp.where(right, grid[k], grid[km])
    hi = jnp.where(right, grid[kp], grid[k])
    d_lo = jnp.where(right, d_k, d_m)
    d_hi = jnp.where(right, d_p, d_k)
    ok = (d_lo < 0) & (d_hi >= 0)
    t = jnp.where(ok, d_lo / (d_lo - d_hi), 0.5)
    return lo, hi, lo + jnp.clip(t, 0.0, 1.0) * (hi - lo), ok


def _grid_stage(log_loss, cost, n_grid, p, log_C, u_hi):
    """Coarse grid on ``[0, u_max]`` for one draw x budget pair.

    Returns the sign-changing sub-bracket and Newton start, whether the grid
    minimum is an interior optimum (not at an edge, not flat), whether the
    sub-bracket holds a sign change of ``f'``, and the grid minimum's
    neighbours (the zoom window of the fallback).
    """
    f = _objective(log_loss, cost, p, log_C)
    df = jax.grad(f)
    feasible_budget = u_hi > 0
    grid = jnp.linspace(0.0, 1.0, n_grid) * jnp.maximum(u_hi, 1.0)
    fg = jax.vmap(f)(grid)
    log_D = log_C - _log_cost(cost, grid) - grid
    ok = jnp.isfinite(fg) & (log_D >= -1e-9 * jnp.abs(log_C))
    fg = jnp.where(ok, fg, jnp.inf)
    k = jnp.argmin(fg)
    km, kp = jnp.maximum(k - 1, 0), jnp.minimum(k + 1, n_grid - 1)
    f_min = fg[k]
    interior = (k > 0) & (k < n_grid - 1) & ok[km] & ok[kp] & feasible_budget
    # flat along the budget: the minimum is not below the edges (or the highest point) by more than rounding
    edge = jnp.minimum(fg[0], fg[-1])
    edge = jnp.where(jnp.isfinite(edge), edge, jnp.max(jnp.where(ok, fg, -jnp.inf)))
    interior &= (edge - f_min) > _FLAT * (1.0 + jnp.abs(f_min))
    # the second-lowest local minimum of the grid, if any, is refined too: where two basins are
    # within the grid's resolution of each other, the refined values decide
    inner = fg[1:-1]
    local = (inner <= fg[:-2]) & (inner <= fg[2:]) & (jnp.arange(1, n_grid - 1) != k)
    k2 = jnp.argmin(jnp.where(local, inner, jnp.inf)) + 1
    k2 = jnp.where(local[k2 - 1], k2, k)
    ks = jnp.stack([k, k2])
    lo, hi, u0, bracketed = jax.vmap(partial(_bracket, df, grid, fg))(ks)
    za = grid[jnp.maximum(ks - 1, 0)]
    zb = grid[jnp.minimum(ks + 1, n_grid - 1)]
    return lo, hi, u0, interior, bracketed, za, zb


def _zoom_stage(log_loss, cost, n_grid, p, log_C, a, b):
    """A finer grid on ``[a, b]`` (the coarse minimum's neighbours) and its sub-bracket."""
    f = _objective(log_loss, cost, p, log_C)
    df = jax.grad(f)
    grid = a + (b - a) * jnp.linspace(0.0, 1.0, n_grid)
    fg = jax.vmap(f)(grid)
    fg = jnp.where(jnp.isfinite(fg), fg, jnp.inf)
    k = jnp.argmin(fg[1:-1]) + 1  # f(a), f(b) >= f at the coarse minimum, which lies inside
    lo, hi, _, bracketed = _bracket(df, grid, fg, k)
    return lo, hi, bracketed


def _refine(log_loss, cost, method, p, log_C, lo, hi, u0):
    f = _objective(log_loss, cost, p, log_C)
    df = jax.grad(f)

    def fn(u, _):
        return df(u)

    if method == "newton":
        solver = optx.Newton(rtol=_TOL, atol=_TOL)
        sol = optx.root_find(fn, solver, u0, options=dict(lower=lo, upper=hi),
                             max_steps=_NEWTON_STEPS, throw=False)
        u = sol.value
        # Newton may stop on a clip bound without a root; a converged root lies within the sub-bracket
        return u, (sol.result == optx.RESULTS.successful) & (u > lo) & (u <= hi)
    # bisection on a sign-changing bracket cannot fail; it may only run out of steps at the
    # noise floor of f', which still leaves u within the bracket
    solver = optx.Bisection(rtol=_TOL, atol=_TOL, flip=False)
    sol = optx.root_find(fn, solver, u0, options=dict(lower=lo, upper=hi),
                         max_steps=_BISECTION_STEPS, throw=False)
    u = sol.value
    return u, (u >= lo) & (u <= hi)


def _pairs(fun, params, *per_pair, per_budget=()):
    """vmap ``fun(p, *per_budget, *per_pair)`` over budgets (inner) and draws (outer).

    ``per_budget`` arrays have shape ``(B,)``, ``per_pair`` arrays ``(S, B)``.
    """
    nb, npair = len(per_budget), len(per_pair)
    inner = jax.vmap(fun, in_axes=(None,) + (0,) * (nb + npair))
    outer = jax.vmap(inner, in_axes=(0,) + (None,) * nb + (0,) * npair)
    return outer(params, *per_budget, *per_pair)


def _refine_candidates(log_loss, cost, method, p, log_C, lo, hi, u0):
    """Refine both candidates ``(2,)`` of one pair; also return ``f`` at the results."""
    u, done = jax.vmap(partial(_refine, log_loss, cost, method, p, log_C))(lo, hi, u0)
    return u, done, jax.vmap(_objective(log_loss, cost, p, log_C))(u)


@partial(jax.jit, static_argnames=("log_loss", "cost", "n_grid"))
def _solve_jit(params, log_C, *, log_loss, cost, n_grid):
    """Coarse grid, then Newton on f' from its two best local minima (the fast path)."""
    u_hi = jax.vmap(partial(_u_max, cost))(log_C)
    lo, hi, u0, interior, bracketed, za, zb = _pairs(partial(_grid_stage, log_loss, cost, n_grid), params,
                                                     per_budget=(log_C, u_hi))
    u, done, fu = _pairs(partial(_refine_candidates, log_loss, cost, "newton"), params, lo, hi, u0,
                         per_budget=(log_C,))
    return u, done & bracketed, fu, interior, za, zb


@partial(jax.jit, static_argnames=("log_loss", "cost", "n_grid"))
def _fallback_jit(params, log_C, za, zb, *, log_loss, cost, n_grid):
    """A finer grid around each candidate, then bisection on f' (the robust path)."""
    lo, hi, bracketed = _pairs(jax.vmap(partial(_zoom_stage, log_loss, cost, n_grid), in_axes=(None, None, 0, 0)),
                               params, za, zb, per_budget=(log_C,))
    u, done, fu = _pairs(partial(_refine_candidates, log_loss, cost, "bisection"), params, lo, hi, 0.5 * (lo + hi),
                         per_budget=(log_C,))
    return u, done & bracketed, fu


@partial(jax.jit, static_argnames=("log_loss", "cost"))
def _evaluate_jit(params, log_C, log_N, *, log_loss, cost):
    """``log D`` and ``log L`` at ``log N`` (``(S, B)``) on each budget line."""

    def one(p, lc, u):
        log_D = lc - _log_cost(cost, u) - u
        return log_D, log_loss(p, u, log_D)

    return jax.vmap(jax.vmap(one, in_axes=(None, 0, 0)), in_axes=(0, None, 0))(params, log_C, log_N)


def _as_jax(params: dict, C: np.ndarray):
    return {k: jnp.asarray(v, dtype=jnp.float64) for k, v in params.items()}, jnp.asarray(np.log(C))


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


def solve(log_loss: Callable, params: Mapping, budgets, *, cost: Callable | None = None,
          n_grid: int = DEFAULT_GRID) -> Frontier:
    """Compute-optimal size, tokens and loss of any law, per draw and budget.

    Parameters
    ----------
    log_loss : callable
        Pure ``jax.numpy`` function ``log_loss(params, log_N, log_D)``
        returning the natural log of the loss; ``params`` is a dict of
        arrays.  It is called on scalars (under ``jax.vmap``) and must be
        differentiable in ``log_N`` and ``log_D``.
    params : mapping
        Parameter name -> flat array of ``S`` posterior draws, or a scalar
        (broadcast to every draw; all scalars make ``S = 1``).  NumPy or
        JAX arrays.
    budgets : array_like
        ``(B,)`` training compute budgets in FLOPs.
    cost : callable, optional
        ``cost(N)``: training FLOPs per parameter per token, a
        jax-traceable function, so that ``C = cost(N) * N * D``; for example
        ``lambda N: 6 * (1 + 1e9 / N)``.  ``N * cost(N)`` must grow with
        ``N`` and ``cost(N) >= 1``.  Default: ``C = 6 N D``.
    n_grid : int
        Coarse grid points in ``log N`` per budget (at least 8).

    Returns
    -------
    Frontier
        ``N_opt``, ``D_opt``, ``loss`` of shape ``(S, B)`` (NumPy float64),
        ``NaN`` where the law has no interior optimum at that budget (see
        the module docstring), and the boolean mask ``interior``.

    Raises
    ------
    ValueError
        On malformed params or budgets, a non-callable law or cost, or a
        too small grid.

    Notes
    -----
    Compiled once per ``(log_loss, cost, n_grid, S, B, parameter names)``;
    later calls with new values of the same shapes reuse the program.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> def chinchilla(p, log_N, log_D):
    ...     return jnp.logaddexp(jnp.log(p["E"]), jnp.logaddexp(jnp.log(p["A"]) - p["alpha"] * log_N,
    ...                                                       jnp.log(p["B"]) - p["beta"] * log_D))
    >>> p = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    >>> fr = solve(chinchilla, p, [5.76e23])
    >>> fr.N_opt.shape
    (1, 1)
    """
    if not callable(log_loss):
        raise ValueError(f"log_loss must be a callable (params, log_N, log_D) -> log L, got {type(log_loss).__name__}")
    _check_callable(cost, "cost")
    n_grid = int(n_grid)
    if n_grid < 8:
        raise ValueError(f"n_grid must be at least 8, got {n_grid}")
    P, S = _check_params(params)
    C = _check_budgets(budgets)
    with jax.enable_x64(True):
        jp, log_C = _as_jax(P, C)
        u, done, fu, interior, za, zb = _solve_jit(jp, log_C, log_loss=log_loss, cost=cost, n_grid=n_grid)
        u, done, fu, interior = (np.asarray(x) for x in (u, done, fu, interior))
        redo = interior[..., None] & ~done
        if redo.any():
            u_b, done_b, fu_b = _fallback_jit(jp, log_C, za, zb, log_loss=log_loss, cost=cost, n_grid=n_grid + 1)
            u = np.where(redo, np.asarray(u_b), u)
            fu = np.where(redo, np.asarray(fu_b), fu)
            done = np.where(redo, np.asarray(done_b), done)
        # of the two refined candidates, the lower loss
        best = np.argmin(np.where(done, fu, np.inf), axis=-1)[..., None]
        u = np.take_along_axis(u, best, axis=-1)[..., 0]
        ok = interior & done.any(axis=-1)
        log_N = np.where(ok, u, np.nan)
        log_D, log_L = _evaluate_jit(jp, log_C, jnp.asarray(log_N), log_loss=log_loss, cost=cost)
        log_D, log_L = np.asarray(log_D, dtype=np.float64), np.asarray(log_L, dtype=np.float64)
    nan = ~ok
    return Frontier(budgets=C, N_opt=np.where(nan, np.nan, np.exp(log_N)),
                    D_opt=np.where(nan, np.nan, np.exp(log_D)),
                    loss=np.where(nan, np.nan, np.exp(log_L)), interior=ok)


def optimal_allocation(log_loss: Callable, params: Mapping, budgets, *, cost: Callable | None = None,
                       n_grid: int = DEFAULT_GRID) -> tuple[np.ndarray, np.ndarray]:
    """``N_opt, D_opt`` of shape ``(S, B)`` minimising the law at each budget.

    Parameters
    ----------
    log_loss : callable
        Pure ``jax.numpy`` function ``(params, log_N, log_D) -> log L``.
    params : mapping
        Parameter name -> array of ``S`` posterior draws (or scalars, ``S = 1``).
    budgets : array_like
        ``(B,)`` FLOPs.
    cost : callable, optional
        ``None`` for ``C = 6 N D``, or ``flops_per_token(N)`` (jax-traceable)
        for ``C = cost(N) * N * D``, e.g. ``lambda N: 6 * (1 + 1e9 / N)``.
    n_grid : int
        Coarse grid points in ``log N`` per budget.

    Returns
    -------
    N_opt, D_opt : numpy.ndarray
        ``(S, B)`` float64; ``NaN`` where the law has no interior optimum at
        that budget.

    See Also
    --------
    solve : the same, with the loss at the optimum and the mask of solved entries.
    """
    fr = solve(log_loss, params, budgets, cost=cost, n_grid=n_grid)
    return fr.N_opt, fr.D_opt


def optimal_loss(log_loss: Callable, params: Mapping, budgets, *, cost: Callable | None = None,
                 n_grid: int = DEFAULT_GRID) -> np.ndarray:
    """The law's loss at the compute-optimal allocation, ``(S, B)``.

    Same arguments as :func:`optimal_allocation`; ``NaN`` where the law has
    no interior optimum.
    """
    return solve(log_loss, params, budgets, cost=cost, n_grid=n_grid).loss


def loss_at_budget(log_loss: Callable, params: Mapping, budgets, N, *, cost: Callable | None = None) -> np.ndarray:
    """The law's loss when a budget is spent on a model of size ``N``.

    The tokens are what the budget leaves: ``D = C / (cost(N) N)``.

    Parameters
    ----------
    log_loss, params, budgets, cost
        As in :func:`optimal_allocation`.
    N : array_like
        Model sizes, broadcastable to ``(S, B)`` (for example ``N_opt``, or
        one size per budget of shape ``(B,)``).

    Returns
    -------
    numpy.ndarray
        ``(S, B)`` loss, float64.
    """
    if not callable(log_loss):
        raise ValueError(f"log_loss must be callable, got {type(log_loss).__name__}")
    _check_callable(cost, "cost")
    P, S = _check_params(params)
    C = _check_budgets(budgets)
    N = np.asarray(N, dtype=np.float64)
    try:
        log_N = np.broadcast_to(np.log(N), (S, C.size))
    except ValueError:
        raise ValueError(f"N of shape {N.shape} does not broadcast to (draws, budgets) = {(S, C.size)}") from None
    with jax.enable_x64(True):
        jp, log_C = _as_jax(P, C)
        _, log_L = _evaluate_jit(jp, log_C, jnp.asarray(log_N), log_loss=log_loss, cost=cost)
        return np.exp(np.asarray(log_L, dtype=np.float64))
