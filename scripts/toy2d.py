"""Lee et al. (2022) §4.1 synthetic experiment through the pipeline's methods: the default run
of every method, the Reptile / Sequential Reptile sweep over (inner lr, K), figures and verdicts.

    python scripts/toy2d.py OUT_DIR [--steps 1000] [--lr 0.01] [--seed 0] [--optimizer sgd]
"""

from __future__ import annotations

import argparse
import json

from pipeline.experiments.toy2d import RADIUS, analyse, run_all, sweep
from pipeline.experiments.toy2d_plots import write_toy2d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    ap.add_argument("--radius", type=float, default=RADIUS)
    ap.add_argument("--sweep-lrs", type=float, nargs="+", default=[0.005, 0.01, 0.02])
    ap.add_argument("--sweep-ks", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--no-sweep", action="store_true")
    a = ap.parse_args()
    trajs = run_all(steps=a.steps, lr=a.lr, seed=a.seed, optimizer=a.optimizer)
    res = analyse(trajs, a.radius)
    cells = (
        [] if a.no_sweep else sweep(a.sweep_lrs, a.sweep_ks, a.steps, a.seed, a.optimizer, a.radius)
    )
    write_toy2d(a.out_dir, trajs, res, cells)
    for name, m in res["methods"].items():
        print(
            f"{name:12s} end=({m['end'][0]:7.3f}, {m['end'][1]:7.3f}) nearest={m['nearest_minimum']}"
            f" d={m['distance_to_nearest']:.3f} in_min={m['in_mtl_minimum']}"
            f" sumL={m['sum_loss_end']:.2f} cos_end={m['cosine_end']:.3f}"
            f" cos_mean={m['cosine_mean']:.3f}"
        )
    print(json.dumps({k: v["holds"] for k, v in res["claims"].items()}, indent=1))
    for c in cells:
        r, s = c["reptile"], c["seq_reptile"]
        print(
            f"lr={c['lr']} K={c['K']}: reptile end=({r['end'][0]:.2f},{r['end'][1]:.2f})"
            f" cos={r['cosine_end']:.3f} in_min={r['in_mtl_minimum']} | seq end="
            f"({s['end'][0]:.2f},{s['end'][1]:.2f}) cos={s['cosine_end']:.3f}"
            f" in_min={s['in_mtl_minimum']} | claim2={c['claim2']} claim3={c['claim3']}"
        )


if __name__ == "__main__":
    main()
