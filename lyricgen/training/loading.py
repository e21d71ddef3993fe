"""Loading a trained model: a run directory's config, vocabulary and weights rebuilt into a
`LyricsModel` (the run wing holds the files; this wing knows the model)."""

from __future__ import annotations

from pathlib import Path

import torch

from lyricgen.errors import LyricgenError, RunDirError
from lyricgen.run.files import CONFIG, WEIGHTS, load_run_config, load_vocab, load_weights
from lyricgen.training.model import LyricsModel, loss_kernel


def load_run(run_dir: str | Path, device: str | torch.device = "cpu", weights: str = WEIGHTS):
    """Rebuild (config, vocab, model) from a run directory alone; the model is in eval mode."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    vocab = load_vocab(run_dir)
    if not (run_dir / weights).is_file():
        raise RunDirError(
            f"{run_dir} has no {weights}; training did not finish an epoch, or the file was removed"
        )
    try:
        model = LyricsModel(len(vocab), cfg.model, loss=loss_kernel(cfg.model.output, device))
    except (ValueError, LyricgenError) as exc:
        raise RunDirError(f"{run_dir / CONFIG}: {exc}") from None
    load_weights(model, run_dir / weights)
    return cfg, vocab, model.to(device).eval()
