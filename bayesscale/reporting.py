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

How it is made (:mod:`bayesscale._report`): the facts are gathered first,
one function per section (:mod:`~bayesscale._report.facts`; ``report.json``
is exactly these facts), then both pages are rendered from those same facts,
one function per section (:mod:`~bayesscale._report.sections`) into one
neutral document that is written as HTML and as Markdown
(:mod:`~bayesscale._report.doc`), and the directory is published atomically
(:mod:`~bayesscale._report.publish`).
"""

from __future__ import annotations

import datetime as _dt
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._report import facts as _facts
from ._report import figures as _figures
from ._report import sections as _sections
from ._report.doc import to_html, to_markdown
from ._report.facts import EXTRAPOLATION_CAUTION_DEX, EXTRAPOLATION_WARNING_DEX, SIZE_THRESHOLDS, source_check
from ._report.fmt import flops_arg
from ._report.publish import FILES, check_out, publish
from ._validate import check_ci as _check_ci
from .intervals import DEFAULT_CI

__all__ = ["report", "ReportPaths", "check_out", "default_command", "EXTRAPOLATION_CAUTION_DEX",
           "EXTRAPOLATION_WARNING_DEX", "SIZE_THRESHOLDS"]

# still importable from here, as before the report was split into bayesscale._report
LOO_PIT_TAIL = _facts.LOO_PIT_TAIL
FIGURE_DPI = _figures.FIGURE_DPI
group_comparison_rows = _facts.group_comparison_rows
law_comparison_rows = _facts.law_comparison_rows


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


def _check_backtest(bt):
    if bt is None:
        return None
    table = getattr(bt, "table", None)
    if not isinstance(table, pd.DataFrame) or not any(str(c).startswith("coverage_") for c in table.columns):
        raise ValueError(f"backtest must be the result of bayesscale.backtest (a BacktestResult), "
                         f"got {type(bt).__name__}")
    return bt


def _check_posterior(posterior, group):
    """The posterior the report is about, and the grouped fit it belongs to (or None)."""
    grouped = None
    if hasattr(posterior, "compare_groups"):  # a grouped fit: report one group, compare the others with it
        grouped = posterior
        posterior = grouped.group(grouped.groups[0] if group is None else group)
    if not (hasattr(posterior, "params") and hasattr(posterior, "runs") and hasattr(posterior, "check")):
        raise ValueError(f"expected a bayesscale Posterior (from bayesscale.fit or load_posterior), "
                         f"got {type(posterior).__name__}")
    return posterior, grouped


def _check_comparison(comparison):
    if comparison is not None and (not isinstance(comparison, pd.DataFrame)
                                   or not {"law", "elpd_loo", "weight"} <= set(comparison.columns)):
        raise ValueError("comparison must be the table of bayesscale.compare (columns law, elpd_loo, weight, ...)")
    return comparison


def _publish(out, files: dict[str, bytes], stale=()) -> None:
    """:func:`bayesscale._report.publish.publish` (``stale`` is ignored: the whole directory is replaced)."""
    publish(out, files)


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
        if not src or src.startswith("<") or source_check(posterior.runs)["source_matches"] is not True:
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
        parts += ["--budget", flops_arg(b)]
    if target_loss is not None:
        parts += ["--target-loss", f"{float(target_loss):g}"]
    if ci != DEFAULT_CI:
        parts += ["--ci", f"{ci:g}"]
    if backtest is not None:
        parts += ["--backtest", str(getattr(backtest, "holdout", "largest_budget"))]
    parts += ["--out", str(out)]
    return " ".join(shlex.quote(p) for p in parts)


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
    posterior, grouped = _check_posterior(posterior, group)
    budgets = _check_budgets(budgets)
    target = _check_target(target_loss)
    ci = _check_ci(ci)
    out = check_out(out)
    backtest = _check_backtest(backtest)
    comparison = _check_comparison(comparison)
    if command is not None and not isinstance(command, str):
        raise ValueError(f"command must be a string, got {type(command).__name__}")

    # 1. every number, every figure, every page: all in memory
    if command is None:
        command = default_command(posterior, budgets=budgets, out=out, target_loss=target, ci=ci,
                                  data_path=data_path, backtest=backtest)
    facts = _facts.gather(posterior, budgets=budgets, target=target, ci=ci, command=command,
                          generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                          figures=_figures.paths(backtest), backtest=backtest, grouped=grouped, comparison=comparison)
    images = _figures.draw(posterior, budgets, ci, backtest)
    page = _sections.page(facts, images)
    files = {FILES["json"]: _facts.to_json(facts).encode(), FILES["markdown"]: to_markdown(page).encode(), FILES["html"]: to_html(page).encode()}
    files.update({path: images[name] for name, path in facts["figures"].items()})

    # 2. all of it on disk, or none of it
    publish(out, files)
    return ReportPaths(directory=out, html=out / FILES["html"], markdown=out / FILES["markdown"],
                       json=out / FILES["json"], figures={name: out / path for name, path in facts["figures"].items()})
