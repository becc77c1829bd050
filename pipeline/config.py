"""Typed params: the schema, validation, presets, and the runs the DAG is made of.

`params.yaml` is the only configuration. Presets (configs/*.yaml) overlay it key by key, the way
Snakemake merges `--configfile`. Nothing else in the package reads YAML.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pipeline.data.store import Sources
from pipeline.errors import ConfigError, PipelineError
from pipeline.metrics import metric_keys
from pipeline.records import TASK_TYPES, TLP

# ---------------------------------------------------------------------------------------------
# Schema

_num = {"type": "number"}
_pos_int = {"type": "integer", "minimum": 1}
_nonneg_int = {"type": "integer", "minimum": 0}
_prob = {"type": "number", "minimum": 0, "maximum": 1}
_tlp = {"type": "string", "pattern": r"^[a-z]+/[A-Za-z0-9_-]+$"}
_name = {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"}


def _obj(props: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(required),
        "additionalProperties": False,
    }


#: training keys every experiment inherits from `training:` and may override
TRAINING_PROPS: dict[str, Any] = {
    "batch_size": _pos_int,
    "lr": {"type": "number", "exclusiveMinimum": 0},
    "weight_decay": {"type": "number", "minimum": 0},
    "warmup_steps": _nonneg_int,
    "schedule": {"enum": ["constant", "linear"]},
    "max_grad_norm": {"type": ["number", "null"], "exclusiveMinimum": 0},
    "eval_every": _pos_int,
    "checkpoint_every": _pos_int,
    "max_dev_examples": {"type": ["integer", "null"], "minimum": 1},
    # batches per TLP for the gradient-cosine diagnostic at every evaluation (0: off)
    "grad_cosine_batches": _nonneg_int,
}

#: optional training keys (defaults in OPTIONAL_TRAINING_DEFAULTS)
OPTIONAL_TRAINING_PROPS: dict[str, Any] = {
    # which checkpoint a run keeps: the best mean dev score (`mean`), or one per task (`per-task`:
    # the authors of Tarunesh et al. keep a best checkpoint per task and fine-tune each TLP from
    # the one of its task)
    # (`last`: the final step, a fixed budget; what a run gets anyway when every dev set it
    # could select on is training data, e.g. M'hamdi et al.'s MONO and FT)
    "selection": {"enum": ["mean", "per-task", "last"]},
    # gradient-cosine diagnostic: 0 = exact (per-TLP gradients kept on the CPU), k > 0 = a
    # count sketch of k buckets per TLP (memory k floats per TLP, for mBERT-size encoders)
    "grad_cosine_sketch": _nonneg_int,
    # batches cut to their longest row (`dynamic`; losses equal up to float rounding) or kept
    # at features.max_length (`fixed`, the papers' code)
    "padding": {"enum": ["dynamic", "fixed"]},
    # training batches of similar lengths (sorted windows of 50 batches, batches shuffled; the
    # same examples per epoch): faster with dynamic padding, but not the papers' random batches
    "group_by_length": {"type": "boolean"},
    # speed switches (pipeline/runtime/acceleration.py), CPU-safe defaults, kept in provenance
    "precision": {"enum": ["fp32", "bf16"]},
    "compile": {"oneOf": [{"type": "boolean"}, {"enum": ["inductor", "aot_eager", "eager"]}]},
    "fused_adamw": {"enum": ["auto", True, False]},
    "pin_memory": {"type": "boolean"},
    # processes (GPUs) per training job: > 1 makes the train/finetune rules launch `torchrun
    # --standalone --nproc_per_node N` and ask the scheduler for N GPUs (data-parallel STL/MTL/
    # fine-tuning, parallel Reptile's trajectories over the ranks: pipeline/runtime/distributed.py)
    "processes": _pos_int,
}
OPTIONAL_TRAINING_DEFAULTS: dict[str, Any] = {
    "selection": "mean",
    "grad_cosine_sketch": 0,
    "padding": "dynamic",
    "group_by_length": False,
    "precision": "fp32",
    "compile": False,
    "fused_adamw": "auto",
    "pin_memory": True,
    "processes": 1,
}

#: a TLP selection: "all", "task:<task>", "lang:<lang>", or an explicit list of TLPs
SELECTION = {
    "oneOf": [
        {
            "type": "string",
            "pattern": r"^(all|each-task|each-lang|task:[a-z]+|lang:[A-Za-z0-9_-]+)$",
        },
        {"type": "array", "items": _tlp, "minItems": 1},
    ]
}

#: seeds of the repeated runs (weights, data order, sampling, dropout); tables show mean ± sd
_SEEDS = {"type": "array", "items": _nonneg_int, "minItems": 1, "uniqueItems": True}

#: a language code, or a grid placeholder (`aux`, `target`) standing for the grid entry's ones
_LANG = {"type": "string", "pattern": r"^[A-Za-z0-9_-]+$"}
#: a TLP whose language may be a grid placeholder (`nli/aux`, `nli/target`)
_TLP_LIST = {"type": "array", "items": _tlp, "minItems": 1, "uniqueItems": True}
#: grid placeholders and what replaces them (Liu et al.'s aux -> target language grid)
PLACEHOLDERS = ("aux", "target")

#: where each task's splits come from: {task: {split: dataset or [datasets]}} (first that has
#: the TLP's split wins); `data.sources`, and an experiment's `sources` over it
_SOURCES = {
    "type": "object",
    "propertyNames": {"enum": sorted(TASK_TYPES)},
    "additionalProperties": _obj(
        {
            sp: {"oneOf": [_name, {"type": "array", "items": _name, "minItems": 1}]}
            for sp in ("train", "dev", "test")
        }
    ),
}

_COMMON_EXPERIMENT = {
    "method": {"type": "string"},
    # start from the model of another experiment (same seed, or that experiment's only seed):
    # Liu et al.'s English fine-tuning is a stage of its own, shared by every run from it
    "init": _name,
    # the split the run trains on: `dev` for meta-training on development sets (X-MAML,
    # XLA-MAML: auxiliary languages have dev data only); its TLPs may be any prepared TLP, and
    # the model is selected on the dev sets of the evaluated TLPs it did not train on
    "train_split": {"enum": ["train", "dev"]},
    # the run's TLPs trained on their dev split, the others on train (M'hamdi et al.: English
    # train + the target's dev set, as FT w/EN and X-METRA); placeholders allowed
    "dev_tlps": _TLP_LIST,
    # the share of each dev-trained TLP's dev split that is trained on (a seeded subset, the
    # same for every method of a seed: M'hamdi et al.'s downsampling analysis)
    "dev_fraction": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    # TLPs evaluated besides the run's own and the zero-shot languages (placeholders allowed):
    # an English-only model scored on the target languages (M'hamdi et al.'s PRE)
    "eval_tlps": _TLP_LIST,
    # false: evaluate only the run's own TLPs and `eval_tlps` (no zero-shot languages, no
    # `init` TLPs): M'hamdi et al.'s tables report the targets only
    "extra_eval": {"type": "boolean"},
    # the representation analysis of each run (PCA and Hausdorff distance of source and target
    # representations, Xia et al. §4.5; methods with a source and a target per task)
    "represent": {"type": "boolean"},
    # catastrophic forgetting (Lee et al. 2022 §4.2, Figure 5): masked-LM loss of the trained
    # encoder on held-out text of seen and unseen languages, and its l2 distance from the
    # pretrained weights (`forgetting:` settings; pipeline/experiments/forgetting.py)
    "forgetting": {"type": "boolean"},
    # this experiment's `data.sources`, split by split over the top-level ones (Lee et al.: qa/en
    # train from TyDiQA for Table 1, from SQuAD for Table 4); data/plan.json resolves each set
    "sources": _SOURCES,
    # Lee et al. (2022) §4.3 zero-shot protocol: each train TLP's examples split into `k` GMM
    # clusters of their pretrained-encoder embeddings (top-level `clustering:` options), the
    # clusters being the run's tasks (`temperature: inf` = p_t = 1/k); rule `clusters` writes
    # data/clusters/<task>.<lang>.k<k>.s<seed>.json once for every run sharing it
    "clusters": _obj({"k": {"type": "integer", "minimum": 2}, "seed": _nonneg_int}),
    # the dev sets that select the model (placeholders allowed; default: the run's TLPs):
    # Xia et al. pick the epoch on the target language's dev set only
    "select_tlps": _TLP_LIST,
    # at most this many training examples of a TLP (placeholders allowed in the keys): the same
    # fixed subset for every method and seed (Xia et al.'s 5k/10k/20k source examples)
    "train_examples": {
        "type": "object",
        "propertyNames": {"pattern": r"^[a-z]+/[A-Za-z0-9_-]+$"},
        "additionalProperties": _pos_int,
    },
    # grids: one run per entry; an entry of `aux` is a language or languages joined by `+`
    # (`bg+de`); `aux` / `target` in `tlps`, `finetune_tlps` and a method's language lists
    # stand for the entry's languages (run ids `<exp>.<aux>[.<target>].s<seed>`, `+` -> `-`)
    "aux": {
        "type": "array",
        "items": {"type": "string", "pattern": r"^[A-Za-z0-9_-]+(\+[A-Za-z0-9_-]+)*$"},
        "minItems": 1,
        "uniqueItems": True,
    },
    "target": {"type": "array", "items": _LANG, "minItems": 1, "uniqueItems": True},
    # an analysis sweep: one run per entry (per grid entry and seed), the entry's keys over the
    # experiment's (`{k: 1, q: 1}`, `{dev_fraction: 0.5}`; run ids `<exp>[.<grid>].k1-q1.s<seed>`);
    # swept runs feed the sweep plots and tables (M'hamdi et al. §4.2), not the main tables
    "sweep": {
        "type": "array",
        "items": {"type": "object", "minProperties": 1},
        "minItems": 1,
    },
    # fine-tune on these TLPs afterwards (few-shot: `finetune_split: dev`, the target's dev
    # set), each from this run's model; the run itself is then evaluated on everything
    "finetune_tlps": _TLP_LIST,
    "finetune_split": {"enum": ["train", "dev"]},
    "steps": _pos_int,  # optimizer steps (STL/MTL) or meta-steps (Reptile family) ...
    "epochs": {"type": "number", "exclusiveMinimum": 0},  # ... or passes over the selected data
    "tlps": SELECTION,
    "seeds": _SEEDS,  # repeat every run of the experiment per seed (default: top-level seeds)
    "finetune": {"type": "boolean"},  # fine-tune the result on each TLP (default: meta methods)
    "row": {"type": "string"},  # row label of the paper-shaped table (best-on-dev among equals)
    "dropout": _prob,
    **TRAINING_PROPS,
    **OPTIONAL_TRAINING_PROPS,
}

#: how fine-tuning runs are cut into jobs (see `finetune.jobs`)
FINETUNE_JOBS = ("per-model", "per-tlp")

#: methods whose result is an initialisation, fine-tuned per TLP by default (Tarunesh et al. §4)
META_METHODS = {"reptile", "seq_reptile"}

_FINETUNE_SETTING = _obj(
    {
        "epochs": {"type": "number", "exclusiveMinimum": 0},
        "lrs": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 1},
        "batch_size": _pos_int,
    },
    ["epochs", "lrs"],
)

_SAMPLING = {
    "temperature": {"oneOf": [{"type": "number", "exclusiveMinimum": 0}, {"const": "inf"}]},
    "sampling_sizes": {"enum": ["examples", "batches"]},
}


def _default(schema: dict[str, Any], value: Any) -> dict[str, Any]:
    """A schema that also documents its default (read back by `method_defaults`)."""
    return {**schema, "default": value}


_WEIGHT = {"type": "number", "minimum": 0, "maximum": 1}

#: MultiDDS (parameterized sampling, Tarunesh et al. 2021 §3.2.3, §4.3): every `update_every`
#: meta-steps a reward per train TLP from `dev` (a TLP of the run, "lang:<l>", "task:<t>", "all").
_MULTIDDS = _default(
    _obj(
        {
            "update_every": _default(_pos_int, 10),
            "lr": _default({"type": "number", "exclusiveMinimum": 0}, 0.01),
            "dev": _default(
                {
                    "type": "string",
                    # fixed D_dev, or per-model: `target` (one model per target TLP, D_dev = it,
                    # §4.3 (a)/(b)), `each-lang` / `each-task` (one model per language / task of
                    # the pool, D_dev = its Lang-/Task-Limited dev set, §4.3 (c)/(d))
                    "pattern": r"^(all|target|each-lang|each-task|task:[a-z]+|lang:[A-Za-z0-9_-]+|[a-z]+/[A-Za-z0-9_-]+)$",
                },
                "all",
            ),
            "reward": _default({"enum": ["cosine", "faithful"]}, "cosine"),
            # gradients of the shared encoder only, or of all parameters (Wang et al. 2020b and
            # the reference code; the heads of other tasks then add to the norms); default: the
            # reward mode's own (`cosine`: encoder, `faithful`: all)
            "reward_params": {"enum": ["encoder", "all"]},
            # several dev TLPs: the cosine with the gradient of their mean loss, or the mean of
            # the per-dev-TLP cosines (the reference code); default: the reward mode's own
            # (`cosine`: mean-gradient, `faithful`: mean-cosine)
            "dev_reduce": {"enum": ["mean-gradient", "mean-cosine"]},
        }
    ),
    {},
)

#: keys every Reptile-style method shares (defaults: see each method's docstring for why)
_META = {
    "optimizer_state": _default({"enum": ["shared", "reset"]}, "shared"),
    "sampling_sizes": _default({"enum": ["examples", "batches"]}, "examples"),
    "sampler": _default({"enum": ["temperature", "multidds"]}, "temperature"),
    "multidds": _MULTIDDS,
}

_FRACTION = {"type": "number", "exclusiveMinimum": 0, "maximum": 1}

#: keys of X-METRA and X-METRA-ADA (M'hamdi et al. §3.2: n = 5, k = q = 6, first order, MTOD
#: α = 1e-3; the reference's 4 tasks per outer step and 2,500 pre-generated tasks)
_XMETRA = {
    "support": _default({"type": "array", "items": _LANG, "minItems": 1}, ["en"]),
    "query": _default({"type": "array", "items": _LANG, "minItems": 1}, ["target"]),
    "k": _default(_pos_int, 6),
    "q": _default(_pos_int, 6),
    "n_tasks": _default(_pos_int, 2500),  # meta-train tasks per (support, query) pair
    "adapt_tasks": _default(_pos_int, 2500),  # meta-adapt tasks per target (X-METRA-ADA)
    "meta_batch": _default(_pos_int, 4),
    "inner_steps": _default({"type": "integer", "minimum": 0}, 5),
    "inner_lr": _default({"type": "number", "minimum": 0}, 1e-3),
    "first_order": _default({"type": "boolean"}, True),
    "reduce": _default({"enum": ["mean", "sum"]}, "mean"),
    # share of the target dev split forming meta-train queries (null: the paper's, MTOD 0.75,
    # QA 0.6, for X-METRA-ADA; X-METRA uses all of it)
    "meta_train_fraction": _default({"oneOf": [{"type": "null"}, _FRACTION]}, None),
    # QA meta-adapt: share of the held-out part forming the support pool (the rest: queries)
    "adapt_support_fraction": _default(_FRACTION, 0.6),
    # QA similarity: a hub/local sentence encoder, mean-pooled (null: the run's encoder)
    "embedder": _default({"oneOf": [{"type": "null"}, {"type": "string"}]}, None),
}

#: keys of MetaXL and its joint-training baselines (Xia et al. 2021; Appendix A: r = 384 NER /
#: 192 SA, RTN after layer 12, main lr 3e-5, RTN lr in {3e-5, 1e-6, 1e-7}); see
#: pipeline/methods/metaxl.py and pipeline/models/rtn.py
_RTN = {
    # the target languages: the run's TLPs in them are targets, the others sources (one of each
    # per task)
    "targets": _default({"type": "array", "items": _LANG, "minItems": 1}, ["target"]),
    "rtn_layers": _default(
        {
            "type": "array",
            "items": {"oneOf": [{"const": "last"}, _nonneg_int]},
            "minItems": 1,
            "uniqueItems": True,
        },
        ["last"],
    ),
    "bottleneck": _default({"oneOf": [{"type": "null"}, _pos_int]}, None),  # null: d / 2
    "transform": _default({"enum": ["eq1", "residual_gate"]}, "eq1"),
    # the target batch: all of it is the meta batch and trains θ (`whole`), or its first half
    # trains θ and the second is the meta batch (`halves`, the reference's portion = 2)
    "target_split": _default({"enum": ["whole", "halves"]}, "whole"),
}

#: keys of the multi-task baselines of Lee et al. (2022) §4.2 that see one gradient per task:
#: T distinct TLPs per step with p ∝ N^(1/τ) ("we sample eight tasks ... p_t ∝ (N_t)^{1/5}"),
#: their task gradients summed (the papers, LibMTL) or averaged; pipeline/methods/task_gradients.py
_PER_TASK = {
    "temperature": _default(_SAMPLING["temperature"], 5.0),
    "sampling_sizes": _default(_SAMPLING["sampling_sizes"], "examples"),
    "tasks_per_step": _default(_pos_int, 8),
    "reduction": _default({"enum": ["sum", "mean"]}, "sum"),
}
#: the surgery acts on the parameters every task of the step touches (`shared`) or on the
#: encoder (`encoder`, LibMTL's shared parameters); heads always get their plain gradients
_SURGERY = {**_PER_TASK, "surgery_params": _default({"enum": ["shared", "encoder"]}, "shared")}

#: method name -> its own keys (on top of the common ones)
METHOD_PROPS: dict[str, dict[str, Any]] = {
    "stl": {},
    # `mixing: concat` = concatenate and shuffle (each TLP's batches once per epoch)
    # `tasks_per_step`: TLP batches per optimizer step, their losses averaged (Lee et al.'s
    # multi-task baselines draw eight per step); 1 = one TLP per step (= Sequential Reptile, η=1)
    "mtl": {
        **_SAMPLING,
        "mixing": _default({"enum": ["sample", "concat"]}, "sample"),
        "tasks_per_step": _default(_pos_int, 1),
    },
    # PCGrad (Yu et al. 2020): conflicting task gradients projected; pipeline/methods/pcgrad.py
    "pcgrad": _SURGERY,
    # GradVac (Wang et al. 2021): per-pair EMA cosine targets (β; LibMTL's EMA only on conflicts:
    # `ema_update: on-conflict`); pipeline/methods/gradvac.py
    "gradvac": {
        **_SURGERY,
        "beta": _default(_WEIGHT, 0.5),
        "ema_update": _default({"enum": ["always", "on-conflict"]}, "always"),
    },
    # GradNorm (Chen et al. 2018): learned task-loss weights, norms at the last shared layer
    # (`norm_params: encoder`: LibMTL's); pipeline/methods/gradnorm.py
    "gradnorm": {
        **_PER_TASK,
        "alpha": _default({"type": "number", "minimum": 0}, 1.5),
        "weight_lr": _default({"type": "number", "minimum": 0}, 0.025),
        "norm_params": _default({"enum": ["last-layer", "encoder"]}, "last-layer"),
    },
    # RecAdam (Chen et al. 2020): Adam with an annealed pull toward the pretrained encoder, on
    # MTL's sampling (Lee et al.'s eight TLPs per step by default); pipeline/methods/recadam.py
    "recadam": {
        "temperature": _default(_SAMPLING["temperature"], 5.0),
        "sampling_sizes": _default(_SAMPLING["sampling_sizes"], "examples"),
        "mixing": _default({"enum": ["sample", "concat"]}, "sample"),
        "tasks_per_step": _default(_pos_int, 8),
        "penalty": _default({"enum": ["decoupled", "coupled"]}, "decoupled"),
        "gamma": _default({"type": "number", "minimum": 0}, 5000.0),
        "anneal_k": _default({"type": "number", "exclusiveMinimum": 0}, 1.0),
        "anneal_t0": _default({"type": "number"}, 1000.0),
    },
    # Parallel Reptile over TLPs (Tarunesh et al. 2021, Algorithm 1); `steps` counts meta-steps
    "reptile": {
        **_META,
        "temperature": _default(_SAMPLING["temperature"], 1.0),
        "m": _default(_pos_int, 8),
        "k": _default(_pos_int, 3),
        "beta": _default(_WEIGHT, 1.0),
        "replacement": _default({"type": "boolean"}, True),
    },
    # Sequential Reptile (Lee et al. 2022); `q` (p ∝ N^q) is the alternative to `temperature`
    # (q = 1/τ), not both; `steps` counts meta-steps
    "seq_reptile": {
        **_META,
        "temperature": _default(_SAMPLING["temperature"], 5.0),
        "q": {"type": "number", "minimum": 0},
        "inner_steps": _default(_pos_int, 1000),
        "eta": _default(_WEIGHT, 0.1),
    },
    # X-MAML (Nooralahzadeh et al. 2020): support and query from the same TLP; `steps` counts
    # meta-steps (one outer optimizer step each); see pipeline/methods/xmaml.py for the options
    "xmaml": {
        "temperature": _default(_SAMPLING["temperature"], 1.0),
        "sampling_sizes": _default(_SAMPLING["sampling_sizes"], "examples"),
        "inner_steps": _default({"type": "integer", "minimum": 0}, 1),
        "inner_lr": _default({"type": "number", "minimum": 0}, 1e-4),
        "first_order": _default({"type": "boolean"}, False),
        "support_query": _default({"enum": ["batches", "halves"]}, "batches"),
        "meta_batch": _default({"oneOf": [{"const": "all"}, _pos_int]}, "all"),
        "reduce": _default({"enum": ["mean", "sum"]}, "mean"),
    },
    # XLA-MAML (Liu et al. 2021): support and query languages are disjoint subsets of
    # `support` and `query` (per task of the run); see pipeline/methods/xla_maml.py
    "xla_maml": {
        "support": _default({"type": "array", "items": _LANG, "minItems": 1}, ["en"]),
        "query": _default({"type": "array", "items": _LANG, "minItems": 1}, ["aux"]),
        "subset_size": _default(_pos_int, 1),
        "sampling": _default({"enum": ["cover", "random"]}, "cover"),
        "parallel": _default({"type": "boolean"}, True),
        "inner_steps": _default({"type": "integer", "minimum": 0}, 1),
        "inner_lr": _default({"type": "number", "minimum": 0}, 1e-5),
        "first_order": _default({"type": "boolean"}, False),
        "meta_batch": _default(_pos_int, 1),
        "reduce": _default({"enum": ["mean", "sum"]}, "mean"),
    },
    # X-METRA (M'hamdi et al. 2021): first-order MAML on pseudo-tasks, English train support and
    # target dev query; see pipeline/methods/xmetra.py and xmetra_tasks.py. `lr` is β.
    "xmetra": _XMETRA,
    # X-METRA-ADA: X-METRA, then the meta-adaptation stage on the held-out target dev part
    "xmetra_ada": {
        **_XMETRA,
        "stages": _default({"enum": ["sequential", "interleaved"]}, "sequential"),
        "adapt_steps": _default(_nonneg_int, 100),
        # inner steps of a meta-adapt task (default: inner_steps; the reference's MTOD: 10)
        "adapt_inner_steps": _default({"oneOf": [{"type": "null"}, _pos_int]}, None),
    },
    # joint training of source and target (Xia et al.'s JT): one batch of each per step, one
    # optimizer step on their summed loss; `rtn: true` is "JT w/ RTN" (Table 6), the RTN on the
    # source examples trained jointly, with MetaXL's architecture
    "jt": {**_RTN, "rtn": _default({"type": "boolean"}, False)},
    # MetaXL: JT whose RTN φ learns by the one-step look-ahead (Algorithm 1)
    "metaxl": {
        **_RTN,
        "meta_lr": _default({"type": "number", "minimum": 0}, 1e-6),  # β (the README's 1e-6)
        "meta_weight_decay": _default({"type": "number", "minimum": 0}, 0.0),  # reference 5e-4
        # β constant, or on the main optimizer's warm-up/decay schedule (the reference)
        "meta_schedule": _default({"enum": ["constant", "main"]}, "constant"),
        # the look-ahead step α: fixed (`inner_lr`, null = the run's lr) or the main
        # optimizer's current scheduled lr (the reference: 0 at step 0, tiny during warm-up)
        "lookahead_lr": _default({"enum": ["fixed", "scheduled"]}, "fixed"),
        "inner_lr": _default({"oneOf": [{"type": "null"}, {"type": "number", "minimum": 0}]}, None),
        # the look-ahead loss also includes the target (train part) batch without the RTN
        # (the reference, X5; Algorithm 1 line 4 uses the source loss only)
        "inner_target": _default({"type": "boolean"}, False),
    },
}

#: experiment keys holding TLP lists, where grid placeholders are expanded
GRID_TLP_KEYS = ("tlps", "finetune_tlps", "dev_tlps", "eval_tlps", "select_tlps")

#: method keys holding language lists, where grid placeholders are expanded
LANG_LIST_KEYS = ("support", "query", "targets")


def method_defaults(method: str) -> dict[str, Any]:
    """The defaults declared in METHOD_PROPS[method] (nested objects as dicts of defaults)."""

    def of(schema: Mapping[str, Any]) -> Any:
        if schema.get("type") == "object" and "properties" in schema:
            return {k: of(s) for k, s in schema["properties"].items() if "default" in s}
        return copy.deepcopy(schema.get("default"))

    return {k: of(s) for k, s in METHOD_PROPS[method].items() if "default" in s}


def method_params(method: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` over the method's defaults; nested objects (multidds) are merged key by key."""
    return deep_merge(method_defaults(method), params)


