"""bayesscale: Bayesian scaling-law inference with NUTS, on CPU or GPU.

Fit ``L(N, D) = E + A / N**alpha + B / D**beta`` to training runs with NUTS in
NumPyro, check the fit with ArviZ, and turn the posterior into compute-optimal
allocations with honest uncertainty bands.

>>> import bayesscale as bs
>>> post = bs.fit(bs.datasets.chinchilla(drop_highest_loss=5))   # doctest: +SKIP
>>> post.summary(); post.check()                                  # doctest: +SKIP
>>> bs.frontier_exponents(post); post.allocate([1e24])           # doctest: +SKIP
"""

import os as _os
import sys as _sys
import types as _types

def _registered_lazily(name: str) -> bool:
    return type(_sys.modules.get(name)).__name__ == "_LazyModule"


def _load_lazy_dependencies() -> None:
    """Execute jax and numpyro now if another package registered them lazily.

    ``import arviz`` registers lazy ``jax`` and ``numpyro`` modules (lazy_loader).  Importing a
    submodule such as ``numpyro.distributions`` first then executes the parent in the middle of
    that import and leaves a second ``numpyro.distributions`` without its submodule attributes:
    every fit would fail with "module 'numpyro.distributions' has no attribute 'distribution'".
    Touching an attribute runs each package's ``__init__`` first, in the normal order.
    """
    for name in ("jax", "numpyro"):
        if _registered_lazily(name):
            getattr(_sys.modules[name], "__name__")


def _add_xla_flag(name: str, value: str) -> None:
    """Append ``--name=value`` to XLA_FLAGS unless the user set that flag already."""
    flags = _os.environ.get("XLA_FLAGS", "")
    if name not in flags:
        _os.environ["XLA_FLAGS"] = f"{flags} --{name}={value}".strip()


# Chains run in parallel across devices.  On CPU, JAX exposes one device unless
# told otherwise before it starts, so set the host device count here, unless the
# user already chose one or jax is already running.  BAYESSCALE_HOST_DEVICES
# overrides the default (the number of CPU cores, at most 8).  A lazily registered jax (ArviZ
# registers one when imported first) has not started, so it counts as not running.
if "jax" not in _sys.modules or _registered_lazily("jax"):
    _add_xla_flag("xla_force_host_platform_device_count",
                  _os.environ.get("BAYESSCALE_HOST_DEVICES") or str(max(1, min(_os.cpu_count() or 1, 8))))
    # On a GPU, NUTS is latency bound: each leapfrog step is a few small kernels inside while loops.
    # CUDA graphs for while loops and conditionals halved a warm fit's time on an H100
    # (benchmarks/xla_flags.py, RESULTS.md); CPU backends ignore the flag.
    _add_xla_flag("xla_gpu_enable_command_buffer", "+WHILE,+CONDITIONAL")

__version__ = "0.1.0"
_load_lazy_dependencies()

# Public names load on first use (PEP 562): ``import bayesscale`` and the command line start
# without importing JAX, so ``bayesscale --help``, a bad argument or Ctrl-C during start-up get
# a one-line answer.  ``from bayesscale import fit`` and ``bs.fit`` work as usual.
_LAZY = {
    "BacktestResult": ".backtest", "backtest": ".backtest",
    "DataError": ".data", "DataWarning": ".data", "Runs": ".data", "load_runs": ".data",
    "Verdict": ".diagnostics",
    "FitWarning": ".fitting", "fit": ".fitting", "fit_many": ".fitting",
    "SamplerSettings": ".inference", "configure_cache": ".inference",
    "compare_approaches": ".isoflop", "isoflop_analysis": ".isoflop",
    "ModelSpec": ".model", "Priors": ".model",
    "Posterior": ".posterior", "load_posterior": ".posterior",
    "simulate_runs": ".simulate",
    "average": ".compare", "compare": ".compare", "preferred_law": ".compare",
    "calibrate_extrapolation": ".calibration", "Discrepancy": ".discrepancy",
    "LAWS": ".laws", "Law": ".laws", "get_law": ".laws", "Observation": ".observation",
    "Approach1Result": ".curves", "Curves": ".curves", "approach1": ".curves", "envelope": ".curves",
    "load_curves": ".curves", "simulate_curves": ".curves", "GroupedPosterior": ".groups",
    "DEFAULT_CI": ".intervals",
    # analyses of a posterior: functions, not methods (bs.frontier_exponents(post), ...)
    "bayes_decision": ".allocation", "best_D_for_N": ".allocation", "best_N_for_D": ".allocation",
    "compute_for_loss": ".allocation", "efficient_size_range": ".allocation", "excess_compute": ".allocation",
    "frontier_exponents": ".allocation", "prob_below": ".allocation",
    # pointwise quantities at the fitted runs, computed on demand
    "log_likelihood": ".posterior", "posterior_predictive": ".posterior", "to_arviz": ".posterior",
}
_MODULES = {"datasets", "plots", "laws", "allocation", "calibration", "data", "diagnostics", "fitting",
            "inference", "isoflop", "model", "posterior", "reporting", "sbc", "simulate", "backtest", "kaplan",
            "curves", "frontier", "discrepancy", "observation", "steps_analysis", "plots_steps", "hierarchy",
            "groups", "compare", "intervals"}

__all__ = [
    "DEFAULT_CI",
    "BacktestResult", "DataError", "DataWarning", "Discrepancy", "FitWarning", "GroupedPosterior", "LAWS", "Law", "ModelSpec",
    "Observation", "Posterior", "Priors", "Runs", "SamplerSettings", "Verdict", "average", "backtest",
    "calibrate_extrapolation", "compare", "compare_approaches", "configure_cache", "datasets", "fit", "fit_many",
    "get_law", "isoflop_analysis", "load_posterior", "load_runs", "plots", "report", "simulate_runs",
]
__all__ += ["Approach1Result", "Curves", "approach1", "envelope", "kaplan", "load_curves", "simulate_curves"]
__all__ += ["steps_analysis"]
__all__ += ["bayes_decision", "best_D_for_N", "best_N_for_D", "compute_for_loss", "efficient_size_range",
            "excess_compute", "frontier_exponents", "prob_below", "log_likelihood", "posterior_predictive",
            "to_arviz", "preferred_law"]


def __getattr__(name):
    import importlib

    _load_lazy_dependencies()  # ArviZ may have been imported after bayesscale
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name == "report":
        value = importlib.import_module(".reporting", __name__).report
    elif name in _MODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'bayesscale' has no attribute {name!r}")
    if name != "report":  # bayesscale.report stays the function, not the module
        globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(_types.ModuleType):
    """Keeps ``bayesscale.backtest`` the function when the submodule of that name is imported."""

    def __setattr__(self, name, value):
        if name in _LAZY and isinstance(value, _types.ModuleType):
            return  # the import system sets the submodule on its parent; the public name wins
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
