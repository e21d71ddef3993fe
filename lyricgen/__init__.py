"""lyricgen: train recurrent language models on song lyrics and write new lyrics."""

from __future__ import annotations

__version__ = "0.1.0"


def load(run_dir, backend: str = "auto", device: str = "auto", corpus=None, require_index=False):
    """Load a run directory for generation (see `lyricgen.api.load`); imported lazily so
    that `import lyricgen` stays light."""
    from lyricgen.api import load as _load

    return _load(run_dir, backend, device, corpus, require_index)
