"""`LyricsModel`: Embedding -> RNN/LSTM/GRU -> output layer, one interface for every cell.

The output layer is a full softmax (`nn.Linear` over the vocabulary, `model.output: full`)
or an adaptive softmax (Grave et al. 2017, `nn.AdaptiveLogSoftmaxWithLoss`,
`model.output: adaptive`): the most frequent tokens (the head, about 90% of the training
text by default) get a full-width softmax together with one entry per tail cluster, and the
rare tokens are scored through smaller projections only when their cluster is the target, so
most of a step's output-layer work, the largest part of a step at a 5k vocabulary, is
skipped in training. Its log-probabilities are exact (`log_prob`), so perplexity and bits
per character compare across both kinds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lyricgen.config import CELLS, ModelConfig
from lyricgen.errors import ConfigError
from lyricgen.training.gru import gru_layer

Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

_BITS = 16  # random bits per dropout decision on the CPU
_LEVELS = 1 << _BITS


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p).

    On the CPU the keep mask is drawn 16 bits per element, four elements per 64-bit draw of
    torch's generator, so p is rounded to a multiple of 1/65536 (0.2 becomes 0.199997) and
    the scale is the exact inverse of the rounded keep rate. torch's own CPU dropout draws a
    Bernoulli number per element; at PyTorch's word_language_model shape that was 8% of a
    training step, now under 1% (docs/BENCHMARKS.md). Other devices use F.dropout."""
    if not training or p <= 0:
        return x
    drops = round(p * _LEVELS)
    if x.device.type != "cpu" or drops >= _LEVELS:
        return F.dropout(x, p, training)
    n = x.numel()
    draws = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    bits = draws.view(torch.int16)[:n].view(x.shape)  # uniform over [-32768, 32767]
    keep = bits >= drops - _LEVELS // 2  # P(keep) = (65536 - drops) / 65536
    return x * keep.to(x.dtype).mul_(_LEVELS / (_LEVELS - drops))


