"""Backtests, the extrapolation-error model (discrepancy), simulation-based calibration (issues 9 and 12)."""

import dataclasses
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import bayesscale as bs
from bayesscale.backtest import summarize
from bayesscale.calibration import fold_tilt, horizon_folds, isoflop_vertex
from bayesscale.cli import main
from bayesscale.discrepancy import (MIN_FOLDS, Discrepancy, fit_discrepancy, grid_posterior, joint_draws,
                                    tilt_draws, tilt_posterior)
from bayesscale.sbc import simulation_based_calibration

from .conftest import SMALL


def _facts(n_origins, rng, rw=0.02, slope=0.0, sd=0.005, ok=None):
    """Fold facts simulated from the discrepancy model itself (horizons 1-3, 0.5 decades apart)."""
    rows, cov = [], {}
    for o in range(n_origins):
        d = np.array([0.5, 1.0, 1.5])
        K = rw**2 * np.minimum.outer(d, d) + slope**2 * np.outer(d, d) + sd**2 * np.eye(3)
        e = rng.multivariate_normal(np.zeros(3), K)
        for h in range(3):
            rows.append({"origin": f"o{o}", "budget_C": 10 ** (19 + o + h), "horizon": h + 1, "d": d[h], "n_runs": 9,
                         "ok": True if ok is None else ok[o], "problem": "" if ok is None or ok[o] else "R-hat 1.3 > 1.05",
                         "loss_error": e[h], "loss_sd": sd, "n_opt_error": e[h] * 10, "n_opt_sd": sd * 10,
                         "n_opt_reference": "isoflop vertex"})
        cov[("loss", f"o{o}")] = sd**2 * np.eye(3)
        cov[("n_opt", f"o{o}")] = (sd * 10) ** 2 * np.eye(3)
    return pd.DataFrame(rows), cov


def test_discrepancy_posterior_recovers_the_scale_and_is_fast():
    rng = np.random.default_rng(0)
    folds, cov = _facts(40, rng, rw=0.02)
    t0 = time.perf_counter()
    disc = fit_discrepancy(folds, cov, 1e21, seed=0)
    assert time.perf_counter() - t0 < 1.0
    assert disc.calibrated("loss") and disc.calibrated("n_opt")
    sd1 = disc.sd(1e22)[0]  # truth: sqrt(0.02^2 * 1) * sqrt(df/(df-2)) averaged over the mixture
    assert 0.012 < sd1 < 0.045, sd1
    gp = grid_posterior([(np.zeros(1), np.ones(1), np.eye(1) * 1e-6)], scale=0.05)
    assert gp.slab.shape == (gp.rw.size, gp.slope.size, 1) and abs(gp.slab.sum() - 1) < 1e-9


def test_pooled_folds_calibrate_groups_with_too_few_folds_of_their_own():
    """Three related data sets with one origin (3 folds) each: alone each is refused; pooled, each is
    calibrated on all 9 folds, and its N_opt error stays its own."""
    rng = np.random.default_rng(3)
    sets = [_facts(1, rng, rw=0.03) for _ in range(3)]
    alone = fit_discrepancy(*sets[0], 1e21)
    assert not alone.calibrated("loss") and "3 usable fold(s)" in alone.reasons["loss"]
    pooled = fit_discrepancy(*sets[0], 1e21, pooled=sets[1:])
    assert pooled.calibrated("loss") and "calibrated on 9 held-out budgets (3 of this data set's own" \
        in pooled.reasons["loss"]
    assert not pooled.calibrated("n_opt")  # N_opt is not pooled: 3 folds of its own
    everything = fit_discrepancy(pd.concat([f.assign(origin=f.origin + f"/{i}") for i, (f, _) in enumerate(sets)],
                                           ignore_index=True),
                                 {(q, f"{o}/{i}"): v for i, (_, c) in enumerate(sets) for (q, o), v in c.items()},
                                 1e21)
    np.testing.assert_allclose(pooled.draws["loss_rw"], everything.draws["loss_rw"])  # the same 9 paths
    # a data set with enough folds of its own keeps them: the related ones are not used
    enough = _facts(2, rng, rw=0.03)
    own = fit_discrepancy(*enough, 1e21)
    with_others = fit_discrepancy(*enough, 1e21, pooled=sets)
    np.testing.assert_array_equal(own.draws["loss_rw"], with_others.draws["loss_rw"])
    assert "related" not in with_others.reasons["loss"]


