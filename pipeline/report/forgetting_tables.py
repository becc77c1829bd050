"""Lee et al. (2022) §4.2, Figure 5: catastrophic forgetting, from the `forgetting` outputs.

Written when the report is handed results/forgetting/<run>.json files (runs of experiments with
`forgetting: true`), under results/:

    tables/forgetting.md          one row per experiment (the pretrained model first): the
                                  masked-LM loss on held-out text averaged over the seen and over
                                  the unseen languages, and the l2 distance from the pretrained
                                  encoder, mean ± sd over seeds; then the loss per language
    tables/forgetting.csv         every run's numbers (to recompute anything)
    plots/forgetting/{mlm_seen,mlm_unseen,l2}.csv   experiment, value, sd, seeds (DVC bar plots)
    plots/forgetting/{mlm_seen,mlm_unseen,l2}.png   the same as bar charts with ± sd

A row is an experiment's `row` (its id, per `aux` entry for a grid) and its language split: runs
with other seen languages (an STL run per TLP) are rows of their own. Per seed, the runs of a
row are averaged first (e.g. the STL runs of one language), then mean ± sd over the seeds. The
pretrained row is the "before training" of the same numbers (its l2 is 0), one per language
split when the rows' splits differ.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.io import atomic_write_bytes, atomic_write_text, read_json
from pipeline.report.figures import png_bytes

#: the three measures of Figure 5: (key of the per-run JSON, plot file, axis label)
MEASURES = (
    ("mean_seen", "mlm_seen", "MLM loss, seen languages"),
    ("mean_unseen", "mlm_unseen", "MLM loss, unseen languages"),
    ("l2", "l2", "ℓ2 distance ‖θ − θ₀‖₂"),
)
PRETRAINED = "pretrained"
CSV_FIELDS = ["run", "row", "experiment", "seed", "seen", "unseen", "mean_seen", "mean_unseen"]
CSV_FIELDS += ["l2", "mean_seen_pretrained", "mean_unseen_pretrained"]


def _split(entry: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(entry["seen"]), tuple(entry["unseen"])


def _stat(values: Sequence[float | None]) -> tuple[float, float, int]:
    """(mean, sd, n) over the values that exist; sd nan with one, mean nan with none."""
    xs = [v for v in values if v is not None]
    if not xs:
        return math.nan, math.nan, 0
    return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else math.nan, len(xs)


def _fmt(mean: float, sd: float, spec: str = ".3f") -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:{spec}}" if math.isnan(sd) else f"{mean:{spec}} ± {sd:{spec}}"


def _per_seed(by_seed: dict[int, list[dict[str, Any]]], get: Any) -> list[float | None]:
    """Per seed (sorted), the mean of `get(entry)` over that seed's runs (None without any)."""
    vals = []
    for s in sorted(by_seed):
        xs = [get(e) for e in by_seed[s] if get(e) is not None]
        vals.append(statistics.fmean(xs) if xs else None)
    return vals


