"""`lyricgen models export`: a finished run made into a model that ships with the package.

The shipped folder (`lyricgen/shipped_models/NAME/`, see `lyricgen.run.models`) holds the
run's config, vocabulary, metrics and rhyme table as they are, its weights in half precision
(measured to cost nothing: docs/BENCHMARKS.md, "The shipped verse model"), the compact copy
guard of its training text (`craft.clauseguard`), and `manifest.json` with every file's
size and SHA-256. The folder is written aside and renamed into place when complete.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from lyricgen.atomic import atomic_write, publish_folder
from lyricgen.corpus.tokcache import file_digest
from lyricgen.errors import LyricgenError
from lyricgen.run import models
from lyricgen.run.files import CONFIG, METRICS, RHYME, VOCAB, WEIGHTS, best_epoch, read_history
from lyricgen.run.models import MANIFEST


def export_model(
    run: Path,
    name: str,
    guard_texts: list[Path],
    about: str = "",
    out: Path | None = None,
    half: bool = True,
) -> Path:
    """Write the shipped folder of `run` as `name` (into `out`, default the package's
    shipped_models) and return it."""
    import numpy as np
    from safetensors.numpy import save

    from lyricgen import __version__
    from lyricgen.craft.clauseguard import build_guard
    from lyricgen.run.files import read_safetensors

    if not name.isidentifier():
        raise LyricgenError(f"--name {name!r}: give a plain name such as verse")
    for f in (CONFIG, VOCAB, WEIGHTS):
        if not (run / f).is_file():
            raise LyricgenError(f"{run} has no {f}; export a finished run")
    for t in guard_texts:
        if not t.is_file():
            raise LyricgenError(f"--guard {t} does not exist; give the run's training text")
    folder = (out or models.SHIPPED_DIR) / name
    tmp = folder.with_name(f".{name}.export")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        tensors = read_safetensors(run / WEIGHTS, "numpy")
        if half:
            tensors = {k: v.astype(np.float16) for k, v in tensors.items()}
        atomic_write(tmp / WEIGHTS, save(tensors, metadata={"format": "pt"}))
        for f in (CONFIG, VOCAB, METRICS, RHYME):
            if (run / f).is_file():
                shutil.copyfile(run / f, tmp / f)
        texts = [t.read_text(encoding="utf-8") for t in guard_texts]
        guard = build_guard(texts, tmp, sources=[t.name for t in guard_texts])
        best = best_epoch(read_history(run)) if (run / METRICS).is_file() else None
        manifest = {
            "name": name,
            "about": about,
            "lyricgen": __version__,
            "exported": time.strftime("%Y-%m-%d"),
            "weights": "float16" if half else "float32",
            "best_epoch": best,
            "copy_guard": {k: guard[k] for k in ("keys", "false_positive_rate", "sources")},
            "files": {
                p.name: {"size": p.stat().st_size, "sha256": file_digest(p)}
                for p in sorted(tmp.iterdir())
                if p.is_file() and not p.name.startswith(".")
            },
        }
        atomic_write(tmp / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")
        publish_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def list_models(runs_root: Path = Path("checkpoints")) -> list[dict]:
    """The shipped models, then the runs under `runs_root` (folders with a config)."""
    from lyricgen.run.models import read_manifest, shipped_names

    rows = []
    for name in shipped_names():
        folder = models.SHIPPED_DIR / name
        m = read_manifest(folder)
        size = sum(e["size"] for e in m.get("files", {}).values())
        best = m.get("best_epoch") or {}
        rows.append({"name": name, "kind": "shipped", "path": str(folder), "about": m.get("about", ""),
                     "mb": size / 1e6, "val_bpc": best.get("val_bpc")})  # fmt: skip
    if runs_root.is_dir():
        for cfg in sorted(runs_root.glob(f"*/{CONFIG}")):
            run = cfg.parent
            try:
                best = best_epoch(read_history(run)) or {}
            except LyricgenError:
                best = {}
            rows.append({"name": str(run), "kind": "run", "path": str(run), "about": "",
                         "mb": None, "val_bpc": best.get("val_bpc")})  # fmt: skip
    return rows
