"""Allocation for every law (issue 10, item 4): the numeric path against the closed forms, and
sensible answers for kaplan, coupled, data_constrained, compute_only and a user's law."""

import warnings

import jax.numpy as jnp
import matplotlib
import numpy as np
import numpyro.distributions as dist
import pytest

import bayesscale as bs
from bayesscale import allocation as al
from bayesscale import laws
from bayesscale.simulate import PUBLISHED

matplotlib.use("Agg")

S = 64  # draws: one shape for every test, so the numeric frontier compiles once per law
BUDGETS = np.array([1e20, 5.76e23, 1e25])
C0 = 5.76e23


def _draws(name, sd=0.05, seed=0, **over):
    rng = np.random.default_rng(seed)
    p = dict(PUBLISHED[name], **over)
    return {k: float(v) * np.exp(sd * rng.standard_normal(S)) for k, v in p.items()}


# The Chinchilla law as a user would write it: no closed form attached, so every function takes the
# numeric path.
CHIN_COPY = laws.Law.from_function(laws.LAWS["chinchilla"].log_loss,
                                   params={k: dist.LogNormal(0.0, 1.0) for k in laws.PARAMETERS},
                                   covariates=["logN", "logD"], name="chinchilla_numeric")


def _user_log_loss(p, log_N, log_D):
    # E + (A / N^alpha + B / D^beta)^q: a reducible loss with a curvature exponent q
    red = jnp.logaddexp(jnp.log(p["A"]) - p["alpha"] * log_N, jnp.log(p["B"]) - p["beta"] * log_D)
    return jnp.logaddexp(jnp.log(p["E"]), p["q"] * red)


USER = laws.Law.from_function(_user_log_loss, params={"E": dist.LogNormal(0.5, 0.5), "A": dist.LogNormal(6, 2),
                                                      "B": dist.LogNormal(6, 2), "alpha": dist.LogNormal(-1, 0.5),
                                                      "beta": dist.LogNormal(-1, 0.5), "q": dist.LogNormal(0, 0.2)},
                              covariates=["logN", "logD"], name="user_power")
USER_PARAMS = dict(PUBLISHED["chinchilla"], q=0.9)

# The coupled law without its closed form: the numeric path, to check the closed form against.
COUPLED_COPY = laws.Law.from_function(laws.LAWS["coupled"].log_loss,
                                      params=dict({k: dist.LogNormal(0.0, 1.0) for k in laws.PARAMETERS},
                                                  gamma=dist.Normal(0.0, 0.1)),
                                      covariates=["logN", "logD"], name="coupled_numeric")


def _numeric(table):
    return table.select_dtypes("number").to_numpy(dtype=float)


CASES = [
    ("allocate", lambda p, **kw: al.allocate(p, BUDGETS, **kw).table),
    ("bayes_optimal_N", lambda p, **kw: al.bayes_optimal_N(p, BUDGETS, **kw)),
    ("best_D_for_N", lambda p, **kw: al.best_D_for_N(p, [1e9, 7e10], **kw).table),
    ("best_N_for_D", lambda p, **kw: al.best_N_for_D(p, [1e11, 1.4e12], **kw).table),
    ("best_D_for_N_forced", lambda p, **kw: al.best_D_for_N(p, [1e9, 7e10], C=[1e21, 1e23], **kw).table),
    ("compute_for_loss", lambda p, **kw: al.compute_for_loss(p, [2.3, 2.0], **kw).table),
    ("frontier_exponents", lambda p, **kw: al.frontier_exponents(p, budgets=BUDGETS, **kw)),
    ("excess_compute", lambda p, **kw: al.excess_compute(p, C0, [0.4, 1.0, 2.5], **kw).table),
    ("efficient_size_range", lambda p, **kw: al.efficient_size_range(p, C0, **kw).table),
]


