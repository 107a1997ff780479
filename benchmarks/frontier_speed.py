"""How fast is the numeric compute-optimal frontier, and how close to the closed forms?

For each built-in law of N and D, ``bayesscale.frontier.solve`` finds
``N_opt(C)`` per draw and budget: 4,000 parameter draws (the published
constants of ``bayesscale.simulate.PUBLISHED``, spread like a posterior:
every positive parameter times ``exp(Normal(0, 0.05))``) x 100 budgets from
1e18 to 1e27 FLOPs, under ``C = 6 N D``.  The first call compiles; the warm
rows are the median of 5 calls with fresh draws of the same shapes (no
recompilation).  Where a closed form exists (Chinchilla: ``bayesscale.laws.
optimal_allocation``; the coupled law: its ``Law.frontier``; Kaplan et al. 2020 eq. 1.5:
``N_opt = (alpha_N / alpha_D)^(...)``, derived below), the largest relative
difference of ``N_opt`` over all draws and budgets is printed (issue 10:
1e-6 relative, < 1 s for 4,000 x 100 on 2 CPU cores).

Usage: ``python benchmarks/frontier_speed.py [--draws 4000] [--budgets 100] [--write]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from bayesscale import frontier
from bayesscale.laws import get_law
from bayesscale.simulate import PUBLISHED

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, table, write_section  # noqa: E402

LAWS = ("chinchilla", "kaplan", "coupled")


def draws(name: str, S: int, rng: np.random.Generator) -> dict:
    return {k: v * np.exp(rng.normal(0.0, 0.05, S)) for k, v in PUBLISHED[name].items()}


def kaplan_closed_form(p: dict, C: np.ndarray) -> np.ndarray:
    """N_opt of L = [(N_c/N)^(a_N/a_D) + D_c/D]^a_D under C = 6 N D.

    With r = a_N / a_D and D = C / (6N), minimising (N_c/N)^r + 6 D_c N / C
    gives r N_c^r N^(-r-1) = 6 D_c / C, so N_opt = (r N_c^r C / (6 D_c))^(1/(r+1)).
    """
    r = (p["alpha_N"] / p["alpha_D"])[:, None]
    return (r * p["N_c"][:, None] ** r * C[None, :] / (6.0 * p["D_c"][:, None])) ** (1.0 / (r + 1.0))


def closed_form(name: str, p: dict, C: np.ndarray):
    if name == "kaplan":
        return kaplan_closed_form(p, C)
    law = get_law(name)  # chinchilla (laws.optimal_allocation) and coupled carry their own
    return None if law.frontier is None else law.frontier({k: v[:, None] for k, v in p.items()}, C[None, :])[0]


def measure(name: str, S: int, B: int, seed: int = 0) -> dict:
    law = get_law(name)
    C = np.logspace(18, 27, B)
    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    fr = frontier.solve(law.log_loss, draws(name, S, rng), C)
    first = time.perf_counter() - t
    warm, errs, interior = [], [], []
    for _ in range(5):
        p = draws(name, S, rng)
        t = time.perf_counter()
        fr = frontier.solve(law.log_loss, p, C)
        warm.append(time.perf_counter() - t)
        interior.append(fr.interior.mean())
        cf = closed_form(name, p, C)
        if cf is not None:
            errs.append(float(np.nanmax(np.abs(fr.N_opt / cf - 1))))
    return {"law": name, "draws x budgets": f"{S:,} x {B}", "first call s (compiles)": first,
            "warm s (median of 5)": float(np.median(warm)), "warm s (max)": float(np.max(warm)),
            "interior": float(np.mean(interior)),
            "max rel. error of N_opt vs closed form": (f"{max(errs):.1e}" if errs else "no closed form")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=4000)
    ap.add_argument("--budgets", type=int, default=100)
    ap.add_argument("--write", action="store_true", help="write the 'frontier_speed' section of RESULTS.md")
    args = ap.parse_args()
    rows = [measure(name, args.draws, args.budgets) for name in LAWS]
    text = table(rows, list(rows[0]))
    print(text)
    if args.write:
        write_section("frontier_speed", f"## frontier_speed.py\n\nMachine: {machine()}\n\n"
                      f"`bayesscale.frontier.solve` under C = 6 N D, "
                      f"{args.draws:,} draws x {args.budgets} budgets (1e18-1e27), published constants with 5% "
                      f"spread per draw.\n\n{text}")


if __name__ == "__main__":
    main()
