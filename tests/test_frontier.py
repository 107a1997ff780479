"""The numeric compute-optimal frontier (bayesscale.frontier) against closed forms and brute force.

Every law is written once for an array namespace ``xp`` so that the same
formula runs in JAX (the solver) and in NumPy (the independent references:
closed forms and a brute-force zooming grid in float64).
"""

import numpy as np
import pytest

import jax.numpy as jnp

from bayesscale import frontier

LOG6 = np.log(6.0)
BUDGETS = np.logspace(18, 27, 19)


# ---------------------------------------------------------------------------
# laws, written once for numpy and jax
# ---------------------------------------------------------------------------


def _lse(xp, *terms):
    m = terms[0]
    for t in terms[1:]:
        m = xp.maximum(m, t)
    return m + xp.log(sum(xp.exp(t - m) for t in terms))


def chinchilla(xp):
    def log_loss(p, log_N, log_D):
        return _lse(xp, xp.log(p["E"]) + 0.0 * log_N, xp.log(p["A"]) - p["alpha"] * log_N,
                    xp.log(p["B"]) - p["beta"] * log_D)

    return log_loss


def kaplan(xp):
    """Kaplan et al. 2020 eq. 1.5: L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D."""

    def log_loss(p, log_N, log_D):
        r = p["alpha_N"] / p["alpha_D"]
        return p["alpha_D"] * _lse(xp, r * (xp.log(p["N_c"]) - log_N), xp.log(p["D_c"]) - log_D)

    return log_loss


def coupled(xp):
    """E + A/N^alpha + B/D^beta + F/(N^alpha D^beta)."""

    def log_loss(p, log_N, log_D):
        return _lse(xp, xp.log(p["E"]) + 0.0 * log_N, xp.log(p["A"]) - p["alpha"] * log_N,
                    xp.log(p["B"]) - p["beta"] * log_D, xp.log(p["F"]) - p["alpha"] * log_N - p["beta"] * log_D)

    return log_loss


def two_basins(xp):
    """Chinchilla times a multiplicative dip at N ~ 3e9: two local minima along a budget."""

    def log_loss(p, log_N, log_D):
        return chinchilla(xp)(p, log_N, log_D) - p["depth"] * xp.exp(-0.5 * ((log_N - np.log(3e9)) / p["width"]) ** 2)

    return log_loss


def compute_only(xp):
    """L = E + A (6 N D)^-gamma: depends on the budget, not on its split."""

    def log_loss(p, log_N, log_D):
        return _lse(xp, xp.log(p["E"]) + 0.0 * log_N, xp.log(p["A"]) - p["gamma"] * (LOG6 + log_N + log_D))

    return log_loss


def data_only(xp):
    def log_loss(p, log_N, log_D):
        return _lse(xp, xp.log(p["E"]) + 0.0 * log_N, xp.log(p["B"]) - p["beta"] * log_D)

    return log_loss


# the JAX versions, made once so that the solver's compilation cache sees one object per law
CHIN, KAPLAN, COUPLED, TWO_BASINS, COMPUTE_ONLY, DATA_ONLY = (
    f(jnp) for f in (chinchilla, kaplan, coupled, two_basins, compute_only, data_only))


def overhead_cost_jax(N):
    return 6.0 * (1.0 + 1e9 / N)


def overhead_cost_np(N):
    return 6.0 * (1.0 + 1e9 / N)


KAPLAN_2020 = dict(alpha_N=0.076, alpha_D=0.103, N_c=6.4e13, D_c=1.8e13)


def chinchilla_draws(rng, S):
    return dict(E=rng.uniform(0.5, 3.0, S), A=np.exp(rng.uniform(np.log(50), np.log(5e3), S)),
                B=np.exp(rng.uniform(np.log(50), np.log(5e3), S)), alpha=rng.uniform(0.2, 0.6, S),
                beta=rng.uniform(0.2, 0.6, S))


def chinchilla_closed_form(p, C):
    s = p["alpha"] + p["beta"]
    G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / s)
    N = G[:, None] * (C[None, :] / 6) ** (p["beta"] / s)[:, None]
    return N, C[None, :] / (6 * N)


