"""The small trainer interface every method implements.

The trainer owns the loop, evaluation, model selection and checkpoints; a method owns one
"step" (an optimizer step for STL/MTL, a meta-step for Reptile-style methods) and whatever state
it carries between steps (samplers, meta-parameters), exposed through state_dict for resume.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from pipeline.engine import TrainContext


class Method(ABC):
    """One training method. Subclasses set `name` and implement `step`."""

    name: str = ""
    #: how the method uses several processes (torchrun, pipeline/runtime/distributed.py):
    #: `data` — every rank takes a shard of each batch and gradients are averaged before the
    #: step (the engine's `mean_loss_step`/`outer_step`); `trajectories` — the method spreads
    #: its own independent work over the ranks (parallel Reptile); None — one process only (the
    #: trainer refuses a launch with several)
    parallelism: str | None = None

    def __init__(self, ctx: TrainContext, params: dict[str, Any]) -> None:
        self.ctx = ctx
        self.params = params

    @classmethod
    def inner_steps_per_step(cls, params: dict[str, Any]) -> int:
        """Optimizer steps taken by one `step` (sizes the learning-rate schedule)."""
        return 1

    @classmethod
    def total_steps(cls, params: dict[str, Any], steps: int) -> int:
        """The run's (meta-)steps when it gives `steps` (X-METRA-ADA adds its meta-adapt
        stage's)."""
        return steps

    @classmethod
    def batches_per_step(cls, params: dict[str, Any], n_tlps: int = 1) -> int:
        """Training batches one `step` consumes from a run of `n_tlps` TLPs (sizes `epochs`);
        one per optimizer step unless a step reads several (MTL with `tasks_per_step`, MAML's
        support and query batches)."""
        return cls.inner_steps_per_step(params)

    @classmethod
    def steps_per_epoch(cls, params: dict[str, Any], batches: dict[Any, int]) -> float:
        """(Meta-)steps of one pass over the training data, given each TLP's batches per epoch
        (sizes `epochs`): every batch once, `batches_per_step` of them per step."""
        return sum(batches.values()) / cls.batches_per_step(params, len(batches))

    @classmethod
    def prepare_model(cls, model: Any, params: dict[str, Any]) -> None:
        """Add what the method trains besides the shared model (MetaXL's RTN), before the
        optimizer is built; nothing by default."""
        del model, params

    @abstractmethod
    def step(self) -> dict[str, Any]:
        """Advance by one step; return logs (at least `loss`, and the TLPs used)."""

    def options(self) -> dict[str, Any]:
        """The named choices this method made (recorded with every result)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state
