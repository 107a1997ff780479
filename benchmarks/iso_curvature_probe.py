"""Probe: does a curvature term across each IsoFLOP profile fix the centre? (issue 9, item 0)

A standalone NumPyro model: the Chinchilla law (level-at-centre coordinates), the bend in log C as in
bayesscale, Student-t(4) noise, and optionally ``gamma * (log10 N / N_opt_law(C))**2`` (``gamma ~ Normal(0, 0.05)``),
which sharpens or flattens the IsoFLOP parabola about the law's own optimum without moving it.  Variants:
``none``; ``constant`` (session 4); ``trend`` (session 10): ``gamma + gamma1 * (log10 C - m)``, a curvature
that changes with compute (``gamma1 ~ Normal(0, 0.05)`` per decade), continued linearly beyond the data;
``trend0`` (session 10): ``gamma1 * (log10 C - m)`` alone, which bayesscale now offers as ``profile="trend"``.
Fits Chinchilla (C < 1e21), Marin and Farseer (largest 1 or 2 budgets held out), plain posterior predictive
(no extrapolation error), 2 chains x 600 + 500.

``--scan`` instead fits bayesscale's default (2 x 500 + 500) to the same splits (largest budget held out)
and prints, per budget with 5+ runs spanning a factor e in tokens per parameter, the quadratic coefficient
of the residuals of log loss in ``log(D / N)`` about the budget's mean, in-sample and held out.

Results: benchmarks/HELDOUT.md, "Session 4: IsoFLOP curvature probe" and "Session 10: an IsoFLOP curvature
that grows with compute".

Run: ``python benchmarks/iso_curvature_probe.py [--scan]``
"""
import sys
import numpy as np, pandas as pd, jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS, init_to_median
numpyro.set_host_device_count(2)
jax.config.update("jax_enable_x64", True)
import bayesscale as bs

def model(lN, lD, y=None, m=0.0, lo=-1, hi=1, iso="none", cN=0., cD=0.):
    E = numpyro.sample("E", dist.LogNormal(jnp.log(1.5), 0.5))
    a = numpyro.sample("alpha", dist.Uniform(0.05, 1.0))
    b = numpyro.sample("beta", dist.Uniform(0.05, 1.0))
    tA = numpyro.sample("tA", dist.Normal(-1.0, 2.0))   # log of A-term at data centre
    tB = numpyro.sample("tB", dist.Normal(-1.0, 2.0))
    lA = tA + a * cN; lB = tB + b * cD
    mu = jnp.logaddexp(jnp.log(E), jnp.logaddexp(lA - a * lN, lB - b * lD))
    lC = jnp.log(6.0) + lN + lD
    x = lC / jnp.log(10.) - m; xc = jnp.clip(x, lo, hi)
    k = numpyro.sample("kappa", dist.Normal(0, 0.01))
    mu = mu + k * xc * (2 * x - xc)
    if iso != "none":
        g = numpyro.sample("gamma", dist.Normal(0, 0.05)) if iso != "trend0" else 0.0
        if iso in ("trend", "trend0"):
            g = g + numpyro.sample("gamma1", dist.Normal(0, 0.05)) * x
        lG = (jnp.log(a) + lA - jnp.log(b) - lB) / (a + b)
        lNopt = lG + b / (a + b) * (lC - jnp.log(6.0))
        u = (lN - lNopt) / jnp.log(10.)
        mu = mu + g * u**2
    s = numpyro.sample("sigma", dist.LogNormal(jnp.log(0.01), 1.0))
    numpyro.sample("y", dist.StudentT(4.0, mu, s), obs=y)
    return mu

