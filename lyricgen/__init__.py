"""lyricgen: train recurrent language models on song lyrics and write new lyrics."""

from __future__ import annotations

# the options of `load(...).generate(...)`; a light import (no numpy, no torch)
from lyricgen.craft.options import SamplingOptions
from lyricgen.run.names import DEFAULT_RUN  # checkpoints/default

__all__ = ["DEFAULT_RUN", "SamplingOptions", "__version__", "load"]
__version__ = "0.3.0"


def load(run_dir, backend: str = "auto", device: str = "auto", corpus=None, require_index=False):
    """Load a run directory for generation (see `lyricgen.frontend.api.load`); imported lazily so
    that `import lyricgen` stays light."""
    from lyricgen.frontend.api import load as _load

    return _load(run_dir, backend, device, corpus, require_index)
