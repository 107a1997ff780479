"""The kaplan_steps law fitted from training curves, and the AR(1) observation model."""

import warnings
from pathlib import Path

import numpy as np
import pytest

import bayesscale as bs
from bayesscale import kaplan
from bayesscale.inference import compile_count
from bayesscale.observation import AR1, get_observation

OPT = Path(__file__).parents[2] / "shared" / "data" / "curves_opt.csv"
TINY = dict(chains=2, warmup=200, draws=200, progress=False, extrapolation="none")


def _fit(curves, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        return bs.fit(curves, law="kaplan_steps", **{**TINY, **kw})


@pytest.fixture(scope="module")
def sim_curves():
    return bs.load_curves(bs.simulate_curves(sizes=(1e6, 1e7, 1e8), batch_sizes=(2.0**17, 2.0**20), checkpoints=10,
                                             seed=5), warmup=0)


@pytest.fixture(scope="module")
def sim_post(sim_curves):
    return _fit(sim_curves, seed=0)


def test_curves_to_runs(sim_curves):
    r = sim_curves.to_runs()
    assert len(r) == len(sim_curves) and r.is_curves
    np.testing.assert_array_equal(r.budget, sim_curves.run_index)
    np.testing.assert_array_equal(r.S, sim_curves.step)
    np.testing.assert_array_equal(r.B, sim_curves.batch_tokens)
    np.testing.assert_allclose(r.C, 6 * r.N * r.D)
    assert r.run_id[1] == f"{sim_curves.run[1]}@{sim_curves.step[1]:.0f}"
    prev = r.previous_index()
    first = np.r_[True, sim_curves.run_index[1:] != sim_curves.run_index[:-1]]
    np.testing.assert_array_equal(prev[first], -1)
    np.testing.assert_array_equal(prev[~first], np.flatnonzero(~first) - 1)
    assert "[N: kaplan]" in r.source and "[N: total]" in sim_curves.to_runs("total").source


def test_law_needs_curves(chinchilla240):
    with pytest.raises(bs.DataError, match="steps and batch size.*load_curves"):
        bs.fit(chinchilla240, law="kaplan_steps")


def test_sampler_path_equals_kaplan_module():
    law = bs.get_law("kaplan_steps")
    rng = np.random.default_rng(0)
    cov = {"logN": np.log(10 ** rng.uniform(6, 9, 40)), "logS": np.log(10 ** rng.uniform(2, 5, 40)),
           "logB": np.log(10 ** rng.uniform(5, 7, 40))}
    ctx = {"c_logN": 17.0, "c_logS": 9.0, "c_logB": 13.0}
    sites = {"alpha_N": 0.07, "alpha_S": 0.8, "alpha_B": 0.2, "t_N": 1.1, "t_S": -1.0, "log_B_star": 19.0}
    nat = law.natural(sites, ctx)
    a = np.asarray(law.model_log_loss(sites, ctx, *cov.values()))
    b = kaplan.log_loss_steps(nat, *cov.values())
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_default_for_curves_is_correlated(sim_post):
    assert sim_post.spec.likelihood == "ar1" and sim_post.spec.offsets == "budget"
    assert sim_post.samples["z_budget"].shape[-1] == 6  # one offset per run


def test_fit_recovers_simulated_constants(sim_post):
    p = sim_post.law_params
    for k in ("alpha_N", "alpha_S"):
        lo, hi = np.quantile(p[k], [0.01, 0.99])
        assert lo < kaplan.KAPLAN_STEPS[k] < hi, (k, lo, hi)
    rho = sim_post.params["rho"]
    assert 0.3 < np.median(rho) < 0.99  # the simulator's rho is 0.8
    fe = kaplan.frontier_exponents(p)
    assert np.all(np.isfinite(fe["N"])) and np.allclose(fe["N"] + fe["B"] + fe["S"], 1.0)


def test_predict_from_steps_and_batch_size(sim_post, sim_curves):
    """A new run of a curves fit is named by its size, steps and batch size; D is the tokens seen."""
    N, S, B = 1e7, np.array([1e3, 1e4]), 2.0**20
    df = sim_post.predict(N, S=S, B=B, ci=0.9)
    assert list(df.columns[:5]) == ["N", "D", "S", "B", "C"]
    np.testing.assert_allclose(df.D, S * B)
    np.testing.assert_allclose(df.C, 6 * N * S * B)
    assert np.all(df.loss_lo90 < df.loss) and np.all(df.loss < df.loss_hi90)
    assert df.loss.iloc[1] < df.loss.iloc[0]  # more steps, lower loss
    # the law's loss at those points, from the kaplan module and the posterior's draws
    p = {k: np.median(v) for k, v in sim_post.law_params.items()}
    np.testing.assert_allclose(df.loss, kaplan.loss_steps(p, N, S, B), rtol=0.05)
    # a checkpoint of the data: its band holds the observed loss (simulated with 0.5% noise)
    i = len(sim_curves) // 2
    one = sim_post.predict(sim_curves.N[i], S=sim_curves.step[i], B=sim_curves.batch_tokens[i], ci=0.99)
    assert one.loss_lo99.iloc[0] < sim_curves.loss[i] < one.loss_hi99.iloc[0]
    with pytest.raises(ValueError, match="pass S= \\(steps\\) and B="):
        sim_post.predict(N, 1e9)
    with pytest.raises(ValueError, match="S must be positive"):
        sim_post.predict(N, S=[-1.0, 10.0], B=B)


def test_curves_default_to_no_calibration_and_refuse_it(sim_curves, sim_post):
    """bs.fit(curves, law="kaplan_steps") as the README writes it: no rolling-origin folds exist for curves."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        post = bs.fit(sim_curves, law="kaplan_steps", chains=2, warmup=200, draws=200, progress=False)
    assert post.extrapolation_mode == "none"
    with pytest.raises(bs.DataError, match="training curves .* have no such budgets"):
        bs.fit(sim_curves, law="kaplan_steps", extrapolation="calibrated")
    with pytest.raises(bs.DataError, match="extrapolation='none'"):
        bs.calibrate_extrapolation(sim_post)


def test_ar1_log_density_equals_multivariate_normal():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(1)
    prev = np.array([-1, 0, 1, 2, -1, 4, 5])  # two sequences: rows 0-3 and 4-6
    mu = rng.normal(1.0, 0.2, 7)
    y = mu + rng.normal(0, 0.05, 7)
    p = {"sigma": 0.04, "rho": 0.7}
    obs = get_observation("ar1")
    ours = obs.log_prob(y, mu, p, prev=prev).sum()
    cov = np.zeros((7, 7))
    for seq in (np.arange(4), np.arange(4, 7)):
        t = np.arange(len(seq))
        cov[np.ix_(seq, seq)] = p["sigma"] ** 2 * p["rho"] ** np.abs(t[:, None] - t[None, :])
    ref = multivariate_normal(mu, cov).logpdf(y)
    np.testing.assert_allclose(ours, ref, rtol=1e-10)
    # the NumPyro distribution the sampler uses gives the same density
    import jax.numpy as jnp

    d = obs.distribution(jnp.asarray(mu), p, y=jnp.asarray(y), prev=jnp.asarray(prev))
    np.testing.assert_allclose(float(d.log_prob(jnp.asarray(y)).sum()), ref, rtol=1e-4)
    # predictive draws have the AR(1) correlation
    e = obs.sample(np.random.default_rng(2), np.zeros((20000, 7)), p, prev=prev)
    assert abs(np.corrcoef(e[:, 1], e[:, 2])[0, 1] - 0.7) < 0.03
    assert abs(np.corrcoef(e[:, 3], e[:, 4])[0, 1]) < 0.03  # different sequences are independent
    assert isinstance(obs, AR1)


def test_independent_checkpoint_option(sim_curves):
    post = _fit(sim_curves, likelihood="student_t", offsets="none", seed=1)
    assert post.spec.likelihood == "student_t" and "tau" not in post.samples


def test_no_recompilation_for_new_curves_of_the_same_size(sim_post):
    df = bs.simulate_curves(sizes=(1e6, 1e7, 1e8), batch_sizes=(2.0**17, 2.0**20), checkpoints=10, seed=6,
                            alpha_N=0.09)
    before = compile_count()
    post = _fit(bs.load_curves(df, warmup=0), seed=0)
    assert compile_count() == before
    assert post.law.name == "kaplan_steps"


@pytest.mark.skipif(not OPT.is_file(), reason=f"{OPT} is missing (the shared OPT curves)")
def test_fit_opt_curves():
    curves = bs.load_curves(OPT)
    post = _fit(curves, seed=0)
    assert post.runs.source.endswith("[N: kaplan]")
    assert len(post.runs) == len(curves)
    s = post.summary()
    assert np.all(np.isfinite(s["median"]))
    # with one batch size per model, B_* and alpha_B stay near their priors
    assert 0.05 < s.loc["alpha_B", "median"] < 0.6
