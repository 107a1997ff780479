"""The command line: output, exit codes, one-line errors."""

import subprocess
import sys

import pandas as pd
import pytest

import bayesscale as bs
from bayesscale.cli import main

SMALL_ARGS = ["--chains", "2", "--warmup", "300", "--draws", "300", "--no-progress"]


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "runs.csv"
    bs.simulate_runs(seed=4, as_frame=True).to_csv(path, index=False)
    return path


def test_fit_prints_table_and_verdict_and_writes_posterior(runs_csv, tmp_path, capsys):
    out = tmp_path / "fit.nc"
    code = main(["fit", str(runs_csv), "--out", str(out), "--draws", "600", "--chains", "2", "--warmup", "500",
                 "--no-progress"])
    text = capsys.readouterr().out
    assert "alpha" in text and "r_hat" in text and "ess_bulk" in text
    assert ("OK: the sampler diagnostics pass" in text) == (code == 0)
    assert code in (0, 1)
    post = bs.load_posterior(out)
    assert len(post.runs) == 63


def test_failed_diagnostics_exit_1(runs_csv, capsys):
    code = main(["fit", str(runs_csv), "--chains", "2", "--warmup", "10", "--draws", "20", "--no-progress"])
    assert code == 1
    assert "NOT OK" in capsys.readouterr().out


@pytest.mark.parametrize("content, needle", [
    ("N,D\n1,2\n", "no column 'loss'"),
    ("N,D,loss\n1e9,1e10,abc\n", "not a number"),
    ("N,D,loss\n-1,1e10,2\n", "not positive"),
])
def test_bad_input_exit_2_one_line(tmp_path, capsys, content, needle):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    code = main(["fit", str(p), *SMALL_ARGS])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_file_and_column_mapping(tmp_path, runs_csv, capsys):
    assert main(["fit", str(tmp_path / "none.csv"), *SMALL_ARGS]) == 2
    assert "no such file" in capsys.readouterr().err
    df = pd.read_csv(runs_csv).rename(columns={"loss": "eval_loss"})
    p = tmp_path / "renamed.csv"
    df.to_csv(p, index=False)
    assert main(["fit", str(p), "--column", "loss=eval_loss", *SMALL_ARGS]) in (0, 1)
    assert main(["fit", str(p), "--column", "loss", *SMALL_ARGS]) == 2
    assert "NAME=YOURS" in capsys.readouterr().err


def test_entry_point_help_and_usage_errors():
    r = subprocess.run([sys.executable, "-m", "bayesscale.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "fit" in r.stdout and "demo" in r.stdout and "exit codes" in r.stdout
    r = subprocess.run([sys.executable, "-m", "bayesscale.cli", "fit"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
