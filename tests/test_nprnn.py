"""The NumPy RNN/GRU/LSTM against PyTorch: forward to 1e-5, gradients to 1e-6 (float64),
a finite-difference check, and stateful chunks equal to one long call."""

import numpy as np
import pytest
import torch

from lyricgen.backends.numpy_rnn import NumpyRNN

CASES = [
    (cell, nl, layers)
    for cell, nl in [("rnn", "tanh"), ("rnn", "relu"), ("gru", "tanh"), ("lstm", "tanh")]
    for layers in (1, 2)
]
IDS = [f"{c}-{n}-{layer}layer" for c, n, layer in CASES]


def make_torch(cell, nonlinearity, layers, inp=5, hidden=7):
    torch.manual_seed(0)
    kw = dict(input_size=inp, hidden_size=hidden, num_layers=layers, dtype=torch.float64)
    if cell == "rnn":
        return torch.nn.RNN(nonlinearity=nonlinearity, **kw)
    return (torch.nn.GRU if cell == "gru" else torch.nn.LSTM)(**kw)


def numpy_of(module, cell, nonlinearity, layers):
    params = {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}
    return NumpyRNN(params, cell, layers, nonlinearity)


def initial_state(cell, layers, batch=3, hidden=7, seed=1):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(layers, batch, hidden, dtype=torch.float64, generator=g)
    return (
        (h, torch.randn(layers, batch, hidden, dtype=torch.float64, generator=g))
        if cell == "lstm"
        else h
    )


def parts(state):
    """A state as a list of arrays: [h], or [h, c] for an LSTM."""
    items = list(state) if isinstance(state, tuple) else [state]
    return [x.detach().numpy() if isinstance(x, torch.Tensor) else x for x in items]


def to_np(state):
    return (
        tuple(s.detach().numpy() for s in state)
        if isinstance(state, tuple)
        else state.detach().numpy()
    )


@pytest.mark.parametrize("cell,nonlinearity,layers", CASES, ids=IDS)
def test_forward_matches_torch(cell, nonlinearity, layers):
    module = make_torch(cell, nonlinearity, layers)
    net = numpy_of(module, cell, nonlinearity, layers)
    x = torch.randn(6, 3, 5, dtype=torch.float64)
    for state in (None, initial_state(cell, layers)):
        out_t, final_t = module(x, state)
        out_n, final_n, _ = net.forward(x.numpy(), None if state is None else to_np(state))
        np.testing.assert_allclose(out_n, out_t.detach().numpy(), atol=1e-5)
        for a, b in zip(parts(final_n), parts(final_t), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("cell,nonlinearity,layers", CASES, ids=IDS)
def test_gradients_match_autograd(cell, nonlinearity, layers):
    module = make_torch(cell, nonlinearity, layers)
    net = numpy_of(module, cell, nonlinearity, layers)
    x = torch.randn(6, 3, 5, dtype=torch.float64, requires_grad=True)
    state = initial_state(cell, layers)
    state = tuple(s.requires_grad_() for s in state) if cell == "lstm" else state.requires_grad_()
    out, final = module(x, state)
    g = torch.Generator().manual_seed(7)
    d_out = torch.randn(out.shape, dtype=torch.float64, generator=g)
    d_final = (
        tuple(torch.randn(s.shape, dtype=torch.float64, generator=g) for s in final)
        if cell == "lstm"
        else torch.randn(final.shape, dtype=torch.float64, generator=g)
    )
    loss = (out * d_out).sum() + (
        sum((f * d).sum() for f, d in zip(final, d_final, strict=True))
        if cell == "lstm"
        else (final * d_final).sum()
    )
    loss.backward()

    _, _, cache = net.forward(x.detach().numpy(), to_np(state))
    grads, dx, dstate = net.backward(cache, d_out.numpy(), to_np(d_final))
    for name, p in module.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), atol=1e-6, err_msg=name)
    np.testing.assert_allclose(dx, x.grad.numpy(), atol=1e-6)
    if cell == "lstm":
        for a, s in zip(dstate, state, strict=True):
            np.testing.assert_allclose(a, s.grad.numpy(), atol=1e-6)
    else:
        np.testing.assert_allclose(dstate, state.grad.numpy(), atol=1e-6)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_finite_differences(cell):
    rng = np.random.default_rng(3)
    G = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    params = {
        "weight_ih_l0": rng.normal(size=(G * 3, 2)),
        "weight_hh_l0": rng.normal(size=(G * 3, 3)),
        "bias_ih_l0": rng.normal(size=G * 3),
        "bias_hh_l0": rng.normal(size=G * 3),
    }
    x = rng.normal(size=(4, 2, 2))
    w = rng.normal(size=(4, 2, 3))

    def loss(p):
        out, _, _ = NumpyRNN(p, cell, 1).forward(x)
        return float((out * w).sum())

    net = NumpyRNN(params, cell, 1)
    _, _, cache = net.forward(x)
    grads, _, _ = net.backward(cache, w)
    eps = 1e-6
    for name, value in params.items():
        for idx in np.ndindex(value.shape):
            plus = {k: v.copy() for k, v in params.items()}
            minus = {k: v.copy() for k, v in params.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            numeric = (loss(plus) - loss(minus)) / (2 * eps)
            assert abs(numeric - grads[name][idx]) < 1e-6, (name, idx)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_two_stateful_calls_equal_one_long_call(cell):
    module = make_torch(cell, "tanh", 2)
    net = numpy_of(module, cell, "tanh", 2)
    x = np.random.default_rng(0).normal(size=(10, 3, 5))
    whole, final_whole, _ = net.forward(x)
    first, state, _ = net.forward(x[:5])
    second, final_split, _ = net.forward(x[5:], state)
    np.testing.assert_allclose(np.concatenate([first, second]), whole, atol=1e-12)
    for a, b in zip(parts(final_split), parts(final_whole), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_truncated_bptt_passes_the_state_gradient():
    """Backward over two chunks, handing d_state of the second to the first, equals
    backward over the whole sequence."""
    module = make_torch("lstm", "tanh", 2)
    net = numpy_of(module, "lstm", "tanh", 2)
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(8, 3, 5)), rng.normal(size=(8, 3, 7))
    _, _, cache = net.forward(x)
    g_whole, dx_whole, _ = net.backward(cache, w)
    _, state, cache1 = net.forward(x[:4])
    _, _, cache2 = net.forward(x[4:], state)
    g2, dx2, dstate = net.backward(cache2, w[4:])
    g1, dx1, _ = net.backward(cache1, w[:4], dstate)
    for name in g_whole:
        np.testing.assert_allclose(g1[name] + g2[name], g_whole[name], atol=1e-10)
    np.testing.assert_allclose(np.concatenate([dx1, dx2]), dx_whole, atol=1e-10)
