"""The Chinchilla scaling law as pure array functions.

Everything here is a pure function of a parameter mapping and arrays.  The
functions use only array arithmetic, so they run unchanged on NumPy arrays
(posterior analysis, over thousands of draws at once) and on JAX arrays
inside the NumPyro model (where they are traced and differentiated).

The law is

    L(N, D) = E + A / N**alpha + B / D**beta

and, in log space, ``log L = logsumexp(log E, log A - alpha log N,
log B - beta log D)``.  Working in logs keeps ``N ~ 1e12`` and
``D ~ 1e13`` away from float32 overflow.

Parameters are passed as a mapping with the keys ``E, A, B, alpha, beta``
(natural scale).  Every value may be a scalar or an array of posterior
draws; arrays broadcast against ``N`` and ``D`` by the usual rules.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = [
    "PARAMETERS",
    "FLOPS_PER_PARAM_TOKEN",
    "log_loss",
    "loss",
    "log_loss_from_logs",
    "frontier_coefficients",
    "optimal_allocation",
]

#: The law's parameters, in display order.
PARAMETERS = ("E", "A", "B", "alpha", "beta")

#: Training FLOPs per parameter per token in the standard cost model C = 6 N D.
FLOPS_PER_PARAM_TOKEN = 6.0


def _xp(*arrays):
    """Return the array namespace (numpy or jax.numpy) of the inputs."""
    for a in arrays:
        if type(a).__module__.startswith("jax"):
            import jax.numpy as jnp

            return jnp
    return np


def log_loss_from_logs(log_E, log_A, log_B, alpha, beta, log_N, log_D):
    """Log loss of the law from log-scale parameters and log covariates.

    This is the numerically stable core: a three-term log-sum-exp.

    Parameters
    ----------
    log_E, log_A, log_B, alpha, beta : array_like
        Law parameters; ``log_*`` are natural logs.
    log_N, log_D : array_like
        Natural logs of model parameters and training tokens.

    Returns
    -------
    array
        ``log L(N, D)``, broadcast over all inputs.
    """
    xp = _xp(log_E, log_A, log_B, alpha, beta, log_N, log_D)
    t_e = log_E + 0.0 * log_N
    t_n = log_A - alpha * log_N
    t_d = log_B - beta * log_D
    m = xp.maximum(xp.maximum(t_e, t_n), t_d)
    return m + xp.log(xp.exp(t_e - m) + xp.exp(t_n - m) + xp.exp(t_d - m))


def log_loss(params: Mapping, N, D):
    """Natural log of the predicted loss ``L(N, D)``.

    Parameters
    ----------
    params : mapping
        ``E, A, B, alpha, beta`` on their natural scale (scalars or arrays
        of draws).
    N, D : array_like
        Model parameters and training tokens.

    Returns
    -------
    array
        ``log L(N, D)``.
    """
    xp = _xp(*(params[k] for k in PARAMETERS), N, D)
    return log_loss_from_logs(
        xp.log(params["E"]),
        xp.log(params["A"]),
        xp.log(params["B"]),
        params["alpha"],
        params["beta"],
        xp.log(N),
        xp.log(D),
    )


def loss(params: Mapping, N, D):
    """Predicted loss ``L(N, D) = E + A / N**alpha + B / D**beta``.

    See :func:`log_loss` for the arguments.
    """
    xp = _xp(*(params[k] for k in PARAMETERS), N, D)
    return xp.exp(log_loss(params, N, D))


def frontier_coefficients(params: Mapping):
    """Exponents and coefficient of the compute-optimal frontier under C = 6 N D.

    Minimising ``L`` at fixed ``C = 6 N D`` gives ``N_opt = G (C/6)**a`` and
    ``D_opt = (C/6)**b / G`` with

    * ``a = beta / (alpha + beta)``
    * ``b = alpha / (alpha + beta)``
    * ``G = (alpha A / (beta B)) ** (1 / (alpha + beta))``

    Parameters
    ----------
    params : mapping
        ``E, A, B, alpha, beta`` (scalars or arrays of draws).

    Returns
    -------
    dict
        ``a``, ``b`` and ``G`` with the shape of the inputs.
    """
    alpha, beta = params["alpha"], params["beta"]
    s = alpha + beta
    xp = _xp(alpha, beta, params["A"], params["B"])
    log_G = (xp.log(alpha) + xp.log(params["A"]) - xp.log(beta) - xp.log(params["B"])) / s
    return {"a": beta / s, "b": alpha / s, "G": xp.exp(log_G)}


def optimal_allocation(params: Mapping, C):
    """Loss-optimal model size and tokens at compute ``C`` under C = 6 N D.

    Parameters
    ----------
    params : mapping
        ``E, A, B, alpha, beta``.  Arrays of draws broadcast against ``C``;
        pass ``params[k][:, None]`` and ``C[None, :]`` for a draws x budgets
        grid.
    C : array_like
        Training compute in FLOPs.

    Returns
    -------
    N_opt, D_opt : arrays
        With ``6 * N_opt * D_opt == C`` up to rounding.
    """
    f = frontier_coefficients(params)
    xp = _xp(f["a"], C)
    log_c6 = xp.log(C) - np.log(FLOPS_PER_PARAM_TOKEN)
    log_G = xp.log(f["G"])
    log_N = log_G + f["a"] * log_c6
    return xp.exp(log_N), xp.exp(log_c6 - log_N)
