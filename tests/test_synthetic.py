"""Synthetic benchmark (pipeline/data/synthetic.py) and raw-format writers (pipeline/data/writers.py).

Files are parsed here with the standard library only, independently of the project's readers, so
a format slip in the generator cannot hide behind a matching slip in a reader.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.data import synthetic, writers
from pipeline.data.synthetic import generate
from pipeline.errors import ConfigError, DataError

# train 15-100 per TLP, dev/test 12, 150 sentences of text per language: fast
SMALL = {"scale": 0.25, "eval_size": 12, "text_sentences": 150, "verbose": False}


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("syn") / "raw"
    return out, generate(out, seed=13, **SMALL)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _tsv(path: Path, header: bool = True) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[1:] if header else rows


def _blocks(path: Path) -> list[list[str]]:
    """Blank-line separated blocks of lines (PAN-X, CoNLL-U)."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n\n"), f"{path}: last block not closed by a blank line"
    return [b.split("\n") for b in text.strip("\n").split("\n\n")]


def _conllu_words(block: list[str]) -> list[list[str]]:
    rows = [line.split("\t") for line in block if not line.startswith("#")]
    assert all(len(r) == 10 for r in rows)
    return [r for r in rows if r[0].isdigit()]  # range lines `1-2` are not words


def _count(root: Path, manifest: dict, task: str, lang: str, split: str) -> int:
    """Parse one TLP split with the standard library and return its record count."""
    base = root / manifest["tasks"][task]["path"]
    if task == "nli":
        if split == "train":
            rows = _tsv(base / "XNLI-MT-1.0" / "multinli" / f"multinli.train.{lang}.tsv")
            assert all(
                len(r) == 3 and r[2] in ("entailment", "neutral", "contradictory") for r in rows
            )
            return len(rows)
        rows = _tsv(base / "XNLI-1.0" / f"xnli.{split}.tsv")
        assert all(len(r) == 19 for r in rows)
        return sum(r[0] == lang for r in rows)
    if task == "pa":
        name = {"dev": "dev_2k.tsv", "test": "test_2k.tsv"}.get(split)
        name = name or ("train.tsv" if lang == "l0" else "translated_train.tsv")
        rows = _tsv(base / "x-final" / lang / name)
        assert all(len(r) == 4 and r[3] in ("0", "1") for r in rows)
        return len(rows)
    if task == "ner":
        blocks = _blocks(base / lang / split)
        assert all(
            line.startswith(f"{lang}:") and line.count("\t") == 1 for b in blocks for line in b
        )
        return len(blocks)
    if task == "pos":
        path = base / f"UD_Synthetic_{lang.upper()}-SYN" / f"{lang}_syn-ud-{split}.conllu"
        blocks = _blocks(path)
        assert all(_conllu_words(b) for b in blocks)
        return len(blocks)
    if task == "qa":
        path = base / "MLQA_V1" / split / f"{split}-context-{lang}-question-{lang}.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["version"] == 1.0 and isinstance(data["version"], float)
        return sum(len(p["qas"]) for a in data["data"] for p in a["paragraphs"])
    if task == "sa":
        lines = (base / f"dataset_{lang}_{split}.json").read_text(encoding="utf-8").splitlines()
        revs = [json.loads(line) for line in lines]
        assert all(list(r) == list(writers.MARC_FIELDS) and r["language"] == lang for r in revs)
        return len(revs)
    name = {"train": "train", "dev": "eval", "test": "test"}[split]
    rows = _tsv(base / lang / f"{name}-{lang}.tsv", header=False)
    assert all(len(r) == 5 and r[3] == f"{lang}_XX" for r in rows)
    return len(rows)


# ------------------------------------------------------------------ the benchmark as a whole


def test_every_declared_file_exists_parses_and_has_the_declared_count(bench):
    root, m = bench
    assert json.loads((root / "synthetic.json").read_text()) == m
    assert m["languages"] == ["l0", "l1", "l2", "l3", "l4"]
    assert m["train_languages"] == ["l0", "l1", "l2", "l3"] and m["zero_shot_languages"] == ["l4"]
    assert set(m["tasks"]) == set(synthetic.TASKS)
    for tlp, splits in m["sizes"].items():
        task, lang = tlp.split("/")
        for split, n in splits.items():
            assert _count(root, m, task, lang, split) == n, (tlp, split)


