"""Lyrics to a melody (填词): phrase lengths, 倒字 and fluency under --tone-fit, and speed.

    python benchmarks/melody.py [--model verse] [--tunes 12] [--samples 4]
        [--sections fit speed] [--json out.json]

- **fit**: `--tunes` song-like tunes in numbered notation (TUNES, written for this
  benchmark, and seeded random ones from `song_tune`: 8 phrases of 5-9 notes, steps
  mostly, a few leaps, the second half repeating the first, rests and long notes at phrase
  ends; none with a leap no tone can take, which strict refuses), each written `--samples` times with `--tone-fit off` (free text of the same line
  lengths), `soft` (the default) and `strict`. Reported: the share of samples whose lines
  have their phrases' lengths; the share of scored characters on an unacceptable step
  (倒字, ReLyMe's table, each line read in context); the median sample perplexity, and
  its ratio to `off`'s.
- **speed**: `lyricgen generate --jianpu TUNE` of a 16-phrase tune as a whole new process,
  NumPy backend, median of 5, with the same command's time for `--line-lengths` of the same
  phrases (no melody) as the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time

# Tunes written for this benchmark (original; not from any song).
TUNES = [
    "1=C 4/4 | 3 5 6 5 | 3 2 1 - | 2 3 5 3 | 2 - - 0 | 3 5 6 1' | 6 5 3 - | 2 3 2 1 | 1 - - 0 |",
    "1=D 3/4 | 5 3 5 | 6 - 5 | 3 2 1 | 2 - 0 | 3 5 6 | 1' - 6 | 5 3 2 | 1 - 0 |",
    "1=F 4/4 | 1 2 3 5 | 5 6 5 - | 6 5 3 2 | 3 - - 0 | 5 3 2 1 | 2 3 5 - | 3 2 1 6, | 1 - - 0 |",
    "1=G 4/4 | 6, 1 2 3 | 2 1 6, - | 1 2 3 5 | 3 - - 0 | 5 6 5 3 | 2 3 1 - | 6, 1 2 1 | 6, - - 0 |",
]
SCALE = [0, 2, 4, 5, 7, 9, 11]


def _label(degree: int) -> str:
    """Scale degree (0 = 1 of the middle octave) in numbered notation."""
    octave, step = divmod(degree, 7)
    return str(step + 1) + ("'" * octave if octave > 0 else "," * -octave)


def song_tune(rng: random.Random, phrases: int = 8) -> str:
    """A song-like tune: phrases of 5-9 notes, steps mostly, a few leaps, each phrase ending
    on a long note and a rest; the second half repeats the first (a verse sung twice)."""
    half = []
    degree = rng.choice([0, 2, 4])
    for _ in range(phrases // 2):
        notes = []
        for i in range(rng.randint(5, 9)):
            degree += rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3, 4, -4])
            degree = max(-2, min(6, degree))  # a range of 14 semitones, as most songs keep
            eighth = rng.random() < 0.3 and i < 4
            notes.append(("q" if eighth else "") + _label(degree))
        notes[-1] += " -"
        half.append(" ".join(notes) + " 0")
    return "1=C " + " / ".join(half + half)  # no metre: the phrases are not cut into bars


def singable(tune: str) -> bool:
    """No step that every tone pair finds unacceptable (a leap of 11+ semitones up, or 15+
    down, under ReLyMe's table): `--tone-fit strict` refuses such a tune, so the benchmark
    leaves it out for every mode alike."""
    from lyricgen.craft.melody_io import load_melody

    steps = [x for row in load_melody(jianpu=tune).steps() for x in row if x is not None]
    return all(-14 <= x <= 10 for x in steps)


def tunes(n: int) -> list[str]:
    rng = random.Random(2026)
    out = list(TUNES[:n])
    while len(out) < n:
        tune = song_tune(rng)
        if singable(tune):
            out.append(tune)
    return out


def fit(model: str, n_tunes: int, samples: int) -> dict:
    import lyricgen
    from lyricgen.craft.melody_io import load_melody
    from lyricgen.errors import LyricgenError

    lyricist = lyricgen.load(model)
    out = {}
    base_ppl = None
    for mode in ("off", "soft", "strict"):
        matched = total = daozi = scored = 0
        ppl = []
        t0 = time.perf_counter()
        for i, tune in enumerate(tunes(n_tunes)):
            melody = load_melody(jianpu=tune)
            try:
                got = lyricist.generate("", jianpu=tune, tone_fit=mode, seed=i,
                                        num_samples=samples)  # fmt: skip
            except LyricgenError as exc:  # strict on a leap no tone takes
                print(f"  tune {i + 1} ({mode}): {exc}", flush=True)
                continue
            for s in got:
                total += 1
                lines = [ln for ln in s.text.splitlines() if ln.strip()]
                han = [sum("\u4e00" <= c <= "\u9fff" for c in ln) for ln in lines]
                matched += han == melody.lengths()
                if s.fit is not None:
                    daozi += s.fit.daozi
                    scored += s.fit.scored
                ppl.append(s.perplexity)
        med = statistics.median(ppl) if ppl else float("nan")
        if mode == "off":
            base_ppl = med
        row = {
            "samples": total,
            "lengths_matched": matched / max(total, 1),
            "daozi_rate": daozi / max(scored, 1),
            "scored": scored,
            "median_ppl": med,
            "ppl_ratio": med / base_ppl if base_ppl else float("nan"),
            "seconds": time.perf_counter() - t0,
        }
        out[mode] = row
        print(f"{mode:7s} lengths {row['lengths_matched']:.1%}  倒字 {row['daozi_rate']:.2%} of "
              f"{scored}  ppl {med:.1f} ({row['ppl_ratio']:.3f}x off)  {row['seconds']:.0f} s",
              flush=True)  # fmt: skip
    out["daozi_ratio_soft"] = out["soft"]["daozi_rate"] / max(out["off"]["daozi_rate"], 1e-9)
    print(f"soft's 倒字 rate is {out['daozi_ratio_soft']:.3f} of free text's")
    return out


def speed(model: str, runs: int = 5) -> dict:
    from lyricgen.craft.melody_io import load_melody

    rng = random.Random(7)
    tune = song_tune(rng, 16)
    lengths = ",".join(map(str, load_melody(jianpu=tune).lengths()))
    cmds = {
        "melody": ["generate", "--jianpu", tune, "--seed", "1"],
        "line-lengths": ["generate", "--line-lengths", lengths, "--seed", "1"],
    }
    out = {}
    for name, args in cmds.items():
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "lyricgen", *args, "--checkpoint", model],
                           check=True, capture_output=True)  # fmt: skip
            times.append(time.perf_counter() - t)
        out[name] = statistics.median(times)
        print(f"{name:13s} median {out[name]:.2f} s of {runs} ({lengths})", flush=True)
    out["ratio"] = out["melody"] / out["line-lengths"]
    print(f"melody / line-lengths: {out['ratio']:.2f}x")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="verse")
    ap.add_argument("--tunes", type=int, default=12)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--sections", nargs="+", default=["fit", "speed"])
    ap.add_argument("--json")
    a = ap.parse_args()
    res = {}
    if "fit" in a.sections:
        res["fit"] = fit(a.model, a.tunes, a.samples)
    if "speed" in a.sections:
        res["speed"] = speed(a.model)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(res, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
