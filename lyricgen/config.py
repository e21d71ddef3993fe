"""Typed configuration: YAML load, `section.key=value` overrides, validation.

Each section is a dataclass whose defaults are the library's defaults. Field metadata
carries the allowed range or choices, so validation errors name the key, the file and
what values would be accepted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lyricgen.errors import ConfigError
from lyricgen.typed import TypeMismatch, bounds, coerce, out_of_range

LEVELS = ("char", "word", "space")
CELLS = ("rnn", "lstm", "gru")
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class DataConfig:
    corpus: str = "data/lyrics.txt"
    encoding: str = "utf-8"
    level: str = field(default="char", metadata={"choices": LEVELS})
    val_corpus: str | None = None  # optional separate validation file (e.g. PTB valid.txt)
    val_fraction: float = field(default=0.1, metadata=bounds(0.0, 0.5, lo_open=True))
    min_freq: int = field(default=1, metadata=bounds(1))
    # the vocabulary's size cap; unset: none at char level, WORD_VOCAB_CAP at word and space
    # level (vocab_cap); 0: no cap
    max_size: int | None = field(default=None, metadata=bounds(0))
    # a word outside the vocabulary is spelled out in its characters ("chars") or becomes
    # <unk> ("unk"); unset: chars at word level, unk at space level (rare_words)
    rare: str | None = field(default=None, metadata={"choices": ("chars", "unk")})
    seq_len: int = field(default=64, metadata=bounds(1))
    stride: int | None = field(default=None, metadata=bounds(1))  # None: seq_len // 2
    batch_size: int = field(default=32, metadata=bounds(1))
    mode: str = field(default="shuffle", metadata={"choices": ("shuffle", "stateful")})
    # stateful mode: lay the training songs (blocks between blank lines) out in a new order
    # each epoch, seeded by train.seed; a corpus without blank lines keeps its order
    shuffle_songs: bool = True
    # token-id cache folder; None: $LYRICGEN_CACHE_DIR, else ~/.cache/lyricgen
    cache_dir: str | None = None
    # index the corpus into the run directory for the copy guard (generate --max-copy)
    copy_index: bool = True
    # keyword-conditioned training (CTRL-style control lines, char level): this share of the
    # training songs is preceded by a line of the song's keywords between 〔 〕 (its three
    # characters of highest TF-IDF), the rest by none, so the run also writes without one;
    # `generate --keywords` then feeds such a line before the text (corpus/control.py).
    # Measured in docs/BENCHMARKS.md, "Writing about something". 0: off
    keyword_lines: float = field(default=0.0, metadata=bounds(0.0, 1.0))


@dataclass
class ModelConfig:
    cell: str = field(default="lstm", metadata={"choices": CELLS})
    nonlinearity: str = field(default="tanh", metadata={"choices": ("tanh", "relu")})
    embedding_dim: int = field(default=128, metadata=bounds(1))
    hidden_size: int = field(default=256, metadata=bounds(1))
    num_layers: int = field(default=2, metadata=bounds(1))
    dropout: float = field(default=0.2, metadata=bounds(0.0, 1.0, hi_open=True))
    # DropConnect on the recurrent (hidden-to-hidden) weights in training: one mask per
    # step, the same at every time step (Merity et al. 2018, AWD-LSTM's weight drop)
    weight_drop: float = field(default=0.0, metadata=bounds(0.0, 1.0, hi_open=True))
    tie_weights: bool = False
    # the output layer: full softmax, or adaptive softmax (Grave et al. 2017) whose head
    # holds the tokens below cutoffs[0] (default: chosen from the training counts so that
    # the head covers about 90% of the text) and whose tail clusters shrink by div_value;
    # auto: adaptive (untied) when the training vocabulary has at least adaptive_from
    # entries, else full. A run directory's config.yaml records what auto chose.
    output: str = field(default="full", metadata={"choices": ("full", "adaptive", "auto")})
    adaptive_from: int = field(default=5000, metadata=bounds(2))
    cutoffs: list[int] | None = None
    div_value: float = field(default=4.0, metadata=bounds(1.0, lo_open=True))
    batch_first: bool = True  # accepted for old configs; the RNN always runs time-major
    bidirectional: bool = False


@dataclass
class TrainConfig:
    epochs: int = field(default=20, metadata=bounds(1))
    optimizer: str = field(default="adamw", metadata={"choices": ("adamw", "adam", "sgd")})
    lr: float = field(default=2e-3, metadata=bounds(0.0, lo_open=True))
    weight_decay: float = field(default=0.01, metadata=bounds(0.0))
    momentum: float = field(default=0.9, metadata=bounds(0.0, 1.0, hi_open=True))
    clip_grad_norm: float | None = field(default=1.0, metadata=bounds(0.0, lo_open=True))
    scheduler: str = field(
        default="cosine", metadata={"choices": ("none", "cosine", "wsd", "step", "plateau")}
    )
    warmup_steps: int = field(default=0, metadata=bounds(0))
    step_size: int = field(default=5, metadata=bounds(1))  # epochs, for scheduler: step
    gamma: float = field(default=0.5, metadata=bounds(0.0, 1.0, lo_open=True))
    min_lr_ratio: float = field(default=0.05, metadata=bounds(0.0, 1.0))
    # scheduler: wsd holds the rate, then decays it over this last share of the run
    decay_fraction: float = field(default=0.2, metadata=bounds(0.0, 1.0, lo_open=True))
    patience: int | None = field(default=5, metadata=bounds(1))  # early stopping, in epochs
    keep: str = field(default="best", metadata={"choices": ("best", "last")})  # model.safetensors
    max_minutes: float | None = field(default=None, metadata=bounds(0.0, lo_open=True))
    checkpoint_every: int = field(default=0, metadata=bounds(0))  # steps; 0: each epoch
    eval_batch_size: int = field(default=16, metadata=bounds(1))
    seed: int = 1234
    device: str = field(default="auto", metadata={"choices": ("auto", "cpu", "cuda", "mps")})
    num_threads: int | None = field(default=None, metadata=bounds(1))
    # autocast precision of the forward pass and loss; fp16 (with a GradScaler) needs CUDA
    precision: str = field(default="fp32", metadata={"choices": PRECISIONS})
    log_every: int = field(default=20, metadata=bounds(1))  # steps between loss read-backs
    init_from: str | None = None  # fine-tune: start from this run's weights (finetune.py)
    curves: bool = True  # draw curves.png into the run directory after every epoch


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out_dir: str = "checkpoints/default"

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict, suitable for YAML."""
        return dataclasses.asdict(self)

    @property
    def stride(self) -> int:
        return self.data.stride or max(1, self.data.seq_len // 2)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def _coerce(value: Any, tp: str, key: str, where: str) -> Any:
    """Check `value` against the annotation string `tp` (see `typed.coerce`)."""
    optional = "None" in tp
    base = tp.replace(" | None", "").strip()
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: '{key}' must be a {base}, not null")
    try:
        return coerce(value, base, numeric_strings=True)
    except TypeMismatch as exc:
        if str(exc).startswith("a finite") or base == "list[int]":
            raise ConfigError(f"{where}: '{key}' must be {exc}, got {value!r}") from None
        raise ConfigError(
            f"{where}: '{key}' must be {exc}, got {type(value).__name__} {value!r}"
        ) from None


def _checkbounds(value: Any, meta: dict, key: str, where: str) -> None:
    if value is None:
        return
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(
            f"{where}: '{key}' is {value!r}; choose one of {', '.join(meta['choices'])}"
        )
    problem = out_of_range(value, meta)
    if problem:
        raise ConfigError(f"{where}: '{key}' is {value}; {problem}")


def _build_section(cls: type, raw: Any, name: str, where: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: section '{name}' must be a mapping of keys to values")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key '{name}.{unknown[0]}'; valid keys in '{name}': "
            f"{', '.join(fields)}"
        )
    values = {}
    for key, f in fields.items():
        if key in raw:
            full = f"{name}.{key}"
            values[key] = _coerce(raw[key], str(f.type), full, where)
            _checkbounds(values[key], f.metadata, full, where)
    return cls(**values)


def from_dict(raw: Any, where: str = "config") -> Config:
    """Build and validate a Config from a nested dict (as read from YAML)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the file must be a YAML mapping (sections data, model, train)")
    allowed = [*SECTIONS, "out_dir"]
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key '{unknown[0]}'; valid top-level keys: {', '.join(allowed)}"
        )
    sections = {
        name: _build_section(cls, raw.get(name), name, where) for name, cls in SECTIONS.items()
    }
    out_dir = _coerce(raw.get("out_dir", Config.out_dir), "str", "out_dir", where)
    cfg = Config(out_dir=out_dir, **sections)
    validate(cfg, where)
    return cfg


WORD_VOCAB_CAP = 20_000  # measured: docs/BENCHMARKS.md "Word vocabularies"


def vocab_cap(d: DataConfig) -> int | None:
    """The vocabulary size cap: `data.max_size` when set (0: none); unset, none at char level
    and WORD_VOCAB_CAP at word and space level, which keeps a word model on tens of
    megabytes of text under about 20M parameters."""
    if d.max_size is not None:
        return d.max_size or None
    return None if d.level == "char" else WORD_VOCAB_CAP


def rare_words(d: DataConfig) -> str:
    """What becomes of a token outside the vocabulary: "chars" (spelled out in its
    characters, word level only) or "unk"; unset, chars at word level (measured: docs/
    BENCHMARKS.md "Word vocabularies")."""
    return d.rare or ("chars" if d.level == "word" else "unk")


def validate(cfg: Config, where: str = "config") -> None:
    """Cross-field checks that a single field's range cannot express."""
    m = cfg.model
    if cfg.data.keyword_lines and cfg.data.level != "char":
        raise ConfigError(
            f"{where}: 'data.keyword_lines' needs data.level char (a control line holds a "
            "song's keyword characters); set it to 0 or use char level"
        )
    if m.bidirectional:
        raise ConfigError(
            f"{where}: 'model.bidirectional' must be false: a generator writes left to right "
            "and cannot read the future tokens a backward RNN would need"
        )
    if m.tie_weights and m.embedding_dim != m.hidden_size:
        raise ConfigError(
            f"{where}: 'model.tie_weights' needs model.embedding_dim == model.hidden_size "
            f"(got {m.embedding_dim} and {m.hidden_size})"
        )
    if m.output == "adaptive" and m.tie_weights:
        raise ConfigError(
            f"{where}: 'model.tie_weights' cannot be used with model.output adaptive (the "
            "adaptive softmax has no single output matrix to share with the embedding); set "
            "tie_weights: false"
        )
    if m.cutoffs is not None and m.output == "full":
        raise ConfigError(
            f"{where}: 'model.cutoffs' applies to model.output adaptive (or auto) only"
        )
    if m.cutoffs is not None and (
        not m.cutoffs
        or m.cutoffs[0] < 1
        or any(b <= a for a, b in zip(m.cutoffs, m.cutoffs[1:], strict=False))
    ):
        raise ConfigError(
            f"{where}: 'model.cutoffs' {m.cutoffs} must be positive and increasing, e.g. "
            "[1000, 4000]"
        )
    if cfg.data.stride is not None and cfg.data.stride > cfg.data.seq_len:
        raise ConfigError(
            f"{where}: 'data.stride' ({cfg.data.stride}) must be <= data.seq_len "
            f"({cfg.data.seq_len}), or some tokens would never be trained on"
        )
    if cfg.data.max_size == 1:
        raise ConfigError(
            f"{where}: 'data.max_size' is 1; give 0 for no cap or at least 2 (<unk> and a token)"
        )
    if cfg.data.rare == "chars" and cfg.data.level != "word":
        raise ConfigError(
            f"{where}: 'data.rare: chars' spells rare words out in characters, which only "
            f"level word can do (level {cfg.data.level}); set data.rare: unk or leave it unset"
        )
    try:
        "".encode(cfg.data.encoding)
    except LookupError:
        raise ConfigError(
            f"{where}: 'data.encoding' is {cfg.data.encoding!r}, which Python does not know; "
            "try utf-8, gbk, gb18030 or big5"
        ) from None


def load_yaml(path: str | Path) -> dict:
    """Read a YAML file into a dict, with one-line errors."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p} does not exist; pass --config with an existing file")
    if p.is_dir():
        raise ConfigError(f"config file {p} is a directory; pass --config with a YAML file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {p} is not UTF-8 text; save it as UTF-8") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        pos = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid syntax"
        raise ConfigError(f"{p}: invalid YAML{pos}: {problem}; fix the file's syntax") from None


def parse_override(item: str) -> tuple[str, Any]:
    """Parse `section.key=value`; the value is read as YAML (so 1e-3, true, null work)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. model.cell=gru")
    key, _, text = item.partition("=")
    key = key.strip()
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            pass
    return key, value


def apply_overrides(raw: dict, overrides: dict[str, Any], where: str) -> dict:
    """Return a copy of `raw` with dotted keys set; unknown sections are caught by from_dict."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the file must be a YAML mapping (sections data, model, train)")
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for key, value in overrides.items():
        parts = key.split(".")
        if len(parts) == 1:
            out[key] = value
        elif len(parts) == 2:
            section = out.get(parts[0])
            if section is None:
                section = {}
            if not isinstance(section, dict):
                raise ConfigError(f"{where}: section '{parts[0]}' must be a mapping")
            section = dict(section)
            section[parts[1]] = value
            out[parts[0]] = section
        else:
            raise ConfigError(f"override {key!r}: expected section.key, e.g. train.lr")
    return out


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> Config:
    """Load a YAML config (or the defaults when `path` is None) and apply overrides."""
    raw = load_yaml(path) if path is not None else {}
    where = str(path) if path is not None else "defaults"
    raw = apply_overrides(raw, overrides or {}, where)
    return from_dict(raw, where)


def dump_config(cfg: Config) -> str:
    """YAML text of the fully resolved config."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True)
