"""The Posterior as a light record (issue 12, items 10, 22 and 23).

* item 10: a fit holds nothing per run and draw; the pointwise log-likelihood
  and the replicated data are computed on demand, in chunks, and equal what
  the posterior used to store;
* item 22: a small, documented set of methods; analyses are functions; reading
  a result never runs the sampler, the calibration or PSIS-LOO;
* item 23: one quantile helper.
"""

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import bayesscale as bs
from bayesscale import allocation, diagnostics, groups, inference, intervals, posterior, steps_analysis
from bayesscale.intervals import quantiles
from bayesscale.posterior import Posterior

DATA = Path(__file__).with_name("data")

#: Written by bayesscale before item 10 (commit 765d4f2): their trees carry the log_likelihood and
#: posterior_predictive groups that the posterior used to hold.  A Student-t fit with budget offsets
#: and a bend (63 runs), and a kaplan_steps fit of curves with AR(1) residuals (24 checkpoints).
OLD_FILES = ["posterior_v0_budget_offsets.nc", "posterior_v0_curves_ar1.nc"]

#: The documented methods and properties of a Posterior (besides its dataclass fields).
PUBLIC = {"from_draws", "extrapolation", "law", "params", "law_params", "reported", "n_draws",
          "predict_draws", "predict", "allocate", "summary", "check", "tree", "to_netcdf"}

#: The analyses that were methods and are functions now (exported from bayesscale).
MOVED = ("bayes_decision", "prob_below", "best_D_for_N", "best_N_for_D", "compute_for_loss",
         "frontier_exponents", "excess_compute", "efficient_size_range")


