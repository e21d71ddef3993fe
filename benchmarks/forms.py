"""Forms figures for one run: format, tone and rhyme accuracy, fluency and speed per form.

    python benchmarks/forms.py RUN --corpus ../shared/corpora/songci.txt \\
        --tunes ../shared/corpora/songci_tunes.txt [--samples 30] [--forms 七绝 如梦令 ...]
    python benchmarks/forms.py RUN --sweep 1 4 8 16      # choose --candidates' default

For each form (default: 五绝 七绝 五律 七律 and the 40 词牌), `--samples` samples with seeds
0..N-1 (no start text, the default options) and:

- format accuracy (SongNet's clause-level definition), tone accuracy at fixed positions and
  rhyme accuracy at rhyme positions (lyricgen/craft/formcheck.py), 平水韵;
- distinct-2 and the share of 5-character spans found in the training text;
- the share of a sample's Han characters that repeat one already in it (mean over samples),
  beside the same share over the poets' own songs of the form (benchmarks/subject.py,
  `poets_rates`: Song ci for the tunes, Tang shi of the same shape for 近体诗);
- the samples' own perplexity (median), and that of unconstrained samples of the same
  number of tokens with the same seeds (plain sampling, one candidate): their ratio is the
  fluency cost of the form;
- seconds per sample (NumPy backend, one sample at a time, the wall time of `generate`);
- with --corpus and --tunes: the corpus's own songs of that tune under the same template,
  i.e. how strictly the poets kept it.

`--sweep K...` measures a subset of forms at several --candidates and prints the same
figures per K, so the default can be chosen by measurement. `--free-rhyme` adds free lines
with `--rhyme auto --lines 8` (十三辙) at 1 and the default candidates.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

import harness as H
from subject import poets_rates, repeat_share


def fmt(x, pct=False) -> str:
    return H.fmt(x, ".1%" if pct else ".2f")


def corpus_songs(corpus: str, tunes: str) -> dict[str, list[str]]:
    songs = open(corpus, encoding="utf-8").read().split("\n\n")
    names = [t.strip() for t in open(tunes, encoding="utf-8")]
    out: dict[str, list[str]] = {}
    for song, name in zip(songs, names, strict=False):
        out.setdefault(name, []).append(song.strip("\n"))
    return out


def measure(lyr, form_name: str, n: int, candidates: int | None, index) -> dict:
    from lyricgen.craft.formcheck import FormScore, score
    from lyricgen.craft.forms import find_form
    from lyricgen.craft.options import SamplingOptions
    from lyricgen.craft.originality import copy_figures

    form = SamplingOptions(form=form_name).form_template
    total, ppls, free, secs, ids, reps = FormScore(), [], [], [], [], []
    for seed in range(n):
        opts = SamplingOptions(form=form_name, seed=seed, candidates=candidates)
        t0 = time.perf_counter()
        (s,) = lyr.generate("", opts)
        secs.append(time.perf_counter() - t0)
        # against the variant the sample keeps (a bare 七绝 may take any of four)
        total = total + score(s.text, find_form(s.variant) if s.variant else form)
        ppls.append(s.perplexity)
        reps.append(repeat_share(s.text))
        ids.append(lyr.vocab.encode(s.tokens))
        base = SamplingOptions(lines=1000, length=len(s.tokens), seed=seed, candidates=1)
        (f,) = lyr.generate("", base)
        free.append(f.perplexity)
    bi = Counter()
    n_bi = 0
    nl = lyr.vocab.stoi.get("\n")
    for seq in ids:
        pairs = [(a, b) for a, b in zip(seq, seq[1:], strict=False) if nl not in (a, b)]
        bi.update(pairs)
        n_bi += len(pairs)
    r = total.rates()
    r.update(
        form=form_name,
        ppl=H.median(ppls),
        free_ppl=H.median(free),
        seconds=H.median(secs),
        distinct_2=len(bi) / n_bi if n_bi else None,
        repeat=statistics.mean(reps),
    )
    r["ratio"] = r["ppl"] / r["free_ppl"]
    if index is not None:
        r["copy_5"] = copy_figures(index, lyr.vocab, ids).get("copy_rate_5gram")
    return r


def set_repetition(cost: float | None, rate: float | None) -> None:
    """Override the line candidates' repetition cost and allowance (generate.py) for a sweep."""
    import lyricgen.craft.generate as G

    if cost is not None:
        G.REPEAT_COST = cost
    if rate is not None:
        G.REPEAT_RATE, G.DEFAULT_REPEAT_RATE = {}, rate
    print(f"REPEAT_COST {G.REPEAT_COST}, REPEAT_RATE {G.REPEAT_RATE or {}} (default "
          f"{G.DEFAULT_REPEAT_RATE})")  # fmt: skip


