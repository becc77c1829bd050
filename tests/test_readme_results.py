"""scripts/readme_results.py: the README's results block comes from a run's tables and figures.

The report is written from tests/test_report.py's score files (and a history for the learning
curves); the script must put its headline comparison and a figure into the block between the
markers, leave the rest of the README alone, and change nothing when run again.
"""

from __future__ import annotations

import json
import subprocess
import sys

from pipeline.report import write_report
from pipeline.report.figures import write_figures
from tests.conftest import REPO
from tests.test_report import CFG, files

README = """# Project

Intro.

<!-- results:begin -->
stale text
<!-- results:end -->

## After
"""


def run(*args):
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "readme_results.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_block_is_regenerated_from_the_tables_and_idempotent(tmp_path):
    out = tmp_path / "results"
    run_dir = tmp_path / "runs" / "mtl.s1"
    run_dir.mkdir(parents=True)
    hist = [{"step": s, "loss": 1.0 / s, "dev_mean": float(s)} for s in (1, 2)]
    (run_dir / "history.json").write_text(json.dumps(hist))
    write_report(CFG, files(tmp_path), [run_dir], out, check=False)
    write_figures(out)
    readme = tmp_path / "README.md"
    readme.write_text(README)
    args = ("--results", out, "--readme", readme, "--images", tmp_path / "docs" / "images")
    first = run(*args)
    assert first.returncode == 0, first.stderr
    text = readme.read_text()
    assert text.startswith("# Project\n\nIntro.\n\n<!-- results:begin -->\n")
    assert text.endswith("<!-- results:end -->\n\n## After\n") and "stale" not in text
    # the summary's comparison as Markdown (tests/test_summary.py's cells): the best in bold,
    # Table 4's significance marks, the header of TLPs then the averages
    assert "| experiment | seeds | ner/l0 | nli/l0 | avg | zero-shot avg |" in text
    assert "| mtl | 3 | **90.0 ± 1.0** | 58.0 ± 1.0 | 74.0 ± 1.0 | 40.0 ± 1.0 |" in text
    rep = "| rep_t5 | 3 | 84.0 ± 1.0* | **70.0 ± 1.0*** | **77.0 ± 1.0** | **49.0 ± 1.0** |"
    assert rep in text
    assert "Test scores of the largest of the run's 1 comparisons" in text
    # no MultiDDS run in the fixture: the learning curves are the figure
    assert "![Learning curves of the embedded default](docs/images/learning_curves.png)" in text
    png = tmp_path / "docs" / "images" / "learning_curves.png"
    assert png.read_bytes() == (out / "figures" / "learning_curves.png").read_bytes()
    again = run(*args)
    assert again.returncode == 0 and "unchanged" in again.stdout
    assert readme.read_text() == text


def test_missing_results_or_markers_are_one_line_errors(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    res = run("--results", tmp_path / "none", "--readme", readme, "--images", tmp_path / "img")
    assert res.returncode == 1
    assert (
        res.stderr.strip()
        == f"error: {tmp_path / 'none/figures/learning_curves.png'} not found: run snakemake first"
    )
