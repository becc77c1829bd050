"""Several processes through torch.distributed (gloo on CPU, 2 ranks spawned here).

* data-parallel MTL (two TLP batches per step, each sharded over the ranks) ends with the
  parameters of the one-process run of the same global batches, also for tagging, whose loss
  is a mean over labelled tokens that the shards hold unequally (each rank's loss is weighted
  by its share of them);
* parallel Reptile with its trajectories spread over the ranks (`optimizer_state: reset`, a
  warm-up + linear schedule, MultiDDS updating every meta-step) ends with the one-process θ and
  the same sampler probabilities on every rank;
* only rank 0 writes: rank 1's output and checkpoint folders are never created;
* with dropout, each rank draws its own masks, and a resume from a checkpoint both ranks share
  ends bit-identical to the uninterrupted run.

Classification TLPs (a per-example mean loss) and an encoder without dropout make the sharded
step the same computation as the whole-batch one, up to float rounding (hence atol 1e-6, not
bit equality: the ranks sum the gradient in a different order).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.runtime import distributed
from tests.meta_helpers import SETTINGS, make_run, trainer, weights

TLPS = ["nli/l0", "nli/l1"]
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    # 4 optimizer steps of 2 TLP batches each; one dev evaluation (the last step, rank 0 only)
    # and a checkpoint at step 2 (rank 0 only)
    "mtl": ("mtl", dict(steps=4, tasks_per_step=2, eval_every=100, checkpoint_every=2)),
    # 2 meta-steps of m = 3 trajectories (ranks: 0 and 2 | 1) of k = 2 inner steps
    "reptile": (
        "reptile",
        dict(
            steps=2,
            m=3,
            k=2,
            beta=0.5,
            optimizer_state="reset",
            eval_every=100,
            checkpoint_every=100,
            sampler="multidds",
            multidds={"update_every": 1, "lr": 0.5, "dev": "all"},
        ),
    ),
    # tagging: a mean over labelled tokens, which the two shards of a batch hold unequally
    "mtl_ner": ("mtl", dict(steps=4, tasks_per_step=2, eval_every=100, checkpoint_every=100)),
}
#: the TLPs of a case (default: TLPS)
CASE_TLPS = {"mtl_ner": ["ner/l0", "ner/l1"]}
TIMEOUT_S = 240


@pytest.fixture(scope="module")
def world_nodrop(tiny_world, tmp_path_factory) -> dict:
    """tiny_world with an encoder copy whose dropout is 0 (each rank would draw its own masks)."""
    root = tmp_path_factory.mktemp("dist")
    enc = root / "encoder"
    shutil.copytree(tiny_world["encoder"], enc)
    cfg = json.loads((enc / "config.json").read_text())
    cfg.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (enc / "config.json").write_text(json.dumps(cfg))
    return {
        "root": root,
        "prepared": tiny_world["prepared"],
        "encoder": enc,
        "encoder_dropout": tiny_world["encoder"],
    }


#: data-parallel MTL with dropout, checkpointed at step 2 into one folder both ranks share (as
#: they do in a job), then resumed from it
DROPOUT = dict(steps=4, tasks_per_step=2, eval_every=100, checkpoint_every=2, dropout=0.1)


def dropout_case(world: dict, rank: int) -> dict[str, Any]:
    """Each rank's dropout stream, and a resume from the step-2 checkpoint against the
    uninterrupted run (both with the encoder's and the heads' dropout on)."""
    drop = {**world, "encoder": world["encoder_dropout"]}
    shared = Path(world["root"]) / "shared-dropout"
    run = make_run("mtl", TLPS, **DROPOUT)
    t = trainer(drop, run, shared / "ckpt")
    after_init = torch.get_rng_state()
    t.fit(shared / "out", clear=False)  # keeps the step-2 checkpoint
    full, rng = weights(t.model), torch.get_rng_state()
    distributed.barrier()  # (rank 0 has written the checkpoint: a collective came after it)
    again = trainer(drop, run, shared / "ckpt")
    again.fit(shared / "out2")
    return {"init_rng": after_init, "full": full, "resumed": weights(again.model), "rng": rng}


def build(world: dict, case: str, ckpt: Path):
    method, over = CASES[case]
    return trainer(world, make_run(method, CASE_TLPS.get(case, TLPS), dropout=0.0, **over), ckpt)


def result(t) -> dict[str, Any]:
    sampling = getattr(t.method, "sampling", None)
    return {
        "weights": weights(t.model),
        "inner_steps": t.ctx.inner_steps_done,
        "data_parallel": t.ctx.data_parallel,
        "processes": t.method.options().get("processes", 1),
        "batches": t.ctx.batches_drawn,
        "streams": {str(k): s.state_dict() for k, s in t.ctx.streams.items()},
        "probs": None if sampling is None else [float(p) for p in sampling.sampler.probs],
    }


def _worker(rank: int, size: int, port: int, world: dict, results: str) -> None:
    """One rank: join the gloo group, run every case into rank-specific folders, save results."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(size),
        LOCAL_RANK=str(rank),
    )
    try:
        distributed.init(timeout_min=2)
        out: dict[str, Any] = {}
        for case in CASES:
            mine = Path(world["root"]) / f"rank{rank}" / case
            t = build(world, case, mine / "ckpt")
            t.fit(mine / "out")
            out[case] = result(t)
        out["dropout"] = dropout_case(world, rank)
        torch.save(out, Path(results) / f"rank{rank}.pt")
    except BaseException:
        (Path(results) / f"rank{rank}.err").write_text(traceback.format_exc())
        raise
    finally:
        distributed.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(world_nodrop, tmp_path_factory) -> dict[int, dict[str, Any]]:
    """Both ranks' results (processes spawned, every wait bounded)."""
    results = tmp_path_factory.mktemp("dist-results")
    ctx = multiprocessing.get_context("spawn")
    port = free_port()
    procs = [
        ctx.Process(target=_worker, args=(r, 2, port, world_nodrop, str(results))) for r in (0, 1)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(TIMEOUT_S)
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.kill()
        p.join(10)
    errors = "\n".join(f.read_text() for f in sorted(results.glob("*.err")))
    assert not alive, f"ranks still running after {TIMEOUT_S} s\n{errors}"
    assert all(p.exitcode == 0 for p in procs), errors
    return {r: torch.load(results / f"rank{r}.pt") for r in (0, 1)}


def close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 1e-6) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=atol, rtol=0) for k in a)


