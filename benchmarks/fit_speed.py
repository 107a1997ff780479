"""How fast is one fit?  bayesscale against stock NumPyro and the point-fit pipeline.

Same data (the 240-run Chinchilla subset) and the same model (centred, dense
mass, Student-t) throughout; 4 chains x 1000 warm-up + 1000 draws.

Rows
----
* stock NumPyro ``MCMC``, written as a user would: first run, then
  ``MCMC.run`` again on new data of the same size (``jit_model_args=True``,
  NumPyro's way to re-run its compiled model on new data).
* bayesscale cold: a fresh process (``bayesscale fit`` on the command line)
  with an empty, then a warm, persistent compilation cache; without and with
  ``--out`` (writing the posterior computes the calibrated extrapolation,
  which a plain ``fit`` defers until a prediction needs it).
* bayesscale warm: a second ``fit`` in the same process on new data of the
  same size: the same model as stock NumPyro (``extrapolation="none"``), and
  the default, which adds the rolling-origin refits of calibrated
  extrapolation.  The fit computes only what its verdict needs (the sampler
  checks); ``posterior.check()`` adds PSIS-LOO's influential-run notes, timed
  on its own row.
* the point-fit pipeline: Huber loss (delta 1e-3) on log loss, L-BFGS from
  the 4,500-start grid of Hoffmann et al. / Besiroglu et al., then 4,000
  bootstrap refits started from the best fit.

Usage: ``python benchmarks/fit_speed.py [--skip-pointfit] [--bootstrap 4000] [--stock-methods vectorized]``.
Prints a table and writes the "fit_speed" section of benchmarks/RESULTS.md ("fit_speed_gpu" where JAX's
default backend is a GPU).
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
import warnings
from functools import partial

import jax
import numpy as np

import bayesscale as bs
from bayesscale.diagnostics import convergence_table
from bayesscale.simulate import CHINCHILLA_FIT

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, table, write_section  # noqa: E402

CHAINS, WARMUP, DRAWS = 4, 1000, 1000


def mcmc_row(name: str, seconds: float, params: dict, stats: dict) -> dict:
    conv = convergence_table(params)
    ess = min(conv.ess_bulk.min(), conv.ess_tail.min())
    return {"method": name, "wall s": seconds, "min ESS bulk": conv.ess_bulk.min(),
            "min ESS tail": conv.ess_tail.min(), "ESS/s": ess / seconds,
            "leapfrog/draw": float(np.mean(stats["num_steps"])), "max R-hat": conv.r_hat.max(),
            "divergences": int(np.sum(stats["diverging"]))}


def new_data(runs, seed: int = 1):
    """A new data set of the same size: the same (N, D) design, losses drawn from the published refit."""
    return bs.simulate_runs(CHINCHILLA_FIT, N=runs.N, D=runs.D, sigma=0.01, df=4, seed=seed)


def stock_numpyro(runs, methods=("sequential", "vectorized")) -> list[dict]:
    """Stock NumPyro on the same model: a first run, then ``MCMC.run`` again on new data of the same size.

    ``jit_model_args=True`` is NumPyro's way to re-run a compiled model on new
    data (the data become arguments of the compiled sampler, not constants).
    """
    from numpyro.infer import MCMC, NUTS

    from bayesscale.inference import bucket_size, model_data, prior_leaves
    from bayesscale.model import ModelSpec, numpyro_model

    spec = ModelSpec()
    model = partial(numpyro_model, law=spec.law, observation=spec.observation, offsets=spec.offsets,
                    prior_def=prior_leaves(spec, runs)[1])
    rows = []
    # "parallel" needs a device per chain (this machine has fewer), so a user picks one of these
    for method in methods:
        mcmc = MCMC(NUTS(model, dense_mass=True), num_warmup=WARMUP, num_samples=DRAWS, num_chains=CHAINS,
                    chain_method=method, progress_bar=False, jit_model_args=True)
        for i, (label, data) in enumerate([(f"stock NumPyro MCMC ({method}), first run", runs),
                                           (f"stock NumPyro MCMC ({method}), MCMC.run again, new data", new_data(runs))]):
            arrays = model_data(data, spec, len(data), bucket_size(data.n_budgets))
            t = time.perf_counter()
            try:
                mcmc.run(jax.random.PRNGKey(i), arrays, extra_fields=("num_steps", "diverging"))
            except Exception as e:  # noqa: BLE001 - report what a user would meet
                rows.append({"method": f"{label}: fails ({type(e).__name__})"})
                continue
            s = mcmc.get_samples(group_by_chain=True)
            jax.block_until_ready(s)
            dt = time.perf_counter() - t
            ex = mcmc.get_extra_fields(group_by_chain=True)
            params = {k: np.asarray(s[k]) for k in ("alpha", "beta", "log_E", "t_N", "t_D", "sigma")}
            rows.append(mcmc_row(label, dt, params, {k: np.asarray(v) for k, v in ex.items()}))
            print(rows[-1], flush=True)  # as it goes: a run stopped at a time limit keeps what it measured
    return rows


def fresh_process(csv: str, cache: str, *extra: str) -> float:
    env = dict(os.environ, BAYESSCALE_CACHE_DIR=cache)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "bayesscale.cli", "fit", csv, "--no-progress", *extra], env=env,
                       capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise RuntimeError(r.stderr)
    return time.perf_counter() - t


def bayesscale_rows(runs, csv: str) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "fit.nc")
        for label, extra in (("bayesscale CLI fit, fresh process, empty cache", ()),
                             ("bayesscale CLI fit, fresh process, warm cache", ()),
                             ("bayesscale CLI fit --out fit.nc (+ calibration), fresh process, calibration programs not yet cached", ("--out", out)),
                             ("bayesscale CLI fit --out fit.nc (+ calibration), fresh process, warm cache", ("--out", out))):
            rows.append({"method": label, "wall s": fresh_process(csv, cache, *extra)})
            print(rows[-1], flush=True)
    fresh = new_data(runs)
    variants = [("bayesscale fit, warm, new data, same model as stock (extrapolation='none')", {"extrapolation": "none"}),
                ("bayesscale fit, warm, new data, default, with its calibration refits", {})]
    if jax.default_backend() == "gpu":  # device=None keeps one fit on the CPU there; this row forces the GPU
        variants.insert(1, ("bayesscale fit, warm, new data, extrapolation='none', device='gpu'",
                            {"extrapolation": "none", "device": "gpu"}))
    for label, kw in variants:
        bs.fit(runs, seed=0, progress=False, **kw).extrapolation  # compile in this process
        t = time.perf_counter()
        post = bs.fit(fresh, seed=1, progress=False, **kw)
        post.extrapolation  # the default calibrates on first use: count it
        dt = time.perf_counter() - t
        rows.append(mcmc_row(label, dt, post._natural, post.stats))
        rows[-1]["sampling s"] = post.info["timing"]["sampling"]
        print(rows[-1], flush=True)
    t = time.perf_counter()
    post.check()  # explicit: the full verdict with PSIS-LOO's influential-run notes
    rows.append({"method": "posterior.check() after the fit (PSIS-LOO notes; not on the fit's path)",
                 "wall s": time.perf_counter() - t})
    return rows


# -- the point-fit pipeline ------------------------------------------------

def huber(r, delta=1e-3):
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta))


def huber_grad(r, delta=1e-3):
    return np.clip(r, -delta, delta)


def objective(theta, logN, logD, y, w):
    """Huber loss of log-space predictions (theta = a, b, e, alpha, beta as in Hoffmann et al.)."""
    a, b, e, alpha, beta = theta
    t = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])
    m = t.max(axis=0)
    ex = np.exp(t - m)
    lse = m + np.log(ex.sum(axis=0))
    r = lse - y
    soft = ex / ex.sum(axis=0)
    g = w * huber_grad(r)
    grad = np.array([(g * soft[0]).sum(), (g * soft[1]).sum(), (g * soft[2]).sum(),
                     -(g * soft[0] * logN).sum(), -(g * soft[1] * logD).sum()])
    return float((w * huber(r)).sum()), grad


def point_fit(runs, n_boot: int, seed: int = 0) -> dict:
    from scipy.optimize import minimize

    logN, logD, y = np.log(runs.N), np.log(runs.D), np.log(runs.loss)
    grid = list(itertools.product(np.arange(0, 30, 5), np.arange(0, 30, 5), np.arange(-1, 1.5, 0.5),
                                  np.arange(0, 2.5, 0.5), np.arange(0, 2.5, 0.5)))
    assert len(grid) == 4500
    ones = np.ones_like(y)
    t0 = time.perf_counter()
    best = None
    for start in grid:
        r = minimize(objective, np.array(start, float), args=(logN, logD, y, ones), jac=True, method="L-BFGS-B")
        if best is None or r.fun < best.fun:
            best = r
    t_grid = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    a_boot = []
    for _ in range(n_boot):
        w = np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y)).astype(float)
        r = minimize(objective, best.x, args=(logN, logD, y, w), jac=True, method="L-BFGS-B")
        a_boot.append(r.x[4] / (r.x[3] + r.x[4]))
    total = time.perf_counter() - t0
    a, b, e, alpha, beta = best.x
    return {"seconds": total, "grid seconds": t_grid, "E": np.exp(e), "A": np.exp(a), "B": np.exp(b),
            "alpha": alpha, "beta": beta, "a_interval": np.quantile(a_boot, [0.025, 0.975])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-pointfit", action="store_true")
    ap.add_argument("--bootstrap", type=int, default=4000)
    ap.add_argument("--stock-methods", nargs="+", choices=["sequential", "vectorized"],
                    default=["sequential", "vectorized"], help="stock NumPyro chain methods to time")
    args = ap.parse_args()
    warnings.simplefilter("ignore", bs.FitWarning)
    runs = bs.datasets.chinchilla(drop_highest_loss=5)
    with tempfile.TemporaryDirectory() as d:
        csv = os.path.join(d, "runs.csv")
        runs.to_frame().drop(columns=["budget"]).to_csv(csv, index=False)
        rows = stock_numpyro(runs, args.stock_methods) + bayesscale_rows(runs, csv)
    by = {r["method"]: r for r in rows}
    stock = min(r["wall s"] for m, r in by.items() if "again" in m and "wall s" in r)  # the faster stock re-fit
    ours = by["bayesscale fit, warm, new data, same model as stock (extrapolation='none')"]["wall s"]
    default = by["bayesscale fit, warm, new data, default, with its calibration refits"]["wall s"]
    fresh_out = by["bayesscale CLI fit --out fit.nc (+ calibration), fresh process, warm cache"]["wall s"]
    notes = [f"warm re-fit on new data, speed-up over the faster stock NumPyro re-run (MCMC.run again, jit_model_args=True), same model: {stock / ours:.1f}x "
             f"(the default, with its calibration refits: {stock / default:.1f}x)"]
    if not args.skip_pointfit:
        pf = point_fit(runs, args.bootstrap)
        rows.append({"method": f"point fit: 4,500-start L-BFGS + {args.bootstrap} bootstrap refits",
                     "wall s": pf["seconds"]})
        notes.append(f"point-fit pipeline: {pf['seconds']:.1f} s (grid {pf['grid seconds']:.1f} s); "
                     f"E={pf['E']:.3f} A={pf['A']:.1f} B={pf['B']:.1f} alpha={pf['alpha']:.4f} beta={pf['beta']:.4f}; "
                     f"bootstrap 95% interval of a: {pf['a_interval'][0]:.3f}-{pf['a_interval'][1]:.3f}")
        notes.append(f"end to end against the point-fit pipeline: {pf['seconds'] / default:.0f}x faster (default fit, "
                     f"warm), {pf['seconds'] / fresh_out:.0f}x (fresh CLI process with --out, warm cache)")
    cols = ["method", "wall s", "sampling s", "min ESS bulk", "min ESS tail", "ESS/s", "leapfrog/draw", "max R-hat",
            "divergences"]
    text = table(rows, cols)
    print(text)
    print("\n".join(notes))
    gpu = jax.default_backend() == "gpu"  # a GPU machine's figures get their own section
    write_section("fit_speed_gpu" if gpu else "fit_speed", f"## fit_speed.py{' (GPU)' if gpu else ''}\n\nMachine: {machine()}\n\n240-run Chinchilla subset, "
                  f"{CHAINS} chains x {WARMUP} warm-up + {DRAWS} draws, Student-t model.\n\n{text}\n"
                  + "\n".join(f"- {n}" for n in notes))


if __name__ == "__main__":
    main()
