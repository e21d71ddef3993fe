"""Whole-process wall time of `lyricgen generate --start 星星 --length 99`, NumPy vs torch.

    python benchmarks/startup.py checkpoints/jaychou_char checkpoints/jaychou_word

Each command runs once to warm the disk cache, then --runs times; the median is reported
with the torch path's time and the ratio between them.
"""

from __future__ import annotations

import argparse

import harness as H


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs_dirs", nargs="+", metavar="RUN_DIR")
    ap.add_argument("--runs", type=int, default=11)
    args = ap.parse_args()
    exe = H.lyricgen_cmd()  # the installed console script
    print(f"{H.machine_line()}; median of {args.runs} whole-process runs after one warm-up")

    def row(run: str) -> list[str]:
        times = {}
        for backend in ("numpy", "torch"):
            cmd = [
                *exe,
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
            H.wall(cmd)
            times[backend] = H.median(H.wall(cmd) for _ in range(args.runs))
        return [run, f"{times['numpy']:.3f}", f"{times['torch']:.3f}",
                f"{times['torch'] / times['numpy']:.1f}x"]  # fmt: skip

    H.table(
        ["run directory", "NumPy backend (s)", "torch backend (s)", "torch / NumPy"],
        map(row, args.runs_dirs),
    )


if __name__ == "__main__":
    main()
