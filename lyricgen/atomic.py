"""Publishing files and folders atomically: readers see the old version or the new one,
never a half-written one. The one definition used by the run directory (`checkpoint`), the
token cache and the copy index.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, data: bytes | str | Callable[[BinaryIO], None]) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a mix.
    `data` may be a function that writes into the open file, so a large object is streamed
    to disk instead of being serialized into memory first."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def publish_folder(tmp: Path, folder: Path, replace: bool = True) -> bool:
    """Rename the complete folder `tmp` to `folder`. With `replace`, an existing `folder` is
    moved aside first, then deleted (and put back if the rename fails). Without it the first
    writer wins: a `folder` another process published meanwhile is kept and `tmp` deleted.
    Returns whether `tmp` became `folder`."""
    if not replace:
        try:
            os.replace(tmp, folder)
            return True
        except OSError:  # another process published a non-empty folder first
            shutil.rmtree(tmp, ignore_errors=True)
            return False
    old = None
    if folder.exists() or folder.is_symlink():
        old = folder.with_name(f"{folder.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(folder, old)
    try:
        os.replace(tmp, folder)
    except BaseException:
        if old is not None and not folder.exists():
            os.replace(old, folder)  # put the previous one back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return True
