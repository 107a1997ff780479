"""The ``bayesscale`` command line.

Exit codes: 0 when the fit's diagnostics pass, 1 when they fail, 2 on bad
input (a one-line message, never a traceback).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings

__all__ = ["main"]

EPILOG = """exit codes: 0 the diagnostics pass, 1 they fail (do not trust the numbers), 2 bad input.
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
    g.add_argument("--device", choices=["cpu", "gpu"], default=None, help="JAX platform (default: JAX's default)")
    g.add_argument("--likelihood", choices=["student_t", "normal"], default="student_t",
                   help="noise on log loss (default: student_t, robust)")
    g.add_argument("--offsets", choices=["none", "budget"], default="none",
                   help="per-budget offsets (default: none, the plain law)")
    g.add_argument("--extrapolation", choices=["calibrated", "none"], default="calibrated",
                   help="widen predictions beyond the data by the error of rolling-origin refits "
                        "(default: calibrated)")
    g.add_argument("--no-progress", action="store_true", help="never show a progress bar")


def _add_data_options(p: argparse.ArgumentParser):
    p.add_argument("--column", action="append", default=[], metavar="NAME=YOURS",
                   help="map a column, e.g. --column N=params --column loss=eval_loss (repeatable)")


def _columns(pairs):
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise _BadInput(f"--column {pair!r}: expected NAME=YOURS, e.g. --column N=params")
        k, v = pair.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _fit_kwargs(a) -> dict:
    return dict(chains=a.chains, warmup=a.warmup, draws=a.draws, seed=a.seed, device=a.device,
                likelihood=a.likelihood, offsets=a.offsets, extrapolation=a.extrapolation,
                progress=False if a.no_progress else None)


def _print_fit(post, out=None):
    import pandas as pd

    out = out or sys.stdout
    s = post.summary()
    ci = s.attrs["ci"]
    with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 120):
        print(f"Posterior of L(N, D) = E + A / N^alpha + B / D^beta from {len(post.runs)} runs "
              f"({post.settings.chains} chains x {post.settings.draws} draws); lo/hi = {ci:.0%} interval",
              file=out)
        print(s[["median", "lo", "hi", "r_hat", "ess_bulk", "ess_tail"]].to_string(), file=out)
    print(file=out)
    print(post.check(), file=out)


def _cmd_fit(a) -> int:
    import bayesscale as bs

    runs = bs.load_runs(a.runs, columns=_columns(a.column))
    return _fit_and_report(runs, a)


def _cmd_demo(a) -> int:
    import bayesscale as bs

    runs = bs.datasets.chinchilla(drop_highest_loss=5)
    print(f"Fitting the bundled Chinchilla runs (Hoffmann et al. 2022, digitised by Besiroglu et al. 2024): "
          f"{len(runs)} runs, the 5 with the highest loss dropped as in the published refit.\n")
    return _fit_and_report(runs, a)


def _quiet_fit(runs, a):
    import bayesscale as bs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)  # the verdict is printed instead
        return bs.fit(runs, **_fit_kwargs(a))


def _fit_and_report(runs, a) -> int:
    post = _quiet_fit(runs, a)
    _print_fit(post)
    if getattr(a, "out", None):
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
        return bs.load_posterior(path)
    return _quiet_fit(bs.load_runs(path, columns=_columns(a.column)), a)


def _cmd_report(a) -> int:
    import bayesscale as bs
    from bayesscale.reporting import report

    post = _load_posterior_or_fit(a.source, a)
    bt = None
    if a.backtest:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bs.FitWarning)
            bt = bs.backtest(post.runs, holdout=_holdout(a.backtest), seed=post.info.get("seed", 0),
                             chains=post.settings.chains, warmup=post.settings.warmup, draws=post.settings.draws,
                             likelihood=post.spec.likelihood, offsets=post.spec.offsets,
                             progress=False if a.no_progress else None)
    paths = report(post, budgets=a.budget, target_loss=a.target_loss, out=a.out, backtest=bt,
                   command=" ".join(["bayesscale", *map(shlex.quote, a.argv)]))
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


def _cmd_backtest(a) -> int:
    import bayesscale as bs

    runs = bs.load_runs(a.runs, columns=_columns(a.column))
    kw = _fit_kwargs(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        res = bs.backtest(runs, holdout=_holdout(a.holdout), **kw)
    print(res)
    if len(res.allocation):
        import pandas as pd

        with pd.option_context("display.float_format", "{:.4g}".format):
            print("\nCompute-optimal N at each held-out budget: fitted without it vs with all runs")
            print(res.allocation.to_string(index=False))
    if a.out:
        from pathlib import Path

        from bayesscale.plots import backtest_coverage, save_figure
        from bayesscale.posterior import atomic_write

        out = Path(a.out)
        atomic_write(out / "backtest.csv", lambda tmp: res.table.to_csv(tmp))
        atomic_write(out / "backtest_points.csv", lambda tmp: res.points.to_csv(tmp, index=False))
        save_figure(backtest_coverage(res), out / "backtest.png")
        print(f"\nwrote {out / 'backtest.csv'}, {out / 'backtest_points.csv'}, {out / 'backtest.png'}")
    return 0 if all(p.check().ok for p in res.posteriors) else 1


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
    _add_data_options(p)
    _add_fit_options(p)
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("demo", help="fit the bundled Chinchilla data (240 runs)",
                       description="Fit the bundled Chinchilla runs (the 240-run subset of Besiroglu et al. "
                                   "2024) and print the parameters and the verdict.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="write the posterior to this netCDF file")
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
    _add_fit_options(p)
    p.set_defaults(func=_cmd_backtest)
    return parser


def main(argv=None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parser.parse_args(argv)
    a.argv = argv
    from .data import DataError, DataWarning

    def show_warning(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr)

    warnings.showwarning = show_warning
    warnings.simplefilter("always", DataWarning)
    try:
        return a.func(a)
    except (_BadInput, DataError, FileNotFoundError, ValueError) as e:
        msg = " ".join(str(e).split())
        print(f"bayesscale {a.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