@pytest.mark.parametrize("law", ["chinchilla", "coupled"])
@pytest.mark.parametrize("name,fn", CASES, ids=[c[0] for c in CASES])
def test_numeric_path_equals_closed_form(name, fn, law):
    p = _draws(law)
    closed = fn(p) if law == "chinchilla" else fn(p, law="coupled")
    numeric = fn(p, law=CHIN_COPY if law == "chinchilla" else COUPLED_COPY)
    assert list(closed.columns) == list(numeric.columns)
    np.testing.assert_allclose(_numeric(numeric), _numeric(closed), rtol=1e-6)


def test_chinchilla_by_name_is_the_closed_form():
    p = _draws("chinchilla")
    a = al.allocate(p, BUDGETS).table
    for law in ("chinchilla", laws.LAWS["chinchilla"]):
        np.testing.assert_array_equal(_numeric(al.allocate(p, BUDGETS, law=law).table), _numeric(a))
    # without budgets the closed form keeps its one-row-per-quantity table
    assert list(al.frontier_exponents(p, law="chinchilla").index) == ["a", "b", "G"]


def test_coupled_with_zero_gamma_is_chinchilla():
    p = _draws("chinchilla")
    q = dict(p, gamma=np.zeros(S))
    for fn in (lambda x, **kw: al.allocate(x, BUDGETS, **kw).table,
               lambda x, **kw: al.compute_for_loss(x, [2.3, 2.0], **kw).table,
               lambda x, **kw: al.frontier_exponents(x, budgets=BUDGETS, **kw)):
        np.testing.assert_allclose(_numeric(fn(q, law="coupled")), _numeric(fn(p)), rtol=1e-6)
    # a real coupling changes the answer
    c = al.allocate(_draws("coupled"), BUDGETS, law="coupled").table
    assert not np.allclose(c["N_opt"], al.allocate(p, BUDGETS).table["N_opt"], rtol=1e-3)


def test_coupled_without_interior_optimum_is_nan():
    # gamma >= beta: the loss falls with N along every budget, so no compute-optimal split exists
    p = _draws("coupled")
    p["gamma"] = p["beta"] * np.where(np.arange(S) < 8, 1.2, 0.0)  # 8 draws of 64 have no optimum
    N, D = laws.LAWS["coupled"].frontier(p, 1e22)
    assert np.isnan(N[:8]).all() and np.isnan(D[:8]).all() and np.isfinite(N[8:]).all()
    fr = bs.frontier.solve(COUPLED_COPY.log_loss, p, np.array([1e22]))
    assert not fr.interior[:8].any() and fr.interior[8:].all()


def test_data_constrained_reduces_to_chinchilla_without_repetition_decay():
    # R*_D, R*_N -> infinity: repeated tokens and excess parameters count in full (D' = D, N' = N)
    p = _draws("chinchilla")
    q = dict(p, R_D=np.full(S, 1e12), R_N=np.full(S, 1e12))
    np.testing.assert_allclose(_numeric(al.allocate(q, BUDGETS, law="data_constrained").table),
                               _numeric(al.allocate(p, BUDGETS).table), rtol=1e-6)


def test_data_constrained_unique_tokens():
    p = _draws("data_constrained")
    free = al.allocate(p, BUDGETS, law="data_constrained").table
    scarce = al.allocate(p, BUDGETS, law="data_constrained", U=1e11).table
    # with 1e11 unique tokens the big budgets repeat data: the optimum is worse than with fresh data
    assert (scarce["loss"].iloc[1:] > free["loss"].iloc[1:] * 1.001).all()
    assert np.isfinite(scarce[["N_opt", "D_opt"]].to_numpy()).all()
    pb_free = al.prob_below(p, 7e10, 1.4e12, 2.0, law="data_constrained")
    pb_scarce = al.prob_below(p, 7e10, 1.4e12, 2.0, law="data_constrained", U=1e11)
    assert pb_scarce <= pb_free
    with pytest.raises(ValueError, match="unique tokens"):
        al.allocate(_draws("kaplan"), BUDGETS, law="kaplan", U=1e11)