class Dropout(nn.Dropout):
    """`nn.Dropout` through lyricgen's `dropout` (the same semantics, a faster CPU mask)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


_RNN_FN = {  # nn.RNNBase.mode -> the one-call function the module itself runs
    "LSTM": torch.lstm,
    "GRU": torch.gru,
    "RNN_TANH": torch.rnn_tanh,
    "RNN_RELU": torch.rnn_relu,
}


def run_layers(
    rnn: nn.RNNBase,
    x: torch.Tensor,
    hidden: Hidden | None,
    p: float,
    weight_drop: float = 0.0,
    own_gru: bool | None = None,
) -> tuple:
    """A multi-layer `rnn` run one layer at a time with `dropout` between the layers: what
    `rnn(x, hidden)` computes in training (the same kernels: oneDNN runs a stacked RNN
    layer by layer too), with lyricgen's faster CPU dropout mask in place of torch's. A GRU
    training on the CPU in fp32 runs lyricgen's `gru_layer` (torch has no fused kernel for it).
    With `weight_drop`, each layer's recurrent matrix goes through dropout first: one mask
    for the whole window (DropConnect, as AWD-LSTM's weight drop). `own_gru`: whether a GRU
    runs lyricgen's layer (a model decides it once, `recurrence_kernel`); None: where it is
    written for, fp32 on the CPU with a gradient to compute."""
    fn, lstm = _RNN_FN[rnn.mode], rnn.mode == "LSTM"
    layers, width = rnn.num_layers, rnn.hidden_size
    if hidden is None:
        zeros = x.new_zeros(layers, x.shape[1], width)
        hidden = (zeros, zeros) if lstm else zeros
    # torch has no fused CPU kernel for training a GRU: lyricgen's layer (lyricgen.training.gru)
    if own_gru is None:
        own_gru = torch.is_grad_enabled() and _plain_cpu(x)
    own_gru = own_gru and rnn.mode == "GRU"
    finals = []
    for k in range(layers):
        if k:
            x = dropout(x, p, True)
        weights = [
            getattr(rnn, f"{w}_l{k}")
            for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            if hasattr(rnn, f"{w}_l{k}")
        ]
        if weight_drop > 0:
            weights[1] = dropout(weights[1], weight_drop, True)
        if own_gru:
            biases = weights[2:] if rnn.bias else [None, None]
            x, h = gru_layer(x, hidden[k], weights[0], weights[1], *biases)
            finals.append(h.unsqueeze(0))
        elif lstm:
            x, h, c = fn(
                x,
                (hidden[0][k : k + 1], hidden[1][k : k + 1]),
                weights,
                rnn.bias,
                1,
                0.0,
                True,
                False,
                False,
            )
            finals.append((h, c))
        else:
            x, h = fn(x, hidden[k : k + 1], weights, rnn.bias, 1, 0.0, True, False, False)
            finals.append(h)
    if lstm:
        return x, (torch.cat([h for h, _ in finals]), torch.cat([c for _, c in finals]))
    return x, torch.cat(finals)


_CE_ROWS = 128  # rows of scores per block in linear_cross_entropy (docs/BENCHMARKS.md)


def linear_cross_entropy(
    h: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    reduction: str = "mean",
) -> torch.Tensor:
    """`F.cross_entropy(F.linear(h, weight, bias), targets, reduction=...)` for h (N, H),
    with the gradient of the scores (softmax minus the one-hot target) formed in place,
    128 rows at a time while the block is still in the cache.

    torch's path writes the (N, V) log-probabilities, then in backward a zero-filled (N, V)
    gradient, scatters into it and reads both again: at PyTorch's word_language_model shape
    that was a fifth of the output layer's time. Without gradients only the log-sum-exp of
    each block is kept, so validation never holds more than one block of scores."""
    return _LinearCrossEntropy.apply(h, weight, bias, targets, reduction == "sum")


def _blocked_nll(h, weight, bias, targets) -> torch.Tensor:  # noqa: ANN001
    """The summed loss without gradients: one block of scores at a time, so evaluation
    never holds more than `_CE_ROWS` rows of (N, V) scores."""
    n, total = h.shape[0], h.new_zeros(())
    block_buf = h.new_empty(min(n, _CE_ROWS), weight.shape[0])
    wt = weight.t()
    for s in range(0, n, _CE_ROWS):
        e = min(n, s + _CE_ROWS)
        block = block_buf[: e - s]
        torch.mm(h[s:e], wt, out=block)
        if bias is not None:  # addmm(out=) would first copy the broadcast bias into the block
            block.add_(bias)
        total += torch.logsumexp(block, 1).sum() - block.gather(1, targets[s:e, None]).sum()
    return total


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, targets, summed: bool):  # noqa: ANN001
        n = h.shape[0]
        ctx.summed, ctx.n = summed, n
        if not any(ctx.needs_input_grad[:3]):
            total = _blocked_nll(h, weight, bias, targets)
            return total if summed else total / max(n, 1)
        # With gradients the (N, V) scores are kept for backward anyway, so they come from
        # one GEMM (a 128-row GEMM runs about a sixth slower); the softmax then works in place
        # one block of rows at a time, while the block is in the cache.
        scores = torch.mm(h, weight.t())
        col = targets[:, None]
        picked = scores.new_empty(n, 1)  # each row's target score
        lse = scores.new_empty(n, 1)  # each row's log-sum-exp
        for s in range(0, n, _CE_ROWS):
            e = min(n, s + _CE_ROWS)
            block = scores[s:e]
            if bias is not None:
                block.add_(bias)
            torch.gather(block, 1, col[s:e], out=picked[s:e])
            top = block.amax(1, keepdim=True)
            block.sub_(top).exp_()
            mass = block.sum(1, keepdim=True)
            block.div_(mass)  # the softmax
            torch.add(top, mass.log_(), out=lse[s:e])
        # d loss / d scores = softmax - one-hot(target)
        scores.scatter_add_(1, col, scores.new_full((n, 1), -1.0))
        ctx.save_for_backward(scores, h, weight)
        total = lse.sum() - picked.sum()
        return total if summed else total / max(n, 1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # noqa: ANN001, ANN205
        scores, h, weight = ctx.saved_tensors
        scale = grad_out if ctx.summed else grad_out / max(ctx.n, 1)
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        # the scale multiplies the (N, H), (V, H) and (V,) results, not the (N, V) scores
        grad_h = (scores @ weight).mul_(scale) if need_h else None
        grad_w = (scores.t() @ h).mul_(scale) if need_w else None
        grad_b = scores.sum(0).mul_(scale) if need_b else None
        return grad_h, grad_w, grad_b, None, None


# The loss kernels `forward(..., targets=)` can run, chosen once per model (`loss_kernel`).
LOSS_KERNELS = {
    "adaptive": "torch's adaptive softmax (model.output adaptive)",
    "blocked": "lyricgen's blocked full-softmax cross-entropy (fp32 on the CPU)",
    "torch": "torch's cross_entropy over the full scores",
}


# How the RNN runs in training (`recurrence_kernel`); evaluation always runs torch's module.
RECURRENCES = {
    "module": "torch's RNN module",
    "layers": "one layer at a time, torch's kernels, lyricgen's dropout between the layers",
    "gru-layers": "one layer at a time through lyricgen's GRU layer (fp32 on the CPU)",
}


def recurrence_kernel(cfg: ModelConfig, device: torch.device | str, fp32: bool = True) -> str:
    """How the RNN of `cfg` trains on `device` (`fp32`: its recurrent layer computes in fp32).
    On the CPU a stacked RNN with dropout runs layer by layer, so the dropout between its
    layers is lyricgen's faster one, and a GRU runs lyricgen's layer (torch has no fused CPU
    kernel for training one); any RNN with model.weight_drop runs layer by layer (the module
    has no weight drop)."""
    cpu = torch.device(device).type == "cpu"
    stacked_dropout = cfg.num_layers > 1 and cfg.dropout > 0
    if cfg.weight_drop == 0 and not (cpu and (stacked_dropout or cfg.cell == "gru")):
        return "module"
    return "gru-layers" if cfg.cell == "gru" and cpu and fp32 else "layers"


def loss_kernel(output: str, device: torch.device | str, precision: str = "fp32") -> str:
    """The loss kernel for a model with `output` trained or scored on `device` at `precision`:
    lyricgen's own blocked kernel where it is written for (fp32 on the CPU), torch's elsewhere
    (GPUs, and autocast, whose low-precision scores the blocked kernel does not take)."""
    if output == "adaptive":
        return "adaptive"
    cpu = torch.device(device).type == "cpu"
    return "blocked" if cpu and precision == "fp32" else "torch"


class LyricsModel(nn.Module):
    """A recurrent language model: `forward(ids, hidden) -> (logits, hidden)`. Its kernels
    are chosen once, here: `loss` names the cross-entropy `forward(..., targets=)` computes
    (`loss_kernel`), `recurrence` how the RNN runs in training (`recurrence_kernel`); by
    default those for fp32 on the CPU. The trainer sets both for its device and precision."""

    def __init__(
        self,
        vocab_size: int,
        cfg: ModelConfig,
        loss: str | None = None,
        recurrence: str | None = None,
    ):
        super().__init__()
        if cfg.output == "auto":
            raise ValueError(
                "model.output auto is settled by training from the vocabulary's size; build "
                "the model from a resolved config (a run directory's config.yaml)"
            )
        self.loss = loss or loss_kernel(cfg.output, "cpu")
        self.recurrence = recurrence or recurrence_kernel(cfg, "cpu")
        if self.loss not in LOSS_KERNELS or (self.loss == "adaptive") != (cfg.output == "adaptive"):
            raise ValueError(f"loss kernel {self.loss!r} does not fit model.output {cfg.output}")
        if cfg.cell not in CELLS:
            raise ValueError(f"unknown cell {cfg.cell!r}; choose one of {', '.join(CELLS)}")
        if cfg.bidirectional:
            raise ValueError("a left-to-right generator cannot use a bidirectional RNN")
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_dim)
        self.drop = Dropout(cfg.dropout)
        # nn.RNN/LSTM/GRU only apply dropout between layers, so one layer gets none there.
        rnn_dropout = cfg.dropout if cfg.num_layers > 1 else 0.0
        kwargs = dict(
            input_size=cfg.embedding_dim,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            dropout=rnn_dropout,
            # The RNN always runs time-major: oneDNN's LSTM and cuDNN want (T, B, E), and a
            # batch-first nn.LSTM would transpose and copy its input and output every call.
            batch_first=False,
        )
        if cfg.cell == "rnn":
            self.rnn = nn.RNN(nonlinearity=cfg.nonlinearity, **kwargs)
        elif cfg.cell == "lstm":
            self.rnn = nn.LSTM(**kwargs)
        else:
            self.rnn = nn.GRU(**kwargs)
        if cfg.output == "adaptive":
            cutoffs = check_cutoffs(cfg.cutoffs, vocab_size)
            self.asm = nn.AdaptiveLogSoftmaxWithLoss(
                cfg.hidden_size, vocab_size, cutoffs, div_value=cfg.div_value, head_bias=True
            )
            self.rnn_fp32 = False
            self._init_weights()
            return
        self.decoder = nn.Linear(cfg.hidden_size, vocab_size)
        if cfg.tie_weights:
            # Press & Wolf 2017: sharing input and output embeddings regularises and saves V*H.
            self.decoder.weight = self.embedding.weight
        self.rnn_fp32 = False  # set where the RNN kernel has no bf16 (lyricgen.training.precision)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        if self.cfg.output == "adaptive":
            return  # nn.AdaptiveLogSoftmaxWithLoss initialises itself
        nn.init.zeros_(self.decoder.bias)
        if not self.cfg.tie_weights:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(
        self,
        ids: torch.Tensor,
        hidden: Hidden | None = None,
        time_major: bool = False,
        targets: torch.Tensor | None = None,
        reduction: str = "mean",
    ) -> tuple[torch.Tensor, Hidden]:
        """ids (B, T) -> logits (B, T, V) and the hidden state after the last step; with
        `time_major`, ids (T, B) -> logits (T, B, V) (what training uses: no copies). An
        adaptive model's "logits" are its exact log-probabilities. With `targets` (shaped
        like ids) the first value is the cross-entropy instead (`reduction`: mean or sum),
        computed without the full (T, B, V) scores where the output layer allows."""
        if not time_major:
            ids = ids.t()  # (T, B)
            if targets is not None:
                targets = targets.t()
        x = self.drop(self.embedding(ids))  # (T, B, E)
        if self.rnn_fp32:  # the RNN kernel has no bf16 here: see lyricgen.training.precision
            with torch.autocast(x.device.type, enabled=False):
                out, hidden = self._recur(x.float(), _float(hidden))
        else:
            out, hidden = self._recur(x, hidden)  # (T, B, H)
        out = self.drop(out)
        if targets is not None:
            return self._nll(out, targets, reduction), hidden
        if self.cfg.output == "adaptive":
            logits = self.asm.log_prob(out.flatten(0, 1)).view(*out.shape[:2], -1)  # (T, B, V)
        else:
            logits = self.decoder(out)  # (T, B, V)
        if not time_major:
            logits = logits.transpose(0, 1)  # (B, T, V), a view
        return logits, hidden

    def _recur(self, x: torch.Tensor, hidden: Hidden | None) -> tuple[torch.Tensor, Hidden]:
        """The RNN over (T, B, E): in training as `self.recurrence` says, else torch's module.
        lyricgen's GRU layer is a training kernel: with no gradient to compute (a no-grad
        call in training mode) the layers run torch's."""
        if not self.training or self.recurrence == "module":
            return self.rnn(x, hidden)
        own_gru = self.recurrence == "gru-layers" and torch.is_grad_enabled()
        return run_layers(self.rnn, x, hidden, self.rnn.dropout, self.cfg.weight_drop, own_gru)

    def _nll(self, out: torch.Tensor, targets: torch.Tensor, reduction: str) -> torch.Tensor:
        """Cross-entropy of `targets` (T, B) given the top layer's output (T, B, H)."""
        flat = out.flatten(0, 1)  # (T*B, H)
        if self.loss == "adaptive":
            # under autocast torch's adaptive softmax fills a tensor of its input's dtype with
            # the clusters' log-probabilities, which autocast computes in the low precision:
            # give it its input in that precision so the two agree (the sum below is fp32)
            low = _autocast_dtype(flat.device.type)
            if low is not None:
                flat = flat.to(low)
            logp = self.asm(flat, targets.flatten()).output  # (T*B,) target log-probs
            total = -logp.float().sum()
            return total if reduction == "sum" else total / logp.numel()
        d = self.decoder
        if self.loss == "blocked":
            return linear_cross_entropy(flat, d.weight, d.bias, targets.flatten(), reduction)
        return F.cross_entropy(d(flat).float(), targets.flatten(), reduction=reduction)


