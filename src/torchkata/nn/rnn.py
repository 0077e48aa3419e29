"""a09: a simple (Elman) RNN by hand, without nn.RNN: h_t = act(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh).

The parameters carry nn.RNN's names and shapes (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ... per layer),
so `load_state_dict(rnn.state_dict())` copies an nn.RNN's weights in. Layer k > 0 reads the hidden states of layer
k - 1. The input projection of a whole sequence is one matrix product before the time loop: only the recurrent
part, which needs the previous step, runs step by step. Gradients flow back through time by autograd.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


class SimpleRNN(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False):
        super().__init__()
        if nonlinearity not in ACTIVATIONS:
            raise ValueError(f"nonlinearity must be one of {sorted(ACTIVATIONS)}, not {nonlinearity!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.nonlinearity, self.bias, self.batch_first = nonlinearity, bias, batch_first
        bound = 1 / math.sqrt(hidden_size)  # nn.RNN's initialisation: every weight and bias ~ U(-bound, bound)
        for layer in range(num_layers):
            shapes = {"weight_ih": (hidden_size, input_size if layer == 0 else hidden_size),
                      "weight_hh": (hidden_size, hidden_size)}
            if bias:
                shapes |= {"bias_ih": (hidden_size,), "bias_hh": (hidden_size,)}
            for name, shape in shapes.items():
                self.register_parameter(f"{name}_l{layer}", nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x: (L, N, input_size), or (N, L, input_size) with batch_first, or unbatched (L, input_size);
        h0: (num_layers, N, hidden_size), or (num_layers, hidden_size) unbatched; zeros when not given.
        Returns (output: the last layer's hidden state at every step, shaped like x; h_n: every layer's last state)."""
        if x.dim() not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(f"expected input of shape (L, N, {self.input_size}), (N, L, {self.input_size}) with "
                             f"batch_first, or (L, {self.input_size}), got {tuple(x.shape)}")
        if x.shape[-2 if x.dim() == 3 and self.batch_first else 0] == 0:
            raise ValueError(f"the sequence must have at least one step, got input of shape {tuple(x.shape)}")
        batched = x.dim() == 3
        if not batched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        batch = x.shape[1]
        want = (self.num_layers, batch, self.hidden_size) if batched else (self.num_layers, self.hidden_size)
        if h0 is None:
            h0 = x.new_zeros(want)
        elif tuple(h0.shape) != want:
            raise ValueError(f"expected h0 of shape {want}, got {tuple(h0.shape)}")
        if not batched:
            h0 = h0.unsqueeze(1)
        act = ACTIVATIONS[self.nonlinearity]
        last_states = []
        for layer in range(self.num_layers):
            w_ih, w_hh = getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}")
            projected = x @ w_ih.T  # every step's input term at once: (L, N, hidden)
            if self.bias:
                projected = projected + (getattr(self, f"bias_ih_l{layer}") + getattr(self, f"bias_hh_l{layer}"))
            h, states = h0[layer], []
            for step in projected:
                h = act(step + h @ w_hh.T)
                states.append(h)
            x = torch.stack(states)
            last_states.append(h)
        h_n = torch.stack(last_states)
        if not batched:
            return x.squeeze(1), h_n.squeeze(1)
        return (x.transpose(0, 1) if self.batch_first else x), h_n
