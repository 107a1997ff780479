"""One default interval level, named in every interval column (issue 12, item 15)."""

import importlib
import inspect
import io

import numpy as np
import pytest

import bayesscale as bs
from bayesscale.intervals import DEFAULT_CI, band_names, level_tag, resolve_ci

#: Every module with public functions or methods that take an interval level.
MODULES = ["allocation", "posterior", "plots", "plots_steps", "steps_analysis", "compare", "groups", "isoflop",
           "curves", "reporting", "hierarchy", "kaplan", "backtest"]


def _callables_with_ci():
    for name in MODULES:
        mod = importlib.import_module(f"bayesscale.{name}")
        for obj_name, obj in vars(mod).items():
            if obj_name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if inspect.isfunction(obj):
                yield f"{name}.{obj_name}", obj
            elif inspect.isclass(obj):
                for m_name, m in vars(obj).items():
                    if not m_name.startswith("_") and inspect.isfunction(m):
                        yield f"{name}.{obj_name}.{m_name}", m


def test_every_ci_defaults_to_the_one_constant():
    found = {q: inspect.signature(f).parameters["ci"].default
             for q, f in _callables_with_ci() if "ci" in inspect.signature(f).parameters}
    # the ones the issue names, and the figures and the report, are all there
    for q in ("posterior.Posterior.summary", "posterior.Posterior.predict", "posterior.Posterior.allocate",
              "allocation.allocate", "allocation.frontier_exponents",
              "plots.optimal_frontier", "plots.isoflop_profiles", "reporting.report", "compare.compare",
              "groups.GroupedPosterior.compare_groups", "steps_analysis.frontier_exponents"):
        assert q in found, q
    # None means DEFAULT_CI: no function carries a level of its own
    assert {q: d for q, d in found.items() if d is not None} == {}
    assert bs.DEFAULT_CI == DEFAULT_CI == 0.8
    from bayesscale.cli import build_parser

    for cmd in (["fit", "r.csv"], ["demo"], ["report", "r.csv", "--budget", "1e22", "--out", "d"],
                ["compare", "r.csv"]):
        assert build_parser().parse_args(cmd).ci == DEFAULT_CI, cmd


def test_default_level_is_the_same_across_functions_and_in_the_column_names(small_post):
    p = small_post
    lo, hi = band_names("", DEFAULT_CI)
    assert (lo, hi) == ("lo80", "hi80")
    s = p.summary()
    assert s.attrs["ci"] == DEFAULT_CI and {lo, hi} <= set(s.columns) and "lo" not in s.columns
    pred = p.predict([1e9], [2e10])
    assert list(pred.columns) == ["N", "D", "C", "loss", "loss_lo80", "loss_hi80", "loss_mean"]
    assert pred.attrs["ci"] == DEFAULT_CI
    alloc = p.allocate([1e22])
    assert alloc.attrs["ci"] == DEFAULT_CI
    assert {"N_opt_lo80", "N_opt_hi80", "D_opt_lo80", "tokens_per_param_hi80", "loss_lo80"} <= set(alloc.columns)
    assert not [c for c in alloc.columns if c.endswith(("_lo", "_hi"))]
    fe = bs.frontier_exponents(p)
    assert list(fe.columns[:3]) == ["median", "lo80", "hi80"]
    # the default is the level itself, not a look-alike: the same numbers as asking for it
    assert s.equals(p.summary(ci=DEFAULT_CI))
    assert fe.equals(bs.frontier_exponents(p, ci=DEFAULT_CI))
    x = np.asarray(p.params["E"]).reshape(-1)
    assert np.mean((x >= s.loc["E", lo]) & (x <= s.loc["E", hi])) == pytest.approx(DEFAULT_CI, abs=0.01)


def test_another_level_renames_the_columns(small_post):
    p = small_post
    assert level_tag(0.95) == "95" and level_tag(0.975) == "97.5" and level_tag(0.5) == "50"
    s80, s95 = p.summary(), p.summary(ci=0.95)
    assert {"lo95", "hi95"} <= set(s95.columns) and "lo80" not in s95.columns and s95.attrs["ci"] == 0.95
    assert (s95["hi95"] - s95["lo95"] > s80["hi80"] - s80["lo80"]).all()
    pred = p.predict([1e9], [2e10], ci=0.5)
    assert {"loss_lo50", "loss_hi50"} <= set(pred.columns)
    alloc = p.allocate([1e22], ci=0.975)
    assert {"N_opt_lo97.5", "N_opt_hi97.5", "loss_lo97.5", "loss_hi97.5"} <= set(alloc.columns)
    assert list(bs.frontier_exponents(p, ci=0.9).columns[:3]) == ["median", "lo90", "hi90"]
    t = bs.efficient_size_range(p, 1e22, ci=0.9).table
    assert {"lo90", "hi90", "N_lo90", "N_hi90"} <= set(t.columns)
    assert {"C_lo90", "C_hi90"} <= set(bs.compute_for_loss(p, 2.0, ci=0.9).table.columns)
    # the command line prints the level it was given
    from bayesscale.cli import _print_fit

    out = io.StringIO()
    _print_fit(p, out, ci=0.9)
    text = out.getvalue()
    assert "lo90 .. hi90 = 90% interval" in text and "lo90" in text.splitlines()[1]


@pytest.mark.parametrize("bad", [0, 1, 1.0, 80, -0.1, float("nan"), "0.8", True, [0.8]])
def test_a_bad_level_is_a_clear_error(small_post, bad):
    p = small_post
    for call in (lambda: p.summary(ci=bad), lambda: p.predict([1e9], [2e10], ci=bad),
                 lambda: p.allocate([1e22], ci=bad), lambda: bs.frontier_exponents(p, ci=bad)):
        with pytest.raises(ValueError, match=r"ci must be a probability in \(0, 1\)"):
            call()
    with pytest.raises(ValueError, match=r"--ci must be a probability"):
        resolve_ci(bad, "--ci")


def test_a_bad_level_on_the_command_line_exits_2(capsys):
    from bayesscale.cli import main

    with pytest.raises(SystemExit) as e:
        main(["fit", "runs.csv", "--ci", "80"])
    assert e.value.code == 2
    assert "'80' must be a probability in (0, 1)" in capsys.readouterr().err


@pytest.mark.parametrize("cmd", ["fit", "demo", "report", "compare"])
def test_every_command_documents_its_ci_option(cmd, capsys):
    from bayesscale.cli import main

    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--ci P" in out and f"{100 * DEFAULT_CI:g}% intervals" in out


def test_the_report_command_line_carries_a_non_default_level(small_post):
    from bayesscale.reporting import default_command

    assert "--ci" not in default_command(small_post, budgets=[1e22], out="r")
    assert "--ci 0.9 " in default_command(small_post, budgets=[1e22], out="r", ci=0.9)
