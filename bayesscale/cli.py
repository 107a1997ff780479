"""The ``bayesscale`` command line.

Exit codes: 0 when the fit's diagnostics pass, 1 when they fail, 2 on bad
input or a bad path (a one-line message, never a traceback; output paths
are checked before any fitting starts), 3 on an unexpected internal error
(one line; ``BAYESSCALE_DEBUG=1`` shows the traceback), 130 when
interrupted (Ctrl-C).

Only the standard library is imported at start-up: JAX and the rest load
inside :func:`main`, so an interrupt or a bad argument is answered in one
line at any moment.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import warnings
from pathlib import Path

__all__ = ["main"]

EPILOG = """exit codes: 0 the diagnostics pass, 1 they fail (do not trust the numbers), 2 bad input or path,
3 internal error, 130 interrupted.
environment: BAYESSCALE_CACHE_DIR (compilation cache; 'off' disables), BAYESSCALE_HOST_DEVICES (CPU devices)."""


class _BadInput(Exception):
    pass


def _add_fit_options(p: argparse.ArgumentParser, *, draws_default: int = 1000):
    g = p.add_argument_group("sampler")
    g.add_argument("--chains", type=int, default=4, help="NUTS chains (default: 4)")
    g.add_argument("--warmup", type=int, default=1000, help="warm-up iterations per chain (default: 1000)")
    g.add_argument("--draws", type=int, default=draws_default,
                   help=f"kept draws per chain (default: {draws_default})")
    g.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    g.add_argument("--device", choices=["cpu", "gpu"], default=None,
                   help="JAX platform (default: the CPU for a few chains where JAX's default is a GPU, "
                        "else JAX's default)")
    g.add_argument("--likelihood", choices=["student_t", "normal"], default="student_t",
                   help="noise on log loss (default: student_t, robust)")
    g.add_argument("--offsets", choices=["none", "budget"], default="none",
                   help="per-budget offsets (default: none, the plain law)")
    g.add_argument("--extrapolation", choices=["calibrated", "none"], default="calibrated",
                   help="widen predictions beyond the data by the error of rolling-origin refits "
                        "(default: calibrated)")
    g.add_argument("--bend", choices=["auto", "on", "none"], default="auto",
                   help="a bend in log compute on top of the law (default: auto, on with 5 or more budgets; "
                        "none fits the plain law)")
    g.add_argument("--profile", choices=["law", "trend"], default="law",
                   help="shape of each IsoFLOP profile: the law's own (default), or trend: its curvature changes "
                        "with log compute (chinchilla law, single fits)")
    g.add_argument("--no-progress", action="store_true", help="never show a progress bar")


def _probability(text: str) -> float:
    from .intervals import resolve_ci

    try:
        return resolve_ci(float(text), "--ci")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} must be a probability in (0, 1), e.g. 0.9 for 90% "
                                         "intervals") from None


def _ci_option(p: argparse.ArgumentParser):
    from .intervals import DEFAULT_CI

    p.add_argument("--ci", type=_probability, default=DEFAULT_CI, metavar="P",
                   help=f"probability mass of every interval, in (0, 1) (default: {DEFAULT_CI:g}, i.e. "
                        f"{100 * DEFAULT_CI:g}%% intervals; the level is in every column name and header)")


def _add_data_options(p: argparse.ArgumentParser):
    p.add_argument("--column", action="append", default=[], metavar="NAME=YOURS",
                   help="map a column, e.g. --column N=params --column loss=eval_loss (repeatable)")
    p.add_argument("--drop", action="append", default=[], metavar="RUN_ID",
                   help="leave out this run (repeatable): its id as messages name it, e.g. 'row 7' (the CSV "
                        "line) or the value of a 'run' column")
    p.add_argument("--drop-highest-loss", type=int, default=0, metavar="K",
                   help="leave out the K runs with the highest loss (e.g. 5 for the published 240-run refit of "
                        "the bundled Chinchilla data); the dropped runs are listed")


def _select(runs, a):
    """The runs minus ``--drop`` and ``--drop-highest-loss``; says which were dropped (stderr)."""
    import numpy as np

    ids = list(getattr(a, "drop", []) or [])
    k = getattr(a, "drop_highest_loss", 0) or 0
    if not ids and not k:
        return runs
    if k < 0 or k >= len(runs):
        raise _BadInput(f"--drop-highest-loss {k}: give a number from 0 to {len(runs) - 1} "
                        f"(the table has {len(runs)} runs)")
    keep = np.ones(len(runs), bool)
    have = runs.run_id.tolist()
    for rid in ids:
        if rid not in have:
            raise _BadInput(f"--drop {rid!r}: no run has that id; ids look like {have[0]!r}, {have[1]!r} "
                            "(the CSV line, or the value of a 'run' column)")
        keep[have.index(rid)] = False
    if k:
        order = np.argsort(-runs.loss, kind="stable")
        keep[order[:k]] = False
    dropped = runs.run_id[~keep].tolist()
    print(f"dropped {len(dropped)} run{'s' * (len(dropped) > 1)}: {', '.join(dropped)}", file=sys.stderr)
    return runs.subset(keep)


def _load(path, a):
    import bayesscale as bs

    return _select(bs.load_runs(path, columns=_columns(a.column)), a)


def _writable_dir(where: Path, flag: str, shown: str) -> None:
    """The nearest existing ancestor of ``where`` must be a directory this process can write into."""
    import tempfile

    anc = where
    while not anc.exists():
        if anc.parent == anc:
            break
        anc = anc.parent
    if not anc.is_dir():
        raise _BadInput(f"{flag} {shown}: {anc} is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=anc):
            pass
    except OSError as e:
        raise _BadInput(f"{flag} {shown}: cannot write in {anc} ({e.strerror or e}). Choose a directory you "
                        "can write to.") from None


def _check_out_file(out: str | None, flag: str = "--out") -> None:
    """An output file: not a directory, in a writable place (checked before fitting)."""
    if not out:
        return
    p = Path(out)
    if p.is_dir():
        raise _BadInput(f"{flag} {out}: is a directory; give a file name such as {p / 'fit.nc'}")
    _writable_dir(p.absolute().parent, flag, out)


def _check_out_dir(out: str | None, flag: str = "--out") -> None:
    """An output directory: not a file, in a writable place (checked before fitting)."""
    if not out:
        return
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise _BadInput(f"{flag} {out}: is a file; give a directory (it is created if missing)")
    _writable_dir(p.absolute().parent if p.exists() else p.absolute(), flag, out)
    if p.is_dir():
        _writable_dir(p.absolute(), flag, out)


def _columns(pairs):
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise _BadInput(f"--column {pair!r}: expected NAME=YOURS, e.g. --column N=params")
        k, v = pair.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _law_option(p: argparse.ArgumentParser, *, repeatable: bool = False, report: bool = False):
    from .laws import LAWS

    names = ", ".join(LAWS)
    if report:
        p.add_argument("--law", action="append", default=None, metavar="NAME",
                       help=f"the law to report (default: chinchilla); repeat it to fit more laws and add a "
                            f"'which law' section comparing them (the first is the one reported): {names}")
    elif repeatable:
        p.add_argument("--law", action="append", default=None, metavar="NAME",
                       help=f"a law to fit and compare (repeatable; default: every built-in that the runs "
                            f"can fit): {names}")
    else:
        p.add_argument("--law", default="chinchilla", metavar="NAME",
                       help=f"the law to fit (default: chinchilla): {names}")


def _fit_kwargs(a, *, calibrate_now: bool = True) -> dict:
    """fit's keywords from the options; the calibration runs inside the fit only when ``calibrate_now``."""
    return dict(chains=a.chains, warmup=a.warmup, draws=a.draws, seed=a.seed, device=a.device,
                likelihood=a.likelihood, offsets=a.offsets, bend=a.bend, profile=a.profile,
                extrapolation=a.extrapolation if calibrate_now else "none",
                progress=False if a.no_progress else None, law=getattr(a, "law", "chinchilla") or "chinchilla")


