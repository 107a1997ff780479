"""Shared fixtures: small real fits, made once per test session.

Unit tests use short chains (fast on a 2-core CPU); a few tests marked
``slow`` run the full-size fit the issue asks for.
"""

import os
import warnings

# Two CPU host devices, whatever the machine: the sharded paths run in every test session.
os.environ.setdefault("BAYESSCALE_HOST_DEVICES", "2")
# A program cache of the session's own: tests never read programs compiled by other runs or versions.
import tempfile  # noqa: E402

os.environ.setdefault("BAYESSCALE_CACHE_DIR", tempfile.mkdtemp(prefix="bayesscale-test-cache-"))

import pytest  # noqa: E402

import bayesscale as bs  # noqa: E402

#: Short but usable sampler settings for unit tests.
SMALL = dict(chains=2, warmup=300, draws=300)


def fit_quietly(runs, **kw):
    """Fit with small settings; a short run may fail ESS thresholds, which is expected here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        return bs.fit(runs, **{**SMALL, "progress": False, **kw})


@pytest.fixture(scope="session")
def chinchilla240():
    return bs.datasets.chinchilla(drop_highest_loss=5)


@pytest.fixture(scope="session")
def full_post(chinchilla240):
    """The full-size fit of the plain law (as published: no bend): 4 chains x 1000 warm-up + 1000 draws, seed 0."""
    return bs.fit(chinchilla240, seed=0, bend="none", progress=False)


@pytest.fixture(scope="session")
def small_post(chinchilla240):
    """A short fit of the 240-run Chinchilla subset."""
    return fit_quietly(chinchilla240, seed=1)


@pytest.fixture(scope="session")
def synthetic_runs():
    """An isoFLOP sweep (7 budgets x 9 sizes) from the published Chinchilla refit."""
    return bs.simulate_runs(sigma=0.01, seed=3)


@pytest.fixture(scope="session")
def synthetic_post(synthetic_runs):
    return fit_quietly(synthetic_runs, seed=2)


@pytest.fixture
def tmp_out(tmp_path):
    return tmp_path


def pytest_configure(config):
    os.environ.setdefault("MPLBACKEND", "Agg")