@pytest.mark.parametrize("case", list(CASES))
def test_two_ranks_equal_one_process(case, two_ranks, world_nodrop, tmp_path):
    single = build(world_nodrop, case, tmp_path / "ckpt")
    single.fit(tmp_path / "out")
    ref = result(single)
    for r in (0, 1):
        got = two_ranks[r][case]
        assert close(ref["weights"], got["weights"]), (case, r)
        # the same batches consumed, the same schedule position, on every rank
        assert got["inner_steps"] == ref["inner_steps"]
        assert got["batches"] == ref["batches"]
        assert got["streams"] == ref["streams"]
    # the two ranks really split the work: batches (MTL) or trajectories (Reptile)
    assert ref["data_parallel"] is False and ref["processes"] == 1
    if case.startswith("mtl"):
        assert two_ranks[0][case]["data_parallel"] and two_ranks[1][case]["data_parallel"]
    else:
        assert two_ranks[0][case]["processes"] == two_ranks[1][case]["processes"] == 2
    # the ranks hold the same parameters (all-reduce results are identical everywhere)
    w0, w1 = two_ranks[0][case]["weights"], two_ranks[1][case]["weights"]
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    if ref["probs"] is not None:  # MultiDDS: one sampler state on every rank
        assert two_ranks[0][case]["probs"] == two_ranks[1][case]["probs"]
        assert two_ranks[0][case]["probs"] == pytest.approx(ref["probs"], abs=1e-6)


def test_each_rank_draws_its_own_dropout_and_resumes_exactly(two_ranks):
    """Rank 1 reseeds its generator after the (identical) model build, so the ranks' masks
    differ; a resume restores each rank's own generator (rank 0 saved both), so the resumed
    run ends bit-identical to the uninterrupted one (without the per-rank states, rank 1 would
    continue from rank 0's generator and the weights would differ)."""
    d0, d1 = two_ranks[0]["dropout"], two_ranks[1]["dropout"]
    assert not torch.equal(d0["init_rng"], d1["init_rng"])
    assert not torch.equal(d0["rng"], d1["rng"])
    for d in (d0, d1):
        assert d["full"].keys() == d["resumed"].keys()
        assert all(torch.equal(d["full"][k], d["resumed"][k]) for k in d["full"])
    assert all(torch.equal(d0["full"][k], d1["full"][k]) for k in d0["full"])


def test_only_rank_zero_writes(two_ranks, world_nodrop):
    root = Path(world_nodrop["root"])
    for case in CASES:
        out = root / "rank0" / case / "out"
        assert (out / "model").is_dir() and (out / "summary.json").exists(), case
        summary = json.loads((out / "summary.json").read_text())
        assert summary["best_dev_mean"] is not None  # rank 0 evaluated dev
    assert not (root / "rank1").exists()  # no output, no checkpoint, nothing
    opts = json.loads((root / "rank0" / "reptile" / "out" / "summary.json").read_text())
    assert opts["options"]["processes"] == 2


# -- one process: the no-op path, refusals, the launch -------------------------------------------


def test_single_process_is_a_no_op():
    w = distributed.world()
    assert (w.size, w.rank, w.backend) == (1, 0, None) and distributed.is_main()
    assert distributed.init() is w  # no torchrun variables: nothing joins a group
    t = [torch.ones(3), torch.full((2,), 2.0)]
    distributed.all_reduce_mean_(t)
    distributed.all_reduce_sum_(t)
    assert torch.equal(t[0], torch.ones(3)) and torch.equal(t[1], torch.full((2,), 2.0))
    batch = {"x": torch.arange(4)}
    assert distributed.shard(batch) is batch
    assert distributed.any_rank(False) is False
    assert w.describe() == {"world_size": 1, "backend": None}