_FEATURE_PROPS = {
    "max_length": {"type": "integer", "minimum": 8},
    "doc_stride": _pos_int,
    # QA windows: `overlap` = doc_stride tokens shared by consecutive windows (Hugging Face),
    # `step` = doc_stride tokens between window starts (XTREME, transformers 2.x)
    "doc_stride_mode": {"enum": ["overlap", "step"]},
    "max_query_length": _pos_int,
    "max_answer_length": _pos_int,
    "n_best": _pos_int,
}

_LAYOUT = {"enum": ["original", "xtreme"]}

_POS_NUM = {"type": "number", "exclusiveMinimum": 0}

#: Lee et al. (2022) §4.1's synthetic 2-D experiment (Figure 3; rule `toy2d`,
#: pipeline/experiments/toy2d_study.py): every method's `steps` steps (meta-steps for the Reptile
#: family) at `lr` with `optimizer`, `radius` = how close to some x_i counts as "in an MTL
#: minimum", and Reptile / Sequential Reptile per (inner lr, K) of `sweep` (null or an empty list:
#: no sweep). `properties` apply to objects only, so null passes and an unknown key is named.
_TOY2D = {
    **_obj(
        {
            "steps": _pos_int,
            "lr": _POS_NUM,
            "seed": _nonneg_int,
            "optimizer": {"enum": ["sgd", "adam"]},
            "radius": _POS_NUM,
            "sweep": {
                **_obj(
                    {
                        "lrs": {"type": "array", "items": _POS_NUM, "uniqueItems": True},
                        "ks": {"type": "array", "items": _pos_int, "uniqueItems": True},
                    },
                    ["lrs", "ks"],
                ),
                "type": ["object", "null"],
            },
        },
        ["steps", "lr", "seed", "optimizer", "radius", "sweep"],
    ),
    "type": ["object", "null"],
}
_LANGS = {"type": "array", "items": _LANG, "uniqueItems": True}

