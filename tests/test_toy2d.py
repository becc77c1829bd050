"""Lee et al. 2022 §4.1: the 2-D study on the pipeline's own methods (pipeline/experiments/)."""

from __future__ import annotations

import copy
import csv
import json
import logging
import math

import numpy as np
import pytest
import torch
import yaml

import pipeline.experiments.toy2d_plots as plots
from pipeline import cli
from pipeline.config import load_params, validate
from pipeline.errors import ConfigError
from pipeline.experiments.toy2d import (
    DEFAULT_OPTIONS,
    METHODS,
    MINIMA,
    START,
    Toy2D,
    Trajectory,
    analyse,
    gradient_cosine,
    gradient_cosine_grid,
    make_context,
    run_method,
    sum_loss,
    sum_loss_grid,
    task_grad,
    task_loss,
    tlps_for,
)
from pipeline.experiments.toy2d_study import memo_runner, sweep_grid
from pipeline.methods import get_method
from pipeline.methods.mtl import MTL
from pipeline.methods.pcgrad import PCGrad
from pipeline.methods.seq_reptile import SequentialReptile
from pipeline.workflow.dvc_yaml import TOY2D_PLOTS
from tests.conftest import REPO

PNG = b"\x89PNG\r\n\x1a\n"


def closed_grad(phi, i):
    d = np.asarray(phi, float) - np.asarray(MINIMA[i])
    r = np.linalg.norm(d)
    return 200 * 0.2 * math.exp(-0.2 * r) * d / r


def autograd(phi, i):
    model = Toy2D(phi, offset=0.0)
    loss = model(torch.tensor(MINIMA[i], dtype=torch.float64))
    loss.backward()
    return loss.item(), model.phi.grad.numpy().copy()


def test_loss_and_gradient_by_hand():
    # at the minimum x_2 = (0, 0): L_2 = −200, and the cone's apex gets a zero gradient
    value, grad = autograd((0.0, 0.0), 1)
    assert value == -200.0 and task_loss((0, 0), 1) == -200.0
    assert np.array_equal(grad, [0.0, 0.0]) and np.array_equal(task_grad((0, 0), 1), [0, 0])
    # (3, 4) is at distance 5 from x_2: L_2 = −200/e, ∇L_2 = 40/e · (3, 4)/5
    value, grad = autograd((3.0, 4.0), 1)
    assert value == pytest.approx(-200 / math.e, rel=1e-12)
    assert grad == pytest.approx([40 / math.e * 0.6, 40 / math.e * 0.8], rel=1e-12)
    for phi in [(3.0, 4.0), START, (-2.5, 7.0)]:
        for i in range(3):
            v, g = autograd(phi, i)
            assert v == pytest.approx(task_loss(phi, i), rel=1e-12)
            assert g == pytest.approx(closed_grad(phi, i), rel=1e-12)
            assert task_grad(phi, i) == pytest.approx(closed_grad(phi, i), rel=1e-12)
    # the context's offset shifts the loss, not the gradient
    ctx = make_context({"lr": 0.1}, 1)
    t = tlps_for()[2]
    assert ctx.loss(t, ctx.batch(t)).item() == pytest.approx(task_loss(START, 2) + 200.0)
    params = {"encoder.phi": torch.tensor([3.0, 4.0], dtype=torch.float64)}
    assert ctx.functional_loss(params, tlps_for()[1], {}).item() == pytest.approx(
        -200 / math.e + 200.0
    )
    # Fig. 3h's cosine at (5, 5): pairs (x1,x2) 0, (x1,x3) −1, (x2,x3) 0
    assert gradient_cosine((5.0, 5.0)) == pytest.approx(-1 / 3)


def test_mtl_step_is_the_mean_of_the_three_gradients():
    lr = 0.1
    traj = run_method("mtl", {"mixing": "concat", "tasks_per_step": 3}, steps=1, lr=lr)
    assert traj.method_type is MTL and get_method("mtl") is MTL
    expected = np.asarray(START) - lr * np.mean([closed_grad(START, i) for i in range(3)], axis=0)
    assert traj.points[1] == pytest.approx(expected, rel=1e-12)
    # a second step, from φ1
    traj2 = run_method("mtl", {"mixing": "concat", "tasks_per_step": 3}, steps=2, lr=lr)
    phi1 = traj2.points[1]
    expected2 = phi1 - lr * np.mean([closed_grad(phi1, i) for i in range(3)], axis=0)
    assert traj2.points[2] == pytest.approx(expected2, rel=1e-12)