def corpus_figures(form, songs_by_tune: dict[str, list[str]]) -> dict:
    from lyricgen.craft.formcheck import FormScore, score

    songs = []
    keys = {*form.names, "・".join(form.names)}
    for key in keys:
        songs += songs_by_tune.get(key, [])
    total = sum((score(s, form) for s in songs), FormScore())
    return {"songs": len(songs), **total.rates()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--corpus")
    ap.add_argument("--tunes")
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--forms", nargs="*", help="form names, by spaces or commas")
    ap.add_argument("--sweep", type=int, nargs="*")
    ap.add_argument("--free-rhyme", action="store_true")
    ap.add_argument("--repeat-cost", type=float, help="sweep: generate.REPEAT_COST")
    ap.add_argument("--repeat-rate", type=float, help="sweep: one free-repeat share for all")
    args = ap.parse_args()
    if args.repeat_cost is not None or args.repeat_rate is not None:
        set_repetition(args.repeat_cost, args.repeat_rate)

    import lyricgen
    from lyricgen.craft.forms import all_forms
    from lyricgen.craft.options import DEFAULT_CANDIDATES, SamplingOptions

    print(f"{H.machine_line()}, run {args.run}")
    lyr = lyricgen.load(args.run)
    given = [n for arg in args.forms or [] for n in arg.replace("，", ",").split(",") if n]
    names = given or ["五绝", "七绝", "五律", "七律"] + [
        f.name for f in all_forms() if f.kind == "词牌"
    ]
    songs = corpus_songs(args.corpus, args.tunes) if args.corpus and args.tunes else {}
    if args.sweep:
        for k in args.sweep:
            rows = [measure(lyr, n, args.samples, k, lyr.copy_index) for n in names]
            keys = ("format_accuracy", "tone_accuracy", "rhyme_accuracy")
            acc = {key: statistics.mean(r[key] for r in rows) for key in keys}
            print(
                f"candidates {k:>2}: ratio median {H.median(r['ratio'] for r in rows):.2f}"
                f" (max {max(r['ratio'] for r in rows):.2f}), ppl median "
                f"{H.median(r['ppl'] for r in rows):.1f}, distinct-2 "
                f"{statistics.mean(r['distinct_2'] for r in rows):.3f}, copy-5 "
                f"{statistics.mean(r.get('copy_5') or 0 for r in rows):.1%}, s/sample "
                f"{H.median(r['seconds'] for r in rows):.2f}, "
                + ", ".join(f"{k2} {v:.1%}" for k2, v in acc.items()),
                flush=True,
            )
        return
    print(f"{args.samples} samples per form, seeds 0..{args.samples - 1}, candidates "
          f"{DEFAULT_CANDIDATES} (default), 平水韵")  # fmt: skip
    rows = []
    poets = poets_rates(names)

    def form_row(name: str) -> list:
        r = measure(lyr, name, args.samples, None, lyr.copy_index)
        rows.append(r)
        form = SamplingOptions(form=name).form_template
        c = corpus_figures(form, songs) if songs and form.kind == "词牌" else {}
        return [
            r["form"], fmt(r["format_accuracy"], 1), fmt(r["tone_accuracy"], 1),
            fmt(r["rhyme_accuracy"], 1), fmt(r["distinct_2"]), fmt(r.get("copy_5"), 1),
            fmt(r["repeat"], 1), fmt(poets.get(name), 1),
            f"{r['ppl']:.1f}", f"{r['free_ppl']:.1f}", f"{r['ratio']:.2f}",
            f"{r['seconds']:.2f}", c.get("songs", "-"), fmt(c.get("format_accuracy"), 1),
            fmt(c.get("tone_accuracy"), 1), fmt(c.get("rhyme_accuracy"), 1),
        ]  # fmt: skip

    H.table(
        ["form", "format", "tones", "rhyme", "distinct-2", "copy 5-gram", "repeated",
         "poets' repeated", "ppl", "free ppl",
         "ratio", "s/sample", "corpus songs", "corpus format", "corpus tones", "corpus rhyme"],
        map(form_row, names),
    )  # fmt: skip
    print(
        f"all forms: format {min(r['format_accuracy'] for r in rows):.1%} (min), tones "
        f"{min(r['tone_accuracy'] for r in rows):.1%} (min), rhyme "
        f"{min(r['rhyme_accuracy'] for r in rows):.1%} (min); ratio median "
        f"{H.median(r['ratio'] for r in rows):.2f}, max "
        f"{max(r['ratio'] for r in rows):.2f}; repeated characters over the poets' rate in "
        f"{sum(r['repeat'] > poets.get(r['form'], 1.0) for r in rows)} of "
        f"{sum(r['form'] in poets for r in rows)} forms; s/sample median "
        f"{H.median(r['seconds'] for r in rows):.2f}"
    )
    if args.free_rhyme:
        for k in (1, DEFAULT_CANDIDATES):
            ppls, free = [], []
            for seed in range(args.samples):
                (s,) = lyr.generate("", SamplingOptions(lines=8, rhyme="auto", seed=seed,
                                                        candidates=k))  # fmt: skip
                (f,) = lyr.generate("", SamplingOptions(lines=1000, length=len(s.tokens),
                                                        seed=seed, candidates=1))  # fmt: skip
                ppls.append(s.perplexity)
                free.append(f.perplexity)
            print(f"free lines, --rhyme auto --lines 8, candidates {k}: ppl "
                  f"{H.median(ppls):.1f}, free {H.median(free):.1f}, ratio "
                  f"{H.median(ppls) / H.median(free):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
