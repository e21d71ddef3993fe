"""Peak memory and wall time of a whole `lyricgen train` on big corpora (issue 8, part 3),
each config as it ships unless its row says what was changed.

    python benchmarks/memory.py --workdir /tmp/lyricgen-mem [--repeats 30 120] [--word 3]

Builds corpora by repeating ../shared/corpora/songci.txt (N times), then for each runs
the whole command a user would, twice: first with an empty token cache (tokenizing), then
again (reading the cache). Peak RSS comes from the kernel's accounting of the child
(`resource.getrusage(RUSAGE_CHILDREN)`), wall time from the clock; "trained" is the
training time in metrics.jsonl, so wall - trained is start-up, tokens and validation;
"others" is how many cores other processes kept busy meanwhile (flagged above 0.2; on a
first word-level run it includes lyricgen's own segmentation workers, which run under a
forkserver rather than as this process's children, so their CPU time counts as "others"
and their memory is not in the peak RSS).

- `--word N` (default 3; 0 skips): configs/jaychou_word.yaml AS IT SHIPS on songci x N,
  `--max-minutes 0.1`: its validation is the shipped 10% held out, through its output layer;
  `--word-set KEY=VALUE` (repeatable) changes it, and the rows say so.
- `--repeats N ...` (default 30 120; none skips): configs/songci_char.yaml, `--max-minutes
  0.25`, with `data.val_fraction=0.002` (the rows say so): these rows measure tokenizing
  and memory, and at the shipped 5% a held-out pass over 2.8M (x30) or 11M (x120)
  characters would be most of the wall time. `--char-as-shipped` drops that change.

Each row prints the command and what it changed from the config as shipped (besides the
corpus and --max-minutes), beside its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import harness as H

WORD_CONFIG = "configs/jaychou_word.yaml"
CHAR_CONFIG = "configs/songci_char.yaml"
CHAR_SETS = ("data.val_fraction=0.002",)
SPLIT = re.compile(r"train (\d+) tokens, val (\d+) tokens")


def run_child(cmd: list[str], env: dict) -> tuple[float, float, str, float]:
    """(wall seconds, peak RSS MiB, stderr, cores other processes kept busy) of one command.
    RUSAGE_CHILDREN's maxrss is the largest child so far, so each command runs under a fresh
    probe process of its own."""
    probe = (
        "import resource, subprocess, sys, time, json;"
        "t = time.perf_counter();"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "w = time.perf_counter() - t;"
        "m = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024;"
        "print(json.dumps({'wall': w, 'rss': m, 'rc': p.returncode, 'err': p.stderr}))"
    )
    cpu0 = H.cpu_snapshot()
    out = subprocess.run(
        [sys.executable, "-c", probe, *cmd], env=env, capture_output=True, text=True, cwd=H.REPO
    )
    r = json.loads(out.stdout)
    others = H.other_cores(cpu0, H.cpu_snapshot(), r["wall"])
    if r["rc"] != 0:
        raise SystemExit(f"failed ({r['rc']}): {' '.join(cmd)}\n{r['err'][-3000:]}")
    return r["wall"], r["rss"], r["err"], others


def repeat_corpus(path: Path, times: int) -> Path:
    if not path.exists():
        with open(path, "wb") as out:
            data = H.SONGCI.read_bytes()
            for _ in range(times):
                out.write(data + b"\n")
    return path


def seg_speed(err: str) -> float | None:
    """chars/s from lyricgen's log: 'tokenized ... (N chars/s)' on a first run, 'token cache:
    ... (...; hashed, read and checked in S s, N chars/s)' when the cache is read."""
    for line in err.splitlines():
        if line.startswith(("tokenized ", "token cache: ")) and "chars/s" in line:
            return float(line.rsplit(", ", 1)[1].split(" chars/s")[0])
    return None


