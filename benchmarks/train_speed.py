"""Training speed (tokens/s) of lyricgen against PyTorch's word_language_model example.

    python benchmarks/train_speed.py --peer-git /path/to/pytorch-examples.git \\
        --seconds 60 --repeats 3 [--adaptive] [--side-by-side] [--json train_speed.json]

The peer is pytorch/examples' `word_language_model`: a checkout of that folder (`--peer-dir
DIR`), or a git dir of pytorch/examples (`--peer-git GITDIR`) whose Python files are
extracted to a temporary folder. Without either, only lyricgen is measured.

Both train the same shape on the same text: a 2-layer LSTM (embedding 128, hidden 256,
dropout 0.2), batch 20, BPTT 35, plain SGD at lr 20 with gradient clipping 0.25, at
character level on the first `--chars` characters of `--corpus` (default
../shared/corpora/songci.txt), which the example reads with each line's characters separated
by spaces (it adds `<eos>` per line where lyricgen has a newline token).

- peer: its own `main.py` (`--accel` with `--device cuda`), `--epochs 1 --log-interval N`,
  stopped once its logged intervals cover `--seconds` of training; tokens/s = batch * bptt *
  1000 / (ms/batch), median over the intervals after the first (warm-up).
- lyricgen: the real `lyricgen train` CLI, `--max-minutes` = `--seconds` / 60, stateful
  batches and the same settings through `--set`. "by epoch" is the last metrics.jsonl row's
  tokens/s (warm-up and validation included); "train-only" is steps * batch * seq_len /
  elapsed_s of a single partial epoch; "steady" is the median `train.log_every` window
  after the first, measured as the peer's figure is. `--adaptive` adds a variant with
  `model.output=adaptive` in every repeat; `--lyricgen-set KEY=VALUE` goes to every run.

Back to back (default): peer, lyricgen, peer, ... (`--repeats` rounds), each with
`--threads` threads. `--side-by-side`: the two at the same moment, one thread each, each
pinned to its own core with `taskset` (swapped every repeat), reporting the ratio within
each pair: on a shared host whose speed drifts from minute to minute, a pair that runs at
the same moment sees the same host, so its ratio keeps only the programs' difference.

GFLOP/s = tokens/s * training FLOPs per token (harness.flops_per_token, full softmax
only), as a share of the fp32 `torch.mm` peak with the same threads. Column "others" is how
many cores other processes kept busy during a run; above 0.2 the figures are flagged.
(The sweep over every shipped config is `benchmarks/compare_configs.py --speed`.)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import harness as H

RATES = (  # lyricgen's rows: (label, the run key holding its tokens/s)
    ("by epoch", "tokens_per_s"),
    ("train-only", "train_only_tokens_per_s"),
    ("steady", "steady_tokens_per_s"),
)


def summarize(runs: list[dict], key: str, peak: float, flops: dict | None = None) -> dict | None:
    """Median tokens/s of `runs` under `key`, its GFLOP/s and share of the peak."""
    ok = [r for r in runs if r.get(key)]
    if not ok:
        return None
    flops = flops or next((r["flops_per_token"] for r in ok if "flops_per_token" in r), None)
    rate = H.median(r[key] for r in ok)
    g = H.gflops(rate, flops)
    return {
        "tokens_per_s": rate,
        "runs": [r[key] for r in ok],
        "other_cores_busy": [r["other_cores_busy"] for r in ok],
        "flops_per_token": flops,
        "gflops": g,
        "fraction_of_peak": H.ratio(g, peak),
        "val_bpc_median": H.median(r["val_bpc"] for r in ok if r.get("val_bpc")),
    }


def run_line(r: dict) -> str:
    if "error" in r:
        return r["error"]
    return f"{H.fmt(r.get('tokens_per_s'))} tokens/s (others {r['other_cores_busy']:.2f})"


class Bench:
    """One comparison: the text, the peer (if any), the lyricgen variants and their runs."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        self.shape = H.Shape(
            cell=args.cell, embedding=args.embedding, hidden=args.hidden, layers=args.layers,
            batch_size=args.batch_size, bptt=args.bptt,
        )  # fmt: skip
        self.text = args.corpus.read_text(encoding="utf-8")[: args.chars]
        (tmp / "corpus.txt").write_text(self.text, encoding="utf-8")
        self.peer_dir, self.commit, self.peer_vocab = None, None, 0
        if args.peer_git:
            self.peer_dir, self.commit = H.extract_peer(args.peer_git, args.peer_rev, tmp)
        elif args.peer_dir:
            self.peer_dir, self.commit = args.peer_dir.resolve(), H.peer_commit(args.peer_dir)
        else:
            print("peer skipped: no --peer-dir or --peer-git given; measuring lyricgen only")
        if self.peer_dir:
            held = max(1000, len(self.text) // 50)
            valid = self.text[-held:]
            self.peer_vocab = H.write_peer_data(
                tmp / "peer-data", self.text, valid, valid[-held // 4 :]
            )
        sets = self.shape.sets() + args.lyricgen_set
        self.variants = {"lyricgen": sets}
        if args.adaptive:  # the same shape with an adaptive softmax (no tied weights)
            self.variants["lyricgen_adaptive"] = [*sets, "model.output=adaptive"]

    def peer(self, work: str, threads: int, core: int | None = None) -> dict:
        a = self.args
        return H.run_peer(
            self.peer_dir, self.shape.peer_args(self.tmp / "peer-data", a.device),
            self.tmp / work, threads=threads, seconds=a.seconds,
            log_interval=a.peer_log_interval, python=a.python, core=core,
            tokens_per_batch=self.shape.batch_size * self.shape.bptt,
        )  # fmt: skip

    def lyricgen(self, name: str, i: int, threads: int, core: int | None = None) -> dict:
        lg_args = ["--config", "configs/default.yaml", "--corpus", str(self.tmp / "corpus.txt")]
        return H.run_lyricgen(
            self.tmp / f"{name}-{i}", lg_args, self.variants[name], threads=threads,
            minutes=self.args.seconds / 60, device=self.args.device, core=core,
        )  # fmt: skip

    def pair(self, i: int, name: str) -> dict:
        """The peer and one variant at the same moment, one thread each, on cores swapped
        every repeat: a host that speeds up or slows down moves both, not their ratio."""
        cores = (0, 1) if i % 2 == 0 else (1, 0)
        print(f"[{i + 1}] peer (core {cores[0]}) and {name} (core {cores[1]}) ...", end=" ")
        cpu0, t0 = H.cpu_snapshot(), time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            p = pool.submit(self.peer, f"peer-{name}-{i}", 1, cores[0])
            r = pool.submit(self.lyricgen, name, i, 1, cores[1])
            p, r = p.result(), r.result()
        # both programs are children of this process: the rest is what others took
        others = H.other_cores(cpu0, H.cpu_snapshot(), time.perf_counter() - t0)
        p["other_cores_busy"] = r["other_cores_busy"] = others
        pair = {"peer": p, "lyricgen": r, "cores": {"peer": cores[0], "lyricgen": cores[1]}}
        pair["ratio"] = H.ratio(r.get("tokens_per_s"), p.get("tokens_per_s"))
        pair["steady_ratio"] = H.ratio(r.get("steady_tokens_per_s"), p.get("tokens_per_s"))
        print(
            f"peer {H.fmt(p.get('tokens_per_s'))}, {name} {H.fmt(r.get('tokens_per_s'))} "
            f"tokens/s; ratio {H.fmt(pair['ratio'], '.3f')}, steady "
            f"{H.fmt(pair['steady_ratio'], '.3f')} (others {others:.2f})",
            flush=True,
        )
        return pair

    def run(self, peak: float) -> dict:
        a = self.args
        peer_runs: list[dict] = []
        runs: dict[str, list[dict]] = {name: [] for name in self.variants}
        pairs: dict[str, list[dict]] = {name: [] for name in self.variants}
        for i in range(a.repeats):
            if a.side_by_side and self.peer_dir:
                for name in self.variants:
                    pair = self.pair(i, name)
                    peer_runs.append(pair["peer"])
                    runs[name].append(pair["lyricgen"])
                    pairs[name].append(pair)
                continue
            if self.peer_dir:
                print(f"[{i + 1}/{a.repeats}] peer ...", end=" ", flush=True)
                peer_runs.append(self.peer(f"peer-{i}", a.threads))
                print(run_line(peer_runs[-1]))
            for name in self.variants:
                print(f"[{i + 1}/{a.repeats}] {name} ...", end=" ", flush=True)
                runs[name].append(self.lyricgen(name, i, a.threads))
                print(run_line(runs[name][-1]))
        sh = self.shape
        peer_flops = H.flops_per_token(sh.cell, sh.embedding, sh.hidden, sh.layers, self.peer_vocab)
        return {
            "corpus": str(a.corpus), "chars": len(self.text), "seconds": a.seconds,
            "repeats": a.repeats, "shape": asdict(sh), "side_by_side": bool(pairs["lyricgen"]),
            "peer_dir": str(self.peer_dir) if self.peer_dir else None,
            "peer_commit": self.commit, "peer_vocab": self.peer_vocab or None,
            "peer_runs": peer_runs,
            "peer": summarize(peer_runs, "tokens_per_s", peak, peer_flops),
            "variants": {
                name: {
                    "sets": self.variants[name], "runs": rs,
                    "vocab": next((r["shape"]["vocab"] for r in rs if "shape" in r), None),
                    "rates": {row: summarize(rs, key, peak) for row, key in RATES},
                    "pairs": [{k: v for k, v in p.items() if k not in ("peer", "lyricgen")}
                              for p in pairs[name]],
                }  # fmt: skip
                for name, rs in runs.items()
            },
        }  # fmt: skip


def print_report(report: dict) -> None:
    mm, cmp_ = report["matmul"], report["compare"]
    print(f"\n{H.machine_line(report['machine'])}\n{H.peak_line(mm)}\n")
    print(
        f"same shape, {cmp_['chars']:,} chars of {cmp_['corpus']}, ~{cmp_['seconds']:g} s "
        f"training per run, {cmp_['repeats']} repeat(s)"
        + (", side by side, one thread each" if cmp_["side_by_side"] else ", back to back")
    )
    peer = cmp_["peer"]
    rows = []

    def row(label: str, vocab: int | None, s: dict | None, base: dict | None = None) -> None:
        if not s:
            return
        mflop = s["flops_per_token"]["train"] / 1e6 if s["flops_per_token"] else None
        rows.append([
            label, H.fmt(vocab), H.fmt(mflop, ".2f"), f"**{H.fmt(s['tokens_per_s'])}**",
            ", ".join(H.fmt(x) for x in s["runs"]), H.fmt(s["gflops"], ".2f"),
            H.fmt(s["fraction_of_peak"], ".1%"), f"{max(s['other_cores_busy']):.2f}",
            H.fmt(H.ratio(s["tokens_per_s"], peer and peer["tokens_per_s"]), ".3f"),
            H.fmt(H.ratio(s["tokens_per_s"], base and base["tokens_per_s"]), ".3f"),
            H.fmt(s["val_bpc_median"], ".3f"),
        ])  # fmt: skip

    row("word_language_model", cmp_["peer_vocab"], peer)
    full = cmp_["variants"]["lyricgen"]["rates"]
    for name, v in cmp_["variants"].items():
        for label, s in v["rates"].items():
            row(f"{name} ({label})", v["vocab"], s, full[label] if name != "lyricgen" else None)
    H.table(
        ["program", "vocab", "MFLOP/token", "tokens/s", "runs", "GFLOP/s", "of peak", "others",
         "/ peer", "/ lyricgen full", "held-out bpc"],
        rows, "lrrrlrrrrrr",
    )  # fmt: skip
    for name, v in cmp_["variants"].items():
        if v["pairs"]:
            r = [p["ratio"] for p in v["pairs"] if p["ratio"]]
            s = [p["steady_ratio"] for p in v["pairs"] if p["steady_ratio"]]
            print(
                f"{name} / peer pair by pair: {', '.join(H.fmt(x, '.3f') for x in r)} (median "
                f"{H.fmt(H.median(r), '.3f')}, lowest {H.fmt(min(r, default=None), '.3f')}); "
                f"steady {', '.join(H.fmt(x, '.3f') for x in s)} (median "
                f"{H.fmt(H.median(s), '.3f')}, lowest {H.fmt(min(s, default=None), '.3f')})"
            )
    runs = cmp_["peer_runs"] + [r for v in cmp_["variants"].values() for r in v["runs"]]
    warning = H.busy_warning((r["other_cores_busy"] for r in runs), report["machine"]["cores"])
    if warning:
        print(warning)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 1)[1],
    )
    peer = ap.add_mutually_exclusive_group()
    peer.add_argument("--peer-dir", type=Path, help="a checkout of word_language_model")
    peer.add_argument("--peer-git", type=Path, help="git dir of pytorch/examples")
    ap.add_argument("--peer-rev", default="HEAD", help="revision for --peer-git")
    ap.add_argument("--corpus", type=Path, default=H.SONGCI)
    ap.add_argument("--chars", type=int, default=400_000, help="characters of the corpus used")
    ap.add_argument("--seconds", type=float, default=60.0, help="training seconds per run")
    ap.add_argument("--repeats", type=int, default=3, help="peer/lyricgen rounds")
    ap.add_argument("--threads", type=int, default=H.usable_cores())
    ap.add_argument("--peer-log-interval", type=int, default=20, help="peer batches per interval")
    ap.add_argument("--lyricgen-set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra --set for every lyricgen run (repeatable)")  # fmt: skip
    ap.add_argument("--adaptive", action="store_true",
                    help="also train lyricgen with model.output=adaptive in every repeat")  # fmt: skip
    ap.add_argument("--side-by-side", action="store_true",
                    help="peer and lyricgen at the same time, one thread each, pinned to cores "
                    "0 and 1 (swapped every repeat); reports the ratio within each pair")  # fmt: skip
    ap.add_argument("--matmul-sizes", type=int, nargs="+", default=[1024, 2048])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    shape = ap.add_argument_group("shape of the compared model (default: the issue's)")
    shape.add_argument("--cell", choices=["lstm", "gru"], default=H.Shape.cell)
    for flag in ("embedding", "hidden", "layers", "batch_size", "bptt"):
        shape.add_argument(f"--{flag.replace('_', '-')}", type=int, default=getattr(H.Shape, flag))
    ap.add_argument("--python", default=sys.executable, help="interpreter for the peer")
    ap.add_argument("--json", type=Path, help="write all raw numbers here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary run directories")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    if args.side_by_side:
        args.threads = 1  # each program gets one core of its own
    if args.peer_dir and not (args.peer_dir / "main.py").exists():
        raise SystemExit(f"{args.peer_dir} has no main.py; pass a word_language_model folder")
    if not args.corpus.exists():
        raise SystemExit(f"corpus {args.corpus} not found; pass --corpus")
    report: dict[str, Any] = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": H.machine_info(args.threads, args.python),
    }
    print(H.machine_line(report["machine"]))
    print(f"fp32 matmul with {args.threads} threads ...", flush=True)
    report["matmul"] = H.matmul_peak(args.threads, args.matmul_sizes, args.device)
    tmp = Path(tempfile.mkdtemp(prefix="lyricgen-train-speed-"))
    try:
        report["compare"] = Bench(args, tmp).run(report["matmul"]["peak_gflops"])
    finally:
        if args.keep:
            print(f"run directories kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_report(report)
    H.write_json(args.json, report)


if __name__ == "__main__":
    main()