def test_spike_and_slab_folds_inside_their_own_uncertainty_add_almost_nothing():
    """Well-specified folds (errors within the fold fits' sds) leave the law's predictive nearly alone;
    folds that miss by several sds turn the error on."""
    rng = np.random.default_rng(7)
    calm, cov = _facts(4, rng, rw=0.0, slope=0.0, sd=0.005)
    wild, cov_w = _facts(4, rng, rw=0.03, slope=0.0, sd=0.005)
    d_calm, d_wild = fit_discrepancy(calm, cov, 1e21), fit_discrepancy(wild, cov_w, 1e21)
    assert d_calm.to_dict()["loss_p_zero"] > 0.6 and d_wild.to_dict()["loss_p_zero"] < 0.05
    assert d_calm.sd(1e22)[0] < 0.5 * d_wild.sd(1e22)[0]
    assert "posterior probability" in d_calm.reasons["loss"]


def _anchor_rows(d, err, sd=0.02):
    return pd.DataFrame({"origin": "in-sample", "budget_C": 1e21 * 10.0 ** np.asarray(d), "horizon": 0, "d": d,
                         "n_runs": 9, "ok": True, "problem": "", "loss_error": np.nan, "loss_sd": np.nan,
                         "n_opt_error": err, "n_opt_sd": sd, "n_opt_reference": "isoflop vertex"})


def test_n_opt_misplacement_learned_from_in_sample_vertices_drift_included():
    """The law misplaces the empirical optimum by a drift in log C (as on Marin and Farseer): the anchored
    model finds the level at c_max and the trend, carries them beyond the data, and applies inside it too."""
    rng = np.random.default_rng(8)
    folds, cov = _facts(3, rng)
    d = np.linspace(-2.0, -0.1, 8)
    truth = lambda x: 0.15 + 0.2 * x  # noqa: E731
    anchors = _anchor_rows(d, truth(d) + rng.normal(0, 0.03, d.size))
    disc = fit_discrepancy(pd.concat([anchors, folds], ignore_index=True), cov, 1e21)
    assert disc.n_folds == len(folds)  # anchors are not folds
    assert disc.anchored("n_opt") and not disc.anchored("loss") and disc.calibrated("n_opt")
    assert "misplacement of the empirical optimum at 8 IsoFLOP-shaped" in disc.reasons["n_opt"]
    lvl, tr = np.median(disc.draws["n_opt_level"]), np.median(disc.draws["n_opt_trend"])
    assert 0.08 < lvl < 0.22 and 0.1 < tr < 0.3, (lvl, tr)
    C = 1e21 * 10.0 ** np.array([-1.0, 0.0, 0.5, 1.0, 0.5])
    x = joint_draws(disc, C, 4000, seed=3, quantity="n_opt")
    lo, hi = np.quantile(x, [0.05, 0.95], axis=0)
    assert np.all((lo < truth(np.log10(C / 1e21))) & (truth(np.log10(C / 1e21)) < hi))
    assert np.all(np.diff(hi[:4] - lo[:4])[1:] > 0)  # wider with distance beyond the data
    np.testing.assert_array_equal(x[:, 2], x[:, 4])  # one misplacement per budget
    alone = joint_draws(disc, C[2:3], 4000, seed=3, quantity="n_opt")
    np.testing.assert_array_equal(alone[:, 0], x[:, 2])  # independent of the request
    between = joint_draws(disc, [1e21 * 10 ** -0.55], 4000, seed=3, quantity="n_opt")  # between two anchors
    assert abs(np.median(between) - truth(-0.55)) < 0.06
    assert np.all(joint_draws(disc, [1e19], 100, quantity="loss") == 0)  # the loss has no in-sample error
    assert Discrepancy.from_json(disc.to_json()) == disc
    assert disc.to_dict()["n_opt_level_median"] == pytest.approx(lvl)


