"""Grouped runs, the hierarchical law, the compute multiplier and its figure."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

import bayesscale as bs
from bayesscale import inference, laws
from bayesscale.groups import GroupedPosterior, compute_for_frontier_loss, compute_multiplier, frontier_loss
from bayesscale.hierarchy import group_slots
from bayesscale.simulate import CHINCHILLA_FIT, isoflop_design

FAST = dict(chains=2, warmup=300, draws=300)
BUDGETS = (1e18, 3e18, 1e19, 3e19, 1e20)
TRUE_B = dict(CHINCHILLA_FIT, A=CHINCHILLA_FIT["A"] * 0.7)  # group b: only A differs (smaller: b is better)


def _frame(params_by_group: dict, seed: int = 0, sizes: int = 7, budgets=BUDGETS) -> pd.DataFrame:
    N, D = isoflop_design(budgets, sizes)
    parts = [bs.simulate_runs(p, N=N, D=D, sigma=0.01, seed=seed + 10 * i, as_frame=True).assign(dataset=g)
             for i, (g, p) in enumerate(params_by_group.items())]
    return pd.concat(parts, ignore_index=True)


def _fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        return bs.fit(*args, **kwargs)


@pytest.fixture(scope="module")
def pair_frame():
    return _frame({"a": CHINCHILLA_FIT, "b": TRUE_B})


@pytest.fixture(scope="module")
def pair_post(pair_frame):
    return _fit(pair_frame, groups="dataset", seed=1, extrapolation="none", **FAST)


# -- data --------------------------------------------------------------------------


def test_load_runs_keeps_groups(pair_frame):
    runs = bs.load_runs(pair_frame, group="dataset")
    assert runs.group_names == ("a", "b") and runs.n_groups == 2
    assert np.array_equal(runs.group, (pair_frame.dataset == "b").to_numpy().astype(int))
    assert list(runs.to_frame()["group"].unique()) == ["a", "b"]
    b = runs.select_group("b")
    assert b.group is None and len(b) == (pair_frame.dataset == "b").sum()
    sub = runs.subset(runs.group == 1)
    assert sub.group_names == ("b",) and set(sub.group) == {0}
    assert "groups ['a', 'b']" in repr(runs)
    # without group= the column is ignored
    assert bs.load_runs(pair_frame.drop(columns="dataset")).group is None


def test_grouped_load_errors(pair_frame):
    with pytest.raises(bs.DataError, match="no column 'mixture'"):
        bs.load_runs(pair_frame, group="mixture")
    bad = pair_frame.copy()
    bad.loc[3, "dataset"] = None
    with pytest.raises(bs.DataError, match="row 3, column 'dataset': the group label is empty"):
        bs.load_runs(bad, group="dataset")
    one_n = pair_frame.drop(columns="C")
    one_n.loc[one_n.dataset == "b", "N"] = 1e8
    with pytest.raises(bs.DataError, match="group 'b'.*every run has N = 1e\\+08"):
        bs.load_runs(one_n, group="dataset")
    runs = bs.load_runs(pair_frame, group="dataset")
    with pytest.raises(bs.DataError, match="unknown group 'c'; the groups are a, b"):
        runs.group_index("c")


def test_fit_grouped_errors(pair_frame):
    plain = bs.load_runs(pair_frame.drop(columns="dataset"))
    with pytest.raises(bs.DataError, match="groups=True needs runs that carry groups"):
        bs.fit(plain, groups=True, **FAST)
    with pytest.raises(bs.DataError, match="carry no groups"):
        bs.fit(plain, groups="dataset", **FAST)
    with pytest.raises(ValueError, match="pooling must be one of"):
        bs.fit(pair_frame, groups="dataset", pooling="some", **FAST)
    with pytest.raises(ValueError, match="chinchilla law only"):
        bs.fit(pair_frame, groups="dataset", law="kaplan", **FAST)
    with pytest.raises(ValueError, match="offsets='none' only"):
        bs.fit(pair_frame, groups="dataset", offsets="budget", **FAST)


def test_group_slots():
    assert [group_slots(n) for n in (1, 2, 3, 4, 5, 9)] == [1, 2, 4, 4, 8, 16]


# -- the model -------------------------------------------------------------------


def _medians(post) -> dict:
    return {k: float(np.median(v)) for k, v in post.law_params.items()}


@pytest.mark.parametrize("bend", ["none", "on"])
def test_one_group_shared_is_the_plain_model(bend):
    """With one group, pooling="shared" has exactly the plain model's log density, bend included."""
    import jax
    from numpyro.infer.util import log_density

    from bayesscale.hierarchy import grouped_model
    from bayesscale.model import numpyro_model

    frame = _frame({"only": CHINCHILLA_FIT}, seed=3)
    runs = bs.load_runs(frame, group="dataset")
    # the plain law in the same coordinates as the grouped model (log_E, not the sampler's level form)
    law = dataclasses.replace(bs.get_law("chinchilla"), sample_sites=None)
    plain_spec, spec = bs.ModelSpec(bend=bend, law=law), bs.ModelSpec(pooling="shared", bend=bend)
    point = {"log_E": 0.5, "alpha": 0.33, "beta": 0.3, "t_N": -1.1, "t_D": -0.9, "sigma": 0.02}
    if bend == "on":
        point["z_bend"] = -1.7  # kappa = -0.017: the bend's value matters to the density
    dens = []
    for sp, model, extra in ((plain_spec, numpyro_model, {"bend": bend == "on"}),
                             (spec, grouped_model, {"pooling": "shared", "centering": "noncentred",
                                                    "bend": bend == "on"})):
        data = inference.model_data(runs, sp, 48, 16)
        treedef = inference.prior_leaves(sp, runs)[1]
        p = dict(point, **({k: np.array([point[k]]) for k in ("t_N", "t_D")} if "pooling" in extra else {}))
        lp, _ = log_density(model, (data,), dict(law=sp.law, observation=sp.observation, offsets="none",
                                                 prior_def=treedef, **extra), jax.tree.map(np.float32, p))
        dens.append(float(lp))
    assert dens[0] == pytest.approx(dens[1], rel=1e-6)


