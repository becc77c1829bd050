# The tiny default encoder: tokenizer + masked-LM pretraining (skipped when encoder.name is set).


rule tokenizer:
    output:
        directory("models/tokenizer"),
    input:
        prepared=expand("data/prepared/{dataset}", dataset=DATASETS),
        code=code("corpus.py", "models/encoder.py", "data/store.py"),
    params:
        presets=PARAMS,
        tokenizer=config["encoder"]["tokenizer"],
        datasets=DATASETS,
    log:
        "logs/tokenizer.log",
    benchmark:
        "benchmarks/tokenizer.tsv"
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline tokenizer {params.presets} --out {output} > {log} 2>&1"


rule pretrain:
    output:
        directory("models/encoder"),
    input:
        tokenizer="models/tokenizer",
        prepared=expand("data/prepared/{dataset}", dataset=DATASETS),
        code=code("corpus.py", "models/encoder.py", "checkpoint.py", "optim.py"),
    params:
        presets=PARAMS,
        architecture=config["encoder"]["architecture"],
        pretrain=config["encoder"]["pretrain"],
        seed=config["seed"],
    log:
        "logs/pretrain.log",
    benchmark:
        "benchmarks/pretrain.tsv"
    threads: workflow.cores
    conda:
        CONDA_ENV
    shell:
        "python -m pipeline pretrain {params.presets} --tokenizer {input.tokenizer} --out {output} "
        "--checkpoints checkpoints/pretrain > {log} 2>&1"
