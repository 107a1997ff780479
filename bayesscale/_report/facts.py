"""The report's facts: every number and sentence, gathered from a posterior, one function per section.

Each ``*_facts`` function computes one section of the report from the
:class:`~bayesscale.Posterior` (and the options that section needs) and
returns plain JSON-ready data: dicts and lists of numbers and strings, no
formatting for people.  :func:`gather` calls them all and assembles the
document ``report.json`` holds; the HTML and the Markdown are rendered from
that same document (:mod:`bayesscale._report.sections`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from ..allocation import bayes_decision, compute_for_loss, efficient_size_range, frontier_exponents, prob_below
from ..diagnostics import THRESHOLDS
from ..posterior import to_arviz
from ..intervals import DEFAULT_CI, band_names
from .fmt import finite, fmt_num, fmt_sci, plain, snake, times

__all__ = ["EXTRAPOLATION_CAUTION_DEX", "EXTRAPOLATION_WARNING_DEX", "SIZE_THRESHOLDS", "LOO_PIT_TAIL", "SCHEMA",
           "gather", "verdict_facts", "predictive_check_facts", "data_facts", "model_facts", "parameter_facts",
           "frontier_facts", "budget_facts", "target_facts", "backtest_facts", "group_facts", "law_facts",
           "reproducibility_facts", "group_comparison_rows", "law_comparison_rows", "source_check",
           "extrapolation_level", "is_calibrated", "budget_label", "law_display", "to_json"]

#: Decades of compute beyond the largest run above which the report advises caution.
EXTRAPOLATION_CAUTION_DEX = 1.0

#: Decades of compute beyond the largest run above which the report warns strongly.
EXTRAPOLATION_WARNING_DEX = 2.0

#: Extra-compute thresholds of the efficient model-size ranges.
SIZE_THRESHOLDS = (0.1, 0.2)

#: LOO-PIT values outside this central interval mark a run the law does not explain.
LOO_PIT_TAIL = 0.005

#: The ``schema`` of report.json.
SCHEMA = "bayesscale.report/1"

_PARAM_MEANING = {
    "E": "irreducible loss",
    "A": "coefficient of the model-size term",
    "B": "coefficient of the data term",
    "alpha": "model-size exponent",
    "beta": "data exponent",
    "sigma": "noise scale on log loss",
    "tau": "scale of the per-budget offsets",
}

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

_STATUS = {  # kind of test -> does the value pass?
    "<=": lambda v, thr: "pass" if v <= thr else "fail",
    ">=": lambda v, thr: "pass" if v >= thr else "fail",
    "==": lambda v, thr: "pass" if v == thr else "fail",
    "note": lambda v, thr: "pass" if v <= thr else "note",
}


# ---------------------------------------------------------------------------
# small pieces
# ---------------------------------------------------------------------------


def _band(med, lo, hi) -> dict:
    return {"median": float(med), "lo": float(lo), "hi": float(hi)}


def _band_of(row, name: str, ci: float) -> dict:
    """The band of ``name`` from a table row with columns ``name, name_lo80, name_hi80`` (at ``ci=0.8``)."""
    lo, hi = band_names(name, ci)
    return _band(row[name], row[lo], row[hi])


def _records(df: pd.DataFrame, index_name: str) -> list[dict]:
    out = []
    for idx, row in df.iterrows():
        rec = {index_name: idx if isinstance(idx, str) else plain(idx)}
        rec.update({snake(k): plain(v) for k, v in row.items()})
        out.append(rec)
    return out


def _snake_record(mapping) -> dict:
    return {snake(k): plain(v) for k, v in mapping.items()}


def budget_label(i: int, C: float) -> str:
    """``"Budget 2 (1e25)"``: the label of the ``i``-th budget (from 0) in tables and JSON."""
    return f"Budget {i + 1} ({fmt_sci(C)})"


def extrapolation_level(dex: float, dex_below: float = 0.0) -> tuple[str, str]:
    """Level and message for a budget ``dex`` decades beyond the largest run.

    ``dex_below`` is how many decades the budget lies below the smallest
    run (positive when it does): extrapolation downward is flagged too.
    The level is one of ``below``, ``inside``, ``near``, ``caution`` and
    ``strong``.
    """
    if dex_below > 0:
        return "below", (f"CAUTION: {dex_below:.2f} decades ({times(10 ** dex_below)}) below the smallest run: "
                         "an extrapolation downward, outside the data. The law is fitted to larger runs; small "
                         "runs often bend away from it.")
    if dex <= 0:
        return "inside", "Inside the compute range of the runs: an interpolation."
    factor = times(10 ** dex)
    if dex <= EXTRAPOLATION_CAUTION_DEX:
        return "near", (f"{dex:.2f} decades ({factor}) beyond the largest run: a modest extrapolation.")
    if dex <= EXTRAPOLATION_WARNING_DEX:
        return "caution", (f"CAUTION: {dex:.2f} decades ({factor}) beyond the largest run. The intervals carry "
                           "only the extrapolation error the data's own backtests show (see the extrapolation note), "
                           "not a break in the law larger than any seen within the data. "
                           "Check the extrapolation with a backtest and, if the budget allows, add a run at an "
                           "intermediate budget before committing.")
    return "strong", (f"STRONG WARNING: {dex:.2f} decades ({factor}) beyond the largest run. More than two "
                      "orders of magnitude past the data, the fitted law is an assumption, not a measurement: "
                      "treat these numbers as a rough guide and de-risk with intermediate runs before "
                      "committing the budget.")


def source_check(runs) -> dict:
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


def is_calibrated(xm: dict | None) -> bool:
    """Is the loss extrapolation error of ``model_facts(...)["extrapolation_error"]`` calibrated on the data?"""
    return xm is not None and (xm.get("status") or {}).get("loss") == "calibrated"


# ---------------------------------------------------------------------------
# the verdict and the predictive check
# ---------------------------------------------------------------------------


def verdict_facts(posterior) -> dict:
    """The sampler verdict: ``ok``, its problems and notes, and one row per diagnostic with its status."""
    verdict = posterior.check()
    rows = []
    table = verdict.table if verdict.table is not None else pd.DataFrame(columns=["value", "target"])
    for check, r in table.iterrows():
        label, words, (op, thr) = _CHECKS.get(check, (str(check), "", (None, None)))
        v = r["value"]
        status = "n/a" if not finite(v) else _STATUS[op](v, thr) if op in _STATUS else ""
        rows.append({"check": snake(check), "label": label, "value": plain(v), "target": str(r["target"]),
                     "status": status, "meaning": words})
    return {"ok": bool(verdict.ok), "problems": list(verdict.problems), "notes": list(verdict.notes),
            "diagnostics": rows}


def predictive_check_facts(posterior) -> dict:
    """Leave-one-out PIT of every run (``arviz_stats.loo_pit`` on the stored log-likelihood).

    A run whose LOO-PIT lies outside ``[LOO_PIT_TAIL, 1 - LOO_PIT_TAIL]`` is
    one the law, fitted without it, does not explain.  The check flags a
    misfit when more runs do so than a calibrated model would give with
    probability 0.99 (binomial).
    """
    import arviz_stats as azs
    from scipy.stats import binom

    runs = posterior.runs
    method = "LOO-PIT (PSIS, arviz_stats.loo_pit)"
    try:
        pit = np.asarray(azs.loo_pit(to_arviz(posterior), var_names="y")["y"]).reshape(-1)
    except (ValueError, FloatingPointError) as e:  # degenerate draws (a failed fit): PSIS cannot smooth them
        return {"method": method, "n_runs": len(runs), "n_outside": 0, "tail": LOO_PIT_TAIL, "chance_limit": 0,
                "misfit": False, "runs_outside": [], "sentence": f"not computed ({e}).", "ks_distance": None}
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
    return {"method": method, "n_runs": n, "n_outside": int(out.sum()), "tail": LOO_PIT_TAIL, "chance_limit": limit,
            "misfit": misfit, "runs_outside": named, "sentence": sentence,
            "ks_distance": float(np.max(np.abs(np.sort(pit) - (np.arange(1, n + 1) - 0.5) / n))) if n else None}


# ---------------------------------------------------------------------------
# the data, the model and its parameters
# ---------------------------------------------------------------------------


def data_facts(runs) -> dict:
    """The runs: how many, their ranges of N, D, C and loss, the largest run, the source and its hash."""
    largest = int(np.argmax(runs.C))
    return {"n_runs": int(len(runs)), "n_budget_groups": int(runs.n_budgets),
            "n_min": float(runs.N.min()), "n_max": float(runs.N.max()),
            "d_min": float(runs.D.min()), "d_max": float(runs.D.max()),
            "c_min": float(runs.C.min()), "c_max": float(runs.C.max()),
            "loss_min": float(runs.loss.min()), "loss_max": float(runs.loss.max()),
            "largest_run": {"run_id": str(runs.run_id[largest]), "n": float(runs.N[largest]),
                            "d": float(runs.D[largest]), "c": float(runs.C[largest]),
                            "loss": float(runs.loss[largest])},
            "source": str(runs.source), "sha256": runs.sha256}


def law_display(posterior) -> str:
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
        from ..model import describe_prior

        resolved = spec.resolve_priors(posterior._ctx)
        return [{"parameter": k, "prior": describe_prior(v), "with_these_data": None} for k, v in resolved.items()]
    pri = spec.priors
    desc = pri.describe()
    try:
        resolved = pri.resolve(posterior.runs.loss).describe()
    except Exception:  # noqa: BLE001 - the formula alone is still a complete description
        resolved = desc
    skip = {"tau": spec.offsets != "budget", "df": spec.likelihood != "student_t",
            "kappa": "kappa" not in posterior.params, "profile_trend": "profile_trend" not in posterior.params}
    return [{"parameter": name, "prior": text,
             "with_these_data": resolved[name] if resolved.get(name, text) != text else None}
            for name, text in desc.items() if not skip.get(name, False)]


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
    return _snake_record(d)


def _extrapolation_words(xm: dict | None) -> str:
    if xm is None:
        return ("none: beyond the largest run the intervals carry parameter and noise uncertainty only, not the "
                "risk that the law bends.")
    reasons = xm.get("reasons") or {}
    if (xm.get("status") or {}).get("loss") == "prior" and "loss_sd_at_1_decade" in xm:
        return (f"{reasons.get('loss', 'not calibrated')} (sd {fmt_num(xm['loss_sd_at_1_decade'], 3)} in log loss at "
                "one decade beyond the largest run): the bands beyond the data are wider than parameter and noise "
                "uncertainty alone, but not calibrated on these runs.")
    if not is_calibrated(xm):
        return (f"{reasons.get('loss', 'not calibrated')}: beyond the largest run the intervals carry parameter "
                "and noise uncertainty only.")
    if "loss_sd_at_1_decade" in xm:
        size = (f"its draws move each draw of the law's log N_opt by {fmt_num(xm['n_opt_sd_at_1_decade'], 3)} "
                "(root mean square) at one decade" if "n_opt_level_median" in xm else
                f"sd {fmt_num(xm.get('n_opt_sd_at_1_decade', math.nan), 3)} at one decade")
        n_opt = ("; the N_opt, D_opt and tokens-per-parameter bands carry the extrapolation error of log N_opt "
                 f"({reasons.get('n_opt', '')}; {size}"
                 + (f", of which a nugget of {fmt_num(xm['n_opt_nugget_median'], 3)} applies at every budget, "
                    "inside the data too" if "n_opt_nugget_median" in xm else "") + ")"
                 if "n_opt_sd_at_1_decade" in xm else
                 f"; the N_opt bands are parameter uncertainty only ({reasons.get('n_opt', 'not calibrated')})")
        tilt = "" if not reasons.get("tilt") else (
            f"; a run's loss prediction at a compute beyond the data also carries {reasons['tilt']} (the "
            "allocation's loss band, which asks for no particular run, does not)" if "tilt_mean_median" in xm
            else f"; {reasons['tilt']}")
        return ("beyond the largest run every loss prediction carries an extrapolation error on log loss drawn from "
                "its own posterior (a random walk plus a random slope in log compute, zero at the largest run, "
                "Student-t, with a prior that gives even odds to no error beyond the fold fits' own; "
                f"sd {fmt_num(xm['loss_sd_at_1_decade'], 3)} at one decade), "
                f"{reasons.get('loss', '')}{tilt}{n_opt}.")
    if {"kappa0", "kappa1"} <= set(xm):
        where = (f", calibrated on {int(xm['n_points'])} held-out runs in {int(xm['n_folds'])} rolling-origin "
                 "refits of the data" if finite(xm.get("n_points")) and finite(xm.get("n_folds")) else "")
        return ("beyond the largest run every prediction carries an extra error on log loss with standard "
                f"deviation sqrt(κ0² + κ1² d) at d decades past the data (κ0 = {fmt_num(xm['kappa0'], 3)}, "
                f"κ1 = {fmt_num(xm['kappa1'], 3)}){where}.")
    return "calibrated extra error beyond the data: " + ", ".join(f"{k} = {v}" for k, v in xm.items()) + "."


def model_facts(posterior) -> dict:
    """The likelihood, the offsets, the priors and the extrapolation error model, with words for each."""
    spec = posterior.spec
    xm = _extrapolation_model(posterior)
    return {"likelihood": spec.likelihood, "offsets": spec.offsets,
            "likelihood_description": _likelihood_words(spec), "offsets_description": _offsets_words(spec),
            "priors": _priors(posterior), "extrapolation_error": xm,
            "extrapolation_description": _extrapolation_words(xm)}


def _lo_hi(df: pd.DataFrame, ci: float) -> pd.DataFrame:
    """The JSON keeps "lo"/"hi" inside each record (the level is the document's "ci")."""
    return df.rename(columns=dict(zip(band_names("", ci), ("lo", "hi"))))


def parameter_facts(posterior, ci: float) -> list[dict]:
    """One record per parameter: its meaning, median, ``ci`` interval (``lo``, ``hi``), sd, R-hat and ESS."""
    summ = _lo_hi(posterior.summary(ci=ci), ci)
    return [{"parameter": name, "meaning": _PARAM_MEANING.get(name, ""), **_snake_record(r)}
            for name, r in summ.iterrows()]


def frontier_facts(posterior, ci: float) -> list[dict]:
    """The compute-optimal frontier's exponents ``a``, ``b`` and coefficient ``G``, with ``ci`` intervals."""
    fe = _lo_hi(frontier_exponents(posterior, ci=ci), ci)
    return [{"name": k, **_snake_record(r)} for k, r in fe.iterrows()]


# ---------------------------------------------------------------------------
# the budgets
# ---------------------------------------------------------------------------


def _extra_sd(x_obj, C: float):
    """Standard deviation of the calibrated extrapolation error on log loss at ``C`` (None without one)."""
    if x_obj is None or not hasattr(x_obj, "variance"):
        return None
    try:
        return float(np.sqrt(np.asarray(x_obj.variance(C), dtype=float)))
    except (TypeError, ValueError):
        return None


def _size_ranges(posterior, C: float, ci: float) -> list[dict]:
    """The model sizes (k = N / N_opt and N) that cost at most each of :data:`SIZE_THRESHOLDS` extra compute."""
    lo, hi = band_names("", ci)
    N_lo, N_hi = band_names("N", ci)
    ranges = []
    for thr in SIZE_THRESHOLDS:
        sr = efficient_size_range(posterior, C, threshold=thr, ci=ci)
        t = sr.table
        ranges.append({
            "threshold": thr,
            "k_lo": _band(t.loc["k_lo", "median"], t.loc["k_lo", lo], t.loc["k_lo", hi]),
            "k_hi": _band(t.loc["k_hi", "median"], t.loc["k_hi", lo], t.loc["k_hi", hi]),
            "n_lo": _band(t.loc["k_lo", "N"], t.loc["k_lo", N_lo], t.loc["k_lo", N_hi]),
            "n_hi": _band(t.loc["k_hi", "N"], t.loc["k_hi", N_lo], t.loc["k_hi", N_hi]),
            "sentence": sr.sentence,
        })
    return ranges


def budget_facts(posterior, budgets, target: float | None, ci: float) -> list[dict]:
    """One record per budget: the Bayes decision, the loss-optimal bands, the expected loss, P(loss < target),
    how far it lies beyond the data, and the efficient model-size ranges."""
    runs = posterior.runs
    alloc = posterior.allocate(budgets, ci=ci)
    bayes = bayes_decision(posterior, budgets)
    N_b = bayes["N_bayes"].to_numpy(dtype=float)
    D_b = bayes["D_bayes"].to_numpy(dtype=float)
    pred = posterior.predict(N_b, D_b, ci=ci)
    prob = prob_below(posterior, N_b, D_b, target) if target is not None else None
    c_max, c_min = float(runs.C.max()), float(runs.C.min())
    x_obj = getattr(posterior, "extrapolation", None)
    rows = []
    for i, C in enumerate(budgets):
        a = alloc.iloc[i]
        dex = float(np.log10(C / c_max))
        dex_below = float(np.log10(c_min / C))
        level, message = extrapolation_level(dex, dex_below)
        rows.append({
            "label": budget_label(i, C),
            "compute_flops": float(C),
            "bayes_decision": {"n": float(N_b[i]), "d": float(D_b[i]),
                               "tokens_per_param": float(bayes["tokens_per_param"].iloc[i]),
                               "expected_loss": float(bayes["expected_loss"].iloc[i])},
            "n_opt": _band_of(a, "N_opt", ci),
            "d_opt": _band_of(a, "D_opt", ci),
            "tokens_per_param": _band_of(a, "tokens_per_param", ci),
            "loss_at_optimum": _band_of(a, "loss", ci),
            "loss": {**_band_of(pred.iloc[i], "loss", ci), "mean": float(pred["loss_mean"].iloc[i])},
            "target_loss": target,
            "prob_below_target": None if prob is None else float(np.asarray(prob)[i]),
            "extrapolation": {"dex": dex, "factor": float(10 ** dex), "largest_run_compute_flops": c_max,
                              "dex_below_smallest": max(dex_below, 0.0), "smallest_run_compute_flops": c_min,
                              "level": level, "message": message,
                              "extra_sd_log_loss": _extra_sd(x_obj, C)},
            "efficient_size_ranges": _size_ranges(posterior, C, ci),
        })
    return rows


def target_facts(posterior, target: float | None, ci: float) -> dict | None:
    """The least compute that reaches ``target`` on the compute-optimal frontier (None without a target)."""
    if target is None:
        return None
    cf = compute_for_loss(posterior, target, ci=ci).table.iloc[0]
    return {"target_loss": target, "reachable_share": float(cf["reachable"]),
            "compute_flops": _band_of(cf, "C", ci), "n_opt": _band_of(cf, "N_opt", ci),
            "d_opt": _band_of(cf, "D_opt", ci)}


# ---------------------------------------------------------------------------
# optional sections: backtest, grouped fits, several laws
# ---------------------------------------------------------------------------


def _coverage_assessment(table: pd.DataFrame) -> list[dict]:
    """Each nominal coverage of the backtest's overall row against what it achieved: too narrow, too wide, about right."""
    if "overall" not in table.index:
        return []
    overall = table.loc["overall"]
    # held-out runs of one budget share its error: the verdict counts budgets (folds), not runs
    n = int(overall["n_folds"]) if "n_folds" in table.columns else (
        int(overall["n_runs"]) if "n_runs" in table.columns else 0)
    calib = []
    for c in table.columns:
        if str(c).startswith("coverage_"):
            nominal = float(str(c).split("_", 1)[1]) / 100
            emp = float(overall[c])
            se = math.sqrt(nominal * (1 - nominal) / max(n, 1))
            words = "too narrow" if emp < nominal - 2 * se else "too wide" if emp > nominal + 2 * se else "about right"
            calib.append({"nominal": nominal, "empirical": emp, "n_folds": n, "assessment": words})
    return calib


def backtest_facts(backtest) -> dict | None:
    """The backtest's table by fold, its calibration verdict and how far N_opt moved (None without one)."""
    if backtest is None:
        return None
    alloc = getattr(backtest, "allocation", None)
    return {"holdout": getattr(backtest, "holdout", None),
            "table": _records(backtest.table, "fold"),
            "calibration": _coverage_assessment(backtest.table),
            "allocation": ([_snake_record(r) for r in alloc.to_dict("records")]
                           if isinstance(alloc, pd.DataFrame) and len(alloc) else [])}


def group_comparison_rows(df: pd.DataFrame) -> list[dict]:
    """JSON-ready rows of the "variants compared" section from :meth:`GroupedPosterior.compare_groups`.

    The interval is ``multiplier_lo`` .. ``multiplier_hi`` at the level ``df.attrs["ci"]`` (the
    table's columns ``multiplier_lo80``, ``multiplier_hi80`` at 0.8).
    """
    lo, hi = band_names("multiplier", df.attrs.get("ci", DEFAULT_CI))
    return [{"C": float(r["C"]), "multiplier": float(r["multiplier"]), "multiplier_lo": float(r[lo]),
             "multiplier_hi": float(r[hi]), "prob_better": float(r["prob_better"]),
             "loss_a": float(r["loss_a"]), "loss_b": float(r["loss_b"])} for _, r in df.iterrows()]


def group_facts(grouped, reference: str, budgets, ci: float) -> dict:
    """A grouped fit: every other group against ``reference``, the compute multiplier at each budget."""
    comps = [{"a": reference, "b": g,
              "rows": group_comparison_rows(grouped.compare_groups(reference, g, budgets=budgets, ci=ci))}
             for g in grouped.groups if g != reference]
    return {"reference": reference, "groups": list(grouped.groups), "pooling": grouped.pooling,
            "comparisons": comps}


def law_comparison_rows(table: pd.DataFrame) -> list[dict]:
    """JSON-ready rows of the "which law" section from :func:`bayesscale.compare`."""
    keep = [c for c in table.columns if c in ("law", "n_params", "elpd_loo", "elpd_se", "elpd_diff", "diff_se",
                                               "pareto_k_bad", "weight", "preferred", "backtest_mlpd",
                                               "backtest_coverage_90", "backtest_folds") or c.startswith("N_opt")]
    return [{k: plain(v) for k, v in row.items()} for row in table[keep].to_dict(orient="records")]


def law_facts(comparison: pd.DataFrame, ci: float) -> dict:
    """The "which law" section from the table of :func:`bayesscale.compare`."""
    return {"rows": law_comparison_rows(comparison), "ci": float(comparison.attrs.get("ci", ci))}


# ---------------------------------------------------------------------------
# reproducibility, and the whole document
# ---------------------------------------------------------------------------


def reproducibility_facts(posterior, command: str, generated: str) -> dict:
    """The data's hash (and whether its file still matches), sampler settings, versions, device, timing,
    the command that regenerates the report and when it was generated."""
    runs = posterior.runs
    s = posterior.settings
    info = dict(posterior.info or {})
    return {
        "source": str(runs.source), "sha256": runs.sha256,
        **{k: v for k, v in source_check(runs).items() if k not in ("source", "sha256")},
        "settings": {"chains": s.chains, "warmup": s.warmup, "draws": s.draws, "seed": info.get("seed"),
                     "likelihood": posterior.spec.likelihood, "offsets": posterior.spec.offsets,
                     "max_tree_depth": s.max_tree_depth, "target_accept": s.target_accept,
                     "dense_mass": s.dense_mass},
        "versions": dict(info.get("versions") or {}),
        "device": info.get("device"),
        "timing_seconds": dict(info.get("timing") or {}),
        "command": command,
        "generated_utc": generated,
    }


def gather(posterior, *, budgets, target: float | None, ci: float, command: str, generated: str,
           figures: dict[str, str], backtest=None, grouped=None, comparison: pd.DataFrame | None = None) -> dict:
    """Every fact of the report, in the order of ``report.json``.

    ``figures`` maps each figure's name to its path in the report directory;
    ``grouped`` is the :class:`~bayesscale.GroupedPosterior` that
    ``posterior`` is a group of (adds ``groups``); ``comparison`` the table of
    :func:`bayesscale.compare` (adds ``laws``).
    """
    facts = {
        "schema": SCHEMA,
        "title": "Compute budget report",
        "law": "L(N, D) = E + A / N^alpha + B / D^beta",
        "law_display": law_display(posterior),
        "ci": ci,
        "target_loss": target,
        "verdict": verdict_facts(posterior),
        "predictive_check": predictive_check_facts(posterior),
        "data": data_facts(posterior.runs),
        "model": model_facts(posterior),
        "parameters": parameter_facts(posterior, ci),
        "frontier_exponents": frontier_facts(posterior, ci),
        "budgets": budget_facts(posterior, budgets, target, ci),
        "compute_for_target": target_facts(posterior, target, ci),
        "backtest": backtest_facts(backtest),
        "reproducibility": reproducibility_facts(posterior, command, generated),
    }
    if grouped is not None:
        facts["groups"] = group_facts(grouped, posterior.info["group"], budgets, ci)
    if comparison is not None:
        facts["laws"] = law_facts(comparison, ci)
    facts["law_name"] = posterior.law.name
    facts["figures"] = dict(figures)
    return facts


def to_json(facts: dict) -> str:
    """The facts as the text of ``report.json``: plain JSON (``null`` for a number that does not exist)."""
    return json.dumps(plain(facts), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
