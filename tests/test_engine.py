"""The compiled NUTS engine: batched fits, sharding over devices, chunking, caching, progress."""

import os
import subprocess
import sys
import warnings

import jax
import numpy as np
import pandas as pd
import pytest

import bayesscale as bs

from .conftest import SMALL

TRUTHS = [
    {"E": 1.7, "A": 400.0, "B": 2000.0, "alpha": 0.30, "beta": 0.38},
    {"E": 2.2, "A": 900.0, "B": 700.0, "alpha": 0.40, "beta": 0.30},
    {"E": 1.5, "A": 250.0, "B": 4000.0, "alpha": 0.28, "beta": 0.42},
    {"E": 1.9, "A": 600.0, "B": 1200.0, "alpha": 0.36, "beta": 0.33},
]


def quiet_many(data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        return bs.fit_many(data, **{**SMALL, "progress": False, **kw})


@pytest.fixture(scope="module")
def four_sets():
    return [bs.simulate_runs(t, sigma=0.005, seed=10 + i) for i, t in enumerate(TRUTHS)]


def test_two_host_devices():
    assert jax.device_count() == 2  # set by conftest through BAYESSCALE_HOST_DEVICES


def test_fit_many_recovers_each_sets_own_truth(four_sets):
    posts = quiet_many(four_sets, chains=2, warmup=500, draws=500, bend="none")  # the law alone: exponents sharp
    assert len(posts) == 4
    for i, (truth, post) in enumerate(zip(TRUTHS, posts)):
        s = post.summary()
        for k, v in truth.items():  # within 4 posterior sd of its own truth
            assert abs(s.loc[k, "median"] - v) < 4 * s.loc[k, "sd"], (i, k, s.loc[k, "median"], v)
        # and each is nearer its own truth than any other set's (in the exponents)
        est = np.array([s.loc["alpha", "median"], s.loc["beta", "median"]])
        dist = [np.hypot(*(est - [t["alpha"], t["beta"]])) for t in TRUTHS]
        assert int(np.argmin(dist)) == i
        assert post.info["dataset_index"] == i
        assert post.info["device"] == "cpu x2"


def test_batched_equals_single_and_chunking_is_invisible(four_sets):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        alone = bs.fit(four_sets[0], **SMALL, seed=3, progress=False)
    together = quiet_many(four_sets, seed=3)
    chunked = quiet_many(four_sets, seed=3, batch_size=3)  # two calls: 3 sets, then 1 padded to 3
    # data set k uses key fold_in(seed, k): its draws do not depend on the rest of the batch
    np.testing.assert_array_equal(alone.samples["alpha"], together[0].samples["alpha"])
    for a, b in zip(together, chunked):
        np.testing.assert_array_equal(a.samples["beta"], b.samples["beta"])
        np.testing.assert_array_equal(a.stats["num_steps"], b.stats["num_steps"])


def test_fit_many_from_grouped_frame(four_sets):
    frames = [r.to_frame().drop(columns=["budget"]).assign(mixture=name)
              for r, name in zip(four_sets[:2], ["code", "web"])]
    out = quiet_many(pd.concat(frames, ignore_index=True), group="mixture")
    assert list(out) == ["code", "web"]
    assert out["web"].info["label"] == "web" and len(out["web"].runs) == len(four_sets[1])
    with pytest.raises(bs.DataError, match="group="):
        bs.fit_many(pd.concat(frames))
    with pytest.raises(bs.DataError, match="list of run tables"):
        bs.fit_many(four_sets[0])


def test_fit_many_warns_naming_failed_sets(four_sets):
    with pytest.warns(bs.FitWarning, match=r"4 of 4 data sets failed"):
        bs.fit_many(four_sets, chains=2, warmup=10, draws=20, progress=False)


def test_progress_bar_is_reported(four_sets, capsys):
    quiet_many(four_sets[:2], progress=True)
    assert "NUTS 2 data sets x 2 chains" in capsys.readouterr().err


def run_fit_in_fresh_process(cache: str) -> subprocess.CompletedProcess:
    code = ("import bayesscale as bs, warnings; warnings.simplefilter('ignore');"
            "bs.fit(bs.simulate_runs(seed=1), chains=2, warmup=50, draws=50, progress=False, extrapolation='none')")
    env = dict(os.environ, BAYESSCALE_CACHE_DIR=cache)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_persistent_compilation_cache(tmp_path):
    cache = tmp_path / "cache"
    r = run_fit_in_fresh_process(str(cache))
    assert r.returncode == 0, r.stderr
    assert cache.is_dir() and any(cache.iterdir()), "the compiled programs were not cached"
    off = tmp_path / "off"
    r = run_fit_in_fresh_process("off")
    assert r.returncode == 0, r.stderr
    assert not off.exists()


@pytest.mark.parametrize("first", ["import arviz; import bayesscale as bs", "import bayesscale as bs; import arviz"])
def test_fit_after_arviz_import(first, tmp_path):
    # ArviZ registers lazy jax and numpyro modules; a fit used to fail on them ("module
    # 'numpyro.distributions' has no attribute 'distribution'") and the chains lost their host devices
    code = (f"{first}; import warnings, jax; warnings.simplefilter('ignore');"
            "bs.fit(bs.simulate_runs(seed=1), chains=2, warmup=50, draws=50, progress=False, extrapolation='none');"
            "print(jax.device_count())")
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "BAYESSCALE_HOST_DEVICES")}
    env["BAYESSCALE_CACHE_DIR"] = str(tmp_path / "cache")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.split()[-1]) == min(os.cpu_count(), 8)


def test_auto_device_on_a_cpu_machine():
    # device=None: JAX's default here (the CPU); where the default is a GPU, small jobs go to the CPU
    from bayesscale.inference import AUTO_CPU_CHAINS, auto_device

    if jax.default_backend() != "cpu":
        pytest.skip("JAX's default backend here is not the CPU (test_auto_device_on_a_gpu_machine covers it)")
    assert auto_device(4) is None and auto_device(10 * AUTO_CPU_CHAINS) is None


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="needs a GPU as JAX's default backend")
def test_auto_device_on_a_gpu_machine():
    # where the default is a GPU: one fit's chains run on the CPU, many chains on the GPU, device="gpu" forces it
    from bayesscale.inference import AUTO_CPU_CHAINS, auto_device
    from bayesscale.simulate import CHINCHILLA_FIT

    assert auto_device(4) == "cpu" and auto_device(AUTO_CPU_CHAINS + 1) is None
    runs = bs.simulate_runs(CHINCHILLA_FIT, N=np.geomspace(1e8, 3e9, 24), D=np.geomspace(3e9, 1e11, 24) * 2,
                            sigma=0.01, seed=0)
    kw = dict(chains=2, warmup=200, draws=200, progress=False, extrapolation="none", retry=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)  # short chains: the verdict is not what this checks
        assert bs.fit(runs, **kw).info["device"].startswith("cpu")
        assert bs.fit(runs, device="gpu", **kw).info["device"].startswith("gpu")
