import pytest
import torch
from torch import nn

from lyricgen.config import ModelConfig
from lyricgen.training.model import LyricsModel, detach

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]


@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_shapes_and_carried_state(cell, nonlinearity):
    cfg = ModelConfig(
        cell=cell,
        nonlinearity=nonlinearity,
        embedding_dim=8,
        hidden_size=12,
        num_layers=2,
        dropout=0.1,
    )
    model = LyricsModel(30, cfg).eval()
    ids = torch.randint(0, 30, (3, 7))
    logits, hidden = model(ids)
    assert logits.shape == (3, 7, 30)
    h = hidden[0] if cell == "lstm" else hidden
    assert h.shape == (2, 3, 12)
    # stepping one token at a time with the carried state equals one pass over the sequence
    state, steps = None, []
    for t in range(7):
        out, state = model(ids[:, t : t + 1], state)
        steps.append(out)
    assert torch.allclose(torch.cat(steps, dim=1), logits, atol=1e-5)
    # detach keeps the values and cuts the graph (truncated BPTT)
    model.train()
    _, hidden = model(ids)
    cut = detach(hidden)
    for a, b in zip(
        cut if cell == "lstm" else (cut,), hidden if cell == "lstm" else (hidden,), strict=True
    ):
        assert torch.equal(a, b) and b.requires_grad and not a.requires_grad


def test_weight_tying_shares_the_embedding():
    cfg = ModelConfig(embedding_dim=16, hidden_size=16, num_layers=1, tie_weights=True)
    model = LyricsModel(20, cfg)
    assert model.decoder.weight is model.embedding.weight


def test_bidirectional_and_unknown_cell_are_refused():
    with pytest.raises(ValueError, match="bidirectional"):
        LyricsModel(10, ModelConfig(bidirectional=True))
    with pytest.raises(ValueError, match="rnn, lstm, gru"):
        LyricsModel(10, ModelConfig(cell="transformer"))


@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_learns_hello_to_ohlol(cell, nonlinearity):
    """A tiny model must learn a mapping that needs memory (two 'l' inputs, two outputs)."""
    torch.manual_seed(0)
    chars = "helo"
    x = torch.tensor([[chars.index(c) for c in "hello"]])
    y = torch.tensor([[chars.index(c) for c in "ohlol"]])
    cfg = ModelConfig(
        cell=cell,
        nonlinearity=nonlinearity,
        embedding_dim=8,
        hidden_size=16,
        num_layers=1,
        dropout=0.0,
    )
    model = LyricsModel(len(chars), cfg)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    pred = model(x)[0].argmax(-1)
    assert "".join(chars[i] for i in pred[0]) == "ohlol"


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_layer_by_layer_matches_the_stacked_rnn(cell):
    """run_layers (a stacked RNN trained one layer at a time, lyricgen's dropout between the
    layers) computes what the torch module computes: with no dropout, the same outputs,
    final states and gradients, with and without a starting state."""
    from lyricgen.training.model import run_layers

    torch.manual_seed(0)
    if cell == "lstm":
        rnn = nn.LSTM(6, 8, num_layers=3)
    elif cell == "gru":
        rnn = nn.GRU(6, 8, num_layers=3)
    else:
        rnn = nn.RNN(6, 8, num_layers=3, nonlinearity=cell.split("_")[1])
    x = torch.randn(5, 4, 6, requires_grad=True)
    h = torch.randn(3, 4, 8)
    for start in (None, (h, h.flip(0)) if cell == "lstm" else h):
        ours = run_layers(rnn, x, start, 0.0)
        theirs = rnn(x, start)
        for a, b in zip(
            torch.utils._pytree.tree_leaves(ours),
            torch.utils._pytree.tree_leaves(theirs),
            strict=True,
        ):
            if cell == "gru":  # lyricgen's GRU layer: the same function, other rounding
                assert torch.allclose(a, b, atol=1e-6)
            else:
                assert torch.equal(a, b)
        loss = lambda out: out[0].square().sum() + torch.utils._pytree.tree_leaves(out[1])[0].sum()  # noqa: E731
        g1 = torch.autograd.grad(loss(ours), [x, rnn.weight_hh_l1])
        g2 = torch.autograd.grad(loss(theirs), [x, rnn.weight_hh_l1])
        for a, b in zip(g1, g2, strict=True):
            assert torch.allclose(a, b, atol=1e-6)