def brute_force(law_np, p, C, cost_np=None, n=4001, zooms=2, half_width=0.05):
    """Global minimum of the law along each budget line, by dense grids in NumPy float64.

    The first grid spans ``1 <= N <= C`` with ``n`` points (spacing <= 0.016
    in log N) and finds the global minimum; each zoom keeps +-2 spacings
    around it with ``n`` points again.  A minimum located from loss values
    alone is only good to about ``sqrt(eps / f'')``, a few 1e-6 in log N
    where the loss is flat (large budgets), so the last step fits a quartic
    to ``n`` points within ``+-half_width`` of that minimum (least squares,
    which averages out the rounding) and returns the stationary point of
    the fit: the truncation error is of order ``half_width**4`` times the
    higher derivatives of ``f`` relative to ``f''`` (about 1e-9 in log N here).
    """
    S = len(next(iter(p.values())))
    P = {k: np.asarray(v, float)[:, None, None] for k, v in p.items()}
    log_C = np.log(C)[None, :, None]

    def f_of(u):
        log_cost = LOG6 if cost_np is None else np.log(cost_np(np.exp(u)))
        log_D = log_C - log_cost - u
        return np.where(log_D >= 0, law_np(P, u, log_D), np.inf), log_D

    lo = np.zeros((S, C.size, 1))
    hi = np.broadcast_to(log_C, (S, C.size, 1)).copy()
    t = np.linspace(0.0, 1.0, n)[None, None, :]
    for _ in range(zooms + 1):
        u = lo + (hi - lo) * t
        f, _ = f_of(u)
        k = np.argmin(f, axis=-1)[..., None]
        best = np.take_along_axis(u, k, axis=-1)
        h = (hi - lo) / (n - 1)
        lo, hi = np.maximum(best - 2 * h, lo), np.minimum(best + 2 * h, hi)
    x = np.linspace(-half_width, half_width, n)
    f, _ = f_of(best + x)
    assert np.isfinite(f).all(), "brute force: the optimum is within half_width of an edge"
    V = np.vander(x, 5)  # x^4 .. x^0
    coef = np.linalg.lstsq(V, f.reshape(-1, n).T, rcond=None)[0]  # (5, S*B)
    c4, c3, c2, c1, _ = coef
    dx = np.zeros_like(c1)
    for _ in range(50):  # Newton on the fitted quartic's derivative, from the grid minimum
        g = 4 * c4 * dx**3 + 3 * c3 * dx**2 + 2 * c2 * dx + c1
        gp = 12 * c4 * dx**2 + 6 * c3 * dx + 2 * c2
        dx = dx - g / gp
    assert np.abs(dx).max() < 1e-3 * half_width  # a small correction to the grid minimum
    u = best[..., 0] + dx.reshape(S, C.size)
    log_cost = LOG6 if cost_np is None else np.log(cost_np(np.exp(u)))
    return np.exp(u), np.exp(np.log(C)[None, :] - log_cost - u)


def rel(a, b):
    return np.abs(np.asarray(a) / np.asarray(b) - 1)


# ---------------------------------------------------------------------------
# accuracy
# ---------------------------------------------------------------------------


def test_chinchilla_matches_closed_form_to_1e6():
    rng = np.random.default_rng(0)
    p = chinchilla_draws(rng, 400)
    C = np.logspace(18, 27, 37)
    N_cf, D_cf = chinchilla_closed_form(p, C)
    assert np.all((N_cf > 1e3) & (D_cf > 1e3))  # interior, well away from N = 1 and D = 1
    fr = frontier.solve(CHIN, p, C)
    assert fr.N_opt.shape == fr.D_opt.shape == (400, 37)
    assert fr.N_opt.dtype == np.float64
    assert fr.interior.all()
    assert rel(fr.N_opt, N_cf).max() < 1e-6
    assert rel(fr.D_opt, D_cf).max() < 1e-6
    # the budget is spent exactly, and the loss is the law at the optimum
    assert rel(6 * fr.N_opt * fr.D_opt, C[None, :]).max() < 1e-12
    L_cf = np.exp(chinchilla(np)({k: v[:, None] for k, v in p.items()}, np.log(N_cf), np.log(D_cf)))
    assert rel(fr.loss, L_cf).max() < 1e-12


