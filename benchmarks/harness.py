"""What the benchmarks share, each defined once: the machine they ran on, timing helpers, the
lyricgen and peer commands they run, and the report format.

- machine: `machine_info` (CPU model, cores, the AVX-512/AMX flags, Python, torch, numpy,
  threads) and `machine_line`, the first line every benchmark prints; `matmul_peak`, the fp32
  `torch.mm` rate that GFLOP/s figures are a share of; `cpu_snapshot`/`other_cores`, how busy
  other processes kept the machine during a run.
- timing: `median`, `ratio`, `percentile`, `wall` (one whole command), `flops_per_token`.
- lyricgen: `lyricgen_cmd`, `run_lyricgen` (one `lyricgen train` and what its run directory
  says: metrics, shape, tokens/s).
- the peer, PyTorch's word_language_model: `extract_peer` (its Python files out of a git dir
  of pytorch/examples), `write_peer_data` (text as it reads it), `run_peer`.
- report: `fmt` (None prints as "-"), `table` (a markdown table), `write_json`.

Benchmarks run as `python benchmarks/NAME.py`, so this folder is on sys.path and
`import harness` finds this file. Nothing here imports torch until a function needs it.
"""

from __future__ import annotations

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
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO.parent / "shared" / "corpora"
SONGCI = CORPORA / "songci.txt"
SIMD_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
BUSY_WARN = 0.2  # cores used by other processes above which a run's figures are flagged