def test_n_opt_anchors_conditioned_draw_by_draw_count_the_law_uncertainty_once():
    """With the law's draws at the anchors, each draw's misplacement corrects that draw: where the vertices pin
    the optimum down, law + misplacement is as tight as the vertices, not the law's band plus a second one."""
    rng = np.random.default_rng(10)
    d, S = np.linspace(-2.0, -0.1, 8), 2000
    c, a = rng.normal(0, 0.15, S), rng.normal(0, 0.1, S)  # the law's log N_opt path per draw: c + a x
    law = c[None, :] + a[None, :] * d[:, None]             # (anchors, draws)
    rows = _anchor_rows(d, rng.normal(0, 0.02, d.size) - np.median(law, axis=1), sd=0.02)  # vertices near 0
    disc = fit_discrepancy(rows, {}, 1e21, anchor_law=law)
    assert disc.draws["n_opt_level"].size == S and "n_opt_aligned" in disc.draws
    assert Discrepancy.from_json(disc.to_json()) == disc
    x = np.array([-1.0, 0.0, 0.5])
    C = 1e21 * 10.0**x
    total = c[:, None] + a[:, None] * x[None, :] + joint_draws(disc, C, S, seed=2, quantity="n_opt")
    assert np.all(np.abs(np.median(total, axis=0)) < 0.05)
    assert np.all(total.std(axis=0) < 0.5 * (c[:, None] + a[:, None] * x[None, :]).std(axis=0))
    assert total[:, 2].std() > total[:, 1].std()  # wider beyond the data
    # the same anchors without the law's draws: the misplacement cannot undo them, the band stays wide
    loose = fit_discrepancy(rows, {}, 1e21)
    total_loose = c[:, None] + a[:, None] * x[None, :] + joint_draws(loose, C, S, seed=2, quantity="n_opt")
    assert np.all(total_loose.std(axis=0) > 1.5 * total.std(axis=0))
    # a request of another size cannot be aligned: the draws are picked at random, not failed
    assert joint_draws(disc, C, 500, seed=2, quantity="n_opt").shape == (500, 3)


def test_n_opt_anchors_without_drift_give_a_centred_band():
    rng = np.random.default_rng(9)
    d = np.linspace(-2.0, -0.1, 6)
    disc = fit_discrepancy(_anchor_rows(d, rng.normal(0, 0.1, 6)), {}, 1e21)
    x = joint_draws(disc, [1e20, 1e21], 4000, quantity="n_opt")
    assert abs(np.median(x[:, 0])) < 0.1 and 0.03 < x[:, 0].std() < 0.3
    assert 0.03 < np.median(disc.draws["n_opt_nugget"]) < 0.3


def test_too_few_folds_refuses_falls_back_to_the_prior_and_the_verdict_says_so(synthetic_post):
    rng = np.random.default_rng(1)
    folds, cov = _facts(1, rng)  # 3 folds < MIN_FOLDS
    assert len(folds) < MIN_FOLDS
    disc = fit_discrepancy(folds, cov, float(synthetic_post.runs.C.max()))
    assert not disc.calibrated("loss") and "not calibrated" in disc.reasons["loss"]
    assert disc.status["loss"] == "prior" and "prior" in disc.reasons["loss"]
    # refused, the error is its prior: present beyond the data, zero at the largest run
    assert np.std(joint_draws(disc, [disc.c_max * 100], 2000)) > 0.01
    assert np.all(joint_draws(disc, [disc.c_max], 100) == 0)
    post = dataclasses.replace(synthetic_post, discrepancy=disc, extrapolation_mode="calibrated")
    assert any("not calibrated" in n for n in post.check().notes)
    plain = dataclasses.replace(synthetic_post, discrepancy=None, extrapolation_mode="none")
    far = post.predict(5e10, 1e12)  # about 1.5 decades beyond the data
    base = plain.predict(5e10, 1e12)
    assert (far.loss_hi80 - far.loss_lo80).iloc[0] > (base.loss_hi80 - base.loss_lo80).iloc[0]


