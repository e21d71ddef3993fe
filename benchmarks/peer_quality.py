"""Held-out quality after the same wall time: PyTorch's word_language_model on lyricgen's
Song ci split.

    python benchmarks/peer_quality.py --peer-git <pytorch/examples git dir> --minutes 15 \\
        [--peer-args "--model LSTM --emsize 128 --nhid 256 --nlayers 2 --dropout 0.2 --lr 20"]

The split is lyricgen's own (`tokenize_file(..., val_fraction=0.05)`: the last 5% of the
songs held out), written as the example wants it: one line per corpus line, its characters
separated by spaces (the example adds `<eos>` per line where lyricgen has a newline token;
a blank line between songs becomes a lone `<eos>`). The example trains with its own
`main.py` (CPU) until `--minutes` of wall time have passed, and its best validation
perplexity per token is turned into bits per token, log2(ppl), as the issue did. Compare it
with `lyricgen train --config configs/songci_char.yaml --corpus ../shared/corpora/songci.txt`
(its 15-minute cap), whose held-out bpc is in its metrics.jsonl.
"""

from __future__ import annotations

import argparse
import math
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness as H

DEMO = "--model LSTM --emsize 128 --nhid 256 --nlayers 2 --dropout 0.2 --lr 20 --clip 0.25"
EPOCH = re.compile(r"end of epoch\s+(\d+).*?valid loss\s+([\d.]+).*?valid ppl\s+([\d.]+)")


def write_split(corpus: Path, out: Path) -> tuple[int, int]:
    from lyricgen.corpus.tokcache import tokenize_file

    tok = tokenize_file(corpus, "char", "utf-8", 0.05, None)
    text = "".join(tok.types[i] for i in tok.raw)
    train = "".join(tok.types[i] for i in tok.raw[: tok.n_train])
    val = text[len(train) :]
    H.write_peer_data(out, train, val)
    return len(train), len(val)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-git", type=Path, required=True)
    ap.add_argument("--peer-rev", default="HEAD", help="revision of --peer-git")
    ap.add_argument("--corpus", type=Path, default=H.SONGCI)
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--peer-args", default=DEMO)
    args = ap.parse_args()
    if not args.corpus.exists():
        sys.exit(f"corpus not found: {args.corpus} (pass --corpus)")
    tmp = Path(tempfile.mkdtemp(prefix="lyricgen-peer-quality-"))
    peer, commit = H.extract_peer(args.peer_git, args.peer_rev, tmp)
    print(H.machine_line())
    n_train, n_val = write_split(args.corpus, tmp / "data")
    print(
        f"split: {n_train:,} training and {n_val:,} held-out characters; peer {commit[:12]} "
        f"{args.peer_args}"
    )
    cmd = [sys.executable, "main.py", "--data", str(tmp / "data"), "--epochs", "1000",
           "--batch_size", "20", "--bptt", "35", "--save", str(tmp / "model.pt"),
           *shlex.split(args.peer_args)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=peer, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    best = None
    deadline = t0 + args.minutes * 60
    try:
        for line in proc.stdout:
            m = EPOCH.search(line)
            if m:
                epoch, ppl = int(m.group(1)), float(m.group(3))
                elapsed = time.perf_counter() - t0
                print(f"epoch {epoch}: valid ppl {ppl:.2f}, {math.log2(ppl):.3f} bits/token, "
                      f"{elapsed / 60:.1f} min", flush=True)  # fmt: skip
                if elapsed <= deadline - t0:
                    best = min(best or ppl, ppl)
            if time.perf_counter() > deadline:
                break
    finally:
        proc.kill()
        proc.wait()
    if best is None:
        print("no epoch finished within the budget")
        return
    print(
        f"best within {args.minutes:g} min: valid ppl {best:.2f}, {math.log2(best):.3f} bits/token"
    )


if __name__ == "__main__":
    main()
