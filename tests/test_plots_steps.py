"""Derived quantities of a kaplan_steps posterior (bayesscale.steps_analysis) and their figures
(bayesscale.plots_steps), checked by what was drawn; curve predictions' per-run offsets."""

import warnings

import numpy as np
import pytest
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.colors import LogNorm

import bayesscale as bs
from bayesscale import kaplan, plots_steps
from bayesscale import steps_analysis as sa
from bayesscale.posterior import _offsets, log_noise

TINY = dict(chains=2, warmup=200, draws=200, progress=False, extrapolation="none")


@pytest.fixture(scope="module")
def curves():
    # the shape of tests/test_kaplan_steps.py's curves: the compiled sampler is reused
    return bs.load_curves(bs.simulate_curves(sizes=(1e6, 1e7, 1e8), batch_sizes=(2.0**17, 2.0**20), checkpoints=10,
                                             seed=5), warmup=0)


@pytest.fixture(scope="module")
def post(curves):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        return bs.fit(curves, law="kaplan_steps", seed=0, **TINY)


def _main_axes(fig):
    return [a for a in fig.axes if getattr(a, "_colorbar", None) is None]


def _colorbars(fig):
    return [a._colorbar for a in fig.axes if getattr(a, "_colorbar", None) is not None]


def _texts(ax):
    return " ".join(t.get_text() for t in ax.texts)


def _bands(ax):
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def _in_band(df, med, lo, hi):
    m, a, b = (df[c].to_numpy(dtype=float) for c in (med, lo, hi))
    return bool(np.all((a <= m) & (m <= b)))


# -- derived quantities ---------------------------------------------------------------------------


def test_frontier_exponents_table(post):
    t = bs.frontier_exponents(post, ci=0.9)  # dispatches to steps_analysis for kaplan_steps
    assert list(t.index[:5]) == ["alpha_C_min", "N_vs_C_min", "B_vs_C_min", "S_min_vs_C_min", "N_vs_C_fixed_batch"]
    assert _in_band(t, "median", "lo90", "hi90")
    assert t.attrs["convention"] == "kaplan" and t.attrs["ci"] == 0.9
    assert t.attrs["batch"] in (2.0**17, 2.0**20)
    # Kaplan's constants imply 0.684 / 0.248 / 0.068; the paper fitted 0.73 / 0.24 / 0.03
    np.testing.assert_allclose(t.loc[["N_vs_C_min", "B_vs_C_min", "S_min_vs_C_min"], "kaplan_constants"],
                               [0.684, 0.248, 0.068], atol=5e-4)
    assert list(t.loc[["N_vs_C_min", "B_vs_C_min", "S_min_vs_C_min"], "kaplan_fitted"]) == [0.73, 0.24, 0.03]
    # the fit to curves simulated from Kaplan's constants lands near them
    assert abs(t.loc["N_vs_C_min", "median"] - 0.684) < 0.05
    assert abs(t.loc["S_min_vs_C_min", "median"] - 0.068) < 0.02
    # the three exponents sum to one draw by draw (C_min = 6 N B S)
    fe = kaplan.frontier_exponents(post.law_params)
    np.testing.assert_allclose(fe["N"] + fe["B"] + fe["S"], 1.0)
    assert t.loc["N_vs_C_min", "median"] == pytest.approx(np.median(fe["N"]))
    # the fixed-batch slope differs from the critical-batch one and sits in a plausible range
    assert 0.6 < t.loc["N_vs_C_fixed_batch", "median"] < 0.95


def test_conventions_are_explicit(post):
    assert sa.fitted_convention(post) == "kaplan"
    a = sa.efficient_size(post, 1.0, units="pf_days", convention="kaplan")
    b = sa.efficient_size(post, 1.0, units="pf_days")
    assert a.equals(b) and a.attrs["convention"] == "kaplan"
    with pytest.raises(ValueError, match="fitted with N counted as non-embedding"):
        sa.efficient_size(post, 1.0, convention="total")
    with pytest.raises(ValueError, match="convention must be 'kaplan'"):
        sa.frontier_exponents(post, convention="embedding")


