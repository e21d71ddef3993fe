"""How well a text keeps a form: the figures `lyricgen eval --form` and the forms benchmark
report, for generated samples and for the corpus's own songs alike.

- **format accuracy** (SongNet, Li et al. 2020): the text is cut into clauses at the marks
  ，。、？！；：, and clause i counts when both its length in Han characters and its mark
  match clause i of the form (a missing or extra clause counts against it);
- **tone accuracy**: at every fixed position (平 or 仄) of a clause of the right length, the
  character may take that tone class in the rhyme book (any of its readings);
- **rhyme accuracy**: at every rhyme position, the character is in the group that most
  positions of its rhyme set share (a set of one position counts when the character has a
  group of the set's tone class).

Only clauses whose length matches are checked for tone and rhyme: a clause of the wrong
length has no positions to compare.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from lyricgen.craft.books import EITHER, book
from lyricgen.craft.forms import Form

_CUT = re.compile(r"([，。、？！；：,.!?;:])")
_NORMAL = {"？": "。", "！": "。", "?": "。", "!": "。", ".": "。", "；": "，", "：": "，",
           ";": "，", ":": "，", ",": "，"}  # fmt: skip


def clauses(text: str) -> list[tuple[str, str]]:
    """(clause, mark) pairs of a text; blank lines and spaces are ignored; a clause left
    without a mark at a line's end is kept with mark ''."""
    out = []
    for line in text.split("\n"):
        line = "".join(line.split())
        if not line:
            continue
        parts = _CUT.split(line)
        for i in range(0, len(parts) - 1, 2):
            out.append((parts[i], _NORMAL.get(parts[i + 1], parts[i + 1])))
        if parts[-1]:
            out.append((parts[-1], ""))
    return out


@dataclass
class FormScore:
    """Hits and totals of one text (or many, added up)."""

    clauses_ok: int = 0
    clauses: int = 0
    tones_ok: int = 0
    tones: int = 0
    rhymes_ok: int = 0
    rhymes: int = 0

    def __add__(self, other: FormScore) -> FormScore:
        return FormScore(*(a + b for a, b in zip(vars(self).values(), vars(other).values(),
                                                 strict=True)))  # fmt: skip

    def rates(self) -> dict[str, float | None]:
        def rate(ok: int, n: int) -> float | None:
            return ok / n if n else None

        return {
            "format_accuracy": rate(self.clauses_ok, self.clauses),
            "tone_accuracy": rate(self.tones_ok, self.tones),
            "rhyme_accuracy": rate(self.rhymes_ok, self.rhymes),
        }


def score(text: str, form: Form, book_name: str = "pingshui") -> FormScore:
    """How well text keeps form under the rhyme book."""
    b = book(book_name)
    got = clauses(text)
    s = FormScore(clauses=max(len(got), len(form.clauses)))
    sets: dict[str, list[str]] = {}
    for (words, mark), c in zip(got, form.clauses, strict=False):
        if len(words) != c.length:
            continue
        s.clauses_ok += mark == c.mark
        for ch, tone in zip(words, c.tones, strict=True):
            if tone != EITHER:
                s.tones += 1
                s.tones_ok += tone in b.tones(ch)
        if c.rhyme is not None:
            sets.setdefault(c.rhyme, []).append(words[-1])
    for label, chars in sets.items():
        tone = form.rhymes.get(label)
        shared = Counter(g for ch in chars for g in b.groups(ch) if b.class_of(g) in (None, tone))
        best = shared.most_common(1)[0][0] if shared else None
        s.rhymes += len(chars)
        if len(chars) == 1:
            s.rhymes_ok += best is not None
        else:
            s.rhymes_ok += sum(best in b.groups(ch) for ch in chars)
    # rhyme positions of clauses that were too short or long count as misses
    s.rhymes += sum(
        1
        for (words, _), c in zip(got, form.clauses, strict=False)
        if c.rhyme is not None and len(words) != c.length
    ) + sum(1 for c in form.clauses[len(got) :] if c.rhyme is not None)
    return s