def test_no_undeclared_files(bench):
    """Every file written belongs to a declared TLP split (or is the manifest)."""
    root, m = bench
    declared = {(t.split("/")[1], s) for t, sp in m["sizes"].items() for s in sp}
    text = set(m["text"]["files"].values())
    for rel in _files(root):
        if rel == "synthetic.json" or rel.startswith("xnli/XNLI-1.0/") or rel in text:
            continue
        langs = {lg for lg in m["languages"] if re.search(rf"(^|[/_.-]){lg}([/_.-]|$)", rel)}
        assert len(langs) == 1, rel
        split = (
            "train"
            if re.search(r"train", rel)
            else "dev"
            if re.search(r"dev|eval", rel)
            else "test"
        )
        assert (langs.pop(), split) in declared, rel


def test_same_seed_same_bytes_other_seed_other_bytes(bench, tmp_path):
    root, _ = bench
    same = _files(root)
    generate(tmp_path / "again", seed=13, **SMALL)
    assert _files(tmp_path / "again") == same
    generate(tmp_path / "other", seed=14, **SMALL)
    other = _files(tmp_path / "other")
    assert other.keys() == same.keys()
    differ = [k for k in same if same[k] != other[k]]
    assert len(differ) >= len(same) - 1  # every data file changes with the seed


def test_bytes_do_not_depend_on_hash_randomization(tmp_path):
    """Set/dict iteration over strings must not leak into the output (PYTHONHASHSEED)."""
    code = (
        "import sys,hashlib,pathlib; from pipeline.data.synthetic import generate;"
        "o=pathlib.Path(sys.argv[1]); generate(o, seed=5, scale=0.1, languages=3, eval_size=10,"
        " text_sentences=100, verbose=False);"
        "h=hashlib.sha256();"
        "[h.update(str(p.relative_to(o)).encode()+p.read_bytes()) for p in sorted(o.rglob('*')) if p.is_file()];"
        "print(h.hexdigest())"
    )
    digests = set()
    for hs in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hs}
        res = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / hs)],
            env=env,
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
            check=True,
        )
        digests.add(res.stdout.strip())
    assert len(digests) == 1


def test_zero_shot_languages_have_dev_and_test_for_every_task_but_no_train(bench):
    root, m = bench
    for task in synthetic.TASKS:
        assert set(m["sizes"][f"{task}/l4"]) == {"dev", "test"}
    names = [rel for rel in _files(root) if re.search(r"(^|[/_.-])l4([/_.-]|$)", rel)]
    assert names and not [n for n in names if "train" in n]
    assert "text/l4.txt" in names  # unlabelled text also for the zero-shot language
    mt = root / "xnli" / "XNLI-MT-1.0" / "multinli"
    assert sorted(p.name for p in mt.iterdir()) == [f"multinli.train.l{i}.tsv" for i in range(3)]


def test_answer_start_points_at_the_answer_and_ids_are_unique(bench):
    root, _ = bench
    files = sorted((root / "mlqa").rglob("*.json"))
    assert len(files) == 3 * 3 + 2 * 2  # qa trains in l0, l1, l3; dev/test in all five
    n = 0
    for f in files:
        data = json.loads(f.read_text(encoding="utf-8"))
        ids = [qa["id"] for a in data["data"] for p in a["paragraphs"] for qa in p["qas"]]
        assert len(ids) == len(set(ids)), f
        for a in data["data"]:
            for p in a["paragraphs"]:
                for qa in p["qas"]:
                    assert qa["question"].endswith("?") and qa["answers"]
                    for ans in qa["answers"]:
                        s = ans["answer_start"]
                        assert p["context"][s : s + len(ans["text"])] == ans["text"]
                        assert ans["text"].strip() == ans["text"] != ""
                        n += 1
    assert n > 100


def test_mtod_slot_offsets_and_tokenization_json(bench):
    root, _ = bench
    n_slots = 0
    for f in sorted((root / "mtod").rglob("*.tsv")):
        for intent, slots, utt, _, tok in _tsv(f, header=False):
            assert intent in synthetic.MTOD_INTENTS
            for item in filter(None, slots.split(",")):
                s, e, name = item.split(":", 2)
                text = utt[int(s) : int(e)]
                assert text and text == text.strip() and name
                n_slots += 1
            t = json.loads(tok)
            assert list(t) == ["tokenizations"] and len(t["tokenizations"]) == 1
            t0 = t["tokenizations"][0]
            assert list(t0) == ["tokens", "tokenSpans", "tokenizerType", "normalizerType"]
            assert t0["tokens"] == utt.lower().split()
            for token, span in zip(t0["tokens"], t0["tokenSpans"]):
                assert list(span) == ["start", "length"]
                assert utt[span["start"] : span["start"] + span["length"]].lower() == token
    assert n_slots > 100


