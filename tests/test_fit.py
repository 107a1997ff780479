"""End-to-end fits with real NumPyro, JAX and ArviZ: published numbers, recovery, calibration, I/O."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesscale as bs
from bayesscale.inference import compile_count

from .conftest import SMALL, fit_quietly

# Besiroglu et al. (2024), 95% bootstrap intervals on the 240-run subset (shared/data/README.md)
PUBLISHED_95 = {"A": (285.2, 743.6), "B": (1042.4, 5810.3), "E": (1.769, 1.871),
                "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}


@pytest.mark.slow
def test_chinchilla_reproduces_published_refit(full_post):
    s = full_post.summary()
    for name, (lo, hi) in PUBLISHED_95.items():
        assert lo < s.loc[name, "median"] < hi, (name, s.loc[name, "median"])
    assert s.r_hat.max() <= 1.01
    assert s.ess_bulk.min() >= 400 and s.ess_tail.min() >= 400
    verdict = full_post.check()
    assert verdict.ok, verdict.problems
    assert verdict.problems == []
    # the posterior is honest: far wider than Hoffmann's published a-interval (0.454-0.455)
    p = full_post.params
    a = p["beta"] / (p["alpha"] + p["beta"])
    lo, hi = np.quantile(a, [0.025, 0.975])
    assert 0.48 < np.median(a) < 0.55 and hi - lo > 0.01


def test_params_and_summary_columns(small_post):
    p = small_post.params
    assert set(p) >= {"E", "A", "B", "alpha", "beta", "sigma"}
    n = SMALL["chains"] * SMALL["draws"]
    assert all(v.shape == (n,) for v in p.values())
    assert all(np.all(p[k] > 0) for k in ("E", "A", "B", "alpha", "beta", "sigma"))
    s = small_post.summary(ci=0.8)
    assert list(s.index[:5]) == ["E", "A", "B", "alpha", "beta"]
    assert {"median", "mean", "sd", "lo80", "hi80", "r_hat", "ess_bulk", "ess_tail"} <= set(s.columns)
    assert (s.lo80 < s["median"]).all() and (s["median"] < s.hi80).all()
    assert s.attrs["ci"] == 0.8


def test_tree_has_the_record_and_to_arviz_the_pointwise_groups(small_post):
    tree = small_post.tree
    assert set(tree.children) == {"posterior", "sample_stats", "observed_data", "constant_data"}
    ss = tree["sample_stats"]
    for v in ("diverging", "tree_depth", "energy"):
        assert v in ss.data_vars
    assert tree["posterior"]["A"].shape == (SMALL["chains"], SMALL["draws"])
    full = bs.to_arviz(small_post)
    for group in ("posterior", "sample_stats", "observed_data", "posterior_predictive", "log_likelihood"):
        assert group in full.children, group
    assert full["log_likelihood"]["y"].shape == (SMALL["chains"], SMALL["draws"], 240)
    assert full["posterior_predictive"]["y"].shape == (SMALL["chains"], SMALL["draws"], 240)
    assert set(bs.to_arviz(small_post, groups=("log_likelihood",)).children) >= {"log_likelihood"}
    assert "posterior_predictive" not in bs.to_arviz(small_post, groups=("log_likelihood",)).children
    with pytest.raises(ValueError, match="unknown group"):
        bs.to_arviz(small_post, groups=("prior",))


def test_posterior_is_immutable(small_post):
    with pytest.raises(AttributeError):
        small_post.runs = None


def test_predict(small_post):
    df = small_post.predict([1e9, 70e9], [2e10, 1.4e12], ci=0.9)
    assert list(df.columns[:6]) == ["N", "D", "C", "loss", "loss_lo90", "loss_hi90"]
    assert (df.loss_lo90 < df.loss).all() and (df.loss < df.loss_hi90).all()
    wide = small_post.predict([1e9, 70e9], [2e10, 1.4e12], ci=0.99)
    assert (wide.loss_hi99 - wide.loss_lo99 > df.loss_hi90 - df.loss_lo90).all()
    # the predictive median follows the law at the posterior
    np.testing.assert_allclose(df.loss[0], np.median(bs.laws.loss(small_post.params, 1e9, 2e10)), rtol=0.01)
    with pytest.raises(ValueError, match="positive"):
        small_post.predict([-1], [1e9])
    with pytest.raises(ValueError, match="does not read steps or batch size"):
        small_post.predict(1e9, S=1e4, B=1e6)
    with pytest.raises(ValueError, match="pass D"):
        small_post.predict(1e9)


def test_netcdf_round_trip_is_exact(small_post, tmp_path):
    path = small_post.to_netcdf(tmp_path / "fit.nc")
    back = bs.load_posterior(path)
    for k in small_post.samples:
        np.testing.assert_array_equal(back.samples[k], small_post.samples[k])
    for k in small_post.stats:
        np.testing.assert_array_equal(back.stats[k], small_post.stats[k])
    for k in ("N", "D", "C", "loss", "run_id", "budget"):
        np.testing.assert_array_equal(getattr(back.runs, k), getattr(small_post.runs, k))
    assert back.spec == small_post.spec and back.settings == small_post.settings
    assert back.extrapolation_mode == "calibrated" and back.extrapolation == small_post.extrapolation
    pd.testing.assert_frame_equal(back.summary(), small_post.summary())
    # the pointwise groups are recomputed from the draws, identically
    np.testing.assert_array_equal(bs.log_likelihood(back), bs.log_likelihood(small_post))
    np.testing.assert_array_equal(bs.posterior_predictive(back), bs.posterior_predictive(small_post))
    assert [p.name for p in tmp_path.iterdir()] == ["fit.nc"]  # no temporary file left behind


def test_load_posterior_rejects_other_files(tmp_path):
    p = tmp_path / "x.nc"
    p.write_text("not netcdf")
    with pytest.raises(ValueError, match="not a netCDF posterior"):
        bs.load_posterior(p)


def test_failed_diagnostics_warn_with_the_verdict_sentences(synthetic_runs):
    with pytest.warns(bs.FitWarning) as record:
        post = bs.fit(synthetic_runs, chains=2, warmup=10, draws=30, progress=False)
    verdict = post.check()
    assert not verdict.ok and not verdict
    message = str(record[0].message)
    assert all(p in message for p in verdict.problems)
    assert any("ESS" in p for p in verdict.problems)
    assert "NOT OK" in str(verdict)


def test_recovers_known_parameters_with_normal_likelihood():
    truth = {"E": 2.0, "A": 300.0, "B": 1500.0, "alpha": 0.3, "beta": 0.35}
    runs = bs.simulate_runs(truth, sigma=0.005, seed=11)
    post = fit_quietly(runs, likelihood="normal", seed=3)
    s = post.summary(ci=0.95)
    for k, v in truth.items():
        assert s.loc[k, "lo95"] < v < s.loc[k, "hi95"], k


def test_intervals_are_calibrated_across_known_parameter_sets():
    """90% intervals over 20 synthetic data sets x 5 parameters cover the truth about 90% of the time."""
    rng = np.random.default_rng(0)
    truths, data = [], []
    for k in range(20):
        t = {"E": rng.uniform(1.5, 2.2), "A": np.exp(rng.uniform(5, 7)), "B": np.exp(rng.uniform(6, 8)),
             "alpha": rng.uniform(0.28, 0.42), "beta": rng.uniform(0.28, 0.42)}
        truths.append(t)
        data.append(bs.simulate_runs(t, sigma=0.01, df=4, seed=k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        posts = bs.fit_many(data, chains=2, warmup=500, draws=500, progress=False)
    hits = [s.loc[k, "lo90"] <= v <= s.loc[k, "hi90"] for t, p in zip(truths, posts)
            for s in [p.summary(ci=0.9)] for k, v in t.items()]
    # 100 checks at nominal 0.9: binomial sd 0.03; allow 4 sd below, and flag gross over-coverage
    assert 0.78 <= np.mean(hits) <= 0.995, np.mean(hits)


def test_same_seed_same_draws(synthetic_runs):
    a = fit_quietly(synthetic_runs, seed=5)
    b = fit_quietly(synthetic_runs, seed=5)
    np.testing.assert_array_equal(a.samples["alpha"], b.samples["alpha"])


def test_bad_settings_raise():
    runs = bs.simulate_runs(seed=0)
    with pytest.raises(ValueError, match="chains"):
        bs.fit(runs, chains=0)
    with pytest.raises(ValueError, match="likelihood"):
        bs.fit(runs, likelihood="cauchy")
    with pytest.raises(ValueError, match="not available"):
        bs.fit(runs, device="tpu", **SMALL)


def test_second_fit_of_same_size_does_not_compile_again(synthetic_runs):
    fit_quietly(synthetic_runs, seed=0)
    before = compile_count()
    other = bs.simulate_runs({"E": 2.1, "A": 900.0, "B": 800.0, "alpha": 0.4, "beta": 0.3}, seed=9)
    fewer = other.subset(np.arange(len(other)) < 50)  # fewer runs, same padded bucket
    fit_quietly(fewer, seed=1)
    fit_quietly(other, seed=2, priors=bs.Priors(sigma_scale=0.1))  # new prior numbers: data, not program
    assert compile_count() == before
