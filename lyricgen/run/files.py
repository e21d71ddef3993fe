"""The run directory's files: weights, vocabulary, resolved config, train state, metrics.

Every file is written atomically (`lyricgen.atomic.atomic_write`: temporary file in the same
folder, flushed, fsynced, renamed), so a crash leaves either the old file or the new one, never
half of one. `directory.RunDir` decides when a training run writes which; rebuilding a model
from these files is `lyricgen.training.loading.load_run`.
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from lyricgen.atomic import atomic_write
from lyricgen.config import Config, dump_config, from_dict, load_yaml
from lyricgen.corpus.vocab import Vocab
from lyricgen.errors import ConfigError, RunDirError

if TYPE_CHECKING:
    import torch

from lyricgen.run.names import (  # noqa: F401 - the names are part of this module's interface
    CONFIG,
    INDEX_DIR,
    METRICS,
    RHYME,
    STATE,
    VOCAB,
    WEIGHTS,
)


def remove_temp_files(run_dir: Path) -> None:
    """Delete temporary files that a killed writer left behind (the real files are intact)."""
    for p in Path(run_dir).glob(".*.tmp"):
        p.unlink(missing_ok=True)


def ensure_writable(out_dir: str | Path) -> Path:
    """Create the run directory and prove we can write there, before any training work."""
    p = Path(out_dir)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / ".write_test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(
            f"cannot write to run directory {p} ({exc.strerror}); choose another --out"
        ) from None
    return p


def weights_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors on the CPU (tied duplicates dropped), for saving."""
    state = model.state_dict()
    if getattr(model, "cfg", None) is not None and model.cfg.tie_weights:
        state.pop("decoder.weight", None)  # the same tensor as embedding.weight
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def save_weights(model: torch.nn.Module, path: str | Path) -> None:
    from safetensors.torch import save

    atomic_write(path, save(weights_dict(model), metadata={"format": "pt"}))


def read_safetensors(path: str | Path, framework: str = "torch") -> dict:
    """Read a safetensors file as torch tensors or NumPy arrays; missing or corrupt files
    are named in the error."""
    from safetensors import SafetensorError

    if framework == "numpy":
        from safetensors.numpy import load
    else:
        from safetensors.torch import load
    path = Path(path)
    if not path.is_file():
        raise RunDirError(
            f"{path.parent} has no {path.name}; training did not finish an epoch, or the file was removed"
        )
    try:
        return load(path.read_bytes())
    except (SafetensorError, ValueError, OSError) as exc:
        raise RunDirError(
            f"{path} is corrupt or truncated ({exc}); retrain or restore it"
        ) from None