def summarize(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's rows: the pretrained row(s) first, then one per (row, language split) in the
    order of first appearance. Each: label, row, seen, unseen, seeds, and per measure (`mean_seen`,
    `mean_unseen`, `l2`) its mean and sd over seeds; `languages`: {lang: (mean, sd)}."""
    groups: dict[tuple, dict[int, list[dict[str, Any]]]] = {}
    for e in entries:
        key = (e["row"], *_split(e))
        groups.setdefault(key, {}).setdefault(int(e["seed"]), []).append(e)
    splits = list(dict.fromkeys(k[1:] for k in groups))
    rows_of = {}
    for k in groups:
        rows_of.setdefault(k[0], []).append(k)
    out = []
    for seen, unseen in splits:  # before training: the same numbers of the pretrained model
        same = [e for e in entries if _split(e) == (seen, unseen)]
        pre = {lang: x for e in same[:1] for lang, x in e["mlm_loss_pretrained"].items()}
        for e in same:
            if e["mlm_loss_pretrained"] != pre:
                raise PipelineError(
                    f"forgetting: {e['run']} and {same[0]['run']} hold different pretrained "
                    "losses (results of another pretrained.json?): rerun the forgetting jobs"
                )
        label = PRETRAINED if len(splits) == 1 else f"{PRETRAINED} (seen: {', '.join(seen)})"
        out.append(
            {
                "label": label,
                "row": PRETRAINED,
                "seen": list(seen),
                "unseen": list(unseen),
                "seeds": 1,
                "pretrained": True,
                "mean_seen": _stat([same[0]["mean_seen_pretrained"]]),
                "mean_unseen": _stat([same[0]["mean_unseen_pretrained"]]),
                "l2": (0.0, math.nan, 1),
                "languages": {lang: (x, math.nan) for lang, x in sorted(pre.items())},
            }
        )
    for (row, seen, unseen), by_seed in groups.items():
        several = len(rows_of[row]) > 1
        langs = sorted({lang for es in by_seed.values() for e in es for lang in e["mlm_loss"]})
        out.append(
            {
                "label": f"{row} (seen: {', '.join(seen)})" if several else row,
                "row": row,
                "seen": list(seen),
                "unseen": list(unseen),
                "seeds": len(by_seed),
                "pretrained": False,
                **{m: _stat(_per_seed(by_seed, lambda e, m=m: e[m])) for m, _, _ in MEASURES},
                "languages": {
                    lang: _stat(_per_seed(by_seed, lambda e, lang=lang: e["mlm_loss"].get(lang)))[
                        :2
                    ]
                    for lang in langs
                },
            }
        )
    return out


def markdown(rows: Sequence[dict[str, Any]], entries: Sequence[dict[str, Any]]) -> str:
    first = entries[0]
    settings = first.get("settings", {})
    counts = sorted({n for e in entries for n in e.get("sentences", {}).values()})
    n = "?" if not counts else str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    lines = [
        "# Catastrophic forgetting (Lee et al. 2022 §4.2, Figure 5)",
        "",
        f"Masked-LM loss on held-out text ({n} sentences per language, "
        f"{settings.get('mlm_probability', 0.15):.0%} of the tokens masked, the same masked "
        "tokens for every model) of each trained encoder under the pretrained MLM head, "
        "averaged over the languages the run trained on (seen) and over the others (unseen); "
        "ℓ2 = ‖θ − θ₀‖₂ over the encoder's parameters (embeddings included, no heads). "
        "Mean ± sd over n seeds; the pretrained model (before training) first.",
        "",
        "| model | seen | unseen | MLM loss, seen | MLM loss, unseen | ℓ2 distance | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        # the l2 distance with 4 significant digits (RecAdam's can be 1e-6)
        cells = [_fmt(*r[m][:2], ".4g" if m == "l2" else ".3f") for m, _, _ in MEASURES]
        if r["pretrained"]:
            cells[2] = "0"
        lines.append(
            f"| {r['label']} | {' '.join(r['seen'])} | {' '.join(r['unseen']) or '–'} | "
            + " | ".join(cells)
            + f" | {'–' if r['pretrained'] else r['seeds']} |"
        )
    langs = sorted({lang for r in rows for lang in r["languages"]})
    lines += [
        "",
        "### MLM loss per language (mean ± sd over seeds)",
        "",
        "| model | " + " | ".join(langs) + " |",
        "|---" * (len(langs) + 1) + "|",
    ]
    per_lang = [r for r in rows if not r["pretrained"]]
    per_lang.insert(0, {**rows[0], "label": PRETRAINED})  # (the same whatever the split)
    for r in per_lang:
        cells = []
        for lang in langs:
            text = _fmt(*r["languages"][lang]) if lang in r["languages"] else "–"
            cells.append(f"*{text}*" if lang in r["seen"] and not r["pretrained"] else text)
        lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    lines += ["", "Seen languages of each row in *italics*."]
    return "\n".join(lines) + "\n"


def _csv(rows: list[list[Any]], header: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _value(x: float) -> Any:
    return "" if math.isnan(x) else x


def plot_rows(rows: Sequence[dict[str, Any]], measure: str) -> list[list[Any]]:
    """experiment, value, sd, seeds of one measure (rows without a value left out)."""
    out = []
    for r in rows:
        mean, sd, n = r[measure]
        if not math.isnan(mean):
            out.append([r["label"], mean, _value(sd), n])
    return out


def bar_png(rows: list[list[Any]], title: str) -> bytes:
    """A horizontal bar chart (± sd) of `plot_rows`, as PNG bytes (figures.png_bytes)."""
    labels = [r[0] for r in rows]

    def draw(fig: Any) -> None:
        ax = fig.add_subplot(1, 1, 1)
        ys = list(range(len(rows)))[::-1]
        errs = [r[2] if r[2] != "" else 0.0 for r in rows]
        colors = ["0.6" if lab.startswith(PRETRAINED) else "C0" for lab in labels]
        xerr = errs if any(errs) else None
        ax.barh(ys, [r[1] for r in rows], xerr=xerr, color=colors, capsize=3)
        ax.set_yticks(ys, labels)
        ax.set_xlabel(title)
        ax.set_title(f"{title} (Lee et al. 2022, Figure 5)", fontsize=10)

    return png_bytes(draw, (6.4, 0.9 + 0.35 * max(len(rows), 1)), dpi=100)


def write_forgetting_tables(files: Sequence[Path], out: Path) -> bool:
    """Write the files of the module docstring; False (nothing written) without any."""
    if not files:
        return False
    entries = [read_json(f) for f in sorted(files, key=str)]
    rows = summarize(entries)
    tables, plots = out / "tables", out / "plots" / "forgetting"
    atomic_write_text(tables / "forgetting.md", markdown(rows, entries))
    per_run = [
        [
            e["run"],
            e["row"],
            e["experiment"],
            e["seed"],
            " ".join(e["seen"]),
            " ".join(e["unseen"]),
            *("" if e[k] is None else e[k] for k in CSV_FIELDS[6:]),
        ]
        for e in entries
    ]
    atomic_write_text(tables / "forgetting.csv", _csv(per_run, CSV_FIELDS))
    for measure, name, title in MEASURES:
        data = plot_rows(rows, measure)
        atomic_write_text(plots / f"{name}.csv", _csv(data, ["experiment", "value", "sd", "seeds"]))
        atomic_write_bytes(plots / f"{name}.png", bar_png(data, title))
    return True
