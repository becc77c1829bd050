"""Synthetic multilingual multi-task benchmark, written in the real publishers' raw layouts.

Why: the pipeline's embedded default must train and evaluate end to end in minutes on 2 CPU cores
without downloads, yet show what the methods are about: transfer across tasks and languages,
imbalanced task-language pairs (TLPs) and zero-shot languages. So all seven tasks are generated
from ONE latent world (a small concept lexicon, entities, events) and realized in several
synthetic languages whose relatedness to the source language `l0` is controlled:

* `share`: the fraction of concepts whose word form is the source form; the others get a
  language-specific pseudo-word from the language's own syllable inventory. Proper names are
  kept with probability (1 + share) / 2, else transliterated by a vowel shift.
* `order`: clause word order SVO / SOV / VSO (SOV languages also use postpositions and keep
  question words in situ); `adj`: adjective before or after the noun.

Train sizes per TLP follow the shape of Table 1 of Tarunesh et al. (2021), scaled down (some
TLPs large, some small, some missing); the last `zero_shot` languages have dev/test only. Dev and
test sets are NOT scaled (EVAL_SIZE: 510 pairs/sentences for nli/pa/sa/mtod, 210 tagged
sentences, 300 questions), so one example moves a score by at most ~0.2-0.5 points.

Every language, zero-shot ones included, also gets unlabelled running text `text/<lang>.txt`
(one sentence per line, blank line between documents, like a CC-100 dump) from the same world
but its own RNG streams, for the tiny encoder's tokenizer and MLM pretraining; no dev/test
sentence of any task occurs in it verbatim. A separate held-out text `heldout_text/<lang>.txt`
(same kind of documents, a stream of its own, no sentence of the pretraining text) is what the
masked-LM loss of trained encoders is measured on (Lee et al. 2022 §4.2; CC-100 in the paper).

Calibration (scripts/calibrate_synthetic.py): the tasks are made learnable by the tiny encoder
within the default step budget without becoming trivial. PA non-paraphrases are mostly lexical
(negation flipped, antonym, replaced entity; PA_NONPARA) rather than pure argument swaps; POS has
context-dependent NOUN/VERB and ADJ/VERB homographs in every language (HOMOGRAPHS, with future
`will` + base-form clauses, FUTURE) and a larger open-class vocabulary; QA paragraphs are short
(QA_EVENTS) so a question and its paragraph fit one feature window. NLI,
PA and QA are parallel across languages like XNLI/PAWS-X/MLQA (translations of the same latent
items, ids shared); NER, POS, SA and MTOD are sampled per language. Files go through
`pipeline.data.writers`, so the readers see exactly the real formats. Everything is
deterministic from `seed` (string-seeded `random.Random` streams per task/split/language, never
the global RNG): the same arguments give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline.data import writers
from pipeline.errors import ConfigError
from pipeline.io import atomic_dir, atomic_write_json, read_json
from pipeline.records import TASK_TYPES

# --------------------------------------------------------------------------------------------
# Lexicon: concept key -> (source-language form, UPOS). The key prefix names the concept class.
# --------------------------------------------------------------------------------------------

_FUNCTION: dict[str, tuple[str, str]] = {
    "det:the": ("the", "DET"),
    "det:a": ("a", "DET"),
    "adp:in": ("in", "ADP"),
    "adp:with": ("with", "ADP"),
    "adp:on": ("on", "ADP"),
    "adp:at": ("at", "ADP"),
    "adp:for": ("for", "ADP"),
    "adp:to": ("to", "ADP"),
    "part:not": ("not", "PART"),
    "cconj:and": ("and", "CCONJ"),
    "aux:is": ("is", "AUX"),
    "aux:will": ("will", "AUX"),
    "adv:very": ("very", "ADV"),
    "wh:who": ("who", "PRON"),
    "wh:what": ("what", "PRON"),
    "wh:where": ("where", "ADV"),
    "wh:which": ("which", "PRON"),
    "pron:i": ("I", "PRON"),
    "pron:me": ("me", "PRON"),
    "pron:my": ("my", "PRON"),
    "pron:it": ("it", "PRON"),
    "intj:please": ("please", "INTJ"),
    "det:all": ("all", "DET"),
}
_PUNCT = {"punct:.": (".", "PUNCT"), "punct:,": (",", "PUNCT"), "punct:?": ("?", "PUNCT")}

#: narrative verbs (past tense): name -> (form, patient type)
VERBS: dict[str, tuple[str, str]] = {
    "meet": ("met", "PER"),
    "encounter": ("encountered", "PER"),
    "call": ("called", "PER"),
    "phone": ("phoned", "PER"),
    "hire": ("hired", "PER"),
    "fire": ("fired", "PER"),
    "help": ("helped", "PER"),
    "assist": ("assisted", "PER"),
    "praise": ("praised", "PER"),
    "blame": ("blamed", "PER"),
    "invite": ("invited", "PER"),
    "thank": ("thanked", "PER"),
    "buy": ("bought", "THING"),
    "purchase": ("purchased", "THING"),
    "sell": ("sold", "THING"),
    "repair": ("repaired", "THING"),
    "fix": ("fixed", "THING"),
    "break": ("broke", "THING"),
    "find": ("found", "THING"),
    "lose": ("lost", "THING"),
    "paint": ("painted", "THING"),
    "borrow": ("borrowed", "THING"),
    "open": ("opened", "THING"),
    "close": ("closed", "THING"),
    "join": ("joined", "ORG"),
    "leave": ("left", "ORG"),
    "fund": ("funded", "ORG"),
    "sue": ("sued", "ORG"),
    "advise": ("advised", "ORG"),
    "visit": ("visited", "LOC"),
    "reach": ("reached", "LOC"),
    "explore": ("explored", "LOC"),
    # verbs whose base form (future `will X`) is also a noun: UD-style NOUN/VERB homographs
    "watch": ("watched", "THING"),
    "book": ("booked", "THING"),
    "ring": ("rang", "PER"),
    "radio": ("radioed", "PER"),
    "chair": ("chaired", "ORG"),
    "map": ("mapped", "LOC"),
    "table": ("tabled", "THING"),
    "bag": ("bagged", "THING"),
    "clock": ("clocked", "PER"),
    "house": ("housed", "PER"),
    "ticket": ("ticketed", "PER"),
    "mirror": ("mirrored", "PER"),
    "bike": ("biked", "LOC"),
}
_PAIRS_ANT = [("hire", "fire"), ("praise", "blame"), ("buy", "sell"), ("repair", "break")]
_PAIRS_ANT += [("find", "lose"), ("open", "close"), ("join", "leave")]
_PAIRS_SYN = [("meet", "encounter"), ("call", "phone"), ("help", "assist"), ("buy", "purchase")]
_PAIRS_SYN += [("repair", "fix")]
ANTONYM = {a: b for x, y in _PAIRS_ANT for a, b in ((x, y), (y, x))}
SYNONYM = {a: b for x, y in _PAIRS_SYN for a, b in ((x, y), (y, x))}

THINGS = ["car", "book", "house", "bike", "phone", "table", "painting", "boat", "computer", "lamp"]
THINGS += ["chair", "clock", "ring", "guitar", "camera", "bag", "piano", "map", "watch", "radio"]
THINGS += ["paint", "bottle", "ticket", "letter", "basket", "mirror", "jacket", "ladder", "kettle"]
THINGS += ["helmet", "bucket", "blanket"]
MOD_ADJ = ["red", "blue", "green", "old", "new", "big", "small", "cheap", "expensive", "heavy"]
MOD_ADJ += ["wooden", "tiny", "huge", "dark", "bright", "modern"]
# homographs of verb forms (ADJ vs VERB): past `lost`, `fixed`, `closed`, `painted`, `booked`;
# base `open`
MOD_ADJ += ["lost", "fixed", "closed", "painted", "open", "booked"]
ADJ_ANTONYM = {"old": "new", "new": "old", "big": "small", "small": "big"}
ADJ_ANTONYM |= {"cheap": "expensive", "expensive": "cheap"}
ASPECTS = ["battery", "screen", "price", "delivery", "quality", "sound", "design", "size"]
ASPECTS += ["material", "service"]
POSITIVE = ["good", "great", "excellent", "nice", "perfect", "reliable", "comfortable", "fast"]
POSITIVE += ["beautiful", "useful"]
NEGATIVE = ["bad", "poor", "terrible", "awful", "slow", "ugly", "useless", "weak", "noisy"]
NEGATIVE += ["flimsy"]
NEUTRAL = ["normal", "average", "standard", "ordinary", "typical"]
SA_VERBS = {"love": ("loved", 1), "like": ("liked", 1), "hate": ("hated", -1)}
SA_VERBS |= {"dislike": ("disliked", -1)}
#: product noun -> MARC-like product category
PRODUCTS = {
    "phone": "wireless",
    "camera": "electronics",
    "radio": "electronics",
    "chair": "furniture",
}
PRODUCTS |= {"table": "furniture", "lamp": "home", "clock": "home", "bag": "luggage"}
PRODUCTS |= {"computer": "pc", "guitar": "musical_instruments", "watch": "watch", "bike": "sports"}
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
ORG_SUFFIX = ["bank", "group", "company", "university", "motors"]
LOC_PREFIX = ["port", "lake", "mount"]

# task-oriented dialogue (MTOD) vocabulary
MTOD_WORDS = ["set", "cancel", "show", "remind", "snooze", "delete", "wake", "check"]
MTOD_NOUNS = ["alarm", "alarms", "reminder", "reminders", "weather", "forecast", "temperature"]
MTOD_NOUNS += ["minutes", "morning", "evening", "tonight", "tomorrow", "today", "am", "pm"]
WEATHER_ATTR = ["rain", "snow", "sunny", "windy", "cold", "hot"]
TODO = {"buy": ["milk", "bread"], "call": ["mom"], "pay": ["rent", "bills"], "walk": ["dog"]}
TODO |= {"water": ["plants"], "take": ["medicine"], "feed": ["cat", "dog"], "clean": ["kitchen"]}


def _lexicon() -> dict[str, tuple[str, str]]:
    """All translatable concepts with their source form and UPOS (names are added per world)."""
    lex = dict(_FUNCTION)
    lex |= {f"verb:{v}": (f, "VERB") for v, (f, _) in VERBS.items()}
    lex |= {f"vb:{v}": (v, "VERB") for v in VERBS}  # base forms, after `will`
    lex |= {f"verb:{v}": (f, "VERB") for v, (f, _) in SA_VERBS.items()}
    lex |= {f"noun:{n}": (n, "NOUN") for n in THINGS + ASPECTS}
    lex |= {f"adj:{a}": (a, "ADJ") for a in MOD_ADJ + POSITIVE + NEGATIVE + NEUTRAL}
    lex |= {f"day:{d}": (d.capitalize(), "PROPN") for d in DAYS}
    lex |= {f"sfx:{s}": (s.capitalize(), "PROPN") for s in ORG_SUFFIX}
    lex |= {f"pfx:{p}": (p.capitalize(), "PROPN") for p in LOC_PREFIX}
    lex |= {f"mv:{v}": (v, "VERB") for v in MTOD_WORDS}
    lex |= {f"mn:{n}": (n, "NOUN") for n in MTOD_NOUNS}
    lex |= {f"ma:{a}": (a, "ADJ") for a in WEATHER_ATTR}
    lex |= {f"tv:{v}": (v, "VERB") for v in TODO}
    lex |= {f"tn:{n}": (n, "NOUN") for ns in TODO.values() for n in ns}
    return lex


LEXICON = _lexicon()


def _homographs(lex: Mapping[str, tuple[str, str]]) -> list[tuple[str, ...]]:
    """Groups of concepts written alike in the source language (`phone` NOUN and `will phone`
    VERB, `lost` ADJ and VERB): every language writes the members of a group alike too, so POS
    tags of these forms depend on the context in every language, as homographs do in UD."""
    by_form: dict[str, list[str]] = {}
    for key in sorted(lex):
        by_form.setdefault(lex[key][0].lower(), []).append(key)
    return [tuple(keys) for _, keys in sorted(by_form.items()) if len(keys) > 1]


HOMOGRAPHS = _homographs(LEXICON)
#: share of narrative events in the future (`will` + base form), the contexts of NOUN/VERB
#: homographs
FUTURE = 0.4

# --------------------------------------------------------------------------------------------
# Languages
# --------------------------------------------------------------------------------------------

ORDERS = ("SVO", "SOV", "VSO")
_CONSONANTS = "bcdfghjklmnprstvwz"
_SPECIAL_CONSONANTS = ["ñ", "ş", "ž", "ł"]
_ACCENTED = ["ä", "ö", "ü", "é", "á"]
_SOURCE_PHONOLOGY = ("bdfghklmnprstvz", "aeiou")


@dataclass(frozen=True)
class Language:
    """A synthetic language: surface forms of every concept plus its word-order parameters."""

    code: str
    share: float
    order: str
    adj: str  # "pre" or "post": adjective before/after the noun
    zero_shot: bool
    forms: Mapping[str, str] = field(repr=False)
    fuse: bool = False  # CoNLL-U renders some ADP+DET pairs as a multiword token
    source: bool = False  # the source language (l0): the one publishers ship untranslated

    def word(self, key: str) -> str:
        return key[4:] if key.startswith("num:") else self.forms[key]

    @property
    def postpositions(self) -> bool:
        return self.order == "SOV"

    def relatedness(self) -> dict[str, Any]:
        return {"share": self.share, "order": self.order, "adj": self.adj}


def _pseudo_word(rng: random.Random, cons: Sequence[str], vowels: Sequence[str], n_syl: int) -> str:
    out = ""
    for _ in range(n_syl):
        out += rng.choice(cons) + rng.choice(vowels)
        if rng.random() < 0.25:
            out += rng.choice(cons)
    return out


def _source_names(seed: int, n: int, taken: set[str]) -> list[str]:
    """Capitalized two-syllable source-language names, distinct from each other and all words."""
    rng = random.Random(f"{seed}:names")
    cons, vowels = _SOURCE_PHONOLOGY
    names: list[str] = []
    while len(names) < n:
        w = _pseudo_word(rng, cons, vowels, 2).capitalize()
        if w.lower() not in taken and len(w) >= 4:
            taken.add(w.lower())
            names.append(w)
    return names


def build_language(
    seed: int,
    index: int,
    share: float,
    order: str,
    adj: str,
    zero_shot: bool,
    source: Mapping[str, str],
) -> Language:
    """Surface forms for language `l<index>`: each concept keeps its source form with probability
    `share` (names: (1 + share) / 2, else a vowel-shifted transliteration), else gets a pseudo-word
    from the language's own syllable inventory. Deterministic in (seed, index, share)."""
    code = f"l{index}"
    if index == 0:
        return Language(code, 1.0, order, adj, zero_shot, dict(source), source=True)
    rng = random.Random(f"{seed}:lang:{index}")
    cons = sorted(rng.sample(_CONSONANTS, 10))
    vowels = sorted(rng.sample("aeiou", 4))
    if index >= 2:
        vowels.append(_ACCENTED[index % len(_ACCENTED)])
    if index >= 3:
        cons.append(_SPECIAL_CONSONANTS[index % len(_SPECIAL_CONSONANTS)])
    shift = {v: rng.choice(vowels) for v in "aeiou"}
    keep_name = (1.0 + share) / 2
    forms: dict[str, str] = {}
    taken = {f.lower() for f in source.values()}
    # first pass: coin flips (one per concept, in a fixed order) decide shared vs own form
    own: list[str] = []
    for key in sorted(source):
        src = source[key]
        if key.startswith("punct:"):
            forms[key] = src
        elif key.startswith("name:"):
            if rng.random() < keep_name:
                forms[key] = src
            else:
                forms[key] = "".join(shift.get(c, c) for c in src.lower()).capitalize()
        elif rng.random() < share:
            forms[key] = src
        else:
            own.append(key)
    taken |= {f.lower() for k, f in forms.items() if not k.startswith("name:")}
    for key in own:
        src = source[key]
        n_syl = max(1, min(3, round(len(src) / 3) + rng.choice((-1, 0, 0, 1))))
        while True:
            w = _pseudo_word(rng, cons, vowels, n_syl)
            if w not in taken and len(w) >= 2:
                break
            n_syl = min(3, n_syl + 1) if rng.random() < 0.3 else n_syl
        taken.add(w)
        forms[key] = w.capitalize() if src[:1].isupper() else w
    for group in HOMOGRAPHS:  # homographs of the source stay homographs (the first's form)
        for key in group[1:]:
            if key in forms:
                forms[key] = forms[group[0]]
    return Language(code, share, order, adj, zero_shot, forms, fuse=index == 1)


