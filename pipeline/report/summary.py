"""`python -m pipeline summary`: the headline comparison of a finished run, in the terminal.

Read from what the report wrote (results/metrics.json, tables/cells.csv,
tables/paper_tables.csv), never recomputed, so the terminal, the Markdown tables and the HTML
page show the same numbers. A config compares several families of experiments on different
TLPs (the embedded default: Tarunesh / Lee et al.'s multi-task grid, X-MAML, X-METRA, MetaXL),
so the experiments are split into comparisons: an experiment joins the largest comparison whose
TLPs include all of its own (STL or a single-TLP baseline joins the multi-task grid it is a
baseline of), else starts one. One table per comparison: rows are its experiments, columns its
TLPs grouped by task, then the average over the row's TLPs and its zero-shot average; a cell is
the test mean ± sd over seeds, the best of each column bold and starred (★), and `*` where the
report's Table 4 shape found the experiment different from the column's best-on-dev baseline
(Welch's t-test over seeds, p < 0.05, as in the Markdown tables). Averages are ranked only among
rows averaging the same TLPs (a row over fewer TLPs is shown dim, unranked): a mean over other
test sets is not a comparison.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.io import read_json
from pipeline.records import TLP
from pipeline.report.tables import ALPHA, MARK

#: the columns after the TLPs: metrics.json keys of the row's average over TLPs
AGGREGATES = (("avg", "test"), ("zero-shot avg", "zero_shot_test"))
AGGREGATE_LABELS = tuple(label for label, _ in AGGREGATES)
BEST = "★"


def legend(best: str = f"{BEST} bold", weak: str = "dim", mark: str = MARK) -> str:
    """What the marks of the comparison tables mean (terminal; README and page: other marks)."""
    return (
        f"{best}: best of the column; {mark}: differs from the column's best-on-dev baseline "
        f"(Welch's t-test over seeds, p < {ALPHA}; tables/paper_table4.md); avg: over the row's "
        f"TLPs, {weak} and unranked where they are fewer than the table's; zero-shot avg: "
        "ranked among rows with the same zero-shot TLPs."
    )


@dataclass(frozen=True)
class Cell:
    mean: float
    sd: float  # nan with one seed
    significant: bool = False

    def text(self) -> str:
        body = f"{self.mean:.1f}" if math.isnan(self.sd) else f"{self.mean:.1f} ± {self.sd:.1f}"
        return body + (MARK if self.significant else "")


@dataclass
class Headline:
    metric: str
    columns: list[str]
    rows: dict[str, dict[str, Cell]]
    seeds: dict[str, int]
    #: experiment -> the TLPs of its zero-shot average (ranked among rows with the same set)
    zero_shot: dict[str, frozenset[str]] = field(default_factory=dict)

    def tlps(self, row: str) -> frozenset[str]:
        """The TLP columns the row has (its test TLPs)."""
        return frozenset(c for c in self.rows[row] if c not in AGGREGATE_LABELS)

    def comparable(self, row: str, column: str) -> tuple:
        """Rows with equal keys are ranked together in `column`: a TLP column is one test set,
        the zero-shot average is ranked among rows averaging the same zero-shot TLPs."""
        if column == "zero-shot avg":
            return tuple(sorted(self.zero_shot.get(row, ())))
        return ()

    def best(self) -> dict[str, dict[tuple, float]]:
        """Column -> {comparable key: the best mean}, for keys two or more rows share."""
        out: dict[str, dict[tuple, float]] = {}
        for c in self.columns:
            means: dict[tuple, list[float]] = {}
            for e, r in self.rows.items():
                if c in r and self.ranked(e, c):
                    means.setdefault(self.comparable(e, c), []).append(r[c].mean)
            out[c] = {k: max(v) for k, v in means.items() if len(v) > 1}
        return out

    def is_best(self, row: str, column: str, best: dict | None = None) -> bool:
        if not self.ranked(row, column):
            return False
        best = self.best() if best is None else best
        return best.get(column, {}).get(self.comparable(row, column)) == self.rows[row][column].mean

    def ranked(self, row: str, column: str) -> bool:
        """Whether the row's cell competes in the column (an average over the table's TLPs)."""
        return column != "avg" or self.tlps(row) == frozenset(
            c for c in self.columns if c not in AGGREGATE_LABELS
        )

    def comparisons(self) -> list[Headline]:
        """The experiments split into comparisons (see the module docstring), largest first."""
        sets = sorted({self.tlps(e) for e in self.rows}, key=lambda t: (-len(t), sorted(t)))
        roots: list[frozenset[str]] = []
        home: dict[frozenset[str], frozenset[str]] = {}
        for t in sets:
            home[t] = next((r for r in roots if t <= r), t)
            if home[t] == t:
                roots.append(t)
        out = []
        for root in roots:
            rows = {e: r for e, r in self.rows.items() if home[self.tlps(e)] == root}
            tlp_cols = [c for c in self.columns if c in root]
            aggs = [c for c in AGGREGATE_LABELS if any(c in r for r in rows.values())]
            out.append(
                Headline(
                    self.metric,
                    tlp_cols + aggs,
                    rows,
                    {e: self.seeds.get(e, 0) for e in rows},
                    {e: z for e, z in self.zero_shot.items() if e in rows},
                )
            )
        return out


def _float(v: str) -> float:
    return float(v) if v not in ("", None) else math.nan


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def load(results: Path) -> Headline:
    """The headline comparison of the report under `results` (PipelineError when missing)."""
    metrics_file = results / "metrics.json"
    if not metrics_file.exists():
        raise PipelineError(f"{metrics_file} not found: run snakemake first")
    cells_file = results / "tables" / "cells.csv"
    if not cells_file.exists():
        raise PipelineError(f"{cells_file} not found: run snakemake first")
    metrics = read_json(metrics_file)
    significant = set()
    paper = results / "tables" / "paper_tables.csv"
    for r in _read_csv(paper) if paper.exists() else []:
        p = _float(r["p"])
        if r["table"] == "table4" and r["kind"] == "delta" and not math.isnan(p) and p < ALPHA:
            significant.add((r["row"], r["tlp"]))
    rows: dict[str, dict[str, Cell]] = {e: {} for e in metrics.get("experiments", {})}
    seeds = {e: len(m.get("seeds", [])) for e, m in metrics.get("experiments", {}).items()}
    tlps = set()
    zero_shot: dict[str, set[str]] = {}
    for r in _read_csv(cells_file):
        if r["split"] == "zs_test":
            zero_shot.setdefault(r["experiment"], set()).add(r["tlp"])
        if r["split"] != "test":
            continue
        e, t = r["experiment"], r["tlp"]
        rows.setdefault(e, {})[t] = Cell(_float(r["mean"]), _float(r["sd"]), (e, t) in significant)
        tlps.add(t)
    columns = sorted(tlps, key=lambda s: (TLP.parse(s).task, s))
    for label, key in AGGREGATES:
        for e, m in metrics.get("experiments", {}).items():
            if f"{key}_mean" in m:
                rows[e][label] = Cell(m[f"{key}_mean"], m.get(f"{key}_sd", math.nan))
        if any(label in r for r in rows.values()):
            columns.append(label)
    zs = {e: frozenset(t) for e, t in zero_shot.items()}
    return Headline(metrics.get("metric", "main"), columns, rows, seeds, zs)


def title(h: Headline) -> str:
    """`Test main on ner, nli (4 TLPs): mean ± sd over seeds`."""
    tasks = sorted({TLP.parse(c).task for c in h.columns if c not in AGGREGATE_LABELS})
    n = sum(c not in AGGREGATE_LABELS for c in h.columns)
    return f"Test {h.metric} on {', '.join(tasks)} ({n} TLPs): mean ± sd over seeds"


def rich_table(h: Headline) -> Any:
    """One comparison as a rich Table (bold + ★ on the best of each column)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title(h))
    table.add_column("experiment", style="cyan", no_wrap=True)
    table.add_column("seeds", justify="right")
    for c in h.columns:
        table.add_column(c, justify="right")
    best = h.best()
    for e, r in h.rows.items():
        cells = []
        for c in h.columns:
            if c not in r:
                cells.append(Text("–"))
            elif h.is_best(e, c, best):
                cells.append(Text(f"{r[c].text()} {BEST}", style="bold"))
            else:
                cells.append(Text(r[c].text(), style="" if h.ranked(e, c) else "dim"))
        # Text, not markup: an experiment named `[x]` is printed as it is
        table.add_row(Text(e), Text(str(h.seeds.get(e, 0))), *cells)
    return table


