"""`lyricgen serve`'s JSON API and page, through Starlette's TestClient on a tiny run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="lyricgen serve needs starlette: pip install '.[serve]'")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx: pip install '.[test]'")

import lyricgen  # noqa: E402
from lyricgen.craft.generate import SamplingOptions, option_specs  # noqa: E402
from lyricgen.craft.rhyme import is_han  # noqa: E402
from lyricgen.errors import LyricgenError  # noqa: E402
from lyricgen.frontend import serve  # noqa: E402

HEADS = "星我月风"  # all in the tiny corpus (conftest.SONGS)


def _test_client(app):
    """A TestClient; Starlette 1.x prefers the httpx2 package and warns about httpx."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx.*")
        from starlette.testclient import TestClient
    return TestClient(app)


@pytest.fixture(scope="module")
def lyricist(trained_run: Path):
    return lyricgen.load(trained_run)


@pytest.fixture(scope="module")
def client(lyricist):
    # entered, so that every request (from any thread) runs on one event loop, as in uvicorn
    with _test_client(serve.create_app([lyricist])) as c:
        yield c


def han_lines(text: str) -> list[str]:
    """The Han characters of each non-empty line."""
    return ["".join(ch for ch in line if is_han(ch)) for line in text.splitlines() if line]


def test_generate_writes_acrostic_lines_of_seven(client, trained_run):
    r = client.post("/api/generate", json={"acrostic": HEADS, "line_length": 7, "seed": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["run"] == trained_run.name
    [sample] = body["samples"]
    lines = han_lines(sample["text"])
    assert [len(line) for line in lines] == [7, 7, 7, 7]
    assert "".join(line[0] for line in lines) == HEADS
    assert len(sample["logprobs"]) == len(sample["tokens"]) > 0
    assert sample["perplexity"] > 1


def test_generate_lines_from_start_text_and_several_samples(client):
    body = {"start": "星星", "lines": 4, "line_length": 7, "seed": 3, "num_samples": 3}
    r = client.post("/api/generate", json=body)
    assert r.status_code == 200, r.text
    samples = r.json()["samples"]
    assert len(samples) == 3
    for sample in samples:
        assert sample["text"].startswith("星星")
        assert [len(line) for line in han_lines(sample["text"])] == [7, 7, 7, 7]


def test_generate_matches_the_library(client, lyricist):
    r = client.post("/api/generate", json={"start": "我们", "length": 20, "seed": 11})
    expected = lyricist.generate("我们", SamplingOptions(length=20, seed=11))[0].text
    assert r.json()["samples"][0]["text"] == expected


def _top_p_message() -> str:
    with pytest.raises(LyricgenError) as info:
        SamplingOptions(top_p=2.0).validate()  # what `--top-p 2` gives the CLI
    return str(info.value)


BAD_REQUESTS = [
    ("bad json", b'{"lines": 4,', 400, "not valid JSON"),
    ("list body", b"[1, 2]", 400, "must be a JSON object, not an array"),
    ("NaN", b'{"temperature": NaN}', 400, "not valid JSON"),
    ("not utf-8", b'{"start": "\xff"}', 400, "not UTF-8"),
    ("unknown field", {"lenght": 40}, 400, "unknown field 'lenght'"),
    ("wrong type", {"lines": "4"}, 400, "lines must be an int"),
    ("start not text", {"start": 5}, 400, "start must be a str"),
    ("top_p 2", {"top_p": 2}, 400, _top_p_message()),
    ("length over limit", {"length": 501}, 400, "length is 501; this server allows at most 500"),
    (
        "samples over limit",
        {"num_samples": 9},
        400,
        "num_samples is 9; this server allows at most 8",
    ),
    ("beam over limit", {"beam": 9}, 400, "at most 8"),
    ("lines over limit", {"lines": 41}, 400, "lines is 41; this server allows at most 40"),
    ("line over limit", {"line_length": 41}, 400, "at most 40"),
    ("acrostic over limit", {"acrostic": "星" * 41}, 400, "at most 40"),
    ("unknown run", {"run": "nope"}, 400, "unknown run 'nope'"),
    ("rhyme xyz", {"rhyme": "xyz"}, 400, "--rhyme 'xyz' is not a rhyme group"),
    ("unknown start char", {"start": "☃"}, 400, "not in the model's vocabulary"),
    ("negative seed", {"seed": -1}, 400, "seed is -1"),
    ("too large", b"[" + b"1," * 40_000 + b"1]", 413, "over 64 KB"),
]


@pytest.mark.parametrize(
    "body,status,message", [c[1:] for c in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_requests_get_one_line_errors(client, body, status, message):
    if isinstance(body, bytes):
        r = client.post("/api/generate", content=body)
    else:
        r = client.post("/api/generate", json=body)
    assert r.status_code == status
    assert list(r.json()) == ["error"]
    error = r.json()["error"]
    assert message in error
    assert "\n" not in error and "Traceback" not in error


def test_wrong_route_and_method_are_json_errors(client):
    r = client.get("/api/generate")
    assert r.status_code == 405 and r.json() == {"error": "Method Not Allowed"}
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.json() == {"error": "Not Found"}


def test_unexpected_error_is_500_and_the_server_goes_on(lyricist, monkeypatch):
    calls = []

    def flaky(start, opts):
        calls.append(start)
        if len(calls) == 1:
            raise RuntimeError("boom\nsecond line")
        return type(lyricist).generate(lyricist, start, opts)

    monkeypatch.setattr(lyricist, "generate", flaky)
    client = _test_client(serve.create_app([lyricist]))
    r = client.post("/api/generate", json={"start": "星", "length": 5})
    assert r.status_code == 500
    assert r.json() == {"error": "internal error: RuntimeError: boom second line"}
    r = client.post("/api/generate", json={"start": "星", "length": 5})
    assert r.status_code == 200 and r.json()["samples"][0]["text"].startswith("星")


def test_runs_lists_the_run_with_its_history(client, lyricist, trained_run):
    r = client.get("/api/runs")
    assert r.status_code == 200
    [run] = r.json()
    assert run["name"] == trained_run.name
    assert (run["level"], run["cell"], run["vocab"]) == ("char", "gru", len(lyricist.vocab))
    assert run["epochs"] == 3
    assert [row["epoch"] for row in run["history"]] == [1, 2, 3]
    bpcs = [row["val_bpc"] for row in run["history"]]
    assert run["best_val_bpc"] == min(bpcs)
    assert run["best_epoch"] == 1 + bpcs.index(min(bpcs))
    assert all(row["train_loss"] > 0 and row["val_loss"] > 0 for row in run["history"])


def test_options_lists_every_option_with_its_limit(client):
    info = client.get("/api/options").json()
    assert [o["name"] for o in info["options"]] == [s.name for s in option_specs()]
    limits = {o["name"]: o["max"] for o in info["options"] if o["max"] is not None}
    assert limits == serve.LIMITS
    assert len(info["rhyme_groups"]) == 13


def test_page_is_served_as_utf8_html(client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    page = r.content.decode("utf-8")
    assert '<meta charset="utf-8">' in page and "写歌词" in page
    for element in ('id="start"', 'id="acrostic"', 'id="generate"', 'id="curves"'):
        assert element in page


def test_concurrent_requests_run_in_threads_and_agree(client, lyricist, monkeypatch):
    running, most = [0], [0]
    lock = threading.Lock()
    generate = lyricist.generate

    def counted(start, opts):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.05)  # let the requests overlap
            return generate(start, opts)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(lyricist, "generate", counted)
    body = {"start": "星星", "lines": 4, "line_length": 7, "seed": 5}
    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: client.post("/api/generate", json=body), range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert len({r.json()["samples"][0]["text"] for r in responses}) == 1
    assert most[0] > 1  # generation left the event loop: requests were served together


def test_a_sample_is_bounded_without_length():
    bounded = serve.bounded_options
    assert bounded(SamplingOptions(acrostic="星月", line_length=7)).length == 2 * 9
    assert bounded(SamplingOptions(lines=4)).length == 4 * (serve.FREE_LINE_CAP + 2)
    assert bounded(SamplingOptions(lines=40)).length == serve.LIMITS["length"]
    assert bounded(SamplingOptions()).length == 99
    assert bounded(SamplingOptions(lines=4, length=30)).length == 30
    with pytest.raises(serve.RequestError, match="40 lines of 40 characters take up to 1680"):
        bounded(SamplingOptions(lines=40, line_length=40))


def test_parse_body_rejects_huge_numbers():
    with pytest.raises(serve.RequestError, match="not valid JSON"):
        serve.parse_body(b'{"seed": 1e999}')
    assert serve.parse_body(b"  ") == {}


def test_two_runs_with_one_name_are_refused(lyricist):
    with pytest.raises(LyricgenError, match="two runs are named"):
        serve.create_app([lyricist, lyricist])


def test_serve_main_reports_a_missing_run(tmp_path):
    with pytest.raises(LyricgenError) as info:
        serve.serve_main([tmp_path / "no-such-run"], port=0)
    assert "\n" not in str(info.value)


def test_serve_main_without_the_extra_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "starlette", None)
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(LyricgenError) as info:
        serve.serve_main([tmp_path])
    assert str(info.value) == 'lyricgen serve needs the web extra: pip install "lyricgen[serve]"'


def test_importing_serve_does_not_import_the_web_stack():
    code = "import sys, lyricgen.frontend.serve; print(sorted({'starlette', 'uvicorn', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_busy_port_is_a_one_line_error():
    with serve.listen("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(LyricgenError, match=f"cannot listen on 127.0.0.1:{port}"):
            serve.listen("127.0.0.1", port)


def test_serving_gives_blas_one_thread_unless_told_otherwise():
    code = (
        "import os; from lyricgen.frontend.serve import single_threaded_blas; "
        "print(single_threaded_blas(), os.environ['OPENBLAS_NUM_THREADS'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    run = [sys.executable, "-c", code]
    out = subprocess.run(run, capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["True", "1"]
    env["OPENBLAS_NUM_THREADS"] = "3"
    out = subprocess.run(run, capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["True", "3"]


def test_forms_api_and_a_form_request(client):
    r = client.get("/api/forms")
    assert r.status_code == 200
    body = r.json()
    names = {n for f in body["forms"] for n in f["names"]}
    assert {"七绝", "鹧鸪天", "忆江南"} <= names and "◎" in body["legend"]
    r = client.post("/api/generate", json={"form": "鹧鸪天", "seed": 2})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["form"]["name"] == "鹧鸪天" and "◎" in got["form"]["pattern"]
    # the tiny run has no punctuation: each clause is a line, the stanzas a blank line apart
    lines = got["samples"][0]["text"].rstrip("\n").split("\n")
    assert [len(x) for x in lines] == [7, 7, 7, 7, 0, 3, 3, 7, 7, 7]


@pytest.mark.parametrize(
    "body, pattern",
    [
        ({"start": None}, "start cannot be null"),
        ({"form": "鹧鸪"}, "did you mean"),
        ({"form": "七绝", "candidates": 99}, "at most 32"),
    ],
)
def test_form_request_errors_are_4xx_one_liners(client, body, pattern):
    r = client.post("/api/generate", json=body)
    assert r.status_code == 400 and pattern in r.json()["error"], r.text


def test_explained_samples_carry_probabilities_and_the_line_unit(client):
    r = client.post(
        "/api/generate", json={"start": "星星", "length": 10, "seed": 2, "explain": True}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    (sample,) = body["samples"]
    assert len(sample["explain"]) == len(sample["tokens"]) == 10
    assert len(sample["explain"][0]["alternatives"]) == 5
    trace = body["cell"]  # the field keeps its 0.3 name; the tiny run's held-out text has a unit
    assert trace["unit"].startswith("h") and -1 <= trace["r"] <= 1
    assert len(trace["values"][0]) == 10 and body["start"] == "星星"
    plain = client.post("/api/generate", json={"start": "星星", "length": 10, "seed": 2}).json()
    assert "cell" not in plain and "explain" not in plain["samples"][0]


def test_similar_answers_neighbours_and_one_line_errors(client):
    r = client.get("/api/similar", params={"token": "星", "top": 3})
    assert r.status_code == 200, r.text
    assert len(r.json()["input"]) == 3
    for params, message in [
        ({"token": "鑫"}, "not in the model's vocabulary"),
        ({"token": ""}, "token is empty"),
        ({"token": "星", "top": "x"}, "whole number"),
        ({"token": "星", "run": "nope"}, "unknown run"),
    ]:
        r = client.get("/api/similar", params=params)
        assert r.status_code == 400 and message in r.json()["error"], r.text


@pytest.fixture
def live_server(lyricist):
    """The app under a real uvicorn on a free port of 127.0.0.1 (a thread); yields its URL."""
    uvicorn = pytest.importorskip("uvicorn")
    sock = serve.listen("127.0.0.1", 0)
    config = uvicorn.Config(serve.create_app([lyricist]), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    yield serve.url_of(sock)
    server.should_exit = True
    thread.join(10)
    sock.close()


def _trickle(body: bytes, piece: int = 32 * 1024):
    """`body` in pieces a few milliseconds apart: the client is still sending when a server
    that does not drain has answered and closed."""
    for i in range(0, len(body), piece):
        time.sleep(0.005)
        yield body[i : i + piece]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_an_over_limit_body_gets_its_413_over_a_real_socket(live_server, framing):
    """urllib sends the whole body before it reads the answer; the server reads and throws
    away the rest of the body before its 413, so the client gets the answer, not
    ConnectionResetError or BrokenPipeError (which it got when the server closed at once)."""
    import json
    import urllib.error
    import urllib.request

    body = b"x" * (1024 * 1024)  # 16 x MAX_BODY, within what the server drains
    headers = {"Content-Type": "application/json"}
    if framing == "content-length":
        headers["Content-Length"] = str(len(body))  # else urllib sends an iterable chunked
    url = live_server + "api/generate"
    for _ in range(2):  # the same server answers the next client too
        request = urllib.request.Request(url, data=_trickle(body), headers=headers)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        assert info.value.code == 413
        assert info.value.headers["connection"] == "close"
        assert json.loads(info.value.read()) == {"error": "request body is over 64 KB"}


def test_revise_keeps_the_other_lines_and_lists_alternatives(client, lyricist):
    text = "星星在夜空里眨眼\n我们在风里唱歌\n月亮照着回家的路"
    r = client.post("/api/revise", json={"text": text, "lines": [2], "show": 3, "seed": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    new = body["text"].split("\n")
    assert (
        new[0] == "星星在夜空里眨眼" and new[2] == "月亮照着回家的路" and new[1] != "我们在风里唱歌"
    )
    alts = body["alternatives"]["2"]
    assert alts[0]["text"] == new[1] and 1 <= len(alts) <= 3 and body["run"] == lyricist.name
    # the same as the library's
    assert lyricist.revise(text, [2], show=3, seed=1).text == body["text"]


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"lines": [1]}, 400, "text must be a string"),
        ({"text": "星星\n月亮", "lines": [5]}, 400, "--line 5 is out of range"),
        ({"text": "星" * 3000, "lines": [1]}, 413, "this server revises at most 2000"),
        ({"text": " \n ", "lines": [1]}, 400, "the draft is empty"),
        ({"text": "星星\n月亮", "lines": "2"}, 400, "lines must be an array"),
        ({"text": "星星\n月亮", "lines": [1], "show": 99}, 400, "show is 99"),
        ({"text": "星星\n月亮", "lines": [1], "bogus": 1}, 400, "unknown field 'bogus'"),
    ],
)
def test_bad_revisions_get_one_line_errors(client, body, status, message):
    r = client.post("/api/revise", json=body)
    assert r.status_code == status and message in r.json()["error"], r.text
    assert "\n" not in r.json()["error"]


# ---------------------------------------------------------------------------------------
# 填词: a tune as numbered notation (`jianpu`) or as an uploaded MIDI file (`midi`)

# two phrases of 7, cut at the long notes
TUNE = "1=D 4/4 | 3 5 6 1' | 6 5 3 - | 2 3 5 3 | 2 1 2 - |"


def _sung(sample: dict, lengths: list[int]) -> None:
    """The sample has one line per phrase, its characters each against their note."""
    assert [len(line) for line in han_lines(sample["text"])] == lengths
    fit = sample["melody_fit"]
    assert [len(row) for row in fit["lines"]] == lengths
    assert ["".join(c["char"] for c in row) for row in fit["lines"]] == han_lines(sample["text"])
    cells = [c for row in fit["lines"] for c in row]
    assert cells[0]["fit"] is None and cells[0]["step"] is None  # the tune's first note
    classes = {"good", "acceptable", "poor", "unacceptable"}
    assert all(c["fit"] in classes and isinstance(c["step"], int) for c in cells[1:])
    summary = fit["summary"]
    assert summary["scored"] == sum(lengths) - 1
    assert sum(summary[k] for k in classes) == summary["scored"]
    assert summary["daozi"] == summary["unacceptable"]


def test_generate_to_a_jianpu_tune_fits_each_character_to_its_note(client):
    r = client.post("/api/generate", json={"jianpu": TUNE, "seed": 1, "num_samples": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    melody = body["melody"]
    assert melody["key"] == "1=D" and melody["lengths"] == [7, 7]
    labels = [s["label"] for s in melody["phrases"][0]["syllables"]]
    assert labels == ["3", "5", "6", "1'", "6", "5", "3"]
    assert len(body["samples"]) == 2
    for sample in body["samples"]:
        _sung(sample, [7, 7])
        first = sample["melody_fit"]["lines"][0]
        assert [c["note"] for c in first] == labels and first[3]["pitch"] == 74  # 1' in D


def test_phrases_cut_the_tune_and_strict_tones_leave_no_daozi(client):
    body = {"jianpu": TUNE, "phrases": "4,3,4,3", "tone_fit": "strict", "seed": 2}
    r = client.post("/api/generate", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["melody"]["lengths"] == [4, 3, 4, 3]
    [sample] = r.json()["samples"]
    _sung(sample, [4, 3, 4, 3])
    assert sample["melody_fit"]["summary"]["daozi"] == 0


def _midi_base64(*phrases: list[int]) -> str:
    """A single-track MIDI file, base64: the phrases' notes (MIDI pitches, a beat each) with
    a two-beat rest between phrases."""
    import base64
    import io

    mido = pytest.importorskip("mido", reason="MIDI needs mido: pip install '.[melody]'")
    track = mido.MidiTrack()
    for i, pitches in enumerate(phrases):
        for j, pitch in enumerate(pitches):
            wait = 960 if i and not j else 0
            track.append(mido.Message("note_on", note=pitch, velocity=80, time=wait))
            track.append(mido.Message("note_off", note=pitch, velocity=0, time=480))
    song = mido.MidiFile(ticks_per_beat=480)
    song.tracks.append(track)
    out = io.BytesIO()
    song.save(file=out)
    return base64.b64encode(out.getvalue()).decode("ascii")


def test_generate_to_an_uploaded_midi_file(client):
    midi = _midi_base64([60, 62, 64, 65, 67, 69, 67, 64], [65, 64, 62, 60, 62, 60])
    for extra in ({}, {"track": 1}):
        r = client.post("/api/generate", json={"midi": midi, "seed": 3, **extra})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["melody"]["lengths"] == [8, 6]
        assert body["melody"]["source"] == "the uploaded MIDI file"
        [sample] = body["samples"]
        _sung(sample, [8, 6])
        assert [c["pitch"] for c in sample["melody_fit"]["lines"][1]] == [65, 64, 62, 60, 62, 60]


MELODY_ERRORS = [
    ("bad base64", {"midi": "not base64!"}, "midi is not base64"),
    ("midi not a string", {"midi": 5}, "midi must be a MIDI file in base64"),
    ("midi and jianpu", {"midi": "TVRoZA==", "jianpu": TUNE}, "midi and jianpu both give a tune"),
    ("track without midi", {"track": 1, "jianpu": TUNE}, "send midi too"),
    ("track not an int", {"track": "1", "midi": "TVRoZA=="}, "track must be an int"),
    ("unknown symbol", {"jianpu": "1 2 x 3"}, "line 1, column 5: unknown symbol 'x'"),
    ("41 phrases", {"jianpu": " / ".join(["1"] * 41)}, "the melody has 41 phrases"),
    ("phrases not adding up", {"jianpu": TUNE, "phrases": "7,8"}, "add up to 14"),
    ("melody and lines", {"jianpu": TUNE, "lines": 4}, "leave --lines out"),
    ("tone_fit without a tune", {"tone_fit": "strict"}, "--tone-fit needs a melody"),
    ("jianpu over limit", {"jianpu": "1 " * 2001}, "jianpu has 4002 characters"),
]


@pytest.mark.parametrize(
    "body, message", [c[1:] for c in MELODY_ERRORS], ids=[c[0] for c in MELODY_ERRORS]
)
def test_bad_melodies_get_one_line_400s(client, body, message):
    r = client.post("/api/generate", json=body)
    assert r.status_code == 400, r.text
    assert list(r.json()) == ["error"]
    error = r.json()["error"]
    assert message in error and "\n" not in error and "Traceback" not in error
