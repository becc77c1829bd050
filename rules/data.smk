# Raw data (generated or downloaded) and normalized records.

DATA_CODE = ["data/__init__.py", "data/store.py", "data/prepare.py", "data/readers"]


ruleorder: generate > download


rule generate:
    output:
        directory("data/raw/synthetic"),
    input:
        code=code("data/synthetic.py", "data/writers.py"),
    params:
        presets=PARAMS,
        benchmark=config["benchmark"],
    log:
        "logs/generate.log",
    benchmark:
        "benchmarks/generate.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline generate {params.presets} --out {output} > {log} 2>&1"


rule download:
    output:
        directory("data/raw/{dataset}"),
    input:
        code=code("data/download.py", "data/sources.py", "data/sources.yaml"),
    log:
        "logs/download/{dataset}.log",
    benchmark:
        "benchmarks/download/{dataset}.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline download --dataset {wildcards.dataset} --out {output} > {log} 2>&1"


rule prepare:
    output:
        directory("data/prepared/{dataset}"),
    input:
        raw="data/raw/{dataset}",
        code=code(*DATA_CODE),
    params:
        layout=config["data"]["layout"],
    log:
        "logs/prepare/{dataset}.log",
    benchmark:
        "benchmarks/prepare/{dataset}.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline prepare --dataset {wildcards.dataset} --raw {input.raw} "
        "--out {output} --layout {params.layout} > {log} 2>&1"