def _print_fit(post, out=None, ci=None):
    import pandas as pd

    from .intervals import band_names

    out = out or sys.stdout
    s = post.summary(ci=ci)
    ci = s.attrs["ci"]
    lo, hi = band_names("", ci)
    with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 120):
        groups = "" if post.runs.group_names is None else f" in groups {', '.join(post.runs.group_names)}"
        print(f"Posterior of {post.law.formula} (law {post.law.name}) from {len(post.runs)} runs{groups} "
              f"({post.settings.chains} chains x {post.settings.draws} draws); {lo} .. {hi} = {ci:.0%} interval",
              file=out)
        print(s[["median", lo, hi, "r_hat", "ess_bulk", "ess_tail"]].to_string(), file=out)
    print(file=out)
    print(post.check(), file=out)


def _cmd_fit(a) -> int:
    _check_out_file(a.out)
    if a.group:
        return _fit_groups(a)
    return _fit_and_report(_load(a.runs, a), a)


def _fit_groups(a) -> int:
    """``fit --group COLUMN``: the hierarchical fit, one law per group, calibrated per group inside the fit."""
    import bayesscale as bs

    runs = _select(bs.load_runs(a.runs, columns=_columns(a.column), group=a.group), a)
    if a.extrapolation == "calibrated":
        print(f"fitting {runs.n_groups} groups ({', '.join(runs.group_names)}), then calibrating each group's "
              "extrapolation error (--extrapolation none skips it) ...", file=sys.stderr, flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)  # the verdict is printed instead
        post = bs.fit(runs, **{**_fit_kwargs(a), "groups": True})
    _print_fit(post, ci=a.ci)
    if a.out:
        print(f"\nwrote {post.to_netcdf(a.out)}")
    return 0 if post.check().ok else 1


