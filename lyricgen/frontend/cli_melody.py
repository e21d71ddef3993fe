"""Lyrics and a melody (填词) in the terminal: `lyricgen fit`, and what `generate --melody`
shows: each line under its notes in numbered notation, the unacceptable steps (倒字)
marked, and a count."""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lyricgen.errors import LyricgenError, MelodyError
from lyricgen.frontend.cli_common import app

if TYPE_CHECKING:
    from lyricgen.craft.melody import Melody
    from lyricgen.craft.tonefit import Fit

MelodyOption = Annotated[
    Path | None,
    typer.Option(
        "--melody",
        help="填词: the tune, as a MIDI file (the melody extra) or a text file of numbered "
        "notation (docs/MELODY.md); each phrase becomes a line.",
    ),
]
TrackOption = Annotated[
    int | None,
    typer.Option(help="The MIDI track that holds the tune (1-based; default: the melody line)."),
]
MidiOutOption = Annotated[
    Path | None,
    typer.Option(help="Also write the tune with the lyric attached as a MIDI file (melody extra)."),
]


def read_melody(path: Path | None, jianpu: str | None, track: int | None,
                phrases: str | None = None) -> Melody | None:  # fmt: skip
    """The melody of --melody FILE (or --jianpu, for `fit`), cut by --phrases; None when
    neither is given. One-line errors."""
    if path is not None and jianpu is not None:
        raise MelodyError("--melody and --jianpu both give a tune; give one")
    if track is not None and path is None:
        raise MelodyError("--track picks a track of a MIDI file; give --melody FILE.mid")
    if path is None and jianpu is None:
        return None
    from lyricgen.craft.melody_io import load_melody

    cut = None
    if phrases is not None:
        from lyricgen.craft.forms import parse_line_lengths
        from lyricgen.craft.options import SamplingOptions

        SamplingOptions(phrases=phrases).validate()  # a one-line error naming --phrases
        cut = parse_line_lengths(phrases)
    try:
        return load_melody(path, jianpu, track=track, phrases=cut)
    except ImportError:
        raise MelodyError(
            "reading MIDI needs mido: pip install 'lyricgen[melody]' (numbered notation "
            "needs nothing)"
        ) from None


def _width(text: str) -> int:
    """Terminal columns: Han characters and full-width marks take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def render(fit: Fit, lines: list[str] | None = None) -> str:
    """Each line under its notes; a ^ under every character on an unacceptable step (倒字).
    `lines`: the text's own lines (with their punctuation), else the characters alone."""
    from lyricgen.craft.tonefit import UNACCEPTABLE

    out = []
    for i, chars in enumerate(fit.lines):
        notes, words, marks = [], [], []
        for c in chars:
            w = max(_width(c.note), 2) + 1
            notes.append(c.note + " " * (w - _width(c.note)))
            words.append(c.char + " " * (w - 2))
            marks.append(("^^" if c.klass == UNACCEPTABLE else "  ") + " " * (w - 2))
        out.append("".join(notes).rstrip())
        text = "".join(words).rstrip()
        if lines is not None and i < len(lines):
            tail = lines[i].rstrip()[-1:]
            if tail and not unicodedata.category(tail).startswith("L"):
                text += tail  # the line's closing mark
        out.append(text)
        if any(c.klass == UNACCEPTABLE for c in chars):
            out.append("".join(marks).rstrip())
    return "\n".join(out)


def summary(fit: Fit) -> str:
    """One line: 倒字 and how the steps fall, and the contour misses."""
    s = fit.summary()
    n = s["scored"]
    text = (
        f"倒字 (unacceptable steps): {s['daozi']} of {n} characters; good {s['good']}, "
        f"acceptable {s['acceptable']}, poor {s['poor']}"
    )
    if s["contour_misses"]:
        text += "; contour against the tune in line " + ",".join(map(str, s["contour_misses"]))
    phrases = fit.melody.phrases if fit.melody is not None else []
    repeats = [f"{j + 1} repeats {p.repeat_of + 1}" for j, p in enumerate(phrases)
               if p.repeat_of is not None]  # fmt: skip
    if repeats:
        text += "; phrase " + ", ".join(repeats)
    return text


@app.command("fit")
def fit_command(
    lyrics: Annotated[
        Path, typer.Argument(help="The lyric: a text file, one line per phrase (- for stdin).")
    ],
    melody: MelodyOption = None,
    jianpu: Annotated[
        str | None, typer.Option(help="The tune in numbered notation, instead of --melody.")
    ] = None,
    track: TrackOption = None,
    phrases: Annotated[
        str | None, typer.Option(help="Cut the tune into phrases of these lengths: 8,8,7,9.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    midi_out: MidiOutOption = None,
) -> None:
    """Score a lyric against a melody: each character's tone against the step into its note
    (ReLyMe's table), the 倒字 counted and marked."""
    from lyricgen.craft.tonefit import fit_lyrics, split_lyric
    from lyricgen.frontend.cli_common import _read_draft

    if melody is None and jianpu is None:
        raise MelodyError("give the tune: --melody FILE (MIDI or numbered notation) or --jianpu")
    text = _read_draft(lyrics)
    tune = read_melody(melody, jianpu, track, phrases)
    if not split_lyric(text):
        raise LyricgenError(f"{lyrics} holds no lyric; write one line per phrase")
    fit = fit_lyrics(text, tune)
    if midi_out is not None:
        write_midi_out(tune, [c.char for ln in fit.lines for c in ln], midi_out)
    if as_json:
        typer.echo(json.dumps({"melody": tune.to_dict(), **fit.to_dict()}, ensure_ascii=False))
        return
    typer.echo(render(fit, split_lyric(text)))
    typer.echo(summary(fit), err=True)


def write_midi_out(melody: Melody, chars: list[str], path: Path) -> None:
    """--midi-out: the tune with the lyric's characters as lyric events."""
    try:
        from lyricgen.craft.midi import write_midi
    except ImportError:  # pragma: no cover - the module itself imports mido lazily
        raise MelodyError("--midi-out needs mido: pip install 'lyricgen[melody]'") from None
    try:
        write_midi(melody, chars, path)
    except ImportError:
        raise MelodyError("--midi-out needs mido: pip install 'lyricgen[melody]'") from None
    except OSError as exc:
        raise MelodyError(f"cannot write {path} ({exc.strerror})") from None
    print(f"wrote {path}", file=sys.stderr)
