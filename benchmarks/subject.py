"""Writing about something, and with the writer: keywords, relevance, fluency, revision,
repetition under forms, and speed, on the held-out songs of the Song ci.

    python benchmarks/subject.py RUN [--sections repetition keywords relevance revision speed]
        [--samples 10] [--songs 100] [--json out.json]

RUN is a Song ci run of `configs/songci_char.yaml` (its split: the last `val_fraction` of
the songs are held out, see lyricgen.training.data). Sections:

- **repetition**: for 12 forms, `--samples` samples each (seeds 0..N-1, the default
  options): the share of a sample's Han characters that repeat one already in it (mean over
  samples), format/tone/rhyme accuracy, the samples' median perplexity against free samples of
  the same length and seeds; beside it the same share over the poets' own songs of the tune
  (Song ci for 词牌, Tang shi of the same shape for 近体诗).
- **keywords**: the share of samples holding every keyword, over keyword sets drawn from the
  held-out songs (each song's top three characters by TF-IDF, IDF from the training split),
  free (8 lines) and under 12 forms; and format/tone/rhyme accuracy under the forms.
- **relevance**: for each held-out song, samples from its own keywords; the character TF-IDF
  cosine between sample and song, against samples from another song's keywords (the
  control) and against `--prefix` with the same keywords; also with the keywords left out
  of both texts. And **fluency**: the perplexity of the keyword samples against samples
  without keywords under the same form.
- **revision**: blank one line of a held-out 8-line song, fill it with and without the
  suffix in the ranking; the whole text's log-likelihood of each, how often the
  suffix-aware fill wins, and whether the other lines stay byte for byte.
- **speed**: a 七绝 with three keywords, and a one-line revision of an 8-line draft, each as a
  whole process (`lyricgen generate` / `lyricgen revise`, NumPy backend), median of 5.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections import Counter
from pathlib import Path

import harness as H

FORMS12 = ["五绝", "七绝", "五律", "七律", "浣溪沙", "鹧鸪天", "西江月", "蝶恋花", "菩萨蛮",
           "临江仙", "清平乐", "如梦令"]  # fmt: skip


def han(text: str) -> list[str]:
    from lyricgen.craft.rhyme import is_han

    return [c for c in text if is_han(c)]


def repeat_share(text: str) -> float:
    """The share of the text's Han characters that repeat one earlier in it."""
    chars = han(text)
    return 1 - len(set(chars)) / len(chars) if chars else 0.0


# ------------------------------------------------------------------------------ data


def split_songs(run: str) -> tuple[list[str], list[str], list[str]]:
    """(training songs, held-out songs, tunes of the held-out songs) of the run's corpus,
    split as the trainer splits it: the last val_fraction of the songs are held out."""
    from lyricgen.config import load_config

    cfg = load_config(Path(run) / "config.yaml")
    text = Path(cfg.data.corpus).read_text(encoding="utf-8")
    songs = [s.strip("\n") for s in text.split("\n\n") if s.strip()]
    n_val = max(1, round(len(songs) * cfg.data.val_fraction))
    tunes_file = Path(cfg.data.corpus).with_name("songci_tunes.txt")
    tunes = tunes_file.read_text(encoding="utf-8").splitlines() if tunes_file.exists() else []
    return songs[:-n_val], songs[-n_val:], tunes[len(songs) - n_val :]


class Tfidf:
    """Character TF-IDF with IDF counted over the training songs."""

    def __init__(self, docs: list[str]):
        df: Counter = Counter()
        for d in docs:
            df.update(set(han(d)))
        self.n = len(docs)
        self.idf = {c: math.log(self.n / (1 + k)) + 1 for c, k in df.items()}

    def vec(self, text: str, drop: set[str] = frozenset()) -> dict[str, float]:
        tf = Counter(c for c in han(text) if c not in drop)
        return {c: k * self.idf.get(c, math.log(self.n) + 1) for c, k in tf.items()}

    def top(self, text: str, k: int) -> list[str]:
        v = self.vec(text)
        return [c for c, _ in sorted(v.items(), key=lambda cv: (-cv[1], cv[0]))[:k]]

    @staticmethod
    def cosine(a: dict[str, float], b: dict[str, float]) -> float:
        dot = sum(v * b.get(c, 0.0) for c, v in a.items())
        na = math.sqrt(sum(v * v for v in a.values()))
        nb = math.sqrt(sum(v * v for v in b.values()))
        return dot / (na * nb) if na and nb else 0.0