def measure(
    name: str, corpus: Path, config: str, minutes: float, work: Path, env: dict, sets: tuple
) -> dict:
    cache = work / f"cache-{name.replace(' ', '-')}"
    shutil.rmtree(cache, ignore_errors=True)
    env = {**env, "LYRICGEN_CACHE_DIR": str(cache)}
    out = work / f"run-{name.replace(' ', '-')}"
    cmd = [*H.lyricgen_cmd(), "train", "--config", config, "--corpus", str(corpus),
           "--out", str(out), "--overwrite", "--max-minutes", f"{minutes:g}",
           *(x for kv in sets for x in ("--set", kv))]  # fmt: skip
    changed = ", ".join(sets) if sets else "nothing: as shipped"
    row = {"name": name, "config": config, "changed": list(sets), "cmd": cmd,
           "bytes": corpus.stat().st_size, "chars": len(corpus.read_text(encoding="utf-8"))}  # fmt: skip
    print(f"{name}: {config}, changed: {changed}\n  $ {' '.join(cmd[1:])}", flush=True)
    for phase in ("first", "cached"):
        wall_s, rss, err, others = run_child(cmd, env)
        split = SPLIT.search(err)
        trained = H.read_metrics(out)[-1].get("elapsed_s")
        row[phase] = {
            "wall_s": wall_s, "peak_rss_mib": rss, "seg_chars_per_s": seg_speed(err),
            "trained_s": trained, "val_tokens": int(split.group(2)) if split else None,
            "other_cores_busy": others,
        }  # fmt: skip
        print(
            f"  {phase:>6}: {wall_s:6.1f} s wall ({H.fmt(trained, '.1f')} s trained), peak RSS "
            f"{rss:,.0f} MiB, tokens ready at {H.fmt(row[phase]['seg_chars_per_s'])} chars/s, "
            f"{H.fmt(row[phase]['val_tokens'])} held-out tokens; others {others:.2f}",
            flush=True,
        )
    row["cached_speedup"] = H.ratio(row["first"]["wall_s"], row["cached"]["wall_s"])
    print(f"  second run {row['cached_speedup']:.1f}x faster than the first ({changed})")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 1)[1],
    )
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/lyricgen-mem"))
    ap.add_argument("--repeats", type=int, nargs="*", default=[30, 120])
    ap.add_argument("--word", type=int, default=3, help="songci repeats for the word run (0: skip)")
    ap.add_argument("--word-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a change to the word runs, e.g. data.max_size=20000 (repeatable)")  # fmt: skip
    ap.add_argument("--char-as-shipped", action="store_true",
                    help=f"char runs without {', '.join(CHAR_SETS)}")  # fmt: skip
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not H.SONGCI.exists():
        print(f"skipped: {H.SONGCI} is absent")
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "LYRICGEN_CACHE_DIR"}
    print(H.machine_line())
    rows = []
    if args.word:
        corpus = repeat_corpus(args.workdir / f"songci{args.word}.txt", args.word)
        rows.append(measure(f"word x{args.word}", corpus, WORD_CONFIG, 0.1, args.workdir, env,
                            tuple(args.word_set)))  # fmt: skip
    char_sets = () if args.char_as_shipped else CHAR_SETS
    for n in sorted(args.repeats):
        corpus = repeat_corpus(args.workdir / f"songci{n}.txt", n)
        rows.append(measure(f"char x{n}", corpus, CHAR_CONFIG, 0.25, args.workdir, env, char_sets))
    # a first word-level run segments in forkserver workers, which are not this process's
    # children: their CPU time shows as "others" (and their memory is not in the peak RSS)
    busy = [r[p]["other_cores_busy"] for r in rows for p in ("first", "cached")
            if not (p == "first" and r["config"] == WORD_CONFIG)]  # fmt: skip
    warning = H.busy_warning(busy, os.cpu_count())
    if warning:
        print(warning)
    H.write_json(args.json, {"machine": H.machine_info(), "rows": rows})


if __name__ == "__main__":
    main()
