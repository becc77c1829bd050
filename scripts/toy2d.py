"""Lee et al. (2022) §4.1 synthetic experiment outside the DAG: the settings of params.yaml's
`toy2d:` (rule `toy2d`, `python -m pipeline toy2d`), any of them overridden on the command line,
through the same step (pipeline/experiments/toy2d_study.run_study). E.g. the study at its first
size (~3 min on 2 cores):

    python scripts/toy2d.py OUT_DIR --steps 1000 --sweep-lrs 0.005 0.01 0.02 --sweep-ks 5 10 20
    python scripts/toy2d.py OUT_DIR [--params params.yaml ...] [--steps N] [--lr LR] [--seed S]
        [--optimizer sgd|adam] [--radius R] [--sweep-lrs LR ...] [--sweep-ks K ...] [--no-sweep]
"""

from __future__ import annotations

import argparse
import json
import logging

from pipeline.config import load_params, validate
from pipeline.errors import ConfigError
from pipeline.experiments.toy2d_study import run_study


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--params", action="append", default=None, metavar="FILE")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--optimizer", choices=["sgd", "adam"])
    ap.add_argument("--radius", type=float)
    ap.add_argument("--sweep-lrs", type=float, nargs="+")
    ap.add_argument("--sweep-ks", type=int, nargs="+")
    ap.add_argument("--no-sweep", action="store_true")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = a.params or ["params.yaml"]
    cfg = load_params(paths)
    settings = cfg.get("toy2d")
    if settings is None:
        ap.error(f"{' + '.join(paths)}: toy2d is null; give params with a toy2d section")
    settings = {**settings, "sweep": dict(settings["sweep"] or {"lrs": [], "ks": []})}
    for key in ("steps", "lr", "seed", "optimizer", "radius"):
        if getattr(a, key) is not None:
            settings[key] = getattr(a, key)
    if a.sweep_lrs is not None:
        settings["sweep"]["lrs"] = a.sweep_lrs
    if a.sweep_ks is not None:
        settings["sweep"]["ks"] = a.sweep_ks
    if a.no_sweep:
        settings["sweep"] = None
    try:
        validate({**cfg, "toy2d": settings}, where="the command line")
    except ConfigError as e:
        ap.error(str(e))
    print(json.dumps(run_study(settings, a.out_dir), indent=1))


if __name__ == "__main__":
    main()
