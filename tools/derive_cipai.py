"""Derive templates (格律) for the 40 most frequent 词牌 of the Song ci corpus.

Writes ``lyricgen/craft/data/cipai.json``: for each tune its clause lengths, the
tone (平 / 仄 / 中 = either) of every position, the mark after each clause, where
corpus lines and stanzas end, and which clause ends rhyme together.

Sources
-------
* ``songci.txt`` / ``songci_tunes.txt``: the complete Song ci from the
  chinese-poetry/chinese-poetry collection (MIT-licensed compilation of
  public-domain texts), one lyric line per line, songs separated by one blank
  line; line k of the tunes file is the tune (词牌) of song k.
* Rhyme books from charlesix59/chinese_word_rhyme (MIT licence, Copyright (c)
  2023 Charles 闵): ``data/Pingshui_Rhyme.json`` (平水韵, used for tones) and
  ``data/Cilin_Rhyme.json`` (词林正韵, used for rhyme groups), read from the
  repository's git directory with ``git show``.

Nothing is taken from a published 词谱: every template is counted from the songs.

Method
------
Tunes: the distinct values of the tunes file, 失调名 (tune lost) dropped, the 40
most frequent (ties broken by name).  A value such as "望江南・忆江南" is one tune
known by both names.  A tune's songs are those whose tune field equals the value.

1. Clauses: every line of a song is split on ，。、？！；：; each piece before a mark
   is a clause, its length its number of Han characters.  A song is dropped when a
   clause is empty or contains a non-Han character, or when a line has text after
   its last mark.  The last clause of a corpus line ends a line.
2. Pattern: the most frequent clause-length sequence among the tune's parsed songs
   (ties: the lexicographically smallest sequence).  The songs matching it exactly
   are the exemplars.  "songs" is the number of songs with the tune field,
   "share" the fraction of them that are exemplars.
3. Marks: per clause, the majority mark among exemplars after normalising ？！ to
   。 and ；： to ，(ties: ， before 。 before 、).  "line_end" is true when more than
   half of the exemplars end a corpus line after the clause; the last clause
   always ends a line, with 。.
4. Tones: a character listed only under 上平声/下平声 of 平水韵 is 平, only under
   上声/去声/入声 is 仄; characters in both or in neither are skipped.  With p the
   share of 平 among the classified characters at a position over the exemplars:
   平 if p >= 0.8, 仄 if p <= 0.2, else 中; fewer than 5 classified characters: 中.
5. Rhymes: for clause ends i < j, they agree in a song when their last characters
   share a 词林正韵 部 (any reading, regardless of tone; the 入声 部 15-19 hold only
   入声 characters, so they only match 入声).  rate(i, j) = share of exemplars in
   which they agree.  Pairs with rate >= 0.5 are linked; connected components of
   two or more clause ends are rhyme sets.  If the final clause is in none, it is
   linked to the set with the highest mean rate to it (with a warning).  Sets are
   labelled A, B, ... in order of first position.  A set's tone is the majority
   Pingshui class (平 or 仄) of the characters at its positions over the
   exemplars; the last tone of each of its positions is forced to it.  Repeated
   identical clauses (叠韵) rhyme like any other clause ends that agree.
6. Stanzas: a tune of 40 or more characters is 双调: the stanza break falls after
   the clause k (1 <= k < n) that ends with 。 and whose cumulative length is
   closest to half the total (ties: the earlier).  Shorter tunes are 单调.

Usage::

    python tools/derive_cipai.py --corpus ../shared/corpora/songci.txt \\
        --tunes ../shared/corpora/songci_tunes.txt \\
        --rhyme-repo /work/.mirror/charlesix59+chinese_word_rhyme/repo \\
        --out lyricgen/craft/data/cipai.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

N_TUNES = 40
LOST = "失调名"
NAME_SEP = "・"
MARKS = "，。、？！；："
NORMAL = {"，": "，", "。": "。", "、": "、", "？": "。", "！": "。", "；": "，", "：": "，"}
MARK_ORDER = "，。、"
HAN = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+$")
SPLIT = re.compile(f"([{MARKS}])")
PING_HI, PING_LO, MIN_TONED = 0.8, 0.2, 5
LINK = 0.5
SHUANG = 40

SOURCE = (
    "Counted from the complete Song ci (chinese-poetry/chinese-poetry, MIT-licensed "
    "compilation of public-domain texts; songci.txt and songci_tunes.txt). Tones from "
    "平水韵 and rhyme groups from 词林正韵 as published in charlesix59/chinese_word_rhyme "
    "(MIT licence, Copyright (c) 2023 Charles 闵), data/Pingshui_Rhyme.json and "
    "data/Cilin_Rhyme.json. Derived by tools/derive_cipai.py."
)

METHOD = (
    "Tunes: the 40 most frequent tune fields (失调名 dropped, ties by name); a field "
    "'甲・乙' is one tune with both names. "
    "1 Clauses: each line is split on ，。、？！；：, each piece before a mark is a "
    "clause; songs with an empty or non-Han clause or text after a line's last mark "
    "are dropped. "
    "2 Pattern: the most frequent clause-length sequence among the tune's songs; the "
    "songs matching it are the exemplars; songs = songs with the tune field, share = "
    "exemplars / songs. "
    "3 Mark: majority among exemplars with ？！->。 and ；：->，; line_end when most "
    "exemplars end a corpus line there; the last clause ends a line with 。. "
    "4 Tone: 平水韵 平-only vs 仄-only characters (others skipped); p = share of 平 at "
    "the position; 平 if p>=0.8, 仄 if p<=0.2, else 中; 中 with fewer than 5 "
    "classified characters. "
    "5 Rhyme: two clause ends agree in a song when their last characters share a "
    "词林正韵 部 (any reading); pairs agreeing in >=50% of exemplars are linked; "
    "connected components of >=2 clause ends are rhyme sets A, B, ... in order of "
    "first position; the final clause is joined to its best set if unlinked; a set's "
    "tone is the majority 平水韵 class of its characters, forced on the last tone of "
    "its positions. "
    "6 Stanza: tunes of >=40 characters are 双调, the break after the clause ending "
    "in 。 whose cumulative length is closest to half the total (ties: earlier); "
    "shorter tunes are 单调."
)


def git_json(repo: str, path: str) -> dict:
    out = subprocess.run(
        ["git", "-C", repo, "show", f"HEAD:{path}"], check=True, capture_output=True
    ).stdout
    return json.loads(out.decode("utf-8"))


def load_tones(repo: str) -> dict[str, str]:
    """char -> 平 or 仄, for characters of one class only under 平水韵."""
    classes: dict[str, set[str]] = {}
    for part, groups in git_json(repo, "data/Pingshui_Rhyme.json").items():
        cls = "平" if part in ("上平声部", "下平声部") else "仄"
        for chars in groups.values():
            for ch in chars:
                classes.setdefault(ch, set()).add(cls)
    return {ch: next(iter(c)) for ch, c in classes.items() if len(c) == 1}


def load_bu(repo: str) -> dict[str, frozenset[str]]:
    """char -> the 词林正韵 部 it belongs to (any tone)."""
    bu: dict[str, set[str]] = {}
    for name, tones in git_json(repo, "data/Cilin_Rhyme.json").items():
        for chars in tones.values():
            for ch in chars:
                bu.setdefault(ch, set()).add(name)
    return {ch: frozenset(s) for ch, s in bu.items()}


def parse_song(lines: list[str]):
    """Return [(clause, mark, ends_line)] or None when the song is dropped."""
    out = []
    for line in lines:
        parts = SPLIT.split(line)
        if parts[-1] != "":  # text after the last mark (or no mark at all)
            return None
        clauses = list(zip(parts[0:-1:2], parts[1:-1:2], strict=True))
        for k, (text, mark) in enumerate(clauses):
            if not HAN.match(text):
                return None
            out.append((text, NORMAL[mark], k == len(clauses) - 1))
    return out or None


def read_corpus(corpus: str, tunes: str):
    text = Path(corpus).read_text(encoding="utf-8").strip("\n")
    songs = [block.split("\n") for block in text.split("\n\n")]
    names = Path(tunes).read_text(encoding="utf-8").rstrip("\n").split("\n")
    if len(songs) != len(names):
        sys.exit(f"{len(songs)} songs but {len(names)} tune names")
    return songs, names


def top_tunes(names: list[str]) -> list[tuple[str, int]]:
    counts = Counter(n for n in names if n != LOST)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:N_TUNES]


def majority(counter: Counter, order: str | None = None):
    if order is None:
        return min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    return min(counter.items(), key=lambda kv: (-kv[1], order.index(kv[0])))[0]


def rhyme_sets(rates: dict, n: int, warn) -> list[list[int]]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for (i, j), r in rates.items():
        if r >= LINK:
            parent[find(i)] = find(j)
    comps: dict[int, list[int]] = {}
    for i in range(n):
        comps.setdefault(find(i), []).append(i)
    sets = sorted((c for c in comps.values() if len(c) >= 2), key=lambda c: c[0])
    last = n - 1
    if not any(last in s for s in sets):
        if not sets:
            warn("no rhyme set at all; final clause left alone")
            return [[last]]

        def mean(s):
            return sum(rates[(min(i, last), max(i, last))] for i in s) / len(s)

        best = max(sets, key=mean)
        warn(f"final clause unlinked; joined to set at {best} (mean rate {mean(best):.2f})")
        best.append(last)
    return sets


def derive(name: str, songs: list, tone: dict, bu: dict, log) -> tuple[dict, dict]:
    warns = []

    def warn(msg):
        warns.append(msg)
        log(f"  WARNING {name}: {msg}")

    parsed = [p for p in (parse_song(s) for s in songs) if p is not None]
    patterns = Counter(tuple(len(c[0]) for c in p) for p in parsed)
    pattern = majority(patterns)
    ex = [p for p in parsed if tuple(len(c[0]) for c in p) == pattern]
    n = len(pattern)
    half = len(ex) / 2

    marks = [majority(Counter(p[i][1] for p in ex), MARK_ORDER) for i in range(n)]
    line_end = [sum(p[i][2] for p in ex) > half for i in range(n)]
    marks[-1], line_end[-1] = "。", True

    tones = []
    for i, length in enumerate(pattern):
        row = []
        for k in range(length):
            cls = [tone[p[i][0][k]] for p in ex if p[i][0][k] in tone]
            if len(cls) < MIN_TONED:
                row.append("中")
                continue
            ping = cls.count("平") / len(cls)
            row.append("平" if ping >= PING_HI else "仄" if ping <= PING_LO else "中")
        tones.append(row)

    ends = [[bu.get(p[i][0][-1], frozenset()) for i in range(n)] for p in ex]
    rates = {
        (i, j): sum(bool(e[i] & e[j]) for e in ends) / len(ex)
        for i, j in itertools.combinations(range(n), 2)
    }
    sets = rhyme_sets(rates, n, warn)
    label = [None] * n
    set_tones = {}
    for s_idx, s in enumerate(sets):
        lab = chr(ord("A") + s_idx)
        cls = Counter(tone[p[i][0][-1]] for p in ex for i in s if p[i][0][-1] in tone)
        set_tones[lab] = majority(cls, "平仄") if cls else "中"
        for i in s:
            label[i] = lab
            tones[i][-1] = set_tones[lab]

    stanza = [False] * n
    total = sum(pattern)
    if total >= SHUANG:
        cum = list(itertools.accumulate(pattern))
        cands = [k for k in range(n - 1) if marks[k] == "。"]
        if cands:
            k = min(cands, key=lambda k: (abs(cum[k] - total / 2), k))
            stanza[k] = True
        else:
            warn("双调 length but no 。 clause to break at")

    linked = [r for (i, j), r in rates.items() if r >= LINK]
    plain = [r for (i, j), r in rates.items() if label[i] is None and label[j] is None]
    names = name.split(NAME_SEP)
    entry = {
        "name": names[0],
        "names": names,
        "rank": 0,
        "songs": len(songs),
        "share": round(len(ex) / len(songs), 3),
        "clauses": [
            {
                "tones": "".join(tones[i]),
                "mark": marks[i],
                "rhyme": label[i],
                "line_end": line_end[i],
                "stanza_end": stanza[i],
            }
            for i in range(n)
        ],
        "rhymes": set_tones,
    }
    stats = {
        "linked": linked,
        "plain": plain,
        "exemplars": len(ex),
        "parsed": len(parsed),
        "warns": warns,
        "ex": ex,
    }
    return entry, stats


def random_baseline(all_ex: list, bu: dict, pairs: int = 20000) -> float:
    """Agreement rate of clause-final characters drawn from two random songs."""
    rng = random.Random(0)
    ends = [c[0][-1] for song in all_ex for c in song]
    hit = sum(
        bool(bu.get(rng.choice(ends), frozenset()) & bu.get(rng.choice(ends), frozenset()))
        for _ in range(pairs)
    )
    return hit / pairs


EXPECT = {
    "如梦令": ((6, 6, 5, 6, 2, 2, 6), [[1, 2, 4, 5, 6, 7]], None),
    "菩萨蛮": ((7, 7, 5, 5, 5, 5, 5, 5), [[1, 2], [3, 4], [5, 6], [7, 8]], "仄平仄平"),
    "鹧鸪天": ((7, 7, 7, 7, 3, 3, 7, 7, 7), [[1, 2, 4, 6, 7, 9]], "平"),
    "浣溪沙": ((7,) * 6, [[1, 2, 3, 5, 6]], "平"),
    "点绛唇": ((4, 7, 4, 5, 4, 5, 3, 4, 5), None, None),
}


def sanity(tunes: list[dict], log) -> None:
    log("\nSanity comparison (expected vs derived):")
    by_name = {t["name"]: t for t in tunes}
    for name, (lengths, sets, set_tones) in EXPECT.items():
        t = by_name[name]
        got_len = tuple(len(c["tones"]) for c in t["clauses"])
        got_sets: dict[str, list[int]] = {}
        for i, c in enumerate(t["clauses"], 1):
            if c["rhyme"]:
                got_sets.setdefault(c["rhyme"], []).append(i)
        got_tones = "".join(t["rhymes"][k] for k in sorted(t["rhymes"]))
        ok = got_len == lengths
        ok &= sets is None or sorted(got_sets.values()) == sets
        ok &= set_tones is None or got_tones == set_tones
        if name == "如梦令":
            ok &= got_tones == "仄"
        log(
            f"  {name}: {'OK ' if ok else 'DIFF'} lengths {'-'.join(map(str, got_len))} "
            f"sets {got_sets} tones {t['rhymes']}"
        )
    fixed = Counter()
    seen = Counter()
    for t in tunes:
        for c in t["clauses"]:
            if len(c["tones"]) == 7:
                for k, ch in enumerate(c["tones"][:6]):  # the 7th is often a rhyme
                    seen[k] += 1
                    fixed[k] += ch != "中"
    log(
        "  7-char clauses, share of fixed tones at positions 1-6: "
        + ", ".join(f"{k + 1}:{fixed[k] / seen[k]:.2f}" for k in range(6))
        + f" (n={seen[0]})"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--tunes", required=True)
    ap.add_argument("--rhyme-repo", required=True)
    ap.add_argument("--out", default="lyricgen/craft/data/cipai.json")
    args = ap.parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr)

    tone = load_tones(args.rhyme_repo)
    bu = load_bu(args.rhyme_repo)
    songs, names = read_corpus(args.corpus, args.tunes)
    tunes, linked, plain, all_ex = [], [], [], []
    for rank, (name, count) in enumerate(top_tunes(names), 1):
        entry, st = derive(
            name, [s for s, n in zip(songs, names, strict=True) if n == name], tone, bu, log
        )
        assert entry["songs"] == count
        entry["rank"] = rank
        tunes.append(entry)
        linked += st["linked"]
        plain += st["plain"]
        all_ex += st["ex"]
        lens = "-".join(str(len(c["tones"])) for c in entry["clauses"])
        sets = {
            k: [i + 1 for i, c in enumerate(entry["clauses"]) if c["rhyme"] == k]
            for k in entry["rhymes"]
        }
        sets_s = " ".join(f"{k}{v}{entry['rhymes'][k]}" for k, v in sets.items())
        log(
            f"{rank:2d} {name:8s} n={count:3d} parsed={st['parsed']:3d} ex={st['exemplars']:3d} "
            f"share={entry['share']:.2f} {lens} | {sets_s.replace(' ', '')}"
        )

    def mean(xs):
        return sum(xs) / len(xs) if xs else float("nan")

    log(f"\nrate of linked pairs: mean {mean(linked):.3f}, min {min(linked):.3f} (n={len(linked)})")
    log(
        f"rate of pairs of unrhymed clause ends: mean {mean(plain):.3f}, "
        f"max {max(plain):.3f} (n={len(plain)})"
    )
    log(
        f"random baseline (clause ends from random exemplar songs): "
        f"{random_baseline(all_ex, bu):.3f}"
    )
    sanity(tunes, log)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"source": SOURCE, "method": METHOD, "tunes": tunes}
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    log(f"\nwrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
