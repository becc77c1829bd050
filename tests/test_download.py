"""The downloader against a real loopback HTTP server serving archives generated here."""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.data.download import MARKER, Retry, download, main_download, rebase_url
from pipeline.errors import DataError, PipelineError

FAST = Retry(attempts=4, backoff=0.01, max_backoff=0.05, timeout=5)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_targz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Handler(BaseHTTPRequestHandler):
    """Serves `server.files`; supports `Range: bytes=N-`; can drop a connection mid-body."""

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        srv = self.server
        rng = self.headers.get("Range")
        srv.log.append((self.path, rng))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and srv.honour_range:
            start = int(m[1])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        drop = srv.drop_after.pop(self.path, None)  # only the first request is cut short
        self.wfile.write(body[start:] if drop is None else body[start : start + drop])
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("PIPELINE_SOURCES_BASE_URL", raising=False)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.files, srv.log, srv.drop_after, srv.honour_range = {}, [], {}, True
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def registry_for(srv, files: list[dict], kind: str = "url", **extra) -> dict:
    return {
        "toy": {
            "kind": kind,
            "splits": ["train", "dev"],
            "languages": ["en", "es"],
            "licence": "CC0",
            "citation": {"key": "toy2024", "title": "A toy corpus"},
            "files": files,
            **extra,
        }
    }


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


ZIP = make_zip({"toy-1.0/train.tsv": b"a\tb\n", "toy-1.0/sub/dev.tsv": b"c\td\n"})
TGZ = make_targz({"pkg/x/en.txt": b"hello\n", "pkg/x/es.txt": b"hola\n"})
JSON = b'{"version": 1.1}\n'


def test_download_extracts_records_lock_and_second_call_is_a_noop(server, tmp_path):
    server.files.update({"/d/toy-1.0.zip": ZIP, "/d/pkg.tgz": TGZ, "/d/v.json": JSON})
    reg = registry_for(
        server,
        [
            {"url": server.url + "/d/toy-1.0.zip", "sha256": None, "extract": "zip", "strip": 1},
            {"url": server.url + "/d/pkg.tgz", "sha256": None, "extract": "tgz", "strip": 2},
            {"url": server.url + "/d/v.json", "sha256": sha(JSON)},
        ],
    )
    out, lock = tmp_path / "raw" / "toy", tmp_path / "sources.lock.json"
    got = download("toy", out, lock, registry=reg, progress=False, retry=FAST)

    assert got == out
    assert (out / "toy-1.0" / "train.tsv").read_bytes() == b"a\tb\n"  # strip 1
    assert (out / "toy-1.0" / "sub" / "dev.tsv").read_bytes() == b"c\td\n"
    assert (out / "pkg" / "es.txt").read_bytes() == b"hola\n"  # strip 2: pkg/x/ removed
    assert (out / "v.json").read_bytes() == JSON
    assert not list(out.glob("*.part")) and not list(out.glob(".*.tmp"))
    # digests not in the registry are recorded; the published one is not duplicated
    assert json.loads(lock.read_text()) == {"toy": {"pkg.tgz": sha(TGZ), "toy-1.0.zip": sha(ZIP)}}
    marker = json.loads((out / MARKER).read_text())
    assert marker["files"]["v.json"]["sha256"] == sha(JSON)

    hits = len(server.log)
    assert hits == 3
    extracted = (out / "toy-1.0" / "train.tsv").stat().st_ino
    (out / "toy-1.0.zip").unlink()  # the marker, not the archive, says the work is done
    assert download("toy", out, lock, registry=reg, progress=False, retry=FAST) == out
    assert len(server.log) == hits  # nothing fetched again
    assert (out / "toy-1.0" / "train.tsv").stat().st_ino == extracted  # nor re-extracted


def test_interrupted_download_resumes_with_range(server, tmp_path):
    body = bytes(range(256)) * 200  # 51,200 bytes
    server.files["/big.bin"] = body
    server.drop_after["/big.bin"] = 10_000
    reg = registry_for(server, [{"url": server.url + "/big.bin", "sha256": sha(body)}])
    out = tmp_path / "toy"
    download("toy", out, tmp_path / "lock.json", registry=reg, progress=False, retry=FAST)

    assert server.log == [("/big.bin", None), ("/big.bin", "bytes=10000-")]
    assert (out / "big.bin").read_bytes() == body
    assert not (out / "big.bin.part").exists()


def test_server_ignoring_range_restarts_from_scratch(server, tmp_path):
    body = b"0123456789" * 3000
    server.files["/f.bin"] = body
    server.drop_after["/f.bin"] = 7_000
    server.honour_range = False  # answers 200 with the whole body even to a Range request
    reg = registry_for(server, [{"url": server.url + "/f.bin", "sha256": sha(body)}])
    download(
        "toy", tmp_path / "toy", tmp_path / "lock.json", registry=reg, progress=False, retry=FAST
    )

    assert [r for _, r in server.log] == [None, "bytes=7000-"]
    assert (tmp_path / "toy" / "f.bin").read_bytes() == body  # not 7,000 bytes + the whole body