def test_one_group_reduces_to_plain_fit():
    frame = _frame({"only": CHINCHILLA_FIT}, seed=3, budgets=(1e18, 3e18, 1e19, 3e19, 1e20, 3e20))
    # the same seed: a chain that sticks in a poor mode would stick in both; both have the bend (6 budgets)
    plain = _fit(frame.drop(columns="dataset"), extrapolation="none", seed=0, **FAST)
    grouped = _fit(frame, groups="dataset", extrapolation="none", seed=0, **FAST)  # partial pooling, one group
    view = grouped.group("only")
    assert isinstance(view, bs.Posterior) and len(view.runs) == len(frame)
    assert "kappa" in plain.params and "kappa" in view.params
    for k in ("E", "alpha", "beta", "kappa"):
        a, b = plain.params[k], view.params[k]
        # Monte Carlo error of a median with a few hundred effective draws is ~0.1 sd; allow 0.35 sd
        assert abs(np.median(a) - np.median(b)) < 0.35 * a.std(), (k, np.median(a), np.median(b))
        assert 0.75 < b.std() / a.std() < 1.33, (k, a.std(), b.std())
    na = plain.allocate([1e21]).N_opt.iloc[0]
    nb = view.allocate([1e21]).N_opt.iloc[0]
    assert abs(np.log(na / nb)) < 0.05
    # predictions beyond the data carry the bend in both
    pa, pb = plain.predict([3e10], [3e11]), view.predict([3e10], [3e11])
    assert abs(np.log(pa.loss.iloc[0] / pb.loss.iloc[0])) < 0.005


# -- the bend and the calibrated extrapolation error ----------------------------------


