"""Encoder (tokenizer + MLM pretraining for the tiny default) and the multi-task model."""
