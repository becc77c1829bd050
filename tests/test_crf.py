"""The slot CRF (pipeline.models.crf): log-partition, path score and Viterbi against brute-force
enumeration on a tiny tag set, packing of the labelled positions, and pytorch-crf when it
installs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from pipeline.models.crf import CRF, log_partition, pack, path_score, viterbi


def random_crf(n_tags: int, seed: int) -> CRF:
    g = torch.Generator().manual_seed(seed)
    crf = CRF(n_tags)
    with torch.no_grad():
        for p in crf.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return crf


def brute(emissions: np.ndarray, crf: CRF) -> tuple[float, list[int], dict]:
    """log Z, the best path and every path's score, by enumerating all T^L paths."""
    s, e, t = (x.detach().numpy() for x in crf.scores)
    scores = {}
    for path in itertools.product(range(len(s)), repeat=len(emissions)):
        v = s[path[0]] + e[path[-1]] + sum(emissions[i, y] for i, y in enumerate(path))
        v += sum(t[a, b] for a, b in zip(path, path[1:]))
        scores[path] = v
    vals = np.array(list(scores.values()))
    logz = float(np.log(np.exp(vals - vals.max()).sum()) + vals.max())
    return logz, list(max(scores, key=scores.get)), scores


@pytest.mark.parametrize("length", [1, 2, 4])
def test_log_partition_score_and_viterbi_match_enumeration(length):
    crf = random_crf(3, seed=length)
    g = torch.Generator().manual_seed(10 + length)
    em = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    crf = crf.double()
    mask = torch.tensor([[True] * length + [False] * (5 - length), [True] * 5])
    logz = log_partition(em, mask, crf.scores)
    for row, n in enumerate((length, 5)):
        want, best, scores = brute(em[row, :n].numpy(), crf)
        assert logz[row].item() == pytest.approx(want, abs=1e-9)
        s, e, t = (x.detach().numpy() for x in crf.scores)
        assert viterbi(em[row, :n].numpy(), s, e, t) == best
        path = next(iter(scores))
        tags = torch.zeros(1, 5, dtype=torch.long)
        tags[0, :n] = torch.tensor(path)
        got = path_score(em[row : row + 1], tags, mask[row : row + 1], crf.scores)
        assert got.item() == pytest.approx(scores[path], abs=1e-9)


def test_nll_is_a_proper_negative_log_likelihood():
    """exp(−nll) summed over every path is 1; a row without positions adds nothing."""
    crf = random_crf(2, seed=3).double()
    em = torch.randn(1, 3, 2, dtype=torch.float64)
    mask = torch.ones(1, 3, dtype=torch.bool)
    total = 0.0
    for path in itertools.product(range(2), repeat=3):
        total += torch.exp(-crf.nll(em, torch.tensor([path]), mask)).item()
    assert total == pytest.approx(1.0, abs=1e-9)
    both = crf.nll(
        torch.cat([em, em]),
        torch.tensor([[0, 1, 0], [0, 0, 0]]),
        torch.tensor([[True] * 3, [False] * 3]),
    )
    assert both.item() == pytest.approx(crf.nll(em, torch.tensor([[0, 1, 0]]), mask).item())


def test_pack_moves_labelled_positions_to_the_front_in_order():
    values = torch.arange(12).reshape(2, 6)
    mask = torch.tensor([[False, True, False, True, True, False], [True, False] * 3])
    packed, m = pack(values, mask)
    assert packed[0, :3].tolist() == [1, 3, 4] and packed[1, :3].tolist() == [6, 8, 10]
    assert m.tolist() == [[True] * 3, [True] * 3]
    em = torch.randn(2, 6, 4)
    p, _ = pack(em, mask)
    assert torch.equal(p[0, 1], em[0, 3])


def test_matches_pytorch_crf_when_it_installs():
    torchcrf = pytest.importorskip("torchcrf")
    print("pytorch-crf", getattr(torchcrf, "__version__", "?"), "available")
    ours = random_crf(4, seed=7)
    theirs = torchcrf.CRF(4, batch_first=True)
    with torch.no_grad():
        theirs.start_transitions.copy_(ours.start)
        theirs.end_transitions.copy_(ours.end)
        theirs.transitions.copy_(ours.trans)
    em = torch.randn(3, 6, 4)
    tags = torch.randint(0, 4, (3, 6))
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2, [True] + [False] * 5])
    want = -theirs(em, tags, mask=mask, reduction="mean")
    assert ours.nll(em, tags, mask).item() == pytest.approx(want.item(), rel=1e-5)
    s, e, t = (x.detach().numpy() for x in ours.scores)
    for row, path in enumerate(theirs.decode(em, mask=mask)):
        n = int(mask[row].sum())
        assert viterbi(em[row, :n].numpy(), s, e, t) == path


def test_mtod_trains_through_the_crf_and_decodes_valid_paths(tiny_world, tmp_path):
    """A joint intent/slot model learns on dialog records: the loss falls, the transition
    scores move off zero, and Viterbi with them never puts I-PER after O."""
    import json
    import random

    from pipeline.config import Run
    from pipeline.data.store import save_prepared
    from pipeline.evaluation import predict_splits
    from pipeline.records import TLP
    from tests.conftest import NAMES, WORDS
    from tests.meta_helpers import BASE, SETTINGS, trainer

    rng = random.Random(0)

    def rec(i: int, split: str) -> dict:
        tokens, slots = [], []
        for _ in range(5):
            if rng.random() < 0.35:
                tokens += [rng.choice(NAMES), "Jr"]
                slots += ["B-PER", "I-PER"]
            else:
                tokens.append(rng.choice(WORDS))
                slots.append("O")
        intent = "greet" if "B-PER" in slots else "other"
        return {
            "id": f"{split}{i}",
            "lang": "l0",
            "tokens": tokens,
            "slots": slots,
            "intent": intent,
        }

    prepared = tmp_path / "prepared"
    save_prepared(
        prepared,
        {
            TLP("mtod", "l0"): {
                sp: [rec(i, sp) for i in range(n)]
                for sp, n in (("train", 48), ("dev", 12), ("test", 12))
            }
        },
    )
    world = {"root": tmp_path, "prepared": prepared, "encoder": tiny_world["encoder"]}
    t = (TLP("mtod", "l0"),)
    run = Run(
        "mtod-test",
        "mtod",
        "mtl",
        t,
        t,
        {**BASE, "method": "mtl", "steps": 40, "lr": 5e-3, "eval_every": 20},
    )
    tr = trainer(world, run, tmp_path / "ckpt")
    tr.fit(tmp_path / "out")
    hist = json.loads((tmp_path / "out/history.json").read_text())
    assert sum(h["loss"] for h in hist[-5:]) < sum(h["loss"] for h in hist[:5])
    crf = tr.model.heads["mtod"].crf
    assert crf.trans.detach().abs().sum() > 0
    preds = predict_splits(
        tr.model, tr.tokenizer, list(t), ["test"], [prepared], SETTINGS, torch.device("cpu")
    )
    paths = [p["slots"] for p in preds[t[0], "test"].values()]
    assert any("B-PER" in tags for tags in paths)  # it tags names, not just O
    for tags in paths:
        assert all(not (b == "I-PER" and a == "O") for a, b in zip(["O", *tags], tags)), tags