def test_dropout_keeps_its_rate_and_expectation():
    """The CPU dropout zeroes a fraction p (to 1/65536), scales the rest by 1/(1 - p), passes
    gradients through the same mask, follows the seed, and is the identity in eval."""
    from lyricgen.training.model import dropout

    x = torch.ones(400, 1000, requires_grad=True)
    for p in (0.1, 0.2, 0.5):
        torch.manual_seed(1)
        y = dropout(x, p)
        dropped = (y == 0).float().mean().item()
        assert abs(dropped - p) < 0.005
        assert abs(y.mean().item() - 1.0) < 0.01
        kept = y[y != 0]
        assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p)), rtol=1e-4)
        (g,) = torch.autograd.grad(y.sum(), x)
        assert torch.equal(g, y.detach())  # d(x * m)/dx = m
        torch.manual_seed(1)
        assert torch.equal(dropout(x, p), y)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))


def _count_calls(monkeypatch, module, name: str) -> list:
    """Wrap module.name so each call appends to the returned list."""
    calls, real = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a: calls.append(1) or real(*a))
    return calls


def test_training_mode_uses_the_layer_by_layer_path(monkeypatch):
    """A stacked model in training runs its layers one by one on the CPU (the dropout between
    them is lyricgen's); evaluation runs the torch module whole."""
    from lyricgen.training import model as model_mod

    calls = _count_calls(monkeypatch, model_mod, "run_layers")
    cfg = ModelConfig(cell="lstm", embedding_dim=8, hidden_size=8, num_layers=2, dropout=0.3)
    m = LyricsModel(11, cfg)
    ids = torch.randint(0, 11, (2, 5))
    m.train()
    m(ids)
    assert calls == [1]
    m.eval()
    m(ids)
    assert calls == [1]


@pytest.mark.parametrize(
    "rows,vocab,bias,reduction",
    [
        (300, 1000, True, "mean"),
        (129, 50, False, "sum"),
        (1, 7, True, "mean"),
        (128, 9, True, "sum"),
    ],
)
def test_linear_cross_entropy_matches_torch(rows, vocab, bias, reduction):
    """The fused loss (softmax gradient formed in place, 128 rows at a time) gives
    torch's loss and gradients, for any row count, with or without a bias, and scales by
    the incoming gradient."""
    from lyricgen.training.model import linear_cross_entropy

    torch.manual_seed(rows)
    h = torch.randn(rows, 16, requires_grad=True)
    w = torch.randn(vocab, 16, requires_grad=True)
    b = torch.randn(vocab, requires_grad=True) if bias else None
    y = torch.randint(0, vocab, (rows,))
    params = [t for t in (h, w, b) if t is not None]
    ref = nn.functional.cross_entropy(nn.functional.linear(h, w, b), y, reduction=reduction)
    want = torch.autograd.grad(ref * 2.5, params)
    got_loss = linear_cross_entropy(h, w, b, y, reduction)
    got = torch.autograd.grad(got_loss * 2.5, params)
    assert torch.allclose(got_loss, ref, rtol=1e-5, atol=1e-5)
    for g, r in zip(got, want, strict=True):
        assert torch.allclose(g, r, rtol=1e-4, atol=1e-5)
    with torch.no_grad():  # the evaluation path keeps one block of scores, same value
        assert torch.allclose(linear_cross_entropy(h, w, b, y, reduction), ref, rtol=1e-5)


