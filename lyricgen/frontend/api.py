"""One library entry point under every front end: `lyricgen.load(run_dir)`.

    import lyricgen
    from lyricgen.craft.options import SamplingOptions
from lyricgen.craft.revise import Revision

    lyricist = lyricgen.load("checkpoints/default")
    for s in lyricist.generate("星星", SamplingOptions(lines=4, line_length=7, seed=1)):
        print(s.text)

`load` reads a run directory once: its config, vocabulary and weights (NumPy on the CPU,
so torch is not imported; torch for a GPU or `backend="torch"`), its copy index
(memory-mapped) and its rhyme table. The returned `Lyricist` keeps no per-request state:
`generate` may be called from several threads at once. The CLI (`generate`,
`--interactive`, `eval --samples`) and the web server (`lyricgen serve`) all use it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lyricgen.config import Config
from lyricgen.corpus.vocab import Vocab
from lyricgen.craft.generate import Sample, generate
from lyricgen.craft.options import SamplingOptions
from lyricgen.craft.revise import Revision
from lyricgen.errors import LyricgenError

BACKENDS = ("auto", "numpy", "torch")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class Lyricist:
    """A loaded run that writes lyrics."""

    run_dir: Path
    config: Config
    vocab: Vocab
    stepper: Any  # a Stepper (steppers.py)
    backend: str  # "numpy" or "torch"
    copy_index: Any = None  # CopyIndex (or a shipped model's ClauseGuard), or None
    label: str = ""  # one line saying which model this is (`lyricgen.run.models.Chosen`)
    _rhyme_table: dict | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def keyword_control(self) -> bool:
        """Whether the run was trained with keyword control lines (data.keyword_lines)."""
        return bool(getattr(self.config.data, "keyword_lines", 0.0))

    @property
    def rhyme_table(self) -> dict | None:
        """The vocabulary's rhyme groups, read (or, for an older run, made) on first use."""
        if self._rhyme_table is None:
            from lyricgen.craft.rhyme import load_rhyme_table

            with self._lock:
                if self._rhyme_table is None:
                    self._rhyme_table = load_rhyme_table(self.run_dir, self.vocab) or {}
        return self._rhyme_table

    def generate(
        self,
        start: str = "",
        opts: SamplingOptions | None = None,
        on_token: Callable[[int, str], None] | None = None,
        melody: Any = None,
        **options: Any,
    ) -> list[Sample]:
        """Samples continuing `start` (or following `opts.acrostic`). Any option may also
        be given by name on top of `opts`: `generate("", keywords="秋,月", form="七绝")`,
        `theme=...`, `template="明月__，____。"`. Each sample carries the form variant it
        keeps (`variant`) and the keywords' plan (`plan`). `melody`: a tune to write to (a
        `craft.melody.Melody`, or the path of a MIDI or numbered-notation file; or give
        `jianpu=` text): one line per phrase, each sample's `fit` its characters against
        their notes."""
        opts = self._options(opts, options)
        if melody is not None and not hasattr(melody, "phrases"):
            from lyricgen.craft.melody_io import load_melody

            melody = load_melody(melody)
        sung = melody is not None or opts.jianpu is not None  # a refrain may rhyme
        table = self.rhyme_table if opts.rhyme or sung else None
        return generate(
            self.stepper,
            self.vocab,
            start,
            opts,
            on_token=on_token,
            copy_index=self.copy_index,
            rhyme_table=table,
            keyword_control=self.keyword_control,
            melody=melody,
        )

    def revise(
        self,
        text: str,
        lines: list[int] | None = None,
        opts: SamplingOptions | None = None,
        *,
        show: int = 0,
        rank: str = "text",
        max_chars: int | None = None,
        **options: Any,
    ) -> Revision:
        """Rewrite `lines` (1-based) of `text`, fill its `____` and blank lines, and keep
        every other line byte for byte (`lyricgen.craft.revise`). The result holds the new
        text and, per line written, the best alternatives (at least `show`) with their
        scores: the log-probability of the whole text with each."""
        from lyricgen.craft.revise import MAX_DRAFT_CHARS, revise

        opts = self._options(opts, options)
        return revise(
            self.stepper, self.vocab, text, lines, opts, copy_index=self.copy_index,
            rhyme_table=self.rhyme_table if opts.rhyme else None, show=show, rank=rank,
            max_chars=max_chars or MAX_DRAFT_CHARS, keyword_control=self.keyword_control,
        )  # fmt: skip

    @staticmethod
    def _options(opts: SamplingOptions | None, options: dict[str, Any]) -> SamplingOptions:
        if not options:
            return opts or SamplingOptions()
        from lyricgen.craft.options import options_from_mapping

        return options_from_mapping(options, base=opts)

    def history(self) -> list[dict]:
        """The run's per-epoch metrics (metrics.jsonl); empty when it has none yet."""
        from lyricgen.run.files import read_history

        try:
            return read_history(self.run_dir)
        except LyricgenError:  # no epoch finished yet, or a damaged file: no curves
            return []


def _choose_backend(backend: str, device: str) -> tuple[str, str]:
    if backend not in BACKENDS:
        raise LyricgenError(f"backend {backend!r} is unknown; choose {', '.join(BACKENDS)}")
    if device not in DEVICES:
        raise LyricgenError(f"device {device!r} is unknown; choose {', '.join(DEVICES)}")
    if backend == "numpy" and device not in ("auto", "cpu"):
        raise LyricgenError(
            "--backend numpy runs on the CPU only; drop --device or use --backend torch"
        )
    if backend == "torch" or device not in ("auto", "cpu"):
        return "torch", device
    # Generation steps one token at a time: a small RNN is fastest on the CPU, in NumPy,
    # which also spares torch's import. "auto" therefore means the CPU here.
    return "numpy", "cpu"


def load(
    run_dir: str | Path | None = None,
    backend: str = "auto",
    device: str = "auto",
    corpus: str | Path | None = None,
    require_index: bool = False,
) -> Lyricist:
    """Load a run directory for generation: a folder, a shipped model's name (`verse`), or
    None for `checkpoints/default` when there is one, else the shipped model
    (`lyricgen.run.models.resolve`). `backend`: auto (NumPy on the CPU), numpy or torch;
    `device`: auto (the CPU), cpu, cuda or mps (torch). `corpus` builds the copy index of
    a run that has none; `require_index` makes its absence an error."""
    from lyricgen.run.models import resolve
    from lyricgen.run.names import DEFAULT_RUN

    chosen = resolve(run_dir, DEFAULT_RUN)
    run_dir = chosen.path
    backend, device = _choose_backend(backend, device)
    if backend == "torch":
        from lyricgen.backends.steppers import TorchStepper
        from lyricgen.training.loading import load_run
        from lyricgen.training.model import resolve_device

        cfg, vocab, model = load_run(run_dir, resolve_device(device))
        stepper = TorchStepper(model)
    else:
        from lyricgen.backends.numpy_run import load_numpy_run

        cfg, vocab, stepper = load_numpy_run(run_dir)
    if corpus is not None:
        from lyricgen.corpus.text import check_corpus_file

        check_corpus_file(corpus, "--corpus")
    from lyricgen.craft.originality import load_run_index

    index = load_run_index(
        run_dir, vocab, corpus, cfg.data.encoding, cfg.data.cache_dir, required=require_index
    )
    return Lyricist(run_dir, cfg, vocab, stepper, backend, index, chosen.label)
