"""Models by name: the ones that ship inside the package, and the run a command means.

A shipped model is a run directory inside the package (`lyricgen/shipped_models/NAME/`):
config.yaml, vocab.json, model.safetensors (half precision), metrics.jsonl, rhyme.json and
its compact copy guard, plus `manifest.json`, which names every file with its size and
SHA-256 and says what the model is. Before any of it is read the files are checked against
the manifest, so a damaged installation is one line that says to reinstall, never half a
model.

`resolve` turns what a user typed into a run directory: an existing folder is itself; a
shipped model's name is its folder; nothing at all is `checkpoints/default` when the user
has trained one there, else the shipped model `DEFAULT_MODEL`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lyricgen.corpus.tokcache import file_digest
from lyricgen.errors import RunDirError

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "shipped_models"
MANIFEST = "manifest.json"
DEFAULT_MODEL = "verse"


@dataclass(frozen=True)
class Chosen:
    """The run directory a command will load, and how it was chosen."""

    path: Path
    shipped: str | None = None  # the shipped model's name, when it is one
    implicit: bool = False  # no run was named: the default run or the default shipped model

    @property
    def label(self) -> str:
        """One line that says which model writes the text."""
        if self.shipped:
            about = read_manifest(self.path).get("about", "")
            return f"model: {self.shipped} (shipped with lyricgen{'; ' + about if about else ''})"
        return f"model: {self.path}"


def shipped_names() -> list[str]:
    """The names of the models that ship with this installation."""
    if not SHIPPED_DIR.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / MANIFEST).is_file())


def read_manifest(folder: Path) -> dict:
    try:
        return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDirError(
            f"{Path(folder) / MANIFEST} cannot be read ({str(exc)[:80]}); reinstall lyricgen "
            "(pip install --force-reinstall lyricgen)"
        ) from None


def verify(folder: Path) -> dict:
    """The manifest of a shipped-format folder, after checking every file it lists."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    what = manifest.get("name", folder.name)
    for name, entry in manifest.get("files", {}).items():
        path = folder / name
        problem = None
        if not path.is_file():
            problem = "is missing"
        elif path.stat().st_size != entry["size"]:
            problem = f"has {path.stat().st_size} bytes, not {entry['size']}"
        elif file_digest(path) != entry["sha256"]:
            problem = "does not match its SHA-256"
        if problem:
            raise RunDirError(
                f"the model {what} is damaged ({name} {problem}); reinstall lyricgen "
                "(pip install --force-reinstall lyricgen)"
            )
    return manifest


def shipped_path(name: str) -> Path:
    """The checked folder of the shipped model `name`; an unknown name lists the names."""
    names = shipped_names()
    if name not in names:
        listed = ", ".join(names) if names else "none (reinstall lyricgen)"
        raise RunDirError(f"no shipped model is called {name!r}; the shipped models: {listed}")
    folder = SHIPPED_DIR / name
    verify(folder)
    return folder


def resolve(spec: str | Path | None, default: Path) -> Chosen:
    """The run directory `spec` means (see the module's docstring)."""
    if spec is None or str(spec) == "":
        if (Path(default) / "config.yaml").is_file():
            return Chosen(Path(default), implicit=True)
        if DEFAULT_MODEL in shipped_names():
            return Chosen(shipped_path(DEFAULT_MODEL), DEFAULT_MODEL, implicit=True)
        return Chosen(Path(default), implicit=True)  # the loader's error says to train one
    path = Path(spec)
    if path.exists():
        if (path / MANIFEST).is_file():
            verify(path)
        return Chosen(path)
    if len(path.parts) == 1 and str(spec) in shipped_names():
        return Chosen(shipped_path(str(spec)), str(spec))
    if len(path.parts) == 1:
        names = shipped_names()
        raise RunDirError(
            f"{spec} is neither a run directory nor a shipped model (shipped: "
            f"{', '.join(names) or 'none'}; `lyricgen models` lists them and your runs)"
        )
    return Chosen(path)  # the loader names the missing folder