def test_grouped_bend_follows_the_single_fit_rule():
    """Each group has the bend exactly where a single fit of its runs would, in the group's own frame."""
    from bayesscale.hierarchy import group_bend_scales
    from bayesscale.model import BEND_OFF_SCALE, bend_frame

    frame = pd.concat([_frame({"a": CHINCHILLA_FIT}, budgets=BUDGETS + (3e20,)),
                       _frame({"b": TRUE_B}, seed=5, budgets=BUDGETS[:4])], ignore_index=True)
    runs = bs.load_runs(frame, group="dataset")
    single = bs.ModelSpec()
    expected = [single.bend_scale(runs.select_group(g)) for g in ("a", "b")]
    assert expected == [single.priors.bend_scale, BEND_OFF_SCALE]  # a: 6 budgets, b: 4
    for pooling in ("partial", "shared", "separate"):
        spec = bs.ModelSpec(pooling=pooling)
        assert "z_bend" in spec.sites
        assert "z_bend" not in bs.ModelSpec(pooling=pooling, bend="none").sites
        np.testing.assert_array_equal(group_bend_scales(spec, runs), expected)
        data = inference.model_data(runs, spec, 128, 8)
        np.testing.assert_allclose(data["bend_scale"], [*expected], rtol=1e-6)
        for k, g in enumerate(("a", "b")):
            np.testing.assert_allclose([data["bend_center"][k], data["bend_lo"][k], data["bend_hi"][k]],
                                       bend_frame(runs.select_group(g).C), rtol=1e-6)
    assert np.allclose(group_bend_scales(bs.ModelSpec(pooling="partial", bend="on"), runs),
                       single.priors.bend_scale)
    post = _fit(runs, groups=True, extrapolation="none", seed=0, chains=2, warmup=200, draws=200)
    ka, kb = post.group("a").params["kappa"], post.group("b").params["kappa"]
    assert np.allclose(ka, post.params["a"]["kappa"]) and ka.std() > 1e-3  # on: the data inform it
    assert np.abs(kb).max() < 1e-4  # off, as in a single fit of b
    assert ("a", "kappa") in post.summary().index
    # the fitted loss at the runs includes each group's bend: the grouped log likelihood equals the views'
    lik = np.concatenate(list(post._log_lik_chunks()), axis=-1)
    for k, g in enumerate(post.groups):
        np.testing.assert_allclose(lik[..., runs.group == k], bs.log_likelihood(post.group(g)), rtol=1e-6,
                                   atol=1e-8)


@pytest.fixture(scope="module")
def calibrated_post():
    frame = _frame({"a": CHINCHILLA_FIT, "b": TRUE_B}, seed=11, budgets=BUDGETS + (3e20,))
    return _fit(frame, groups="dataset", seed=0, chains=2, warmup=200, draws=200)  # calibrated by default


def test_grouped_fit_carries_calibrated_extrapolation(calibrated_post):
    from bayesscale.discrepancy import Discrepancy

    post = calibrated_post
    assert post.extrapolation_mode == "calibrated" and set(post.discrepancies) == {"a", "b"}
    # each group calibrated (on its own folds, or borrowing its sibling's when it has too few)
    assert all(d.calibrated("loss") for d in post.discrepancies.values())
    plain = dataclasses.replace(post, extrapolation_mode="none", discrepancies=None)
    c_max = post.runs.C.max()
    for g in post.groups:
        view = post.group(g)
        assert isinstance(view.extrapolation, Discrepancy) and view.extrapolation is post.discrepancies[g]
        assert view.extrapolation.c_max == pytest.approx(post.runs.select_group(g).C.max())
        assert plain.group(g).extrapolation is None
        # two decades beyond the data: the calibrated band is wider; inside the data it is the same
        N_far = np.sqrt(100 * c_max / (6 * 20))
        wide = view.predict([N_far], [20 * N_far], ci=0.9)
        narrow = plain.group(g).predict([N_far], [20 * N_far], ci=0.9)
        assert (wide.loss_hi90 - wide.loss_lo90).iloc[0] > 1.2 * (narrow.loss_hi90 - narrow.loss_lo90).iloc[0]
        N_in = np.sqrt(1e19 / (6 * 20))
        pd.testing.assert_frame_equal(view.predict([N_in], [20 * N_in]), plain.group(g).predict([N_in], [20 * N_in]))
        # allocations carry the N_opt error too
        a_cal, a_plain = view.allocate([100 * c_max], ci=0.9), plain.group(g).allocate([100 * c_max], ci=0.9)
        w = lambda a: np.log(a.N_opt_hi90 / a.N_opt_lo90).iloc[0]  # noqa: E731
        assert w(a_cal) > w(a_plain)


def test_groups_with_too_few_folds_borrow_their_siblings(pair_frame):
    """5 budgets per group give 3 folds each, too few alone: partial pooling calibrates each group on all 6,
    separate pooling refuses, as single fits would."""
    kw = dict(groups="dataset", seed=2, chains=2, warmup=200, draws=200)
    pooled, separate = _fit(pair_frame, **kw), _fit(pair_frame, pooling="separate", **kw)
    for g in ("a", "b"):
        d = pooled.discrepancies[g]
        assert d.calibrated("loss") and "(3 of this data set's own and 3 of 1 related ones" in d.reasons["loss"]
        assert not separate.discrepancies[g].calibrated("loss")


