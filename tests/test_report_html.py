"""results/report.html in a real browser: Debian's Chromium, headless, with the network cut.

A report is built from the hand-made score files of tests/test_report.py plus a run history with
every curve kind (loss, dev, gradient cosine, MultiDDS probabilities, batches), through the same
functions the `report` step calls (tables, provenance, figures, page). A copy of the page gets a
probe script before its Content-Security-Policy (so the page's own policy still applies to
everything after it): it records every error event, CSP violation and console.error, and on
`load` writes the headings, the images' natural sizes and the table count into the DOM, which
`chromium --dump-dom` prints. Chromium is installed with apt-get when missing (CI starts
without it); a screenshot of the page is saved (and copied to $REPORT_ARTIFACTS when set).
The negative tests make sure the check fails on a broken image and on a missing heading.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from pipeline.report import write_report
from pipeline.report.figures import read_figures, sweep_series, write_figures
from pipeline.report.html_page import markdown_to_html, write_page
from pipeline.report.provenance_table import write_provenance_table
from pipeline.runtime.provenance import git_state, package_versions, params_sha256
from tests.conftest import REPO
from tests.test_report import CFG, GRID, files

#: a row label and a parameter that would inject markup if the page did not escape them
HOSTILE = '<img src=x onerror="alert(1)">'
CFG_HOSTILE = {
    **CFG,
    "experiments": {**CFG["experiments"], "rep_t5": {"method": "reptile", "row": HOSTILE}},
}
HEADINGS = ["Results report", "Headline tables", "Figures", "All tables", "Parameters"]
HEADINGS += ["Provenance", "Table 2 shape: main results", "Learning curves", "ψ trajectories"]
#: the comparison `python -m pipeline summary` prints, first under the headline
HEADINGS += ["Test main on ner, nli (2 TLPs): mean ± sd over seeds"]

PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  var t = e.target;
  __errors.push(t && t.tagName ? "resource " + t.tagName + " failed" : "error: " + e.message);
}, true);
document.addEventListener("securitypolicyviolation", function (e) {
  __errors.push("csp: " + e.violatedDirective + " " + e.blockedURI);
});
var _ce = console.error;
console.error = function () {
  __errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
  _ce.apply(console, arguments);
};
window.addEventListener("load", function () {
  var q = function (s) { return Array.prototype.slice.call(document.querySelectorAll(s)); };
  var p = document.createElement("pre");
  p.id = "__probe";
  p.textContent = JSON.stringify({
    headings: q("h1,h2,h3").map(function (h) { return h.textContent; }),
    images: q("img").map(function (i) { return {alt: i.alt, complete: i.complete, width: i.naturalWidth}; }),
    tables: q("table").length,
    cells: q("td").map(function (c) { return c.textContent; }),
    errors: __errors,
  });
  document.body.appendChild(p);
});
</script>"""

#: headless, no sandbox (root in CI), no GPU, and no network: every host resolves to nothing
#: and every request goes to a closed proxy port
NO_NETWORK = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


def chromium() -> str:
    """Debian's chromium, installed with apt-get when missing (fails, never skips)."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail("chromium is missing and cannot be installed (needs root apt-get)")
    apt = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
    ):
        subprocess.run(cmd, env=apt, check=True, capture_output=True, timeout=900)
    found = shutil.which("chromium")
    if not found:
        pytest.fail("apt-get installed chromium but no `chromium` is on PATH")
    return found


def browse(page: Path, work: Path, *args: str) -> subprocess.CompletedProcess:
    work.mkdir(parents=True, exist_ok=True)
    cmd = [chromium(), *NO_NETWORK, f"--user-data-dir={work / 'profile'}", *args]
    return subprocess.run(
        [*cmd, page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(work)},
    )


def probe(page: Path, work: Path) -> dict:
    """What the page shows in Chromium: headings, images (natural width), tables, errors."""
    copy = work / f"probe-{page.name}"
    work.mkdir(parents=True, exist_ok=True)
    copy.write_text(page.read_text("utf-8").replace("<head>", "<head>" + PROBE, 1), "utf-8")
    res = browse(copy, work, "--dump-dom")
    m = re.search(r'<pre id="__probe">(.*?)</pre>', res.stdout, re.S)
    assert m, f"no probe output from chromium (rc {res.returncode}): {res.stderr[-2000:]}"
    return json.loads(html.unescape(m.group(1)))


def assert_renders(seen: dict, headings: list[str], images: int) -> None:
    """The page's expected headings are there, every image decoded, tables shown, no error."""
    missing = [h for h in headings if h not in seen["headings"]]
    assert not missing, f"headings missing: {missing}"
    broken = [i["alt"] for i in seen["images"] if not i["complete"] or i["width"] <= 0]
    assert not broken, f"broken images: {broken}"
    assert len(seen["images"]) == images, f"{len(seen['images'])} images, expected {images}"
    assert seen["tables"] >= 5, f"only {seen['tables']} tables"
    assert not seen["errors"], f"errors in the page: {seen['errors']}"


