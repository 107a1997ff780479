"""Write notebooks/07_which_data_mixture.ipynb (without outputs).

    python notebooks/make_07_which_data_mixture.py
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    ("md", """# 7. Which data mixture?

Three pre-training data sets, one ladder of model sizes and budgets: Marin's IsoFLOP sweeps of
`comma`, `dclm` and `nemotron` (`../shared/data/marin_isoflops.csv`). The question a team asks
before promoting a data mixture: **is B better than A, by how much compute, and how sure are we?**

This notebook fits all three sweeps at once with the hierarchical Chinchilla law (each data set has its
own `E, A, B, alpha, beta`; the exponents and `E` are partially pooled with learned pooling scales),
and turns the joint posterior into the **compute multiplier**: the factor by which B's compute-optimal
training reaches A's compute-optimal loss with less compute, with a 90% interval and P(B better), at
every budget."""),
    ("code", """import os
FAST = os.environ.get("BAYESSCALE_NOTEBOOK_FAST") == "1"

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import bayesscale as bs

SETTINGS = dict(chains=2, warmup=300, draws=300) if FAST else dict(chains=4, warmup=1000, draws=1000)
if FAST:  # short chains fall short of the ESS bar on purpose; see notebooks/README.md
    warnings.simplefilter("ignore", bs.FitWarning)

DATA = Path(bs.__file__).resolve().parents[2] / "shared" / "data"
HAVE_DATA = (DATA / "marin_isoflops.csv").is_file()
if not HAVE_DATA:
    print(f"The Marin sweeps are not at {DATA}: this notebook needs ../shared/data/marin_isoflops.csv "
          "next to the repository, and skips every step below without it.")"""),
    ("md", """## The runs

One row per run, with the data set in `dataset`. `load_runs(..., group="dataset")` keeps a group per
run. Marin's runs sit 0.93-1.35x off their nominal budget in `6 N D`, so runs are put into budgets by
the label `C_nominal` (passed as the `budget` column), not by compute."""),
    ("code", """if HAVE_DATA:
    marin = pd.read_csv(DATA / "marin_isoflops.csv").rename(columns={"C_nominal": "budget"})
    runs = bs.load_runs(marin, group="dataset")
    print(runs)
    display(marin.groupby(["budget", "dataset"]).size().unstack())"""),
    ("md", """## The hierarchical fit

`bs.fit(runs, groups=True)` fits one law per data set with partial pooling (the default,
`pooling="partial"`; `"shared"` and `"separate"` are the two limits). Each data set gets the single
fit's model: the bend in log compute (with at least 5 budgets, as here), and an extrapolation error
calibrated on the data set's own rolling-origin folds (`extrapolation="calibrated"`, the default), which
its predictions and allocations beyond 3e20 FLOPs carry. The sampler uses the non-centred parameterisation
with sum-to-zero group deviations: on these sweeps the centred one diverged (measurements in
`benchmarks/RESULTS.md`, section pooling), and grouped fits sample at `target_accept=0.95` by default.
With three data sets of many runs each, a few divergent transitions can survive even the automatic
retry: the verdict below says so when they do."""),
    ("code", """if HAVE_DATA:
    post = bs.fit(runs, groups=True, seed=0, **SETTINGS)
    print(post)
    verdict = post.check()
    print("diagnostics pass" if verdict.ok else
          f"{len(verdict.problems)} diagnostic problem(s); the first: {verdict.problems[0]}")
    summ = post.summary()
    display(summ.loc[(slice(None), ["E", "alpha", "beta"]), ["median", "lo80", "hi80", "r_hat", "ess_bulk"]].round(3))
    display(summ.loc["*", ["median", "lo80", "hi80"]].round(3))"""),
    ("md", """The pooling scales `s_alpha`, `s_beta` (log exponents) and `s_E` (log E) are learned: small values say
the data sets share their exponents, and the fit then borrows strength across them. Everything a single
fit offers works per data set through `post.group(name)`, an ordinary `Posterior`:"""),
    ("code", """if HAVE_DATA:
    rows = []
    for g in post.groups:
        a = post.group(g).allocate([1e21, 1e22], ci=0.9)
        rows += [{"dataset": g, "C": r.C, "N_opt": r.N_opt, "N_opt 90%": f"{r.N_opt_lo90:.3g} - {r.N_opt_hi90:.3g}",
                  "tokens/param": r.tokens_per_param, "loss": r.loss} for r in a.itertuples()]
    display(pd.DataFrame(rows).round(3))"""),
    ("md", """## The compute multiplier

