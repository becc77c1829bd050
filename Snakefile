# The DAG: download/generate -> prepare -> tokenizer -> pretrain -> train (+ predict, score)
# -> represent (paired runs) -> report; and toy2d (Lee et al.'s 2-D study, no data).
# Every rule is a thin `python -m pipeline <command>` call; `params:` carries the config values each
# step reads, so Snakemake's params trigger reruns exactly the steps a params.yaml change affects.
# dvc.yaml is generated from this DAG: `python -m pipeline dvc-yaml` (checked by `make check`).


configfile: "params.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/encoder.smk"
include: "rules/train.smk"
include: "rules/analysis.smk"
include: "rules/toy2d.smk"
include: "rules/report.smk"


rule all:
    input:
        "results/metrics.json",
        TOY2D_TARGETS,  # results/toy2d unless `toy2d: null` (rules/toy2d.smk)
    default_target: True
