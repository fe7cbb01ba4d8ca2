"""The network's passes written against the Array API standard, for any array library.

:class:`PortableNetwork` computes what :class:`~sklearn_gd._network.Network`
computes (the same notation and objective) on arrays of any library that
implements the standard (PyTorch on CPU or GPU, CuPy, ``array_api_strict``):
it is the reference kernels' form for those libraries. It keeps no buffers
between batches (the standard has no ``out=``; GPU libraries cache their
allocations themselves) and writes the gradient into the flat buffer's slices.
The NumPy engine (buffers reused, compiled kernels) serves NumPy arrays.
"""

from ._activations import ACTIVATIONS
from ._array_api import device_of, namespace, numpy_dtype, to_device
from ._input_block import PortableInputBlock
from ._network import L2Penalty, Network


#: Prediction feeds at most this many rows through at once: large batches keep a
#: GPU busy, and the bound keeps the input block's (features x rows x
#: frequencies) arrays within memory.
PREDICT_CHUNK_ROWS = 65536


class PortableNetwork(Network):
    """A :class:`~sklearn_gd._network.Network` whose arrays belong to ``xp``.

    Parameters
    ----------
    layout, activation, loss
        As for :class:`~sklearn_gd._network.Network`.
    xp : namespace
        The Array API namespace of the data and the parameters.
    """

    def __init__(self, layout, activation, loss, xp):
        super().__init__(layout, activation, loss)
        self.xp = xp
        self._activation = ACTIVATIONS[activation]
        block = layout.input_block
        self._block = None if block is None else PortableInputBlock(block, xp)
        self._ones_cache = {}

    def _ones(self, delta):
        """A vector of ones for ``delta``'s rows, made once per row count and dtype."""
        key = (delta.shape[0], delta.dtype)
        ones = self._ones_cache.get(key)
        if ones is None:
            ones = self._ones_cache[key] = self.xp.ones(
                (delta.shape[0],), dtype=delta.dtype, device=device_of(delta))
        return ones

    def workspace(self, n_rows, dtype, dropout=False):
        """No buffers: each pass allocates (see the module docstring)."""
        return _NoWorkspace()

    def l2_term(self, c, ws, theta):
        """The :class:`PortableL2Penalty` an optimizer step adds for ``theta``."""
        return PortableL2Penalty(c, self.layout, theta)

    def _views(self, theta):
        xp, layout = self.xp, self.layout
        weights = [xp.reshape(theta[s], shape)
                   for s, shape in zip(layout.weight_slices, layout.shapes)]
        return weights, [theta[s] for s in layout.bias_slices]

    def forward(self, theta, X, ws=None, masks=None):
        """``(R, P)``: raw outputs and predictions.

        Without a workspace (prediction), the rows go through in chunks of
        ``PREDICT_CHUNK_ROWS`` at most, which bounds the memory of the input
        block's per-feature arrays.
        """
        xp = self.xp
        n, chunk = X.shape[0], PREDICT_CHUNK_ROWS
        if ws is None and n > chunk:
            parts = [self.forward(theta, X[start:min(start + chunk, n), ...])
                     for start in range(0, n, chunk)]
            return tuple(xp.concat([part[i] for part in parts], axis=0) for i in (0, 1))
        R = self._layers(theta, X, masks)[0]
        return R, self.loss.portable[0](R, xp)

    def _layers(self, theta, X, masks=None):
        """``Z_L``, each layer's input ``A_{l-1}`` (``A_0``: the input block's output,
        or ``X``), each hidden layer's ``f(Z_l)``, and the input block's cache (or None)."""
        xp = self.xp
        weights, biases = self._views(theta)
        A, block_cache = X, None
        if self._block is not None:
            A, block_cache = self._block.forward(self.layout.input_params(theta), X)
        inputs, activated = [A], []
        last = self.layout.n_layers - 1
        for layer, (W, b) in enumerate(zip(weights, biases)):
            Z = A @ W + b
            if layer == last:
                return Z, inputs, activated, block_cache
            A = self._activation.portable(Z, xp)
            activated.append(A)
            if masks is not None and masks[layer] is not None:
                A = A * masks[layer]
            inputs.append(A)

    def l2_penalty(self, theta, c):
        """``c / 2 * sum_l ||W_l||^2`` (biases excluded)."""
        xp = self.xp
        weights, _ = self._views(theta)
        return 0.5 * c * sum(float(xp.sum(W * W)) for W in weights)

    def evaluate(self, theta, X, Y, weights, c):
        """``(J, P)`` without dropout, as :meth:`Network.evaluate`."""
        R, P = self.forward(theta, X)
        value = self.loss.portable[1](R, P, Y, self.xp)
        return float(self.xp.sum(value * weights)) + self.l2_penalty(theta, c), P

    def constant_loss(self, bias, Y, weights):
        """As :meth:`Network.constant_loss`."""
        xp = self.xp
        R = xp.zeros_like(Y) + bias
        link, value, _ = self.loss.portable
        return float(xp.sum(value(R, link(R, xp), Y, xp) * weights))

    def objective(self, theta, X, Y, weights, c, ws):
        """``J`` on one batch, without dropout."""
        return self.evaluate(theta, X, Y, weights, c)[0]

    def loss_and_grad(self, theta, X, Y, weights, c, ws, grad, masks=None):
        """As :meth:`Network.loss_and_grad`: the gradient goes into ``grad``'s slices;
        the data loss and the penalty are 0-d arrays on the device (0.0 without
        a penalty), read back by the caller when it needs them."""
        xp, layout = self.xp, self.layout
        R, inputs, activated, block_cache = self._layers(theta, X, masks)
        data_loss, _, delta = self.loss.portable_loss_and_delta(R, Y, weights, xp)
        weights_list, _ = self._views(theta)
        # column sums as a product, as the NumPy engine makes them (the same
        # floats where both use one BLAS: Adam turns rounding-level gradients,
        # such as a centred target's bias, into whole steps)
        ones = self._ones(delta)
        penalty = 0.0
        for layer in range(layout.n_layers - 1, -1, -1):
            W = weights_list[layer]
            gW = inputs[layer].T @ delta
            if c:
                gW = gW + c * W
                penalty = penalty + 0.5 * c * xp.sum(W * W)
            grad[layout.weight_slices[layer]] = xp.reshape(gW, (-1,))
            grad[layout.bias_slices[layer]] = ones @ delta
            if layer == 0:
                break
            delta = delta @ W.T
            if masks is not None and masks[layer - 1] is not None:
                delta = delta * masks[layer - 1]
            delta = delta * self._activation.portable_derivative(activated[layer - 1], xp)
        if self._block is not None:
            grad[layout.input_slice] = self._block.backward(
                layout.input_params(theta), X, block_cache, delta @ weights_list[0].T
            )
        return data_loss, penalty


class PortableL2Penalty(L2Penalty):
    """:class:`~sklearn_gd._network.L2Penalty` off NumPy: the term on every weight at
    once, through a mask of the weights on ``theta``'s device (a few passes
    whatever the number of layers, where one per layer would launch more
    kernels on a GPU)."""

    fusable = False

    def __init__(self, c, layout, theta):
        super().__init__(c, layout, None)
        self.xp = namespace(theta)
        self.weight_mask = to_device(layout.weight_mask().astype(numpy_dtype(theta.dtype)),
                                     self.xp, device_of(theta))

    def add_gradient(self, g, theta):
        """``g <- g + c W``; return the penalty at ``theta`` (a 0-d array on the device)."""
        weights = theta * self.weight_mask
        g += self.c * weights
        return (0.5 * self.c) * self.xp.sum(weights * weights)


class _NoWorkspace:
    """The workspace of a :class:`PortableNetwork`: nothing to reuse."""

    weight_scratch = None
