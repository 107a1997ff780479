"""The IsoFLOP profile's trend in curvature (profile="trend"): the term, its recovery, and where it applies."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import bayesscale as bs
from bayesscale import laws
from bayesscale.model import ModelSpec, bend_frame, profile_term
from bayesscale.posterior import _mean_log_loss
from bayesscale.simulate import CHINCHILLA_FIT, isoflop_design

from .conftest import fit_quietly

TREND = 0.03  # per decade of compute, per squared decade of N / N_opt: the size measured on Farseer


def test_profile_term_is_zero_at_the_law_optimum_and_grows_with_compute():
    C = np.array([1e19, 1e21, 1e23])
    n_opt, _ = laws.optimal_allocation(CHINCHILLA_FIT, C)
    at_opt = profile_term(TREND, CHINCHILLA_FIT, np.log(n_opt), np.log(C), 21.0)
    np.testing.assert_allclose(at_opt, 0.0, atol=1e-12)
    off = profile_term(TREND, CHINCHILLA_FIT, np.log(10 * n_opt), np.log(C), 21.0)  # one decade above N_opt
    np.testing.assert_allclose(off, TREND * np.array([-2.0, 0.0, 2.0]), rtol=1e-9, atol=1e-12)
    # the same numbers under jax (the model's path)
    jx = profile_term(jnp.float32(TREND), {k: jnp.float32(v) for k, v in CHINCHILLA_FIT.items()},
                      jnp.log(jnp.asarray(10 * n_opt, dtype=jnp.float32)), jnp.log(jnp.asarray(C, dtype=jnp.float32)),
                      21.0)
    np.testing.assert_allclose(np.asarray(jx), off, rtol=1e-3, atol=1e-5)


def test_profile_trend_is_for_single_chinchilla_fits():
    assert ModelSpec(profile="trend").sites[-1] == "z_profile"
    with pytest.raises(ValueError, match="profile must be one of"):
        ModelSpec(profile="curved")
    with pytest.raises(ValueError, match="'chinchilla' law"):
        ModelSpec(profile="trend", law="kaplan")
    with pytest.raises(ValueError, match="grouped"):
        ModelSpec(profile="trend", pooling="partial")


def test_profile_trend_is_recovered_and_carried_into_predictions(tmp_path):
    N, D = isoflop_design(sizes_per_budget=9)
    runs = bs.simulate_runs(CHINCHILLA_FIT, N=N, D=D, sigma=0.005, seed=0)
    C = laws.FLOPS_PER_PARAM_TOKEN * runs.N * runs.D
    extra = profile_term(TREND, CHINCHILLA_FIT, np.log(runs.N), np.log(C), bend_frame(runs.C)[0])
    frame = runs.to_frame().assign(loss=runs.loss * np.exp(extra))
    post = fit_quietly(frame, profile="trend", bend="none", extrapolation="none")
    g = post.params["profile_trend"]
    lo, hi = np.quantile(g, [0.05, 0.95])
    assert lo < TREND < hi and lo > 0  # found, and told apart from zero
    assert post.spec.profile == "trend" and "profile_trend" in post.summary().index
    # predictions carry the term draw by draw: off the optimum at a new budget, not at it
    Cn = 1e22
    n_opt = np.median(laws.optimal_allocation(post.law_params, Cn)[0])
    sizes = np.array([n_opt, 10 * n_opt])
    mu = bs.posterior.law_log_loss(post, sizes, Cn / (laws.FLOPS_PER_PARAM_TOKEN * sizes))
    plain = post.law.evaluate({k: v[:, None] for k, v in post.law_params.items()},
                              {"logN": np.log(sizes)[None], "logD": np.log(Cn / 6 / sizes)[None]})
    diff = mu - plain
    assert np.median(np.abs(diff[:, 0])) < 1e-3  # at (about) the optimum: nothing
    assert np.median(diff[:, 1]) == pytest.approx(np.median(g) * (np.log10(Cn) - bend_frame(runs.C)[0]), rel=0.1)
    # the pointwise path (log-likelihood, LOO, residuals) has the term too, the same as the predictions'
    idx = np.arange(len(runs))
    pointwise = _mean_log_loss(post, idx).reshape(post.n_draws, -1)
    np.testing.assert_allclose(pointwise, bs.posterior.law_log_loss(post, runs.N, runs.D), rtol=1e-6, atol=1e-9)
    # the probability that a planned run beats a target sees the same mean
    target = np.exp(np.median(mu, axis=0))
    p_below = bs.prob_below(post, sizes, Cn / (laws.FLOPS_PER_PARAM_TOKEN * sizes), target, log_noise=np.zeros(1))
    np.testing.assert_allclose(p_below, np.mean(mu < np.log(target), axis=0), atol=1e-12)
    post.to_netcdf(tmp_path / "p.nc")
    back = bs.load_posterior(tmp_path / "p.nc")
    assert back.spec.profile == "trend"
    pd.testing.assert_frame_equal(back.predict(sizes, Cn / 6 / sizes), post.predict(sizes, Cn / 6 / sizes))


def test_cli_passes_the_profile_through():
    from bayesscale.cli import _fit_kwargs, build_parser

    a = build_parser().parse_args(["fit", "runs.csv", "--profile", "trend"])
    assert _fit_kwargs(a)["profile"] == "trend"
    assert _fit_kwargs(build_parser().parse_args(["fit", "runs.csv"]))["profile"] == "law"


def test_figures_draw_the_fitted_profile():
    # the IsoFLOP figure's bands come from the same mean as the predictions, the trend included
    import matplotlib

    matplotlib.use("Agg")
    N, D = isoflop_design(sizes_per_budget=7)
    runs = bs.simulate_runs(CHINCHILLA_FIT, N=N, D=D, sigma=0.005, seed=1)
    post = fit_quietly(runs, profile="trend", bend="none", extrapolation="none")
    from bayesscale.plots import scaling

    idx = np.arange(post.n_draws)
    n = np.array([[1e8, 1e9]])
    d = 1e21 / (6 * n)
    got = scaling._profile_at(post, idx, n, d)
    np.testing.assert_allclose(got[:, 0], bs.posterior.law_log_loss(post, n[0], d[0])
                               - post.law.evaluate({k: v[:, None] for k, v in post.law_params.items()},
                                                   {"logN": np.log(n), "logD": np.log(d)}), rtol=1e-6, atol=1e-9)
    fig = bs.plots.isoflop_profiles(post)
    assert fig.axes
    bs.plots.isoloss_contours(post)
    # the report names the term's prior
    from bayesscale._report.facts import _priors

    assert any(r["parameter"] == "profile_trend" for r in _priors(post))
