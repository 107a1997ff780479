"""Which law to believe: compare, average, the report's "which law" section and the compare command."""

import pandas as pd
import pytest

import bayesscale as bs
from bayesscale.cli import main

from .conftest import fit_quietly


@pytest.fixture(scope="module")
def two_laws(synthetic_runs):
    kw = dict(extrapolation="none", seed=7)
    return [fit_quietly(synthetic_runs, **kw), fit_quietly(synthetic_runs, law="kaplan", **kw)]


def test_compare_ranks_the_true_law_and_reports_every_column(two_laws):
    table = bs.compare(two_laws, budgets=[1e22], backtest=False)
    assert list(table.law) == ["chinchilla", "kaplan"]  # the data are drawn from the Chinchilla law
    assert table.weight.sum() == pytest.approx(1.0)
    assert table.loc[0, "elpd_diff"] == 0 and table.loc[1, "elpd_diff"] < 0
    for col in ("elpd_loo", "elpd_se", "p_loo", "pareto_k_bad", "N_opt@1e+22", "N_opt_lo80@1e+22", "N_opt_hi80@1e+22"):
        assert col in table.columns
    row = table.iloc[0]
    assert row["N_opt_lo80@1e+22"] < row["N_opt@1e+22"] < row["N_opt_hi80@1e+22"]


def test_compare_with_backtest_scores_beyond_the_data(two_laws):
    table = bs.compare(two_laws, backtest=True, backtest_settings=dict(chains=2, warmup=150, draws=150))
    assert {"backtest_mlpd", "backtest_coverage_90", "backtest_folds"} <= set(table.columns)
    assert (table.backtest_folds > 0).all()
    best = table.sort_values("backtest_mlpd", ascending=False).iloc[0]
    assert best.law == "chinchilla"


def test_compare_refuses_fits_of_different_runs(two_laws):
    other = fit_quietly(bs.simulate_runs(seed=99), extrapolation="none")
    with pytest.raises(ValueError, match="different runs"):
        bs.compare([two_laws[0], other], backtest=False)
    with pytest.raises(TypeError, match="list of Posterior"):
        bs.compare(["not a posterior"], backtest=False)


def test_average_mixes_draws_by_weight(two_laws):
    a = bs.average(two_laws, weights=[1.0, 0.0], budgets=[1e22])
    b = two_laws[0].allocate([1e22])
    assert a.attrs["weights"] == {"chinchilla": 1.0, "kaplan": 0.0}
    assert a.loc[0, "N_opt"] == pytest.approx(b.loc[0, "N_opt"], rel=0.02)
    mixed = bs.average(two_laws, weights=[0.5, 0.5], budgets=[1e22])
    lo = min(p.allocate([1e22]).loc[0, "N_opt_lo80"] for p in two_laws)
    hi = max(p.allocate([1e22]).loc[0, "N_opt_hi80"] for p in two_laws)
    assert lo * 0.9 <= mixed.loc[0, "N_opt_lo80"] <= mixed.loc[0, "N_opt_hi80"] <= hi * 1.1
    n = {k: v.shape[0] for k, v in mixed.attrs["draws"].items()}
    assert len(set(n.values())) == 1
    with pytest.raises(ValueError, match="weights must be 2"):
        bs.average(two_laws, weights=[1.0], budgets=[1e22])
    with pytest.raises(ValueError, match="budgets"):
        bs.average(two_laws, weights=[1.0, 1.0])


def test_report_has_a_which_law_section(two_laws, tmp_path):
    table = bs.compare(two_laws, budgets=[1e22], backtest=False)
    paths = bs.report(two_laws[0], budgets=[1e22], out=tmp_path / "rep", comparison=table)
    md = paths.markdown.read_text()
    assert "Which law" in md and "kaplan" in md and "Stacking weight" in md
    assert "N_opt at 1e+22 FLOPs" in md
    import json

    facts = json.loads(paths.json.read_text())
    assert [r["law"] for r in facts["laws"]["rows"]] == ["chinchilla", "kaplan"]
    tied = table.assign(elpd_diff=[0.0, -0.5], diff_se=[0.0, 1.0], n_params=[6, 5],
                        preferred=[False, True])  # as if kaplan were the smaller law, half an se behind
    md = bs.report(two_laws[0], budgets=[1e22], out=tmp_path / "tie", comparison=tied).markdown.read_text()
    assert "cannot be told apart" in md and "**kaplan** (5 parameters), is preferred" in md
    with pytest.raises(ValueError, match="table of bayesscale.compare"):
        bs.report(two_laws[0], budgets=[1e22], out=tmp_path / "rep2", comparison=pd.DataFrame({"x": [1]}))


def test_compare_command(tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    bs.simulate_runs(seed=5, as_frame=True).to_csv(csv, index=False)
    out = tmp_path / "compare.csv"
    code = main(["compare", str(csv), "--law", "chinchilla", "--law", "kaplan", "--budget", "1e22", "--no-backtest",
                 "--chains", "2", "--warmup", "200", "--draws", "200", "--no-progress", "--out", str(out)])
    text = capsys.readouterr().out
    assert code in (0, 1)
    assert "Which law to believe" in text and "Model-averaged allocation" in text
    assert "Preferred: chinchilla (the simplest law within 2 standard errors" in text
    assert list(pd.read_csv(out).law)[0] == "chinchilla"
    assert main(["compare", str(csv), "--law", "chinchilla"]) == 2
    assert "at least two laws" in capsys.readouterr().err
    assert main(["compare", str(csv), "--law", "nope", "--law", "kaplan"]) == 2


def test_preferred_law_is_the_simplest_within_two_standard_errors():
    tied = pd.DataFrame({"law": ["coupled", "chinchilla", "kaplan"], "n_params": [6, 5, 5],
                         "elpd_loo": [100.0, 99.0, 80.0], "diff_se": [0.0, 1.0, 2.0]})
    assert bs.preferred_law(tied) == "chinchilla"  # 1 elpd behind with se 1: a tie; kaplan is 20 behind
    clear = tied.assign(elpd_loo=[100.0, 95.0, 80.0])
    assert bs.preferred_law(clear) == "coupled"    # 5 behind with se 1: the larger law is clearly better
    assert bs.preferred_law(tied, n_se=0.5) == "coupled"


def test_compare_marks_one_preferred_law(two_laws):
    table = bs.compare(two_laws, backtest=False)
    assert table["preferred"].sum() == 1
    assert table.attrs["preferred"] == table.loc[table["preferred"], "law"].item() == "chinchilla"
