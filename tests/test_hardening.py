"""Issue 12: faults and bad input found by a fault campaign, each pinned by a test."""

import os
import stat

import numpy as np
import pytest

import bayesscale as bs
from bayesscale.posterior import PosteriorFileError

from .conftest import fit_quietly


@pytest.fixture(scope="module")
def tiny_posts(synthetic_runs):
    """Two different short fits of the same runs (different seeds)."""
    kw = dict(chains=2, warmup=100, draws=100, extrapolation="none")
    return fit_quietly(synthetic_runs, seed=5, **kw), fit_quietly(synthetic_runs, seed=6, **kw)


def test_item07_reload_after_overwrite_reads_the_new_posterior(tiny_posts, tmp_path):
    import gc
    import shutil

    a, b = tiny_posts
    p, q = tmp_path / "fit.nc", tmp_path / "other.nc"
    a.to_netcdf(p)
    b.to_netcdf(q)
    gc.disable()  # an open file must not wait for the garbage collector to be closed
    try:
        first = bs.load_posterior(p)
        np.testing.assert_array_equal(first.samples["alpha"], a.samples["alpha"])
        shutil.copyfile(q, p)  # overwritten in place
        again = bs.load_posterior(p)
        np.testing.assert_array_equal(again.samples["alpha"], b.samples["alpha"])
    finally:
        gc.enable()


def test_item07_flipped_bytes_are_detected_by_the_checksum(tiny_posts, tmp_path):
    a, _ = tiny_posts
    p = tmp_path / "fit.nc"
    a.to_netcdf(p)
    good = p.read_bytes()
    # flip 4 bytes inside the stored alpha draws: find their float64 bytes in the file
    needle = np.ascontiguousarray(a.samples["alpha"][0, :4], dtype="<f8").tobytes()
    at = good.find(needle)
    if at < 0:
        needle = np.ascontiguousarray(a.samples["alpha"][0, :4], dtype=">f8").tobytes()
        at = good.find(needle)
    assert at >= 0, "the draws are stored uncompressed"
    bad = bytearray(good)
    bad[at + 8 + 4: at + 8 + 8] = bytes(x ^ 0x5A for x in bad[at + 8 + 4: at + 8 + 8])
    p.write_bytes(bytes(bad))
    with pytest.raises(PosteriorFileError, match=r"fit\.nc.*checksum.*damaged.*refit"):
        bs.load_posterior(p)


def test_item11_malformed_json_attribute_names_file_and_fix(tiny_posts, tmp_path):
    import xarray as xr

    a, _ = tiny_posts
    p = tmp_path / "fit.nc"
    tree = a.tree.copy()
    tree.attrs["bayesscale_settings"] = '{"chains": 2,'
    tree.attrs["bayesscale_extrapolation"] = "null"
    tree.to_netcdf(p, engine="netcdf4")
    with pytest.raises(PosteriorFileError, match=r"fit\.nc.*bayesscale_settings.*not valid JSON.*to_netcdf"):
        bs.load_posterior(p)
    # a missing group and an unknown settings key: typed errors naming the file, not KeyError/TypeError
    tree = a.tree.copy()
    tree.attrs["bayesscale_settings"] = '{"chains": 2, "warmup": 100, "draws": 100, "bogus": 1}'
    tree.to_netcdf(p, engine="netcdf4")
    with pytest.raises(PosteriorFileError, match=r"fit\.nc.*bogus"):
        bs.load_posterior(p)
    tree = xr.DataTree.from_dict({k: v.to_dataset() for k, v in a.tree.children.items() if k != "sample_stats"})
    tree.attrs.update(a.tree.attrs)
    tree.to_netcdf(p, engine="netcdf4")
    with pytest.raises(PosteriorFileError, match=r"fit\.nc.*sample_stats"):
        bs.load_posterior(p)


def test_item09_saved_files_respect_the_umask(tiny_posts, tmp_path):
    a, _ = tiny_posts
    old = os.umask(0o022)
    try:
        p = a.to_netcdf(tmp_path / "fit.nc")
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
        os.umask(0o002)
        p = a.to_netcdf(tmp_path / "fit2.nc")
        assert stat.S_IMODE(p.stat().st_mode) == 0o664
    finally:
        os.umask(old)