# --------------------------------------------------------------------------------------------
# Latent world: entities, noun phrases, events
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ent:
    """A named entity (PER/ORG/LOC) or a day name (DAY, not an entity for NER)."""

    etype: str
    parts: tuple[str, ...]  # concept keys


@dataclass(frozen=True)
class NP:
    det: str
    adjs: tuple[str, ...]
    noun: str


@dataclass(frozen=True)
class Pro:
    key: str  # a pronoun concept, e.g. pron:i


Arg = Ent | NP | Pro


@dataclass(frozen=True)
class Event:
    agent: Arg
    verb: str  # concept key
    patient: Arg
    pps: tuple[tuple[str, Arg], ...] = ()
    neg: bool = False
    fut: bool = False  # `will` + base form (vb:<verb>) instead of the past form


@dataclass(frozen=True)
class World:
    """The entity inventory shared by all tasks and languages (names are source-language keys)."""

    first: tuple[str, ...]
    last: tuple[str, ...]
    orgs: tuple[str, ...]
    locs: tuple[str, ...]

    def ent(self, rng: random.Random, etype: str) -> Ent:
        # names are ambiguous across types (a surname alone, a firm named after a family, a
        # town named like a person), so NER needs context, not only a name list
        if etype == "PER":
            r = rng.random()
            if r < 0.7:
                return Ent("PER", (rng.choice(self.first), rng.choice(self.last)))
            return Ent("PER", (rng.choice(self.first if r < 0.85 else self.last),))
        if etype == "ORG":
            r = rng.random()
            if r < 0.15:
                return Ent("ORG", (rng.choice(self.orgs if r < 0.1 else self.last),))
            stem = rng.choice(self.last) if r < 0.4 else rng.choice(self.orgs)
            return Ent("ORG", (stem, "sfx:" + rng.choice(ORG_SUFFIX)))
        if etype == "LOC":
            loc = rng.choice(self.locs)
            return Ent(
                "LOC", ("pfx:" + rng.choice(LOC_PREFIX), loc) if rng.random() < 0.3 else (loc,)
            )
        if etype == "DAY":
            return Ent("DAY", ("day:" + rng.choice(DAYS),))
        raise ValueError(etype)

    def np(self, rng: random.Random, nouns: Sequence[str] = THINGS) -> NP:
        adjs = ("adj:" + rng.choice(MOD_ADJ),) if rng.random() < 0.6 else ()
        det = "det:the" if rng.random() < 0.7 else "det:a"
        return NP(det, adjs, "noun:" + rng.choice(nouns))

    def arg(self, rng: random.Random, ptype: str) -> Arg:
        return self.np(rng) if ptype == "THING" else self.ent(rng, ptype)

    def event(
        self, rng: random.Random, verbs: Sequence[str] | None = None, pool: Sequence[Ent] = ()
    ) -> Event:
        """A random event; agents/person patients come from `pool` when given (recurring names)."""
        verb = rng.choice(verbs or sorted(VERBS))
        ptype = VERBS[verb][1]

        def pick(etype: str) -> Arg:
            cands = [e for e in pool if e.etype == etype]
            return rng.choice(cands) if cands and rng.random() < 0.7 else self.arg(rng, etype)

        agent = pick("ORG" if rng.random() < 0.25 else "PER")
        patient = pick(ptype)
        while patient == agent:
            patient = self.arg(rng, ptype)
        pps: list[tuple[str, Arg]] = []
        if ptype != "LOC" and rng.random() < 0.5:
            pps.append(("adp:in", pick("LOC")))
        if rng.random() < 0.25:
            pps.append(("adp:on", self.ent(rng, "DAY")))
        if rng.random() < 0.15:
            pps.append(("adp:with", self.np(rng)))
        rng.shuffle(pps)
        return Event(agent, "verb:" + verb, patient, tuple(pps), fut=rng.random() < FUTURE)


def build_world(seed: int) -> tuple[World, dict[str, str]]:
    """The latent world and the source-language forms of every concept (lexicon + names)."""
    source = {k: f for k, (f, _) in LEXICON.items()} | {k: f for k, (f, _) in _PUNCT.items()}
    names = _source_names(seed, 24 + 24 + 14 + 24, {f.lower() for f in source.values()})
    keys = [f"name:{n}" for n in names]
    source |= {k: n for k, n in zip(keys, names)}
    first, last, orgs, locs = keys[:24], keys[24:48], keys[48:62], keys[62:]
    world = World(tuple(first), tuple(last), tuple(orgs), tuple(locs + first[:6]))
    return world, source


def _upos(key: str) -> str:
    if key.startswith(("name:", "num:")):
        return "PROPN" if key.startswith("name:") else "NUM"
    return (LEXICON.get(key) or _PUNCT[key])[1]


# --------------------------------------------------------------------------------------------
# Realization: latent structures -> tokens with UPOS, IOB2 tags, dependency heads, argument ids
# --------------------------------------------------------------------------------------------


@dataclass
class Tok:
    form: str
    upos: str
    ent: str = "O"
    deprel: str = "dep"
    head: int | None = None  # index of the head within the phrase; None: the phrase head
    arg: str = ""


@dataclass
class Phrase:
    role: str  # relation of the phrase head to the clause head (root for the clause head)
    toks: list[Tok]


@dataclass
class Sent:
    """A realized sentence: parallel per-token lists; heads are 1-based (0 = root)."""

    forms: list[str]
    upos: list[str]
    ents: list[str]
    heads: list[int]
    deprels: list[str]
    args: list[str]

    @property
    def text(self) -> str:
        return writers.detokenize(self.forms)[0]

    @property
    def tokenized(self) -> str:
        return " ".join(self.forms)

    def span(self, arg: str) -> tuple[int, int]:
        """Character span of the tokens of argument `arg` in `self.text`."""
        idx = [i for i, a in enumerate(self.args) if a == arg]
        if not idx or idx != list(range(idx[0], idx[-1] + 1)):
            raise ValueError(f"argument {arg!r} is not a contiguous span in {self.forms}")
        spans = writers.detokenize(self.forms)[1]
        return spans[idx[0]][0], spans[idx[-1]][1]


def _tok(L: Language, key: str, arg: str, deprel: str = "dep", head: int | None = None) -> Tok:
    return Tok(L.word(key), _upos(key), "O", deprel, head, arg)


def r_arg(L: Language, a: Arg, arg: str, role: str) -> Phrase:
    """An argument phrase: a name (flat), a noun phrase (det, amod) or a pronoun."""
    if isinstance(a, Ent):
        toks = []
        for j, k in enumerate(a.parts):
            tag = "O" if a.etype == "DAY" else ("I-" if j else "B-") + a.etype
            toks.append(Tok(L.word(k), "PROPN", tag, "flat", 0 if j else None, arg))
        return Phrase(role, toks)
    if isinstance(a, Pro):
        return Phrase(role, [_tok(L, a.key, arg)])
    n_adj = len(a.adjs)
    noun_at = 1 + (n_adj if L.adj == "pre" else 0)
    det = _tok(L, a.det, arg, "det", noun_at)
    adjs = [_tok(L, k, arg, "amod", noun_at) for k in a.adjs]
    noun = _tok(L, a.noun, arg)
    return Phrase(role, [det, *adjs, noun] if L.adj == "pre" else [det, noun, *adjs])


