"""Experiments that run the methods outside the DAG's training jobs (Lee et al.'s 2-D study), and
Lee et al.'s forgetting analysis of trained runs (`forgetting`): kept out of `methods/` so that
editing them reruns no training job."""