def test_a_failed_fold_is_reported_and_left_out(synthetic_post):
    rng = np.random.default_rng(2)
    folds, cov = _facts(3, rng, ok=[True, False, True])
    disc = fit_discrepancy(folds, cov, float(synthetic_post.runs.C.max()))
    assert disc.n_folds == 6 and len(disc.failed_folds) == 3
    assert "R-hat" in disc.failed_folds[0] and "failed their checks" in disc.reasons["loss"]
    post = dataclasses.replace(synthetic_post, discrepancy=disc, extrapolation_mode="calibrated")
    assert sum("failed its checks" in n for n in post.check().notes) == 3
    # a failed fold's numbers do not move the posterior
    folds2 = folds.copy()
    folds2.loc[~folds2.ok, "loss_error"] = 5.0
    disc2 = fit_discrepancy(folds2, cov, float(synthetic_post.runs.C.max()))
    np.testing.assert_array_equal(disc.draws["loss_rw"], disc2.draws["loss_rw"])


def test_joint_draws_shared_per_budget_continuous_and_independent_of_the_request():
    rng = np.random.default_rng(3)
    folds, cov = _facts(6, rng, rw=0.03, slope=0.01)
    disc = fit_discrepancy(folds, cov, 1e21)
    one = joint_draws(disc, [1e24], 2000, seed=5)
    many = joint_draws(disc, [3e21, 1e24, 1e26, 1e24], 2000, seed=5)
    np.testing.assert_array_equal(one[:, 0], many[:, 1])  # same band whatever else is asked
    np.testing.assert_array_equal(many[:, 1], many[:, 3])  # runs at one budget share the error
    at = joint_draws(disc, [1e20, 1e21, 1e21 * (1 + 1e-9), 1.02e21], 2000, seed=5)
    assert np.all(at[:, :2] == 0)  # zero inside the data and at c_max
    assert np.abs(at[:, 2]).max() < 1e-4 and np.abs(at[:, 3]).std() < 0.2 * np.abs(many[:, 0]).std()
    r = np.corrcoef(many[:, 0], many[:, 1])[0, 1]
    assert 0.2 < r < 0.99  # correlated across budgets, not identical


def test_predictions_share_the_error_at_one_budget_and_are_continuous(synthetic_post):
    post = synthetic_post
    assert post.extrapolation is not None and post.extrapolation.calibrated("loss")
    c_max = float(post.runs.C.max())
    N = np.array([5e10, 8e10])
    D = 1e25 / (6 * N)
    draws = np.log(post.predict_draws(N, D))
    alone = np.log(post.predict_draws(N[:1], D[:1]))
    np.testing.assert_array_equal(alone[:, 0], draws[:, 0])
    # two runs at one far budget share its extrapolation error: strongly correlated
    plain = dataclasses.replace(post, extrapolation_mode="none")
    r_cal = np.corrcoef(draws.T)[0, 1]
    r_plain = np.corrcoef(np.log(plain.predict_draws(N, D)).T)[0, 1]
    assert r_cal > r_plain + 0.1
    # continuity across c_max: no step; just past the largest run the error is ~0, so the calibrated
    # and the plain predictions agree there, and the gap grows smoothly with distance
    n0 = 3e9
    gaps = []
    for f in (0.9999, 1.0001, 1.01, 10.0):
        d = c_max * f / (6 * n0)
        gaps.append(float(post.predict(n0, d).loss_hi80.iloc[0] - plain.predict(n0, d).loss_hi80.iloc[0]))
    assert gaps[0] == 0 and abs(gaps[1]) < 1e-4 and abs(gaps[2]) < abs(gaps[3]) and gaps[3] > 0


