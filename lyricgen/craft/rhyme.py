"""The thirteen rhyme groups (十三辙) of Chinese song lyrics, read with pypinyin.

Two lines of a Chinese lyric rhyme when the finals (韵母) of their last syllables fall in
the same 辙; tones and initials do not matter. The thirteen groups, as pypinyin spells
the finals (``Style.FINALS``, ``strict=True``, ``ü`` written ``v``; the shortened
spellings ``ui``, ``iu``, ``un`` and ``ue`` are listed too):

    发花 fahua       a ia ua
    梭波 suobo       o e uo
    乜斜 miexie      ie ve (üe) ê
    一七 yiqi        i (also the apical -i of zhi chi shi ri zi ci si) v (ü) er
    姑苏 gusu        u
    怀来 huailai     ai uai
    灰堆 huidui      ei ui (uei)
    遥条 yaotiao     ao iao
    油求 youqiu      ou iu (iou)
    言前 yanqian     an ian uan van (üan)
    人辰 renchen     en in un (uen) vn (ün)
    江阳 jiangyang   ang iang uang
    中东 zhongdong   ong eng ing iong ueng

A character with several readings (多音字) belongs to every group that any of its readings
is in: 行 (xíng, háng) is both 中东 and 江阳, so it rhymes with 星 and with 光. Syllabic
nasals (呣 m, 嗯 n/ng, 哼 hng) have no final and belong to no group; neither does anything
that is not a Han character.

pypinyin (its single-character dictionary is a 0.8 MB JSON file, its phrase dictionary
2.5 MB) is imported on the first lookup, never at import time, so that commands that do
not rhyme start as fast as before.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from lyricgen.atomic import atomic_write
from lyricgen.corpus.text import is_han
from lyricgen.errors import GenerationError
from lyricgen.run.names import RHYME


class RhymeGroup(NamedTuple):
    """One 辙: its pinyin name, the short final shown in messages, and all its finals."""

    pinyin: str
    final: str
    finals: frozenset[str]


def _group(pinyin: str, finals: str) -> RhymeGroup:
    """A RhymeGroup from its pinyin name and space-separated finals (the first is shown)."""
    names = finals.split()
    return RhymeGroup(pinyin, names[0], frozenset(names))


GROUPS: Mapping[str, RhymeGroup] = MappingProxyType(
    {
        "发花": _group("fahua", "a ia ua"),
        "梭波": _group("suobo", "o e uo"),
        "乜斜": _group("miexie", "ie ve ue ê"),
        "一七": _group("yiqi", "i v er"),
        "姑苏": _group("gusu", "u"),
        "怀来": _group("huailai", "ai uai"),
        "灰堆": _group("huidui", "ei ui uei"),
        "遥条": _group("yaotiao", "ao iao"),
        "油求": _group("youqiu", "ou iu iou"),
        "言前": _group("yanqian", "an ian uan van"),
        "人辰": _group("renchen", "en in un uen vn"),
        "江阳": _group("jiangyang", "ang iang uang"),
        "中东": _group("zhongdong", "ong eng ing iong ueng"),
    }
)

_FINAL_TO_GROUP: dict[str, str] = {f: name for name, g in GROUPS.items() for f in g.finals}
_PINYIN_TO_GROUP: dict[str, str] = {g.pinyin: name for name, g in GROUPS.items()}


def _normalise(name: str) -> str:
    """A group or final name trimmed, lower-cased, NFC-composed, with ü written v."""
    return unicodedata.normalize("NFC", name.strip()).lower().replace("ü", "v")


def parse_group(name: str) -> str:
    """The Chinese name of the group called 发花, fahua or any of its finals (a, ia, ua)."""
    key = name.strip()
    if key in GROUPS:
        return key
    key = _normalise(name)
    found = _PINYIN_TO_GROUP.get(key) or _FINAL_TO_GROUP.get(key)
    if found is None:
        choices = " ".join(f"{zh}({g.final})" for zh, g in GROUPS.items())
        raise GenerationError(
            f"--rhyme {name!r} is not a rhyme group; choose auto or one of {choices}"
        )
    return found


def last_han(text: str) -> str | None:
    """The last Han character of text, skipping anything after it; None if it has none."""
    for ch in reversed(text):
        if is_han(ch):
            return ch
    return None


@functools.lru_cache(maxsize=4096)  # pypinyin has about 1,500 distinct readings
def _reading_group(reading: str) -> str | None:
    """The group of one tone-marked reading such as 'xíng', or None (syllabic m, n, ng)."""
    from pypinyin.contrib.tone_convert import to_finals

    return _FINAL_TO_GROUP.get(to_finals(reading, strict=True))


@functools.lru_cache(maxsize=1 << 16)  # every character pypinyin knows (about 42,000)
def char_groups(ch: str) -> frozenset[str]:
    """The groups of all readings of the character ch; empty for a non-Han character."""
    if len(ch) != 1:
        raise ValueError(f"char_groups takes one character, not {ch!r}")
    if not is_han(ch):
        return frozenset()
    # The dictionary pypinyin.pinyin() reads single characters from (code point ->
    # "reading,reading"), including entries added with pypinyin.load_single_dict.
    from pypinyin.constants import PINYIN_DICT

    readings = PINYIN_DICT.get(ord(ch))
    if not readings:
        return frozenset()
    groups = (_reading_group(r) for r in readings.split(","))
    return frozenset(g for g in groups if g is not None)


@functools.lru_cache(maxsize=1 << 16)
def primary_group(ch: str) -> str | None:
    """The group of the character's usual reading (pypinyin lists it first), or None."""
    if not is_han(ch):
        return None
    from pypinyin.constants import PINYIN_DICT

    readings = PINYIN_DICT.get(ord(ch))
    return _reading_group(readings.split(",")[0]) if readings else None


