"""Held-out real sweeps: bayesscale, the point-fit peers and candidate observation models, same splits.

Tasks (fit the smaller budgets, predict the held-out runs):

* ``chinchilla``: the bundled 240-run subset (5 highest losses dropped); fit C < 1e21, predict C >= 1e21.
* ``marin/<data set>/top1``, ``top2``: the three Marin IsoFLOP sweeps, runs grouped by ``C_nominal``
  (not 6ND); hold out the largest one or the largest two nominal budgets.
* ``farseer/topC``: Farseer training split, hold out the top decile of C = 6ND (C >= its 0.9 quantile).
* ``farseer/topN``: Farseer, hold out the three largest model sizes (N >= 4.5e9).
* ``datacon``: Muennighoff et al. data-constrained runs, single-epoch only (tokens <= unique_tokens,
  27 runs, the plain law holds); fit C < 2e20, predict the 7 runs at C >= 2e20.

Methods:

* ``bs default``: ``bayesscale.fit(runs)`` (Student-t, calibrated extrapolation), ``bs default, no
  tilt``: the same without the extrapolation error's tilt along the budget, ``bs none``:
  ``extrapolation="none"`` (the plain law).  ``bs profile trend`` and ``bs profile trend, none``: the same
  two with ``profile="trend"`` (the IsoFLOP profile's curvature changes with log C; session 10).
  Predictive draws from ``Posterior.predict_draws``.
* ``chinchilla pkg``: the ``chinchilla`` PyPI package (v0.2, Takano), its default loss
  (asymmetric MAE, weight 10: a 1/11-quantile fit) and BFGS over an initialisation grid; a point.
* ``ssl``: ``simple-scaling-laws`` (v0.2), default law, bootstrap draws, ``new-run`` predictive.
* ``obs:<model>[/frontier]``: the candidate observation models of :mod:`_obsmodels` (NUTS, 2 chains);
  ``/frontier`` is the well-tuned-run predictive (law + noise, no inefficiency).

Metrics per task: median |relative error| of the point prediction (the predictive median; for the
chinchilla package, its point), bias = mean of log(predicted / observed) in percent (positive:
predicts too high), 50% and 90% coverage of equal-tailed predictive intervals, mlpd of log loss
(Gaussian KDE over draws, :func:`bayesscale.backtest.score_predictions`, the same for every method).

Usage: ``python benchmarks/heldout.py [--quick] [--methods ...] [--tasks ...]``.  Prints the tables and
writes the "heldout" section of benchmarks/HELDOUT.md (per-task numbers are also saved as CSV next to
it).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's bayesscale
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _obsmodels as om  # noqa: E402

DATA = os.environ.get("BAYESSCALE_DATA", "/work/shared/data")
OUT_MD = os.path.join(os.path.dirname(__file__), "HELDOUT.md")


@dataclass
class Task:
    name: str
    train: pd.DataFrame  # N, D, C, loss, budget (int, ordered by compute)
    test: pd.DataFrame


def _budget_index(label_compute: pd.Series) -> np.ndarray:
    vals = np.sort(label_compute.unique())
    return np.searchsorted(vals, label_compute.to_numpy())


def tasks() -> list[Task]:
    import bayesscale as bs
    from bayesscale.data import budget_groups

    out = []
    ch = bs.datasets.chinchilla(drop_highest_loss=5).to_frame().reset_index(drop=True)
    ch["budget"] = ch["budget"].astype(int)
    out.append(Task("chinchilla", ch[ch.C < 1e21].copy(), ch[ch.C >= 1e21].copy()))

    m = pd.read_csv(os.path.join(DATA, "marin_isoflops.csv"))
    for ds, df in m.groupby("dataset"):
        df = df.copy()
        df["C"] = 6.0 * df.N * df.D
        df["budget"] = _budget_index(df.C_nominal)
        nominal = np.sort(df.C_nominal.unique())
        for k in (1, 2):
            cut = nominal[-k]
            out.append(Task(f"marin/{ds}/top{k}", df[df.C_nominal < cut].copy(), df[df.C_nominal >= cut].copy()))

    fs = pd.read_csv(os.path.join(DATA, "farseer_train.csv"))
    fs = fs.assign(N=fs.N.astype(float), D=fs.D.astype(float))
    fs["C"] = 6.0 * fs.N * fs.D
    fs["budget"] = budget_groups(fs.C.to_numpy())
    q = fs.C.quantile(0.9)
    out.append(Task("farseer/topC", fs[fs.C < q].copy(), fs[fs.C >= q].copy()))
    out.append(Task("farseer/topN", fs[fs.N < 4.5e9].copy(), fs[fs.N >= 4.5e9].copy()))

    dc = pd.read_csv(os.path.join(DATA, "data_constrained_train.csv"))
    dc = dc[dc.tokens <= dc.unique_tokens].rename(columns={"params": "N", "tokens": "D"})
    dc = dc.assign(N=dc.N.astype(float), D=dc.D.astype(float))
    dc["C"] = 6.0 * dc.N * dc.D
    dc["budget"] = budget_groups(dc.C.to_numpy())
    out.append(Task("datacon", dc[dc.C < 2e20].copy(), dc[dc.C >= 2e20].copy()))
    return out


# ---------------------------------------------------------------------------
# methods: each returns (draws (S, n) of loss or None, point (n,), info dict)


def run_bs(task: Task, quick: bool, extrapolation: str, seed: int, tilt: bool = True, profile: str = "law"):
    import bayesscale as bs

    tr = task.train
    frame = pd.DataFrame({"N": tr.N.to_numpy(), "D": tr.D.to_numpy(), "C": tr.C.to_numpy(),
                          "loss": tr.loss.to_numpy(), "budget": [f"{b:03d}" for b in tr.budget]})
    kw = dict(chains=2, warmup=500, draws=500) if quick else {}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = bs.fit(frame, extrapolation=extrapolation, seed=seed, progress=False, profile=profile, **kw)
        if not tilt:  # the calibrated extrapolation error without its tilt along the budget
            disc = post.discrepancy
            post = dataclasses.replace(post, discrepancy=dataclasses.replace(
                disc, draws={k: v for k, v in disc.draws.items() if not k.startswith("tilt_")}))
        draws = post.predict_draws(task.test.N.to_numpy(), task.test.D.to_numpy())
    div = int(np.asarray(post.stats.get("diverging", 0)).sum()) if "diverging" in post.stats else -1
    return draws, None, {"seconds": time.perf_counter() - t0, "divergences": div}


def run_chinchilla(task: Task, quick: bool, seed: int):
    from chinchilla import Chinchilla

    logging.getLogger("chinchilla").setLevel(logging.ERROR)
    if quick:
        grid = dict(e=(0.0, 1.0), a=(3, 10, 17), b=(3, 10, 17), alpha=(0.3, 0.6), beta=(0.3, 0.6))
    else:
        grid = dict(e=(-0.5, 0.5, 1.5), a=(0, 6, 12, 18, 24), b=(0, 6, 12, 18, 24), alpha=(0.2, 0.5, 0.8),
                    beta=(0.2, 0.5, 0.8))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task.train[["C", "N", "D", "loss"]].to_csv(os.path.join(d, "df.csv"), index=False)
        cc = Chinchilla(d, param_grid=grid, model_search_config=None, log_level=40)
        cc.fit(parallel=True)
        p = cc.params
    point = Chinchilla.predict_loss(task.test.N.to_numpy(float), task.test.D.to_numpy(float), p)
    return None, np.asarray(point, float), {"seconds": time.perf_counter() - t0, "params": p}


def run_ssl(task: Task, quick: bool, seed: int):
    import polars as pl
    import simple_scaling_laws as ssl

    tr, te = task.train, task.test
    frame = pl.DataFrame({"training_run_id": [f"r{i}" for i in range(len(tr))],
                          "model_size__params": tr.N.to_numpy(), "dataset_size__tokens": tr.D.to_numpy(),
                          "test_loss__loss": tr.loss.to_numpy()})
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod = ssl.fit(frame, n_draws=400 if quick else 1000, seed=seed)
        pts = mod.prepare_points(pl.DataFrame({"model_size__params": te.N.to_numpy(),
                                               "dataset_size__tokens": te.D.to_numpy()}))
        draws = mod.target_draws("test_loss__loss", mod.fitting_predictors(pts), kind="new-run",
                                 rng=np.random.default_rng(seed))
    return np.asarray(draws, float), None, {"seconds": time.perf_counter() - t0}


def run_obs(task: Task, quick: bool, model: str, seed: int, kinds=("run",)):
    tr, te = task.train, task.test
    f = om.fit(tr.N, tr.D, tr.loss, tr.C, tr.budget, model, chains=2, warmup=500, draws=500, seed=seed)
    res = {}
    for kind in kinds:
        draws = om.predict(f, te.N, te.D, te.C, te.budget, kind=kind, seed=seed)
        info = {"seconds": f.seconds, "divergences": f.divergences, "max_rhat": f.max_rhat}
        if kind == "run":
            info["mlpd_exact"] = float(om.log_lik(f, te.N, te.D, te.C, te.loss, te.budget, seed=seed).mean())
        res[kind] = (draws, None, info)
    return res


def score(task: Task, draws, point) -> dict:
    from bayesscale.backtest import score_predictions

    obs = task.test.loss.to_numpy(float)
    out = {}
    if draws is not None:
        sc = score_predictions(draws, obs)
        pred = sc["median"]
        out.update(cov50=float(sc["covered_50"].mean()), cov90=float(sc["covered_90"].mean()),
                   mlpd=float(sc["lpd"].mean()))
    else:
        pred = point
    out["med_rel_err_%"] = float(np.median(np.abs(pred / obs - 1)) * 100)
    out["bias_%"] = float(np.mean(np.log(pred / obs)) * 100)
    return out


CANDIDATES = ["student_t", "emg2", "halfnormal2", "emg_scale", "budget", "curv_t"]
FRONTIER = {"emg", "emg2", "halfnormal", "halfnormal2", "emg_scale", "curv_emg"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 chains x 500 + 500 for bayesscale, a small grid "
                    "for the chinchilla package, 400 bootstrap draws")
    ap.add_argument("--methods", nargs="*", default=None)
    ap.add_argument("--tasks", nargs="*", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--csv", default=os.path.join(os.path.dirname(__file__), "heldout_results.csv"))
    args = ap.parse_args()
    methods = args.methods or (["bs default", "bs default, no tilt", "bs none", "chinchilla pkg", "ssl"] + [f"obs:{c}" for c in CANDIDATES])
    rows = []
    for task in tasks():
        if args.tasks and not any(task.name.startswith(t) for t in args.tasks):
            continue
        base = {"task": task.name, "n_train": len(task.train), "n_test": len(task.test)}
        for meth in methods:
            try:
                if meth == "bs default":
                    results = {meth: run_bs(task, args.quick, "calibrated", args.seed)}
                elif meth == "bs default, no tilt":
                    results = {meth: run_bs(task, args.quick, "calibrated", args.seed, tilt=False)}
                elif meth == "bs none":
                    results = {meth: run_bs(task, args.quick, "none", args.seed)}
                elif meth == "bs profile trend":
                    results = {meth: run_bs(task, args.quick, "calibrated", args.seed, profile="trend")}
                elif meth == "bs profile trend, none":
                    results = {meth: run_bs(task, args.quick, "none", args.seed, profile="trend")}
                elif meth == "chinchilla pkg":
                    results = {meth: run_chinchilla(task, args.quick, args.seed)}
                elif meth == "ssl":
                    results = {meth: run_ssl(task, args.quick, args.seed)}
                elif meth.startswith("obs:"):
                    name = meth[4:]
                    kinds = ("run", "frontier") if name in FRONTIER else ("run",)
                    res = run_obs(task, args.quick, name, args.seed, kinds)
                    results = {(meth if k == "run" else f"{meth}/frontier"): v for k, v in res.items()}
                else:
                    raise ValueError(f"unknown method {meth}")
            except Exception as e:  # a peer that fails is reported, not hidden
                print(f"{task.name} {meth}: FAILED {type(e).__name__}: {e}", flush=True)
                rows.append({**base, "method": meth, "error": f"{type(e).__name__}: {e}"})
                continue
            for label, (draws, point, info) in results.items():
                row = {**base, "method": label, **score(task, draws, point),
                       **{k: v for k, v in info.items() if k != "params"}}
                rows.append(row)
                print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(args.csv, index=False)
    body = summary_tables(df)
    print(body)
    write_section(f"## Held-out real sweeps ({'--quick' if args.quick else 'full'}, seed {args.seed})\n\n"
                  f"Written by `python benchmarks/heldout.py{' --quick' if args.quick else ''}`; per-run rows in "
                  f"`{os.path.basename(args.csv)}`.\n\n" + body)


def write_section(body: str, name: str = "heldout") -> None:
    """Replace (or append) the marked section ``name`` of HELDOUT.md."""
    import re

    text = open(OUT_MD).read() if os.path.exists(OUT_MD) else "# Held-out real sweeps and observation models\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    with open(OUT_MD, "w") as fh:
        fh.write(text)


def summary_tables(df: pd.DataFrame) -> str:
    cols = ["med_rel_err_%", "bias_%", "cov50", "cov90", "mlpd"]
    ok = df[df.get("error").isna()] if "error" in df else df
    per_task = ok.pivot_table(index="task", columns="method", values="med_rel_err_%")
    overall = ok.groupby("method")[cols + [c for c in ("divergences", "seconds", "mlpd_exact") if c in ok]].mean()
    # wins against the chinchilla package, per task
    if "chinchilla pkg" in per_task:
        overall["beats_chinchilla"] = [
            f"{int((per_task[m] < per_task['chinchilla pkg']).sum())}/{int(per_task[m].notna().sum())}"
            for m in overall.index]
    overall = overall.sort_values("med_rel_err_%")
    lines = ["### Averaged over tasks", "", overall.to_markdown(floatfmt=".3g"), "",
             "### Median relative error (%) per task", "", per_task.T.to_markdown(floatfmt=".2f"), ""]
    for c in ("bias_%", "cov90", "cov50", "mlpd"):
        t = ok.pivot_table(index="task", columns="method", values=c)
        lines += [f"### {c} per task", "", t.T.to_markdown(floatfmt=".3g"), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