def test_chinchilla_accuracy_is_far_inside_the_target():
    # The documented accuracy (module docstring): better than 1e-11 relative.
    rng = np.random.default_rng(1)
    p = chinchilla_draws(rng, 200)
    N_cf, D_cf = chinchilla_closed_form(p, BUDGETS)
    N, D = frontier.optimal_allocation(CHIN, p, BUDGETS)
    assert rel(N, N_cf).max() < 1e-11 and rel(D, D_cf).max() < 1e-11


def test_brute_force_reference_agrees_with_closed_form():
    # The reference used below is itself checked against a closed form.
    rng = np.random.default_rng(2)
    p = chinchilla_draws(rng, 8)
    N_cf, _ = chinchilla_closed_form(p, BUDGETS)
    N_bf, _ = brute_force(chinchilla(np), p, BUDGETS)
    assert rel(N_bf, N_cf).max() < 1e-8


def test_chinchilla_under_overhead_cost_matches_brute_force():
    rng = np.random.default_rng(3)
    p = chinchilla_draws(rng, 12)
    fr = frontier.solve(CHIN, p, BUDGETS, cost=overhead_cost_jax)
    N_bf, D_bf = brute_force(chinchilla(np), p, BUDGETS, cost_np=overhead_cost_np)
    assert fr.interior.all()
    assert rel(fr.N_opt, N_bf).max() < 1e-6
    assert rel(fr.D_opt, D_bf).max() < 1e-6
    # the budget is spent under the cost model
    spent = overhead_cost_np(fr.N_opt) * fr.N_opt * fr.D_opt
    assert rel(spent, BUDGETS[None, :]).max() < 1e-12
    # and the overhead moves the optimum: fewer, larger... at least not the 6ND answer
    N_cf, _ = chinchilla_closed_form(p, BUDGETS)
    assert rel(fr.N_opt, N_cf).max() > 1e-3


def test_kaplan_2020_optimum_matches_closed_form_and_brute_force():
    # With D = C / (6N), minimising (N_c/N)^r + D_c/D gives N* = (r N_c^r C / (6 D_c))^(1/(1+r)).
    p = dict(KAPLAN_2020)
    r = p["alpha_N"] / p["alpha_D"]
    N_cf = (r * p["N_c"] ** r * BUDGETS / (6 * p["D_c"])) ** (1 / (1 + r))
    fr = frontier.solve(KAPLAN, p, BUDGETS)
    assert fr.N_opt.shape == (1, BUDGETS.size)
    assert fr.interior.all()
    assert rel(fr.N_opt[0], N_cf).max() < 1e-6
    N_bf, D_bf = brute_force(kaplan(np), {k: np.array([v]) for k, v in p.items()}, BUDGETS)
    assert rel(fr.N_opt, N_bf).max() < 1e-6 and rel(fr.D_opt, D_bf).max() < 1e-6
    # published constants: the optimum grows as C^(1/(1+r)) = C^0.575
    slope = np.polyfit(np.log(BUDGETS), np.log(fr.N_opt[0]), 1)[0]
    assert slope == pytest.approx(1 / (1 + r), rel=1e-9)


def test_kaplan_draws_under_overhead_cost_match_brute_force():
    rng = np.random.default_rng(4)
    S = 10
    p = {k: v * np.exp(rng.normal(0, 0.1, S)) for k, v in KAPLAN_2020.items()}
    fr = frontier.solve(KAPLAN, p, BUDGETS, cost=overhead_cost_jax)
    N_bf, D_bf = brute_force(kaplan(np), p, BUDGETS, cost_np=overhead_cost_np)
    assert fr.interior.all()
    assert rel(fr.N_opt, N_bf).max() < 1e-6 and rel(fr.D_opt, D_bf).max() < 1e-6


