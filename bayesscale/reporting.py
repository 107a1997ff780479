"""The budget report: what we recommend, how sure we are, what could go wrong.

:func:`report` turns a fitted :class:`~bayesscale.Posterior` and the compute
budgets under discussion into one document for whoever signs off the budget,
written three ways into a directory:

``report.html``
    One self-contained file: inline CSS, figures embedded as base64 PNG, no
    external resources (it reads the same offline, attached to an e-mail).
``report.md``
    The same content as Markdown, with the figures beside it in
    ``figures/*.png`` (referenced relatively).
``report.json``
    Every number, for machines: plain floats (``null`` where a number does
    not exist), snake_case keys.

The verdict on the fit comes first: a green banner when the sampler
diagnostics pass, a red "DO NOT TRUST THIS FIT YET" when they fail.  Then the
recommendation per budget (the Bayes decision for N and D, the quantile band
of the loss-optimal N, tokens per parameter, expected loss, the chance of
beating a target loss, how far the budget lies beyond the data, and the model
sizes that cost at most 10% or 20% extra compute), the data, the diagnostics
in plain words, the parameters and priors, the figures, an optional backtest,
and what it takes to reproduce the report.

Writes are atomic: every number, figure and page is rendered in memory
first, written into a temporary directory beside ``out`` and swapped into
place as a whole only when all of it exists.  A failure at any point (bad
input, a figure that cannot be drawn, the process killed) leaves ``out`` as
it was; the next run removes what a killed run left beside it.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html as _html
import io
import json
import math
import os
import re
import shlex
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import plots as _plots  # figure functions are looked up at call time
from ._validate import check_ci as _check_ci
from .intervals import DEFAULT_CI, band_names
from .diagnostics import THRESHOLDS
from .allocation import bayes_decision, compute_for_loss, efficient_size_range, frontier_exponents, prob_below
from .posterior import _umask, to_arviz

__all__ = ["report", "ReportPaths", "check_out", "default_command", "EXTRAPOLATION_CAUTION_DEX",
           "EXTRAPOLATION_WARNING_DEX", "SIZE_THRESHOLDS"]

#: Decades of compute beyond the largest run above which the report advises caution.
EXTRAPOLATION_CAUTION_DEX = 1.0

#: Decades of compute beyond the largest run above which the report warns strongly.
EXTRAPOLATION_WARNING_DEX = 2.0

#: Extra-compute thresholds of the efficient model-size ranges.
SIZE_THRESHOLDS = (0.1, 0.2)

#: Resolution of the figures (a 7-inch figure is 840 pixels wide).
FIGURE_DPI = 120

#: Problems listed in the red banner (all of them are in the verdict section).
_BANNER_PROBLEMS = 5

_FILES = {"html": "report.html", "markdown": "report.md", "json": "report.json"}
_FIG_DIR = "figures"

#: Every figure the report can hold, in order: (name, title, caption, wide).
_FIGURES = (
    ("isoflop_profiles", "IsoFLOP profiles",
     "Loss against model size at fixed compute, one curve per budget group of the runs: the posterior "
     "predictive median with its {ci} band and the observed runs on top. The diamond marks the loss-optimal "
     "size with its {ci} interval; the optimum sits at the bottom of each U.", False),
    ("isoloss_contours", "IsoLoss contours",
     "Lines of equal predicted loss over compute and model size. The red line is the efficient frontier (the "
     "loss-optimal size at each compute) with its {ci} band; the points are the runs, coloured by loss.", False),
    ("optimal_frontier", "Compute-optimal model size and tokens",
     "The loss-optimal model size (left) and training tokens (right) against compute, with {ci} bands. The "
     "budgets of this report are the red stars, labelled with their medians and {ci} intervals. The grey "
     "points are the training runs: everything to their right is extrapolation.", True),
    ("excess_compute", "The cost of a non-optimal model size",
     "At the first budget ({first}): the extra compute (left) and tokens (right) a model of k times the "
     "optimal size needs to reach the optimum's loss, with {ci} bands. The shaded range costs at most 20% "
     "more compute.", True),
    ("ppc", "Posterior predictive check",
     "The distribution of the observed log losses (black) against data sets replicated from the fitted "
     "model (blue). The black line should run inside the blue band; p-values near 0 or 1 flag a misfit.", False),
    ("predicted_vs_observed", "Predicted against observed",
     "Each run's observed loss against its posterior predictive median and {ci} interval, coloured by "
     "compute. Points should scatter around the diagonal, with about {ci} of the intervals crossing it.", False),
    ("backtest_coverage", "Backtest calibration",
     "How often the held-out runs fell inside their central predictive intervals (y) against how often they "
     "should have (x), per fold and overall. Below the diagonal the intervals were too narrow when "
     "extrapolating; the grey bars are the range a calibrated model reaches by chance.", False),
)

_PARAM_MEANING = {
    "E": "irreducible loss",
    "A": "coefficient of the model-size term",
    "B": "coefficient of the data term",
    "alpha": "model-size exponent",
    "beta": "data exponent",
    "sigma": "noise scale on log loss",
    "tau": "scale of the per-budget offsets",
}
_PARAM_SYMBOL = {"alpha": "α", "beta": "β", "sigma": "σ", "tau": "τ"}

_CHECKS = {
    # verdict.table row: (label, plain words, kind of test)
    "max R-hat": ("R-hat (largest)", "Do the chains agree? 1.00 means every chain found the same distribution.",
                  ("<=", THRESHOLDS["r_hat"])),
    "min ESS bulk": ("Effective sample size, bulk (smallest)",
                     "Independent draws behind the medians; more draws give steadier numbers.",
                     (">=", THRESHOLDS["ess"])),
    "min ESS tail": ("Effective sample size, tails (smallest)",
                     "Independent draws behind the interval ends.", (">=", THRESHOLDS["ess"])),
    "divergences": ("Divergent transitions",
                    "Places the sampler could not explore; any at all can bias the results.", ("==", 0)),
    "min E-BFMI": ("E-BFMI (smallest)",
                   "How freely the sampler moves between energy levels; low values mean poor exploration.",
                   (">=", THRESHOLDS["bfmi"])),
    "draws at max tree depth": ("Draws at the maximum tree depth",
                                "Trajectories cut short before they finished; should be none.", ("==", 0)),
    "max Pareto k": ("Pareto k, PSIS-LOO (largest)",
                     "Does the fit lean on single runs? Above 0.7 a run is influential (a note, not a failure).",
                     ("note", THRESHOLDS["pareto_k"])),
    "max |residual| (noise scales)": (
        "Farthest run from the law, in robust noise scales",
        f"Beyond {THRESHOLDS['outlier']:g} the law cannot explain the run, whatever the likelihood does with it "
        "(a note, not a failure: the notes name such runs).", ("note", THRESHOLDS["outlier"])),
}


@dataclass(frozen=True)
class ReportPaths:
    """Where :func:`report` wrote the report.

    Attributes
    ----------
    directory : pathlib.Path
        The output directory.
    html, markdown, json : pathlib.Path
        ``report.html`` (self-contained), ``report.md`` and ``report.json``.
    figures : dict of str to pathlib.Path
        The PNG figures beside the Markdown, by name (``isoflop_profiles``,
        ``optimal_frontier``, ...).
    """

    directory: Path
    html: Path
    markdown: Path
    json: Path
    figures: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------
# number formatting
# ---------------------------------------------------------------------------


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _fmt_count(x, sig: int = 3) -> str:
    """Human count: 6.72e10 -> 67.2B, 1.36e12 -> 1.36T, 4e8 -> 400M."""
    if not _finite(x):
        return "n/a" if x is None or not np.isinf(float(x)) else "∞"
    xr = float(f"{float(x):.{sig}g}")  # round first: 999.7M is 1.00B
    if abs(xr) >= 1e15:
        return _fmt_sci(xr, sig)
    for div, suf in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"), (1.0, "")):
        if abs(xr) >= div:
            return f"{xr / div:#.{sig}g}".rstrip(".") + suf
    return f"{xr:.{sig}g}"


def _fmt_sci(x, sig: int = 3) -> str:
    """Compute in FLOPs: 5.88e23, 1e25."""
    if not _finite(x):
        return "n/a" if x is None or not np.isinf(float(x)) else "∞"
    s = f"{float(x):.{sig}g}"
    return re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", s)


def _fmt_num(x, sig: int = 4) -> str:
    """A plain number with ``sig`` significant digits, trailing zeros kept (1.970)."""
    if not _finite(x):
        return "n/a"
    x = float(x)
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
        return _fmt_sci(x, sig)
    if abs(x) >= 10 ** sig:  # more integer digits than significant ones: round, but never "1.14e+03"
        return f"{round(x, sig - 1 - int(math.floor(math.log10(abs(x))))):.0f}"
    return f"{x:#.{sig}g}".rstrip(".")


def _fmt_pct(p) -> str:
    if not _finite(p):
        return "n/a"
    p = float(p)
    if p >= 0.9995 and p < 1:
        return ">99.9%"
    if 0 < p <= 0.0005:
        return "<0.1%"
    if p in (0.0, 1.0):  # every posterior draw agrees: the probability is close to, not exactly, 0 or 1
        return f"≈{p:.0%}"
    return f"{p:.1%}"


def _fmt_int(x) -> str:
    return f"{int(round(float(x))):,}" if _finite(x) else "n/a"


def _flops_arg(x: float) -> str:
    """A budget as it is typed on a command line: 5.88e23 (exact round trip)."""
    return re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", repr(float(x)))


# ---------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------


def _check_budgets(budgets) -> np.ndarray:
    if budgets is None:
        raise ValueError("budgets must be given: one or more training compute budgets in FLOPs, "
                         "e.g. budgets=[5.88e23, 1e25]")
    if isinstance(budgets, (str, bytes)):
        raise ValueError(f"budgets must be numbers of FLOPs, got the string {budgets!r}")
    try:
        b = np.atleast_1d(np.asarray(budgets, dtype=float))
    except (TypeError, ValueError):
        raise ValueError(f"budgets must be numbers of FLOPs, got {budgets!r}") from None
    if b.ndim != 1 or b.size == 0:
        raise ValueError(f"budgets must be a non-empty list of compute budgets in FLOPs, got {budgets!r}")
    bad = ~np.isfinite(b) | (b <= 0)
    if bad.any():
        raise ValueError(f"budgets must be positive, finite numbers of FLOPs; budget {int(np.argmax(bad)) + 1} "
                         f"is {b[np.argmax(bad)]!r}")
    return b


def _check_target(target_loss):
    if target_loss is None:
        return None
    if isinstance(target_loss, (bool, np.bool_)):
        raise ValueError(f"target_loss must be a positive number (a loss), got {target_loss!r}")
    try:
        t = float(target_loss)
    except (TypeError, ValueError):
        raise ValueError(f"target_loss must be a positive number (a loss), got {target_loss!r}") from None
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"target_loss must be a positive, finite loss, got {target_loss!r}")
    return t


def _check_out(out) -> Path:
    if out is None or (isinstance(out, str) and not out.strip()):
        raise ValueError("out must name the directory to write the report into")
    try:
        p = Path(os.fspath(out))
    except TypeError:
        raise ValueError(f"out must be a directory path, got {type(out).__name__}") from None
    if p.exists() and not p.is_dir():
        raise ValueError(f"out={str(p)!r} exists and is not a directory; the report is a directory of files")
    if p.is_dir():
        foreign = _foreign_entries(p)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise ValueError(f"out={str(p)!r} holds files that are not part of a report ({shown}). The report "
                             "replaces its directory as a whole, so give a new or empty directory, or one an "
                             "earlier report wrote.")
    return p


def check_out(out) -> Path:
    """The report directory ``out`` as a Path, or a ValueError saying why it cannot be used.

    It must be new, empty, or hold only an earlier report's files (it is
    replaced as a whole; see :func:`report`).
    """
    return _check_out(out)


def _foreign_entries(out: Path) -> list[str]:
    """Entries of ``out`` that an earlier report did not write."""
    ours = set(_FILES.values())
    foreign = []
    for entry in sorted(os.listdir(out)):
        p = out / entry
        if entry in ours and p.is_file() and not p.is_symlink():
            continue
        if entry == _FIG_DIR and p.is_dir() and not p.is_symlink() and all(
                f.endswith(".png") and (p / f).is_file() for f in os.listdir(p)):
            continue
        foreign.append(entry)
    return foreign


def _check_backtest(bt):
    if bt is None:
        return None
    table = getattr(bt, "table", None)
    if not isinstance(table, pd.DataFrame) or not any(str(c).startswith("coverage_") for c in table.columns):
        raise ValueError(f"backtest must be the result of bayesscale.backtest (a BacktestResult), "
                         f"got {type(bt).__name__}")
    return bt


# ---------------------------------------------------------------------------
# JSON helpers
# ---------------------------------------------------------------------------


def _snake(key) -> str:
    s = re.sub(r"[^0-9a-zA-Z]+", "_", str(key)).strip("_")
    return s.lower()


def _plain(x):
    """JSON-safe plain Python: NaN and inf become None, numpy scalars Python numbers."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_plain(v) for v in x.tolist()]
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


