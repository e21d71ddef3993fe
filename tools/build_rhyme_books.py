"""Build the rhyme-book tables shipped in lyricgen/craft/data/ (pingshui.json, xinyun.json).

Source: charlesix59/chinese_word_rhyme (MIT licence, (c) 2023 Charles 闵), whose
`data/Pingshui_Rhyme.json` is the 平水韵 of Wikisource (public domain) in simplified
characters and whose `data/Xinyun_Rhyme.json` is the 中华新韵 (14 groups, each split into
平 and 仄). We keep only what generation needs, one string of characters per group:

    pingshui.json  {"source": ..., "groups": {"上平一东": {"tone": "平", "chars": "东同..."}, ...}}
    xinyun.json    {"source": ..., "groups": {"一麻": {"平": "...", "仄": "..."}, ...}}

Usage (the repository is a git directory; files are read with `git show`):

    python tools/build_rhyme_books.py --repo PATH/TO/chinese_word_rhyme[.git]
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "lyricgen" / "craft" / "data"
SOURCE = (
    "charlesix59/chinese_word_rhyme (MIT licence, (c) 2023 Charles 闵), data/{file}; "
    "{what}; converted by tools/build_rhyme_books.py"
)
SECTIONS = {"上平声部": ("上平", "平"), "下平声部": ("下平", "平"), "上声部": ("上声", "仄"),
            "去声部": ("去声", "仄"), "入声部": ("入声", "仄")}  # fmt: skip
# Characters of the classical books that the digitization lacks (checked by hand against
# the 平水韵): frequent in the Song ci corpus, so worth a line each.
SUPPLEMENT = {"上平八齐": "溪"}


def _read(repo: str, name: str) -> dict:
    text = subprocess.run(
        ["git", "-C", repo, "show", f"HEAD:data/{name}"],
        check=True, capture_output=True, text=True, encoding="utf-8",
    ).stdout  # fmt: skip
    return json.loads(text)


def _chars(items: list[str]) -> str:
    seen: dict[str, None] = {}
    for item in items:
        for ch in item.strip():
            seen.setdefault(ch, None)
    return "".join(seen)


def pingshui(repo: str) -> dict:
    groups = {}
    for section, named in _read(repo, "Pingshui_Rhyme.json").items():
        prefix, tone = SECTIONS[section]
        for name, chars in named.items():
            key = prefix + name.removeprefix("入声")
            groups[key] = {"tone": tone, "chars": _chars(chars + list(SUPPLEMENT.get(key, "")))}
    what = "平水韵 from Wikisource (public domain), simplified characters"
    return {"source": SOURCE.format(file="Pingshui_Rhyme.json", what=what), "groups": groups}


def xinyun(repo: str) -> dict:
    groups = {
        name: {tone: _chars(chars) for tone, chars in parts.items()}
        for name, parts in _read(repo, "Xinyun_Rhyme.json").items()
    }
    what = "中华新韵 (14 groups, 平 = tones 1 and 2, 仄 = tones 3 and 4)"
    return {"source": SOURCE.format(file="Xinyun_Rhyme.json", what=what), "groups": groups}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", required=True, help="git directory of chinese_word_rhyme")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for name, table in (("pingshui", pingshui(args.repo)), ("xinyun", xinyun(args.repo))):
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(table, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
        print(f"{path}: {len(table['groups'])} groups")


if __name__ == "__main__":
    main()
