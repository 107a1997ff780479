"""The ``bayesscale`` command line.

Exit codes: 0 when the fit's diagnostics pass, 1 when they fail, 2 on bad
input (a one-line message, never a traceback).
"""

from __future__ import annotations

import argparse
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
                likelihood=a.likelihood, offsets=a.offsets, progress=False if a.no_progress else None)


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


def _fit_and_report(runs, a) -> int:
    import bayesscale as bs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)  # the verdict is printed below
        post = bs.fit(runs, **_fit_kwargs(a))
    _print_fit(post)
    if getattr(a, "out", None):
        path = post.to_netcdf(a.out)
        print(f"\nwrote {path}")
    return 0 if post.check().ok else 1


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
    return parser


def main(argv=None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    a = parser.parse_args(argv)
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
