"""Checks of the shipped 词牌 templates, lyricgen/craft/data/cipai.json (tools/derive_cipai.py)."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest

DATA = Path(__file__).parents[1] / "lyricgen/craft/data/cipai.json"
CORPORA = Path(__file__).parents[2] / "shared/corpora"
HAN = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+"
LINE = re.compile(f"(?:{HAN}[，。、？！；：])+")


@pytest.fixture(scope="module")
def tunes():
    return json.loads(DATA.read_text(encoding="utf-8"))["tunes"]


@pytest.fixture(scope="module")
def corpus():
    if not CORPORA.exists():
        pytest.skip("../shared/corpora is absent")
    text = (CORPORA / "songci.txt").read_text(encoding="utf-8").strip("\n")
    names = (CORPORA / "songci_tunes.txt").read_text(encoding="utf-8").rstrip("\n").split("\n")
    songs = text.split("\n\n")
    assert len(songs) == len(names)
    return songs, names


def test_forty_tunes_in_rank_order(tunes):
    assert len(tunes) == 40
    assert [t["rank"] for t in tunes] == list(range(1, 41))
    assert [t["songs"] for t in tunes] == sorted((t["songs"] for t in tunes), reverse=True)


def test_clauses_consistent(tunes):
    for t in tunes:
        assert t["name"] == t["names"][0] and 0 < t["share"] <= 1
        for c in t["clauses"]:
            assert c["tones"] and set(c["tones"]) <= set("平仄中"), t["name"]
            assert c["mark"] in "，。、" and len(c["mark"]) == 1
            assert c["rhyme"] is None or c["rhyme"] in t["rhymes"]
        assert sum(c["stanza_end"] for c in t["clauses"]) == (
            sum(len(c["tones"]) for c in t["clauses"]) >= 40
        )


def test_rhyme_tones_match_sets(tunes):
    for t in tunes:
        assert set(t["rhymes"].values()) <= {"平", "仄"}, t["name"]
        used = {c["rhyme"] for c in t["clauses"] if c["rhyme"]}
        assert used == set(t["rhymes"]), t["name"]
        for c in t["clauses"]:
            if c["rhyme"]:
                assert c["tones"][-1] == t["rhymes"][c["rhyme"]], t["name"]


def test_final_clause_rhymes_and_closes(tunes):
    for t in tunes:
        last = t["clauses"][-1]
        assert last["rhyme"] and last["mark"] == "。" and last["line_end"], t["name"]


def test_names_are_most_frequent(tunes, corpus):
    counts = Counter(n for n in corpus[1] if n != "失调名")
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:40]
    assert ["・".join(t["names"]) for t in tunes] == [n for n, _ in top]
    assert [t["songs"] for t in tunes] == [c for _, c in top]


def test_lengths_are_majority_pattern(tunes, corpus):
    wanted = {"・".join(t["names"]): t for t in tunes}
    patterns: dict[str, Counter] = {n: Counter() for n in wanted}
    for song, name in zip(*corpus, strict=True):
        if name in wanted and all(LINE.fullmatch(line) for line in song.split("\n")):
            lens = tuple(len(c) for c in re.split("[，。、？！；：]", song.replace("\n", ""))[:-1])
            patterns[name][lens] += 1
    for name, t in wanted.items():
        best = min(patterns[name].items(), key=lambda kv: (-kv[1], kv[0]))
        assert tuple(len(c["tones"]) for c in t["clauses"]) == best[0], name
        assert t["share"] == pytest.approx(best[1] / t["songs"], abs=1e-3), name
