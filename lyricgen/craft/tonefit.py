"""Tones that follow the tune (填词): each character's Mandarin tone against the pitch step
into its note, scored by ReLyMe's rule table.

In Mandarin a melody that moves against a syllable's tone makes the word heard as another
word (倒字): a falling 去声 sung on a rising step, a rising 阳平 on a falling one. ReLyMe
(Zhang et al., ACM MM 2022; microsoft/muzic `relyme/score/config.py`, MIT licence, credited
in docs/CREDITS.md) writes the lyricist's rule down as a table: for each pair of consecutive
tones (the previous character's, this one's), the ranges of the pitch step, in semitones
from the last note of the previous character to the first note of this one, that are
**good**, **acceptable** and **poor**; a step outside all three is **unacceptable**. The
table is ReLyMe's, unchanged (RANGES); the tone classes are pypinyin's readings, the neutral
tone (轻声) its own class, as in ReLyMe. Tone sandhi (3-3 sung 2-3, 一 and 不) is not
applied, as ReLyMe does not.

Every character but the tune's first is scored, across phrase boundaries too (ReLyMe scores
each character after the first, rests or not). A phrase's last character counts
PHRASE_END_WEIGHT times in the soft cost: a phrase end is held, and heard.

The contour (ReLyMe's other pitch rule): a phrase whose tune ends lower than it began closes
a statement, one that ends higher asks or goes on. A line that ends a question (？, 吗, 呢)
on a falling phrase, or a statement (。, ！) on a rising one, is a contour mismatch, a soft
cost in the line ranking.

Readings: a character written alone takes pypinyin's first reading (its single-character
dictionary, the reading the generation masks use); a lyric being scored is read a line at
a time with pypinyin's phrase dictionary (`line_tones`), which knows 长城 from 长大.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from lyricgen.craft.constraints import Constraint, SampleState, TokenTable
from lyricgen.craft.rhyme import is_han

if TYPE_CHECKING:
    from lyricgen.craft.melody import Melody

TONE_NAMES = ("阴平", "阳平", "上声", "去声", "轻声")  # tone classes 0-4
CLASS_NAMES = ("good", "acceptable", "poor", "unacceptable")
GOOD, ACCEPTABLE, POOR, UNACCEPTABLE = range(4)
NEUTRAL = 4

# ReLyMe's table (microsoft/muzic, relyme/score/config.py, `interval_range`), unchanged:
# RANGES[previous tone][this tone] = ((lo, hi) good, (lo, hi) acceptable, (lo, hi) poor), in
# semitones from the previous character's last note to this character's first note,
# inclusive; tones 0-3 are 阴平 阳平 上声 去声 and 4 the neutral tone.
RANGES: tuple[tuple[tuple[tuple[int, int], ...], ...], ...] = (
    (((0, 1), (-1, 2), (-3, 4)), ((-5, -4), (-8, -3), (-10, -1)),
     ((-7, -6), (-12, -5), (-14, -2)), ((-4, -3), (-6, 1), (-8, 3)),
     ((-7, -6), (-12, -3), (-14, -1))),
    (((2, 3), (2, 5), (1, 7)), ((-2, -1), (-3, 1), (-5, 3)), ((-4, -3), (-6, 1), (-8, 3)),
     ((1, 2), (-1, 3), (-3, 6)), ((-4, -3), (-6, 1), (-8, 3))),
    (((4, 5), (3, 9), (1, 10)), ((1, 2), (-1, 2), (-3, 5)), ((-4, -3), (-6, 1), (-8, 3)),
     ((3, 4), (0, 7), (-2, 8)), ((1, 2), (-1, 3), (-3, 5))),
    (((-1, 0), (-2, 2), (-4, 4)), ((-4, -3), (-7, -1), (-9, 1)),
     ((-7, -6), (-12, -3), (-14, 0)), ((-6, -3), (-7, 1), (-12, 3)),
     ((-7, -6), (-12, -3), (-14, 0))),
    (((2, 3), (2, 5), (1, 7)), ((1, 2), (-1, 3), (-3, 6)), ((-4, 3), (-6, 1), (-8, 3)),
     ((2, 3), (2, 5), (1, 7)), ((2, 3), (2, 5), (1, 7))),
)  # fmt: skip

STEP_LIMIT = 24  # steps beyond two octaves count as two octaves (every table range is inside)

# The soft cost of each class, in nats per character of the line's mean log-probability
# (the line ranking) and in logits (each token's choice); measured in docs/BENCHMARKS.md
# ("Lyrics to a melody"): the weight that brings unacceptable steps under a third of free
# text's at the least cost in perplexity.
CLASS_COST = (0.0, 0.05, 0.3, 2.5)
TOKEN_WEIGHT = 1.0  # times CLASS_COST, subtracted from a token's logit
LINE_WEIGHT = 1.0  # times the mean CLASS_COST of a line, subtracted from its score
PHRASE_END_WEIGHT = 2.0  # a phrase's last character counts this many times
CONTOUR_COST = 0.3  # a line whose ending contradicts its phrase's contour
TONE_FIT = ("soft", "strict", "off")

QUESTION_ENDS = frozenset("？?吗呢么嘛")
STATEMENT_ENDS = frozenset("。！!")


def _table() -> np.ndarray:
    """CLASS[prev, tone, step + STEP_LIMIT] for every step in [-STEP_LIMIT, STEP_LIMIT]."""
    out = np.full((5, 5, 2 * STEP_LIMIT + 1), UNACCEPTABLE, dtype=np.int8)
    for a in range(5):
        for b in range(5):
            for c in range(2, -1, -1):  # the better class wins where ranges overlap
                lo, hi = RANGES[a][b][c]
                out[a, b, lo + STEP_LIMIT : hi + STEP_LIMIT + 1] = c
    return out


CLASS = _table()


def classify(prev_tone: int, tone: int, step: int) -> int:
    """The class (GOOD .. UNACCEPTABLE) of singing `tone` after `prev_tone` on a step of
    `step` semitones."""
    s = max(-STEP_LIMIT, min(STEP_LIMIT, int(step)))
    return int(CLASS[prev_tone, tone, s + STEP_LIMIT])


def _tone_of_reading(reading: str) -> int:
    """Tone class of one pypinyin reading with tone marks (no mark: the neutral tone)."""
    import unicodedata

    for ch in unicodedata.normalize("NFD", reading):
        mark = {"\u0304": 0, "\u0301": 1, "\u030c": 2, "\u0300": 3}.get(ch)
        if mark is not None:
            return mark
    return NEUTRAL


@functools.lru_cache(maxsize=1 << 16)
def char_tone(ch: str) -> int | None:
    """The tone class of a Han character's first reading in pypinyin's single-character
    dictionary (the reading pypinyin gives it alone), or None when it has none."""
    from pypinyin.constants import PINYIN_DICT

    readings = PINYIN_DICT.get(ord(ch))
    if not readings:
        return None
    return _tone_of_reading(readings.split(",")[0])


def line_tones(text: str) -> list[int | None]:
    """The tone class of each Han character of `text`, read in context with pypinyin's phrase
    dictionary (None where pypinyin has no reading)."""
    from pypinyin import Style, lazy_pinyin

    han = [c for c in text if is_han(c)]
    if not han:
        return []
    out: list[int | None] = []
    readings = lazy_pinyin("".join(han), style=Style.TONE3, neutral_tone_with_five=True,
                           errors=lambda s: ["-"] * len(s))  # fmt: skip
    for r in readings:
        if not r[-1:].isdigit():
            out.append(None)
        else:
            out.append(int(r[-1]) - 1)
    return out


# ---------------------------------------------------------------------------------------
# scoring a lyric against a tune


@dataclass
class CharFit:
    """One character sung to its syllable of the tune."""

    char: str
    note: str  # the syllable's notes in numbered notation ("5", "(5 6)")
    pitch: int  # the first note's MIDI pitch
    tone: int | None
    step: int | None  # semitones from the previous character's last note (None: the first)
    klass: int | None  # GOOD .. UNACCEPTABLE (None: not scored)
    phrase_end: bool = False

    def to_dict(self) -> dict:
        return {
            "char": self.char,
            "note": self.note,
            "pitch": self.pitch,
            "tone": TONE_NAMES[self.tone] if self.tone is not None else None,
            "step": self.step,
            "fit": CLASS_NAMES[self.klass] if self.klass is not None else None,
        }


@dataclass
class Fit:
    """A lyric against a tune: one `CharFit` per character, line by line (a line per
    phrase), and the phrases whose line ending goes against their contour."""

    lines: list[list[CharFit]] = field(default_factory=list)
    contour_misses: list[int] = field(default_factory=list)  # phrase indices
    melody: Melody | None = None  # the tune, cut into the phrases the lines were fitted to

    @property
    def scored(self) -> int:
        return sum(1 for ln in self.lines for c in ln if c.klass is not None)

    def count(self, klass: int) -> int:
        return sum(1 for ln in self.lines for c in ln if c.klass == klass)

    @property
    def daozi(self) -> int:
        """倒字: characters on an unacceptable step."""
        return self.count(UNACCEPTABLE)

    def summary(self) -> dict:
        n = self.scored
        return {
            "scored": n,
            **{name: self.count(i) for i, name in enumerate(CLASS_NAMES)},
            "daozi": self.daozi,
            "daozi_rate": round(self.daozi / n, 4) if n else 0.0,
            "contour_misses": [i + 1 for i in self.contour_misses],
        }

    def to_dict(self) -> dict:
        return {
            "summary": self.summary(),
            "lines": [[c.to_dict() for c in ln] for ln in self.lines],
        }


def split_lyric(text: str) -> list[str]:
    """A lyric's lines, blank lines dropped."""
    return [ln for ln in text.splitlines() if ln.strip()]


