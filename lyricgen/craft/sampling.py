"""Choosing the next token from logits: greedy, temperature, top-k, top-p.

Implemented in NumPy on float64 copies of the logits and driven by an explicit
`numpy.random.Generator`, so the choice does not depend on which backend computed the
logits and a seed reproduces a sample exactly.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def filter_logits(
    logits: np.ndarray, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
) -> np.ndarray:
    """Scale by temperature and mask (to -inf) everything outside top-k and the top-p nucleus."""
    out = np.asarray(logits, dtype=np.float64) / temperature  # (B, V)
    vocab = out.shape[-1]
    if 0 < top_k < vocab:
        kth = np.partition(out, vocab - top_k, axis=-1)[:, vocab - top_k][:, None]  # (B, 1)
        out = np.where(out < kth, -np.inf, out)
    if top_p < 1.0:
        out = _nucleus(out, top_p)
    return out


# top-p sorts the likeliest NUCLEUS_SHORTLIST tokens first, and a whole row only where its
# nucleus reaches past them
NUCLEUS_SHORTLIST = 1024


def _nucleus_sorted(out: np.ndarray, top_p: float) -> np.ndarray:
    """Top-p by a full stable sort of each row (B, V)."""
    order = np.argsort(-out, axis=-1, kind="stable")  # (B, V)
    probs = np.take_along_axis(softmax(out), order, axis=-1)
    cum = np.cumsum(probs, axis=-1)
    # keep the smallest prefix whose mass reaches top_p (always at least one token)
    drop_sorted = (cum - probs) >= top_p
    drop = np.zeros_like(drop_sorted)
    np.put_along_axis(drop, order, drop_sorted, axis=-1)
    return np.where(drop, -np.inf, out)


def _nucleus(out: np.ndarray, top_p: float) -> np.ndarray:
    """Top-p, exactly as `_nucleus_sorted` (ties broken by token id), but sorting only the
    NUCLEUS_SHORTLIST likeliest tokens of a row when its nucleus lies strictly inside them:
    a full sort of an 11,000-token vocabulary at every step was most of a line's time."""
    b, vocab = out.shape
    k = NUCLEUS_SHORTLIST
    if vocab <= 2 * k:
        return _nucleus_sorted(out, top_p)
    part = np.argpartition(-out, k - 1, axis=-1)[:, :k]  # (B, k) the k likeliest, unordered
    vals = np.take_along_axis(out, part, axis=-1)
    order = np.lexsort((part, -vals), axis=-1)  # by value, then by id: the stable order
    part = np.take_along_axis(part, order, axis=-1)
    vals = np.take_along_axis(vals, order, axis=-1)
    top = out.max(axis=-1, keepdims=True)
    total = np.exp(out - top).sum(axis=-1, keepdims=True)
    probs = np.exp(vals - top) / total
    cum = np.cumsum(probs, axis=-1)
    keep = (cum - probs) < top_p  # (B, k): a prefix of each row
    kept = keep.sum(axis=-1)
    res = np.full_like(out, -np.inf)
    full = []
    for i in range(b):
        m = int(kept[i])
        if m >= k or not vals[i, m - 1] > vals[i, k - 1]:
            full.append(i)  # the nucleus may reach past the shortlist, or ties straddle it
            continue
        ids = part[i, :m]
        res[i, ids] = out[i, ids]
    if full:
        res[full] = _nucleus_sorted(out[full], top_p)
    return res


def choose(
    logits: np.ndarray,
    rng: np.random.Generator,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    greedy: bool = False,
    banned: list[int] | None = None,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """Pick one token id per row of `logits` (B, V). `banned` ids are never chosen; where
    `allowed` (B, V) is given, only its True entries can be chosen."""
    logits = np.array(logits, dtype=np.float64)  # copy: we mask in place
    if banned:
        logits[:, banned] = -np.inf
    if allowed is not None:
        logits[~allowed] = -np.inf
    if greedy:
        return logits.argmax(axis=-1)
    probs = softmax(filter_logits(logits, temperature, top_k, top_p))  # (B, V)
    cum = np.cumsum(probs, axis=-1)
    u = rng.random(len(probs))[:, None] * cum[:, -1:]
    ids = (cum <= u).sum(axis=-1)
    return np.minimum(ids, probs.shape[-1] - 1)
