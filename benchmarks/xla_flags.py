"""Time one warm GPU fit under XLA flag variants, each in a fresh process (flags are read at start-up).

Usage: ``python benchmarks/xla_flags.py [--sizes 1 10]``.  NUTS on a GPU is latency bound: every
leapfrog step of every tree runs a handful of small kernels inside while loops whose conditions
come back to the host.  Command buffers (CUDA graphs) for while loops and conditionals are XLA's
way to cut that launch cost; this measures whether they do here.  bayesscale turns them on for
while loops and conditionals at import (unless XLA_FLAGS names the flag).  The run in RESULTS.md
("gpu-notes", session 7) predates that default: its first variant set no flag at all.  The
"-WHILE,-CONDITIONAL" form here gives XLA's own default; session 10 ran both variants on an H100.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

VARIANTS = {
    "XLA's default command buffers": "--xla_gpu_enable_command_buffer=-WHILE,-CONDITIONAL",
    "+ while loops and conditionals (bayesscale's default)": "--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL",
}

CHILD = r"""
import json, sys, time, warnings
import numpy as np
import bayesscale as bs
from bayesscale.simulate import CHINCHILLA_FIT, isoflop_design
warnings.simplefilter("ignore")
K = int(sys.argv[1])
rng = np.random.default_rng(K)
N, D = isoflop_design(sizes_per_budget=35)
data = [bs.simulate_runs({n: v * np.exp(rng.normal(0, 0.1)) for n, v in CHINCHILLA_FIT.items()}, N=N, D=D,
                         sigma=0.01, df=4, seed=k) for k in range(K)]
kw = dict(device="gpu", progress=False, extrapolation="none", retry=False, batch_size=K)
t = time.perf_counter(); bs.fit_many(data, **kw); first = time.perf_counter() - t
t = time.perf_counter(); posts = bs.fit_many(data, seed=1, **kw); warm = time.perf_counter() - t
steps = sum(float(np.sum(p.stats["num_steps"])) for p in posts)
print(json.dumps({"first": first, "warm": warm, "steps": steps, "ok": float(np.mean([p.check().ok for p in posts]))}))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 10])
    args = ap.parse_args()
    for name, flags in VARIANTS.items():
        for K in args.sizes:
            env = dict(os.environ, XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " " + flags).strip())
            r = subprocess.run([sys.executable, "-c", CHILD, str(K)], env=env, capture_output=True, text=True)
            if r.returncode:
                print(f"{name} K={K}: failed\n{r.stderr[-1500:]}", flush=True)
                continue
            res = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"{name:55s} K={K:5d}  first {res['first']:7.1f} s  warm {res['warm']:7.2f} s  "
                  f"leapfrog/s {res['steps'] / res['warm']:10.0f}  checks ok {res['ok']:.0%}", flush=True)


if __name__ == "__main__":
    main()
