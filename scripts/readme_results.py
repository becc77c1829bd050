"""Rewrite README.md's "Reading the results" block from a finished run (never by hand).

    snakemake --cores 2 && python scripts/readme_results.py

The block between `<!-- results:begin -->` and `<!-- results:end -->` gets the largest
comparison of `python -m pipeline summary` (on the embedded default: the Tarunesh / Lee et al.
multi-task grid and its baselines), as a Markdown table with the same cells (test mean ± sd over
seeds, `*` Welch p < 0.05 against the column's best-on-dev baseline, best in bold), and one
figure (FIGURES), copied to docs/images/ (results/ is not in git). Running it again on the same results
changes nothing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.report.summary import legend, load, markdown_table

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
#: the README's figure: the first of these the run drew (MultiDDS's ψ trajectories, Tarunesh et
#: al.'s Figure 3, else the learning curves of every run)
FIGURES = {
    "multidds.png": "MultiDDS sampling probabilities",
    "learning_curves.png": "Learning curves",
}


def results_block(results: Path, image: str, caption: str) -> str:
    """The README block (between the markers, markers excluded) for the report under `results`."""
    try:
        comparisons = load(results).comparisons()
    except PipelineError as e:
        raise SystemExit(f"error: {e}") from None
    largest = max(comparisons, key=lambda c: len(c.rows))
    return "\n".join(
        [
            "",
            f"Test scores of the largest of the run's {len(comparisons)} comparisons, mean ± sd "
            f"over seeds (`python -m pipeline summary` prints all of them, `results/report.html` "
            f"holds every table). {legend('Bold', 'in italics', '`*`')}",
            "",
            *markdown_table(largest),
            "",
            f"![{caption} of the embedded default]({image})",
            "",
        ]
    )


def rewrite(readme: str, block: str) -> str:
    """`readme` with the text between the markers replaced by `block`."""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if len(pattern.findall(readme)) != 1:
        raise SystemExit(f"error: README needs exactly one {BEGIN} … {END} block")
    return pattern.sub(lambda _: BEGIN + "\n" + block + "\n" + END, readme)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--readme", type=Path, default=Path("README.md"))
    ap.add_argument("--images", type=Path, default=Path("docs/images"))
    args = ap.parse_args(argv)
    found = [n for n in FIGURES if (args.results / "figures" / n).exists()]
    if not found:
        raise SystemExit(
            f"error: {args.results / 'figures' / 'learning_curves.png'} not found: run snakemake first"
        )
    fig = args.results / "figures" / found[0]
    results_block(args.results, "", "")  # fails before anything is written
    args.images.mkdir(parents=True, exist_ok=True)
    dest = args.images / fig.name
    if not dest.exists() or dest.read_bytes() != fig.read_bytes():
        shutil.copyfile(fig, dest)
    rel = Path(*dest.resolve().relative_to(args.readme.resolve().parent).parts).as_posix()
    block = results_block(args.results, rel, FIGURES[fig.name])
    text = args.readme.read_text("utf-8")
    new = rewrite(text, block)
    if new != text:
        args.readme.write_text(new, "utf-8")
    print(f"{args.readme}: results block {'rewritten' if new != text else 'unchanged'}; {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
