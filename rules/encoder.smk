# The tiny default encoder: tokenizer + masked-LM pretraining (skipped when encoder.name is set).


rule tokenizer:
    output:
        directory("models/tokenizer"),
    input:
        corpus=CORPUS,
        plan="data/plan.json",
        code=code_stamp("tokenizer", "corpus.py", "models/encoder.py", "data/store.py"),
    params:
        presets=PARAMS,
        tokenizer=canon(config["encoder"]["tokenizer"]),
        corpus=config["encoder"]["pretrain"]["corpus"],
        datasets=DATASETS,
    resources:
        **job_resources("tokenizer"),
    log:
        "logs/tokenizer.log",
    benchmark:
        "benchmarks/tokenizer.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline tokenizer {params.presets} --out {output:q} > {log:q} 2>&1"


rule pretrain:
    output:
        directory("models/encoder"),
    input:
        tokenizer="models/tokenizer",
        corpus=CORPUS,
        code=code_stamp(
            "pretrain", "corpus.py", "models/encoder.py", "checkpoint.py", "optim.py", "data/store.py"
        ),
    params:
        presets=PARAMS,
        architecture=canon(config["encoder"]["architecture"]),
        pretrain=canon(config["encoder"]["pretrain"]),
    resources:
        **job_resources("pretrain"),
    log:
        "logs/pretrain.log",
    benchmark:
        "benchmarks/pretrain.tsv"
    threads: workflow.cores
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline pretrain {params.presets} --tokenizer {input.tokenizer:q} --out {output:q} "
        "--checkpoints checkpoints/pretrain > {log:q} 2>&1"
