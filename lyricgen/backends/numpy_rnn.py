"""Recurrent layers from scratch in NumPy: forward over T steps and backpropagation
through time, for the tanh/relu RNN, the GRU and the LSTM, with several layers.

Parameters use PyTorch's names, shapes and gate order, so the state_dict of an
`nn.RNN`/`nn.GRU`/`nn.LSTM` (or of `LyricsModel.rnn`) plugs in directly:

    weight_ih_l{k}: (G*H, I_k)   weight_hh_l{k}: (G*H, H)   bias_ih_l{k}, bias_hh_l{k}: (G*H,)

with G = 1 (RNN), 3 (GRU: reset r, update z, new n) or 4 (LSTM: input i, forget f, cell
g, output o). Tensors are time-major: inputs (T, B, I), outputs (T, B, H), states
(L, B, H); an LSTM's state is the pair (h, c).

`forward` returns a cache; `backward(cache, d_out, d_state)` returns the gradients of
every parameter, of the inputs and of the initial state, so truncated BPTT over
consecutive chunks can pass the initial-state gradient on. No dropout: this is the
inference-time network (and the one the gradient checks compare with PyTorch's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def sigmoid(x: np.ndarray) -> np.ndarray:
    # the tanh identity never overflows and needs no branching on the sign
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@dataclass
class Cache:
    """What backward needs from forward: per layer, its inputs and per-step values."""

    x: list[np.ndarray]  # input of each layer, (T, B, I_l)
    steps: list[list[dict]]  # per layer, per step: the values of that step
    h0: np.ndarray
    c0: np.ndarray | None


class NumpyRNN:
    """A stack of `num_layers` recurrent layers of one cell type."""

    def __init__(
        self, params: dict[str, np.ndarray], cell: str, num_layers: int, nonlinearity: str = "tanh"
    ):
        if cell not in GATES:
            raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(GATES)}")
        self.cell, self.num_layers, self.nonlinearity = cell, num_layers, nonlinearity
        self.p = params
        self.hidden_size = params["weight_hh_l0"].shape[1]
        for k in range(num_layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                if f"{name}_l{k}" not in params:
                    raise ValueError(f"missing parameter {name}_l{k}")
        # transposed views, no copies: BLAS reads the transposed layout directly
        self._wt = {
            k: (params[f"weight_ih_l{k}"].T, params[f"weight_hh_l{k}"].T) for k in range(num_layers)
        }

    def zero_state(self, batch: int, dtype=np.float64):
        h = np.zeros((self.num_layers, batch, self.hidden_size), dtype=dtype)
        return (h, h.copy()) if self.cell == "lstm" else h

    # ------------------------------------------------------------------ one step
    def _step(self, k: int, x: np.ndarray, h: np.ndarray, c: np.ndarray | None, keep: bool):
        """One time step of layer k: x (B, I), h (B, H) -> (h', c', saved values or None)."""
        w_ih_t, w_hh_t = self._wt[k]
        gi = x @ w_ih_t + self.p[f"bias_ih_l{k}"]  # (B, G*H)
        gh = h @ w_hh_t + self.p[f"bias_hh_l{k}"]  # (B, G*H)
        H = self.hidden_size
        if self.cell == "rnn":
            a = gi + gh
            h_new = np.tanh(a) if self.nonlinearity == "tanh" else np.maximum(a, 0)
            return h_new, None, ({"a": a, "h": h_new} if keep else None)
        if self.cell == "gru":
            r = sigmoid(gi[:, :H] + gh[:, :H])
            z = sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
            n = np.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
            h_new = (1 - z) * n + z * h
            return h_new, None, ({"r": r, "z": z, "n": n, "ghn": gh[:, 2 * H :]} if keep else None)
        g = gi + gh  # LSTM
        i = sigmoid(g[:, :H])
        f = sigmoid(g[:, H : 2 * H])
        gg = np.tanh(g[:, 2 * H : 3 * H])
        o = sigmoid(g[:, 3 * H :])
        c_new = f * c + i * gg
        tc = np.tanh(c_new)
        h_new = o * tc
        return (
            h_new,
            c_new,
            ({"i": i, "f": f, "g": gg, "o": o, "c": c_new, "tc": tc} if keep else None),
        )

    def step(self, x: np.ndarray, state):
        """One time step through every layer, for inference: x (B, I) -> (h_top (B, H), state)."""
        h_all, c_all = state if self.cell == "lstm" else (state, None)
        hs, cs = [], []
        for k in range(self.num_layers):
            x, c, _ = self._step(
                k, x, h_all[k], c_all[k] if c_all is not None else None, keep=False
            )
            hs.append(x)
            cs.append(c)
        return x, ((np.stack(hs), np.stack(cs)) if self.cell == "lstm" else np.stack(hs))

    # ------------------------------------------------------------------ forward
    def forward(self, x: np.ndarray, state=None, keep: bool = True):
        """x (T, B, I) -> out (T, B, H), final state, cache (None when keep=False)."""
        T, B = x.shape[:2]
        if state is None:
            state = self.zero_state(B, x.dtype)
        h0, c0 = state if self.cell == "lstm" else (state, None)
        hs, cs = [], []
        xs, all_steps = [], []
        inp = x
        for k in range(self.num_layers):
            h = h0[k]
            c = c0[k] if c0 is not None else None
            outs, steps = [], []
            for t in range(T):
                h, c, saved = self._step(k, inp[t], h, c, keep)
                if keep:
                    saved["hout"] = h
                outs.append(h)
                steps.append(saved)
            xs.append(inp)
            all_steps.append(steps)
            hs.append(h)
            cs.append(c)
            inp = np.stack(outs)  # (T, B, H): the next layer's input
        h_n = np.stack(hs)
        final = (h_n, np.stack(cs)) if self.cell == "lstm" else h_n
        cache = Cache(xs, all_steps, h0, c0) if keep else None
        return inp, final, cache

    # ------------------------------------------------------------------ backward
    def backward(self, cache: Cache, d_out: np.ndarray, d_state=None):
        """Backpropagation through time.

        d_out (T, B, H): gradient of the loss w.r.t. the top layer's outputs; d_state:
        gradient w.r.t. the final state (same structure as the state), or None.
        Returns (grads by parameter name, d_x (T, B, I), d_initial_state)."""
        T = d_out.shape[0]
        lstm = self.cell == "lstm"
        if d_state is None:
            dh_n = np.zeros_like(cache.h0)
            dc_n = np.zeros_like(cache.h0) if lstm else None
        else:
            dh_n, dc_n = d_state if lstm else (d_state, None)
        grads: dict[str, np.ndarray] = {}
        dh0s, dc0s = [None] * self.num_layers, [None] * self.num_layers
        d_above = d_out  # gradient flowing into this layer's outputs
        for k in reversed(range(self.num_layers)):
            x = cache.x[k]
            steps = cache.steps[k]
            w_ih, w_hh = self.p[f"weight_ih_l{k}"], self.p[f"weight_hh_l{k}"]
            dw_ih, dw_hh = np.zeros_like(w_ih), np.zeros_like(w_hh)
            db_ih = np.zeros_like(self.p[f"bias_ih_l{k}"])
            db_hh = np.zeros_like(self.p[f"bias_hh_l{k}"])
            dx = np.zeros_like(x)
            dh = dh_n[k].copy()
            dc = dc_n[k].copy() if lstm else None
            for t in reversed(range(T)):
                s = steps[t]
                h_prev = steps[t - 1]["hout"] if t else cache.h0[k]
                dh = dh + d_above[t]
                if self.cell == "rnn":
                    if self.nonlinearity == "tanh":
                        da = dh * (1 - s["h"] ** 2)
                    else:
                        da = dh * (s["a"] > 0)
                    dgi = dgh = da
                elif self.cell == "gru":
                    r, z, n = s["r"], s["z"], s["n"]
                    dn = dh * (1 - z)
                    dz = dh * (h_prev - n)
                    dh_direct = dh * z
                    dn_pre = dn * (1 - n**2)
                    dr_pre = dn_pre * s["ghn"] * r * (1 - r)
                    dz_pre = dz * z * (1 - z)
                    dgi = np.concatenate([dr_pre, dz_pre, dn_pre], axis=1)
                    dgh = np.concatenate([dr_pre, dz_pre, dn_pre * r], axis=1)
                else:
                    i, f, g, o, tc = s["i"], s["f"], s["g"], s["o"], s["tc"]
                    c_prev = steps[t - 1]["c"] if t else cache.c0[k]
                    do = dh * tc
                    dct = dc + dh * o * (1 - tc**2)
                    di, df, dg = dct * g, dct * c_prev, dct * i
                    dc = dct * f
                    dgi = dgh = np.concatenate(
                        [di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)],
                        axis=1,
                    )
                dw_ih += dgi.T @ x[t]
                dw_hh += dgh.T @ h_prev
                db_ih += dgi.sum(axis=0)
                db_hh += dgh.sum(axis=0)
                dx[t] = dgi @ w_ih
                dh = dgh @ w_hh + (dh_direct if self.cell == "gru" else 0)
            grads[f"weight_ih_l{k}"], grads[f"weight_hh_l{k}"] = dw_ih, dw_hh
            grads[f"bias_ih_l{k}"], grads[f"bias_hh_l{k}"] = db_ih, db_hh
            dh0s[k], dc0s[k] = dh, dc
            d_above = dx
        dh0 = np.stack(dh0s)
        return grads, d_above, ((dh0, np.stack(dc0s)) if lstm else dh0)


class NumpyLM:
    """Embedding -> NumpyRNN -> Linear, built from a LyricsModel state_dict (inference)."""

    def __init__(
        self,
        tensors: dict[str, np.ndarray],
        cell: str,
        num_layers: int,
        nonlinearity: str = "tanh",
        tie_weights: bool = False,
        cutoffs: list[int] | None = None,
    ):
        self.embedding = tensors["embedding.weight"]
        rnn = {k.removeprefix("rnn."): v for k, v in tensors.items() if k.startswith("rnn.")}
        self.rnn = NumpyRNN(rnn, cell, num_layers, nonlinearity)
        if "asm.head.weight" in tensors:
            self.output = AdaptiveSoftmax(tensors, cutoffs or [])
        else:
            w = self.embedding if tie_weights else tensors["decoder.weight"]
            self.output = FullSoftmax(w, tensors["decoder.bias"])

    def logits(self, h: np.ndarray) -> np.ndarray:
        """The output layer: h (..., H) -> (..., V) logits (log-probabilities when adaptive)."""
        return self.output(h)

    def forward(self, ids: np.ndarray, state=None):
        """ids (B, T) -> logits (B, T, V), final state."""
        x = self.embedding[ids.T]  # (T, B, E)
        out, state, _ = self.rnn.forward(x, state, keep=False)
        return np.swapaxes(self.logits(out), 0, 1), state


class FullSoftmax:
    """nn.Linear over the vocabulary: logits = h W^T + b."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray):
        self.w_t = weight.T  # (H, V), a view
        self.b = bias

    def __call__(self, h: np.ndarray) -> np.ndarray:
        return h @ self.w_t + self.b


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class AdaptiveSoftmax:
    """torch's AdaptiveLogSoftmaxWithLoss.log_prob in NumPy (Grave et al. 2017): the head
    scores the shortlist and one entry per cluster; a cluster's tokens get the cluster's
    head log-probability plus their log-probability inside it (a two-layer projection)."""

    def __init__(self, tensors: dict[str, np.ndarray], cutoffs: list[int]):
        self.head_t = tensors["asm.head.weight"].T  # (H, shortlist + clusters)
        self.head_b = tensors.get("asm.head.bias")
        self.shortlist = cutoffs[0]
        n = len(cutoffs)
        self.tails = [
            (tensors[f"asm.tail.{i}.0.weight"].T, tensors[f"asm.tail.{i}.1.weight"].T)
            for i in range(n)
        ]
        self.vocab = self.shortlist + sum(w.shape[1] for _, w in self.tails)
        self.bounds = [*cutoffs, self.vocab]

    def __call__(self, h: np.ndarray) -> np.ndarray:
        head = h @ self.head_t
        if self.head_b is not None:
            head = head + self.head_b
        head = _log_softmax(head)  # (..., shortlist + clusters)
        out = np.empty((*h.shape[:-1], self.vocab), dtype=head.dtype)
        out[..., : self.shortlist] = head[..., : self.shortlist]
        for i, (proj_t, out_t) in enumerate(self.tails):
            cluster = _log_softmax((h @ proj_t) @ out_t)
            lo, hi = self.bounds[i], self.bounds[i + 1]
            out[..., lo:hi] = cluster + head[..., self.shortlist + i : self.shortlist + i + 1]
        return out
