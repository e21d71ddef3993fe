"""The configs and the corpus that ship with lyricgen, found from any folder.

In a checkout they are `configs/*.yaml` and `data/lyrics.txt` at the top of the repository;
`pip install .` installs the same files inside the package (`lyricgen/shipped_configs`,
`lyricgen/shipped_data`, see pyproject.toml). So `lyricgen train` works in any folder:

- `--config NAME` (or no `--config`: `default`) is a file when one exists at that path,
  else the shipped config of that name (`lyricgen configs` lists them);
- a shipped config's `data/...` corpus path that does not exist in the current folder
  means the shipped file;
- run directories stay relative to the current folder.
"""

from __future__ import annotations

from pathlib import Path

from lyricgen.errors import ConfigError

_PKG = Path(__file__).resolve().parents[1]  # the lyricgen package


def _first_existing(*candidates: Path) -> Path | None:
    return next((c for c in candidates if c.is_dir()), None)


def configs_dir() -> Path | None:
    """Where the shipped configs are: the installed package, else the checkout."""
    return _first_existing(_PKG / "shipped_configs", _PKG.parent / "configs")


def data_dir() -> Path | None:
    return _first_existing(_PKG / "shipped_data", _PKG.parent / "data")


def list_configs() -> list[tuple[str, Path, str]]:
    """(name, path, first comment line) of every shipped config."""
    folder = configs_dir()
    if folder is None:
        return []
    out = []
    for path in sorted(folder.glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        about = first[0].lstrip("# ").strip() if first and first[0].startswith("#") else ""
        out.append((path.stem, path, about))
    return out


def find_config(spec: str | Path | None) -> Path:
    """The config file `spec` names: an existing path, else a shipped config's name."""
    spec = Path(spec) if spec is not None else Path("configs/default.yaml")
    if spec.is_file():
        return spec
    if len(spec.parts) > 1 and spec != Path("configs/default.yaml"):  # a path, not a name
        raise ConfigError(
            f"config file {spec} does not exist; check the path, or give a shipped config's "
            "name (`lyricgen configs` lists them)"
        )
    name = spec.stem if spec.suffix in (".yaml", ".yml") else spec.name
    folder = configs_dir()
    if folder is not None and (folder / f"{name}.yaml").is_file():
        return folder / f"{name}.yaml"
    names = ", ".join(n for n, _, _ in list_configs()) or "none found"
    raise ConfigError(
        f"no config file {spec} here, and no shipped config named {name!r}; give a YAML file "
        f"or one of: {names} (`lyricgen configs` lists them)"
    )


def resolve_data_path(path: str | None) -> str | None:
    """A relative `data/...` path that does not exist here means the shipped file."""
    if not path:
        return path
    p = Path(path)
    if p.is_absolute() or p.exists() or not p.parts or p.parts[0] != "data":
        return path
    shipped = data_dir()
    if shipped is not None and (shipped / Path(*p.parts[1:])).is_file():
        return str(shipped / Path(*p.parts[1:]))
    return path
