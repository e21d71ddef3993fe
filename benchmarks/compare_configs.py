"""Train several configs for the same time budget and tabulate their validation figures.

Runs are paired: two trainings at once, one thread each, so both members of a pair get
one core under the same conditions. Example (what docs/BENCHMARKS.md and the README report):

    python benchmarks/compare_configs.py --minutes 12 \\
        jaychou_word=configs/jaychou_word.yaml tutorial_jaychou=configs/tutorial.yaml \\
        jaychou_char=configs/jaychou_char.yaml \\
        tutorial_songci=configs/tutorial.yaml@../shared/corpora/songci.txt \\
        songci_char=configs/songci_char.yaml

NAME=CONFIG[@CORPUS]; the corpus defaults to the config's data.corpus. Needs
../shared/corpora (skips cleanly without it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_pair(jobs: list[tuple[str, str, str | None]], minutes: float, out_root: Path) -> None:
    procs = []
    for name, config, corpus in jobs:
        cmd = [
            sys.executable,
            "-m",
            "lyricgen",
            "train",
            "--config",
            config,
            "--out",
            str(out_root / name),
            "--max-minutes",
            str(minutes),
            "--set",
            "train.num_threads=1",
        ]
        if corpus:
            cmd += ["--corpus", corpus]
        log = open(out_root / f"{name}.log", "w", encoding="utf-8")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        procs.append(
            (name, subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env))
        )
    for name, p in procs:
        if p.wait() != 0:
            print(f"{name} failed; see {out_root / (name + '.log')}", file=sys.stderr)


def summarize(name: str, run: Path) -> dict:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    best = min(rows, key=lambda r: r["val_loss"])
    cfg = (run / "config.yaml").read_text(encoding="utf-8")
    return {
        "name": name,
        "level": next(
            line.split(":")[1].strip()
            for line in cfg.splitlines()
            if line.strip().startswith("level:")
        ),
        "epochs": rows[-1]["epoch"],
        "best_epoch": best["epoch"],
        "val_ppl": best["val_ppl"],
        "val_bpc": best["val_bpc"],
        "val_unk_rate": best.get("val_unk_rate"),
        "tokens_per_s": sorted(r["tokens_per_s"] for r in rows)[len(rows) // 2],
        "train_minutes": rows[-1]["elapsed_s"] / 60,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("runs", nargs="+", help="NAME=CONFIG[@CORPUS]")
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--summarize-only", action="store_true")
    args = ap.parse_args()
    if not (REPO.parent / "shared" / "corpora").is_dir():
        print("skipped: ../shared/corpora is absent")
        return
    out_root = (REPO / args.out).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    jobs = []
    for spec in args.runs:
        name, _, rest = spec.partition("=")
        config, _, corpus = rest.partition("@")
        jobs.append((name, config, corpus or None))
    if not args.summarize_only:
        for i in range(0, len(jobs), 2):
            run_pair(jobs[i : i + 2], args.minutes, out_root)
    import torch

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"one thread per run, {args.minutes} min of training per run"
    )
    print(
        "| run | level | epochs | best epoch | val ppl | val bpc | val <unk> | tokens/s | minutes |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, _, _ in jobs:
        s = summarize(name, out_root / name)
        print(
            f"| {s['name']} | {s['level']} | {s['epochs']} | {s['best_epoch']} | {s['val_ppl']:.2f} | "
            f"{s['val_bpc']:.3f} | {s['val_unk_rate']:.1%} | {s['tokens_per_s']:,.0f} | "
            f"{s['train_minutes']:.1f} |"
        )


if __name__ == "__main__":
    main()