@pytest.mark.parametrize("tie", [False, True])
def test_full_softmax_training_loss_and_gradients_match_torch(tie):
    """The model's training loss on the CPU goes through linear_cross_entropy; its loss and
    every parameter's gradient (the tied embedding's too) equal torch's cross-entropy of the
    model's own scores."""
    torch.manual_seed(0)
    cfg = ModelConfig(cell="gru", embedding_dim=12, hidden_size=12, dropout=0.0, tie_weights=tie)
    model = LyricsModel(300, cfg).train()
    x, y = torch.randint(0, 300, (2, 2, 70))
    loss, _ = model(x, targets=y)
    got = torch.autograd.grad(loss, list(model.parameters()))
    logits, _ = model(x)
    ref = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
    want = torch.autograd.grad(ref, list(model.parameters()))
    assert torch.allclose(loss, ref, atol=1e-6)
    for g, r in zip(got, want, strict=True):
        assert torch.allclose(g, r, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("bias", [True, False])
def test_gru_layer_matches_torch(bias):
    """lyricgen's GRU layer (hand-written backward, one matrix product per weight gradient)
    gives nn.GRU's outputs, last state and every gradient, the starting state's included."""
    from lyricgen.training.gru import gru_layer

    torch.manual_seed(3)
    gru = nn.GRU(6, 5, bias=bias)
    x = torch.randn(7, 3, 6, requires_grad=True)
    h0 = torch.randn(1, 3, 5, requires_grad=True)
    w_out, w_last = torch.randn(7, 3, 5), torch.randn(1, 3, 5)
    params = [x, h0, *gru.parameters()]
    out, last = gru(x, h0)
    want = torch.autograd.grad((out * w_out).sum() + (last * w_last).sum(), params)
    biases = (gru.bias_ih_l0, gru.bias_hh_l0) if bias else (None, None)
    ours, our_last = gru_layer(x, h0[0], gru.weight_ih_l0, gru.weight_hh_l0, *biases)
    assert torch.allclose(ours, out, atol=1e-6)
    assert torch.allclose(our_last, last[0], atol=1e-6)
    got = torch.autograd.grad((ours * w_out).sum() + (our_last * w_last[0]).sum(), params)
    for g, w in zip(got, want, strict=True):
        assert torch.allclose(g, w, atol=1e-5)
    # only the outputs used, or only the last state: the other gradient is absent
    weights = (gru.weight_ih_l0, gru.weight_hh_l0, *biases)
    (gx,) = torch.autograd.grad(gru_layer(x, h0[0], *weights)[1].sum(), [x])
    (wx,) = torch.autograd.grad(gru(x, h0)[1].sum(), [x])
    assert torch.allclose(gx, wx, atol=1e-6)


def test_a_one_layer_gru_trains_through_lyricgens_layer(monkeypatch):
    """On the CPU a GRU trains through gru_layer (torch has no fused kernel for it);
    evaluation and no-grad calls run the torch module."""
    from lyricgen.training import model as model_mod

    calls = _count_calls(monkeypatch, model_mod, "gru_layer")
    cfg = ModelConfig(cell="gru", embedding_dim=8, hidden_size=8, num_layers=1, dropout=0.1)
    m = LyricsModel(11, cfg)
    ids = torch.randint(0, 11, (2, 5))
    m.train()
    loss, _ = m(ids, targets=ids)
    loss.backward()
    assert calls == [1] and m.rnn.weight_hh_l0.grad is not None
    with torch.no_grad():
        m(ids)
    m.eval()
    m(ids)
    assert calls == [1]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_weight_drop_masks_the_recurrent_weights_in_training_only(cell):
    """model.weight_drop (DropConnect on the hidden-to-hidden matrix): in training the model
    computes what the RNN computes with that matrix through one dropout mask for the whole
    window (so the recurrent gradient is the masked one); in eval the weights are used as
    they are, so scoring and generation see the trained model unchanged."""
    from lyricgen.training.model import dropout

    cfg = ModelConfig(cell=cell, embedding_dim=6, hidden_size=8, num_layers=1, dropout=0.0,
                      weight_drop=0.5)  # fmt: skip
    torch.manual_seed(0)
    model = LyricsModel(20, cfg)
    ids = torch.randint(0, 20, (3, 9))
    model.eval()
    plain, _ = model(ids)
    model.train()
    torch.manual_seed(7)
    dropped, _ = model(ids)
    assert not torch.allclose(dropped, plain, atol=1e-4)
    # the same computation by hand: the mask drawn first from the same seed
    torch.manual_seed(7)
    w_hh = model.rnn.weight_hh_l0
    masked = dropout(w_hh.detach(), 0.5)
    assert (masked == 0).any()
    with torch.no_grad():
        saved = w_hh.clone()
        w_hh.copy_(masked)
        model.eval()
        by_hand, _ = model(ids)
        w_hh.copy_(saved)
    assert torch.allclose(dropped, by_hand, atol=1e-5)
    # gradients reach the recurrent matrix only where the mask kept it
    model.train()
    torch.manual_seed(7)
    out, _ = model(ids)
    (g,) = torch.autograd.grad(out.square().sum(), [w_hh])
    assert torch.all(g[masked == 0] == 0) and g.abs().sum() > 0
    model.eval()
    again, _ = model(ids)
    assert torch.equal(again, plain)
