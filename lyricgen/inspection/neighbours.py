"""What the embedding learned: the nearest tokens to a token by cosine similarity, in the
input embedding and in the output layer, and a 2-D map (PCA) of the most frequent tokens.

Read from a run's weights with NumPy (no torch). The output layer gives each token a vector
in the hidden space too: a full softmax's row of `decoder.weight` (the embedding itself when
the weights are tied); under the adaptive softmax, a shortlist token's row of the head and a
cluster token's row of its tail composed with the tail's projection.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lyricgen.corpus.vocab import SPECIALS, Vocab
from lyricgen.errors import LyricgenError, UnknownTokenError
from lyricgen.run.files import WEIGHTS, load_run_config, load_vocab


def load_vectors(run_dir: str | Path) -> tuple[Vocab, np.ndarray, np.ndarray | None]:
    """(vocabulary, input embedding (V, E), output vectors (V, H) or None when tied)."""
    from lyricgen.backends.numpy_run import load_numpy_weights

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    vocab = load_vocab(run_dir)
    t = load_numpy_weights(run_dir / WEIGHTS, cfg, len(vocab))
    emb = t["embedding.weight"].astype(np.float64)
    m = cfg.model
    if m.output == "adaptive":
        head = t["asm.head.weight"][: m.cutoffs[0]]
        parts = [head]
        for i in range(len(m.cutoffs)):
            parts.append(t[f"asm.tail.{i}.1.weight"] @ t[f"asm.tail.{i}.0.weight"])
        return vocab, emb, np.concatenate(parts).astype(np.float64)
    if m.tie_weights:
        return vocab, emb, None
    return vocab, emb, t["decoder.weight"].astype(np.float64)


def _unit(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def nearest(vectors: np.ndarray, vocab: Vocab, token: str, top: int) -> list[tuple[str, float]]:
    """The `top` tokens closest to `token` by cosine similarity (specials left out)."""
    unit = _unit(vectors)
    i = vocab.stoi[token]
    sims = unit @ unit[i]
    sims[i] = -np.inf
    for s in SPECIALS:
        sims[vocab.stoi[s]] = -np.inf
    order = np.argsort(-sims, kind="stable")[:top]
    return [(vocab.itos[j], float(sims[j])) for j in order if np.isfinite(sims[j])]


def similar(run_dir: str | Path, token: str, top: int = 10) -> dict:
    """The neighbours of `token` in the input embedding and, where the output layer has its
    own vectors, in the output layer; a token outside the vocabulary is a one-line error."""
    vocab, emb, out = load_vectors(run_dir)
    if token not in vocab or token in SPECIALS:
        hint = "、".join(vocab.suggest(token))
        raise UnknownTokenError(
            f"--similar: {token!r} is not in the model's vocabulary; try one of: {hint}"
        )
    if top < 1:
        raise LyricgenError(f"--top is {top}; give a number >= 1")
    result = {"token": token, "count": vocab.counts[vocab.stoi[token]]}
    result["input"] = [
        {"token": t, "cosine": round(c, 4)} for t, c in nearest(emb, vocab, token, top)
    ]
    result["output"] = (
        None
        if out is None
        else [{"token": t, "cosine": round(c, 4)} for t, c in nearest(out, vocab, token, top)]
    )
    return result


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows projected on their first two principal components, and the share of the
    variance each explains."""
    x = vectors - vectors.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    var = s**2 / max((s**2).sum(), 1e-12)
    return x @ vt[:2].T, var[:2]


TONE_COLOURS = {"平": "#1f5fa8", "仄": "#b8322a"}


def tone_classes(tokens: list[str]) -> list[str | None]:
    """Each token's tone class under 平水韵 (平 or 仄) when it is one Han character of one
    class, else None."""
    from lyricgen.craft.books import book

    pingshui = book("pingshui")
    out = []
    for t in tokens:
        tones = pingshui.tones(t) if len(t) == 1 else frozenset()
        out.append(next(iter(tones)) if len(tones) == 1 else None)
    return out


def tone_correlation(xy: np.ndarray, classes: list[str | None]) -> tuple[int, float] | None:
    """(principal component 1 or 2, Pearson r of it with being 平) for the stronger of the
    two, over the tokens of one class; None with fewer than 10 such tokens."""
    keep = [k for k, c in enumerate(classes) if c is not None]
    if len(keep) < 10:
        return None
    ping = np.array([classes[k] == "平" for k in keep], dtype=float)
    if ping.std() == 0:
        return None
    rs = [float(np.corrcoef(xy[keep, pc], ping)[0, 1]) for pc in (0, 1)]
    best = int(np.argmax(np.abs(rs)))
    return best + 1, rs[best]


def draw_map(run_dir: str | Path, out: str | Path, n: int = 200) -> tuple[Path, dict]:
    """A PNG of the `n` most frequent tokens' input embeddings, projected to 2-D by PCA and
    labelled (with a CJK font where the system has one). In a Chinese vocabulary each
    character is coloured by its tone class (平 blue, 仄 red, under 平水韵), and the returned
    facts say how strongly a principal component follows it."""
    from lyricgen.atomic import atomic_write
    from lyricgen.craft.rhyme import is_han
    from lyricgen.inspection import drawing as plot

    out = plot.check_png_out(Path(out))
    vocab, emb, _ = load_vectors(run_dir)
    ids = [i for i in range(len(vocab)) if vocab.itos[i] not in SPECIALS and vocab.itos[i].strip()]
    ids = sorted(ids, key=lambda i: -vocab.counts[i])[:n]
    if len(ids) < 3:
        raise LyricgenError("the vocabulary has fewer than 3 printable tokens to map")
    xy, var = pca_2d(emb[ids])
    tokens = [vocab.itos[i] for i in ids]
    han = any(is_han(c) for t in tokens for c in t)
    classes = tone_classes(tokens) if han else [None] * len(tokens)
    tone = tone_correlation(xy, classes) if han else None
    figure_cls, canvas_cls, _ = plot.matplotlib_classes()
    fig = figure_cls(figsize=(10, 10), dpi=100)
    canvas_cls(fig)
    ax = fig.subplots()
    font = plot.cjk_font()
    ax.scatter(xy[:, 0], xy[:, 1], s=4, color="#999999")
    for (x, y), tok, cls in zip(xy, tokens, classes, strict=True):
        label = "\\n" if tok == "\n" else tok
        colour = TONE_COLOURS.get(cls, "#555555")
        ax.annotate(
            label, (x, y), fontsize=9, fontfamily=font, ha="center", va="bottom", color=colour
        )
    if han:
        for cls, colour in TONE_COLOURS.items():
            ax.plot([], [], "s", color=colour, label=f"{cls} (平水韵)")
        ax.plot([], [], "s", color="#555555", label="either, or not one character")
        ax.legend(loc="best", fontsize=9, prop={"family": font} if font else None)
    ax.set_xlabel(f"PC1 ({var[0]:.0%} of the variance)")
    ax.set_ylabel(f"PC2 ({var[1]:.0%} of the variance)")
    title = f"input embedding of the {len(ids)} most frequent tokens ({Path(run_dir).name})"
    if tone is not None:
        title += f"\nPC{tone[0]} and the tone class: r = {tone[1]:+.2f} (平 = 1, 仄 = 0)"
    ax.set_title(title, fontfamily=font)
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        atomic_write(out, lambda f: fig.savefig(f, format="png"))
    fig.clear()
    facts = {"map": str(out), "tokens": len(ids), "variance": [float(v) for v in var]}
    if tone is not None:
        facts["tone_component"], facts["tone_r"] = tone
    return out, facts
