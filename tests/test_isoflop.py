"""Tests of bayesscale.isoflop: Approach 2 on synthetic isoFLOP sweeps."""

import numpy as np
import pandas as pd
import pytest

from bayesscale import isoflop as iso
from bayesscale import laws
from bayesscale.data import load_runs
from bayesscale.simulate import isoflop_design

TRUTH = {"E": 1.8169, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
TRUE_A = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"])
BUDGETS = (1e18, 3e18, 1e19, 3e19, 1e20, 3e20, 1e21)


def sweep(seed=0, sigma=0.005, small_budget=True, budgets=BUDGETS):
    """Nine sizes per budget, log-normal noise, and a budget of two runs at 1e22."""
    N, D = isoflop_design(budgets, sizes_per_budget=9)
    rng = np.random.default_rng(seed)
    loss = laws.loss(TRUTH, N, D) * np.exp(sigma * rng.standard_normal(N.size))
    df = pd.DataFrame({"N": N, "D": D, "loss": loss, "budget": np.repeat(np.arange(len(budgets)), 9)})
    if small_budget:
        n2 = np.array([1e10, 2e10])
        d2 = 1e22 / (6 * n2)
        df = pd.concat([df, pd.DataFrame({"N": n2, "D": d2, "loss": laws.loss(TRUTH, n2, d2), "budget": 99})],
                       ignore_index=True)
    return load_runs(df)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_the_true_exponent(seed):
    res = iso.isoflop_analysis(sweep(seed), ci=0.95, draws=2000, seed=seed)
    e = res.exponent
    assert e.loc["a", "lo95"] < TRUE_A < e.loc["a", "hi95"]
    assert e.loc["a", "hi95"] - e.loc["a", "lo95"] < 0.15
    assert e.loc["b", "median"] == pytest.approx(1 - e.loc["a", "median"])
    assert res.frac_exponent_draws > 0.95


def test_profiles_and_skipped_budget():
    res = iso.isoflop_analysis(sweep(), draws=1000)
    prof = res.profiles
    assert len(prof) == len(BUDGETS)
    np.testing.assert_allclose(prof["C"], BUDGETS, rtol=1e-10)
    assert list(prof["n_runs"]) == [9] * len(BUDGETS)
    for name in ("N_opt", "D_opt", "loss_min"):
        assert np.all(prof[f"{name}_lo80"] <= prof[name]) and np.all(prof[name] <= prof[f"{name}_hi80"])
    np.testing.assert_allclose(6 * prof["N_opt"] * prof["D_opt"], prof["C"], rtol=1e-10)
    # the profile minima are near the law's compute-optimal sizes and losses
    N_true, D_true = laws.optimal_allocation(TRUTH, prof["C"].to_numpy())
    assert np.all(np.abs(np.log(prof["N_opt"] / N_true)) < 0.25)
    np.testing.assert_allclose(prof["loss_min"], laws.loss(TRUTH, N_true, D_true), rtol=0.01)
    assert np.all(prof["frac_no_minimum"] < 0.05)
    # the two-run budget is reported, with its size and a reason
    assert len(res.skipped) == 1
    row = res.skipped.iloc[0]
    assert row["n_runs"] == 2 and "only 2 runs" in row["reason"]
    assert row["C"] == pytest.approx(1e22)
    assert res.draws["log_N_opt"].shape == (1000, len(BUDGETS))
    assert res.draws["a"].shape == (1000,)
    assert "7 budgets used, 1 skipped" in repr(res)


def test_profile_loss_draws_follow_the_runs():
    runs = sweep(sigma=0.0, small_budget=False)
    res = iso.isoflop_analysis(runs, draws=500)
    curves = res.profile_loss(runs.N[:9])
    assert curves.shape == (500, len(BUDGETS), 9)
    # a quadratic in log N follows the noiseless U closely
    np.testing.assert_allclose(np.median(curves[:, 0, :], axis=0), runs.loss[:9], rtol=0.01)


def test_same_seed_same_result_and_tol_dex_regrouping():
    runs = sweep()
    r1 = iso.isoflop_analysis(runs, draws=300, seed=3)
    r2 = iso.isoflop_analysis(runs, draws=300, seed=3)
    pd.testing.assert_frame_equal(r1.exponent, r2.exponent)
    # regrouping by compute finds the same budgets (the 1e22 pair is one group)
    r3 = iso.isoflop_analysis(runs, draws=300, seed=3, tol_dex=0.05)
    np.testing.assert_allclose(r3.profiles["C"], r1.profiles["C"])
    assert list(r3.skipped["n_runs"]) == [2]


def test_budget_without_a_minimum_inside_the_sizes_is_skipped_or_flagged():
    # at one budget, sizes far below the optimum: the profile falls monotonically
    runs = sweep(small_budget=False)
    df = runs.to_frame().reset_index(drop=True)
    n = np.geomspace(1e6, 3e7, 7)
    d = 3e21 / (6 * n)
    mono = pd.DataFrame({"N": n, "D": d, "C": 3e21, "loss": laws.loss(TRUTH, n, d), "budget": 50})
    runs2 = load_runs(pd.concat([df, mono], ignore_index=True))
    res = iso.isoflop_analysis(runs2, draws=1000, ci=0.95)
    assert len(res.profiles) == len(BUDGETS)
    assert len(res.skipped) == 1 and "extrapolation" in res.skipped["reason"].iloc[0]
    assert res.exponent.loc["a", "lo95"] < TRUE_A < res.exponent.loc["a", "hi95"]
    # kept on request, it is flagged
    kept = iso.isoflop_analysis(runs2, draws=1000, max_outside=None)
    row = kept.profiles.iloc[-1]
    assert row["n_runs"] == 7 and row["C"] == pytest.approx(3e21)
    assert row["frac_no_minimum"] + (1 - row["frac_no_minimum"]) * row["frac_outside"] > 0.5
    assert len(kept.skipped) == 0


def test_too_few_sizes_is_skipped():
    runs = sweep(small_budget=False)
    df = runs.to_frame().reset_index(drop=True)
    n = np.array([1e9, 1e9, 1e9, 2e9, 2e9])
    d = 3e21 / (6 * n)
    extra = pd.DataFrame({"N": n, "D": d, "C": 3e21, "loss": laws.loss(TRUTH, n, d), "budget": 60})
    res = iso.isoflop_analysis(load_runs(pd.concat([df, extra], ignore_index=True)), draws=200)
    assert len(res.skipped) == 1 and "distinct model size" in res.skipped["reason"].iloc[0]


def test_compare_approaches():
    res = iso.isoflop_analysis(sweep(), draws=1000)
    rng = np.random.default_rng(0)
    params = {k: v * np.exp(0.01 * rng.standard_normal(500)) for k, v in TRUTH.items()}
    tab = iso.compare_approaches(res, params, ci=0.9)
    assert list(tab.columns) == ["quantity", "C", "isoflop", "isoflop_lo90", "isoflop_hi90", "parametric",
                                 "parametric_lo90", "parametric_hi90", "overlap"]
    assert list(tab["quantity"]) == ["a", "b"] + ["N_opt"] * len(BUDGETS)
    assert tab.loc[0, "parametric"] == pytest.approx(TRUE_A, abs=0.01)
    assert bool(tab.loc[0, "overlap"])
    assert tab.loc[0, "isoflop"] == pytest.approx(np.nanmedian(res.draws["a"]))
    with pytest.raises(ValueError, match="IsoFLOPResult"):
        iso.compare_approaches(res.profiles, params)


def test_bad_inputs():
    runs = sweep()
    with pytest.raises(ValueError, match="min_runs"):
        iso.isoflop_analysis(runs, min_runs=3)
    with pytest.raises(ValueError, match="draws"):
        iso.isoflop_analysis(runs, draws=1)
    with pytest.raises(ValueError, match="ci must be a probability"):
        iso.isoflop_analysis(runs, ci=1.0)
    with pytest.raises(ValueError, match="tol_dex"):
        iso.isoflop_analysis(runs, tol_dex=-1.0)
    with pytest.raises(ValueError, match="max_outside"):
        iso.isoflop_analysis(runs, max_outside=2.0)
    with pytest.raises(ValueError, match="at least two usable budgets"):
        iso.isoflop_analysis(sweep(budgets=BUDGETS[:1]))


def test_compare_approaches_with_approach1_from_curves():
    import bayesscale as bs

    res = iso.isoflop_analysis(sweep(), draws=500)
    rng = np.random.default_rng(0)
    params = {k: v * np.exp(0.01 * rng.standard_normal(300)) for k, v in TRUTH.items()}
    curves = bs.load_curves(bs.simulate_curves(seed=0), warmup=0)
    a1 = bs.approach1(curves, ci=0.9)
    tab = iso.compare_approaches(res, params, ci=0.9, approach1=a1)
    base = iso.compare_approaches(res, params, ci=0.9)
    assert list(tab.columns) == list(base.columns) + ["approach1", "approach1_lo90", "approach1_hi90", "overlap_1_3"]
    pd.testing.assert_frame_equal(tab[base.columns], base)  # Approaches 2 and 3 unchanged
    assert tab.loc[0, "approach1"] == pytest.approx(np.median(a1.draws["a"]))
    assert tab.loc[1, "approach1"] == pytest.approx(np.median(a1.draws["b"]))
    n1 = tab[tab["quantity"] == "N_opt"]
    np.testing.assert_allclose(n1["approach1"], np.median(a1.predict(n1["C"].to_numpy())["N_opt"], axis=0))
    assert np.all((n1["approach1_lo90"] <= n1["approach1"]) & (n1["approach1"] <= n1["approach1_hi90"]))
    # given the curves themselves, Approach 1 is computed with its defaults
    tab2 = iso.compare_approaches(res, params, ci=0.9, approach1=curves)
    np.testing.assert_allclose(tab2["approach1"], tab["approach1"], rtol=0.05)
    with pytest.raises(ValueError, match="Approach1Result"):
        iso.compare_approaches(res, params, approach1=a1.points)