def fit_pred(tr, te, iso, seed=0):
    lN, lD, y = np.log(tr.N), np.log(tr.D), np.log(tr.loss)
    x = np.log10(tr.C); m = x.mean()
    kw = dict(m=m, lo=x.min() - m, hi=x.max() - m, iso=iso, cN=lN.mean(), cD=lD.mean())
    mc = MCMC(NUTS(model, init_strategy=init_to_median, target_accept_prob=0.9), num_warmup=600, num_samples=500, num_chains=2, progress_bar=False)
    mc.run(jax.random.PRNGKey(seed), lN, lD, y, **kw)
    smp = mc.get_samples()
    div = int(mc.get_extra_fields()["diverging"].sum())
    from numpyro.infer import Predictive
    pr = Predictive(model, smp)(jax.random.PRNGKey(1), np.log(te.N), np.log(te.D), None, **kw)["y"]
    pr = np.exp(np.asarray(pr))
    med = np.median(pr, 0)
    lo90, hi90 = np.quantile(pr, [0.05, 0.95], 0); lo50, hi50 = np.quantile(pr, [0.25, 0.75], 0)
    L = te.loss
    return dict(err=100 * np.median(np.abs(med / L - 1)), bias=100 * np.median(med / L - 1),
                cov50=np.mean((lo50 <= L) & (L <= hi50)), cov90=np.mean((lo90 <= L) & (L <= hi90)), div=div,
                gamma=float(np.median(smp["gamma"])) if iso in ("constant", "trend") else np.nan,
                gamma1=float(np.median(smp["gamma1"])) if iso in ("trend", "trend0") else np.nan, kappa=float(np.median(smp["kappa"])))

tasks = []
ch = bs.datasets.chinchilla()
t = np.log10(ch.C) >= 21 - 0.05
tasks.append(("chinchilla", ch.subset(~t), ch.subset(t)))
mr = pd.read_csv("/work/shared/data/marin_isoflops.csv")
for name, g in mr.groupby("dataset"):
    runs = bs.load_runs(g[["N", "D", "loss"]].assign(budget=g.C_nominal.map("{:.3g}".format)))
    Cg = runs.budget_compute()
    for k in (1, 2):
        tops = np.argsort(Cg)[-k:]
        te = np.isin(runs.budget, tops)
        tasks.append((f"marin {name} top{k}", runs.subset(~te), runs.subset(te)))
fs = pd.read_csv("/work/shared/data/farseer_train.csv")
fr = bs.load_runs(fs[["N", "D", "loss"]])
Cg = fr.budget_compute()
for k in (1, 2):
    te = np.isin(fr.budget, np.argsort(Cg)[-k:])
    tasks.append((f"farseer top{k}", fr.subset(~te), fr.subset(te)))


def scan(tasks):
    """Residual curvature across each budget of the default fit, in-sample and held out."""
    import warnings
    warnings.simplefilter("ignore", bs.FitWarning)
    tasks = [t for t in tasks if "top2" not in t[0]]
    posts = bs.fit_many([tr for _, tr, _ in tasks], seed=0, progress=False, chains=2, warmup=500, draws=500)
    rows = []
    for (name, tr, te), p in zip(tasks, posts):
        for part, r in (("train", tr), ("test", te)):
            e = np.log(r.loss) - np.median(np.log(p.predict_draws(r.N, r.D)), axis=0)
            x = np.log(r.D / r.N)
            for b in np.unique(r.budget):
                m = r.budget == b
                if m.sum() < 5 or np.ptp(x[m]) < 1:
                    continue
                lv = x[m] - x[m].mean()
                X = np.stack([np.ones(m.sum()), lv, lv**2], 1)
                coef, *_ = np.linalg.lstsq(X, e[m], rcond=None)
                res = e[m] - X @ coef
                se = np.sqrt(np.diag(res @ res / max(m.sum() - 3, 1) * np.linalg.inv(X.T @ X)))
                rows.append(dict(task=name, part=part, log10_C=round(float(np.log10(np.median(r.C[m]))), 2),
                                 runs=int(m.sum()), curvature=coef[2], z=coef[2] / se[2]))
    print(pd.DataFrame(rows).round(5).to_string())


if "--scan" in sys.argv:
    scan(tasks)
    sys.exit()
rows = []
for name, tr, te in tasks:
    for iso in ("none", "constant", "trend", "trend0"):
        r = fit_pred(tr, te, iso); r.update(task=name, iso=iso); rows.append(r); print(r, flush=True)
df = pd.DataFrame(rows)
print(df.to_string())
print(df.groupby("iso")[["err", "bias", "cov50", "cov90"]].mean())
print(df.pivot(index="task", columns="iso", values="err").round(3))
