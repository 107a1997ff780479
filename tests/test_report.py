"""The budget report: its files and numbers, the verdict banner, atomic writes, and a real browser rendering.

Nothing is mocked: the reports are made from real (short) fits, and the HTML
is rendered by a headless Chromium whose screenshot is checked pixel by pixel.
"""

import base64
import dataclasses
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import warnings
from html import escape as html_escape

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import bayesscale as bs  # noqa: E402
import bayesscale.plots as plots  # noqa: E402
from bayesscale.reporting import ReportPaths, default_command, report  # noqa: E402

from .conftest import SMALL, fit_quietly  # noqa: E402

BUDGETS = [5.88e23, 1e25]
TARGET = 2.0
IMG_RE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------
# fixtures: a few real reports, made once
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_report(small_post, tmp_path_factory):
    out = tmp_path_factory.mktemp("small") / "report"
    return report(small_post, budgets=BUDGETS, target_loss=TARGET, out=out)


@pytest.fixture(scope="module")
def bad_post(synthetic_runs):
    """A fit far too short to converge: its diagnostics must fail."""
    post = fit_quietly(synthetic_runs, chains=2, warmup=10, draws=20, seed=0)
    assert not post.check().ok
    return post


@pytest.fixture(scope="module")
def synthetic_backtest(synthetic_runs):
    """A real backtest with the unit-test sampler settings (the program is already compiled)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        return bs.backtest(synthetic_runs, holdout="largest_budget", compare_allocation=False, progress=False,
                           seed=0, **SMALL)


def read_json(path):
    def no_constants(name):
        raise AssertionError(f"report.json holds the non-JSON constant {name}")

    with open(path) as f:
        return json.load(f, parse_constant=no_constants)


def all_keys(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from all_keys(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from all_keys(v)


def all_numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from all_numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from all_numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


def snapshot(out):
    """Every file under ``out`` with its bytes."""
    files = {}
    for root, _, names in os.walk(out):
        for n in names:
            p = os.path.join(root, n)
            with open(p, "rb") as f:
                files[os.path.relpath(p, out)] = f.read()
    return files


# ---------------------------------------------------------------------------
# the files and their content
# ---------------------------------------------------------------------------


def test_report_writes_three_files_and_figures(small_report):
    paths = small_report
    assert isinstance(paths, ReportPaths)
    for p in (paths.html, paths.markdown, paths.json):
        assert p.is_file() and p.stat().st_size > 1000, p
        assert p.parent == paths.directory
    assert set(paths.figures) >= {"isoflop_profiles", "optimal_frontier", "isoloss_contours", "excess_compute",
                                  "ppc", "predicted_vs_observed"}
    for p in paths.figures.values():
        assert p.is_file() and p.read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(AttributeError):
        paths.html = paths.json  # frozen
    # nothing temporary left beside or inside the report
    assert not [n for n in os.listdir(paths.directory.parent) if n.endswith(".tmp")]
    assert not [n for n in os.listdir(paths.directory) if n.endswith(".tmp")]


def test_json_has_every_number(small_report, small_post):
    d = read_json(small_report.json)
    assert all(re.fullmatch(r"[a-z0-9_]+", k) for k in all_keys(d)), sorted(set(all_keys(d)))
    assert all(math.isfinite(x) for x in all_numbers(d))
    runs = small_post.runs
    assert d["data"]["n_runs"] == len(runs) and d["data"]["n_budget_groups"] == runs.n_budgets
    assert d["data"]["c_max"] == pytest.approx(runs.C.max())
    assert d["verdict"]["ok"] == small_post.check().ok
    assert {r["check"] for r in d["verdict"]["diagnostics"]} >= {"max_r_hat", "min_ess_bulk", "divergences",
                                                                  "min_e_bfmi", "draws_at_max_tree_depth"}
    assert {p["parameter"] for p in d["parameters"]} >= {"E", "A", "B", "alpha", "beta", "sigma"}
    assert {p["parameter"] for p in d["model"]["priors"]} >= {"E", "A", "B", "alpha", "beta", "sigma"}
    assert {f["name"] for f in d["frontier_exponents"]} == {"a", "b", "G"}

    assert [b["compute_flops"] for b in d["budgets"]] == BUDGETS
    expected = small_post.allocate(BUDGETS, ci=0.8)
    bayes = bs.bayes_decision(small_post, BUDGETS)
    for i, b in enumerate(d["budgets"]):
        n = b["n_opt"]
        assert n["lo"] < n["median"] < n["hi"]
        assert n["median"] == pytest.approx(expected["N_opt"].iloc[i], rel=1e-9)
        assert b["bayes_decision"]["n"] == pytest.approx(bayes["N_bayes"].iloc[i], rel=1e-9)
        assert b["bayes_decision"]["d"] * b["bayes_decision"]["n"] * 6 == pytest.approx(BUDGETS[i], rel=1e-9)
        assert b["d_opt"]["lo"] < b["d_opt"]["median"] < b["d_opt"]["hi"]
        assert b["loss"]["lo"] < b["loss"]["median"] < b["loss"]["hi"]
        assert 0 <= b["prob_below_target"] <= 1
        assert b["extrapolation"]["dex"] == pytest.approx(np.log10(BUDGETS[i] / runs.C.max()))
        r10, r20 = b["efficient_size_ranges"]
        assert (r10["threshold"], r20["threshold"]) == (0.1, 0.2)
        assert r20["k_lo"]["median"] < r10["k_lo"]["median"] < 1 < r10["k_hi"]["median"] < r20["k_hi"]["median"]
        assert r20["n_lo"]["median"] < n["median"] < r20["n_hi"]["median"]
    p = bs.prob_below(small_post, bayes["N_bayes"].to_numpy(), bayes["D_bayes"].to_numpy(), TARGET)
    assert [b["prob_below_target"] for b in d["budgets"]] == pytest.approx(p.tolist())
    # 5.88e23 is 1.66 decades past the largest Chinchilla run, 1e25 is 2.89
    assert [b["extrapolation"]["level"] for b in d["budgets"]] == ["caution", "strong"]
    assert d["compute_for_target"]["compute_flops"]["median"] > 0
    assert d["backtest"] is None
    repro = d["reproducibility"]
    assert repro["sha256"] == runs.sha256 and repro["source"] == runs.source
    assert repro["settings"]["chains"] == SMALL["chains"] and repro["settings"]["draws"] == SMALL["draws"]
    assert "numpyro" in repro["versions"] and repro["device"]
    assert repro["command"].startswith("bayesscale report ")
    assert set(d["figures"]) == set(small_report.figures)


def test_html_is_self_contained_with_banner_first(small_report, small_post):
    html = small_report.html.read_text(encoding="utf-8")
    images = IMG_RE.findall(html)
    assert len(images) >= 3
    for b64 in images:
        assert base64.b64decode(b64).startswith(PNG_MAGIC)
    # readable offline: no external resources of any kind
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "<link" not in html and "<script" not in html and "@import" not in html
    assert "<style>" in html
    # the verdict banner comes before every section
    banner = html.index('id="verdict-banner"')
    assert banner < html.index("<h2")
    title = "Diagnostics pass" if small_post.check().ok else "DO NOT TRUST THIS FIT YET"
    assert title in html[banner:banner + 400]
    for words in ("Recommendation at a glance", "1. Data", "2. Verdict on the fit", "3. Parameters and priors",
                  "4. Budgets in detail", "5. Figures", "Reproducibility", "P(loss &lt; 2.00)", "5.88e23", "1e25",
                  "STRONG WARNING", "CAUTION", small_post.runs.sha256):
        assert words in html, words


def test_markdown_references_existing_figures(small_report):
    md = small_report.markdown.read_text(encoding="utf-8")
    refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(refs) >= 6
    for ref in refs:
        assert not os.path.isabs(ref) and ref.startswith("figures/")
        assert (small_report.directory / ref).is_file(), ref
    assert "data:image" not in md
    first_section = md.index("\n## ")
    assert ("Diagnostics pass" in md[:first_section]) or ("DO NOT TRUST THIS FIT YET" in md[:first_section])
    assert "| Check |" in md and "5.88e23" in md


def test_human_friendly_numbers(small_report):
    d = read_json(small_report.json)
    html = small_report.html.read_text(encoding="utf-8")
    b = d["budgets"][0]
    n = b["bayes_decision"]["n"]
    assert f"{n / 1e9:.3g}B" in html  # e.g. N = 67.2B
    assert f"{b['bayes_decision']['d'] / 1e12:.3g}T" in html  # e.g. D = 1.36T tokens
    assert not re.search(r"\de\+\d", re.sub(r"data:image/png;base64,[^\"]+", "", html))


def test_failing_fit_says_do_not_trust_at_the_top(bad_post, tmp_path):
    paths = bs.report(bad_post, budgets=[1e21, 1e22], out=tmp_path / "bad")
    html = paths.html.read_text(encoding="utf-8")
    top = html[:html.index("<h2")]
    assert "DO NOT TRUST THIS FIT YET" in top and 'class="banner bad"' in top
    assert html_escape(bad_post.check().problems[0], quote=False) in top
    assert "Diagnostics pass" not in html
    md = paths.markdown.read_text(encoding="utf-8")
    assert "DO NOT TRUST THIS FIT YET" in md[:md.index("\n## ")]
    d = read_json(paths.json)
    assert d["verdict"]["ok"] is False and d["verdict"]["problems"] == list(bad_post.check().problems)
    assert any(r["status"] == "fail" for r in d["verdict"]["diagnostics"])


# ---------------------------------------------------------------------------
# atomic writes and input checks
# ---------------------------------------------------------------------------


def _boom(*args, **kwargs):
    raise RuntimeError("figure failed")


def test_failure_while_rendering_leaves_nothing(synthetic_post, tmp_path, monkeypatch):
    parent = tmp_path / "reports"
    parent.mkdir()
    monkeypatch.setattr(plots, "isoloss_contours", _boom)  # the second figure: the first is drawn by then
    with pytest.raises(RuntimeError, match="figure failed"):
        report(synthetic_post, budgets=[1e22], out=parent / "new")
    assert os.listdir(parent) == []  # no report directory, no temporary directory


def test_failure_keeps_an_earlier_report_intact(synthetic_post, tmp_path, monkeypatch):
    out = tmp_path / "rep"
    paths = report(synthetic_post, budgets=[1e22], target_loss=2.2, out=out, command="make budget-report")
    # a given command is shown as given
    assert read_json(paths.json)["reproducibility"]["command"] == "make budget-report"
    assert "make budget-report" in paths.html.read_text(encoding="utf-8")
    before = snapshot(out)  # (a directory holding other files is refused: see test_hardening item 8)
    monkeypatch.setattr(plots, "excess_compute", _boom)
    with pytest.raises(RuntimeError, match="figure failed"):
        report(synthetic_post, budgets=[3e22, 1e23], out=out)
    assert snapshot(out) == before
    assert sorted(os.listdir(tmp_path)) == ["rep"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(budgets=[]), "non-empty"),
    (dict(budgets=None), "budgets must be given"),
    (dict(budgets=[1e22, -1.0]), "budget 2"),
    (dict(budgets=[float("nan")]), "positive, finite"),
    (dict(budgets=[float("inf")]), "positive, finite"),
    (dict(budgets="1e22"), "string"),
    (dict(budgets=[[1e22, 1e23]]), "non-empty list"),
    (dict(budgets=[1e22], target_loss=0.0), "target_loss"),
    (dict(budgets=[1e22], target_loss=-2.0), "target_loss"),
    (dict(budgets=[1e22], target_loss=float("nan")), "target_loss"),
    (dict(budgets=[1e22], target_loss="low"), "target_loss"),
    (dict(budgets=[1e22], ci=1.5), "ci"),
    (dict(budgets=[1e22], backtest="largest_budget"), "BacktestResult"),
    (dict(budgets=[1e22], command=["bayesscale"]), "command"),
])
def test_bad_input_raises_before_writing(synthetic_post, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        report(synthetic_post, out=tmp_path / "rep", **kwargs)
    assert os.listdir(tmp_path) == []


def test_out_that_is_a_file_or_not_a_posterior(synthetic_post, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        report(synthetic_post, budgets=[1e22], out=f)
    with pytest.raises(ValueError, match="Posterior"):
        report("fit.nc", budgets=[1e22], out=tmp_path / "rep")
    assert sorted(os.listdir(tmp_path)) == ["file.txt"]


# ---------------------------------------------------------------------------
# backtest section and its figure
# ---------------------------------------------------------------------------


def test_backtest_section_and_rewrite_removes_stale_figure(synthetic_post, synthetic_backtest, tmp_path):
    out = tmp_path / "rep"
    paths = report(synthetic_post, budgets=[1e22, 5.88e23], out=out, backtest=synthetic_backtest)
    assert "backtest_coverage" in paths.figures and paths.figures["backtest_coverage"].is_file()
    html = paths.html.read_text(encoding="utf-8")
    assert "Backtest" in html and "coverage" in html.lower()
    assert len(IMG_RE.findall(html)) == 7
    d = read_json(paths.json)
    folds = {r["fold"] for r in d["backtest"]["table"]}
    assert "overall" in folds and len(folds) == len(synthetic_backtest.table)
    overall = next(r for r in d["backtest"]["table"] if r["fold"] == "overall")
    assert overall["coverage_90"] == pytest.approx(synthetic_backtest.table.loc["overall", "coverage_90"])
    assert [c["nominal"] for c in d["backtest"]["calibration"]] == [0.5, 0.8, 0.9]
    assert "--backtest largest_budget" in d["reproducibility"]["command"]
    md = paths.markdown.read_text(encoding="utf-8")
    assert "figures/backtest_coverage.png" in md

    # the same directory without a backtest: the old backtest figure goes, the rest is replaced
    again = report(synthetic_post, budgets=[1e22], out=out)
    assert "backtest_coverage" not in again.figures
    assert not (out / "figures" / "backtest_coverage.png").exists()
    assert read_json(again.json)["backtest"] is None
    assert sorted(os.listdir(tmp_path)) == ["rep"]


def test_backtest_coverage_figure(synthetic_backtest, tmp_path):
    import matplotlib.pyplot as plt

    fig = plots.backtest_coverage(synthetic_backtest)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert "Nominal" in ax.get_xlabel() and "Empirical" in ax.get_ylabel()
    assert ax.get_legend() is not None
    path = plots.save_figure(fig, tmp_path / "cov.png", dpi=72)
    img = mpimg.imread(path)[..., :3]
    assert np.mean(np.any(img < 0.95, axis=-1)) > 0.02
    assert len(np.unique((img.reshape(-1, 3) * 15).round().astype(int), axis=0)) >= 12
    # into a given axes, pyplot-free otherwise
    before = set(plt.get_fignums())
    f2, ax2 = plt.subplots()
    try:
        assert plots.backtest_coverage(synthetic_backtest, ax=ax2) is f2
    finally:
        plt.close(f2)
    assert set(plt.get_fignums()) == before
    with pytest.raises(ValueError, match="BacktestResult"):
        plots.backtest_coverage("not a backtest")


# ---------------------------------------------------------------------------
# the command line that regenerates the report
# ---------------------------------------------------------------------------


def test_default_command(small_post, synthetic_post, tmp_path):
    # the bundled CSV holds 245 runs, the fit 240 of them: regenerate from the saved fit, not the file
    cmd = default_command(small_post, budgets=BUDGETS, out="out dir", target_loss=TARGET)
    assert cmd == "bayesscale report FIT.nc --budget 5.88e23 --budget 1e25 --target-loss 2 --out 'out dir'"
    fit_cmd = default_command(small_post, budgets=[1e24], out="o", data_path="fit.nc")
    assert fit_cmd == "bayesscale report fit.nc --budget 1e24 --out o"
    assert default_command(synthetic_post, budgets=[1e24], out="o").startswith("bayesscale report FIT.nc ")
    # a CSV that holds exactly the fitted runs is refitted with the same settings
    csv = tmp_path / "runs.csv"
    small_post.runs.to_frame().reset_index()[["N", "D", "loss"]].to_csv(csv, index=False)
    post = dataclasses.replace(small_post, runs=bs.load_runs(csv))
    cmd = default_command(post, budgets=[1e24], out="o")
    s = small_post.settings
    no_x = "" if small_post.extrapolation is not None else " --extrapolation none"
    assert cmd == (f"bayesscale report {csv} --chains {s.chains} --warmup {s.warmup} --draws {s.draws} --seed 1 "
                   f"--likelihood {small_post.spec.likelihood} --offsets {small_post.spec.offsets}{no_x} "
                   "--budget 1e24 --out o")
    # the command line it builds is one the CLI accepts
    from bayesscale.cli import build_parser

    args = build_parser().parse_args(shlex.split(cmd)[1:])
    assert args.command == "report" and args.budget == [1e24] and args.out == "o"
    args = build_parser().parse_args(shlex.split(default_command(small_post, budgets=BUDGETS, out="x",
                                                                 target_loss=TARGET))[1:])
    assert args.budget == BUDGETS and args.target_loss == TARGET and args.source == "FIT.nc"


# ---------------------------------------------------------------------------
# a real browser renders the figures and tables
# ---------------------------------------------------------------------------


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


def _screenshot(browser, html_path, png_path, profile):
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
           "--run-all-compositor-stages-before-draw", "--virtual-time-budget=10000",
           f"--user-data-dir={profile}", "--window-size=1280,9000", f"--screenshot={png_path}",
           html_path.as_uri()]
    # headless Chromium now and then hangs after writing the screenshot: give each try a minute, try thrice
    for attempt in range(3):
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            break
        except subprocess.TimeoutExpired:
            if attempt == 2:
                raise
    assert res.returncode == 0 and png_path.is_file(), res.stderr[-2000:]
    img = mpimg.imread(png_path)[..., :3]
    assert img.shape[:2] == (9000, 1280), img.shape
    return img


def _n_colours(img, levels=32):
    """Distinct colours after quantising each channel to ``levels`` steps."""
    q = (img * (levels - 1)).round().astype(np.int64)
    return np.unique((q[..., 0] * levels + q[..., 1]) * levels + q[..., 2]).size


def _colourful(img):
    """Pixels with a clear hue (figure lines, bands, colour maps); grey text and white are not."""
    return np.count_nonzero(img.max(axis=-1) - img.min(axis=-1) > 0.1)


def _near(img, rgb, tol=0.02):
    return np.count_nonzero(np.all(np.abs(img - np.asarray(rgb) / 255) < tol, axis=-1))


def test_screenshot_in_headless_chromium(small_report, small_post, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary found (CI installs it); the HTML was not rendered in a browser")
    full = _screenshot(browser, small_report.html, tmp_path / "full.png", tmp_path / "profile1")

    # the same page with every <img> removed
    html = small_report.html.read_text(encoding="utf-8")
    stripped_path = tmp_path / "stripped.html"
    stripped_path.write_text(re.sub(r"<img [^>]*>", "", html), encoding="utf-8")
    bare = _screenshot(browser, stripped_path, tmp_path / "bare.png", tmp_path / "profile2")

    # a rendered page, not a blank or raw-text one
    ink = np.mean(np.any(full < 0.8, axis=-1))
    assert ink > 0.03, f"only {ink:.3f} of the page has dark content"
    n_full = _n_colours(full)
    assert n_full > 500, f"only {n_full} distinct colours: figures missing?"
    # the inline CSS was applied: the verdict banner's background near the top, table header shading
    banner_bg = (227, 244, 234) if small_post.check().ok else (253, 236, 234)
    assert _near(full[:900], banner_bg) > 20_000, "no verdict banner at the top of the page"
    assert _near(full, (240, 244, 248)) > 20_000, "no shaded table headers"
    # the figures really render: many more distinct colours (antialiased curves, colour maps) and far more
    # coloured pixels with them than without, and the two pages differ substantially
    n_bare = _n_colours(bare)
    assert n_full > 3 * n_bare, (n_full, n_bare)
    with_figs, without = _colourful(full), _colourful(bare)
    assert with_figs > 1.5 * without, (with_figs, without)
    diff = np.mean(np.abs(full - bare) > 0.1)
    assert diff > 0.02, f"the page looks the same without its figures ({diff:.3f} of pixels differ)"
    # not broken-image icons: each embedded PNG is a real picture of reasonable size
    for b64 in IMG_RE.findall(html):
        path = tmp_path / "one.png"
        path.write_bytes(base64.b64decode(b64))
        img = mpimg.imread(path)
        assert img.shape[0] >= 300 and img.shape[1] >= 500, img.shape


# ---------------------------------------------------------------------------
# facts first, then both pages from the same facts (issue 12, item 23)
# ---------------------------------------------------------------------------

from bayesscale._report import facts as report_facts  # noqa: E402
from bayesscale._report import fmt, sections  # noqa: E402
from bayesscale._report.doc import Page, to_html, to_markdown  # noqa: E402


def _images(paths):
    return {name: p.read_bytes() for name, p in paths.figures.items()}


def _text_of_html(html, tag=""):
    """What a reader of the HTML sees: tags (replaced by ``tag``) and the style sheet dropped, entities decoded."""
    import html as html_mod

    return html_mod.unescape(re.sub(r"<[^>]+>", tag, re.sub(r"<style>.*?</style>", "", html, flags=re.S)))


def _text_of_md(md):
    return md.replace("**", "").replace("`", "").replace("\\|", "|")


def test_pages_are_rendered_from_report_json_alone(small_report):
    """Both pages follow from the facts in report.json (and the figures): nothing else goes into them."""
    facts = read_json(small_report.json)
    page = sections.page(facts, _images(small_report))
    assert to_markdown(page) == small_report.markdown.read_text(encoding="utf-8")
    assert to_html(page) == small_report.html.read_text(encoding="utf-8")


def test_recommendation_numbers_are_in_both_pages(small_report):
    facts = read_json(small_report.json)
    html = _text_of_html(small_report.html.read_text(encoding="utf-8"))
    md = _text_of_md(small_report.markdown.read_text(encoding="utf-8"))
    shown = []
    for b in facts["budgets"]:
        bd, r20 = b["bayes_decision"], b["efficient_size_ranges"][-1]
        shown += [fmt.fmt_sci(b["compute_flops"]), fmt.fmt_count(bd["n"]), fmt.fmt_count(bd["d"]),
                  f"{bd['tokens_per_param']:.1f}", fmt.fmt_num(b["loss"]["mean"]), fmt.fmt_num(b["loss"]["lo"]),
                  fmt.fmt_num(b["loss"]["hi"]), fmt.fmt_pct(b["prob_below_target"]),
                  f"{b['extrapolation']['dex']:.2f} decades"]
        # the HTML cards carry more than the Markdown table: N_opt and the efficient sizes are in the detail section
        shown += [fmt.fmt_count(b["n_opt"]["lo"]), fmt.fmt_count(b["n_opt"]["hi"]),
                  fmt.fmt_count(r20["n_lo"]["median"]), fmt.fmt_count(r20["n_hi"]["median"])]
    ct = facts["compute_for_target"]
    shown += [fmt.fmt_sci(ct["compute_flops"]["median"]), fmt.fmt_count(ct["n_opt"]["median"])]
    for s in shown:
        assert s in html and s in md, s


def test_a_changed_fact_changes_both_pages(small_report):
    """Sentinel values put into the facts come out in the HTML and in the Markdown, the old ones go."""
    facts = read_json(small_report.json)
    b = facts["budgets"][0]
    old_n = fmt.fmt_count(b["bayes_decision"]["n"])
    b["bayes_decision"]["n"] = 4.321e11
    b["loss"]["mean"] = 9.876
    b["prob_below_target"] = 0.4321
    facts["data"]["n_runs"] = 98765
    facts["verdict"]["notes"] = ["a sentinel note"]
    page = sections.page(facts, _images(small_report))
    html, md = _text_of_html(to_html(page)), _text_of_md(to_markdown(page))
    for s in ("432B parameters", "9.876", "43.2%", "98,765", "a sentinel note"):
        assert s in html and s in md, s
    assert f"{old_n} parameters" not in html and f"{old_n} parameters" not in md
    assert "N = 432B" in html and "| 432B |" in md  # the card (HTML) and the table row (Markdown)


@pytest.mark.parametrize("name", ["banner", "toc", "summary", "data", "verdict", "parameters", "budgets", "figures",
                                  "reproducibility"])
def test_each_section_renders_on_its_own(small_report, name):
    facts = read_json(small_report.json)
    blocks = getattr(sections, name)(facts)
    assert blocks
    page = Page("t", "s", tuple(blocks), "f", _images(small_report))
    html = to_html(page)
    html_body = html[html.index("</header>") + 9:html.index("<footer>")].strip()
    md_body = to_markdown(page)[len("# t\n\ns\n\n"):-len("---\n\nf\n")].strip()
    assert html_body
    if name == "toc":  # links in HTML; Markdown viewers list the headings themselves
        assert 'href="#budgets"' in html_body and md_body == ""
    else:
        assert md_body
        # every number the Markdown shows, the HTML shows too
        number = r"\d[\d.,]*(?:e-?\d+)?[KMBT%x]?"
        md_numbers = set(re.findall(number, re.sub(r"\]\([^)]*\)", "]", _text_of_md(md_body))))
        assert md_numbers <= set(re.findall(number, _text_of_html(html_body, tag=" "))), name


def test_each_facts_function_stands_alone_and_json_is_the_facts(synthetic_post, tmp_path):
    budgets, target = [1e22, 5.88e23], 2.2
    paths = report(synthetic_post, budgets=budgets, target_loss=target, out=tmp_path / "rep")
    d = read_json(paths.json)
    p = synthetic_post
    assert fmt.plain(report_facts.verdict_facts(p)) == d["verdict"]
    assert fmt.plain(report_facts.predictive_check_facts(p)) == d["predictive_check"]
    assert fmt.plain(report_facts.data_facts(p.runs)) == d["data"]
    assert fmt.plain(report_facts.model_facts(p)) == d["model"]
    assert fmt.plain(report_facts.parameter_facts(p, 0.8)) == d["parameters"]
    assert fmt.plain(report_facts.frontier_facts(p, 0.8)) == d["frontier_exponents"]
    assert fmt.plain(report_facts.budget_facts(p, np.asarray(budgets), target, 0.8)) == d["budgets"]
    assert fmt.plain(report_facts.target_facts(p, target, 0.8)) == d["compute_for_target"]
    assert report_facts.target_facts(p, None, 0.8) is None and report_facts.backtest_facts(None) is None
    r = d["reproducibility"]
    assert fmt.plain(report_facts.reproducibility_facts(p, r["command"], r["generated_utc"])) == r
    # report.json is the gathered facts, serialised: byte for byte
    facts = report_facts.gather(p, budgets=np.asarray(budgets), target=target, ci=0.8, command=r["command"],
                                generated=r["generated_utc"], figures=d["figures"])
    assert report_facts.to_json(facts) == paths.json.read_text(encoding="utf-8")
    # a different level changes the bands, nothing else in the budget's decision
    b90 = report_facts.budget_facts(p, np.asarray(budgets[:1]), None, 0.9)[0]
    b80 = d["budgets"][0]
    assert b90["n_opt"]["lo"] < b80["n_opt"]["lo"] < b80["n_opt"]["hi"] < b90["n_opt"]["hi"]
    # (the same decision; its expected loss up to the summation order of one budget against two)
    assert b90["bayes_decision"] == pytest.approx(b80["bayes_decision"], rel=1e-12)


def test_number_formatting():
    assert [fmt.fmt_count(x) for x in (6.72e10, 1.36e12, 4e8, 999.7e6, 12, 2e16, None, float("inf"))] == [
        "67.2B", "1.36T", "400M", "1.00B", "12.0", "2e16", "n/a", "∞"]
    assert [fmt.fmt_sci(x) for x in (5.88e23, 1e25, 1.5e-5)] == ["5.88e23", "1e25", "1.5e-5"]
    assert [fmt.fmt_num(x) for x in (1.97, 1234.6, 12345.6, 2e-5, float("nan"))] == [
        "1.970", "1235", "12350", "2e-5", "n/a"]
    assert [fmt.fmt_pct(x) for x in (0.123, 0.99999, 1e-5, 0.0, 1.0, None)] == [
        "12.3%", ">99.9%", "<0.1%", "≈0%", "≈100%", "n/a"]
    assert fmt.flops_arg(5.88e23) == "5.88e23" and float(fmt.flops_arg(1 / 3 * 1e22)) == 1 / 3 * 1e22
    assert fmt.fmt_fixed(float("nan"), ".2f") == "n/a" and fmt.fmt_fixed(1.005, ".1f") == "1.0"
    assert fmt.snake("max |residual| (noise scales)") == "max_residual_noise_scales"
    assert fmt.plain({"a": np.float32(np.nan), "b": (np.int64(2), np.bool_(True))}) == {"a": None, "b": [2, True]}
