"""lyricgen's optimizers are torch's, called without torch.compile's wrappers: the same
updates and state_dict format, and a training run never imports torch._dynamo (2.3 s)."""

import copy

import pytest
import torch

from lyricgen.training.optim import OPTIMIZERS

from .conftest import fresh_python, tiny_config, write_corpus

TORCH = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def _params(seed: int) -> list[torch.nn.Parameter]:
    values = torch.sin(torch.arange(18, dtype=torch.float32) * (seed + 1.3))
    return [torch.nn.Parameter(values[:15].view(5, 3).clone()), torch.nn.Parameter(values[15:])]


def _train(opt, params, steps: int) -> None:
    for k in range(steps):
        opt.zero_grad()
        loss = sum(((p - 0.1 * k) ** 2).sum() for p in params)
        loss.backward()
        opt.step()


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("fused", [True, False])
def test_same_updates_and_state_dict_as_torch(name, fused):
    kwargs = {"lr": 0.05, "weight_decay": 0.01}
    if name == "sgd":
        kwargs["momentum"] = 0.9
    kind = {"fused": True} if fused else {"foreach": True}
    ours_p, theirs_p = _params(0), _params(0)
    ours = OPTIMIZERS[name](ours_p, **kwargs, **kind)
    theirs = TORCH[name](theirs_p, **kwargs, **kind)
    assert isinstance(ours, torch.optim.Optimizer)
    _train(ours, ours_p, 4)
    _train(theirs, theirs_p, 4)
    for a, b in zip(ours_p, theirs_p, strict=True):
        assert torch.equal(a, b)
    # a checkpoint written by either resumes in the other and they stay in step
    mine, torchs = ours.state_dict(), theirs.state_dict()
    assert mine["param_groups"] == torchs["param_groups"]
    for k, state in torchs["state"].items():
        for key, value in state.items():
            assert torch.equal(mine["state"][k][key], value)
    resumed_p = [torch.nn.Parameter(p.detach().clone()) for p in theirs_p]
    resumed = OPTIMIZERS[name](resumed_p, **kwargs, **kind)
    resumed.load_state_dict(copy.deepcopy(torchs))  # as a checkpoint file would
    _train(resumed, resumed_p, 3)
    _train(theirs, theirs_p, 3)
    for a, b in zip(resumed_p, theirs_p, strict=True):
        assert torch.equal(a, b)
    # step runs with grad mode off, as torch's does, and restores it
    assert torch.is_grad_enabled()


def test_a_training_run_never_imports_torch_dynamo(tmp_path):
    """Every torch.optim method imports torch._dynamo on its first call (2.3 s on the
    benchmark machine); a whole run, its checkpoints and a resume, must not."""
    corpus = write_corpus(tmp_path / "corpus.txt")
    cfg = tiny_config(tmp_path, corpus, train={"epochs": 1})
    code = f"""
        import sys
        from lyricgen.config import load_config
        from lyricgen.training.trainer import fit
        cfg = load_config({str(cfg)!r})
        fit(cfg)
        cfg = load_config({str(cfg)!r}, overrides={{"train.epochs": 2}})
        fit(cfg, resume=True)
        print("torch._dynamo" in sys.modules)
    """
    assert fresh_python(code).stdout.strip().splitlines()[-1] == "False"
