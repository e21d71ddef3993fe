"""Writing about something, and with the writer: keywords, relevance, fluency, revision,
repetition under forms, and speed, on the held-out songs of the Song ci.

    python benchmarks/subject.py RUN [--sections repetition keywords relevance revision speed]
        [--samples 10] [--songs 100] [--json out.json] [--expand off related embedding]

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
  of both texts; `--expand off related embedding` measures each plan expansion in turn.
  And **fluency**: the perplexity of the keyword samples against samples without keywords
  under the same form.
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
import tempfile
import time
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
    split exactly as the trainer splits it (`corpus.text.train_val_split`)."""
    from lyricgen.config import load_config
    from lyricgen.corpus.text import train_val_split

    cfg = load_config(Path(run) / "config.yaml")
    text = Path(cfg.data.corpus).read_text(encoding="utf-8")
    train, val = train_val_split(text, cfg.data.val_fraction)

    def songs(t: str) -> list[str]:
        return [x.strip("\n") for x in t.split("\n\n") if x.strip()]

    tr, va = songs(train), songs(val)
    tunes_file = Path(cfg.data.corpus).with_name("songci_tunes.txt")
    tunes = tunes_file.read_text(encoding="utf-8").splitlines() if tunes_file.exists() else []
    return tr, va, tunes[len(tr) :]


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


def poets_rates(names: list[str] = FORMS12) -> dict[str, float]:
    """The share of repeated characters in the poets' own songs of each form of `names`."""
    from lyricgen.craft.forms import find_form

    out: dict[str, float] = {}
    songci = H.CORPORA / "songci.txt"
    tunes = H.CORPORA / "songci_tunes.txt"
    if songci.exists() and tunes.exists():
        songs = songci.read_text(encoding="utf-8").split("\n\n")
        tune_of = tunes.read_text(encoding="utf-8").splitlines()
        by: dict[str, list[str]] = {}
        for song, name in zip(songs, tune_of, strict=False):
            by.setdefault(name, []).append(song)
        for name in names:
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
            if by_shape[key] and name in names:
                out[name] = statistics.mean(by_shape[key])
    return out


def keyword_sets(train: list[str], held: list[str], n: int, vocab, seed: int = 0):
    """Each of `n` held-out songs' top three characters by TF-IDF (IDF from the training
    split) among those the model can write, songs drawn with a fixed seed; and the songs."""
    import random

    tf = Tfidf(train)
    rng = random.Random(seed)
    songs = rng.sample(held, min(n, len(held)))
    sets = []
    for s in songs:
        ranked = tf.top(s, 50)
        sets.append([c for c in ranked if c in vocab][:3])
    return sets, songs, tf


def keywords_section(lyr, sets: list[list[str]], samples: int) -> dict:
    """Inclusion free (8 lines) and under FORMS12, with format/tone/rhyme and fluency."""
    from lyricgen.craft.formcheck import FormScore, score
    from lyricgen.craft.forms import find_form
    from lyricgen.craft.options import SamplingOptions
    from lyricgen.errors import GenerationError

    out = {}
    ok = n = 0
    for i, kws in enumerate(sets):
        (s,) = lyr.generate("", SamplingOptions(lines=8, keywords=",".join(kws), seed=i))
        n += 1
        ok += all(w in s.text for w in kws)
    out["free"] = {"samples": n, "inclusion": ok / n}
    rows = []
    for name in FORMS12:
        total, n, ok, refused, ppl_kw, ppl_free, secs = FormScore(), 0, 0, 0, [], [], []
        ppl_own = []
        for i, kws in enumerate(sets[:samples]):
            opts = SamplingOptions(form=name, keywords=",".join(kws), seed=i)
            try:
                t0 = time.perf_counter()
                (s,) = lyr.generate("", opts)
                secs.append(time.perf_counter() - t0)
            except GenerationError:
                refused += 1  # a set that cannot fit the form: a clear error
                continue
            n += 1
            ok += all(w in s.text for w in kws)
            total = total + score(s.text, find_form(s.variant or name))
            ppl_kw.append(s.perplexity)
            ppl_own.append(ppl_without(s, kws))
            (f,) = lyr.generate("", SamplingOptions(form=name, seed=i))
            ppl_free.append(f.perplexity)
        rows.append({"form": name, "samples": n, "refused": refused,
                     "inclusion": ok / n if n else None, "ppl_kw": H.median(ppl_kw),
                     "ppl_plain": H.median(ppl_free), "seconds": H.median(secs),
                     "ppl_kw_own": H.median(ppl_own),
                     **total.rates()})  # fmt: skip
        print(name, rows[-1]["inclusion"], flush=True)
    out["forms"] = rows
    return out