def test_seq_reptile_eta_one_is_mtl_on_the_same_sequence():
    """tests/test_reptile.py's identity on the toy: η = 1, shared optimizer state, MTL's
    generator: S meta-steps of K inner steps are K·S single-task MTL steps, bit for bit."""
    K, S = 4, 6
    seq = run_method("seq_reptile", {"inner_steps": K, "eta": 1.0}, steps=S, lr=0.05, seed=3)
    mtl = run_method("mtl", {"tasks_per_step": 1}, steps=K * S, lr=0.05, seed=3)
    assert seq.method_type is SequentialReptile is get_method("seq_reptile")
    assert np.array_equal(seq.points, mtl.points[::K])
    # and η < 1 is not MTL
    half = run_method("seq_reptile", {"inner_steps": K, "eta": 0.5}, steps=S, lr=0.05, seed=3)
    assert not np.allclose(half.points[-1], mtl.points[-1])


def test_pcgrad_projects_conflicting_gradients_by_hand():
    phi, lr = (4.0, 6.0), 0.1
    g1, g3 = closed_grad(phi, 0), closed_grad(phi, 2)
    assert g1 @ g3 < 0  # the tasks of x_1 and x_3 conflict at (4, 6)
    g1pc = g1 - (g1 @ g3) / (g3 @ g3) * g3
    g3pc = g3 - (g3 @ g1) / (g1 @ g1) * g1
    traj = run_method(
        "pcgrad",
        {"tasks_per_step": 2, "reduction": "sum"},
        steps=1,
        lr=lr,
        start=phi,
        tasks=(0, 2),
    )
    assert traj.method_type is PCGrad is get_method("pcgrad")
    assert traj.points[1] == pytest.approx(np.asarray(phi) - lr * (g1pc + g3pc), rel=1e-10)
    assert not np.allclose(traj.points[1], np.asarray(phi) - lr * (g1 + g3))
    # reduction mean halves the step
    mean = run_method(
        "pcgrad",
        {"tasks_per_step": 2, "reduction": "mean"},
        steps=1,
        lr=lr,
        start=phi,
        tasks=(0, 2),
    )
    assert mean.points[1] == pytest.approx(np.asarray(phi) - lr * (g1pc + g3pc) / 2, rel=1e-10)


@pytest.mark.parametrize("name", METHODS)
def test_every_method_runs_the_registered_class(name):
    a = run_method(name, steps=3, seed=1)
    b = run_method(name, steps=3, seed=1)
    assert a.method_type is get_method(name)
    assert np.array_equal(a.points, b.points) and np.array_equal(a.cosines, b.cosines)
    assert not np.array_equal(a.points[-1], a.points[0])  # φ moved
    assert a.points.shape == (4, 2) and a.losses.shape == (4, 3)
    assert a.losses[0] == pytest.approx([task_loss(START, i) for i in range(3)])


def test_same_seed_same_trajectory_other_seed_other_draws():
    a = run_method("seq_reptile", {"inner_steps": 5, "eta": 0.1}, steps=20, seed=7)
    b = run_method("seq_reptile", {"inner_steps": 5, "eta": 0.1}, steps=20, seed=7)
    c = run_method("seq_reptile", {"inner_steps": 5, "eta": 0.1}, steps=20, seed=8)
    assert np.array_equal(a.points, b.points)
    assert not np.array_equal(a.points, c.points)


def fake(name, end):
    pts = np.array([START, end], dtype=float)
    return Trajectory(
        name,
        {"hand": True},
        pts,
        np.array([[task_loss(p, i) for i in range(3)] for p in pts]),
        np.array([gradient_cosine(p) for p in pts]),
    )


