"""Backtests, calibrated extrapolation, simulation-based calibration (issue: calibrated extrapolation)."""

import warnings

import numpy as np
import pytest

import bayesscale as bs
from bayesscale.calibration import estimate_kappa
from bayesscale.cli import main
from bayesscale.model import Extrapolation
from bayesscale.sbc import simulation_based_calibration

from .conftest import SMALL


def test_estimate_kappa_recovers_known_scales():
    rng = np.random.default_rng(0)
    d = rng.uniform(0, 1.5, 4000)
    s = np.full_like(d, 0.004)
    e = rng.normal(0, np.sqrt(s**2 + 0.003**2 + 0.02**2 * d))
    k0, k1 = estimate_kappa(e, s, d)
    assert abs(k1 - 0.02) < 0.003 and abs(k0 - 0.003) < 0.002
    assert estimate_kappa(rng.normal(0, 0.004, 500), np.full(500, 0.004), d[:500])[1] < 0.003


def test_extrapolation_widens_only_beyond_the_data():
    x = Extrapolation(kappa0=0.001, kappa1=0.02, c_max=1e21)
    v = x.variance([1e20, 1e21, 1e22, 1e24])
    assert v[0] == v[1] == 0.0 and 0 < v[2] < v[3]
    np.testing.assert_allclose(v[3], 0.001**2 + 0.02**2 * 3)


def test_calibrated_posterior_has_wider_intervals_far_out(synthetic_runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        cal = bs.fit(synthetic_runs, **SMALL, seed=4, progress=False)
        plain = bs.fit(synthetic_runs, **SMALL, seed=4, progress=False, extrapolation="none")
    assert cal.extrapolation is not None and cal.extrapolation.n_points >= 5
    assert plain.extrapolation is None
    np.testing.assert_array_equal(cal.samples["alpha"], plain.samples["alpha"])  # same posterior draws
    inside = [cal.predict(1e9, 1e10), plain.predict(1e9, 1e10)]
    far = [cal.predict(5e10, 1e12), plain.predict(5e10, 1e12)]
    width = lambda df: float(df.loss_hi.iloc[0] - df.loss_lo.iloc[0])  # noqa: E731
    assert width(inside[0]) == pytest.approx(width(inside[1]), rel=1e-9)
    if cal.extrapolation.kappa1 > 0:
        assert width(far[0]) > width(far[1])
    a_cal, a_plain = cal.allocate([1e24]), plain.allocate([1e24])
    assert a_cal.N_opt.iloc[0] == a_plain.N_opt.iloc[0]  # the decision uses the law
    assert a_cal.loss_hi.iloc[0] - a_cal.loss_lo.iloc[0] >= a_plain.loss_hi.iloc[0] - a_plain.loss_lo.iloc[0]


def test_backtest_modes_and_scores(synthetic_runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        res = bs.backtest(synthetic_runs, holdout="largest_budget", **SMALL, progress=False)
        rolling = bs.backtest(synthetic_runs, holdout="leave_one_budget_out", compare_allocation=False, **SMALL,
                              progress=False)
        thresh = bs.backtest(synthetic_runs, holdout=3e20, compare_allocation=False, **SMALL, progress=False)
    t = res.table
    assert list(t.index) == ["budget 1e+21", "overall"]
    for col in ("coverage_50", "coverage_80", "coverage_90", "mlpd", "crps", "bias", "extrapolation_dex"):
        assert col in t.columns
    assert 0 <= t.loc["overall", "coverage_50"] <= t.loc["overall", "coverage_90"] <= 1
    assert t.loc["overall", "n_runs"] == 9 and t.loc["overall", "extrapolation_dex"] == pytest.approx(np.log10(1e21 / 3e20), abs=1e-6)
    assert len(res.allocation) == 1 and 0.5 < res.allocation.ratio.iloc[0] < 2
    assert len(rolling.table) == 5  # budgets 4..7 of 7, plus overall
    assert thresh.table.loc["overall", "n_runs"] == 18  # 3e20 and 1e21
    with pytest.raises(ValueError, match="holdout"):
        bs.backtest(synthetic_runs, holdout="newest")


def test_score_predictions_are_right_on_known_distributions():
    from bayesscale.backtest import score_predictions

    rng = np.random.default_rng(1)
    y = np.exp(rng.normal(0, 0.1, 2000))
    draws = np.exp(rng.normal(0, 0.1, (4000, 1)) * np.ones((1, 2000)))
    sc = score_predictions(draws, y)
    assert abs(sc["covered_50"].mean() - 0.5) < 0.04 and abs(sc["covered_90"].mean() - 0.9) < 0.03
    # lpd of N(0, 0.1) at its own draws: -log(0.1 sqrt(2 pi e)) = 0.884
    assert abs(sc["lpd"].mean() - 0.884) < 0.05
    # CRPS of N(0, s) against its own draws: s / sqrt(pi) = 0.0564
    assert abs(sc["crps"].mean() - 0.0564) < 0.004


def test_backtest_cli(tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    bs.simulate_runs(seed=6, as_frame=True).to_csv(csv, index=False)
    code = main(["backtest", str(csv), "--chains", "2", "--warmup", "300", "--draws", "300", "--no-progress",
                 "--out", str(tmp_path / "bt")])
    out = capsys.readouterr().out
    assert code in (0, 1) and "coverage_90" in out and "overall" in out
    assert (tmp_path / "bt" / "backtest.png").stat().st_size > 10_000
    assert main(["backtest", str(csv), "--holdout", "sideways"]) == 2


def test_sbc_small_version(tmp_path):
    """A small SBC: 30 prior data sets. The full >= 200 run is benchmarks/calibration.py."""
    res = simulation_based_calibration(30, chains=2, warmup=300, draws=300, seed=1, progress=False)
    assert res.ranks.shape == (30, 6)
    assert res.ranks.to_numpy().min() >= 0 and res.ranks.to_numpy().max() <= res.n_ranks
    uni = res.uniformity(bins=5)
    assert (uni.p_value > 0.001).all(), uni
    cov = res.coverage()
    assert (cov.coverage_90 >= 0.7).all() and (cov.coverage_50 <= 0.8).all(), cov
    from matplotlib.image import imread

    from bayesscale.plots import save_figure, sbc_ranks

    img = imread(save_figure(sbc_ranks(res), tmp_path / "sbc.png"))
    assert img.shape[1] > 1000 and (img[..., :3] < 0.9).any(axis=-1).mean() > 0.05

