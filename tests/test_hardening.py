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
        a.bayes_decision("1e22")
    assert len(a.allocate([1e22])) == 1
