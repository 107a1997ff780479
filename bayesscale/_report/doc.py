"""A small neutral document (headings, paragraphs, tables, cards, figures...) and its HTML and Markdown writers.

The report's sections (:mod:`bayesscale._report.sections`) turn facts into a
list of blocks; :func:`to_html` and :func:`to_markdown` write the same list,
one small function per block and format.  Text in blocks may use two inline
marks, ``**bold**`` and ```code```: Markdown keeps them, HTML turns them into
``<strong>`` and ``<code>``.
"""

from __future__ import annotations

import base64
import html as _html
import re
from dataclasses import dataclass, field

__all__ = ["Heading", "Para", "Banner", "Callout", "Bullets", "Table", "Card", "Cards", "Figure", "Figures", "Code",
           "Toc", "Page", "table", "to_html", "to_markdown"]


# ---------------------------------------------------------------------------
# the blocks
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str | None = None


@dataclass(frozen=True)
class Para:
    text: str
    cls: str = ""


@dataclass(frozen=True)
class Banner:
    """The verdict at the top: ``kind`` is ``ok`` (green), ``warn`` (amber) or ``bad`` (red)."""

    kind: str
    title: str
    text: str
    items: tuple = ()


@dataclass(frozen=True)
class Callout:
    """A boxed note: ``level`` is ``info``, ``caution`` or ``danger``."""

    level: str
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple
    cls: str = ""


@dataclass(frozen=True)
class Table:
    """A table; ``align`` has ``"l"`` or ``"r"`` per column, ``status_col`` a column drawn as status pills."""

    header: tuple
    rows: tuple
    align: tuple | None = None
    cls: str = ""
    status_col: int | None = None


@dataclass(frozen=True)
class Card:
    """One budget at a glance (HTML); ``pill`` says how far it lies beyond the data, ``pill_class`` its level."""

    head: str
    big: str
    small: str
    rows: tuple
    pill: str
    pill_class: str
    untrusted: bool = False


@dataclass(frozen=True)
class Cards:
    """Cards side by side in HTML; Markdown shows the same content as the table ``md_header``, ``md_rows``."""

    cards: tuple
    md_header: tuple
    md_rows: tuple


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    caption: str
    wide: bool
    path: str  # relative to the report directory (the Markdown links it; the HTML embeds the image)


@dataclass(frozen=True)
class Figures:
    items: tuple


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Toc:
    """Links to the sections (HTML only): ``(anchor, text)`` pairs."""

    entries: tuple


@dataclass(frozen=True)
class Page:
    """A whole page: its title, the line under it, the blocks and the footer."""

    title: str
    subtitle: str
    blocks: tuple
    footer: str
    images: dict = field(default_factory=dict, compare=False)  # figure name -> PNG bytes (HTML embeds them)


def table(header, rows, *, align=None, cls: str = "", status_col: int | None = None) -> Table:
    """A :class:`Table` from lists (rows are copied into tuples)."""
    return Table(tuple(header), tuple(tuple(r) for r in rows), None if align is None else tuple(align), cls,
                 status_col)


# ---------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------


def _inline_html(text) -> str:
    s = _html.escape(str(text), quote=False)
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


def _num_class(a: str) -> str:
    return "num" if a == "r" else ""


def _html_heading(b: Heading, images) -> str:
    aid = f' id="{_html.escape(b.anchor)}"' if b.anchor else ""
    return f"<h{b.level}{aid}>{_inline_html(b.text)}</h{b.level}>"


def _html_para(b: Para, images) -> str:
    c = f' class="{b.cls}"' if b.cls else ""
    return f"<p{c}>{_inline_html(b.text)}</p>"


def _html_items(items) -> str:
    return "".join(f"<li>{_inline_html(i)}</li>" for i in items)


def _html_banner(b: Banner, images) -> str:
    li = _html_items(b.items)
    return (f'<section class="banner {b.kind}" role="status" id="verdict-banner">'
            f'<div class="title">{_inline_html(b.title)}</div><p>{_inline_html(b.text)}</p>'
            + (f"<ul>{li}</ul>" if li else "") + "</section>")


def _html_callout(b: Callout, images) -> str:
    return f'<div class="callout {b.level}">{_inline_html(b.text)}</div>'


def _html_bullets(b: Bullets, images) -> str:
    return f'<ul class="{b.cls or "plain"}">{_html_items(b.items)}</ul>'