_TOP_SCHEMA = _obj(
    {
        "seeds": _SEEDS,
        "benchmark": _obj(
            {
                "seed": _nonneg_int,
                "languages": {"type": "integer", "minimum": 2},
                "zero_shot": _nonneg_int,
                "tasks": {"type": "array", "items": {"enum": sorted(TASK_TYPES)}, "minItems": 1},
                "scale": {"type": "number", "exclusiveMinimum": 0},  # train sizes only
                # dev and test examples per TLP (default: per task, >= 500 sentence-level,
                # >= 200 tagging sentences, >= 300 QA questions; not scaled)
                "eval_size": _pos_int,
                # sentences of unlabelled text per language (MLM pretraining corpus)
                "text_sentences": _pos_int,
                # sentences of held-out text per language (heldout_text/<lang>.txt, a stream of
                # its own; the masked-LM loss of `forgetting`); 0: none
                "heldout_sentences": _nonneg_int,
            },
            ["seed", "languages", "zero_shot", "tasks", "scale"],
        ),
        "data": _obj(
            {
                "datasets": {"type": "array", "items": _name, "minItems": 1},
                # one layout for all, or per dataset ({xnli: original, panx: xtreme})
                "layout": {
                    "oneOf": [
                        _LAYOUT,
                        {"type": "object", "propertyNames": _name, "additionalProperties": _LAYOUT},
                    ]
                },
                # PAWS-X: drop the untranslated (NS) rows of eval splits (XTREME keeps them)
                "drop_untranslated": {"type": "boolean"},
                # per dataset: its dev split becomes test and this share of train becomes dev
                # (M'hamdi et al.'s TyDiQA-GoldP: {tydiqa: 0.1})
                "heldout_dev": {
                    "type": "object",
                    "propertyNames": _name,
                    "additionalProperties": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "exclusiveMaximum": 1,
                    },
                },
                # where each task's splits come from: {task: {split: dataset or [datasets]}}
                # (first that has the TLP's split wins); default: `datasets` in order
                "sources": _SOURCES,
            },
            ["datasets", "layout"],
        ),
        # main metric per task (model selection and tables), e.g. {ner: accuracy}; and the QA
        # normalization: `official` (MLQA's script for MLQA, SQuAD's elsewhere) or `squad`
        # (SQuAD's for every language, what the reference code of Tarunesh et al. called)
        "metrics": _obj(
            {
                "main": {
                    "type": "object",
                    "propertyNames": {"enum": sorted(TASK_TYPES)},
                    "additionalProperties": {"type": "string"},
                },
                "qa_normalization": {"enum": ["official", "squad"]},
            }
        ),
        "encoder": _obj(
            {
                "name": {"type": ["string", "null"]},
                # classification heads on BERT's pretrained pooler (tanh(W·h_CLS), as XTREME and
                # the authors' code) or on the raw [CLS] state (false: the tiny encoder's MLM
                # pretraining trains no pooler)
                "pooler": {"type": "boolean"},
                "tokenizer": _obj(
                    {"vocab_size": {"type": "integer", "minimum": 100}, "min_frequency": _pos_int},
                    ["vocab_size", "min_frequency"],
                ),
                "architecture": _obj(
                    {
                        "hidden_size": _pos_int,
                        "num_hidden_layers": _pos_int,
                        "num_attention_heads": _pos_int,
                        "intermediate_size": _pos_int,
                        "max_position_embeddings": _pos_int,
                        "dropout": _prob,
                    },
                    [
                        "hidden_size",
                        "num_hidden_layers",
                        "num_attention_heads",
                        "intermediate_size",
                        "max_position_embeddings",
                        "dropout",
                    ],
                ),
                "pretrain": _obj(
                    {
                        "steps": _nonneg_int,
                        "batch_size": _pos_int,
                        "max_length": _pos_int,
                        "lr": {"type": "number", "exclusiveMinimum": 0},
                        "warmup_steps": _nonneg_int,
                        "mlm_probability": _prob,
                        "checkpoint_every": _pos_int,
                        "seed": _nonneg_int,
                        # `text`: unlabelled text of every language (<raw>/text/*.txt, kept
                        # apart from the task data); `train`: the labelled train splits
                        "corpus": {"enum": ["text", "train"]},
                        # pack consecutive texts into [CLS] A [SEP] B [SEP] sequences
                        "pack": {"type": "boolean"},
                    },
                    [
                        "steps",
                        "batch_size",
                        "max_length",
                        "lr",
                        "warmup_steps",
                        "mlm_probability",
                        "checkpoint_every",
                        "seed",
                        "corpus",
                    ],
                ),
            },
            ["name", "tokenizer", "architecture", "pretrain"],
        ),
        "features": _obj(
            {
                **_FEATURE_PROPS,
                # per-task overrides, e.g. {qa: {max_length: 384}}
                "tasks": {
                    "type": "object",
                    "propertyNames": {"enum": sorted(TASK_TYPES)},
                    "additionalProperties": _obj(_FEATURE_PROPS),
                },
            },
            ["max_length", "doc_stride", "max_query_length", "max_answer_length", "n_best"],
        ),
        "tlps": {"type": "array", "items": _tlp, "minItems": 1, "uniqueItems": True},
        # languages evaluated zero-shot: for every task, or per task ({qa: [ar, vi], nli: [th]})
        "zero_shot_langs": {
            "oneOf": [
                _LANGS,
                {
                    "type": "object",
                    "propertyNames": {"enum": sorted(TASK_TYPES)},
                    "additionalProperties": _LANGS,
                },
            ]
        },
        "training": _obj({**TRAINING_PROPS, **OPTIONAL_TRAINING_PROPS}, list(TRAINING_PROPS)),
        "experiments": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": _name,
            # null removes an experiment inherited from params.yaml (in a preset)
            "additionalProperties": {"type": ["object", "null"]},
        },
        "finetune": _obj(
            {
                "default": _FINETUNE_SETTING,
                "tasks": {
                    "type": "object",
                    "propertyNames": {"enum": sorted(TASK_TYPES)},
                    "additionalProperties": _FINETUNE_SETTING,
                },
                # `per-model`: one job fine-tunes a meta model on each of its TLPs in turn
                # (few jobs: laptops); `per-tlp`: one job per (meta model, TLP) (clusters)
                "jobs": {"enum": list(FINETUNE_JOBS)},
            },
            ["default"],
        ),
        # how `clusters` runs embed and cluster (pipeline/data/clusters.py; every key optional)
        "clustering": _obj(
            {
                "pca_components": {"type": ["integer", "null"], "minimum": 1},
                "covariance_type": {"enum": ["full", "tied", "diag", "spherical"]},
                "n_init": _pos_int,
                "max_length": _pos_int,
                "batch_size": _pos_int,
            }
        ),
        # Lee et al. (2022) §4.2's forgetting analysis of the experiments with `forgetting: true`
        "forgetting": _obj(
            {
                # folder of <lang>.txt held-out text files, one sentence per line (blank lines
                # skipped): the synthetic benchmark's heldout_text/, or CC-100 (data/raw/cc100)
                "text": {"type": "string", "minLength": 1},
                "sentences": _pos_int,  # the first N non-empty lines of each file
                "mlm_probability": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "max_length": {"type": "integer", "minimum": 3},  # tokens, [CLS] and [SEP] too
                "batch_size": _pos_int,
                "seed": _nonneg_int,  # of the masking: the same masked inputs for every model
            }
        ),
        "report": _obj(
            {
                "metric": {"type": "string"},
                # bootstrap replicates of the 95% intervals, and the seed of their generator
                "bootstrap": _pos_int,
                "bootstrap_seed": _nonneg_int,
            },
            ["metric"],
        ),
        # Lee et al. (2022) §4.1's 2-D study (rule `toy2d`); null or absent: no job
        "toy2d": _TOY2D,
    },
    [
        "seeds",
        "benchmark",
        "data",
        "encoder",
        "features",
        "tlps",
        "zero_shot_langs",
        "training",
        "experiments",
        "finetune",
        "report",
    ],
)


