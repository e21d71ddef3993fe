"""`lyricgen inspect`: which hidden units track the line, the song and the rhyme.

The model reads held-out text (the run's own validation split by default); at every token
the activation of every hidden unit is compared with four properties of the text there:

- `line_position`: tokens since the line began (1 for the first token of a line);
- `line_left`: tokens still to come before the line ends;
- `first_line`: 1 inside the first line of a song, else 0;
- `rhyme_group`: the 十三辙 group of the coming line end (the last Han character of the line
  being read); a category, so a unit is scored by the correlation ratio eta (0 to 1: how
  much of the unit's variance the group explains) instead of Pearson's r.

A unit is one coordinate of one layer's hidden state h (and, for an LSTM, of its cell
state c too), named like `h1[137]` (layer 1, unit 137). This is the analysis of Karpathy,
Johnson and Fei-Fei, "Visualizing and Understanding Recurrent Networks" (2015).

The text is cut into `COLUMNS` contiguous columns stepped as one batch with NumPy (no
torch); the statistics are accumulated as the columns are read, so memory does not grow
with the text. The first column's activations are kept for the pictures: a standalone HTML
page (nothing fetched from the network) and, with the plot extra, a PNG.
"""

from __future__ import annotations

import html
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lyricgen.corpus.text import NEWLINE
from lyricgen.corpus.vocab import token_ids
from lyricgen.errors import LyricgenError
from lyricgen.run.files import load_run_config, load_vocab

log = logging.getLogger(__name__)

COLUMNS = 64  # at most; a short text gets fewer, each at least MIN_COLUMN tokens long
MIN_COLUMN = 32
FEATURES = ("line_position", "line_left", "first_line", "rhyme_group")
DESCRIPTIONS = {
    "line_position": "the position in the line (tokens since it began)",
    "line_left": "the tokens left until the line ends",
    "first_line": "being in the first line of a song",
    "rhyme_group": "the rhyme group (十三辙) of the coming line end",
}
SHOWN_TOKENS = 1500  # tokens of the first column drawn on the page


@dataclass
class Unit:
    name: str  # e.g. h1[137]
    score: float  # Pearson r (signed), or eta for a category


@dataclass
class Report:
    run: str
    source: str
    tokens: int
    cell: str
    seconds: float
    best: dict[str, list[Unit]] = field(default_factory=dict)  # feature -> strongest units
    text: list[str] = field(default_factory=list)  # the first column's tokens
    traces: dict[str, np.ndarray] = field(default_factory=dict)  # unit -> its activations
    features: dict[str, np.ndarray] = field(default_factory=dict)  # over the first column

    def to_dict(self) -> dict:
        return {
            "run": self.run,
            "source": self.source,
            "tokens": self.tokens,
            "cell": self.cell,
            "seconds": round(self.seconds, 2),
            "units": {
                f: [{"unit": u.name, "score": round(u.score, 4)} for u in units]
                for f, units in self.best.items()
            },
            "measure": {f: "eta" if f == "rhyme_group" else "pearson_r" for f in self.best},
        }


def text_features(tokens: list[str], groups: dict[str, str | None]) -> dict[str, np.ndarray]:
    """The four properties at every position of `tokens` (rhyme_group: a group index, -1
    where the line has no Han ending); `groups` maps a character to its usual group."""
    from lyricgen.craft.rhyme import last_han

    n = len(tokens)
    pos = np.zeros(n, dtype=np.float64)
    left = np.zeros(n, dtype=np.float64)
    first = np.zeros(n, dtype=np.float64)
    rhyme = np.full(n, -1, dtype=np.int64)
    names: dict[str, int] = {}
    start, line_no, blank_before = 0, 0, True
    i = 0
    while i <= n:
        if i == n or tokens[i] == NEWLINE:
            line = tokens[start:i]
            if line:
                if blank_before:
                    line_no = 0
                k = len(line)
                pos[start:i] = np.arange(1, k + 1)
                left[start:i] = np.arange(k - 1, -1, -1)
                first[start:i] = 1.0 if line_no == 0 else 0.0
                end = last_han("".join(line))
                g = groups.get(end) if end else None
                if g is not None:
                    rhyme[start:i] = names.setdefault(g, len(names))
                line_no += 1
                blank_before = False
            else:
                blank_before = True  # an empty line: the next line begins a song
            if i < n:  # the line break itself: the line has ended
                first[i] = first[i - 1] if i and line else 0.0
            start = i + 1
        i += 1
    return {"line_position": pos, "line_left": left, "first_line": first, "rhyme_group": rhyme}