def test_coupled_law_matches_brute_force():
    rng = np.random.default_rng(5)
    S = 12
    p = chinchilla_draws(rng, S)
    p["F"] = np.exp(rng.uniform(np.log(1e2), np.log(1e5), S))
    fr = frontier.solve(COUPLED, p, BUDGETS)
    N_bf, D_bf = brute_force(coupled(np), p, BUDGETS)
    assert fr.interior.all()
    assert rel(fr.N_opt, N_bf).max() < 1e-6 and rel(fr.D_opt, D_bf).max() < 1e-6
    # the coupling term matters: the additive law's closed form is off
    N_cf, _ = chinchilla_closed_form(p, BUDGETS)
    assert rel(fr.N_opt, N_cf).max() > 1e-2


@pytest.mark.parametrize("width, depth, n_grid", [(0.6, 0.2, frontier.DEFAULT_GRID), (0.3, 0.05, 96)])
def test_non_convex_objective_finds_the_global_minimum(width, depth, n_grid):
    # A dip in the loss at N = 3e9 makes two local minima along many budget lines; the coarse grid
    # must pick the global one (the dip must not be much narrower than the grid's spacing in log N).
    p = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, depth=depth, width=width)
    C = np.logspace(17, 25, 41)
    law_np = two_basins(np)
    P = {k: np.array([v]) for k, v in p.items()}
    u = np.linspace(np.log(1e5), np.log(1e13), 40001)
    f = law_np(p, u[None, :], np.log(C)[:, None] - LOG6 - u[None, :])
    two = ((f[:, 1:-1] < f[:, :-2]) & (f[:, 1:-1] < f[:, 2:])).sum(axis=1) == 2
    at_dip = np.abs(u[np.argmin(f, axis=1)] - np.log(3e9)) < 2 * width
    assert (two & at_dip).sum() >= 5 and (two & ~at_dip).sum() >= 5  # both basins win somewhere
    fr = frontier.solve(TWO_BASINS, p, C, n_grid=n_grid)
    N_bf, _ = brute_force(law_np, P, C, half_width=0.05 * width)  # the fit window well inside the dip
    assert fr.interior.all()
    assert rel(fr.N_opt, N_bf).max() < 1e-6


# ---------------------------------------------------------------------------
# no interior optimum -> NaN, never a bracket edge
# ---------------------------------------------------------------------------


def test_compute_only_law_has_no_optimum_under_6ND():
    p = dict(E=1.7, A=1e3, gamma=0.05)
    fr = frontier.solve(COMPUTE_ONLY, p, BUDGETS)
    assert np.isnan(fr.N_opt).all() and np.isnan(fr.D_opt).all() and np.isnan(fr.loss).all()
    assert not fr.interior.any()


def test_edge_optima_are_nan():
    # loss falls with D only: the best split is N = 1, an edge, not an optimum
    N, D = frontier.optimal_allocation(DATA_ONLY, dict(E=1.7, B=410.7, beta=0.28), BUDGETS)
    assert np.isnan(N).all() and np.isnan(D).all()
    # a compute-only law under a cost that falls with N: the optimum runs to D = 1
    N, _ = frontier.optimal_allocation(COMPUTE_ONLY, dict(E=1.7, A=1e3, gamma=0.05), BUDGETS,
                                       cost=overhead_cost_jax)
    assert np.isnan(N).all()


def test_nan_only_where_the_optimum_leaves_the_range():
    # Chinchilla with a tiny data exponent: at small budgets the optimum is interior, and the
    # closed form leaves N >= 1 at none of them, so every entry must be solved; with
    # alpha >> beta and A >> B the closed-form N_opt falls below 1 at the small budgets.
    p = dict(E=1.7, A=1e6, B=1.0, alpha=1.5, beta=0.05)
    C = np.logspace(2, 27, 26)
    N_cf, D_cf = chinchilla_closed_form({k: np.array([v]) for k, v in p.items()}, C)
    fr = frontier.solve(CHIN, p, C)
    inside = (N_cf[0] > 5) & (D_cf[0] > 5)
    outside = (N_cf[0] < 1) | (D_cf[0] < 1)
    assert inside.any() and outside.any()
    assert fr.interior[0, inside].all() and not fr.interior[0, outside].any()
    assert rel(fr.N_opt[0, inside], N_cf[0, inside]).max() < 1e-6


