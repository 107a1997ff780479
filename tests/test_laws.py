"""The Law interface: built-in laws, user laws, priors as data, compare and average."""

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import bayesscale as bs
from bayesscale import laws
from bayesscale.inference import compile_count
from bayesscale.model import ModelSpec, context

from .conftest import fit_quietly


def _user_law():
    """The Chinchilla law written by a user in a few lines, with plain (uncentred) priors."""
    def log_loss(p, logN, logD):
        return jnp.logaddexp(jnp.log(p["E"]), jnp.logaddexp(jnp.log(p["A"]) - p["alpha"] * logN,
                                                            jnp.log(p["B"]) - p["beta"] * logD))

    return bs.Law.from_function(
        log_loss, covariates=["logN", "logD"], name="mine",
        params={"E": dist.LogNormal(0.5, 0.5), "A": dist.LogNormal(6.0, 2.0), "B": dist.LogNormal(7.0, 2.0),
                "alpha": dist.LogNormal(-1.2, 0.5), "beta": dist.LogNormal(-1.2, 0.5)})


def test_get_law_by_name_and_unknown_name():
    assert bs.get_law("chinchilla") is laws.CHINCHILLA
    assert set(bs.LAWS) == {"chinchilla", "kaplan", "data_constrained", "compute_only", "coupled", "kaplan_steps"}
    with pytest.raises(ValueError, match="the built-in laws are chinchilla, kaplan"):
        bs.get_law("chinchila")


@pytest.mark.parametrize("name", sorted(laws.LAWS))
def test_sampler_path_equals_natural_path(name):
    """Each built-in's centred sampler parameterisation gives the same log L as its natural form."""
    law = bs.get_law(name)
    rng = np.random.default_rng(0)
    N, D = 10 ** rng.uniform(7, 11, 50), 10 ** rng.uniform(9, 12, 50)
    S, B = 10 ** rng.uniform(2, 5, 50), 10 ** rng.uniform(5, 7, 50)
    cov = {"logN": np.log(N), "logD": np.log(D), "logC": np.log(6 * N * D), "logU": np.log(D / rng.uniform(1, 20, 50)),
           "logS": np.log(S), "logB": np.log(B)}
    ctx = context({c: cov[c] for c in law.covariates}, rng.uniform(2, 3, 50))
    priors = ModelSpec(law=law).resolve_priors(ctx)
    import jax

    sites = {k: np.asarray(priors[k].sample(jax.random.PRNGKey(i)), dtype=float) for i, k in enumerate(law.sites)}
    nat = law.natural(sites, ctx)
    a = np.asarray(law.model_log_loss(sites, ctx, *(cov[c] for c in law.covariates)))
    b = law.evaluate(nat, cov)
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_chinchilla_law_matches_module_functions():
    p = bs.simulate.CHINCHILLA_FIT
    N, D = np.array([1e9, 7e10]), np.array([2e10, 1.4e12])
    np.testing.assert_allclose(laws.CHINCHILLA.log_loss_ND(p, N, D), laws.log_loss(p, N, D), rtol=1e-12)


def test_data_constrained_reduces_to_chinchilla_without_repetition():
    p = bs.simulate.PUBLISHED["data_constrained"]
    N, D = np.array([1e8, 1e9]), np.array([2e9, 2e10])  # about 20 tokens per parameter: no excess parameters
    with_u = laws.DATA_CONSTRAINED.log_loss_ND(p, N, D, U=D * 1e3)  # more unique data than used
    chin = laws.log_loss(p, N, D)
    assert np.all(with_u >= chin - 1e-12)  # never better than fresh data and the same size
    repeated = laws.DATA_CONSTRAINED.log_loss_ND(p, N, D, U=D / 8)  # 8 epochs
    assert np.all(repeated > with_u)


def test_data_constrained_needs_unique_tokens(chinchilla240):
    with pytest.raises(bs.DataError, match="unique training tokens.*columns=\\{'U'"):
        bs.fit(chinchilla240, law="data_constrained")


def test_prior_overrides_are_checked():
    with pytest.raises(ValueError, match="not a sampled variable.*log_E, alpha, beta, t_N, t_D, sigma"):
        ModelSpec(prior_overrides={"E": dist.Normal(0, 1)})
    with pytest.raises(TypeError, match="numpyro distribution"):
        ModelSpec(prior_overrides={"alpha": 0.3})


def test_from_function_validates_its_inputs():
    with pytest.raises(TypeError, match="numpyro distribution"):
        bs.Law.from_function(lambda p, logN: p["a"] * logN, params={"a": 0.3}, covariates=["logN"])
    with pytest.raises(ValueError, match="unknown covariates"):
        bs.Law.from_function(lambda p, x: x, params={"a": dist.Normal(0, 1)}, covariates=["logT"])
    with pytest.raises(ValueError, match="reserved"):
        bs.Law.from_function(lambda p, x: x, params={"sigma": dist.Normal(0, 1)}, covariates=["logN"])