def ppl_without(sample, kws: list[str]) -> float:
    """The sample's perplexity over the tokens the model chose: the keywords' own tokens
    (forced by the request) left out."""
    text, skip = "".join(sample.tokens), set()
    if len(text) != len(sample.tokens):  # not a character model: count every token
        return sample.perplexity
    for w in kws:
        start = text.find(w)
        while start >= 0:
            skip.update(range(start, start + len(w)))
            start = text.find(w, start + 1)
    keep = [lp for k, lp in enumerate(sample.logprobs) if k not in skip]
    return math.exp(-sum(keep) / len(keep)) if keep else float("nan")


def relevance_section(lyr, sets, songs, tf: Tfidf, expands: list[str]) -> dict:
    """Similarity of samples to the song whose keywords wrote them, against the control
    (another song's keywords) and against --prefix with the same keywords; 8 free lines.
    The keyword samples (and the control's) are written once per --expand of `expands`."""
    from lyricgen.craft.options import SamplingOptions

    mean = statistics.mean
    prefix, prefix_rest, ppl_plain, both_rest, ppl_both = [], [], [], [], []
    for i, (kws, song) in enumerate(zip(sets, songs, strict=True)):
        (c,) = lyr.generate("", SamplingOptions(lines=8, prefix="".join(kws), seed=i))
        (d,) = lyr.generate("", SamplingOptions(lines=8, seed=i, candidates=8))
        (e,) = lyr.generate(
            "", SamplingOptions(lines=8, keywords=",".join(kws), prefix="".join(kws), seed=i)
        )
        drop = set("".join(kws))
        song_rest = tf.vec(song, drop)
        prefix.append(tf.cosine(tf.vec(c.text), tf.vec(song)))
        prefix_rest.append(tf.cosine(tf.vec(c.text, drop), song_rest))
        both_rest.append(tf.cosine(tf.vec(e.text, drop), song_rest))
        ppl_both.append(e.perplexity)
        ppl_plain.append(d.perplexity)
    out: dict = {
        "songs": len(sets), "prefix": mean(prefix), "prefix_rest": mean(prefix_rest),
        "ppl_plain": H.median(ppl_plain), "kw_prefix_rest": mean(both_rest),
        "ppl_kw_prefix": H.median(ppl_both), "expand": {},
    }  # fmt: skip
    for expand in expands:
        own, control, own_rest, ppl_kw, ppl_kw_own = [], [], [], [], []
        for i, (kws, song) in enumerate(zip(sets, songs, strict=True)):
            other = sets[(i + 1) % len(sets)]
            (a,) = lyr.generate(
                "", SamplingOptions(lines=8, keywords=",".join(kws), seed=i, expand=expand)
            )
            (b,) = lyr.generate(
                "", SamplingOptions(lines=8, keywords=",".join(other), seed=i, expand=expand)
            )
            drop = set("".join(kws))
            own.append(tf.cosine(tf.vec(a.text), tf.vec(song)))
            control.append(tf.cosine(tf.vec(b.text), tf.vec(song)))
            own_rest.append(tf.cosine(tf.vec(a.text, drop), tf.vec(song, drop)))
            ppl_kw.append(a.perplexity)
            ppl_kw_own.append(ppl_without(a, kws))
        out["expand"][expand] = {
            "own": mean(own), "control": mean(control), "ratio_control": mean(own) / mean(control),
            "prefix_ratio_control": out["prefix"] / mean(control), "own_rest": mean(own_rest),
            "ppl_kw": H.median(ppl_kw), "ppl_kw_without_keyword_tokens": H.median(ppl_kw_own),
        }  # fmt: skip
        print(f"--expand {expand} measured", flush=True)
    return out


