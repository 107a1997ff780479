"""Tests of bayesscale.allocation: closed forms against brute force, inverses, bands, inputs."""

import time

import numpy as np
import pandas as pd
import pytest

from bayesscale import allocation as al
from bayesscale import laws

optimize = pytest.importorskip("scipy.optimize")

#: Besiroglu et al. (2024) refit of the Chinchilla data.
BESIROGLU = {"E": 1.8169, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
BUDGETS = np.array([1e18, 3e20, 1e23, 5.76e23])


def random_params(S, seed=0):
    """A broad spread of plausible laws, one per draw."""
    rng = np.random.default_rng(seed)
    return {
        "E": rng.uniform(1.0, 2.5, S),
        "A": np.exp(rng.uniform(np.log(50), np.log(5e3), S)),
        "B": np.exp(rng.uniform(np.log(50), np.log(5e3), S)),
        "alpha": rng.uniform(0.2, 0.6, S),
        "beta": rng.uniform(0.2, 0.6, S),
    }


def posterior_like(S, seed=1, scale=0.05):
    """Draws scattered around the Besiroglu point, as a posterior would be."""
    rng = np.random.default_rng(seed)
    return {k: v * np.exp(scale * rng.standard_normal(S)) for k, v in BESIROGLU.items()}


def draw(p, s):
    return {k: float(v[s]) for k, v in p.items()}


def brute_force_log_N(q, C, flops_per_token=lambda N: 6.0):
    """Minimise L(N, C / (g(N) N)) over log N with a bounded scalar optimiser."""

    def f(u):
        N = np.exp(u)
        return float(laws.log_loss(q, N, C / (flops_per_token(N) * N)))

    res = optimize.minimize_scalar(f, bounds=(0.0, 80.0), method="bounded", options={"xatol": 1e-10})
    grid = np.linspace(0.0, 80.0, 4001)  # guard against a local minimum of the optimiser
    assert res.fun <= min(f(u) for u in grid[::40]) + 1e-12
    return res.x, res.fun


# -- the closed form ---------------------------------------------------------


def test_closed_form_matches_brute_force_draw_by_draw():
    p = random_params(300)
    C = np.array([1e18, 1e21, 1e24])
    alloc = al.allocate(p, C)
    N = alloc.draws["N_opt"]
    for s in range(300):
        q = draw(p, s)
        for j, c in enumerate(C):
            u, fun = brute_force_log_N(q, c)
            assert np.log(N[s, j]) == pytest.approx(u, abs=2e-5)
            # the closed form is at least as good as the optimiser's answer
            assert float(laws.log_loss(q, N[s, j], c / (6 * N[s, j]))) <= fun + 1e-13


def test_compute_identity_and_table_columns():
    p = random_params(500, seed=3)
    alloc = al.allocate(p, BUDGETS)
    N, D = alloc.draws["N_opt"], alloc.draws["D_opt"]
    np.testing.assert_allclose(6 * N * D, np.broadcast_to(BUDGETS, N.shape), rtol=1e-10)
    np.testing.assert_allclose(alloc.draws["tokens_per_param"], D / N, rtol=1e-14)
    assert list(alloc.table.columns) == [
        "C", "N_opt", "N_opt_lo80", "N_opt_hi80", "D_opt", "D_opt_lo80", "D_opt_hi80", "tokens_per_param",
        "tokens_per_param_lo80", "tokens_per_param_hi80", "loss", "loss_lo80", "loss_hi80"]
    assert len(alloc.table) == len(BUDGETS)
    # medians and bands are the quantiles of the draws
    for name in ("N_opt", "D_opt", "tokens_per_param", "loss"):
        if name == "loss":
            q = np.quantile(alloc.draws[name], [0.5, 0.1, 0.9], axis=0)
        else:  # geometric interpolation between order statistics (keeps 6 N D = C for the medians)
            q = np.exp(np.quantile(np.log(alloc.draws[name]), [0.5, 0.1, 0.9], axis=0))
        for i, col in enumerate((name, f"{name}_lo80", f"{name}_hi80")):
            np.testing.assert_allclose(alloc.table[col], q[i], rtol=1e-12)
    # loss without noise is the law at the optimum
    P = {k: v[:, None] for k, v in p.items()}
    np.testing.assert_allclose(alloc.draws["loss"], laws.loss(P, N, D), rtol=1e-13)
    # draws are read-only
    with pytest.raises(ValueError):
        alloc.draws["N_opt"][0, 0] = 1.0


def test_point_estimate_and_scalar_budget():
    alloc = al.allocate(BESIROGLU, 5.88e23)
    row = alloc.table.iloc[0]
    assert row["N_opt"] == row["N_opt_lo80"] == row["N_opt_hi80"]
    assert alloc.draws["N_opt"].shape == (1, 1)


def test_log_noise_enters_the_predictive_loss():
    p = posterior_like(200)
    S, C = 200, np.array([1e20, 1e22])
    rng = np.random.default_rng(5)
    base = al.allocate(p, C).draws["loss"]
    z1 = 0.02 * rng.standard_normal(S)
    np.testing.assert_allclose(al.allocate(p, C, log_noise=z1).draws["loss"], base * np.exp(z1)[:, None],
                               rtol=1e-13)
    z2 = 0.02 * rng.standard_normal((S, 2))
    noisy = al.allocate(p, C, log_noise=z2)
    np.testing.assert_allclose(noisy.draws["loss"], base * np.exp(z2), rtol=1e-13)
    np.testing.assert_array_equal(noisy.draws["N_opt"], al.allocate(p, C).draws["N_opt"])
    with pytest.raises(ValueError, match="log_noise"):
        al.allocate(p, C, log_noise=np.zeros((S, 3)))


# -- other cost models ---------------------------------------------------------


def test_constant_cost_model_reproduces_closed_form():
    p = random_params(300, seed=4)
    C = np.array([1e18, 1e21, 1e24])
    closed = al.allocate(p, C)
    numeric = al.allocate(p, C, cost=lambda N: 6.0 + 0 * N)
    for name in ("N_opt", "D_opt", "loss"):
        np.testing.assert_allclose(numeric.draws[name], closed.draws[name], rtol=1e-9)
    numeric_scalar = al.allocate(p, C, cost=lambda N: 6.0)  # a scalar return value broadcasts
    np.testing.assert_allclose(numeric_scalar.draws["N_opt"], closed.draws["N_opt"], rtol=1e-9)


@pytest.mark.parametrize("g", [
    lambda N: 6.0 * (1.0 + 0.1 * (N / 1e9) ** -0.3),  # attention-like overhead, larger for small models
    lambda N: 6.0 * (1.0 + (N / 1e9) ** -0.6),  # a strong one
    lambda N: 6.0 * (1.0 + (N / 1e11) ** 0.5),  # cost rising with size
], ids=["mild", "strong", "rising"])
def test_nontrivial_cost_model_matches_brute_force(g):
    p = random_params(60, seed=5)
    C = np.array([1e19, 1e22, 1e25])
    alloc = al.allocate(p, C, cost=g)
    N, D = alloc.draws["N_opt"], alloc.draws["D_opt"]
    np.testing.assert_allclose(g(N) * N * D, np.broadcast_to(C, N.shape), rtol=1e-12)
    closed = al.allocate(p, C).draws["N_opt"]
    assert np.max(np.abs(np.log(N / closed))) > 0.01  # the cost model moves the optimum
    for s in range(60):
        q = draw(p, s)
        for j, c in enumerate(C):
            u, fun = brute_force_log_N(q, c, g)
            assert np.log(N[s, j]) == pytest.approx(u, abs=2e-5)
            assert float(laws.log_loss(q, N[s, j], D[s, j])) <= fun + 1e-13


def test_cost_model_errors():
    p = posterior_like(10)
    with pytest.raises(ValueError, match="callable"):
        al.allocate(p, 1e21, cost=6.0)
    with pytest.raises(ValueError, match="positive, finite"):
        al.allocate(p, 1e21, cost=lambda N: -6.0 + 0 * N)
    with pytest.raises(ValueError, match="grow with N"):
        al.allocate(p, 1e21, cost=lambda N: 6e12 / N)


# -- speed ---------------------------------------------------------------------


def test_allocation_of_4000_draws_by_1000_budgets_is_vectorised():
    p = posterior_like(4000)
    C = np.geomspace(1e18, 1e26, 1000)
    times = []
    for _ in range(2):  # the first call also pays for fresh memory pages
        t0 = time.perf_counter()
        alloc = al.allocate(p, C)
        times.append(time.perf_counter() - t0)
    print(f"\nallocate: 4000 draws x 1000 budgets in {times[0]:.3f} s (first call), {times[1]:.3f} s (second)")
    assert alloc.draws["N_opt"].shape == (4000, 1000)
    assert min(times) < 5.0


# -- decisions and probabilities ---------------------------------------------------


def test_bayes_optimal_N_differs_from_median_on_skewed_posterior():
    rng = np.random.default_rng(7)
    S = 2000
    p = dict(BESIROGLU)
    p = {k: np.full(S, v) for k, v in p.items()}
    p["A"] = BESIROGLU["A"] * np.exp(1.5 * rng.standard_exponential(S))  # long right tail
    C = np.array([1e20, 1e23])
    bayes = al.bayes_optimal_N(p, C)
    assert list(bayes.columns) == ["C", "N_bayes", "D_bayes", "tokens_per_param", "expected_loss"]
    med = al.allocate(p, C).table["N_opt"].to_numpy()
    N_b = bayes["N_bayes"].to_numpy()
    assert np.all(np.abs(np.log(N_b / med)) > 0.05)
    np.testing.assert_allclose(6 * N_b * bayes["D_bayes"], C, rtol=1e-12)

    def expected(N, c):
        return float(np.mean(laws.loss(p, N, c / (6 * N))))

    for j, c in enumerate(C):
        best = expected(N_b[j], c)
        assert bayes["expected_loss"].iloc[j] == pytest.approx(best, rel=1e-12)
        for other in (N_b[j] * 1.01, N_b[j] / 1.01, med[j]):
            assert best < expected(other, c)


def test_bayes_optimal_N_equals_N_opt_for_identical_draws():
    p = {k: np.full(50, v) for k, v in BESIROGLU.items()}
    C = np.array([1e19, 1e22, 5.76e23])
    bayes = al.bayes_optimal_N(p, C)
    N_opt, _ = laws.optimal_allocation(BESIROGLU, C)
    np.testing.assert_allclose(bayes["N_bayes"], N_opt, rtol=1e-10)


def test_bayes_optimal_N_with_noise_weights():
    p = posterior_like(500, seed=2, scale=0.1)
    z = np.random.default_rng(3).normal(0, 0.3, 500)
    C = np.array([1e21])
    bayes = al.bayes_optimal_N(p, C, log_noise=z)
    N = bayes["N_bayes"].iloc[0]

    def expected(N):
        return float(np.mean(laws.loss(p, N, C[0] / (6 * N)) * np.exp(z)))

    assert bayes["expected_loss"].iloc[0] == pytest.approx(expected(N), rel=1e-12)
    assert expected(N) < min(expected(N * 1.01), expected(N / 1.01))


def test_prob_below():
    p = {k: np.full(100, v) for k, v in BESIROGLU.items()}
    L = float(laws.loss(BESIROGLU, 7e10, 1.4e12))
    out = al.prob_below(p, 7e10, 1.4e12, [L * 0.999, L * 1.001])
    np.testing.assert_array_equal(out, [0.0, 1.0])
    # with Normal noise on log loss it is Phi((log target - log L) / sigma), up to Monte Carlo error
    S, sigma = 20000, 0.02
    z = np.random.default_rng(0).normal(0, sigma, S)
    q = {k: np.full(S, v) for k, v in BESIROGLU.items()}
    prob = al.prob_below(q, 7e10, 1.4e12, L * np.exp(sigma), log_noise=z)
    assert prob == pytest.approx(0.8413, abs=0.01)
    grid = al.prob_below(q, np.array([[1e9], [7e10]]), np.array([1e11, 1.4e12]), 2.1)
    assert grid.shape == (2, 2)
    with pytest.raises(ValueError, match="target"):
        al.prob_below(q, 7e10, 1.4e12, -1.0)


# -- inverting the frontier ---------------------------------------------------------


def test_best_D_for_N_inverts_the_frontier():
    p = posterior_like(400)
    N = np.array([1e8, 7e10])
    res = al.best_D_for_N(p, N)
    C = res.draws["C"]
    P = {k: v[:, None] for k, v in p.items()}
    N_back, D_back = laws.optimal_allocation(P, C)
    np.testing.assert_allclose(N_back, np.broadcast_to(N, C.shape), rtol=1e-10)
    np.testing.assert_allclose(D_back, res.draws["D"], rtol=1e-10)
    assert list(res.table.columns[:4]) == ["N", "C", "C_lo80", "C_hi80"]
    assert np.all(res.table["C_lo80"] < res.table["C"]) and np.all(res.table["C"] < res.table["C_hi80"])


def test_best_N_for_D_inverts_the_frontier():
    p = posterior_like(400)
    D = np.array([1e10, 1.4e12])
    res = al.best_N_for_D(p, D)
    P = {k: v[:, None] for k, v in p.items()}
    N_back, D_back = laws.optimal_allocation(P, res.draws["C"])
    np.testing.assert_allclose(D_back, np.broadcast_to(D, D_back.shape), rtol=1e-10)
    np.testing.assert_allclose(N_back, res.draws["N"], rtol=1e-10)


def test_best_D_for_N_at_fixed_compute():
    p = posterior_like(300)
    res = al.best_D_for_N(p, [1e9, 7e10], C=1e22)
    np.testing.assert_allclose(res.table["D"], 1e22 / (6 * np.array([1e9, 7e10])))
    assert np.all(res.draws["loss_penalty"] >= -1e-12)
    res_n = al.best_N_for_D(p, [1e12], C=[1e22])
    assert res_n.table["N"].iloc[0] == pytest.approx(1e22 / 6e12)


def test_compute_for_loss_inverts_the_frontier_loss():
    p = posterior_like(500)
    targets = np.array([2.2, 2.0, 1.95])
    res = al.compute_for_loss(p, targets)
    C = res.draws["C"]
    ok = np.isfinite(C)
    P = {k: np.broadcast_to(v[:, None], C.shape)[ok] for k, v in p.items()}
    N, D = laws.optimal_allocation(P, C[ok])
    np.testing.assert_allclose(laws.loss(P, N, D), np.broadcast_to(targets, C.shape)[ok], rtol=1e-10)
    np.testing.assert_allclose(res.draws["N_opt"][ok], N, rtol=1e-10)
    # draws with E >= target never get there
    reach = p["E"][:, None] < targets[None, :]
    np.testing.assert_array_equal(ok, reach)
    np.testing.assert_allclose(res.table["reachable"], reach.mean(axis=0))
    assert np.all(np.diff(res.table["C"]) > 0)  # lower loss costs more


def test_compute_for_loss_reports_unreachable_targets_as_inf():
    p = posterior_like(100)
    res = al.compute_for_loss(p, [1.0, 1.9])  # 1.0 is below every draw's E
    row = res.table.iloc[0]
    assert row["reachable"] == 0.0 and np.isinf(row["C"]) and np.isinf(row["C_lo80"])
    assert np.all(np.isinf(res.draws["C"][:, 0]))
    partial = res.table.iloc[1]
    assert 0 < partial["reachable"] < 1 and np.isfinite(partial["C_lo80"])


def test_frontier_exponents_besiroglu():
    tab = al.frontier_exponents(BESIROGLU)
    assert list(tab.index) == ["a", "b", "G"]
    assert list(tab.columns) == ["median", "lo80", "hi80", "mean", "sd"]
    assert tab.loc["a", "median"] == pytest.approx(0.513, abs=1e-3)
    assert tab.loc["a", "median"] + tab.loc["b", "median"] == pytest.approx(1.0)
    tpp = al.allocate(BESIROGLU, 5.88e23).table["tokens_per_param"].iloc[0]
    assert 18 <= tpp <= 20


def test_frontier_exponents_band_covers_draws():
    p = posterior_like(2000)
    tab = al.frontier_exponents(p, ci=0.9)
    a = laws.frontier_coefficients(p)["a"]
    assert tab.loc["a", "lo90"] < tab.loc["a", "median"] < tab.loc["a", "hi90"]
    assert np.mean((a >= tab.loc["a", "lo90"]) & (a <= tab.loc["a", "hi90"])) == pytest.approx(0.9, abs=0.002)
    assert tab.loc["a", "sd"] == pytest.approx(a.std(ddof=1))


# -- excess compute ---------------------------------------------------------------


def test_excess_compute_is_one_at_the_optimum_and_above_elsewhere():
    p = posterior_like(500)
    k = np.geomspace(0.2, 5, 61)
    assert np.any(k == 1.0)
    res = al.excess_compute(p, 1e21, k)
    x = res.draws["excess_compute"]
    at_one = k == 1.0
    np.testing.assert_allclose(x[:, at_one], 1.0, rtol=1e-14)
    np.testing.assert_allclose(res.draws["excess_tokens"][:, at_one], 1.0, rtol=1e-14)
    assert np.all(x[:, ~at_one] > 1.0)
    med = res.table["excess_compute"].to_numpy()
    i = int(np.flatnonzero(at_one)[0])
    assert np.all(np.diff(med[: i + 1]) < 0) and np.all(np.diff(med[i:]) > 0)
    # excess tokens fall with model size; C' = 6 k N_opt D'
    assert np.all(np.diff(res.draws["excess_tokens"], axis=1) < 0)
    np.testing.assert_allclose(x, k * res.draws["excess_tokens"], rtol=1e-14)


def test_excess_compute_reaches_the_same_loss():
    p = posterior_like(200)
    C, k = 1e21, np.array([0.5, 1.0, 3.0])
    res = al.excess_compute(p, C, k)
    N_opt, D_opt = laws.optimal_allocation(p, C)
    L_opt = laws.loss(p, N_opt, D_opt)
    P = {kk: v[:, None] for kk, v in p.items()}
    L = laws.loss(P, k[None, :] * N_opt[:, None], res.draws["excess_tokens"] * D_opt[:, None])
    np.testing.assert_allclose(L, np.broadcast_to(L_opt[:, None], L.shape), rtol=1e-12)


def test_excess_compute_unreachable_small_models_are_inf():
    res = al.excess_compute(BESIROGLU, 1e21, [0.01, 0.5])
    assert np.isinf(res.draws["excess_compute"][0, 0]) and res.table["reachable"].iloc[0] == 0.0
    assert np.isfinite(res.draws["excess_compute"][0, 1])


def test_efficient_size_range():
    p = posterior_like(500)
    rng_ = al.efficient_size_range(p, 1e21, threshold=0.2)
    assert rng_.k_lo < 1 < rng_.k_hi
    assert 0.4 < rng_.k_lo < 0.75 and 1.8 < rng_.k_hi < 2.8  # Kaplan et al.: about 0.6x to 2.2x
    assert "20% more compute" in rng_.sentence and f"{rng_.k_lo:.2f}x" in rng_.sentence
    t = rng_.table
    assert t.loc["k_lo", "lo80"] <= t.loc["k_lo", "median"] <= t.loc["k_lo", "hi80"]
    # at each draw's endpoints the excess compute is exactly the threshold
    for name in ("k_lo", "k_hi"):
        kd = rng_.draws[name]
        for s in range(0, 500, 50):
            ex = al.excess_compute(draw(p, s), 1e21, kd[s]).draws["excess_compute"][0, 0]
            assert ex == pytest.approx(1.2, rel=1e-9)
    assert al.efficient_size_range(p, 1e21, threshold=0.05).k_hi < rng_.k_hi


# -- bad inputs --------------------------------------------------------------------


@pytest.mark.parametrize("budgets, match", [
    ([1e21, -1.0], "positive and finite"),
    ([np.nan], "positive and finite"),
    ([np.inf], "positive and finite"),
    ([], "empty"),
    ("lots", "numbers"),
    (np.ones((2, 2)), "1-D"),
])
def test_bad_budgets(budgets, match):
    with pytest.raises(ValueError, match=match):
        al.allocate(BESIROGLU, budgets)


@pytest.mark.parametrize("ci", [0, 1, 1.5, -0.1, "wide"])
def test_bad_ci(ci):
    with pytest.raises(ValueError, match="ci must be a probability"):
        al.allocate(BESIROGLU, 1e21, ci=ci)
    with pytest.raises(ValueError, match="ci must be a probability"):
        al.frontier_exponents(BESIROGLU, ci=ci)


def test_bad_params():
    with pytest.raises(ValueError, match="lacks beta"):
        al.allocate({k: v for k, v in BESIROGLU.items() if k != "beta"}, 1e21)
    with pytest.raises(ValueError, match="alpha"):
        al.allocate(dict(BESIROGLU, alpha=np.array([0.3, -0.1])), 1e21)
    with pytest.raises(ValueError, match="different numbers of draws"):
        al.allocate(dict(BESIROGLU, A=np.ones(3), B=np.ones(4)), 1e21)
    with pytest.raises(ValueError, match="mapping"):
        al.allocate([1, 2, 3], 1e21)
    # extra keys (sigma, tau) are ignored
    al.allocate(dict(BESIROGLU, sigma=0.01), 1e21)


def test_bad_other_inputs():
    with pytest.raises(ValueError, match="single compute budget"):
        al.excess_compute(BESIROGLU, [1e20, 1e21], [1.0])
    with pytest.raises(ValueError, match="k must be positive"):
        al.excess_compute(BESIROGLU, 1e21, [0.0, 1.0])
    with pytest.raises(ValueError, match="threshold"):
        al.efficient_size_range(BESIROGLU, 1e21, threshold=0.0)
    with pytest.raises(ValueError, match="target must be positive"):
        al.compute_for_loss(BESIROGLU, [-2.0])
    with pytest.raises(ValueError, match="N must be positive"):
        al.best_D_for_N(BESIROGLU, [0.0])
    with pytest.raises(ValueError, match="budgets"):
        al.bayes_optimal_N(BESIROGLU, [0.0])


def test_results_are_pandas():
    p = posterior_like(50)
    assert isinstance(al.allocate(p, BUDGETS).table, pd.DataFrame)
    assert isinstance(al.bayes_optimal_N(p, BUDGETS), pd.DataFrame)
    res = al.excess_compute(p, 1e21, [0.5, 2.0])
    assert isinstance(res, al.DrawTable) and "DrawTable(2 rows, 50 draws" in repr(res)
    assert isinstance(al.allocate(p, BUDGETS), al.Allocation)
