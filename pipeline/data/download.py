"""Fetch one registry source into a directory: resumable, checksummed, extracted atomically.

Why the care: raw archives are large (XNLI-MT is 466 MB) and mirrors flaky, so a dropped
connection resumes with an HTTP Range request instead of starting over; every file is verified
against the registry's sha256 or, when no digest is published, against the one the lock file
recorded on first download, so a silently changed upstream file is an error rather than a
different experiment. Only the standard library speaks HTTP, so tests can use a loopback server.

Layout of `out_dir` after a successful call:

    <target>             each downloaded (or hand-placed) file, archives included
    <dest>/              each archive unpacked (after `strip` leading path components)
    .complete.json       the marker: file digests and layout; its presence makes a rerun a no-op
"""

from __future__ import annotations

import http.client
import json
import logging
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit, urlunsplit

from tqdm import tqdm

from pipeline.data.sources import FileSpec, Source, get_source
from pipeline.errors import ConfigError, DataError, PipelineError
from pipeline.io import atomic_dir, atomic_write_json, read_json, sha256_file

log = logging.getLogger(__name__)

ENV_BASE_URL = "PIPELINE_SOURCES_BASE_URL"
MARKER = ".complete.json"
DEFAULT_LOCK_PATH = Path(__file__).resolve().parents[2] / "data" / "sources.lock.json"
USER_AGENT = "metalingua-pipeline/0.1 (python urllib)"
CHUNK = 1 << 16
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_SHA256 = re.compile(r"[0-9a-f]{64}")
_LAYOUT_KEYS = ("extract", "dest", "strip", "flatten", "head_lines")


@dataclass(frozen=True)
class Retry:
    """How hard to try: `attempts` tries per file, sleeping backoff * 2**k between them."""

    attempts: int = 6
    backoff: float = 1.0
    max_backoff: float = 60.0
    timeout: float = 60.0  # seconds without progress on the socket before an attempt fails


class _Incomplete(Exception):
    """The server closed the connection before sending everything it announced."""


# ---------------------------------------------------------------------------------------------
# lock file: {dataset: {target: sha256}} for files whose digest the registry does not publish

_LOCK_GUARD = threading.Lock()


class LockFile:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        data = read_json(self.path)
        ok = isinstance(data, dict) and all(
            isinstance(files, dict)
            and all(isinstance(d, str) and _SHA256.fullmatch(d) for d in files.values())
            for files in data.values()
        )
        if not ok:
            raise DataError(f'{self.path}: expected {{"dataset": {{"file": "<sha256>"}}}}')
        return data

    def get(self, name: str, target: str) -> str | None:
        return self.read().get(name, {}).get(target)

    def record(self, name: str, target: str, digest: str) -> None:
        """Add one digest; re-read first and write atomically so concurrent records survive."""
        with _LOCK_GUARD:
            data = self.read()
            data.setdefault(name, {})[target] = digest
            ordered = {n: dict(sorted(files.items())) for n, files in sorted(data.items())}
            atomic_write_json(self.path, ordered)


# ---------------------------------------------------------------------------------------------
# HTTP