def test_grouped_posterior_saves_and_loads(calibrated_post, tmp_path):
    from bayesscale.posterior import PosteriorFileError

    post = calibrated_post
    path = post.to_netcdf(tmp_path / "grouped.nc")
    back = bs.load_posterior(path)
    assert isinstance(back, bs.GroupedPosterior)
    assert back.groups == post.groups and back.pooling == post.pooling and back.spec == post.spec
    assert back.extrapolation_mode == "calibrated" and back.discrepancies == post.discrepancies
    np.testing.assert_array_equal(back.runs.group, post.runs.group)
    assert set(back.samples) == set(post.samples)
    for k, v in post.samples.items():
        np.testing.assert_array_equal(back.samples[k], v)
    pd.testing.assert_frame_equal(back.summary(), post.summary())
    budgets = [1e21, 1e22]
    pd.testing.assert_frame_equal(back.compare_groups("a", "b", budgets=budgets),
                                  post.compare_groups("a", "b", budgets=budgets))
    pd.testing.assert_frame_equal(back.group("b").allocate(budgets), post.group("b").allocate(budgets))
    # a damaged file is refused, as for a single fit
    import xarray as xr

    with xr.open_datatree(path, engine="netcdf4") as t:
        tree = t.load()
    tree["posterior"]["alpha_z" if "alpha_z" in tree["posterior"] else "t_N"].values[..., 0] += 1e-3
    tree.to_netcdf(tmp_path / "damaged.nc", engine="netcdf4")
    with pytest.raises(PosteriorFileError, match="checksum"):
        bs.load_posterior(tmp_path / "damaged.nc")


def test_pooling_switch(pair_frame):
    runs = bs.load_runs(pair_frame, group="dataset")
    shared = _fit(runs, groups=True, pooling="shared", seed=0, extrapolation="none", **FAST)
    separate = _fit(runs, groups=True, pooling="separate", seed=0, extrapolation="none", **FAST)
    assert shared.samples["alpha"].shape == (2, 300)
    assert separate.samples["alpha"].shape == (2, 300, 2)
    pa, pb = shared.params["a"], shared.params["b"]
    assert np.array_equal(pa["alpha"], pb["alpha"]) and np.array_equal(pa["E"], pb["E"])
    sa, sb = separate.params["a"], separate.params["b"]
    assert not np.array_equal(sa["alpha"], sb["alpha"])
    assert shared.pooling == "shared" and "s_alpha" not in shared.samples
    # every pooling recovers group b's smaller A (A only differs; the truth ratio is 0.7): inside the 90%
    # interval, and a median below 1 (separate fits, each with its own alpha and bend, pin it down loosely)
    for post in (shared, separate):
        ratio = post.params["b"]["A"] / post.params["a"]["A"]
        lo, med, hi = np.quantile(ratio, [0.05, 0.5, 0.95])
        assert lo < 0.7 < hi and med < 1.0, (post.pooling, lo, med, hi)
    assert 0.45 < np.median(shared.params["b"]["A"] / shared.params["a"]["A"]) < 1.0


def test_partial_pooling_fit(pair_post):
    post = pair_post
    assert isinstance(post, GroupedPosterior) and post.groups == ("a", "b")
    assert {"alpha_mu", "s_alpha", "z_alpha", "log_E_mu", "s_E", "sigma"} <= set(post.samples)
    assert post.samples["z_alpha"].shape == (2, 300, 2)  # padded to 2 slots: exactly 2 groups
    summ = post.summary()
    assert set(summ.index.get_level_values("group")) == {"a", "b", "*"}
    view = post.group("b")
    # the view's natural parameters are the group's; its t_N is re-centred on its own runs
    assert np.allclose(view.law_params["A"], post.params["b"]["A"])
    alloc = view.allocate([1e21])
    assert alloc.N_opt_lo80.iloc[0] < alloc.N_opt.iloc[0] < alloc.N_opt_hi80.iloc[0]
    assert view.predict([1e9], [2e10]).shape[0] == 1
    assert view.summary().loc["alpha", "median"] == pytest.approx(summ.loc[("b", "alpha"), "median"])
    assert "pooling='partial'" in repr(post)
    # sum-to-zero deviations: each pooled parameter's *_mu is the groups' own mean, draw by draw
    for name, mu in (("E", "log_E_mu"), ("alpha", "alpha_mu"), ("beta", "beta_mu")):
        groups_mean = np.mean([np.log(post.params[g][name]) for g in post.groups], axis=0)
        centre = post.samples[mu].reshape(-1)
        assert np.allclose(groups_mean, centre if name == "E" else np.log(centre), atol=1e-4), name