# ---------------------------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------------------------


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _cpuinfo(key: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_flags() -> dict[str, bool]:
    """Which of SIMD_FLAGS the CPU reports (empty where /proc/cpuinfo is absent)."""
    flags = (_cpuinfo("flags") or "").split()
    return {f: f in flags for f in SIMD_FLAGS} if flags else {}


def version(package: str) -> str | None:
    """An installed package's version, without importing it."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def thread_env(threads: int, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    return {**env, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def child_threads(python: str, threads: int) -> int | None:
    """torch.get_num_threads() as a child started with `thread_env(threads)` sees it."""
    code = "import torch; print(torch.get_num_threads())"
    res = subprocess.run(
        [python, "-c", code], env=thread_env(threads), capture_output=True, text=True
    )
    try:
        return int(res.stdout.strip())
    except ValueError:
        return None


def machine_info(threads: int | None = None, python: str | None = None) -> dict:
    """The machine a benchmark ran on. `threads`: the threads its runs get (default: torch's
    own count when torch is loaded here); `python`: also ask a child interpreter."""
    if threads is None and "torch" in sys.modules:
        threads = sys.modules["torch"].get_num_threads()
    info = {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "flags": cpu_flags(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": version("torch"),
        "numpy": version("numpy"),
        "threads": threads,
    }
    if python:
        info["child_torch_threads"] = child_threads(python, threads or usable_cores())
    return info


def machine_line(info: dict | None = None) -> str:
    """One line: 'machine: <cpu>, 2 cores, AVX-512 yes, AMX no, Python ..., torch ..., ...'."""
    m = info or machine_info()
    flags = m["flags"]

    def yes(*names: str) -> str:
        return "unknown" if not flags else ("yes" if any(flags.get(n) for n in names) else "no")

    parts = [
        f"machine: {m['cpu_model']}, {m['cores']} cores"
        + (f" ({m['usable_cores']} usable)" if m["usable_cores"] != m["cores"] else ""),
        f"AVX-512 {yes('avx512f')}, AMX {yes('amx_tile', 'amx_bf16')}",
        f"Python {m['python']}",
        *(f"{lib} {m[lib]}" for lib in ("torch", "numpy") if m.get(lib)),
    ]
    if m.get("threads"):
        parts.append(f"{m['threads']} thread" + ("s" if m["threads"] != 1 else ""))
    if m.get("child_torch_threads") is not None:
        parts.append(f"child processes see {m['child_torch_threads']}")
    return ", ".join(parts)


def matmul_peak(threads: int, sizes: Sequence[int], device: str = "cpu") -> dict:
    """Median GFLOP/s of fp32 torch.mm per size (about a second each); the peak is the best."""
    import torch

    torch.set_num_threads(threads)
    dev = torch.device(device)
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
        while len(rates) < 5 or (time.perf_counter() - start < 1.0 and len(rates) < 50):
            t0 = time.perf_counter()
            torch.mm(a, b, out=out)
            sync()
            rates.append(2 * n**3 / (time.perf_counter() - t0) / 1e9)
        per_size[str(n)] = statistics.median(rates)
    peak = max(per_size.values())
    return {"threads": threads, "device": device, "peak_gflops": peak, "sizes": per_size}


def peak_line(mm: dict) -> str:
    sizes = ", ".join(f"{n}: {g:.1f}" for n, g in mm["sizes"].items())
    return (
        f"fp32 matmul peak on {mm['device']}, {mm['threads']} threads: "
        f"{mm['peak_gflops']:.1f} GFLOP/s (median by size: {sizes})"
    )


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


def other_cores(before: tuple[float, float], after: tuple[float, float], wall_s: float) -> float:
    """Average number of cores kept busy by processes other than the benchmarked ones."""
    return max(0.0, (after[0] - before[0]) - (after[1] - before[1])) / max(wall_s, 1e-9)


def busy_warning(busy: Iterable[float], cores: int | None) -> str | None:
    busy = list(busy)
    if busy and max(busy) > BUSY_WARN:
        return (
            f"WARNING: other processes kept up to {max(busy):.2f} of {cores} cores busy "
            "during the runs (column 'others'); these numbers are not reliable"
        )
    return None


def pinned(core: int | None) -> list[str]:
    """The command prefix that keeps a process on one core (`taskset`), or nothing."""
    if core is None:
        return []
    if shutil.which("taskset") is None:
        raise SystemExit("pinning a program to a core needs taskset (util-linux)")
    return ["taskset", "-c", str(core)]


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


def median(xs: Iterable[float]) -> float | None:
    xs = list(xs)
    return statistics.median(xs) if xs else None


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing (or b is 0)."""
    return a / b if a is not None and b else None


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def wall(cmd: list[str], **kw: Any) -> float:
    """Seconds one whole command takes (its output discarded; a failure raises)."""
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t0


def flops_per_token(cell: str, embedding: int, hidden: int, layers: int, vocab: int) -> dict:
    """Matmul FLOPs per token of a full-softmax model: forward = sum over layers of
    2*gates*H*(in+H) + 2*H*V (gates 4 LSTM, 3 GRU, 1 RNN); training ~ 3x forward."""
    g = GATES[cell]
    fwd = sum(2 * g * hidden * ((embedding if i == 0 else hidden) + hidden) for i in range(layers))
    fwd += 2 * hidden * vocab
    return {"forward": fwd, "train": 3 * fwd}


def gflops(tokens_per_s: float | None, flops: dict | None) -> float | None:
    return tokens_per_s * flops["train"] / 1e9 if tokens_per_s and flops else None


# ---------------------------------------------------------------------------------------------
# lyricgen
# ---------------------------------------------------------------------------------------------


def lyricgen_cmd() -> list[str]:
    """The installed console script beside this interpreter, else `python -m lyricgen`."""
    exe = Path(sys.executable).parent / "lyricgen"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("lyricgen")
    return [found] if found else [sys.executable, "-m", "lyricgen"]


def read_metrics(run: Path) -> list[dict]:
    text = (run / "metrics.jsonl").read_text(encoding="utf-8")
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def run_shape(run: Path) -> dict:
    """The trained shape from a run directory's config.yaml and vocab.json."""
    import yaml

    cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    vocab = json.loads((run / "vocab.json").read_text(encoding="utf-8"))["tokens"]
    d, m = cfg["data"], cfg["model"]
    return {
        "cell": m["cell"], "embedding": m["embedding_dim"], "hidden": m["hidden_size"],
        "layers": m["num_layers"], "vocab": len(vocab), "output": m.get("output", "full"),
        "batch_size": d["batch_size"], "seq_len": d["seq_len"], "mode": d.get("mode"),
        "level": d.get("level"),
    }  # fmt: skip


def run_lyricgen(
    out: Path,
    args: list[str],
    sets: Iterable[str] = (),
    *,
    threads: int,
    minutes: float | None = None,
    device: str | None = "cpu",
    core: int | None = None,
) -> dict:
    """One `lyricgen train ARGS --out OUT --overwrite [--max-minutes M] --set ...` (log in
    OUT.log) and what its run directory says: metrics rows, tokens/s (the last row's, which
    includes warm-up and validation; the median epoch's; "steady", the median log window
    after the first; "train-only" for a single partial epoch), held-out bpc, shape, FLOPs."""
    cmd = [*pinned(core), *lyricgen_cmd(), "train", *args, "--out", str(out), "--overwrite"]
    if device:
        cmd += ["--device", device]
    if minutes is not None:
        cmd += ["--max-minutes", f"{minutes:g}"]
    for s in sets:
        cmd += ["--set", s]
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.with_suffix(".log")
    cpu0, t0 = cpu_snapshot(), time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        rc = subprocess.run(
            cmd, cwd=REPO, env=thread_env(threads), stdout=log, stderr=subprocess.STDOUT
        ).returncode
    wall_s = time.perf_counter() - t0
    result: dict[str, Any] = {
        "cmd": cmd,
        "wall_s": wall_s,
        "other_cores_busy": other_cores(cpu0, cpu_snapshot(), wall_s),
        "returncode": rc,
    }
    if rc != 0 or not (out / "metrics.jsonl").exists():
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        result["error"] = f"exit code {rc}; output tail:\n" + "\n".join(tail)
        return result
    rows = read_metrics(out)
    last = rows[-1]
    result.update(
        metrics=rows,
        tokens_per_s=last.get("tokens_per_s"),
        val_bpc=last.get("val_bpc"),  # held-out bpc after this wall time
        best_val_bpc=min((r["val_bpc"] for r in rows if "val_bpc" in r), default=None),
        epoch_tokens_per_s_median=median(r["tokens_per_s"] for r in rows if "tokens_per_s" in r),
        steady_tokens_per_s=median(
            r["tokens_per_s_steady"] for r in rows if r.get("tokens_per_s_steady")
        ),
        elapsed_s=last.get("elapsed_s"),
    )
    try:
        sh = result["shape"] = run_shape(out)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        result["shape_error"] = repr(exc)
        return result
    if sh["output"] == "full":
        result["flops_per_token"] = flops_per_token(
            sh["cell"], sh["embedding"], sh["hidden"], sh["layers"], sh["vocab"]
        )
    if len(rows) == 1 and last.get("step") and last.get("elapsed_s"):
        # one (partial) epoch of full batches: the training loop's own rate, no validation
        tokens = last["step"] * sh["batch_size"] * sh["seq_len"]
        result["train_only_tokens_per_s"] = tokens / last["elapsed_s"]
    return result


# ---------------------------------------------------------------------------------------------
# The peer: pytorch/examples' word_language_model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """The peer example's demo at character level, the shape the speed benchmarks train
    (train_speed, step_ab, precision): a 2-layer LSTM 256, embedding 128, dropout 0.2,
    batch 20, BPTT 35, stateful batches, plain SGD at lr 20, clipping 0.25, full softmax,
    untied, one epoch."""

    cell: str = "lstm"
    embedding: int = 128
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.2
    batch_size: int = 20
    bptt: int = 35
    lr: float = 20.0
    clip: float = 0.25

    def values(self) -> dict[str, Any]:
        """lyricgen's config keys for this shape (data.val_fraction 0.02)."""
        return {
            "data.level": "char", "data.seq_len": self.bptt, "data.stride": self.bptt,
            "data.batch_size": self.batch_size, "data.mode": "stateful",
            "data.val_fraction": 0.02, "model.cell": self.cell,
            "model.embedding_dim": self.embedding, "model.hidden_size": self.hidden,
            "model.num_layers": self.layers, "model.dropout": self.dropout,
            "model.tie_weights": False, "model.output": "full", "train.epochs": 1,
            "train.optimizer": "sgd", "train.lr": self.lr, "train.momentum": 0.0,
            "train.weight_decay": 0.0, "train.clip_grad_norm": self.clip,
            "train.scheduler": "none", "train.warmup_steps": 0, "train.patience": None,
        }  # fmt: skip

    def sets(self) -> list[str]:
        """values() as `lyricgen train --set KEY=VALUE` arguments (YAML values)."""

        def text(v: Any) -> str:
            return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)

        return [f"{k}={text(v)}" for k, v in self.values().items()]

    def peer_args(self, data_dir: Path, device: str = "cpu") -> list[str]:
        """The example's main.py arguments for this shape (`--accel` off the CPU)."""
        args = [
            "--data", str(data_dir), "--model", self.cell.upper(), "--emsize", str(self.embedding),
            "--nhid", str(self.hidden), "--nlayers", str(self.layers),
            "--batch_size", str(self.batch_size), "--bptt", str(self.bptt),
            "--dropout", str(self.dropout), "--epochs", "1", "--lr", str(self.lr),
            "--clip", str(self.clip),
        ]  # fmt: skip
        return args + (["--accel"] if device != "cpu" else [])


