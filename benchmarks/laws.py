"""The law library: parameter recovery per built-in law, and whether `compare` picks the true law.

1. Recovery: for each built-in law, synthetic isoFLOP sweeps drawn from its
   published constants (``bs.simulate.PUBLISHED``; the data-constrained law
   with 1-40 epochs of repetition), fitted with ``fit_many``; the table gives
   the share of 90% intervals that cover the truth, per law, over all its
   parameters.
2. Selection: data drawn from law X, laws X and Y both fitted; how often X
   ranks first by PSIS-LOO elpd and by the rolling-origin backtest mlpd
   (``bs.compare``).

Usage: PYTHONPATH=. python benchmarks/laws.py [--quick]   (writes a section of RESULTS.md)
       PYTHONPATH=. python benchmarks/laws.py --selection-only --trials 20 --chains 2 --warmup 300 [--pairs x:y,...]

(``PYTHONPATH=.``: run from the repository root so that this checkout's bayesscale is imported, not an
installed copy.)
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings
from pathlib import Path

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


def recovery(n: int, settings: dict, laws=None, seed0: int = 0) -> list[dict]:
    """90% coverage per law, over all parameters and for the least-covered one.

    The parameters of one data set tend to miss together (their errors are correlated), so the
    coverage over all parameters varies from one batch of data sets to the next about as much as one
    parameter's: with 20 data sets, a well-calibrated 90% interval covers 15 to 20 times (central 95%
    of Binomial(20, 0.9)), i.e. 0.75 to 1.
    """
    rows = []
    for law in laws or [n for n in bs.LAWS if n in bs.simulate.PUBLISHED]:  # kaplan_steps: benchmarks/curves_calibration.py
        truth = bs.simulate.PUBLISHED[law]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bs.FitWarning)
            posts = bs.fit_many(sweeps(law, n, seed0=seed0), law=law, extrapolation="none", progress=False,
                                **settings)
        ok = 0
        per = dict.fromkeys(posts[0].law.params, 0)
        for p in posts:
            s = p.summary(ci=0.9)
            ok += p.check().ok
            for k in per:
                per[k] += int(s.loc[k, "lo90"] <= truth[k] <= s.loc[k, "hi90"])
        low = min(per, key=per.get)
        rows.append({"law": law, "data sets": n, "seeds": f"{seed0}-{seed0 + n - 1}", "intervals": n * len(per),
                     "90% coverage": sum(per.values()) / (n * len(per)), "least covered": f"{low} {per[low] / n:.2f}",
                     "fits passing checks": f"{ok}/{n}", "seconds": time.perf_counter() - t0})
        print(rows[-1], flush=True)
    return rows


def selection(pairs, n: int, settings: dict, backtest: bool, on_row=None) -> list[dict]:
    rows = []
    for x, y in pairs:
        t0 = time.perf_counter()
        data = sweeps(x, n, seed0=100)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bs.FitWarning)
            px = bs.fit_many(data, law=x, extrapolation="none", progress=False, **settings)
            py = bs.fit_many(data, law=y, extrapolation="none", progress=False, **settings)
        by_elpd = by_bt = wrong = pref = 0
        for a, b in zip(px, py):
            t = bs.compare([a, b], backtest=backtest, backtest_settings=settings, progress=False)
            pref += int(t.attrs["preferred"] == x)
            t = t.set_index("law")
            by_elpd += int(t.loc[x, "elpd_loo"] > t.loc[y, "elpd_loo"])
            # the rival ahead by more than twice the standard error of the difference: a confident wrong call
            wrong += int(t.loc[y, "elpd_loo"] - t.loc[x, "elpd_loo"] > 2 * float(t["diff_se"].max()))
            if backtest:
                by_bt += int(t.loc[x, "backtest_mlpd"] > t.loc[y, "backtest_mlpd"])
        row = {"truth": x, "rival": y, "trials": n, "truth first by elpd": by_elpd / n,
               "truth preferred": pref / n, "rival ahead by > 2 se": wrong / n}
        if backtest:
            row["truth first by backtest mlpd"] = by_bt / n
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        print(row, flush=True)
        if on_row is not None:
            on_row(row)
    return rows


SELECTION_CSV = Path(__file__).with_name("laws_selection.csv")


def _selection_csv(backtest: bool) -> Path:
    return SELECTION_CSV if backtest else SELECTION_CSV.with_name("laws_selection_elpd.csv")


def _selection_section(n_sel: int, settings: dict, backtest: bool = True):
    """Rewrite the selection section from every stored row measured with these trials and settings."""
    import pandas as pd

    df = pd.read_csv(_selection_csv(backtest))
    df = df[(df["trials"] == n_sel) & (df["settings"] == repr(settings))].drop_duplicates(["truth", "rival"], keep="last")
    first = ["truth", "rival", "trials", "truth first by elpd", "truth preferred"]
    df = df[[c for c in first if c in df.columns] + [c for c in df.columns if c not in first]]
    rows = df.drop(columns=["settings"]).to_dict("records")
    body = (f"## Law library: selection{'' if backtest else ' by elpd only'} ({n_sel} trials per ordered pair)\n\n"
            f"Machine: {machine()} (rows measured "
            f"at the dates shown). Sampler: {settings} (fits and backtest refits). Data: `sweeps(truth, trials, "
            "seed0=100)` (isoFLOP design, 7 budgets x 9 sizes, sigma 0.01); default model (bend auto, plain "
            "extrapolation).\n\nData from the first law, both laws fitted; share of trials in which the true law "
            "ranks first by PSIS-LOO elpd and by the rolling-origin backtest mlpd (`bs.compare`); `truth preferred`: "
            "the law `compare` marks `preferred` (the simplest law within 2 se of the best elpd) is the truth; "
            "`rival ahead by "
            "> 2 se`: trials in which the rival's elpd exceeds the truth's by more than twice the standard error of "
            f"the difference (a confident wrong call). Rows: benchmarks/{_selection_csv(backtest).name}.\n\n"
            + table(rows, [c for c in df.columns if c != "settings"]))
    write_section("laws-selection" if backtest else "laws-selection-elpd", body)
    return body


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer data sets and shorter chains")
    ap.add_argument("--no-backtest", action="store_true", help="rank by elpd only")
    ap.add_argument("--recovery-only", action="store_true", help="skip the selection trials")
    ap.add_argument("--sets", type=int, default=None, help="data sets per law for the recovery table")
    ap.add_argument("--selection-only", action="store_true", help="skip the recovery table")
    ap.add_argument("--laws", default=None, help="recovery: these laws only (comma-separated; prints, writes nothing)")
    ap.add_argument("--seed0", type=int, default=0, help="recovery: first data set's seed (prints, writes nothing)")
    ap.add_argument("--no-retry", action="store_true", help="recovery: keep fits that fail their checks as they are")
    ap.add_argument("--bend", default=None, choices=["auto", "on", "none"], help="recovery: the bend (default auto)")
    ap.add_argument("--trials", type=int, default=None, help="synthetic trials per ordered pair of laws")
    ap.add_argument("--pairs", default=None, help="ordered pairs to run, e.g. chinchilla:kaplan,kaplan:chinchilla")
    ap.add_argument("--chains", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None, help="warm-up iterations (and as many draws) per chain")
    args = ap.parse_args()
    n_rec, n_sel = (8, 6) if args.quick else (20, 20)
    n_rec = args.sets or n_rec
    n_sel = args.trials or n_sel
    settings = dict(chains=2, warmup=300, draws=300) if args.quick else dict(chains=4, warmup=500, draws=500)
    if args.chains:
        settings["chains"] = args.chains
    if args.warmup:
        settings.update(warmup=args.warmup, draws=args.warmup)
    names = [k for k in bs.simulate.PUBLISHED if k != "data_constrained"]  # the data-constrained law needs U: rivals cannot fit its data
    if args.selection_only:
        pairs = ([tuple(p.split(":")) for p in args.pairs.split(",")] if args.pairs
                 else list(itertools.permutations(names, 2)))
        import pandas as pd
        from datetime import datetime, timezone

        def store(row):
            row = dict(row, settings=repr(settings), date=f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}")
            path = _selection_csv(not args.no_backtest)
            old = pd.read_csv(path) if path.exists() else pd.DataFrame()
            pd.concat([old, pd.DataFrame([row])], ignore_index=True).to_csv(path, index=False)  # new columns: union
            _selection_section(n_sel, settings, not args.no_backtest)

        selection(pairs, n_sel, settings, backtest=not args.no_backtest, on_row=store)
        print(_selection_section(n_sel, settings, not args.no_backtest))
        return
    extra = {k: v for k, v in (("retry", False if args.no_retry else None), ("bend", args.bend)) if v is not None}
    rec = recovery(n_rec, dict(settings, **extra), laws=args.laws.split(",") if args.laws else None, seed0=args.seed0)
    if args.recovery_only:
        if args.laws or args.seed0 or extra:  # a partial run: print it, leave the results file alone
            print(table(rec, list(rec[0])))
            return
        body = (f"## Law library: recovery ({n_rec} data sets per law)\n\nMachine: {machine()}. Sampler: {settings}. "
                "Default model (bend auto, plain extrapolation).\n\n90% intervals of every parameter against the "
                "published constants the data were drawn from.\n\n" + table(rec, list(rec[0])))
        write_section("laws-recovery", body)
        print(body)
        return
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
