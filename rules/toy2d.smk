# Lee et al. (2022) §4.1's synthetic 2-D experiment (Figure 3): every registered method (MTL,
# PCGrad, GradVac, GradNorm, RecAdam, Reptile, Sequential Reptile) on a two-parameter model
# behind the engine's TrainContext, the paper's three claims judged, Reptile and Sequential
# Reptile swept over (inner lr, K), with the settings of params.yaml's `toy2d:` (null: no job).
# results/toy2d/: trajectories.csv and sweep.csv (DVC plots), trajectories.png and cosine.png,
# summary.json (verdicts with their settings), claims.md. Reads no data: it runs from the start.

TOY2D = config.get("toy2d")
# what `rule all` requests (nothing when the study is switched off)
TOY2D_TARGETS = ["results/toy2d"] if TOY2D is not None else []

DVC_PARAMS["toy2d"] = ["toy2d"]


rule toy2d:
    output:
        directory("results/toy2d"),
    input:
        code=code_stamp(
            "toy2d",
            "experiments/__init__.py", "experiments/toy2d.py", "experiments/toy2d_plots.py",
            "experiments/toy2d_study.py", "methods", "engine.py", "optim.py", "sampling.py",
            "multidds.py", "analysis.py", "features.py", "metrics.py", "models/__init__.py",
            "models/rtn.py", "tasks", "data/__init__.py", "data/store.py", "data/pseudo_tasks.py",
        ),
    params:
        presets=PARAMS,
        toy2d=canon(TOY2D),
    resources:
        **job_resources("toy2d"),
    log:
        "logs/toy2d.log",
    benchmark:
        "benchmarks/toy2d.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline toy2d {params.presets} --out {output:q} > {log:q} 2>&1"