def _fmt_path(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "<top>"


def _validate(
    instance: Any, schema: dict[str, Any], where: str, prefix: Sequence[Any] = ()
) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    # shallowest first; at one depth an unknown key before anything else, since a misspelt key
    # (`batch_sise`) is also why its correct spelling is reported missing
    errors = sorted(
        validator.iter_errors(instance),
        key=lambda e: (len(e.absolute_path), e.validator != "additionalProperties", str(e)),
    )
    if not errors:
        return
    e = errors[0]
    # unknown keys: name the key, not the parent, and the closest valid one
    if e.validator == "additionalProperties":
        known = sorted(e.schema.get("properties", {}))
        extra = sorted(set(e.instance) - set(known))
        key = _fmt_path([*prefix, *e.absolute_path, extra[0]])
        close = difflib.get_close_matches(str(extra[0]), known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"{where}: {key}: unknown key ({hint}allowed here: {', '.join(known)})")
    if e.validator == "required":
        raise ConfigError(f"{where}: {_fmt_path([*prefix, *e.absolute_path])}: {e.message}")
    if e.validator == "oneOf":
        msg = "expected " + " or ".join(_describe(s) for s in e.schema["oneOf"])
    else:
        msg = f"expected {_describe(e.schema)}, got {e.instance!r}"
    raise ConfigError(f"{where}: {_fmt_path([*prefix, *e.absolute_path])}: {msg}")


def _describe(schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    if "const" in schema:
        return repr(schema["const"])
    if "pattern" in schema:
        return f"a string matching {schema['pattern']}"
    parts = [str(schema.get("type", "a value"))]
    for k, word in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("minItems", "items >="),
    ):
        if k in schema:
            parts.append(f"{word} {schema[k]}")
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# Loading


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `over` into a copy of `base`, recursively for mappings (as Snakemake does)."""
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: invalid YAML ({getattr(e, 'problem', e)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_params(paths: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """Read params.yaml and presets (later files override earlier ones), then validate."""
    if not paths:
        paths = ["params.yaml"]
    cfg: dict[str, Any] = {}
    for p in paths:
        cfg = deep_merge(cfg, read_yaml(p))
    validate(cfg, where=" + ".join(str(p) for p in paths))
    return cfg


#: methods that train under several processes (their `parallelism`, pipeline/methods/base.py:
#: STL/MTL data parallel, parallel Reptile's trajectories); the rest run in one process only
DISTRIBUTED_METHODS = ("mtl", "reptile", "stl")


def _check_processes(cfg: Mapping[str, Any], where: str) -> None:
    """`training.processes` > 1 with a method that cannot use it fails here, before any job is
    submitted (the trainer would refuse it only after the GPUs were allocated and torchrun ran)."""
    default = cfg["training"].get("processes", 1)
    for name, exp in active_experiments(cfg).items():
        n = max(
            [exp.get("processes", default), *(e.get("processes", 1) for e in exp.get("sweep", []))]
        )
        if n == 1:
            continue
        key = "training.processes" if n == default else f"experiments.{name}.processes"
        method = exp["method"]
        if method not in DISTRIBUTED_METHODS:
            raise ConfigError(
                f"{where}: {key}: {n}, but experiments.{name} uses {method}, which "
                f"runs in one process only (several: {', '.join(DISTRIBUTED_METHODS)}); use "
                "processes: 1 or null the experiment"
            )
        if method == "reptile" and method_params(method, exp)["optimizer_state"] == "shared":
            raise ConfigError(
                f"{where}: experiments.{name}.optimizer_state: shared chains the m trajectories "
                f"through one AdamW state, which {n} processes cannot reproduce; expected reset "
                "(independent trajectories) with training.processes > 1"
            )


def validate(cfg: Mapping[str, Any], where: str = "params") -> None:
    """Validate a merged config; raise ConfigError naming the key path and what was expected."""
    _validate(cfg, _TOP_SCHEMA, where)
    tlps = []
    for i, t in enumerate(cfg["tlps"]):  # unknown tasks fail here, naming the TLP
        try:
            tlps.append(TLP.parse(t))
        except PipelineError as e:
            raise ConfigError(f"{where}: tlps.{i}: {e}") from None
    if not active_experiments(cfg):
        raise ConfigError(f"{where}: experiments: every experiment is null; expected at least one")
    for name, exp in active_experiments(cfg).items():
        method = exp.get("method")
        if method not in METHOD_PROPS:
            raise ConfigError(
                f"{where}: experiments.{name}.method: expected one of "
                f"{', '.join(sorted(METHOD_PROPS))}, got {method!r}"
            )
        schema = _obj({**_COMMON_EXPERIMENT, **METHOD_PROPS[method]}, ["method"])
        _validate(exp, schema, where, prefix=("experiments", name))
        if ("steps" in exp) == ("epochs" in exp):
            raise ConfigError(f"{where}: experiments.{name}: expected exactly one of steps, epochs")
        for i, entry in enumerate(exp.get("sweep", [])):
            fixed = sorted(set(entry) & SWEEP_FIXED)
            if fixed:
                raise ConfigError(
                    f"{where}: experiments.{name}.sweep.{i}: {', '.join(fixed)} cannot be swept"
                )
            _validate(
                {**exp, **entry}, schema, where, prefix=("experiments", name, "sweep", str(i))
            )
        if method in PER_TLP_METHODS and exp.get("sweep"):
            raise ConfigError(f"{where}: experiments.{name}: {method} takes no sweep")
        if method in ("xmetra", "xmetra_ada") and "epochs" in exp:
            raise ConfigError(
                f"{where}: experiments.{name}.epochs: {method} counts meta-steps; give steps"
            )
        if exp.get("represent") and method not in PAIRED_METHODS:
            raise ConfigError(
                f"{where}: experiments.{name}.represent: needs a method with a source and a "
                f"target per task ({', '.join(PAIRED_METHODS)}), not {method}"
            )
        if method in PER_TLP_METHODS and (exp.get("aux") or exp.get("target")):
            raise ConfigError(f"{where}: experiments.{name}: {method} takes no aux/target grid")
        if "clusters" in exp and (method not in CLUSTER_METHODS or exp.get("sampler")):
            raise ConfigError(
                f"{where}: experiments.{name}.clusters: needs a multi-task method sampling its "
                f"tasks by size ({', '.join(sorted(CLUSTER_METHODS))}), not {method}"
                + (f" with sampler {exp['sampler']}" if exp.get("sampler") else "")
            )
        for point in grid_points(exp):
            gexp = apply_grid(exp, point, f"{where}: experiments.{name}")
            sel = gexp.get("tlps", "all")
            chosen = select_tlps(cfg, sel, where=f"{where}: experiments.{name}.tlps", any_tlp=True)
            if "clusters" in exp and len(chosen) != 1:
                raise ConfigError(
                    f"{where}: experiments.{name}.tlps: `clusters` splits one training TLP into "
                    f"tasks (Lee et al. §4.3: one English training set), got {len(chosen)}"
                )
            for key in ("finetune_tlps", "dev_tlps", "eval_tlps"):
                for i, t in enumerate(gexp.get(key, [])):
                    try:
                        TLP.parse(t)
                    except PipelineError as e:
                        raise ConfigError(f"{where}: experiments.{name}.{key}.{i}: {e}") from None
            for key in ("dev_tlps", "select_tlps", "train_examples"):
                strays = [t for t in gexp.get(key, []) if TLP.parse(t) not in chosen]
                if strays:
                    raise ConfigError(
                        f"{where}: experiments.{name}.{key}: {', '.join(strays)} not among the "
                        "experiment's tlps"
                    )
            if method in PAIRED_METHODS:
                source_target_pairs(
                    chosen,
                    method_params(method, gexp)["targets"],
                    f"{where}: experiments.{name}.tlps",
                )
        if exp.get("finetune_split") == "dev":
            tasks = {t.partition("/")[0] for t in exp.get("finetune_tlps", [])}
            for task in sorted(tasks):
                lrs = finetune_setting(cfg, task)["lrs"]
                if len(lrs) != 1:
                    raise ConfigError(
                        f"{where}: experiments.{name}.finetune_split: dev leaves no dev set to "
                        f"choose among finetune lrs {lrs} of {task}; give one"
                    )
    _check_processes(cfg, where)
    zs = cfg["zero_shot_langs"]
    for task, langs in zs.items() if isinstance(zs, Mapping) else [(None, zs)]:
        key = "zero_shot_langs" + (f".{task}" if task else "")
        for lang in langs:  # per task: Lee et al.'s MLQA de is zero-shot for QA, NER trains de
            if any(t.lang == lang and task in (None, t.task) for t in tlps):
                raise ConfigError(f"{where}: {key}: {lang!r} is also a training language in tlps")
    datasets = cfg["data"]["datasets"]
    layout = cfg["data"]["layout"]
    for name in layout if isinstance(layout, Mapping) else []:
        if name not in datasets:
            raise ConfigError(f"{where}: data.layout.{name}: not one of data.datasets")
    for name in cfg["data"].get("heldout_dev", {}):
        if name not in datasets:
            raise ConfigError(f"{where}: data.heldout_dev.{name}: not one of data.datasets")
    _check_sources(cfg["data"].get("sources", {}), datasets, f"{where}: data.sources")
    for name, exp in active_experiments(cfg).items():
        _check_sources(exp.get("sources", {}), datasets, f"{where}: experiments.{name}.sources")
    for task, key in cfg.get("metrics", {}).get("main", {}).items():
        allowed = metric_keys(task)
        if key not in allowed:
            raise ConfigError(
                f"{where}: metrics.main.{task}: expected one of {', '.join(allowed)}, got {key!r}"
            )


def _check_sources(sources: Mapping[str, Any], datasets: Sequence[str], key: str) -> None:
    """Every dataset a `sources` mapping names is one of `data.datasets` (else one line naming
    `<key>.<task>.<split>`)."""
    for task, splits in sources.items():
        for split, names in splits.items():
            for name in [names] if isinstance(names, str) else names:
                if name not in datasets:
                    raise ConfigError(
                        f"{key}.{task}.{split}: {name!r} is not one of "
                        f"data.datasets ({', '.join(datasets)})"
                    )


# ---------------------------------------------------------------------------------------------
# Runs: what the DAG trains


#: `forgetting:` settings where params.yaml (or a config without the section) leaves them out
FORGETTING_DEFAULTS: dict[str, Any] = {
    "text": "data/raw/synthetic/heldout_text",
    "sentences": 5000,
    "mlm_probability": 0.15,
    "max_length": 128,
    "batch_size": 32,
    "seed": 0,
}


#: `clustering:` settings where the config leaves them out (pipeline/data/clusters.py's defaults)
CLUSTERING_DEFAULTS: dict[str, Any] = {
    "pca_components": 50,
    "covariance_type": "full",
    "n_init": 1,
    "max_length": 128,
    "batch_size": 64,
}


def clustering_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The `clustering:` section with its defaults filled in (CLUSTERING_DEFAULTS)."""
    return {**CLUSTERING_DEFAULTS, **cfg.get("clustering", {})}


def forgetting_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The `forgetting:` section with its defaults filled in (FORGETTING_DEFAULTS)."""
    return {**FORGETTING_DEFAULTS, **cfg.get("forgetting", {})}


def active_experiments(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Experiments not switched off with `null` (presets use it to drop the default ones)."""
    return {k: v for k, v in cfg["experiments"].items() if v is not None}


def select_tlps(
    cfg: Mapping[str, Any], selection: Any, where: str = "tlps", any_tlp: bool = False
) -> list[TLP]:
    """Resolve a selection (All / Task-Limited / Lang-Limited / explicit list) against `tlps`.

    `any_tlp`: an explicit list may name TLPs outside the pool (the plan checks that each is
    prepared); the experiments' own lists always may (an English-only model of a task that is
    not in the pool, dev-split training)."""
    pool = [TLP.parse(t) for t in cfg["tlps"]]
    if isinstance(selection, list):
        chosen = []
        for i, t in enumerate(selection):
            try:
                chosen.append(TLP.parse(t))
            except PipelineError as e:
                raise ConfigError(f"{where}.{i}: {e}") from None
        missing = [] if any_tlp else [str(t) for t in chosen if t not in pool]
        if missing:
            raise ConfigError(f"{where}: {', '.join(missing)} not in the training pool `tlps`")
        return chosen
    if selection in ("all", "each-task", "each-lang"):
        return pool
    kind, _, value = selection.partition(":")
    chosen = [t for t in pool if (t.task if kind == "task" else t.lang) == value]
    if not chosen:
        raise ConfigError(f"{where}: selection {selection!r} matches no TLP of `tlps`")
    return chosen


@dataclass(frozen=True)
class Run:
    """One training run: one model (or, for fine-tuning, one model per target TLP) and one seed.

    Run ids carry the seed: `mtl.s13`, `stl.ner.l0.s13`, `mtl_task.ner.s13`; a fine-tuning run is
    its meta run's id plus `.ft.all` (every target TLP in one job) or `.ft.<task>.<lang>`.
    """

    id: str
    experiment: str
    method: str
    train_tlps: tuple[TLP, ...]
    eval_tlps: tuple[TLP, ...]
    params: dict[str, Any] = field(hash=False, compare=False)
    init: str | None = None  # the run whose model this one starts from (fine-tuning, `init`)
    seed: int = 0
    grid: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    #: whether the report reads its scores (not the meta runs of a fine-tuned `target` grid:
    #: their fine-tuning runs are the results)
    report: bool = field(default=True, hash=False, compare=False)
    #: "ft" for the fine-tuning runs of `finetune_tlps` (few-shot): their meta run is scored on
    #: the same TLPs, so they form a row of their own
    stage: str = field(default="", hash=False, compare=False)
    #: the sweep entry of an analysis run ({k: 1, q: 1}); {} for the experiment's own runs
    sweep: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def row(self) -> str:
        """The result row: the experiment, per `aux` entry for an aux grid (`xla_maml.hi`),
        and `.ft` for few-shot fine-tuning runs (`en_nli.ft`)."""
        aux = self.grid.get("aux")
        row = f"{self.experiment}.{grid_slug(aux)}" if aux else self.experiment
        return f"{row}.{self.stage}" if self.stage else row

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "experiment": self.experiment,
            "method": self.method,
            "seed": self.seed,
            "train_tlps": [str(t) for t in self.train_tlps],
            "eval_tlps": [str(t) for t in self.eval_tlps],
            "params": self.params,
            "init": self.init,
            **({"grid": self.grid} if self.grid else {}),
            **({"sweep": self.sweep} if self.sweep else {}),
        }