def _plain_cpu(x: torch.Tensor) -> bool:
    """fp32 on the CPU without autocast: where lyricgen's own kernels (`linear_cross_entropy`,
    `gru_layer`) replace torch's; elsewhere the torch ones run."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and not _autocast_dtype("cpu")


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast computes in on this device type, or None when it is off."""
    try:
        on = torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: one flag per device type
        on = (
            torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()
        )
    if not on:
        return None
    try:
        return torch.get_autocast_dtype(device_type)
    except AttributeError:  # torch < 2.4
        return (
            torch.get_autocast_cpu_dtype()
            if device_type == "cpu"
            else torch.get_autocast_gpu_dtype()
        )


def default_cutoffs(counts: list[int], coverage: float = 0.9, div: int = 4) -> list[int]:
    """Adaptive-softmax cutoffs from the training counts of a frequency-sorted vocabulary:
    the head holds the fewest tokens that cover `coverage` of the text, and each tail cluster
    is `div` times as large as the one before it."""
    v = len(counts)
    total = float(sum(counts)) or 1.0
    run, head = 0.0, v - 1
    for i, c in enumerate(counts):
        run += c
        if run >= coverage * total:
            head = i + 1
            break
    head = max(1, min(head, v - 1))
    cutoffs = [head]
    while cutoffs[-1] * div < v - 1:
        cutoffs.append(cutoffs[-1] * div)
    return cutoffs


