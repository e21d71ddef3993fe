"""A quality report of what a run writes (`lyricgen eval --samples N`).

Perplexity says how well a model predicts held-out text, not whether its lyrics are any
good. These figures look at generated samples instead:

- `distinct_1`, `distinct_2`: distinct token unigrams (bigrams) over all generated ones,
  line breaks left out (Li et al. 2016); low values mean the model says the same things;
- `repeat3_rate`: share of lines that repeat the two lines before them (the tutorials'
  greedy decoding loop);
- `rhyme_rate`: share of adjacent line pairs whose last Han characters share a 十三辙 group
  (`rhyme.py`);
- `line_copy_rate`, `copy_rate_5gram`: lines (with at least 6 Han characters) found
  verbatim in the training text, and 5-token spans within lines found there
  (`originality.py`; needs the run's copy index);
- `line_form_accuracy` (with `line_length`): share of lines with exactly that many counted
  units (Han characters in a Chinese model, else letters and digits, or words at level
  `space`) and nothing else but one trailing punctuation mark;
- `sample_ppl`: the median perplexity of the samples under the model itself;
- with a form (`--form`): `format_accuracy`, `tone_accuracy` and `rhyme_accuracy` of the
  samples (see `craft/formcheck.py`), and `seconds_per_sample`.

Samples are 8-line songs (`lines`) sampled with the default options from the most frequent
line-opening characters of the vocabulary, one seed per sample, so a report is
reproducible.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import replace

from lyricgen.corpus.text import NEWLINE
from lyricgen.corpus.vocab import Vocab
from lyricgen.craft.constraints import TokenTable
from lyricgen.craft.generate import encode_prompt
from lyricgen.craft.options import SamplingOptions
from lyricgen.craft.originality import split_lines
from lyricgen.craft.rhyme import is_han, rhyme_rate


def default_starts(vocab: Vocab, n: int = 10) -> list[str]:
    """The n most frequent vocabulary entries made only of Han characters (or of letters,
    for a model without Han), as start texts."""
    order = sorted(range(len(vocab)), key=lambda i: -vocab.counts[i])
    han = [vocab.itos[i] for i in order if vocab.itos[i] and all(map(is_han, vocab.itos[i]))]
    if han:
        return han[:n]
    return [vocab.itos[i] for i in order if vocab.itos[i].isalpha()][:n]


def _line_form_ok(line: list[int], n: int, t: TokenTable) -> bool:
    """The line (ids) has exactly n counted units (Han characters in a Chinese model),
    only entries that may stand inside a shaped line, and at most one trailing mark."""
    if line and t.punct[line[-1]]:
        line = line[:-1]
    return bool(line) and all(t.in_line[i] for i in line) and int(t.length[line].sum()) == n


def quality_report(
    lyricist,
    n_samples: int,
    opts: SamplingOptions | None = None,
    starts: Sequence[str] | None = None,
    seed: int = 0,
) -> dict:
    """Generate `n_samples` samples (opts.lines lines each, default 8) with a loaded run
    (`lyricgen.load`) and measure them."""
    vocab, copy_index = lyricist.vocab, lyricist.copy_index
    opts = opts or SamplingOptions()
    if opts.lines is None and opts.acrostic is None and opts.form is None:
        opts = replace(opts, lines=8)
    if not starts:
        starts = [""] if opts.acrostic or opts.form else default_starts(vocab)
    texts, ids, ppls, variants = [], [], [], []
    t0 = time.perf_counter()
    for i in range(n_samples):
        o = replace(opts, seed=seed + i, num_samples=1)
        start = starts[i % len(starts)]
        (s,) = lyricist.generate(start, o)
        texts.append(s.text)
        variants.append(s.variant)
        prompt = encode_prompt(start, vocab) if start.strip() else []
        ids.append(vocab.encode(prompt + s.tokens))  # the printed text, start included
        ppls.append(s.perplexity)
    elapsed = time.perf_counter() - t0
    nl = vocab.stoi.get(NEWLINE)
    uni, bi, n_uni, n_bi = set(), set(), 0, 0
    for seq in ids:
        toks = [t for t in seq if t != nl]
        uni.update(toks)
        n_uni += len(toks)
        pairs = [(a, b) for a, b in zip(seq, seq[1:], strict=False) if nl not in (a, b)]
        bi.update(pairs)
        n_bi += len(pairs)
    all_lines, repeats, form_ok = 0, 0, 0
    song_lines: list[str] = []  # all samples, a blank line between them
    table = TokenTable.of(vocab)
    for seq in ids:
        if opts.line_length:
            form_ok += sum(
                _line_form_ok(line, opts.line_length, table) for line in split_lines(seq, nl)
            )
    for text in texts:
        lines = [line for line in text.rstrip("\n").split("\n") if line.strip()]
        all_lines += len(lines)
        repeats += sum(lines[j] == lines[j - 1] == lines[j - 2] for j in range(2, len(lines)))
        song_lines += [*lines, ""]
    report = {
        "samples": n_samples,
        "lines": all_lines,
        "tokens": n_uni,
        "distinct_1": len(uni) / n_uni if n_uni else None,
        "distinct_2": len(bi) / n_bi if n_bi else None,
        "repeat3_rate": repeats / all_lines if all_lines else None,
        "rhyme_rate": rhyme_rate(song_lines),
        "sample_ppl": statistics.median(ppls) if ppls else None,
        "line_form_accuracy": (form_ok / all_lines if all_lines else None)
        if opts.line_length
        else None,
    }
    if opts.form is not None:
        from lyricgen.craft.formcheck import FormScore, score
        from lyricgen.craft.forms import find_form

        form = opts.form_template
        # each sample against the variant it keeps (a bare 七绝 may take any of four)
        total = sum(
            (score(t, find_form(v) if v else form, opts.book)
             for t, v in zip(texts, variants, strict=True)),
            FormScore(),
        )  # fmt: skip
        report.update(total.rates())
        report["form"] = form.name
        report["rhyme_book"] = opts.book
        report["seconds_per_sample"] = elapsed / n_samples if n_samples else None
    if copy_index is not None:
        from lyricgen.craft.originality import copy_figures

        report.update(copy_figures(copy_index, vocab, ids))
    report["examples"] = texts[:3]
    return report
