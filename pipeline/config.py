"""Typed params: the schema, validation, presets, and the runs the DAG is made of.

`params.yaml` is the only configuration. Presets (configs/*.yaml) overlay it key by key, the way
Snakemake merges `--configfile`. Nothing else in the package reads YAML.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pipeline.errors import ConfigError, PipelineError
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

_COMMON_EXPERIMENT = {
    "method": {"type": "string"},
    "steps": _pos_int,  # optimizer steps (STL/MTL) or meta-steps (Reptile family) ...
    "epochs": {"type": "number", "exclusiveMinimum": 0},  # ... or passes over the selected data
    "tlps": SELECTION,
    "seed": _nonneg_int,
    "finetune": {"type": "boolean"},  # fine-tune the result on each TLP (default: meta methods)
    "row": {"type": "string"},  # row label of the paper-shaped table (best-on-dev among equals)
    "dropout": _prob,
    **TRAINING_PROPS,
}

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

#: method name -> its own keys (on top of the common ones)
METHOD_PROPS: dict[str, dict[str, Any]] = {
    "stl": {},
    # `mixing: concat` = concatenate and shuffle (each TLP's batches once per epoch)
    "mtl": {**_SAMPLING, "mixing": _default({"enum": ["sample", "concat"]}, "sample")},
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
}


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
    "max_query_length": _pos_int,
    "max_answer_length": _pos_int,
    "n_best": _pos_int,
}

_TOP_SCHEMA = _obj(
    {
        "seed": _nonneg_int,
        "benchmark": _obj(
            {
                "seed": _nonneg_int,
                "languages": {"type": "integer", "minimum": 2},
                "zero_shot": _nonneg_int,
                "tasks": {"type": "array", "items": {"enum": sorted(TASK_TYPES)}, "minItems": 1},
                "scale": {"type": "number", "exclusiveMinimum": 0},
            },
            ["seed", "languages", "zero_shot", "tasks", "scale"],
        ),
        "data": _obj(
            {
                "datasets": {"type": "array", "items": _name, "minItems": 1},
                "layout": {"enum": ["original", "xtreme"]},
            },
            ["datasets", "layout"],
        ),
        "encoder": _obj(
            {
                "name": {"type": ["string", "null"]},
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
                    },
                    [
                        "steps",
                        "batch_size",
                        "max_length",
                        "lr",
                        "warmup_steps",
                        "mlm_probability",
                        "checkpoint_every",
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
        "zero_shot_langs": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "training": _obj(TRAINING_PROPS, list(TRAINING_PROPS)),
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
            },
            ["default"],
        ),
        "report": _obj({"metric": {"type": "string"}}, ["metric"]),
    },
    [
        "seed",
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
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(e.absolute_path), str(e)))
    if not errors:
        return
    e = errors[0]
    # unknown keys: name the key, not the parent
    if e.validator == "additionalProperties":
        extra = sorted(set(e.instance) - set(e.schema.get("properties", {})))
        key = _fmt_path([*prefix, *e.absolute_path, extra[0]])
        allowed = ", ".join(sorted(e.schema.get("properties", {})))
        raise ConfigError(f"{where}: {key}: unknown key (allowed here: {allowed})")
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
        select_tlps(cfg, exp.get("tlps", "all"), where=f"{where}: experiments.{name}.tlps")
    for lang in cfg["zero_shot_langs"]:
        if any(t.lang == lang for t in tlps):
            raise ConfigError(
                f"{where}: zero_shot_langs: {lang!r} is also a training language in tlps"
            )


# ---------------------------------------------------------------------------------------------
# Runs: what the DAG trains


def active_experiments(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Experiments not switched off with `null` (presets use it to drop the default ones)."""
    return {k: v for k, v in cfg["experiments"].items() if v is not None}