`post.compare_groups(a, b, budgets=...)`: one row per budget, the posterior median multiplier of `b` over
`a` with its 90% interval and P(`b` better). The largest budget in the data is 3e20 FLOPs; the rows above
it are extrapolations of the laws."""),
    ("code", """if HAVE_DATA:
    BUDGETS = [1e19, 1e20, 3e20, 1e21, 1e22, 1e23]
    dclm_vs_comma = post.compare_groups("comma", "dclm", budgets=BUDGETS, ci=0.9)
    nemotron_vs_dclm = post.compare_groups("dclm", "nemotron", budgets=BUDGETS, ci=0.9)
    cols = ["C", "multiplier", "multiplier_lo90", "multiplier_hi90", "prob_better", "loss_a", "loss_b"]
    print("dclm over comma")
    display(dclm_vs_comma[cols].round(3))
    print("nemotron over dclm")
    display(nemotron_vs_dclm[cols].round(3))"""),
    ("code", """if HAVE_DATA:
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    bs.plots.compute_multiplier(post, "comma", "dclm", budgets=[2e18, 1e23], ci=0.9, ax=ax1)
    bs.plots.compute_multiplier(post, "dclm", "nemotron", budgets=[2e18, 1e23], ci=0.9, ax=ax2)
    display(fig)"""),
    ("md", """The multiplier drifts with scale when the data sets' exponents or irreducible losses differ: a
variant with a lower `E` keeps improving where the other flattens out, so its multiplier grows with
compute. The loss difference at a fixed model size (here 1B parameters, trained at each budget) is the
same comparison without re-optimising the allocation:"""),
    ("code", """if HAVE_DATA:
    at = post.compare_groups("dclm", "nemotron", budgets=[1e20, 1e21], N=1e9, ci=0.9)
    display(at[["C", "N", "D", "loss_diff", "loss_diff_lo90", "loss_diff_hi90", "prob_lower"]].round(4))"""),
    ("md", """## The answer

Read off the tables above (the words below are computed from them):"""),
    ("code", """def sentence(df, a, b, C):
    r = df.set_index("C").loc[C]
    return (f"At {C:.0e} FLOPs, {b} is worth {r.multiplier:.2f}x the compute of {a} "
            f"(90%: {r.multiplier_lo90:.2f}-{r.multiplier_hi90:.2f}), P({b} better) = {r.prob_better:.2f}.")


if HAVE_DATA:
    for df, a, b in ((dclm_vs_comma, "comma", "dclm"), (nemotron_vs_dclm, "dclm", "nemotron")):
        for C in (3e20, 1e22):
            print(sentence(df, a, b, C))
    best = min(post.groups, key=lambda g: np.median(post.params[g]["E"]))
    print(f"Lowest irreducible loss E (median): {best}.")"""),
    ("md", """**Which data mixture?** Within the range of the runs (up to 3e20 FLOPs) the multipliers above are
measured, and their intervals say how sure the data are. Beyond it they are extrapolations of three laws
that differ mostly in `E`: the longer the extrapolation, the more the answer rests on the law's form. The
multiplier's intervals include each law's bend but not the calibrated extrapolation error that each data
set's own predictions and allocations carry (`post.group(name)`): how the errors of two mixtures trained
on one ladder move together is not measured, and an error common to both cancels in the multiplier.
Before promoting a mixture on the strength of a multiplier far beyond the data, run its sweep one budget
further. `benchmarks/pooling.py` compares the pooled fit with separate fits on held-out budgets
(`benchmarks/RESULTS.md`, section pooling), and checks that the multiplier's intervals are calibrated on
synthetic groups."""),
]


def build() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS]
    return nb


if __name__ == "__main__":
    path = Path(__file__).with_name("07_which_data_mixture.ipynb")
    nb = build()
    nbformat.validate(nb)
    nbformat.write(nb, path)
    print(f"wrote {path}")