def _cmd_demo(a) -> int:
    import bayesscale as bs

    _check_out_file(a.out)
    runs = bs.datasets.chinchilla(drop_highest_loss=5)
    print(f"Fitting the bundled Chinchilla runs (Hoffmann et al. 2022, digitised by Besiroglu et al. 2024): "
          f"{len(runs)} runs, the 5 with the highest loss dropped as in the published refit.\n")
    return _fit_and_report(runs, a)


def _quiet_fit(runs, a, **over):
    """The plain fit (the calibration, when asked for, is the explicit next step: :func:`_calibrate`)."""
    import bayesscale as bs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)  # the verdict is printed instead
        return bs.fit(runs, **{**_fit_kwargs(a, calibrate_now=False), **over})


def _calibrate(post, a):
    """Calibrate the extrapolation error now, saying so (about as long as the fit); returns the posterior."""
    import time

    import bayesscale as bs

    if a.extrapolation != "calibrated" or isinstance(post, bs.GroupedPosterior) or post.discrepancy is not None:
        return post  # a grouped fit is calibrated per group inside the fit
    print("calibrating the extrapolation error: rolling-origin refits of the runs, in one batch "
          "(about as long as the fit; --extrapolation none skips it) ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        post = bs.calibrate_extrapolation(post, progress=False if a.no_progress else None)
    x = post.discrepancy
    print(f"calibrated in {time.perf_counter() - t0:.1f} s ({x.n_folds} folds; {x.reasons.get('loss', '')})",
          file=sys.stderr, flush=True)
    return post


def _fit_and_report(runs, a) -> int:
    post = _quiet_fit(runs, a)
    _print_fit(post, ci=getattr(a, "ci", None))
    if getattr(a, "out", None):
        post = _calibrate(post, a)
        path = post.to_netcdf(a.out)
        print(f"\nwrote {path}")
    return 0 if post.check().ok else 1


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (e.g. 5.88e23)") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive, finite number")
    return v


def _load_posterior_or_fit(path: str, a):
    """A posterior from FIT.nc, or a fresh fit of RUNS.csv."""
    import bayesscale as bs

    if path.endswith((".nc", ".nc4", ".netcdf")):
        if a.drop or a.drop_highest_loss or a.column:
            raise _BadInput(f"{path} is a saved posterior: --drop, --drop-highest-loss and --column apply to a CSV "
                            "of runs. Refit from the CSV with them.")
        return bs.load_posterior(path)
    return _quiet_fit(_load(path, a), a)


def _cmd_report(a) -> int:
    import bayesscale as bs
    from bayesscale.reporting import check_out, report

    _check_out_dir(a.out)
    try:
        check_out(a.out)
    except ValueError as e:
        raise _BadInput(f"--out {a.out}: {e}") from None
    holdout = _holdout(a.backtest) if a.backtest else None
    laws = a.law or ["chinchilla"]
    a.law = laws[0]
    post = _calibrate(_load_posterior_or_fit(a.source, a), a)
    comparison = None
    if len(laws) > 1:
        others = []
        for name in laws[1:]:
            print(f"fitting {name} for the 'which law' section", file=sys.stderr, flush=True)
            others.append(_calibrate(_quiet_fit(post.runs, a, law=name), a))  # bands like the main law's
        comparison = bs.compare([post, *others], budgets=a.budget, ci=a.ci,
                                progress=False if a.no_progress else None)
    bt = None
    if a.backtest:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bs.FitWarning)
            bt = bs.backtest(post.runs, holdout=holdout, seed=post.info.get("seed", 0),
                             chains=post.settings.chains, warmup=post.settings.warmup, draws=post.settings.draws,
                             likelihood=post.spec.likelihood, offsets=post.spec.offsets, law=post.law,
                             bend=post.spec.bend, progress=False if a.no_progress else None)
    paths = report(post, budgets=a.budget, target_loss=a.target_loss, out=a.out, backtest=bt, comparison=comparison,
                   ci=a.ci, command=" ".join(["bayesscale", *map(shlex.quote, a.argv)]))
    print(post.check())
    print(f"\nwrote {paths.html}\n      {paths.markdown}\n      {paths.json}")
    return 0 if post.check().ok else 1