def select_tlps(cfg: Mapping[str, Any], selection: Any, where: str = "tlps") -> list[TLP]:
    """Resolve a selection (All / Task-Limited / Lang-Limited / explicit list) against `tlps`."""
    pool = [TLP.parse(t) for t in cfg["tlps"]]
    if isinstance(selection, list):
        chosen = [TLP.parse(t) for t in selection]
        missing = [str(t) for t in chosen if t not in pool]
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
    """One training run: an experiment, or one TLP of a per-TLP experiment (STL)."""

    id: str
    experiment: str
    method: str
    train_tlps: tuple[TLP, ...]
    eval_tlps: tuple[TLP, ...]
    params: dict[str, Any] = field(hash=False, compare=False)
    init: str | None = None  # the run whose model this one starts from (fine-tuning)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "experiment": self.experiment,
            "method": self.method,
            "train_tlps": [str(t) for t in self.train_tlps],
            "eval_tlps": [str(t) for t in self.eval_tlps],
            "params": self.params,
            "init": self.init,
        }


#: methods that train one model per TLP
PER_TLP_METHODS = {"stl"}


def _zero_shot(cfg: Mapping[str, Any], train: Sequence[TLP], selection: Any) -> list[TLP]:
    """Zero-shot TLPs: unseen languages for the tasks trained, for language-agnostic selections."""
    if isinstance(selection, str) and (selection.startswith("lang:") or selection == "each-lang"):
        return []
    tasks = sorted({t.task for t in train})
    return [TLP(task, lang) for task in tasks for lang in cfg["zero_shot_langs"]]


def finetune_setting(cfg: Mapping[str, Any], task: str) -> dict[str, Any]:
    """Per-task fine-tuning epochs and candidate learning rates (Tarunesh et al. Appendix B)."""
    ft = cfg["finetune"]
    return {**ft["default"], **ft.get("tasks", {}).get(task, {})}


def _groups(cfg: Mapping[str, Any], selection: Any) -> list[tuple[str | None, list[TLP]]]:
    """(suffix, TLPs) per model an experiment trains: one, or one per task / language."""
    tlps = select_tlps(cfg, selection)
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
    for suffix, tlps in _groups(cfg, selection):
        rid = f"{name}.{suffix}" if suffix else name
        zs = tuple(_zero_shot(cfg, tlps, selection))
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


def experiment_runs(cfg: Mapping[str, Any]) -> list[Run]:
    """Every run of every experiment, in a stable order.

    STL trains one run per TLP (`stl.ner.l0`). `each-task`/`each-lang` selections train one run per
    task/language (`mtl_task.ner`). An experiment with `finetune` (default for meta methods) also
    has one fine-tuning run per training TLP (`reptile.ft.ner.l0`) starting from its model; the
    meta run itself is then evaluated only zero-shot.
    """
    runs: list[Run] = []
    for name, exp in active_experiments(cfg).items():
        params = {**cfg["training"], "seed": cfg["seed"], **exp}
        selection = exp.get("tlps", "all")
        if exp["method"] in PER_TLP_METHODS:
            for t in select_tlps(cfg, selection):
                runs.append(Run(f"{name}.{t.slug}", name, exp["method"], (t,), (t,), params))
            continue
        finetune = exp.get("finetune", exp["method"] in META_METHODS)
        for rid, tlps, targets, zs, run_params in _models(cfg, name, exp, params, selection):
            evals = zs if finetune else tuple(targets) + zs
            runs.append(Run(rid, name, exp["method"], tuple(tlps), evals, run_params))
            if not finetune:
                continue
            for t in targets:
                ft = finetune_setting(cfg, t.task)
                ft_params = {
                    **cfg["training"],
                    "seed": cfg["seed"],
                    "method": "finetune",
                    "epochs": ft["epochs"],
                    "lrs": ft["lrs"],
                    "batch_size": ft.get("batch_size", cfg["training"]["batch_size"]),
                }
                runs.append(
                    Run(f"{rid}.ft.{t.slug}", name, "finetune", (t,), (t,), ft_params, init=rid)
                )
    return runs


def get_run(cfg: Mapping[str, Any], run_id: str) -> Run:
    for r in experiment_runs(cfg):
        if r.id == run_id:
            return r
    known = ", ".join(r.id for r in experiment_runs(cfg))
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