# ---------------------------------------------------------------------------
# compilation, inputs, helpers
# ---------------------------------------------------------------------------


def test_second_call_with_new_params_does_not_retrace():
    traces = []

    def law(p, log_N, log_D):
        traces.append(1)  # runs only while JAX traces the function
        return CHIN(p, log_N, log_D)

    rng = np.random.default_rng(6)
    frontier.solve(law, chinchilla_draws(rng, 50), BUDGETS)
    first = len(traces)
    assert first > 0
    p2 = chinchilla_draws(rng, 50)
    fr2 = frontier.solve(law, {k: v.astype(np.float32) for k, v in p2.items()}, BUDGETS * 2)
    assert len(traces) == first
    N_cf, _ = chinchilla_closed_form({k: v.astype(np.float32).astype(float) for k, v in p2.items()}, BUDGETS * 2)
    assert rel(fr2.N_opt, N_cf).max() < 1e-6
    # the counter does see a new shape
    frontier.solve(law, chinchilla_draws(rng, 51), BUDGETS)
    assert len(traces) > first


def test_scalar_params_and_broadcast_scalars():
    p = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    fr = frontier.solve(CHIN, p, 5.76e23)
    assert fr.N_opt.shape == (1, 1)
    # Chinchilla's own fit: about 20 tokens per parameter at Gopher's budget
    N_cf, _ = chinchilla_closed_form({k: np.array([v]) for k, v in p.items()}, np.array([5.76e23]))
    assert rel(fr.N_opt, N_cf).max() < 1e-9
    # a scalar alongside arrays of draws is shared by every draw
    p_mix = dict(p, alpha=np.array([0.3, 0.34, 0.4]))
    fr = frontier.solve(CHIN, p_mix, BUDGETS)
    assert fr.N_opt.shape == (3, BUDGETS.size)
    assert rel(fr.N_opt[1], frontier.solve(CHIN, p, BUDGETS).N_opt[0]).max() < 1e-12


def test_loss_helpers_agree_with_the_optimum():
    rng = np.random.default_rng(7)
    p = chinchilla_draws(rng, 20)
    fr = frontier.solve(CHIN, p, BUDGETS)
    L_opt = frontier.optimal_loss(CHIN, p, BUDGETS)
    np.testing.assert_allclose(L_opt, fr.loss, rtol=1e-14)
    np.testing.assert_allclose(frontier.loss_at_budget(CHIN, p, BUDGETS, fr.N_opt), fr.loss, rtol=1e-14)
    for factor in (1.01, 1 / 1.01):
        assert (frontier.loss_at_budget(CHIN, p, BUDGETS, fr.N_opt * factor) > fr.loss).all()
    np.testing.assert_allclose(fr.tokens_per_param, fr.D_opt / fr.N_opt)
    with pytest.raises(ValueError):
        fr.N_opt[0, 0] = 1.0


@pytest.mark.parametrize(
    "params, budgets, match",
    [
        (dict(E=[1.0, 2.0], A=[1.0, 2.0, 3.0]), [1e20], "draws"),
        (dict(E=np.ones((2, 2))), [1e20], "flat array"),
        ({}, [1e20], "non-empty"),
        (dict(E=1.0), [1e20, -1.0], "budgets"),
        (dict(E=1.0), [np.inf], "budgets"),
        (dict(E=1.0), [], "budgets"),
        (dict(E="x"), [1e20], "numeric"),
    ],
)
def test_bad_inputs_raise_value_errors(params, budgets, match):
    with pytest.raises(ValueError, match=match):
        frontier.solve(CHIN, params, budgets)


def test_bad_callables_and_grid_raise():
    p = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    with pytest.raises(ValueError, match="log_loss"):
        frontier.solve("chinchilla", p, BUDGETS)
    with pytest.raises(ValueError, match="cost"):
        frontier.solve(CHIN, p, BUDGETS, cost=6.0)
    with pytest.raises(ValueError, match="n_grid"):
        frontier.solve(CHIN, p, BUDGETS, n_grid=3)
