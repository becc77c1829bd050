"""The benchmark driver (scripts/bench.py) on its cheapest settings: it runs every group but the
DAG, prints one table, and writes results/bench-style JSON whose ratios are candidate / baseline.
No timed assertion: the figures of a tiny run on a shared machine mean nothing."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))

ROW_KEYS = {"group", "measure", "candidate", "baseline", "ratio", "unit", "target", "met"}


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    res = subprocess.run(
        [sys.executable, "scripts/bench.py", "--tiny", "--skip", "dag", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return out, res.stdout


def check_rows(doc: dict, group: str) -> None:
    assert doc["group"] == group
    assert doc["rows"], group
    for row in doc["rows"]:
        assert ROW_KEYS <= set(row), row
        assert row["group"] == group
        if row["candidate"] is not None and row["baseline"]:
            assert row["ratio"] == pytest.approx(row["candidate"] / row["baseline"], rel=1e-12)
        else:
            assert row["ratio"] is None
        if row["target"] is not None:
            t = row["target"]
            x = row["ratio"] if t["on"] == "ratio" else row["candidate"]
            if x is not None and not math.isnan(x):
                assert row["met"] == (x <= t["value"] if t["op"] == "<=" else x >= t["value"])
    for name, m in doc["metrics"].items():
        (row,) = [r for r in doc["rows"] if r["measure"] == name]
        assert m == {k: row[k] for k in ("candidate", "baseline", "ratio")}


def test_driver_writes_every_group_but_dag(bench_run):
    out, stdout = bench_run
    files = {p.name for p in out.glob("*.json")}
    assert files == {"featurize.json", "steps.json", "padding.json", "startup.json", "gpu.json"}
    for group in ("featurize", "steps", "padding", "startup"):
        doc = json.loads((out / f"{group}.json").read_text())
        info = doc["device"]
        assert {"cpu", "torch", "threads", "cuda"} <= set(info)
        check_rows(doc, group)
        # every measured row has a candidate (a failed group would write an error row instead)
        assert all(r["candidate"] is not None for r in doc["rows"] if not r["extra"].get("skipped"))
    steps = json.loads((out / "steps.json").read_text())["rows"]
    measures = " ".join(r["measure"] for r in steps)
    for method in ("Reptile", "Seq Reptile", "MAML 1st", "MAML 2nd", "MetaXL", "PCGrad"):
        assert method in measures
    assert "GradVac" in measures and "GradNorm" in measures and "MultiDDS" in measures
    assert any(r["unit"] == "B" for r in steps)  # memory rows
    feat = json.loads((out / "featurize.json").read_text())["rows"]
    assert [r["measure"].split()[0] for r in feat] == ["qa", "tagging"]
    gpu = json.loads((out / "gpu.json").read_text())
    if gpu.get("skipped"):
        assert gpu["device"] == "cpu"
        assert gpu["rows"][0]["measure"] == "no CUDA device: skipped"
    else:
        check_rows(gpu, "gpu")
    # the one table: its header, a line per row, the device named
    header = next(line for line in stdout.splitlines() if line.startswith("group"))
    assert header.split() == [
        "group",
        "measure",
        "candidate",
        "baseline",
        "ratio",
        "target",
        "met?",
    ]
    assert "torch" in stdout and "CPU" in stdout
    assert "not run: dag" in stdout


def test_gpu_code_path_on_cpu(tmp_path):
    import bench_gpu

    args = bench_gpu.parser().parse_args(
        ["--tiny", "--device", "cpu", "--rounds", "1", "--steps", "1", "--out", str(tmp_path)]
    )
    rows = bench_gpu.run(args)
    mfu = rows[0]
    assert mfu.unit == "FLOP/s" and mfu.candidate > 0 and mfu.baseline > 0
    assert mfu.ratio == mfu.candidate / mfu.baseline
    assert mfu.extra["flops_per_token"] > 6 * mfu.extra["parameters_counted"]  # + attention
    doc = json.loads(bench_gpu.write(rows, tmp_path).read_text())
    check_rows(doc, "gpu")
    assert doc["skipped"] is False


def test_selection_and_targets():
    import bench
    from bench_common import Row, Target

    with pytest.raises(SystemExit):
        bench.names("steps,nope")
    assert bench.names(" dag, gpu ") == ["dag", "gpu"]
    r = Row("g", "m", 2.0, 4.0, "s", Target("ratio", "<=", 0.5))
    assert r.ratio == 0.5 and r.met is True
    assert Row("g", "m", 2.0, None, "s", Target("candidate", "<=", 1.0)).met is False
    assert Row("g", "m", 3.0, 2.0, "x", Target("ratio", ">=", 1.5)).met is True
    assert Row("g", "m", None).ratio is None and Row("g", "m", None).met is None