def fit_lyrics(text: str, melody: Melody, *, strict_lengths: bool = True) -> Fit:
    """Score `text` (one line per phrase; each Han character one syllable) against
    `melody`. With `strict_lengths`, a line whose Han characters are not its phrase's
    syllables is a MelodyError naming the line; else the characters are laid on the
    syllables in order, line breaks aside."""
    from lyricgen.errors import MelodyError

    lines = split_lyric(text)
    lengths = melody.lengths()
    counts = [sum(is_han(c) for c in ln) for ln in lines]
    if strict_lengths:
        if len(lines) != len(lengths):
            raise MelodyError(
                f"the lyric has {len(lines)} lines but the melody has {len(lengths)} phrases "
                f"({','.join(map(str, lengths))}); write one line per phrase, or give "
                "--phrases to cut the melody as the lyric is"
            )
        for i, (n, want) in enumerate(zip(counts, lengths, strict=True)):
            if n != want:
                raise MelodyError(
                    f"line {i + 1} has {n} characters but phrase {i + 1} has {want} notes; "
                    "one character per note (a slur gives several notes to one)"
                )
    elif sum(counts) != sum(lengths):
        raise MelodyError(
            f"the lyric has {sum(counts)} characters but the melody has {sum(lengths)} "
            "syllables; one character per syllable"
        )
    chars = [c for ln in lines for c in ln if is_han(c)]
    tones = [t for ln in lines for t in line_tones(ln)]
    steps = [s for ph in melody.steps() for s in ph]
    syllables = melody.syllables()
    ends = set(np.cumsum(lengths) - 1)
    fit = Fit(melody=melody)
    flat: list[CharFit] = []
    for i, (ch, tone, step, syl) in enumerate(zip(chars, tones, steps, syllables, strict=True)):
        prev = tones[i - 1] if i else None
        klass = None
        if step is not None and tone is not None and prev is not None:
            klass = classify(prev, tone, step)
        flat.append(CharFit(ch, syl.label, syl.first_pitch, tone, step, klass, i in ends))
    at = 0
    for n in lengths:
        fit.lines.append(flat[at : at + n])
        at += n
    if strict_lengths:
        for i, (ln, ph) in enumerate(zip(lines, melody.phrases, strict=True)):
            if contour_miss(ln, ph.direction):
                fit.contour_misses.append(i)
    return fit