class _Stats:
    """Running sums for the correlation of every unit with every feature."""

    def __init__(self, units: int, n_groups: int):
        self.n = 0
        self.sx = np.zeros(units)
        self.sxx = np.zeros(units)
        self.num: dict[str, list] = {f: [0.0, 0.0, np.zeros(units)] for f in FEATURES[:3]}
        self.g_n = np.zeros(n_groups)
        self.g_sum = np.zeros((n_groups, units))
        self.r_n, self.r_sx, self.r_sxx = 0, np.zeros(units), np.zeros(units)

    def add(self, x: np.ndarray, feats: dict[str, np.ndarray]) -> None:
        x = x.astype(np.float64)  # (B, U)
        self.n += len(x)
        self.sx += x.sum(0)
        self.sxx += (x * x).sum(0)
        for f in FEATURES[:3]:
            v = feats[f]
            acc = self.num[f]
            acc[0] += v.sum()
            acc[1] += (v * v).sum()
            acc[2] += v @ x
        g = feats["rhyme_group"]
        ok = g >= 0
        if ok.any() and len(self.g_n):
            xs, gs = x[ok], g[ok]
            np.add.at(self.g_n, gs, 1)
            np.add.at(self.g_sum, gs, xs)
            self.r_n += len(xs)
            self.r_sx += xs.sum(0)
            self.r_sxx += (xs * xs).sum(0)

    def scores(self) -> dict[str, np.ndarray]:
        n = max(self.n, 1)
        mx = self.sx / n
        vx = np.maximum(self.sxx / n - mx * mx, 0)
        out = {}
        for f, (sf, sff, sxf) in self.num.items():
            mf = sf / n
            vf = max(sff / n - mf * mf, 0)
            cov = sxf / n - mx * mf
            out[f] = np.where((vx > 1e-12) & (vf > 1e-12), cov / np.sqrt(vx * vf + 1e-300), 0.0)
        if self.r_n:
            m = self.r_sx / self.r_n
            total = np.maximum(self.r_sxx - self.r_n * m * m, 0)
            means = self.g_sum / np.maximum(self.g_n, 1)[:, None]
            between = (self.g_n[:, None] * (means - m) ** 2).sum(0)
            out["rhyme_group"] = np.where(total > 1e-12, np.sqrt(between / (total + 1e-300)), 0.0)
        return out


def held_out_tokens(
    run_dir: Path, corpus: str | Path | None, limit: int
) -> tuple[list[str], np.ndarray, str]:
    """(tokens, vocabulary ids) of the text to read, at most `limit`, and where it came
    from: `corpus` whole, else the run's own validation split."""
    from lyricgen.corpus.tokcache import tokenize_file

    cfg = load_run_config(run_dir)
    vocab = load_vocab(run_dir)
    d = cfg.data
    if corpus is not None:
        tok = tokenize_file(corpus, vocab.level, d.encoding, None, d.cache_dir, "--corpus")
        raw, source = tok.raw, str(corpus)
    else:
        path = d.val_corpus or d.corpus
        if not path or not Path(path).is_file():
            raise LyricgenError(
                f"the run's held-out text ({path}) is not here; give one with --corpus FILE"
            )
        if d.val_corpus:
            tok = tokenize_file(path, vocab.level, d.encoding, None, d.cache_dir, "text")
            raw = tok.raw
        else:
            tok = tokenize_file(path, vocab.level, d.encoding, d.val_fraction, d.cache_dir)
            raw = tok.raw[tok.n_train :]
        source = f"{path} (the run's held-out split)"
    raw = np.asarray(raw[:limit])
    if len(raw) < MIN_COLUMN:
        raise LyricgenError(
            f"{source} has {len(raw)} tokens to read; give at least {MIN_COLUMN} with --corpus"
        )
    ids = token_ids(raw, tok.types, vocab)[:limit]
    return [vocab.itos[i] for i in ids.tolist()], ids, source


def _unit_names(cell: str, layers: int, hidden: int) -> list[str]:
    names = [f"h{k}[{u}]" for k in range(layers) for u in range(hidden)]
    if cell == "lstm":
        names += [f"c{k}[{u}]" for k in range(layers) for u in range(hidden)]
    return names


