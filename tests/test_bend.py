"""The bend in log compute: what it adds to predictions, when it is on, and what it finds on real data."""

import numpy as np
import pytest

import bayesscale as bs
from bayesscale.model import BEND_MIN_BUDGETS, ModelSpec, bend_frame, bend_term
from bayesscale.posterior import bend as bend_of
from bayesscale.posterior import law_log_loss

from .conftest import fit_quietly


def test_bend_is_quadratic_inside_the_data_and_tangent_outside():
    C = np.array([1e18, 1e19, 1e20, 1e21])
    center, lo, hi = bend_frame(C)
    assert center == pytest.approx(19.5) and lo == pytest.approx(-1.5) and hi == pytest.approx(1.5)
    x = np.linspace(-4, 4, 801)
    b = bend_term(0.01, (x + center) * np.log(10), center, lo, hi)
    inside = np.abs(x) <= hi
    np.testing.assert_allclose(b[inside], 0.01 * x[inside] ** 2, rtol=1e-12)
    slope = np.gradient(b, x)
    # continuous, with a continuous slope, and straight beyond the data
    assert np.max(np.abs(np.diff(b))) < 0.01 * 2 * 4 * (x[1] - x[0]) * 1.01
    np.testing.assert_allclose(slope[x > hi + 0.05], 2 * 0.01 * hi, rtol=1e-6)
    np.testing.assert_allclose(slope[x < lo - 0.05], 2 * 0.01 * lo, rtol=1e-6)


def test_auto_turns_the_bend_off_with_few_budgets(synthetic_runs):
    spec = ModelSpec()
    assert spec.bend == "auto" and "z_bend" in spec.sites
    assert synthetic_runs.n_budgets >= BEND_MIN_BUDGETS
    assert spec.bend_scale(synthetic_runs) == spec.priors.bend_scale
    few = synthetic_runs.subset(synthetic_runs.budget < BEND_MIN_BUDGETS - 1)
    assert spec.bend_scale(few) < 1e-5
    assert ModelSpec(bend="on").bend_scale(few) == spec.priors.bend_scale
    assert "z_bend" not in ModelSpec(bend="none").sites
    assert ModelSpec(law="compute_only").bend_scale(synthetic_runs) < 1e-5  # a curve in C already
    with pytest.raises(ValueError, match="bend must be one of"):
        ModelSpec(bend="yes")


def test_predictions_carry_the_bend_and_allocation_does_not_move(synthetic_runs):
    post = fit_quietly(synthetic_runs, extrapolation="none", seed=3)
    assert "kappa" in post.params and "kappa" in post.summary().index
    C = np.array([1e22, 1e23])
    N = np.sqrt(C / (6 * 20))
    law_only = law_log_loss(post, N, 20 * N)
    bend = bend_of(post, C)
    assert bend.shape == law_only.shape
    med = np.median(np.log(post.predict_draws(N, 20 * N)) - law_only - bend, axis=0)
    assert np.all(np.abs(med) < 0.01)  # what is left is zero-centred noise
    # the bend depends on C only: the compute-optimal split is the law's
    from bayesscale import allocation

    plain = allocation.allocate(post.law_params, C, law=post.law)
    alloc = post.allocate(C)
    np.testing.assert_allclose(alloc["N_opt"], plain.table["N_opt"], rtol=1e-9)


@pytest.mark.slow
def test_chinchilla_runs_bend_in_log_compute(chinchilla240):
    """Measured: the Chinchilla runs bend more in log C than the law allows (kappa < 0, clear of zero)."""
    post = fit_quietly(chinchilla240, extrapolation="none", seed=0, chains=2, warmup=500, draws=500)
    lo, hi = np.quantile(post.params["kappa"], [0.05, 0.95])
    assert hi < 0, (lo, hi)