def test_analyse_verdicts_on_hand_made_trajectories():
    ends = {
        "mtl": (10.2, 0.0),
        "pcgrad": (0.0, 9.5),
        "gradvac": (0.3, 0.3),
        "gradnorm": (10.0, 0.5),
        "recadam": (9.5, 0.0),
    }
    trajs = {n: fake(n, e) for n, e in ends.items()}
    # Reptile at (5, 5) (cos −1/3), Sequential Reptile at (−3, −3) (cos ≈ 0.72, Σ L ≈ −113)
    trajs["reptile"] = fake("reptile", (5.0, 5.0))
    trajs["seq_reptile"] = fake("seq_reptile", (-3.0, -3.0))
    res = analyse(trajs, radius=1.0)
    m = res["methods"]
    assert m["mtl"]["nearest_minimum"] == "x3" and m["mtl"]["in_mtl_minimum"]
    assert m["pcgrad"]["nearest_minimum"] == "x1"
    assert m["reptile"]["cosine_end"] == pytest.approx(-1 / 3)
    assert m["seq_reptile"]["sum_loss_end"] == pytest.approx(sum_loss((-3, -3)))
    assert m["seq_reptile"]["sum_loss_end"] < sum_loss(START)
    c = res["claims"]
    assert c["1_baselines_in_mtl_minima"]["holds"]
    assert c["2_reptile_avoids_minima_low_cosine"]["holds"]
    assert c["3_seq_reptile_tradeoff_high_cosine"]["holds"]
    assert c["2_reptile_avoids_minima_low_cosine"]["settings"] == {"hand": True}
    # a baseline off the minima, and the two Reptiles swapped: every claim fails
    trajs["gradnorm"] = fake("gradnorm", (4.0, 4.0))
    trajs["reptile"], trajs["seq_reptile"] = fake("reptile", (-3, -3)), fake("seq", (5, 5))
    c = analyse(trajs, radius=1.0)["claims"]
    assert not c["1_baselines_in_mtl_minima"]["holds"]
    assert c["1_baselines_in_mtl_minima"]["methods"]["gradnorm"] is None
    assert not c["2_reptile_avoids_minima_low_cosine"]["holds"]
    assert not c["3_seq_reptile_tradeoff_high_cosine"]["holds"]
    # Sequential Reptile in a minimum fails claim 3 whatever the cosine
    trajs["seq_reptile"] = fake("seq_reptile", (0.0, 10.2))
    assert not analyse(trajs, 1.0)["claims"]["3_seq_reptile_tradeoff_high_cosine"]["holds"]


def small_run():
    trajs = {
        "mtl": run_method("mtl", steps=4),
        "reptile": run_method("reptile", {"m": 3, "k": 2, "replacement": False}, steps=2),
        "seq_reptile": run_method("seq_reptile", {"inner_steps": 2, "eta": 0.1}, steps=3),
    }
    return trajs, analyse(trajs)


def test_write_toy2d_writes_figures_and_summary(tmp_path):
    trajs, res = small_run()
    sweep = [
        {
            "lr": 0.01,
            "K": 2,
            "claim2": False,
            "claim3": True,
            "reptile": res["methods"]["reptile"],
            "seq_reptile": res["methods"]["seq_reptile"],
        }
    ]
    out = plots.write_toy2d(tmp_path / "toy", trajs, res, sweep, grid_n=15)
    for png in ("trajectories.png", "cosine.png"):
        assert (out / png).read_bytes()[:8] == PNG
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["analysis"]["claims"]) == {
        "1_baselines_in_mtl_minima",
        "2_reptile_avoids_minima_low_cosine",
        "3_seq_reptile_tradeoff_high_cosine",
    }
    assert summary["analysis"]["radius"] == 1.0 and len(summary["sweep"]) == 1
    rows = (out / "trajectories.csv").read_text().splitlines()
    assert len(rows) == 1 + 5 + 3 + 4
    assert rows[1].startswith("mtl,0,20.0,5.0,")
    assert "| claim | holds |" in (out / "claims.md").read_text()
    sweep_rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [(r["K"], r["method"]) for r in sweep_rows] == [("2", "reptile"), ("2", "seq_reptile")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]


