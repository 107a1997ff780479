"""Calibration of the kaplan_steps law fitted from training curves: correlated vs independent checkpoints.

On curves drawn by ``bs.simulate_curves`` (Kaplan et al.'s constants; per-run
offsets and AR(1) noise along each curve, several seeds), fit

* the default model for curves: per-run random offsets (``offsets="budget"``,
  budget = run) and AR(1) residuals within a run (``likelihood="ar1"``);
* the independent-checkpoint model: ``likelihood="student_t",
  offsets="none"``, every checkpoint an independent observation;

and count how often the 90% equal-tailed interval of each parameter holds
the truth.  The frontier exponents of ``N``, ``B`` and ``S_min`` against
``C_min`` (``bayesscale.kaplan.frontier_exponents`` over posterior draws) are
compared with the values Kaplan's constants imply (0.684, 0.248, 0.068) and
with the paper's separately fitted values (0.73, 0.24, 0.03).

Usage::

    python benchmarks/curves_calibration.py --quick      # 8 data sets, short chains
    python benchmarks/curves_calibration.py              # 24 data sets, 4 chains x 500 draws

Prints a Markdown table (and writes it to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np

os.environ.setdefault("BAYESSCALE_HOST_DEVICES", str(max(1, min(os.cpu_count() or 1, 8))))

import bayesscale as bs  # noqa: E402
from bayesscale import kaplan  # noqa: E402

PARAMS = ("alpha_N", "alpha_S", "alpha_B", "B_star", "N_c", "S_c")
PAPER = {"N": 0.73, "B": 0.24, "S": 0.03}
CI = 0.9


def _interval(x, ci=CI):
    return np.quantile(x, [(1 - ci) / 2, (1 + ci) / 2])


def run(n_sets: int, chains: int, warmup: int, draws: int, checkpoints: int, seed0: int = 100):
    truth = dict(kaplan.KAPLAN_STEPS)
    implied = {k: float(v) for k, v in kaplan.frontier_exponents(truth).items() if k in ("N", "B", "S")}
    curves = [bs.load_curves(bs.simulate_curves(seed=seed0 + k, checkpoints=checkpoints), warmup=0)
              for k in range(n_sets)]
    models = {"per-run offset + AR(1) (default)": dict(),
              "independent checkpoints (student_t, no offsets)": dict(likelihood="student_t", offsets="none")}
    rows, timing = {}, {}
    for label, kw in models.items():
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bs.FitWarning)
            posts = bs.fit_many(curves, law="kaplan_steps", chains=chains, warmup=warmup, draws=draws, seed=1,
                                extrapolation="none", progress=False, **kw)
        timing[label] = time.perf_counter() - t0
        cover = {k: [] for k in PARAMS}
        width = {k: [] for k in PARAMS}
        fcov = {("implied", k): [] for k in implied} | {("paper", k): [] for k in PAPER}
        fmed = {k: [] for k in implied}
        fwidth = {k: [] for k in implied}
        n_div = 0
        for post in posts:
            p = post.law_params
            n_div += int(np.asarray(post.stats["diverging"]).sum())
            for k in PARAMS:
                lo, hi = _interval(np.log(p[k]))
                cover[k].append(lo <= np.log(truth[k]) <= hi)
                width[k].append(hi - lo)
            fe = kaplan.frontier_exponents(p)
            for k in implied:
                lo, hi = _interval(fe[k])
                fcov[("implied", k)].append(lo <= implied[k] <= hi)
                fcov[("paper", k)].append(lo <= PAPER[k] <= hi)
                fmed[k].append(float(np.median(fe[k])))
                fwidth[k].append(hi - lo)
        rows[label] = {"cover": {k: float(np.mean(v)) for k, v in cover.items()},
                       "width": {k: float(np.median(v)) for k, v in width.items()},
                       "fcov": {k: float(np.mean(v)) for k, v in fcov.items()},
                       "fmed": {k: float(np.median(v)) for k, v in fmed.items()},
                       "fwidth": {k: float(np.median(v)) for k, v in fwidth.items()},
                       "divergences": n_div, "sets": len(posts)}
    return rows, implied, timing, curves


def table(rows, implied, timing, n_sets, settings, n_points) -> str:
    out = []
    out.append(f"{n_sets} simulated data sets (bs.simulate_curves seeds 100..{99 + n_sets}: 6 sizes x 3 batch sizes, "
               f"{n_points} checkpoints each, run_sd 0.01, sigma 0.005, rho 0.8); {settings}; "
               f"90% equal-tailed intervals (of log parameter).\n")
    out.append("Coverage of the truth (nominal 0.90), and median interval width in log units:\n")
    out.append("| model | " + " | ".join(PARAMS) + " | divergences | seconds |")
    out.append("|---|" + "---|" * (len(PARAMS) + 2))
    for label, r in rows.items():
        cells = [f"{r['cover'][k]:.2f} ({r['width'][k]:.3g})" for k in PARAMS]
        out.append(f"| {label} | " + " | ".join(cells) + f" | {r['divergences']} | {timing[label]:.0f} |")
    out.append("")
    out.append("Frontier exponents against C_min (median over data sets of the posterior median; median 90% band "
               "width; coverage of the value implied by the constants and of the paper's fitted value):\n")
    out.append("| model | exponent | implied by constants | paper fit | posterior median | band width | "
               "covers implied | covers paper |")
    out.append("|---|---|---|---|---|---|---|---|")
    for label, r in rows.items():
        for k, name in (("N", "N_eff"), ("B", "B_crit"), ("S", "S_min")):
            out.append(f"| {label} | {name} | {implied[k]:.3f} | {PAPER[k]:.2f} | {r['fmed'][k]:.3f} | "
                       f"{r['fwidth'][k]:.3f} | {r['fcov'][('implied', k)]:.2f} | {r['fcov'][('paper', k)]:.2f} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 data sets, 2 chains x 300 + 300 draws")
    ap.add_argument("--sets", type=int, default=None)
    ap.add_argument("--out", default=None, help="write the Markdown table to this file")
    args = ap.parse_args(argv)
    if args.quick:
        n_sets, chains, warmup, draws, ckpt = args.sets or 8, 2, 300, 300, 15
    else:
        n_sets, chains, warmup, draws, ckpt = args.sets or 24, 4, 500, 500, 20
    settings = f"{chains} chains x {warmup} warm-up + {draws} draws"
    t0 = time.perf_counter()
    rows, implied, timing, _ = run(n_sets, chains, warmup, draws, ckpt)
    text = table(rows, implied, timing, n_sets, settings, ckpt)
    text += (f"\n\nMachine: {platform.platform()}, {os.cpu_count()} CPU cores "
             f"(host devices {os.environ.get('BAYESSCALE_HOST_DEVICES')}); total {time.perf_counter() - t0:.0f} s.")
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