def _band(med, lo, hi) -> dict:
    return {"median": float(med), "lo": float(lo), "hi": float(hi)}


def _cols(row, name: str, ci: float) -> tuple:
    """Median and ``ci`` bounds of ``name`` from a table row (columns ``name, name_lo80, name_hi80``)."""
    lo, hi = band_names(name, ci)
    return row[name], row[lo], row[hi]


def _records(df: pd.DataFrame, index_name: str) -> list[dict]:
    out = []
    for idx, row in df.iterrows():
        rec = {index_name: idx if isinstance(idx, str) else _plain(idx)}
        rec.update({_snake(k): _plain(v) for k, v in row.items()})
        out.append(rec)
    return out


# ---------------------------------------------------------------------------
# the numbers
# ---------------------------------------------------------------------------


def _times(factor: float) -> str:
    """A ratio of compute: 45x, 772x, 3.2x."""
    return f"{factor:,.0f}x" if factor >= 10 else f"{factor:.1f}x"


def _extrapolation(dex: float, dex_below: float = 0.0) -> tuple[str, str]:
    """Level and message for a budget ``dex`` decades beyond the largest run.

    ``dex_below`` is how many decades the budget lies below the smallest
    run (positive when it does): extrapolation downward is flagged too.
    """
    times = _times(10 ** dex)
    if dex_below > 0:
        return "below", (f"CAUTION: {dex_below:.2f} decades ({_times(10 ** dex_below)}) below the smallest run: "
                         "an extrapolation downward, outside the data. The law is fitted to larger runs; small "
                         "runs often bend away from it.")
    if dex <= 0:
        return "inside", "Inside the compute range of the runs: an interpolation."
    if dex <= EXTRAPOLATION_CAUTION_DEX:
        return "near", (f"{dex:.2f} decades ({times}) beyond the largest run: a modest extrapolation.")
    if dex <= EXTRAPOLATION_WARNING_DEX:
        return "caution", (f"CAUTION: {dex:.2f} decades ({times}) beyond the largest run. The intervals carry "
                           "only the extrapolation error the data's own backtests show (see the extrapolation note), "
                           "not a break in the law larger than any seen within the data. "
                           "Check the extrapolation with a backtest and, if the budget allows, add a run at an "
                           "intermediate budget before committing.")
    return "strong", (f"STRONG WARNING: {dex:.2f} decades ({times}) beyond the largest run. More than two "
                      "orders of magnitude past the data, the fitted law is an assumption, not a measurement: "
                      "treat these numbers as a rough guide and de-risk with intermediate runs before "
                      "committing the budget.")


def _source_check(runs) -> dict:
    """Does the data file at ``runs.source`` still hash to ``runs.sha256``?"""
    src = str(runs.source)
    info = {"source": src, "sha256": runs.sha256, "source_file_sha256": None, "source_matches": None}
    try:
        p = Path(src)
        if src and not src.startswith("<") and p.is_file():
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            info["source_file_sha256"] = h.hexdigest()
            info["source_matches"] = h.hexdigest() == runs.sha256
    except OSError:
        pass
    return info


def _diagnostics(verdict) -> list[dict]:
    rows = []
    table = verdict.table if verdict.table is not None else pd.DataFrame(columns=["value", "target"])
    for check, r in table.iterrows():
        label, words, (op, thr) = _CHECKS.get(check, (str(check), "", (None, None)))
        v = r["value"]
        if not _finite(v):
            status = "n/a"
        elif op == "<=":
            status = "pass" if v <= thr else "fail"
        elif op == ">=":
            status = "pass" if v >= thr else "fail"
        elif op == "==":
            status = "pass" if v == thr else "fail"
        elif op == "note":
            status = "pass" if v <= thr else "note"
        else:
            status = ""
        rows.append({"check": _snake(check), "label": label, "value": _plain(v), "target": str(r["target"]),
                     "status": status, "meaning": words})
    return rows


def _fmt_diag_value(check: str, v) -> str:
    if not _finite(v):
        return "n/a"
    if check == "max_r_hat":
        return f"{float(v):.4f}"
    if check.startswith("min_ess") or check in ("divergences", "draws_at_max_tree_depth"):
        return _fmt_int(v)
    return f"{float(v):.2f}"


def _law_display(posterior) -> str:
    """The law's equation for people, with the bend when the model has one."""
    law = posterior.law
    text = "L(N, D) = E + A / N^α + B / D^β" if law.name == "chinchilla" else f"{law.formula} ({law.name})"
    if "kappa" in posterior.params and posterior.spec.bend_scale(posterior.runs) > 1e-5:
        text += ", times a bend exp(κ (log10 C − m)²) in log compute"
    return text


def _priors(posterior) -> list[dict]:
    """The priors as text: the Chinchilla law's formulas, or each sampled variable's distribution."""
    spec = posterior.spec
    if spec.law.name != "chinchilla" or spec.prior_overrides or spec.pooling is not None:
        from .model import describe_prior

        resolved = spec.resolve_priors(posterior._ctx)
        return [{"parameter": k, "prior": describe_prior(v), "with_these_data": None} for k, v in resolved.items()]
    return _chinchilla_priors(posterior)


def _chinchilla_priors(posterior) -> list[dict]:
    spec = posterior.spec
    pri = spec.priors
    desc = pri.describe()
    try:
        resolved = pri.resolve(posterior.runs.loss).describe()
    except Exception:  # noqa: BLE001 - the formula alone is still a complete description
        resolved = desc
    out = []
    for name, text in desc.items():
        if name == "tau" and spec.offsets != "budget":
            continue
        if name == "df" and spec.likelihood != "student_t":
            continue
        if name == "kappa" and "kappa" not in posterior.params:
            continue
        rec = {"parameter": name, "prior": text, "with_these_data": None}
        if resolved.get(name, text) != text:
            rec["with_these_data"] = resolved[name]
        out.append(rec)
    return out


def _likelihood_words(spec) -> str:
    if spec.likelihood == "student_t":
        return (f"Student-t noise (df = {spec.priors.df:g}) on log loss, with a learned scale: robust to "
                "outlying runs.")
    return "Normal noise on log loss, with a learned scale."


def _offsets_words(spec) -> str:
    if spec.offsets == "budget":
        return ("Per-budget offsets: the runs of one compute budget share a random offset, so a new budget "
                "brings new uncertainty.")
    return "No offsets: the plain law, every run independent given the parameters."


def _extrapolation_model(posterior) -> dict | None:
    x = getattr(posterior, "extrapolation", None)
    if x is None:
        return None
    try:
        d = x.to_dict() if hasattr(x, "to_dict") else asdict(x)
    except TypeError:
        return None
    return {_snake(k): _plain(v) for k, v in d.items()}


def _calibrated(xm: dict | None) -> bool:
    return xm is not None and (xm.get("status") or {}).get("loss") == "calibrated"


def _extrapolation_words(xm: dict | None) -> str:
    if xm is None:
        return ("none: beyond the largest run the intervals carry parameter and noise uncertainty only, not the "
                "risk that the law bends.")
    reasons = xm.get("reasons") or {}
    if (xm.get("status") or {}).get("loss") == "prior" and "loss_sd_at_1_decade" in xm:
        return (f"{reasons.get('loss', 'not calibrated')} (sd {_fmt_num(xm['loss_sd_at_1_decade'], 3)} in log loss at "
                "one decade beyond the largest run): the bands beyond the data are wider than parameter and noise "
                "uncertainty alone, but not calibrated on these runs.")
    if not _calibrated(xm):
        return (f"{reasons.get('loss', 'not calibrated')}: beyond the largest run the intervals carry parameter "
                "and noise uncertainty only.")
    if "loss_sd_at_1_decade" in xm:
        n_opt = ("; the N_opt, D_opt and tokens-per-parameter bands carry the extrapolation error of log N_opt "
                 f"({reasons.get('n_opt', '')}; sd {_fmt_num(xm['n_opt_sd_at_1_decade'], 3)} at one decade"
                 + (f", of which a nugget of {_fmt_num(xm['n_opt_nugget_median'], 3)} applies at every budget, "
                    "inside the data too" if "n_opt_nugget_median" in xm else "") + ")"
                 if "n_opt_sd_at_1_decade" in xm else
                 f"; the N_opt bands are parameter uncertainty only ({reasons.get('n_opt', 'not calibrated')})")
        return ("beyond the largest run every loss prediction carries an extrapolation error on log loss drawn from "
                "its own posterior (a random walk plus a random slope in log compute, zero at the largest run, "
                "Student-t, with a prior that gives even odds to no error beyond the fold fits' own; "
                f"sd {_fmt_num(xm['loss_sd_at_1_decade'], 3)} at one decade), "
                f"{reasons.get('loss', '')}{n_opt}.")
    if {"kappa0", "kappa1"} <= set(xm):
        where = (f", calibrated on {int(xm['n_points'])} held-out runs in {int(xm['n_folds'])} rolling-origin "
                 "refits of the data" if _finite(xm.get("n_points")) and _finite(xm.get("n_folds")) else "")
        return ("beyond the largest run every prediction carries an extra error on log loss with standard "
                f"deviation sqrt(κ0² + κ1² d) at d decades past the data (κ0 = {_fmt_num(xm['kappa0'], 3)}, "
                f"κ1 = {_fmt_num(xm['kappa1'], 3)}){where}.")
    return "calibrated extra error beyond the data: " + ", ".join(f"{k} = {v}" for k, v in xm.items()) + "."