def _html_table(b: Table, images) -> str:
    align = b.align or ("l",) * len(b.header)
    ths = "".join(f'<th class="{_num_class(a)}">{_inline_html(h)}</th>' for h, a in zip(b.header, align))
    body = []
    for r in b.rows:
        tds = []
        for j, (v, a) in enumerate(zip(r, align)):
            if j == b.status_col:
                st = str(v).lower().replace("/", "")
                tds.append(f'<td><span class="status {st}">{_html.escape(str(v))}</span></td>')
            else:
                tds.append(f'<td class="{_num_class(a)}">{_inline_html(v)}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    c = f' class="{b.cls}"' if b.cls else ""
    return f"<table{c}><thead><tr>{ths}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _html_card(cd: Card) -> str:
    dl = "".join(f"<dt>{_inline_html(k)}</dt><dd>{_inline_html(v)}</dd>" for k, v in cd.rows)
    return (f'<div class="card"><div class="head">{_inline_html(cd.head)}</div>'
            f'<div class="big">{_inline_html(cd.big)} <small>{_inline_html(cd.small)}</small></div>'
            f'<dl>{dl}</dl><span class="pill {cd.pill_class}">{_inline_html(cd.pill)}</span>'
            + (' <span class="pill strong">fit failed its diagnostics: do not use</span>' if cd.untrusted else "")
            + "</div>")


def _html_cards(b: Cards, images) -> str:
    return f'<div class="cards">{"".join(_html_card(cd) for cd in b.cards)}</div>'


def _html_figures(b: Figures, images) -> str:
    items = []
    for f in b.items:
        data = base64.b64encode(images[f.name]).decode("ascii")
        items.append(f'<figure class="{"wide" if f.wide else ""}" id="fig-{f.name}">'
                     f'<img src="data:image/png;base64,{data}" alt="{_html.escape(f.title)}">'
                     f"<figcaption><b>{_html.escape(f.title)}.</b> {_inline_html(f.caption)}</figcaption>"
                     "</figure>")
    return f'<div class="figs">{"".join(items)}</div>'


def _html_code(b: Code, images) -> str:
    return f"<pre>{_html.escape(b.text)}</pre>"


def _html_toc(b: Toc, images) -> str:
    links = "".join(f'<a href="#{_html.escape(a)}">{_html.escape(t)}</a>' for a, t in b.entries)
    return f'<nav class="toc">{links}</nav>'


_HTML = {Heading: _html_heading, Para: _html_para, Banner: _html_banner, Callout: _html_callout,
         Bullets: _html_bullets, Table: _html_table, Cards: _html_cards, Figures: _html_figures, Code: _html_code,
         Toc: _html_toc}


def to_html(page: Page) -> str:
    """The page as one self-contained HTML file: inline CSS, figures embedded as base64 PNG."""
    body = "\n".join(_HTML[type(b)](b, page.images) for b in page.blocks)
    title = _html.escape(page.title)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="generator" content="bayesscale">\n'
            f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
            f'<header class="top"><h1>{title}</h1><div class="sub">{_inline_html(page.subtitle)}</div>'
            f"</header>\n{body}\n<footer>{_inline_html(page.footer)}</footer>\n</main>\n</body>\n</html>\n")


# ---------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_rows(header, rows, align=None) -> list[str]:
    align = align or ("l",) * len(header)
    return (["| " + " | ".join(_md_cell(h) for h in header) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
            + ["| " + " | ".join(_md_cell(v) for v in r) + " |" for r in rows] + [""])


def _md_heading(b: Heading) -> list[str]:
    return [f"{'#' * b.level} {b.text}", ""]


def _md_para(b: Para) -> list[str]:
    return [b.text, ""]


def _md_banner(b: Banner) -> list[str]:
    return [f"> **{b.title}**", ">", f"> {b.text}"] + ([">"] + [f"> - {i}" for i in b.items] if b.items else []) + [""]


def _md_callout(b: Callout) -> list[str]:
    return [f"> {b.text}", ""]


def _md_bullets(b: Bullets) -> list[str]:
    return [f"- {i}" for i in b.items] + [""]


def _md_table(b: Table) -> list[str]:
    return _md_rows(b.header, b.rows, b.align)


def _md_cards(b: Cards) -> list[str]:
    return _md_rows(b.md_header, b.md_rows)


def _md_figures(b: Figures) -> list[str]:
    return [line for f in b.items for line in (f"![{f.title}]({f.path})", "", f"*{f.title}.* {f.caption}", "")]


def _md_code(b: Code) -> list[str]:
    return ["```bash", b.text, "```", ""]


def _md_toc(b: Toc) -> list[str]:
    return []  # Markdown viewers list the headings themselves


_MARKDOWN = {Heading: _md_heading, Para: _md_para, Banner: _md_banner, Callout: _md_callout, Bullets: _md_bullets,
             Table: _md_table, Cards: _md_cards, Figures: _md_figures, Code: _md_code, Toc: _md_toc}


def to_markdown(page: Page) -> str:
    """The page as Markdown; figures are linked by their relative paths."""
    out = [f"# {page.title}", "", page.subtitle, ""]
    for b in page.blocks:
        out += _MARKDOWN[type(b)](b)
    out += ["---", "", page.footer, ""]
    return "\n".join(out)


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
