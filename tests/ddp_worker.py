"""Run by tests/test_distributed.py under torchrun: trains a config and saves this rank's
final weights and history, so the test can compare ranks with each other and with one
process."""

import contextlib
import json
import sys
from pathlib import Path

import torch

from lyricgen.config import load_config
from lyricgen.run.files import weights_dict
from lyricgen.training import distributed
from lyricgen.training.trainer import Trainer

cfg = load_config(sys.argv[1])
out = Path(sys.argv[2])
dist = distributed.from_env("cpu")
try:
    with contextlib.ExitStack() as stack:
        trainer = Trainer(cfg, out=cfg.out_dir, stack=stack, dist=dist, overwrite=True)
        history = trainer.run()
    torch.save(weights_dict(trainer.model), out / f"rank{dist.rank}.pt")
    (out / f"rank{dist.rank}.json").write_text(json.dumps(history))
    del trainer  # DistributedDataParallel holds the process group too
finally:
    # on every path, like fit(): a process that exits with its gloo group alive while
    # the other still talks to it can die of SIGABRT
    distributed.shutdown(dist)
