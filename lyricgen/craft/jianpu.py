"""Numbered notation (简谱) as text, in the common syntax of jianpu-ly: `parse_jianpu`.

    1=D 4/4 tempo=72 | 3 5 6 1' | 6 5 3 - | (2 3) 5 q3 q2 | 2. q1 2 - / | 0 5, 6, 1 |

Notes 1-7 (0 a rest), `#`/`b` before the digit, `'`/`,` after it for an octave up/down;
a plain note is one beat, `-` adds a beat, `q`/`_` halve it, `s`/`__` quarter it, `.` dots
it; `( )` or `~` put several notes on one syllable; `/` ends a phrase; `|` bar lines are
checked against the time signature when one is written. docs/MELODY.md is the reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lyricgen.craft.melody import MARK, REST, Melody, Note, Syllable, make_melody
from lyricgen.errors import MelodyError

DEGREES = {1: 0, 2: 2, 3: 4, 4: 5, 5: 7, 6: 9, 7: 11}  # semitones above "1"
LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
ACCIDENTALS = {"#": 1, "b": -1, "": 0}
PREFIXES = {"q": 0.5, "s": 0.25, "d": 0.125}  # jianpu-ly: quaver, semiquaver, demisemiquaver
DENOMINATORS = (1, 2, 4, 8, 16, 32)
HINT = "notes are 1-7, 0 is a rest; see docs/MELODY.md"
# what an IME types for the marks, and the Unicode accidentals
_WIDE = str.maketrans(
    {"｜": "|", "（": "(", "）": ")", "／": "/", "～": "~", "＃": "#", "－": "-", "♯": "#",
     "♭": "b", **{chr(0xFF10 + d): str(d) for d in range(10)}}
)  # fmt: skip

_END = r"(?=[\s|]|$)"
_KEY = re.compile(r"1=([#b]?)([A-Ga-g])([#b]?)" + _END)
_BAD_KEY = re.compile(r"1=\S*")
_TIME = re.compile(r"(\d+)/(\d+)" + _END)
_TEMPO = re.compile(r"(?:tempo|♩|4)=(\d+(?:\.\d+)?)" + _END, re.IGNORECASE)
_NOTE = re.compile(r"([qsd]*)([#b]?)([0-7])([',_.]*)")
_BAR = re.compile(r"\|\|?")
_WORD = re.compile(r"[^\W\d_]+")


@dataclass
class _Bar:
    """A bar's length in beats and where its closing bar line stands."""

    beats: float
    expected: float | None
    time: str
    line: int
    column: int


@dataclass
class _State:
    """The parser's running state."""

    source: str
    tonic: int = 60
    key: str = "1=C"
    first_key: tuple[int, str] | None = None
    beats_per_bar: float = 4.0
    time: str | None = None  # the time signature in force, when one was written
    first_time: float | None = None
    tempo: float | None = None
    t: float = 0.0  # the beat the next note starts
    bar_start: float = 0.0
    bars: list[_Bar] = field(default_factory=list)
    notes: list[list] = field(default_factory=list)  # [pitch, onset, duration, label]
    groups: list[list[int]] = field(default_factory=list)  # note indices per syllable
    cuts: dict[int, str] = field(default_factory=dict)
    last: str | None = None  # "note" or "rest": what `-` extends
    last_rest: list[float] | None = None
    slur: tuple[int, int] | None = None  # where an open `(` stands
    tie: tuple[int, int] | None = None  # where a pending `~` stands
    slur_notes: int = 0
    last_pos: tuple[int, int] | None = None  # where the last note or rest stands


def parse_jianpu(text: str, source: str = "--jianpu") -> Melody:
    """The melody written in numbered notation `text`, cut into phrases (docs/MELODY.md);
    errors name `source` and the line and column."""
    st = _State(source)
    for ln, line in enumerate(text.translate(_WIDE).splitlines(), 1):
        _parse_line(st, line, ln)
    if st.slur is not None:
        raise _err(st, *st.slur, "this ( is never closed; close the slur with )")
    if st.tie is not None:
        raise _err(st, *st.tie, "~ joins two notes, but no note follows it")
    if not st.groups:
        raise MelodyError(f"{source}: the melody has no notes ({HINT})")
    _check_bars(st)
    notes = [Note(p, round(o, 6), round(d, 6), lab) for p, o, d, lab in st.notes]
    syllables = [Syllable(tuple(notes[i] for i in g)) for g in st.groups]
    tonic, key = st.first_key or (60, "1=C")
    return make_melody(
        syllables,
        st.cuts,
        end=st.t,
        tonic=tonic,
        key=key,
        beats_per_bar=st.first_time if st.first_time is not None else 4.0,
        tempo=st.tempo if st.tempo is not None else 120.0,
        source=source,
    )


