"""Figures: every plot is rendered to PNG and the pixels are checked (no mocking)."""

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import bayesscale.plots as plots  # noqa: E402
from bayesscale.plots._common import _count  # noqa: E402

DPI = 72


@pytest.fixture(autouse=True)
def _no_pyplot_leaks():
    """The plots never register figures with pyplot; close anything a test made itself."""
    before = set(plt.get_fignums())
    yield
    after = set(plt.get_fignums())
    for num in after - before:
        plt.close(num)
    assert after == before, "a plotting function created a pyplot-managed figure"


def render(fig, tmp_path, name, *, min_ink=0.02, min_colours=12):
    """Save through save_figure, read the PNG back and check it holds a real picture."""
    assert isinstance(fig, Figure)
    path = plots.save_figure(fig, tmp_path / f"{name}.png", dpi=DPI)
    assert path == tmp_path / f"{name}.png" and path.is_file()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert 200 <= h <= 3000 and 200 <= w <= 3000, (h, w)
    rgb = img[..., :3]
    ink = np.mean(np.any(rgb < 0.95, axis=-1))
    assert ink > min_ink, f"{name}: only {ink:.3f} of the pixels are not white"
    colours = np.unique((rgb.reshape(-1, 3) * 15).round().astype(int), axis=0)
    assert len(colours) >= min_colours, f"{name}: only {len(colours)} distinct colours"
    plt.close(fig)
    return img


FIGURES = {
    "isoflop_profiles": lambda post, **kw: plots.isoflop_profiles(post, **kw),
    "optimal_frontier": lambda post, **kw: plots.optimal_frontier(post, **kw),
    "isoloss_contours": lambda post, **kw: plots.isoloss_contours(post, **kw),
    "excess_compute": lambda post, **kw: plots.excess_compute(post, 5.76e23, **kw),
    "predicted_vs_observed": lambda post, **kw: plots.predicted_vs_observed(post, **kw),
    "residuals": lambda post, **kw: plots.residuals(post, **kw),
    "ppc": lambda post, **kw: plots.ppc(post, **kw),
    "rank_plot": lambda post, **kw: plots.rank_plot(post, **kw),
}
MULTI_PANEL = {"optimal_frontier": 2, "excess_compute": 2, "rank_plot": 5}


@pytest.mark.parametrize("name", sorted(FIGURES))
@pytest.mark.parametrize("which", ["small_post", "synthetic_post"])
def test_every_figure_renders(name, which, request, tmp_path):
    post = request.getfixturevalue(which)
    render(FIGURES[name](post), tmp_path, f"{which}_{name}")


@pytest.mark.parametrize("kind", ["kde", "pit", "loo_pit"])
def test_ppc_kinds_render(synthetic_post, tmp_path, kind):
    fig = plots.ppc(synthetic_post, kind=kind)
    ax = fig.axes[0]
    assert ax.get_ylabel() == {"kde": "Density", "pit": "ECDF of PIT minus uniform",
                               "loo_pit": "ECDF of LOO-PIT minus uniform"}[kind]
    render(fig, tmp_path, f"ppc_{kind}")


@pytest.mark.parametrize("against", ["N", "D"])
def test_residuals_against_and_standardized(synthetic_post, tmp_path, against):
    fig = plots.residuals(synthetic_post, against=against, kind="standardised")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert "Standardized" in ax.get_ylabel()
    assert {"N": "parameters", "D": "tokens"}[against] in ax.get_xlabel()
    render(fig, tmp_path, f"residuals_{against}")


@pytest.mark.parametrize("name", ["isoflop_profiles", "isoloss_contours", "predicted_vs_observed", "residuals",
                                  "ppc"])
def test_single_panel_draws_into_given_ax(synthetic_post, tmp_path, name):
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    out = FIGURES[name](synthetic_post, ax=right)
    assert out is fig
    assert not left.has_data() and right.has_data()
    assert len(right.lines) + len(right.collections) > 0
    render(fig, tmp_path, f"{name}_in_ax")


