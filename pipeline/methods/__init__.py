"""Training methods, all behind `base.Method`: a method composes inner steps and outer updates."""

from __future__ import annotations

from pipeline.methods.base import Method


def get_method(name: str) -> type[Method]:
    from pipeline.methods.gradnorm import GradNorm
    from pipeline.methods.gradvac import GradVac
    from pipeline.methods.metaxl import JointTraining, MetaXL
    from pipeline.methods.mtl import MTL
    from pipeline.methods.pcgrad import PCGrad
    from pipeline.methods.recadam import RecAdam
    from pipeline.methods.reptile import Reptile
    from pipeline.methods.seq_reptile import SequentialReptile
    from pipeline.methods.stl import STL
    from pipeline.methods.xla_maml import XLAMAML
    from pipeline.methods.xmaml import XMAML
    from pipeline.methods.xmetra import XMETRA, XMETRAADA

    registry: dict[str, type[Method]] = {
        "stl": STL,
        "mtl": MTL,
        "pcgrad": PCGrad,
        "gradvac": GradVac,
        "gradnorm": GradNorm,
        "recadam": RecAdam,
        "reptile": Reptile,
        "seq_reptile": SequentialReptile,
        "xmaml": XMAML,
        "xla_maml": XLAMAML,
        "xmetra": XMETRA,
        "xmetra_ada": XMETRAADA,
        "jt": JointTraining,
        "metaxl": MetaXL,
    }
    try:
        return registry[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}: expected one of {sorted(registry)}") from None
