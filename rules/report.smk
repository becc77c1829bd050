# Report: DVC metrics, Markdown tables, learning-curve plot data and the representation tables;
# PNG figures of the plot data and results/report.html, one self-contained page of it all.


rule report:
    output:
        metrics="results/metrics.json",
        tables=directory("results/tables"),
        plots=directory("results/plots"),
        figures=directory("results/figures"),
        page="results/report.html",
    input:
        scores=expand("results/scores/{run}.json", run=RUNS),
        runs=expand("models/runs/{run}", run=RUNS),
        # source/target representations of the paired runs (rules/analysis.smk; none: empty)
        representations=expand("results/representations/{run}", run=REPRESENT_RUNS),
        # MLM loss and l2 distance of the `forgetting` runs (rules/analysis.smk; none: empty)
        forgetting=expand("results/forgetting/{run}.json", run=FORGETTING_RUNS),
        code=code_stamp("report", "report"),
    params:
        presets=PARAMS,
        report=canon(config["report"]),
    resources:
        **job_resources("report"),
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/report.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline report {params.presets} --scores {input.scores:q} --runs {input.runs:q} "
        "--representations {input.representations:q} --forgetting {input.forgetting:q} "
        "--out results > {log:q} 2>&1"
