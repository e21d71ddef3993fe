"""Whole-process wall time of `lyricgen generate --start 星星 --length 99`, NumPy vs torch.

    python benchmarks/startup.py checkpoints/jaychou_char checkpoints/jaychou_word

Each command runs once to warm the disk cache, then --runs times; the median is reported
with the torch path's time and the ratio between them.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs_dirs", nargs="+", metavar="RUN_DIR")
    ap.add_argument("--runs", type=int, default=11)
    args = ap.parse_args()
    script = Path(sys.executable).parent / "lyricgen"  # the installed console script
    exe = (
        str(script)
        if script.exists()
        else shutil.which("lyricgen") or f"{sys.executable} -m lyricgen"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"median of {args.runs} whole-process runs after one warm-up"
    )
    print("| run directory | NumPy backend (s) | torch backend (s) | torch / NumPy |")
    print("|---|---|---|---|")
    for run in args.runs_dirs:
        times = {}
        for backend in ("numpy", "torch"):
            cmd = [
                *exe.split(),
                "generate",
                "--checkpoint",
                run,
                "--start",
                "星星",
                "--length",
                "99",
                "--seed",
                "1",
                "--backend",
                backend,
            ]
            wall(cmd)
            times[backend] = statistics.median(wall(cmd) for _ in range(args.runs))
        print(
            f"| {run} | {times['numpy']:.3f} | {times['torch']:.3f} | {times['torch'] / times['numpy']:.1f}x |"
        )


if __name__ == "__main__":
    main()