MS_PER_BATCH = re.compile(r"ms/batch\s+([0-9.]+)")


def extract_peer(git_dir: Path, rev: str, dest: Path) -> tuple[Path, str]:
    """Copy word_language_model's Python files out of a git dir of pytorch/examples into
    DEST/word_language_model (its data is not needed, and a mirror may lack the large data
    blobs that `git archive` of the whole folder would read). Returns (folder, commit)."""
    git = ["git", "--git-dir", str(git_dir)]

    def out(*cmd: str) -> str:
        res = subprocess.run([*git, *cmd], capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"git {' '.join(cmd)} in {git_dir} failed: {res.stderr.strip()}")
        return res.stdout

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
    return (res.stdout.strip() or None) if res.returncode == 0 else None


def spaced(text: str) -> str:
    """Each line's characters separated by spaces (whitespace dropped, blank lines kept): the
    example splits on whitespace and adds `<eos>` per line where lyricgen has a newline."""
    return "\n".join(" ".join(c for c in line if not c.isspace()) for line in text.split("\n"))


def write_peer_data(data_dir: Path, train: str, valid: str, test: str | None = None) -> int:
    """train/valid/test.txt for the example; returns the size of the vocabulary it builds."""
    data_dir.mkdir(parents=True, exist_ok=True)
    vocab = {"<eos>"}
    for name, part in (
        ("train", train),
        ("valid", valid),
        ("test", valid if test is None else test),
    ):
        body = spaced(part)
        (data_dir / f"{name}.txt").write_text(body + "\n", encoding="utf-8")
        vocab.update(body.split())
    return len(vocab)


