"""Calibration evidence: simulation-based calibration and misspecified backtests.

1. SBC (Talts et al. 2018): >= 200 data sets drawn from the prior (fixed
   locations, :data:`bayesscale.sbc.SBC_PRIORS`) on an isoFLOP design of
   7 budgets x 9 sizes; rank histograms per parameter (figure
   ``benchmarks/sbc_ranks.png``), a chi-square uniformity test, and the
   coverage of 50% and 90% intervals.
2. Misspecified sweeps: isoFLOP sweeps (9 budgets x 9 sizes) simulated with
   per-budget offsets and/or an extra curvature in log compute that the law
   cannot express; backtest on the largest budget with the default model
   (calibrated extrapolation) and with the plain law.
3. The Chinchilla hold-out (C >= 1e21, 36 runs) for both models, seeds 0-2.

Usage: ``python benchmarks/calibration.py [--datasets 200] [--sweeps 8]``.
Prints tables and writes the "calibration" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import pandas as pd

import bayesscale as bs
from bayesscale.backtest import summarize
from bayesscale.sbc import simulation_based_calibration
from bayesscale.simulate import isoflop_design

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, table, write_section  # noqa: E402

SCENARIOS = {"well specified": {}, "budget offsets (sd 0.01)": dict(budget_sd=0.01),
             "curvature (0.004 / decade^2)": dict(curvature=0.004),
             "offsets + curvature": dict(budget_sd=0.01, curvature=0.004)}
COLS = ["coverage_50", "coverage_80", "coverage_90", "width_90", "mlpd"]


def misspecified(n_sweeps: int) -> list[dict]:
    N, D = isoflop_design(budgets=(1e18, 3e18, 1e19, 3e19, 1e20, 3e20, 1e21, 3e21, 1e22))
    rows = []
    for name, kw in SCENARIOS.items():
        for model in ("calibrated", "none"):
            points = []
            for s in range(n_sweeps):
                runs = bs.simulate_runs(N=N, D=D, sigma=0.005, seed=s, **kw)
                res = bs.backtest(runs, holdout="largest_budget", compare_allocation=False, progress=False,
                                  extrapolation=model, chains=2, warmup=500, draws=500, seed=s)
                points.append(res.points)
            rows.append({"scenario": name, "extrapolation": model, **summarize(pd.concat(points))})
            print(rows[-1], flush=True)
    return rows


def chinchilla_holdout() -> list[dict]:
    runs = bs.datasets.chinchilla()
    rows = []
    for model in ("calibrated", "none"):
        for seed in (0, 1, 2):
            res = bs.backtest(runs, holdout=1e21, compare_allocation=False, progress=False, extrapolation=model,
                              seed=seed)
            rows.append({"extrapolation": model, "seed": seed, **summarize(res.points)})
            print(rows[-1], flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=int, default=200)
    ap.add_argument("--sweeps", type=int, default=8)
    args = ap.parse_args()
    warnings.simplefilter("ignore", bs.FitWarning)
    t0 = time.perf_counter()
    sbc = simulation_based_calibration(args.datasets, progress=False)
    t_sbc = time.perf_counter() - t0
    uni, cov = sbc.uniformity(), sbc.coverage()
    sbc_table = uni.join(cov).reset_index(names="parameter")
    from bayesscale.plots import save_figure, sbc_ranks

    save_figure(sbc_ranks(sbc), os.path.join(os.path.dirname(__file__), "sbc_ranks.png"))
    print(sbc_table)
    mis = misspecified(args.sweeps)
    chin = chinchilla_holdout()
    body = (f"## calibration.py\n\nMachine: {machine()}\n\n"
            f"### Simulation-based calibration\n\n{args.datasets} data sets from the prior (63-run isoFLOP design), "
            f"2 chains x 500 warm-up + 500 draws, ranks among 99 thinned draws; {t_sbc:.0f} s. "
            f"Share of fits whose sampler checks all pass: {sbc.healthy.mean():.0%} (prior draws include "
            "near-flat laws). Rank histograms: `benchmarks/sbc_ranks.png`.\n\n"
            + table(sbc_table.to_dict("records"), ["parameter", "chi2", "dof", "p_value", "coverage_50", "coverage_90"])
            + f"\n### Misspecified sweeps: backtest on the largest budget\n\n{args.sweeps} synthetic sweeps per "
            "scenario (9 budgets 1e18-1e22 x 9 sizes, noise sd 0.005), fitted on 8 budgets, predicting the ninth "
            "(0.48 decades beyond).\n\n"
            + table(mis, ["scenario", "extrapolation", "n_runs", *COLS])
            + "\n### Chinchilla: fit on C < 1e21, predict the 36 runs at C >= 1e21\n\n"
            + table(chin, ["extrapolation", "seed", "n_runs", *COLS]))
    write_section("calibration", body)


if __name__ == "__main__":
    main()