def test_registry_digest_mismatch_names_both_digests_and_leaves_nothing(server, tmp_path):
    server.files["/toy-1.0.zip"] = ZIP
    wrong = sha(b"something else")
    reg = registry_for(
        server, [{"url": server.url + "/toy-1.0.zip", "sha256": wrong, "extract": "zip"}]
    )
    out, lock = tmp_path / "toy", tmp_path / "lock.json"
    with pytest.raises(DataError) as e:
        download("toy", out, lock, registry=reg, progress=False, retry=FAST)

    msg = str(e.value)
    assert "toy-1.0.zip" in msg and wrong in msg and sha(ZIP) in msg
    assert listing(out) == []  # no .part, no archive, no extracted dir
    assert not lock.exists()


def test_committed_lock_digest_is_verified_on_a_later_download(server, tmp_path):
    server.files["/v.json"] = JSON
    reg = registry_for(server, [{"url": server.url + "/v.json", "sha256": None}])
    lock = tmp_path / "lock.json"
    download("toy", tmp_path / "first", lock, registry=reg, progress=False, retry=FAST)
    assert json.loads(lock.read_text()) == {"toy": {"v.json": sha(JSON)}}

    server.files["/v.json"] = b'{"version": 2.0}\n'  # upstream changed silently
    with pytest.raises(DataError) as e:
        download("toy", tmp_path / "second", lock, registry=reg, progress=False, retry=FAST)
    assert sha(JSON) in str(e.value) and "lock file" in str(e.value)
    assert listing(tmp_path / "second") == []
    assert json.loads(lock.read_text()) == {"toy": {"v.json": sha(JSON)}}  # not overwritten


def test_manual_source_says_where_to_put_the_file_then_proceeds(tmp_path):
    archive = make_zip({"corpus/a.txt": b"x\n"})
    reg = registry_for(
        None,
        [
            {
                "target": "corpus.zip",
                "url": "https://example.org/c",
                "sha256": None,
                "extract": "zip",
                "strip": 1,
                "dest": "corpus",
            }
        ],
        kind="manual",
        instructions="Ask the authors at https://example.org/c for corpus.zip.",
    )
    out, lock = tmp_path / "raw" / "toy", tmp_path / "lock.json"
    with pytest.raises(PipelineError) as e:
        download("toy", out, lock, registry=reg, progress=False)
    assert str((out / "corpus.zip").resolve()) in str(e.value)
    assert "https://example.org/c" in str(e.value)

    (out / "corpus.zip").write_bytes(archive)
    download("toy", out, lock, registry=reg, progress=False)
    assert (out / "corpus" / "a.txt").read_bytes() == b"x\n"
    assert json.loads(lock.read_text()) == {"toy": {"corpus.zip": sha(archive)}}

    # a different file in its place later is refused, but the user's file is not deleted
    (out / MARKER).unlink()
    (out / "corpus.zip").write_bytes(make_zip({"corpus/a.txt": b"y\n"}))
    with pytest.raises(DataError, match="sha256 mismatch"):
        download("toy", out, lock, registry=reg, progress=False)
    assert (out / "corpus.zip").exists()


def test_real_registry_entry_via_base_url_override(server, tmp_path, monkeypatch):
    """mtod publishes no digest: the real entry, pointed at the loopback server by env var."""
    archive = make_zip({"en/train-en.tsv": b"alarm/set_alarm\t\tset an alarm\ten_US\t{}\n"})
    server.files["/data/multilingual_task_oriented_dialog_slotfilling.zip"] = archive
    monkeypatch.setenv("PIPELINE_SOURCES_BASE_URL", server.url)
    lock = tmp_path / "lock.json"
    out = main_download("mtod", tmp_path / "mtod", lock)

    tsv = out / "multilingual_task_oriented_data" / "en" / "train-en.tsv"
    assert tsv.read_text().startswith("alarm/set_alarm")
    assert (out / "multilingual_task_oriented_data.zip").read_bytes() == archive
    assert json.loads(lock.read_text()) == {
        "mtod": {"multilingual_task_oriented_data.zip": sha(archive)}
    }


def test_real_registry_published_digest_is_enforced(server, tmp_path):
    server.files["/SQuAD-explorer/dataset/train-v1.1.json"] = JSON
    with pytest.raises(DataError) as e:
        download(
            "squad",
            tmp_path / "squad",
            tmp_path / "lock.json",
            base_url_override=server.url,
            progress=False,
            retry=FAST,
        )
    assert "3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955" in str(e.value)
    assert server.log == [("/SQuAD-explorer/dataset/train-v1.1.json", None)]
    assert listing(tmp_path / "squad") == []


