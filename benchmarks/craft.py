"""Lyric craft figures for one run: rhyme, copying, line form, quality, cold start.

    python benchmarks/craft.py checkpoints/jaychou_char --corpus ../shared/corpora/jaychou_lyrics.txt

- the quality report (`lyricgen eval --samples`) of 30 songs of 8 lines from 我 with the
  default sampling options without the copy guard, with the defaults (guard on), with
  `--rhyme auto`, with `--line-length 7`, and with `--max-copy N` for several N, so the
  cost of each guard shows in the samples' own perplexity and distinct-2;
- the corpus's own rhyme rate (adjacent line pairs, blank lines break pairs);
- the issue's acrostic example with and without the Han line form;
- the whole-process wall time of `generate` (median of --runs after a warm-up), plain and
  with the copy guard and rhyme, against the 0.6 s cold-start target.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import harness as H


def fmt(x, pct=False) -> str:
    return H.fmt(x, ".1%" if pct else ".3f")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--corpus", help="the run's corpus, for its own rhyme rate")
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--start", default="我")
    ap.add_argument("--max-copy", type=int, nargs="*", default=[8, 4, 3, 2])
    ap.add_argument("--runs", type=int, default=7, help="cold-start repetitions (0: skip)")
    args = ap.parse_args()

    import lyricgen
    from lyricgen.corpus.tokcache import iter_lines
    from lyricgen.craft.generate import SamplingOptions
    from lyricgen.craft.rhyme import rhyme_rate
    from lyricgen.inspection.quality import quality_report

    print(
        f"{H.machine_line()}; run {args.run}; {args.samples} samples of 8 lines "
        f"from {args.start!r}, seeds 0..{args.samples - 1}"
    )
    lyricist = lyricgen.load(args.run, corpus=args.corpus)
    cfg, vocab = lyricist.config, lyricist.vocab
    if args.corpus:
        rate = rhyme_rate(iter_lines(Path(args.corpus), cfg.data.encoding))
        print(f"corpus rhyme rate (adjacent lines): {fmt(rate, True)}")

    from lyricgen.craft.generate import DEFAULT_MAX_COPY

    base = SamplingOptions(lines=8, max_copy=0)
    default = DEFAULT_MAX_COPY.get(vocab.level)
    variants = [
        ("--max-copy 0 (no guard)", base),
        (f"defaults (guard on: --max-copy {default})", replace(base, max_copy=None)),
        ("--rhyme auto --max-copy 0", replace(base, rhyme="auto")),
        ("--rhyme auto (guard on)", replace(base, rhyme="auto", max_copy=None)),
        ("--line-length 7 --max-copy 0", replace(base, line_length=7)),
        ("--line-length 7 --rhyme auto", replace(base, line_length=7, rhyme="auto", max_copy=None)),
    ]
    variants += [(f"--max-copy {n}", replace(base, max_copy=n)) for n in args.max_copy]
    print()

    def quality_row(name: str, opts: SamplingOptions) -> list:
        t0 = time.perf_counter()
        q = quality_report(lyricist, args.samples, opts, [args.start], 0)
        dt = time.perf_counter() - t0
        lines = f"{fmt(q.get('line_copy_rate'), True)} of {q.get('lines_checked', '-')}"
        return [
            name, fmt(q["rhyme_rate"], True), lines, fmt(q.get("copy_rate_5gram"), True),
            fmt(q["distinct_1"]), fmt(q["distinct_2"]), fmt(q["repeat3_rate"], True),
            fmt(q["line_form_accuracy"], True), f"{q['sample_ppl']:.1f}", f"{dt:.1f}",
        ]  # fmt: skip

    H.table(
        ["options", "rhyme rate", "lines copied", "5-grams copied", "distinct-1", "distinct-2",
         "repeat-3", "line form", "sample ppl", "s"],
        (quality_row(name, opts) for name, opts in variants),
    )  # fmt: skip

    exe = H.lyricgen_cmd()
    print()
    for form in ([], ["--line-length", "7"]):
        cmd = [*exe, "generate", "--checkpoint", args.run, "--acrostic", "春夏秋冬", *form]
        out = subprocess.run([*cmd, "--seed", "5"], capture_output=True, text=True)
        print(f"$ lyricgen generate --acrostic 春夏秋冬 {' '.join(form)} --seed 5")
        # a failure (e.g. no word starting with 夏) prints its one-line error
        print((out.stdout if out.returncode == 0 else out.stderr).rstrip())
    if not args.runs:
        return
    print()
    print(f"cold start, median of {args.runs} whole-process runs after one warm-up:")
    plain = [*exe, "generate", "--checkpoint", args.run, "--start", "星星", "--length", "99"]

    def cold(extra: list[str]) -> list:
        cmd = [*plain, "--seed", "1", *extra]
        H.wall(cmd)
        t = H.median(H.wall(cmd) for _ in range(args.runs))
        return [f"generate --start 星星 --length 99 {' '.join(extra)}", f"{t:.3f}"]

    extras = ([], ["--max-copy", "4"], ["--rhyme", "auto", "--lines", "4"], ["--json"])
    H.table(["command", "s"], map(cold, extras))


if __name__ == "__main__":
    main()
