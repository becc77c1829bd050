"""Experiments that run the methods outside the DAG's training jobs (Lee et al.'s 2-D study):
kept out of `methods/` so that editing them reruns no training job."""
