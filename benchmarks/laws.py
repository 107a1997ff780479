"""The law library: parameter recovery per built-in law, and whether `compare` picks the true law.

1. Recovery: for each built-in law, synthetic isoFLOP sweeps drawn from its
   published constants (``bs.simulate.PUBLISHED``; the data-constrained law
   with 1-40 epochs of repetition), fitted with ``fit_many``; the table gives
   the share of 90% intervals that cover the truth, per law, over all its
   parameters.
2. Selection: data drawn from law X, laws X and Y both fitted; how often X
   ranks first by PSIS-LOO elpd and by the rolling-origin backtest mlpd
   (``bs.compare``).

Usage: python benchmarks/laws.py [--quick]   (writes a section of RESULTS.md)
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings

import numpy as np

import bayesscale as bs
from _common import machine, table, write_section


def design(law: str, seed: int):
    N, D = bs.simulate.isoflop_design()
    U = None
    if law == "data_constrained":
        U = D / np.exp(np.random.default_rng(seed).uniform(0, np.log(40), D.size))
    return N, D, U


def sweeps(law: str, n: int, seed0: int = 0, sigma: float = 0.01):
    out = []
    for s in range(seed0, seed0 + n):
        N, D, U = design(law, s)
        out.append(bs.simulate_runs(law=law, N=N, D=D, U=U, sigma=sigma, seed=s))
    return out


def recovery(n: int, settings: dict) -> list[dict]:
    rows = []
    for law in [n for n in bs.LAWS if n in bs.simulate.PUBLISHED]:  # kaplan_steps: benchmarks/curves_calibration.py
        truth = bs.simulate.PUBLISHED[law]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bs.FitWarning)
            posts = bs.fit_many(sweeps(law, n), law=law, extrapolation="none", progress=False, **settings)
        hits, total, ok = 0, 0, 0
        for p in posts:
            s = p.summary(ci=0.9)
            ok += p.check().ok
            for k in p.law.params:
                hits += int(s.loc[k, "lo90"] <= truth[k] <= s.loc[k, "hi90"])
                total += 1
        rows.append({"law": law, "data sets": n, "intervals": total, "90% coverage": hits / total,
                     "fits passing checks": f"{ok}/{n}", "seconds": time.perf_counter() - t0})
        print(rows[-1], flush=True)
    return rows


def selection(pairs, n: int, settings: dict, backtest: bool) -> list[dict]:
    rows = []
    for x, y in pairs:
        data = sweeps(x, n, seed0=100)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bs.FitWarning)
            px = bs.fit_many(data, law=x, extrapolation="none", progress=False, **settings)
            py = bs.fit_many(data, law=y, extrapolation="none", progress=False, **settings)
        by_elpd = by_bt = 0
        for a, b in zip(px, py):
            t = bs.compare([a, b], backtest=backtest, backtest_settings=settings, progress=False).set_index("law")
            by_elpd += int(t.loc[x, "elpd_loo"] > t.loc[y, "elpd_loo"])
            if backtest:
                by_bt += int(t.loc[x, "backtest_mlpd"] > t.loc[y, "backtest_mlpd"])
        row = {"truth": x, "rival": y, "trials": n, "truth first by elpd": by_elpd / n}
        if backtest:
            row["truth first by backtest mlpd"] = by_bt / n
        rows.append(row)
        print(row, flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer data sets and shorter chains")
    ap.add_argument("--no-backtest", action="store_true", help="rank by elpd only")
    ap.add_argument("--recovery-only", action="store_true", help="skip the selection trials")
    ap.add_argument("--sets", type=int, default=None, help="data sets per law for the recovery table")
    args = ap.parse_args()
    n_rec, n_sel = (8, 6) if args.quick else (20, 20)
    n_rec = args.sets or n_rec
    settings = dict(chains=2, warmup=300, draws=300) if args.quick else dict(chains=4, warmup=500, draws=500)
    rec = recovery(n_rec, settings)
    if args.recovery_only:
        body = (f"## Law library: recovery ({n_rec} data sets per law)\n\nMachine: {machine()}. Sampler: {settings}. "
                "Default model (bend auto, plain extrapolation).\n\n90% intervals of every parameter against the "
                "published constants the data were drawn from.\n\n" + table(rec, list(rec[0])))
        write_section("laws-recovery", body)
        print(body)
        return
    names = [k for k in bs.LAWS if k != "data_constrained"]  # the data-constrained law needs U: rivals cannot fit its data
    pairs = list(itertools.permutations(names, 2)) if not args.quick else [
        ("chinchilla", "kaplan"), ("kaplan", "chinchilla"), ("chinchilla", "coupled"), ("coupled", "chinchilla"),
        ("chinchilla", "compute_only"), ("compute_only", "chinchilla")]
    sel = selection(pairs, n_sel, settings, backtest=not args.no_backtest)
    body = (f"## Law library: recovery and selection ({'quick' if args.quick else 'full'})\n\n"
            f"Machine: {machine()}. Sampler: {settings}.\n\n"
            "Recovery: 90% intervals of every parameter against the published constants the data were drawn from.\n\n"
            + table(rec, list(rec[0])) + "\nSelection: data from the first law, both laws fitted; share of trials in "
            "which the true law ranks first.\n\n" + table(sel, list(sel[0])))
    write_section("laws", body)
    print(body)


if __name__ == "__main__":
    main()