def test_panx_tags_are_valid_iob2_with_multiword_entities(bench):
    root, _ = bench
    seen = set()
    for f in sorted((root / "panx").rglob("*")):
        if not f.is_file():
            continue
        for block in _blocks(f):
            prev = "O"
            for line in block:
                tag = line.split("\t")[1]
                assert tag == "O" or re.fullmatch(r"[BI]-(PER|ORG|LOC)", tag), tag
                if tag.startswith("I-"):
                    assert prev[2:] == tag[2:], (f, block)
                seen.add(tag)
                prev = tag
    assert seen == {"O", *(f"{b}-{t}" for b in "BI" for t in ("PER", "ORG", "LOC"))}


def test_conllu_is_well_formed_with_multiword_ranges_in_l1(bench):
    root, _ = bench
    upos = set()
    ranges = 0
    for f in sorted((root / "udpos").rglob("*.conllu")):
        for block in _blocks(f):
            comments = [line for line in block if line.startswith("#")]
            assert any(c.startswith("# sent_id = ") for c in comments)
            text = next(c[len("# text = ") :] for c in comments if c.startswith("# text = "))
            words = _conllu_words(block)
            assert [int(w[0]) for w in words] == list(range(1, len(words) + 1))
            assert sum(w[7] == "root" and w[6] == "0" for w in words) == 1
            assert all(0 <= int(w[6]) <= len(words) for w in words)
            upos.update(w[3] for w in words)
            rows = [line.split("\t") for line in block if not line.startswith("#")]
            # the text is the surface: range forms replace their words
            surface, skip_to = "", 0
            for r in rows:
                if "-" in r[0]:
                    a, b = map(int, r[0].split("-"))
                    assert "_" == r[2] == r[3] and b == a + 1
                    surface += r[1] + ("" if "SpaceAfter=No" in r[9] else " ")
                    skip_to = b
                    ranges += f.name.startswith("l1_")
                elif int(r[0]) > skip_to:
                    surface += r[1] + ("" if "SpaceAfter=No" in r[9] else " ")
            assert surface.strip() == text
    assert ranges > 0
    assert {"NOUN", "VERB", "ADJ", "PROPN", "DET", "ADP", "PUNCT", "PART", "AUX", "PRON"} <= upos


def test_sa_stars_and_three_star_drops_are_declared(bench):
    root, m = bench
    for tlp, splits in m["sizes"].items():
        if not tlp.startswith("sa/"):
            continue
        lang = tlp.split("/")[1]
        for split in splits:
            lines = (root / "marc" / f"dataset_{lang}_{split}.json").read_text().splitlines()
            stars = [json.loads(line)["stars"] for line in lines]
            assert set(stars) <= {"1", "2", "3", "4", "5"}
            assert m["dropped_by_reader"][tlp][split] == stars.count("3")


def test_xnli_files_copy_the_publisher_layout(bench):
    root, _ = bench
    lines = (root / "xnli" / "XNLI-1.0" / "xnli.dev.tsv").read_text().splitlines()
    assert lines[0].split("\t") == list(writers.XNLI_COLUMNS)
    rows = [line.split("\t") for line in lines[1:]]
    # ordered by pair, then language; the same pairID across languages (parallel data)
    assert [r[0] for r in rows[:5]] == ["l0", "l1", "l2", "l3", "l4"]
    assert {r[9] for r in rows[:5]} == {"1"}
    labels = [r[1] for r in rows if r[0] == "l0"]
    assert set(labels) == {"entailment", "neutral", "contradiction"}
    mt = _tsv(root / "xnli" / "XNLI-MT-1.0" / "multinli" / "multinli.train.l0.tsv", header=False)
    assert mt[0] == ["premise", "hypo", "label"]
    assert "contradictory" in {r[2] for r in mt[1:]}