@pytest.mark.parametrize("name", sorted(MULTI_PANEL))
def test_multi_panel_draws_into_given_figure(synthetic_post, tmp_path, name):
    fig = Figure(figsize=(12, 4), layout="constrained")
    out = FIGURES[name](synthetic_post, fig=fig)
    assert out is fig
    assert len(fig.axes) >= MULTI_PANEL[name]
    assert all(ax.has_data() for ax in fig.axes[: MULTI_PANEL[name]])
    render(fig, tmp_path, f"{name}_in_fig")


def test_multi_panel_into_subfigure_returns_root(synthetic_post, tmp_path):
    fig = Figure(figsize=(11, 8), layout="constrained")
    top, bottom = fig.subfigures(2, 1)
    assert plots.optimal_frontier(synthetic_post, fig=top) is fig
    assert plots.isoflop_profiles(synthetic_post, ax=bottom.subplots()) is fig
    render(fig, tmp_path, "subfigures")


def test_isoflop_profiles_content(synthetic_post):
    runs = synthetic_post.runs
    fig = plots.isoflop_profiles(synthetic_post)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    # one curve per budget group (7 groups of 9 runs), labelled by compute in FLOPs
    legends = [c for c in ax.get_children() if isinstance(c, matplotlib.legend.Legend)]
    budget_legend = next(lg for lg in legends if lg.get_title().get_text())
    assert budget_legend.get_title().get_text() == "Compute (FLOPs)"
    assert len(budget_legend.get_texts()) == runs.n_budgets
    # every run is drawn once, on its budget's curve
    points = np.concatenate([c.get_offsets() for c in ax.collections
                             if type(c).__name__ == "PathCollection"])
    assert len(points) == len(runs)


def test_isoflop_profiles_explicit_budgets(synthetic_post, tmp_path):
    # 3e22 has no runs: a curve and its optimum are still drawn
    fig = plots.isoflop_profiles(synthetic_post, budgets=[1e19, 1e20, 3e22], ci=0.5)
    ax = fig.axes[0]
    assert len(ax.lines) >= 3
    render(fig, tmp_path, "isoflop_budgets")


def test_optimal_frontier_named_annotation(synthetic_post, tmp_path):
    fig = plots.optimal_frontier(synthetic_post, named={"Gopher": 5.76e23, "Big": 1e25})
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert sum("Gopher" in t for t in texts) == 2 and sum("Big" in t for t in texts) == 2
    n_text = next(t for t in texts if "Gopher" in t and "N_" in t)
    assert "B" in n_text and "–" in n_text  # e.g. "N_opt = 63B (48B–82B)"
    d_text = next(t for t in texts if "Gopher" in t and "D_" in t)
    assert "T tokens" in d_text
    for ax in fig.axes:
        assert ax.get_xscale() == ax.get_yscale() == "log"
    render(fig, tmp_path, "frontier_named")
    fig = plots.optimal_frontier(synthetic_post, named={}, budgets=[1e20, 1e21, 1e22])
    assert not any(ax.texts for ax in fig.axes)
    render(fig, tmp_path, "frontier_budgets")


def test_excess_compute_range_matches_allocation(synthetic_post):
    from bayesscale import allocation

    fig = plots.excess_compute(synthetic_post, 1e22, k=np.geomspace(0.3, 4, 50))
    rng = allocation.efficient_size_range(synthetic_post.params, 1e22)
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert any(f"{rng.k_lo:.2f}×" in lab and f"{rng.k_hi:.2f}×" in lab for lab in labels), labels
    plt.close(fig)


