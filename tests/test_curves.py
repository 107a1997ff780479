"""Training curves: load_curves errors, warm-up rule, thinning, the simulator and Approach 1 from curves."""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesscale import curves as cv
from bayesscale import kaplan as K
from bayesscale.data import DataError, DataWarning

OPT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "curves_opt.csv"


def table(n_runs=3, n_steps=10, **over):
    """Small curves: log-spaced steps 100..100000, constant batch, a loss that falls."""
    rows = []
    for r in range(n_runs):
        st = np.round(np.geomspace(100, 1e5, n_steps))
        rows.append(pd.DataFrame({"run": f"m{r}", "N": 1e7 * 10**r, "step": st,
                                  "loss": 2.0 + 5.0 * st**-0.3 / (r + 1), "batch_tokens": 2.0**19}))
    df = pd.concat(rows, ignore_index=True)
    for k, v in over.items():
        df[k] = v
    return df


# --- reading and errors -----------------------------------------------------------------------

def test_reads_frame_and_csv(tmp_path):
    df = table()
    c = cv.load_curves(df, warmup=0)
    assert len(c) == 30 and c.n_runs == 3 and list(c.run_ids) == ["m0", "m1", "m2"]
    np.testing.assert_array_equal(c.tokens, c.step * c.batch_tokens)
    assert c.N_nonembed is None and c.lr_schedule is None
    p = tmp_path / "curves.csv"
    df.to_csv(p, index=False)
    c2 = cv.load_curves(p, warmup=0)
    import hashlib

    assert c2.sha256 == hashlib.sha256(p.read_bytes()).hexdigest() and len(c.sha256) == 64
    np.testing.assert_array_equal(c2.loss, c.loss)


