"""Memory of a fit against the number of runs (issue 12, item 10).

Fits synthetic isoFLOP sweeps (10 budgets, ``n / 10`` sizes each, 1.5% noise,
the published Chinchilla refit) with 1,000, 10,000 and 100,000 runs, each in a
fresh process, and measures:

* the peak resident memory of the process (``resource.getrusage``) above its
  baseline after importing bayesscale and building the runs, through the fit
  and then through ``posterior.check()`` (PSIS-LOO and residuals, chunked);
* the resident memory after the fit, and the bytes of every array the
  Posterior holds (samples, statistics, cached parameters, its tree);
* the wall time of the fit and of ``check()``.

Before item 10 a posterior computed and kept the pointwise log-likelihood,
the replicated data and the fitted means (three ``S x n`` float64 arrays, and
the log-likelihood and replicated data again in its DataTree and netCDF file)
as soon as it was checked or saved; now they are computed on demand only.
``--pythonpath DIR`` measures another checkout (the rows labelled "before").

Usage::

    python benchmarks/memory.py                        # 1k, 10k, 100k runs; writes RESULTS.md
    python benchmarks/memory.py --runs 1000 10000 --no-write
    python benchmarks/memory.py --pythonpath /path/to/old/checkout --label before --runs 10000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _arrays_bytes(post) -> int:
    """Bytes of every NumPy array reachable from the posterior's attributes (dicts, its tree)."""
    import dataclasses

    import numpy as np
    import xarray as xr

    seen, total = set(), 0

    def walk(obj):
        nonlocal total
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            total += obj.nbytes
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v)
        elif isinstance(obj, xr.DataTree):
            for node in obj.subtree:
                for v in node.to_dataset(inherit=False).variables.values():
                    walk(v.values)
        elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            for v in vars(obj).values():
                walk(v)

    walk(post)
    return total


def one(n: int, chains: int, warmup: int, draws: int, extrapolation: str) -> dict:
    """Fit one synthetic data set of ``n`` runs in this process and measure it."""
    import gc
    import resource
    import warnings

    import numpy as np

    import bayesscale as bs

    def rss() -> float:  # MiB, current
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def peak() -> float:  # MiB, the process's high-water mark
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    N, D = bs.simulate.isoflop_design(budgets=np.geomspace(1e18, 1e21, 10), sizes_per_budget=n // 10)
    runs = bs.simulate_runs(N=N, D=D, sigma=0.015, seed=1)
    import jax.numpy as jnp

    jnp.zeros(1).block_until_ready()
    gc.collect()
    base = rss()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = bs.fit(runs, chains=chains, warmup=warmup, draws=draws, seed=0, extrapolation=extrapolation,
                      progress=False)
    t_fit = time.perf_counter() - t0
    gc.collect()
    out = {"runs": len(runs), "chains": chains, "warmup": warmup, "draws": draws, "extrapolation": extrapolation,
           "S": post.n_draws, "retried": "retried" in post.info, "fit_s": t_fit, "base_mb": base,
           "fit_peak_mb": peak() - base, "after_fit_mb": rss() - base, "held_fit_mb": _arrays_bytes(post) / 2**20,
           "settings": f"{post.settings.chains} x ({post.settings.warmup} + {post.settings.draws})",
           "bayesscale": bs.__file__}
    t0 = time.perf_counter()
    verdict = post.check()
    out["check_s"] = time.perf_counter() - t0
    gc.collect()
    out.update(check_peak_mb=peak() - base, after_check_mb=rss() - base, held_check_mb=_arrays_bytes(post) / 2**20,
               ok=bool(verdict.ok))
    return out


def measure(n: int, chains: int, warmup: int, draws: int, extrapolation: str, pythonpath: str | None) -> dict:
    """:func:`one` in a fresh process (peak memory is per process)."""
    env = dict(os.environ)
    root = pythonpath or str(HERE.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", str(n), "--chains", str(chains),
           "--warmup", str(warmup), "--draws", str(draws), "--extrapolation", extrapolation]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=root)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--draws-100k", type=int, default=None,
                    help="draws for the 100,000-run row only (default: --draws)")
    ap.add_argument("--extrapolation", default="none", choices=["none", "calibrated"])
    ap.add_argument("--pythonpath", default=None, help="measure the bayesscale checkout in this folder")
    ap.add_argument("--label", default="after")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one is not None:
        print(json.dumps(one(a.one, a.chains, a.warmup, a.draws, a.extrapolation)))
        return 0

    sys.path.insert(0, str(HERE))
    from _common import machine, table, write_section

    rows = []
    for n in a.runs:
        draws = a.draws_100k if (n >= 100_000 and a.draws_100k) else a.draws
        r = measure(n, a.chains, a.warmup, draws, a.extrapolation, a.pythonpath)
        per = (r["check_peak_mb"] * 2**20) / (r["S"] * r["runs"])  # the whole peak, per run and draw
        row = {"code": a.label, "runs": r["runs"], "chains x (warm-up + draws)": r["settings"],
               "extrapolation": r["extrapolation"], "fit s": r["fit_s"], "check s": r["check_s"],
               "peak MB, fit": r["fit_peak_mb"], "peak MB, fit + check": r["check_peak_mb"],
               "RSS MB after check": r["after_check_mb"], "posterior arrays MB": r["held_check_mb"],
               "peak bytes / (run x draw)": per, "peak KB / run": r["check_peak_mb"] * 1024 / r["runs"],
               "checks pass": r["ok"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    cols = list(rows[0])
    body = table(rows, cols)
    print(body)
    if not a.no_write:
        head = (f"## memory.py ({a.label})\n\nMachine: {machine()}\n\nSynthetic isoFLOP sweeps (10 budgets x n/10 "
                f"sizes, 1.5% noise), each fit in a fresh process; memory above the process's baseline after "
                f"import (peak: ru_maxrss).\n\n")
        write_section(f"memory_{a.label}", head + body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