def rhymes(a: str, b: str) -> bool:
    """Whether the characters a and b share a rhyme group through any of their readings
    (the rule `--rhyme` applies; pypinyin also lists rare readings, such as 月 rù, so this
    is generous)."""
    return not char_groups(a).isdisjoint(char_groups(b))


def rhyme_rate(lines: Iterable[str]) -> float | None:
    """Share of adjacent line pairs whose last Han characters rhyme; None if no pairs.

    A pair counts only when both lines have a Han character; a blank line ends a song, so
    no pair spans one.
    """
    pairs = hits = 0
    prev: str | None = None
    for line in lines:
        if not line.strip():
            prev = None
            continue
        cur = last_han(line)
        if prev is not None and cur is not None:
            pairs += 1
            hits += rhymes(prev, cur)
        prev = cur
    return hits / pairs if pairs else None


def group_mask(tokens: Sequence[str], group: str) -> list[bool]:
    """For each token, whether its last Han character is in group (any name parse_group takes)."""
    name = parse_group(group)
    out = []
    for tok in tokens:
        ch = last_han(tok)
        out.append(ch is not None and name in char_groups(ch))
    return out


def vocab_table(tokens: Iterable[str]) -> dict[str, list]:
    """{character: [usual group or None, [groups of all readings]]} for the last Han
    character of every token: what `--rhyme` needs of a vocabulary, saved with a run so
    generation does not import pypinyin (about a third of a second)."""
    chars = sorted({c for c in (last_han(t) for t in tokens) if c})
    return {c: [primary_group(c), sorted(char_groups(c))] for c in chars}


# ------------------------------------------------------------ the run's rhyme table


def save_rhyme_table(out_dir: Path, vocab) -> None:
    """The rhyme groups of the vocabulary's characters, when it has Han characters."""
    table = vocab_table(vocab.itos)
    if table:
        atomic_write(
            out_dir / RHYME, json.dumps({"version": 1, "chars": table}, ensure_ascii=False)
        )


def load_rhyme_table(run_dir: str | Path, vocab=None) -> dict[str, list] | None:
    """The run's saved rhyme table. A run trained before lyricgen saved one gets it now
    when `vocab` is given (best effort: a read-only run directory just goes without, and
    the groups are looked up on every use)."""
    try:
        data = json.loads((Path(run_dir) / RHYME).read_text(encoding="utf-8"))
        if data.get("version") == 1:
            return data["chars"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    if vocab is not None:
        try:
            save_rhyme_table(Path(run_dir), vocab)
        except OSError:
            return None
        return load_rhyme_table(run_dir)
    return None