def test_archive_member_escaping_the_dir_is_refused(server, tmp_path):
    evil = make_zip({"ok/a.txt": b"a", "../../evil.txt": b"owned"})
    server.files["/evil.zip"] = evil
    reg = registry_for(
        server, [{"url": server.url + "/evil.zip", "sha256": None, "extract": "zip"}]
    )
    lock = tmp_path / "lock.json"
    with pytest.raises(DataError, match="outside the extraction dir"):
        download("toy", tmp_path / "out" / "toy", lock, registry=reg, progress=False, retry=FAST)
    assert not list(tmp_path.rglob("evil.txt"))
    assert listing(tmp_path / "out") == []  # the unverified archive is not kept either
    assert not lock.exists()  # and its digest is not recorded as good


def test_http_404_fails_at_once_and_retries_give_up(server, tmp_path):
    reg = registry_for(server, [{"url": server.url + "/missing.zip", "sha256": None}])
    with pytest.raises(PipelineError, match="HTTP 404"):
        download(
            "toy", tmp_path / "a", tmp_path / "l.json", registry=reg, progress=False, retry=FAST
        )
    assert len(server.log) == 1

    server.files["/short.bin"] = b"x" * 5000
    server.drop_after["/short.bin"] = 100
    server.honour_range = False
    reg = registry_for(server, [{"url": server.url + "/short.bin", "sha256": None}])
    server.log.clear()
    with pytest.raises(PipelineError, match="after 1 attempts"):
        download(
            "toy",
            tmp_path / "b",
            tmp_path / "l.json",
            registry=reg,
            progress=False,
            retry=Retry(attempts=1, backoff=0.01, timeout=5),
        )
    assert (tmp_path / "b" / "short.bin.part").stat().st_size == 100  # kept for resuming


def test_rebase_url_keeps_path_and_query():
    assert (
        rebase_url("https://dl.example.com/a/b.zip?x=1", "http://127.0.0.1:8000/mirror/")
        == "http://127.0.0.1:8000/mirror/a/b.zip?x=1"
    )
    assert rebase_url("https://h/a", None) == "https://h/a"


def test_hub_source_uses_pinned_revision_and_records_digest(tmp_path, monkeypatch):
    """The Hub code path with hf_hub_download faked (the real one needs the network)."""
    import huggingface_hub

    calls = []

    def fake_download(repo_id, filename, *, revision, repo_type, local_dir):
        calls.append((repo_id, filename, revision, repo_type))
        path = Path(local_dir) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(filename.encode())
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    rev = "0123456789abcdef0123456789abcdef01234567"
    reg = registry_for(
        None,
        [{"path": "PAN-X.{lang}/test-00000-of-00001.parquet", "sha256": None}],
        kind="hub",
        repo_id="org/data",
        revision=rev,
    )
    lock = tmp_path / "lock.json"
    out = download("toy", tmp_path / "toy", lock, registry=reg, progress=False)

    assert calls == [
        ("org/data", f"PAN-X.{lang}/test-00000-of-00001.parquet", rev, "dataset")
        for lang in ("en", "es")
    ]
    target = "PAN-X.es/test-00000-of-00001.parquet"
    assert (out / target).read_bytes() == target.encode()
    assert json.loads(lock.read_text())["toy"][target] == sha(target.encode())
    assert sorted(p.name for p in out.iterdir()) == [".complete.json", "PAN-X.en", "PAN-X.es"]


# ------------------------------------------------------------------ head_lines (CC-100)


def _documents(n_lines: int, seed: int = 0) -> bytes:
    """CC-100's shape: one paragraph per line, a blank line between documents; random words,
    so that xz cannot shrink it much."""
    import random

    rng = random.Random(seed)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6)) for _ in range(500)
    ]
    out = []
    for i in range(n_lines):
        out.append(" ".join(rng.choice(words) for _ in range(12)) + "\n")
        if i % 4 == 3:
            out.append("\n")
    return "".join(out).encode()


def _head(text: bytes, n: int) -> bytes:
    """The first n non-empty lines and the blank lines between them, as the downloader keeps."""
    kept, out = 0, []
    for line in text.splitlines(keepends=True):
        if line.strip():
            out.append(line)
            kept += 1
            if kept == n:
                break
        elif kept:
            out.append(line)
    return b"".join(out)