def line_ending(text: str) -> str | None:
    """'question', 'statement' or None (unmarked): how a line ends."""
    t = text.rstrip()
    if not t:
        return None
    if t[-1] in QUESTION_ENDS:
        return "question"
    if t[-1] in STATEMENT_ENDS:
        return "statement"
    return None


def contour_miss(text: str, direction: int) -> bool:
    """A question on a phrase that falls, or a statement on one that rises."""
    end = line_ending(text)
    return (end == "question" and direction < 0) or (end == "statement" and direction > 0)


# ---------------------------------------------------------------------------------------
# generation: the constraint


@dataclass
class TuneState:
    prev_tone: int | None = None  # the tone of the last Han character written

    def copy(self) -> TuneState:
        return TuneState(self.prev_tone)


class TuneFit(Constraint):
    """The tones of each line follow its phrase of the tune. `strict` masks every token whose
    characters would stand on an unacceptable step (a hard constraint, like a form's tones);
    `soft` only biases the choice (`bias`) and the line ranking (`line_cost`). Lines are the
    melody's phrases (the request's line lengths); a token of several Han characters is
    scored character by character on the notes it covers."""

    def __init__(self, table: TokenTable, melody: Melody, mode: str):
        self.table, self.mode = table, mode
        self.hard = mode == "strict"
        self.steps = melody.steps()  # per line, per syllable
        self.lengths = melody.lengths()
        self.directions = [p.direction for p in melody.phrases]
        width = max(1, int(table.han[table.in_line].max(initial=1)))
        tones = np.full((table.size, width), -1, dtype=np.int64)
        for i, tok in enumerate(table.vocab.itos):
            if not table.in_line[i]:
                continue
            han = [c for c in tok if is_han(c)]
            for j, c in enumerate(han[:width]):
                t = char_tone(c)
                tones[i, j] = NEUTRAL if t is None else t
        self.tones = tones  # (V, W): each token's Han characters' tones, -1 past its end
        self.last = np.array(
            [row[row >= 0][-1] if (row >= 0).any() else -1 for row in tones], dtype=np.int64
        )
        self._cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self.flat = [s for line in self.steps for s in line]
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)]).astype(int)
        self.tail = self._fillable(melody) if self.hard else None

    def _fillable(self, melody: Melody) -> list[np.ndarray]:
        """tail[i] (5,): the tones a character on syllable i may have so that the syllables
        after it can still be sung without an unacceptable step (a backward pass over the
        tone classes); a step no tone pair can take is a one-line error naming it."""
        from lyricgen.errors import MelodyError

        present = np.zeros(5, dtype=bool)
        present[np.unique(self.tones[self.tones >= 0])] = True
        n = len(self.flat)
        tail = [np.ones(5, dtype=bool) for _ in range(n)]
        for i in range(n - 2, -1, -1):
            step = self.flat[i + 1]
            if step is None:
                continue
            s = max(-STEP_LIMIT, min(STEP_LIMIT, int(step))) + STEP_LIMIT
            ok = (CLASS[:, :, s] < UNACCEPTABLE) & (present & tail[i + 1])[None, :]
            tail[i] = ok.any(axis=1) & present
            if not tail[i].any():
                line = int(np.searchsorted(self.offsets, i + 1, side="right")) - 1
                note = i + 1 - self.offsets[line]
                label = melody.syllables()[i + 1].label
                raise MelodyError(
                    f"phrase {line + 1}, note {note + 1} ({label}): a step of {step:+d} "
                    "semitones that no tone can be sung on without 倒字 under --tone-fit "
                    "strict (ReLyMe's table); use --tone-fit soft for this melody"
                )
        return tail

    def start(self) -> TuneState:
        return TuneState()

    def _where(self, row: SampleState) -> tuple[int, int] | None:
        line, pos = row.lines_done, row.line_chars
        if line >= len(self.steps) or pos >= len(self.steps[line]):
            return None
        return line, pos

    def _classes(self, prev: int | None, line: int, pos: int) -> tuple[np.ndarray, np.ndarray]:
        """(worst class (V,), soft cost (V,)) of each token written at (line, pos) after a
        character of tone `prev`; -1 where nothing is scored."""
        key = (prev, line, pos)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        size, width = self.tones.shape
        worst = np.full(size, -1, dtype=np.int64)
        cost = np.zeros(size)
        steps = self.steps[line]
        prev_t = np.full(size, -1 if prev is None else prev, dtype=np.int64)
        costs = np.asarray(CLASS_COST)
        for j in range(width):
            if pos + j >= len(steps):
                break
            cur = self.tones[:, j]
            step = steps[pos + j]
            scored = (cur >= 0) & (prev_t >= 0)
            if step is not None and scored.any():
                s = max(-STEP_LIMIT, min(STEP_LIMIT, int(step))) + STEP_LIMIT
                k = np.where(scored, CLASS[np.maximum(prev_t, 0), np.maximum(cur, 0), s], -1)
                worst = np.maximum(worst, k)
                w = PHRASE_END_WEIGHT if pos + j == len(steps) - 1 else 1.0
                cost += np.where(k >= 0, costs[np.maximum(k, 0)], 0.0) * w
            prev_t = np.where(cur >= 0, cur, prev_t)
        self._cache[key] = (worst, cost)
        return worst, cost

    def restrict(self, row: SampleState, state: TuneState, ok: np.ndarray) -> None:
        if not self.hard:
            return
        where = self._where(row)
        if where is None:
            return
        worst, _ = self._classes(state.prev_tone, *where)
        ok &= worst < UNACCEPTABLE
        # the token's last character must leave the rest of the tune singable
        first = self.offsets[where[0]] + where[1]
        han = self.table.han
        for length in range(1, self.tones.shape[1] + 1):
            end = first + length - 1
            if end >= len(self.tail):
                break
            sized = ok & (han == length)
            if sized.any():
                last = np.maximum(self.last, 0)
                ok &= ~sized | self.tail[end][last]

    def bias(self, row: SampleState, state: TuneState) -> np.ndarray | None:
        """What to subtract from each token's logit (soft and strict alike: among the
        acceptable steps, the good ones are preferred)."""
        where = self._where(row)
        if where is None or state.prev_tone is None:
            return None
        return self._classes(state.prev_tone, *where)[1] * TOKEN_WEIGHT

    def observe(self, row: SampleState, state: TuneState, token: int) -> None:
        t = int(self.last[token])
        if t >= 0:
            state.prev_tone = t