def test_write_toy2d_leaves_nothing_when_it_fails(tmp_path, monkeypatch):
    trajs, res = small_run()

    def boom(*a, **k):
        raise RuntimeError("injected")

    monkeypatch.setattr(plots, "cosine_png", boom)  # after trajectories.png was written
    with pytest.raises(RuntimeError, match="injected"):
        plots.write_toy2d(tmp_path / "toy", trajs, res, grid_n=15)
    assert list(tmp_path.iterdir()) == []
    # an existing output stays as it was
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        plots.write_toy2d(tmp_path / "toy", trajs, res, grid_n=15)
    assert [p.name for p in (tmp_path / "toy").iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["toy"]


def test_grids_are_the_pointwise_functions():
    """The images' vectorised surfaces equal sum_loss / gradient_cosine point by point, on a
    grid through the minima themselves (a zero gradient leaves its pairs out, as the scalar)."""
    xs, ys = plots.grid(21, (-5.0, 15.0, -5.0, 15.0))  # step 1: every x_i is a grid point
    assert any(np.isclose(xs, 10.0).ravel() & np.isclose(ys, 0.0).ravel())
    loss = np.vectorize(lambda a, b: sum_loss((a, b)))(xs, ys)
    cos = np.vectorize(lambda a, b: gradient_cosine((a, b)))(xs, ys)
    assert sum_loss_grid(xs, ys) == pytest.approx(loss, rel=1e-12)
    assert np.allclose(gradient_cosine_grid(xs, ys), cos, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_the_memo_runner_computes_each_run_once():
    run = memo_runner()
    a = run("reptile", None, 3, 0.01, 0)
    assert run("reptile", dict(DEFAULT_OPTIONS["reptile"]), 3, 0.01, 0) is a  # the same params
    assert run("reptile", {**DEFAULT_OPTIONS["reptile"], "k": 2}, 3, 0.01, 0) is not a
    assert run("reptile", None, 3, 0.01, 0, "adam") is not a
    assert np.array_equal(a.points, run_method("reptile", None, 3, 0.01, 0).points)
    assert (
        sweep_grid({"sweep": None}) == sweep_grid({"sweep": {"lrs": [0.1], "ks": []}}) == ([], [])
    )
    assert sweep_grid({"sweep": {"lrs": [0.1], "ks": [2, 3]}}) == ([0.1], [2, 3])


#: a small study: few steps, a 2 x 1 sweep whose first cell is the main runs' lr with K = 2
SMALL = {
    "steps": 4,
    "lr": 0.01,
    "seed": 1,
    "optimizer": "sgd",
    "radius": 1.0,
    "sweep": {"lrs": [0.01, 0.02], "ks": [2]},
}
CLAIMS = {
    "1_baselines_in_mtl_minima",
    "2_reptile_avoids_minima_low_cosine",
    "3_seq_reptile_tradeoff_high_cosine",
}


def run_cli(tmp_path, settings, out):
    overlay = tmp_path / "toy.yaml"
    overlay.write_text(yaml.safe_dump({"toy2d": settings}))
    argv = ["toy2d", "--params", str(REPO / "params.yaml"), "--params", str(overlay)]
    return cli.main([*argv, "--out", str(out)])


def test_cli_step_writes_the_study(tmp_path, capsys, caplog):
    out = tmp_path / "results" / "toy2d"
    with caplog.at_level(logging.INFO, logger="pipeline.experiments.toy2d_study"):
        assert run_cli(tmp_path, SMALL, out) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["claims"]) == CLAIMS and printed["out"] == str(out)
    assert [(c["lr"], c["K"]) for c in printed["sweep"]] == [(0.01, 2), (0.02, 2)]
    names = {
        "trajectories.png",
        "cosine.png",
        "trajectories.csv",
        "sweep.csv",
        "summary.json",
        "claims.md",
    }
    assert {p.name for p in out.iterdir()} == names
    assert [p.name for p in out.parent.iterdir()] == ["toy2d"]  # no temporary left beside it
    for png in ("trajectories.png", "cosine.png"):
        data = (out / png).read_bytes()
        assert data[:8] == PNG and len(data) > 1000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"] == SMALL
    claims = summary["analysis"]["claims"]
    assert set(claims) == CLAIMS
    for name, claim in claims.items():
        assert isinstance(claim["holds"], bool) and claim["settings"], name
        assert printed["claims"][name] == claim["holds"]
    assert claims["2_reptile_avoids_minima_low_cosine"]["settings"]["steps"] == 4
    assert claims["1_baselines_in_mtl_minima"]["settings"]["mtl"]["lr"] == 0.01
    assert len(summary["sweep"]) == 2 and summary["analysis"]["radius"] == 1.0
    # one row per method and point: step 0 (φ0) and one per step
    with (out / "trajectories.csv").open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == plots.TRAJECTORY_COLUMNS
        rows = list(reader)
    assert len(rows) == len(METHODS) * (SMALL["steps"] + 1)
    for m in METHODS:
        assert [int(r["step"]) for r in rows if r["method"] == m] == list(range(5))
    assert {(r["phi1"], r["phi2"]) for r in rows if r["step"] == "0"} == {("20.0", "5.0")}
    with (out / "sweep.csv").open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == plots.SWEEP_COLUMNS
        cells = [(r["lr"], r["K"], r["method"]) for r in reader]
    assert cells == [(lr, "2", m) for lr in ("0.01", "0.02") for m in ("reptile", "seq_reptile")]
    md = (out / "claims.md").read_text()
    assert "Settings: steps 4, lr 0.01, seed 1, optimizer" in md and "| claim | holds |" in md
    # the verdicts are logged, one line per claim and per sweep cell
    logged = [r.getMessage() for r in caplog.records]
    for name in CLAIMS:
        assert any(line.startswith(f"claim {name}: ") for line in logged), name
    assert sum(line.startswith("sweep lr=") for line in logged) == 2
    # the DVC plots read these files and columns
    for entry in TOY2D_PLOTS:
        if isinstance(entry, str):
            assert entry.split("/")[:2] == ["results", "toy2d"]
            assert (out / entry.rsplit("/", 1)[1]).exists()
            continue
        ((name, spec),) = entry.items()
        ys = spec["y"] if isinstance(spec["y"], dict) else {name: spec["y"]}
        for path, field in ys.items():
            with (out / path.rsplit("/", 1)[1]).open() as f:
                header = next(csv.reader(f))
            assert {spec["x"], field, "method"} <= set(header), (name, path)


def test_no_sweep_and_rerun_replace_the_output(tmp_path, capsys):
    out = tmp_path / "toy2d"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    assert run_cli(tmp_path, {**SMALL, "steps": 2, "sweep": None}, out) == 0
    assert json.loads(capsys.readouterr().out)["sweep"] == []
    assert not (out / "stale.txt").exists()  # replaced whole
    assert (out / "sweep.csv").read_text().splitlines() == [",".join(plots.SWEEP_COLUMNS)]
    assert json.loads((out / "summary.json").read_text())["sweep"] == []


@pytest.fixture()
def cfg():
    return load_params([REPO / "params.yaml"])


def test_toy2d_null_validates_and_switches_the_step_off(cfg, tmp_path, capsys):
    assert cfg["toy2d"] is not None  # on by default
    for off in (None, "absent"):
        c = copy.deepcopy(cfg)
        if off is None:
            c["toy2d"] = None
        else:
            del c["toy2d"]
        validate(c)
    for sweep in (None, {"lrs": [], "ks": []}, {"lrs": [0.1], "ks": []}):
        validate({**cfg, "toy2d": {**cfg["toy2d"], "sweep": sweep}})
    assert run_cli(tmp_path, None, tmp_path / "out") == 2
    assert "toy2d is null" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"bogus": 1}, "toy2d.bogus: unknown key"),
        ({"step": 10}, "toy2d.step: unknown key (did you mean 'steps'?"),
        ({"sweep": {"lrs": [0.1], "ks": [2], "k": 3}}, "toy2d.sweep.k: unknown key"),
        ({"steps": 0}, "toy2d.steps: expected integer >= 1, got 0"),
        ({"lr": 0}, "toy2d.lr: expected number > 0, got 0"),
        ({"optimizer": "rmsprop"}, "toy2d.optimizer: expected one of sgd, adam"),
        ({"sweep": {"lrs": [0.1], "ks": [0]}}, "toy2d.sweep.ks.0: expected integer >= 1"),
        ({"sweep": {"lrs": [0.1]}}, "toy2d.sweep: 'ks' is a required property"),
    ],
)
def test_bad_toy2d_settings_name_the_key(cfg, change, message):
    bad = {**cfg, "toy2d": {**cfg["toy2d"], **change}}
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        validate(bad)
    with pytest.raises(ConfigError, match="toy2d: 'seed' is a required property"):
        validate({**cfg, "toy2d": {k: v for k, v in cfg["toy2d"].items() if k != "seed"}})


@pytest.mark.parametrize("preset", ["tarunesh2021", "metaxl", "xla_maml", "xmetra_ada"])
def test_other_papers_presets_switch_the_study_off(preset):
    assert load_params([REPO / "params.yaml", REPO / "configs" / f"{preset}.yaml"])["toy2d"] is None