# ------------------------------------------------------------------------------ sections


def repetition(lyr, samples: int) -> list[dict]:
    from lyricgen.craft.formcheck import FormScore, score
    from lyricgen.craft.forms import find_form
    from lyricgen.craft.options import SamplingOptions

    poets = poets_rates()
    rows = []
    for name in FORMS12:
        total, reps, ppls, free_ppls = FormScore(), [], [], []
        for seed in range(samples):
            (s,) = lyr.generate("", SamplingOptions(form=name, seed=seed))
            total = total + score(s.text, find_form(s.variant or name))
            reps.append(repeat_share(s.text))
            ppls.append(s.perplexity)
            (f,) = lyr.generate(
                "", SamplingOptions(lines=1000, length=len(s.tokens), seed=seed, candidates=1)
            )
            free_ppls.append(f.perplexity)
        rows.append({
            "form": name, "repeat": statistics.mean(reps), "poets": poets.get(name),
            "ppl": H.median(ppls), "free_ppl": H.median(free_ppls),
            **total.rates(),
        })  # fmt: skip
        print(H.fmt(rows[-1]["repeat"], ".1%"), name, flush=True)
    return rows


def poets_rates() -> dict[str, float]:
    """The share of repeated characters in the poets' own songs of each of FORMS12."""
    from lyricgen.craft.forms import find_form

    out: dict[str, float] = {}
    songci = H.CORPORA / "songci.txt"
    tunes = H.CORPORA / "songci_tunes.txt"
    if songci.exists() and tunes.exists():
        songs = songci.read_text(encoding="utf-8").split("\n\n")
        names = tunes.read_text(encoding="utf-8").splitlines()
        by: dict[str, list[str]] = {}
        for song, name in zip(songs, names, strict=False):
            by.setdefault(name, []).append(song)
        for name in FORMS12:
            form = find_form(name)
            if form.kind != "词牌":
                continue
            keys = {*form.names, "・".join(form.names)}
            these = [s for k in keys for s in by.get(k, []) if len(han(s)) == form.length]
            if these:
                out[name] = statistics.mean(repeat_share(s) for s in these)
    tang = H.CORPORA / "tangshi.txt"
    if tang.exists():
        shapes = {"五绝": (5, 4), "七绝": (7, 4), "五律": (5, 8), "七律": (7, 8)}
        by_shape: dict[tuple[int, int], list[float]] = {v: [] for v in shapes.values()}
        for poem in tang.read_text(encoding="utf-8").split("\n\n"):
            clauses = [c for c in poem.replace("。", "，").replace("\n", "").split("，") if c]
            if clauses and len({len(c) for c in clauses}) == 1:
                key = (len(clauses[0]), len(clauses))
                if key in by_shape and all(len(han(c)) == key[0] for c in clauses):
                    by_shape[key].append(repeat_share(poem))
        for name, key in shapes.items():
            if by_shape[key]:
                out[name] = statistics.mean(by_shape[key])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument(
        "--sections",
        nargs="*",
        default=["repetition", "keywords", "relevance", "revision", "speed"],
    )
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--songs", type=int, default=100)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--repeat-cost", type=float, help="sweep: generate.REPEAT_COST")
    args = ap.parse_args()
    sys.path.insert(0, str(H.REPO))
    import lyricgen

    if args.repeat_cost is not None:
        import lyricgen.craft.generate as G

        G.REPEAT_COST = args.repeat_cost
        print(f"REPEAT_COST {G.REPEAT_COST}")

    print(H.machine_line(), f"run {args.run}", flush=True)
    lyr = lyricgen.load(args.run)
    out: dict = {}
    if "repetition" in args.sections:
        rows = repetition(lyr, args.samples)
        out["repetition"] = rows
        H.table(
            ["form", "repeated chars", "poets", "ppl / free ppl", "format", "tones", "rhyme"],
            [
                [
                    r["form"],
                    H.fmt(r["repeat"], ".1%"),
                    H.fmt(r["poets"], ".1%"),
                    H.fmt(r["ppl"] / r["free_ppl"], ".2f"),
                    H.fmt(r["format_accuracy"], ".0%"),
                    H.fmt(r["tone_accuracy"], ".0%"),
                    H.fmt(r["rhyme_accuracy"], ".0%"),
                ]
                for r in rows
            ],  # fmt: skip
        )
    H.write_json(args.json, out)


if __name__ == "__main__":
    main()
