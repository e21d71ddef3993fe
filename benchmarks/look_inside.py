"""What looking inside costs: `--explain` against plain generation, `lyricgen inspect` on
held-out text, and `lyricgen --help` with Typer's shell completion on and off.

    python benchmarks/look_inside.py --run RUN [--run RUN ...] [--runs 7]

- explain: the library's `generate` (model loading excluded), 300 tokens from 星星, one
  sample, with and without `explain=True`, alternating, on both backends; and the same
  under `--form 七绝` (8 line candidates). Median wall time per call and the ratio.
- inspect: the whole `lyricgen inspect RUN --tokens 100000 --json` process (the run's own
  held-out split), once; its report gives the units and their correlations.
- help: the whole `lyricgen --help` process, completion on (as shipped) and off (Typer's
  `_add_completion` turned off before the app runs), alternating, median.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import harness as H


def explain_cost(run: str, runs: int) -> list[dict]:
    import lyricgen
    from lyricgen.craft.options import SamplingOptions
    from lyricgen.craft.rhyme import is_han

    rows = []
    for backend in ("numpy", "torch"):
        lg = lyricgen.load(run, backend=backend)
        cases = [("free text, 300 tokens", {"length": 300})]
        if any(is_han(c) for t in lg.vocab.itos for c in t):
            cases.append(("--form 七绝 (8 candidates)", {"form": "七绝"}))
        for name, kw in cases:
            plain, explained = [], []
            for i in range(runs):  # alternating, so drift hits both alike
                for explain, acc in ((False, plain), (True, explained)):
                    opts = SamplingOptions(seed=i, explain=explain, **kw)
                    t0 = time.perf_counter()
                    lg.generate("星星", opts)
                    acc.append(time.perf_counter() - t0)
            a, b = H.median(plain), H.median(explained)
            rows.append({"backend": backend, "case": name, "plain_s": a, "explain_s": b,
                         "ratio": b / a})  # fmt: skip
    return rows


def inspect_cost(run: str, tokens: int) -> dict:
    out = Path(f"/tmp/lyricgen-inspect-{os.getpid()}.html")
    t0 = time.perf_counter()
    r = subprocess.run(
        [*H.lyricgen_cmd(), "inspect", run, "--tokens", str(tokens), "--out",
         str(out), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    report = json.loads(r.stdout.splitlines()[-1])
    return {"wall_s": wall, **report}


HELP_OFF = (
    "import sys; from lyricgen.frontend import cli; cli.app._add_completion = False; "
    "sys.argv = ['lyricgen', '--help']; cli.main()"
)


def help_cost(runs: int) -> dict:
    on, off = [], []
    for _ in range(runs):
        for cmd, acc in (([sys.executable, "-m", "lyricgen", "--help"], on),
                         ([sys.executable, "-c", HELP_OFF], off)):  # fmt: skip
            acc.append(H.wall(cmd))
    return {"completion_on_s": H.median(on), "completion_off_s": H.median(off)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", required=True)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--tokens", type=int, default=100_000)
    args = ap.parse_args()
    import torch

    print(H.machine_line(H.machine_info(torch.get_num_threads())))
    for run in args.run:
        print(f"\n{run}")
        for row in explain_cost(run, args.runs):
            print(f"  explain, {row['backend']:<5} {row['case']:<28} plain {row['plain_s']:.3f} s, "
                  f"explain {row['explain_s']:.3f} s, ratio {row['ratio']:.3f}")  # fmt: skip
        rep = inspect_cost(run, args.tokens)
        print(f"  inspect: {rep['tokens']:,} tokens in {rep['wall_s']:.1f} s (whole process; "
              f"reading {rep['seconds']:.1f} s)")  # fmt: skip
        for feature, units in rep["units"].items():
            listed = ", ".join(f"{u['unit']} {u['score']:+.3f}" for u in units)
            print(f"    {feature}: {listed}")
    h = help_cost(args.runs)
    print(f"\nlyricgen --help: completion on {h['completion_on_s']:.3f} s, off "
          f"{h['completion_off_s']:.3f} s (median of {args.runs})")  # fmt: skip


if __name__ == "__main__":
    main()
