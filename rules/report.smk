# Report: DVC metrics, Markdown tables and learning-curve plot data.


rule report:
    output:
        metrics="results/metrics.json",
        tables=directory("results/tables"),
        plots=directory("results/plots"),
    input:
        scores=expand("results/scores/{run}.json", run=RUNS),
        runs=expand("models/runs/{run}", run=RUNS),
        code=code("report"),
    params:
        presets=PARAMS,
        report=canon(config["report"]),
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/report.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline report {params.presets} --scores {input.scores} --runs {input.runs} "
        "--out results > {log} 2>&1"
