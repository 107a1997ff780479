"""Builds notebooks/05_which_law.ipynb (run from the repository root; the notebook is committed without outputs)."""
import nbformat as nbf
nb = nbf.v4.new_notebook()
md = lambda s: nbf.v4.new_markdown_cell(s)
code = lambda s: nbf.v4.new_code_cell(s)
nb.cells = [
md("""# 5. Which law to believe?

The Chinchilla form `E + A/N^alpha + B/D^beta` is one choice among several. This notebook fits four laws
to a real IsoFLOP sweep (Marin's `dclm` ladder, three data sets in `../shared/data/marin_isoflops.csv`),
asks `bs.compare` which one to believe, in-sample (PSIS-LOO) **and** beyond the data (rolling-origin
backtests), and turns the stacking weights into one model-averaged allocation with `bs.average`.
Then it writes a law of its own in a few lines and takes it through the same path: fit, predict,
allocate, backtest and report, with no change to bayesscale. Last, the data-constrained law of
Muennighoff et al. (2023) on runs that repeat their data."""),
code("""import os
FAST = os.environ.get("BAYESSCALE_NOTEBOOK_FAST") == "1"   # short chains (the test suite sets it)

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pandas as pd

import bayesscale as bs

SETTINGS = dict(chains=2, warmup=300, draws=300) if FAST else dict(chains=4, warmup=1000, draws=1000)
BT = dict(chains=2, warmup=150, draws=150) if FAST else dict(chains=2, warmup=300, draws=300)  # backtest refits


def shared_data() -> Path | None:
    \"\"\"The project's ../shared/data folder, found next to the repository or the working directory.\"\"\"
    for base in (Path(bs.__file__).resolve().parents[2], Path.cwd().parent, Path.cwd()):
        if (base / "shared" / "data" / "marin_isoflops.csv").is_file():
            return base / "shared" / "data"
    return None


DATA = shared_data()
print("shared data:", DATA)"""),
md("""## The runs

Marin's sweeps sit 0.93-1.35x off their nominal budget in `6 N D`, so the runs are grouped by the
budget label `C_nominal`, not by compute (the data README says why)."""),
code("""if DATA is not None:
    marin = pd.read_csv(DATA / "marin_isoflops.csv")
    frame = marin[marin.dataset == "dclm"].drop(columns="dataset").rename(columns={"C_nominal": "budget"})
    runs = bs.load_runs(frame.reset_index(drop=True))
else:  # without the shared data: the bundled Chinchilla runs tell the same story
    runs = bs.datasets.chinchilla(drop_highest_loss=5)
runs"""),
md("""## Four laws, one engine

Every law goes through the same NumPyro model and the same compiled NUTS program per shape. The
plain (uncalibrated) law is fitted here: the question is which *form* to believe."""),
code("""LAWS = ["chinchilla", "coupled", "kaplan"] + ([] if FAST else ["compute_only"])  # compute_only: the slowest to backtest
posts = {name: bs.fit(runs, law=name, extrapolation="none", seed=0, progress=False, **SETTINGS) for name in LAWS}
for name, p in posts.items():
    print(f"{name:13s} {p.law.formula:60s} diagnostics ok: {p.check().ok}")"""),
code("""posts["chinchilla"].summary()"""),
md("""The coupled law, `L = E + A/N^alpha + B/(N^gamma D^beta)`, lets the data term depend on model size.
Its `gamma` is the N x D coupling the additive law sets to zero: an interval that excludes zero says the
additive form misfits these runs (the difference it makes to the allocation is in the table below)."""),
code("""posts["coupled"].summary().loc[["alpha", "beta", "gamma"]]"""),
md("""## `compare`: in-sample and beyond the data

`elpd_loo` scores each law on the runs it was fitted to (PSIS-LOO, with the number of runs whose Pareto
k is too high to trust it); `backtest_mlpd` refits each law on rolling-origin folds and scores the
held-out budgets, the quantity that matters for a budget. The stacking weights say how to mix the laws'
predictions. The N_opt columns show what each law recommends at 1e21 and 1e22 FLOPs. `preferred` marks the
law to believe when LOO cannot separate them: the simplest law within two standard errors of the best elpd
(nested laws tie: Chinchilla's law is the coupled law with gamma = 0, and fits its own data no worse)."""),
code("""BUDGETS = [1e21, 1e22]
table = bs.compare(list(posts.values()), budgets=BUDGETS, backtest=True, backtest_settings=BT)
table"""),
code("""best_in = table.iloc[0]["law"]
best_out = table.sort_values("backtest_mlpd", ascending=False).iloc[0]["law"]
print(f"best in-sample (LOO): {best_in}; best beyond the data (backtest): {best_out}")
print("preferred (the simplest law within 2 standard errors of the best elpd):", table.attrs["preferred"])
print("stacking weights:", dict(zip(table.law, table.weight.round(3))))"""),
md("""## One honest band: the model-averaged allocation

`bs.average` draws from each law's allocation in proportion to its stacking weight. Its band includes the
disagreement between the laws; a law with no size dependence (`compute_only`) contributes to the loss but
not to `N_opt`."""),
code("""size_laws = [posts[n] for n in ("chinchilla", "coupled", "kaplan")]
avg = bs.average(size_laws, budgets=BUDGETS)
print("weights:", {k: round(v, 3) for k, v in avg.attrs["weights"].items()})
avg[["C", "N_opt", "N_opt_lo80", "N_opt_hi80", "tokens_per_param", "loss", "loss_lo80", "loss_hi80"]]"""),
md("""## A law of your own, in a few lines

`bs.Law.from_function` takes a function of a dict of parameters and the named covariates (here `logN` and
`logD`) returning log loss, and a prior per parameter. This one lets the two power-law terms combine with
an exponent `q` (`q = 1` is Chinchilla's sum). It compiles once like the built-ins, and its
compute-optimal allocation is solved numerically per draw."""),
code("""def softsum(p, logN, logD):
    terms = jnp.logaddexp(jnp.log(p["A"]) - p["alpha"] * logN, jnp.log(p["B"]) - p["beta"] * logD)
    return jnp.logaddexp(jnp.log(p["E"]), p["q"] * terms)


my_law = bs.Law.from_function(
    softsum, covariates=["logN", "logD"], name="softsum",
    params={"E": dist.LogNormal(0.5, 0.5), "A": dist.LogNormal(6.0, 2.5), "B": dist.LogNormal(7.0, 2.5),
            "alpha": dist.LogNormal(np.log(0.3), 0.5), "beta": dist.LogNormal(np.log(0.3), 0.5),
            "q": dist.LogNormal(0.0, 0.2)},
    formula="E + (A/N^alpha + B/D^beta)^q")
mine = bs.fit(runs, law=my_law, extrapolation="none", seed=0, progress=False, **SETTINGS)
mine.summary()"""),
code("""print(mine.predict(N=[1e9], D=[2e10]))
print(mine.allocate(BUDGETS)[["C", "N_opt", "N_opt_lo80", "N_opt_hi80", "tokens_per_param"]])
bt = bs.backtest(runs, law=my_law, holdout="largest_budget", extrapolation="none", seed=0, progress=False, **BT)
bt.table"""),
code("""import tempfile

out = Path(tempfile.mkdtemp()) / "report"
paths = bs.report(mine, budgets=BUDGETS, out=out)
print(sorted(p.name for p in out.iterdir()))"""),
md("""## Repeated data: the data-constrained law

Muennighoff et al. (2023) replace D by an effective amount of data that saturates as the same unique
tokens are repeated (their R*_D ~ 15.4). It needs the unique tokens of each run (`unique_tokens`)."""),
code("""if DATA is not None:
    dc = bs.load_runs(DATA / "data_constrained_train.csv", columns={"N": "params", "D": "tokens"})
    post_dc = bs.fit(dc, law="data_constrained", extrapolation="none", seed=0, progress=False, **SETTINGS)
    print(post_dc.summary().loc[["alpha", "beta", "R_D", "R_N"], ["median", "lo80", "hi80"]])
    print("epochs in the data:", np.round(np.quantile(dc.D / dc.U, [0, 0.5, 1]), 1))"""),
]
nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
nbf.write(nb, "notebooks/05_which_law.ipynb")
print("wrote notebooks/05_which_law.ipynb")
