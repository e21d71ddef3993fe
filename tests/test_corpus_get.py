"""`lyricgen corpus get` and `corpus verse` against a local HTTP server: conversion, checks,
resumed and cached downloads, and the one-line errors. No network."""

from __future__ import annotations

import errno
import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from lyricgen.corpus import get as getmod

from .helpers import cli, cli_without, one_line_error

CI = {
    "宋词/ci.song.0.json": [
        {"author": "李清照", "paragraphs": ["昨夜雨疏风骤，浓睡不消残酒。"], "rhythmic": "如梦令"},
        {"author": "苏轼", "paragraphs": ["明月几时有？", "把酒问青天。"], "rhythmic": "水调歌头"},
    ],
    "宋词/ci.song.1000.json": [
        {"author": "无名氏", "paragraphs": ["沈沈庭院深。"], "rhythmic": "失调名"},
    ],
}
TANG = {
    "全唐诗/poet.tang.0.json": [
        {"title": "靜夜思", "paragraphs": ["牀前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"]},
        {"title": "lost", "paragraphs": ["", "  "]},  # no lines left: skipped
    ],
    "全唐诗/poet.tang.1000.json": [
        {"title": "春曉", "paragraphs": [" 春眠不覺曉，處處聞啼鳥。 ", ""]},
    ],
}
# what the recipes make of them: the ci as they are (沈 stays), the shi stripped and simplified
SONGCI = "昨夜雨疏风骤，浓睡不消残酒。\n\n明月几时有？\n把酒问青天。\n\n沈沈庭院深。\n"
TUNES = "如梦令\n水调歌头\n失调名\n"
TANGSHI = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n\n春眠不觉晓，处处闻啼鸟。\n"


class _Handler(BaseHTTPRequestHandler):
    """Serves the files under server.root, with Range requests unless server.ranges is off;
    a path in server.truncate is sent half (once), its Content-Length promising all."""

    def do_GET(self) -> None:
        srv = self.server
        path = unquote(urlsplit(self.path).path).lstrip("/")
        rng = self.headers.get("Range")
        srv.requests.append((path, rng))
        file = srv.root / path
        if not file.is_file():
            self.send_error(404)
            return
        data = file.read_bytes()
        start = 0
        if rng and srv.ranges:
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if path in srv.truncate:
            srv.truncate.discard(path)
            body = body[: len(body) // 2]
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    """The fixture files behind a local server; .url, .requests, .truncate, .ranges."""
    root = tmp_path / "remote"
    for path, poems in {**CI, **TANG}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(json.dumps(poems, ensure_ascii=False), encoding="utf-8")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.root, srv.requests, srv.truncate, srv.ranges = root, [], set(), True
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/"
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def manifest(tmp_path: Path, srv, wrong: str | None = None) -> Path:
    """A manifest of the served files (path, size, sha256); `wrong` gets a bad digest."""
    rows = ["# test manifest"]
    for path in [*CI, *TANG]:
        data = (srv.root / path).read_bytes()
        digest = "0" * 64 if path == wrong else hashlib.sha256(data).hexdigest()
        rows.append(f"{path}\t{len(data)}\t{digest}")
    out = tmp_path / "manifest.tsv"
    out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def get(tmp_path: Path, srv, name: str, *extra, wrong: str | None = None):
    """`lyricgen corpus get NAME` from the server, into tmp_path/out, cache tmp_path/cache."""
    m = manifest(tmp_path, srv, wrong)
    return cli(
        *("corpus", "get", name, "--source", srv.url, "--manifest", m),
        *("--cache", tmp_path / "cache", "--out", tmp_path / "out", *extra),
    )


def test_tangshi_is_simplified_and_a_rerun_uses_the_cache(tmp_path, server):
    r = get(tmp_path, server, "tangshi")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "tangshi.txt").read_text(encoding="utf-8") == TANGSHI
    assert "2 poems, 3 lines" in r.output and "reference" not in r.output
    assert sorted(p for p, _ in server.requests) == sorted(TANG)
    r = get(tmp_path, server, "tangshi")
    assert r.exit_code == 0, r.output
    assert len(server.requests) == 2  # both files came from the cache
    assert (tmp_path / "out" / "tangshi.txt").read_text(encoding="utf-8") == TANGSHI


