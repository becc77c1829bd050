# Prediction with the dev-selected model, then scoring (test data is scored here, once).

EVAL_CODE = ["evaluation.py", "features.py", "models", "tasks", "data/store.py"]


rule predict:
    output:
        directory("results/predictions/{run}"),
    input:
        model="models/runs/{run}",
        prepared=expand("data/prepared/{dataset}", dataset=DATASETS),
        code=code(*EVAL_CODE),
    params:
        presets=PARAMS,
        eval_tlps=lambda w: [str(t) for t in RUNS[w.run].eval_tlps],
        features=config["features"],
    log:
        "logs/predict/{run}.log",
    benchmark:
        "benchmarks/predict/{run}.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline predict {params.presets} --run {wildcards.run} --model {input.model} "
        "--out {output} > {log} 2>&1"


rule score:
    output:
        "results/scores/{run}.json",
    input:
        predictions="results/predictions/{run}",
        prepared=expand("data/prepared/{dataset}", dataset=DATASETS),
        code=code("metrics.py", "scoring.py", "data/store.py", "features.py"),
    params:
        presets=PARAMS,
        eval_tlps=lambda w: [str(t) for t in RUNS[w.run].eval_tlps],
    log:
        "logs/score/{run}.log",
    benchmark:
        "benchmarks/score/{run}.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline score-run {params.presets} --run {wildcards.run} "
        "--predictions {input.predictions} --out {output} > {log} 2>&1"
