"""a09: a simple RNN by hand, without nn.RNN (nor torch.rnn_tanh / rnn_relu / nn.RNNCell).

Grade it:  torchkata check a09
"""
from __future__ import annotations

from torch import Tensor, nn


class SimpleRNN(nn.Module):
    """h_t = act(x_t W_ihᵀ + b_ih + h_(t-1) W_hhᵀ + b_hh), act tanh or relu, stacked `num_layers` deep (layer k > 0 reads
    the hidden states of layer k - 1).

    Parameters named and shaped as nn.RNN's (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, then _l1, ...; no
    biases with bias=False), initialised as nn.RNN's (uniform in ±1/sqrt(hidden_size)), so that
    `load_state_dict(nn_rnn.state_dict())` copies an nn.RNN's weights in. An unknown nonlinearity is a ValueError.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False):
        super().__init__()
        raise NotImplementedError("a09: write SimpleRNN.__init__")

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x: (L, N, input_size), (N, L, input_size) with batch_first, or unbatched (L, input_size).
        h0: (num_layers, N, hidden_size), or (num_layers, hidden_size) unbatched; zeros when None.
        Returns (output, h_n) as nn.RNN does: the last layer's state at every step (shaped like x, hidden_size
        features) and every layer's last state. A wrong input or h0 shape, or a sequence with no step, raises a
        ValueError that names the expected and the given shape."""
        raise NotImplementedError("a09: write SimpleRNN.forward")