def test_item11_allocate_rejects_strings_like_report(tiny_posts):
    a, _ = tiny_posts
    for bad in ("1e22", ["1e22"], np.array(["1e22"])):
        with pytest.raises(ValueError, match="not text"):
            a.allocate(bad)
    with pytest.raises(ValueError, match="not text"):
        bs.bayes_decision(a, "1e22")
    assert len(a.allocate([1e22])) == 1


# ---------------------------------------------------------------------------
# item 1: the program cache is verified, falls back on any failure, and refuses unsafe directories


def _fit(runs, **kw):
    return fit_quietly(runs, **{"chains": 2, "warmup": 40, "draws": 40, "extrapolation": "none", "retry": False, **kw})


@pytest.fixture
def program_cache(tmp_path, monkeypatch):
    """An empty export cache in tmp_path; in-process programs forgotten, as in a fresh process."""
    from bayesscale import inference

    d = tmp_path / "cache"
    (d / "programs").mkdir(parents=True, mode=0o700)
    monkeypatch.setitem(inference._CACHE_STATE, "dir", d)
    monkeypatch.setattr(inference, "_LOADED", {})
    return d / "programs"


def _forget():
    from bayesscale import inference

    inference._LOADED.clear()


def test_item01_corrupt_cache_entry_is_replaced_not_fatal(program_cache):
    runs = bs.simulate_runs(sigma=0.01, seed=21)
    first = _fit(runs, seed=4)
    files = sorted(program_cache.glob("*-advance.jaxexport"))
    assert len(files) == 1
    raw = bytearray(files[0].read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte inside the stored program
    files[0].write_bytes(bytes(raw))
    _forget()
    again = _fit(runs, seed=4)
    np.testing.assert_array_equal(again.samples["alpha"], first.samples["alpha"])
    assert files[0].read_bytes() != bytes(raw), "the damaged entry was replaced"


def test_item01_program_that_fails_on_first_use_falls_back(program_cache):
    from bayesscale import inference

    runs = bs.simulate_runs(sigma=0.01, seed=21)
    first = _fit(runs, seed=4)
    init_f = next(program_cache.glob("*-init.jaxexport"))
    adv_f = next(program_cache.glob("*-advance.jaxexport"))
    key = init_f.name.split("-")[0]
    # a well-formed, correctly signed entry that deserialises but cannot run: advance stored as init
    payload = inference._read_program(adv_f, key, "advance")
    inference._write_program(init_f, key, "init", payload)
    _forget()
    again = _fit(runs, seed=4)
    np.testing.assert_array_equal(again.samples["alpha"], first.samples["alpha"])
    assert inference._read_program(init_f, key, "init") != payload, "the failing entry was replaced"


def test_item01_program_of_another_model_is_not_used(program_cache):
    runs = bs.simulate_runs(sigma=0.01, seed=21)
    normal = _fit(runs, seed=4, likelihood="normal")
    normal_files = {f.name: f.read_bytes() for f in program_cache.iterdir()}
    robust = _fit(runs, seed=4)
    robust_names = sorted(set(f.name for f in program_cache.iterdir()) - set(normal_files))
    assert len(robust_names) == 2
    for name in robust_names:  # swap the Student-t programs for the normal ones
        kind = name.split("-")[1]
        src = next(n for n in normal_files if n.endswith(kind))
        (program_cache / name).write_bytes(normal_files[src])
    _forget()
    again = _fit(runs, seed=4)
    np.testing.assert_array_equal(again.samples["alpha"], robust.samples["alpha"])
    assert not np.array_equal(again.samples["alpha"], normal.samples["alpha"])


def test_item01_cache_writable_by_others_is_refused(tmp_path):
    import jax

    from bayesscale import inference

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    state = dict(inference._CACHE_STATE)
    jax_dir = jax.config.jax_compilation_cache_dir
    try:
        with pytest.warns(inference.CacheWarning, match=r"other users can write.*chmod go-w"):
            assert bs.configure_cache(shared) is None
        assert inference._CACHE_STATE["dir"] is None
        os.chmod(shared, 0o755)
        assert bs.configure_cache(shared) == shared
        fresh = tmp_path / "new" / "cache"
        assert bs.configure_cache(fresh) == fresh and stat.S_IMODE(fresh.stat().st_mode) == 0o700
    finally:
        inference._CACHE_STATE.update(state)
        jax.config.update("jax_compilation_cache_dir", jax_dir)


# ---------------------------------------------------------------------------
# item 20: a fixed chunk size, whatever the total


def test_item20_odd_totals_take_few_round_trips():
    from bayesscale.inference import SamplerSettings, round_trip_count

    s = SamplerSettings(chains=2, warmup=1001, draws=1000)
    assert s.chunk > 200 and -(-2001 // s.chunk) <= 10
    runs = bs.simulate_runs(sigma=0.01, seed=22)
    before = round_trip_count()
    post = _fit(runs, warmup=1001, draws=1000, seed=1)
    assert round_trip_count() - before == -(-2001 // s.chunk) == 9
    assert post.samples["alpha"].shape == (2, 1000)
    assert post.stats["diverging"].shape == (2, 1000)


# ---------------------------------------------------------------------------
# item 16: the progress bar says what is happening


def test_item16_progress_says_compiling_then_warmup_and_sampling(capsys):
    runs = bs.simulate_runs(sigma=0.01, seed=23)
    _fit(runs, warmup=337, draws=263, progress=True)  # settings no other test uses: compiles here
    err = capsys.readouterr().err
    for stage in ("compiling", "warm-up", "sampling"):
        assert stage in err, err[-500:]


# ---------------------------------------------------------------------------
# items 3 and 13: runs far off the law are named, whatever the likelihood does with them


@pytest.fixture(scope="module")
def outlier_post(synthetic_runs):
    df = synthetic_runs.to_frame().drop(columns=["budget"])
    df.index = [f"run{i}" for i in range(len(df))]
    df.loc["run20", "loss"] *= 10  # about 300 noise scales off
    return fit_quietly(bs.load_runs(df), chains=2, warmup=200, draws=200, seed=3, extrapolation="none")


def test_item03_gross_outlier_is_named_in_the_verdict(outlier_post):
    v = outlier_post.check()
    far = [n for n in v.notes if "far off the law" in n]
    assert len(far) == 1 and "run20" in far[0] and "1 run far off" in far[0], v.notes
    assert v.table.loc["max |residual| (noise scales)", "value"] > 100
    # the Student-t likelihood absorbed it: PSIS-LOO alone would not have flagged it
    assert not any("influential" in n and "run20" in n for n in v.notes)


def test_item03_well_specified_data_has_no_outlier_note(synthetic_post):
    assert not any("far off the law" in n for n in synthetic_post.check().notes)


def test_item13_report_names_runs_far_off_the_law(outlier_post, tmp_path):
    paths = bs.report(outlier_post, budgets=[1e22], out=tmp_path / "rep")
    md = paths.markdown.read_text(encoding="utf-8")
    assert "far off the law" in md and "run20" in md


def test_item05_budget_below_the_smallest_run_is_flagged(outlier_post, tmp_path):
    import json

    c_min = float(outlier_post.runs.C.min())
    paths = bs.report(outlier_post, budgets=[c_min / 100, 1e22], out=tmp_path / "rep")
    d = json.loads(paths.json.read_text(encoding="utf-8"))
    low, high = (b["extrapolation"] for b in d["budgets"])
    assert low["level"] == "below" and low["dex_below_smallest"] == pytest.approx(2.0)
    assert "below the smallest run" in low["message"] and "interpolation" not in low["message"]
    assert high["level"] != "below"
    assert "below the smallest run" in paths.markdown.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# item 8: the report directory is replaced as a whole; leftovers of a killed run are cleaned


_WRITER = """
import sys, itertools
from pathlib import Path
from bayesscale.reporting import _publish
out = Path(sys.argv[1])
names = ["report.json", "report.md", "report.html", "figures/a.png", "figures/b.png"]
for v in itertools.count(1):
    _publish(out, {n: (f"{v}\\n" * 20000).encode() for n in names}, [])
"""


def _snapshot(out):
    """The version of every file, read through one handle on the directory (a consistent view)."""
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        versions = set()
        for name in ("report.json", "report.md", "report.html", "figures/a.png", "figures/b.png"):
            f = os.open(name, os.O_RDONLY, dir_fd=fd)
            try:
                versions.add(os.read(f, 16).split(b"\n")[0])
            finally:
                os.close(f)
        return versions
    finally:
        os.close(fd)


def test_item08_report_directory_is_swapped_whole_and_leftovers_cleaned(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from bayesscale.reporting import _publish

    out = tmp_path / "rep"
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(out)], stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while not out.exists() and time.monotonic() - t0 < 60:
            time.sleep(0.01)
        mixed, seen = [], set()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4:
            try:
                v = _snapshot(out)
            except FileNotFoundError:  # the old copy was removed while we read it: not a mix
                continue
            seen |= v
            if len(v) > 1:
                mixed.append(v)
        assert len(seen) > 3, "the writer did not get going"
        assert not mixed, f"a reader saw files of different reports together: {mixed[:3]}"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    # whatever the kill left beside out, the next run cleans it (and a dead process's leftovers)
    (tmp_path / ".rep.99999999-x1y2.tmp").mkdir()
    (tmp_path / ".rep.abc123.tmp").mkdir()
    _publish(out, {n: b"final\n" for n in ("report.json", "report.md", "report.html")}, [])
    assert sorted(os.listdir(tmp_path)) == ["rep"]
    assert sorted(os.listdir(out)) == ["figures", "report.html", "report.json", "report.md"]


def test_item08_directory_with_other_files_is_refused(outlier_post, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not part of a report.*notes.txt"):
        bs.report(outlier_post, budgets=[1e22], out=out)
    assert os.listdir(out) == ["notes.txt"]


def test_item09_report_files_respect_the_umask(outlier_post, tmp_path):
    old = os.umask(0o002)
    try:
        paths = bs.report(outlier_post, budgets=[1e22], out=tmp_path / "rep")
    finally:
        os.umask(old)
    assert stat.S_IMODE(paths.json.stat().st_mode) == 0o664
    assert stat.S_IMODE(paths.directory.stat().st_mode) == 0o775


# ---------------------------------------------------------------------------
# item 11: draws and the device count (documented in inference.sample: 2+ devices agree, 1 differs)


def test_item11_same_draws_on_two_and_four_host_devices(tmp_path):
    import subprocess
    import sys

    kw = "chains=2, warmup=60, draws=40, seed=0, progress=False, extrapolation='none', retry=False"
    code = ("import warnings, numpy as np, bayesscale as bs; warnings.simplefilter('ignore');"
            f"p = bs.fit(bs.simulate_runs(sigma=0.01, seed=24), {kw});"
            f"np.save({str(tmp_path / 'four.npy')!r}, p.samples['alpha']); print(p.info['device'])")
    env = dict(os.environ, BAYESSCALE_HOST_DEVICES="4", BAYESSCALE_CACHE_DIR="off")
    env.pop("XLA_FLAGS", None)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "cpu x4" in r.stdout, r.stderr[-2000:]
    here = _fit(bs.simulate_runs(sigma=0.01, seed=24), chains=2, warmup=60, draws=40, seed=0)
    assert here.info["device"] == "cpu x2"
    np.testing.assert_array_equal(np.load(tmp_path / "four.npy"), here.samples["alpha"])


# ---------------------------------------------------------------------------
# items 12 and 18: the README a newcomer reads first


README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _readme_commands():
    import re

    with open(README, encoding="utf-8") as f:
        text = f.read()
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                cmds.extend(part.strip() for part in line.split("&&"))
    return cmds


def test_item12_readme_commands_run_as_written_after_setup():
    import shlex

    from bayesscale.cli import build_parser

    root = os.path.dirname(README)
    cmds = _readme_commands()
    setup = [c for c in cmds if c.startswith("python3 -m venv .venv")]
    assert setup, "the set-up commands create .venv"
    cli = [c for c in cmds if "bayesscale " in c.split(" -m ")[0] and not c.startswith(".venv/bin/pip")]
    assert len(cli) >= 4
    made = set()  # files that earlier commands write
    for c in cli:
        argv = shlex.split(c)
        assert argv[0] == ".venv/bin/bayesscale", f"{c!r}: the set-up does not put a bare bayesscale on PATH"
        a = build_parser().parse_args(argv[1:])  # every option exists
        source = getattr(a, "runs", None) or getattr(a, "source", None)
        if source:
            assert source in made or os.path.isfile(os.path.join(root, source)), f"{c!r}: {source} does not exist"
        if getattr(a, "out", None):
            made.add(a.out)


def test_item18_readme_says_python_312_or_newer_first():
    with open(README, encoding="utf-8") as f:
        head = "".join(f.readlines()[:8])
    assert "Python 3.12 or newer" in head