def _extra_sd(x_obj, C: float):
    """Standard deviation of the calibrated extrapolation error on log loss at ``C`` (None without one)."""
    if x_obj is None or not hasattr(x_obj, "variance"):
        return None
    try:
        return float(np.sqrt(np.asarray(x_obj.variance(C), dtype=float)))
    except (TypeError, ValueError):
        return None


#: LOO-PIT values outside this central interval mark a run the law does not explain.
LOO_PIT_TAIL = 0.005


def _loo_pit_check(posterior) -> dict:
    """Leave-one-out PIT of every run (``arviz_stats.loo_pit`` on the stored log-likelihood).

    A run whose LOO-PIT lies outside ``[LOO_PIT_TAIL, 1 - LOO_PIT_TAIL]`` is
    one the law, fitted without it, does not explain.  The check flags a
    misfit when more runs do so than a calibrated model would give with
    probability 0.99 (binomial).
    """
    import arviz_stats as azs
    from scipy.stats import binom

    runs = posterior.runs
    try:
        pit = np.asarray(azs.loo_pit(to_arviz(posterior), var_names="y")["y"]).reshape(-1)
    except (ValueError, FloatingPointError) as e:  # degenerate draws (a failed fit): PSIS cannot smooth them
        return {"method": "LOO-PIT (PSIS, arviz_stats.loo_pit)", "n_runs": len(runs), "n_outside": 0,
                "tail": LOO_PIT_TAIL, "chance_limit": 0, "misfit": False, "runs_outside": [],
                "sentence": f"not computed ({e}).", "ks_distance": None}
    out = (pit < LOO_PIT_TAIL) | (pit > 1 - LOO_PIT_TAIL)
    n = len(pit)
    limit = int(binom.ppf(0.99, n, 2 * LOO_PIT_TAIL))
    order = np.argsort(np.minimum(pit, 1 - pit))
    named = [str(runs.run_id[i]) for i in order if out[i]]
    misfit = int(out.sum()) > limit
    sentence = None
    if misfit:
        shown = ", ".join(named[:10]) + (f" and {len(named) - 10} more" if len(named) > 10 else "")
        sentence = (f"{len(named)} of {n} runs lie outside the central {1 - 2 * LOO_PIT_TAIL:.0%} of their "
                    f"leave-one-out predictive distribution (a calibrated model gives at most {limit} by chance): "
                    f"{shown}. The law does not explain them; check those runs, or fit without them.")
    return {"method": "LOO-PIT (PSIS, arviz_stats.loo_pit)", "n_runs": n, "n_outside": int(out.sum()),
            "tail": LOO_PIT_TAIL, "chance_limit": limit, "misfit": misfit, "runs_outside": named,
            "sentence": sentence,
            "ks_distance": float(np.max(np.abs(np.sort(pit) - (np.arange(1, n + 1) - 0.5) / n))) if n else None}


def _budget_label(i: int, C: float) -> str:
    return f"Budget {i + 1} ({_fmt_sci(C)})"


def _compute(posterior, budgets, target, ci, backtest) -> dict:
    """Every number of the report, JSON-ready."""
    runs = posterior.runs
    verdict = posterior.check()
    summ = posterior.summary(ci=ci)
    fe = frontier_exponents(posterior, ci=ci)
    alloc = posterior.allocate(budgets, ci=ci)
    bayes = bayes_decision(posterior, budgets)
    N_b = bayes["N_bayes"].to_numpy(dtype=float)
    D_b = bayes["D_bayes"].to_numpy(dtype=float)
    pred = posterior.predict(N_b, D_b, ci=ci)
    prob = prob_below(posterior, N_b, D_b, target) if target is not None else None
    c_max = float(runs.C.max())
    c_min = float(runs.C.min())
    largest = int(np.argmax(runs.C))
    xm = _extrapolation_model(posterior)
    x_obj = getattr(posterior, "extrapolation", None)

    budget_rows = []
    for i, C in enumerate(budgets):
        a = alloc.iloc[i]
        dex = float(np.log10(C / c_max))
        dex_below = float(np.log10(c_min / C))
        level, message = _extrapolation(dex, dex_below)
        ranges = []
        for thr in SIZE_THRESHOLDS:
            sr = efficient_size_range(posterior, C, threshold=thr, ci=ci)
            t = sr.table
            lo, hi = band_names("", ci)
            N_lo, N_hi = band_names("N", ci)
            ranges.append({
                "threshold": thr,
                "k_lo": _band(t.loc["k_lo", "median"], t.loc["k_lo", lo], t.loc["k_lo", hi]),
                "k_hi": _band(t.loc["k_hi", "median"], t.loc["k_hi", lo], t.loc["k_hi", hi]),
                "n_lo": _band(t.loc["k_lo", "N"], t.loc["k_lo", N_lo], t.loc["k_lo", N_hi]),
                "n_hi": _band(t.loc["k_hi", "N"], t.loc["k_hi", N_lo], t.loc["k_hi", N_hi]),
                "sentence": sr.sentence,
            })
        row = {
            "label": _budget_label(i, C),
            "compute_flops": float(C),
            "bayes_decision": {"n": float(N_b[i]), "d": float(D_b[i]),
                               "tokens_per_param": float(bayes["tokens_per_param"].iloc[i]),
                               "expected_loss": float(bayes["expected_loss"].iloc[i])},
            "n_opt": _band(*_cols(a, "N_opt", ci)),
            "d_opt": _band(*_cols(a, "D_opt", ci)),
            "tokens_per_param": _band(*_cols(a, "tokens_per_param", ci)),
            "loss_at_optimum": _band(*_cols(a, "loss", ci)),
            "loss": {**_band(*_cols(pred.iloc[i], "loss", ci)),
                     "mean": float(pred["loss_mean"].iloc[i])},
            "target_loss": target,
            "prob_below_target": None if prob is None else float(np.asarray(prob)[i]),
            "extrapolation": {"dex": dex, "factor": float(10 ** dex), "largest_run_compute_flops": c_max,
                              "dex_below_smallest": max(dex_below, 0.0), "smallest_run_compute_flops": c_min,
                              "level": level, "message": message,
                              "extra_sd_log_loss": _extra_sd(x_obj, C)},
            "efficient_size_ranges": ranges,
        }
        budget_rows.append(row)

    target_compute = None
    if target is not None:
        cf = compute_for_loss(posterior, target, ci=ci).table.iloc[0]
        target_compute = {"target_loss": target, "reachable_share": float(cf["reachable"]),
                          "compute_flops": _band(*_cols(cf, "C", ci)),
                          "n_opt": _band(*_cols(cf, "N_opt", ci)),
                          "d_opt": _band(*_cols(cf, "D_opt", ci))}

    # the JSON keeps "lo"/"hi" inside each record (the level is the document's "ci")
    summ = summ.rename(columns=dict(zip(band_names("", ci), ("lo", "hi"))))
    fe = fe.rename(columns=dict(zip(band_names("", ci), ("lo", "hi"))))
    params = []
    for name, r in summ.iterrows():
        params.append({"parameter": name, "meaning": _PARAM_MEANING.get(name, ""),
                       **{_snake(k): _plain(v) for k, v in r.items()}})
    frontier = [{"name": k, **{_snake(c): _plain(v) for c, v in r.items()}} for k, r in fe.iterrows()]

    bt = None
    if backtest is not None:
        table = backtest.table
        overall = table.loc["overall"] if "overall" in table.index else None
        calib = []
        if overall is not None:
            # held-out runs of one budget share its error: the verdict counts budgets (folds), not runs
            n = int(overall["n_folds"]) if "n_folds" in table.columns else (
                int(overall["n_runs"]) if "n_runs" in table.columns else 0)
            for c in table.columns:
                if str(c).startswith("coverage_"):
                    nominal = float(str(c).split("_", 1)[1]) / 100
                    emp = float(overall[c])
                    se = math.sqrt(nominal * (1 - nominal) / max(n, 1))
                    verdict_words = ("too narrow" if emp < nominal - 2 * se else
                                     "too wide" if emp > nominal + 2 * se else "about right")
                    calib.append({"nominal": nominal, "empirical": emp, "n_folds": n, "assessment": verdict_words})
        alloc_bt = getattr(backtest, "allocation", None)
        bt = {"holdout": getattr(backtest, "holdout", None),
              "table": _records(table, "fold"),
              "calibration": calib,
              "allocation": ([{_snake(k): _plain(v) for k, v in r.items()} for r in alloc_bt.to_dict("records")]
                             if isinstance(alloc_bt, pd.DataFrame) and len(alloc_bt) else [])}

    s = posterior.settings
    info = dict(posterior.info or {})
    return {
        "schema": "bayesscale.report/1",
        "title": "Compute budget report",
        "law": "L(N, D) = E + A / N^alpha + B / D^beta",
        "law_display": _law_display(posterior),
        "ci": ci,
        "target_loss": target,
        "verdict": {"ok": bool(verdict.ok), "problems": list(verdict.problems), "notes": list(verdict.notes),
                    "diagnostics": _diagnostics(verdict)},
        "predictive_check": _loo_pit_check(posterior),
        "data": {"n_runs": int(len(runs)), "n_budget_groups": int(runs.n_budgets),
                 "n_min": float(runs.N.min()), "n_max": float(runs.N.max()),
                 "d_min": float(runs.D.min()), "d_max": float(runs.D.max()),
                 "c_min": float(runs.C.min()), "c_max": c_max,
                 "loss_min": float(runs.loss.min()), "loss_max": float(runs.loss.max()),
                 "largest_run": {"run_id": str(runs.run_id[largest]), "n": float(runs.N[largest]),
                                 "d": float(runs.D[largest]), "c": float(runs.C[largest]),
                                 "loss": float(runs.loss[largest])},
                 "source": str(runs.source), "sha256": runs.sha256},
        "model": {"likelihood": posterior.spec.likelihood, "offsets": posterior.spec.offsets,
                  "likelihood_description": _likelihood_words(posterior.spec),
                  "offsets_description": _offsets_words(posterior.spec),
                  "priors": _priors(posterior), "extrapolation_error": xm,
                  "extrapolation_description": _extrapolation_words(xm)},
        "parameters": params,
        "frontier_exponents": frontier,
        "budgets": budget_rows,
        "compute_for_target": target_compute,
        "backtest": bt,
        "reproducibility": {
            "source": str(runs.source), "sha256": runs.sha256, **{k: v for k, v in _source_check(runs).items()
                                                                   if k not in ("source", "sha256")},
            "settings": {"chains": s.chains, "warmup": s.warmup, "draws": s.draws, "seed": info.get("seed"),
                         "likelihood": posterior.spec.likelihood, "offsets": posterior.spec.offsets,
                         "max_tree_depth": s.max_tree_depth, "target_accept": s.target_accept,
                         "dense_mass": s.dense_mass},
            "versions": dict(info.get("versions") or {}),
            "device": info.get("device"),
            "timing_seconds": dict(info.get("timing") or {}),
        },
    }


