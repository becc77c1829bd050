"""How steps are executed: the fork server that lets a local run's jobs skip their imports."""