def test_default_sizes_are_imbalanced_like_table_1_and_generation_is_fast(tmp_path, capsys):
    m = generate(tmp_path / "full", seed=13)
    printed = capsys.readouterr().out
    secs = float(re.search(r"in ([0-9.]+) s", printed).group(1))
    print(printed.strip())
    assert secs < 15
    sizes = m["sizes"]
    train = {k: v["train"] for k, v in sizes.items() if "train" in v}
    # hand-checked against TRAIN_PROFILE
    assert train["nli/l0"] == train["nli/l1"] == train["nli/l2"] == 400 and "nli/l3" not in train
    assert train["pos/l2"] == 400 and train["pos/l3"] == 80 and train["ner/l1"] == 60
    assert train["sa/l0"] == 400 and train["sa/l2"] == 60 and "sa/l1" not in train
    assert min(train.values()) == 60 and max(train.values()) == 600  # qa/l0
    for task in synthetic.TASKS:
        langs = [k.split("/")[1] for k in train if k.startswith(f"{task}/")]
        assert len(langs) >= 3 and "l0" in langs, task
        for lang in m["languages"]:  # dev/test are not scaled: evaluation keeps its power
            n = {"pos": 210, "ner": 210, "qa": 300}.get(task, 510)
            assert sizes[f"{task}/{lang}"]["dev"] == sizes[f"{task}/{lang}"]["test"] == n
    assert m["text"]["files"] == {lg: f"text/{lg}.txt" for lg in m["languages"]}
    total = sum(p.stat().st_size for p in (tmp_path / "full").rglob("*") if p.is_file())
    assert total < 15e6


# ------------------------------------------------------------------ parameters


def test_scale_sizes_overrides_and_task_subset(tmp_path):
    m = generate(
        tmp_path / "o",
        tasks=["ner", "sa"],
        scale=0.5,
        sizes={"ner/l1": {"train": 7, "dev": 3}, "sa": {"test": 4}},
        verbose=False,
    )
    assert set(m["tasks"]) == {"ner", "sa"}
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "heldout_text",
        "marc",
        "panx",
        "synthetic.json",
        "text",
    ]
    assert m["sizes"]["ner/l0"] == {"train": 150, "dev": 210, "test": 210}  # eval not scaled
    assert m["sizes"]["ner/l1"] == {"train": 7, "dev": 3, "test": 210}
    assert m["sizes"]["sa/l4"] == {"dev": 510, "test": 4}  # no train for the zero-shot language
    assert len(_blocks(tmp_path / "o" / "panx" / "l1" / "train")) == 7
    assert m["params"]["eval_size"] is None
    m = generate(
        tmp_path / "p",
        tasks=["ner", "sa"],
        scale=0.5,
        eval_size=20,
        sizes={"sa": {"test": 4}},
        text_sentences=0,
        verbose=False,
    )
    assert m["sizes"]["ner/l0"] == {"train": 150, "dev": 20, "test": 20}
    assert m["sizes"]["sa/l4"] == {"dev": 20, "test": 4}  # `sizes` wins over `eval_size`
    assert m["params"]["eval_size"] == 20 and m["text"]["files"] == {}
    assert not (tmp_path / "p" / "text").exists()


def test_more_languages_keep_at_least_three_training_languages(tmp_path):
    m = generate(tmp_path / "o", languages=3, zero_shot=0, scale=0.1, eval_size=5, verbose=False)
    for task in synthetic.TASKS:
        assert all("train" in m["sizes"][f"{task}/l{i}"] for i in range(3)), task
    m = generate(tmp_path / "p", languages=8, zero_shot=2, scale=0.1, eval_size=5, verbose=False)
    assert m["zero_shot_languages"] == ["l6", "l7"]
    shares = [m["relatedness"][f"l{i}"]["share"] for i in range(8)]
    assert shares == sorted(shares, reverse=True) and shares[0] == 1.0 and shares[-1] == 0.25


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"languages": 1}, "benchmark.languages"),
        ({"zero_shot": 5}, "benchmark.zero_shot"),
        ({"tasks": ["ner", "chat"]}, "benchmark.tasks"),
        ({"scale": 0}, "benchmark.scale"),
        ({"eval_size": 0}, "benchmark.eval_size"),
        ({"eval_size": 2.5}, "benchmark.eval_size"),
        ({"text_sentences": -1}, "benchmark.text_sentences"),
        ({"shares": [0.5]}, "benchmark.shares"),
        ({"orders": ["SVO", "OSV", "SOV", "VSO"]}, "benchmark.orders"),
        ({"sizes": {"ner/l4": {"train": 5}}}, "benchmark.sizes.ner/l4"),
        ({"sizes": {"ner/x9": {"dev": 5}}}, "benchmark.sizes.ner/x9"),
        ({"sizes": {"ner": {"valid": 5}}}, "benchmark.sizes.ner.valid"),
    ],
)
def test_bad_parameters_name_their_key(tmp_path, kwargs, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        generate(tmp_path / "bad", verbose=False, **kwargs)
    assert not (tmp_path / "bad").exists()


def test_failed_generation_leaves_previous_output_intact(tmp_path, monkeypatch):
    out = tmp_path / "raw"
    generate(out, **SMALL)
    before = _files(out)

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writers, "write_mtod_tsv", boom)
    with pytest.raises(RuntimeError):
        generate(out, seed=99, **SMALL)
    assert _files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]  # no temp dirs left behind


