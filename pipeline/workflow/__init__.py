"""How the DAG is driven: the code stamps Snakemake's jobs take as their code input
(code_stamps), and dvc.yaml generated from the Snakemake DAG (dvc_yaml)."""
