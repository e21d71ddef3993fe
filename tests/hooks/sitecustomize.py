"""Fault injection for tests/test_kill_resume.py, kept out of the package: a process started
with this folder on PYTHONPATH and LYRICGEN_TEST_WRITE_DELAY=SECONDS writes every file of
its run directory slowly (`lyricgen.run.files.atomic_write` gets a callable that writes half, waits,
then writes the rest, or waits after a streamed write), which widens the window in which a
kill lands mid-write."""

import os
import time

_DELAY = float(os.environ.get("LYRICGEN_TEST_WRITE_DELAY") or 0)

if _DELAY:
    from lyricgen.run import files as checkpoint

    _atomic_write = checkpoint.atomic_write

    def _slow(data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        if callable(data):

            def write(f):
                data(f)
                f.flush()
                time.sleep(_DELAY)  # a window before the rename
        else:

            def write(f):
                f.write(data[: len(data) // 2])
                f.flush()
                time.sleep(_DELAY)  # a window with a half-written temporary file
                f.write(data[len(data) // 2 :])

        return write

    def atomic_write(path, data):
        return _atomic_write(path, _slow(data))

    checkpoint.atomic_write = atomic_write