# ------------------------------------------------------------------ latent structure


def _lang(order: str, adj: str = "pre"):
    world, source = synthetic.build_world(13)
    return world, synthetic.build_language(13, 0, 1.0, order, adj, False, source), source


def test_word_orders_place_verb_subject_and_object_as_declared():
    world, _, source = _lang("SVO")
    anna = synthetic.Ent("PER", (world.first[0], world.last[0]))
    name = f"{source[world.first[0]]} {source[world.last[0]]}"
    loc = synthetic.Ent("LOC", (world.locs[0],))
    town = source[world.locs[0]]
    car = synthetic.NP("det:the", ("adj:red",), "noun:car")
    ev = synthetic.Event(anna, "verb:buy", car, (("adp:in", loc),))
    expect = {
        ("SVO", "pre"): f"{name} bought the red car in {town}.",
        ("SOV", "post"): f"{name} {town} in the car red bought.",
        ("VSO", "post"): f"Bought {name} the car red in {town}.",
    }
    for (order, adj), text in expect.items():
        L = _lang(order, adj)[1]
        assert synthetic.assemble(L, [synthetic.r_clause(L, ev)]).text == text
    L = _lang("SVO")[1]
    neg = synthetic.assemble(
        L, [synthetic.r_clause(L, synthetic.Event(anna, "verb:buy", car, neg=True))]
    )
    assert neg.text == f"{name} not bought the red car."
    q = synthetic.assemble(L, [synthetic.r_clause(L, ev, ask="agent")], "punct:?")
    assert q.text == f"Who bought the red car in {town}?"
    topic = synthetic.assemble(L, [synthetic.r_clause(L, ev, topic=0)])
    assert topic.text == f"In {town}, {name} bought the red car."
    assert topic.ents[:2] == ["O", "B-LOC"] and topic.ents[3:5] == ["B-PER", "I-PER"]


def test_future_clauses_put_will_and_not_inside_the_verb_group():
    world, _, source = _lang("SVO")
    anna = synthetic.Ent("PER", (world.first[0],))
    name = source[world.first[0]]
    car = synthetic.NP("det:the", (), "noun:car")
    ev = synthetic.Event(anna, "verb:buy", car, fut=True, neg=True)
    expect = {
        ("SVO", "pre"): f"{name} will not buy the car.",
        ("SOV", "post"): f"{name} the car not buy will.",
        ("VSO", "post"): f"Will not buy {name} the car.",
    }
    for (order, adj), text in expect.items():
        L = _lang(order, adj)[1]
        sent = synthetic.assemble(L, [synthetic.r_clause(L, ev)])
        assert sent.text == text
        verb = sent.forms.index("buy") + 1
        assert sent.heads[verb - 1] == 0 and sent.deprels[verb - 1] == "root"
        for form, rel in (("will", "aux"), ("not", "advmod")):
            i = [f.lower() for f in sent.forms].index(form)
            assert (sent.heads[i], sent.deprels[i], sent.upos[i]) == (
                verb,
                rel,
                "AUX" if form == "will" else "PART",
            )


def test_homographs_are_written_alike_in_every_language_and_tagged_by_context():
    _, source = synthetic.build_world(13)
    groups = synthetic.HOMOGRAPHS
    assert ("noun:phone", "vb:phone") in groups and ("adj:lost", "verb:lose") in groups
    for i, share in enumerate((0.85, 0.25), start=1):
        L = synthetic.build_language(13, i, share, "SOV", "post", False, source)
        for group in groups:
            assert len({L.forms[k] for k in group}) == 1, (L.code, group)
    # in the generated treebank one form carries several tags (NOUN/VERB, ADJ/VERB)
    world, L, _ = _lang("SVO")
    rng = synthetic._rng(13, "pos", "test", "l0")
    tags: dict[str, set[str]] = {}
    for _ in range(400):
        sent = synthetic.tagging_sentence(rng, L, world, "pos")
        for f, u in zip(sent.forms, sent.upos):
            tags.setdefault(f.lower(), set()).add(u)
    ambiguous = {f for f, t in tags.items() if len(t) > 1}
    assert len(ambiguous) >= 8 and {"NOUN", "VERB"} <= tags["phone"] | tags["watch"]


