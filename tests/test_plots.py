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


@pytest.mark.parametrize("kw", [{"kind": "kde"}, {"kind": "pit"}])
def test_ppc_kinds_render(synthetic_post, tmp_path, kw):
    fig = plots.ppc(synthetic_post, **kw)
    ax = fig.axes[0]
    assert ax.get_ylabel() == ("Density" if kw["kind"] == "kde" else "ECDF of PIT minus uniform")
    render(fig, tmp_path, f"ppc_{kw['kind']}")


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
    from bayesscale.plots import _nice_ticks

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
            assert f"= {plots._count(row[key])}" in text and f"80%: {plots._count(lo)}–{plots._count(hi)}" in text
    plt.close(fig)
    # the isoFLOP diamonds too
    B = np.array([1e19, 1e20, 1e21])
    fig = plots.isoflop_profiles(post, budgets=B)
    ax = fig.axes[0]
    diamonds = [ln for ln in ax.lines if ln.get_marker() == "D" and len(ln.get_xdata()) == 1]
    np.testing.assert_allclose(sorted(ln.get_xdata()[0] for ln in diamonds), post.allocate(B)["N_opt"], rtol=1e-12)
    plt.close(fig)