#: methods that train one model per TLP
PER_TLP_METHODS = {"stl"}

#: experiment keys a sweep entry may not change (they define the experiment and its runs)
SWEEP_FIXED = {"method", "sweep", "aux", "target", "seeds", "row", "init", "tlps", "sources"}


def sweep_slug(entry: Mapping[str, Any]) -> str:
    """A sweep entry in run ids: {k: 1, q: 1} -> `k1-q1`, {dev_fraction: 0.25} ->
    `dev_fraction0p25`."""

    def val(v: Any) -> str:
        return str(v).replace(".", "p").replace("+", "").replace("/", "_")

    return "-".join(f"{k}{val(v)}" for k, v in entry.items())


def zero_shot_langs(cfg: Mapping[str, Any], task: str) -> list[str]:
    """The languages `task` is evaluated on zero-shot (`zero_shot_langs`: a list for every task,
    or per task, as Table 3 of Tarunesh et al. lists them)."""
    zs = cfg["zero_shot_langs"]
    return list(zs.get(task, [])) if isinstance(zs, Mapping) else list(zs)


def _zero_shot(cfg: Mapping[str, Any], train: Sequence[TLP], selection: Any) -> list[TLP]:
    """Zero-shot TLPs: unseen languages for the tasks trained, for language-agnostic selections."""
    if isinstance(selection, str) and (selection.startswith("lang:") or selection == "each-lang"):
        return []
    tasks = sorted({t.task for t in train})
    return [TLP(task, lang) for task in tasks for lang in zero_shot_langs(cfg, task)]


