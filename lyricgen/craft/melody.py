"""A melody to write lyrics to (填词): notes, the syllables they are sung on, and phrases.

A `Melody` is a list of `Phrase`s; a phrase is the syllables of one lyric line; a syllable
is the notes one character is sung on (one note, or several under a slur: a melisma); a
`Note` has its MIDI pitch, onset and duration in beats (quarter notes) and its label in
numbered notation (简谱) relative to the key.

A tune is read from numbered notation (`lyricgen.craft.jianpu`) or a MIDI file
(`lyricgen.craft.midi`, through mido, imported only there); `lyricgen.craft.melody_io.load_melody` takes either.
Both cut the syllables into phrases by one rule (`make_melody`, docs/MELODY.md):

1. at every explicit phrase mark `/` (numbered notation);
2. at every rest: a `0` in numbered notation, a gap of at least REST_GAP beats in MIDI;
3. after a long note: a syllable of at least LONG_NOTE beats and at least twice the
   tune's median syllable, when the phrase so far has at least 3 syllables.

Then a phrase of 1-2 syllables joins the phrase after it (the one before, at the end),
unless a `/` cut it; a phrase of more than MAX_PHRASE syllables is cut in two at its
longest note near the middle. A phrase whose first pitches move by the same intervals as
an earlier phrase's (the same notes, or the same notes transposed) is a repeat of it
(`Phrase.repeat_of`), so a lyricist can see which lines share a tune.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field

from lyricgen.errors import MelodyError

log = logging.getLogger(__name__)

MAX_PHRASE = 24  # syllables in one phrase (one lyric line) before it is cut in two
MAX_SYLLABLES = 400  # syllables in a whole tune
REST_GAP = 0.5  # beats of silence between two MIDI notes that count as a rest
LONG_NOTE = 2.0  # beats: a syllable this long (and twice the median) ends a phrase
MIN_PHRASE = 3  # a phrase shorter than this joins a neighbour (unless a `/` cut it)

# cut kinds, in `make_melody`'s `cuts`
MARK = "mark"  # an explicit `/`
REST = "rest"  # a rest
LONG = "long"  # after a long note (set by the rule itself)
END = "end"  # the end of the tune


@dataclass(frozen=True)
class Note:
    """One note: MIDI pitch, onset and duration in beats, and its numbered-notation label."""

    pitch: int  # MIDI note number (60 = middle C)
    onset: float  # beats (quarter notes) from the start of the tune
    duration: float  # beats
    label: str  # the note in numbered notation relative to the key: "5", "1'", "6,", "#4"

    @property
    def end(self) -> float:
        """The beat the note stops sounding."""
        return self.onset + self.duration


@dataclass(frozen=True)
class Syllable:
    """The notes one character is sung on (several under a slur: a melisma)."""

    notes: tuple[Note, ...]

    def __post_init__(self) -> None:
        if not self.notes:
            raise ValueError("a syllable needs at least one note")

    @property
    def first_pitch(self) -> int:
        """The pitch the character starts on."""
        return self.notes[0].pitch

    @property
    def last_pitch(self) -> int:
        """The pitch the character ends on (the step into the next one starts here)."""
        return self.notes[-1].pitch

    @property
    def label(self) -> str:
        """The note's label, or the slurred notes' labels in brackets: "5", "(5 6)"."""
        if len(self.notes) == 1:
            return self.notes[0].label
        return "(" + " ".join(n.label for n in self.notes) + ")"

    @property
    def onset(self) -> float:
        """The beat the character starts."""
        return self.notes[0].onset

    @property
    def end(self) -> float:
        """The beat the character's last note stops."""
        return self.notes[-1].end

    @property
    def duration(self) -> float:
        """Beats from the first note's onset to the last note's end."""
        return self.end - self.onset


@dataclass(frozen=True)
class Phrase:
    """The syllables of one lyric line, the rest after them, and the phrase they repeat."""

    syllables: tuple[Syllable, ...]
    rest_after: float = 0.0  # beats of rest after the phrase
    repeat_of: int | None = None  # index of the first earlier phrase with the same notes

    @property
    def length(self) -> int:
        """The number of syllables (characters of the line)."""
        return len(self.syllables)

    @property
    def direction(self) -> int:
        """+1 if the phrase's last note is higher than its first, -1 if lower, 0 if equal."""
        first = self.syllables[0].first_pitch
        last = self.syllables[-1].last_pitch
        return (last > first) - (last < first)

    def intervals(self) -> tuple[int, ...]:
        """Semitones between the first pitches of consecutive syllables (repeat detection)."""
        p = [s.first_pitch for s in self.syllables]
        return tuple(b - a for a, b in zip(p, p[1:], strict=False))