def r_pp(L: Language, adp: str, a: Arg, arg: str) -> Phrase:
    """A prepositional (postpositional in SOV languages) phrase; the noun phrase is its head."""
    obj = r_arg(L, a, arg, "obl")
    if L.postpositions:
        head = next(i for i, t in enumerate(obj.toks) if t.head is None)
        return Phrase("obl", [*obj.toks, _tok(L, adp, arg + ".adp", "case", head)])
    for t in obj.toks:
        t.head = None if t.head is None else t.head + 1
    head = next(i for i, t in enumerate(obj.toks) if t.head is None) + 1
    return Phrase("obl", [_tok(L, adp, arg + ".adp", "case", head), *obj.toks])


def _ordered(L: Language, subj: Phrase, verb: Phrase, obj: Phrase | None, pps, neg) -> list[Phrase]:
    n = [neg] if neg else []
    o = [obj] if obj else []
    if L.order == "SVO":
        return [subj, *n, verb, *o, *pps]
    if L.order == "SOV":
        return [subj, *pps, *o, *n, verb]
    return [*n, verb, subj, *o, *pps]


def r_clause(
    L: Language, ev: Event, topic: int | None = None, ask: str | None = None, keep_pps=None
) -> list[Phrase]:
    """An event clause. `topic`: index of a PP fronted with a comma (PAWS-style reordering).
    `ask`: "agent", "patient" or "pp<i>": that argument becomes a question word (fronted unless
    the language is SOV). `keep_pps`: indices of PPs to realize (default all)."""
    subj = r_arg(L, ev.agent, "agent", "nsubj")
    neg = Phrase("advmod", [_tok(L, "part:not", "neg")]) if ev.neg else None
    if ev.fut:  # `will (not) V`; SOV: `(not) V will`; negation stays inside the verb group
        v = _tok(L, "vb:" + ev.verb[5:], "verb")
        aux = [_tok(L, "aux:will", "aux", "aux")]
        nt = [_tok(L, "part:not", "neg", "advmod")] if ev.neg else []
        toks = [*nt, v, *aux] if L.order == "SOV" else [*aux, *nt, v]
        at = toks.index(v)
        for t in toks:
            if t is not v:
                t.head = at
        verb, neg = Phrase("root", toks), None
    else:
        verb = Phrase("root", [_tok(L, ev.verb, "verb")])
    obj = r_arg(L, ev.patient, "patient", "obj")
    pps = [
        r_pp(L, adp, a, f"pp{i}")
        for i, (adp, a) in enumerate(ev.pps)
        if keep_pps is None or i in keep_pps or ask == f"pp{i}"
    ]
    wh = None
    if ask == "agent":
        subj = wh = Phrase("nsubj", [_tok(L, _wh(ev.agent), "wh")])
    elif ask == "patient":
        obj = wh = Phrase("obj", [_tok(L, _wh(ev.patient), "wh")])
    elif ask:
        i = next(j for j, p in enumerate(pps) if p.toks[0].arg.startswith(ask))
        pps[i] = wh = Phrase("advmod", [_tok(L, "wh:where", "wh")])
    phrases = _ordered(L, subj, verb, obj, pps, neg)
    if wh is not None and L.order != "SOV":
        phrases.remove(wh)
        phrases.insert(0, wh)
    if topic is not None:
        pp = next(p for p in pps if p.toks[0].arg.split(".")[0] == f"pp{topic}")
        phrases.remove(pp)
        phrases[:0] = [pp, Phrase("punct", [_tok(L, "punct:,", "comma")])]
    return phrases


def _wh(a: Arg) -> str:
    if isinstance(a, Ent):
        return {"PER": "wh:who", "ORG": "wh:which", "LOC": "wh:where"}.get(a.etype, "wh:what")
    return "wh:what"


def r_copula(
    L: Language, subj: Arg, adj: str, very: bool = False, neg: bool = False
) -> list[Phrase]:
    """`The battery is (not) (very) good.` in the language's order; the adjective is the root (UD)."""
    s = r_arg(L, subj, "subj", "nsubj")
    adv = [_tok(L, "adv:very", "adv", "advmod", 1)] if very else []
    adjp = Phrase("root", [*adv, _tok(L, adj, "adj")])
    cop = Phrase("cop", [_tok(L, "aux:is", "cop")])
    n = [Phrase("advmod", [_tok(L, "part:not", "neg")])] if neg else []
    if L.order == "SVO":
        return [s, cop, *n, adjp]
    if L.order == "SOV":
        return [s, adjp, *n, cop]
    return [*n, cop, s, adjp]


def assemble(L: Language, clauses: Sequence[list[Phrase]], end: str = "punct:.") -> Sent:
    """Linearize clauses (joined by `and`) into a sentence with global heads; capitalize it."""
    forms, upos, ents, heads, deprels, args = [], [], [], [], [], []
    root0 = 0
    for ci, phrases in enumerate(clauses):
        if ci:
            phrases = [Phrase("cc", [_tok(L, "cconj:and", "cc")]), *phrases]
        starts, pos = [], len(forms)
        for ph in phrases:
            starts.append(pos)
            pos += len(ph.toks)
        ri = next(i for i, ph in enumerate(phrases) if ph.role == "root")
        clause_head = starts[ri] + next(j for j, t in enumerate(phrases[ri].toks) if t.head is None)
        for ph, st in zip(phrases, starts):
            for t in ph.toks:
                if t.head is not None:
                    head, rel = st + t.head + 1, t.deprel
                elif ph.role == "root":
                    head, rel = (0, "root") if ci == 0 else (root0, "conj")
                else:
                    head, rel = clause_head + 1, ph.role
                forms.append(t.form)
                upos.append(t.upos)
                ents.append(t.ent)
                heads.append(head)
                deprels.append(rel)
                args.append(f"c{ci}.{t.arg}")
        if ci == 0:
            root0 = clause_head + 1
    forms.append(L.word(end))
    upos.append("PUNCT")
    ents.append("O")
    heads.append(root0)
    deprels.append("punct")
    args.append("end")
    forms[0] = forms[0][:1].upper() + forms[0][1:]
    return Sent(forms, upos, ents, heads, deprels, args)


# --------------------------------------------------------------------------------------------
# Tasks. Parallel tasks (nli, pa, qa) build latent items per split, realized in each language;
# the others sample per language. Every RNG is `random.Random("<seed>:<task>:<split>[:<lang>]")`.
# --------------------------------------------------------------------------------------------

NLI_LABELS = ("entailment", "neutral", "contradiction")
XNLI_GENRES = ("facetoface", "fiction", "government", "letters", "nineeleven", "oup", "slate")
XNLI_GENRES += ("telephone", "travel", "verbatim")


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random(":".join(map(str, (seed, *parts))))


def _subset(rng: random.Random, n: int, p: float) -> set[int]:
    return {i for i in range(n) if rng.random() < p}


def _nli_hypotheses(rng: random.Random, W: World, prem: list[Event]) -> list[tuple[Any, str]]:
    """One (event, kept PP indices or None for all) hypothesis per label for a premise.

    entailment: a premise event with some modifiers dropped, maybe a synonym verb;
    contradiction: negated, antonym verb, another place, or antonym adjective;
    neutral: an added unrelated fact (a new PP) or another event about the same agent.
    Under negation dropping or adding modifiers flips entailment, so a negated premise event is
    only repeated (entailment), un-negated (contradiction) or paired with another event (neutral).
    """
    e = rng.choice(prem)
    v = e.verb[5:]
    n_pp = len(e.pps)
    ent = replace(e, verb="verb:" + SYNONYM[v]) if v in SYNONYM and rng.random() < 0.3 else e
    keep = None if e.neg else _subset(rng, n_pp, 0.5)
    out: list[tuple[Any, str]] = [((ent, keep), "entailment")]

    have = {adp for adp, _ in e.pps}
    new: list[tuple[str, Arg]] = []
    if "adp:in" not in have and VERBS[v][1] != "LOC":
        new.append(("adp:in", W.ent(rng, "LOC")))
    if "adp:on" not in have:
        new.append(("adp:on", W.ent(rng, "DAY")))
    if "adp:with" not in have:
        new.append(("adp:with", W.np(rng)))
    if new and not e.neg and rng.random() < 0.5:
        neu = (replace(e, pps=(*e.pps, rng.choice(new))), _subset(rng, n_pp, 0.5) | {n_pp})
    else:
        related = {v, SYNONYM.get(v), ANTONYM.get(v)}
        verbs = [x for x in sorted(VERBS) if x not in related]
        other = W.event(rng, verbs)
        while other.patient == e.agent:
            other = W.event(rng, verbs)
        neu = (replace(other, agent=e.agent, neg=rng.random() < 0.2), None)
    out.append((neu, "neutral"))

    cands = ["neg"]
    if not e.neg:
        cands += ["antonym"] * (v in ANTONYM)
        locs = [i for i, (adp, _) in enumerate(e.pps) if adp == "adp:in"]
        cands += ["place"] * bool(locs)
        p = e.patient
        cands += ["adj"] * (isinstance(p, NP) and bool(p.adjs) and p.adjs[0][4:] in ADJ_ANTONYM)
    kind = rng.choice(cands)
    keep = None if e.neg else _subset(rng, n_pp, 0.5)
    if kind == "neg":
        con = replace(e, neg=not e.neg)
    elif kind == "antonym":
        con = replace(e, verb="verb:" + ANTONYM[v])
    elif kind == "place":
        i = rng.choice(locs)
        new_loc = W.ent(rng, "LOC")
        while new_loc == e.pps[i][1]:
            new_loc = W.ent(rng, "LOC")
        pps = list(e.pps)
        pps[i] = ("adp:in", new_loc)
        con, keep = replace(e, pps=tuple(pps)), (keep or set()) | {i}
    else:
        assert isinstance(p, NP)
        con = replace(e, patient=replace(p, adjs=("adj:" + ADJ_ANTONYM[p.adjs[0][4:]],)))
    out.append(((con, keep), "contradiction"))
    return out