# ---------------------------------------------------------------------------
# the command that regenerates the report
# ---------------------------------------------------------------------------


def default_command(posterior, *, budgets, out, target_loss=None, ci: float | None = None, data_path=None,
                    backtest=None) -> str:
    """The ``bayesscale report`` command line that regenerates a report.

    The input is ``data_path`` when given, else the runs' source file when
    it still holds exactly the fitted runs (same SHA-256), else ``FIT.nc``, a
    placeholder for the saved posterior (:meth:`Posterior.to_netcdf`).  A
    data file (not a ``.nc`` posterior) is refitted, so the sampler settings
    are spelled out.  ``--ci`` is added when ``ci`` is not
    :data:`bayesscale.DEFAULT_CI`.
    """
    ci = _check_ci(ci)
    if data_path is not None:
        src = str(data_path)
    else:
        src = str(posterior.runs.source)
        if not src or src.startswith("<") or _source_check(posterior.runs)["source_matches"] is not True:
            src = "FIT.nc"
    parts = ["bayesscale", "report", src]
    if not src.endswith((".nc", ".nc4", ".netcdf")):
        s = posterior.settings
        parts += ["--chains", str(s.chains), "--warmup", str(s.warmup), "--draws", str(s.draws),
                  "--seed", str((posterior.info or {}).get("seed", 0)),
                  "--likelihood", posterior.spec.likelihood, "--offsets", posterior.spec.offsets]
        if posterior.extrapolation_mode == "none":
            parts += ["--extrapolation", "none"]
    for b in np.atleast_1d(np.asarray(budgets, dtype=float)):
        parts += ["--budget", _flops_arg(b)]
    if target_loss is not None:
        parts += ["--target-loss", f"{float(target_loss):g}"]
    if ci != DEFAULT_CI:
        parts += ["--ci", f"{ci:g}"]
    if backtest is not None:
        parts += ["--backtest", str(getattr(backtest, "holdout", "largest_budget"))]
    parts += ["--out", str(out)]
    return " ".join(shlex.quote(p) for p in parts)


# ---------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------


def _render_figures(posterior, budgets, ci, backtest) -> dict[str, bytes]:
    """Draw every figure and return its PNG bytes, by name."""
    # optimal_frontier stacks the labels inside the panel, the largest budget on top; short labels keep
    # the boxes small (the caption and the tables give the compute)
    order = np.argsort(np.asarray(budgets), kind="stable")
    named = {f"Budget {int(i) + 1}": float(budgets[i]) for i in order}
    makers = {
        "isoflop_profiles": lambda: _plots.isoflop_profiles(posterior, ci=ci),
        "isoloss_contours": lambda: _plots.isoloss_contours(posterior, ci=ci),
        "optimal_frontier": lambda: _plots.optimal_frontier(posterior, named=named, ci=ci),
        "excess_compute": lambda: _plots.excess_compute(posterior, float(budgets[0]), ci=ci),
        "ppc": lambda: _plots.ppc(posterior, ci=ci),
        "predicted_vs_observed": lambda: _plots.predicted_vs_observed(posterior, ci=ci),
    }
    if backtest is not None:
        makers["backtest_coverage"] = lambda: _plots.backtest_coverage(backtest)
    out = {}
    for name, make in makers.items():
        fig = make()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=FIGURE_DPI, facecolor="white")
        out[name] = buf.getvalue()
    return out


# ---------------------------------------------------------------------------
# the document: one list of blocks, rendered to HTML and to Markdown
# ---------------------------------------------------------------------------


class _Doc:
    def __init__(self):
        self.blocks: list[tuple] = []

    def heading(self, level: int, text: str, anchor: str | None = None):
        self.blocks.append(("heading", level, text, anchor))

    def para(self, text: str, cls: str = ""):
        self.blocks.append(("para", text, cls))

    def banner(self, ok: bool, title: str, text: str, items=()):
        self.blocks.append(("banner", ok, title, text, list(items)))

    def callout(self, level: str, text: str):
        self.blocks.append(("callout", level, text))

    def bullets(self, items, cls: str = ""):
        self.blocks.append(("bullets", list(items), cls))

    def table(self, header, rows, *, align=None, cls: str = "", status_col: int | None = None):
        self.blocks.append(("table", list(header), [list(r) for r in rows], align, cls, status_col))

    def cards(self, cards, md_header, md_rows):
        self.blocks.append(("cards", cards, md_header, md_rows))

    def figures(self, names: list[str]):
        self.blocks.append(("figures", names))

    def code(self, text: str):
        self.blocks.append(("code", text))

    def toc(self, entries):
        self.blocks.append(("toc", entries))


def _inline_html(text: str) -> str:
    s = _html.escape(str(text), quote=False)
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    s = re.sub(r"`(.+?)`", r"<code>\1</code>", s)
    return s


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


_CSS = """
:root { --ink:#1f2933; --muted:#52606d; --line:#d9e2ec; --soft:#f5f7fa; --accent:#2c6e9b;
        --ok:#1e7b46; --ok-bg:#e3f4ea; --bad:#b3261e; --bad-bg:#fdecea; --warn:#8a5a00; --warn-bg:#fff4d6; }
* { box-sizing: border-box; }
html { background: #eef2f6; }
body { margin: 0; color: var(--ink); font: 15px/1.55 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto,
       "Helvetica Neue", "Liberation Sans", "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; background: #fff; padding: 28px 44px 48px;
       box-shadow: 0 1px 6px rgba(16,42,67,.08); }
header.top { border-bottom: 3px solid var(--accent); padding-bottom: 12px; margin-bottom: 18px; }
header.top h1 { margin: 0; font-size: 28px; letter-spacing: -.01em; }
header.top .sub { color: var(--muted); margin-top: 4px; font-size: 14px; }
h2 { font-size: 21px; margin: 36px 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 17px; margin: 24px 0 8px; color: #243b53; }
p { margin: 8px 0; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; background: var(--soft);
       padding: 1px 4px; border-radius: 3px; }
pre { background: #102a43; color: #f0f4f8; padding: 12px 14px; border-radius: 6px; overflow-x: auto;
      font: 13px/1.5 "DejaVu Sans Mono", Menlo, Consolas, monospace; white-space: pre-wrap; overflow-wrap: anywhere; }
.banner { border-radius: 8px; padding: 16px 20px; margin: 6px 0 18px; border-left: 8px solid; }
.banner .title { font-size: 22px; font-weight: 800; letter-spacing: .01em; }
.banner p { margin: 6px 0 0; }
.banner ul { margin: 8px 0 0; padding-left: 22px; }
.banner.ok { background: var(--ok-bg); border-color: var(--ok); color: #14532d; }
.banner.ok .title { color: var(--ok); }
.banner.warn { background: var(--warn-bg); border-color: var(--warn); color: #4a3000; }
.banner.warn .title { color: var(--warn); }
.banner.bad { background: var(--bad-bg); border-color: var(--bad); color: #5f1410; }
.banner.bad .title { color: var(--bad); font-size: 26px; }
.callout { border-radius: 6px; padding: 10px 14px; margin: 10px 0; border-left: 5px solid; }
.callout.info { background: #e8f1f8; border-color: var(--accent); }
.callout.caution { background: var(--warn-bg); border-color: #e0a800; color: #5c3d00; }
.callout.danger { background: var(--bad-bg); border-color: var(--bad); color: #5f1410; font-weight: 600; }
.toc { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 8px 16px;
       margin: 14px 0; font-size: 14px; }
.toc a { color: var(--accent); text-decoration: none; margin-right: 18px; white-space: nowrap; }
table { border-collapse: collapse; width: 100%; margin: 10px 0 14px; font-size: 14px; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; text-align: left; }
th { background: #f0f4f8; color: #243b53; font-weight: 650; border-bottom: 2px solid #bcccdc; }
tbody tr:nth-child(even) td { background: #fafbfc; }
table.narrow { width: auto; min-width: 55%; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv td:first-child { width: 36%; color: #334e68; font-weight: 600; }
.status { display: inline-block; padding: 1px 9px; border-radius: 10px; font-size: 12px; font-weight: 700;
          text-transform: uppercase; letter-spacing: .03em; }
.status.pass { background: var(--ok-bg); color: var(--ok); }
.status.fail { background: var(--bad-bg); color: var(--bad); }
.status.note { background: var(--warn-bg); color: var(--warn); }
.status.na { background: var(--soft); color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(330px, 1fr)); gap: 14px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; background: #fcfdfe;
        box-shadow: 0 1px 2px rgba(16,42,67,.05); }
.card .head { font-size: 14px; color: var(--accent); letter-spacing: .01em; font-weight: 700; }
.card .big { font-size: 24px; font-weight: 750; margin: 4px 0 2px; color: #102a43; }
.card .big small { font-size: 14px; font-weight: 500; color: var(--muted); }
.card dl { display: grid; grid-template-columns: auto 1fr; gap: 3px 12px; margin: 8px 0 4px; font-size: 14px; }
.card dt { color: var(--muted); }
.card dd { margin: 0; font-variant-numeric: tabular-nums; }
.pill { display: inline-block; padding: 2px 10px; border-radius: 10px; font-size: 12px; font-weight: 700; }
.pill.inside, .pill.near { background: var(--ok-bg); color: var(--ok); }
.pill.caution, .pill.below { background: var(--warn-bg); color: var(--warn); }
.pill.strong { background: var(--bad-bg); color: var(--bad); }
.figs { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 18px; margin: 12px 0; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 10px; background: #fff; }
figure.wide { grid-column: 1 / -1; }
.figs > figure:only-child:not(.wide) { max-width: 900px; }
figure img { display: block; width: 100%; height: auto; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 6px; }
figcaption b { color: var(--ink); }
ul.plain { padding-left: 20px; }
.muted { color: var(--muted); font-size: 13px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 10px; }
@media print { html { background: #fff; } main { box-shadow: none; padding: 0; }
               figure, table, .card { break-inside: avoid; } }
"""