def check_fit(
    tensors: dict, shapes: dict[str, tuple], source: str | Path, optional: set[str] = frozenset()
) -> None:
    """Refuse weights whose names or shapes do not match what the config builds."""
    missing = sorted(set(shapes) - set(tensors) - set(optional))
    extra = sorted(set(tensors) - set(shapes))
    if missing or extra:
        raise RunDirError(
            f"{source} does not fit {CONFIG} (missing {missing[:3]}, unexpected {extra[:3]}); "
            "the weights and config come from different runs"
        )
    for name, shape in shapes.items():
        if name in tensors and tuple(tensors[name].shape) != tuple(shape):
            raise RunDirError(
                f"{source} does not fit {CONFIG}: {name} has shape {tuple(tensors[name].shape)}, "
                f"the config needs {tuple(shape)}; the weights and config come from different runs"
            )


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load safetensors weights into `model`; corrupt or mismatched files are named."""
    apply_weights(model, read_safetensors(path, "torch"), path)


def apply_weights(model: torch.nn.Module, tensors: dict, source: str | Path) -> None:
    """Copy `tensors` into `model` after checking that names and shapes fit its config."""
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    tied = {"decoder.weight"} if model.cfg.tie_weights else set()
    check_fit(tensors, shapes, source, optional=tied)
    model.load_state_dict(tensors, strict=False)


def save_train_state(state: dict, path: str | Path) -> None:
    import torch

    atomic_write(path, lambda f: torch.save(state, f))  # streamed: no second copy in memory


def load_train_state(path: str | Path) -> dict:
    """Load train_state.pt with `weights_only=True`: plain tensors and containers only, so
    a crafted file cannot run code while loading."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise RunDirError(
            f"{path} is missing, so there is nothing to resume; train without --resume"
        )
    try:
        return torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "disallowed content"
        raise RunDirError(
            f"refusing to load {path}: it holds objects that could run code ({first[:120]}); "
            "only load run directories you trust, or retrain"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise RunDirError(
            f"{path} is corrupt or truncated ({str(exc)[:120]}); delete it and retrain"
        ) from None


def save_run_files(out_dir: Path, cfg: Config, vocab: Vocab) -> None:
    atomic_write(out_dir / CONFIG, dump_config(cfg))
    atomic_write(out_dir / VOCAB, vocab.to_json())


def write_metrics(out_dir: Path, history: list[dict]) -> None:
    atomic_write(
        out_dir / METRICS, "".join(json.dumps(h, ensure_ascii=False) + "\n" for h in history)
    )


def load_run_config(run_dir: str | Path) -> Config:
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RunDirError(
            f"run directory {run_dir} does not exist; train one with `lyricgen train` or pass --checkpoint"
        )
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is not a directory; pass the run directory to --checkpoint")
    path = run_dir / CONFIG
    if not path.is_file():
        raise RunDirError(f"{run_dir} has no {CONFIG}; it is not a lyricgen run directory")
    try:
        return from_dict(load_yaml(path), str(path))
    except ConfigError as exc:
        raise RunDirError(str(exc)) from None


def load_vocab(run_dir: str | Path) -> Vocab:
    path = Path(run_dir) / VOCAB
    if not path.is_file():
        raise RunDirError(
            f"{Path(run_dir)} has no {VOCAB}; the run directory is incomplete, retrain it"
        )
    try:
        return Vocab.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path} is corrupt ({str(exc)[:100]}); retrain or restore it") from None


class RunLock:
    """An exclusive lock on a run directory for the duration of a training run.

    Uses `flock` on `.lock`, which the kernel releases when the process dies, so a lock
    left by a killed run never blocks the next one. The file records the holder's pid so
    a refused run can name it."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / ".lock"
        self._file = None

    def __enter__(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; run without a lock
            return self
        f = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise RunDirError(
                f"{self.path.parent} is in use by another lyricgen train ({holder}); wait for it "
                "to finish or stop it, or choose another --out"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(
            f"pid {os.getpid()} on {os.uname().nodename if hasattr(os, 'uname') else 'this host'}"
        )
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the flock
            self._file = None


def read_history(run_dir: str | Path) -> list[dict]:
    """Return the per-epoch metrics of a run, one dict per line of its metrics.jsonl."""
    run_dir = Path(run_dir)
    train_hint = f"train it first (lyricgen train --out {run_dir})"
    if not run_dir.exists():
        raise RunDirError(f"run directory {run_dir} does not exist; {train_hint}")
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is not a directory; pass a run directory")
    path = run_dir / METRICS
    if not path.is_file():
        raise RunDirError(f"{run_dir} has no {METRICS}; {train_hint}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise RunDirError(f"{path} is not UTF-8 text; the file is damaged") from None
    except OSError as exc:
        raise RunDirError(f"cannot read {path}: {exc.strerror or exc}") from None
    history: list[dict] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise RunDirError(f"{path} line {number} is not JSON; the file is damaged") from None
        if not isinstance(entry, dict):
            raise RunDirError(f"{path} line {number} is not a JSON object; the file is damaged")
        for key in ("train_loss", "val_loss"):
            if key not in entry:
                raise RunDirError(f"{path} line {number} has no {key}; the file is damaged")
        history.append(entry)
    if not history:
        raise RunDirError(f"{path} is empty: no epoch has finished yet; {train_hint}")
    return history


def best_epoch(history: list[dict]) -> dict | None:
    """The one definition of a run's best epoch: the entry with the lowest finite validation
    loss, the first of equals (the epoch training flagged `best`); None when no epoch has one.
    Within one run, validation loss and bpc rank the epochs alike."""
    best = None
    for entry in history:
        loss = entry.get("val_loss")
        if isinstance(loss, (int, float)) and not isinstance(loss, bool) and math.isfinite(loss):
            if best is None or loss < best["val_loss"]:
                best = entry
    return best