def _err(st: _State, line: int, column: int, message: str) -> MelodyError:
    """A one-line error at a position."""
    return MelodyError(f"{st.source}: line {line}, column {column}: {message}")


def _parse_line(st: _State, line: str, ln: int) -> None:
    """Read one line of notation into the state."""
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c.isspace():
            i += 1
            continue
        col = i + 1
        if m := _KEY.match(line, i):
            pre, letter, post = m.groups()
            if pre and post:
                raise _err(st, ln, col, f"{m.group()}: one accidental, # or b (1=bE, 1=F#)")
            acc = ACCIDENTALS[pre or post]
            st.tonic = 60 + LETTERS[letter.upper()] + acc
            st.key = "1=" + (pre or post) + letter.upper()
            if st.first_key is None:
                st.first_key = (st.tonic, st.key)
            i = m.end()
        elif m := _BAD_KEY.match(line, i):
            raise _err(
                st, ln, col,
                f"{m.group()!r} is not a key; write 1=C, 1=D, ... 1=B, or 1=bE, 1=F#",
            )  # fmt: skip
        elif m := _TIME.match(line, i):
            num, den = int(m.group(1)), int(m.group(2))
            if num < 1 or den not in DENOMINATORS:
                raise _err(
                    st, ln, col,
                    f"{m.group()} is not a time signature (4/4, 3/4, 6/8: the lower number is "
                    "1, 2, 4, 8, 16 or 32); a phrase mark between notes is written apart: "
                    "3 / 4",
                )  # fmt: skip
            if st.t > st.bar_start + 1e-9:
                raise _err(
                    st, ln, col,
                    f"{m.group()}: a time signature goes at the start of a bar; a phrase "
                    "mark between notes is written apart: 3 / 4",
                )  # fmt: skip
            st.beats_per_bar = num * 4 / den
            st.time = m.group()
            if st.first_time is None:
                st.first_time = st.beats_per_bar
            i = m.end()
        elif m := _TEMPO.match(line, i):
            bpm = float(m.group(1))
            if not 10 <= bpm <= 400:
                raise _err(st, ln, col, f"tempo {m.group(1)}: give quarter notes a minute, 10-400")
            if st.tempo is None:
                st.tempo = bpm
            i = m.end()
        elif m := _NOTE.match(line, i):
            _note(st, m, ln, col)
            i = m.end()
            if i < n and line[i] in "0123456789#bqsd":
                raise _err(
                    st, ln, i + 1, f"write notes apart, with a space: {line[col - 1 : i + 1]!r}"
                )
        elif m := _BAR.match(line, i):
            beats = st.t - st.bar_start
            if beats > 1e-9:
                st.bars.append(_Bar(beats, st.beats_per_bar if st.time else None, st.time or "",
                                    ln, col))  # fmt: skip
            st.bar_start = st.t
            i = m.end()
        elif c == "-":
            if st.last is None:
                raise _err(st, ln, col, "- holds a note a beat longer, but no note comes before it")
            if st.tie is not None:
                raise _err(st, ln, col, "~ joins two notes; put the next note after it, not -")
            if st.last == "note":
                st.notes[-1][2] += 1.0
            elif st.last_rest is not None:
                st.last_rest[0] += 1.0
            st.t += 1.0
            i += 1
        elif c == "(":
            if st.slur is not None:
                raise _err(st, ln, col, "a slur is already open here; close it with ) first")
            st.slur = (ln, col)
            st.slur_notes = 0
            i += 1
        elif c == ")":
            if st.slur is None:
                raise _err(st, ln, col, ") closes a slur, but no ( opened one")
            if st.slur_notes == 0:
                raise _err(st, ln, col, "this slur holds no notes; put notes between ( and )")
            if st.tie is not None:
                raise _err(st, *st.tie, "~ joins two notes, but no note follows it")
            st.slur = None
            i += 1
        elif c == "~":
            if st.last != "note":
                raise _err(st, ln, col, "~ joins two notes, but no note comes before it")
            if st.tie is not None:
                raise _err(st, ln, col, "~ twice; one ~ joins two notes")
            st.tie = (ln, col)
            i += 1
        elif c == "/":
            if st.slur is not None:
                raise _err(st, ln, col, "a phrase mark / inside a slur; close the slur first")
            if st.tie is not None:
                raise _err(st, ln, col, "a phrase mark / after ~; a tie cannot cross a phrase end")
            if st.groups:
                st.cuts[len(st.groups) - 1] = MARK
            i += 1
        else:
            w = _WORD.match(line, i)
            sym = w.group()[:20] if w else c
            raise _err(st, ln, col, f"unknown symbol {sym!r} ({HINT})")


