"""Many fits at once: throughput of ``bayesscale.fit_many`` over K data sets.

Each data set is a synthetic, Chinchilla-sized table (245 runs: an isoFLOP
design of 7 budgets x 35 sizes) drawn from its own parameters around the
published Chinchilla refit.  All K data sets x 4 chains run as one compiled,
batched program, split across all devices of the platform.

Reports, per K: wall time (compilation excluded: a warm-up call of the same
shape compiles first; a CPU runs chunks of at most 100 data sets, a GPU all K
at once), posteriors per second, leapfrog steps (gradient evaluations) per
second, and the share of data sets whose diagnostics pass (R-hat <= 1.01,
and all of ESS >= 400, no divergences, E-BFMI >= 0.3, no saturated tree).

Usage: ``python benchmarks/batch_speed.py [--device gpu] [--sizes 1 10 100 1000] [--extrapolation none]``.
Prints a table and writes the "batch_speed_<device>[_none]" section of RESULTS.md.
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
from bayesscale.simulate import CHINCHILLA_FIT, isoflop_design

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, table, write_section  # noqa: E402


def datasets(K: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    N, D = isoflop_design(sizes_per_budget=35)
    out = []
    for k in range(K):
        p = {n: v * np.exp(rng.normal(0, 0.1)) for n, v in CHINCHILLA_FIT.items()}
        out.append(bs.simulate_runs(p, N=N, D=D, sigma=0.01, df=4, seed=seed * 100_000 + k))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100, 1000])
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--extrapolation", choices=["calibrated", "none"], default="calibrated",
                    help="'none' times the sampling alone; 'calibrated' (fit_many's default) adds the "
                         "rolling-origin refits of the extrapolation error")
    ap.add_argument("--cold-above", type=int, default=None,
                    help="for K above this, skip the untimed compiling call (it repeats the whole fit): the "
                         "row's wall time then includes compilation")
    args = ap.parse_args()
    warnings.simplefilter("ignore", bs.FitWarning)
    kw = dict(chains=args.chains, warmup=args.warmup, draws=args.draws, device=args.device, progress=False,
              extrapolation=args.extrapolation)
    rows = []
    for K in args.sizes:
        data = datasets(K, seed=K)
        # one program shape per K: all of K at once on a GPU, chunks of at most 100 on a CPU
        batch = K if args.device == "gpu" else min(K, 100)
        cold = args.cold_above is not None and K > args.cold_above
        if not cold:
            bs.fit_many(data[:batch], batch_size=batch, **kw)  # compile outside the timing
        t = time.perf_counter()
        posts = bs.fit_many(data, batch_size=batch, **kw)
        dt = time.perf_counter() - t
        health = screen([p._natural for p in posts], [p.stats for p in posts], max_tree_depth=10)
        steps = sum(float(np.sum(p.stats["num_steps"])) for p in posts) * (args.warmup + args.draws) / args.draws
        rows.append({"K": K, "extrapolation": args.extrapolation, "wall s": dt, "compile in wall": "yes" * cold,
                     "sampling s": posts[0].info["timing"]["sampling"],
                     "posteriors/s": K / dt, "gradient evals/s": steps / dt,
                     "R-hat <= 1.01": f"{np.mean(health.max_r_hat <= 1.01):.1%}",
                     "all checks pass": f"{health.ok.mean():.1%}"})
        print(rows[-1], flush=True)
        text = table(rows, list(rows[0]))  # written after every K: a long run keeps what it measured
        name = f"batch_speed_{args.device}" + ("" if args.extrapolation == "calibrated" else "_" + args.extrapolation)
        write_section(name, f"## batch_speed.py --device {args.device} --extrapolation {args.extrapolation}\n\n"
                      f"Machine: {machine()}\n\nSynthetic Chinchilla-sized data sets (245 runs), {args.chains} "
                      f"chains x {args.warmup} warm-up + {args.draws} draws each. Gradient evaluations are the "
                      f"post-warm-up leapfrog steps scaled to the whole run.\n\n{text}")
    print(text)


if __name__ == "__main__":
    main()