# -- the compute multiplier -------------------------------------------------------


def test_frontier_closed_forms():
    p = {k: np.array([v]) for k, v in CHINCHILLA_FIT.items()}
    C = np.array([1e19, 1e22])
    N, D = laws.optimal_allocation(CHINCHILLA_FIT, C)
    assert np.allclose(frontier_loss(p, C)[0], laws.loss(CHINCHILLA_FIT, N, D), rtol=1e-12)
    assert np.allclose(compute_for_frontier_loss(p, frontier_loss(p, C)), C, rtol=1e-9)
    assert np.isinf(compute_for_frontier_loss(p, np.array([[1.0]])))[0, 0]  # below E: never reached
    pb = {k: np.array([v]) for k, v in TRUE_B.items()}
    m = compute_multiplier(p, pb, C)[0]
    # B reaches A's optimal loss at C / m
    assert np.allclose(frontier_loss(pb, C / m)[0], frontier_loss(p, C)[0], rtol=1e-10)
    # with equal exponents and E the multiplier is (K_A / K_B)^(1/gamma) at every budget
    assert m[0] == pytest.approx(m[1], rel=1e-9) and m[0] > 1


def test_bent_frontier_is_inverted_numerically():
    """With a bend the least compute is found numerically: it agrees with the closed form at kappa = 0."""
    from bayesscale.model import bend_frame

    frame = bend_frame([1e18, 1e20])
    C = np.array([1e19, 1e22])
    flat = {k: np.array([v, v]) for k, v in CHINCHILLA_FIT.items()}
    zero = dict(flat, kappa=np.zeros(2))
    np.testing.assert_allclose(compute_for_frontier_loss(zero, frontier_loss(zero, C, frame), frame), [C, C],
                               rtol=1e-9)
    pa = dict(zero, kappa=np.array([-0.01, 0.005]))
    pb = dict(pa, A=pa["A"] * 0.7)
    m = compute_multiplier(pa, pb, C, frame, frame)
    # B's bent frontier at C / m is A's at C, and the bend moves the multiplier with the budget
    for s in range(2):
        np.testing.assert_allclose(frontier_loss(pb, C / m[s], frame)[s], frontier_loss(pa, C, frame)[s],
                                   rtol=1e-9)
    assert abs(m[0, 1] - m[0, 0]) > 0.1 and abs(m[1, 1] - m[1, 0]) > 0.1
    assert np.isinf(compute_for_frontier_loss(pa, np.array([[1.0]]), frame)).all()


def test_compare_groups_covers_known_multiplier(pair_post):
    C = np.array([1e19, 1e20, 1e21])
    df = pair_post.compare_groups("a", "b", budgets=C, ci=0.9)
    assert {"C", "multiplier", "multiplier_lo90", "multiplier_hi90", "prob_better", "loss_a", "loss_b"} <= set(df)
    assert len(df) == 3 and df.attrs["draws"].shape == (pair_post.n_draws, 3)
    truth = compute_multiplier({k: np.array([v]) for k, v in CHINCHILLA_FIT.items()},
                               {k: np.array([v]) for k, v in TRUE_B.items()}, C)[0]
    assert np.all((df.multiplier_lo90 <= truth) & (truth <= df.multiplier_hi90)), (df, truth)
    assert np.all(df.prob_better > 0.9)
    back = pair_post.compare_groups("b", "a", budgets=C)
    assert np.all(back.prob_better < 0.1)
    # target losses instead of budgets, and the loss difference at a fixed size
    by_loss = pair_post.compare_groups("a", "b", losses=[2.6, 2.4])
    assert {"loss", "multiplier", "C_a", "C_b"} <= set(by_loss) and np.all(by_loss.multiplier > 1)
    at = pair_post.compare_groups("a", "b", budgets=C, N=1e9, ci=0.9)
    assert np.allclose(at.D, C / (6 * 1e9)) and np.all(at.loss_diff_hi90 < 0) and np.all(at.prob_lower > 0.9)
    with pytest.raises(ValueError, match="two different groups"):
        pair_post.compare_groups("a", "a", budgets=C)
    with pytest.raises(bs.DataError, match="unknown group"):
        pair_post.compare_groups("a", "z", budgets=C)


