"""Layer sizes -> offsets in one flat parameter buffer.

Every weight and bias of the network lives in a single 1-D array ``theta``.
Layer ``l`` owns a weight block of shape ``(fan_in, fan_out)`` followed by a
bias block of shape ``(fan_out,)``; an input block (embedding, input scale,
see :mod:`sklearn_gd._engine._input_block`), when there is one, owns the first
entries. Views onto ``theta`` are made on demand so that the flat buffer
stays the single source of truth (stored views would not survive pickling or
``copy.deepcopy``).
"""

import numpy as np

from ._array_api import reshape


def parameter_blocks(shapes):
    """``((name, start, stop, shape), ...)``: the arrays ``shapes`` (a dict of name
    to shape) laid out one after the other in a flat buffer, in the dict's order."""
    blocks, offset = [], 0
    for name, shape in shapes.items():
        n = int(np.prod(shape))
        blocks.append((name, offset, offset + n, shape))
        offset += n
    return tuple(blocks)


class Layout:
    """Offsets of each layer's weights and biases inside a flat buffer.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_inputs, hidden_1, ..., hidden_k, n_outputs]``: ``n_inputs`` is the
        number of features, or the input block's output width.
    input_block : InputBlock or None
        The layers in front of the first weight layer; their parameters come
        first in the buffer (``input_slice``).
    """

    def __init__(self, layer_sizes, input_block=None):
        self.layer_sizes = tuple(int(s) for s in layer_sizes)
        self.input_block = input_block
        offset = 0 if input_block is None else input_block.size
        self.input_slice = slice(0, offset)
        self.weight_slices = []
        self.bias_slices = []
        for fan_in, fan_out in self.shapes:
            self.weight_slices.append(slice(offset, offset + fan_in * fan_out))
            offset += fan_in * fan_out
            self.bias_slices.append(slice(offset, offset + fan_out))
            offset += fan_out
        self.size = offset

    @property
    def shapes(self):
        """List of ``(fan_in, fan_out)`` per layer."""
        return list(zip(self.layer_sizes[:-1], self.layer_sizes[1:]))

    @property
    def n_layers(self):
        """Number of weight layers (hidden layers + output layer)."""
        return len(self.layer_sizes) - 1

    def weights(self, theta):
        """Per-layer weight matrices as views of ``theta``."""
        return [
            reshape(theta[s], shape)
            for s, shape in zip(self.weight_slices, self.shapes)
        ]

    def biases(self, theta):
        """Per-layer bias vectors as views of ``theta``."""
        return [theta[s] for s in self.bias_slices]

    def weight_mask(self):
        """Boolean mask of ``theta`` entries that are weights (not biases)."""
        mask = np.zeros(self.size, dtype=bool)
        for s in self.weight_slices:
            mask[s] = True
        return mask

    @property
    def n_features(self):
        """Number of input features."""
        block = self.input_block
        return self.layer_sizes[0] if block is None else block.n_features

    def input_params(self, theta):
        """The input block's parameters, a view of ``theta`` (empty without a block)."""
        return theta[self.input_slice]

    def __eq__(self, other):
        return (isinstance(other, Layout) and self.layer_sizes == other.layer_sizes
                and self.input_block == other.input_block)

    def __hash__(self):
        return hash((self.layer_sizes, self.input_block))

    def __setstate__(self, state):
        # models pickled before the input block existed have none
        self.__dict__.update({"input_block": None, "input_slice": slice(0, 0), **state})