def test_songci_is_kept_as_it_is_with_its_tunes(tmp_path, server):
    r = get(tmp_path, server, "songci")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "songci.txt").read_text(encoding="utf-8") == SONGCI
    assert (tmp_path / "out" / "songci_tunes.txt").read_text(encoding="utf-8") == TUNES


def test_a_checksum_mismatch_deletes_the_download_and_writes_nothing(tmp_path, server):
    bad = "全唐诗/poet.tang.1000.json"
    r = get(tmp_path, server, "tangshi", wrong=bad)
    one_line_error(r, f"{bad}: SHA-256 mismatch, expected {'0' * 64}")
    assert hashlib.sha256((server.root / bad).read_bytes()).hexdigest() in r.output
    assert not (tmp_path / "out" / "tangshi.txt").exists()
    assert not list((tmp_path / "cache").rglob("poet.tang.1000.json*"))


def test_a_truncated_download_resumes_on_the_rerun(tmp_path, server):
    path = "全唐诗/poet.tang.0.json"
    server.truncate.add(path)
    r = get(tmp_path, server, "tangshi")
    one_line_error(r, "rerun the command to resume")
    assert not (tmp_path / "out").exists()
    part = tmp_path / "cache" / (path + ".part")
    size = (server.root / path).stat().st_size
    assert part.stat().st_size == size // 2
    r = get(tmp_path, server, "tangshi")
    assert r.exit_code == 0, r.output
    assert (path, f"bytes={size // 2}-") in server.requests
    assert (tmp_path / "out" / "tangshi.txt").read_text(encoding="utf-8") == TANGSHI
    assert not part.exists()


def test_a_server_without_ranges_restarts_the_download(tmp_path, server):
    path = "全唐诗/poet.tang.0.json"
    part = tmp_path / "cache" / (path + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 10)  # appending the whole file to this would fail the check
    server.ranges = False
    r = get(tmp_path, server, "tangshi")
    assert r.exit_code == 0, r.output
    assert (path, "bytes=10-") in server.requests
    assert (tmp_path / "out" / "tangshi.txt").read_text(encoding="utf-8") == TANGSHI


def test_unknown_name_lists_the_names(tmp_path, server):
    one_line_error(get(tmp_path, server, "yuanqu"), "songci, tangshi, songshi")
    assert server.requests == []


def test_network_and_disk_errors_are_one_line(tmp_path, server, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    server.url = f"http://127.0.0.1:{closed}/"
    one_line_error(get(tmp_path, server, "songci"), "rerun the command to resume")

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(getmod, "atomic_write", full)
    server.url = f"http://127.0.0.1:{server.server_address[1]}/"
    one_line_error(get(tmp_path, server, "songci"), "the disk is full")
    assert not list((tmp_path / "out").iterdir())


def test_without_opencc_it_says_what_to_install(tmp_path, server, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "opencc", None)
    one_line_error(get(tmp_path, server, "tangshi"), "pip install 'lyricgen[corpus]'")
    assert server.requests == []  # before any download


def test_verse_builds_from_the_corpora_and_names_a_missing_one(tmp_path):
    src = tmp_path / "corpora"
    src.mkdir()
    (src / "songci.txt").write_text(SONGCI * 10, encoding="utf-8")
    (src / "tangshi.txt").write_text(TANGSHI, encoding="utf-8")
    one_line_error(
        cli("corpus", "verse", "--from", src, "--out", tmp_path / "v"),
        "run `lyricgen corpus get songshi` first",
    )
    (src / "songshi.txt").write_text(TANGSHI, encoding="utf-8")
    r = cli("corpus", "verse", "--from", src, "--out", tmp_path / "v")
    assert r.exit_code == 0, r.output
    for name in ("verse_train.txt", "songci_val.txt", "tang_val.txt"):
        chars = len((tmp_path / "v" / name).read_text(encoding="utf-8"))
        assert f"{tmp_path / 'v' / name}: {chars:,} chars" in r.output


def test_the_shipped_manifest_lists_the_335_files_in_order():
    files = getmod.read_manifest()
    assert len(files) == 335 and sum(f.size for f in files) == 143_569_614
    ci = [f.path for f in files if f.path.startswith("宋词/")]
    assert ci == [f"宋词/ci.song.{n}.json" for n in range(0, 22_000, 1000)]


def test_corpus_help_imports_neither_opencc_nor_torch():
    cli_without(["corpus", "get", "--help"], ("opencc", "torch", "lyricgen.corpus.get"))
