# Training: one run per experiment (per TLP for STL, per group for each-task/each-lang, and one
# fine-tuning run per TLP after a meta run). Checkpoints live outside the declared output
# (checkpoints/<run>/), so a killed job resumes where it stopped when rerun.


TRAIN_CODE = [
    "trainer.py", "finetune.py", "multidds.py", "analysis.py", "engine.py", "features.py", "evaluation.py", "checkpoint.py", "optim.py",
    "sampling.py", "metrics.py", "scoring.py", "methods", "models", "tasks", "data/store.py",
]


rule train:
    output:
        directory("models/runs/{run}"),
    wildcard_constraints:
        run=r"(?!.*\.ft\.)[a-z][a-z0-9_]*(\.[A-Za-z0-9_-]+)*",
    input:
        prepared=expand("data/prepared/{dataset}", dataset=DATASETS),
        encoder=[ENCODER] if LOCAL_ENCODER else [],
        code=code(*TRAIN_CODE),
    params:
        presets=PARAMS,
        run=lambda w: RUNS[w.run].to_json(),
        features=config["features"],
        encoder=config["encoder"]["name"],
    log:
        "logs/train/{run}.log",
    benchmark:
        "benchmarks/train/{run}.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline train {params.presets} --run {wildcards.run} --out {output} "
        "--checkpoints checkpoints/{wildcards.run} > {log} 2>&1"


rule finetune:
    output:
        directory("models/runs/{meta}.ft.{tlp}"),
    wildcard_constraints:
        meta=r"[a-z][a-z0-9_]*(\.[A-Za-z0-9_-]+)?",
        tlp=r"[a-z]+\.[A-Za-z0-9_-]+",
    input:
        init="models/runs/{meta}",
        prepared=expand("data/prepared/{dataset}", dataset=DATASETS),
        code=code(*TRAIN_CODE),
    params:
        presets=PARAMS,
        run=lambda w: RUNS[f"{w.meta}.ft.{w.tlp}"].to_json(),
        features=config["features"],
    log:
        "logs/train/{meta}.ft.{tlp}.log",
    benchmark:
        "benchmarks/finetune/{meta}.ft.{tlp}.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline train {params.presets} --run {wildcards.meta}.ft.{wildcards.tlp} --out {output} "
        "--checkpoints checkpoints/{wildcards.meta}.ft.{wildcards.tlp} > {log} 2>&1"