def finetune_setting(cfg: Mapping[str, Any], task: str) -> dict[str, Any]:
    """Per-task fine-tuning epochs, candidate learning rates and batch size (Tarunesh et al.
    Appendix B); the batch size defaults to `training.batch_size`."""
    ft = cfg["finetune"]
    out = {**ft["default"], **ft.get("tasks", {}).get(task, {})}
    out.setdefault("batch_size", cfg["training"]["batch_size"])
    return out


def grid_slug(entry: str) -> str:
    """An `aux` entry in run ids: `bg+de` -> `bg-de`."""
    return entry.replace("+", "-")


def grid_points(exp: Mapping[str, Any]) -> list[dict[str, str]]:
    """The grid entries of an experiment ({} when it has no `aux`/`target` grid)."""
    auxs = exp.get("aux") or [None]
    targets = exp.get("target") or [None]
    return [
        {k: v for k, v in (("aux", a), ("target", t)) if v is not None}
        for a in auxs
        for t in targets
    ]


def _expand_langs(langs: Sequence[str], point: Mapping[str, str], where: str) -> list[str]:
    out: list[str] = []
    for lg in langs:
        if lg not in PLACEHOLDERS:
            out.append(lg)
        elif lg not in point:
            raise ConfigError(f"{where}: {lg!r} stands for a grid entry, but `{lg}` is not set")
        else:
            out.extend(point[lg].split("+"))
    return list(dict.fromkeys(out))


