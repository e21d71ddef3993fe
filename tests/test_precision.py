"""train.precision plumbing, checked on the CPU (bf16 autocast runs there; fp16 needs CUDA)."""

import pytest
import torch

from lyricgen.config import load_config
from lyricgen.training.trainer import fit

from .conftest import tiny_config


@pytest.mark.parametrize("output", ["full", "adaptive"])
def test_bf16_trains_and_tracks_fp32(tmp_path, corpus, output):
    """The same steps in bf16 and fp32: both learn, and bf16 validation loss stays close
    (the adaptive softmax too: under autocast its clusters' log-probabilities are bf16)."""
    histories = {}
    for precision in ("fp32", "bf16"):
        (tmp_path / precision).mkdir()
        cfg = load_config(
            tiny_config(
                tmp_path / precision,
                corpus,
                model={"cell": "lstm", "output": output},
                train={"epochs": 3, "precision": precision},
            )
        )
        histories[precision] = fit(cfg)
    fp32, bf16 = histories["fp32"], histories["bf16"]
    assert [m["precision"] for m in bf16] == ["bf16"] * 3
    assert bf16[-1]["val_loss"] < bf16[0]["val_loss"]  # it learns
    # bf16 keeps 8 bits of mantissa: a tiny model's loss stays within a few percent
    assert bf16[-1]["val_loss"] == pytest.approx(fp32[-1]["val_loss"], rel=0.05)
    state = torch.load(tmp_path / "bf16" / "run" / "train_state.pt", weights_only=True)
    assert all(t.dtype == torch.float32 for t in state["model"].values())  # fp32 master weights


def test_autocast_is_entered_per_step_not_around_the_loop(tmp_path, corpus, monkeypatch):
    """Weights keep changing under bf16: a context held across steps would reuse its cached
    bf16 copies of the weights and silently stop learning."""
    from lyricgen.training.precision import Precision

    entered = []
    real = Precision.autocast

    def counting(self):
        entered.append(self.dtype)
        return real(self)

    monkeypatch.setattr(Precision, "autocast", counting)
    cfg = load_config(tiny_config(tmp_path, corpus, train={"epochs": 1, "precision": "bf16"}))
    history = fit(cfg)
    steps = history[-1]["step"]
    assert entered.count(torch.bfloat16) == steps
