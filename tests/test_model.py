import pytest
import torch

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
