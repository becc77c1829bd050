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
        code=code_stamp("represent", *TRAIN_CODE, "report/representations.py"),
    params:
        presets=PARAMS,
        run=lambda w: canon(RUNS[w.run].to_json()),
        features=canon(config["features"]),
        data=canon(config["data"]),
    resources:
        **job_resources("represent"),
    log:
        "logs/represent/{run}.log",
    benchmark:
        "benchmarks/represent/{run}.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline represent {params.presets} --run {wildcards.run:q} "
        "--model {input.model:q} --out {output:q} > {log:q} 2>&1"


# `forgetting` (Lee et al. 2022 §4.2, Figure 5): per run of an experiment with `forgetting:
# true` that the report reads, the masked-LM loss of its trained encoder (under the pretrained
# MLM head) on held-out text of the languages it trained on (seen) and of the others (unseen),
# and its l2 distance from the pretrained encoder; `forgetting_pretrained`: the pretrained
# model's losses ("before"), computed once. The report tabulates and plots them over seeds
# (results/tables/forgetting.md, results/plots/forgetting/).

from pipeline.config import forgetting_settings

FORGETTING_RUNS = [rid for rid, r in RUNS.items() if r.params.get("forgetting") and r.report]
FORGETTING = forgetting_settings(config)
FORGETTING_CODE = code_stamp("forgetting", "experiments/__init__.py", "experiments/forgetting.py")


DVC_PARAMS["forgetting_pretrained"] = ["forgetting", "encoder"]
DVC_PARAMS["forgetting"] = [
    "tlps", "zero_shot_langs", "training", "experiments.${item.experiment}", "forgetting",
    "encoder",
]
DVC_ITEM_FIELDS["forgetting"] = _experiment


rule forgetting_pretrained:
    output:
        "results/forgetting/pretrained.json",
    input:
        text=heldout_text_input(FORGETTING["text"]),
        encoder=[ENCODER] if LOCAL_ENCODER else [],
        code=FORGETTING_CODE,
    params:
        presets=PARAMS,
        forgetting=canon(FORGETTING),
        encoder=canon(config["encoder"]),
    resources:
        **job_resources("forgetting_pretrained"),
    log:
        "logs/forgetting/pretrained.log",
    benchmark:
        "benchmarks/forgetting/pretrained.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline forgetting-pretrained {params.presets} --out {output:q} > {log:q} 2>&1"


rule forgetting:
    output:
        "results/forgetting/{run}.json",
    wildcard_constraints:
        run=r"[a-z][a-z0-9_]*(?:\.[A-Za-z0-9_-]+)+",  # a run id (never `pretrained`)
    input:
        model="models/runs/{run}",
        pretrained="results/forgetting/pretrained.json",
        text=heldout_text_input(FORGETTING["text"]),
        encoder=[ENCODER] if LOCAL_ENCODER else [],
        code=FORGETTING_CODE,
    params:
        presets=PARAMS,
        run=lambda w: canon(RUNS[w.run].to_json()),
        forgetting=canon(FORGETTING),
        encoder=canon(config["encoder"]),
    resources:
        **job_resources("forgetting"),
    log:
        "logs/forgetting/{run}.log",
    benchmark:
        "benchmarks/forgetting/{run}.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline forgetting {params.presets} --run {wildcards.run:q} "
        "--model {input.model:q} --pretrained {input.pretrained:q} --out {output:q} > {log:q} 2>&1"