def test_kaplan_local_exponent_matches_its_analytic_frontier():
    # under C = 6 N D, Kaplan's eq. 1.5 has N_opt ~ C^(alpha_D / (alpha_N + alpha_D)) exactly
    p = _draws("kaplan")
    fe = al.frontier_exponents(p, law="kaplan", budgets=BUDGETS)
    a = p["alpha_D"] / (p["alpha_N"] + p["alpha_D"])
    got = fe.loc["a"]
    np.testing.assert_allclose(got["median"], np.median(a), rtol=1e-6)
    np.testing.assert_allclose(got["mean"], a.mean(), rtol=1e-6)
    np.testing.assert_allclose(fe.loc["a", "median"].to_numpy() + fe.loc["b", "median"].to_numpy(), 1.0, rtol=1e-6)


@pytest.mark.parametrize("law,params", [("kaplan", None), ("coupled", None), ("data_constrained", None),
                                        (USER, USER_PARAMS)], ids=["kaplan", "coupled", "data_constrained", "user"])
def test_every_law_allocates_sensibly(law, params):
    name = law if isinstance(law, str) else law.name
    rng = np.random.default_rng(1)
    p = (_draws(name) if params is None
         else {k: v * np.exp(0.05 * rng.standard_normal(S)) for k, v in params.items()})
    t = al.allocate(p, BUDGETS, law=law).table
    assert np.isfinite(t.drop(columns="C").to_numpy()).all()
    np.testing.assert_allclose(6 * t["N_opt"] * t["D_opt"], BUDGETS, rtol=1e-9)
    assert t["N_opt"].is_monotonic_increasing and t["D_opt"].is_monotonic_increasing
    assert t["loss"].is_monotonic_decreasing
    assert (t["N_opt_lo80"] < t["N_opt"]).all() and (t["N_opt"] < t["N_opt_hi80"]).all()

    pb = al.prob_below(p, 7e10, 1.4e12, [1.0, 2.0, 10.0], law=law)
    assert pb[0] <= pb[1] <= pb[2] and pb[2] == 1.0 and pb[0] == 0.0

    fe = al.frontier_exponents(p, law=law, budgets=BUDGETS)
    a, b = fe.loc["a", "median"].to_numpy(), fe.loc["b", "median"].to_numpy()
    assert ((a > 0.2) & (a < 0.8)).all() and ((b > 0.2) & (b < 0.8)).all()
    np.testing.assert_allclose(fe.loc["a", "mean"].to_numpy() + fe.loc["b", "mean"].to_numpy(), 1.0, rtol=1e-6)
    assert "local exponents" in fe.attrs["note"]

    # the frontier's loss at the budget compute_for_loss returns is the target (per draw)
    cl = al.compute_for_loss(p, [2.3], law=law)
    assert cl.table["reachable"].iloc[0] == 1.0
    c_draws = cl.draws["C"][:, 0]
    one = {k: v[:4] for k, v in p.items()}
    for s in range(4):
        ps = {k: v[s] for k, v in one.items()}
        row = al.allocate(ps, [c_draws[s]], law=law).table.iloc[0]
        assert row["loss"] == pytest.approx(2.3, rel=1e-8)
        assert row["N_opt"] == pytest.approx(cl.draws["N_opt"][s, 0], rel=1e-7)

    # best_D_for_N: N is compute-optimal at the returned budget
    bd = al.best_D_for_N(p, [5e9], law=law)
    back = al.allocate({k: v[0] for k, v in p.items()}, [bd.draws["C"][0, 0]], law=law).table
    assert back["N_opt"].iloc[0] == pytest.approx(5e9, rel=1e-7)

    ex = al.excess_compute(p, C0, [0.5, 1.0, 2.0], law=law).table
    np.testing.assert_allclose(ex["excess_compute"].iloc[1], 1.0, rtol=1e-6)
    assert (ex["excess_compute"].iloc[[0, 2]] > 1.0).all()
    r = al.efficient_size_range(p, C0, law=law)
    assert 0.1 < r.k_lo < 1.0 < r.k_hi < 10.0
    bo = al.bayes_optimal_N(p, BUDGETS, law=law)
    assert (bo["N_bayes"] / t["N_opt"]).between(0.5, 2.0).all()


