"""results/report.html: one self-contained static page of a run's results.

The page holds the headline tables, every other table of results/tables/, the figures of
results/figures/ (embedded as base64 `data:` URIs), the run's parameters and its provenance. It
loads nothing: no scripts, no external CSS, fonts or images, and a Content-Security-Policy that
forbids any request, so it renders the same offline, from a mail attachment or an archive.

The tables come from the Markdown the report already wrote (one source for every reader); the
converter below knows only what those files use: `#` headings, pipe tables, `- ` lists,
paragraphs, `**bold**` and `` `code` ``. Every piece of text is escaped (run names, experiment
labels and parameters are user input).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from pipeline.io import atomic_write_text
from pipeline.report.figures import Figure, read_figures

#: the tables shown first, in this order (when the run wrote them), under "Headline tables"
HEADLINE = ("paper_table2.md", "test.md")
#: tables shown in their own section, not among "All tables"
OWN_SECTION = ("provenance.md",)
#: no request of any kind: images only from data: URIs, styles only inline
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#222;line-height:1.4}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:2.5rem}
table{border-collapse:collapse;margin:.6rem 0 1.2rem;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.2rem .5rem;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#f0f0f0}
tr:nth-child(even) td{background:#fafafa}strong{color:#0a5}
figure{margin:1rem 0 2rem}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85rem;color:#555}pre{background:#f6f6f6;padding:.8rem;overflow:auto;
font-size:.8rem}code{background:#f0f0f0;padding:0 .2rem}nav a{margin-right:1rem}
.scroll{overflow-x:auto}
"""

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_RULE = re.compile(r"^\|?\s*:?-{3,}")


def inline(text: str) -> str:
    """Escaped text with the Markdown tables' inline marks: **bold**, _italics_, `code`."""
    out = html.escape(text, quote=True)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<!\w)_(.+?)_(?!\w)", r"<em>\1</em>", out)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_to_html(md: str, shift: int = 0) -> str:
    """The subset of Markdown the report's tables use, as HTML; headings go `shift` levels down
    (a table file's `###` under the page's `h2`)."""
    out: list[str] = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif m := _HEADING.match(line):
            level = min(len(m.group(1)) + shift, 6)
            out.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
            i += 1
        elif line.lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(lines[i])
                i += 1
            out.append(_table(block))
        elif line.lstrip().startswith("- "):
            items = []
            while i < len(lines) and lines[i].lstrip().startswith("- "):
                items.append(f"<li>{inline(lines[i].lstrip()[2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not _starts_block(lines[i]):
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{inline(' '.join(para))}</p>")
    return "\n".join(out)


def _starts_block(line: str) -> bool:
    s = line.lstrip()
    return bool(_HEADING.match(line)) or s.startswith("|") or s.startswith("- ")


def _table(block: Sequence[str]) -> str:
    head, *rest = block
    body = [r for r in rest if not _RULE.match(r.strip())]
    rows = ["<tr>" + "".join(f"<th>{inline(c)}</th>" for c in _cells(head)) + "</tr>"]
    rows += ["<tr>" + "".join(f"<td>{inline(c)}</td>" for c in _cells(r)) + "</tr>" for r in body]
    return '<div class="scroll"><table>' + "\n".join(rows) + "</table></div>"


def comparisons_html(out: Path) -> str:
    """The comparisons `python -m pipeline summary` prints, as tables (nothing without the
    report's metrics): the terminal, the README and the page show the same cells."""
    from pipeline.errors import PipelineError
    from pipeline.report.summary import legend, load, markdown_table, title

    try:
        comparisons = load(out).comparisons()
    except PipelineError:
        return ""
    parts = [f"### {title(c)}\n\n" + "\n".join(markdown_table(c)) for c in comparisons]
    marks = legend("Bold", "in italics", "`*`")
    return markdown_to_html("\n\n".join(parts) + "\n\n" + marks)


def figure_html(fig: Figure, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f"<figure><h3>{inline(fig.title)}</h3>"
        f'<img src="data:image/png;base64,{data}" alt="{html.escape(fig.title, quote=True)}">'
        f"<figcaption>{inline(fig.caption)}</figcaption></figure>"
    )


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>\n{body}\n</section>'


def build_page(cfg: dict[str, Any], out: Path, title: str = "Results report") -> str:
    """The page of the results under `out` (tables/, figures/) and the run's config `cfg`."""
    tables = out / "tables"
    mds = sorted(tables.glob("*.md")) if tables.is_dir() else []
    by_name = {p.name: p for p in mds}

    def render(names: Sequence[str], shift: int = 0) -> str:
        return "\n".join(markdown_to_html(by_name[n].read_text("utf-8"), shift) for n in names)

    headline = [n for n in HEADLINE if n in by_name]
    others = [n for n in by_name if n not in HEADLINE and n not in OWN_SECTION]
    metric = cfg.get("report", {}).get("metric", "main")
    seeds = cfg.get("seeds", [])
    intro = (
        f"<p>Metric: <code>{html.escape(str(metric))}</code>; seeds: "
        f"{html.escape(', '.join(map(str, seeds)) or 'none')}. Cells are mean ± sd over seeds; "
        "the best of each column in <strong>bold</strong>; <code>*</code>: Welch's t-test over "
        "seeds against the column's best-on-dev baseline, p &lt; 0.05. CSV of every cell: "
        "<code>results/tables/*.csv</code>.</p>"
    )
    figs = read_figures(out)
    fig_html = "\n".join(figure_html(f, (out / "figures" / f.name).read_bytes()) for f in figs)
    params = yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True, default_flow_style=None)
    prov = (
        render(["provenance.md"], shift=2)
        if "provenance.md" in by_name
        else "<p>(no provenance)</p>"
    )
    sections = [
        _section(
            "headline",
            "Headline tables",
            intro + comparisons_html(out) + (render(headline) or "<p>(none)</p>"),
        ),
        _section("figures", "Figures", fig_html or "<p>(no figure data)</p>"),
        _section("tables", "All tables", render(others) or "<p>(none)</p>"),
        _section("params", "Parameters", f"<pre>{html.escape(params)}</pre>"),
        _section("provenance", "Provenance", prov),
    ]
    nav = "".join(
        f'<a href="#{a}">{t}</a>'
        for a, t in (
            ("headline", "Headline"),
            ("figures", "Figures"),
            ("tables", "All tables"),
            ("params", "Parameters"),
            ("provenance", "Provenance"),
        )
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>"
        f"<h1>{html.escape(title)}</h1><nav>{nav}</nav>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


def write_page(cfg: dict[str, Any], out: Path, name: str = "report.html") -> Path:
    """Write results/report.html (after the tables, figures and provenance are written)."""
    path = out / name
    atomic_write_text(path, build_page(cfg, out))
    return path