def _pump(stream: Any, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def run_peer(
    peer_dir: Path,
    args: list[str],
    work: Path,
    *,
    threads: int,
    seconds: float,
    log_interval: int,
    tokens_per_batch: int,
    python: str = sys.executable,
    core: int | None = None,
    min_intervals: int = 3,
) -> dict:
    """Run the example's main.py (ARGS after it) until its logged intervals cover `seconds`
    of training (and at least `min_intervals`: one warm-up, the rest timed). tokens/s =
    tokens_per_batch * 1000 / median ms/batch of the intervals after the first."""
    work.mkdir(parents=True, exist_ok=True)
    cmd = [*pinned(core), python, "-u", str(peer_dir / "main.py"), *args,
           "--log-interval", str(log_interval), "--save", str(work / "model.pt")]  # fmt: skip
    wall_limit = 4 * seconds + 300
    cpu0, t_start = cpu_snapshot(), time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=work, env=thread_env(threads), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace",
    )  # fmt: skip
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
                if sum(ms) * log_interval / 1000 >= seconds and len(ms) >= min_intervals:
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
    wall_s = time.perf_counter() - t_start
    med = median(ms[1:])
    result = {
        "cmd": cmd,
        "stopped": stopped,
        "wall_s": wall_s,
        "other_cores_busy": other_cores(cpu0, cpu_snapshot(), wall_s),
        "log_interval": log_interval,
        "ms_per_batch": ms,
        "median_ms_per_batch": med,
        "tokens_per_s": tokens_per_batch * 1000 / med if med else None,
        "train_s_logged": sum(ms) * log_interval / 1000,
    }
    if med is None:
        result["error"] = "fewer than 2 logged intervals; output tail:\n" + "\n".join(tail)
    return result


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def fmt(x: float | None, spec: str = ",.0f") -> str:
    """x formatted by `spec` ('.1%' for a share), "-" for a missing figure."""
    return "-" if x is None else format(x, spec)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "") -> None:
    """Print a markdown table; `align` has one letter per column, "r" right-aligns it."""
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---:" if a == "r" else "---" for a in align.ljust(len(headers))) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |", flush=True)


def write_json(path: Path | None, obj: Any) -> None:
    if path:
        path.write_text(json.dumps(obj, indent=1, ensure_ascii=False, default=str), "utf-8")
        print(f"raw numbers: {path}")