def test_curves_are_immutable_and_views_work():
    c = cv.load_curves(table(), warmup=0)
    with pytest.raises(ValueError):
        c.loss[0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.thin = 3
    one = c.curve("m1")
    assert one.n_runs == 1 and len(one) == 10 and set(one.run) == {"m1"} and np.all(one.run_index == 0)
    two = c.select(["m2", "m0"])
    assert list(two.run_ids) == ["m2", "m0"] and list(two.run_table()["n_points"]) == [10, 10]
    assert [name for name, _ in c.by_run()] == ["m0", "m1", "m2"]
    with pytest.raises(DataError, match="no run named.*the runs are"):
        c.select(["m9"])
    # round trip through the frame
    back = cv.load_curves(c.to_frame(), warmup=0)
    for name in ("N", "step", "loss", "batch_tokens", "tokens"):
        np.testing.assert_array_equal(getattr(back, name), getattr(c, name))
    np.testing.assert_allclose(c.compute(), 6 * c.N * c.tokens)
    with pytest.raises(DataError, match="no 'N_nonembed' column"):
        c.compute("kaplan")


def test_column_mapping():
    df = table().rename(columns={"loss": "eval_loss", "batch_tokens": "bs"})
    c = cv.load_curves(df, columns={"loss": "eval_loss", "batch_tokens": "bs"}, warmup=0)
    assert len(c) == 30
    with pytest.raises(DataError, match="unknown names.*the names are"):
        cv.load_curves(df, columns={"eval_loss": "loss"})
    with pytest.raises(DataError, match="maps 'loss' to 'val_loss'.*no column 'val_loss'.*Fix the name"):
        cv.load_curves(df, columns={"loss": "val_loss", "batch_tokens": "bs"})


@pytest.mark.parametrize("column", ["run", "N", "step", "loss", "batch_tokens"])
def test_missing_column(column):
    with pytest.raises(DataError, match=f"no column '{column}'.*columns="):
        cv.load_curves(table().drop(columns=[column]))


@pytest.mark.parametrize("value, what", [("abc", "not a number"), (np.nan, "empty"), (np.inf, "infinite"),
                                         (0.0, "not positive"), (-2.0, "not positive")])
@pytest.mark.parametrize("column", ["N", "step", "loss", "batch_tokens"])
def test_bad_values_name_run_row_and_column(value, what, column):
    df = table().astype(object)
    df.loc[13, column] = value
    with pytest.raises(DataError, match=rf"run 'm1', row 13, column '{column}'.*{what}.*Fix or remove"):
        cv.load_curves(df)


def test_bad_value_in_csv_names_the_line(tmp_path):
    df = table().astype(object)
    df.loc[4, "loss"] = "n/a"
    p = tmp_path / "c.csv"
    df.to_csv(p, index=False)
    with pytest.raises(DataError, match=r"run 'm0', row 6 of c\.csv, column 'loss'"):
        cv.load_curves(p)


def test_step_zero_says_why():
    df = table()
    df.loc[0, "step"] = 0
    with pytest.raises(DataError, match="step-0.*drop it"):
        cv.load_curves(df)


def test_empty_run_label_and_empty_table():
    df = table().astype(object)
    df.loc[3, "run"] = np.nan
    with pytest.raises(DataError, match="row 3, column 'run'.*label is empty"):
        cv.load_curves(df)
    with pytest.raises(DataError, match="is empty"):
        cv.load_curves(table().iloc[:0])
    with pytest.raises(DataError, match="no such file"):
        cv.load_curves("/nonexistent/curves.csv")


def test_duplicated_step():
    df = table()
    df.loc[15, "step"] = df.loc[14, "step"]
    with pytest.raises(DataError, match=r"run 'm1', row 15, column 'step'.*duplicated.*also row 14"):
        cv.load_curves(df)


def test_non_monotone_steps():
    df = table()
    df.loc[[15, 16]] = df.loc[[16, 15]].to_numpy()
    with pytest.raises(DataError, match=r"run 'm1'.*steps must increase.*sort_values"):
        cv.load_curves(df)
    # sorted, it loads; interleaved runs are fine as long as each run's steps increase
    c = cv.load_curves(df.sort_values(["run", "step"]).sample(frac=1, random_state=0).sort_values("step"), warmup=0)
    assert len(c) == 30


def test_non_monotone_loss_is_fine():
    df = table()
    df.loc[5, "loss"] = df.loc[4, "loss"] + 0.01  # evaluation noise: the loss goes up once
    assert len(cv.load_curves(df, warmup=0)) == 30


def test_run_with_one_point():
    df = pd.concat([table(), pd.DataFrame({"run": ["lonely"], "N": [1e6], "step": [1000.0], "loss": [3.0],
                                           "batch_tokens": [2.0**19]})], ignore_index=True)
    with pytest.raises(DataError, match=r"run 'lonely'.*single checkpoint.*at least two"):
        cv.load_curves(df)


def test_N_changes_within_a_run():
    df = table()
    df.loc[17, "N"] = 5e8
    with pytest.raises(DataError, match=r"run 'm1', row 17, column 'N': N changes within the run"):
        cv.load_curves(df)


def test_batch_change_needs_a_tokens_column():
    df = table()
    df.loc[df["run"] == "m2", "batch_tokens"] = np.where(df.loc[df["run"] == "m2", "step"] < 5000, 2.0**19, 2.0**20)
    with pytest.raises(DataError, match=r"run 'm2'.*column 'batch_tokens'.*changes within the run.*'tokens' column"):
        cv.load_curves(df)
    # with cumulative tokens it loads, and the per-row batch is kept
    tok = []
    for _, g in df.groupby("run", sort=False):
        tok.append(np.cumsum(np.diff(np.r_[0.0, g["step"]]) * g["batch_tokens"]))
    df["tokens"] = np.concatenate(tok)
    c = cv.load_curves(df, warmup=0)
    assert c.run_table().loc["m2", "batch_varies"] and not c.run_table().loc["m0", "batch_varies"]
    np.testing.assert_array_equal(c.tokens, df["tokens"])
    df.loc[25, "tokens"] = df.loc[24, "tokens"]
    with pytest.raises(DataError, match=r"run 'm2', row 25, column 'tokens'.*must increase"):
        cv.load_curves(df)


def test_tokens_disagreeing_with_step_times_batch_warns():
    df = table()
    df["tokens"] = df["step"] * df["batch_tokens"] * 1.2
    with pytest.warns(DataWarning, match="differs from step \\* batch_tokens by up to 20%"):
        cv.load_curves(df)


# --- warm-up and thinning -------------------------------------------------------------------------

def test_default_warmup_rule_is_recorded():
    c = cv.load_curves(table())
    # 5% of the last step (1e5) is 5000: log-spaced steps 100, 215, 464, 1000, 2154, 4642 go
    rt = c.run_table()
    assert list(rt["n_dropped_warmup"]) == [6, 6, 6] and list(rt["n_points"]) == [4, 4, 4]
    assert np.all(rt["warmup_cutoff"] == 5000) and c.step.min() >= 5000
    assert "auto" in c.warmup_rule and "0.05" in c.warmup_rule and "18 checkpoints dropped" in repr(c)
    # a known warm-up length takes over when twice it is later than 5% of the run
    c = cv.load_curves(table(warmup_steps=[6000.0] * 30))
    assert list(c.run_table()["warmup_cutoff"]) == [12000.0] * 3
    assert list(c.run_table()["n_dropped_warmup"]) == [7, 7, 7]
    # warm-up in tokens is converted with the run's batch
    c = cv.load_curves(table(warmup_tokens=[5000.0 * 2**19] * 30))
    assert list(c.run_table()["warmup_cutoff"]) == [10000.0] * 3


def test_warmup_overrides():
    assert cv.load_curves(table(), warmup=0).n_dropped_warmup.sum() == 0
    c = cv.load_curves(table(), warmup=0.4)
    assert np.all(c.step >= 4e4) and list(c.n_dropped_warmup) == [8, 8, 8]
    assert "0.4 x the run's last step" in c.warmup_rule
    c = cv.load_curves(table(), warmup=1000)
    assert c.step.min() == 1000 and list(c.n_dropped_warmup) == [3, 3, 3]
    c = cv.load_curves(table(), warmup={"m1": 1000})
    assert list(c.n_dropped_warmup) == [0, 3, 0]
    with pytest.raises(DataError, match="names runs \\['zz'\\]"):
        cv.load_curves(table(), warmup={"zz": 10})
    with pytest.raises(DataError, match="leaves 1 of its 10 checkpoints.*warmup=0 keeps everything"):
        cv.load_curves(table(), warmup=99_000)
    for bad in (-1, "some", np.nan, True):
        with pytest.raises(DataError, match="warmup must be"):
            cv.load_curves(table(), warmup=bad)


def test_thinning_is_log_spaced_and_recorded():
    df = table(n_steps=200)
    c = cv.load_curves(df, warmup=0, thin=9)
    rt = c.run_table()
    assert list(rt["n_points"]) == [9, 9, 9] and list(rt["n_dropped_thin"]) == [191] * 3
    s = c.curve("m0").step
    assert s[0] == 100 and s[-1] == 1e5  # first and last kept
    np.testing.assert_allclose(np.diff(np.log10(s)), 3 / 8, atol=0.02)  # log-spaced
    assert c.thin == 9 and "thinned to <= 9" in repr(c)
    # thinning happens after the warm-up rule
    c = cv.load_curves(df, thin=5)
    assert c.step.min() >= 5000 and np.all(c.run_table()["n_points"] == 5)
    assert len(cv.load_curves(table(), warmup=0, thin=50)) == 30  # short runs are untouched
    with pytest.raises(DataError, match="thin must be"):
        cv.load_curves(df, thin=1)


@pytest.mark.skipif(not OPT.is_file(), reason=f"OPT curves not found at {OPT} (../shared/data beside the clone)")
def test_real_opt_curves():
    raw = pd.read_csv(OPT)
    c = cv.load_curves(OPT, warmup=0)
    assert len(c) == len(raw) == 142 and c.n_runs == 6
    assert c.N_nonembed is not None and c.lr_schedule is not None
    np.testing.assert_allclose(c.tokens, raw["tokens"])
    assert c.run_table().loc["OPT-175B", "batch_tokens"] == 2e6
    # the default rule drops the first checkpoint of every run, and more of the long 125M run
    d = cv.load_curves(OPT)
    drops = d.run_table()["n_dropped_warmup"].to_dict()
    assert drops == {"OPT-125M": 7, "OPT-1.3B": 3, "OPT-6.7B": 2, "OPT-13B": 1, "OPT-30B": 1, "OPT-175B": 1}
    assert d.run_table().loc["OPT-175B", "warmup_cutoff"] == 7000  # max(2 x 2000 warm-up steps, 5% of 140000)
    # non-monotone losses (noted in the README) are kept
    assert np.any(np.diff(c.curve("OPT-125M").loss) > 0)
    np.testing.assert_allclose(d.compute("kaplan"), 6 * d.N_nonembed * d.tokens)


# --- simulator ------------------------------------------------------------------------------------

def test_simulator_round_trips_and_follows_the_law():
    df = cv.simulate_curves(seed=3)
    assert df.attrs["params"] == K.KAPLAN_STEPS
    c = cv.load_curves(df, warmup=0)
    assert c.n_runs == 6 * 3 and len(c) == 18 * 30
    np.testing.assert_allclose(df["loss_law"], K.loss_steps(K.KAPLAN_STEPS, df["N"], df["step"],
                                                            df["batch_tokens"]))
    quiet = cv.simulate_curves(noise=0)
    np.testing.assert_array_equal(quiet["loss"], quiet["loss_law"])
    # larger batches reach a lower loss in the same number of steps; larger models too
    last = quiet.groupby("run").tail(1).set_index(["N", "batch_tokens"])["loss"]
    assert last.loc[(1e8, 2.0**21)] < last.loc[(1e8, 2.0**17)] and last.loc[(3e8, 2.0**19)] < last.loc[(1e7, 2.0**19)]
    assert cv.load_curves(df).n_dropped_warmup.sum() > 0  # the default rule applies to simulated curves too
    other = cv.simulate_curves(alpha_B=0.3, S_c=1e3, noise=0)
    assert other.attrs["params"]["alpha_B"] == 0.3 and not np.allclose(other["loss"], quiet["loss"])
    with pytest.raises(ValueError, match="unknown constants"):
        cv.simulate_curves(E=1.7)
    with pytest.raises(ValueError, match="rho"):
        cv.simulate_curves(noise={"rho": 1.0})


def test_simulator_noise_has_run_offsets_and_ar1():
    df = cv.simulate_curves(sizes=np.geomspace(1e6, 1e9, 40), batch_sizes=[2.0**19, 2.0**20], checkpoints=60,
                            noise={"run_sd": 0.02, "sigma": 0.004, "rho": 0.7}, seed=1)
    res = np.log(df["loss"] / df["loss_law"])
    g = res.groupby(df["run"])
    offsets = g.mean()
    assert offsets.std() == pytest.approx(0.02, rel=0.25)
    within = res - g.transform("mean")
    lag = [np.corrcoef(w.to_numpy()[:-1], w.to_numpy()[1:])[0, 1] for _, w in within.groupby(df["run"])]
    assert np.mean(lag) == pytest.approx(0.7, abs=0.1)  # (mean removal biases it down a little)
    assert within.std() < 0.004 * 1.1


# --- Approach 1 from curves -----------------------------------------------------------------------

def one_batch_curves(noise=None, seed=1):
    B = 2.0**19
    df = cv.simulate_curves(sizes=np.geomspace(1e6, 1e9, 13), batch_sizes=[B], steps=1e6, checkpoints=60,
                            first_fraction=1e-3, noise=noise, seed=seed)
    return cv.load_curves(df, warmup=0), B


def true_slope(points, B):
    """Least-squares slope of the law's fixed-batch optimum N_opt(C) over the fitted budgets."""
    C = points.loc[points["used"], "C"].to_numpy()
    N_opt, _ = K.fixed_batch_optimum(K.KAPLAN_STEPS, C, B, N_grid=np.geomspace(1e3, 1e15, 2401))
    return np.polyfit(np.log(C), np.log(N_opt[0]), 1)[0]


def test_envelope_is_the_lower_envelope():
    c, _ = one_batch_curves(noise=0)
    env = cv.envelope(c, convention="kaplan", n_bins=40)
    assert len(env) > 20 and env["n_runs"].min() >= 2
    np.testing.assert_allclose(6 * env["N_opt"] * env["D_opt"], env["C"], rtol=1e-9)
    # no curve spanning a compute value lies below the envelope there, and the winner's curve is on it
    C, x = c.compute("kaplan"), np.log(env["C"].to_numpy())
    for name, one in c.by_run():
        xc = np.log(C[c.run == name])
        inside = (x >= xc[0]) & (x <= xc[-1])
        here = np.interp(x[inside], xc, np.log(one.loss))
        assert np.all(here >= np.log(env["loss"].to_numpy()[inside]) - 1e-12)
        won = (env["run"].to_numpy() == name)[inside]
        np.testing.assert_allclose(here[won], np.log(env["loss"].to_numpy()[inside][won]))
    assert list(env["segment"]) == sorted(env["segment"])
    # loss along the envelope falls with compute, and the winner grows
    assert np.all(np.diff(env["loss"]) < 0) and np.all(np.diff(env["N_opt"]) >= 0)


def test_approach1_recovers_the_fixed_batch_exponent():
    c, B = one_batch_curves(noise=0)
    r = cv.approach1(c, convention="kaplan", n_bins=80)
    a_true = true_slope(r.points, B)
    assert 0.72 < a_true < 0.82  # fixed batch 2^19, 1e16..1e20 FLOPs: between Kaplan's 0.73 and 0.88
    assert r.a == pytest.approx(a_true, abs=0.02)
    assert r.exponent.loc["a", "median"] + r.exponent.loc["b", "median"] == pytest.approx(1.0, abs=0.01)
    assert not r.points["used"].all() and set(r.points.loc[~r.points["used"], "reason"]) != {""}
    # with the simulator's default noise the band holds the truth and is wider
    for seed in (1, 2):
        noisy, _ = one_batch_curves(seed=seed)
        rn = cv.approach1(noisy, convention="kaplan", n_bins=80, ci=0.9)
        e = rn.exponent.loc["a"]
        assert e["lo90"] < a_true < e["hi90"] and e["hi90"] - e["lo90"] > r.exponent.loc["a", "hi80"] - r.exponent.loc["a", "lo80"]


def test_approach1_table_and_errors():
    c, _ = one_batch_curves(noise=0)
    r = cv.approach1(c, convention="kaplan", draws=500)
    t = r.table(C=[1e18, 1e19])
    assert list(t.columns) == ["quantity", "C", "approach1", "approach1_lo80", "approach1_hi80"]
    assert list(t["quantity"]) == ["a", "b", "N_opt", "N_opt"]
    assert np.all(t["approach1_lo80"] <= t["approach1"]) and np.all(t["approach1"] <= t["approach1_hi80"])
    assert r.predict([1e18])["N_opt"].shape == (500, 1)
    with pytest.raises(ValueError, match="at least three envelope segments"):
        cv.approach1(c.select(["N=1e+06,B=524288", "N=1.78e+06,B=524288"]), convention="kaplan")
    with pytest.raises(ValueError, match="one positive finite FLOP count per checkpoint"):
        cv.envelope(c, cost=np.ones(3))
