"""Reading and validating runs: every bad input gets a DataError naming row, column and fix."""

import numpy as np
import pandas as pd
import pytest

import bayesscale as bs
from bayesscale.data import MIN_RUNS, budget_groups


def frame(n=8, **over):
    N = np.geomspace(1e8, 1e10, n)
    D = np.geomspace(1e10, 1e9, n)
    df = pd.DataFrame({"N": N, "D": D, "loss": 1.7 + 400 / N**0.34 + 400 / D**0.28})
    for k, v in over.items():
        df[k] = v
    return df


def test_reads_csv_and_frame(tmp_path):
    df = frame()
    p = tmp_path / "runs.csv"
    df.to_csv(p, index=False)
    a, b = bs.load_runs(p), bs.load_runs(df)
    assert len(a) == len(b) == 8
    np.testing.assert_allclose(a.C, 6 * a.N * a.D)
    import hashlib

    assert a.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert len(b.sha256) == 64
    assert a.run_id[0] == "row 2"  # the CSV line, header is line 1


def test_chinchilla_bundled():
    runs = bs.datasets.chinchilla()
    assert len(runs) == 245
    sub = bs.datasets.chinchilla(drop_highest_loss=5)
    assert len(sub) == 240 and sub.loss.max() < np.sort(runs.loss)[-5]


def test_D_from_C():
    df = frame()
    df["C"] = 6 * df.N * df.D
    runs = bs.load_runs(df.drop(columns=["D"]))
    np.testing.assert_allclose(runs.D, df.D)


def test_column_mapping():
    df = frame().rename(columns={"N": "params", "loss": "eval_loss"})
    runs = bs.load_runs(df, columns={"N": "params", "loss": "eval_loss"})
    assert len(runs) == 8
    with pytest.raises(bs.DataError, match="unknown names"):
        bs.load_runs(df, columns={"params": "N"})


@pytest.mark.parametrize("column", ["N", "loss"])
def test_missing_column(column):
    with pytest.raises(bs.DataError, match=f"no column '{column}'.*columns="):
        bs.load_runs(frame().drop(columns=[column]))


def test_missing_D_and_C():
    with pytest.raises(bs.DataError, match="no column 'D'.*Or give C"):
        bs.load_runs(frame().drop(columns=["D"]))


@pytest.mark.parametrize("value, what", [("abc", "not a number"), (np.nan, "empty"), (np.inf, "infinite"),
                                         (0.0, "not positive"), (-3.0, "not positive")])
@pytest.mark.parametrize("column", ["N", "D", "loss"])
def test_bad_values_name_row_and_column(value, what, column):
    df = frame().astype(object)
    df.loc[3, column] = value
    with pytest.raises(bs.DataError, match=rf"row 3.*column '{column}'.*{what}.*Fix or remove"):
        bs.load_runs(df)


def test_bad_value_in_csv_names_line(tmp_path):
    df = frame().astype(object)
    df.loc[4, "D"] = "n/a?"
    p = tmp_path / "runs.csv"
    df.to_csv(p, index=False)
    with pytest.raises(bs.DataError, match=r"row 6 of runs.csv.*column 'D'"):
        bs.load_runs(p)


def test_bad_C():
    df = frame()
    df["C"] = 6 * df.N * df.D
    df.loc[2, "C"] = -1
    with pytest.raises(bs.DataError, match="column 'C'.*not positive"):
        bs.load_runs(df)


def test_empty_table(tmp_path):
    with pytest.raises(bs.DataError, match="empty"):
        bs.load_runs(frame().iloc[:0])
    p = tmp_path / "empty.csv"
    p.write_text("")
    with pytest.raises(bs.DataError, match="cannot be read"):
        bs.load_runs(p)


def test_too_few_runs():
    with pytest.raises(bs.DataError, match=f"{MIN_RUNS - 1} runs, fewer than"):
        bs.load_runs(frame(MIN_RUNS - 1))


@pytest.mark.parametrize("column", ["N", "D"])
def test_single_distinct_value_not_identifiable(column):
    df = frame()
    df[column] = 1e9
    with pytest.raises(bs.DataError, match=f"every run has {column}.*not identifiable"):
        bs.load_runs(df)


def test_inconsistent_C_warns_naming_runs():
    df = frame()
    df["C"] = 6 * df.N * df.D
    df.loc[[1, 5], "C"] *= 2
    with pytest.warns(bs.DataWarning, match=r"2 runs have C.*row 1, row 5"):
        runs = bs.load_runs(df)
    assert len(runs) == 8  # nothing dropped


def test_missing_file_and_wrong_type(tmp_path):
    with pytest.raises(bs.DataError, match="no such file"):
        bs.load_runs(tmp_path / "nope.csv")
    with pytest.raises(bs.DataError, match="CSV path or a pandas DataFrame"):
        bs.load_runs([1, 2, 3])


def test_data_error_is_value_error():
    assert issubclass(bs.DataError, ValueError)


def test_runs_are_immutable():
    runs = bs.load_runs(frame())
    with pytest.raises(ValueError):
        runs.N[0] = 1.0
    with pytest.raises(AttributeError):
        runs.N = np.ones(8)


def test_budget_groups_and_labels():
    C = np.array([1e19, 1.05e19, 3e19, 3.1e19, 1e20])
    np.testing.assert_array_equal(budget_groups(C), [0, 0, 1, 1, 2])
    runs = bs.load_runs(frame(budget=["a", "a", "b", "b", "c", "c", "d", "d"]))
    assert runs.n_budgets == 4


def test_simulate_runs_recovers_law():
    runs = bs.simulate_runs(sigma=1e-9, seed=0)
    p = bs.simulate.CHINCHILLA_FIT
    np.testing.assert_allclose(runs.loss, bs.laws.loss(p, runs.N, runs.D), rtol=1e-6)
    assert runs.n_budgets == 7 and len(runs) == 63


# ---------------------------------------------------------------------------
# issue 12: bad input that used to pass or mislead


def test_item04_mapping_to_a_missing_column_is_an_error():
    df = frame().rename(columns={"loss": "eval_loss"})
    df["loss"] = df["eval_loss"] * 2  # an unrelated column called loss
    with pytest.raises(bs.DataError, match="no column 'eval_lss'.*spelling"):
        bs.load_runs(df, columns={"loss": "eval_lss"})


def test_item02_mapping_onto_an_existing_column_is_an_error():
    df = frame()
    df["params"] = df["N"] * 2
    with pytest.raises(bs.DataError, match="also has a column 'N'.*ambiguous"):
        bs.load_runs(df, columns={"N": "params"})


def test_item06_overflowing_compute_is_rejected_at_load():
    df = frame()
    df.loc[3, ["N", "D"]] = 1e200
    with pytest.raises(bs.DataError, match=r"row 3.*C = inf.*floating-point"):
        bs.load_runs(df)
    df = frame()
    df["C"] = 6 * df.N * df.D
    df.loc[2, "C"] = 1e300
    df.loc[2, "N"] = 1e-20
    with pytest.raises(bs.DataError, match="row 2"):
        bs.load_runs(df.drop(columns=["D"]))


def test_item11_semicolon_file_gets_a_delimiter_hint(tmp_path):
    p = tmp_path / "runs.csv"
    frame().to_csv(p, index=False, sep=";")
    with pytest.raises(bs.DataError, match="semicolons.*comma-separated"):
        bs.load_runs(p)
