"""The command line: output, exit codes, one-line errors."""

import os
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


# ---------------------------------------------------------------------------
# issue 12: every bad input and bad path exits 2 with one line, before any fitting


def _one_line_error(capsys, needle):
    err = capsys.readouterr().err
    assert needle in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_item02_bad_output_paths_exit_2_before_fitting(runs_csv, tmp_path, capsys):
    import time

    t0 = time.perf_counter()
    assert main(["fit", str(runs_csv), "--out", str(tmp_path), *SMALL_ARGS]) == 2
    _one_line_error(capsys, "is a directory")
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert main(["backtest", str(runs_csv), "--out", str(f), *SMALL_ARGS]) == 2
    _one_line_error(capsys, "is a file")
    assert main(["report", str(runs_csv), "--budget", "1e22", "--out", str(f), *SMALL_ARGS]) == 2
    _one_line_error(capsys, "is a file")
    assert main(["fit", str(runs_csv), "--out", str(f / "fit.nc"), *SMALL_ARGS]) == 2
    _one_line_error(capsys, "not a directory")
    assert time.perf_counter() - t0 < 5, "the paths were checked only after a fit"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="Linux /proc")
def test_item02_out_where_nothing_can_be_written_exits_2(runs_csv, capsys):
    # /proc refuses new files even to root
    assert main(["fit", str(runs_csv), "--out", "/proc/bayesscale-test/fit.nc", *SMALL_ARGS]) == 2
    _one_line_error(capsys, "--out /proc/bayesscale-test/fit.nc: cannot write in /proc")
    assert main(["backtest", str(runs_csv), "--out", "/proc/bayesscale-test", *SMALL_ARGS]) == 2
    _one_line_error(capsys, "cannot write in /proc")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere")
def test_item02_unwritable_out_exits_2(runs_csv, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        assert main(["fit", str(runs_csv), "--out", str(locked / "fit.nc"), *SMALL_ARGS]) == 2
        _one_line_error(capsys, "cannot write")
        assert main(["report", str(runs_csv), "--budget", "1e22", "--out", str(locked / "rep"), *SMALL_ARGS]) == 2
        _one_line_error(capsys, "cannot write")
    finally:
        os.chmod(locked, 0o700)


def test_item02_damaged_posterior_files_exit_2(tmp_path, capsys):
    import json

    import xarray as xr

    from bayesscale.model import ModelSpec

    p = tmp_path / "fit.nc"
    tree = xr.DataTree()
    tree.attrs.update(bayesscale_spec=json.dumps(ModelSpec().to_dict()),
                      bayesscale_settings=json.dumps({"chains": 2, "bogus": 1}), bayesscale_info="{}")
    tree.to_netcdf(p, engine="netcdf4")
    assert main(["report", str(p), "--budget", "1e22", "--out", str(tmp_path / "rep")]) == 2
    _one_line_error(capsys, "fit.nc")
    tree.attrs["bayesscale_settings"] = json.dumps({"chains": 2, "warmup": 100, "draws": 100})
    tree.to_netcdf(p, engine="netcdf4")
    assert main(["report", str(p), "--budget", "1e22", "--out", str(tmp_path / "rep")]) == 2
    _one_line_error(capsys, "fit.nc")


def test_item02_mapping_collisions_and_typos_exit_2(runs_csv, tmp_path, capsys):
    df = pd.read_csv(runs_csv)
    df["params"] = df["N"]
    p = tmp_path / "both.csv"
    df.to_csv(p, index=False)
    assert main(["fit", str(p), "--column", "N=params", *SMALL_ARGS]) == 2
    _one_line_error(capsys, "ambiguous")
    assert main(["fit", str(p), "--column", "loss=eval_lss", *SMALL_ARGS]) == 2
    _one_line_error(capsys, "eval_lss")
    assert main(["fit", str(p), "--drop", "row 999", *SMALL_ARGS]) == 2
    _one_line_error(capsys, "no run has that id")


def test_item11_interrupt_during_import_is_one_line(runs_csv):
    # Ctrl-C while JAX loads, made deterministic: the import of jax raises KeyboardInterrupt
    code = ("import sys\n"
            "class Interrupt:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'jax':\n"
            "            raise KeyboardInterrupt\n"
            "sys.meta_path.insert(0, Interrupt())\n"
            "from bayesscale.cli import main\n"
            f"sys.exit(main(['fit', {str(runs_csv)!r}]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 130, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.strip() == "bayesscale fit: interrupted"


# ---------------------------------------------------------------------------
# item 13: the CLI can drop runs, and names runs the law cannot explain


def test_item13_cli_names_far_off_runs_and_can_drop_them(capsys):
    path = bs.datasets.chinchilla_path()
    args = ["--chains", "2", "--warmup", "300", "--draws", "300", "--no-progress", "--extrapolation", "none"]
    main(["fit", path, *args])
    out = capsys.readouterr().out
    assert "from 245 runs" in out and "far off the law" in out
    assert "row 3 (+" in out and "row 2 (+" in out
    main(["fit", path, "--drop-highest-loss", "5", *args])
    cap = capsys.readouterr()
    assert "from 240 runs" in cap.out and "far off the law" not in cap.out
    assert "dropped 5 runs: row 2, row 3" in cap.err
    main(["fit", path, "--drop", "row 3", "--drop", "row 2", *args])
    cap = capsys.readouterr()
    assert "from 243 runs" in cap.out and "dropped 2 runs: row 2, row 3" in cap.err


# ---------------------------------------------------------------------------
# item 14: the backtest answers in a sentence, with units on every column


def test_item14_backtest_with_one_held_out_run_says_too_few_to_tell(tmp_path, capsys):
    df = bs.simulate_runs(seed=4, as_frame=True)
    big = df.iloc[[int(df["C"].idxmax())]].copy() if "C" in df else df.iloc[[-1]].copy()
    big["N"] *= 30
    big["D"] *= 30
    if "C" in big:
        big["C"] = 6 * big["N"] * big["D"]
    p = tmp_path / "runs.csv"
    pd.concat([df, big]).to_csv(p, index=False)
    main(["backtest", str(p), "--holdout", "largest_budget", *SMALL_ARGS])
    out = capsys.readouterr().out
    assert "Would these intervals have held? Too few held-out runs to tell." in out
    assert "of 1 held-out run fell inside its 90% predictive interval" in out
    assert "could be anywhere from" in out
    for unit in ("bias (log loss)", "width_90 (loss)", "extrapolation_dex (decades)", "coverage_90 (fraction)",
                 "crps (log loss)", "mlpd (nats)"):
        assert unit in out


def test_item14_verdict_sentence_levels():
    from bayesscale.cli import _coverage_interval

    lo, hi = _coverage_interval(0, 1)
    assert lo == 0 and 0.7 < hi < 0.9
    lo, hi = _coverage_interval(90, 100)
    assert lo < 0.9 < hi
    lo, hi = _coverage_interval(40, 100)
    assert hi < 0.9


# ---------------------------------------------------------------------------
# item 16: fit --out says it is calibrating


def test_item16_fit_out_says_it_is_calibrating(runs_csv, tmp_path, capsys):
    main(["fit", str(runs_csv), "--out", str(tmp_path / "fit.nc"), "--chains", "2", "--warmup", "100",
          "--draws", "100", "--no-progress"])
    err = capsys.readouterr().err
    assert "calibrating the extrapolation error" in err and "calibrated in" in err
