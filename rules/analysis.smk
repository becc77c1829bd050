# Analyses of trained models. `represent` (Xia et al. 2021 §4.5, Figures 1 and 3): per run of an
# experiment with `represent: true` (jt, metaxl) that the report reads, the saved model's last-layer representations of each
# task's source and target dev splits (never test), their Hausdorff distance (1 − cos) and the
# first two principal components (summary.json, <task>.csv, <task>.png); the report tabulates
# the distances over seeds (results/tables/representations.md).

REPRESENT_RUNS = [rid for rid, r in RUNS.items() if r.params.get("represent") and r.report]

DVC_PARAMS["represent"] = [
    "tlps", "zero_shot_langs", "training", "experiments.${item.experiment}", "features", "data",
]
DVC_ITEM_FIELDS["represent"] = _experiment


rule represent:
    output:
        directory("results/representations/{run}"),
    input:
        model="models/runs/{run}",
        prepared=expand("data/prepared/{dataset}", dataset=DATASETS),
        plan="data/plan.json",
        code=code(*TRAIN_CODE, "report/representations.py"),
    params:
        presets=PARAMS,
        run=lambda w: canon(RUNS[w.run].to_json()),
        features=canon(config["features"]),
        data=canon(config["data"]),
    log:
        "logs/represent/{run}.log",
    benchmark:
        "benchmarks/represent/{run}.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline represent {params.presets} --run {wildcards.run} "
        "--model {input.model} --out {output} > {log} 2>&1"
