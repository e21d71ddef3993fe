"""Training speed (tokens/s) of lyricgen against PyTorch's word_language_model example.

    python benchmarks/train_speed.py --peer-git /path/to/pytorch-examples.git \\
        --seconds 60 --repeats 3 --json train_speed.json

The peer is a checkout of pytorch/examples' `word_language_model` folder: pass it with
`--peer-dir DIR`, or give a git directory of pytorch/examples with `--peer-git GITDIR` and its
Python files are extracted to a temporary folder. Without either, only lyricgen is measured.

Both programs train the same shape on the same text, back to back (peer, lyricgen, peer, ...,
`--repeats` pairs): a 2-layer LSTM (embedding 128, hidden 256, dropout 0.2), batch 20, BPTT 35,
plain SGD at lr 20 with gradient clipping 0.25, at character level on the first `--chars`
characters of `--corpus` (default ../shared/corpora/songci.txt). The example splits on
whitespace, so its data files hold the text with the characters of each line separated by
spaces (it adds `<eos>` per line where lyricgen has a newline token).

- peer: its own `main.py` on CPU (no `--accel`; with `--device cuda` it gets `--accel`) with `--epochs 1 --log-interval N`; it is stopped
  once its logged intervals cover `--seconds` of training. tokens/s = batch * bptt * 1000 /
  (ms/batch), median over the intervals after the first (warm-up).
- lyricgen: the real `lyricgen train` CLI with `--max-minutes` = `--seconds` / 60, stateful
  batches and the same settings through `--set`; tokens/s is the last line of its
  metrics.jsonl (that figure includes the warm-up and the validation pass after training;
  "train-only" is steps * batch * seq_len / elapsed_s, without the validation pass;
  "steady" is measured the way the peer's figure is, the median of the `train.log_every`
  windows after the first, from metrics.jsonl's tokens_per_s_steady).

Both get `--threads` threads (OMP_NUM_THREADS / MKL_NUM_THREADS). The fp32 `torch.mm` rate
with the same thread count is the machine's peak; achieved GFLOP/s = tokens/s * training
FLOPs per token, where forward = sum over layers of 2*gates*H*(in+H) + 2*H*V (gates 4 LSTM,
3 GRU, 1 RNN) and training ~ 3x forward. Column "others" is the average number of cores other
processes kept busy during a run (from /proc/stat); above 0.2 the figures are flagged, since a
second busy process on a small machine slows OpenMP threads many times over.

`--side-by-side` runs the two programs at the same time instead of one after the other, one
thread each, each pinned to its own core with `taskset` (cores swapped every repeat), and
reports the ratio within each pair. On a shared host whose speed drifts by 10 to 30% from
minute to minute (a virtual machine's neighbours), back-to-back runs measure the drift as
much as the programs; a pair that runs at the same moment sees the same host, so its ratio
keeps only the programs' difference (and whatever differs between the two cores, which the
swap evens out). With `--adaptive` each variant gets its own pair.

`--lyricgen-set KEY=VALUE` (repeatable) is passed to every lyricgen run, so variants can be
compared (e.g. `--lyricgen-set model.batch_first=false`). `--configs [NAME ...]` also trains
every shipped configs/*.yaml (or the named ones) for `--config-minutes` on its own corpus and
reports tokens/s; `--no-compare` runs only that sweep. Keep runs short on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpora" / "songci.txt"
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
MIN_INTERVALS = 3  # peer intervals logged before it may stop: one warm-up, two timed
BUSY_WARN = 0.2  # cores used by other processes above which a run is flagged
MS_PER_BATCH = re.compile(r"ms/batch\s+([0-9.]+)")
DEVICE = "cpu"  # --device: where both programs train (cuda: the example gets --accel)


@dataclass(frozen=True)
class Shape:
    """The model and batch shape both programs train."""

    cell: str = "lstm"
    embedding: int = 128
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.2
    batch_size: int = 20
    bptt: int = 35
    lr: float = 20.0
    clip: float = 0.25

    def peer_args(self) -> list[str]:
        return [
            "--model", self.cell.upper(), "--emsize", str(self.embedding),
            "--nhid", str(self.hidden), "--nlayers", str(self.layers),
            "--batch_size", str(self.batch_size), "--bptt", str(self.bptt),
            "--dropout", str(self.dropout), "--epochs", "1", "--lr", str(self.lr),
            "--clip", str(self.clip),
        ]  # fmt: skip

    def lyricgen_sets(self) -> list[str]:
        sets = {
            "data.level": "char",
            "data.seq_len": self.bptt,
            "data.stride": self.bptt,
            "data.batch_size": self.batch_size,
            "data.mode": "stateful",
            "data.val_fraction": 0.02,
            "model.cell": self.cell,
            "model.embedding_dim": self.embedding,
            "model.hidden_size": self.hidden,
            "model.num_layers": self.layers,
            "model.dropout": self.dropout,
            "model.tie_weights": "false",
            "train.epochs": 1,
            "train.optimizer": "sgd",
            "train.lr": self.lr,
            "train.momentum": 0,
            "train.weight_decay": 0,
            "train.clip_grad_norm": self.clip,
            "train.scheduler": "none",
            "train.warmup_steps": 0,
        }
        return [f"{k}={v}" for k, v in sets.items()]


def flops_per_token(cell: str, embedding: int, hidden: int, layers: int, vocab: int) -> dict:
    """Matmul FLOPs per token: forward, and training as 3x forward (backward ~ 2x)."""
    gates = GATES[cell]
    fwd = sum(
        2 * gates * hidden * ((embedding if i == 0 else hidden) + hidden) for i in range(layers)
    )
    fwd += 2 * hidden * vocab
    return {"forward": fwd, "train": 3 * fwd}


def gflops(tokens_per_s: float | None, flops: dict | None) -> float | None:
    if tokens_per_s is None or flops is None:
        return None
    return tokens_per_s * flops["train"] / 1e9


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------------------------


def default_threads() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def pinned(core: int | None) -> list[str]:
    """The command prefix that keeps a process on one core (`taskset`), or nothing."""
    if core is None:
        return []
    if shutil.which("taskset") is None:
        raise SystemExit("--side-by-side needs taskset (util-linux) to pin each program to a core")
    return ["taskset", "-c", str(core)]


def thread_env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def child_threads(python: str, threads: int) -> int | None:
    """torch.get_num_threads() as a child process started like the benchmarked ones sees it."""
    code = "import torch; print(torch.get_num_threads())"
    res = subprocess.run(
        [python, "-c", code], env=thread_env(threads), capture_output=True, text=True
    )
    try:
        return int(res.stdout.strip())
    except ValueError:
        return None


def machine_info(python: str, threads: int) -> dict:
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": default_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": threads,
        "child_torch_threads": child_threads(python, threads),
    }


def cpu_snapshot() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds of this process's waited children)."""
    try:
        fields = Path("/proc/stat").read_text(encoding="utf-8").split("\n", 1)[0].split()[1:]
        ticks = [int(x) for x in fields]
        # user nice system idle iowait irq softirq steal (guest time is already in user)
        busy = (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        busy = float("nan")
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy, ru.ru_utime + ru.ru_stime


def other_cores(before: tuple[float, float], after: tuple[float, float], wall: float) -> float:
    """Average number of cores kept busy by processes other than the benchmarked one."""
    return max(0.0, (after[0] - before[0]) - (after[1] - before[1])) / max(wall, 1e-9)


def matmul_peak(threads: int, sizes: list[int], min_seconds: float = 1.0) -> dict:
    """Median GFLOP/s of fp32 torch.mm per size on --device; the peak is the best median."""
    torch.set_num_threads(threads)
    dev = torch.device(DEVICE)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    per_size = {}
    for n in sizes:
        a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
        out = torch.empty(n, n, device=dev)
        for _ in range(2):
            torch.mm(a, b, out=out)
        sync()
        rates: list[float] = []
        start = time.perf_counter()
        while len(rates) < 5 or (time.perf_counter() - start < min_seconds and len(rates) < 50):
            t0 = time.perf_counter()
            torch.mm(a, b, out=out)
            sync()
            rates.append(2 * n**3 / (time.perf_counter() - t0) / 1e9)
        per_size[str(n)] = {"median_gflops": statistics.median(rates), "samples": rates}
    peak = max(v["median_gflops"] for v in per_size.values())
    return {"threads": threads, "device": DEVICE, "peak_gflops": peak, "sizes": per_size}


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def spaced(text: str) -> str:
    """Each line's characters separated by spaces (whitespace dropped, blank lines kept)."""
    return "\n".join(" ".join(c for c in line if not c.isspace()) for line in text.split("\n"))


def write_peer_data(text: str, data_dir: Path) -> int:
    """train/valid/test.txt for the example; returns the size of the vocabulary it builds."""
    data_dir.mkdir(parents=True, exist_ok=True)
    held = max(1000, len(text) // 50)
    splits = {"train": text, "valid": text[-held:], "test": text[-held // 4 :]}
    vocab = {"<eos>"}
    for name, part in splits.items():
        body = spaced(part)
        (data_dir / f"{name}.txt").write_text(body + "\n", encoding="utf-8")
        vocab.update(body.split())
    return len(vocab)


# ---------------------------------------------------------------------------------------------
# Peer: pytorch/examples word_language_model
# ---------------------------------------------------------------------------------------------


def extract_peer(git_dir: Path, rev: str, dest: Path) -> tuple[Path, str]:
    """Copy word_language_model's Python files out of a git dir (its data is not needed, and a
    mirror may lack the large data blobs that `git archive` of the whole folder would read)."""
    git = ["git", "--git-dir", str(git_dir)]

    def out(*cmd: str) -> str:
        return subprocess.run([*git, *cmd], check=True, capture_output=True, text=True).stdout

    commit = out("rev-parse", "--verify", f"{rev}^{{commit}}").strip()
    names = out("ls-tree", "--name-only", commit, "word_language_model/").split()
    files = [n for n in names if n.endswith(".py")]
    if "word_language_model/main.py" not in files:
        raise SystemExit(f"{git_dir} at {rev} has no word_language_model/main.py")
    folder = dest / "word_language_model"
    folder.mkdir(parents=True, exist_ok=True)
    for name in files:
        (folder / Path(name).name).write_text(out("show", f"{commit}:{name}"), encoding="utf-8")
    return folder, commit


def peer_commit(peer_dir: Path) -> str | None:
    res = subprocess.run(
        ["git", "-C", str(peer_dir), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    if res.returncode != 0:
        return None
    return res.stdout.strip() or None


def _pump(stream: Any, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def run_peer(
    peer_dir: Path,
    data_dir: Path,
    work: Path,
    shape: Shape,
    python: str,
    threads: int,
    seconds: float,
    log_interval: int,
    core: int | None = None,
) -> dict:
    """Run the example's main.py until its logged intervals cover `seconds` of training."""
    work.mkdir(parents=True, exist_ok=True)
    cmd = [
        *pinned(core),
        python, "-u", str(peer_dir / "main.py"), "--data", str(data_dir), *shape.peer_args(),
        "--log-interval", str(log_interval), "--save", str(work / "model.pt"),
    ]  # fmt: skip
    if DEVICE != "cpu":
        cmd.append("--accel")
    load = os.getloadavg()[0]
    wall_limit = 4 * seconds + 300
    cpu0 = cpu_snapshot()
    t_start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=work,
        env=thread_env(threads),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    ms: list[float] = []
    tail: list[str] = []
    stopped = "exited"
    try:
        while True:
            if time.perf_counter() - t_start > wall_limit:
                stopped = "wall-clock limit"
                break
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                continue
            if line is None:
                break
            tail = (tail + [line.rstrip()])[-20:]
            m = MS_PER_BATCH.search(line)
            if m:
                ms.append(float(m.group(1)))
                if sum(ms) * log_interval / 1000 >= seconds and len(ms) >= MIN_INTERVALS:
                    stopped = "budget"
                    break
            elif "end of epoch" in line:
                stopped = "end of epoch"
                break
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    wall = time.perf_counter() - t_start
    timed = ms[1:]
    med = median(timed)
    result = {
        "cmd": cmd,
        "load_avg_before": load,
        "stopped": stopped,
        "wall_s": wall,
        "other_cores_busy": other_cores(cpu0, cpu_snapshot(), wall),
        "log_interval": log_interval,
        "ms_per_batch": ms,
        "median_ms_per_batch": med,
        "tokens_per_s": shape.batch_size * shape.bptt * 1000 / med if med else None,
        "train_s_logged": sum(ms) * log_interval / 1000,
    }
    if med is None:
        result["error"] = "fewer than 2 logged intervals; output tail:\n" + "\n".join(tail)
    return result


# ---------------------------------------------------------------------------------------------
# lyricgen
# ---------------------------------------------------------------------------------------------


def lyricgen_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "lyricgen"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "lyricgen"]


def run_lyricgen(
    out: Path,
    threads: int,
    minutes: float,
    args: list[str],
    sets: list[str],
    core: int | None = None,
) -> dict:
    """One `lyricgen train` run; returns its metrics and the shape it trained."""
    cmd = [
        *pinned(core),
        *lyricgen_cmd(), "train", *args, "--out", str(out), "--overwrite",
        "--max-minutes", f"{minutes:g}", "--device", DEVICE,
    ]  # fmt: skip
    for s in sets:
        cmd += ["--set", s]
    log_path = out.with_suffix(".log")
    out.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    cpu0 = cpu_snapshot()
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        rc = subprocess.run(
            cmd, cwd=REPO, env=thread_env(threads), stdout=log, stderr=subprocess.STDOUT
        ).returncode
    wall = time.perf_counter() - t0
    result: dict[str, Any] = {
        "cmd": cmd,
        "load_avg_before": load,
        "wall_s": wall,
        "other_cores_busy": other_cores(cpu0, cpu_snapshot(), wall),
        "returncode": rc,
    }
    metrics = out / "metrics.jsonl"
    if rc != 0 or not metrics.exists():
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        result["error"] = f"exit code {rc}; output tail:\n" + "\n".join(tail)
        return result
    rows = [json.loads(x) for x in metrics.read_text(encoding="utf-8").splitlines() if x.strip()]
    last = rows[-1]
    result["metrics"] = rows
    result["tokens_per_s"] = last.get("tokens_per_s")
    result["val_bpc"] = last.get("val_bpc")  # held-out bpc after the same wall time
    result["epoch_tokens_per_s_median"] = median(
        [r["tokens_per_s"] for r in rows if "tokens_per_s" in r]
    )
    result["elapsed_s"] = last.get("elapsed_s")
    steady = [r["tokens_per_s_steady"] for r in rows if r.get("tokens_per_s_steady")]
    if steady:  # measured as the peer's figure is: the median log window after the first
        result["steady_tokens_per_s"] = median(steady)
    try:
        cfg = yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8"))
        vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))["tokens"]
        d, m = cfg["data"], cfg["model"]
        result["shape"] = {
            "cell": m["cell"],
            "embedding": m["embedding_dim"],
            "hidden": m["hidden_size"],
            "layers": m["num_layers"],
            "vocab": len(vocab),
            "batch_size": d["batch_size"],
            "seq_len": d["seq_len"],
            "mode": d.get("mode"),
            "level": d.get("level"),
        }
    except (OSError, KeyError, TypeError, ValueError) as exc:
        result["shape_error"] = repr(exc)
        return result
    sh = result["shape"]
    result["flops_per_token"] = flops_per_token(
        sh["cell"], sh["embedding"], sh["hidden"], sh["layers"], sh["vocab"]
    )
    if len(rows) == 1 and last.get("step") and last.get("elapsed_s"):
        # One (partial) epoch of full batches: the training loop's own rate, without validation.
        tokens = last["step"] * sh["batch_size"] * sh["seq_len"]
        result["train_only_tokens_per_s"] = tokens / last["elapsed_s"]
    return result


def sweep_configs(
    names: list[str], minutes: float, threads: int, sets: list[str], tmp: Path
) -> list[dict]:
    """Train each shipped config briefly on its own corpus and collect tokens/s."""
    paths = sorted((REPO / "configs").glob("*.yaml"))
    if names:
        paths = [p for p in paths if p.stem in names]
        missing = set(names) - {p.stem for p in paths}
        if missing:
            print(f"configs not found (skipped): {', '.join(sorted(missing))}")
    results = []
    for path in paths:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        data = cfg.get("data", {})
        absent = [
            c for c in (data.get("corpus"), data.get("val_corpus")) if c and not (REPO / c).exists()
        ]
        entry: dict[str, Any] = {"config": path.stem, "corpus": data.get("corpus")}
        if absent:
            entry["skipped"] = f"corpus not found: {', '.join(absent)}"
            print(f"  {path.stem}: skipped ({entry['skipped']})")
            results.append(entry)
            continue
        print(f"  {path.stem}: training {minutes:g} min ...", flush=True)
        run = run_lyricgen(
            tmp / "configs" / path.stem,
            threads,
            minutes,
            ["--config", str(path.relative_to(REPO))],
            sets,
        )
        entry.update(run)
        if "error" in run:
            print(f"  {path.stem}: FAILED\n{run['error']}")
        else:
            entry["gflops"] = gflops(run["epoch_tokens_per_s_median"], run.get("flops_per_token"))
        results.append(entry)
    return results


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def fmt(x: float | None, spec: str = ",.0f") -> str:
    return "-" if x is None else format(x, spec)


def print_report(report: dict) -> None:
    mach, mm = report["machine"], report["matmul"]
    print()
    print(
        f"machine: {mach['cpu_model']}, {mach['cores']} cores, torch {mach['torch']}, "
        f"{mach['threads']} threads (child processes see {mach['child_torch_threads']})"
    )
    sizes = ", ".join(f"{n}: {v['median_gflops']:.1f}" for n, v in mm["sizes"].items())
    print(f"fp32 matmul peak: {mm['peak_gflops']:.1f} GFLOP/s (median by size: {sizes})")
    peak = mm["peak_gflops"]
    cmp_ = report.get("compare")
    if cmp_:
        print()
        print(
            f"same shape, {cmp_['chars']:,} chars of {cmp_['corpus']}, "
            f"~{cmp_['seconds']:g} s training per run, {cmp_['repeats']} repeat(s):"
        )
        print(
            f"{'program':<22}{'vocab':>7}{'MFLOP/tok':>11}{'tokens/s':>11}{'GFLOP/s':>9}"
            f"{'% peak':>8}{'others':>8}  per run tokens/s"
        )
        summary = cmp_["summary"]
        for key, label in (
            ("peer", "word_language_model"),
            ("lyricgen", "lyricgen"),
            ("lyricgen_train_only", "lyricgen (train-only)"),
            ("lyricgen_steady", "lyricgen (steady)"),
        ):
            s = summary.get(key)
            if not s:
                continue
            mflop = s["flops_per_token"]["train"] / 1e6 if s["flops_per_token"] else None
            frac = s["fraction_of_peak"]
            print(
                f"{label:<22}{s['vocab'] or '-':>7}{fmt(mflop, '.2f'):>11}"
                f"{fmt(s['tokens_per_s']):>11}{fmt(s['gflops'], '.2f'):>9}"
                f"{fmt(frac * 100 if frac else None, '.1f'):>8}"
                f"{max(s['other_cores_busy']):>8.2f}  {', '.join(fmt(x) for x in s['runs'])}"
            )
        for name, r in summary["ratios"].items():
            print(f"ratio {name}: {r:.3f}")
        variants = cmp_.get("variants", {})
        base = variants.get("lyricgen", {}).get("summary", {}).get("lyricgen")
        for name, v in variants.items():
            s = v["summary"].get("lyricgen")
            if not s:
                continue
            to_peer = v["summary"]["ratios"].get("lyricgen/peer")
            to_full = s["tokens_per_s"] / base["tokens_per_s"] if base else None
            steady = v["summary"].get("lyricgen_steady")
            base_steady = variants.get("lyricgen", {}).get("summary", {}).get("lyricgen_steady")
            steady_to_peer = v["summary"]["ratios"].get("lyricgen_steady/peer")
            steady_to_full = (
                steady["tokens_per_s"] / base_steady["tokens_per_s"]
                if steady and base_steady
                else None
            )
            print(
                f"{name:<20} {fmt(s['tokens_per_s'])} tokens/s (runs "
                f"{', '.join(fmt(x) for x in s['runs'])}), / peer {fmt(to_peer, '.3f')}, "
                f"/ lyricgen full {fmt(to_full, '.3f')}, held-out bpc after the same time "
                f"{fmt(v['val_bpc_median'], '.3f')}; steady rate / peer "
                f"{fmt(steady_to_peer, '.3f')}, / lyricgen full {fmt(steady_to_full, '.3f')}"
            )
        for name, ps in cmp_.get("pairs", {}).items():
            print(
                f"{name} side by side with the peer, one thread each, pair by pair: "
                f"/ peer {', '.join(fmt(x, '.3f') for x in ps['ratios'])} "
                f"(median {fmt(ps['median_ratio'], '.3f')}, lowest {fmt(ps['min_ratio'], '.3f')}); "
                f"steady / peer {', '.join(fmt(x, '.3f') for x in ps['steady_ratios'])} "
                f"(median {fmt(ps['median_steady_ratio'], '.3f')}, lowest "
                f"{fmt(ps['min_steady_ratio'], '.3f')})"
            )
        busy = [
            x for s in summary.values() if "other_cores_busy" in s for x in s["other_cores_busy"]
        ]
        if busy and max(busy) > BUSY_WARN:
            print(
                f"WARNING: other processes kept up to {max(busy):.2f} of {mach['cores']} cores "
                "busy during the runs (column 'others'); these numbers are not reliable"
            )
        if cmp_.get("peer_skipped"):
            print(f"peer skipped: {cmp_['peer_skipped']}")
    sweep = report.get("configs")
    if sweep:
        print()
        print(f"shipped configs, {report['config_minutes']:g} min each (median epoch tokens/s):")
        print(
            f"{'config':<16}{'level':>6}{'cell':>6}{'vocab':>8}{'tokens/s':>11}{'GFLOP/s':>9}"
            f"{'% peak':>8}{'others':>8}"
        )
        for e in sweep:
            if "skipped" in e or "error" in e:
                why = e.get("skipped") or "failed"
                print(f"{e['config']:<16}  {why}")
                continue
            sh, g = e.get("shape", {}), e.get("gflops")
            print(
                f"{e['config']:<16}{sh.get('level', '-'):>6}{sh.get('cell', '-'):>6}"
                f"{sh.get('vocab', 0):>8,}{fmt(e['epoch_tokens_per_s_median']):>11}"
                f"{fmt(g, '.2f'):>9}{fmt(g / peak * 100 if g else None, '.1f'):>8}"
                f"{e['other_cores_busy']:>8.2f}"
            )
        busy = [e["other_cores_busy"] for e in sweep if "other_cores_busy" in e]
        if busy and max(busy) > BUSY_WARN:
            print(
                f"WARNING: other processes kept up to {max(busy):.2f} of {mach['cores']} "
                "cores busy (column 'others'); these numbers are not reliable"
            )


def summarize(
    peer_runs: list[dict], lg_runs: list[dict], shape: Shape, peer_vocab: int, peak: float
) -> dict:
    """Median tokens/s per program (and lyricgen's train-only rate), GFLOP/s and ratios."""
    peer_flops = flops_per_token(
        shape.cell, shape.embedding, shape.hidden, shape.layers, peer_vocab
    )
    lg_ok = [r for r in lg_runs if r.get("tokens_per_s")]
    lg_flops = next((r["flops_per_token"] for r in lg_ok if "flops_per_token" in r), None)
    lg_vocab = next((r["shape"]["vocab"] for r in lg_ok if "shape" in r), None)
    programs = {
        "peer": (peer_runs, "tokens_per_s", peer_vocab, peer_flops),
        "lyricgen": (lg_runs, "tokens_per_s", lg_vocab, lg_flops),
        "lyricgen_train_only": (lg_runs, "train_only_tokens_per_s", lg_vocab, lg_flops),
        "lyricgen_steady": (lg_runs, "steady_tokens_per_s", lg_vocab, lg_flops),
    }
    out: dict[str, Any] = {}
    for name, (runs, key, vocab, flops) in programs.items():
        ok = [r for r in runs if r.get(key)]
        if not ok:
            continue
        rate = median([r[key] for r in ok])
        g = gflops(rate, flops)
        out[name] = {
            "tokens_per_s": rate,
            "runs": [r[key] for r in ok],
            "other_cores_busy": [r["other_cores_busy"] for r in ok],
            "vocab": vocab,
            "flops_per_token": flops,
            "gflops": g,
            "fraction_of_peak": g / peak if g else None,
        }
    ratios = {}
    for name in ("lyricgen", "lyricgen_train_only", "lyricgen_steady"):
        if "peer" in out and name in out:
            ratios[f"{name}/peer"] = out[name]["tokens_per_s"] / out["peer"]["tokens_per_s"]
    out["ratios"] = ratios
    return out


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


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
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--chars", type=int, default=400_000, help="characters of the corpus used")
    ap.add_argument("--seconds", type=float, default=60.0, help="training seconds per run")
    ap.add_argument("--repeats", type=int, default=3, help="peer/lyricgen pairs, alternating")
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument(
        "--peer-log-interval", type=int, default=20, help="peer batches per timed interval"
    )
    ap.add_argument(
        "--lyricgen-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra --set for every lyricgen run (repeatable)",
    )
    ap.add_argument(
        "--configs",
        nargs="*",
        metavar="NAME",
        help="also time configs/*.yaml (all, or the named ones) on their own corpora",
    )
    ap.add_argument("--config-minutes", type=float, default=0.5)
    ap.add_argument(
        "--adaptive",
        action="store_true",
        help="also train lyricgen with model.output=adaptive in every repeat",
    )
    ap.add_argument(
        "--side-by-side",
        action="store_true",
        help="run the peer and lyricgen at the same time, one thread each, pinned to cores "
        "0 and 1 (swapped every repeat); reports the ratio within each pair",
    )
    ap.add_argument("--no-compare", action="store_true", help="skip the peer/lyricgen runs")
    ap.add_argument("--matmul-sizes", type=int, nargs="+", default=[1024, 2048])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    shape = ap.add_argument_group("shape of the compared model (default: the issue's)")
    shape.add_argument("--cell", choices=["lstm", "gru"], default=Shape.cell)
    shape.add_argument("--embedding", type=int, default=Shape.embedding)
    shape.add_argument("--hidden", type=int, default=Shape.hidden)
    shape.add_argument("--layers", type=int, default=Shape.layers)
    shape.add_argument("--batch-size", type=int, default=Shape.batch_size)
    shape.add_argument("--bptt", type=int, default=Shape.bptt)
    ap.add_argument("--python", default=sys.executable, help="interpreter for the peer")
    ap.add_argument("--json", type=Path, help="write all raw numbers here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary run directories")
    return ap.parse_args()


def run_line(r: dict) -> str:
    if "error" in r:
        return r["error"]
    return (
        f"{fmt(r.get('tokens_per_s'))} tokens/s "
        f"(other processes kept {r['other_cores_busy']:.2f} cores busy)"
    )


def side_by_side(
    args: argparse.Namespace,
    tmp: Path,
    shape: Shape,
    peer_dir: Path,
    i: int,
    name: str,
    lg_args: list[str],
    sets: list[str],
) -> dict:
    """The peer and one lyricgen variant at the same time, one thread each, each pinned to
    its own core (swapped every repeat): both see the same host at the same moment, so a
    host that speeds up or slows down mid-run moves both figures, not their ratio."""
    from concurrent.futures import ThreadPoolExecutor

    peer_core, lg_core = (0, 1) if i % 2 == 0 else (1, 0)
    print(
        f"[{i + 1}/{args.repeats}] peer (core {peer_core}) and {name} (core {lg_core}), "
        "side by side ...",
        end=" ",
        flush=True,
    )
    cpu0, t0 = cpu_snapshot(), time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        peer = pool.submit(
            run_peer,
            peer_dir,
            tmp / "peer-data",
            tmp / f"peer-{name}-{i}",
            shape,
            args.python,
            1,
            args.seconds,
            args.peer_log_interval,
            peer_core,
        )
        lg = pool.submit(
            run_lyricgen, tmp / f"{name}-{i}", 1, args.seconds / 60, lg_args, sets, lg_core
        )
        p, r = peer.result(), lg.result()
    # both programs are this process's children: the rest of the machine's busy time is
    # what other processes took
    others = other_cores(cpu0, cpu_snapshot(), time.perf_counter() - t0)
    p["other_cores_busy"] = r["other_cores_busy"] = others
    pair = {"peer": p, "lyricgen": r, "cores": {"peer": peer_core, "lyricgen": lg_core}}
    if p.get("tokens_per_s") and r.get("tokens_per_s"):
        pair["ratio"] = r["tokens_per_s"] / p["tokens_per_s"]
        if r.get("steady_tokens_per_s"):
            pair["steady_ratio"] = r["steady_tokens_per_s"] / p["tokens_per_s"]
    print(
        f"peer {fmt(p.get('tokens_per_s'))}, {name} {fmt(r.get('tokens_per_s'))} tokens/s "
        f"(steady {fmt(r.get('steady_tokens_per_s'))}); ratio {fmt(pair.get('ratio'), '.3f')}, "
        f"steady {fmt(pair.get('steady_ratio'), '.3f')} (others {others:.2f})"
    )
    return pair


def pair_summary(pairs: list[dict]) -> dict:
    """Per-pair ratios of side-by-side runs and their medians."""
    ratios = [p["ratio"] for p in pairs if "ratio" in p]
    steady = [p["steady_ratio"] for p in pairs if "steady_ratio" in p]
    return {
        "ratios": ratios,
        "steady_ratios": steady,
        "median_ratio": median(ratios),
        "median_steady_ratio": median(steady),
        "min_ratio": min(ratios) if ratios else None,
        "min_steady_ratio": min(steady) if steady else None,
    }


def compare(args: argparse.Namespace, tmp: Path, peak: float) -> dict:
    shape = Shape(
        cell=args.cell,
        embedding=args.embedding,
        hidden=args.hidden,
        layers=args.layers,
        batch_size=args.batch_size,
        bptt=args.bptt,
    )
    text = args.corpus.read_text(encoding="utf-8")[: args.chars]
    text_file = tmp / "corpus.txt"
    text_file.write_text(text, encoding="utf-8")

    peer_dir, commit, skipped = None, None, None
    if args.peer_git:
        peer_dir, commit = extract_peer(args.peer_git, args.peer_rev, tmp)
    elif args.peer_dir:
        peer_dir, commit = args.peer_dir.resolve(), peer_commit(args.peer_dir)
    else:
        skipped = "no --peer-dir or --peer-git given; measuring lyricgen only"
        print(f"peer skipped: {skipped}")
    peer_vocab = write_peer_data(text, tmp / "peer-data") if peer_dir else 0

    lg_args = ["--config", "configs/default.yaml", "--corpus", str(text_file)]
    lg_sets = shape.lyricgen_sets() + args.lyricgen_set
    peer_runs: list[dict] = []
    variants = {"lyricgen": lg_sets}
    if args.adaptive:  # the same shape with an adaptive softmax (no tied weights)
        variants["lyricgen_adaptive"] = [*lg_sets, "model.output=adaptive"]
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    lg_runs = runs["lyricgen"]
    pairs: dict[str, list[dict]] = {name: [] for name in variants}
    for i in range(args.repeats):
        if args.side_by_side and peer_dir:
            for name, sets in variants.items():
                pair = side_by_side(args, tmp, shape, peer_dir, i, name, lg_args, sets)
                peer_runs.append(pair["peer"])
                runs[name].append(pair["lyricgen"])
                pairs[name].append(pair)
            continue
        if peer_dir:
            print(f"[{i + 1}/{args.repeats}] peer ...", end=" ", flush=True)
            r = run_peer(
                peer_dir,
                tmp / "peer-data",
                tmp / f"peer-{i}",
                shape,
                args.python,
                args.threads,
                args.seconds,
                args.peer_log_interval,
            )
            peer_runs.append(r)
            print(run_line(r))
        for name, sets in variants.items():
            print(f"[{i + 1}/{args.repeats}] {name} ...", end=" ", flush=True)
            r = run_lyricgen(tmp / f"{name}-{i}", args.threads, args.seconds / 60, lg_args, sets)
            runs[name].append(r)
            print(run_line(r))
    return {
        "corpus": str(args.corpus),
        "chars": len(text),
        "seconds": args.seconds,
        "repeats": args.repeats,
        "shape": asdict(shape),
        "peer_dir": str(peer_dir) if peer_dir else None,
        "peer_git": str(args.peer_git) if args.peer_git else None,
        "peer_commit": commit,
        "peer_skipped": skipped,
        "peer_vocab": peer_vocab or None,
        "lyricgen_sets": lg_sets,
        "side_by_side": bool(args.side_by_side and peer_dir),
        "pairs": {name: pair_summary(ps) for name, ps in pairs.items() if ps},
        "peer_runs": peer_runs,
        "lyricgen_runs": lg_runs,
        "summary": summarize(peer_runs, lg_runs, shape, peer_vocab, peak),
        "variants": {
            name: {
                "sets": variants[name],
                "runs": rs,
                "summary": summarize(peer_runs, rs, shape, peer_vocab, peak),
                "val_bpc_median": median([r["val_bpc"] for r in rs if r.get("val_bpc")]),
            }
            for name, rs in runs.items()
        },
    }


def main() -> None:
    global DEVICE
    args = parse_args()
    DEVICE = args.device
    if args.side_by_side:
        args.threads = 1  # each program gets one core of its own
    if args.no_compare and args.configs is None:
        raise SystemExit("--no-compare without --configs leaves nothing to measure")
    if args.peer_dir and not (args.peer_dir / "main.py").exists():
        raise SystemExit(f"{args.peer_dir} has no main.py; pass a word_language_model folder")
    if not args.no_compare and not args.corpus.exists():
        raise SystemExit(f"corpus {args.corpus} not found; pass --corpus")
    report: dict[str, Any] = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine_info(args.python, args.threads),
    }
    print(f"fp32 matmul with {args.threads} threads ...", flush=True)
    report["matmul"] = matmul_peak(args.threads, args.matmul_sizes)
    tmp = Path(tempfile.mkdtemp(prefix="lyricgen-train-speed-"))
    try:
        if not args.no_compare:
            report["compare"] = compare(args, tmp, report["matmul"]["peak_gflops"])
        if args.configs is not None:
            print("shipped configs:")
            report["config_minutes"] = args.config_minutes
            report["configs"] = sweep_configs(
                args.configs, args.config_minutes, args.threads, args.lyricgen_set, tmp
            )
    finally:
        if args.keep:
            print(f"run directories kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
        print(f"\nraw numbers: {args.json}")


if __name__ == "__main__":
    main()
