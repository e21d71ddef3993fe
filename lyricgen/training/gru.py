"""One GRU layer for training on the CPU, with a hand-written backward pass.

PyTorch has no fused CPU kernel for training a GRU (oneDNN's is used for the LSTM only), so
`nn.GRU` in training runs each time step as a handful of small ops recorded by autograd,
and its backward pass updates the (3H, H) recurrent weight gradient once per time step: a
rank-B update of a 3 MB matrix, 64 times a step in songci_char. `gru_layer` computes the
same function (torch's GRU equations, below) in two loops of plain tensor ops:

- forward: the input projections of all T steps in one matrix product, then per step one
  (B, H) x (H, 3H) product and the gates, keeping what backward needs;
- backward: per step, from the last, the gates' gradients and one (B, 3H) x (3H, H) product
  for the state's; then the four weight gradients as four matrix products over all T x B
  rows at once.

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

Tests check its outputs and every gradient against `nn.GRU`. docs/BENCHMARKS.md has the
speed-up.
"""

from __future__ import annotations

import torch

_aten = torch.ops.aten


def gru_layer(
    x: torch.Tensor,
    h0: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    b_ih: torch.Tensor | None,
    b_hh: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x (T, B, E), h0 (B, H) -> outputs (T, B, H) and the last state (B, H)."""
    return _GRULayer.apply(x, h0, w_ih, w_hh, b_ih, b_hh)


class _GRULayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh):  # noqa: ANN001, ANN205
        steps, batch, _ = x.shape
        hid = w_hh.shape[1]
        two = 2 * hid
        flat = x.reshape(steps * batch, -1)
        gi = flat @ w_ih.t() if b_ih is None else torch.addmm(b_ih, flat, w_ih.t())
        gi = gi.view(steps, batch, 3 * hid)
        hs = x.new_empty(steps + 1, batch, hid)  # hs[t] is the state before step t
        hs[0] = h0
        gh = x.new_empty(steps, batch, 3 * hid)  # W_h h + b_h at each step
        rz = x.new_empty(steps, batch, two)  # the r and z gates
        n = x.new_empty(steps, batch, hid)  # the candidate state
        w_hh_t = w_hh.t()
        for t in range(steps):
            h = hs[t]
            if b_hh is None:
                torch.mm(h, w_hh_t, out=gh[t])
            else:
                torch.addmm(b_hh, h, w_hh_t, out=gh[t])
            torch.add(gi[t, :, :two], gh[t, :, :two], out=rz[t]).sigmoid_()
            torch.addcmul(gi[t, :, two:], rz[t, :, :hid], gh[t, :, two:], out=n[t]).tanh_()
            torch.sub(h, n[t], out=hs[t + 1]).mul_(rz[t, :, hid:]).add_(n[t])  # n + z (h - n)
        ctx.save_for_backward(x, w_ih, w_hh)
        ctx.hs, ctx.gh, ctx.rz, ctx.n = hs, gh, rz, n
        ctx.has_bias = (b_ih is not None, b_hh is not None)
        return hs[1:], hs[steps].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, grad_last):  # noqa: ANN001, ANN205
        x, w_ih, w_hh = ctx.saved_tensors
        hs, gh, rz, n = ctx.hs, ctx.gh, ctx.rz, ctx.n
        steps, batch, _ = x.shape
        hid = w_hh.shape[1]
        two = 2 * hid
        dgi = x.new_empty(steps, batch, 3 * hid)  # d loss / d (W_i x + b_i)
        dgh = x.new_empty(steps, batch, 3 * hid)  # d loss / d (W_h h + b_h)
        dh = grad_last.clone() if grad_last is not None else x.new_zeros(batch, hid)
        for t in range(steps - 1, -1, -1):
            if grad_out is not None:
                dh.add_(grad_out[t])
            r, z, nt = rz[t, :, :hid], rz[t, :, hid:], n[t]
            dz = torch.sub(hs[t], nt).mul_(dh)  # d h' / d z = h - n
            dhz = dh * z  # the direct path to h
            dn = dh.sub_(dhz)  # (1 - z) dh; dh is not needed after this
            dan = dgi[t, :, two:]
            _aten.tanh_backward.grad_input(dn, nt, grad_input=dan)
            _aten.sigmoid_backward.grad_input(dz, z, grad_input=dgi[t, :, hid:two])
            dr = torch.mul(dan, gh[t, :, two:])
            _aten.sigmoid_backward.grad_input(dr, r, grad_input=dgi[t, :, :hid])
            dgh[t, :, :two] = dgi[t, :, :two]
            torch.mul(dan, r, out=dgh[t, :, two:])
            dh = torch.addmm(dhz, dgh[t], w_hh)
        need = ctx.needs_input_grad
        dgi_flat = dgi.view(steps * batch, 3 * hid)
        dgh_flat = dgh.view(steps * batch, 3 * hid)
        grad_x = (dgi_flat @ w_ih).view_as(x) if need[0] else None
        grad_w_ih = dgi_flat.t() @ x.reshape(steps * batch, -1) if need[2] else None
        grad_w_hh = dgh_flat.t() @ hs[:steps].reshape(steps * batch, hid) if need[3] else None
        grad_b_ih = dgi_flat.sum(0) if ctx.has_bias[0] and need[4] else None
        grad_b_hh = dgh_flat.sum(0) if ctx.has_bias[1] and need[5] else None
        return grad_x, dh if need[1] else None, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh
