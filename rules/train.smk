# Training: one run per experiment (per TLP for STL). Checkpoints live outside the declared
# output (checkpoints/<run>/), so a killed job resumes where it stopped when rerun.

TRAIN_CODE = [
    "trainer.py", "engine.py", "features.py", "evaluation.py", "checkpoint.py", "optim.py",
    "sampling.py", "metrics.py", "scoring.py", "methods", "models", "tasks", "data/store.py",
]


rule train:
    output:
        directory("models/runs/{run}"),
    input:
        prepared=expand("data/prepared/{dataset}", dataset=DATASETS),
        encoder=[ENCODER] if LOCAL_ENCODER else [],
        code=code(*TRAIN_CODE),
    params:
        run=lambda w: RUNS[w.run].to_json(),
        features=config["features"],
        encoder=config["encoder"]["name"],
    log:
        "logs/train/{run}.log",
    benchmark:
        "benchmarks/train/{run}.tsv"
    shell:
        "python -m pipeline train {PARAMS} --run {wildcards.run} --out {output} "
        "--checkpoints checkpoints/{wildcards.run} > {log} 2>&1"