def _html_doc(doc: _Doc, figs: dict, captions: dict, title: str, subtitle: str, footer: str) -> str:
    out = []
    for b in doc.blocks:
        kind = b[0]
        if kind == "heading":
            _, level, text, anchor = b
            aid = f' id="{_html.escape(anchor)}"' if anchor else ""
            out.append(f"<h{level}{aid}>{_inline_html(text)}</h{level}>")
        elif kind == "para":
            _, text, cls = b
            c = f' class="{cls}"' if cls else ""
            out.append(f"<p{c}>{_inline_html(text)}</p>")
        elif kind == "banner":
            _, ok, btitle, text, items = b
            li = "".join(f"<li>{_inline_html(i)}</li>" for i in items)
            cls = "warn" if ok == "warn" else "ok" if ok else "bad"
            out.append(f'<section class="banner {cls}" role="status" id="verdict-banner">'
                       f'<div class="title">{_inline_html(btitle)}</div><p>{_inline_html(text)}</p>'
                       + (f"<ul>{li}</ul>" if li else "") + "</section>")
        elif kind == "callout":
            _, level, text = b
            out.append(f'<div class="callout {level}">{_inline_html(text)}</div>')
        elif kind == "bullets":
            _, items, cls = b
            li = "".join(f"<li>{_inline_html(i)}</li>" for i in items)
            out.append(f'<ul class="{cls or "plain"}">{li}</ul>')
        elif kind == "table":
            _, header, rows, align, cls, status_col = b
            align = align or ["l"] * len(header)
            ths = "".join(f'<th class="{"num" if a == "r" else ""}">{_inline_html(h)}</th>'
                          for h, a in zip(header, align))
            body = []
            for r in rows:
                tds = []
                for j, (v, a) in enumerate(zip(r, align)):
                    if status_col is not None and j == status_col:
                        st = str(v).lower().replace("/", "")
                        tds.append(f'<td><span class="status {st}">{_html.escape(str(v))}</span></td>')
                    else:
                        tds.append(f'<td class="{"num" if a == "r" else ""}">{_inline_html(v)}</td>')
                body.append("<tr>" + "".join(tds) + "</tr>")
            c = f' class="{cls}"' if cls else ""
            out.append(f"<table{c}><thead><tr>{ths}</tr></thead><tbody>{''.join(body)}</tbody></table>")
        elif kind == "cards":
            _, cards, _h, _r = b
            html_cards = []
            for cd in cards:
                dl = "".join(f"<dt>{_inline_html(k)}</dt><dd>{_inline_html(v)}</dd>" for k, v in cd["rows"])
                html_cards.append(
                    f'<div class="card"><div class="head">{_inline_html(cd["head"])}</div>'
                    f'<div class="big">{_inline_html(cd["big"])} <small>{_inline_html(cd["small"])}</small></div>'
                    f'<dl>{dl}</dl><span class="pill {cd["pill_class"]}">{_inline_html(cd["pill"])}</span>'
                    + (' <span class="pill strong">fit failed its diagnostics: do not use</span>'
                       if cd.get("untrusted") else "") + "</div>")
            out.append(f'<div class="cards">{"".join(html_cards)}</div>')
        elif kind == "figures":
            _, names = b
            items = []
            for name in names:
                ftitle, caption, wide = captions[name]
                data = base64.b64encode(figs[name]).decode("ascii")
                items.append(f'<figure class="{"wide" if wide else ""}" id="fig-{name}">'
                             f'<img src="data:image/png;base64,{data}" alt="{_html.escape(ftitle)}">'
                             f"<figcaption><b>{_html.escape(ftitle)}.</b> {_inline_html(caption)}</figcaption>"
                             "</figure>")
            out.append(f'<div class="figs">{"".join(items)}</div>')
        elif kind == "code":
            out.append(f"<pre>{_html.escape(b[1])}</pre>")
        elif kind == "toc":
            links = "".join(f'<a href="#{_html.escape(a)}">{_html.escape(t)}</a>' for a, t in b[1])
            out.append(f'<nav class="toc">{links}</nav>')
    body = "\n".join(out)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="generator" content="bayesscale">\n'
            f"<title>{_html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
            f'<header class="top"><h1>{_html.escape(title)}</h1><div class="sub">{_inline_html(subtitle)}</div>'
            f"</header>\n{body}\n<footer>{_inline_html(footer)}</footer>\n</main>\n</body>\n</html>\n")


