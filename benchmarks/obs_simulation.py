"""Synthetic sweeps with a known frontier: does a frontier observation model recover it, and what
does it cost when the noise is really symmetric?

Design: an IsoFLOP sweep (:func:`bayesscale.simulate.isoflop_design`, 7 budgets 1e18..1e21 x 9 sizes),
truth = the Besiroglu et al. Chinchilla refit.  Scenarios (noise on log loss):

* ``frontier``: law + u + eps, u ~ Exponential(mean 0.01), eps ~ Normal(0, 0.005);
* ``symmetric`` (control): law + Normal(0, 0.01).

Fit on the six smaller budgets, predict the largest.  Scores: frontier error (median over held-out
runs of |predicted law - true law|, in % of loss, the law taken as the posterior median of mu), the
median relative error of the run predictive, its bias, coverage, and the exact mlpd of log loss.

Usage: ``python benchmarks/obs_simulation.py [--sweeps 5] [--models student_t emg2]``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _obsmodels as om  # noqa: E402

from bayesscale import laws  # noqa: E402
from bayesscale.backtest import score_predictions  # noqa: E402
from bayesscale.simulate import CHINCHILLA_FIT, isoflop_design  # noqa: E402

BUDGETS = (1e18, 3e18, 1e19, 3e19, 1e20, 3e20, 1e21)


def sweep(scenario: str, seed: int) -> pd.DataFrame:
    N, D = isoflop_design(budgets=BUDGETS)
    rng = np.random.default_rng(seed)
    mu = laws.log_loss(CHINCHILLA_FIT, N, D)
    if scenario == "frontier":
        y = mu + rng.exponential(0.01, N.shape) + rng.normal(0, 0.005, N.shape)
    elif scenario == "symmetric":
        y = mu + rng.normal(0, 0.01, N.shape)
    else:
        raise ValueError(scenario)
    C = 6.0 * N * D
    return pd.DataFrame({"N": N, "D": D, "C": C, "loss": np.exp(y), "mu": mu,
                         "budget": np.repeat(np.arange(len(BUDGETS)), len(N) // len(BUDGETS))})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sweeps", type=int, default=5)
    ap.add_argument("--models", nargs="*", default=["student_t", "emg2"])
    ap.add_argument("--csv", default=os.path.join(os.path.dirname(__file__), "obs_simulation.csv"))
    args = ap.parse_args()
    rows = []
    for scenario in ("frontier", "symmetric"):
        for s in range(args.sweeps):
            df = sweep(scenario, s)
            tr, te = df[df.budget < df.budget.max()], df[df.budget == df.budget.max()]
            for model in args.models:
                f = om.fit(tr.N, tr.D, tr.loss, tr.C, tr.budget, model, seed=s)
                frontier = om.predict(f, te.N, te.D, te.C, te.budget, kind="frontier", seed=s)
                # the law itself: the frontier predictive without its noise is the median of mu; take the
                # posterior median of mu from the draws' parameters
                th = {k: f.samples[k][:, None] for k in ("log_E", "alpha", "beta", "t_N", "t_D")}
                mu_hat = np.median(om.law_mu(th, np.log(te.N.to_numpy())[None], np.log(te.D.to_numpy())[None],
                                             f.data["c_N"], f.data["c_D"], xp=np), axis=0)
                runs = om.predict(f, te.N, te.D, te.C, te.budget, kind="run", seed=s)
                sc = score_predictions(runs, te.loss.to_numpy())
                lpd = om.log_lik(f, te.N, te.D, te.C, te.loss, te.budget, seed=s)
                rows.append({"scenario": scenario, "sweep": s, "model": model,
                             "frontier_err_%": float(np.median(np.abs(mu_hat - te.mu.to_numpy())) * 100),
                             "frontier_bias_%": float(np.mean(mu_hat - te.mu.to_numpy()) * 100),
                             "run_med_rel_err_%": float(np.median(np.abs(sc["median"] / te.loss - 1)) * 100),
                             "run_bias_%": float(np.mean(np.log(sc["median"] / te.loss)) * 100),
                             "cov50": float(sc["covered_50"].mean()), "cov90": float(sc["covered_90"].mean()),
                             "mlpd": float(lpd.mean()), "divergences": f.divergences, "seconds": f.seconds,
                             "frontier_pred_bias_%": float(np.mean(np.log(np.median(frontier, 0)) - te.mu) * 100)})
                print(rows[-1], flush=True)
    out = pd.DataFrame(rows)
    out.to_csv(args.csv, index=False)
    summ = out.groupby(["scenario", "model"]).mean(numeric_only=True).drop(columns="sweep")
    print(summ.to_markdown(floatfmt=".3g"))


if __name__ == "__main__":
    main()
