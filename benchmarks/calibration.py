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

4. (issue 9) The extrapolation-error model against the plain law and the
   former grid-ML kappa: the kappa-recovery simulation, the too-few-folds
   threshold, Chinchilla C >= 1e21 for replicate fits 0-4, the real sweeps
   (Marin by C_nominal, Farseer; largest 1 and 2 budgets held out) and
   misspecified synthetic sweeps (largest 1, 2, 3 held out); coverage by
   held-out budget, width, mlpd, CRPS, and N_opt coverage.

Usage: ``python benchmarks/calibration.py [--quick] [--sweeps 50] [--sbc]``.
Writes the "discrepancy" section of RESULTS.md (and with ``--sbc`` the
former "calibration" section).  Real data: ``BAYESSCALE_DATA`` or
``../shared/data`` next to the repository.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

import bayesscale as bs
from bayesscale.backtest import score_predictions, summarize
from bayesscale.sbc import simulation_based_calibration
from bayesscale.simulate import isoflop_design

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, table, write_section  # noqa: E402

DATA = os.environ.get("BAYESSCALE_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))

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


# ---------------------------------------------------------------------------
# issue 9: the discrepancy model against the plain law and the former grid-ML kappa
# ---------------------------------------------------------------------------

METHODS = ("calibrated", "calibrated, no tilt", "plain", "grid-ML (former)")
DCOLS = ["n_folds", "n_runs", "coverage_50", "coverage_80", "coverage_90", "run_cov_50", "run_cov_90", "width_90",
         "mlpd", "crps", "med_err_%", "nopt_folds", "nopt_coverage_80"]


def _holdout_tasks(runs, ks=(1, 2)):
    """(k, train mask, test mask): hold out the k largest budget groups."""
    Cg = runs.budget_compute()
    order = np.argsort(Cg)
    out = []
    for k in ks:
        if len(order) - k >= 4:
            test = np.isin(runs.budget, order[-k:])
            out.append((k, ~test, test))
    return out


def _method_draws(post, te, method, rng):
    from bayesscale.calibration import estimate_kappa

    plain = dataclasses.replace(post, extrapolation_mode="none")
    if method == "calibrated":
        return post.predict_draws(te.N, te.D)
    if method == "calibrated, no tilt":
        disc = post.discrepancy
        flat = dataclasses.replace(disc, draws={k: v for k, v in disc.draws.items() if not k.startswith("tilt_")})
        return dataclasses.replace(post, discrepancy=flat).predict_draws(te.N, te.D)
    draws = plain.predict_draws(te.N, te.D)
    if method == "plain":
        return draws
    pts = post.discrepancy.run_points if post.discrepancy is not None else None
    if pts is None or len(pts) < 5:
        return draws
    k0, k1 = estimate_kappa(pts.error, pts.scale, pts.d)
    d = np.log10(te.C / post.runs.C.max())
    sd = np.where(d > 0, np.sqrt(k0**2 + k1**2 * np.maximum(d, 0)), 0.0)
    return draws * np.exp(sd * rng.standard_normal(draws.shape))  # independent per run, as before


def score_tasks(tasks, *, settings, seed=0):
    """Fit every task's training runs in one batch (calibrated), then score the three methods.

    tasks: list of dict(name, runs, train, test, **labels).  Returns (point rows, N_opt rows).
    """
    from bayesscale.calibration import isoflop_vertex

    trains = [t["runs"].subset(t["train"]) for t in tasks]
    t0 = time.perf_counter()
    posts = bs.fit_many(trains, seed=seed, progress=False, extrapolation="calibrated", **settings)
    print(f"  {len(tasks)} fits + calibration: {time.perf_counter() - t0:.0f} s", flush=True)
    pts, nopt = [], []
    for j, (t, post) in enumerate(zip(tasks, posts)):
        runs, test = t["runs"], t["test"]
        te = runs.subset(test)
        for m in METHODS:
            rng = np.random.default_rng([seed, j, 99])
            sc = score_predictions(_method_draws(post, te, m, rng), te.loss)
            pts.append(pd.DataFrame({"task": t["name"], "method": m, "fold": t["name"], "budget": runs.budget[test],
                                     "C": te.C, **sc}))
        for b in np.unique(runs.budget[test]):
            sel = runs.budget == b
            v, _ = isoflop_vertex(runs.N[sel], runs.loss[sel])
            if not np.isfinite(v):
                continue
            Cb = float(np.exp(np.log(runs.C[sel]).mean()))
            for m in METHODS:
                p = post if m.startswith("calibrated") else dataclasses.replace(post, extrapolation_mode="none")
                a = p.allocate([Cb], ci=0.8).iloc[0]
                nopt.append({"task": t["name"], "method": m, "covered": bool(a.N_opt_lo80 <= np.exp(v) <= a.N_opt_hi80),
                             "ratio": float(a.N_opt / np.exp(v))})
        x = post.discrepancy
        print(f"  {t['name']}: {x.reasons.get('loss') if x else None}", flush=True)
    return pd.concat(pts, ignore_index=True), pd.DataFrame(nopt, columns=["task", "method", "covered", "ratio"])


def _summ(points, nopt, by):
    rows = []
    for key, g in points.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        r = dict(zip(by, key))
        r.update(summarize(g.rename(columns={"task": "dataset"})))
        r["run_cov_50"], r["run_cov_90"] = float(g["covered_50"].mean()), float(g["covered_90"].mean())
        r["med_err_%"] = float(100 * np.median(np.abs(np.expm1(g["error"]))))
        n = nopt
        for k, v in zip(by, key):
            if k in n.columns:
                n = n[n[k] == v]
        r["nopt_folds"] = len(n)
        r["nopt_coverage_80"] = float(n.covered.mean()) if len(n) else float("nan")
        rows.append(r)
    return rows


def chinchilla_tasks(seeds):
    runs = bs.datasets.chinchilla()
    test = np.log10(runs.C) >= 21 - 0.05
    return [{"name": f"chinchilla seed {s}", "runs": runs, "train": ~test, "test": test, "seed": s} for s in seeds]


def real_tasks():
    out = []
    m = pd.read_csv(os.path.join(DATA, "marin_isoflops.csv"))
    for name, g in m.groupby("dataset"):
        runs = bs.load_runs(g[["N", "D", "loss"]].assign(budget=g.C_nominal.map("{:.3g}".format)))
        for k, tr, te in _holdout_tasks(runs):
            out.append({"name": f"marin {name}, largest {k}", "runs": runs, "train": tr, "test": te})
    f = pd.read_csv(os.path.join(DATA, "farseer_train.csv"))
    runs = bs.load_runs(f[["N", "D", "loss"]])
    for k, tr, te in _holdout_tasks(runs):
        out.append({"name": f"farseer, largest {k}", "runs": runs, "train": tr, "test": te})
    return out


def synthetic_tasks(n_sweeps):
    N, D = isoflop_design(budgets=(1e18, 3e18, 1e19, 3e19, 1e20, 3e20, 1e21, 3e21, 1e22))
    out = []
    for name, kw in SCENARIOS.items():
        for s in range(n_sweeps):
            runs = bs.simulate_runs(N=N, D=D, sigma=0.005, seed=s, **kw)
            for k, tr, te in _holdout_tasks(runs, ks=(1, 2, 3)):
                out.append({"name": f"{name} #{s} k={k}", "scenario": name, "k": k, "runs": runs, "train": tr,
                            "test": te})
    return out


def kappa_recovery(n_sims=200, seed=0):
    """The issue's simulation: folds whose runs share a per-fold error of sd 0.02, whatever the distance.

    Former estimator: 6 one-step folds x 9 runs (d about 0.48, run noise 0.005), grid ML.  New model: the
    same truth on the horizon design of a 9-budget sweep (4 origins, 3+3+2+1 folds at 0.48 decades per
    budget), grid posterior.  Reported: the predictive sd of the extra error at d = 2 decades (5%, 50%,
    95% over simulations), the share of fits with kappa0 = 0 (former), and the coverage of the 90%
    predictive interval of a new fold's error at d = 1.
    """
    from bayesscale.calibration import estimate_kappa
    from bayesscale.discrepancy import fit_discrepancy, joint_draws

    rng = np.random.default_rng(seed)
    old_sd, old_zero, new_sd, new_cov, old_cov = [], 0, [], [], []
    for _ in range(n_sims):
        u = rng.normal(0, 0.02, 6)
        e = (u[:, None] + rng.normal(0, 0.005, (6, 9))).ravel()
        k0, k1 = estimate_kappa(e, np.full(54, 0.005), np.full(54, 0.48))
        old_sd.append(np.sqrt(k0**2 + k1**2 * 2))
        old_zero += k0 == 0
        new = rng.normal(0, 0.02)
        old_cov.append(abs(new) <= 1.645 * np.sqrt(k0**2 + k1**2 * 1 + 0.005**2))
        rows, cov = [], {}
        for o, hs in enumerate((3, 3, 2, 1)):
            d = 0.48 * np.arange(1, hs + 1)
            err = rng.normal(0, 0.02, hs) + rng.normal(0, 0.005 / 3, hs)
            for h in range(hs):
                rows.append({"origin": o, "budget_C": 0.0, "horizon": h + 1, "d": d[h], "n_runs": 9, "ok": True,
                             "problem": "", "loss_error": err[h], "loss_sd": 0.005 / 3, "n_opt_error": np.nan,
                             "n_opt_sd": np.nan, "n_opt_reference": "none"})
            cov[("loss", o)] = np.eye(hs) * (0.005 / 3) ** 2
        disc = fit_discrepancy(pd.DataFrame(rows), cov, 1e21, seed=int(rng.integers(1 << 30)))
        new_sd.append(float(disc.sd(1e23)[0]))
        x = joint_draws(disc, [1e22], 4000, seed=1)[:, 0] + rng.normal(0, 0.005 / 3, 4000)
        lo, hi = np.quantile(x, [0.05, 0.95])
        new_cov.append(lo <= new <= hi)
    q = lambda a: "{:.3f} / {:.3f} / {:.3f}".format(*np.quantile(a, [0.05, 0.5, 0.95]))  # noqa: E731
    return [{"estimator": "grid ML (former), 6 one-step folds x 9 runs", "sd at d=2 (5/50/95%)": q(old_sd),
             "kappa0 = 0": f"{old_zero / n_sims:.2f}", "90% coverage of a new fold error": f"{np.mean(old_cov):.2f}"},
            {"estimator": "discrepancy posterior, 9 folds (horizons 1-3)", "sd at d=2 (5/50/95%)": q(new_sd),
             "kappa0 = 0": "n/a (no step at c_max)", "90% coverage of a new fold error": f"{np.mean(new_cov):.2f}"}]


def fold_threshold(n_sims=150, seed=1):
    """Coverage of the 90% predictive interval of a new fold error (d = 1) against the number of folds.

    Truth drawn with kappa_rw in {0.005, 0.02, 0.05} and kappa_slope = 0.01, fold-fit sd 0.005; folds come
    from origins with horizons 1-3 (3 folds per origin, then fewer).
    """
    from bayesscale.discrepancy import fit_discrepancy, joint_draws

    rng = np.random.default_rng(seed)
    rows = []
    for n_folds in (1, 2, 3, 4, 6, 9):
        r = {"folds": n_folds}
        for rw in (0.005, 0.02, 0.05):
            hit = []
            for _ in range(n_sims):
                rows_, cov, left, o = [], {}, n_folds, 0
                while left > 0:
                    hs = min(3, left)
                    d = 0.5 * np.arange(1, hs + 1)
                    K = rw**2 * np.minimum.outer(d, d) + 0.01**2 * np.outer(d, d) + 0.005**2 * np.eye(hs)
                    err = rng.multivariate_normal(np.zeros(hs), K)
                    for h in range(hs):
                        rows_.append({"origin": o, "budget_C": 0.0, "horizon": h + 1, "d": d[h], "n_runs": 9,
                                      "ok": True, "problem": "", "loss_error": err[h], "loss_sd": 0.005,
                                      "n_opt_error": np.nan, "n_opt_sd": np.nan, "n_opt_reference": "none"})
                    cov[("loss", o)] = 0.005**2 * np.eye(hs)
                    left -= hs
                    o += 1
                disc = fit_discrepancy(pd.DataFrame(rows_), cov, 1e21, min_folds=1, seed=int(rng.integers(1 << 30)))
                new = rng.normal(0, np.sqrt(rw**2 + 0.01**2 + 0.005**2))
                x = joint_draws(disc, [1e22], 4000, seed=2)[:, 0] + rng.normal(0, 0.005, 4000)
                lo, hi = np.quantile(x, [0.05, 0.95])
                hit.append(lo <= new <= hi)
            r[f"kappa_rw={rw}"] = float(np.mean(hit))
        rows.append(r)
        print(r, flush=True)
    return rows


def discrepancy_evidence(args):
    settings = (dict(chains=2, warmup=500, draws=500) if args.quick else dict(chains=4, warmup=1000, draws=1000))
    fold_cfg = f"fits {settings['chains']} chains x {settings['warmup']} + {settings['draws']}; fold refits 2 x 300 + 300"
    parts = [f"## calibration.py: extrapolation-error model (issue 9)\n\nMachine: {machine()}\n\n"
             f"Mode: {'--quick' if args.quick else 'full'}; {fold_cfg}. Coverage, its verdicts and n_folds count "
             "held-out budgets (each budget's share of runs inside the interval, averaged over budgets); "
             "`run_cov_*` count runs; `med_err_%` is the median relative error of the predictive median. "
             "N_opt: the 80% band of the fold fit's N_opt at a held-out budget against the vertex of a quadratic "
             "in log N fitted to that budget's runs (IsoFLOP-shaped budgets only). Methods: `calibrated` = the "
             "discrepancy posterior (this work), `calibrated, no tilt` = the same without its tilt along the budget, "
             "`plain` = the law without extrapolation error, `grid-ML (former)` "
             "= the previous kappa0/kappa1 maximum-likelihood plug-in on one-step folds, independent per run.\n"]
    t0 = time.perf_counter()
    print("kappa recovery", flush=True)
    parts.append("\n### (d) kappa recovery (the issue's simulation)\n\n" + table(
        kappa_recovery(args.sims), ["estimator", "sd at d=2 (5/50/95%)", "kappa0 = 0",
                                    "90% coverage of a new fold error"]))
    print("fold threshold", flush=True)
    thr = fold_threshold(args.sims)
    parts.append("\n### Too few folds: the refusal threshold\n\nCoverage of the 90% predictive interval of a new "
                 "fold's error at 1 decade, by number of folds (truth from the discrepancy model with kappa_slope = "
                 f"0.01 and the kappa_rw shown; {args.sims} simulations each).\n\n"
                 + table(thr, ["folds"] + [k for k in thr[0] if k != "folds"]))
    print("chinchilla", flush=True)
    pts, nopt = score_tasks(chinchilla_tasks(range(5)), settings=settings)
    parts.append("\n### (a) Chinchilla: fit C < 1e21, predict the 36 runs at C >= 1e21 (replicate fits 0-4)\n\n"
                 "Replicate k is data set k of one `fit_many` call (seed (0, k)).\n\n"
                 + table(_summ(pts, nopt, ["method", "task"]), ["method", "task", *DCOLS]))
    print("real sweeps", flush=True)
    pts, nopt = score_tasks(real_tasks(), settings=settings)
    parts.append("\n### (b) Real sweeps: hold out the largest 1 and 2 budgets\n\nMarin grouped by C_nominal; "
                 "Farseer grouped by compute (6 N D).\n\n"
                 + table(_summ(pts, nopt, ["method"]), ["method", *DCOLS])
                 + "\nPer task:\n\n" + table(_summ(pts, nopt, ["task", "method"]), ["task", "method", *DCOLS]))
    print("synthetic", flush=True)
    pts, nopt = score_tasks(synthetic_tasks(args.sweeps), settings=settings)
    scen = {t: t.split(" #")[0] for t in pts.task.unique()}
    kk = {t: int(t.rsplit("k=", 1)[1]) for t in pts.task.unique()}
    for df in (pts, nopt):
        df["scenario"], df["held_out"] = df.task.map(scen), df.task.map(kk)
    parts.append(f"\n### (c) Synthetic sweeps ({args.sweeps} per scenario; 9 budgets 1e18-1e22 x 9 sizes, noise "
                 "0.005; hold out the largest 1, 2, 3 budgets)\n\n"
                 + table(_summ(pts, nopt, ["scenario", "method"]), ["scenario", "method", *DCOLS])
                 + "\nBy number of held-out budgets:\n\n"
                 + table(_summ(pts, nopt, ["scenario", "held_out", "method"]),
                         ["scenario", "held_out", "method", *DCOLS]))
    parts.append(f"\nTotal time {time.perf_counter() - t0:.0f} s.\n")
    write_section("discrepancy", "".join(parts))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=int, default=200)
    ap.add_argument("--sweeps", type=int, default=None, help="synthetic sweeps per scenario (50; 4 with --quick)")
    ap.add_argument("--quick", action="store_true", help="short chains and few sweeps")
    ap.add_argument("--sims", type=int, default=None, help="simulations of the discrepancy checks (200; 60 quick)")
    ap.add_argument("--sbc", action="store_true", help="also rerun SBC and the former sections")
    args = ap.parse_args()
    args.sweeps = args.sweeps or (4 if args.quick else 50)
    args.sims = args.sims or (60 if args.quick else 200)
    warnings.simplefilter("ignore", bs.FitWarning)
    discrepancy_evidence(args)
    if not args.sbc:
        return
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
