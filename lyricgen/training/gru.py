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
        if b_hh is not None:
            gh.copy_(b_hh.expand_as(gh))  # once, so that each step adds its product in place
        rz = x.new_empty(steps, batch, two)  # the r and z gates
        n = x.new_empty(steps, batch, hid)  # the candidate state
        hmn = x.new_empty(steps, batch, hid)  # h - n, which backward needs too
        # contiguous: at B = 16 a product with the transposed view is 2.3x slower (MKL repacks
        # the 3 MB matrix every step); one copy per forward pass costs a millisecond
        w_hh_t = w_hh.t().contiguous()
        # per-step views made once: indexing inside the loop costs more than the small ops
        gi_rz, gi_n = gi[..., :two].unbind(0), gi[..., two:].unbind(0)
        gh_all, gh_rz, gh_n = gh.unbind(0), gh[..., :two].unbind(0), gh[..., two:].unbind(0)
        rz_all, r, z = rz.unbind(0), rz[..., :hid].unbind(0), rz[..., hid:].unbind(0)
        n_all, hmn_all, h_all = n.unbind(0), hmn.unbind(0), hs.unbind(0)
        for t in range(steps):
            h = h_all[t]
            if b_hh is None:
                torch.mm(h, w_hh_t, out=gh_all[t])
            else:
                gh_all[t].addmm_(h, w_hh_t)
            torch.add(gi_rz[t], gh_rz[t], out=rz_all[t]).sigmoid_()
            torch.addcmul(gi_n[t], r[t], gh_n[t], out=n_all[t]).tanh_()
            torch.sub(h, n_all[t], out=hmn_all[t])
            torch.addcmul(n_all[t], z[t], hmn_all[t], out=h_all[t + 1])  # n + z (h - n)
        ctx.save_for_backward(x, w_ih, w_hh)
        ctx.hs, ctx.gh, ctx.rz, ctx.n, ctx.hmn = hs, gh, rz, n, hmn
        ctx.has_bias = (b_ih is not None, b_hh is not None)
        return hs[1:], hs[steps].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, grad_last):  # noqa: ANN001, ANN205
        x, w_ih, w_hh = ctx.saved_tensors
        hs, gh, rz, n, hmn = ctx.hs, ctx.gh, ctx.rz, ctx.n, ctx.hmn
        steps, batch, _ = x.shape
        hid = w_hh.shape[1]
        two = 2 * hid
        dgi = x.new_empty(steps, batch, 3 * hid)  # d loss / d (W_i x + b_i)
        dgh = x.new_empty(steps, batch, 3 * hid)  # d loss / d (W_h h + b_h)
        # with h' = n + z (h - n), n = tanh(a_n), a_n = gi_n + r gh_n:
        #   d pre_z = sigmoid'(dh' (h - n)),  d a_n = tanh'(dh' (1 - z)),
        #   d pre_r = sigmoid'(d a_n gh_n),   d gh_n = d a_n r,  d h = dh' z + d gh W_h
        dgh_all, dgh_r = dgh.unbind(0), dgh[..., :hid].unbind(0)
        dgh_z, dgh_n = dgh[..., hid:two].unbind(0), dgh[..., two:].unbind(0)
        dan = dgi[..., two:].unbind(0)
        r, z = rz[..., :hid].unbind(0), rz[..., hid:].unbind(0)
        n_all, hmn_all, gh_n = n.unbind(0), hmn.unbind(0), gh[..., two:].unbind(0)
        g = grad_out.unbind(0) if grad_out is not None else None
        dh = grad_last.clone() if grad_last is not None else x.new_zeros(batch, hid)
        if g is not None:
            dh.add_(g[steps - 1])
        tmp = x.new_empty(batch, hid)
        for t in range(steps - 1, -1, -1):
            torch.mul(dh, hmn_all[t], out=tmp)
            _aten.sigmoid_backward.grad_input(tmp, z[t], grad_input=dgh_z[t])
            torch.addcmul(dh, dh, z[t], value=-1, out=tmp)  # dh' (1 - z)
            _aten.tanh_backward.grad_input(tmp, n_all[t], grad_input=dan[t])
            torch.mul(dan[t], gh_n[t], out=tmp)
            _aten.sigmoid_backward.grad_input(tmp, r[t], grad_input=dgh_r[t])
            torch.mul(dan[t], r[t], out=dgh_n[t])
            if g is not None and t > 0:
                dh = torch.addcmul(g[t - 1], dh, z[t])  # the next step's output gradient too
            else:
                dh = dh * z[t]
            dh.addmm_(dgh_all[t], w_hh)
        dgi[..., :two] = dgh[..., :two]  # the r and z pre-activations take both sums
        need = ctx.needs_input_grad
        dgi_flat = dgi.view(steps * batch, 3 * hid)
        dgh_flat = dgh.view(steps * batch, 3 * hid)
        grad_x = (dgi_flat @ w_ih).view_as(x) if need[0] else None
        grad_w_ih = dgi_flat.t() @ x.reshape(steps * batch, -1) if need[2] else None
        grad_w_hh = dgh_flat.t() @ hs[:steps].reshape(steps * batch, hid) if need[3] else None
        grad_b_ih = dgi_flat.sum(0) if ctx.has_bias[0] and need[4] else None
        grad_b_hh = dgh_flat.sum(0) if ctx.has_bias[1] and need[5] else None
        return grad_x, dh if need[1] else None, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh
