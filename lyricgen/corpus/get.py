"""Getting the classical corpora (`lyricgen corpus get NAME`): the Song ci, the Tang shi and
the Song shi of the chinese-poetry collection at a pinned commit, written as corpus text.

Each source file is downloaded into a cache folder and checked against the shipped manifest
(`data/chinese-poetry-99ebbef.tsv`: path, size and SHA-256 of the 335 files, in reading
order). A file already cached with the right digest is not fetched again; a download goes to
`FILE.part` first and a rerun resumes it (HTTP Range) or, when the server sends the whole
file instead, starts it over. Only when every file is checked is the text converted (the
shi are in traditional characters: OpenCC's `t2s`, the `corpus` extra) and written,
atomically, so no half-written corpus is ever left. From the same files the output is byte
for byte the reference text (`REFERENCE` holds its SHA-256).
"""

from __future__ import annotations

import errno
import http.client
import json
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lyricgen.atomic import atomic_write
from lyricgen.errors import CorpusError

log = logging.getLogger(__name__)

COMMIT = "99ebbef7e1345c0985c44b9fd96a3f9e776f117b"
SOURCE = f"https://raw.githubusercontent.com/chinese-poetry/chinese-poetry/{COMMIT}/"
MANIFEST = Path(__file__).with_name("data") / "chinese-poetry-99ebbef.tsv"
_BLOCK = 1 << 16
_TIMEOUT_S = 60  # per connection attempt and per read: a stalled server is a network error
_INSTALL = "pip install 'lyricgen[corpus]'"


@dataclass(frozen=True)
class Recipe:
    """How one corpus is read from its source files."""

    pattern: str  # the manifest paths of its files (a full match), read in manifest order
    t2s: bool  # the source is in traditional characters
    strip: bool  # strip each line, drop empty ones and the poems left without lines
    tunes: bool = False  # also write NAME_tunes.txt: each poem's `rhythmic`, one a line


RECIPES = {
    # The ci files are already simplified: t2s would change 2,393 of their 1,887,138
    # characters, characters simplified text keeps (沈 the surname 369 times, 於 277, 乾 197)
    # or rare ones it maps to Extension B forms (殢 -> 𣨼 167 times); so they are not converted.
    "songci": Recipe(r"宋词/ci\.song\.\d+\.json", t2s=False, strip=False, tunes=True),
    "tangshi": Recipe(r"全唐诗/poet\.tang\.\d+\.json", t2s=True, strip=True),
    "songshi": Recipe(r"全唐诗/poet\.song\.\d+\.json", t2s=True, strip=True),
}
NAMES = tuple(RECIPES)

# SHA-256 of each output file built from the files of the shipped manifest (with opencc
# 1.4.2 for the shi; another OpenCC version may convert a few characters differently).
REFERENCE = {
    "songci.txt": "b86ac3a432eb588e8205918e3dee292597e986ca6f60b51a35a35099484a308f",
    "songci_tunes.txt": "60cdc2586dbdec9d3560a45d3c9134e874633e94a8ff95839ea522b347872097",
    "tangshi.txt": "68cefbe0917d975ad7419323edf4044bc9558026d01fd8d88f5d526b62e2f517",
    "songshi.txt": "d4ae4b1c44f65dc0e89483c7f181ffbacfe5883df69a24836b07f8f5d72d63c7",
}


@dataclass(frozen=True)
class SourceFile:
    """One line of the manifest."""

    path: str  # in the chinese-poetry repository
    size: int
    sha256: str


@dataclass(frozen=True)
class Written:
    """One file `get` wrote."""

    path: Path
    chars: int
    lines: int  # not counting blank ones
    poems: int | None  # None for a list of tunes
    sha256: str
    reference: bool | None  # equals the reference text; None: no reference (another manifest)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def default_cache() -> Path:
    """Where downloads are kept: the token cache's root (LYRICGEN_CACHE_DIR, else
    ~/.cache/lyricgen), then chinese-poetry/COMMIT."""
    from lyricgen.corpus.tokcache import cache_root

    return cache_root() / "chinese-poetry" / COMMIT


def read_manifest(path: Path = MANIFEST) -> list[SourceFile]:
    """The manifest's files in order: `path<TAB>size<TAB>sha256` lines, `#` starts a comment."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CorpusError(f"cannot read the manifest {path}: {exc.strerror}") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 3 or not cols[1].isdigit() or not re.fullmatch(r"[0-9a-f]{64}", cols[2]):
            raise CorpusError(f"{path}:{n}: expected 'path<TAB>size<TAB>sha256', got {line!r}")
        rows.append(SourceFile(cols[0], int(cols[1]), cols[2]))
    return rows


def get(
    name: str,
    out: Path,
    source: str = SOURCE,
    cache: Path | None = None,
    manifest: Path = MANIFEST,
    progress: Callable[..., Any] | None = None,
) -> list[Written]:
    """Download, check and convert corpus `name` (one of NAMES) into out/NAME.txt (and
    out/songci_tunes.txt for songci). `progress`, if given, is called like `tqdm(total=,
    desc=, unit=)` and returns a bar with `update(n)` and `close()`."""
    recipe = RECIPES.get(name)
    if recipe is None:
        raise CorpusError(f"no corpus named {name!r}; the names are {', '.join(NAMES)}")
    files = [f for f in read_manifest(manifest) if re.fullmatch(recipe.pattern, f.path)]
    if not files:
        raise CorpusError(f"the manifest {manifest} lists no file of {name} ({recipe.pattern})")
    convert = _t2s() if recipe.t2s else None  # before downloading: a missing extra fails fast
    cache = Path(cache) if cache is not None else default_cache()
    bar = (progress or _bar_none)(total=sum(f.size for f in files), desc=name, unit="B")
    try:
        paths = [fetch(f, source, cache, bar) for f in files]
    finally:
        bar.close()
    poems, tunes = [], []
    bar = (progress or _bar_none)(total=len(paths), desc=f"{name}: reading", unit="file")
    try:
        for f, path in zip(files, paths, strict=True):
            for lines, tune in _poems(path, f.path, recipe.strip):
                poems.append("\n".join(lines))
                tunes.append(tune)
            bar.update(1)
    finally:
        bar.close()
    text = "\n\n".join(poems) + "\n"
    if convert is not None:
        text = convert(text)  # as line by line: OpenCC's phrases never span a line break
    texts = {f"{name}.txt": (text, len(poems))}
    if recipe.tunes:
        if not all(isinstance(t, str) and t and "\n" not in t for t in tunes):
            raise CorpusError(f"a poem of {name} has no one-line 'rhythmic' (tune) field")
        texts[f"{name}_tunes.txt"] = ("\n".join(tunes) + "\n", None)
    return _write(texts, Path(out), Path(manifest) == MANIFEST)


def _bar_none(**_: Any) -> _NoBar:
    return _NoBar()


def _t2s() -> Callable[[str], str]:
    try:
        import opencc
    except ImportError:
        raise CorpusError(f"converting to simplified characters needs OpenCC: {_INSTALL}") from None
    return opencc.OpenCC("t2s").convert


def _poems(path: Path, name: str, strip: bool) -> Iterator[tuple[list[str], str | None]]:
    """Each poem of a source file as (lines, tune)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{name} is not UTF-8 JSON: {exc}") from None
    if not isinstance(data, list):
        raise CorpusError(f"{name}: expected a JSON list of poems, got {type(data).__name__}")
    for i, poem in enumerate(data):
        lines = poem.get("paragraphs") if isinstance(poem, dict) else None
        if not isinstance(lines, list) or not all(isinstance(s, str) for s in lines):
            raise CorpusError(f"{name}: poem {i} has no 'paragraphs' list of strings")
        if strip:
            lines = [s.strip() for s in lines if s.strip()]
            if not lines:
                continue
        yield lines, poem.get("rhythmic")


