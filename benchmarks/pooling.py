"""Pooling evidence for grouped fits (issue 11), written to RESULTS.md.

Three studies:

1. ``centring``: centred against non-centred partial pooling on the real
   Marin sweeps (three data sets on one ladder) and on synthetic groups:
   leapfrog steps per draw, divergences, smallest bulk ESS, wall time.
2. ``holdout``: hold out each group's largest budget; compare separate fits
   (one plain fit per group), one law for all groups, ``pooling="shared"``
   and ``pooling="partial"`` on the held-out runs: mlpd, 90% and 50%
   coverage and the error of the median N_opt at the held-out budget
   (Marin: against the held-out IsoFLOP vertex; synthetic: against the true
   N_opt).  ``--extrapolation calibrated`` calibrates every method's
   extrapolation error (grouped fits: per group); ``--bend none`` turns the
   bend off everywhere.
3. ``multiplier``: a calibration study of the compute multiplier: synthetic
   pairs of groups whose only differences are A and B (so the true
   multiplier is ``(K_A / K_B)^(1/gamma)`` at every budget), coverage of the
   90% interval and a reliability table for P(B better).

    python benchmarks/pooling.py --quick          # CPU, a few minutes
    python benchmarks/pooling.py --quick --parts holdout --extrapolation calibrated
    python benchmarks/pooling.py                  # longer chains, more trials
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bayesscale as bs  # noqa: E402
from bayesscale.backtest import score_predictions, summarize  # noqa: E402
from bayesscale.calibration import isoflop_vertex  # noqa: E402
from bayesscale.groups import compute_multiplier  # noqa: E402
from bayesscale.simulate import CHINCHILLA_FIT, isoflop_design  # noqa: E402

from _common import machine, table, write_section  # noqa: E402

MARIN = Path(bs.__file__).resolve().parents[2] / "shared" / "data" / "marin_isoflops.csv"
SYN_BUDGETS = (1e18, 3e18, 1e19, 3e19, 1e20, 3e20)


def marin_frame() -> pd.DataFrame | None:
    if not MARIN.is_file():
        return None
    return pd.read_csv(MARIN).rename(columns={"C_nominal": "budget"})


def synthetic_groups(seed: int, *, n_groups: int = 3, sigma: float = 0.01, budgets=SYN_BUDGETS,
                     sizes: int = 7) -> tuple[pd.DataFrame, dict]:
    """Groups sharing E, alpha and beta, with A and B scaled by up to +-20% per group."""
    rng = np.random.default_rng([seed, 11])
    N, D = isoflop_design(budgets, sizes)
    frames, truth = [], {}
    for g in range(n_groups):
        p = dict(CHINCHILLA_FIT, A=CHINCHILLA_FIT["A"] * np.exp(rng.uniform(-0.2, 0.2)),
                 B=CHINCHILLA_FIT["B"] * np.exp(rng.uniform(-0.2, 0.2)))
        f = bs.simulate_runs(p, N=N, D=D, sigma=sigma, seed=seed * 100 + g, as_frame=True)
        f["dataset"] = f"g{g}"
        frames.append(f)
        truth[f"g{g}"] = p
    return pd.concat(frames, ignore_index=True), truth


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


# -- 1. centred or non-centred ---------------------------------------------------


def centring(quick: bool) -> str:
    S = dict(chains=4, warmup=500, draws=500) if quick else dict(chains=4, warmup=1000, draws=1000)
    cases = []
    m = marin_frame()
    if m is not None:
        cases.append(("Marin (3 data sets)", bs.load_runs(m, group="dataset")))
    f, _ = synthetic_groups(1)
    cases.append(("synthetic (3 groups)", bs.load_runs(f, group="dataset")))
    rows = []
    for name, runs in cases:
        for cent in ("noncentred", "centred"):
            for ta in (0.8, 0.95):
                for seed in (0, 1):
                    t0 = time.perf_counter()
                    post = _quiet(bs.fit, runs, groups=True, centering=cent, target_accept=ta, seed=seed, **S)
                    wall = time.perf_counter() - t0
                    conv = post.summary()
                    rows.append({"data": name, "centring": cent, "target_accept": ta, "seed": seed,
                                 "leapfrog/draw": float(post.stats["num_steps"].mean()),
                                 "divergences": int(post.stats["diverging"].sum()),
                                 "min ESS bulk": float(conv["ess_bulk"].min()),
                                 "max R-hat": float(conv["r_hat"].max()), "wall s": wall})
                    print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    agg = (df.groupby(["data", "centring", "target_accept"], sort=False)
           .agg({"leapfrog/draw": "mean", "divergences": "sum", "min ESS bulk": "min", "max R-hat": "max",
                 "wall s": "mean"}).reset_index())
    cols = list(agg.columns)
    return (f"### Centred or non-centred (partial pooling)\n\n{S['chains']} chains x {S['warmup']} warm-up + "
            f"{S['draws']} draws, 2 seeds per row (divergences summed, leapfrog steps and wall time averaged; "
            "wall time includes compilation on first use).\n\n" + table(agg.to_dict("records"), cols))


# -- 2. held-out budgets ---------------------------------------------------------


def _holdout_masks(runs: bs.Runs) -> np.ndarray:
    test = np.zeros(len(runs), bool)
    for k in range(runs.n_groups):
        sel = runs.group == k
        top = runs.budget[sel][np.argmax(runs.C[sel])]
        test |= sel & (runs.budget == top)
    return test


def _score(draws, te: bs.Runs, key: str, n_opt_pred: float, n_opt_true: float) -> pd.DataFrame:
    sc = score_predictions(draws, te.loss)
    return pd.DataFrame({"dataset": key, "budget": te.budget, "N": te.N, "loss": te.loss, **sc,
                         "n_opt_err": abs(np.log(n_opt_pred) - n_opt_true)})


def holdout_case(name: str, frame: pd.DataFrame, truth: dict | None, S: dict, seed: int,
                 extrapolation: str = "none", bend: str = "auto") -> list[dict]:
    runs = bs.load_runs(frame, group="dataset")
    test = _holdout_masks(runs)
    train = runs.subset(~test)
    points: dict[str, list] = {m: [] for m in ("separate", "one law", "shared", "partial")}
    M = dict(extrapolation=extrapolation, bend=bend, seed=seed, **S)
    fits = {"shared": _quiet(bs.fit, train, groups=True, pooling="shared", **M),
            "partial": _quiet(bs.fit, train, groups=True, pooling="partial", **M)}
    sep = _quiet(bs.fit_many, [train.select_group(g) for g in runs.group_names], **M)
    one = _quiet(bs.fit, dataclasses_replace_nogroups(train), **M)
    for k, g in enumerate(runs.group_names):
        te = runs.subset(test & (runs.group == k))
        te = bs.Runs(N=te.N, D=te.D, C=te.C, loss=te.loss, run_id=te.run_id, budget=te.budget)
        c = float(np.exp(np.log(te.C).mean()))
        if truth is not None:
            n_true = float(np.log(bs.laws.optimal_allocation(truth[g], c)[0]))
        else:
            n_true, _ = isoflop_vertex(te.N, te.loss)
        views = {"separate": sep[k], "one law": one, "shared": fits["shared"].group(g),
                 "partial": fits["partial"].group(g)}
        for m, post in views.items():
            n_pred = float(post.allocate([c])["N_opt"].iloc[0])  # with the calibrated N_opt error, if any
            pts = _score(post.predict_draws(te.N, te.D), te, f"{name}:{g}", n_pred, n_true)
            points[m].append(pts)
    rows = []
    for m, parts in points.items():
        pts = pd.concat(parts, ignore_index=True)
        s = summarize(pts)
        rows.append({"data": name, "method": m, "n_runs": s["n_runs"], "mlpd": s["mlpd"],
                     "coverage_90": s["coverage_90"], "coverage_50": s["coverage_50"], "bias": s["bias"],
                     "N_opt |log err|": float(np.nanmean(pts.groupby("dataset")["n_opt_err"].first()))})
    return rows


def dataclasses_replace_nogroups(runs: bs.Runs) -> bs.Runs:
    import dataclasses

    return dataclasses.replace(runs, group=None, group_names=None, sha256="")


def holdout(quick: bool, extrapolation: str = "none", bend: str = "auto", reps: int | None = None,
            marin_seeds: int = 5) -> str:
    S = dict(chains=2, warmup=500, draws=500) if quick else dict(chains=4, warmup=1000, draws=1000)
    reps = reps or (6 if quick else 20)
    rows = []
    m = marin_frame()
    if m is not None:
        # one held-out budget per data set: its mlpd moves 0.1-0.4 with the sampler's seed alone, so Marin is
        # fitted at several seeds and averaged (issue 11's comparison flipped with the seed at one)
        mrows = []
        for sd in range(marin_seeds):
            mrows += holdout_case("Marin", m, None, S, sd, extrapolation, bend)
            print(mrows[-4:], flush=True)
        magg = pd.DataFrame(mrows).groupby("method", sort=False).mean(numeric_only=True).reset_index()
        magg.insert(0, "data", f"Marin (mean of {marin_seeds} seeds)")
        rows += magg.to_dict("records")
    syn = []
    for r in range(reps):
        f, truth = synthetic_groups(100 + r)
        syn += holdout_case(f"synthetic {r}", f, truth, S, r, extrapolation, bend)
        print(syn[-4:], flush=True)
    sdf = pd.DataFrame(syn)
    agg = sdf.groupby("method", sort=False).mean(numeric_only=True).reset_index()
    agg.insert(0, "data", f"synthetic (mean of {reps})")
    allrows = rows + agg.to_dict("records")
    # average over data sets: Marin and the synthetic mean count equally
    both = pd.DataFrame(allrows).groupby("method", sort=False).mean(numeric_only=True).reset_index()
    both.insert(0, "data", "average (Marin, synthetic)")
    allrows += both.to_dict("records")
    cols = ["data", "method", "n_runs", "mlpd", "coverage_90", "coverage_50", "bias", "N_opt |log err|"]
    return (f"### Held-out budgets: separate, one law, shared, partial\n\nEach group's largest budget held out "
            f"(Marin: 3e20, 45 runs; synthetic: 3 groups x 6 budgets 1e18-3e20 x 7 sizes, shared E, alpha, beta, "
            f"A and B scaled by exp(U(-0.2, 0.2)), noise sd 0.01, {reps} replicates; Marin fitted at {marin_seeds} "
            f"sampler seeds and averaged). {S['chains']} chains x "
            f"{S['warmup']} + {S['draws']}, extrapolation={extrapolation!r}, bend={bend!r} for every method "
            "(grouped fits: per group, by the single fit's rule). Coverage counted by held-out budget (per "
            "group: the share of its runs inside, averaged). N_opt error: |log median N_opt - log truth| at the held-out budget (Marin: the "
            "held-out IsoFLOP vertex), from Posterior.allocate (with the calibrated N_opt error when "
            "calibrated).\n\n" + table(allrows, cols))


# -- 3. multiplier calibration -----------------------------------------------------


def multiplier(quick: bool) -> str:
    S = dict(chains=2, warmup=400, draws=400) if quick else dict(chains=4, warmup=1000, draws=1000)
    T = 60 if quick else 200
    budgets = np.array([1e19, 1e21])
    N, D = isoflop_design((1e18, 3e18, 1e19, 3e19, 1e20), 7)
    datasets, truths = [], []
    for t in range(T):
        rng = np.random.default_rng([t, 5])
        pa = dict(CHINCHILLA_FIT)
        pb = dict(CHINCHILLA_FIT, A=pa["A"] * np.exp(rng.uniform(-0.1, 0.1)),
                  B=pa["B"] * np.exp(rng.uniform(-0.1, 0.1)))
        fa = bs.simulate_runs(pa, N=N, D=D, sigma=0.01, seed=2 * t, as_frame=True).assign(dataset="a")
        fb = bs.simulate_runs(pb, N=N, D=D, sigma=0.01, seed=2 * t + 1, as_frame=True).assign(dataset="b")
        datasets.append(bs.load_runs(pd.concat([fa, fb], ignore_index=True), group="dataset"))
        truths.append(compute_multiplier({k: np.array([v]) for k, v in pa.items()},
                                         {k: np.array([v]) for k, v in pb.items()}, budgets)[0])
    t0 = time.perf_counter()
    posts = _quiet(bs.fit_many, datasets, groups=True, seed=0, **S)
    wall = time.perf_counter() - t0
    rows = []
    for t, (post, true) in enumerate(zip(posts, truths)):
        df = post.compare_groups("a", "b", budgets=budgets, ci=0.9)
        for i, C in enumerate(budgets):
            rows.append({"trial": t, "C": C, "true": true[i], "lo": df.multiplier_lo90[i], "hi": df.multiplier_hi90[i],
                         "median": df.multiplier[i], "prob_better": df.prob_better[i],
                         "b_better": bool(true[i] > 1), "ok": post.check().ok})
    r = pd.DataFrame(rows)
    r["covered"] = (r.lo <= r.true) & (r.true <= r.hi)
    cov = (r.groupby("C").agg(trials=("covered", "size"), coverage_90=("covered", "mean"),
                              median_abs_log_err=("median", lambda x: np.nan),
                              true_min=("true", "min"), true_max=("true", "max")).reset_index())
    cov["median_abs_log_err"] = [float(np.median(np.abs(np.log(r[r.C == c]["median"] / r[r.C == c]["true"]))))
                                 for c in cov.C]
    bins = [0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]
    r["bin"] = pd.cut(r.prob_better, bins, include_lowest=True)
    rel = (r.groupby("bin", observed=True).agg(n=("b_better", "size"), mean_prob=("prob_better", "mean"),
                                               freq_b_better=("b_better", "mean")).reset_index())
    rel["bin"] = rel["bin"].astype(str)
    healthy = float(np.mean([p.check().ok for p in posts]))
    brier = float(np.mean((r.prob_better - r.b_better) ** 2))
    return (f"### Compute multiplier calibration\n\n{T} synthetic pairs of groups (5 budgets 1e18-1e20 x 7 sizes "
            "each, noise sd 0.01) that share E, alpha and beta, with B's A and B scaled by exp(U(-0.1, 0.1)): the "
            "true multiplier is (K_A / K_B)^(1 / gamma), the same at every budget. Partial pooling, "
            f"{S['chains']} chains x {S['warmup']} + {S['draws']}, one fit_many call ({wall:.0f} s); share of fits "
            f"passing all checks: {healthy:.0%}. 1e21 is one decade beyond the largest run.\n\n"
            + table(cov.to_dict("records"), list(cov.columns)) +
            f"\nReliability of P(B better) (both budgets pooled; Brier score {brier:.3f}):\n\n"
            + table(rel.to_dict("records"), list(rel.columns)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parts", default="centring,holdout,multiplier")
    ap.add_argument("--extrapolation", default="none", choices=("none", "calibrated"),
                    help="holdout: extrapolation error of every method (default: none)")
    ap.add_argument("--bend", default="auto", choices=("auto", "none"), help="holdout: the bend of every method")
    ap.add_argument("--reps", type=int, default=None, help="holdout: synthetic replicates (6 quick, 20 full)")
    ap.add_argument("--marin-seeds", type=int, default=5, help="holdout: sampler seeds averaged on Marin")
    args = ap.parse_args()
    parts = args.parts.split(",")
    flags = "".join(f" --{k} {v}" for k, v in (("extrapolation", args.extrapolation), ("bend", args.bend),
                                               ("reps", args.reps)) if v not in (None, "none", "auto"))
    body = [f"## pooling.py{' --quick' if args.quick else ''} --parts {args.parts}{flags}\n\nMachine: {machine()}\n"]
    for name, fn in (("centring", centring), ("holdout", holdout), ("multiplier", multiplier)):
        if name in parts:
            t0 = time.perf_counter()
            extra = (dict(extrapolation=args.extrapolation, bend=args.bend, reps=args.reps,
                          marin_seeds=args.marin_seeds) if name == "holdout" else {})
            body.append(fn(args.quick, **extra) + f"\n({name}: {time.perf_counter() - t0:.0f} s)\n")
            print(body[-1], flush=True)
    suffix = "" if args.extrapolation == "none" else "_" + args.extrapolation
    suffix += "" if args.bend == "auto" else "_nobend"
    write_section("pooling" + ("_" + "_".join(parts) if len(parts) < 3 else "") + suffix, "\n".join(body))


if __name__ == "__main__":
    main()
