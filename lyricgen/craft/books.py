"""Rhyme books (韵书): which tone class (平/仄) and which rhyme groups each character has.

Three books, one interface (`RhymeBook`):

- `pingshui` (平水韵, 106 groups, the book of classical verse): a character is 平 when
  any of its readings is in a 上平/下平 group and 仄 when any is in a 上声, 去声 or 入声
  group, so the old 入声 characters that Mandarin now reads in tone 1 or 2 (白 国 十 一 竹)
  are 仄. A character listed under both classes may stand in either. Rhyme groups carry
  their class: 上平一东 is a 平 group, 入声一屋 a 仄 one.
- `xinyun` (中华新韵, 14 groups): modern tones, 1 and 2 平, 3 and 4 仄; a group holds both
  classes (a form's tone pattern decides which of them a position takes).
- `shisanzhe` (十三辙, the book of modern song lyrics, see `lyricgen.craft.rhyme`): groups by
  final, tones from pypinyin's readings.

pingshui and xinyun are tables shipped in `lyricgen/craft/data/` (built by
`tools/build_rhyme_books.py` from charlesix59/chinese_word_rhyme, MIT licence; the 平水韵
there is Wikisource's, public domain). They are read on first use (a few milliseconds).
`TONES` are the tone marks of a form's pattern: 平, 仄, or 中 (either).
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable
from importlib import resources

from lyricgen.errors import GenerationError

BOOKS = ("pingshui", "xinyun", "shisanzhe")
BOOK_NAMES = {"pingshui": "平水韵", "xinyun": "中华新韵", "shisanzhe": "十三辙"}
PING, ZE, EITHER = "平", "仄", "中"


def _load(name: str) -> dict:
    text = resources.files("lyricgen.craft").joinpath(f"data/{name}.json").read_text("utf-8")
    return json.loads(text)


class RhymeBook:
    """Tone classes and rhyme groups of characters under one book."""

    name: str
    groups_by_name: dict[str, str | None]  # group -> its tone class (None: holds both)

    def __init__(self, name: str, char_groups: dict[str, set[str]], char_tones: dict[str, set[str]],
                 group_tones: dict[str, str | None]):  # fmt: skip
        self.name = name
        self._groups = {c: frozenset(g) for c, g in char_groups.items()}
        self._tones = {c: frozenset(t) for c, t in char_tones.items()}
        self.groups_by_name = group_tones

    @property
    def title(self) -> str:
        return f"{BOOK_NAMES[self.name]} ({self.name})"

    def tones(self, ch: str) -> frozenset[str]:
        """The tone classes (平, 仄) the character may take; empty when the book lacks it."""
        return self._tones.get(ch, frozenset())

    def groups(self, ch: str) -> frozenset[str]:
        """The rhyme groups of all the character's readings."""
        return self._groups.get(ch, frozenset())

    def covers(self, ch: str) -> bool:
        return ch in self._tones

    def parse_group(self, name: str) -> str:
        """A group by its full name (上平一东, 一麻), its name without the section (一东),
        or its rhyme character (东, 麻); a one-line error suggests close names."""
        key = name.strip()
        if key in self.groups_by_name:
            return key
        found = [g for g in self.groups_by_name if g.endswith(key) or g[-1:] == key]
        if len(found) == 1:
            return found[0]
        close = found or difflib.get_close_matches(key, list(self.groups_by_name), n=6, cutoff=0.3)
        hint = "、".join(close) if close else "、".join(list(self.groups_by_name)[:8]) + " ..."
        raise GenerationError(
            f"--rhyme {name!r} is not {'one' if not found else 'a single'} group of "
            f"{self.title}; choose auto or one of: {hint}"
        )

    def class_of(self, group: str) -> str | None:
        return self.groups_by_name.get(group)


@functools.cache
def book(name: str) -> RhymeBook:
    """The rhyme book called name (pingshui, xinyun or shisanzhe), built once."""
    if name == "pingshui":
        groups, tones = {}, {}
        table = _load("pingshui")["groups"]
        for g, entry in table.items():
            for ch in entry["chars"]:
                groups.setdefault(ch, set()).add(g)
                tones.setdefault(ch, set()).add(entry["tone"])
        return RhymeBook(name, groups, tones, {g: e["tone"] for g, e in table.items()})
    if name == "xinyun":
        groups, tones = {}, {}
        table = _load("xinyun")["groups"]
        for g, parts in table.items():
            for tone, chars in parts.items():
                for ch in chars:
                    groups.setdefault(ch, set()).add(g)
                    tones.setdefault(ch, set()).add(tone)
        return RhymeBook(name, groups, tones, dict.fromkeys(table))
    if name == "shisanzhe":
        return _ShisanzheBook()
    raise GenerationError(f"--rhyme-book {name!r} is unknown; choose {', '.join(BOOKS)}")


class _ShisanzheBook(RhymeBook):
    """十三辙 groups and modern tones, both from pypinyin (imported on first use)."""

    def __init__(self):
        from lyricgen.craft import rhyme

        super().__init__("shisanzhe", {}, {}, dict.fromkeys(rhyme.GROUPS))
        self._rhyme = rhyme

    def groups(self, ch: str) -> frozenset[str]:
        return self._rhyme.char_groups(ch)

    def tones(self, ch: str) -> frozenset[str]:
        return _modern_tones(ch)

    def covers(self, ch: str) -> bool:
        return bool(_modern_tones(ch))

    def parse_group(self, name: str) -> str:
        return self._rhyme.parse_group(name)


@functools.lru_cache(maxsize=1 << 16)
def _modern_tones(ch: str) -> frozenset[str]:
    """平 for readings in tones 1 and 2, 仄 for 3 and 4 (the neutral tone is neither)."""
    from pypinyin.constants import PINYIN_DICT
    from pypinyin.contrib.tone_convert import to_tone3

    readings = PINYIN_DICT.get(ord(ch), "") if len(ch) == 1 else ""
    out = set()
    for r in filter(None, readings.split(",")):
        digit = to_tone3(r)[-1:]
        if digit in "12":
            out.add(PING)
        elif digit in "34":
            out.add(ZE)
    return frozenset(out)


def coverage(name: str, chars: Iterable[str]) -> float:
    """Share of `chars` (with repeats: pass running text for a token-weighted figure) that
    the book gives a tone class."""
    b, n, hit = book(name), 0, 0
    for ch in chars:
        n += 1
        hit += b.covers(ch)
    return hit / n if n else 0.0
