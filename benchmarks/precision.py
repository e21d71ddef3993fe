"""Does a lower precision pay on this machine? fp32 against bf16 for the same steps.

    python benchmarks/precision.py [--chars 200000] [--device cpu] [--precisions fp32 bf16]

Trains harness.Shape, the peer example's demo shape (char level, 2-layer LSTM 256,
embedding 128, batch 20, BPTT 35, stateful, SGD lr 20, clip 0.25) for one epoch over the
first --chars characters of ../shared/corpora/songci.txt, once per precision, with the same
seed, through the real `lyricgen train` CLI. Reports the training tokens/s and the
validation loss after those same steps. A lower precision counts only if its validation loss
is within 1% of fp32's (the issue's rule) and it is faster.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

import harness as H

# the example's shape, with a 5% held-out split
SHAPE = (*H.Shape().sets(), "data.val_fraction=0.05")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=H.SONGCI)
    ap.add_argument("--chars", type=int, default=200_000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not args.corpus.exists():
        print(f"skipped: {args.corpus} is absent")
        return
    import torch

    bf16_native = bool(getattr(torch.backends.mkldnn, "is_available", lambda: False)()) and bool(
        torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )
    print(
        f"{H.machine_line()}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"native bf16: {bf16_native}"
    )
    cmd0 = H.lyricgen_cmd()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text(args.corpus.read_text(encoding="utf-8")[: args.chars], "utf-8")
        for p in args.precisions:
            out = Path(tmp) / p
            sets = [x for kv in [*SHAPE, f"train.precision={p}"] for x in ("--set", kv)]
            cmd = [
                *cmd0,
                "train",
                "--corpus",
                str(corpus),
                "--out",
                str(out),
                "--device",
                args.device,
                "--seed",
                "1",
                *sets,
            ]
            r = subprocess.run(
                cmd,
                cwd=H.REPO,
                capture_output=True,
                text=True,
                env={**os.environ, "LYRICGEN_CACHE_DIR": tmp},
            )
            if r.returncode != 0:
                print(f"{p}: failed: {r.stderr.strip().splitlines()[-1]}")
                continue
            m = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
            rows.append(
                {
                    "precision": p,
                    "steps": m["step"],
                    "tokens_per_s": m["tokens_per_s"],
                    "val_loss": m["val_loss"],
                }
            )
    base = next((r for r in rows if r["precision"] == "fp32"), None)
    for r in rows:
        r["speed_vs_fp32"] = H.ratio(r["tokens_per_s"], base and base["tokens_per_s"])
        loss = H.ratio(r["val_loss"], base and base["val_loss"])
        r["val_loss_vs_fp32"] = None if loss is None else loss - 1
    H.table(
        ["precision", "steps", "tokens/s", "speed (x fp32)", "val loss", "vs fp32"],
        ([r["precision"], r["steps"], H.fmt(r["tokens_per_s"]), H.fmt(r["speed_vs_fp32"], ".2f"),
          f"{r['val_loss']:.4f}", H.fmt(r["val_loss_vs_fp32"], "+.2%")] for r in rows),
        "lrrrrr",
    )  # fmt: skip
    H.write_json(args.json, rows)


if __name__ == "__main__":
    main()