def test_compute_multiplier_figure(pair_post):
    from matplotlib.collections import PolyCollection

    fig = bs.plots.compute_multiplier(pair_post, "a", "b", budgets=[1e18, 1e22])
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert bands and bands[0].get_paths()[0].vertices.shape[0] > 10
    assert "multiplier of b over a" in ax.get_ylabel()
    with pytest.raises(ValueError, match="grouped posterior"):
        bs.plots.compute_multiplier(pair_post.group("a"), "a", "b")


# -- compilation and batching ------------------------------------------------------


def test_no_recompilation_for_new_grouped_data(pair_post):
    runs = bs.load_runs(_frame({"a": CHINCHILLA_FIT, "b": TRUE_B}, seed=42), group="dataset")
    before = inference.compile_count()
    post = _fit(runs, groups=True, seed=2, extrapolation="none", **FAST)
    assert inference.compile_count() == before
    assert not np.array_equal(post.samples["t_N"], pair_post.samples["t_N"])


def test_fit_many_grouped(pair_frame):
    three = _frame({"x": CHINCHILLA_FIT, "y": TRUE_B, "z": dict(CHINCHILLA_FIT, B=1500.0)}, seed=7)
    datasets = [bs.load_runs(pair_frame, group="dataset"), bs.load_runs(three, group="dataset")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        posts = bs.fit_many(datasets, groups=True, seed=0, extrapolation="none", **FAST)
    assert [type(p) for p in posts] == [GroupedPosterior, GroupedPosterior]
    assert posts[0].groups == ("a", "b") and posts[1].groups == ("x", "y", "z")
    # the 2-group data set shares the 4-slot program with the 3-group one; its padded slots are dropped
    assert posts[0].samples["t_N"].shape == (2, 300, 2) and posts[1].samples["t_N"].shape == (2, 300, 3)
    assert np.median(posts[1].params["z"]["B"]) < np.median(posts[1].params["x"]["B"])
    assert posts[1].compare_groups("x", "y", budgets=[1e20]).shape[0] == 1


def test_grouped_spec_round_trip():
    spec = bs.ModelSpec(pooling="partial", centering="centred")
    again = bs.ModelSpec.from_dict(spec.to_dict())
    assert again.pooling == "partial" and again.centering == "centred" and again.sites == spec.sites
    assert "alpha" in spec.sites and "z_alpha" not in spec.sites
    assert dataclasses.replace(spec, pooling=None).sites == ("log_E", "alpha", "beta", "t_N", "t_D", "sigma", "z_bend")
    # a partially pooled posterior saved before the sum-to-zero deviations cannot be read as if it had them
    old = spec.to_dict()
    del old["deviations"]
    with pytest.raises(ValueError, match="earlier bayesscale.*Refit"):
        bs.ModelSpec.from_dict(old)


def test_report_of_a_grouped_fit(pair_post, tmp_path):
    import json

    paths = bs.report(pair_post, budgets=[1e20, 1e21], out=tmp_path / "rep", group="a")
    md = paths.markdown.read_text()
    assert "Variants compared" in md and "Multiplier of b" in md
    facts = json.loads(paths.json.read_text())
    rows = facts["groups"]["comparisons"][0]["rows"]
    df = pair_post.compare_groups("a", "b", budgets=[1e20, 1e21], ci=0.8)
    assert [r["multiplier"] for r in rows] == pytest.approx(df.multiplier.tolist())


def test_fit_command_with_groups(pair_frame, tmp_path, capsys):
    from bayesscale.cli import main

    csv, out = tmp_path / "runs.csv", tmp_path / "g.nc"
    pair_frame.to_csv(csv, index=False)
    code = main(["fit", str(csv), "--group", "dataset", "--extrapolation", "none", "--chains", "2", "--warmup", "200",
                 "--draws", "200", "--no-progress", "--out", str(out)])
    text = capsys.readouterr().out
    assert code in (0, 1) and "in groups a, b" in text and f"wrote {out}" in text
    back = bs.load_posterior(out)
    assert isinstance(back, GroupedPosterior) and back.groups == ("a", "b")
    assert main(["fit", str(csv), "--group", "mixture", "--no-progress"]) == 2  # no such column
    assert "mixture" in capsys.readouterr().err