def test_compute_unit_pfdays_changes_axis_labels(synthetic_post):
    flops = plots.isoloss_contours(synthetic_post)
    pf = plots.isoloss_contours(synthetic_post, compute_unit="pfdays")
    assert "FLOPs" in flops.axes[0].get_xlabel() and "PF-days" in pf.axes[0].get_xlabel()
    np.testing.assert_allclose(np.array(pf.axes[0].get_xlim()) * plots.PF_DAY_FLOPS, flops.axes[0].get_xlim(),
                               rtol=1e-9)

    fig = plots.optimal_frontier(synthetic_post, compute_unit="pfdays")
    assert all("PF-days" in ax.get_xlabel() for ax in fig.axes[:2])
    fig = plots.residuals(synthetic_post, compute_unit="pfdays")
    assert "PF-days" in fig.axes[0].get_xlabel()
    fig = plots.isoflop_profiles(synthetic_post, compute_unit="pfdays")
    titles = [c.get_title().get_text() for c in fig.axes[0].get_children()
              if isinstance(c, matplotlib.legend.Legend)]
    assert "Compute (PF-days)" in titles


@pytest.mark.parametrize("call", [
    lambda p: plots.isoflop_profiles(p, compute_unit="joules"),
    lambda p: plots.optimal_frontier(p, compute_unit="gpu-hours"),
    lambda p: plots.isoloss_contours(p, compute_unit=None),
    lambda p: plots.isoflop_profiles(p, ci=0.0),
    lambda p: plots.optimal_frontier(p, ci=1.0),
    lambda p: plots.isoloss_contours(p, ci=1.5),
    lambda p: plots.excess_compute(p, 1e22, ci=-0.1),
    lambda p: plots.predicted_vs_observed(p, ci="wide"),
    lambda p: plots.residuals(p, ci=2),
    lambda p: plots.isoflop_profiles(p, budgets=[1e20, -1e21]),
    lambda p: plots.isoflop_profiles(p, budgets=[0.0]),
    lambda p: plots.optimal_frontier(p, budgets=[np.inf]),
    lambda p: plots.optimal_frontier(p, named={"bad": -5.0}),
    lambda p: plots.isoloss_contours(p, levels=[2.5, 0.0]),
    lambda p: plots.excess_compute(p, -1e22),
    lambda p: plots.excess_compute(p, [1e21, 1e22]),
    lambda p: plots.excess_compute(p, 1e22, k=[0.5, 0.0]),
    lambda p: plots.residuals(p, against="loss"),
    lambda p: plots.residuals(p, kind="raw"),
    lambda p: plots.ppc(p, kind="histogram"),
    lambda p: plots.rank_plot(p, var_names=["gamma"]),
    lambda p: plots.isoflop_profiles(p, ax="not an axes"),
    lambda p: plots.optimal_frontier(p, fig="not a figure"),
])
def test_bad_options_raise_value_error(synthetic_post, call):
    with pytest.raises(ValueError):
        call(synthetic_post)


def test_not_a_posterior_raises():
    with pytest.raises(ValueError, match="Posterior"):
        plots.isoflop_profiles({"E": 1.0})