def fetch(f: SourceFile, source: str, cache: Path, bar: Any = None) -> Path:
    """The checked copy of `f` in `cache`, downloaded from `source` (a URL ending in `/`)
    unless the cache already holds it with the right digest."""
    from lyricgen.corpus.tokcache import file_digest

    bar = bar or _NoBar()
    dest = cache / f.path
    try:
        if dest.is_file():
            if dest.stat().st_size == f.size and file_digest(dest) == f.sha256:
                bar.update(f.size)
                return dest
            log.info("%s: the cached copy is damaged; downloading it again", f.path)
            dest.unlink()
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        _download(source.rstrip("/") + "/" + quote(f.path), part, f, bar)
        got, size = file_digest(part), part.stat().st_size
        if got != f.sha256:
            part.unlink()
            raise CorpusError(
                f"{f.path}: SHA-256 mismatch, expected {f.sha256} ({f.size:,} bytes), got "
                f"{got} ({size:,} bytes); the bad download was deleted"
            )
        os.replace(part, dest)
    except OSError as exc:
        raise _disk_error(exc) from None
    return dest


def _download(url: str, part: Path, f: SourceFile, bar: Any) -> None:
    """Download `url` into `part`, resuming what it holds; a network error keeps it."""
    have = part.stat().st_size if part.exists() else 0
    if have > f.size:  # longer than the file: no resuming that
        part.unlink()
        have = 0
    if have == f.size:  # complete; the caller checks it
        bar.update(have)
        return
    headers = {"User-Agent": "lyricgen", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=_TIMEOUT_S
        )
    except urllib.error.HTTPError as exc:
        raise CorpusError(
            f"cannot download {url}: HTTP {exc.code} {exc.reason}"
            + ("; is --source right?" if exc.code == 404 else "; rerun the command to resume")
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _network_error(f, exc) from None
    with resp:
        if have and not (
            resp.status == 206
            and resp.headers.get("Content-Range", "").startswith(f"bytes {have}-")
        ):
            have = 0  # the server sent the whole file, not the rest: start over
        bar.update(have)
        with open(part, "ab" if have else "wb") as out:
            while out.tell() <= f.size:  # more than the file has: the digest will say so
                try:
                    block = resp.read(_BLOCK)
                except (OSError, http.client.HTTPException) as exc:
                    raise _network_error(f, exc) from None
                if not block:
                    break
                out.write(block)
                bar.update(len(block))
    size = part.stat().st_size
    if size < f.size:  # http.client returns a short body when the server hangs up early
        raise CorpusError(
            f"the download of {f.path} stopped at {size:,} of {f.size:,} bytes; "
            "rerun the command to resume it"
        )


def _network_error(f: SourceFile, exc: BaseException) -> CorpusError:
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    return CorpusError(
        f"the download of {f.path} failed ({reason}); rerun the command to resume it"
    )


def _disk_error(exc: OSError) -> CorpusError:
    where = f" writing {exc.filename}" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return CorpusError(f"the disk is full{where}; free some space and rerun (downloads resume)")
    return CorpusError(f"cannot write{where or ' a file'}: {exc.strerror or exc}")


def _write(
    texts: dict[str, tuple[str, int | None]], out: Path, shipped_manifest: bool
) -> list[Written]:
    """Write each (text, poems) under its file name in `out`, atomically."""
    import hashlib

    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, (text, poems) in texts.items():
            data = text.encode("utf-8")
            atomic_write(out / name, data)
            digest = hashlib.sha256(data).hexdigest()
            ref = REFERENCE.get(name) if shipped_manifest else None
            lines = sum(1 for line in text.split("\n") if line)
            same = None if ref is None else ref == digest
            written.append(Written(out / name, len(text), lines, poems, digest, same))
    except OSError as exc:
        raise _disk_error(exc) from None
    return written