def line_cost(line_text: str, prev_char: str | None, line: int, melody_steps, directions,
              strict: bool) -> float:  # fmt: skip
    """The soft cost of a finished line against its phrase, read in context (the ranking of
    line candidates): LINE_WEIGHT times the mean class cost (a phrase end weighted
    PHRASE_END_WEIGHT) plus CONTOUR_COST for a contour mismatch; under `strict`, infinite
    where a character read in context stands on an unacceptable step (the masks read each
    character alone, and 长 alone is zhǎng)."""
    if line >= len(melody_steps):
        return 0.0
    han = [c for c in line_text if is_han(c)]
    steps = melody_steps[line]
    if not han or len(han) != len(steps):
        return 0.0
    tones = line_tones(("" if prev_char is None else prev_char) + "".join(han))
    if prev_char is None:
        tones = [None, *tones]
    total, weight = 0.0, 0.0
    for j, step in enumerate(steps):
        prev, cur = tones[j], tones[j + 1]
        w = PHRASE_END_WEIGHT if j == len(steps) - 1 else 1.0
        weight += w
        if step is None or prev is None or cur is None:
            continue
        k = classify(prev, cur, step)
        if strict and k == UNACCEPTABLE:
            return float("inf")
        total += CLASS_COST[k] * w
    cost = LINE_WEIGHT * total / max(weight, 1.0)
    if contour_miss(line_text, directions[line]):
        cost += CONTOUR_COST
    return cost