def _holdout(text: str):
    if text in ("largest_budget", "leave_one_budget_out"):
        return text
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError:
        raise _BadInput(f"--holdout {text!r}: use largest_budget, leave_one_budget_out or a compute threshold "
                        "in FLOPs such as 1e21") from None


#: Units of the backtest table's columns, printed beside the names (which backtest.csv uses as they are).
_BACKTEST_UNITS = {
    "n_runs": "n_runs",
    "extrapolation_dex": "extrapolation_dex (decades)",
    "coverage_50": "coverage_50 (fraction)",
    "coverage_80": "coverage_80 (fraction)",
    "coverage_90": "coverage_90 (fraction)",
    "width_90": "width_90 (loss)",
    "bias": "bias (log loss)",
    "mlpd": "mlpd (nats)",
    "crps": "crps (log loss)",
}


def _coverage_interval(k: int, n: int, mass: float = 0.9) -> tuple[float, float]:
    """Equal-tailed Jeffreys interval of a coverage probability from ``k`` of ``n`` runs inside."""
    from scipy.special import betaincinv

    lo = 0.0 if k == 0 else float(betaincinv(k + 0.5, n - k + 0.5, (1 - mass) / 2))
    hi = 1.0 if k == n else float(betaincinv(k + 0.5, n - k + 0.5, (1 + mass) / 2))
    return lo, hi


def backtest_verdict(res, level: float = 0.9) -> str:
    """A plain answer to "would these intervals have held?", with its uncertainty.

    Counts the held-out runs inside their ``level`` predictive interval and
    gives a 90% Jeffreys interval for the true coverage.  Runs of one budget
    share that budget's extrapolation error, so with few held-out budgets
    the interval is optimistic; the sentence says how many there are.
    """
    tag = f"{round(level * 100)}"
    pts = res.points
    n = len(pts)
    k = int(pts[f"covered_{tag}"].sum()) if n else 0
    n_budgets = int(pts["fold"].nunique()) if n else 0
    if n == 0:
        return "Would these intervals have held? Nothing was held out, so the backtest cannot tell."
    lo, hi = _coverage_interval(k, n)
    runs_word = f"{k} of {n} held-out run{'s' * (n > 1)}"
    basis = (f"{runs_word} fell inside {'their' if n > 1 else 'its'} {tag}% predictive interval; with "
             f"{n} run{'s' * (n > 1)} from {n_budgets} held-out budget{'s' * (n_budgets > 1)} the coverage "
             f"could be anywhere from {lo:.0%} to {hi:.0%} (90% interval, optimistic: runs of one budget share "
             "its extrapolation error)")
    if n < 5 or hi - lo > 0.5:
        answer = "Too few held-out runs to tell"
    elif hi < level:
        answer = f"No: the {tag}% intervals were too narrow beyond the data"
    elif lo > level:
        answer = f"Yes, and the {tag}% intervals were wider than needed"
    else:
        answer = "Yes, as far as these runs can tell"
    return f"Would these intervals have held? {answer}. {basis[0].upper()}{basis[1:]}."


def _print_backtest(res) -> None:
    import pandas as pd

    table = res.table.rename(columns=_BACKTEST_UNITS)
    cols = [c for c in _BACKTEST_UNITS.values() if c in table.columns]
    with pd.option_context("display.float_format", "{:.3g}".format, "display.width", 200):
        print(f"Backtest ({res.holdout}): fit on the smaller budgets, predict the held-out ones")
        print(table[cols].to_string())
    print("\nruns held out per fold; decades of compute beyond the fold's largest training run; the fraction of "
          "held-out runs inside their 50/80/90% predictive intervals; the median 90% interval width in loss; bias, "
          "mean log predictive density and CRPS on log loss (bias = observed minus predictive median; 0.01 is "
          "about 1%).")
    print(backtest_verdict(res))