def test_a_size_beyond_the_data_extrapolates_even_at_a_compute_inside_it(synthetic_post):
    """farseer/topN-like: a model larger than any fitted one, at a compute inside the data."""
    post = synthetic_post
    plain = dataclasses.replace(post, extrapolation_mode="none")
    r = post.runs
    C = float(np.median(r.C))
    big, inside = float(r.N.max()) * 10**0.5, float(np.median(r.N))
    for N, wider in ((big, True), (inside, False)):
        a, b = post.predict(N, C / (6 * N)).iloc[0], plain.predict(N, C / (6 * N)).iloc[0]
        w_cal, w_plain = a.loss_hi80 - a.loss_lo80, b.loss_hi80 - b.loss_lo80
        assert (w_cal > w_plain * 1.02) if wider else (w_cal == w_plain), (N, w_cal, w_plain)


def test_allocation_bands_carry_the_n_opt_error(synthetic_post):
    post = synthetic_post
    plain = dataclasses.replace(post, extrapolation_mode="none")
    assert post.extrapolation.calibrated("n_opt")
    far_c, far_p = post.allocate([1e24]).iloc[0], plain.allocate([1e24]).iloc[0]
    assert far_c.N_opt_hi80 / far_c.N_opt_lo80 > far_p.N_opt_hi80 / far_p.N_opt_lo80
    assert far_c.tokens_per_param_hi80 / far_c.tokens_per_param_lo80 > far_p.tokens_per_param_hi80 / far_p.tokens_per_param_lo80
    inside_c, inside_p = post.allocate([1e20]).iloc[0], plain.allocate([1e20]).iloc[0]
    disc = post.extrapolation
    if disc.anchored("n_opt"):  # IsoFLOP-shaped budgets: the law's misplacement of the optimum, draw by draw
        assert "n_opt_aligned" in disc.draws and disc.draws["n_opt_level"].size == post.n_draws
        assert "conditioned on each posterior draw of the law" in disc.reasons["n_opt"]
        assert inside_c.N_opt_lo80 < inside_c.N_opt < inside_c.N_opt_hi80 and inside_c.N_opt != inside_p.N_opt
    else:
        assert inside_c.N_opt_lo80 == inside_p.N_opt_lo80 and inside_c.N_opt_hi80 == inside_p.N_opt_hi80
    assert inside_c.loss_lo80 == inside_p.loss_lo80 and inside_c.loss_hi80 == inside_p.loss_hi80
    a = post.allocate([1e22, 1e24]).iloc[1]
    assert a.N_opt_lo80 == far_c.N_opt_lo80 and a.loss_hi80 == far_c.loss_hi80


def test_fold_tilt_is_robust_and_counts_the_fold_fits_own_uncertainty():
    rng = np.random.default_rng(0)
    x = np.linspace(0.0, 4.0, 9)
    err = 0.003 + 0.004 * (x - 2) + rng.normal(0, 0.0005, x.size)
    sure = np.zeros((100, x.size))  # a fold fit with no uncertainty about the law's slope
    tilt, sd = fold_tilt(x, err, sure)
    assert tilt == pytest.approx(0.004, abs=0.0005) and 0 < sd < 0.001
    bad = err.copy()
    bad[0] += 0.2  # one wild run barely moves it (Theil-Sen)
    assert fold_tilt(x, bad, sure)[0] == pytest.approx(tilt, abs=0.0005)
    unsure = rng.normal(0, 1, (100, 1)) * 0.01 * x[None, :]  # law slopes spread by 0.01 over the fold's draws
    assert fold_tilt(x, err, unsure)[1] > 0.008
    assert np.isnan(fold_tilt(x[:4], err[:4], sure[:, :4])[0])           # too few runs
    assert np.isnan(fold_tilt(x / 10, err, sure)[0])                     # too narrow a spread in tokens per parameter