def inspect_run(
    run_dir: str | Path, corpus: str | Path | None = None, limit: int = 100_000, top: int = 3
) -> Report:
    """Read held-out text and find the units that best track each feature."""
    from lyricgen.backends.numpy_run import load_numpy_lm
    from lyricgen.craft.rhyme import is_han, primary_group

    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    cfg, vocab, lm = load_numpy_lm(run_dir, dtype=np.float32)
    m = cfg.model
    tokens, ids, source = held_out_tokens(run_dir, corpus, limit)
    han = {c for t in vocab.itos for c in t if is_han(c)}
    groups = {c: primary_group(c) for c in han}
    feats = text_features(tokens, groups)
    n_groups = int(feats["rhyme_group"].max()) + 1
    width = max(1, min(COLUMNS, len(ids) // MIN_COLUMN))
    T = len(ids) // width
    cols = ids[: T * width].reshape(width, T)  # column j: tokens j*T .. (j+1)*T - 1
    fcols = {f: v[: T * width].reshape(width, T) for f, v in feats.items()}
    names = _unit_names(m.cell, m.num_layers, m.hidden_size)
    stats = _Stats(len(names), n_groups)
    shown = min(SHOWN_TOKENS, T)
    trace = np.zeros((shown, len(names)), dtype=np.float32)
    state = lm.rnn.zero_state(width, np.float32)
    for t in range(T):
        x = lm.embedding[cols[:, t]]
        _, state = lm.rnn.step(x, state)
        if m.cell == "lstm":
            h, c = state
            units = np.concatenate([h.transpose(1, 0, 2).reshape(width, -1),
                                    c.transpose(1, 0, 2).reshape(width, -1)], axis=1)  # fmt: skip
        else:
            units = state.transpose(1, 0, 2).reshape(width, -1)
        stats.add(units, {f: v[:, t] for f, v in fcols.items()})
        if t < shown:
            trace[t] = units[0]
    scores = stats.scores()
    report = Report(str(run_dir), source, T * width, m.cell, 0.0)
    for f, s in scores.items():
        order = np.argsort(-np.abs(s), kind="stable")[:top]
        report.best[f] = [Unit(names[i], float(s[i])) for i in order]
        for i in order[:1]:
            report.traces[names[i]] = trace[:, i].copy()
    report.text = [vocab.itos[i] for i in cols[0, :shown].tolist()]
    report.features = {f: v[0, :shown] for f, v in fcols.items()}
    report.seconds = time.perf_counter() - t0
    return report


# ---------------------------------------------------------------------------------------
# pictures


def _colour(a: float) -> str:
    """An activation scaled to [-1, 1] as a background: blue (negative) to red (positive)."""
    a = max(-1.0, min(1.0, a))
    if a >= 0:
        g = int(255 - 180 * a)
        return f"rgb(255,{g},{g})"
    g = int(255 + 180 * a)
    return f"rgb({g},{g},255)"


def render_html(report: Report) -> str:
    """A standalone page: for each feature its strongest unit, the text coloured by it."""
    parts = [
        "<!doctype html><html lang='zh'><head><meta charset='utf-8'>",
        "<title>lyricgen inspect</title><style>",
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}",
        ".text{font-size:1.15em;line-height:1.9;white-space:pre-wrap;word-break:break-all}",
        ".text span{padding:1px 0}.key span{padding:0 .6em}",
        "table{border-collapse:collapse}td,th{padding:.2em .8em;text-align:left}",
        "</style></head><body>",
        "<h1>Inside the model: which hidden units track the text</h1>",
        f"<p>Run <code>{html.escape(report.run)}</code> ({report.cell}), read over "
        f"{report.tokens:,} tokens of {html.escape(report.source)} in {report.seconds:.1f} s.",
        " Each block shows the first tokens of that text coloured by one hidden unit's",
        " activation: <span class='key'><span style='background:"
        + _colour(-1)
        + "'>negative</span><span style='background:"
        + _colour(0)
        + "'>0</span>"
        "<span style='background:" + _colour(1) + "'>positive</span></span>.</p>",
        "<table><tr><th>tracks</th><th>strongest units (score)</th></tr>",
    ]
    for f, units in report.best.items():
        measure = "eta" if f == "rhyme_group" else "r"
        cells = ", ".join(f"{u.name} ({measure} = {u.score:+.3f})" for u in units)
        parts.append(f"<tr><td>{html.escape(DESCRIPTIONS[f])}</td><td>{cells}</td></tr>")
    parts.append("</table>")
    for f, units in report.best.items():
        u = units[0]
        trace = report.traces[u.name]
        scale = float(np.abs(trace).max()) or 1.0
        measure = "eta" if f == "rhyme_group" else "r"
        parts.append(
            f"<h2>{html.escape(DESCRIPTIONS[f])}: unit {u.name}, {measure} = {u.score:+.3f}</h2>"
            "<div class='text'>"
        )
        for tok, a in zip(report.text, trace.tolist(), strict=True):
            shown = "↵\n" if tok == NEWLINE else html.escape(tok)
            parts.append(
                f"<span style='background:{_colour(a / scale)}' title='{a:+.3f}'>{shown}</span>"
            )
        parts.append("</div>")
    parts.append("</body></html>")
    return "".join(parts)


def draw_png(report: Report, out: Path, n: int = 300) -> Path:
    """Each feature's strongest unit over the first `n` tokens, with the feature beside it."""
    from lyricgen.atomic import atomic_write
    from lyricgen.inspection import drawing as plot

    figure_cls, canvas_cls, _ = plot.matplotlib_classes()
    fig = figure_cls(figsize=(12, 2.2 * len(report.best)), dpi=100)
    canvas_cls(fig)
    axes = fig.subplots(len(report.best), 1, squeeze=False)[:, 0]
    font = plot.cjk_font()
    for ax, (f, units) in zip(axes, report.best.items(), strict=True):
        u = units[0]
        y = report.traces[u.name][:n]
        ax.plot(y, color="#c0392b", lw=1.2, label=f"unit {u.name}")
        feat = report.features[f][:n].astype(float)
        if f == "rhyme_group":
            feat = np.where(feat >= 0, feat, np.nan)
        span = np.nanmax(np.abs(feat)) if np.isfinite(feat).any() else 1.0
        twin = ax.twinx()
        twin.plot(feat / (span or 1.0), color="#7f8c8d", lw=0.8, ls="--", label=f)
        twin.set_yticks([])
        measure = "eta" if f == "rhyme_group" else "r"
        ax.set_title(
            f"{DESCRIPTIONS[f]}: {u.name}, {measure} = {u.score:+.3f}",
            fontsize=10,
            fontfamily=font,
        )
        ax.set_xlim(0, len(y))
    axes[-1].set_xlabel("token of the held-out text")
    fig.subplots_adjust(left=0.05, right=0.98, top=0.93, bottom=0.08, hspace=0.6)
    atomic_write(out, lambda fh: fig.savefig(fh, format="png"))
    fig.clear()
    return out


def write_outputs(report: Report, out: Path) -> list[Path]:
    """The HTML page at `out`, and beside it the PNG when matplotlib is installed."""
    from lyricgen.atomic import atomic_write

    atomic_write(out, render_html(report))
    written = [out]
    png = out.with_suffix(".png")
    try:
        written.append(draw_png(report, png))
    except LyricgenError as exc:  # no matplotlib: the page alone
        log.info("%s not drawn: %s", png.name, exc)
    return written


def summary_json(report: Report, written: list[Path]) -> str:
    return json.dumps({**report.to_dict(), "wrote": [str(p) for p in written]}, ensure_ascii=False)


# ---------------------------------------------------------------------------------------
# one unit over a new text (the page's "Look inside" panel)


class UnitProbe:
    """A run's recurrent layers in NumPy, to draw one unit over any text. The unit that best
    tracks the position in the line is found once, on up to `limit` held-out tokens."""

    def __init__(self, run_dir: str | Path, limit: int = 20_000):
        from lyricgen.backends.numpy_run import load_numpy_lm

        self.run_dir = Path(run_dir)
        cfg, _, self.lm = load_numpy_lm(self.run_dir, dtype=np.float32)
        m = self.model = cfg.model
        self.names = _unit_names(m.cell, m.num_layers, m.hidden_size)
        self.limit = limit
        self._line_unit: Unit | None | bool = False  # False: not looked for yet

    @property
    def line_unit(self) -> Unit | None:
        """The strongest line-position unit, or None where the run has no held-out text."""
        if self._line_unit is False:
            try:
                best = inspect_run(self.run_dir, None, self.limit, 1).best["line_position"]
                self._line_unit = best[0]
            except LyricgenError as exc:
                log.info("no line-position unit for %s: %s", self.run_dir, exc)
                self._line_unit = None
        return self._line_unit  # type: ignore[return-value]

    def trace(self, ids: list[int], unit: str) -> list[float]:
        """The activation of `unit` after each of `ids`, read from a zero state."""
        k = self.names.index(unit)
        state = self.lm.rnn.zero_state(1, np.float32)
        out = []
        for i in ids:
            _, state = self.lm.rnn.step(self.lm.embedding[[i]], state)
            if self.model.cell == "lstm":
                h, c = state
                flat = np.concatenate([h[:, 0].ravel(), c[:, 0].ravel()])
            else:
                flat = state[:, 0].ravel()
            out.append(float(flat[k]))
        return out