def revision_section(lyr, held: list[str], n: int) -> dict:
    """Rewrite one line (2..7) of held-out 8-line songs, ranked by the whole text and by
    the line alone (the same candidates, the same seed); and against a line-alone fill from
    candidates of its own (another seed), as a left-to-right writer would fill it."""
    import random

    rng = random.Random(1)
    eight = [s for s in held if len(s.split("\n")) == 8]
    cases = rng.sample(eight, min(n, len(eight)))
    wins = ties = kept = own_wins = 0
    lls_text, lls_line = [], []
    for i, song in enumerate(cases):
        line = rng.randint(2, 7)
        a = lyr.revise(song, [line], seed=i, rank="text")
        b = lyr.revise(song, [line], seed=i, rank="line")
        c = lyr.revise(song, [line], seed=10_000 + i, rank="line")
        own_wins += a.logprob > c.logprob + 1e-9
        old = song.split("\n")
        for r in (a, b):
            new = r.text.split("\n")
            kept += all(x == y for j, (x, y) in enumerate(zip(old, new, strict=True))
                        if j != line - 1) and len(new) == len(old)  # fmt: skip
        lls_text.append(a.logprob)
        lls_line.append(b.logprob)
        wins += a.logprob > b.logprob + 1e-9
        ties += abs(a.logprob - b.logprob) <= 1e-9
    k = len(cases)
    return {"cases": k, "suffix_wins": wins / k, "ties": ties / k,
            "suffix_wins_over_own_candidates": own_wins / k,
            "kept_byte_for_byte": kept / (2 * k),
            "ll_suffix": statistics.mean(lls_text), "ll_line": statistics.mean(lls_line)}  # fmt: skip


def theme_section(lyr, songs: list[str], tf: Tfidf) -> dict:
    """--theme on held-out songs: the song's first two lines as the theme sentence, each
    method's keywords, 8 free lines; similarity to the rest of the song (its first two lines
    left out) against the control (the next song's theme)."""
    from lyricgen.craft.options import SamplingOptions
    from lyricgen.errors import GenerationError

    out = {}
    for method in ("tfidf", "textrank", "corpus"):
        own, control, n = [], [], 0
        for i, song in enumerate(songs):
            lines = song.split("\n")
            rest = "\n".join(lines[2:])
            if not rest.strip():
                continue
            other = songs[(i + 1) % len(songs)].split("\n")
            texts = []
            for theme in ("".join(lines[:2]), "".join(other[:2])):
                try:
                    opts = SamplingOptions(lines=8, theme=theme, theme_method=method, seed=i)
                    texts.append(lyr.generate("", opts)[0].text)
                except GenerationError:
                    texts.append("")
            sv = tf.vec(rest)
            own.append(tf.cosine(tf.vec(texts[0]), sv))
            control.append(tf.cosine(tf.vec(texts[1]), sv))
            n += 1
        out[method] = {"songs": n, "own": statistics.mean(own),
                       "ratio": statistics.mean(own) / statistics.mean(control)}  # fmt: skip
    return out


def template_section(lyr, held: list[str], n: int) -> dict:
    """--template from held-out songs' first two lines, every other Han character fixed
    (those the model can write): the share of samples that keep every fixed character."""
    import random

    from lyricgen.craft.options import SamplingOptions
    from lyricgen.errors import GenerationError

    rng = random.Random(0)
    ok = written = refused = 0
    for i, song in enumerate(rng.sample(held, min(n, len(held)))):
        lines = [ln for ln in song.split("\n") if ln][:2]
        tpl = "/".join(
            "".join("_" if han(c) and (j % 2 or c not in lyr.vocab) else c
                    for j, c in enumerate(ln))
            for ln in lines
        )  # fmt: skip
        if "_" not in tpl:
            continue
        try:
            (s,) = lyr.generate("", SamplingOptions(template=tpl, seed=i))
        except GenerationError:
            refused += 1  # e.g. a mark the vocabulary lacks: a one-line error
            continue
        want = [c for c in tpl if c != "/"]
        got = [c for c in s.text if c != "\n"]
        written += 1
        ok += len(got) == len(want) and all(w in ("_", g) for w, g in zip(want, got, strict=True))
    return {"samples": written, "kept": ok / written if written else None, "refused": refused}