# ---------------------------------------------------------------------------------------
# repeated phrases


@dataclass
class EchoState:
    lines: list[list[int]] = field(default_factory=list)  # finished lines' token ids
    current: list[int] = field(default_factory=list)

    def copy(self) -> EchoState:
        return EchoState([list(x) for x in self.lines], list(self.current))


class Echo(Constraint):
    """A phrase whose notes repeat an earlier phrase's (`Phrase.repeat_of`: a verse sung
    twice, a refrain) takes the earlier line's words again (`repeat`), or ends in the same
    十三辙 rhyme group as it (`rhyme`). Soft: where the other constraints (a strict tone
    fit) leave no such token, it gives way for that token."""

    hard = False

    def __init__(self, table: TokenTable, melody: Melody, mode: str,
                 rhyme_table: dict[str, list] | None = None):  # fmt: skip
        self.table, self.mode = table, mode
        self.repeat_of = [p.repeat_of for p in melody.phrases]
        self.lengths = melody.lengths()
        self.rhymes = table.rhymes(rhyme_table) if mode == "rhyme" else None

    def start(self) -> EchoState:
        return EchoState()

    def restrict(self, row: SampleState, state: EchoState, ok: np.ndarray) -> None:
        line = row.lines_done
        if line >= len(self.repeat_of) or self.repeat_of[line] is None:
            return
        source = (
            state.lines[self.repeat_of[line]] if self.repeat_of[line] < len(state.lines) else None
        )
        if not source:
            return
        if self.mode == "repeat":
            k = len(row.line_ids)
            if k < len(source):
                keep = np.zeros_like(ok)
                keep[source[k]] = True
                ok &= keep
            return
        end = next((t for t in reversed(source) if self.table.han[t]), None)
        if end is None or self.rhymes is None:
            return
        primary = self.rhymes.end_primary[end]
        groups = {primary} if primary else set(self.rhymes.end_groups[end])
        if not groups:
            return
        rhyming = np.zeros_like(ok)
        for g in groups:
            rhyming |= self.rhymes.masks[g]
        remaining = self.lengths[line] - row.line_chars
        ok &= (self.table.length != remaining) | rhyming

    def observe(self, row: SampleState, state: EchoState, token: int) -> None:
        if token == self.table.newline:
            state.lines.append(state.current)
            state.current = []
        else:
            state.current.append(token)


def melody_constraints(table: TokenTable, melody: Melody | None, tone_fit: str | None,
                       refrain: str | None, rhyme_table: dict[str, list] | None = None
                       ) -> tuple[TuneFit | None, Echo | None]:  # fmt: skip
    """The constraints a melody adds (for `Constraints`): the tones on the notes (None under
    --tone-fit off) and the repeated phrases (None under --refrain off, or without any)."""
    if melody is None:
        return None, None
    tune = TuneFit(table, melody, tone_fit or "soft") if tone_fit != "off" else None
    mode = refrain or "rhyme"
    echo = None
    if mode != "off" and any(p.repeat_of is not None for p in melody.phrases):
        echo = Echo(table, melody, mode, rhyme_table)
    return tune, echo