def test_relatedness_controls_the_shared_lexicon():
    _, source = synthetic.build_world(13)
    concepts = [k for k in source if not k.startswith(("name:", "punct:"))]
    fracs = []
    for i, share in enumerate((0.9, 0.6, 0.3), start=1):
        L = synthetic.build_language(13, i, share, "SVO", "pre", False, source)
        fracs.append(sum(L.forms[k] == source[k] for k in concepts) / len(concepts))
        # own forms never collide with each other or with a source word of another concept
        # (homographs of the source excepted: those are written alike on purpose)
        tied = {k for g in synthetic.HOMOGRAPHS for k in g[1:]}
        own = [L.forms[k] for k in concepts if L.forms[k] != source[k] and k not in tied]
        assert len(set(own)) == len(own) and not {f.lower() for f in own} & {
            f.lower() for f in source.values()
        }
    assert fracs[0] > fracs[1] > fracs[2]
    assert abs(fracs[0] - 0.9) < 0.08 and abs(fracs[2] - 0.3) < 0.08


def test_nli_items_come_in_balanced_label_triples():
    world, _ = synthetic.build_world(13)
    items = synthetic.nli_items(13, world, "dev", 30)
    for p in range(10):
        group = [it for it in items if it["prompt"] == p]
        assert sorted(it["label"] for it in group) == sorted(synthetic.NLI_LABELS)
        assert all(it["premise"] is group[0]["premise"] for it in group)


# ------------------------------------------------------------------ unlabelled text


