"""bayesscale: Bayesian scaling-law inference with NUTS, on CPU or GPU.

Fit ``L(N, D) = E + A / N**alpha + B / D**beta`` to training runs with NUTS in
NumPyro, check the fit with ArviZ, and turn the posterior into compute-optimal
allocations with honest uncertainty bands.

>>> import bayesscale as bs
>>> post = bs.fit(bs.datasets.chinchilla(drop_highest_loss=5))   # doctest: +SKIP
>>> post.summary(); post.check()                                  # doctest: +SKIP
"""

import os as _os
import sys as _sys

# Chains run in parallel across devices.  On CPU, JAX exposes one device unless
# told otherwise before it starts, so set the host device count here, unless the
# user already chose one or jax is already running.  BAYESSCALE_HOST_DEVICES
# overrides the default (the number of CPU cores, at most 8).
if "jax" not in _sys.modules and "xla_force_host_platform_device_count" not in _os.environ.get("XLA_FLAGS", ""):
    _n = _os.environ.get("BAYESSCALE_HOST_DEVICES") or str(max(1, min(_os.cpu_count() or 1, 8)))
    _os.environ["XLA_FLAGS"] = (_os.environ.get("XLA_FLAGS", "") +
                                f" --xla_force_host_platform_device_count={_n}").strip()

from . import datasets  # noqa: E402
from .backtest import BacktestResult, backtest  # noqa: E402
from .compare import average, compare  # noqa: E402
from .calibration import calibrate_extrapolation  # noqa: E402
from .data import DataError, DataWarning, Runs, load_runs  # noqa: E402
from .diagnostics import Verdict  # noqa: E402
from .discrepancy import Discrepancy  # noqa: E402
from .fitting import FitWarning, fit, fit_many  # noqa: E402
from .groups import GroupedPosterior  # noqa: E402
from .inference import SamplerSettings, configure_cache  # noqa: E402
from .isoflop import compare_approaches, isoflop_analysis  # noqa: E402
from .laws import LAWS, Law, get_law  # noqa: E402
from .model import ModelSpec, Priors  # noqa: E402
from .observation import Observation  # noqa: E402
from .posterior import Posterior, load_posterior  # noqa: E402
from .simulate import simulate_runs  # noqa: E402
from . import kaplan  # noqa: E402
from .curves import Approach1Result, Curves, approach1, envelope, load_curves, simulate_curves  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "BacktestResult", "DataError", "DataWarning", "Discrepancy", "FitWarning", "GroupedPosterior", "LAWS", "Law", "ModelSpec",
    "Observation", "Posterior", "Priors", "Runs", "SamplerSettings", "Verdict", "average", "backtest",
    "calibrate_extrapolation", "compare", "compare_approaches", "configure_cache", "datasets", "fit", "fit_many",
    "get_law", "isoflop_analysis", "load_posterior", "load_runs", "plots", "report", "simulate_runs",
]
__all__ += ["Approach1Result", "Curves", "approach1", "envelope", "kaplan", "load_curves", "simulate_curves"]


def __getattr__(name):
    # matplotlib is imported only when figures or reports are asked for
    import importlib

    if name == "plots":
        return importlib.import_module(".plots", __name__)
    if name == "report":
        return importlib.import_module(".reporting", __name__).report
    raise AttributeError(f"module 'bayesscale' has no attribute {name!r}")
