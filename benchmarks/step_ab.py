"""A/B of one training step in one process: a lyricgen speed-up against the plain torch way.

    python benchmarks/step_ab.py --compare loss      # linear_cross_entropy vs F.cross_entropy
    python benchmarks/step_ab.py --compare dropout   # lyricgen's CPU dropout vs torch's
    python benchmarks/step_ab.py --compare gru --shape songci   # gru_layer vs nn.GRU
    python benchmarks/step_ab.py --compare cell --shape songci --set model.cell=gru \\
        --b-set model.cell=lstm                      # any two configs, --set vs --b-set

Both variants train the same model on the same batches (`Trainer._train_epoch` over the
epoch's last `--steps` batches: the whole step, forward, loss, backward, clipping, optimizer,
and the loop's reporting), in alternating rounds of `--steps` steps so
that drift of a shared host falls on both; the first round of each is a warm-up and the
medians of the rest are reported. The shapes: `example` is PyTorch's word_language_model
demo at character level (2-layer LSTM 256, embedding 128, batch 20, BPTT 35, dropout 0.2,
SGD, full softmax unless --set model.output=adaptive); `songci` is configs/songci_char.yaml.
The corpus is the first 400,000 characters of --corpus (default ../shared/corpora/songci.txt).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import harness as H
import torch
import torch.nn.functional as F


def _parse_sets(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = yaml.safe_load(value)  # as `lyricgen train --set` reads a value
    return out


def _patches(compare: str):
    """(name_a, name_b, use(kind)) for a built-in comparison; a is torch's way."""
    import lyricgen.training.model as M

    if compare == "loss":
        fused = M.linear_cross_entropy

        def plain(h, w, b, y, reduction="mean"):
            return F.cross_entropy(F.linear(h, w, b), y, reduction=reduction)

        def use(kind: str) -> None:
            M.linear_cross_entropy = plain if kind == "a" else fused

        return "F.cross_entropy", "linear_cross_entropy", use
    if compare == "dropout":
        fast, layered = M.dropout, M.LyricsModel._recur

        def torch_dropout(x, p, training=True):
            return F.dropout(x, p, training)

        def use(kind: str) -> None:
            M.dropout = torch_dropout if kind == "a" else fast
            M.LyricsModel._recur = (lambda self, x, h: self.rnn(x, h)) if kind == "a" else layered

        return "torch dropout", "lyricgen dropout", use
    if compare == "gru":
        layered = M.LyricsModel._recur

        def use(kind: str) -> None:
            M.LyricsModel._recur = (lambda self, x, h: self.rnn(x, h)) if kind == "a" else layered

        return "torch nn.GRU", "lyricgen gru_layer", use
    return "--set", "--b-set", lambda kind: None


def _trainer(sets: dict, corpus: Path, work: Path, stack: contextlib.ExitStack, shape: str):
    from lyricgen.config import apply_overrides, from_dict, load_yaml
    from lyricgen.training.distributed import Dist
    from lyricgen.training.trainer import Trainer

    base = H.REPO / "configs" / ("songci_char.yaml" if shape == "songci" else "default.yaml")
    raw = load_yaml(base)
    values = H.Shape().values() if shape == "example" else {}
    values.update(
        {
            "data.corpus": str(corpus),
            "data.copy_index": False,
            "train.curves": False,
            "train.device": "cpu",
            "train.epochs": 1,
            "train.max_minutes": None,
            "out_dir": str(work),
        }
    )
    values.update(sets)
    raw = apply_overrides(raw, values, "step_ab")
    cfg = from_dict(raw, "step_ab")
    return Trainer(cfg, out=work, stack=stack, dist=Dist(), overwrite=True, callbacks=[])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--compare", choices=("loss", "dropout", "gru", "sets"), default="sets")
    ap.add_argument("--shape", choices=("example", "songci"), default="example")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE for both (or A)")
    ap.add_argument("--b-set", action="append", default=[], help="KEY=VALUE for B only")
    ap.add_argument("--corpus", type=Path, default=H.SONGCI)
    ap.add_argument("--chars", type=int, default=400_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not args.corpus.exists():
        sys.exit(f"corpus not found: {args.corpus} (pass --corpus)")
    torch.set_num_threads(args.threads)
    name_a, name_b, use = _patches(args.compare)
    sets_a = _parse_sets(args.set)
    sets_b = {**sets_a, **_parse_sets(args.b_set)}
    with (
        tempfile.TemporaryDirectory(prefix="lyricgen-step-ab-") as tmp,
        contextlib.ExitStack() as st,
    ):
        corpus = Path(tmp) / "corpus.txt"
        text = args.corpus.read_text(encoding="utf-8")[: args.chars]
        corpus.write_text(text, encoding="utf-8")
        torch.manual_seed(0)
        tr_a = _trainer(sets_a, corpus, Path(tmp) / "a", st, args.shape)
        tr_b = tr_a
        if args.compare == "sets":
            torch.manual_seed(0)
            tr_b = _trainer(sets_b, corpus, Path(tmp) / "b", st, args.shape)
        if tr_a.batches.streams is None or tr_b.batches.streams is None:
            sys.exit("step_ab needs stateful batches (data.mode: stateful)")
        res: dict[str, list[float]] = {"a": [], "b": []}
        for r in range(args.rounds):
            for kind in ("a", "b") if r % 2 == 0 else ("b", "a"):
                use(kind)
                tr = tr_a if kind == "a" else tr_b
                tr.state.epoch, tr.state.batch = 0, max(0, len(tr.batches) - args.steps)
                t0 = time.perf_counter()
                tr._train_epoch()
                res[kind].append((time.perf_counter() - t0) / args.steps * 1000)
        use("b")
    med = {k: H.median(v[1:] if len(v) > 1 else v) for k, v in res.items()}
    tokens = {t: t.cfg.data.batch_size * t.cfg.data.seq_len for t in (tr_a, tr_b)}
    print(H.machine_line(H.machine_info(args.threads)))
    print(f"shape {args.shape}, {args.threads} threads, {args.rounds} rounds")
    rate = {}
    for kind, name, tr in (("a", name_a, tr_a), ("b", name_b, tr_b)):
        rounds = ", ".join(f"{t:.1f}" for t in res[kind])
        rate[kind] = tokens[tr] / med[kind] * 1000
        print(
            f"{name:>22}: median {med[kind]:.2f} ms/step, {tokens[tr]} tokens a step, "
            f"{rate[kind]:,.0f} tokens/s ({rounds})"
        )
    print(f"speed-up {name_b} / {name_a}: {H.ratio(rate['b'], rate['a']):.3f}x tokens/s")


if __name__ == "__main__":
    main()