def markdown_table(h: Headline) -> list[str]:
    """One comparison as Markdown pipe-table lines: the rich table's cells, the best of each
    column in bold, unranked averages in italics (the README's results block)."""
    lines = [
        "| experiment | seeds | " + " | ".join(h.columns) + " |",
        "|---|---:|" + "---:|" * len(h.columns),
    ]
    best = h.best()
    for e, r in h.rows.items():
        cells = []
        for c in h.columns:
            if c not in r:
                cells.append("–")
            elif h.is_best(e, c, best):
                cells.append(f"**{r[c].text()}**")
            else:
                cells.append(r[c].text() if h.ranked(e, c) else f"_{r[c].text()}_")
        lines.append(f"| {e} | {h.seeds.get(e, 0)} | " + " | ".join(cells) + " |")
    return lines


def print_summary(results: Path, width: int | None = None) -> Headline:
    """Print one table per comparison and where the full report is; returns the headline."""
    from rich.console import Console

    h = load(results)
    console = Console(width=width, highlight=False)
    tables = [rich_table(c) for c in h.comparisons()]
    if width is None and not console.is_terminal:
        # a log or a pipe (make demo | tee): the tables' natural width, never wrapped cells
        console.width = 10_000  # measure unconstrained, then print at the natural width
        console.width = max(max(console.measure(t).maximum for t in tables), 40)
    for t in tables:
        console.print(t)
    console.print(legend(), width=min(console.width, 100))
    page = results / "report.html"
    if page.exists():
        console.print(
            f"Report: {page}  (tables: {results / 'tables'}, figures: {results / 'figures'})"
        )
    return h