def speed_section(run: str, held: list[str]) -> dict:
    eight = next(s for s in held if len(s.split("\n")) == 8)
    cmd = H.lyricgen_cmd()
    gen = [*cmd, "generate", "--checkpoint", run, "--form", "七绝", "--keywords", "秋,月,故乡",
           "--seed", "1"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        draft = Path(tmp) / "draft.txt"
        draft.write_text(eight + "\n", encoding="utf-8")
        rev = [*cmd, "revise", str(draft), "--checkpoint", run, "--line", "3", "--seed", "1"]
        g = [H.wall(gen) for _ in range(5)]
        r = [H.wall(rev) for _ in range(5)]
    return {"generate_qijue_3_keywords_s": H.median(g), "revise_one_line_s": H.median(r)}


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
    ap.add_argument("--expand", nargs="*", default=["off"], help="relevance: each --expand in turn")
    ap.add_argument("--repeat-cost", type=float, help="sweep: generate.REPEAT_COST")
    ap.add_argument("--repeat-rate", type=float, help="sweep: one free-repeat share for all")
    args = ap.parse_args()
    sys.path.insert(0, str(H.REPO))
    from forms import set_repetition

    import lyricgen

    if args.repeat_cost is not None or args.repeat_rate is not None:
        set_repetition(args.repeat_cost, args.repeat_rate)

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
    train, held, _ = split_songs(args.run) if set(args.sections) - {"repetition"} else ([], [], [])
    sets, songs, tf = keyword_sets(train, held, args.songs, lyr.vocab) if train else ([], [], None)
    if "keywords" in args.sections:
        r = keywords_section(lyr, sets, args.samples)
        out["keywords"] = r
        print(f"free (8 lines): every keyword in {r['free']['inclusion']:.0%} of "
              f"{r['free']['samples']} samples")  # fmt: skip
        H.table(
            ["form", "samples", "refused", "all keywords", "format", "tones", "rhyme",
             "ppl kw / plain", "without kw tokens", "s/sample"],
            [[x["form"], x["samples"], x["refused"], H.fmt(x["inclusion"], ".0%"),
              H.fmt(x["format_accuracy"], ".0%"), H.fmt(x["tone_accuracy"], ".0%"),
              H.fmt(x["rhyme_accuracy"], ".0%"),
              H.fmt(H.ratio(x["ppl_kw"], x["ppl_plain"]), ".2f"),
              H.fmt(H.ratio(x["ppl_kw_own"], x["ppl_plain"]), ".2f"), H.fmt(x["seconds"], ".2f")]
             for x in r["forms"]],
        )  # fmt: skip
    if "relevance" in args.sections:
        r = relevance_section(lyr, sets, songs, tf, args.expand)
        out["relevance"] = r
        print(
            f"relevance over {r['songs']} held-out songs (character TF-IDF cosine): --prefix "
            f"{r['prefix']:.4f}, keywords left out {r['prefix_rest']:.4f} (keywords and --prefix: "
            f"{r['kw_prefix_rest']:.4f}, perplexity {r['ppl_kw_prefix']:.1f}); samples without "
            f"keywords: perplexity {r['ppl_plain']:.1f}"
        )
        for expand, x in r["expand"].items():
            print(
                f"--keywords, --expand {expand}: {x['own']:.4f}, control {x['control']:.4f} "
                f"({x['ratio_control']:.2f}x; --prefix {x['prefix_ratio_control']:.2f}x the "
                f"control); keywords left out {x['own_rest']:.4f}; perplexity {x['ppl_kw']:.1f} "
                f"({x['ppl_kw_without_keyword_tokens']:.1f} without the keyword tokens)"
            )
    if "template" in args.sections:
        r = template_section(lyr, held, args.songs)
        out["template"] = r
        print(f"--template: every fixed character kept in {r['kept']:.0%} of {r['samples']} "
              f"samples ({r['refused']} refused)")  # fmt: skip
    if "theme" in args.sections:
        r = theme_section(lyr, songs[: min(50, len(songs))], tf)
        out["theme"] = r
        print(
            "--theme (a held-out song's first two lines; similarity to the rest of it): "
            + "; ".join(f"{m} {v['own']:.4f} ({v['ratio']:.2f}x the control)" for m, v in r.items())
        )
    if "revision" in args.sections:
        r = revision_section(lyr, held, args.songs)
        out["revision"] = r
        print(
            f"revision over {r['cases']} held-out 8-line songs: whole-text ranking higher in "
            f"{r['suffix_wins']:.0%} (ties {r['ties']:.0%}; against a line-alone fill from its "
            f"own candidates: {r['suffix_wins_over_own_candidates']:.0%}); mean log-likelihood "
            f"{r['ll_suffix']:.2f} vs {r['ll_line']:.2f}; other lines kept byte for byte in "
            f"{r['kept_byte_for_byte']:.0%}"
        )
    if "speed" in args.sections:
        r = speed_section(args.run, held)
        out["speed"] = r
        print(
            f"whole process, median of 5: 七绝 with 3 keywords {r['generate_qijue_3_keywords_s']:.2f}"
            f" s; one-line revision of an 8-line draft {r['revise_one_line_s']:.2f} s"
        )
    H.write_json(args.json, out)


if __name__ == "__main__":
    main()
