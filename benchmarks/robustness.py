"""Does the default sampler pass its own checks on well-specified data?

K synthetic, Chinchilla-sized data sets (245 runs each) drawn from the
default law with known truths: ``N`` log-uniform in 1e7.7-1e10.3, ``D``
log-uniform in 1e9.3-1e11.6, Normal noise of sd 0.015 on log loss (1.5%),
truths drawn uniformly with ``E`` in 1.7-2.3, ``log10 A`` in 2.3-3.2,
``log10 B`` in 2.8-3.6, ``alpha`` in 0.25-0.40, ``beta`` in 0.25-0.42
(issue 12, item 19).

Each data set is fitted with ``bayesscale.fit_many`` at the default sampler
settings (4 chains x 1000 warm-up + 1000 draws), one data set per program
call so that each fit has its own wall time (a retried fit counts both runs), with
``extrapolation="none"`` (the calibration refits do not touch the checks).
A data set passes when every check of :func:`bayesscale.diagnostics.screen`
passes (R-hat <= 1.01, bulk and tail ESS >= 400, no divergences, E-BFMI >=
0.3, no draw at the tree-depth limit).

Usage: ``python benchmarks/robustness.py [--k 200] [--chains 4 --warmup 1000 --draws 1000]
[--device gpu --batch-size 200]``.  On a GPU, one data set per call wastes the device (NUTS there is
latency bound), so ``--batch-size`` fits that many data sets per call; each fit's time is then its
batch's sampling time (the "fit s" column), and the section written is "robustness_gpu".
Prints the pass rate, divergences, R-hat, leapfrog steps and per-fit time
quantiles from a second, timed pass (the first pass compiles every program:
one per shape bucket, and the retry's), and (with ``--write``) the "robustness" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

import bayesscale as bs
from bayesscale.diagnostics import screen

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, table, write_section  # noqa: E402

N_RUNS = 245
SIGMA = 0.015


def truth(rng: np.random.Generator) -> dict:
    """One set of true parameters from the ranges of issue 12, item 19."""
    return {"E": rng.uniform(1.7, 2.3), "A": 10 ** rng.uniform(2.3, 3.2), "B": 10 ** rng.uniform(2.8, 3.6),
            "alpha": rng.uniform(0.25, 0.40), "beta": rng.uniform(0.25, 0.42)}


def datasets(K: int, seed: int = 0) -> tuple[list, list]:
    """K well-specified data sets and their truths (data set ``k`` depends only on ``seed`` and ``k``)."""
    runs, truths = [], []
    for k in range(K):
        rng = np.random.default_rng([seed, k])
        p = truth(rng)
        N = 10 ** rng.uniform(7.7, 10.3, N_RUNS)
        D = 10 ** rng.uniform(9.3, 11.6, N_RUNS)
        runs.append(bs.simulate_runs(p, N=N, D=D, sigma=SIGMA, seed=int(rng.integers(2**31))))
        truths.append(p)
    return runs, truths


def fit_each(runs: list, *, seed: int = 0, batch_size: int = 1, **kw) -> list:
    """Fit every data set with ``fit_many`` (one per call by default: each gets its own wall time)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        return bs.fit_many(runs, seed=seed, batch_size=batch_size, extrapolation="none", progress=False, **kw)


def per_fit(posts: list, max_tree_depth: int = 10) -> list[dict]:
    health = screen([p._natural for p in posts], [p.stats for p in posts], max_tree_depth=max_tree_depth)
    rows = []
    for k, (p, (_, h)) in enumerate(zip(posts, health.iterrows())):
        rows.append({"k": k, "ok": bool(h.ok), "divergences": int(h.divergences), "max_r_hat": float(h.max_r_hat),
                     "min_ess": float(min(h.min_ess_bulk, h.min_ess_tail)), "min_bfmi": float(h.min_bfmi),
                     "at_max_depth": int(h.at_max_depth), "seconds": float(p.info["timing"]["sampling"] + p.info.get("retried", {}).get("first_sampling_s", 0.0)),
                     "leapfrog": float(np.mean(p.stats["num_steps"])), "retried": bool(p.info.get("retried", False))})
    return rows


def summarise(rows: list[dict], label: str) -> dict:
    ok = np.array([r["ok"] for r in rows])
    div = np.array([r["divergences"] for r in rows])
    rh = np.array([r["max_r_hat"] for r in rows])
    sec = np.array([r["seconds"] for r in rows])
    lf = np.array([r["leapfrog"] for r in rows])
    q = np.quantile(sec, [0.5, 0.9, 1.0])
    return {"settings": label, "data sets": len(rows), "pass every check": f"{ok.sum()}/{len(rows)} ({ok.mean():.1%})",
            "with divergences": int((div > 0).sum()), "divergences (max)": int(div.max()),
            "R-hat > 1.01": int((rh > 1.01).sum()), "max R-hat": float(rh.max()),
            "ESS < 400": int(sum(r["min_ess"] < 400 for r in rows)),
            "retried": int(sum(r["retried"] for r in rows)),
            "leapfrog/draw (median)": float(np.median(lf)),
            "fit s (median / p90 / max)": f"{q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f}",
            "max / median": float(q[2] / q[0]),
            "max / median, fits not retried": float(max(r["seconds"] for r in rows if not r["retried"]) / q[0])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0, help="data seed")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--target-accept", type=float, default=None)
    ap.add_argument("--label", default="default settings")
    ap.add_argument("--device", choices=["cpu", "gpu"], default=None, help="default: bayesscale's choice")
    ap.add_argument("--batch-size", type=int, default=1, help="data sets per program call")
    ap.add_argument("--write", action="store_true", help="write the 'robustness' section of RESULTS.md")
    args = ap.parse_args()
    runs, truths = datasets(args.k, seed=args.seed)
    kw = dict(chains=args.chains, warmup=args.warmup, draws=args.draws, device=args.device,
              batch_size=args.batch_size)
    if args.target_accept is not None:
        kw["target_accept"] = args.target_accept
    # an untimed first pass compiles every program the timed pass uses (one per shape bucket, and the retry's),
    # as a warm process or the persistent compilation cache would have them
    fit_each(runs, **kw)
    t = time.perf_counter()
    posts = fit_each(runs, **kw)
    wall = time.perf_counter() - t
    rows = per_fit(posts, max_tree_depth=10)
    for r in rows:
        if not r["ok"] or r["retried"]:
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()},
                  {k: round(v, 3) for k, v in truths[r["k"]].items()}, flush=True)
    for r in sorted(rows, key=lambda r: -r["seconds"])[:5]:
        print("slow:", {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
    s = summarise(rows, args.label)
    text = table([s], list(s))
    print(text)
    print(f"wall {wall:.0f} s")
    if args.write:
        gpu = args.device == "gpu"
        write_section("robustness_gpu" if gpu else "robustness", f"## robustness.py{' --device gpu' if gpu else ''}\n\nMachine: {machine()}\n\n{args.k} well-specified synthetic "
                      f"data sets (245 runs, N log-uniform 1e7.7-1e10.3, D 1e9.3-1e11.6, 1.5% Normal noise; issue 12 "
                      f"item 19), `fit_many` with {args.chains} chains x {args.warmup} warm-up + {args.draws} draws, "
                      f"{args.batch_size} data set(s) per call; a data set passes when every check passes.\n\n{text}")


if __name__ == "__main__":
    main()