def test_compute_only_has_no_split_but_a_loss():
    p = _draws("compute_only")
    res = al.allocate(p, BUDGETS, law="compute_only")
    t = res.table
    assert t[["N_opt", "N_opt_lo80", "D_opt", "tokens_per_param"]].isna().all().all()
    assert "does not say how to split" in t.attrs["note"]
    expect = p["E"][:, None] + p["A"][:, None] * BUDGETS[None, :] ** -p["gamma"][:, None]
    np.testing.assert_allclose(res.draws["loss"], expect, rtol=1e-12)
    assert np.isfinite(t["loss"]).all() and t["loss"].is_monotonic_decreasing
    # the least compute for a target inverts L(C) = E + A C^-gamma
    cl = al.compute_for_loss(p, [2.3], law="compute_only")
    gap = 2.3 - p["E"]
    want = np.where(gap > 0, (p["A"] / np.where(gap > 0, gap, 1)) ** (1 / p["gamma"]), np.inf)
    np.testing.assert_allclose(cl.draws["C"][:, 0], want, rtol=1e-8)
    assert cl.table["N_opt"].isna().all()
    assert np.isnan(al.frontier_exponents(p, law="compute_only", budgets=BUDGETS)["median"]).all()
    assert np.isnan(al.bayes_optimal_N(p, BUDGETS, law="compute_only")["N_bayes"]).all()
    r = al.efficient_size_range(p, C0, law="compute_only")
    assert np.isnan(r.k_lo) and "does not define" in r.sentence
    assert 0.0 <= float(al.prob_below(p, 7e10, 1.4e12, 2.0, law="compute_only")) <= 1.0


def test_wrong_parameters_name_the_law():
    with pytest.raises(ValueError, match="alpha_N.*kaplan"):
        al.allocate(_draws("chinchilla"), BUDGETS, law="kaplan")
    with pytest.raises(ValueError, match="budgets="):
        al.frontier_exponents(_draws("kaplan"), law="kaplan")


@pytest.fixture(scope="module")
def kaplan_post():
    runs = bs.simulate_runs(law="kaplan", seed=4)
    with warnings.catch_warnings():  # a short run may fail the ESS thresholds; expected here
        warnings.simplefilter("ignore", bs.FitWarning)
        return bs.fit(runs, law="kaplan", chains=2, warmup=200, draws=200, seed=0, extrapolation="none",
                      progress=False)


def test_posterior_methods_use_the_fitted_law(kaplan_post):
    post = kaplan_post
    t = post.allocate(BUDGETS)
    assert t.attrs["draws"]["N_opt"].shape == (post.n_draws, 3)
    same = al.allocate(post.law_params, BUDGETS, law=post.law).table
    np.testing.assert_allclose(t["N_opt"], same["N_opt"], rtol=1e-12)
    fe = bs.frontier_exponents(post)
    assert len(fe.loc["a"]) == 3 and np.isfinite(fe["median"]).all()
    assert bs.compute_for_loss(post, [2.5]).table["C"].notna().all()
    assert 0 < bs.efficient_size_range(post, C0).k_lo < 1
    assert bs.best_D_for_N(post, [1e9]).table["D"].notna().all()
    assert bs.best_N_for_D(post, [1e11]).table["N"].notna().all()
    assert len(bs.excess_compute(post, C0, [0.5, 1, 2]).table) == 3
    assert bs.bayes_decision(post, BUDGETS)["N_bayes"].notna().all()
    assert 0 <= float(bs.prob_below(post, 7e10, 1.4e12, 2.2)) <= 1


def test_figures_for_a_law_other_than_chinchilla(kaplan_post):
    import matplotlib.pyplot as plt

    from bayesscale import plots

    for fig in (plots.optimal_frontier(kaplan_post), plots.isoflop_profiles(kaplan_post),
                plots.excess_compute(kaplan_post, C0), plots.isoloss_contours(kaplan_post, n_grid=30),
                plots.residuals(kaplan_post), plots.predicted_vs_observed(kaplan_post), plots.rank_plot(kaplan_post)):
        assert fig.axes
        plt.close(fig)