@pytest.fixture()
def fake_two(monkeypatch):
    """World size 2 as the code sees it, without a process group (for refusals only)."""
    monkeypatch.setattr(distributed, "_world", distributed.World(0, 2, 0, "gloo"))
    monkeypatch.setattr(distributed, "barrier", lambda: None)


def test_refusals_under_two_processes(fake_two, world_nodrop, tmp_path):
    from pipeline.engine import BatchStream
    from pipeline.methods import get_method
    from pipeline.trainer import check_parallelism

    streams = {"a": BatchStream(10, 3, 0)}
    run = make_run("stl", ["nli/l0"])
    with pytest.raises(ConfigError, match="equal shards"):
        check_parallelism(get_method("stl"), run, streams)
    assert check_parallelism(get_method("stl"), run, {"a": BatchStream(10, 4, 0)}) is True
    assert check_parallelism(get_method("reptile"), run, streams) is False
    with pytest.raises(ConfigError, match="one process only"):
        check_parallelism(get_method("xmaml"), make_run("xmaml", ["nli/l0"]), streams)
    from pipeline.trainer import Trainer

    with pytest.raises(ConfigError, match="optimizer_state: shared"):
        Trainer(
            make_run("reptile", TLPS, m=2, k=1, dropout=0.0),
            world_nodrop["encoder"],
            [world_nodrop["prepared"]],
            SETTINGS,
            tmp_path / "ckpt",
            torch.device("cpu"),
            cache_dir=world_nodrop["root"] / "features",
        )


def two_process_preset() -> str:
    """params.yaml's default with `training.processes: 2`: the one-process methods nulled and
    Reptile's trajectories independent (what config validation asks for)."""
    import yaml

    from pipeline.config import DISTRIBUTED_METHODS

    exps = yaml.safe_load(Path("params.yaml").read_text())["experiments"]
    over: dict[str, Any] = {}
    for name, exp in exps.items():
        if exp and exp["method"] not in DISTRIBUTED_METHODS:
            over[name] = None
        elif exp and exp["method"] == "reptile":
            over[name] = {"optimizer_state": "reset"}
    return yaml.safe_dump({"training": {"processes": 2}, "experiments": over})


def test_config_refuses_one_process_methods_under_several(tmp_path):
    """Before any job: a method without `parallelism`, and shared-state Reptile, with
    processes > 1 (the config's list is the methods' own attribute)."""
    import yaml

    from pipeline.config import DISTRIBUTED_METHODS, METHOD_PROPS, load_params
    from pipeline.methods import get_method

    assert set(DISTRIBUTED_METHODS) == {m for m in METHOD_PROPS if get_method(m).parallelism}
    ok = yaml.safe_load(two_process_preset())
    bad = tmp_path / "bad.yaml"
    for one in [n for n, e in ok["experiments"].items() if e is None][:3]:
        bad.write_text(yaml.safe_dump({**ok, "experiments": {**ok["experiments"], one: {}}}))
        with pytest.raises(ConfigError, match=f"processes: 2, but experiments.{one} uses"):
            load_params(["params.yaml", str(bad)])
    rep = next(n for n, e in ok["experiments"].items() if e)
    del ok["experiments"][rep]
    bad.write_text(yaml.safe_dump(ok))
    with pytest.raises(ConfigError, match=f"experiments.{rep}.optimizer_state: shared"):
        load_params(["params.yaml", str(bad)])
    # an experiment's own `processes:` is checked the same way, and named
    bad.write_text(yaml.safe_dump({"experiments": {one: {"processes": 2}}}))
    with pytest.raises(ConfigError, match=f"experiments.{one}.processes: 2, but experiments.{one}"):
        load_params(["params.yaml", str(bad)])
    bad.write_text(two_process_preset())
    assert load_params(["params.yaml", str(bad)])["training"]["processes"] == 2


def test_processes_above_one_relaunches_under_torchrun(monkeypatch, tmp_path):
    from pipeline import steps

    calls: list[list[str]] = []

    class Exec(Exception):
        pass

    def fake_exec(path: str, argv: list[str]) -> None:
        calls.append([path, *argv])
        raise Exec

    monkeypatch.setattr(os, "execv", fake_exec)
    preset = tmp_path / "p.yaml"
    preset.write_text(two_process_preset())
    runs = steps.runs_of(["params.yaml", str(preset)])
    run_id = runs[0].id
    with pytest.raises(Exec):
        steps.train(["params.yaml", str(preset)], run_id, "o", "c", "p", "s.json")
    (cmd,) = calls
    assert cmd[:2] == [sys.executable, sys.executable]
    assert cmd[2:8] == [
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
    ]
    assert cmd[8:] == [
        *("pipeline", "--", "train", "--params", "params.yaml", "--params", str(preset)),
        *("--run", run_id, "--out", "o", "--checkpoints", "c"),
        *("--predictions", "p", "--scores", "s.json"),
    ]
