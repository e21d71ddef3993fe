"""The names of a run directory's files: what the craft wing needs to find the files it
reads and writes there (the rhyme table, the copy index) without importing the file formats
(`files`, which brings torch for train_state.pt)."""

from pathlib import Path

DEFAULT_RUN = Path("checkpoints/default")  # the run directory commands use by default

CONFIG = "config.yaml"
VOCAB = "vocab.json"
# the weights generation reads: the best epoch under train.keep: best, the last under last
WEIGHTS = "model.safetensors"
STATE = "train_state.pt"
METRICS = "metrics.jsonl"
RHYME = "rhyme.json"  # the vocabulary's rhyme groups (craft.rhyme.save_rhyme_table)
INDEX_DIR = "copy_index"  # the training text's copy index (craft.originality)