def _note(st: _State, m: re.Match, ln: int, col: int) -> None:
    """A note or a rest."""
    st.last_pos = (ln, col)
    prefix, acc, digit, suffix = m.groups()
    length = 1.0
    for p in prefix:
        length *= PREFIXES[p]
    up, down = suffix.count("'"), suffix.count(",")
    dots, under = suffix.count("."), suffix.count("_")
    if up and down:
        raise _err(st, ln, col, f"{m.group()}: ' raises and , lowers an octave; use one of them")
    if dots > 2:
        raise _err(st, ln, col, f"{m.group()}: at most two dots")
    length *= 0.5**under
    length *= (1.5, 1.75, 1.875)[dots - 1] if dots else 1.0
    if digit == "0":
        if acc or up or down:
            raise _err(st, ln, col, f"{m.group()}: a rest (0) has no accidental or octave")
        if st.slur is not None:
            raise _err(st, ln, col, "a rest inside a slur; close the slur before the rest")
        if st.tie is not None:
            raise _err(st, *st.tie, "~ joins two notes, but a rest follows it")
        if st.groups:
            st.cuts.setdefault(len(st.groups) - 1, REST)
        st.last, st.last_rest = "rest", [length]
        st.t += length
        return
    octave = up - down
    pitch = st.tonic + DEGREES[int(digit)] + ACCIDENTALS[acc] + 12 * octave
    if not 0 <= pitch <= 127:
        raise _err(st, ln, col, f"{m.group()} is outside the MIDI range; use fewer octave marks")
    label = acc + digit + ("'" * up if up else "," * down)
    st.notes.append([pitch, st.t, length, label])
    index = len(st.notes) - 1
    joined = st.tie is not None or (st.slur is not None and st.slur_notes > 0)
    if joined and st.groups and st.cuts.get(len(st.groups) - 1) is None:
        st.groups[-1].append(index)
    elif st.tie is not None:
        raise _err(st, *st.tie, "~ joins two notes, but a phrase mark stands between them")
    else:
        st.groups.append([index])
    if st.slur is not None:
        st.slur_notes += 1
    st.tie = None
    st.last, st.last_rest = "note", None
    st.t += length


def _check_bars(st: _State) -> None:
    """With a time signature, every bar but the first (a pickup) and the last holds a full
    bar; none holds more."""
    for k, b in enumerate(st.bars):
        if b.expected is None or abs(b.beats - b.expected) < 1e-6:
            continue
        edge = b is st.bars[0] or (b is st.bars[-1] and st.t - st.bar_start < 1e-9)
        if b.beats < b.expected and edge:
            continue  # a pickup bar, or the closing bar of a tune that starts with one
        have = f"{b.beats:g} beat" + ("" if b.beats == 1 else "s")
        raise _err(
            st, b.line, b.column,
            f"bar {k + 1} holds {have} but {b.time} takes {b.expected:g} (a plain note is "
            "one beat, - adds one, q5 is half a beat); fix the durations or leave the time "
            "signature out",
        )  # fmt: skip
    tail = st.t - st.bar_start
    if st.time and tail > st.beats_per_bar + 1e-6 and st.last_pos is not None:
        raise _err(
            st, *st.last_pos,
            f"the last bar holds {tail:g} beats but {st.time} takes {st.beats_per_bar:g}; "
            "fix the durations or leave the time signature out",
        )  # fmt: skip