@dataclass
class Melody:
    """A tune cut into phrases, with its key, metre, tempo and where it came from."""

    phrases: list[Phrase]
    tonic: int = 60  # MIDI pitch of "1" (1=C -> 60)
    key: str = "1=C"
    beats_per_bar: float = 4.0
    tempo: float = 120.0  # quarter notes per minute
    source: str = ""  # file name or "--jianpu"
    track: int | None = field(default=None, compare=False)  # the MIDI track read (1-based)

    def lengths(self) -> list[int]:
        """Syllables per phrase."""
        return [p.length for p in self.phrases]

    def syllables(self) -> list[Syllable]:
        """All syllables, in order."""
        return [s for p in self.phrases for s in p.syllables]

    def notes(self) -> list[Note]:
        """All notes, in order."""
        return [n for s in self.syllables() for n in s.notes]

    def steps(self) -> list[list[int | None]]:
        """Per phrase, per syllable: semitones from the previous syllable's last note to this
        syllable's first note (across phrases too); None for the tune's first syllable."""
        out: list[list[int | None]] = []
        prev: int | None = None
        for p in self.phrases:
            row: list[int | None] = []
            for s in p.syllables:
                row.append(None if prev is None else s.first_pitch - prev)
                prev = s.last_pitch
            out.append(row)
        return out

    def regroup(self, lengths: list[int]) -> Melody:
        """The same syllables cut into phrases of `lengths` (--phrases), repeats marked anew."""
        syllables = self.syllables()
        if any(not isinstance(n, int) or n < 1 for n in lengths) or not lengths:
            raise MelodyError(
                f"--phrases {','.join(map(str, lengths))}: every phrase needs at least one "
                "note; give positive numbers such as 8,8,7,9"
            )
        if sum(lengths) != len(syllables):
            raise MelodyError(
                f"--phrases adds up to {sum(lengths)} notes but the melody has "
                f"{len(syllables)} syllables; make the lengths add up to {len(syllables)}"
            )
        tail = self.phrases[-1].rest_after if self.phrases else 0.0
        groups, at = [], 0
        for n in lengths:
            groups.append(tuple(syllables[at : at + n]))
            at += n
        phrases = _phrases(groups, tail)
        return Melody(
            mark_repeats(phrases), self.tonic, self.key, self.beats_per_bar, self.tempo,
            self.source, self.track,
        )  # fmt: skip

    def to_dict(self) -> dict:
        """JSON-friendly: key, metre, tempo, and per phrase its syllables (label and, per
        note, pitches, onsets and durations in beats), rest after and repeat_of."""
        return {
            "key": self.key,
            "tonic": self.tonic,
            "beats_per_bar": self.beats_per_bar,
            "tempo": self.tempo,
            "source": self.source,
            "track": self.track,
            "lengths": self.lengths(),
            "phrases": [
                {
                    "length": p.length,
                    "direction": p.direction,
                    "rest_after": _num(p.rest_after),
                    "repeat_of": p.repeat_of,
                    "syllables": [
                        {
                            "label": s.label,
                            "pitches": [n.pitch for n in s.notes],
                            "onsets": [_num(n.onset) for n in s.notes],
                            "durations": [_num(n.duration) for n in s.notes],
                        }
                        for s in p.syllables
                    ],
                }
                for p in self.phrases
            ],
        }


def _num(x: float) -> float | int:
    """A beat count for JSON: an int when whole, else rounded to 4 places."""
    r = round(x, 4)
    return int(r) if r == int(r) else r


def _phrases(groups: list[tuple[Syllable, ...]], tail: float = 0.0) -> list[Phrase]:
    """Phrases of these syllable groups, each with the rest between it and the next."""
    out = []
    for i, g in enumerate(groups):
        rest = groups[i + 1][0].onset - g[-1].end if i + 1 < len(groups) else tail
        out.append(Phrase(g, max(0.0, round(rest, 6))))
    return out