def test_tilt_posterior_learns_a_systematic_tilt_and_keeps_zero_for_none():
    rng = np.random.default_rng(1)
    sds = np.full(9, 0.001)
    found = tilt_posterior(0.004 + rng.normal(0, 0.0008, 9), sds, rng=rng)
    lo, hi = np.quantile(found["tilt_mean"], [0.05, 0.95])
    assert lo < 0.004 < hi and lo > 0.002 and found["tilt_p_zero"][0] < 0.01
    # tilts no larger than their own noise: the spike (no tilt) wins, as for the level error
    none = tilt_posterior(rng.normal(0, 0.001, 9), sds, rng=rng)
    lo, hi = np.quantile(none["tilt_mean"], [0.05, 0.95])
    assert none["tilt_p_zero"][0] > 0.6 and np.mean(none["tilt_mean"] == 0) > 0.5 and lo <= 0 <= hi and hi - lo < 0.004
    # three copies of each fold at weight 1/3 say what one copy says
    t = rng.normal(0.002, 0.001, 4)
    one = tilt_posterior(t, sds[:4], rng=np.random.default_rng(2))
    three = tilt_posterior(np.repeat(t, 3), np.repeat(sds[:4], 3), weight=1 / 3, rng=np.random.default_rng(2))
    assert np.median(three["tilt_mean"]) == pytest.approx(np.median(one["tilt_mean"]), abs=2e-4)


def test_tilt_turns_predictions_beyond_the_data_about_where_the_runs_sit(synthetic_post):
    post = synthetic_post
    disc = post.extrapolation
    flat = dataclasses.replace(post, discrepancy=dataclasses.replace(
        disc, draws={k: v for k, v in disc.draws.items() if not k.startswith("tilt_")}))
    n = disc.draws["loss_rw"].size
    tilted = dataclasses.replace(post, discrepancy=dataclasses.replace(
        disc, draws=dict(flat.discrepancy.draws, tilt_mean=np.full(n, 0.01), tilt_spread=np.zeros(n))))
    assert tilted.extrapolation.has_tilt and not flat.extrapolation.has_tilt
    C = 1e25
    N = np.array([2e10, 6e10, 2e11])
    D = C / (6 * N)
    gap = np.log(tilted.predict_draws(N, D)) - np.log(flat.predict_draws(N, D))
    x = np.log(D / N)
    assert np.allclose(gap, gap[:1], atol=1e-12)  # one tilt per draw here (no spread): a fixed line in x
    slope = np.polyfit(x, gap[0], 1)
    assert slope[0] == pytest.approx(0.01, rel=1e-6)  # full size far beyond the data (ramp)
    # request-independent, zero at c_max, and the allocation (the optimum's loss) untouched
    np.testing.assert_array_equal(np.log(tilted.predict_draws(N[:1], D[:1]))[:, 0],
                                  np.log(tilted.predict_draws(N, D))[:, 0])
    c_max = float(post.runs.C.max())
    top = post.runs.N[post.runs.C > c_max / 2]  # sizes of the largest budget: nothing lies beyond the data there
    at = np.log(tilted.predict_draws(top, c_max / (6 * top))) - np.log(flat.predict_draws(top, c_max / (6 * top)))
    assert np.all(at == 0)
    pd.testing.assert_frame_equal(tilted.allocate([1e24]), flat.allocate([1e24]))
    assert tilt_draws(None, [1e24], 5).shape == (5, 1)


def test_horizon_folds_and_isoflop_vertex(synthetic_runs):
    folds = horizon_folds(synthetic_runs)
    assert [len(t) for _, _, t in folds] == [3, 3, 2, 1][-len(folds):] and len(folds) == 4
    x = np.linspace(np.log(1e8), np.log(1e10), 9)
    v, var = isoflop_vertex(np.exp(x), np.exp(0.05 * (x - np.log(1e9)) ** 2 + 0.7))
    assert v == pytest.approx(np.log(1e9), abs=1e-6) and var >= 0
    assert np.isnan(isoflop_vertex(np.exp(x), np.exp(-0.05 * x))[0])  # no minimum: not IsoFLOP-shaped


