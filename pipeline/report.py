"""Report: DVC metrics, Markdown tables (experiments × TLPs) and learning-curve plot data.

Outputs under results/:
    metrics.json                 per experiment: dev/test main metric per TLP and means (DVC metrics)
    tables/test.md, dev.md       experiments × TLPs (columns grouped by task) with a mean column
    tables/zero_shot.md          test scores on languages never trained on (if any)
    plots/train_loss/<run>.csv   step, loss                     (DVC plots)
    plots/dev_score/<run>.csv    step, dev_mean                 (DVC plots)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.config import active_experiments
from pipeline.io import atomic_write_json, atomic_write_text, read_json
from pipeline.records import TLP


def _metric(scores: dict[str, Any], metric: str) -> float:
    return float(scores[metric])


#: the splits of a result row: seen TLPs (dev, test) and unseen-language TLPs (zs_dev, zs_test)
ROW_SPLITS = ("dev", "test", "zs_dev", "zs_test")


def collect(score_files: Sequence[Path], metric: str) -> dict[str, dict[str, dict[str, float]]]:
    """experiment -> split (dev, test, zs_dev, zs_test) -> TLP -> metric value.

    The runs of one experiment (per TLP, per group, fine-tuning runs) merge into one row.
    """
    table: dict[str, dict[str, dict[str, float]]] = {}
    for f in sorted(score_files):
        res = read_json(f)
        row = table.setdefault(res["experiment"], {k: {} for k in ROW_SPLITS})
        zs = set(res.get("zero_shot_tlps", []))
        for tlp, splits in res["scores"].items():
            prefix = "zs_" if tlp in zs else ""
            row[prefix + "dev"][tlp] = _metric(splits["dev"], metric)
            row[prefix + "test"][tlp] = _metric(splits["test"], metric)
    return table


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _columns(rows: dict[str, dict[str, Any]]) -> list[str]:
    return sorted({t for r in rows.values() for t in r}, key=lambda s: (TLP.parse(s).task, s))


def markdown_table(
    rows: dict[str, dict[str, float]],
    title: str,
    delta: set[str] = frozenset(),
    note: str = "",
) -> str:
    """Rows × TLP columns (grouped by task) and a mean column; rows in `delta` print signed."""
    cols = _columns(rows)
    if not cols:
        return f"### {title}\n\n(no scores)\n"
    lines = [f"### {title}", ""]
    if note:
        lines += [note, ""]
    lines += ["| model | " + " | ".join(cols) + " | mean |", "|---" * (len(cols) + 2) + "|"]
    for exp, r in rows.items():
        fmt = "{:+.1f}" if exp in delta else "{:.1f}"
        cells = [fmt.format(r[c]) if c in r else "–" for c in cols]
        m = _mean([r[c] for c in cols if c in r])
        mean = fmt.format(m) if m is not None else "–"
        lines.append(f"| {exp} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines) + "\n"


def best_on_dev(
    candidates: Sequence[str], table: dict[str, dict[str, dict[str, float]]], col: str, zs: bool
) -> str | None:
    """The candidate experiment with the best dev score in column `col` (never test)."""
    dev = "zs_dev" if zs else "dev"
    have = [e for e in candidates if col in table[e][dev]]
    return max(have, key=lambda e: table[e][dev][col]) if have else None


def paper_tables(
    cfg: dict[str, Any], table: dict[str, dict[str, dict[str, float]]]
) -> tuple[dict[str, str], dict[str, Any]]:
    """Tarunesh et al.'s table shapes, with every choice made on dev.

    Table 2: baselines (STL, MTL) as absolute test scores; each meta row (experiments sharing a
    `row` label, e.g. the temperatures of one selection) shows, per column, the test score of
    the row's experiment with the best dev score, minus the test score of the best-on-dev
    baseline of that column. Table 4: every meta experiment on its own, same differences.
    Table 3: zero-shot TLPs; MTL baselines absolute, meta rows as differences from the best MTL.
    (The paper picks the best τ and baseline per column without saying on which split; we pick
    on dev, and record each pick in tables/paper_choices.json.)
    """
    exps = active_experiments(cfg)
    baselines = [e for e in table if exps.get(e, {}).get("method") in ("stl", "mtl")]
    metas = [e for e in table if e not in baselines]
    mtls = [e for e in baselines if exps[e]["method"] == "mtl"]

    def label(e: str) -> str:
        return exps.get(e, {}).get("row", e)

    rows_of: dict[str, list[str]] = {}
    for e in metas:
        rows_of.setdefault(label(e), []).append(e)
    choices: dict[str, Any] = {"table2": {}, "table3": {}, "table4": {}}

    def shaped(base: list[str], groups: dict[str, list[str]], zs: bool, key: str) -> dict:
        split = "zs_test" if zs else "test"
        cols = _columns({e: table[e][split] for e in base + metas})
        best_base = {c: best_on_dev(base, table, c, zs) for c in cols}
        rows: dict[str, dict[str, float]] = {}
        for e in base:  # baselines sharing a row label (e.g. per-task STL) merge into one row
            for c, v in table[e][split].items():
                members = [b for b in base if label(b) == label(e)]
                if best_on_dev(members, table, c, zs) == e:
                    rows.setdefault(label(e), {})[c] = v
        for name, members in groups.items():
            r = {}
            for c in cols:
                pick, ref = best_on_dev(members, table, c, zs), best_base[c]
                if pick is not None and ref is not None:
                    r[c] = table[pick][split][c] - table[ref][split][c]
                    choices[key].setdefault(name, {})[c] = {"model": pick, "baseline": ref}
            rows[name] = r
        return rows

    t2 = shaped(baselines, rows_of, False, "table2")
    t4 = shaped(baselines, {e: [e] for e in metas}, False, "table4")
    t3 = shaped(mtls, {e: [e] for e in metas}, True, "table3")
    note = "Meta rows: difference from the best-on-dev baseline of the column (test scores)."
    out = {
        "paper_table2.md": markdown_table(t2, "Table 2 shape: main results", set(rows_of), note),
        "paper_table4.md": markdown_table(
            t4, "Table 4 shape: every sampling setting", set(metas), note
        ),
        "paper_table3.md": markdown_table(t3, "Table 3 shape: zero-shot", set(metas), note),
    }
    return out, choices


def _csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in fields})
    return buf.getvalue()


def write_curves(run_dirs: Sequence[Path], out: Path) -> None:
    """Per run: loss and dev curves; gradient cosine between TLPs (Lee et al. Figure 4); and
    MultiDDS sampling probabilities and rewards per TLP (Tarunesh et al. Figure 3)."""
    plots = out / "plots"
    for d in run_dirs:
        hist = read_json(d / "history.json")
        atomic_write_text(plots / "train_loss" / f"{d.name}.csv", _csv(hist, ["step", "loss"]))
        dev = [h for h in hist if "dev_mean" in h]
        atomic_write_text(plots / "dev_score" / f"{d.name}.csv", _csv(dev, ["step", "dev_mean"]))
        cos = [
            {"step": h["step"], "mean_pairwise_cosine": h["grad_cosine"]["mean_pairwise_cosine"]}
            for h in hist
            if "grad_cosine" in h
        ]
        if cos:
            atomic_write_text(
                plots / "grad_cosine" / f"{d.name}.csv", _csv(cos, ["step", "mean_pairwise_cosine"])
            )
        probs: dict[str, list[dict[str, Any]]] = {}
        for h in hist:
            for tlp, pr in h.get("sampling_probs", {}).items():
                row = {"step": h["step"], "prob": pr, "reward": h.get("rewards", {}).get(tlp, "")}
                probs.setdefault(tlp, []).append(row)
        for tlp, rows in probs.items():
            name = f"{d.name}.{TLP.parse(tlp).slug}.csv"
            atomic_write_text(plots / "multidds" / name, _csv(rows, ["step", "prob", "reward"]))


def write_report(
    cfg: dict[str, Any], score_files: Sequence[Path], run_dirs: Sequence[Path], out: Path
) -> dict[str, Any]:
    metric = cfg["report"]["metric"]
    table = collect(score_files, metric)
    metrics: dict[str, Any] = {}
    for exp, r in table.items():
        metrics[exp] = {
            "dev_mean": _mean(list(r["dev"].values())),
            "test_mean": _mean(list(r["test"].values())),
            "test": r["test"],
        }
    for exp, r in table.items():
        if r["zs_test"]:
            metrics[exp]["zero_shot_test_mean"] = _mean(list(r["zs_test"].values()))
    atomic_write_json(out / "metrics.json", {"metric": metric, "experiments": metrics})
    test_md = markdown_table({e: r["test"] for e, r in table.items()}, f"Test {metric}")
    atomic_write_text(out / "tables" / "test.md", test_md)
    atomic_write_text(
        out / "tables" / "dev.md",
        markdown_table({e: r["dev"] for e, r in table.items()}, f"Dev {metric} (model selection)"),
    )
    zs = {e: r["zs_test"] for e, r in table.items() if r["zs_test"]}
    atomic_write_text(
        out / "tables" / "zero_shot.md", markdown_table(zs, f"Zero-shot test {metric}")
    )
    shaped, choices = paper_tables(cfg, table)
    for name, text in shaped.items():
        atomic_write_text(out / "tables" / name, text)
    atomic_write_json(out / "tables" / "paper_choices.json", choices)
    write_curves(run_dirs, out)
    return {"summary": test_md, "metrics": metrics}