def mark_repeats(phrases: list[Phrase]) -> list[Phrase]:
    """The phrases with `repeat_of` set: the first earlier phrase with as many syllables and
    the same intervals between first pitches (the same notes, or transposed)."""
    first: dict[tuple[int, ...], int] = {}
    out = []
    for j, p in enumerate(phrases):
        i = first.setdefault(p.intervals(), j)
        out.append(Phrase(p.syllables, p.rest_after, i if i < j else None))
    return out


def _long(s: Syllable, median: float) -> bool:
    """Whether a syllable is long enough to end a phrase (rule 3)."""
    return s.duration >= LONG_NOTE - 1e-9 and s.duration >= 2 * median - 1e-9


def make_melody(
    syllables: list[Syllable],
    cuts: dict[int, str] | None = None,
    *,
    end: float | None = None,
    tonic: int = 60,
    key: str = "1=C",
    beats_per_bar: float = 4.0,
    tempo: float = 120.0,
    source: str = "",
    track: int | None = None,
) -> Melody:
    """A melody of these syllables cut into phrases by the phrase rule; `cuts` maps a
    syllable's index to MARK or REST when a `/` or a rest follows it; `end` is the beat the
    tune ends (trailing rests), by default its last note's end."""
    if not syllables:
        raise MelodyError(f"{source}: the melody has no notes; write the tune (see docs/MELODY.md)")
    if len(syllables) > MAX_SYLLABLES:
        raise MelodyError(
            f"{source}: the melody has {len(syllables)} notes; at most {MAX_SYLLABLES} make "
            "one lyric: give part of the tune"
        )
    cuts = dict(cuts or {})
    median = statistics.median(s.duration for s in syllables)
    # (1)-(3): segments as [start, stop, kind of the cut that ends it]
    segs: list[list] = []
    start = 0
    for i, s in enumerate(syllables):
        kind = cuts.get(i)
        if kind is None and i - start + 1 >= MIN_PHRASE and _long(s, median):
            kind = LONG
        if kind is None and i == len(syllables) - 1:
            kind = END
        if kind is not None:
            segs.append([start, i + 1, kind])
            start = i + 1
    # merge: a phrase of 1-2 syllables joins the next (the previous, at the end) unless a
    # `/` cut it (a `/` between it and the previous one keeps them apart too)
    i = 0
    while i < len(segs):
        a, b, kind = segs[i]
        if b - a < MIN_PHRASE and kind != MARK:
            if i + 1 < len(segs):
                segs[i + 1][0] = a
                del segs[i]
                continue
            if i > 0 and segs[i - 1][2] != MARK:
                segs[i - 1][1:] = [b, kind]
                del segs[i]
                continue
        i += 1
    # a phrase longer than MAX_PHRASE: cut at its longest note near the middle
    bounds: list[tuple[int, int]] = []
    for a, b, _ in segs:
        bounds.extend(_split_long(syllables, a, b))
    groups = [tuple(syllables[a:b]) for a, b in bounds]
    last_end = syllables[-1].end
    tail = max(0.0, (end if end is not None else last_end) - last_end)
    phrases = mark_repeats(_phrases(groups, tail))
    return Melody(phrases, tonic, key, beats_per_bar, tempo, source, track)


def _split_long(syllables: list[Syllable], a: int, b: int) -> list[tuple[int, int]]:
    """[a, b) cut at the longest syllable of its middle third until no part is longer than
    MAX_PHRASE (the nearest the middle wins a tie)."""
    n = b - a
    if n <= MAX_PHRASE:
        return [(a, b)]
    mid = a + n / 2
    lo, hi = a + n // 3, a + (2 * n) // 3  # cut after syllable k, k in [lo, hi)
    k = max(range(lo, hi), key=lambda k: (syllables[k].duration, -abs(k + 1 - mid)))
    log.info(
        "a phrase of %d notes (over %d) is cut in two after note %d; give --phrases to cut "
        "it yourself", n, MAX_PHRASE, k + 1 - a,
    )  # fmt: skip
    return _split_long(syllables, a, k + 1) + _split_long(syllables, k + 1, b)
