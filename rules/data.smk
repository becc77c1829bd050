# Raw data (generated or downloaded) and normalized records.

DATA_CODE = ["data/__init__.py", "data/store.py", "data/prepare.py", "data/readers"]


ruleorder: generate > download


rule generate:
    output:
        directory("data/raw/synthetic"),
    input:
        code=code_stamp("generate", "data/synthetic.py", "data/writers.py"),
    params:
        presets=PARAMS,
        benchmark=canon(config["benchmark"]),
    resources:
        **job_resources("generate"),
    log:
        "logs/generate.log",
    benchmark:
        "benchmarks/generate.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline generate {params.presets} --out {output:q} > {log:q} 2>&1"


rule download:
    output:
        directory("data/raw/{dataset}"),
    input:
        code=code_stamp("download", "data/download.py", "data/sources.py", "data/sources.yaml"),
    resources:
        **job_resources("download"),
    log:
        "logs/download/{dataset}.log",
    benchmark:
        "benchmarks/download/{dataset}.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline download --dataset {wildcards.dataset:q} --out {output:q} > {log:q} 2>&1"


rule prepare:
    output:
        directory("data/prepared/{dataset}"),
    input:
        raw="data/raw/{dataset}",
        code=code_stamp("prepare", *DATA_CODE),
    params:
        layout=lambda w: layout(config, w.dataset),
        options=lambda w: " ".join(
            (["--drop-untranslated"] if config["data"].get("drop_untranslated") else [])
            + (
                ["--heldout-dev", shlex.quote(str(config["data"]["heldout_dev"][w.dataset]))]
                if w.dataset in config["data"].get("heldout_dev", {})
                else []
            )
        ),
    resources:
        **job_resources("prepare"),
    log:
        "logs/prepare/{dataset}.log",
    benchmark:
        "benchmarks/prepare/{dataset}.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline prepare --dataset {wildcards.dataset:q} --raw {input.raw:q} "
        "--out {output:q} --layout {params.layout:q} {params.options} > {log:q} 2>&1"


# Every split the runs need, found in its dataset (or one line naming what is missing) before any
# training starts; data/plan.json records where each split comes from.
rule plan:
    output:
        "data/plan.json",
    input:
        prepared=expand("data/prepared/{dataset}", dataset=DATASETS),
        code=code_stamp("plan", "data/plan.py", "data/store.py"),
    params:
        presets=PARAMS,
        needs=sorted(f"{t}:{sp}" for t, sps in needed_splits(RUNS.values()).items() for sp in sps),
        sources=canon(config["data"].get("sources", {})),
        # experiments' own `sources` (each set of them is resolved on its own)
        experiment_sources=canon(
            {n: e["sources"] for n, e in config["experiments"].items() if e and e.get("sources")}
        ),
    resources:
        **job_resources("plan"),
    log:
        "logs/plan.log",
    benchmark:
        "benchmarks/plan.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline plan {params.presets} --out {output:q} > {log:q} 2>&1"