def _md_doc(doc: _Doc, captions: dict, title: str, subtitle: str, footer: str) -> str:
    out = [f"# {title}", "", subtitle, ""]
    for b in doc.blocks:
        kind = b[0]
        if kind == "heading":
            _, level, text, _a = b
            out += [f"{'#' * level} {text}", ""]
        elif kind == "para":
            out += [b[1], ""]
        elif kind == "banner":
            _, ok, btitle, text, items = b
            out += [f"> **{btitle}**", ">", f"> {text}"]
            if items:
                out += [">"] + [f"> - {i}" for i in items]
            out.append("")
        elif kind == "callout":
            _, level, text = b
            out += [f"> {text}", ""]
        elif kind == "bullets":
            out += [f"- {i}" for i in b[1]] + [""]
        elif kind == "table":
            _, header, rows, align, _cls, _sc = b
            align = align or ["l"] * len(header)
            out.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
            out.append("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
            out += ["| " + " | ".join(_md_cell(v) for v in r) + " |" for r in rows]
            out.append("")
        elif kind == "cards":
            _, _cards, header, rows = b
            out.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
            out.append("|" + "|".join("---" for _ in header) + "|")
            out += ["| " + " | ".join(_md_cell(v) for v in r) + " |" for r in rows]
            out.append("")
        elif kind == "figures":
            for name in b[1]:
                ftitle, caption, _w = captions[name]
                out += [f"![{ftitle}]({_FIG_DIR}/{name}.png)", "", f"*{ftitle}.* {caption}", ""]
        elif kind == "code":
            out += ["```bash", b[1], "```", ""]
        elif kind == "toc":
            continue
    out += ["---", "", footer, ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------
# building the document from the numbers
# ---------------------------------------------------------------------------


def _range(band: dict, fmt) -> str:
    return f"{fmt(band['lo'])} – {fmt(band['hi'])}"


def group_comparison_rows(df: pd.DataFrame) -> list[dict]:
    """JSON-ready rows of the "variants compared" section from :meth:`GroupedPosterior.compare_groups`.

    The interval is ``multiplier_lo`` .. ``multiplier_hi`` at the level ``df.attrs["ci"]`` (the
    table's columns ``multiplier_lo80``, ``multiplier_hi80`` at 0.8).
    """
    lo, hi = band_names("multiplier", df.attrs.get("ci", DEFAULT_CI))
    return [{"C": float(r["C"]), "multiplier": float(r["multiplier"]), "multiplier_lo": float(r[lo]),
             "multiplier_hi": float(r[hi]), "prob_better": float(r["prob_better"]),
             "loss_a": float(r["loss_a"]), "loss_b": float(r["loss_b"])} for _, r in df.iterrows()]


def _group_facts(grouped, reference: str, budgets, ci: float) -> dict:
    comps = [{"a": reference, "b": g, "rows": group_comparison_rows(grouped.compare_groups(reference, g,
                                                                                           budgets=budgets, ci=ci))}
             for g in grouped.groups if g != reference]
    return {"reference": reference, "groups": list(grouped.groups), "pooling": grouped.pooling,
            "comparisons": comps}


def law_comparison_rows(table: pd.DataFrame) -> list[dict]:
    """JSON-ready rows of the "which law" section from :func:`bayesscale.compare`."""
    keep = [c for c in table.columns if c in ("law", "n_params", "elpd_loo", "elpd_se", "elpd_diff", "diff_se",
                                               "pareto_k_bad", "weight", "backtest_mlpd", "backtest_coverage_90",
                                               "backtest_folds") or c.startswith("N_opt")]
    return [{k: _plain(v) for k, v in row.items()} for row in table[keep].to_dict(orient="records")]


def _build(facts: dict, fig_names: list[str]) -> _Doc:
    ci = facts["ci"]
    cis = f"{ci:.0%}"
    doc = _Doc()
    v = facts["verdict"]
    budgets = facts["budgets"]
    target = facts["target_loss"]
    data = facts["data"]

    # -- the verdict banner, first ------------------------------------------------
    pc = facts.get("predictive_check") or {}
    if v["ok"] and pc.get("misfit"):
        doc.banner("warn", "Diagnostics pass, but some runs do not fit the law",
                   "The sampler converged, but the leave-one-out predictive check flags a misfit. "
                   + pc["sentence"])
    elif v["ok"]:
        doc.banner(True, "Diagnostics pass: the fit can be used",
                   "The sampler converged: R-hat, effective sample sizes, divergences, E-BFMI and tree depth all "
                   "meet their thresholds. This says the posterior was computed correctly, not that the law "
                   "holds beyond the data; read the extrapolation notes below.")
    else:
        doc.banner(False, "DO NOT TRUST THIS FIT YET",
                   "The sampler diagnostics failed, so the numbers in this report may be wrong. Do not sign off a "
                   "budget on them: rerun the fit with a longer warm-up and more draws (and, for divergences, a "
                   "higher target_accept) until this banner turns green.",
                   v["problems"][:_BANNER_PROBLEMS] + ([f"... and {len(v['problems']) - _BANNER_PROBLEMS} more "
                                                       "problems, all listed in section 2."]
                                                      if len(v["problems"]) > _BANNER_PROBLEMS else []))

    sections = [("summary", "Recommendation"), ("data", "Data"), ("verdict", "Verdict on the fit"),
                ("parameters", "Parameters and priors"), ("budgets", "Budgets in detail"), ("figures", "Figures")]
    if facts["backtest"] is not None:
        sections.append(("backtest", "Backtest"))
    if facts.get("groups"):
        sections.append(("groups", "Variants compared"))
    if facts.get("laws"):
        sections.append(("laws", "Which law"))
    sections.append(("reproducibility", "Reproducibility"))
    doc.toc([(a, f"{i}. {t}" if i else t) for i, (a, t) in enumerate(sections)])

    # -- recommendation at a glance --------------------------------------------------
    doc.heading(2, "Recommendation at a glance", "summary")
    doc.para(f"For each budget: the recommended model size N and training tokens D (the Bayes decision: the N "
             f"that minimises the expected loss over the posterior, with D = C / 6N), the expected loss of that "
             f"run with its {cis} predictive interval, and how far the budget lies beyond the largest training "
             f"run. All intervals in this report are equal-tailed {cis} posterior intervals.")
    cards, md_rows = [], []
    for b in budgets:
        bd, ext = b["bayes_decision"], b["extrapolation"]
        rows = [("Loss-optimal N, " + cis, _range(b["n_opt"], _fmt_count)),
                (f"Tokens per parameter ({cis} interval)",
                 f"{bd['tokens_per_param']:.1f} ({_range(b['tokens_per_param'], lambda t: f'{t:.1f}')})"),
                (f"Expected loss ({cis} interval)", f"{_fmt_num(b['loss']['mean'])} ({_range(b['loss'], _fmt_num)})")]
        if target is not None:
            rows.append((f"P(loss < {_fmt_num(target, 3)})", _fmt_pct(b["prob_below_target"])))
        rows.append(("Sizes within 20% extra compute",
                     f"{_fmt_count(b['efficient_size_ranges'][-1]['n_lo']['median'])} – "
                     f"{_fmt_count(b['efficient_size_ranges'][-1]['n_hi']['median'])}"))
        pill = {"inside": "within the data", "near": f"{ext['dex']:.2f} decades beyond the data",
                "below": f"caution: {ext['dex_below_smallest']:.2f} decades below the data",
                "caution": f"caution: {ext['dex']:.2f} decades beyond the data",
                "strong": f"strong warning: {ext['dex']:.2f} decades beyond the data"}[ext["level"]]
        cards.append({"head": f"{b['label'].split(' (')[0]}: C = {_fmt_sci(b['compute_flops'])} FLOPs",
                      "big": f"N = {_fmt_count(bd['n'])}", "small": f"params · D = {_fmt_count(bd['d'])} tokens",
                      "rows": rows, "pill": pill, "pill_class": ext["level"],
                      "untrusted": not v["ok"]})
        md_rows.append([f"{_fmt_sci(b['compute_flops'])} FLOPs", _fmt_count(bd["n"]), f"{_fmt_count(bd['d'])} tokens",
                        f"{bd['tokens_per_param']:.1f}",
                        f"{_fmt_num(b['loss']['mean'])} ({_range(b['loss'], _fmt_num)})"]
                       + ([_fmt_pct(b["prob_below_target"])] if target is not None else [])
                       + [pill + ("; fit failed its diagnostics: do not use" if not v["ok"] else "")])
    md_header = (["Budget C", "Model size N", "Tokens D", "Tokens/param", f"Expected loss ({cis})"]
                 + ([f"P(loss < {_fmt_num(target, 3)})"] if target is not None else []) + ["Extrapolation"])
    doc.cards(cards, md_header, md_rows)

    risks = []
    if not v["ok"]:
        risks.append("**The fit failed its diagnostics** (see the banner above): fix that first.")
    for b in budgets:
        lvl = b["extrapolation"]["level"]
        if lvl in ("below", "caution", "strong"):
            risks.append(f"**{b['label']}**: {b['extrapolation']['message']}")
    bt = facts["backtest"]
    if bt is not None:
        narrow = [c for c in bt["calibration"] if c["assessment"] == "too narrow"]
        if narrow:
            c = narrow[-1]
            risks.append(f"**The backtest found the intervals too narrow**: held-out runs fell inside their "
                         f"{c['nominal']:.0%} intervals only {c['empirical']:.0%} of the time. Widen your "
                         "expectations accordingly.")
    if any(b["extrapolation"]["dex"] > 0 for b in budgets):
        xm = facts["model"]["extrapolation_error"]
        if _calibrated(xm):
            which = ("The loss intervals and the N_opt, D_opt and tokens-per-parameter bands include"
                     if (xm.get("status") or {}).get("n_opt") == "calibrated" else
                     "The loss intervals include (the N_opt, D_opt and tokens-per-parameter bands do not)")
            risks.append(f"{which} an extrapolation error calibrated on the data's own rolling-origin "
                         "refits; a break in the law that the data do not show cannot be in them.")
        else:
            risks.append("The intervals carry parameter and noise uncertainty only: the chance that the law "
                         "bends beyond the data is not in them.")
    for n in v["notes"]:
        risks.append(n)
    if facts["compute_for_target"] is not None:
        ct = facts["compute_for_target"]
        if ct["reachable_share"] <= 0:
            doc.para(f"**Target loss {_fmt_num(target, 3)}**: no posterior draw reaches it at any budget (the "
                     "irreducible loss E lies above it).")
        else:
            doc.para(f"**Target loss {_fmt_num(target, 3)}**: the least compute that reaches it on the "
                     f"compute-optimal frontier is C = {_fmt_sci(ct['compute_flops']['median'])} FLOPs "
                     f"({cis}: {_range(ct['compute_flops'], _fmt_sci)}), with N = "
                     f"{_fmt_count(ct['n_opt']['median'])} and D = {_fmt_count(ct['d_opt']['median'])} tokens "
                     f"(the law's loss, without run-to-run noise; reachable in "
                     + ("every posterior draw" if ct["reachable_share"] >= 1 else
                        f"{_fmt_pct(ct['reachable_share'])} of the posterior draws") + ").")
    doc.heading(3, "What could go wrong")
    doc.bullets(risks or ["Nothing flagged: the diagnostics pass and every budget lies within one decade of the "
                          "data."])

    # -- 1. data ---------------------------------------------------------------------
    doc.heading(2, "1. Data", "data")
    lr = data["largest_run"]
    doc.table(["Quantity", "Value"], [
        ["Runs", f"{data['n_runs']:,}"],
        ["Budget groups (runs sharing a compute budget)", f"{data['n_budget_groups']:,}"],
        ["Model size N", f"{_fmt_count(data['n_min'])} – {_fmt_count(data['n_max'])} parameters"],
        ["Training tokens D", f"{_fmt_count(data['d_min'])} – {_fmt_count(data['d_max'])} tokens"],
        ["Training compute C", f"{_fmt_sci(data['c_min'])} – {_fmt_sci(data['c_max'])} FLOPs"],
        ["Final loss", f"{_fmt_num(data['loss_min'])} – {_fmt_num(data['loss_max'])}"],
        ["Largest run", f"{lr['run_id']}: N = {_fmt_count(lr['n'])}, D = {_fmt_count(lr['d'])} tokens, "
                        f"C = {_fmt_sci(lr['c'])} FLOPs, loss {_fmt_num(lr['loss'])}"],
        ["Source", f"`{data['source']}`"],
    ], cls="kv")

    # -- 2. verdict ------------------------------------------------------------------
    doc.heading(2, "2. Verdict on the fit", "verdict")
    doc.para("The sampler diagnostics check that the posterior was computed correctly. Every check but the "
             "last must pass; the last (Pareto k) only names runs the fit leans on.")
    doc.table(["Check", "Value", "Target", "Status", "What it means"],
              [[d["label"], _fmt_diag_value(d["check"], d["value"]), d["target"], d["status"], d["meaning"]]
               for d in v["diagnostics"]], align=["l", "r", "l", "l", "l"], status_col=3)
    if v["problems"]:
        doc.para("**Problems** (each one fails the fit):")
        doc.bullets(v["problems"])
    else:
        doc.para("**Problems:** none.")
    if v["notes"]:
        doc.para("**Notes** (worth knowing; they do not fail the fit):")
        doc.bullets(v["notes"])
    if pc:
        doc.para(f"**Predictive check (leave-one-out PIT):** {pc['n_outside']} of {pc['n_runs']} runs lie outside "
                 f"the central {1 - 2 * pc['tail']:.0%} of their leave-one-out predictive distribution "
                 f"(chance allows {pc['chance_limit']}). " + (pc["sentence"] or "No misfit flagged."))

    # -- 3. parameters ---------------------------------------------------------------
    doc.heading(2, "3. Parameters and priors", "parameters")
    doc.para(f"The law: **{facts['law_display']}**, fitted to log loss. Medians with {cis} intervals; R-hat and "
             "effective sample sizes per parameter.")
    doc.table(["Parameter", "Meaning", "Median", f"{cis} interval", "sd", "R-hat", "ESS bulk", "ESS tail"],
              [[_PARAM_SYMBOL.get(p["parameter"], p["parameter"]), p["meaning"], _fmt_num(p["median"]),
                f"{_fmt_num(p['lo'])} – {_fmt_num(p['hi'])}", _fmt_num(p["sd"], 3),
                f"{p['r_hat']:.3f}" if _finite(p.get("r_hat")) else "n/a", _fmt_int(p.get("ess_bulk")),
                _fmt_int(p.get("ess_tail"))] for p in facts["parameters"]],
              align=["l", "l", "r", "r", "r", "r", "r", "r"])
    doc.para("The compute-optimal frontier: N_opt = G (C/6)^a and D_opt = (C/6)^b / G "
             "(Hoffmann et al. 2022, Table 2).")
    doc.table(["Quantity", "Median", f"{cis} interval"],
              [[{"a": "a (N_opt ∝ C^a)", "b": "b (D_opt ∝ C^b)", "G": "G"}.get(f["name"], f["name"]),
                _fmt_num(f["median"]), f"{_fmt_num(f['lo'])} – {_fmt_num(f['hi'])}"]
               for f in facts["frontier_exponents"]], align=["l", "r", "r"], cls="narrow")
    doc.heading(3, "Model and priors")
    m = facts["model"]
    items = [f"**Likelihood:** {m['likelihood_description']}", f"**Offsets:** {m['offsets_description']}"]
    items.append(f"**Extrapolation error:** {m['extrapolation_description']}")
    doc.bullets(items)
    doc.table(["Parameter", "Prior", "With these data"],
              [[p["parameter"], f"`{p['prior']}`", f"`{p['with_these_data']}`" if p["with_these_data"] else "same"]
               for p in m["priors"]])

    # -- 4. budgets ------------------------------------------------------------------
    doc.heading(2, "4. Budgets in detail", "budgets")
    doc.para(f"The **recommended** size is the Bayes decision: the N that minimises the posterior expected loss "
             f"at the budget (a decision, not a quantile). The **loss-optimal N** band is where the optimum "
             f"itself could lie: the {cis} interval of each posterior draw's optimum. The expected loss is the "
             f"posterior predictive loss of a run at the recommended N and D (law, parameter uncertainty and "
             f"run-to-run noise).")
    for b in budgets:
        bd, ext = b["bayes_decision"], b["extrapolation"]
        doc.heading(3, f"{b['label'].split(' (')[0]}: C = {_fmt_sci(b['compute_flops'])} FLOPs")
        level = {"inside": "info", "near": "info", "below": "caution", "caution": "caution",
                 "strong": "danger"}[ext["level"]]
        doc.callout(level, f"**Extrapolation:** {ext['message']} (Largest run: C = "
                           f"{_fmt_sci(ext['largest_run_compute_flops'])} FLOPs; log10(C / largest) = "
                           f"{ext['dex']:.2f}.)")
        rows = [
            ["Recommended model size N", f"**{_fmt_count(bd['n'])}** parameters"],
            ["Recommended training tokens D", f"**{_fmt_count(bd['d'])}** tokens"],
            ["Tokens per parameter", f"{bd['tokens_per_param']:.1f} (loss-optimal, {cis}: "
                                     f"{_range(b['tokens_per_param'], lambda t: f'{t:.1f}')})"],
            [f"Loss-optimal N, median and {cis} interval",
             f"{_fmt_count(b['n_opt']['median'])} ({_range(b['n_opt'], _fmt_count)})"],
            [f"Loss-optimal D, median and {cis} interval",
             f"{_fmt_count(b['d_opt']['median'])} ({_range(b['d_opt'], _fmt_count)}) tokens"],
            ["Expected loss at the recommended N, D",
             f"**{_fmt_num(b['loss']['mean'])}** (median {_fmt_num(b['loss']['median'])}; {cis}: "
             f"{_range(b['loss'], _fmt_num)})"],
        ]
        if target is not None:
            rows.append([f"P(loss < {_fmt_num(target, 3)}) at the recommended N, D",
                         f"**{_fmt_pct(b['prob_below_target'])}**"])
        rows.append(["Beyond the largest run", f"{ext['dex']:.2f} decades ({_times(ext['factor'])})"
                     if ext["dex"] > 0 else f"{ext['dex']:.2f} decades (inside the data)"
                     if ext["level"] != "below" else
                     f"{ext['dex_below_smallest']:.2f} decades below the smallest run (outside the data)"])
        if _finite(ext.get("extra_sd_log_loss")) and ext["extra_sd_log_loss"] > 0:
            rows.append(["Calibrated extrapolation error (sd of log loss)",
                         f"{_fmt_num(ext['extra_sd_log_loss'], 3)} (included in the loss intervals)"])
        doc.table(["Quantity", "Value"], rows, cls="kv")
        doc.para("Model sizes that cost little extra compute (to reach the optimum's loss with a model of k "
                 "times the optimal size):")
        doc.table(["Extra compute at most", "Sizes (k = N / N_opt)", "Model sizes N",
                   f"{cis} intervals of the ends (k)"],
                  [[f"{r['threshold']:.0%}", f"{r['k_lo']['median']:.2f}x – {r['k_hi']['median']:.2f}x",
                    f"{_fmt_count(r['n_lo']['median'])} – {_fmt_count(r['n_hi']['median'])}",
                    f"{r['k_lo']['lo']:.2f}–{r['k_lo']['hi']:.2f}x and "
                    f"{r['k_hi']['lo']:.2f}–{r['k_hi']['hi']:.2f}x"]
                   for r in b["efficient_size_ranges"]], align=["l", "r", "r", "r"], cls="narrow")

    # -- 5. figures ------------------------------------------------------------------
    doc.heading(2, "5. Figures", "figures")
    main_figs = [n for n in fig_names if n != "backtest_coverage"]
    doc.figures(main_figs)

    # -- 6. backtest -----------------------------------------------------------------
    n_sec = 6
    if bt is not None:
        doc.heading(2, f"{n_sec}. Backtest", "backtest")
        n_sec += 1
        doc.para(f"Hold-out mode **{bt['holdout']}**: the model was refitted without the held-out (larger) "
                 "budgets and asked to predict them, the way a budget decision extrapolates. Coverage is the "
                 "share of held-out runs inside their central predictive interval, averaged per held-out budget "
                 "and then over budgets; MLPD and CRPS score the "
                 "whole predictive distribution of log loss (higher MLPD, lower CRPS are better); bias is the "
                 "mean observed minus predicted log loss.")
        cols = ["n_runs", "extrapolation_dex", "coverage_50", "coverage_80", "coverage_90", "width_90", "bias",
                "mlpd", "crps"]
        cols = [c for c in cols if c in bt["table"][0]] if bt["table"] else []
        heads = {"n_runs": "Runs", "extrapolation_dex": "Beyond training (decades)", "coverage_50": "50% cover",
                 "coverage_80": "80% cover", "coverage_90": "90% cover", "width_90": "90% width (loss)",
                 "bias": "Bias (log loss)", "mlpd": "MLPD", "crps": "CRPS"}

        def cell(c, val):
            if val is None:
                return "n/a"
            if c == "n_runs":
                return _fmt_int(val)
            if c.startswith("coverage"):
                return f"{val:.0%}"
            if c == "extrapolation_dex":
                return f"{val:.2f}"
            return _fmt_num(val, 3)

        doc.table(["Fold"] + [heads.get(c, c) for c in cols],
                  [[("**overall**" if r["fold"] == "overall" else r["fold"])] + [cell(c, r.get(c)) for c in cols]
                   for r in bt["table"]], align=["l"] + ["r"] * len(cols))
        if bt["calibration"]:
            doc.bullets([f"{c['nominal']:.0%} intervals held {c['empirical']:.0%} of the time, averaged over "
                         f"{c['n_folds']} held-out budgets (runs of one budget share its error, so budgets are "
                         f"counted, not runs): **{c['assessment']}**." for c in bt["calibration"]])
        if bt["allocation"]:
            doc.para("How far the recommended size moved: the median loss-optimal N at each held-out budget "
                     "from the fold's fit against the fit on all runs.")
            doc.table(["Fold", "C (FLOPs)", "N_opt, fold fit", "N_opt, all runs", "Ratio"],
                      [[a.get("fold"), _fmt_sci(a.get("c")), _fmt_count(a.get("n_opt_fold")),
                        _fmt_count(a.get("n_opt_all")), f"{a['ratio']:.2f}" if _finite(a.get("ratio")) else "n/a"]
                       for a in bt["allocation"]], align=["l", "r", "r", "r", "r"])
        doc.figures(["backtest_coverage"])

    # -- variants compared (grouped fits) ----------------------------------------------
    gf = facts.get("groups")
    if gf:
        doc.heading(2, f"{n_sec}. Variants compared", "groups")
        n_sec += 1
        doc.para(f"A grouped fit ({gf['pooling']} pooling) of {len(gf['groups'])} variants; this report's other "
                 f"sections are for **{gf['reference']}**. The compute multiplier of a variant over "
                 f"{gf['reference']}: the factor by which its compute-optimal training reaches {gf['reference']}'s "
                 f"compute-optimal loss at C with less compute (above 1: better), with its {cis} interval and "
                 "P(better) = P(multiplier > 1). Parameter uncertainty only (no calibrated extrapolation error).")
        for comp in gf["comparisons"]:
            doc.table(["C (FLOPs)", f"Multiplier of {comp['b']}", f"{cis} interval", f"P({comp['b']} better)",
                       f"Optimal loss, {comp['a']}", f"Optimal loss, {comp['b']}"],
                      [[_fmt_sci(x["C"]), f"{x['multiplier']:.3g}",
                        f"{x['multiplier_lo']:.3g} - {x['multiplier_hi']:.3g}", f"{x['prob_better']:.2f}",
                        _fmt_num(x["loss_a"]), _fmt_num(x["loss_b"])] for x in comp["rows"]],
                      align=["r"] * 6)

    # -- which law (several laws fitted to the same runs) -----------------------------
    laws = facts.get("laws")
    if laws:
        doc.heading(2, f"{n_sec}. Which law", "laws")
        n_sec += 1
        rows = laws["rows"]
        has_bt = any("backtest_mlpd" in r for r in rows)
        doc.para(f"{len(rows)} laws fitted to the same runs (`bayesscale.compare`); this report's other sections "
                 f"are for **{facts['law_name']}**. In sample: PSIS-LOO elpd (higher is better) with its standard "
                 "error and the runs whose Pareto k exceeds 0.7 (where that estimate is unreliable); the stacking "
                 "weight says how to mix the laws' predictions."
                 + (" Beyond the data, the quantity that matters for a budget: each law refitted on rolling-origin "
                    "folds (train below a budget, predict it), scored by the mean log predictive density of the "
                    "held-out budgets and their 90% coverage." if has_bt else " (No backtest was run.)"))
        header = ["Law", "elpd (LOO)", "SE", "Runs with k > 0.7", "Stacking weight"]
        if has_bt:
            header += ["Backtest mlpd", "Backtest 90% coverage"]
        body = []
        for r in rows:
            line = [r["law"], f"{r['elpd_loo']:.1f}", f"{r['elpd_se']:.1f}", str(r["pareto_k_bad"]),
                    f"{r['weight']:.2f}"]
            if has_bt:
                line += [f"{r['backtest_mlpd']:.2f}" if _finite(r.get("backtest_mlpd")) else "n/a",
                         f"{r['backtest_coverage_90']:.2f}" if _finite(r.get("backtest_coverage_90")) else "n/a"]
            body.append(line)
        doc.table(header, body, align=["l"] + ["r"] * (len(header) - 1))
        ranked = sorted(rows, key=lambda r: -r["elpd_loo"])
        best_in = ranked[0]["law"]
        runner = ranked[1] if len(ranked) > 1 else None
        clear = runner is not None and abs(runner.get("elpd_diff", 0.0)) > 2 * max(runner.get("diff_se", 0.0), 1e-12)
        in_words = (f"In sample, **{best_in}** fits best (elpd {abs(runner['elpd_diff']):.1f} above "
                    f"{runner['law']}, more than twice the standard error of the difference)." if clear else
                    "In sample the laws cannot be told apart: the elpd differences are within two standard errors.")
        bt_rows = [r for r in rows if _finite(r.get("backtest_mlpd"))] if has_bt else []
        best_out = max(bt_rows, key=lambda r: r["backtest_mlpd"])["law"] if bt_rows else None
        out_words = (f" Beyond the data, **{best_out}** scored best on the backtest." if best_out else "")
        if best_out is not None and clear and best_out != best_in:
            doc.callout("caution", in_words + out_words + " The laws disagree: for a budget beyond the data, weigh "
                                   "the backtest, or use the model-averaged allocation (`bayesscale.average`).")
        else:
            doc.para(in_words + out_words)
        n_cols = sorted({k for r in rows for k in r if k.startswith("N_opt@")})
        if n_cols:
            law_ci = laws.get("ci", ci)
            n_lo, n_hi = band_names("N_opt", law_ci)
            doc.para(f"The compute-optimal N each law recommends (median and {law_ci:.0%} interval):")
            budgets_txt = [c.split("@", 1)[1] for c in n_cols]
            doc.table(["Law"] + [f"N_opt at {b} FLOPs (median, {law_ci:.0%} interval)" for b in budgets_txt],
                      [[r["law"]] + [(f"{_fmt_count(r[c])} ({_fmt_count(r[c.replace('N_opt@', f'{n_lo}@')])} – "
                                      f"{_fmt_count(r[c.replace('N_opt@', f'{n_hi}@')])})"
                                      if _finite(r.get(c)) else "n/a") for c in n_cols] for r in rows],
                      align=["l"] + ["r"] * len(n_cols))

    # -- 7. reproducibility ------------------------------------------------------------
    r = facts["reproducibility"]
    doc.heading(2, f"{n_sec}. Reproducibility", "reproducibility")
    s = r["settings"]
    match = {True: "matches the runs' hash", False: "differs from the runs' hash (the runs are a subset or a "
             "transformation of the file)", None: "not checked (file not found)"}[r["source_matches"]]
    versions = ", ".join(f"{k} {val}" for k, val in r["versions"].items()) or "not recorded"
    timing = r["timing_seconds"]
    doc.table(["Item", "Value"], [
        ["Data source", f"`{r['source']}`"],
        ["Data SHA-256", f"`{r['sha256']}`"],
        ["Source file today", match],
        ["Sampler", f"NUTS, {s['chains']} chains x {s['warmup']:,} warm-up + {s['draws']:,} draws, seed "
                    f"{s['seed']}, max tree depth {s['max_tree_depth']}, target accept {s['target_accept']:g}, "
                    f"{'dense' if s['dense_mass'] else 'diagonal'} mass matrix"],
        ["Model", f"likelihood {s['likelihood']}, offsets {s['offsets']}"],
        ["Library versions", versions],
        ["Device", str(r["device"] or "not recorded")],
        ["Sampling time", f"{timing['total']:.1f} s" if _finite(timing.get("total")) else "not recorded"],
        ["Report generated", r["generated_utc"]],
    ], cls="kv")
    doc.para("The command that regenerates this report:")
    doc.code(r["command"])
    if r["command"].startswith("bayesscale report FIT.nc"):
        doc.para("`FIT.nc` stands for this posterior saved with `post.to_netcdf(\"FIT.nc\")` (or `bayesscale fit "
                 "... --out FIT.nc`): no data file with the runs' SHA-256 is known to refit from.", cls="muted")
    return doc


# ---------------------------------------------------------------------------
# writing, atomically
# ---------------------------------------------------------------------------


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _clean_leftovers(out: Path) -> None:
    """Remove temporary siblings of ``out`` left by a killed run (``.NAME.PID-*.tmp`` / ``.old``).

    A leftover whose process still runs is left alone; older names without
    a process id (from earlier versions) are removed.  When ``out`` itself
    is missing but a complete old copy is left (a run killed between the
    two renames of the fallback swap), the old copy is put back first.
    """
    parent = out.parent
    pat = re.compile(re.escape(f".{out.name}.") + r"(?:(\d+)-)?[^/]*\.(tmp|old)$")
    try:
        entries = os.listdir(parent)
    except OSError:
        return
    for entry in sorted(entries):
        m = pat.fullmatch(entry)
        if not m or (m.group(1) and int(m.group(1)) != os.getpid() and _pid_alive(int(m.group(1)))):
            continue
        p = parent / entry
        if m.group(2) == "old" and not out.exists() and p.is_dir():
            os.rename(p, out)
            continue
        shutil.rmtree(p, ignore_errors=True)


def _publish(out: Path, files: dict[str, bytes], stale: list[str]) -> None:
    """Write ``files`` (relative path -> bytes) as the directory ``out``, all at once.

    Everything is written (and synced) into a fresh temporary directory
    beside ``out`` first; a failure there removes it and leaves ``out``
    untouched.  A new ``out`` is then renamed into place; an existing one
    (an earlier report: :func:`_check_out` refused anything else) is swapped
    with it in one atomic step where the system allows (Linux), else by two
    renames, and the old copy is removed.  A reader, or a run killed at any
    moment, sees the old report or the new one, never a mix; leftovers of a
    killed run are cleaned up by the next.  ``stale`` is unused: the whole
    directory is replaced, so figures the new report lacks are gone.
    """
    del stale
    out = out.absolute()
    parent = out.parent
    parent.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(out)
    umask = _umask()
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.{os.getpid()}-", suffix=".tmp"))
    old = tmp.with_suffix(".old")
    try:
        os.chmod(tmp, 0o777 & ~umask)
        (tmp / _FIG_DIR).mkdir()
        for rel, data in files.items():
            p = tmp / rel
            with open(p, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        if not out.exists():
            os.rename(tmp, out)
            return
        if _exchange(tmp, out):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old report
            return
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------


def report(posterior, *, budgets, target_loss=None, out, backtest=None, ci: float | None = None,
           command: str | None = None,
           data_path=None, group: str | None = None, comparison: pd.DataFrame | None = None) -> ReportPaths:
    """Write the budget report of a fitted posterior: HTML, Markdown and JSON.

    The report answers, for each compute budget, what to train (model size
    and tokens), how sure we are (intervals, the chance of beating a target
    loss) and what could go wrong (failed diagnostics, long extrapolation,
    a miscalibrated backtest).  See the module docstring for the files.

    Parameters
    ----------
    posterior : Posterior
        A fitted posterior (:func:`bayesscale.fit` or
        :func:`bayesscale.load_posterior`).
    budgets : sequence of float
        Training compute budgets in FLOPs (positive, finite, at least one).
        The excess-compute figure is drawn at the first.
    target_loss : float, optional
        A loss to beat: the report gives ``P(loss < target_loss)`` at the
        recommended N, D of each budget and the least compute that reaches
        it.
    out : str or os.PathLike
        Output directory; created if missing.  It must be new, empty or an
        earlier report's directory: it is replaced as a whole, atomically,
        so a directory holding other files is refused (nothing written).
    backtest : BacktestResult, optional
        A :func:`bayesscale.backtest` result: adds a backtest section with
        its table and the :func:`bayesscale.plots.backtest_coverage` figure.
    ci : float, optional
        Probability mass of every interval in the report.
        Default :data:`bayesscale.DEFAULT_CI`.
    command : str, optional
        The command line that regenerates the report, shown under
        reproducibility.  Default: :func:`default_command`.
    data_path : str or os.PathLike, optional
        The data (or saved posterior) the command starts from; default the
        runs' source file.
    group : str, optional
        For a grouped fit (:class:`bayesscale.GroupedPosterior`): the group
        the report is about (default: the first); a section compares every
        other group with it (the compute multiplier at each budget).
    comparison : pandas.DataFrame, optional
        The table of :func:`bayesscale.compare` for laws fitted to the same
        runs (this posterior's law among them): adds a "which law" section
        (in-sample LOO, the backtest beyond the data, stacking weights and
        each law's N_opt).

    Returns
    -------
    ReportPaths
        The paths written.

    Raises
    ------
    ValueError
        On empty, non-positive or non-finite budgets, a non-positive
        ``target_loss``, ``ci`` outside (0, 1), an ``out`` that is a file, or
        a ``backtest`` that is not a backtest result.  Nothing is written.
    """
    grouped = None
    if hasattr(posterior, "compare_groups"):  # a grouped fit: report one group, compare the others with it
        grouped = posterior
        posterior = grouped.group(grouped.groups[0] if group is None else group)
    if not (hasattr(posterior, "params") and hasattr(posterior, "runs") and hasattr(posterior, "check")):
        raise ValueError(f"expected a bayesscale Posterior (from bayesscale.fit or load_posterior), "
                         f"got {type(posterior).__name__}")
    budgets = _check_budgets(budgets)
    target = _check_target(target_loss)
    ci = _check_ci(ci)
    out = _check_out(out)
    backtest = _check_backtest(backtest)
    if command is not None and not isinstance(command, str):
        raise ValueError(f"command must be a string, got {type(command).__name__}")

    # 1. every number, then every figure, then every page: all in memory
    facts = _compute(posterior, budgets, target, ci, backtest)
    if grouped is not None:
        facts["groups"] = _group_facts(grouped, posterior.info["group"], budgets, ci)
    if comparison is not None:
        if not isinstance(comparison, pd.DataFrame) or not {"law", "elpd_loo", "weight"} <= set(comparison.columns):
            raise ValueError("comparison must be the table of bayesscale.compare (columns law, elpd_loo, weight, ...)")
        facts["laws"] = {"rows": law_comparison_rows(comparison), "ci": float(comparison.attrs.get("ci", ci))}
    facts["law_name"] = posterior.law.name
    cmd = command if command is not None else default_command(
        posterior, budgets=budgets, out=out, target_loss=target, ci=ci, data_path=data_path, backtest=backtest)
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    facts["reproducibility"]["command"] = cmd
    facts["reproducibility"]["generated_utc"] = generated
    figs = _render_figures(posterior, budgets, ci, backtest)
    facts["figures"] = {name: f"{_FIG_DIR}/{name}.png" for name in figs}

    cis = f"{ci:.0%}"
    captions = {name: (title, caption.format(ci=cis, first=f"C = {_fmt_sci(budgets[0])} FLOPs"), wide)
                for name, title, caption, wide in _FIGURES if name in figs}
    fig_names = [name for name, *_ in _FIGURES if name in figs]
    doc = _build(facts, fig_names)
    runs = posterior.runs
    src_name = Path(str(runs.source)).name if not str(runs.source).startswith("<") else str(runs.source)
    title = facts["title"]
    subtitle = (f"Scaling law **{facts['law_display']}** fitted with NUTS to {len(runs):,} runs (`{src_name}`); "
                f"budgets {', '.join(_fmt_sci(b) for b in budgets)} FLOPs"
                + (f"; target loss {_fmt_num(target, 3)}" if target is not None else "") + f". Generated {generated}.")
    footer = (f"Generated by bayesscale {(posterior.info or {}).get('versions', {}).get('bayesscale', '')} on "
              f"{generated}. Intervals are equal-tailed {cis} posterior intervals unless stated otherwise.")
    html_text = _html_doc(doc, figs, captions, title, subtitle, footer)
    md_text = _md_doc(doc, captions, title, subtitle, footer)
    json_text = json.dumps(_plain(facts), indent=2, allow_nan=False, ensure_ascii=False)

    files = {_FILES["json"]: json_text.encode("utf-8") + b"\n", _FILES["markdown"]: md_text.encode("utf-8"),
             _FILES["html"]: html_text.encode("utf-8")}
    files.update({f"{_FIG_DIR}/{name}.png": data for name, data in figs.items()})
    stale = [f"{_FIG_DIR}/{name}.png" for name, *_ in _FIGURES if name not in figs]

    # 2. all of it on disk, or none of it
    _publish(out, files, stale)
    return ReportPaths(directory=out, html=out / _FILES["html"], markdown=out / _FILES["markdown"],
                       json=out / _FILES["json"], figures={name: out / _FIG_DIR / f"{name}.png" for name in figs})
