# Training: one run per experiment and seed (per TLP for STL, per group for each-task/each-lang,
# and fine-tuning runs after a meta run). A training job also predicts dev and test with its
# dev-selected model(s) and scores them (test is scored here, once, with the per-example
# statistics of the report's intervals): the model and the gold are already loaded, so this
# costs no second start-up. Checkpoints live outside the declared outputs (checkpoints/<run>/),
# so a killed job resumes where it stopped when rerun.


TRAIN_CODE = [
    "trainer.py", "finetune.py", "multidds.py", "analysis.py", "engine.py", "features.py",
    "evaluation.py", "checkpoint.py", "optim.py", "sampling.py", "metrics.py", "scoring.py",
    "methods", "models", "tasks", "data/store.py", "data/pseudo_tasks.py", "runtime/signals.py",
    "runtime/provenance.py", "runtime/distributed.py",
]


# X-METRA(-ADA) pseudo-tasks of one run (record ids of each task's support and query; QA
# supports ranked by sentence-embedding similarity), written once and read by its train job.
rule pseudo_tasks:
    output:
        "data/tasks/{run}.json",
    input:
        prepared=expand("data/prepared/{dataset}", dataset=DATASETS),
        plan="data/plan.json",
        encoder=[ENCODER] if LOCAL_ENCODER else [],
        code=code_stamp(
            "pseudo_tasks", "methods/xmetra_tasks.py", "data/pseudo_tasks.py", "models/embed.py",
            "data/store.py",
        ),
    params:
        presets=PARAMS,
        # what the tasks depend on (not the learning rates: those do not rebuild them)
        tasks=lambda w: canon(task_inputs(RUNS[w.run])),
        encoder=canon(config["encoder"]),
        features=canon(config["features"]),
    resources:
        **job_resources("pseudo_tasks"),
    log:
        "logs/pseudo_tasks/{run}.log",
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline pseudo-tasks {params.presets} --run {wildcards.run:q} --out {output:q} "
        "> {log:q} 2>&1"


# Lee et al. (2022) §4.3: one TLP's training examples as k GMM clusters of their pretrained-
# encoder embeddings (PCA, then a Gaussian mixture), the tasks of the `clusters` runs; one file
# per (TLP, source datasets, k, seed), shared by every method and seed that clusters it so.
rule clusters:
    output:
        "data/clusters/{task}.{lang}.{src}.k{k}.s{seed}.json",
    wildcard_constraints:
        task=r"[a-z]+",
        lang=r"[A-Za-z0-9_-]+",
        src=r"[a-z][a-z0-9_+-]*",
        k=r"\d+",
        seed=r"\d+",
    input:
        prepared=expand("data/prepared/{dataset}", dataset=DATASETS),
        plan="data/plan.json",
        encoder=[ENCODER] if LOCAL_ENCODER else [],
        code=code_stamp("clusters", "data/clusters.py", "models/embed.py", "data/store.py"),
    params:
        presets=PARAMS,
        clustering=canon(config.get("clustering", {})),
        encoder=canon(config["encoder"]),
    resources:
        **job_resources("clusters"),
    log:
        "logs/clusters/{task}.{lang}.{src}.k{k}.s{seed}.log",
    benchmark:
        "benchmarks/clusters/{task}.{lang}.{src}.k{k}.s{seed}.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline clusters {params.presets} --tlp {wildcards.task:q}/{wildcards.lang:q} "
        "--datasets {wildcards.src:q} --k {wildcards.k:q} --seed {wildcards.seed:q} --out {output:q} "
        "> {log:q} 2>&1"


rule train:
    output:
        model=directory("models/runs/{run}"),
        predictions=directory("results/predictions/{run}"),
        scores="results/scores/{run}.json",
    wildcard_constraints:
        run=r"(?!.*\.ft\.)[a-z][a-z0-9_]*(?:\.[A-Za-z0-9_-]+)*",
    input:
        prepared=expand("data/prepared/{dataset}", dataset=DATASETS),
        plan="data/plan.json",
        encoder=[ENCODER] if LOCAL_ENCODER else [],
        # `init`: the model this run starts from (e.g. the shared English fine-tuning stage)
        init=lambda w: [f"models/runs/{RUNS[w.run].init}"] if RUNS[w.run].init else [],
        # X-METRA(-ADA): the run's pseudo-tasks
        tasks=lambda w: [f"data/tasks/{w.run}.json"] if uses_tasks(w.run) else [],
        # `clusters`: the GMM clusters its training TLP is split into (rule `clusters`)
        clusters=lambda w: (
            [f"{CLUSTERS_DIR}/{run_cluster(w.run)}.json"] if run_cluster(w.run) else []
        ),
        code=code_stamp("train", *TRAIN_CODE),
    params:
        presets=PARAMS,
        run=lambda w: canon(RUNS[w.run].to_json()),
        features=canon(config["features"]),
        data=canon(config["data"]),
        encoder=canon(config["encoder"]),
    resources:
        **job_resources("train", run=lambda w: RUNS[w.run]),
    log:
        "logs/train/{run}.log",
    benchmark:
        "benchmarks/train/{run}.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline train {params.presets} --run {wildcards.run:q} --out {output.model:q} "
        "--predictions {output.predictions:q} --scores {output.scores:q} "
        "--checkpoints checkpoints/{wildcards.run:q} > {log:q} 2>&1"


rule finetune:
    output:
        model=directory("models/runs/{meta}.ft.{part}"),
        predictions=directory("results/predictions/{meta}.ft.{part}"),
        scores="results/scores/{meta}.ft.{part}.json",
    wildcard_constraints:
        meta=r"[a-z][a-z0-9_]*(?:\.(?!ft\.)[A-Za-z0-9_-]+)*",
        part=r"all|[a-z]+\.[A-Za-z0-9_-]+",
    input:
        init="models/runs/{meta}",
        prepared=expand("data/prepared/{dataset}", dataset=DATASETS),
        plan="data/plan.json",
        code=code_stamp("train", *TRAIN_CODE),
    params:
        presets=PARAMS,
        run=lambda w: canon(RUNS[f"{w.meta}.ft.{w.part}"].to_json()),
        features=canon(config["features"]),
        data=canon(config["data"]),
    resources:
        **job_resources("finetune", run=lambda w: RUNS[f"{w.meta}.ft.{w.part}"]),
    log:
        "logs/train/{meta}.ft.{part}.log",
    benchmark:
        "benchmarks/finetune/{meta}.ft.{part}.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline train {params.presets} --run {wildcards.meta:q}.ft.{wildcards.part:q} "
        "--out {output.model:q} --predictions {output.predictions:q} --scores {output.scores:q} "
        "--checkpoints checkpoints/{wildcards.meta:q}.ft.{wildcards.part:q} > {log:q} 2>&1"
