"""Allocation through the Posterior, on the real 240-run Chinchilla fit (issue: allocation)."""

import time

import numpy as np
import pytest

import bayesscale as bs
from bayesscale import allocation


@pytest.mark.slow
def test_chinchilla_tokens_per_parameter_and_exponent(full_post):
    alloc = full_post.allocate([5.88e23], ci=0.8)
    row = alloc.iloc[0]
    assert 12 < row.tokens_per_param < 24
    assert row.tokens_per_param_lo80 < 18 < row.tokens_per_param_hi80  # published point estimate ~18
    ex = bs.frontier_exponents(full_post, ci=0.95)
    assert abs(ex.loc["a", "median"] - 0.513) < 0.04
    assert ex.loc["a", "lo95"] < ex.loc["a", "median"] < ex.loc["a", "hi95"]


def test_allocation_table_and_draws(small_post):
    budgets = np.array([1e21, 5.88e23, 1e25])
    df = small_post.allocate(budgets)
    cols = ["C", "N_opt", "N_opt_lo80", "N_opt_hi80", "D_opt", "D_opt_lo80", "D_opt_hi80", "tokens_per_param",
            "tokens_per_param_lo80", "tokens_per_param_hi80", "loss", "loss_lo80", "loss_hi80"]
    assert list(df.columns) == cols and len(df) == 3
    np.testing.assert_allclose(6 * df.N_opt * df.D_opt, budgets, rtol=1e-9)
    draws = df.attrs["draws"]
    S = small_post.n_draws
    assert draws["N_opt"].shape == (S, 3)
    np.testing.assert_allclose(6 * draws["N_opt"] * draws["D_opt"], np.broadcast_to(budgets, (S, 3)), rtol=1e-9)
    assert (df.N_opt_lo80 < df.N_opt).all() and (df.N_opt < df.N_opt_hi80).all()
    assert (df.loss_lo80 < df.loss).all() and (df.loss < df.loss_hi80).all()
    assert df.N_opt.is_monotonic_increasing and df.loss.is_monotonic_decreasing


def test_closed_form_matches_brute_force_per_draw(small_post):
    p = small_post.params
    C = 5.88e23
    N_closed = allocation.allocate(p, [C]).draws["N_opt"][:, 0]
    grid = np.geomspace(N_closed.min() / 3, N_closed.max() * 3, 20001)
    S = 200
    P = {k: v[:S, None] for k, v in p.items()}
    L = np.log(P["E"] + P["A"] / grid**P["alpha"] + P["B"] / (C / (6 * grid))**P["beta"])
    N_brute = grid[np.argmin(L, axis=1)]
    np.testing.assert_allclose(N_brute, N_closed[:S], rtol=2e-3)


def test_decisions_beyond_quantiles(small_post):
    dec = bs.bayes_decision(small_post, [5.88e23])
    assert dec.N_bayes.iloc[0] > 0 and np.isclose(6 * dec.N_bayes * dec.D_bayes, 5.88e23).all()
    p_easy, p_hard = bs.prob_below(small_post, 70e9, 1.4e12, [2.5, 1.5])
    assert p_easy >= 0.98 and p_hard < 0.01  # the Student-t extrapolation error has heavy tails
    need = bs.compute_for_loss(small_post, 2.0).table
    assert need.C.iloc[0] > 1e21
    rng = bs.efficient_size_range(small_post, 5.88e23, threshold=0.2)
    assert rng.k_lo < 1 < rng.k_hi and "20%" in rng.sentence
    ex = bs.excess_compute(small_post, 5.88e23).table
    assert np.isclose(ex.loc[np.argmin(np.abs(np.log(ex.k))), "excess_compute"], 1.0, atol=1e-6)


def test_allocation_speed_4000_draws_by_1000_budgets(small_post):
    rng = np.random.default_rng(0)
    p = {k: rng.choice(v, 4000) for k, v in small_post.params.items()}
    budgets = np.geomspace(1e20, 1e26, 1000)
    allocation.allocate(p, budgets)
    t = time.perf_counter()
    allocation.allocate(p, budgets)
    elapsed = time.perf_counter() - t
    print(f"allocation 4000 x 1000: {elapsed:.3f} s")
    assert elapsed < 5  # a Python loop over draws would take minutes; measured ~0.3 s


def test_bad_budgets(small_post):
    with pytest.raises(ValueError, match="positive"):
        small_post.allocate([-1.0])
