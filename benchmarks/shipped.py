"""The shipped verse model: held-out bpc, half precision, size, cold start, and the copy guard.

    python benchmarks/shipped.py [--model verse] [--run RUN] [--corpora corpora]
        [--sections heldout size coldstart copies] [--samples 100] [--json out.json]

- **heldout**: bits per character of `songci_val.txt` (the last 5% of the Song ci songs, the
  split of configs/songci_char.yaml) and `tang_val.txt` (every 50th Tang poem), both never
  trained on (`lyricgen corpus verse` writes them), for the shipped model and, with
  `--run`, for the fp32 run it was exported from: what half precision costs.
- **size**: the bytes the model adds to the package, file by file.
- **coldstart**: `lyricgen generate --form 七绝 --start 明月` as a whole new process in an
  empty folder (so the shipped model is the one chosen), NumPy backend, median of 5.
- **copies**: `--samples` samples of each of 10 forms with the default copy guard, and a
  fifth as many (the first seeds) with the guard off (`--max-copy 0`): how many generated lines of 5 or more
  characters are lines of the training text, and how many clauses of 5 or more characters
  are its clauses.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORMS = ["五绝", "七绝", "五律", "七律", "浣溪沙", "鹧鸪天", "菩萨蛮", "西江月", "蝶恋花", "临江仙"]


def heldout(model: str, run: str | None, corpora: Path) -> dict:
    from lyricgen.run.models import resolve
    from lyricgen.training.evaluation import score_text

    out = {}
    targets = {"shipped (fp16)": resolve(model, Path("checkpoints/default")).path}
    if run:
        targets["run (fp32)"] = Path(run)
    for label, path in targets.items():
        for name in ("songci_val.txt", "tang_val.txt"):
            r = score_text(path, corpora / name, "cpu")
            out[f"{label} {name}"] = r["bpc"]
            print(f"{label:16s} {name:16s} {r['bpc']:.4f} bpc", flush=True)
    return out


def size(model: str) -> dict:
    from lyricgen.run.models import resolve

    folder = resolve(model, Path("checkpoints/default")).path
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
    for name, n in files.items():
        print(f"{name:20s} {n / 1e6:8.2f} MB")
    total = sum(files.values())
    print(f"{'total':20s} {total / 1e6:8.2f} MB")
    return {"files": files, "total_mb": total / 1e6}


def coldstart(runs: int = 5) -> dict:
    times = []
    with tempfile.TemporaryDirectory() as empty:
        cmd = [sys.executable, "-m", "lyricgen", "generate", "--form", "七绝", "--start", "明月",
               "--seed", "1"]  # fmt: skip
        for i in range(runs):
            t0 = time.perf_counter()
            r = subprocess.run(cmd, cwd=empty, capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if r.returncode:
                raise SystemExit(r.stderr)
            if i == 0:
                print(r.stdout.strip(), "|", r.stderr.strip().replace("\n", " | "))
    med = statistics.median(times)
    print(f"cold start: median {med:.3f} s of {runs} ({', '.join(f'{t:.3f}' for t in times)})")
    return {"median_s": med, "runs_s": times}


def copies(model: str, corpora: Path, samples: int) -> dict:
    import lyricgen
    from lyricgen.craft.clauseguard import clauses_of

    lines, clauses = set(), set()
    for name in ("verse_train.txt", "songci_val.txt", "tang_val.txt"):
        for line in (corpora / name).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                lines.add(line)
                clauses.update(c for c in clauses_of(line) if len(c) >= 5)
    lyr = lyricgen.load(model)
    out: dict = {}
    batch = 10
    for guard in ("default", "off"):
        n_samples = n_lines = copied_lines = n_clauses = copied_clauses = 0
        examples: list[str] = []
        t0 = time.perf_counter()
        per_form = samples if guard == "default" else max(batch, samples // 5)
        for form in FORMS:
            for seed in range(0, per_form, batch):
                extra = {"max_copy": 0} if guard == "off" else {}
                for s in lyr.generate("", form=form, seed=seed, num_samples=batch, **extra):
                    n_samples += 1
                    for line in s.text.splitlines():
                        line = line.strip()
                        cs = [c for c in clauses_of(line) if len(c) >= 5]
                        if sum(len(c) for c in clauses_of(line)) >= 5:
                            n_lines += 1
                            if line in lines:
                                copied_lines += 1
                                if len(examples) < 5:
                                    examples.append(line)
                        n_clauses += len(cs)
                        copied_clauses += sum(c in clauses for c in cs)
        out[guard] = {"samples": n_samples, "lines": n_lines, "copied_lines": copied_lines,
                      "clauses": n_clauses, "copied_clauses": copied_clauses,
                      "examples": examples, "seconds": time.perf_counter() - t0}  # fmt: skip
        print(f"guard {guard}: {n_samples} samples, {copied_lines}/{n_lines} lines of 5+ "
              f"characters are training lines, {copied_clauses}/{n_clauses} clauses of 5+ are "
              f"training clauses  e.g. {examples[:3]}", flush=True)  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="verse")
    ap.add_argument("--run", help="the fp32 run the model was exported from")
    ap.add_argument("--corpora", type=Path, default=Path("corpora"))
    ap.add_argument("--sections", nargs="+", default=["heldout", "size", "coldstart", "copies"])
    ap.add_argument("--samples", type=int, default=100, help="samples per form (copies)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    result: dict = {}
    if "heldout" in args.sections:
        result["heldout"] = heldout(args.model, args.run, args.corpora)
    if "size" in args.sections:
        result["size"] = size(args.model)
    if "coldstart" in args.sections:
        result["coldstart"] = coldstart()
    if "copies" in args.sections:
        result["copies"] = copies(args.model, args.corpora, args.samples)
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