def _cmd_backtest(a) -> int:
    import bayesscale as bs

    _check_out_dir(a.out)
    holdout = _holdout(a.holdout)
    runs = _load(a.runs, a)
    kw = _fit_kwargs(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        res = bs.backtest(runs, holdout=holdout, **kw)
    _print_backtest(res)
    if len(res.allocation):
        import pandas as pd

        with pd.option_context("display.float_format", "{:.4g}".format):
            print("\nCompute-optimal N (parameters) at each held-out budget (C in FLOPs): fitted without it vs "
                  "with all runs")
            print(res.allocation.to_string(index=False))
    if a.out:
        from bayesscale.plots import backtest_coverage, save_figure
        from bayesscale.posterior import atomic_write

        out = Path(a.out)
        atomic_write(out / "backtest.csv", lambda tmp: res.table.to_csv(tmp))
        atomic_write(out / "backtest_points.csv", lambda tmp: res.points.to_csv(tmp, index=False))
        save_figure(backtest_coverage(res), out / "backtest.png")
        print(f"\nwrote {out / 'backtest.csv'}, {out / 'backtest_points.csv'}, {out / 'backtest.png'}")
    return 0 if all(p.check().ok for p in res.posteriors) else 1


def _cmd_compare(a) -> int:
    import pandas as pd

    import bayesscale as bs
    from bayesscale.compare import PARSIMONY_SE
    from bayesscale.intervals import band_names
    from bayesscale.posterior import atomic_write

    _check_out_file(a.out)
    runs = _load(a.runs, a)
    names = a.law or [n for n, law in bs.LAWS.items() if not ({"logU", "logS", "logB"} & set(law.covariates))]
    laws = [bs.get_law(n) for n in names]
    if len(laws) < 2:
        raise _BadInput("compare needs at least two laws: --law chinchilla --law kaplan ...")
    posts = []
    for law in laws:
        print(f"fitting {law.name}: {law.formula}", file=sys.stderr, flush=True)
        posts.append(_quiet_fit(runs, a, law=law, extrapolation="none"))
    table = bs.compare(posts, budgets=a.budget or None, backtest=not a.no_backtest, ci=a.ci,
                       progress=False if a.no_progress else None)
    with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 200):
        print("Which law to believe: in-sample PSIS-LOO (elpd, higher is better; pareto_k_bad = runs where the "
              "estimate is unreliable), stacking weight, and the backtest beyond the data "
              "(mean log predictive density of held-out budgets and their 90% coverage)")
        print(table.to_string(index=False))
        print(f"\nPreferred: {table.attrs['preferred']} (the simplest law within {PARSIMONY_SE:g} standard errors of "
              "the best elpd)")
        if a.budget:
            size_laws = [p for p in posts if p.law.depends_on_size()]
            avg = bs.average(size_laws, budgets=a.budget, ci=a.ci)
            print(f"\nModel-averaged allocation (stacking weights {avg.attrs['weights']}; bands "
                  f"{avg.attrs['ci']:.0%}):")
            cols = ["C", "N_opt", *band_names("N_opt", a.ci), "tokens_per_param", "loss", *band_names("loss", a.ci)]
            print(avg[cols].to_string(index=False))
    bad = [p.law.name for p in posts if not p.check().ok]
    if bad:
        print(f"\nThe diagnostics of {', '.join(bad)} failed: do not trust their rows.")
    if a.out:
        atomic_write(a.out, lambda tmp: table.to_csv(tmp, index=False))
        print(f"\nwrote {a.out}")
    return 0 if not bad else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayesscale",
        description="Bayesian scaling-law inference: fit L(N, D) = E + A/N^alpha + B/D^beta to training runs "
                    "with NUTS, check the fit, and plan compute budgets with uncertainty bands.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"bayesscale {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("fit", help="fit the law to a CSV of runs and print the parameters and the verdict",
                       description="Fit the law to a CSV of runs (columns N, D or C, loss) with NUTS; print the "
                                   "parameter table and the diagnostics verdict.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", help="CSV of runs with columns N, loss and D (or C)")
    p.add_argument("--out", help="write the posterior to this netCDF file (read it with load_posterior)")
    p.add_argument("--group", metavar="COLUMN", default=None,
                   help="a column naming the variant of each run (e.g. the data mixture): fit one law per group, "
                        "partially pooled (the hierarchical fit; Chinchilla law)")
    _add_data_options(p)
    _law_option(p)
    _ci_option(p)
    _add_fit_options(p)
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("demo", help="fit the bundled Chinchilla data (240 runs)",
                       description="Fit the bundled Chinchilla runs (the 240-run subset of Besiroglu et al. "
                                   "2024) and print the parameters and the verdict.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="write the posterior to this netCDF file")
    _ci_option(p)
    _add_fit_options(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("report", help="write the budget report (HTML, Markdown, JSON) for one or more budgets",
                       description="Write the posterior report that backs a budget decision: the verdict, the "
                                   "parameters, and for each budget the recommended N and D with bands, the "
                                   "expected loss, the extrapolation distance and the figures. From a CSV of runs "
                                   "(fitted first) or a posterior written by 'bayesscale fit --out'.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="RUNS.csv|FIT.nc", help="runs to fit, or a saved posterior (.nc)")
    p.add_argument("--budget", type=_positive_float, action="append", required=True, metavar="C",
                   help="training compute budget in FLOPs, e.g. 5.88e23 (repeatable)")
    p.add_argument("--target-loss", type=_positive_float, default=None, metavar="L",
                   help="report P(loss < L) at each budget")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for report.html, report.md, report.json")
    p.add_argument("--backtest", metavar="HOLDOUT", default=None,
                   help="add a backtest section (largest_budget, leave_one_budget_out or a FLOPs threshold)")
    _add_data_options(p)
    _law_option(p, repeatable=True, report=True)
    _ci_option(p)
    _add_fit_options(p)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("backtest", help="fit on small budgets, predict larger ones, score the intervals",
                       description="Backtest the model on your runs: fit on the smaller budgets, predict the "
                                   "held-out larger ones, and report coverage of the 50/80/90% intervals, log "
                                   "predictive density, CRPS, bias and how far each held-out budget lies beyond "
                                   "the training data.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", help="CSV of runs with columns N, loss and D (or C)")
    p.add_argument("--holdout", default="largest_budget",
                   help="largest_budget (default), leave_one_budget_out, or a compute threshold such as 1e21")
    p.add_argument("--out", metavar="DIR", help="also write backtest.csv, backtest_points.csv and backtest.png")
    _add_data_options(p)
    _law_option(p)
    _add_fit_options(p)
    p.set_defaults(func=_cmd_backtest)

    p = sub.add_parser("compare", help="fit several laws to the same runs and say which to believe",
                       description="Fit several laws to a CSV of runs and compare them: PSIS-LOO elpd in sample, "
                                   "the rolling-origin backtest score beyond the data, stacking weights, and the "
                                   "allocation each law recommends at your budgets, with the model-averaged "
                                   "allocation across laws.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", help="CSV of runs with columns N, loss and D (or C)")
    p.add_argument("--budget", type=_positive_float, action="append", default=[], metavar="C",
                   help="training compute budget in FLOPs at which to show each law's N_opt (repeatable)")
    p.add_argument("--no-backtest", action="store_true", help="skip the rolling-origin refits (LOO only)")
    p.add_argument("--out", metavar="FILE", help="also write the comparison table to this CSV file")
    _add_data_options(p)
    _law_option(p, repeatable=True)
    _ci_option(p)
    _add_fit_options(p)
    p.set_defaults(func=_cmd_compare)
    return parser


def main(argv=None) -> int:
    """Run the command line; return the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = "bayesscale"
    try:
        parser = build_parser()
        a = parser.parse_args(argv)
        a.argv = argv
        command = f"bayesscale {a.command}"
        from .data import DataError, DataWarning
        from .inference import CacheWarning

        def show_warning(message, category, filename, lineno, file=None, line=None):
            print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)

        warnings.showwarning = show_warning
        warnings.simplefilter("always", DataWarning)
        warnings.simplefilter("always", CacheWarning)
        try:
            return a.func(a)
        except (_BadInput, DataError, ValueError) as e:
            print(f"{command}: error: {' '.join(str(e).split())}", file=sys.stderr)
            return 2
        except OSError as e:  # a missing file, a permission, a full disk: the path, not the code
            where = f"{e.filename}: " if getattr(e, "filename", None) else ""
            print(f"{command}: error: {where}{e.strerror or e}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - the last resort: one line, not a traceback
        if os.environ.get("BAYESSCALE_DEBUG"):
            raise
        print(f"{command}: internal error: {type(e).__name__}: {' '.join(str(e).split())} (this is a bug; "
              "BAYESSCALE_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
