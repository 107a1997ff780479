"""Does a fit on the GPU agree with the same fit on the CPU?

Fits the bundled Chinchilla runs (240, the five highest-loss runs left out)
twice in one process, once with ``device="cpu"`` and once with
``device="gpu"``, same seed and settings (``extrapolation="none"``: the
sampler alone).  The draws differ (the two compile the program with other
summation orders, and chains amplify a 1e-6 difference), so the comparison is
statistical: for each parameter and for N_opt at 1e24 FLOPs, the difference of
posterior means over its Monte Carlo standard error,
sqrt(mcse_cpu^2 + mcse_gpu^2).  |z| below about 3 everywhere means the two
devices sample the same posterior.  Also times both fits (warm: each device
fits once first to compile).

Usage: ``python benchmarks/device_agreement.py [--write]`` on a machine with a
GPU (``jax[cuda12]`` or ``jax[cuda13]``).  Prints a table; ``--write`` writes
the "device_agreement" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import arviz_stats as azs
import numpy as np

import bayesscale as bs

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, table, write_section  # noqa: E402


def _mean_mcse(draws: np.ndarray) -> tuple[float, float]:
    """Posterior mean and its Monte Carlo standard error; draws shaped (chains, draws)."""
    return float(draws.mean()), float(azs.mcse(draws, method="mean"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    runs = bs.datasets.chinchilla(drop_highest_loss=5)
    kw = dict(chains=4, warmup=1000, draws=1000, seed=args.seed, extrapolation="none", progress=False)
    posts, secs = {}, {}
    for device in ("cpu", "gpu"):
        bs.fit(runs, device=device, **kw)  # compile
        t = time.perf_counter()
        posts[device] = bs.fit(runs, device=device, **kw)
        secs[device] = time.perf_counter() - t
        print(f"{device}: {secs[device]:.2f} s, verdict ok={posts[device].check().ok}", flush=True)
    rows = []
    names = list(posts["cpu"].params)
    for name in names + ["N_opt(1e24)"]:
        stats = {}
        for device, post in posts.items():
            if name == "N_opt(1e24)":
                d = np.log(post.allocate([1e24]).attrs["draws"]["N_opt"][:, 0])
            else:
                d = np.asarray(post.params[name])
            stats[device] = _mean_mcse(d.reshape(kw["chains"], -1))
        (m_c, s_c), (m_g, s_g) = stats["cpu"], stats["gpu"]
        rows.append({"quantity": name if name != "N_opt(1e24)" else "log N_opt(1e24)", "mean cpu": m_c,
                     "mean gpu": m_g, "mcse cpu": s_c, "mcse gpu": s_g, "z": (m_g - m_c) / np.hypot(s_c, s_g)})
    text = table(rows, list(rows[0]))
    timing = (f"Warm fit, 4 chains x 1000 + 1000: cpu {secs['cpu']:.2f} s, gpu {secs['gpu']:.2f} s; "
              f"both verdicts ok: {posts["cpu"].check().ok and posts["gpu"].check().ok}; "
              f"max |z| = {max(abs(r['z']) for r in rows):.2f}.")
    print(text + "\n" + timing)
    if args.write:
        write_section("device_agreement", f"## device_agreement.py\n\nMachine: {machine()}\n\n"
                      f"Bundled Chinchilla runs (240), same seed on each device, extrapolation='none'. z is the "
                      f"difference of posterior means over its Monte Carlo standard error.\n\n{text}\n{timing}")


if __name__ == "__main__":
    main()
