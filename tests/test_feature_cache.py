"""No step re-featurizes what another step cached with the same key.

A training job featurizes its TLPs' train and dev splits; fine-tuning, prediction and a second
seed of the same experiment must load those caches, and a change of the settings must not.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pipeline.evaluation import predict_splits
from pipeline.features import FEATURE_CACHE
from pipeline.records import TLP
from pipeline.tasks.common import BatchedTask
from pipeline.trainer import Trainer
from tests.meta_helpers import SETTINGS, make_run


@pytest.fixture
def featurized(monkeypatch) -> list[str]:
    """The task types' `featurize` calls, as they happen (the one place features are made)."""
    calls: list[str] = []
    real = BatchedTask.featurize

    def counting(self, records, tokenizer, labels, settings, train):
        calls.append(f"{self.name}:{'train' if train else 'eval'}:{len(records)}")
        return real(self, records, tokenizer, labels, settings, train)

    monkeypatch.setattr(BatchedTask, "featurize", counting)
    return calls


def test_second_job_with_the_same_key_featurizes_nothing(
    tiny_world, tmp_path, monkeypatch, featurized
):
    monkeypatch.chdir(tmp_path)  # prediction caches under ./data/features, as the steps do
    cache = FEATURE_CACHE
    tlps = ["nli/l0", "ner/l1", "qa/l0"]

    def trainer(world, run, ckpt, settings=SETTINGS):
        return Trainer(
            run, world["encoder"], [world["prepared"]], settings, ckpt, cpu, cache_dir=cache
        )

    cpu = torch.device("cpu")
    first = trainer(tiny_world, make_run("mtl", tlps, steps=1), tmp_path / "a")
    made = list(featurized)
    assert sorted(made) == sorted(
        f"{k}:{sp}:{n}" for k in ("pair", "tagging", "qa") for sp, n in (("train", 24), ("eval", 8))
    )
    # another seed, another method, a single-TLP run: the same features, nothing made
    trainer(tiny_world, make_run("mtl", tlps, steps=2, seed=9), tmp_path / "b")
    trainer(tiny_world, make_run("stl", ["ner/l1"]), tmp_path / "c")
    assert featurized == made
    # prediction: dev (uncapped here: max_dev_examples is off) is the selection's cache; test
    # is new, once
    tlp_list = [TLP.parse(t) for t in tlps]
    args = (["dev", "test"], [tiny_world["prepared"]], SETTINGS, first.device)
    predict_splits(first.model, first.tokenizer, tlp_list, *args)
    assert sorted(featurized[len(made) :]) == sorted(
        f"{k}:eval:8" for k in ("pair", "tagging", "qa")
    )
    before = list(featurized)
    predict_splits(first.model, first.tokenizer, tlp_list, *args)
    assert featurized == before
    # other settings, another key: featurized again
    longer = dataclasses.replace(SETTINGS, max_length=24)
    trainer(tiny_world, make_run("stl", ["ner/l1"]), tmp_path / "e", longer)
    assert featurized[len(before) :] == ["tagging:train:24", "tagging:eval:8"]
