"""Single-task learning: ordinary fine-tuning on one TLP."""

from __future__ import annotations

from typing import Any

from pipeline.methods.base import Method


class STL(Method):
    name = "stl"
    parallelism = "data"  # a shard of every batch per rank, gradients averaged

    def step(self) -> dict[str, Any]:
        (tlp,) = self.ctx.tlps
        return {"loss": self.ctx.inner_step(tlp), "tlps": [str(tlp)]}
