"""The CLI of lyrics to a melody: `generate --jianpu/--melody`, `lyricgen fit`, --midi-out,
and their one-line errors."""

from __future__ import annotations

import json

import pytest

from .helpers import cli, gen, one_line_error

TUNE = "1=C 4/4 | 3 5 6 5 | 3 2 1 - | 2 3 5 3 | 2 - - 0 | 3 5 6 1' | 6 5 3 - | 2 3 2 1 | 1 - - 0 |"
LENGTHS = [7, 5, 7, 5]
LYRIC = "春风吹过那山岗\n花开满地香\n一条小路通远方，\n回到我家乡。\n"


def _han(line: str) -> int:
    return sum("\u4e00" <= c <= "\u9fff" for c in line)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_generate_to_jianpu_shows_notes_over_characters(trained_run, backend):
    r = gen(trained_run, "--jianpu", TUNE, "--seed", 3, "--backend", backend)
    assert r.exit_code == 0, r.output
    out = [ln for ln in r.stdout.splitlines() if ln.strip() and not set(ln) <= {"^", " "}]
    notes, words = out[0::2], out[1::2]
    assert notes[0].split() == ["3", "5", "6", "5", "3", "2", "1"]
    assert [_han(w) for w in words] == LENGTHS
    assert "倒字 (unacceptable steps):" in r.stderr


def test_generate_json_and_midi_out(trained_run, tmp_path):
    mido = pytest.importorskip("mido")
    tune = tmp_path / "tune.txt"
    tune.write_text(TUNE, encoding="utf-8")
    out = tmp_path / "song.mid"
    r = gen(trained_run, "--melody", tune, "--json", "--seed", 1, "--tone-fit", "strict",
            "--midi-out", out)  # fmt: skip
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout.splitlines()[0])
    fit = row["melody_fit"]
    assert [len(ln) for ln in fit["lines"]] == LENGTHS
    assert fit["summary"]["daozi"] == 0 and fit["summary"]["scored"] == 23
    assert fit["lines"][2][3]["note"] == "1'"
    chars = [c["char"] for ln in fit["lines"] for c in ln]
    lyrics = [m.text for t in mido.MidiFile(out, charset="utf-8").tracks for m in t
              if m.type == "lyrics"]  # fmt: skip
    assert lyrics == chars


def test_fit_scores_a_lyric(tmp_path):
    lyric = tmp_path / "lyric.txt"
    lyric.write_text(LYRIC, encoding="utf-8")
    r = cli("fit", lyric, "--jianpu", TUNE)
    assert r.exit_code == 0, r.output
    assert "春 风 吹 过 那 山 岗" in r.stdout and "方，" in r.stdout
    assert "倒字 (unacceptable steps): 5 of 23 characters" in r.stderr
    r = cli("fit", lyric, "--jianpu", TUNE, "--json")
    d = json.loads(r.stdout)
    assert d["summary"]["daozi"] == 5 and len(d["lines"]) == 4
    assert len(d["melody"]["phrases"]) == 4
    # a lyric cut differently: --phrases
    r = cli("fit", "-", "--jianpu", TUNE, "--phrases", "12,12", input="春风吹过那山岗花开满地香\n"
            "一条小路通远方回到我家乡\n")  # fmt: skip
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    "args, says",
    [
        (["--jianpu", "1 2 x 3"], "line 1, column 5: unknown symbol 'x'"),
        (["--jianpu", TUNE, "--line-lengths", "7"], "leave --line-lengths out"),
        (["--jianpu", TUNE, "--form", "七绝"], "leave --form out"),
        (["--start", "星", "--tone-fit", "strict"], "--tone-fit needs a melody"),
        (["--start", "星", "--track", "2"], "--track picks a track of a MIDI file"),
        (["--melody", "/nonexistent/tune.mid"], "/nonexistent/tune.mid"),
        (["--jianpu", TUNE, "--phrases", "7,5"], "--phrases"),
        (["--jianpu", "1 1 1' 1 1 1", "--tone-fit", "strict"], "phrase 1, note 3 (1')"),
    ],
)
def test_melody_errors_are_one_line(trained_run, args, says):
    one_line_error(gen(trained_run, *args), says)


@pytest.mark.parametrize(
    "text, says",
    [
        ("春风\n", "1 lines but the melody has 4 phrases"),
        ("春风吹过那山\n花开满地香\n一条小路通远方\n回到我家乡\n", "line 1 has 6 characters"),
    ],
)
def test_fit_errors_are_one_line(tmp_path, text, says):
    lyric = tmp_path / "lyric.txt"
    lyric.write_text(text, encoding="utf-8")
    one_line_error(cli("fit", lyric, "--jianpu", TUNE), says)


def test_fit_needs_a_tune(tmp_path):
    lyric = tmp_path / "lyric.txt"
    lyric.write_text(LYRIC, encoding="utf-8")
    one_line_error(cli("fit", lyric), "give the tune")
    one_line_error(cli("fit", tmp_path / "none.txt", "--jianpu", TUNE), "does not exist")