def rebase_url(url: str, base: str | None) -> str:
    """Replace scheme and host of `url` by those of `base` (keeping any path prefix of `base`)."""
    if not base:
        return url
    b, u = urlsplit(base), urlsplit(url)
    if not b.scheme or not b.netloc:
        raise ConfigError(f"{ENV_BASE_URL}: expected scheme://host[:port][/prefix], got {base!r}")
    return urlunsplit((b.scheme, b.netloc, b.path.rstrip("/") + u.path, u.query, ""))


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from `bytes a-b/total` or `bytes */total`; None where unknown."""
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value or "")
    if not m:
        return None, None
    start = int(m[1]) if m[1] is not None else None
    return start, int(m[2]) if m[2] != "*" else None


def _stream(resp: BinaryIO, part: Path, mode: str, offset: int, total, progress, label) -> None:
    with (
        open(part, mode) as f,
        tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=label,
            disable=not progress,
            leave=False,
        ) as bar,
    ):
        while chunk := resp.read(CHUNK):
            f.write(chunk)
            bar.update(len(chunk))


def _fetch_url(url: str, part: Path, size_hint: int | None, retry: Retry, progress: bool) -> None:
    """Download `url` into `part`, resuming what is already there; retry with back-off."""
    last: BaseException | None = None
    for attempt in range(retry.attempts):
        if attempt:
            time.sleep(min(retry.backoff * 2 ** (attempt - 1), retry.max_backoff))
        offset = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=retry.timeout) as resp:
                if resp.status == 206 and offset:
                    start, total = _content_range(resp.headers.get("Content-Range"))
                    if start != offset:
                        part.unlink(missing_ok=True)
                        raise _Incomplete(f"asked to resume at byte {offset}, got byte {start}")
                    mode = "ab"
                else:  # 200: no Range sent, or the server ignored it: start over
                    offset, mode = 0, "wb"
                    length = resp.headers.get("Content-Length", "")
                    total = int(length) if length.isdigit() else None
                _stream(resp, part, mode, offset, total or size_hint, progress, part.name[:-5])
            size = part.stat().st_size
            if total is not None and size != total:
                raise _Incomplete(f"connection closed after {size} of {total} bytes")
            return
        except urllib.error.HTTPError as e:
            e.close()
            if e.code == 416 and offset:  # nothing left to send: complete, or the part is bad
                if _content_range(e.headers.get("Content-Range"))[1] == offset:
                    return
                part.unlink(missing_ok=True)
            elif e.code not in RETRY_STATUS:
                raise PipelineError(f"{url}: HTTP {e.code} {e.reason}") from None
            last = e
        except (urllib.error.URLError, OSError, http.client.HTTPException, _Incomplete) as e:
            last = e
        log.info("%s: attempt %d/%d failed: %s", url, attempt + 1, retry.attempts, last)
    kept = f"; {part} is kept, the next run resumes it" if part.exists() else ""
    raise PipelineError(f"{url}: download failed after {retry.attempts} attempts ({last}){kept}")


def _fetch_head(url: str, part: Path, lines: int, retry: Retry, progress: bool) -> None:
    """The first `lines` non-empty lines of the text at `url` (and the blank lines between
    them), decompressed as they arrive when the URL ends in .xz, into `part`; the connection is
    closed as soon as they are in, so only the start of a large file is transferred (CC-100's
    en.txt.xz is 82 GB). A file with fewer lines is kept whole. No resume: a failed attempt
    starts over (a few MB)."""
    xz = urlsplit(url).path.endswith(".xz")
    last: BaseException | None = None
    for attempt in range(retry.attempts):
        if attempt:
            time.sleep(min(retry.backoff * 2 ** (attempt - 1), retry.max_backoff))
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        request = urllib.request.Request(url, headers=headers)
        try:
            kept = 0
            with (
                urllib.request.urlopen(request, timeout=retry.timeout) as resp,
                open(part, "wb") as f,
                tqdm(
                    total=lines, unit="line", desc=part.name[:-5], disable=not progress, leave=False
                ) as bar,
            ):
                stream = lzma.LZMAFile(resp) if xz else resp
                blank = b""
                for line in stream:  # both decompress / read incrementally, line by line
                    if not line.strip():
                        blank += line if kept else b""  # no leading blank lines
                        continue
                    f.write(blank + (line if line.endswith(b"\n") else line + b"\n"))
                    blank, kept = b"", kept + 1
                    bar.update(1)
                    if kept == lines:
                        break
                else:  # the whole file: it must have arrived whole
                    if not xz and resp.length:
                        raise _Incomplete(f"connection closed {resp.length} bytes early")
            return
        except lzma.LZMAError as e:
            part.unlink(missing_ok=True)
            raise DataError(f"{url}: not readable as .xz ({e})") from None
        except urllib.error.HTTPError as e:
            e.close()
            if e.code not in RETRY_STATUS:
                raise PipelineError(f"{url}: HTTP {e.code} {e.reason}") from None
            last = e
        except (
            urllib.error.URLError,
            OSError,
            EOFError,
            http.client.HTTPException,
            _Incomplete,
        ) as e:
            last = e  # EOFError: the .xz stream ended early
        part.unlink(missing_ok=True)
        log.info("%s: attempt %d/%d failed: %s", url, attempt + 1, retry.attempts, last)
    raise PipelineError(f"{url}: download failed after {retry.attempts} attempts ({last})")


def _fetch_hub(src: Source, spec: FileSpec, part: Path) -> None:
    """One file of a Hub repo at the pinned revision (real code path; never run in tests)."""
    from huggingface_hub import hf_hub_download

    tmp = Path(tempfile.mkdtemp(prefix=".hub.", dir=part.parent))
    try:
        local = hf_hub_download(
            repo_id=src.repo_id,
            filename=spec.path,
            revision=src.revision,
            repo_type=src.repo_type,
            local_dir=tmp,
        )
        os.replace(local, part)
    except Exception as e:
        raise PipelineError(
            f"{src.repo_id}@{src.revision}/{spec.path}: Hub download failed ({e})"
        ) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# extraction


def _member_path(archive: Path, name: str, root: Path, spec: FileSpec) -> Path | None:
    """Where an archive member goes under `root`; None to skip it; DataError if it would escape."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if (
        name.startswith(("/", "\\"))
        or ".." in parts
        or (parts and re.match(r"[A-Za-z]:", parts[0]))
    ):
        raise DataError(f"{archive}: member {name!r} would be written outside the extraction dir")
    if not parts or parts[0] == "__MACOSX":  # macOS resource forks, not data
        return None
    # files above the stripped level keep their bare name rather than being dropped
    parts = parts[-1:] if spec.flatten else (parts[spec.strip :] or parts[-1:])
    return root.joinpath(*parts)


