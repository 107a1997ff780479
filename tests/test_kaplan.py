"""Tests of bayesscale.kaplan: Kaplan et al. (2020) steps-and-batch equations as pure functions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesscale import kaplan as K

P = K.KAPLAN_STEPS


def random_points(n=5000, seed=0):
    """Wide random (log N, log S, log B) with B from 1e-4 to 1e4 times the critical batch."""
    rng = np.random.default_rng(seed)
    log_N = rng.uniform(np.log(1e3), np.log(1e13), n)
    log_S = rng.uniform(0.0, np.log(1e8), n)
    log_B = K.log_critical_batch(P, K.log_loss_n_smin(P, log_N, log_S)) + rng.uniform(np.log(1e-4), np.log(1e4), n)
    return log_N, log_S, log_B


def test_frontier_exponents_from_published_constants():
    f = K.frontier_exponents(P)
    a_c = 1 / (1 / 0.76 + 1 / 0.21 + 1 / 0.076)
    assert f["alpha_C_min"] == pytest.approx(a_c) and f["alpha_C_min"] == pytest.approx(0.0520, abs=5e-4)
    assert f["N"] == pytest.approx(a_c / 0.076) and f["B"] == pytest.approx(a_c / 0.21)
    assert f["S"] == pytest.approx(a_c / 0.76)
    assert f["N"] + f["B"] + f["S"] == pytest.approx(1.0)  # C_min = 6 N B S
    # Kaplan's direct fits: N ~ C_min^0.73, B ~ C_min^0.24, S_min ~ C_min^0.03 (eq. 6.1); the law's
    # constants imply 0.684, 0.248, 0.068, near but not equal (the paper's own comparison)
    assert abs(f["N"] - 0.73) < 0.06 and abs(f["B"] - 0.24) < 0.02 and abs(f["S"] - 0.03) < 0.05
    # L(C_min) = (C_c / C_min)^alpha_C: Kaplan's direct fit has C_c = 3.1e8 PF-days (eq. 1.3)
    assert 3.1e8 / 2.5 < f["C_c_pf_days"] < 3.1e8 * 2.5


def test_frontier_is_consistent_with_the_steps_law():
    C = np.array([1e17, 1e19, 1e21, 1e23])
    fr = K.frontier(P, C)
    np.testing.assert_allclose(6 * fr["N"] * fr["B"] * fr["S"], C, rtol=1e-10)
    np.testing.assert_allclose(fr["E"], fr["B"] * fr["S"], rtol=1e-10)
    np.testing.assert_allclose(fr["B"], K.critical_batch(P, fr["L"]), rtol=1e-10)
    # at B = B_crit, S_min = S / 2: training S = 2 S_min steps reaches the frontier loss
    L = K.loss_steps(P, fr["N"], 2 * fr["S"], fr["B"])
    np.testing.assert_allclose(L, fr["L"], rtol=1e-10)
    # and L(N, S_min) at the frontier's S_min
    np.testing.assert_allclose(np.exp(K.log_loss_n_smin(P, np.log(fr["N"]), np.log(fr["S"]))), fr["L"], rtol=1e-10)
    # N_eff minimises the loss at fixed C_min (the U-shaped "performance vs compute" curve)
    N = np.geomspace(1e4, 1e14, 4001)
    for c, n_eff, l_eff in zip(C, fr["N"], fr["L"]):
        ll = K.log_loss_at_compute(P, np.log(N), np.log(c))
        assert abs(np.log(N[np.argmin(ll)] / n_eff)) < 2 * np.log(N[1] / N[0])
        assert np.exp(ll.min()) == pytest.approx(l_eff, rel=1e-6)


def test_newton_fixed_point_converges():
    log_N, log_S, log_B = random_points()
    for it in (6, K.NEWTON_ITERATIONS):
        ll = K.log_loss_steps(P, log_N, log_S, log_B, iterations=it)
        L = np.exp(ll)
        sm = K.s_min(P, np.exp(log_S), np.exp(log_B), L)
        resid = ll - K.log_loss_n_smin(P, log_N, np.log(sm))
        assert np.max(np.abs(resid)) < 1e-12
    # no iterations is not enough: the test can fail
    ll2 = K.log_loss_steps(P, log_N, log_S, log_B, iterations=0)
    assert np.max(np.abs(ll2 - ll)) > 1e-6
    # S_min < S, and the loss is above the infinite-batch loss L(N, S)
    assert np.all(ll > K.log_loss_n_smin(P, log_N, log_S))


def test_compute_form_inverts_the_steps_law():
    log_N, log_S, log_B = random_points(2000, seed=1)
    keep = (log_N < np.log(1e11)) & (log_S > np.log(10))  # away from L - (N_c/N)^alpha_N ~ 1e-13
    log_N, log_S, log_B = log_N[keep], log_S[keep], log_B[keep]
    L = np.exp(K.log_loss_steps(P, log_N, log_S, log_B))
    C = K.training_compute(np.exp(log_B + log_S), N_nonembed=np.exp(log_N))
    Cmin = K.c_min(P, C, np.exp(log_B), L)
    back = K.log_loss_at_compute(P, log_N, np.log(Cmin))
    np.testing.assert_allclose(back, np.log(L), atol=1e-9)


def test_batch_identities():
    N, S, B, L = 1e8, 3e4, 2.0**19, 3.1
    E = B * S
    sm, em = K.s_min(P, S, B, L), K.e_min(P, E, B, L)
    bc = K.critical_batch(P, L)
    assert (S / sm - 1) * (E / em - 1) == pytest.approx(1.0)        # eq. 5.1
    assert em / sm == pytest.approx(bc)                               # eq. 5.2
    C = 6 * N * B * S
    assert K.c_min(P, C, B, L) == pytest.approx(6 * N * bc * sm)      # eq. 5.5
    assert bc == pytest.approx(2.1e8 / 3.1 ** (1 / 0.21))             # eq. 1.4


def test_excess_compute_and_steps():
    assert K.excess_compute(P, 1.0) == pytest.approx(1.0) and K.excess_steps(P, 1.0) == pytest.approx(1.0)
    r = np.geomspace(0.3, 10, 200)
    ec, es = K.excess_compute(P, r), K.excess_steps(P, r)
    assert np.all(ec >= 1 - 1e-12) and np.all(np.diff(es) < 0)  # smaller models need more steps
    lo, hi = K.size_range_within(P, 1.2)
    # Kaplan: "models between 0.6x and 2.2x the optimal size" cost about 20% more compute
    assert lo == pytest.approx(0.58, abs=0.02) and hi == pytest.approx(2.18, abs=0.03)
    assert K.excess_compute(P, lo) == pytest.approx(1.2) and K.excess_compute(P, hi) == pytest.approx(1.2)
    floor = (1 + 0.076 / 0.76) ** (-1 / 0.076)
    assert np.isinf(K.excess_compute(P, 0.9 * floor)) and np.isfinite(K.excess_compute(P, 1.1 * floor))
    with pytest.raises(ValueError, match="greater than 1"):
        K.size_range_within(P, 0.9)


def test_vectorised_over_draws():
    rng = np.random.default_rng(2)
    draws = {k: v * np.exp(0.05 * rng.standard_normal(7)) for k, v in P.items()}
    x = np.log(np.array([1e6, 1e8, 1e10]))
    s, b = np.log(np.array([1e3, 1e4, 1e5])), np.log(np.array([2.0**17, 2.0**19, 2.0**21]))
    grid = K.log_loss_steps({k: v[:, None] for k, v in draws.items()}, x[None, :], s[None, :], b[None, :])
    assert grid.shape == (7, 3)
    for i in range(7):
        one = {k: v[i] for k, v in draws.items()}
        np.testing.assert_allclose(grid[i], K.log_loss_steps(one, x, s, b), rtol=1e-12)
    f = K.frontier({k: v[:, None] for k, v in draws.items()}, np.array([1e18, 1e20])[None, :])
    assert f["N"].shape == (7, 2)
    assert K.frontier_exponents(draws)["N"].shape == (7,)
    lo, hi = K.size_range_within(draws, 1.2)
    assert lo.shape == hi.shape == (7,) and np.all(lo < 1) and np.all(hi > 1)


def test_jax_gradient_is_finite_and_exact():
    p = {k: jnp.asarray(v) for k, v in P.items()}
    x = jnp.log(jnp.array([1e6, 1e8, 1e9]))
    s = jnp.log(jnp.array([1e3, 1e4, 1e5]))
    b = jnp.log(jnp.array([1e5, 1e6, 4e6]))

    def total(pp):
        return K.log_loss_steps(pp, x, s, b).sum()

    g = jax.jit(jax.grad(total))(p)
    pn = dict(P)
    xn, sn, bn = (np.asarray(v, dtype=float) for v in (x, s, b))
    for k in P:
        assert np.isfinite(float(g[k]))
        h = 1e-6 * pn[k]
        up, dn = dict(pn, **{k: pn[k] + h}), dict(pn, **{k: pn[k] - h})
        fd = (K.log_loss_steps(up, xn, sn, bn).sum() - K.log_loss_steps(dn, xn, sn, bn).sum()) / (2 * h)
        assert float(g[k]) == pytest.approx(fd, rel=2e-3, abs=1e-12)
    # gradients of the other solved quantities are finite too
    for fn in (lambda pp: K.log_loss_at_compute(pp, x, jnp.log(1e20)).sum(),
               lambda pp: jnp.log(K.frontier(pp, 1e20)["N"]),
               lambda pp: K.excess_compute(pp, 2.0)):
        assert all(np.isfinite(float(v)) for v in jax.grad(fn)(p).values())


def test_units_and_conventions():
    assert K.PF_DAY == 8.64e19
    assert K.pf_days_to_flops(2.0) == 1.728e20 and K.flops_to_pf_days(8.64e19) == 1.0
    assert K.training_compute(1e9, N_nonembed=1e8) == 6e17
    assert K.training_compute(1e9, N=1.2e8, convention="total") == pytest.approx(7.2e17)
    with pytest.raises(ValueError, match="counts N_nonembed"):
        K.training_compute(1e9, N=1e8)
    with pytest.raises(ValueError, match="convention must be"):
        K.training_compute(1e9, N=1e8, convention="chinchilla")


def test_fixed_batch_optimum():
    C = np.geomspace(1e15, 1e20, 6)
    N_opt, L_opt = K.fixed_batch_optimum(P, C, 2.0**19, N_grid=np.geomspace(1e3, 1e15, 2401))
    # brute force on a fine grid around each optimum
    for c, n, l_ in zip(C, N_opt[0], L_opt[0]):
        N = np.geomspace(n / 1.5, n * 1.5, 3001)
        L = K.loss_steps(P, N, c / (6 * N * 2.0**19), 2.0**19)
        assert n == pytest.approx(N[np.argmin(L)], rel=2e-3) and l_ == pytest.approx(L.min(), rel=1e-7)
    # at a fixed batch the optimal size grows faster with compute than on the C_min frontier
    slope = np.polyfit(np.log(C), np.log(N_opt[0]), 1)[0]
    assert slope > K.frontier_exponents(P)["N"] + 0.05