def test_critical_batch(post):
    t = sa.critical_batch(post, [2.5, 3.0, 4.0], ci=0.9)
    assert _in_band(t, "B_crit", "B_crit_lo90", "B_crit_hi90")
    assert np.all(np.diff(t["B_crit"]) < 0)  # lower loss needs a larger batch
    p = post.law_params
    assert t["B_crit"].iloc[1] == pytest.approx(np.median(p["B_star"] / 3.0 ** (1 / p["alpha_B"])))


def test_efficient_size_units_and_bands(post):
    pf = sa.efficient_size(post, [1e-3, 1.0, 1e3], units="pf_days", ci=0.9)
    fl = sa.efficient_size(post, [8.64e16, 8.64e19, 8.64e22], units="flops", ci=0.9)
    np.testing.assert_allclose(pf.to_numpy(), fl.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(pf["C_min_pf_days"], [1e-3, 1.0, 1e3])
    for q in ("N", "B", "S", "E", "loss"):
        assert _in_band(pf, q, f"{q}_lo90", f"{q}_hi90"), q
    assert np.all(np.diff(pf["N"]) > 0) and np.all(np.diff(pf["loss"]) < 0)
    with pytest.raises(ValueError, match="units must be"):
        sa.efficient_size(post, 1.0, units="gpu_hours")


def test_excess_compute_and_steps(post):
    t = sa.excess(post, r=[0.5, 1.0, 2.0, 4.0], ci=0.9)
    assert _in_band(t, "excess_compute", "excess_compute_lo90", "excess_compute_hi90")
    assert _in_band(t, "excess_steps", "excess_steps_lo90", "excess_steps_hi90")
    np.testing.assert_allclose(t.loc[t["ratio"] == 1.0, ["excess_compute", "excess_steps"]].to_numpy(), 1.0)
    assert np.all(np.diff(t["excess_steps"]) < 0)  # smaller models need more steps
    sr = t.attrs["size_range"]
    assert sr.loc["lo", "median"] < 1 < sr.loc["hi", "median"]
    assert _in_band(sr, "median", "lo90", "hi90")
    assert f"{sr.loc['lo', 'median']:.2f}x" in t.attrs["sentence"] and "20% more compute" in t.attrs["sentence"]
    # Kaplan: about 0.6x to 2.2x for 20%; the constants imply 0.58x to 2.18x
    assert 0.45 < sr.loc["lo", "median"] < 0.7 and 1.8 < sr.loc["hi", "median"] < 2.6
    # too small ever to reach the efficient loss: infinite
    assert np.isinf(sa.excess(post, r=[0.1])["excess_compute"].iloc[0])


def test_other_laws_are_refused(small_post):
    with pytest.raises(ValueError, match="kaplan_steps"):
        sa.excess(small_post)


# -- figures ------------------------------------------------------------------------------------


def test_compute_efficient_frontier(post, curves):
    fig = bs.plots.compute_efficient_frontier(post, curves, ci=0.8)
    left, right = _main_axes(fig)
    t = sa.frontier_exponents(post, ci=0.8)
    for ax in (left, right):
        assert len(_bands(ax)) == 2  # critical batch and fixed batch, each with its band
        labelled = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
        assert len(labelled) == 2
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        pts = [c for c in ax.collections if isinstance(c, PathCollection)]
        assert pts and len(pts[0].get_offsets()) > 5  # the curves' envelope in C_min
    assert f"{t.loc['N_vs_C_min', 'median']:.3f}" in _texts(left)
    assert f"{t.loc['N_vs_C_fixed_batch', 'median']:.3f}" in _texts(left)
    assert f"{t.loc['S_min_vs_C_min', 'median']:.3f}" in _texts(right)
    # N_eff grows with C_min along the drawn median
    y = [ln for ln in left.get_lines() if "critical" in ln.get_label()][0].get_ydata()
    assert np.all(np.diff(y) > 0)
    # without curves, the fitted checkpoints give the points
    fig2 = plots_steps.compute_efficient_frontier(post)
    assert len(_bands(_main_axes(fig2)[0])) == 2


def test_loss_vs_size(post, curves):
    budgets = kaplan.pf_days_to_flops(np.array([1e-5, 1e-3, 1e-1]))
    fig = plots_steps.loss_vs_size(post, curves, budgets=budgets, steps=[3e3, 1e4, 3e4, 1e5])
    left, right = _main_axes(fig)
    cbs = _colorbars(fig)
    assert len(cbs) == 2 and all(isinstance(cb.norm, LogNorm) for cb in cbs)
    assert "PF-days" in cbs[0].ax.get_ylabel()
    assert len(_bands(left)) == 3 and len(_bands(right)) == 4
    lines_l = [ln for ln in left.get_lines() if ln.get_xdata().size > 10]
    lines_r = [ln for ln in right.get_lines() if ln.get_xdata().size > 10]
    assert len(lines_l) == 3 and len(lines_r) == 4
    for ln in lines_l:  # U-shaped: the minimum lies inside
        i = int(np.argmin(ln.get_ydata()))
        assert 0 < i < ln.get_ydata().size - 1
    for ln in lines_r:  # monotone in N at fixed steps
        assert np.all(np.diff(ln.get_ydata()) < 0)
    # observed points where the curves span the budget or the step count
    assert sum(len(c.get_offsets()) for c in left.collections if isinstance(c, PathCollection)) > 3
    assert sum(len(c.get_offsets()) for c in right.collections if isinstance(c, PathCollection)) > 3


def test_excess_compute_steps_figure(post):
    fig = plots_steps.excess_compute_steps(post, ci=0.8)
    left, right = _main_axes(fig)
    assert len(_bands(left)) == 1 and len(_bands(right)) == 1
    sr = sa.size_range(post, ci=0.8)
    text = _texts(left)
    assert f"{sr.loc['lo', 'median']:.2f}x" in text and f"{sr.loc['hi', 'median']:.2f}x" in text
    assert "20% more compute" in text
    assert "Smaller models need more steps" in _texts(right)
    y = [ln for ln in right.get_lines() if ln.get_label() == "posterior median"][0].get_ydata()
    y = y[np.isfinite(y)]
    assert np.all(np.diff(y) < 0)


def test_approach1_envelope_figure():
    c = bs.load_curves(bs.simulate_curves(seed=0), warmup=0)
    res = bs.approach1(c)
    fig = bs.plots.approach1_envelope(c, res)
    left, right = _main_axes(fig)
    assert len(left.get_lines()) == c.n_runs + 1  # every curve and the envelope
    (cb,) = _colorbars(fig)
    assert isinstance(cb.norm, LogNorm)
    assert len(_bands(right)) == 1
    assert f"{res.a:.3f}" in _texts(right)
    used = [col for col in right.collections if isinstance(col, PathCollection)][0]
    assert len(used.get_offsets()) == int(res.points["used"].sum())


# -- predictions for curves: offsets belong to runs ------------------------------------------------


def test_curve_offsets_are_per_run(post, curves):
    S = post.n_draws
    tau = post.samples["tau"].reshape(S, 1)
    zb = post.samples["z_budget"].reshape(S, -1)
    name = str(curves.run_ids[3])
    C_run = float(post.runs.budget_compute()[3])
    named = _offsets(post, [C_run], run=[name])
    np.testing.assert_allclose(named[:, 0], tau[:, 0] * zb[:, 3])
    # an anonymous point at that run's compute is a new run: its offset is not run 3's
    anon = _offsets(post, [C_run, C_run])
    assert not np.allclose(anon[:, 0], named[:, 0])
    assert not np.allclose(anon[:, 0], anon[:, 1])  # two anonymous points: two runs
    assert abs(np.std(anon[:, 0] / tau[:, 0]) - 1) < 0.15  # a fresh Normal(0, tau) draw
    # the points of one new, named run share its offset, and it does not depend on the call
    new = _offsets(post, [1e15, 1e17, 3e17], run=["mine", "mine", "other"])
    np.testing.assert_array_equal(new[:, 0], new[:, 1])
    assert not np.allclose(new[:, 0], new[:, 2])
    np.testing.assert_array_equal(_offsets(post, [5e16], run="mine")[:, 0], new[:, 0])
    assert log_noise(post, [1e15, 1e16], run=["mine", name]).shape == (S, 2)
