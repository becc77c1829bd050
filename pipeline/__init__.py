"""Meta-learning across tasks and languages: one engine, one DAG, reproducible numbers."""

__version__ = "0.1.0"
