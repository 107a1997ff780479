"""Synthetic runs drawn from known parameters, for checks and calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import laws
from .data import Runs, load_runs

__all__ = ["simulate_runs", "CHINCHILLA_FIT", "PUBLISHED", "isoflop_design"]

#: The published refit of Besiroglu et al. (2024) on the Chinchilla data.
CHINCHILLA_FIT = {"E": 1.8169, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}

#: Parameters to simulate each built-in law from: the published constants where a paper gives them
#: (Chinchilla: Besiroglu et al. 2024; Kaplan et al. 2020, eq. 1.5; Muennighoff et al. 2023's R*_D and
#: R*_N on top of the Chinchilla refit), and for the two forms no paper pins down: an illustrative
#: envelope (``compute_only``) and the coupled law's own fit to the Chinchilla data (``coupled``:
#: posterior medians of ``fit(datasets.chinchilla(), law="coupled", bend="none")``, 4 x 500 + 500).
PUBLISHED = {
    "chinchilla": CHINCHILLA_FIT,
    "kaplan": {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103},
    "data_constrained": dict(CHINCHILLA_FIT, R_D=15.4, R_N=5.3),
    "compute_only": {"E": 1.8, "A": 2.6e3, "gamma": 0.17},
    "coupled": {"E": 1.7653, "A": 389.2, "B": 1299.6, "alpha": 0.3277, "beta": 0.3996, "gamma": -0.0585},
}


def isoflop_design(budgets=(1e18, 3e18, 1e19, 3e19, 1e20, 3e20, 1e21), sizes_per_budget: int = 9,
                   tokens_per_param=(2.0, 200.0)) -> tuple[np.ndarray, np.ndarray]:
    """An isoFLOP sweep: at each budget, model sizes spaced evenly in log N.

    Each budget's sizes span ``tokens_per_param`` (``D / N`` from 2 to 200
    by default), the range Chinchilla's sweeps cover.

    Returns
    -------
    N, D : ndarray
    """
    N, D = [], []
    lo, hi = np.log(tokens_per_param[1]), np.log(tokens_per_param[0])
    for C in np.asarray(budgets, dtype=float):
        # D / N = r and 6 N D = C  =>  N = sqrt(C / (6 r))
        r = np.exp(np.linspace(lo, hi, sizes_per_budget))
        n = np.sqrt(C / (laws.FLOPS_PER_PARAM_TOKEN * r))
        N.append(n)
        D.append(C / (laws.FLOPS_PER_PARAM_TOKEN * n))
    return np.concatenate(N), np.concatenate(D)


def simulate_runs(params: dict | None = None, *, N=None, D=None, U=None, law="chinchilla", sigma: float = 0.01,
                  df: float | None = None, budget_sd: float = 0.0, curvature: float = 0.0, seed: int = 0,
                  as_frame: bool = False) -> Runs | pd.DataFrame:
    """Draw synthetic runs from the law with known parameters.

    ``log loss = log L(N, D) + u[budget] + k * x**2 + eps`` with ``eps``
    Normal (or Student-t with ``df`` degrees of freedom) of scale
    ``sigma``, per-budget offsets ``u ~ Normal(0, budget_sd)``, and a
    curvature the law cannot express: ``k = curvature`` times the squared
    distance ``x`` in decades of compute from the design's geometric-mean
    compute.  The last two are misspecifications for calibration checks.

    Parameters
    ----------
    params : dict, optional
        The law's natural parameters; default ``PUBLISHED[law]``
        (:data:`CHINCHILLA_FIT` for the default law).
    N, D : array_like, optional
        The design; default :func:`isoflop_design`.
    U : array_like, optional
        Unique tokens of each run (a column ``U`` in the result), for laws
        that read them (``data_constrained``).
    law : str or Law
        The law to draw from.
    sigma : float
        Noise scale on log loss.
    df : float, optional
        Student-t degrees of freedom; None gives Normal noise.
    budget_sd : float
        Scale of offsets shared by runs of one compute budget.
    curvature : float
        Coefficient of the extra curvature in log compute (log-loss units
        per squared decade).
    seed : int
        Random seed.
    as_frame : bool
        Return a DataFrame (columns N, D, C, loss) instead of :class:`Runs`.

    Returns
    -------
    Runs or pandas.DataFrame
    """
    law = laws.get_law(law)
    if params is None:
        if law.name not in PUBLISHED:
            raise ValueError(f"law {law.name!r} has no published constants: pass params=")
        params = PUBLISHED[law.name]
    params = dict(params)
    missing = [k for k in law.params if k not in params]
    if missing:
        raise ValueError(f"params lacks {missing} of law {law.name!r} (its parameters: {', '.join(law.params)})")
    if N is None and D is None:
        N, D = isoflop_design()
    arrays = [np.asarray(N, dtype=float), np.asarray(D, dtype=float)] + ([] if U is None else [np.asarray(U, float)])
    N, D, *rest = np.broadcast_arrays(*arrays)
    U = rest[0] if rest else None
    rng = np.random.default_rng(seed)
    mu = law.log_loss_ND({k: params[k] for k in law.params}, N, D, U=U)
    eps = rng.standard_normal(N.shape) if df is None else rng.standard_t(df, N.shape)
    C = laws.FLOPS_PER_PARAM_TOKEN * N * D
    frame = pd.DataFrame({"N": N, "D": D, "C": C})
    if U is not None:
        frame["U"] = U
    if budget_sd > 0:
        from .data import budget_groups

        g = budget_groups(C)
        mu = mu + rng.normal(0.0, budget_sd, g.max() + 1)[g]
    if curvature:
        x = np.log10(C) - np.log10(C).mean()
        mu = mu + curvature * x**2
    frame["loss"] = np.exp(mu + sigma * eps)
    return frame if as_frame else load_runs(frame)
