"""Train several configs and tabulate them: held-out figures after the same time budget
(paired runs, one thread each), or the training speed of every shipped config (--speed).

    python benchmarks/compare_configs.py --minutes 12 \\
        jaychou_word=configs/jaychou_word.yaml tutorial_jaychou=configs/tutorial.yaml \\
        jaychou_char=configs/jaychou_char.yaml \\
        tutorial_songci=configs/tutorial.yaml@../shared/corpora/songci.txt \\
        songci_char=configs/songci_char.yaml
    python benchmarks/compare_configs.py --speed --minutes 0.5 [NAME ...]

A run is NAME=CONFIG[@CORPUS] (the corpus defaults to the config's data.corpus), or a bare
NAME for configs/NAME.yaml. Every run is the real `lyricgen train --config CONFIG [--corpus
CORPUS] --max-minutes MINUTES`, plus `--set` for every run (repeatable); runs go to
--out/NAME (log beside it). A run whose corpus is absent is skipped.

- default: two runs at a time, one thread each, so both members of a pair get one core
  under the same conditions; the table gives the best epoch's validation figures.
- `--speed`: each run alone with --threads threads (default: every usable core), one after
  the other; without runs named, every configs/*.yaml. The table adds the median epoch's
  tokens/s as GFLOP/s (full softmax: harness.flops_per_token) and its share of the fp32
  `torch.mm` peak, and "others", the cores other processes kept busy (flagged above 0.2).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import harness as H


def parse_run(spec: str) -> tuple[str, str, str | None]:
    """NAME=CONFIG[@CORPUS] or a bare NAME (configs/NAME.yaml) -> (name, config, corpus)."""
    name, eq, rest = spec.partition("=")
    if not eq:
        return name, f"configs/{name}.yaml", None
    config, _, corpus = rest.partition("@")
    return name, config, corpus or None


def absent_corpora(config: str, corpus: str | None) -> list[str]:
    import yaml

    data = (yaml.safe_load((H.REPO / config).read_text(encoding="utf-8")) or {}).get("data", {})
    wanted = [corpus or data.get("corpus"), data.get("val_corpus")]
    return [c for c in wanted if c and not (H.REPO / c).exists()]


def train(job: tuple[str, str, str | None], args: argparse.Namespace, threads: int) -> dict:
    name, config, corpus = job
    cli = ["--config", config, *(["--corpus", corpus] if corpus else [])]
    sets = [*(["train.num_threads=1"] if threads == 1 else []), *args.set]
    r = H.run_lyricgen(args.out / name, cli, sets, threads=threads, minutes=args.minutes,
                       device=args.device)  # fmt: skip
    print(f"  {name}: " + (f"FAILED\n{r['error']}" if "error" in r else "done"), flush=True)
    return r


def summarize(name: str, run: Path, peak: float | None = None) -> dict:
    rows = H.read_metrics(run)
    best = min(rows, key=lambda r: r["val_loss"])
    shape = H.run_shape(run)
    rate = H.median(r["tokens_per_s"] for r in rows)
    flops = None
    if shape["output"] == "full":
        flops = H.flops_per_token(
            shape["cell"], shape["embedding"], shape["hidden"], shape["layers"], shape["vocab"]
        )
    g = H.gflops(rate, flops)
    return {
        "name": name, "shape": shape, "epochs": rows[-1]["epoch"], "best_epoch": best["epoch"],
        "val_ppl": best["val_ppl"], "val_bpc": best["val_bpc"],
        "val_unk_rate": best.get("val_unk_rate"), "tokens_per_s": rate,
        "train_minutes": rows[-1]["elapsed_s"] / 60, "gflops": g,
        "fraction_of_peak": H.ratio(g, peak),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 1)[1],
    )
    ap.add_argument("runs", nargs="*", help="NAME=CONFIG[@CORPUS], or NAME for configs/NAME.yaml")
    ap.add_argument("--minutes", type=float, default=12.0, help="training minutes per run")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--summarize-only", action="store_true", help="tabulate runs already in --out")
    ap.add_argument("--speed", action="store_true",
                    help="each run alone on --threads threads; tokens/s, GFLOP/s, share of peak")  # fmt: skip
    ap.add_argument("--threads", type=int, default=H.usable_cores(), help="--speed only")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra --set for every run (repeatable)")  # fmt: skip
    ap.add_argument("--device", help="--device for every run (default: the config's)")
    ap.add_argument("--matmul-sizes", type=int, nargs="+", default=[1024, 2048])
    ap.add_argument("--json", type=Path, help="write all figures here")
    args = ap.parse_args()
    if not H.CORPORA.is_dir():
        print(f"skipped: {H.CORPORA} is absent")
        return
    if not args.runs and not args.speed:
        ap.error("name the runs (NAME=CONFIG[@CORPUS]); only --speed defaults to every config")
    specs = args.runs or sorted(p.stem for p in (H.REPO / "configs").glob("*.yaml"))
    args.out = (H.REPO / args.out).resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    jobs, skipped = [], {}
    for job in map(parse_run, specs):
        absent = absent_corpora(job[1], job[2])
        if absent:
            skipped[job[0]] = f"corpus not found: {', '.join(absent)}"
        else:
            jobs.append(job)
    threads = args.threads if args.speed else 1
    info = H.machine_info(threads)
    print(H.machine_line(info))
    mm = H.matmul_peak(threads, args.matmul_sizes, args.device or "cpu") if args.speed else None
    runs: dict[str, dict] = {}
    if not args.summarize_only:
        print(f"training {len(jobs)} run(s), {args.minutes:g} min each ...", flush=True)
        if args.speed:  # one at a time, all threads
            runs = {job[0]: train(job, args, threads) for job in jobs}
        else:  # two at a time, one thread each
            for i in range(0, len(jobs), 2):
                cpu0, t0 = H.cpu_snapshot(), time.perf_counter()
                with ThreadPoolExecutor(2) as pool:
                    done = [(j[0], pool.submit(train, j, args, 1)) for j in jobs[i : i + 2]]
                    pair = {name: f.result() for name, f in done}
                # both runs are children of this process: the rest is what others took
                others = H.other_cores(cpu0, H.cpu_snapshot(), time.perf_counter() - t0)
                for r in pair.values():
                    r["other_cores_busy"] = others
                runs.update(pair)
    how = f"{threads} threads, each alone" if args.speed else "one thread per run, two at once"
    print(f"\n{args.minutes:g} min of training per run, {how}")
    if mm:
        print(H.peak_line(mm))
    figures = []
    for name, _, _ in jobs:
        if "error" in runs.get(name, {}) or not (args.out / name / "metrics.jsonl").exists():
            skipped[name] = "failed" if name in runs else f"no run in {args.out / name}"
            continue
        s = summarize(name, args.out / name, mm and mm["peak_gflops"])
        s["other_cores_busy"] = runs.get(name, {}).get("other_cores_busy")
        figures.append(s)
    headers = ["run", "level", "epochs", "best epoch", "val ppl", "val bpc", "val <unk>",
               "tokens/s", "minutes"]  # fmt: skip
    if args.speed:
        headers[1:2] = ["level", "cell", "output", "vocab"]
        headers += ["GFLOP/s", "of peak", "others"]

    def row(s: dict) -> list[str]:
        sh = s["shape"]
        cells = [s["name"], sh["level"], s["epochs"], s["best_epoch"], f"{s['val_ppl']:.2f}",
                 f"{s['val_bpc']:.3f}", H.fmt(s["val_unk_rate"], ".1%"),
                 H.fmt(s["tokens_per_s"]), f"{s['train_minutes']:.1f}"]  # fmt: skip
        if args.speed:
            cells[2:2] = [sh["cell"], sh["output"], f"{sh['vocab']:,}"]
            cells += [H.fmt(s["gflops"], ".2f"), H.fmt(s["fraction_of_peak"], ".1%"),
                      H.fmt(s["other_cores_busy"], ".2f")]  # fmt: skip
        return cells

    H.table(headers, map(row, figures))
    for name, why in skipped.items():
        print(f"{name}: skipped ({why})")
    busy = [s["other_cores_busy"] for s in figures if s["other_cores_busy"] is not None]
    warning = H.busy_warning(busy, info["cores"])
    if warning:
        print(warning)
    H.write_json(args.json, {"machine": info, "matmul": mm, "runs": figures, "skipped": skipped})


if __name__ == "__main__":
    main()