def apply_grid(exp: Mapping[str, Any], point: Mapping[str, str], where: str) -> dict[str, Any]:
    """The experiment of one grid entry: placeholders in `tlps`, `finetune_tlps` and the
    method's language lists replaced, `aux`/`target` dropped (a run's params then do not
    change when entries are added) and the entry recorded as `grid`."""
    out = {k: v for k, v in exp.items() if k not in PLACEHOLDERS}
    for key in GRID_TLP_KEYS:
        if isinstance(exp.get(key), list):
            tlps = []
            for t in exp[key]:
                task, _, lang = t.partition("/")
                tlps += [f"{task}/{lg}" for lg in _expand_langs([lang], point, f"{where}.{key}")]
            out[key] = list(dict.fromkeys(tlps))
    if isinstance(exp.get("train_examples"), Mapping):
        caps: dict[str, int] = {}
        for t, n in exp["train_examples"].items():
            task, _, lang = t.partition("/")
            for lg in _expand_langs([lang], point, f"{where}.train_examples"):
                caps[f"{task}/{lg}"] = n
        out["train_examples"] = caps
    props = METHOD_PROPS.get(exp.get("method"), {})
    for key in LANG_LIST_KEYS:
        if key in props:
            value = exp.get(key, props[key].get("default"))
            out[key] = _expand_langs(value, point, f"{where}.{key}")
    if point:
        out["grid"] = dict(point)
    return out


def _groups(
    cfg: Mapping[str, Any], selection: Any, any_tlp: bool = False
) -> list[tuple[str | None, list[TLP]]]:
    """(suffix, TLPs) per model an experiment trains: one, or one per task / language."""
    tlps = select_tlps(cfg, selection, any_tlp=any_tlp)
    if selection == "each-task":
        return [(t, [x for x in tlps if x.task == t]) for t in dict.fromkeys(x.task for x in tlps)]
    if selection == "each-lang":
        return [
            (lg, [x for x in tlps if x.lang == lg]) for lg in dict.fromkeys(x.lang for x in tlps)
        ]
    return [(None, tlps)]


def _models(
    cfg: Mapping[str, Any], name: str, exp: Mapping[str, Any], params: dict, selection: Any
) -> list[tuple[str, list[TLP], list[TLP], tuple[TLP, ...], dict]]:
    """(run id, training TLPs, target TLPs, zero-shot TLPs, params) per model an experiment trains.

    A MultiDDS D_dev of `target` / `each-lang` / `each-task` trains one model per target TLP /
    language / task (Tarunesh et al. §4.3 (a)-(d)); its targets are the TLPs it is selected for.
    """
    out = []
    dev = exp.get("multidds", {}).get("dev") if exp.get("sampler") == "multidds" else None
    for suffix, tlps in _groups(cfg, selection, any_tlp=True):
        rid = f"{name}.{suffix}" if suffix else name
        zs = tuple(z for z in _zero_shot(cfg, tlps, selection) if z not in tlps)
        if exp.get("extra_eval") is False:
            zs = ()
        if dev not in ("target", "each-lang", "each-task"):
            out.append((rid, tlps, tlps, zs, params))
            continue
        if dev == "target":
            per = [(t.slug, str(t), [t]) for t in tlps]
        else:
            kind = "lang" if dev == "each-lang" else "task"
            keys = dict.fromkeys(getattr(t, kind) for t in tlps)
            per = [(k, f"{kind}:{k}", [t for t in tlps if getattr(t, kind) == k]) for k in keys]
        for sfx, dev_spec, targets in per:
            p = {**params, "multidds": {**exp.get("multidds", {}), "dev": dev_spec}}
            # zero-shot only for models whose D_dev is a whole task (mDDS-Task, as Table 3)
            tz = tuple(z for z in zs if dev == "each-task" and z.task == targets[0].task)
            out.append((f"{rid}.{sfx}", tlps, targets, tz, p))
    return out


def experiment_seeds(cfg: Mapping[str, Any], exp: Mapping[str, Any]) -> list[int]:
    """The seeds an experiment is repeated over: its own `seeds`, else the top-level ones."""
    return list(exp.get("seeds", cfg["seeds"]))


def experiment_runs(cfg: Mapping[str, Any]) -> list[Run]:
    """Every run of every experiment, for every seed, in a stable order.

    STL trains one run per TLP (`stl.ner.l0.s13`). `each-task`/`each-lang` selections train one
    run per task/language (`mtl_task.ner.s13`). An experiment with `finetune` (default for meta
    methods) is also fine-tuned on each of its target TLPs from its model: one run per meta model
    (`reptile.s13.ft.all`) or, with `finetune.jobs: per-tlp`, one per target TLP
    (`reptile.s13.ft.ner.l0`); the meta run itself is then evaluated only zero-shot. Every run's
    params hold its own `seed` only, so adding a seed leaves the other runs' params unchanged.
    """
    runs: list[Run] = []

    def with_metrics(params: dict[str, Any], tlps: Sequence[TLP]) -> dict[str, Any]:
        """The `metrics` options that concern the run's tasks (selection and scores use them)."""
        m, tasks = cfg.get("metrics", {}), {t.task for t in tlps}
        out = {k: v for k, v in m.items() if k != "main"}
        if "qa" not in tasks:
            out.pop("qa_normalization", None)
        main = {t: k for t, k in m.get("main", {}).items() if t in tasks}
        if main:
            out["main"] = main
        return {**params, "metrics": out} if out else params

    # a model choice every run of this config shares (absent when off: the default's params stay)
    model = {"pooler": True} if cfg.get("encoder", {}).get("pooler") else {}
    for name, exp in active_experiments(cfg).items():
        seeds = experiment_seeds(cfg, exp)
        base = {**cfg["training"], **model, **{k: v for k, v in exp.items() if k != "seeds"}}
        selection = exp.get("tlps", "all")
        if exp["method"] in PER_TLP_METHODS:
            for t in select_tlps(cfg, selection):
                for s in seeds:
                    params = with_metrics({**base, "seed": s}, [t])
                    rid = f"{name}.{t.slug}.s{s}"
                    runs.append(Run(rid, name, exp["method"], (t,), (t,), params, seed=s))
            continue
        plain = {k: v for k, v in exp.items() if k != "sweep"}
        base = {k: v for k, v in base.items() if k != "sweep"}
        for point in grid_points(exp):
            for entry in exp.get("sweep") or [None]:
                vexp = {**plain, **(entry or {})}
                gexp = apply_grid(vexp, point, f"experiments.{name}")
                gbase = {
                    **{k: v for k, v in base.items() if k not in PLACEHOLDERS},
                    **{k: v for k, v in gexp.items() if k != "seeds"},
                }
                parts = [name, *(grid_slug(v) for v in point.values())]
                gname = ".".join([*parts, *([sweep_slug(entry)] if entry else [])])
                made = _experiment_runs(cfg, name, gname, gexp, gbase, point, with_metrics)
                if entry:  # analysis runs: the sweep tables read them, the main tables do not
                    made = [replace(r, sweep=dict(entry), report=False) for r in made]
                runs.extend(made)
    return _resolve_inits(cfg, runs)


def _experiment_runs(
    cfg: Mapping[str, Any],
    name: str,
    gname: str,
    exp: Mapping[str, Any],
    base: dict[str, Any],
    point: dict[str, str],
    with_metrics: Any,
) -> list[Run]:
    """The runs of one grid entry of a multi-TLP experiment (see `experiment_runs`)."""
    runs: list[Run] = []
    per_tlp_ft = cfg["finetune"].get("jobs", "per-model") == "per-tlp"
    seeds = experiment_seeds(cfg, exp)
    selection = exp.get("tlps", "all")
    ft_tlps = [TLP.parse(t) for t in exp.get("finetune_tlps", [])]
    finetune = exp.get("finetune", exp["method"] in META_METHODS or bool(ft_tlps))
    ft_split = exp.get("finetune_split", "train")
    also = [TLP.parse(t) for t in exp.get("eval_tlps", [])]
    for rid, tlps, targets, zs, model_params in _models(cfg, gname, exp, base, selection):
        targets = ft_tlps or targets
        if not finetune:
            evals = tuple(dict.fromkeys([*tlps, *zs, *also]))
        elif ft_tlps:  # the run's own TLPs and unseen languages as well (the baseline row)
            evals = tuple(dict.fromkeys([*tlps, *zs, *ft_tlps, *also]))
        else:
            evals = tuple(dict.fromkeys([*zs, *also]))
        if exp["method"] in PAIRED_METHODS and "select_tlps" not in model_params:
            # Xia et al.: "the best model according to the validation performance" of the target
            targets = method_params(exp["method"], model_params)["targets"]
            pairs = source_target_pairs(tlps, targets, f"experiments.{name}.tlps")
            model_params = {**model_params, "select_tlps": [str(t) for _, t in pairs]}
        for s in seeds:
            meta = f"{rid}.s{s}"
            params = with_metrics({**model_params, "seed": s}, [*tlps, *evals])
            report = not (finetune and "target" in point)
            runs.append(
                Run(meta, name, exp["method"], tuple(tlps), evals, params, None, s, point, report)
            )
            if not finetune:
                continue
            groups = [(t.slug, (t,)) for t in targets] if per_tlp_ft else [("all", targets)]
            for part, tt in groups:
                ft_params = with_metrics(
                    {
                        **cfg["training"],
                        "seed": s,
                        "method": "finetune",
                        "tasks": {t.task: finetune_setting(cfg, t.task) for t in tt},
                        **({"train_split": ft_split} if ft_split != "train" else {}),
                    },
                    tt,
                )
                ft_id = f"{meta}.ft.{part}"
                stage = "ft" if ft_tlps else ""
                runs.append(
                    Run(
                        ft_id,
                        name,
                        "finetune",
                        tuple(tt),
                        tuple(tt),
                        ft_params,
                        meta,
                        s,
                        point,
                        stage=stage,
                    )
                )
    return runs