def test_save_figure_atomic_and_formats(tmp_path):
    fig = Figure(figsize=(3, 2))
    fig.add_subplot().plot([1, 2, 3], [3, 1, 2])
    out = plots.save_figure(fig, tmp_path / "sub" / "f.png")
    assert out.is_file() and mpimg.imread(out).shape[:2] == (300, 450)  # 150 dpi default
    first = out.read_bytes()
    plots.save_figure(fig, out, dpi=50)  # overwrite in place
    assert out.read_bytes() != first and mpimg.imread(out).shape[:2] == (100, 150)
    assert plots.save_figure(fig, tmp_path / "f.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "sub"]

    # a figure that cannot be drawn leaves neither the target nor a temp file behind
    broken = Figure(figsize=(3, 2))
    broken.text(0.5, 0.5, r"$\frac{1}$")
    with pytest.raises(ValueError):
        plots.save_figure(broken, tmp_path / "broken.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "sub"]

    with pytest.raises(ValueError, match="format"):
        plots.save_figure(fig, tmp_path / "f.docx")
    with pytest.raises(ValueError, match="Figure"):
        plots.save_figure("figure", tmp_path / "x.png")
    with pytest.raises(ValueError, match="dpi"):
        plots.save_figure(fig, tmp_path / "x.png", dpi=0)


def test_public_api():
    assert set(plots.__all__) >= {"isoflop_profiles", "optimal_frontier", "isoloss_contours", "excess_compute",
                                  "predicted_vs_observed", "residuals", "ppc", "rank_plot", "save_figure"}
    for name in plots.__all__:
        obj = getattr(plots, name)
        if callable(obj):
            assert obj.__doc__ and "Returns" in obj.__doc__, name


# ---------------------------------------------------------------------------
# issue 12, item 17: labels clear of the titles, enough loss ticks, the table's medians


def test_item17_frontier_labels_stay_clear_of_the_panel_titles(synthetic_post):
    budgets = {"Budget 1": 5.76e23, "Budget 2": 1e25}
    fig = plots.optimal_frontier(synthetic_post, named=budgets)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    for ax in fig.axes:
        title = ax.title.get_window_extent(renderer)
        assert ax.title.get_text() and title.width > 0
        boxes = [t.get_bbox_patch().get_window_extent(renderer) for t in ax.texts if "Budget" in t.get_text()]
        assert len(boxes) == 2
        inside = ax.get_window_extent(renderer)
        for box in boxes:
            assert not box.overlaps(title), (ax.title.get_text(), box, title)
            assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
        assert not boxes[0].overlaps(boxes[1])
    plt.close(fig)


def _labelled_loss_ticks(ax):
    lo, hi = ax.get_ylim()
    ticks = ax.get_yticklabels() + ax.get_yticklabels(minor=True)
    return sorted({float(t.get_text()) for t in ticks if t.get_text() and lo <= t.get_position()[1] <= hi})


def test_item17_isoflop_loss_axis_has_enough_labelled_ticks(synthetic_post):
    # small budgets: a loss range of about 2.3 to 4.6, where log ticks used to label only 3 and 4
    fig = plots.isoflop_profiles(synthetic_post, budgets=[1e17, 3e17, 1e18])
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert ax.get_yscale() == "log" and hi / lo < 10
    labels = _labelled_loss_ticks(ax)
    assert len(labels) >= 5, (ax.get_ylim(), labels)
    assert np.allclose(np.diff(labels), labels[1] - labels[0])  # evenly spaced round numbers
    plt.close(fig)
    # the locator on its own: the range of the issue
    from bayesscale.plots._common import _nice_ticks

    for a, b in ((2.6, 5.5), (2.05, 2.35), (1.8, 3.9), (3.0, 9.5)):
        t = _nice_ticks(a, b)
        assert 5 <= t.size <= 9 and a <= t.min() and t.max() <= b, (a, b, t)


def test_item17_figure_medians_are_the_table_medians(synthetic_post):
    post = synthetic_post
    C = np.array([5.76e23, 1e25])  # beyond the data: the calibrated extrapolation error is in the table's band
    table = post.allocate(C)
    fig = plots.optimal_frontier(post, named={"Budget 1": C[0], "Budget 2": C[1]})
    for ax, key in zip(fig.axes, ("N_opt", "D_opt")):
        stars = [ln for ln in ax.lines if ln.get_marker() == "*"]
        np.testing.assert_allclose([ln.get_ydata()[0] for ln in stars], table[key], rtol=1e-12)
        texts = sorted((t.get_text() for t in ax.texts if "Budget" in t.get_text()))
        for text, (_, row) in zip(texts, table.iterrows()):
            lo, hi = row[f"{key}_lo80"], row[f"{key}_hi80"]
            assert f"= {_count(row[key])}" in text and f"80%: {_count(lo)}–{_count(hi)}" in text
    plt.close(fig)
    # the isoFLOP diamonds too
    B = np.array([1e19, 1e20, 1e21])
    fig = plots.isoflop_profiles(post, budgets=B)
    ax = fig.axes[0]
    diamonds = [ln for ln in ax.lines if ln.get_marker() == "D" and len(ln.get_xdata()) == 1]
    np.testing.assert_allclose(sorted(ln.get_xdata()[0] for ln in diamonds), post.allocate(B)["N_opt"], rtol=1e-12)
    plt.close(fig)


# ---------------------------------------------------------------------------
# issue 12, item 23: the generic diagnostics are drawn by ArviZ (arviz_plots), into our own figures


def _pc_figure(pc):
    from arviz_plots import PlotCollection

    assert isinstance(pc, PlotCollection) and pc.backend == "matplotlib"
    return pc.viz["figure"].item()


@pytest.mark.parametrize("kind", ["ecdf", "kde", "pit", "loo_pit"])
def test_item23_ppc_is_drawn_by_arviz_plots(synthetic_post, kind):
    from bayesscale.plots import diagnostics

    post = synthetic_post
    n = len(post.runs)
    pc = diagnostics._ppc_collection(post, ax=None, kind=kind, n_replicates=25, ci=0.8)
    fig = _pc_figure(pc)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert pc.viz["plot"]["y"].item() is ax  # ArviZ drew into the axes made here
    if kind in ("ecdf", "kde"):
        # ArviZ's lines: 25 replicated data sets and the observed one, each an artist of this axes
        pred = pc.viz["predictive_dist"]["y"]
        assert pred.sizes["sample"] == 25
        assert all(a in ax.lines for a in pred.values.ravel())
        obs = pc.viz["observed_dist"]["y"].item()
        assert obs in ax.lines and obs.get_color() == "black"
        x = obs.get_xdata()
        np.testing.assert_allclose(np.sort(x)[[0, -1]], np.log(post.runs.loss)[[np.argmin(post.runs.loss),
                                                                                  np.argmax(post.runs.loss)]],
                                   atol=0.05 * np.ptp(x))
        if kind == "ecdf":  # the pointwise band of the replicates' ECDF lies beneath them
            assert any(isinstance(c, matplotlib.collections.FillBetweenPolyCollection) for c in ax.collections)
    else:
        # ArviZ's Delta-ECDF of the n PIT values over [0, 1], its uniformity p-value, and the zero line
        line = pc.viz["ecdf_lines"]["y"].item()
        assert line in ax.lines
        x, y = line.get_xdata(), line.get_ydata()
        assert x.min() >= 0 and x.max() <= 1 and np.all(np.abs(y) <= 1)
        assert np.unique(np.round(y[np.isfinite(y)] + x[np.isfinite(y)], 9)).size > n // 4  # an ECDF of n values
        assert [t.get_text() for t in ax.texts if t.get_text().startswith("p=")], "no p-value from ArviZ"
    plt.close(fig)


def test_item23_ppc_into_a_given_axes_uses_arviz(synthetic_post):
    from bayesscale.plots import diagnostics

    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    pc = diagnostics._ppc_collection(synthetic_post, ax=right, kind="pit", n_replicates=10, ci=0.8)
    assert _pc_figure(pc) is fig and pc.viz["plot"]["y"].item() is right
    assert not left.has_data() and right.has_data()


def test_item23_rank_plot_is_drawn_by_arviz_plots(synthetic_post, tmp_path):
    from bayesscale.plots import diagnostics

    post = synthetic_post
    names = list(post.law.params)
    n_chains = post.tree["posterior"].sizes["chain"]
    pc = diagnostics._rank_collection(post, fig=None, names=names)
    fig = _pc_figure(pc)
    assert len(fig.axes) == len(names)  # one panel per parameter
    rhat = post.summary()["r_hat"]
    for ax, name in zip(fig.axes, names):
        assert pc.viz["plot"][name].item() is ax
        lines = pc.viz["ecdf_lines"][name]
        assert lines.sizes["chain"] == n_chains  # one Delta-ECDF line per chain, in the chains' colours
        artists = [lines.sel(chain=c).item() for c in lines["chain"].values]
        assert all(a in ax.lines for a in artists)
        assert len({a.get_color() for a in artists}) == n_chains
        # fractional ranks over [0, 1]; the draws of each chain, minus the uniform CDF
        x = artists[0].get_xdata()
        assert x.min() >= 0 and x.max() <= 1
        assert f"{float(rhat[name]):.3f}" in ax.get_title()
        assert any(t.get_text().startswith("p=") for t in ax.texts)
    legend = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert legend == [f"chain {c}" for c in range(n_chains)]
    # the public function returns that figure
    out = plots.rank_plot(post, var_names=["E", "alpha"])
    assert len(out.axes) == 2 and out.axes[1].get_title().startswith(r"$\alpha$")
    render(out, tmp_path, "rank_two")


def test_item23_rank_plot_flags_a_stuck_chain(synthetic_post):
    """A chain shifted off the others bends its rank line far from zero, and ArviZ's test says so."""
    import arviz_plots as azp

    from bayesscale.plots import diagnostics

    def p_value(ax):
        return float(next(t.get_text() for t in ax.texts if t.get_text().startswith("p="))[2:6])

    good = diagnostics._rank_collection(synthetic_post, fig=None, names=["E"]).viz["figure"].item()
    tree = synthetic_post.tree.copy(deep=True)
    e = tree["posterior"]["E"]
    tree["posterior"]["E"] = e + 2 * float(e.std()) * (e["chain"] == 0)  # chain 0 stuck two sd higher
    fig = Figure()
    ax = fig.add_subplot()
    pc = diagnostics._collection(tree["posterior"].to_dataset()[["E"]], {"E": ax}, fig,
                                 aes={"color": ["chain"], "overlay": ["chain"]})
    azp.plot_rank(tree, var_names=["E"], plot_collection=pc)
    assert p_value(ax) < 0.01 <= p_value(good.axes[0])
    lines = pc.viz["ecdf_lines"]["E"]
    assert max(np.abs(lines.sel(chain=c).item().get_ydata()).max() for c in lines["chain"].values) > 0.3


def test_item23_one_budget_matcher_gives_the_old_groups(chinchilla240, synthetic_runs):
    from bayesscale.data import BUDGET_TOL_DEX, budget_groups, match_budgets

    def old_match_groups(runs, C):  # bayesscale.plots._match_groups before the split, verbatim
        bc = runs.budget_compute()
        dist = np.abs(np.log10(C)[:, None] - np.log10(bc)[None, :])
        nearest = dist.argmin(axis=1)
        ok = dist[np.arange(C.size), nearest] <= 1.5 * BUDGET_TOL_DEX
        return np.where(ok, nearest, -1)

    # an isoFLOP sweep: every run's own compute finds the group budget_groups gave it
    runs = synthetic_runs
    np.testing.assert_array_equal(match_budgets(runs, runs.C), budget_groups(runs.C))
    np.testing.assert_array_equal(runs.budget, budget_groups(runs.C))
    for runs in (chinchilla240, synthetic_runs):
        # any compute, on or off the budgets, gets the group (or -1) the old matcher gave
        C = np.concatenate([runs.C, runs.budget_compute(), np.geomspace(runs.C.min() / 10, runs.C.max() * 10, 400)])
        new = match_budgets(runs, C)
        np.testing.assert_array_equal(new, old_match_groups(runs, C))
        assert (new == -1).any() and (new >= 0).any()
        np.testing.assert_array_equal(match_budgets(runs.budget_compute(), C), new)
    assert match_budgets(np.array([]), [1e20]).tolist() == [-1]
