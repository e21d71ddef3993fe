"""Does a lower precision pay on this machine? fp32 against bf16 for the same steps.

    python benchmarks/precision.py [--chars 200000] [--device cpu] [--precisions fp32 bf16]

Trains the benchmark shape of benchmarks/train_speed.py (char level, 2-layer LSTM 256,
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
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHAPE = [
    "data.level=char",
    "data.seq_len=35",
    "data.stride=35",
    "data.batch_size=20",
    "data.mode=stateful",
    "data.val_fraction=0.05",
    "model.cell=lstm",
    "model.embedding_dim=128",
    "model.hidden_size=256",
    "model.num_layers=2",
    "model.dropout=0.2",
    "model.tie_weights=false",
    "train.epochs=1",
    "train.optimizer=sgd",
    "train.lr=20",
    "train.momentum=0",
    "train.weight_decay=0",
    "train.clip_grad_norm=0.25",
    "train.scheduler=none",
    "train.warmup_steps=0",
    "train.patience=null",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared/corpora/songci.txt")
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
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, native bf16: {bf16_native}"
    )
    exe = Path(sys.executable).parent / "lyricgen"
    cmd0 = [str(exe)] if exe.exists() else [sys.executable, "-m", "lyricgen"]
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
                cwd=REPO,
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
    print(
        f"{'precision':>9} {'steps':>6} {'tokens/s':>9} {'speed':>6} {'val loss':>9} {'vs fp32':>8}"
    )
    for r in rows:
        speed = r["tokens_per_s"] / base["tokens_per_s"] if base else float("nan")
        dloss = r["val_loss"] / base["val_loss"] - 1 if base else float("nan")
        r["speed_vs_fp32"], r["val_loss_vs_fp32"] = speed, dloss
        print(
            f"{r['precision']:>9} {r['steps']:>6} {r['tokens_per_s']:>9,.0f} {speed:>5.2f}x "
            f"{r['val_loss']:>9.4f} {dloss:>+7.2%}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