def _history() -> list[dict]:
    return [
        {
            "step": s,
            "loss": 2.0 / s,
            "dev_mean": 10.0 * s,
            "batches": 16 * s,
            "grad_cosine": {"mean_pairwise_cosine": 0.1 * s},
            "sampling_probs": {"nli/l0": 0.5 + 0.02 * s, "ner/l0": 0.5 - 0.02 * s},
            "rewards": {"nli/l0": 0.1, "ner/l0": -0.1},
        }
        for s in range(1, 6)
    ]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A report (tables, provenance, figures, page) as the `report` step writes it."""
    root = tmp_path_factory.mktemp("report")
    runs = []
    for seed in (1, 2):
        run = root / "runs" / f"rep_t5.s{seed}"
        run.mkdir(parents=True)
        (run / "history.json").write_text(json.dumps(_history()))
        prov = {
            "run": run.name,
            "seed": seed,
            "git": git_state(REPO),
            "params_sha256": params_sha256(CFG_HOSTILE),
            "run_sha256": params_sha256({"run": run.name}),
            "packages": package_versions(),
            "data": {},
            "device": {"type": "cpu", "torch_threads": 1},
        }
        (run / "provenance.json").write_text(json.dumps(prov))
        runs.append(run)
    out = root / "results"
    write_report(CFG_HOSTILE, files(root), runs, out, check=False)
    write_provenance_table(runs, out)
    write_figures(out)
    write_page(CFG_HOSTILE, out)
    return out


def test_the_page_is_self_contained_and_escaped(report):
    text = (report / "report.html").read_text("utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing external
    assert "<script" not in text.lower()
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert HOSTILE not in text and html.escape(HOSTILE) in text
    figs = read_figures(report)
    names = {f.name for f in figs}
    assert {"learning_curves.png", "grad_cosine.png", "multidds.png", "efficiency.png"} <= names
    assert text.count('<img src="data:image/png;base64,') == len(figs)
    assert "| mtl |" not in text and "<td>mtl</td>" in text  # tables rendered, not Markdown


def test_figures_are_reproducible(report, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(report / "plots", out / "plots")
    write_figures(out)
    for f in read_figures(report):
        assert (out / "figures" / f.name).read_bytes() == (report / "figures" / f.name).read_bytes()


def test_a_sweep_value_without_a_score_is_a_gap_not_a_zero():
    rows = [
        {"value": "1", "mean": "40.5", "sd": "1.5"},
        {"value": "5", "mean": "", "sd": ""},
        {"value": "10", "mean": "0.0", "sd": "0.2"},
    ]
    xs, ys, sd = sweep_series(rows)
    assert xs == ["1", "5", "10"] and sd == [1.5, 0.0, 0.2]
    assert ys[0] == 40.5 and math.isnan(ys[1]) and ys[2] == 0.0  # a real 0 stays 0


def test_markdown_subset():
    got = markdown_to_html("### T <x>\n\nnote `a` **b**\n\n| m | c |\n|---|---|\n| r | **1.0** |\n")
    assert got == (
        "<h3>T &lt;x&gt;</h3>\n<p>note <code>a</code> <strong>b</strong></p>\n"
        '<div class="scroll"><table><tr><th>m</th><th>c</th></tr>\n'
        "<tr><td>r</td><td><strong>1.0</strong></td></tr></table></div>"
    )


def test_the_page_renders_in_headless_chromium(report, tmp_path):
    seen = probe(report / "report.html", tmp_path)
    assert_renders(seen, HEADINGS, images=len(read_figures(report)))
    assert HOSTILE in seen["cells"]  # the hostile label is shown as text, not run
    # the best Table 2 cell of nli/l0 (rep_t5, +12.0) is bold and starred as in the Markdown
    assert "+12.0 ± 1.0*" in seen["cells"]
    shot = tmp_path / "report.png"
    res = browse(
        report / "report.html",
        tmp_path,
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        "--hide-scrollbars",
    )
    assert shot.exists(), res.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert struct.unpack(">II", data[16:24]) == (1280, 2000)
    if os.environ.get("REPORT_ARTIFACTS"):
        dest = Path(os.environ["REPORT_ARTIFACTS"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, dest / "report.png")


def test_the_check_catches_a_broken_image(report, tmp_path):
    page = tmp_path / "broken.html"
    text = (report / "report.html").read_text("utf-8")
    page.write_text(text.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1))
    seen = probe(page, tmp_path)
    with pytest.raises(AssertionError, match="broken images: \\['Learning curves'\\]"):
        assert_renders(seen, HEADINGS, images=len(read_figures(report)))


def test_the_check_catches_a_missing_heading_and_a_request(report, tmp_path):
    text = (report / "report.html").read_text("utf-8")
    page = tmp_path / "no_heading.html"
    page.write_text(text.replace("<h2>Figures</h2>", "", 1))
    with pytest.raises(AssertionError, match="headings missing: \\['Figures'\\]"):
        assert_renders(probe(page, tmp_path), HEADINGS, images=len(read_figures(report)))
    # an external stylesheet: blocked by the page's own policy (and by the cut network)
    page = tmp_path / "external.html"
    page.write_text(
        text.replace("</style>", '</style><link rel="stylesheet" href="http://x/a.css">')
    )
    with pytest.raises(AssertionError, match="errors in the page: .*csp"):
        assert_renders(probe(page, tmp_path), HEADINGS, images=len(read_figures(report)))


def test_report_tables_agree_with_the_grid(report):
    """The page shows the numbers of the fixture (tests/test_report.py's GRID)."""
    text = (report / "report.html").read_text("utf-8")
    assert len(GRID) == 4 and "<td><strong>90.0 ± 1.0</strong></td>" in text  # mtl ner/l0
    # the summary's comparison: rep_t5's row as the terminal shows it (best bold, Welch marks)
    row = "<tr><td>rep_t5</td><td>3</td><td>84.0 ± 1.0*</td><td><strong>70.0 ± 1.0</strong>*"
    assert row in text