def test_user_law_fits_predicts_round_trips_and_compiles_once(synthetic_runs, tmp_path):
    law = _user_law()
    post = fit_quietly(synthetic_runs, law=law, extrapolation="none", bend="none", seed=4)
    med = post.summary()["median"]
    truth = bs.simulate.CHINCHILLA_FIT
    for k in ("alpha", "beta"):
        assert abs(med[k] - truth[k]) < 0.05
    assert post.predict(N=[1e10], D=[2e11])["loss"].iloc[0] > 0
    # new data of the same size: the compiled program is reused
    n = compile_count()
    other = bs.simulate_runs(sigma=0.01, seed=11)
    fit_quietly(other, law=law, extrapolation="none", bend="none", seed=5)
    assert compile_count() == n
    # a user law must be passed again to read its posterior back
    path = post.to_netcdf(tmp_path / "mine.nc")
    with pytest.raises(ValueError, match="load_posterior\\(path, law=my_law\\)"):
        bs.load_posterior(path)
    back = bs.load_posterior(path, law=law)
    np.testing.assert_array_equal(back.params["alpha"], post.params["alpha"])


def test_prior_override_travels_as_data_and_is_stored(synthetic_runs, tmp_path):
    n = compile_count()
    # retry=False: a short fit that misses the ESS threshold would be refitted with other settings (a second program)
    a = fit_quietly(synthetic_runs, extrapolation="none", seed=6, retry=False)
    m = compile_count()
    b = fit_quietly(synthetic_runs, extrapolation="none", seed=6, retry=False,
                    priors={"alpha": dist.LogNormal(np.log(0.6), 0.05)})
    assert compile_count() == m  # same distribution family: new numbers are data
    assert m - n <= 1
    assert b.params["alpha"].mean() > a.params["alpha"].mean() + 0.05  # the tight prior pulls alpha up
    back = bs.load_posterior(b.to_netcdf(tmp_path / "b.nc"))
    assert back.spec.prior_overrides["alpha"].scale == pytest.approx(0.05)


@pytest.mark.parametrize("name", ["kaplan", "coupled", "compute_only"])
def test_built_in_law_fits_synthetic_data_from_its_constants(name):
    runs = bs.simulate_runs(law=name, sigma=0.01, seed=1)
    post = fit_quietly(runs, law=name, extrapolation="none", seed=1)
    assert post.law.name == name
    assert set(post.law.params) <= set(post.params)
    truth = bs.simulate.PUBLISHED[name]
    s = post.summary(ci=0.99)
    exps = [k for k in ("alpha_N", "alpha_D", "gamma", "alpha", "beta") if k in truth]
    for k in exps:
        assert s.loc[k, "lo99"] < truth[k] < s.loc[k, "hi99"], (k, s.loc[k].to_dict())


def test_data_constrained_fits_repeated_data():
    rng = np.random.default_rng(0)
    N, D = bs.simulate.isoflop_design()
    U = D / np.exp(rng.uniform(0, np.log(40), D.size))  # 1 to 40 epochs
    runs = bs.simulate_runs(law="data_constrained", N=N, D=D, U=U, sigma=0.005, seed=2)
    post = fit_quietly(runs, law="data_constrained", extrapolation="none", seed=2)
    s = post.summary(ci=0.99)
    assert s.loc["R_D", "lo99"] < 15.4 < s.loc["R_D", "hi99"]


def test_coupled_bend_is_off_under_auto(synthetic_runs):
    """gamma and the bend both bend the law across budgets: bend="auto" leaves the bend off, "on" forces it."""
    assert not laws.COUPLED.auto_bend and laws.CHINCHILLA.auto_bend
    assert ModelSpec(law="coupled").bend_scale(synthetic_runs) < 1e-5
    assert ModelSpec(law="coupled", bend="on").bend_scale(synthetic_runs) == ModelSpec().priors.bend_scale
    assert ModelSpec(law="chinchilla").bend_scale(synthetic_runs) == ModelSpec().priors.bend_scale


def test_coupled_fit_passes_its_checks_and_finds_the_coupling():
    """Data drawn from the coupled law: the fit passes every sampler check without a retry, covers the
    truth, and the coupling is not a function of compute alone (its 99% interval excludes zero when it is
    twice the published value)."""
    truth = dict(bs.simulate.PUBLISHED["coupled"], gamma=-0.12)
    runs = bs.simulate_runs(truth, law="coupled", sigma=0.01, seed=1)
    post = fit_quietly(runs, law="coupled", extrapolation="none", seed=1, chains=4, warmup=300, draws=300, retry=False)
    v = post.check()
    assert v.ok, v.problems
    assert "retried" not in post.info
    assert "gamma" in post.samples and "log_L0" not in post.samples
    s = post.summary(ci=0.99)
    for k in ("E", "alpha", "beta", "gamma"):
        assert s.loc[k, "lo99"] < truth[k] < s.loc[k, "hi99"], (k, s.loc[k].to_dict())
    assert s.loc["gamma", "hi99"] < 0


def test_compute_only_intervals_cover_the_truth():
    """A compute-only fit's 90% intervals of E, A and gamma cover the constants the data were drawn from."""
    runs = bs.simulate_runs(law="compute_only", sigma=0.01, seed=1)
    post = fit_quietly(runs, law="compute_only", extrapolation="none", seed=1, chains=4)
    truth = bs.simulate.PUBLISHED["compute_only"]
    s = post.summary(ci=0.9)
    for k in ("E", "A", "gamma"):
        assert s.loc[k, "lo90"] < truth[k] < s.loc[k, "hi90"], (k, s.loc[k].to_dict())