def _write_member(archive: Path, fileobj: BinaryIO, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(target, "xb") as out:
            shutil.copyfileobj(fileobj, out, CHUNK)
    except FileExistsError:
        raise DataError(
            f"{archive}: two members unpack to {target.name!r}; check strip/flatten"
        ) from None


def _extract(archive: Path, dest: Path, spec: FileSpec) -> None:
    """Unpack into a temp dir beside `dest`, renamed over it only when complete."""
    with atomic_dir(dest) as root:
        try:
            if spec.extract == "zip":
                with zipfile.ZipFile(archive) as zf:
                    for info in zf.infolist():
                        target = _member_path(archive, info.filename, root, spec)
                        if target is None or info.is_dir():
                            continue
                        if stat.S_ISLNK(info.external_attr >> 16):  # may point anywhere
                            raise DataError(
                                f"{archive}: member {info.filename!r} is a symlink; refused"
                            )
                        with zf.open(info) as f:
                            _write_member(archive, f, target)
            else:
                with tarfile.open(archive, "r:*") as tf:
                    for member in tf:
                        target = _member_path(archive, member.name, root, spec)
                        if target is None or member.isdir():
                            continue
                        if member.issym() or member.islnk():  # may point anywhere
                            raise DataError(
                                f"{archive}: member {member.name!r} is a link to "
                                f"{member.linkname!r}; refused"
                            )
                        if not member.isfile():
                            log.warning("%s: skipping non-regular member %s", archive, member.name)
                            continue
                        with tf.extractfile(member) as f:
                            _write_member(archive, f, target)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
            raise DataError(f"{archive}: not a readable {spec.extract} archive ({e})") from None


# ---------------------------------------------------------------------------------------------
# the download itself


def _layout(spec: FileSpec) -> dict[str, Any]:
    return {
        "extract": spec.extract,
        "dest": spec.dest,
        "strip": spec.strip,
        "flatten": spec.flatten,
        "head_lines": spec.head_lines,
    }


def _is_complete(src: Source, out_dir: Path, lock: LockFile) -> bool:
    """True if the marker matches the registry, the lock file and what is on disk."""
    try:
        marker = json.loads((out_dir / MARKER).read_text(encoding="utf-8"))
        files = marker["files"]
        if marker["name"] != src.name or set(files) != {s.target for s in src.files}:
            return False
        for spec in src.files:
            rec = files[spec.target]
            if {k: rec.get(k) for k in _LAYOUT_KEYS} != _layout(spec):
                return False
            if not _SHA256.fullmatch(str(rec.get("sha256"))):
                return False
            expected = spec.sha256 or lock.get(src.name, spec.target)
            if expected is not None and rec["sha256"] != expected:
                return False
            present = (
                (out_dir / spec.dest).is_dir() if spec.dest else (out_dir / spec.target).is_file()
            )
            if not present:
                return False
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    for spec in src.files:  # digests verified earlier that a fresh lock file lacks
        if spec.sha256 is None and lock.get(src.name, spec.target) is None:
            lock.record(src.name, spec.target, files[spec.target]["sha256"])
    return True


def _check_manual(src: Source, out_dir: Path) -> None:
    missing = [
        out_dir.resolve() / s.target for s in src.files if not (out_dir / s.target).is_file()
    ]
    if missing:
        where = ", ".join(str(p) for p in missing)
        raise PipelineError(
            f"{src.name} must be downloaded by hand: put {where}"
            f" ({len(missing)} file{'s' if len(missing) > 1 else ''} missing). {src.instructions}"
        )


def _obtain(src, spec, out_dir, lock, base, retry, progress) -> tuple[str, bool]:
    """Fetch (unless present) and verify one file; return (sha256, digest still to be recorded)."""
    final = out_dir / spec.target
    part = final.with_name(final.name + ".part")
    expected, origin = spec.sha256, "sources registry"
    if expected is None:
        expected, origin = lock.get(src.name, spec.target), f"lock file {lock.path}"
    if final.is_file():
        candidate = final
    else:
        final.parent.mkdir(parents=True, exist_ok=True)
        if src.kind == "hub":
            _fetch_hub(src, spec, part)
        elif spec.head_lines is not None:
            _fetch_head(rebase_url(spec.url, base), part, spec.head_lines, retry, progress)
        else:
            _fetch_url(rebase_url(spec.url, base), part, spec.bytes, retry, progress)
        candidate = part
    actual = sha256_file(candidate)
    if expected is not None and actual != expected:
        if src.kind == "manual":
            fate = "the file was kept: replace it with the right one"
        else:
            candidate.unlink(missing_ok=True)
            fate = "the file was deleted"
        raise DataError(
            f"{final}: sha256 mismatch: expected {expected} ({origin}), got {actual}; {fate}"
        )
    if candidate == part:
        os.replace(part, final)
    return actual, expected is None


def _remove_empty_dirs(top: Path) -> None:
    for d in sorted((p for p in top.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    if top.is_dir() and not any(top.iterdir()):
        top.rmdir()


def download(
    name: str,
    out_dir: str | os.PathLike,
    lock_path: str | os.PathLike,
    registry: str | os.PathLike | Mapping[str, Any] | None = None,
    base_url_override: str | None = None,
    progress: bool = True,
    retry: Retry | None = None,
) -> Path:
    """Download, verify and unpack registry source `name` into `out_dir`; return `out_dir`.

    `registry`: None for pipeline/data/sources.yaml, another YAML path, or a dict in its shape.
    `base_url_override` (else env PIPELINE_SOURCES_BASE_URL) replaces scheme and host of every
    URL, e.g. to serve the real registry from a mirror or a test server. A second call after a
    complete one does nothing.
    """
    src = get_source(name, registry)
    out_dir, lock, retry = Path(out_dir), LockFile(lock_path), retry or Retry()
    base = base_url_override if base_url_override is not None else os.environ.get(ENV_BASE_URL)
    if _is_complete(src, out_dir, lock):
        log.info("%s: already complete in %s", name, out_dir)
        return out_dir
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    if src.kind == "manual":
        _check_manual(src, out_dir)
    digests: dict[str, str] = {}
    try:
        unrecorded = []
        for spec in src.files:
            digests[spec.target], new = _obtain(src, spec, out_dir, lock, base, retry, progress)
            if new:
                unrecorded.append(spec)
        for spec in src.files:
            if spec.extract != "none":
                try:
                    _extract(out_dir / spec.target, out_dir / spec.dest, spec)
                except DataError:
                    if spec in unrecorded and src.kind != "manual":  # never trust it again
                        (out_dir / spec.target).unlink(missing_ok=True)
                    raise
        # record first-seen digests only once the files proved usable (an HTML error page
        # served as 200 must not become the "verified" archive)
        for spec in unrecorded:
            lock.record(src.name, spec.target, digests[spec.target])
        files = {s.target: {"sha256": digests[s.target], **_layout(s)} for s in src.files}
        atomic_write_json(out_dir / MARKER, {"name": src.name, "kind": src.kind, "files": files})
    except BaseException:
        if created:
            _remove_empty_dirs(out_dir)
        raise
    return out_dir


def main_download(
    dataset: str, out: str | os.PathLike, lock: str | os.PathLike | None = None
) -> Path:
    """CLI convenience: download `dataset` into `out` (lock file data/sources.lock.json)."""
    return download(dataset, Path(out), Path(lock) if lock else DEFAULT_LOCK_PATH)
