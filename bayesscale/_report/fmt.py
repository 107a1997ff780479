"""Numbers for people and for JSON: the report's one set of formatting helpers.

Every number the report shows goes through these functions, so the HTML and
the Markdown spell it the same way; :func:`plain` makes the facts JSON-safe.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

__all__ = ["finite", "fmt_count", "fmt_sci", "fmt_num", "fmt_pct", "fmt_int", "fmt_fixed", "fmt_range", "times",
           "flops_arg", "snake", "plain"]

_EXPONENT = re.compile(r"e\+?(-?)0*(\d)")


def finite(x) -> bool:
    """True when ``x`` is a finite number (None, NaN, inf and non-numbers are not)."""
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _not_finite(x) -> str:
    """How a missing or infinite number reads: "n/a", or "∞" for an infinity."""
    return "n/a" if x is None or not np.isinf(float(x)) else "∞"


def _short_exponent(s: str) -> str:
    """``5.88e+23`` -> ``5.88e23``, ``1e-05`` -> ``1e-5``."""
    return _EXPONENT.sub(r"e\1\2", s)


def fmt_count(x, sig: int = 3) -> str:
    """Human count: 6.72e10 -> 67.2B, 1.36e12 -> 1.36T, 4e8 -> 400M."""
    if not finite(x):
        return _not_finite(x)
    xr = float(f"{float(x):.{sig}g}")  # round first: 999.7M is 1.00B
    if abs(xr) >= 1e15:
        return fmt_sci(xr, sig)
    for div, suf in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"), (1.0, "")):
        if abs(xr) >= div:
            return f"{xr / div:#.{sig}g}".rstrip(".") + suf
    return f"{xr:.{sig}g}"


def fmt_sci(x, sig: int = 3) -> str:
    """Compute in FLOPs: 5.88e23, 1e25."""
    if not finite(x):
        return _not_finite(x)
    return _short_exponent(f"{float(x):.{sig}g}")


def fmt_num(x, sig: int = 4) -> str:
    """A plain number with ``sig`` significant digits, trailing zeros kept (1.970)."""
    if not finite(x):
        return "n/a"
    x = float(x)
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
        return fmt_sci(x, sig)
    if abs(x) >= 10 ** sig:  # more integer digits than significant ones: round, but never "1.14e+03"
        return f"{round(x, sig - 1 - int(math.floor(math.log10(abs(x))))):.0f}"
    return f"{x:#.{sig}g}".rstrip(".")


def fmt_pct(p) -> str:
    """A probability as a percentage: 12.3%, <0.1%, >99.9%, ≈0% when every draw agrees."""
    if not finite(p):
        return "n/a"
    p = float(p)
    if p >= 0.9995 and p < 1:
        return ">99.9%"
    if 0 < p <= 0.0005:
        return "<0.1%"
    if p in (0.0, 1.0):  # every posterior draw agrees: the probability is close to, not exactly, 0 or 1
        return f"≈{p:.0%}"
    return f"{p:.1%}"


def fmt_int(x) -> str:
    """A count with thousands separators: 1,234."""
    return f"{int(round(float(x))):,}" if finite(x) else "n/a"


def fmt_fixed(x, spec: str) -> str:
    """``format(x, spec)`` for a finite number, else "n/a" (``fmt_fixed(r_hat, ".3f")``)."""
    return format(float(x), spec) if finite(x) else "n/a"


def fmt_range(band: dict, fmt) -> str:
    """The interval of a band (``{"lo", "hi", ...}``): ``"52.1B – 80.4B"``."""
    return f"{fmt(band['lo'])} – {fmt(band['hi'])}"


def times(factor: float) -> str:
    """A ratio of compute: 45x, 772x, 3.2x."""
    return f"{factor:,.0f}x" if factor >= 10 else f"{factor:.1f}x"


def flops_arg(x: float) -> str:
    """A budget as it is typed on a command line: 5.88e23 (exact round trip)."""
    return _short_exponent(repr(float(x)))


def snake(key) -> str:
    """A JSON key: ``"max R-hat"`` -> ``"max_r_hat"``."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", str(key)).strip("_").lower()


def plain(x):
    """JSON-safe plain Python: NaN and inf become None, numpy scalars Python numbers."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return [plain(v) for v in x.tolist()]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, Path):
        return str(x)
    if x is None or isinstance(x, str):
        return x
    return str(x)
