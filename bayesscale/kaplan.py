"""Kaplan et al. (2020) steps-and-batch analysis as pure array functions.

Kaplan, McCandlish et al. 2020, "Scaling Laws for Neural Language Models"
(arXiv 2001.08361), Sections 5 and 6 and Appendix B, describe the loss of a
model with ``N`` non-embedding parameters after ``S`` optimizer steps at a
batch of ``B`` tokens by

.. math::

    L(N, S_{min}) = (N_c / N)^{\\alpha_N} + (S_c / S_{min})^{\\alpha_S}
    \\qquad \\text{(eq. 1.6 / 5.6)}

    B_{crit}(L) = B_* / L^{1 / \\alpha_B}                 \\qquad \\text{(eq. 1.4 / 5.3)}

    S_{min} = S / (1 + B_{crit}(L) / B)                   \\qquad \\text{(eq. 5.4)}

    C_{min} = C / (1 + B / B_{crit}(L)),\\; C = 6 N B S    \\qquad \\text{(eq. 5.5; 2.1 for C)}

The last two follow from the trade-off ``(S / S_min - 1)(E / E_min - 1) = 1``
(eq. 5.1) with ``E = B S`` tokens and ``B_crit = E_min / S_min`` (eq. 5.2),
so ``E_min = E / (1 + B / B_crit)`` and ``C_min = 6 N E_min = 6 N B_crit
S_min``.  ``L`` is in nats per token, ``B`` and ``B_*`` in tokens.

Because ``S_min`` depends on ``L`` through ``B_crit(L)``, the loss after
``S`` steps at batch ``B`` solves a fixed point; :func:`log_loss_steps`
solves it with Newton's method in ``log L``, which converges monotonically
from below (see its docstring), and differentiates through the root with
the implicit function theorem, so NUTS can use it.

The compute-efficient frontier (Sec. 6 and App. B; derived again here so the
reader can check it): at a fixed loss ``B_crit`` is fixed, so minimising
``C_min = 6 N B_crit S_min`` over ``N`` gives ``(N_c / N)^alpha_N = L / (1 +
alpha_N / alpha_S)`` (App. B, "L(N_eff(C), C) = (1 + alpha_N / alpha_S)
L(N_eff, inf)").  Substituting gives ``L(C_min) = (C_c / C_min)^alpha_C``
with

.. math::

    \\alpha_C^{min} = 1 / (1/\\alpha_S + 1/\\alpha_B + 1/\\alpha_N)   \\qquad \\text{(eq. 1.8 / 6.4)}

    C_c = 6 N_c B_* S_c (1 + \\alpha_N/\\alpha_S)^{1/\\alpha_S + 1/\\alpha_N} (\\alpha_S/\\alpha_N)^{1/\\alpha_S}

and ``N_eff ∝ C_min^(alpha_C / alpha_N)``, ``B_eff = B_crit ∝
C_min^(alpha_C / alpha_B)``, ``S_eff ∝ C_min^(alpha_C / alpha_S)`` (eq. 1.7).
With the published constants these exponents are 0.684, 0.248 and 0.068;
Kaplan's direct fits (eq. 6.1, Fig. 14) are 0.73, 0.24 and 0.03.

Training a model of size ``N`` to the loss that ``N_eff`` reaches most
efficiently costs, with ``r = N / N_eff`` (App. B.4, "suboptimal model
sizes"),

.. math::

    C / C_{eff} = r \\,[1 + (\\alpha_S/\\alpha_N)(1 - r^{-\\alpha_N})]^{-1/\\alpha_S},
    \\qquad S / S_{eff} = [1 + (\\alpha_S/\\alpha_N)(1 - r^{-\\alpha_N})]^{-1/\\alpha_S}

(both at the critical batch: ``C`` means ``C_min`` and ``S`` means ``S_min``).
Models with ``r`` below ``(1 + alpha_N / alpha_S)^(-1 / alpha_N)`` never
reach that loss (infinite excess).  The equation numbers follow the arXiv
version as far as this module's author could check them; every equation is
written out above so that it can be checked without them.

Conventions.  Kaplan counts non-embedding parameters and ``C = 6 N B S``
(``6 N`` FLOPs per token, forward and backward).  :func:`training_compute`
takes the convention as an argument (``"kaplan"``: non-embedding ``N``;
``"total"``: all parameters, as Chinchilla counts them).  ``1 PF-day =
1e15 * 86400 = 8.64e19`` FLOPs.

Every function takes a parameter mapping with the keys of
:data:`PARAMETERS` (scalars or arrays of posterior draws) and arrays of
covariates, and uses array arithmetic only, so it runs on NumPy arrays and
inside a JAX trace.  Draws broadcast against covariates by the usual rules:
pass ``params[k][:, None]`` and ``x[None, :]`` for a draws x points grid.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .laws import FLOPS_PER_PARAM_TOKEN, _xp

__all__ = [
    "PARAMETERS",
    "KAPLAN_STEPS",
    "PF_DAY",
    "NEWTON_ITERATIONS",
    "flops_to_pf_days",
    "pf_days_to_flops",
    "training_compute",
    "critical_batch",
    "log_critical_batch",
    "s_min",
    "e_min",
    "c_min",
    "log_loss_n_smin",
    "log_loss_steps",
    "loss_steps",
    "log_loss_at_compute",
    "frontier_exponents",
    "frontier",
    "excess_compute",
    "excess_steps",
    "size_range_within",
    "fixed_batch_optimum",
]

#: The parameters of the steps law, in display order.
PARAMETERS = ("N_c", "alpha_N", "S_c", "alpha_S", "B_star", "alpha_B")

#: Kaplan et al. (2020) published constants of L(N, S_min) (N_c, alpha_N, S_c, alpha_S; eq. 1.6)
#: and of B_crit(L) (B_star in tokens, alpha_B; eq. 1.4), as issue 13 quotes them.
KAPLAN_STEPS = {"N_c": 6.5e13, "alpha_N": 0.076, "S_c": 2.1e3, "alpha_S": 0.76, "B_star": 2.1e8, "alpha_B": 0.21}

#: FLOPs in one petaflop/s-day.
PF_DAY = 1e15 * 86400.0

#: Newton iterations of the fixed points in :func:`log_loss_steps` and :func:`log_loss_at_compute`.
#: Measured on 20,000 random points (N in 1e3..1e13, S in 1..1e8, B / B_crit in 1e-4..1e4; for
#: the compute form C in 1e10..1e28 FLOPs): the largest |residual| in log L is 6e-15 after 4
#: iterations (4e-5 after 2); tests/test_kaplan.py checks 6.  The rest is a margin.
NEWTON_ITERATIONS = 8


def _check_convention(convention: str) -> str:
    if convention not in ("kaplan", "total"):
        raise ValueError(f"convention must be 'kaplan' (non-embedding N, as Kaplan et al. count) or 'total' "
                         f"(all parameters, as Chinchilla counts), got {convention!r}")
    return convention


def flops_to_pf_days(flops):
    """FLOPs to petaflop/s-days (``1 PF-day = 8.64e19 FLOPs``).

    Parameters
    ----------
    flops : array_like
        Compute in floating-point operations.

    Returns
    -------
    array
        Compute in PF-days.
    """
    return flops / PF_DAY


def pf_days_to_flops(pf_days):
    """Petaflop/s-days to FLOPs (``1 PF-day = 8.64e19 FLOPs``).

    Parameters
    ----------
    pf_days : array_like
        Compute in PF-days.

    Returns
    -------
    array
        Compute in FLOPs.
    """
    return pf_days * PF_DAY


def training_compute(tokens, *, N=None, N_nonembed=None, convention: str = "kaplan"):
    """Training FLOPs ``C = 6 N E`` for ``E`` tokens, under an explicit parameter convention.

    Parameters
    ----------
    tokens : array_like
        Tokens processed, ``E = B S``.
    N, N_nonembed : array_like, optional
        Total and non-embedding parameter counts.
    convention : {"kaplan", "total"}
        ``"kaplan"`` counts non-embedding parameters (needs ``N_nonembed``),
        as Kaplan et al. do for ``C = 6 N B S``; ``"total"`` counts every
        parameter (needs ``N``), as Chinchilla's ``C = 6 N D`` does.

    Returns
    -------
    array
        FLOPs.

    Raises
    ------
    ValueError
        On an unknown convention, or when the count it needs is missing.
    """
    _check_convention(convention)
    n = N_nonembed if convention == "kaplan" else N
    if n is None:
        need = "N_nonembed" if convention == "kaplan" else "N"
        raise ValueError(f"convention={convention!r} counts {need}; pass {need}=... (or choose the other "
                         "convention explicitly)")
    return FLOPS_PER_PARAM_TOKEN * n * tokens


def log_critical_batch(params: Mapping, log_L):
    """``log B_crit(L) = log B_* - log L / alpha_B`` (eq. 1.4), from log loss.

    Parameters
    ----------
    params : mapping
        Needs ``B_star`` (tokens) and ``alpha_B``.
    log_L : array_like
        Natural log of the loss (nats).

    Returns
    -------
    array
        Natural log of the critical batch size in tokens.
    """
    xp = _xp(params["B_star"], params["alpha_B"], log_L)
    return xp.log(params["B_star"]) - log_L / params["alpha_B"]


def critical_batch(params: Mapping, L):
    """Critical batch size ``B_crit(L) = B_* / L^(1 / alpha_B)`` in tokens (eq. 1.4 / 5.3).

    Parameters
    ----------
    params : mapping
        Needs ``B_star`` and ``alpha_B``.
    L : array_like
        Loss in nats.

    Returns
    -------
    array
        Critical batch size in tokens.
    """
    xp = _xp(params["B_star"], params["alpha_B"], L)
    return xp.exp(log_critical_batch(params, xp.log(L)))


def s_min(params: Mapping, S, B, L):
    """Fewest steps to reach ``L``: ``S_min = S / (1 + B_crit(L) / B)`` (eq. 5.4).

    Parameters
    ----------
    params : mapping
        Needs ``B_star`` and ``alpha_B``.
    S, B, L : array_like
        Steps taken, batch size in tokens, and the loss reached.

    Returns
    -------
    array
    """
    return S / (1.0 + critical_batch(params, L) / B)


def e_min(params: Mapping, E, B, L):
    """Fewest tokens to reach ``L``: ``E_min = E / (1 + B / B_crit(L))`` (from eq. 5.1).

    Parameters
    ----------
    params : mapping
        Needs ``B_star`` and ``alpha_B``.
    E, B, L : array_like
        Tokens processed (``B S``), batch size in tokens, and the loss reached.

    Returns
    -------
    array
    """
    return E / (1.0 + B / critical_batch(params, L))


def c_min(params: Mapping, C, B, L):
    """Least compute to reach ``L``: ``C_min = C / (1 + B / B_crit(L))`` (eq. 5.5).

    Equal to ``6 N B_crit(L) S_min`` when ``C = 6 N B S``.

    Parameters
    ----------
    params : mapping
        Needs ``B_star`` and ``alpha_B``.
    C, B, L : array_like
        Compute used (FLOPs, or PF-days: the unit carries through), batch
        size in tokens, and the loss reached.

    Returns
    -------
    array
    """
    return C / (1.0 + B / critical_batch(params, L))


def _logaddexp(xp, a, b):
    m = xp.maximum(a, b)
    return m + xp.log(xp.exp(a - m) + xp.exp(b - m))


def _softplus(xp, x):
    return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))


def _sigmoid(xp, x):
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _stop_gradient(xp, x):
    if xp is np:
        return x
    import jax

    return jax.lax.stop_gradient(x)


def log_loss_n_smin(params: Mapping, log_N, log_S_min):
    """``log L(N, S_min)`` of eq. 1.6 / 5.6 (the loss at the critical batch, or given ``S_min``).

    Parameters
    ----------
    params : mapping
        Needs ``N_c, alpha_N, S_c, alpha_S``.
    log_N, log_S_min : array_like
        Natural logs of the non-embedding parameter count and of ``S_min``.

    Returns
    -------
    array
        Natural log of the loss.
    """
    xp = _xp(*(params[k] for k in ("N_c", "alpha_N", "S_c", "alpha_S")), log_N, log_S_min)
    t_n = params["alpha_N"] * (xp.log(params["N_c"]) - log_N)
    t_s = params["alpha_S"] * (xp.log(params["S_c"]) - log_S_min)
    return _logaddexp(xp, t_n, t_s)


def log_loss_steps(params: Mapping, log_N, log_S, log_B, *, iterations: int = NEWTON_ITERATIONS):
    """``log L`` after ``S`` steps at batch ``B``: the root of the ``S_min`` fixed point.

    Solves, for ``l = log L``,

    ``f(l) = l - logaddexp(alpha_N (log N_c - log N), alpha_S (log S_c -
    log S + softplus(log B_* - l / alpha_B - log B))) = 0``

    which is eq. 5.6 with ``S_min = S / (1 + B_crit(L) / B)`` (eq. 5.4) and
    ``B_crit`` from eq. 1.4 written in logs (``log(1 + B_crit / B)`` is the
    softplus).  The subtracted term is convex and decreasing in ``l``, so
    ``f`` is concave and increasing with ``f' >= 1``: the root is unique,
    and Newton's method started at ``l0 = log L(N, S)`` (the loss with
    ``S_min = S``, a lower bound since ``S_min < S``) increases
    monotonically to it without overshooting.  The iterations run under
    ``stop_gradient``; one last Newton step carries the gradient, which at
    the root equals the implicit-function-theorem derivative ``-f_theta /
    f_l``.  Hence :func:`jax.grad` is exact and cheap.

    Parameters
    ----------
    params : mapping
        All of :data:`PARAMETERS` (scalars or arrays of draws).
    log_N, log_S, log_B : array_like
        Natural logs of non-embedding parameters, steps and batch size in
        tokens.
    iterations : int
        Newton iterations before the final differentiable step.

    Returns
    -------
    array
        ``log L``, broadcast over all inputs.
    """
    xp = _xp(*(params[k] for k in PARAMETERS), log_N, log_S, log_B)
    a_n, a_s, a_b = params["alpha_N"], params["alpha_S"], params["alpha_B"]
    t_n = a_n * (xp.log(params["N_c"]) - log_N)
    s0 = xp.log(params["S_c"]) - log_S
    c = xp.log(params["B_star"]) - log_B

    def newton(l):
        u = c - l / a_b                      # log(B_crit / B)
        t_s = a_s * (s0 + _softplus(xp, u))  # log of (S_c / S_min)^alpha_S
        h = _logaddexp(xp, t_n, t_s)
        w_s = xp.exp(t_s - h)                # share of the steps term in L
        f = l - h
        df = 1.0 + w_s * a_s * _sigmoid(xp, u) / a_b
        return l - f / df

    l = _logaddexp(xp, t_n, a_s * s0)        # S_min = S: a lower bound of the root
    l_sg = _stop_gradient(xp, l)
    for _ in range(int(iterations)):
        l_sg = newton(l_sg)
    return newton(_stop_gradient(xp, l_sg))


def loss_steps(params: Mapping, N, S, B, *, iterations: int = NEWTON_ITERATIONS):
    """Loss after ``S`` steps at batch ``B`` tokens for ``N`` non-embedding parameters.

    See :func:`log_loss_steps`.

    Parameters
    ----------
    params : mapping
        All of :data:`PARAMETERS`.
    N, S, B : array_like
        Non-embedding parameters, steps, batch size in tokens.
    iterations : int
        Newton iterations.

    Returns
    -------
    array
        ``L`` in nats.
    """
    xp = _xp(*(params[k] for k in PARAMETERS), N, S, B)
    return xp.exp(log_loss_steps(params, xp.log(N), xp.log(S), xp.log(B), iterations=iterations))


def log_loss_at_compute(params: Mapping, log_N, log_C_min, *, iterations: int = NEWTON_ITERATIONS):
    """``log L`` reached by ``N`` parameters with ``C_min`` compute at the critical batch.

    Solves ``C_min = 6 N B_crit(L) S_min`` with ``S_min = S_c (L - (N_c /
    N)^alpha_N)^(-1/alpha_S)`` (eq. 5.6 solved for ``S_min``; Kaplan App.
    B.4 writes the same ``C(N, L)``) for ``L``.  In ``t = log(L - (N_c /
    N)^alpha_N)`` the right side is ``K - logaddexp(t_N, t) / alpha_B - t /
    alpha_S``, concave and decreasing in ``t``; Newton from a point right of
    the root (where the bound ``logaddexp >= max(t_N, t)`` already puts the
    compute below ``C_min``) decreases monotonically to it.  This draws
    Kaplan's "performance vs compute budget" curves: loss against ``N`` at
    a fixed ``C_min`` is U-shaped, with its minimum at ``N_eff(C_min)``.

    Parameters
    ----------
    params : mapping
        All of :data:`PARAMETERS`.
    log_N : array_like
        Natural log of non-embedding parameters.
    log_C_min : array_like
        Natural log of the compute in FLOPs (``C_min``, at the critical batch).
    iterations : int
        Newton iterations before the final differentiable step.

    Returns
    -------
    array
        ``log L``.
    """
    xp = _xp(*(params[k] for k in PARAMETERS), log_N, log_C_min)
    a_n, a_s, a_b = params["alpha_N"], params["alpha_S"], params["alpha_B"]
    t_n = a_n * (xp.log(params["N_c"]) - log_N)
    K = (np.log(FLOPS_PER_PARAM_TOKEN) + xp.log(params["B_star"]) + xp.log(params["S_c"]) + log_N
         - log_C_min)  # g(t) = K - logaddexp(t_n, t) / a_b - t / a_s = 0

    def newton(t):
        ell = _logaddexp(xp, t_n, t)
        g = K - ell / a_b - t / a_s
        dg = -xp.exp(t - ell) / a_b - 1.0 / a_s
        return t - g / dg

    t0 = xp.maximum(K / (1.0 / a_b + 1.0 / a_s), a_s * (K - t_n / a_b))
    t = _stop_gradient(xp, t0)
    for _ in range(int(iterations)):
        t = newton(t)
    t = newton(_stop_gradient(xp, t))
    return _logaddexp(xp, t_n, t)


def frontier_exponents(params: Mapping) -> dict:
    """Exponents and constants of the compute-efficient frontier (eqs. 1.7, 1.8; App. B).

    Parameters
    ----------
    params : mapping
        All of :data:`PARAMETERS` (scalars or arrays of draws).

    Returns
    -------
    dict
        ``alpha_C_min = 1 / (1/alpha_S + 1/alpha_B + 1/alpha_N)``;
        ``N``, ``B``, ``S``: the exponents ``alpha_C_min / alpha_N``,
        ``alpha_C_min / alpha_B``, ``alpha_C_min / alpha_S`` of ``N_eff``,
        ``B_eff`` and ``S_eff`` in ``C_min`` (they sum to 1 because
        ``C_min = 6 N B S``); ``C_c``, the compute in FLOPs with
        ``L(C_min) = (C_c / C_min)^alpha_C_min``; ``C_c_pf_days``, the same
        in PF-days.
    """
    xp = _xp(*(params[k] for k in PARAMETERS))
    a_n, a_s, a_b = params["alpha_N"], params["alpha_S"], params["alpha_B"]
    a_c = 1.0 / (1.0 / a_s + 1.0 / a_b + 1.0 / a_n)
    r = a_n / a_s
    log_cc = (np.log(FLOPS_PER_PARAM_TOKEN) + xp.log(params["N_c"]) + xp.log(params["B_star"])
              + xp.log(params["S_c"]) + (1.0 / a_s + 1.0 / a_n) * xp.log1p(r) - xp.log(r) / a_s)
    C_c = xp.exp(log_cc)
    return {"alpha_C_min": a_c, "N": a_c / a_n, "B": a_c / a_b, "S": a_c / a_s, "C_c": C_c,
            "C_c_pf_days": C_c / PF_DAY}


def frontier(params: Mapping, C_min) -> dict:
    """The compute-efficient allocation at ``C_min`` FLOPs (Sec. 6; App. B).

    Parameters
    ----------
    params : mapping
        All of :data:`PARAMETERS`.  Arrays of draws broadcast against
        ``C_min``.
    C_min : array_like
        Compute in FLOPs at the critical batch (convert PF-days with
        :func:`pf_days_to_flops`).

    Returns
    -------
    dict
        ``L`` (loss, ``(C_c / C_min)^alpha_C_min``), ``N`` (``N_eff``),
        ``B`` (``B_crit(L)``, tokens), ``S`` (``S_min`` steps), ``E``
        (``E_min = B S`` tokens), all arrays; ``6 N B S == C_min``.
    """
    f = frontier_exponents(params)
    xp = _xp(f["C_c"], C_min)
    a_n, a_s = params["alpha_N"], params["alpha_S"]
    log_L = f["alpha_C_min"] * (xp.log(f["C_c"]) - xp.log(C_min))
    r = a_n / a_s
    # (N_c / N_eff)^alpha_N = L / (1 + r);  (S_c / S_min)^alpha_S = L r / (1 + r)
    log_N = xp.log(params["N_c"]) - (log_L - xp.log1p(r)) / a_n
    log_S = xp.log(params["S_c"]) - (log_L + xp.log(r) - xp.log1p(r)) / a_s
    log_B = log_critical_batch(params, log_L)
    return {"L": xp.exp(log_L), "N": xp.exp(log_N), "B": xp.exp(log_B), "S": xp.exp(log_S),
            "E": xp.exp(log_B + log_S)}


def _excess_base(params, ratio):
    xp = _xp(params["alpha_N"], params["alpha_S"], ratio)
    a_n, a_s = params["alpha_N"], params["alpha_S"]
    base = 1.0 + (a_s / a_n) * (1.0 - ratio ** (-a_n))
    ok = base > 0
    return xp, xp.where(ok, xp.where(ok, base, 1.0) ** (-1.0 / a_s), xp.inf)


def excess_compute(params: Mapping, ratio):
    """``C_min / C_eff`` for a model ``ratio = N / N_eff`` times the efficient size (App. B.4).

    ``r [1 + (alpha_S / alpha_N)(1 - r^-alpha_N)]^(-1 / alpha_S)``, the
    compute to reach the loss that ``N_eff`` reaches most efficiently,
    relative to ``N_eff``'s.  Infinite where ``r`` is too small ever to
    reach that loss.

    Parameters
    ----------
    params : mapping
        Needs ``alpha_N`` and ``alpha_S``.
    ratio : array_like
        ``N / N_eff``.

    Returns
    -------
    array
        ``>= 1``, equal to 1 at ``ratio = 1``.
    """
    _, s = _excess_base(params, ratio)
    return ratio * s


def excess_steps(params: Mapping, ratio):
    """``S_min / S_eff`` for a model ``ratio = N / N_eff`` times the efficient size (App. B.4).

    ``[1 + (alpha_S / alpha_N)(1 - r^-alpha_N)]^(-1 / alpha_S)``: smaller
    models need more steps, larger ones fewer.  Infinite where ``r`` is too
    small ever to reach the loss.

    Parameters
    ----------
    params : mapping
        Needs ``alpha_N`` and ``alpha_S``.
    ratio : array_like
        ``N / N_eff``.

    Returns
    -------
    array
    """
    _, s = _excess_base(params, ratio)
    return s


def size_range_within(params: Mapping, excess: float = 1.2, *, iterations: int = 80):
    """Sizes ``N / N_eff`` whose excess compute is at most ``excess`` (Kaplan: 0.6x to 2.2x for 20%).

    Solved by bisection in ``log r`` on each side of 1 (the excess compute
    is decreasing below ``r = 1`` and increasing above).  NumPy only.

    Parameters
    ----------
    params : mapping
        Needs ``alpha_N`` and ``alpha_S`` (scalars or arrays of draws).
    excess : float
        Allowed ``C / C_eff``, greater than 1.
    iterations : int
        Bisection steps (80 halves a bracket of 20 nats below 1e-20).

    Returns
    -------
    lo, hi : numpy.ndarray
        The smallest and largest ``N / N_eff``, with the shape of the
        parameters.
    """
    if not np.isfinite(excess) or excess <= 1:
        raise ValueError(f"excess must be a compute ratio greater than 1 (e.g. 1.2 for 20% more), got {excess!r}")
    a_n = np.asarray(params["alpha_N"], dtype=float)
    a_s = np.asarray(params["alpha_S"], dtype=float)
    p = {"alpha_N": a_n, "alpha_S": a_s}
    shape = np.broadcast(a_n, a_s).shape
    floor = np.broadcast_to(-np.log1p(a_n / a_s) / a_n, shape)  # log r where the excess becomes infinite
    out = []
    for a, b in ((floor, np.zeros(shape)), (np.zeros(shape), np.full(shape, 20.0))):
        a, b = a.copy(), b.copy()
        increasing = bool(b.max() > 0)
        for _ in range(iterations):
            m = 0.5 * (a + b)
            with np.errstate(over="ignore", invalid="ignore"):
                above = excess_compute(p, np.exp(m)) > excess
            go_right = above ^ increasing   # below 1: move right while above; above 1: right while below
            a, b = np.where(go_right, m, a), np.where(go_right, b, m)
        out.append(np.exp(0.5 * (a + b)))
    return out[0], out[1]


def fixed_batch_optimum(params: Mapping, C, B, *, N_grid=None):
    """Loss-optimal ``N`` at compute ``C = 6 N B S`` when the batch ``B`` is fixed (not critical).

    Kaplan's Fig. 14 sets this fit (``N ∝ C^0.88`` in their runs) beside the
    frontier in ``C_min``.  For every draw and budget, the loss
    :func:`loss_steps` with ``S = C / (6 N B)`` is evaluated on a grid of
    sizes and minimised, refined by a parabola through the three grid
    points around the minimum (in ``log N``).  NumPy only.

    Parameters
    ----------
    params : mapping
        All of :data:`PARAMETERS`, scalars or 1-D arrays of ``S`` draws.
    C : array_like
        1-D budgets in FLOPs (Kaplan convention: non-embedding ``N``).
    B : float
        Batch size in tokens.
    N_grid : array_like, optional
        Candidate sizes; default 241 sizes log-spaced over ``1e3..1e15``.

    Returns
    -------
    N_opt : numpy.ndarray
        ``(S, len(C))`` (``S = 1`` for scalar parameters); NaN where the
        minimum sits at the grid's edge.
    L_opt : numpy.ndarray
        The loss there.
    """
    C = np.atleast_1d(np.asarray(C, dtype=float))
    grid = np.geomspace(1e3, 1e15, 241) if N_grid is None else np.asarray(N_grid, dtype=float)
    if grid.ndim != 1 or grid.size < 3:
        raise ValueError("N_grid must be a 1-D array of at least 3 sizes")
    p = {k: np.atleast_1d(np.asarray(params[k], dtype=float))[:, None, None] for k in PARAMETERS}
    x = np.log(grid)[None, None, :]
    lc = np.log(C)[None, :, None]
    log_S = lc - np.log(FLOPS_PER_PARAM_TOKEN) - x - np.log(B)
    ll = log_loss_steps(p, x, log_S, np.log(B))  # (S, nC, nG)
    i = np.argmin(ll, axis=-1)
    inner = (i > 0) & (i < grid.size - 1)
    j = np.clip(i, 1, grid.size - 2)
    y0 = np.take_along_axis(ll, (j - 1)[..., None], -1)[..., 0]
    y1 = np.take_along_axis(ll, j[..., None], -1)[..., 0]
    y2 = np.take_along_axis(ll, (j + 1)[..., None], -1)[..., 0]
    h = np.diff(np.log(grid))
    hj = h[j]  # log-spaced default grid: equal steps; a parabola on the local step otherwise
    denom = y0 - 2 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(denom > 0, 0.5 * hj * (y0 - y2) / denom, 0.0)
    x_opt = np.log(grid)[j] + shift
    l_opt = y1 - 0.125 * np.where(denom > 0, (y0 - y2) ** 2 / denom, 0.0)
    return np.where(inner, np.exp(x_opt), np.nan), np.where(inner, np.exp(l_opt), np.nan)