def _arrays(obj, seen=None):
    """Every NumPy array reachable from a posterior's attributes (dicts, trees, dataclasses)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _arrays(v, seen)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _arrays(v, seen)
    elif isinstance(obj, xr.DataTree):
        for node in obj.subtree:
            for v in node.to_dataset(inherit=False).variables.values():
                yield np.asarray(v.values)
    elif isinstance(obj, Posterior) or (dataclasses.is_dataclass(obj) and not isinstance(obj, type)):
        for v in vars(obj).values():
            yield from _arrays(v, seen)


@pytest.fixture(scope="module")
def wide_post():
    """A fit to 2,000 runs (10 budgets x 200 sizes), tiny chains."""
    N, D = bs.simulate.isoflop_design(budgets=np.geomspace(1e18, 1e21, 10), sizes_per_budget=200)
    runs = bs.simulate_runs(N=N, D=D, sigma=0.015, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        return bs.fit(runs, chains=2, warmup=60, draws=25, seed=0, extrapolation="none", retry=False,
                      offsets="budget", progress=False)


def test_item10_a_fit_holds_nothing_per_run_and_draw_until_asked(wide_post, tmp_path):
    p = wide_post
    n, S = len(p.runs), p.n_draws
    assert n == 2000 and S == 50
    assert p.samples["t_N"].shape == (2, 25)  # kept draws only: the warm-up is not collected
    param_bytes = max(a.nbytes for a in p.samples.values())  # the largest draws: z_budget, S x 10 budgets
    # read it every way a user does, including the explicit check (PSIS-LOO in chunks)
    repr(p), p.summary(), p.predict([1e9], [2e10]), p.allocate([1e22]), p.tree, p.check()
    p.to_netcdf(tmp_path / "wide.nc")
    # what is held: parameter draws (at most the largest sampled array) and one value per run (the data)
    big = [(a.shape, a.nbytes) for a in _arrays(p) if a.nbytes > param_bytes and a.size > n]
    assert big == [], big
    assert max(a.size for a in _arrays(p)) <= max(n, param_bytes // 8)
    assert not any(k in p.tree.children for k in ("log_likelihood", "posterior_predictive"))
    # asked for, the pointwise arrays come out whole, and the posterior still does not keep them
    ll = bs.log_likelihood(p, chunk=S * 300)  # 7 chunks of 300 runs (the last 200)
    assert ll.shape == (2, 25, n) and np.isfinite(ll).all()
    np.testing.assert_array_equal(ll, bs.log_likelihood(p))
    assert bs.posterior_predictive(p).shape == (2, 25, n)
    assert max(a.size for a in _arrays(p)) <= max(n, param_bytes // 8)
    # the chunked verdict is the one of the whole array
    k = diagnostics.pareto_k(ll)
    assert p.check().table.loc["max Pareto k", "value"] == pytest.approx(float(k.max()), rel=1e-12)


@pytest.mark.parametrize("name", OLD_FILES)
def test_item10_on_demand_log_likelihood_equals_the_stored_one_of_older_files(name):
    path = DATA / name
    with xr.open_datatree(path, engine="netcdf4") as t:
        stored = t["log_likelihood"]["y"].values.copy()
        stored_rep = t["posterior_predictive"]["y"].values.copy()
    post = bs.load_posterior(path)  # an older file with the pointwise groups still loads (checksummed)
    assert set(post.tree.children) == {"posterior", "sample_stats", "observed_data", "constant_data"}
    n = len(post.runs)
    for chunk in (None, 1, post.n_draws * 5, post.n_draws * (n - 1)):  # whole, one run, 5 runs, all but one
        np.testing.assert_allclose(bs.log_likelihood(post, chunk=chunk), stored, rtol=1e-6, atol=0)
    # the replicated data come from the same model: same centre and spread per run as the stored draws
    rep = bs.posterior_predictive(post)
    assert rep.shape == stored_rep.shape
    np.testing.assert_allclose(np.median(rep, axis=(0, 1)), np.median(stored_rep, axis=(0, 1)), atol=0.03)
    # the verdict's PSIS-LOO (chunked) is the one of the stored array
    k = diagnostics.pareto_k(stored)
    assert post.check().table.loc["max Pareto k", "value"] == pytest.approx(float(k.max()), rel=1e-9)


def test_item22_posterior_public_methods_are_the_small_documented_set():
    fields = {f.name for f in dataclasses.fields(Posterior)}
    public = {n for n in dir(Posterior) if not n.startswith("_")} - fields
    assert public == PUBLIC
    for name in PUBLIC:
        assert f":attr:`{name}`" in Posterior.__doc__ or f":meth:`{name}`" in Posterior.__doc__, name
    # the analyses are functions of a posterior, exported from bayesscale and listed in __all__
    for name in MOVED:
        assert callable(getattr(bs, name)) and name in bs.__all__, name
        assert getattr(bs, name) is getattr(allocation, name)
        assert not hasattr(Posterior, name)
    for name in ("log_likelihood", "posterior_predictive", "to_arviz"):
        assert getattr(bs, name) is getattr(posterior, name) and name in bs.__all__


def test_item22_functions_give_what_the_methods_gave(synthetic_post):
    p = synthetic_post
    # the same numbers as the draw-level functions with the posterior's draws, law and predictive noise
    fe = bs.frontier_exponents(p, ci=0.9)
    assert fe.equals(allocation.frontier_exponents(p.law_params, ci=0.9, law=p.law))
    noise = posterior.log_noise(p, [1e22, 1e23])
    pd_ = bs.bayes_decision(p, [1e22, 1e23])
    assert pd_.equals(allocation.bayes_optimal_N(p.law_params, [1e22, 1e23], log_noise=noise, law=p.law))
    N, D = np.array([1e9, 2e9]), np.array([2e10, 4e10])
    pb = bs.prob_below(p, N, D, 2.6)
    z = posterior.log_noise(p, 6 * N * D)  # as the method did: seeded by compute
    assert np.array_equal(pb, allocation.prob_below(p.law_params, N, D, 2.6, log_noise=z, law=p.law))
    ex = bs.excess_compute(p, 1e22)
    assert len(ex.table) == 49 and ex.table.k.iloc[0] == pytest.approx(0.25)
    assert bs.best_D_for_N(p, [1e9]).table.equals(allocation.best_D_for_N(p.law_params, [1e9]).table)
    assert bs.efficient_size_range(p, 1e22).k_lo < 1 < bs.efficient_size_range(p, 1e22).k_hi
    with pytest.raises(ValueError, match="does not match the posterior's law"):
        bs.frontier_exponents(p, law="kaplan")


def test_item22_reading_never_samples_calibrates_or_runs_loo(small_post, tmp_path):
    # a fresh copy (nothing cached) of a calibrated fit
    p = bs.load_posterior(small_post.to_netcdf(tmp_path / "a.nc"))
    assert p.extrapolation_mode == "calibrated" and p.discrepancy is not None

    def counts():
        return (inference.round_trip_count(), inference.compile_count(), diagnostics._CALLS["pareto_k"],
                posterior._POINTWISE["chunks"])

    before = counts()
    repr(p), str(p), p.params, p.summary(), p.tree, p.extrapolation
    p.predict([1e9, 7e10], [2e10, 1.4e12])
    p.predict_draws([1e9], [2e10])
    p.allocate([1e22, 1e24])
    p.to_netcdf(tmp_path / "b.nc")
    for name in MOVED:
        args = {"bayes_decision": ([1e22],), "prob_below": (7e10, 1.4e12, 2.0), "best_D_for_N": ([1e9],),
                "best_N_for_D": ([1e11],), "compute_for_loss": ([2.0],), "frontier_exponents": (),
                "excess_compute": (1e22,), "efficient_size_range": (1e22,)}[name]
        getattr(bs, name)(p, *args)
    assert counts() == before  # no sampler round trip, no compile, no PSIS-LOO, no pointwise arrays
    # the explicit step runs PSIS-LOO (once: the verdict is kept), and still no sampler
    p.check()
    p.check()
    after = counts()
    assert after[:2] == before[:2] and after[2] > before[2] and after[3] > before[3]
    assert counts() == after


def test_item23_one_quantile_helper():
    # the former copies are the helper of bayesscale.intervals
    assert allocation._band is quantiles and groups._band is quantiles and steps_analysis._band is quantiles
    assert not hasattr(posterior, "_quantiles") and not hasattr(steps_analysis, "_band_inf")
    assert not hasattr(allocation, "_nan_bands")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(101, 3))
    np.testing.assert_array_equal(np.array(quantiles(x, 0.8)), np.quantile(x, [0.5, (1 - 0.8) / 2, (1 + 0.8) / 2], axis=0))
    # NaN draws are ignored; infinite draws rank, and an interpolation touching one is infinite
    y = np.array([1.0, 2.0, 3.0, np.nan, np.inf])
    med, lo, hi = quantiles(y, 0.5)
    assert (med, lo) == (2.5, 1.75) and hi == np.inf
    med, lo, hi = quantiles(np.array([1.0, 2.0, 3.0, 4.0, np.inf]), 0.5)
    assert (med, lo, hi) == (3.0, 2.0, 4.0)  # the upper quartile lands exactly on 4: finite
    med, lo, hi = quantiles(np.array([[np.nan, 1.0], [np.nan, -np.inf]]), 0.8)
    assert np.isnan(med[0]) and med[1] == -np.inf == hi[1]
    med, lo, hi = quantiles(np.array([-np.inf, 1.0, 2.0]), 0.8)
    assert (med, lo) == (1.0, -np.inf) and hi == pytest.approx(1.8)
    # the axis argument works as NumPy's
    z = rng.normal(size=(4, 50))
    z[0, 0] = np.inf
    got = quantiles(z, 0.8, axis=1)
    np.testing.assert_array_equal(got[0][1:], np.quantile(z[1:], 0.5, axis=1))
    assert intervals.quantiles is quantiles