def _resolve_inits(cfg: Mapping[str, Any], runs: list[Run]) -> list[Run]:
    """Runs of experiments with `init` start from the init experiment's run of the same seed
    (or of its only seed, when it has one: one English model shared by every seed)."""
    exps = active_experiments(cfg)
    _check_init_cycles(exps)
    by_exp: dict[str, dict[int, list[Run]]] = {}
    for r in runs:
        if r.method != "finetune":
            by_exp.setdefault(r.experiment, {}).setdefault(r.seed, []).append(r)
    out = []
    for r in runs:
        init = exps[r.experiment].get("init")
        if init is None or r.method == "finetune":
            out.append(r)
            continue
        where = f"experiments.{r.experiment}.init"
        if init not in by_exp:
            raise ConfigError(f"{where}: {init!r} is not an active experiment")
        seeds = by_exp[init]
        cands = seeds.get(r.seed) or (next(iter(seeds.values())) if len(seeds) == 1 else None)
        if cands is None:
            raise ConfigError(
                f"{where}: {init!r} has no run of seed {r.seed} (seeds {sorted(seeds)}); give it "
                "the same seeds or a single one"
            )
        if len(cands) != 1:
            raise ConfigError(
                f"{where}: {init!r} trains {len(cands)} models per seed "
                f"({', '.join(c.id for c in cands[:3])}…); expected one"
            )
        src = cands[0]
        missing = sorted({t.task for t in r.train_tlps} - {t.task for t in src.train_tlps})
        if missing:
            raise ConfigError(
                f"{where}: {init!r} trains no {', '.join(missing)} head, which {r.id} needs"
            )
        # also evaluated on the init's own TLPs of its tasks (the English column of Liu et
        # al.'s tables); those are not "unseen", so a dev-trained run does not select on them
        tasks = {t.task for t in r.train_tlps}
        extra = [t for t in src.train_tlps if t.task in tasks and t not in r.eval_tlps]
        if exps[r.experiment].get("extra_eval") is False:
            extra = []
        params = r.params
        if extra and trains_on_dev(params):
            seen = {*r.train_tlps, *src.train_tlps}
            params = {**params, "selection_tlps": [str(t) for t in r.eval_tlps if t not in seen]}
        out.append(replace(r, init=src.id, eval_tlps=(*r.eval_tlps, *extra), params=params))
    return out


def _check_init_cycles(exps: Mapping[str, Any]) -> None:
    for name in exps:
        seen, cur = [name], exps[name].get("init")
        while cur is not None:
            if cur in seen:
                chain = " -> ".join([*seen, cur])
                raise ConfigError(f"experiments.{name}.init: a cycle ({chain})")
            seen.append(cur)
            cur = exps.get(cur, {}).get("init") if isinstance(exps.get(cur), Mapping) else None


#: methods that pair each task's source TLP with its target TLP (`targets`)
PAIRED_METHODS = ("jt", "metaxl")


def source_target_pairs(
    tlps: Sequence[TLP], targets: Sequence[str], where: str = "tlps"
) -> list[tuple[TLP, TLP]]:
    """(source, target) per task, in the order of `tlps`: a TLP in a `targets` language is the
    task's target, the other its source; exactly one of each per task."""
    pairs = []
    for task in dict.fromkeys(t.task for t in tlps):
        mine = [t for t in tlps if t.task == task]
        tgt = [t for t in mine if t.lang in targets]
        src = [t for t in mine if t.lang not in targets]
        if len(tgt) != 1 or len(src) != 1:
            raise ConfigError(
                f"{where}: {task} has sources [{', '.join(map(str, src))}] and targets "
                f"[{', '.join(map(str, tgt))}] (targets: {', '.join(targets)}); expected one "
                "source and one target TLP per task"
            )
        pairs.append((src[0], tgt[0]))
    return pairs


#: methods whose tasks may be GMM clusters of one TLP (`clusters`; Lee et al. §4.3: "every
#: multi-task method"): they see tasks only through the context's TLP keys and sizes
CLUSTER_METHODS = frozenset(
    {"mtl", "pcgrad", "gradvac", "gradnorm", "recadam", "reptile", "seq_reptile"}
)
#: where `clusters` assignments are written (rule `clusters`) and read (the run's train job)
CLUSTERS_DIR = "data/clusters"
#: `clusters` defaults (Lee et al. §4.3: four clusters; the seed is ours, fixed so that every
#: method and seed of a comparison trains on the same four tasks)
CLUSTER_DEFAULTS = {"k": 4, "seed": 13}


def cluster_name(cfg: Mapping[str, Any], run: Run, tlp: TLP) -> str | None:
    """`<task>.<lang>.<datasets>.k<k>.s<seed>`: the cluster file a run's TLP is split by, or None
    for a run without `clusters`. `<datasets>` are the datasets the TLP's train split may come
    from for the run's experiment (`data.sources` / the experiment's `sources`, `+`-joined):
    SQuAD's qa/en and TyDiQA's qa/en are different sets to cluster. Shared by every run that
    clusters the same data the same way."""
    if "clusters" not in run.params:
        return None
    c = {**CLUSTER_DEFAULTS, **run.params["clusters"]}
    cands = data_sources(cfg, run.experiment).candidates(tlp.task, "train")
    return f"{tlp.slug}.{'+'.join(p.name for p in cands)}.k{c['k']}.s{c['seed']}"


def cluster_tlp(tlp: TLP, cluster: int) -> TLP:
    """The task a cluster of `tlp`'s training examples becomes: `<task>/<lang>~c<i>` (never a
    language code, never parsed back; the heads still go by `task`)."""
    return TLP(tlp.task, f"{tlp.lang}~c{cluster}")


def train_split_of(params: Mapping[str, Any], tlp: TLP) -> str:
    """The split `tlp` is trained on in a run with these params (`train_split`, `dev_tlps`)."""
    if params.get("train_split", "train") == "dev" or str(tlp) in params.get("dev_tlps", ()):
        return "dev"
    return "train"


def trains_on_dev(params: Mapping[str, Any]) -> bool:
    """Whether the run trains on some dev split (it then selects on unseen TLPs only)."""
    return params.get("train_split", "train") == "dev" or bool(params.get("dev_tlps"))


def get_run(cfg: Mapping[str, Any], run_id: str) -> Run:
    for r in experiment_runs(cfg):
        if r.id == run_id:
            return r
    runs = [r.id for r in experiment_runs(cfg)]
    known = ", ".join(runs[:8]) + (f", … ({len(runs)} runs)" if len(runs) > 8 else "")
    raise ConfigError(f"unknown run {run_id!r}: expected one of {known}")


def temperature(value: Any) -> float:
    """`inf` (string in YAML) or a positive number."""
    return math.inf if value == "inf" else float(value)


def fingerprint(obj: Any) -> str:
    """Stable short hash of a JSON-able object (used to refuse resuming a different config)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def section_paths(cfg: Mapping[str, Any]) -> list[Path]:
    """Prepared dataset directories, in the order TLPs are looked up."""
    return [Path("data/prepared") / d for d in cfg["data"]["datasets"]]


def layout(cfg: Mapping[str, Any], dataset: str) -> str:
    """The raw layout `prepare` reads `dataset` in (`data.layout`: one for all, or per dataset;
    a dataset not listed in a mapping is read in its original layout)."""
    lay = cfg["data"]["layout"]
    return lay.get(dataset, "original") if isinstance(lay, Mapping) else lay


def experiment_sources(cfg: Mapping[str, Any], experiment: str | None) -> dict[str, Any]:
    """`data.sources` with the experiment's `sources` over it, split by split (None, or an
    experiment without `sources`: `data.sources` itself)."""
    own = (cfg["experiments"].get(experiment) or {}).get("sources", {}) if experiment else {}
    return deep_merge(cfg["data"].get("sources", {}), own)


def data_sources(cfg: Mapping[str, Any], experiment: str | None = None) -> Sources:
    """The prepared datasets, and per task and split the ones it may come from, in order
    (`data.sources`, or `experiment_sources` for a run's experiment; default: every dataset of
    `data.datasets`): the first that holds a TLP's split provides it."""
    per_split = {}
    for task, splits in experiment_sources(cfg, experiment).items():
        for split, names in splits.items():
            names = [names] if isinstance(names, str) else names
            per_split[task, split] = [Path("data/prepared") / n for n in names]
    return Sources(section_paths(cfg), per_split)


def raw_paths(cfg: Mapping[str, Any]) -> list[Path]:
    """Raw dataset directories (as generated or downloaded), in `data.datasets` order."""
    return [Path("data/raw") / d for d in cfg["data"]["datasets"]]
