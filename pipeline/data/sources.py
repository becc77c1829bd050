"""The sources registry: where each raw dataset comes from, loaded from sources.yaml and validated.

The registry is declarative so that URLs, digests, licences and manual steps live in one reviewed
file; the downloader only interprets it. Validation is strict (unknown keys are errors) because a
typo such as `sha265` would otherwise silently turn checksum verification off.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from pipeline.errors import ConfigError, PipelineError
from pipeline.records import SPLITS, TASK_TYPES

REGISTRY_PATH = Path(__file__).with_name("sources.yaml")

KINDS = ("url", "hub", "manual")
EXTRACTS = ("zip", "tar.gz", "tgz", "none")
LANG_PLACEHOLDER = "{lang}"

_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")

_ENTRY_REQUIRED = ("kind", "files", "splits", "languages", "licence", "citation")
_ENTRY_OPTIONAL = ("description", "homepage", "tasks", "alternative", "note")
_ENTRY_BY_KIND = {
    "url": ((), ()),
    "manual": (("instructions",), ()),
    "hub": (("repo_id", "revision"), ("repo_type",)),
}
_FILE_BY_KIND = {  # (required, optional) keys of one file spec
    "url": (
        ("url", "sha256"),
        ("target", "extract", "strip", "dest", "flatten", "bytes", "head_lines"),
    ),
    "manual": (("target", "sha256"), ("url", "extract", "strip", "dest", "flatten", "bytes")),
    "hub": (("path", "sha256"), ("target", "bytes")),
}


@dataclass(frozen=True)
class Citation:
    key: str
    title: str


@dataclass(frozen=True)
class FileSpec:
    """One file of a source, with `{lang}` already expanded."""

    target: str  # path under the output dir (a plain name, or a relative path for hub files)
    sha256: str | None  # published digest, or None: the lock file records it on first download
    url: str | None = None  # url kind: what to fetch; manual kind: where to get it
    path: str | None = None  # hub kind: file path inside the repo
    extract: str = "none"
    strip: int = 0
    dest: str | None = None  # extraction dir under the output dir (None when not extracted)
    flatten: bool = False
    bytes: int | None = None
    #: keep only the first N non-empty lines (and the blank lines between them) of the text at
    #: `url`, decompressed as it streams when the URL ends in .xz; the transfer stops there
    head_lines: int | None = None


@dataclass(frozen=True)
class Source:
    name: str
    kind: str
    files: tuple[FileSpec, ...]
    splits: tuple[str, ...]
    languages: tuple[str, ...]
    licence: str
    citation: Citation
    tasks: tuple[str, ...] = ()
    description: str = ""
    homepage: str = ""
    note: str = ""
    instructions: str = ""
    alternative: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    repo_type: str = "dataset"


# ---------------------------------------------------------------------------------------------
# validation helpers: every error names the key path (entry.files[i].key) and what was expected


def _fail(keypath: str, msg: str, origin: str) -> ConfigError:
    return ConfigError(f"{keypath}: {msg} (in {origin})")


def _check_keys(obj: Any, keypath: str, required, optional, origin: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise _fail(keypath, f"expected a mapping, got {type(obj).__name__}", origin)
    allowed = (*required, *optional)
    for key in obj:
        if key not in allowed:
            raise _fail(
                f"{keypath}.{key}", f"unknown key; expected one of {', '.join(allowed)}", origin
            )
    for key in required:
        if key not in obj:
            raise _fail(f"{keypath}.{key}", "missing required key", origin)
    return obj


def _str(obj: Mapping, key: str, keypath: str, origin: str, default: str | None = None) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{keypath}.{key}", f"expected a non-empty string, got {value!r}", origin)
    return value


def _str_list(obj: Mapping, key: str, keypath: str, origin: str) -> tuple[str, ...]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(f"{keypath}.{key}", f"expected a list of strings, got {value!r}", origin)
    if len(set(value)) != len(value):
        raise _fail(f"{keypath}.{key}", "duplicate values", origin)
    return tuple(value)


def _rel_path(value: Any, keypath: str, origin: str, allow_dirs: bool) -> str:
    """A relative path that cannot escape the output dir (and a plain name unless allow_dirs)."""
    ok = isinstance(value, str) and value and "\\" not in value
    if ok:
        p = PurePosixPath(value)
        ok = not p.is_absolute() and ".." not in p.parts and "." not in p.parts
        ok = ok and (allow_dirs or len(p.parts) == 1)
    if not ok:
        what = "a relative path inside the output dir" if allow_dirs else "a plain file name"
        raise _fail(keypath, f"expected {what}, got {value!r}", origin)
    return value


def _default_dest(target: str) -> str:
    for suffix in _ARCHIVE_SUFFIXES:
        if target.endswith(suffix) and len(target) > len(suffix):
            return target[: -len(suffix)]
    return target + ".d"


def _sub(value: str | None, lang: str | None) -> str | None:
    return value if value is None or lang is None else value.replace(LANG_PLACEHOLDER, lang)


def _parse_files(entry: Mapping, name: str, kind: str, langs, origin: str) -> list[FileSpec]:
    raw_files = entry["files"]
    if not isinstance(raw_files, list) or not raw_files:
        raise _fail(f"{name}.files", "expected a non-empty list of files", origin)
    required, optional = _FILE_BY_KIND[kind]
    specs: list[FileSpec] = []
    for i, raw in enumerate(raw_files):
        kp = f"{name}.files[{i}]"
        raw = _check_keys(raw, kp, required, optional, origin)
        sha = raw["sha256"]
        if sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
            raise _fail(
                f"{kp}.sha256", f"expected 64 lowercase hex digits or null, got {sha!r}", origin
            )
        extract = raw.get("extract", "none")
        if extract not in EXTRACTS:
            raise _fail(
                f"{kp}.extract", f"expected one of {', '.join(EXTRACTS)}, got {extract!r}", origin
            )
        strip = raw.get("strip", 0)
        if not isinstance(strip, int) or isinstance(strip, bool) or strip < 0:
            raise _fail(f"{kp}.strip", f"expected an integer >= 0, got {strip!r}", origin)
        flatten = raw.get("flatten", False)
        if not isinstance(flatten, bool):
            raise _fail(f"{kp}.flatten", f"expected true or false, got {flatten!r}", origin)
        size = raw.get("bytes")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise _fail(f"{kp}.bytes", f"expected a byte count, got {size!r}", origin)
        head = raw.get("head_lines")
        if head is not None and (not isinstance(head, int) or isinstance(head, bool) or head < 1):
            raise _fail(f"{kp}.head_lines", f"expected an integer >= 1, got {head!r}", origin)
        if head is not None and extract != "none":
            raise _fail(f"{kp}.head_lines", "the first lines of a text file: no extract", origin)
        if extract == "none" and ("strip" in raw or "dest" in raw or "flatten" in raw):
            raise _fail(
                kp, "strip, dest and flatten need an archive (extract: zip/tar.gz/tgz)", origin
            )
        url = raw.get("url")
        if url is not None and not (isinstance(url, str) and re.match(r"https?://", url)):
            raise _fail(f"{kp}.url", f"expected an http(s) URL, got {url!r}", origin)
        path = raw.get("path")
        if kind == "hub":
            _rel_path(path, f"{kp}.path", origin, allow_dirs=True)
        if "target" in raw:
            target = raw["target"]
        elif kind == "hub":
            target = path
        else:  # url kind: the last component of the URL path
            target = PurePosixPath(re.sub(r"[?#].*$", "", url.split("://", 1)[1])).name
        _rel_path(target, f"{kp}.target", origin, allow_dirs=kind == "hub")
        dest = None
        if extract != "none":
            dest = raw.get("dest", _default_dest(target))
            _rel_path(dest, f"{kp}.dest", origin, allow_dirs=False)

        templated = any(LANG_PLACEHOLDER in (v or "") for v in (url, path, target, dest))
        if templated and sha is not None:
            raise _fail(
                f"{kp}.sha256", "a {lang} file stands for many files: sha256 must be null", origin
            )
        for lang in langs if templated else [None]:
            specs.append(
                FileSpec(
                    target=_sub(target, lang),
                    sha256=sha,
                    url=_sub(url, lang),
                    path=_sub(path, lang),
                    extract=extract,
                    strip=strip,
                    dest=_sub(dest, lang),
                    flatten=flatten,
                    bytes=size,
                    head_lines=head,
                )
            )
    for attr in ("target", "dest"):
        seen = [getattr(s, attr) for s in specs if getattr(s, attr) is not None]
        dup = sorted({v for v in seen if seen.count(v) > 1})
        if dup:
            raise _fail(f"{name}.files", f"duplicate {attr} {dup[0]!r}", origin)
    return specs


def _parse_entry(name: str, entry: Any, origin: str) -> Source:
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise _fail(str(name), "entry names are lowercase identifiers (a-z, 0-9, _)", origin)
    if not isinstance(entry, Mapping):
        raise _fail(name, f"expected a mapping, got {type(entry).__name__}", origin)
    if "kind" not in entry:
        raise _fail(f"{name}.kind", "missing required key", origin)
    kind = entry["kind"]
    if kind not in KINDS:
        raise _fail(f"{name}.kind", f"expected one of {', '.join(KINDS)}, got {kind!r}", origin)
    extra_req, extra_opt = _ENTRY_BY_KIND[kind]
    _check_keys(entry, name, (*_ENTRY_REQUIRED, *extra_req), (*_ENTRY_OPTIONAL, *extra_opt), origin)

    languages = _str_list(entry, "languages", name, origin)
    if not languages:
        raise _fail(f"{name}.languages", "expected at least one language", origin)
    splits = _str_list(entry, "splits", name, origin)
    for s in splits:
        if s not in SPLITS:
            raise _fail(
                f"{name}.splits", f"unknown split {s!r}; expected {', '.join(SPLITS)}", origin
            )
    tasks = _str_list(entry, "tasks", name, origin)
    for t in tasks:
        if t not in TASK_TYPES:
            raise _fail(
                f"{name}.tasks", f"unknown task {t!r}; expected {', '.join(TASK_TYPES)}", origin
            )
    cit = _check_keys(entry["citation"], f"{name}.citation", ("key", "title"), (), origin)
    citation = Citation(
        _str(cit, "key", f"{name}.citation", origin), _str(cit, "title", f"{name}.citation", origin)
    )

    extra: dict[str, Any] = {}
    if kind == "manual":
        extra["instructions"] = _str(entry, "instructions", name, origin)
    if kind == "hub":
        extra["repo_id"] = _str(entry, "repo_id", name, origin)
        revision = entry["revision"]
        if not (isinstance(revision, str) and _COMMIT.fullmatch(revision)):
            raise _fail(
                f"{name}.revision",
                f"expected a pinned 40-hex commit hash, got {revision!r}",
                origin,
            )
        extra["revision"] = revision
        repo_type = entry.get("repo_type", "dataset")
        if repo_type not in ("dataset", "model", "space"):
            raise _fail(
                f"{name}.repo_type", f"expected dataset, model or space, got {repo_type!r}", origin
            )
        extra["repo_type"] = repo_type
    for key in ("description", "homepage", "note", "alternative"):
        if key in entry:
            extra[key] = _str(entry, key, name, origin)

    return Source(
        name=name,
        kind=kind,
        files=tuple(_parse_files(entry, name, kind, languages, origin)),
        splits=splits,
        languages=languages,
        licence=_str(entry, "licence", name, origin),
        citation=citation,
        tasks=tasks,
        **extra,
    )


def parse_registry(raw: Any, origin: str = "<registry dict>") -> dict[str, Source]:
    """Validate a registry given as plain data (the YAML's shape); raise ConfigError if invalid."""
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{origin}: expected a mapping of dataset name -> entry")
    sources = {name: _parse_entry(name, entry, origin) for name, entry in raw.items()}
    for src in sources.values():
        if src.alternative is not None and src.alternative not in sources:
            raise _fail(f"{src.name}.alternative", f"no entry named {src.alternative!r}", origin)
    return sources


@functools.lru_cache(maxsize=8)
def _load_file(path: str) -> dict[str, Source]:
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: sources registry not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise ConfigError(f"{where}: invalid YAML ({getattr(e, 'problem', None) or e})") from None
    return parse_registry(raw, origin=path)


def load_registry(registry: str | Path | Mapping[str, Any] | None = None) -> dict[str, Source]:
    """The registry as {name: Source}: the packaged sources.yaml, another YAML file, or a dict.

    A dict may hold parsed Source objects (used as is) or raw entries (validated).
    """
    if registry is None:
        registry = REGISTRY_PATH
    if isinstance(registry, (str, Path)):
        return dict(_load_file(str(Path(registry).resolve())))
    if registry and all(isinstance(v, Source) for v in registry.values()):
        return dict(registry)
    return parse_registry(registry)


def get_source(name: str, registry: str | Path | Mapping[str, Any] | None = None) -> Source:
    """One registry entry by name; PipelineError listing the known names if there is none."""
    sources = load_registry(registry)
    try:
        return sources[name]
    except KeyError:
        raise PipelineError(
            f"unknown dataset {name!r}: expected one of {', '.join(sorted(sources))}"
        ) from None


def list_sources(registry: str | Path | Mapping[str, Any] | None = None) -> list[str]:
    """Names of all registry entries, sorted."""
    return sorted(load_registry(registry))