def check_cutoffs(cutoffs: list[int] | None, vocab_size: int) -> list[int]:
    """Cutoffs that nn.AdaptiveLogSoftmaxWithLoss accepts, or a one-line ConfigError."""
    if not cutoffs:
        raise ConfigError(
            "model.output adaptive needs model.cutoffs (lyricgen train chooses them from the "
            "training counts when they are not set)"
        )
    if any(b <= a for a, b in zip(cutoffs, cutoffs[1:], strict=False)) or cutoffs[0] < 1:
        raise ConfigError(
            f"model.cutoffs {list(cutoffs)} must be positive and increasing, e.g. [1000, 4000]"
        )
    if cutoffs[-1] > vocab_size - 1:
        raise ConfigError(
            f"model.cutoffs {list(cutoffs)} exceed the vocabulary: the largest must be at most "
            f"{vocab_size - 1} (the vocabulary has {vocab_size} entries)"
        )
    return list(cutoffs)


def map_hidden(hidden: Hidden | None, fn) -> Hidden | None:
    """Apply `fn` to the hidden state's tensor, or to both of an LSTM's (h, c)."""
    if hidden is None:
        return None
    if isinstance(hidden, tuple):
        return tuple(fn(h) for h in hidden)
    return fn(hidden)


def _float(hidden: Hidden | None) -> Hidden | None:
    return map_hidden(hidden, lambda h: h.float())


def detach(hidden: Hidden | None) -> Hidden | None:
    """Cut the graph between batches (truncated BPTT) but keep the state's values."""
    return map_hidden(hidden, lambda h: h.detach())


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an unavailable explicit choice is an error."""
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        raise ConfigError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    if name == "mps" and not mps:
        raise ConfigError(
            "--device mps: Apple's MPS is not available here; use --device cpu or auto"
        )
    return torch.device(name)
