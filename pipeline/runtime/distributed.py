"""Several processes (GPUs) per training job through torch.distributed, launched by `torchrun`.

`torchrun --standalone --nproc_per_node N -m pipeline train …` starts N copies of the job with
RANK / WORLD_SIZE / LOCAL_RANK in their environment; `init()` sees them, joins the process group
(NCCL on CUDA, gloo on CPU) and pins each process to GPU LOCAL_RANK. Without those variables
(every `python -m pipeline` job, every test) nothing here touches torch.distributed: `world()` is
one process of rank 0, the collectives return at once and the numbers are today's, bit for bit.

Two ways a method uses several processes (its `parallelism`, pipeline/methods/base.py):

* `data` (STL, MTL, fine-tuning): every rank draws the same global batch (same streams, same
  seed), keeps its contiguous chunk of the rows (`shard`), and the gradients are averaged
  (`all_reduce_mean_`) before clipping and the optimizer step, so every rank takes the same step
  on the same parameters: the single-process step on the whole batch, to float tolerance.
* `trajectories` (parallel Reptile): rank r runs trajectories r, r + N, … of a meta-step from the
  same θ, and the outer update all-reduces the summed deltas (θ_i − θ).

Only rank 0 (`is_main()`) writes files: checkpoints, the model, history, summary, predictions,
scores, provenance, feature caches (`main_first`: rank 0 builds them, the others then read them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

#: how long a rank waits in a collective (rank 0 evaluating dev alone, a slow checkpoint) before
#: the job fails instead of hanging; minutes, PIPELINE_DIST_TIMEOUT_MIN overrides
DEFAULT_TIMEOUT_MIN = 60


@dataclass(frozen=True)
class World:
    """This process's place in the job: `size` processes, this one `rank` (GPU `local_rank`)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    def describe(self) -> dict[str, object]:
        """What provenance records (identical across reruns: no host or port)."""
        return {"world_size": self.size, "backend": self.backend}


_SINGLE = World()
_world = _SINGLE


def launched() -> bool:
    """True in a process started by torchrun (or any launcher setting WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(timeout_min: float | None = None) -> World:
    """Join the process group of a torchrun launch (once); a no-op for a single process."""
    global _world
    if _world.size > 1 or not launched():
        return _world
    import torch.distributed as dist

    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local)
    minutes = timeout_min or float(os.environ.get("PIPELINE_DIST_TIMEOUT_MIN", DEFAULT_TIMEOUT_MIN))
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(minutes=minutes))
    _world = World(rank, size, local, backend)
    return _world


def shutdown() -> None:
    """Leave the process group (end of the job); a no-op for a single process."""
    global _world
    if _world.size > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    _world = _SINGLE


def world() -> World:
    return _world


def is_main() -> bool:
    """Rank 0: the one process that writes files and logs."""
    return _world.rank == 0


def device() -> torch.device:
    """This process's device: GPU LOCAL_RANK under torchrun on CUDA, else cuda/cpu as before."""
    if torch.cuda.is_available():
        return torch.device("cuda", _world.local_rank) if _world.size > 1 else torch.device("cuda")
    return torch.device("cpu")


def barrier() -> None:
    if _world.size > 1:
        import torch.distributed as dist

        dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (writing caches), the others after it (reading them)."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def shard(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This rank's contiguous chunk of the rows of a global batch (views, no copy).

    The global batch size must be a multiple of the world size (the trainer checks it), so every
    chunk has the same size and the mean of the ranks' per-example-mean losses is the loss of the
    whole batch.
    """
    if _world.size == 1:
        return batch
    return {k: v.tensor_split(_world.size)[_world.rank] for k, v in batch.items()}


def _reduce_(tensors: Sequence[torch.Tensor], mean: bool) -> None:
    """Sum (or average) `tensors` over the ranks in place: one flat buffer per (device, dtype),
    one all_reduce each (not one collective per parameter)."""
    if _world.size == 1 or not tensors:
        return
    import torch.distributed as dist
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    for group in groups.values():
        flat = _flatten_dense_tensors(group)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        if mean:
            flat.div_(_world.size)
        torch._foreach_copy_(group, list(_unflatten_dense_tensors(flat, group)))


@torch.no_grad()
def all_reduce_mean_(tensors: Sequence[torch.Tensor]) -> None:
    """tensors ← mean over the ranks, in place (a no-op for one process)."""
    _reduce_(tensors, mean=True)


@torch.no_grad()
def all_reduce_sum_(tensors: Sequence[torch.Tensor]) -> None:
    """tensors ← sum over the ranks, in place (a no-op for one process)."""
    _reduce_(tensors, mean=False)


def any_rank(flag: bool) -> bool:
    """True on every rank when it is true on some rank (SIGTERM seen by one rank: all stop at
    the same step, so none waits forever in a collective the others left)."""
    if _world.size == 1:
        return flag
    t = torch.tensor([float(flag)], device=device() if _world.backend == "nccl" else "cpu")
    all_reduce_sum_([t])
    return bool(t.item() > 0)


def broadcast_floats(values: Sequence[float], src: int = 0) -> list[float]:
    """Rank `src`'s `values` on every rank (MultiDDS rewards: however each rank's gradients came
    out, e.g. non-deterministic GPU kernels, all ranks keep one sampler state)."""
    if _world.size == 1:
        return [float(v) for v in values]
    import torch.distributed as dist

    on = device() if _world.backend == "nccl" else torch.device("cpu")
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=on)
    dist.broadcast(t, src)
    return t.tolist()


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank (`[obj]` for one process): each rank's
    RNG state for the checkpoint rank 0 writes, so a resumed run draws what it would have."""
    if _world.size == 1:
        return [obj]
    out: list[Any] = [None] * _world.size
    torch.distributed.all_gather_object(out, obj)
    return out
