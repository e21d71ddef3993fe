"""Peak memory and wall time of a whole `lyricgen train` on big corpora (issue 8, part 3).

    python benchmarks/memory.py --workdir /tmp/lyricgen-mem [--repeats 30 120] [--word 3]

Builds corpora by repeating ../shared/corpora/songci.txt (30 and 120 times by default),
then for each runs, as a user would,

    lyricgen train --config configs/songci_char.yaml --corpus BIG --max-minutes 0.25
                   --set data.val_fraction=0.002

twice: first with an empty token cache (tokenizing), then again (reading the cache). Peak
RSS comes from the kernel's accounting of the child (`resource.getrusage(RUSAGE_CHILDREN)`),
wall time from the clock. With --word N, the same for a word-level (jieba) model on songci
repeated N times (configs/jaychou_word.yaml's model, 6 s of training), reporting
segmentation speed in chars/s for the first run and the cached one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SONGCI = REPO.parent / "shared" / "corpora" / "songci.txt"


def lyricgen() -> list[str]:
    script = Path(sys.executable).parent / "lyricgen"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lyricgen"]


def run_child(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, stderr) of one command. RUSAGE_CHILDREN's maxrss is the
    largest child so far, so each command runs under a fresh probe process of its own."""
    probe = (
        "import resource, subprocess, sys, time, json;"
        "t = time.perf_counter();"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "w = time.perf_counter() - t;"
        "m = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024;"
        "print(json.dumps({'wall': w, 'rss': m, 'rc': p.returncode, 'err': p.stderr[-3000:]}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *cmd], env=env, capture_output=True, text=True, cwd=REPO
    )
    r = json.loads(out.stdout)
    if r["rc"] != 0:
        raise SystemExit(f"failed ({r['rc']}): {' '.join(cmd)}\n{r['err']}")
    return r["wall"], r["rss"], r["err"]


def repeat_corpus(path: Path, times: int) -> Path:
    if not path.exists():
        with open(path, "wb") as out:
            data = SONGCI.read_bytes()
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
    name: str,
    corpus: Path,
    config: str,
    minutes: float,
    work: Path,
    env: dict,
    sets: tuple[str, ...] = (),
) -> dict:
    cache = work / f"cache-{name}"
    shutil.rmtree(cache, ignore_errors=True)
    env = {**env, "LYRICGEN_CACHE_DIR": str(cache)}
    cmd = [
        *lyricgen(),
        "train",
        "--config",
        config,
        "--corpus",
        str(corpus),
        "--out",
        str(work / f"run-{name}"),
        "--overwrite",
        "--max-minutes",
        str(minutes),
        "--set",
        "data.val_fraction=0.002",
        *(x for kv in sets for x in ("--set", kv)),
    ]
    chars = len(corpus.read_text(encoding="utf-8"))
    row = {"name": name, "bytes": corpus.stat().st_size, "chars": chars}
    for phase in ("first", "cached"):
        wall, rss, err = run_child(cmd, env)
        row[phase] = {"wall_s": wall, "peak_rss_mib": rss, "seg_chars_per_s": seg_speed(err)}
        print(
            f"{name:>12} {phase:>6}: {wall:6.1f} s wall, peak RSS {rss:7.0f} MiB"
            + f", tokens ready at {row[phase]['seg_chars_per_s'] or 0:,.0f} chars/s"
        )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/lyricgen-mem"))
    ap.add_argument("--repeats", type=int, nargs="*", default=[30, 120])
    ap.add_argument("--word", type=int, default=3, help="songci repeats for the word run (0: skip)")
    ap.add_argument(
        "--word-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra override for the word runs, e.g. data.max_size=20000 (repeatable)",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not SONGCI.exists():
        print(f"skipped: {SONGCI} is absent")
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "LYRICGEN_CACHE_DIR"}
    import torch

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"Python {platform.python_version()}"
    )
    rows = []
    if args.word:
        corpus = repeat_corpus(args.workdir / f"songci{args.word}.txt", args.word)
        name = f"word x{args.word}" + "".join(f" {kv}" for kv in args.word_set)
        rows.append(
            measure(
                name,
                corpus,
                "configs/jaychou_word.yaml",
                0.1,
                args.workdir,
                env,
                tuple(args.word_set),
            )
        )
        r = rows[-1]
        print(f"word level: second run {r['first']['wall_s'] / r['cached']['wall_s']:.1f}x faster")
    for n in sorted(args.repeats):
        corpus = repeat_corpus(args.workdir / f"songci{n}.txt", n)
        rows.append(
            measure(f"char x{n}", corpus, "configs/songci_char.yaml", 0.25, args.workdir, env)
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