def _text_docs(path: Path) -> list[list[str]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and not text.endswith("\n\n") and "\r" not in text
    docs = [d.split("\n") for d in text.rstrip("\n").split("\n\n")]
    assert all(d and all(line.strip() == line != "" for line in d) for d in docs), path
    return docs


def _key(s: str) -> str:
    return "".join(s.split())


def _eval_sentences(root: Path, m: dict) -> set[str]:
    """Every dev/test sentence of every task, read back with the standard library."""
    out: set[str] = set()
    for split in ("dev", "test"):
        for r in _tsv(root / "xnli" / "XNLI-1.0" / f"xnli.{split}.tsv"):
            out |= {r[6], r[7]}
        for f in (root / "paws-x" / "x-final").glob(f"*/{split}_2k.tsv"):
            out |= {x for r in _tsv(f) for x in r[1:3]}
        for f in (root / "panx").glob(f"*/{split}"):
            out |= {
                " ".join(line.split("\t")[0].split(":", 1)[1] for line in b) for b in _blocks(f)
            }
        for f in (root / "udpos").glob(f"*/*-ud-{split}.conllu"):
            out |= {" ".join(w[1] for w in _conllu_words(b)) for b in _blocks(f)}
        for f in (root / "mlqa" / "MLQA_V1" / split).glob("*.json"):
            for a in json.loads(f.read_text(encoding="utf-8"))["data"]:
                for p in a["paragraphs"]:
                    out |= set(re.split(r"(?<=[.?!]) ", p["context"]))
                    out |= {qa["question"] for qa in p["qas"]}
        for f in (root / "marc").glob(f"dataset_*_{split}.json"):
            for line in f.read_text(encoding="utf-8").splitlines():
                r = json.loads(line)
                out |= {r["review_title"], *re.split(r"(?<=[.?!]) ", r["review_body"])}
        name = {"dev": "eval", "test": "test"}[split]
        for f in (root / "mtod").glob(f"*/{name}-*.tsv"):
            out |= {r[2] for r in _tsv(f, header=False)}
    return {_key(x) for x in out if x.strip()}


def test_every_language_has_unlabelled_text_in_documents(bench):
    root, m = bench
    assert m["text"] == {
        "sentences": 150,
        "files": {lg: f"text/{lg}.txt" for lg in m["languages"]},
    }
    assert m["params"]["text_sentences"] == 150
    for lg, rel in m["text"]["files"].items():
        docs = _text_docs(root / rel)
        assert sum(map(len, docs)) == 150 and len(docs) > 10, lg
        lines = [s for d in docs for s in d]
        assert any(s.endswith("?") for s in lines)  # questions
        assert len(set(lines)) > 0.8 * len(lines)
    l0 = (root / "text" / "l0.txt").read_text(encoding="utf-8")
    assert " not " in l0 and " will " in l0 and " is " in l0  # negation, future, copulas
    assert l0 != (root / "text" / "l4.txt").read_text(encoding="utf-8")


def test_text_is_deterministic_and_independent_of_hash_seed(bench, tmp_path):
    root, m = bench
    docs = synthetic.text_documents(13, synthetic.build_world(13)[0], _lang("SVO")[1], 50, ["nli"])
    again = synthetic.text_documents(13, synthetic.build_world(13)[0], _lang("SVO")[1], 50, ["nli"])
    assert docs == again and sum(map(len, docs)) == 50
    generate(tmp_path / "again", seed=13, **SMALL)
    for rel in m["text"]["files"].values():
        assert (tmp_path / "again" / rel).read_bytes() == (root / rel).read_bytes()


def test_no_dev_or_test_sentence_reaches_the_text(bench, tmp_path):
    for root, m in (bench, _full_tasks_bench(tmp_path)):
        held = _eval_sentences(root, m)
        assert len(held) > 500
        for rel in m["text"]["files"].values():
            lines = [s for d in _text_docs(root / rel) for s in d]
            assert not {_key(s) for s in lines} & held, rel


def _full_tasks_bench(tmp_path: Path) -> tuple[Path, dict]:
    """Few languages, many text sentences and dev/test items: collisions would show."""
    out = tmp_path / "dense"
    m = generate(
        out,
        seed=3,
        languages=2,
        zero_shot=1,
        scale=0.1,
        eval_size=150,
        text_sentences=1500,
        verbose=False,
    )
    return out, m


# ------------------------------------------------------------------ writers: exact publisher bytes


def test_write_xnli_tsv_reproduces_a_real_row(tmp_path):
    # the English row of XNLI 1.0 xnli.dev.tsv, pair 1 (copied by hand)
    row = {
        "language": "en",
        "gold_label": "neutral",
        "sentence1": "And he said, Mama, I'm home.",
        "sentence2": "He called his mom as soon as the school bus dropped him off.",
        "pairID": 1,
        "label2": "contradiction",
        "sentence1_tokenized": "And he said , Mama , I 'm home .",
        "sentence2_tokenized": "He called his mom as soon as the school bus dropped him off .",
    }
    writers.write_xnli_tsv(tmp_path / "x.tsv", [row])
    lines = (tmp_path / "x.tsv").read_text().split("\n")
    assert lines[1] == (
        "en\tneutral\t\t\t\t\tAnd he said, Mama, I'm home.\tHe called his mom as soon as the school "
        "bus dropped him off.\t1\t1\tfacetoface\tneutral\tcontradiction\tneutral\tneutral\tneutral\t"
        "And he said , Mama , I 'm home .\tHe called his mom as soon as the school bus dropped him "
        "off .\tTrue"
    )
    assert lines[2:] == [""]
    with pytest.raises(DataError, match=r"row 1: field 'sentence1' contains a tab"):
        writers.write_xnli_tsv(tmp_path / "y.tsv", [{**row, "sentence1": "a\tb"}])
    assert not (tmp_path / "y.tsv").exists()


def test_write_mtod_tsv_reproduces_a_real_row(tmp_path):
    # line 2 of MTOD es/train-es.tsv (copied by hand)
    row = {
        "intent": "alarm/cancel_alarm",
        "slots": [(15, 29, "datetime")],
        "utterance": "Borrar alarmas por 20 minutos ",
        "locale": "es_XX",
    }
    writers.write_mtod_tsv(tmp_path / "m.tsv", [row])
    assert (tmp_path / "m.tsv").read_text() == (
        "alarm/cancel_alarm\t15:29:datetime\tBorrar alarmas por 20 minutos \tes_XX\t"
        '{"tokenizations":[{"tokens":["borrar","alarmas","por","20","minutos"],"tokenSpans":'
        '[{"start":0,"length":6},{"start":7,"length":7},{"start":15,"length":3},{"start":19,'
        '"length":2},{"start":22,"length":7}],"tokenizerType":2,"normalizerType":1}]}\n'
    )
    with pytest.raises(DataError, match="slot 15:40:datetime outside"):
        writers.write_mtod_tsv(tmp_path / "n.tsv", [{**row, "slots": [(15, 40, "datetime")]}])


def test_write_marc_jsonl_reproduces_a_real_line(tmp_path):
    # line 4 of MARC dataset_de_dev.json (copied by hand)
    rev = {
        "review_id": "de_0407600",
        "product_id": "product_de_0648552",
        "reviewer_id": "reviewer_de_0102048",
        "stars": 1,
        "review_body": "Sofort zurückgeschickt",
        "review_title": "Der letzte Dreck",
        "language": "de",
        "product_category": "furniture",
    }
    writers.write_marc_jsonl(tmp_path / "d.json", [rev])
    assert (tmp_path / "d.json").read_text() == (
        '{"review_id": "de_0407600", "product_id": "product_de_0648552", "reviewer_id": '
        '"reviewer_de_0102048", "stars": "1", "review_body": "Sofort zur\\u00fcckgeschickt", '
        '"review_title": "Der letzte Dreck", "language": "de", "product_category": "furniture"}\n'
    )


def test_write_panx_pawsx_and_squad(tmp_path):
    writers.write_panx(
        tmp_path / "train",
        [
            {"lang": "en", "tokens": ["R.H.", "Saunders", "("], "tags": ["B-ORG", "I-ORG", "O"]},
            {"lang": "en", "tokens": ["Lund"], "tags": ["B-LOC"]},
        ],
    )
    assert (tmp_path / "train").read_text() == (
        "en:R.H.\tB-ORG\nen:Saunders\tI-ORG\nen:(\tO\n\nen:Lund\tB-LOC\n\n"
    )
    writers.write_pawsx_tsv(
        tmp_path / "dev_2k.tsv", [{"id": 4, "sentence1": "A b .", "sentence2": "B a .", "label": 0}]
    )
    assert (
        tmp_path / "dev_2k.tsv"
    ).read_text() == "id\tsentence1\tsentence2\tlabel\n4\tA b .\tB a .\t0\n"
    art = [
        {
            "title": "T",
            "paragraphs": [
                {
                    "context": "Año Lund met Bo.",
                    "qas": [
                        {
                            "question": "Who?",
                            "answers": [{"text": "Bo", "answer_start": 13}],
                            "id": "q1",
                        }
                    ],
                }
            ],
        }
    ]
    writers.write_squad_json(tmp_path / "q.json", art)
    text = (tmp_path / "q.json").read_text()
    assert text.startswith(
        '{"version": 1.0, "data": [{"title": "T", "paragraphs": [{"context": "A\\u00f1o'
    )
    assert not text.endswith("\n")  # MLQA has no final newline
    art[0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 12
    with pytest.raises(DataError, match="question id q1: answer 'Bo' not at answer_start 12"):
        writers.write_squad_json(tmp_path / "bad.json", art)
    writers.write_squad_json(tmp_path / "unchecked.json", art, check=False)  # deliberate fixture


def test_write_conllu_with_a_multiword_token(tmp_path):
    writers.write_conllu(
        tmp_path / "x.conllu",
        [
            {
                "sent_id": "s1",
                "newdoc": "d1",
                "tokens": ["Vive", "de", "el", "mar", "."],
                "upos": ["VERB", "ADP", "DET", "NOUN", "PUNCT"],
                "heads": [0, 4, 4, 1, 1],
                "deprels": ["root", "case", "det", "obl", "punct"],
                "multiword": [(2, 3, "del")],
            }
        ],
    )
    assert (tmp_path / "x.conllu").read_text() == (
        "# newdoc id = d1\n# sent_id = s1\n# text = Vive del mar.\n"
        "1\tVive\t_\tVERB\t_\t_\t0\troot\t_\t_\n"
        "2-3\tdel\t_\t_\t_\t_\t_\t_\t_\t_\n"
        "2\tde\t_\tADP\t_\t_\t4\tcase\t_\t_\n"
        "3\tel\t_\tDET\t_\t_\t4\tdet\t_\t_\n"
        "4\tmar\t_\tNOUN\t_\t_\t1\tobl\t_\tSpaceAfter=No\n"
        "5\t.\t_\tPUNCT\t_\t_\t1\tpunct\t_\t_\n\n"
    )


# ------------------------------------------------------------------ through the project's readers


def test_prepare_reads_back_exactly_the_declared_counts(bench, tmp_path):
    prepare = pytest.importorskip("pipeline.data.prepare")
    root, m = bench
    summary = prepare.prepare("synthetic", root, tmp_path / "prepared")
    expected = {}
    for tlp, splits in m["sizes"].items():
        for split, n in splits.items():
            n -= m["dropped_by_reader"].get(tlp, {}).get(split, 0)  # 3-star reviews
            if n:
                expected.setdefault(tlp, {})[split] = n
    assert summary["counts"] == expected
    dropped = sum(v for sp in m["dropped_by_reader"].values() for v in sp.values())
    assert sum(n for k, n in summary["skipped"].items() if k.startswith("marc:")) == dropped
    assert sum(summary["skipped"].values()) == dropped
    assert summary["dedup_ids"] == 0