def nli_items(seed: int, W: World, split: str, n: int) -> list[dict[str, Any]]:
    """Latent NLI items: each premise comes with all three labels (as in MultiNLI/XNLI), so the
    premise alone says nothing about the label. Train order is shuffled, dev/test grouped."""
    rng = _rng(seed, "nli", split)
    items = []
    for p in range((n + 2) // 3):
        prem = [W.event(rng) for _ in range(1 if rng.random() < 0.6 else 2)]
        if rng.random() < 0.15:
            prem[0] = replace(prem[0], neg=True)
        hyps = _nli_hypotheses(rng, W, prem)
        rng.shuffle(hyps)
        for (hyp, keep), label in hyps:
            items.append({"prompt": p, "premise": prem, "hyp": hyp, "keep": keep, "label": label})
    if split == "train":
        rng.shuffle(items)
    return items[:n]


def _two_pps(rng: random.Random, W: World, ev: Event) -> Event:
    """`ev` with exactly two PPs (added from the kinds it lacks), so PPs can be reordered."""
    have = {adp for adp, _ in ev.pps}
    missing = [("adp:in", "LOC"), ("adp:on", "DAY"), ("adp:with", "THING")]
    if VERBS[ev.verb[5:]][1] == "LOC":
        missing = missing[1:]
    missing = [(adp, t) for adp, t in missing if adp not in have]
    rng.shuffle(missing)
    pps = list(ev.pps[:2])
    for adp, t in missing[: 2 - len(pps)]:
        pps.append((adp, W.arg(rng, t) if t == "THING" else W.ent(rng, t)))
    return replace(ev, pps=tuple(pps))


#: PA non-paraphrase kinds and their weights: lexical changes (negation flipped, antonym verb,
#: an entity replaced) outnumber pure argument swaps (same bag of words, PAWS's hard case)
PA_NONPARA = {"neg": 2.0, "antonym": 1.0, "replace": 1.0, "swap": 1.0}
PA_NEGATED = 0.2  # share of negated first sentences (so `not` alone is no label cue)
PA_SYNONYM = 0.2  # share of paraphrases with a synonym verb (the others only reorder)


def pa_items(seed: int, W: World, split: str, n: int) -> list[dict[str, Any]]:
    """Latent PAWS-like pairs over events with two PPs. Paraphrase (1): the same event with the
    PPs reordered or fronted, sometimes with a synonym verb. Non-paraphrase (0): negation
    flipped, an antonym verb, one entity replaced, or agent/patient swapped (same bag of words),
    weighted by PA_NONPARA. Surface reorderings (a PP fronted with a comma, the PPs swapped)
    happen at the same rate in both classes, and the first sentence is negated as often in both,
    so neither is a label cue on its own."""
    rng = _rng(seed, "pa", split)
    items = []
    for i in range(n):
        ev = _two_pps(rng, W, W.event(rng))
        ev = replace(ev, neg=rng.random() < PA_NEGATED)
        v = ev.verb[5:]
        label = i % 2 if split != "train" else rng.randint(0, 1)
        topic = rng.randrange(2) if rng.random() < 0.5 else None
        if label == 1:
            syn = v in SYNONYM and rng.random() < PA_SYNONYM
            ev2 = replace(ev, verb="verb:" + SYNONYM[v]) if syn else ev
            swap_pps = topic is None and not syn  # a paraphrase never repeats s1 verbatim
        else:
            kinds = ["neg", "replace"]
            if isinstance(ev.patient, Ent) and ev.patient.etype in ("PER", "ORG"):
                kinds.append("swap")
            if v in ANTONYM:
                kinds.append("antonym")
            kind = rng.choices(kinds, [PA_NONPARA[k] for k in kinds])[0]
            if kind == "neg":
                ev2 = replace(ev, neg=not ev.neg)
            elif kind == "swap":
                ev2 = replace(ev, agent=ev.patient, patient=ev.agent)
            elif kind == "antonym":
                ev2 = replace(ev, verb="verb:" + ANTONYM[v])
            else:
                new = W.ent(rng, ev.agent.etype) if isinstance(ev.agent, Ent) else ev.agent
                while new == ev.agent or new == ev.patient:
                    new = W.ent(rng, "PER")
                ev2 = replace(ev, agent=new)
            swap_pps = rng.random() < 0.42  # about P(swap | paraphrase)
        if swap_pps:
            ev2 = replace(ev2, pps=ev2.pps[::-1])
        items.append({"id": i + 1, "ev1": ev, "ev2": ev2, "topic": topic, "label": label})
    return items


QA_EVENTS = (2, 3)  # events (sentences) per QA paragraph, min and max


def qa_items(seed: int, W: World, split: str, n: int) -> list[dict[str, Any]]:
    """Latent QA paragraphs: 2-3 events with distinct verbs over a small pool of recurring
    entities (so answers also occur as distractors), 1-2 questions each, `n` questions in all.
    Short paragraphs (one feature window at max_length 64) keep QA learnable by the tiny
    encoder; the distractors keep it from being trivial."""
    rng = _rng(seed, "qa", split)
    paras, total = [], 0
    while total < n:
        pool = [W.ent(rng, t) for t in ("PER", "PER", "PER", "ORG", "LOC", "LOC")]
        events = [
            W.event(rng, [v], pool) for v in rng.sample(sorted(VERBS), rng.randint(*QA_EVENTS))
        ]
        asks = [(i, "agent") for i in range(len(events))] + [
            (i, "patient") for i in range(len(events))
        ]
        asks += [
            (i, f"pp{j}")
            for i, ev in enumerate(events)
            for j, (adp, a) in enumerate(ev.pps)
            if adp == "adp:in"
        ]
        qs = rng.sample(asks, min(len(asks), 1 if rng.random() < 0.5 else 2, n - total))
        qs = [(i, role, _subset(rng, len(events[i].pps), 0.5)) for i, role in qs]
        paras.append({"events": events, "questions": qs, "index": len(paras)})
        total += len(qs)
    return paras


def _review_plan(rng: random.Random, stars: int) -> list[int]:
    k = rng.randint(2, 4)
    plan = {5: [1] * k, 4: [1] * (k - 1) + [0], 3: [1, -1] + [0] * (k - 2)}
    plan |= {2: [-1] * (k - 1) + [0], 1: [-1] * k}
    out = plan[stars]
    rng.shuffle(out)
    return out


def sa_review(rng: random.Random, L: Language) -> dict[str, Any]:
    """A product review: sentences of aspect + polarity adjective (sometimes negated, e.g. `not
    bad`) or `I loved the X`; stars 1-5 from the balance of polarities (3: mixed or neutral)."""
    stars = rng.randint(1, 5)
    product = rng.choice(sorted(PRODUCTS))
    sents = []
    for pol in _review_plan(rng, stars):
        subj: Arg = NP("det:the", (), "noun:" + rng.choice(ASPECTS + [product]))
        if pol and rng.random() < 0.25:
            verb = rng.choice([v for v, (_, p) in sorted(SA_VERBS.items()) if p == pol])
            ev = Event(Pro("pron:i"), "verb:" + verb, subj)
            sents.append(assemble(L, [r_clause(L, ev)]))
            continue
        neg = pol != 0 and rng.random() < 0.15
        pool = NEUTRAL if pol == 0 else (POSITIVE if (pol > 0) != neg else NEGATIVE)
        very = pol != 0 and not neg and rng.random() < 0.3
        sents.append(assemble(L, [r_copula(L, subj, "adj:" + rng.choice(pool), very, neg)]))
    total = (stars > 3) - (stars < 3)
    pool = NEUTRAL if total == 0 else (POSITIVE if total > 0 else NEGATIVE)
    title_np = NP("det:the", ("adj:" + rng.choice(pool),), "noun:" + product)
    title = r_arg(L, title_np, "t", "root").toks[1:]
    title_text = " ".join(t.form for t in title)
    return {
        "stars": stars,
        "review_body": " ".join(s.text for s in sents),
        "review_title": title_text[:1].upper() + title_text[1:],
        "product_category": PRODUCTS[product],
    }


def tagging_sentence(rng: random.Random, L: Language, W: World, task: str) -> Sent:
    """NER/POS sentences: one or two event clauses; POS also gets copulas and questions."""
    r = rng.random()
    if task == "pos" and r < 0.2:
        subj: Arg = W.ent(rng, "LOC") if rng.random() < 0.3 else W.np(rng, THINGS + ASPECTS)
        adj = "adj:" + rng.choice(POSITIVE + NEGATIVE + MOD_ADJ)
        return assemble(L, [r_copula(L, subj, adj, rng.random() < 0.3, rng.random() < 0.2)])
    if task == "pos" and r < 0.35:
        ev = W.event(rng)
        roles = ["agent", "patient"] + [
            f"pp{i}" for i, (a, _) in enumerate(ev.pps) if a == "adp:in"
        ]
        return assemble(L, [r_clause(L, ev, ask=rng.choice(roles))], "punct:?")
    evs = [W.event(rng) for _ in range(1 if rng.random() < 0.7 else 2)]
    evs = [replace(e, neg=rng.random() < 0.1) for e in evs]
    topic = rng.randrange(len(evs[0].pps)) if evs[0].pps and rng.random() < 0.15 else None
    return assemble(L, [r_clause(L, e, topic if i == 0 else None) for i, e in enumerate(evs)])


# MTOD: intent -> builder of constituents [(kind, [(key, slot|None), ...]), ...]; kinds: Q (question
# particle), V (verb), O (object), X (adjunct); SOV languages put X and O before V and Q last.

MTOD_INTENTS = (
    "alarm/set_alarm",
    "alarm/cancel_alarm",
    "alarm/show_alarms",
    "alarm/snooze_alarm",
    "reminder/set_reminder",
    "reminder/cancel_reminder",
    "reminder/show_reminders",
    "weather/find",
)


def _datetime(rng: random.Random, snooze: bool = False) -> list[tuple[str, str | None]]:
    d = "datetime"
    if snooze:
        return [("adp:for", None), (f"num:{rng.choice([5, 10, 15, 20, 30])}", d), ("mn:minutes", d)]
    r = rng.randrange(6)
    if r == 0:
        return [
            ("adp:at", None),
            (f"num:{rng.randint(1, 12)}", d),
            (rng.choice(["mn:am", "mn:pm"]), d),
        ]
    if r == 1:
        return [(rng.choice(["mn:tomorrow", "mn:today", "mn:tonight"]), d)]
    if r == 2:
        return [("mn:tomorrow", d), (rng.choice(["mn:morning", "mn:evening"]), d)]
    if r == 3:
        return [("adp:on", None), ("day:" + rng.choice(DAYS), d)]
    if r == 4:
        return [("adp:in", None), (f"num:{rng.choice([5, 10, 20, 30, 45])}", d), ("mn:minutes", d)]
    return [("adp:at", None), (f"num:{rng.randint(1, 12)}", d), ("mn:pm", d), ("mn:tomorrow", d)]


def _todo(rng: random.Random) -> list[tuple[str, str | None]]:
    verb = rng.choice(sorted(TODO))
    return [
        ("adp:to", None),
        ("tv:" + verb, "reminder/todo"),
        ("tn:" + rng.choice(TODO[verb]), "reminder/todo"),
    ]


def mtod_constituents(rng: random.Random, W: World, intent: str) -> list[tuple[str, list]]:
    opt = rng.random() < 0.5
    dt = [("X", _datetime(rng))]
    if intent == "alarm/set_alarm":
        if rng.random() < 0.7:
            return [("V", [("mv:set", None)]), ("O", [("det:the", None), ("mn:alarm", None)]), *dt]
        return [("V", [("mv:wake", None)]), ("O", [("pron:me", None)]), *dt]
    if intent == "alarm/cancel_alarm":
        obj = (
            [("pron:my", None), ("mn:alarm", None)]
            if rng.random() < 0.6
            else [("det:all", None), ("mn:alarms", None)]
        )
        return [
            ("V", [(rng.choice(["mv:cancel", "mv:delete"]), None)]),
            ("O", obj),
            *(dt if opt else []),
        ]
    if intent == "alarm/show_alarms":
        return [
            ("V", [("mv:show", None)]),
            ("O", [("pron:my", None), ("mn:alarms", None)]),
            *(dt if opt else []),
        ]
    if intent == "alarm/snooze_alarm":
        x = [("X", _datetime(rng, snooze=True))] if opt else []
        return [("V", [("mv:snooze", None)]), ("O", [("det:the", None), ("mn:alarm", None)]), *x]
    rn = "reminder/noun"
    if intent == "reminder/set_reminder":
        x = [("X", _todo(rng)), *(dt if rng.random() < 0.7 else [])]
        if rng.random() < 0.6:
            return [("V", [("mv:remind", None)]), ("O", [("pron:me", None)]), *x]
        return [("V", [("mv:set", None)]), ("O", [("det:a", None), ("mn:reminder", rn)]), *x]
    if intent == "reminder/cancel_reminder":
        x = [("X", _todo(rng))] if opt else []
        verb = rng.choice(["mv:cancel", "mv:delete"])
        return [("V", [(verb, None)]), ("O", [("pron:my", None), ("mn:reminder", rn)]), *x]
    if intent == "reminder/show_reminders":
        return [
            ("V", [("mv:show", None)]),
            ("O", [("pron:my", None), ("mn:reminders", rn)]),
            *(dt if opt else []),
        ]
    # weather/find
    loc = [("X", [("adp:in", None), *[(k, "location") for k in W.ent(rng, "LOC").parts]])]
    x = [*(loc if rng.random() < 0.6 else []), *(dt if opt else [])]
    r = rng.random()
    if r < 0.4:
        noun = "mn:" + rng.choice(["weather", "forecast", "temperature"])
        return [
            ("Q", [("wh:what", None), ("aux:is", None)]),
            ("O", [("det:the", None), (noun, "weather/noun")]),
            *x,
        ]
    if r < 0.7:
        attr = "ma:" + rng.choice(WEATHER_ATTR)
        return [
            ("Q", [("aux:will", None), ("pron:it", None)]),
            ("V", [(attr, "weather/attribute")]),
            *x,
        ]
    return [
        ("V", [("mv:check", None)]),
        ("O", [("det:the", None), ("mn:weather", "weather/noun")]),
        *x,
    ]


_TODO_OV = {"tn:": 0, "tv:": 1}  # in SOV languages the to-do's object precedes its verb


def mtod_row(rng: random.Random, L: Language, W: World) -> dict[str, Any]:
    """An MTOD utterance realized in `L` with character-offset slots (end exclusive)."""
    intent = rng.choice(MTOD_INTENTS)
    cons = mtod_constituents(rng, W, intent)
    if L.order == "SOV":
        order = {"X": 0, "O": 1, "V": 2, "Q": 3}
        cons = sorted(cons, key=lambda c: order[c[0]])  # stable: adjuncts keep their order
    words: list[tuple[str, str | None]] = []
    for _, items in cons:
        if L.postpositions and items[0][0].startswith("adp:"):
            items = [*items[1:], items[0]]
        if L.order == "SOV" and any(k.startswith("tv:") for k, _ in items):
            items = sorted(items, key=lambda it: _TODO_OV.get(it[0][:3], 2))  # `milk buy to`
        words.extend(items)
    if rng.random() < 0.1:
        words.append(("intj:please", None))
    forms = [
        L.word(k) if k.startswith(("name:", "pfx:", "day:")) else L.word(k).lower()
        for k, _ in words
    ]
    utt, spans = writers.detokenize(forms)
    slots, cur = [], None
    for (_, slot), (s, e) in zip(words, spans):
        if slot and cur and cur[2] == slot and cur[1] == s - 1:
            cur[1] = e
        else:
            if cur:
                slots.append(tuple(cur))
            cur = [s, e, slot] if slot else None
    if cur:
        slots.append(tuple(cur))
    if not L.source and rng.random() < 0.2:
        utt += " "  # the real es files end many utterances with a space
    return {"intent": intent, "slots": slots, "utterance": utt, "locale": f"{L.code}_XX"}


# --------------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------------

#: train size per training language in order l0, l1, l2, l3 (0: no train data for that TLP);
#: further training languages reuse entries 1-3 cyclically. Shapes follow Table 1 of Tarunesh et
#: al. (2021): NLI and QA large and (almost) uniform over the languages that have them, POS very
#: uneven, NER uniform but one small language, PA uniform; SA like MetaXL (big source, tiny
#: targets) and MTOD like Schuster et al. (big source, small targets).
TRAIN_PROFILE: dict[str, tuple[int, int, int, int]] = {
    "nli": (400, 400, 400, 0),
    "pa": (300, 300, 0, 300),
    "qa": (600, 550, 0, 530),  # span selection needs more examples than the 100-300 steps give
    "pos": (200, 130, 400, 80),
    "ner": (300, 60, 300, 300),
    "sa": (400, 0, 60, 60),
    "mtod": (400, 120, 80, 0),
}
TASKS: tuple[str, ...] = tuple(TRAIN_PROFILE)
#: default dev and test size per TLP (not scaled): one example moves a score by at most ~0.5
#: points (QA ~0.33, sentence tasks ~0.2; tagging scores count tokens/spans, ~10 per sentence).
#: 510 is divisible by 2 and 3, so PA and NLI dev/test labels are exactly balanced.
EVAL_SIZE: dict[str, int] = {
    "nli": 510,
    "pa": 510,
    "sa": 510,
    "mtod": 510,
    "pos": 210,
    "ner": 210,
    "qa": 300,
}
TASK_FILES: dict[str, dict[str, str]] = {
    "nli": {"dataset": "xnli", "path": "xnli"},
    "pa": {"dataset": "pawsx", "path": "paws-x"},
    "ner": {"dataset": "panx", "path": "panx"},
    "pos": {"dataset": "udpos", "path": "udpos"},
    "qa": {"dataset": "mlqa", "path": "mlqa"},
    "sa": {"dataset": "marc", "path": "marc"},
    "mtod": {"dataset": "mtod", "path": "mtod"},
}
assert set(TASKS) <= set(TASK_TYPES)


def _scaled(n: int, scale: float) -> int:
    return 0 if n <= 0 else max(1, round(n * scale))


def plan_sizes(
    tasks: Sequence[str],
    langs: Sequence[Language],
    scale: float,
    eval_size: int | None,
    overrides: Mapping[str, Mapping[str, int]] | None,
) -> dict[str, dict[str, dict[str, int]]]:
    """{task: {lang: {split: n}}} with zero-size splits left out: train from TRAIN_PROFILE times
    `scale`, dev and test `eval_size` or EVAL_SIZE[task] (not scaled), then `overrides`."""
    train_langs = [L for L in langs if not L.zero_shot]
    sizes: dict[str, dict[str, dict[str, int]]] = {}
    for task in tasks:
        prof = TRAIN_PROFILE[task]
        base = [prof[i] if i < 4 else prof[1 + (i - 1) % 3] for i in range(len(train_langs))]
        need = min(3, len(base))
        fill = min(x for x in prof if x > 0)
        for i in range(len(base)):  # keep at least 3 training languages per task
            if sum(b > 0 for b in base) < need and base[i] == 0:
                base[i] = fill
        sizes[task] = {}
        n_eval = EVAL_SIZE[task] if eval_size is None else eval_size
        for L in langs:
            t = 0 if L.zero_shot else base[train_langs.index(L)]
            sizes[task][L.code] = {"train": _scaled(t, scale), "dev": n_eval, "test": n_eval}
    codes = {L.code: L for L in langs}
    for key, splits in (overrides or {}).items():
        task, _, lang = str(key).partition("/")
        if task not in sizes:
            raise ConfigError(f"benchmark.sizes.{key}: unknown or unselected task {task!r}")
        if lang and lang not in codes:
            raise ConfigError(f"benchmark.sizes.{key}: unknown language {lang!r}")
        if not isinstance(splits, Mapping):
            raise ConfigError(f"benchmark.sizes.{key}: expected a mapping split -> count")
        for split, n in splits.items():
            if split not in ("train", "dev", "test") or not isinstance(n, int) or n < 0:
                raise ConfigError(
                    f"benchmark.sizes.{key}.{split}: expected train/dev/test -> integer >= 0, got {n!r}"
                )
            for code in [lang] if lang else list(codes):
                if split == "train" and n and codes[code].zero_shot:
                    if lang:
                        raise ConfigError(
                            f"benchmark.sizes.{key}.train: {code} is zero-shot (no train)"
                        )
                    continue
                sizes[task][code][split] = n
    return {
        t: {lg: {s: n for s, n in sp.items() if n} for lg, sp in per.items() if any(sp.values())}
        for t, per in sizes.items()
    }


# --------------------------------------------------------------------------------------------
# Writing each task in its publisher layout
# --------------------------------------------------------------------------------------------

SPLIT_FILES = {
    "pa": {"dev": "dev_2k.tsv", "test": "test_2k.tsv"},
    "mtod": {"train": "train", "dev": "eval", "test": "test"},
}


def _max_n(sizes: Mapping[str, Mapping[str, int]], split: str) -> int:
    return max((sp.get(split, 0) for sp in sizes.values()), default=0)


def _held_key(text: str) -> str:
    """Whitespace-insensitive key of a sentence (tokenized and detokenized forms match)."""
    return "".join(text.split())


def _hold(held: set[str] | None, *texts: str) -> None:
    """Record dev/test sentences, which the unlabelled text must never repeat verbatim."""
    if held is not None:
        held.update(_held_key(t) for t in texts)


def _write_nli(out: Path, seed: int, W: World, langs, sizes, held: set[str] | None = None) -> None:
    root = out / "xnli"
    for split in ("train", "dev", "test"):
        items = nli_items(seed, W, split, _max_n(sizes, split))
        realized: dict[str, list[tuple[Sent, Sent, dict]]] = {}
        for L in langs:
            n = sizes.get(L.code, {}).get(split, 0)
            realized[L.code] = [
                (
                    assemble(L, [r_clause(L, e) for e in it["premise"]]),
                    assemble(L, [r_clause(L, it["hyp"], keep_pps=it["keep"])]),
                    it,
                )
                for it in items[:n]
            ]
        if split == "train":
            for code, rows in realized.items():
                if rows:
                    writers.write_xnli_mt_tsv(
                        root / "XNLI-MT-1.0" / "multinli" / f"multinli.train.{code}.tsv",
                        [
                            {
                                "premise": p.tokenized,
                                "hypo": h.tokenized,
                                "label": "contradictory"
                                if it["label"] == "contradiction"
                                else it["label"],
                            }
                            for p, h, it in rows
                        ],
                    )
            continue
        rows = []
        for i in range(len(items)):  # XNLI order: by pair, then language
            for L in langs:
                if i < len(realized[L.code]):
                    p, h, it = realized[L.code][i]
                    _hold(held, p.text, h.text)
                    rows.append(
                        {
                            "language": L.code,
                            "gold_label": it["label"],
                            "sentence1": p.text,
                            "sentence2": h.text,
                            "promptID": it["prompt"] + 1,
                            "pairID": i + 1,
                            "genre": XNLI_GENRES[it["prompt"] % len(XNLI_GENRES)],
                            "sentence1_tokenized": p.tokenized,
                            "sentence2_tokenized": h.tokenized,
                        }
                    )
        if rows:
            writers.write_xnli_tsv(root / "XNLI-1.0" / f"xnli.{split}.tsv", rows)


def _write_pa(out: Path, seed: int, W: World, langs, sizes, held: set[str] | None = None) -> None:
    for split in ("train", "dev", "test"):
        items = pa_items(seed, W, split, _max_n(sizes, split))
        for L in langs:
            n = sizes.get(L.code, {}).get(split, 0)
            if not n:
                continue
            rows = []
            for it in items[:n]:
                s1 = assemble(L, [r_clause(L, it["ev1"])])
                s2 = assemble(L, [r_clause(L, it["ev2"], topic=it["topic"])])
                # PAWS-X: English (source) text is tokenized, translations are not
                t1, t2 = (s1.tokenized, s2.tokenized) if L.source else (s1.text, s2.text)
                if split != "train":
                    _hold(held, t1, t2)
                rows.append(
                    {"id": it["id"], "sentence1": t1, "sentence2": t2, "label": it["label"]}
                )
            if split == "train":
                name = "train.tsv" if L.source else "translated_train.tsv"
            else:
                name = SPLIT_FILES["pa"][split]
            writers.write_pawsx_tsv(out / "paws-x" / "x-final" / L.code / name, rows)


def _write_qa(out: Path, seed: int, W: World, langs, sizes, held: set[str] | None = None) -> None:
    for split in ("train", "dev", "test"):
        paras = qa_items(seed, W, split, _max_n(sizes, split))
        for L in langs:
            n = sizes.get(L.code, {}).get(split, 0)
            if not n:
                continue
            articles: list[dict[str, Any]] = []
            count = 0
            for para in paras:
                if count >= n:
                    break
                sents = [assemble(L, [r_clause(L, ev)]) for ev in para["events"]]
                offsets, context = [], ""
                for s in sents:
                    offsets.append(len(context) + (1 if context else 0))
                    context = f"{context} {s.text}" if context else s.text
                if split != "train":
                    _hold(held, *(s.text for s in sents))
                qas = []
                for qi, (ei, role, keep) in enumerate(para["questions"][: n - count]):
                    q = assemble(
                        L, [r_clause(L, para["events"][ei], ask=role, keep_pps=keep)], "punct:?"
                    )
                    if split != "train":
                        _hold(held, q.text)
                    s, e = sents[ei].span(f"c0.{role}")
                    start = offsets[ei] + s
                    qid = hashlib.sha1(
                        f"{seed}:qa:{split}:{para['index']}:{qi}".encode()
                    ).hexdigest()
                    qas.append(
                        {
                            "question": q.text,
                            "answers": [
                                {"text": context[start : offsets[ei] + e], "answer_start": start}
                            ],
                            "id": qid,
                        }
                    )
                count += len(qas)
                if para["index"] % 2 == 0:  # two paragraphs per article
                    title = " ".join(
                        t.form for t in r_arg(L, para["events"][0].agent, "t", "root").toks
                    )
                    articles.append({"title": title, "paragraphs": []})
                articles[-1]["paragraphs"].append({"context": context, "qas": qas})
            name = f"{split}-context-{L.code}-question-{L.code}.json"
            writers.write_squad_json(out / "mlqa" / "MLQA_V1" / split / name, articles)


def _write_tagging(
    out: Path, seed: int, W: World, langs, sizes, task: str, held: set[str] | None = None
) -> None:
    for L in langs:
        for split, n in sizes.get(L.code, {}).items():
            rng = _rng(seed, task, split, L.code)
            sents = [tagging_sentence(rng, L, W, task) for _ in range(n)]
            if split != "train":
                _hold(held, *(s.text for s in sents))
            if task == "ner":
                recs = [{"lang": L.code, "tokens": s.forms, "tags": s.ents} for s in sents]
                writers.write_panx(out / "panx" / L.code / split, recs)
                continue
            recs = []
            for i, s in enumerate(sents):
                mw = []
                if L.fuse:  # e.g. Spanish `del` = `de el`: an occasional ADP+DET multiword token
                    for j in range(len(s.forms) - 1):
                        if s.upos[j] == "ADP" and s.upos[j + 1] == "DET" and rng.random() < 0.5:
                            mw.append((j + 1, j + 2, s.forms[j] + s.forms[j + 1].lower()))
                recs.append(
                    {
                        "sent_id": f"{L.code}-syn-{split}-{i + 1:04d}",
                        "newdoc": f"{L.code}-syn-{split}" if i == 0 else None,
                        "tokens": s.forms,
                        "lemmas": [
                            f.lower() if u != "PROPN" else f for f, u in zip(s.forms, s.upos)
                        ],
                        "upos": s.upos,
                        "heads": s.heads,
                        "deprels": s.deprels,
                        "multiword": mw,
                    }
                )
            tb = f"UD_Synthetic_{L.code.upper()}-SYN"
            writers.write_conllu(out / "udpos" / tb / f"{L.code}_syn-ud-{split}.conllu", recs)


def _write_sa(
    out: Path, seed: int, W: World, langs, sizes, held: set[str] | None = None
) -> dict[str, dict[str, int]]:
    """Writes MARC files; returns the 3-star counts per TLP and split (a MetaXL reader drops them)."""
    drops: dict[str, dict[str, int]] = {}
    for L in langs:
        for split, n in sizes.get(L.code, {}).items():
            rng = _rng(seed, "sa", split, L.code)
            ids = rng.sample(range(10**7), 3 * n)
            revs = []
            for i in range(n):
                rev = sa_review(rng, L)
                if split != "train":  # sentences of the body end in . and are joined by a space
                    _hold(held, rev["review_title"], *re.split(r"(?<=[.?!]) ", rev["review_body"]))
                rev |= {
                    "review_id": f"{L.code}_{ids[i]:07d}",
                    "product_id": f"product_{L.code}_{ids[n + i]:07d}",
                    "reviewer_id": f"reviewer_{L.code}_{ids[2 * n + i]:07d}",
                    "language": L.code,
                }
                revs.append(rev)
            drops.setdefault(f"sa/{L.code}", {})[split] = sum(r["stars"] == 3 for r in revs)
            writers.write_marc_jsonl(out / "marc" / f"dataset_{L.code}_{split}.json", revs)
    return drops


def _write_mtod(out: Path, seed: int, W: World, langs, sizes, held: set[str] | None = None) -> None:
    for L in langs:
        for split, n in sizes.get(L.code, {}).items():
            rng = _rng(seed, "mtod", split, L.code)
            rows = [mtod_row(rng, L, W) for _ in range(n)]
            if split != "train":
                _hold(held, *(r["utterance"] for r in rows))
            name = f"{SPLIT_FILES['mtod'][split]}-{L.code}.tsv"
            writers.write_mtod_tsv(out / "mtod" / L.code / name, rows)


# --------------------------------------------------------------------------------------------
# Unlabelled text (MLM pretraining corpus of the tiny encoder, like a CC-100 dump per language)
# --------------------------------------------------------------------------------------------


#: probability that a news sentence restates an earlier event of its document (reordered,
#: with a synonym, fewer modifiers, or negated), as news text repeats its facts
TEXT_RESTATE = 0.3


def _news_sentence(
    rng: random.Random, L: Language, W: World, pool: Sequence[Ent], told: list[Event]
) -> Sent:
    """One sentence of a news-like document about recurring entities: event clauses (negated,
    with a fronted PP), a question, a copula, or a restatement of an event told before (`told`,
    appended to), the kinds of sentences NLI/PA/QA/POS/NER use."""
    r = rng.random()
    if told and r < TEXT_RESTATE:
        ev = rng.choice(told)
        v = ev.verb[5:]
        kind = rng.random()
        if kind < 0.3 and v in SYNONYM:
            ev = replace(ev, verb="verb:" + SYNONYM[v])
        elif kind < 0.45:
            ev = replace(ev, neg=not ev.neg)
        elif kind < 0.6 and len(ev.pps) > 1:
            ev = replace(ev, pps=ev.pps[::-1])
        keep = _subset(rng, len(ev.pps), 0.6) if rng.random() < 0.4 else None
        topic = None
        kept = [i for i in range(len(ev.pps)) if keep is None or i in keep]
        if kept and rng.random() < 0.3:
            topic = rng.choice(kept)
        return assemble(L, [r_clause(L, ev, topic, keep_pps=keep)])
    r = rng.random()
    if r < 0.15:
        subj: Arg = W.ent(rng, "LOC") if rng.random() < 0.3 else W.np(rng, THINGS + ASPECTS)
        adj = "adj:" + rng.choice(POSITIVE + NEGATIVE + MOD_ADJ + NEUTRAL)
        return assemble(L, [r_copula(L, subj, adj, rng.random() < 0.3, rng.random() < 0.2)])
    if r < 0.27:
        ev = W.event(rng, pool=pool)
        roles = ["agent", "patient"] + [
            f"pp{i}" for i, (a, _) in enumerate(ev.pps) if a == "adp:in"
        ]
        return assemble(L, [r_clause(L, ev, ask=rng.choice(roles))], "punct:?")
    evs = [W.event(rng, pool=pool) for _ in range(1 if rng.random() < 0.7 else 2)]
    evs = [replace(e, neg=rng.random() < 0.15) for e in evs]
    told.extend(evs)
    topic = rng.randrange(len(evs[0].pps)) if evs[0].pps and rng.random() < 0.15 else None
    return assemble(L, [r_clause(L, e, topic if i == 0 else None) for i, e in enumerate(evs)])


def text_documents(
    seed: int,
    W: World,
    L: Language,
    n: int,
    tasks: Sequence[str],
    held: set[str] = frozenset(),
    stream: str = "text",
) -> list[list[str]]:
    """`n` sentences of unlabelled running text in `L`, in documents of 2-8 sentences.

    Drawn from the same latent world as the tasks but from its own stream `_rng(seed, stream,
    lang)` (`text`: the pretraining text; `heldout_text`: the held-out text, HELDOUT_STREAM):
    news-like documents (recurring entities; events, negation, questions, copulas), plus
    product reviews when `sa` is among `tasks` and assistant commands when `mtod` is. A sentence
    whose whitespace-free form is in `held` (the dev/test sentences of every task; for the
    held-out text also every pretraining sentence) is redrawn, so evaluation items never reach
    pretraining verbatim."""
    rng = _rng(seed, stream, L.code)
    kinds = ["news"] * 4 + ["review"] * ("sa" in tasks) + ["dialogue"] * ("mtod" in tasks)
    docs: list[list[str]] = []
    total = 0
    while total < n:
        kind = rng.choice(kinds)
        k = min(rng.randint(2, 8), n - total)
        pool = [W.ent(rng, t) for t in ("PER", "PER", "PER", "ORG", "LOC", "LOC")]
        doc: list[str] = []
        review: list[str] = []
        told: list[Event] = []
        for _ in range(k):
            for _try in range(50):
                if kind == "news":
                    text = _news_sentence(rng, L, W, pool, told).text
                elif kind == "dialogue":
                    text = mtod_row(rng, L, W)["utterance"].strip()
                else:
                    if not review:
                        review = re.split(r"(?<=[.?!]) ", sa_review(rng, L)["review_body"])
                    text = review.pop(0)
                if _held_key(text) not in held:
                    doc.append(text)
                    break
        if doc:
            docs.append(doc)
            total += len(doc)
    return docs


def _write_text(
    out: Path,
    seed: int,
    W: World,
    langs,
    n: int,
    tasks: Sequence[str],
    held: set[str],
    stream: str = "text",
) -> dict[str, str]:
    """`<stream>/<lang>.txt` per language (see `text_documents`); {lang: relative path}."""
    files = {}
    for L in langs:
        rel = f"{stream}/{L.code}.txt"
        writers.write_text_corpus(out / rel, text_documents(seed, W, L, n, tasks, held, stream))
        files[L.code] = rel
    return files


#: the RNG stream (and folder) of the held-out text: its own stream, so that adding it (or
#: changing its size) leaves every other generated file byte-identical
HELDOUT_STREAM = "heldout_text"


def _write_heldout_text(
    out: Path, seed: int, W: World, langs, n: int, tasks: Sequence[str], held: set[str]
) -> dict[str, str]:
    """Held-out running text per language, `heldout_text/<lang>.txt`, for the masked-LM loss of
    trained encoders (Lee et al. 2022 §4.2, `pipeline.experiments.forgetting`; CC-100 in the
    paper): the pretraining text's kind of documents from stream HELDOUT_STREAM, no sentence of
    it occurring verbatim in the pretraining text (`text/`) or in any task's dev/test split."""
    pretraining = set(held)
    for f in sorted((out / "text").glob("*.txt")):
        pretraining.update(_held_key(t) for t in f.read_text(encoding="utf-8").splitlines() if t)
    return _write_text(out, seed, W, langs, n, tasks, pretraining, HELDOUT_STREAM)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def default_relatedness(languages: int) -> tuple[list[float], list[str]]:
    """Shares fall linearly from 0.85 (l1) to 0.25 (last); orders SVO, SOV, VSO, then alternate."""
    k = languages - 1
    shares = [round(0.85 - 0.6 * i / max(k - 1, 1), 2) for i in range(k)]
    orders = [("SVO", "SOV", "VSO")[i] if i < 3 else ("SOV", "VSO")[(i - 3) % 2] for i in range(k)]
    return shares, orders


def generate(
    out: str | Path,
    seed: int = 13,
    languages: int = 5,
    zero_shot: int = 1,
    tasks: Sequence[str] | None = None,
    scale: float = 1.0,
    sizes: Mapping[str, Mapping[str, int]] | None = None,
    eval_size: int | None = None,
    text_sentences: int = 3000,
    heldout_sentences: int = 200,
    shares: Sequence[float] | None = None,
    orders: Sequence[str] | None = None,
    codes: Sequence[str] | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Write the synthetic benchmark under `out` (atomically replaced) and return its manifest.

    Parameters (the `benchmark:` section of params.yaml):
      out: output directory; written whole or not at all (an existing one is replaced).
      seed: everything is a function of the arguments; same arguments -> byte-identical files.
      languages: number of languages `l0..l<n-1>`; `l0` is the source (most train data).
      zero_shot: how many of the last (least related) languages get dev/test only, no train.
      tasks: subset of nli, pa, ner, pos, qa, sa, mtod (default all, in that order).
      scale: multiplies the default train sizes (60-400 per TLP, TRAIN_PROFILE); non-zero sizes
        stay >= 1. Dev/test sizes are not scaled (evaluation keeps its statistical power).
      sizes: exact overrides, not scaled: {"task/lang": {"train": n, "dev": n, "test": n}} or
        {"task": {...}} for all its languages; train 0 removes a TLP's train split.
      eval_size: dev and test examples per TLP of every task (default None: EVAL_SIZE, i.e. 510
        sentences/pairs for nli/pa/sa/mtod, 210 sentences for pos/ner, 300 questions for qa).
        Every task has dev/test in every language, so zero-shot transfer is evaluated everywhere.
      text_sentences: sentences of unlabelled text per language (zero-shot ones included), written
        to `text/<lang>.txt` (one sentence per line, blank line between documents) for the
        encoder's tokenizer and MLM pretraining; 0 writes none. See `text_documents`.
      heldout_sentences: sentences of held-out text per language, written to
        `heldout_text/<lang>.txt` (same format) from a stream of their own and disjoint from
        the pretraining text, for the masked-LM loss of trained encoders (Lee et al. 2022
        §4.2); 0 writes none. Changing it changes no other file. See `_write_heldout_text`.
      shares: for l1.. the fraction of concepts sharing the source word form (default falling from
        0.85 to 0.25, i.e. decreasing relatedness).
      orders: for l1.. the clause order, SVO/SOV/VSO (default SVO, SOV, VSO, SOV, VSO...).
      codes: the language codes, in the order l0, l1, ... (default `l<i>`): real codes (en, hi,
        ...) write the benchmark as data in real languages' names would be, for the preset
        smoke tests (`write_release` lays it out as the real releases).
      verbose: print counts, size and generation time.
    """
    t0 = time.perf_counter()
    if not isinstance(languages, int) or languages < 2:
        raise ConfigError(f"benchmark.languages: expected an integer >= 2, got {languages!r}")
    if not isinstance(zero_shot, int) or not 0 <= zero_shot <= languages - 1:
        raise ConfigError(
            f"benchmark.zero_shot: expected an integer in 0..{languages - 1} (l0 trains), got {zero_shot!r}"
        )
    tasks = list(TASKS if tasks is None else tasks)
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks or len(set(tasks)) != len(tasks):
        raise ConfigError(
            f"benchmark.tasks: expected distinct names from {', '.join(TASKS)}, got {tasks}"
        )
    if not isinstance(scale, int | float) or scale <= 0:
        raise ConfigError(f"benchmark.scale: expected a number > 0, got {scale!r}")
    if eval_size is not None and (
        not isinstance(eval_size, int) or isinstance(eval_size, bool) or eval_size < 1
    ):
        raise ConfigError(
            f"benchmark.eval_size: expected an integer >= 1 or null, got {eval_size!r}"
        )
    if (
        not isinstance(text_sentences, int)
        or isinstance(text_sentences, bool)
        or text_sentences < 0
    ):
        raise ConfigError(
            f"benchmark.text_sentences: expected an integer >= 0, got {text_sentences!r}"
        )
    if (
        not isinstance(heldout_sentences, int)
        or isinstance(heldout_sentences, bool)
        or heldout_sentences < 0
    ):
        raise ConfigError(
            f"benchmark.heldout_sentences: expected an integer >= 0, got {heldout_sentences!r}"
        )
    d_shares, d_orders = default_relatedness(languages)
    shares = list(d_shares if shares is None else shares)
    orders = list(d_orders if orders is None else orders)
    if len(shares) != languages - 1 or not all(
        isinstance(s, int | float) and 0 <= s <= 1 for s in shares
    ):
        raise ConfigError(
            f"benchmark.shares: expected {languages - 1} numbers in [0, 1] (l1..), got {shares}"
        )
    if len(orders) != languages - 1 or not all(o in ORDERS for o in orders):
        raise ConfigError(
            f"benchmark.orders: expected {languages - 1} of {', '.join(ORDERS)} (l1..), got {orders}"
        )

    world, source = build_world(seed)
    langs = [build_language(seed, 0, 1.0, "SVO", "pre", False, source)]
    for i in range(1, languages):
        o = orders[i - 1]
        langs.append(
            build_language(
                seed,
                i,
                float(shares[i - 1]),
                o,
                "pre" if o == "SVO" else "post",
                i >= languages - zero_shot,
                source,
            )
        )
    if codes is not None:
        codes = [str(c) for c in codes]
        if len(codes) != languages or len(set(codes)) != len(codes):
            raise ConfigError(
                f"benchmark.codes: expected {languages} distinct language codes, got {codes}"
            )
        langs = [replace(L, code=c) for L, c in zip(langs, codes)]
    plan = plan_sizes(tasks, langs, scale, eval_size, sizes)

    out = Path(out)
    with atomic_dir(out) as tmp:
        drops: dict[str, dict[str, int]] = {}
        held: set[str] = set()  # dev/test sentences of every task (kept out of the text)
        for task in tasks:
            if task == "nli":
                _write_nli(tmp, seed, world, langs, plan[task], held)
            elif task == "pa":
                _write_pa(tmp, seed, world, langs, plan[task], held)
            elif task == "qa":
                _write_qa(tmp, seed, world, langs, plan[task], held)
            elif task in ("ner", "pos"):
                _write_tagging(tmp, seed, world, langs, plan[task], task, held)
            elif task == "sa":
                drops |= _write_sa(tmp, seed, world, langs, plan[task], held)
            else:
                _write_mtod(tmp, seed, world, langs, plan[task], held)
        text = (
            _write_text(tmp, seed, world, langs, text_sentences, tasks, held)
            if text_sentences
            else {}
        )
        heldout = (
            _write_heldout_text(tmp, seed, world, langs, heldout_sentences, tasks, held)
            if heldout_sentences
            else {}
        )
        manifest = {
            "name": "synthetic",
            "seed": seed,
            "languages": [L.code for L in langs],
            "source_language": langs[0].code,
            "train_languages": [L.code for L in langs if not L.zero_shot],
            "zero_shot_languages": [L.code for L in langs if L.zero_shot],
            "relatedness": {L.code: L.relatedness() for L in langs},
            "tasks": {t: dict(TASK_FILES[t]) for t in tasks},
            "sizes": {f"{t}/{lg}": sp for t in tasks for lg, sp in plan[t].items()},
            # records a reader following MetaXL drops (3-star reviews): prepared = sizes - these
            "dropped_by_reader": drops,
            # unlabelled running text per language (all languages, zero-shot ones included)
            "text": {"sentences": text_sentences, "files": text},
            # held-out text per language (never pretrained on): Lee et al.'s MLM loss
            "heldout_text": {"sentences": heldout_sentences, "files": heldout},
            "params": {
                "scale": scale,
                "eval_size": eval_size,
                "text_sentences": text_sentences,
                "heldout_sentences": heldout_sentences,
                "sizes": {k: dict(v) for k, v in (sizes or {}).items()},
            },
        }
        atomic_write_json(tmp / "synthetic.json", manifest)
        nbytes = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        nfiles = sum(1 for p in tmp.rglob("*") if p.is_file())
    if verbose:
        n = sum(v for sp in manifest["sizes"].values() for v in sp.values())
        print(
            f"synthetic benchmark: {nfiles} files, {n} records, {nbytes / 1e6:.2f} MB "
            f"in {time.perf_counter() - t0:.2f} s -> {out}"
        )
    return manifest


# --------------------------------------------------------------------------------------------
# The benchmark laid out as the real releases (for presets' smoke tests)
# --------------------------------------------------------------------------------------------


def _copy(src: Path, dest: Path) -> None:
    if not src.exists():
        raise ConfigError(f"{src}: not in the synthetic benchmark (generate its task first)")
    shutil.copytree(src, dest, dirs_exist_ok=True)


def _qa_files(raw: Path, split: str) -> dict[str, Path]:
    """language -> the benchmark's QA file of `split` (SQuAD v1.1 JSON, MLQA's naming)."""
    folder = raw / "mlqa" / "MLQA_V1" / split
    pat = re.compile(rf"^{split}-context-(?P<l>[^-]+)-question-(?P=l)\.json$")
    return {m["l"]: f for f in sorted(folder.glob("*.json")) if (m := pat.match(f.name))}


def _write_tydiqa(raw: Path, dest: Path) -> None:
    """TyDiQA-GoldP v1.1: one train and one dev file for every language, each question's
    language the prefix of its id (`swahili-…`); the benchmark's QA train -> train, its QA test
    -> the GoldP dev file (the split XTREME and M'hamdi et al. report). Languages TyDiQA does
    not have are left out, as the release has none."""
    from pipeline.data.readers.squad import TYDIQA_LANGS

    names = {code: name for name, code in TYDIQA_LANGS.items()}
    dest.mkdir(parents=True, exist_ok=True)
    for split, fname in (
        ("train", "tydiqa-goldp-v1.1-train.json"),
        ("test", "tydiqa-goldp-v1.1-dev.json"),
    ):
        data = []
        for lang, f in sorted(_qa_files(raw, split).items()):
            if lang not in names:  # not a TyDiQA language: not in the release
                continue
            for art in read_json(f)["data"]:
                for para in art["paragraphs"]:
                    for qa in para["qas"]:
                        qa["id"] = f"{names[lang]}-{qa['id']}"
                data.append(art)
        atomic_write_json(dest / fname, {"version": "TyDiQA-GoldP-1.1-for-SQuAD-1.1", "data": data})


def _write_mnli(raw: Path, dest: Path, source: str) -> None:
    """MultiNLI 1.0 `multinli_1.0/multinli_1.0_{train,dev_matched,dev_mismatched}.jsonl`: the
    source language's NLI train, dev and test (MultiNLI is English only; `prepare` reads
    dev_matched as dev and dev_mismatched as test), ids as pairIDs, labels MultiNLI's."""
    from pipeline.data.readers.xnli import read_xnli_mt_train, read_xnli_tsv

    xnli = raw / "xnli"
    train = xnli / "XNLI-MT-1.0" / "multinli" / f"multinli.train.{source}.tsv"
    if not train.is_file():
        raise ConfigError(f"{raw}: no nli train data in the source language {source}")
    files = {
        "train": read_xnli_mt_train(train, source),
        "dev_matched": read_xnli_tsv(xnli / "XNLI-1.0" / "xnli.dev.tsv", [source]),
        "dev_mismatched": read_xnli_tsv(xnli / "XNLI-1.0" / "xnli.test.tsv", [source]),
    }
    root = dest / "multinli_1.0"
    root.mkdir(parents=True, exist_ok=True)
    for name, res in files.items():
        lines = [
            json.dumps(
                {
                    "gold_label": r["label"],
                    "sentence1": r["text_a"],
                    "sentence2": r["text_b"],
                    "pairID": f"{name}-{r['id']}",
                },
                ensure_ascii=False,
            )
            for r in res.records
        ]
        (root / f"multinli_1.0_{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_marc(raw: Path, dest: Path) -> None:
    """MARC's `dataset_<lang>_<split>.json` files (copied) of the languages MARC has (the
    registry's: de, en, es, fr, ja, zh); the others are left out, as the release has none, so
    e.g. the benchmark's te/fa sa data reaches a preset only through Sentiraama/SentiPers."""
    from pipeline.data.sources import get_source

    keep = set(get_source("marc").languages)
    pat = re.compile(r"^dataset_(?P<lang>[^_]+)_(?:train|dev|test)\.json$")
    files = sorted(
        f for f in (raw / "marc").glob("*.json") if (m := pat.match(f.name)) and m["lang"] in keep
    )
    if not files:
        raise ConfigError(
            f"{raw}: no sa data in a MARC language ({', '.join(sorted(keep))}) in the synthetic "
            "benchmark (generate task sa with one of these codes)"
        )
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, dest / f.name)


_SPLITS = ("train", "dev", "test")
#: MARC stars -> SentiPers polarity (sentence-level -2..2; 0 is the neutral MetaXL drops)
_STARS_TO_SENTIPERS = {1: "-2", 2: "-1", 3: "0", 4: "+1", 5: "+2"}


def _sa_reviews(raw: Path, lang: str, name: str) -> dict[str, list[dict[str, Any]]]:
    """split -> the benchmark's MARC reviews of `lang` (all stars, file order); one-line
    ConfigError when the benchmark has no sa data in that language."""
    out = {}
    for split in _SPLITS:
        f = raw / "marc" / f"dataset_{lang}_{split}.json"
        if f.is_file():
            lines = f.read_text(encoding="utf-8").splitlines()
            out[split] = [json.loads(line) for line in lines if line.strip()]
    if not out:
        raise ConfigError(
            f"{raw}: the synthetic benchmark has no sa data in {lang} ({name}); generate it "
            f"with task sa and a language whose code is {lang}"
        )
    return out


def _polar(revs: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The reviews a MetaXL reader keeps (stars 3 dropped), per split, in file order: exactly
    what `prepare` of the benchmark's MARC files gives for that language."""
    return {s: [r for r in rs if int(r["stars"]) != 3] for s, rs in revs.items()}


def _index_text(sections: list[tuple[str, list[Any], list[Any] | None]]) -> str:
    """data_index.txt in MetaXL's layout: header, list literal(s), blank line between sections."""
    blocks = []
    for header, indices, files in sections:
        lines = [header, repr(indices), *([repr(files)] if files is not None else [])]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _write_sentiraama(raw: Path, dest: Path, seed: int) -> None:
    """Sentiraama's `product_pos.txt` / `product_neg.txt` from the benchmark's Telugu (`te`) sa
    data, plus the `data_index.txt` that gives back its train/dev/test split.

    Each review (stars <= 2 negative, >= 4 positive, 3 left out) is one line followed by a line
    of underscores, in a shuffled order, with a blank line after every fourth review written; MetaXL's
    indices are 0-based line numbers (see pipeline/data/readers/sentiraama.py), so blank and
    separator lines count. The train list gets one `None` entry (MetaXL's "not found"), which
    the reader skips."""
    from pipeline.data.readers.sentiraama import SEPARATOR

    polar = _polar(_sa_reviews(raw, "te", "Telugu, Sentiraama"))
    items = [(s, k) for s in _SPLITS for k in range(len(polar.get(s, [])))]
    _rng(seed, "sentiraama").shuffle(items)
    names = {"positive": "product_pos.txt", "negative": "product_neg.txt"}
    lines: dict[str, list[str]] = {n: [] for n in names.values()}
    where: dict[tuple[str, int], tuple[int, str]] = {}
    for split, k in items:
        rev = polar[split][k]
        name = names["positive" if int(rev["stars"]) >= 4 else "negative"]
        where[(split, k)] = (len(lines[name]), name)
        lines[name] += [rev["review_body"], SEPARATOR]
        if len(where) % 4 == 0:
            lines[name].append("")
    dest.mkdir(parents=True, exist_ok=True)
    for name, ls in lines.items():
        (dest / name).write_text("".join(f"{line}\n" for line in ls), encoding="utf-8")
    sections = []
    for split in _SPLITS:
        entries: list[tuple[int | None, str | None]] = [
            where[(split, k)] for k in range(len(polar.get(split, [])))
        ]
        if split == "train":
            entries.insert(min(1, len(entries)), (None, None))
        sections.append(
            (
                f"# tir {split} index and file",
                [i for i, _ in entries],
                [f for _, f in entries],
            )
        )
    (dest / "data_index.txt").write_text(_index_text(sections), encoding="utf-8")


_SENTIPERS_FILLER = "این جمله دو بار آمده است."  # repeated within main/: the table drops both


def _sentipers_xml(path: Path, title: str, reviews: list[list[tuple[str, str]]], grouped: bool):
    """One `main/` file: `<Product>` with the sentences of `reviews` (lists of (text, polarity));
    `grouped` puts them in review elements under <General_Reviews> and <Critical_Reviews>."""
    root = ET.Element("Product", Title=title, Type="Synthetic")
    ET.SubElement(ET.SubElement(root, "Features"), "Feature", Name="kind").text = title
    if grouped:
        containers = [
            ET.SubElement(ET.SubElement(root, g), "Review", ID=f"{g}-{i}")
            for i, g in enumerate(("General_Reviews", "Critical_Reviews")[: len(reviews)])
        ]
    else:
        containers = [ET.SubElement(root, "Review", ID="ReviewBody", Value="0")]
    n = 0
    for i, sents in enumerate(reviews):
        box = containers[min(i, len(containers) - 1)]
        for text, pol in sents:
            n += 1
            el = ET.SubElement(box, "Sentence", ID=f"rev-{n}", Value=pol)
            if text:
                el.text = text
    ET.SubElement(root, "Voters", Value="1")
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _write_sentipers(raw: Path, dest: Path, seed: int) -> None:
    """The SentiPers repository's `data/main/*.xml` and `data/extra/*.xml` (under
    `sentipers/SentiPers-master/`, as its zip unpacks) from the benchmark's Persian (`fa`) sa data,
    plus the `data_index.txt` that gives back its train/dev/test split.

    Each distinct review text is one sentence, polarity from the stars (1 → -2, 2 → -1, 3 → 0,
    4 → +1, 5 → +2; the neutral ones are in the table but never indexed). Files are named so that
    their sorted order is not the order they are written in; about a tenth of the sentences go to
    one `extra/` file (token-per-line format). The first main file also holds an empty sentence
    and a sentence repeated twice, which the table drops. Indices are table rows as
    pipeline/data/readers/sentipers.py builds the table (main files sorted by name, then extra),
    computed here from what was written. The dev list gets one `None` entry and the test list
    repeats its first entry at the end (MetaXL's published fa split has both)."""
    revs = _sa_reviews(raw, "fa", "Persian, SentiPers")
    polar = _polar(revs)
    texts: dict[str, str] = {}  # text -> polarity (first review with that text)
    labels: dict[str, bool] = {}
    for rev in [r for s in _SPLITS for r in polar.get(s, [])] + [
        r for s in _SPLITS for r in revs.get(s, []) if int(r["stars"]) == 3
    ]:
        text, pol = rev["review_body"], _STARS_TO_SENTIPERS[int(rev["stars"])]
        if text == _SENTIPERS_FILLER:
            raise ConfigError(f"{raw}: a fa review equals the SentiPers filler sentence")
        if text in texts:
            if pol != "0" and labels[text] != pol.startswith("+"):
                raise ConfigError(
                    f"{raw}: fa review text {text!r} occurs with opposite labels; SentiPers "
                    "sentences are looked up by text, so it cannot be written"
                )
            continue
        texts[text] = pol
        labels[text] = pol.startswith("+")
    rng = _rng(seed, "sentipers")
    rows = list(texts.items())
    rng.shuffle(rows)
    n_extra = len(rows) // 10 if len(rows) >= 10 else 0
    main_rows, extra_rows = rows[: len(rows) - n_extra], rows[len(rows) - n_extra :]
    data = dest / "sentipers" / "SentiPers-master" / "data"
    chunks = [main_rows[i : i + 7] for i in range(0, len(main_rows), 7)] or [[]]
    # names whose sorted order differs from the writing order: sentences go in sorted order
    names = [
        f"{'ZYXWVUTSRQPONMLKJIHGFEDCBA'[i % 26]} product {i:03d}.xml" for i in range(len(chunks))
    ]
    table: list[str] = []
    for j, name in enumerate(sorted(names)):
        sents = list(chunks[j])
        table += [t for t, _ in sents]
        if j == 0:  # dropped by the table: an empty sentence and a text occurring twice
            sents = [("", "+1"), (_SENTIPERS_FILLER, "+1"), *sents, (_SENTIPERS_FILLER, "-1")]
        half = (len(sents) + 1) // 2
        grouped = j % 3 == 1 and len(sents) > 1
        _sentipers_xml(data / "main" / name, name[:-4], [sents[:half], sents[half:]], grouped)
    if extra_rows:
        lines = []
        for text, pol in extra_rows:
            lines += [f"{k}\t{tok}" for k, tok in enumerate(text.split(" "))]
            lines += [f"[{pol}]", "[@@@]"]
        (data / "extra").mkdir(parents=True, exist_ok=True)
        (data / "extra" / "Extra product.xml").write_text(
            "".join(f"{line}\n" for line in lines), encoding="utf-8"
        )
        table += [t for t, _ in extra_rows]
    row = {t: i for i, t in reversed(list(enumerate(table)))}  # first row of each text
    sections = []
    for split in _SPLITS:
        entries: list[int | None] = [row[r["review_body"]] for r in polar.get(split, [])]
        if split == "dev":
            entries.insert(min(1, len(entries)), None)
        if split == "test" and entries:
            entries.append(entries[0])
        sections.append((f"# fa {split} index", entries, None))
    (dest / "data_index.txt").write_text(_index_text(sections), encoding="utf-8")


def write_release(
    raw: str | Path, dataset: str, dest: str | Path, layout: str = "original"
) -> None:
    """Lay out the benchmark generated at `raw` as `dataset`'s release unpacks, under `dest`.

    What `prepare --dataset <dataset> --raw <dest> --layout <layout>` then reads is exactly the
    benchmark's data in that publisher's layout: XNLI 1.0 + XNLI-MT 1.0, PAWS-X `x-final/`, PAN-X
    per-language folders, UD v2.5 `ud-treebanks-v2.5/UD_*/`, MLQA v1 (dev and test only, as
    released), SQuAD v1.1 (`train-v1.1.json`, `dev-v1.1.json`: the source language's QA),
    TyDiQA-GoldP v1.1 (train and dev files of all its languages), MultiNLI 1.0 (the source
    language's NLI as `multinli_1.0/*.jsonl`), MTOD (`<lang>/` folders), and
    XTREME's translate-train SQuAD (the other languages' QA train, flat or in XTREME's
    `squad/translate-train/`), MARC (`dataset_<lang>_<split>.json` of MARC's languages), and MetaXL's
    sentiment targets as published plus its `data_index.txt`: Sentiraama's
    `product_{pos,neg}.txt` from the `te` sa data and SentiPers' `data/{main,extra}/*.xml` from
    the `fa` sa data, the indices giving back the benchmark's split of that language (with a
    `None` entry, and for fa one repeated entry, as in MetaXL's file). Other (dataset, layout)
    pairs are refused with one line.
    """
    raw, dest = Path(raw), Path(dest)
    manifest = read_json(raw / "synthetic.json")
    source = manifest["source_language"]
    key = (dataset, layout)
    if key == ("xnli", "original"):
        _copy(raw / "xnli", dest)
    elif key == ("pawsx", "original"):
        _copy(raw / "paws-x", dest)
    elif key == ("panx", "original"):
        _copy(raw / "panx", dest)
    elif key == ("udpos", "original"):
        _copy(raw / "udpos", dest / "ud-treebanks-v2.5")
    elif key == ("mlqa", "original"):
        for split in ("dev", "test"):
            _copy(raw / "mlqa" / "MLQA_V1" / split, dest / "MLQA_V1" / split)
    elif key == ("squad", "original"):
        dest.mkdir(parents=True, exist_ok=True)
        for split, name in (("train", "train-v1.1.json"), ("dev", "dev-v1.1.json")):
            files = _qa_files(raw, split)
            if source not in files:
                raise ConfigError(f"{raw}: no {split} QA data in the source language {source}")
            shutil.copy2(files[source], dest / name)
    elif key == ("mtod", "original"):  # <lang>/{train,eval,test}-<lang>.tsv, as the zip
        _copy(raw / "mtod", dest)
    elif key == ("tydiqa", "original"):
        _write_tydiqa(raw, dest)
    elif key == ("mnli", "original"):
        _write_mnli(raw, dest, source)
    elif key == ("marc", "original"):
        _write_marc(raw, dest)
    elif key == ("sentiraama", "original"):
        _write_sentiraama(raw, dest, int(manifest["seed"]))
    elif key == ("sentipers", "original"):
        _write_sentipers(raw, dest, int(manifest["seed"]))
    elif dataset == "squad_translate_train" and layout in ("original", "xtreme"):
        folder = dest if layout == "original" else dest / "squad" / "translate-train"
        folder.mkdir(parents=True, exist_ok=True)
        for lang, f in _qa_files(raw, "train").items():
            if lang != source:
                shutil.copy2(f, folder / f"squad.translate.train.{source}-{lang}.json")
    else:
        raise ConfigError(
            f"write_release: the synthetic benchmark is not written as {dataset} ({layout} "
            "layout) yet"
        )


if __name__ == "__main__":  # python -m pipeline.data.synthetic OUT [SEED]
    generate(sys.argv[1], seed=int(sys.argv[2]) if len(sys.argv) > 2 else 13)