def test_head_lines_keeps_the_first_lines_of_a_streamed_xz_and_stops_there(server, tmp_path):
    import lzma

    texts = {lang: _documents(40_000, seed=i) for i, lang in enumerate(("en", "es"))}
    for lang, text in texts.items():  # cut in half: only a reader of the whole file notices
        packed = lzma.compress(text)
        server.files[f"/cc/{lang}.txt.xz"] = packed[: len(packed) // 2]
    spec = {"url": server.url + "/cc/{lang}.txt.xz", "target": "{lang}.txt", "sha256": None}
    reg = registry_for(server, [{**spec, "head_lines": 7}])
    lock, out = tmp_path / "lock.json", tmp_path / "cc"

    download("toy", out, lock, registry=reg, progress=False, retry=FAST)

    for lang, text in texts.items():
        kept = (out / f"{lang}.txt").read_bytes()
        assert kept == _head(text, 7) and kept.count(b"\n\n") == 1  # one document break
        assert sum(1 for line in kept.splitlines() if line.strip()) == 7
        assert json.loads(lock.read_text())["toy"][f"{lang}.txt"] == sha(kept)
    assert sorted(p.name for p in out.iterdir()) == [".complete.json", "en.txt", "es.txt"]
    hits = len(server.log)
    download("toy", out, lock, registry=reg, progress=False, retry=FAST)
    assert len(server.log) == hits  # complete: nothing fetched again

    # reading on to the end reaches the cut: the head download never read that far
    whole = registry_for(server, [{**spec, "head_lines": 10**6}])
    with pytest.raises(PipelineError, match="download failed after 4 attempts"):
        download(
            "toy",
            tmp_path / "all",
            tmp_path / "l2.json",
            registry=whole,
            progress=False,
            retry=FAST,
        )
    assert not (tmp_path / "all").exists()
    server.files["/cc/en.txt.xz"] = b"\xfd7zXZ\x00 but not xz data" * 100
    with pytest.raises(DataError, match="not readable as .xz"):
        download(
            "toy", tmp_path / "bad", tmp_path / "l3.json", registry=reg, progress=False, retry=FAST
        )


def test_head_lines_of_plain_text_and_of_a_short_file(server, tmp_path):
    text = _documents(30)
    server.files["/t/en.txt"] = text
    server.files["/t/es.txt"] = text
    reg = registry_for(
        server, [{"url": server.url + "/t/{lang}.txt", "sha256": None, "head_lines": 100}]
    )
    out = download(
        "toy", tmp_path / "t", tmp_path / "l.json", registry=reg, progress=False, retry=FAST
    )
    assert (out / "en.txt").read_bytes() == text.rstrip(b"\n") + b"\n"  # all 30, no trailing blank
    marker = json.loads((out / MARKER).read_text())
    assert marker["files"]["en.txt"]["head_lines"] == 100


def test_head_lines_is_validated():
    from pipeline.data.sources import parse_registry
    from pipeline.errors import ConfigError

    for bad, needle in (
        ({"head_lines": 0}, "head_lines: expected an integer >= 1"),
        ({"head_lines": 5, "extract": "zip"}, "head_lines: the first lines of a text file"),
    ):
        reg = registry_for(None, [{"url": "https://x.org/a.txt.xz", "sha256": None, **bad}])
        with pytest.raises(ConfigError, match=needle):
            parse_registry(reg)


def _tar(members: list[tarfile.TarInfo], data: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for m in members:
            payload = data.get(m.name, b"")
            m.size = len(payload) if m.isfile() else 0
            tf.addfile(m, io.BytesIO(payload) if m.isfile() else None)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.type, m.linkname = kind, link
    return m


@pytest.mark.parametrize(
    "archive, kind, message",
    [
        (lambda: _tar([_member("../evil.txt")], {"../evil.txt": b"x"}), "tar.gz", "outside"),
        (lambda: _tar([_member("/tmp/evil.txt")], {"/tmp/evil.txt": b"x"}), "tar.gz", "outside"),
        (lambda: _tar([_member("d/ln", tarfile.SYMTYPE, "/etc/passwd")], {}), "tar.gz", "a link"),
        (lambda: _tar([_member("d/hl", tarfile.LNKTYPE, "../../x")], {}), "tar.gz", "a link"),
        (lambda: make_zip({"/abs.txt": b"x"}), "zip", "outside"),
        (lambda: _zip_symlink("d/ln", "/etc/passwd"), "zip", "is a symlink"),
    ],
    ids=["tar-dotdot", "tar-absolute", "tar-symlink", "tar-hardlink", "zip-absolute", "zip-link"],
)
def test_crafted_archives_escaping_the_folder_are_refused(server, tmp_path, archive, kind, message):
    server.files["/a.bin"] = archive()
    reg = registry_for(server, [{"url": server.url + "/a.bin", "sha256": None, "extract": kind}])
    with pytest.raises(DataError, match=message):
        download(
            "toy",
            tmp_path / "out" / "toy",
            tmp_path / "l.json",
            registry=reg,
            progress=False,
            retry=FAST,
        )
    assert listing(tmp_path / "out") == []  # nothing extracted, nothing kept
    assert not (tmp_path / "l.json").exists()


def _zip_symlink(name: str, target: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo(name)
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
    return buf.getvalue()