def test_horizon_folds_move_back_to_swept_budgets():
    # Chinchilla-like: some budgets hold one or two runs; a fold that holds out such a budget first measures
    # little, so the origins are the last six whose next budget was swept, the latest others filling up
    counts = [8, 8, 8, 8, 8, 1, 8, 2, 8, 1, 2, 1]
    rows = []
    for b, k in enumerate(counts):
        C = 1e18 * 3.0**b
        for N in np.geomspace(1e7, 1e9, k) * 3.0 ** (b / 2) if k > 1 else [3e7 * 3.0 ** (b / 2)]:
            D = C / (6 * N)
            rows.append({"N": N, "D": D, "loss": 1.8 + 400 / N**0.34 + 400 / D**0.28, "budget": f"b{b:02d}"})
    runs = bs.load_runs(pd.DataFrame(rows))
    folds = horizon_folds(runs)
    first = [int(tests[0][1].sum()) for _, _, tests in folds]
    assert first == [8, 8, 8, 8, 2, 1]  # the four swept origins past the first three budgets, then the latest two
    assert [len(t) for _, _, t in folds] == [3, 3, 3, 3, 2, 1]
    cuts = [train.sum() for _, train, _ in folds]
    assert cuts == sorted(cuts)  # in order of compute


def test_calibration_is_explicit_and_travels_in_the_file(synthetic_runs, synthetic_post, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        plain = bs.fit(synthetic_runs, **SMALL, seed=2, progress=False, extrapolation="none")
    assert plain.extrapolation is None and plain.discrepancy is None
    plain.predict(5e10, 1e12)
    plain.to_netcdf(tmp_path / "p.nc")
    assert plain.discrepancy is None  # nothing computed behind the user's back
    np.testing.assert_array_equal(plain.samples["alpha"], synthetic_post.samples["alpha"])
    back = bs.load_posterior(_write(synthetic_post, tmp_path / "c.nc"))
    assert back.discrepancy is not None and back.extrapolation.calibrated("loss")
    pd.testing.assert_frame_equal(back.allocate([1e24]), synthetic_post.allocate([1e24]))
    pd.testing.assert_frame_equal(back.predict(5e10, 1e12), synthetic_post.predict(5e10, 1e12))


def _write(post, path):
    post.to_netcdf(path)
    return path


def test_coverage_is_counted_by_budget():
    pts = pd.DataFrame({"fold": "f", "budget": [0] * 10 + [1], "covered_90": [True] * 10 + [False],
                        "covered_50": [False] * 11, "lpd": 0.0, "crps": 0.0, "error": 0.0, "hi_90": 1.0,
                        "lo_90": 0.0})
    s = summarize(pts)
    assert s["n_runs"] == 11 and s["n_folds"] == 2 and s["coverage_90"] == pytest.approx(0.5)


def test_backtest_modes_and_scores(synthetic_runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        res = bs.backtest(synthetic_runs, holdout="largest_budget", **SMALL, progress=False)
        # the other holdout modes: which runs each fold holds out (the plain law is enough to count them)
        rolling = bs.backtest(synthetic_runs, holdout="leave_one_budget_out", compare_allocation=False, **SMALL,
                              extrapolation="none", progress=False)
        thresh = bs.backtest(synthetic_runs, holdout=3e20, compare_allocation=False, **SMALL, extrapolation="none",
                             progress=False)
    t = res.table
    assert list(t.index) == ["budget 1e+21", "overall"]
    for col in ("coverage_50", "coverage_80", "coverage_90", "mlpd", "crps", "bias", "extrapolation_dex"):
        assert col in t.columns
    assert 0 <= t.loc["overall", "coverage_50"] <= t.loc["overall", "coverage_90"] <= 1
    assert t.loc["overall", "n_runs"] == 9 and t.loc["overall", "n_folds"] == 1 and t.loc["overall", "extrapolation_dex"] == pytest.approx(np.log10(1e21 / 3e20), abs=1e-6)
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

