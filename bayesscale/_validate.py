"""Argument checks shared by the analysis and presentation layers."""

from __future__ import annotations

import numpy as np

from .intervals import resolve_ci

__all__ = ["check_ci", "positive"]


def check_ci(ci=None, name: str = "ci") -> float:
    """``ci`` as a float in (0, 1) (``None``: :data:`bayesscale.intervals.DEFAULT_CI`), or a clear ValueError."""
    return resolve_ci(ci, name)


def positive(x, name: str, *, unit: str = "") -> np.ndarray:
    """A non-empty 1-D float64 array of positive finite values, or a clear ValueError."""
    if isinstance(x, (str, bytes)) or (isinstance(x, np.ndarray) and x.dtype.kind in "USO") or (
            isinstance(x, (list, tuple)) and any(isinstance(v, (str, bytes)) for v in x)):
        # np.asarray("1e22", float) would parse it; every entry point takes numbers only
        raise ValueError(f"{name} must be numbers{unit}, not text: got {x!r} (write 1e22, not '1e22')")
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be positive numbers{unit}; got {x!r}") from None
    if a.ndim > 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array; got shape {a.shape}")
    a = np.atleast_1d(a)
    if a.size == 0:
        raise ValueError(f"{name} is empty; give at least one value{unit}")
    bad = ~np.isfinite(a) | (a <= 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name} must be positive and finite{unit}; got {a[i]!r} at position {i}")
    return a
