"""Forward and backward passes on the flat parameter buffer.

Notation for a network with ``L`` weight layers, batch ``X`` of ``m`` rows:

.. math::

    A_0 = X,\\quad Z_l = A_{l-1} W_l + b_l,\\quad
    A_l = M_l \\odot f(Z_l) \\;(l < L),\\quad P = g(Z_L)

with ``f`` the hidden activation, ``M_l`` an (inverted) dropout mask or ones,
and ``g`` the output link of the loss. The objective on the batch is

.. math::

    J = \\sum_i w_i\\, \\ell(Z_{L,i}, Y_i) + \\frac{c}{2} \\sum_l \\|W_l\\|_F^2,

where the batch weights ``w_i`` (``s_i / S`` at full batch, see
:class:`~sklearn_gd._data._batches.BatchSource`) and ``c = alpha / N`` are passed
in by the caller. Backpropagation:

.. math::

    \\Delta_L = w \\odot \\partial\\ell/\\partial Z_L,\\quad
    \\nabla W_l = A_{l-1}^T \\Delta_l + c W_l,\\quad
    \\nabla b_l = 1^T \\Delta_l,\\quad
    \\Delta_{l-1} = (\\Delta_l W_l^T) \\odot M_{l-1} \\odot f'(Z_{l-1}).

The math functions are deterministic: dropout masks come in as arguments.

The passes are written once for every array library: each operation goes
through the network's backend (:mod:`sklearn_gd._engine._backend`), with the
workspace's buffer it may write into (NumPy) or not (other libraries, and
prediction).
"""

import numpy as np

from . import _kernels
from ._array_api import device_of, float_bits, namespace, numpy_dtype, to_device
from ._backend import NUMPY
from ._input_block import BlockCache


class Network:
    """A fully connected architecture: layout, hidden activation and loss.

    Parameters
    ----------
    layout : Layout
    activation : str
        Key of :data:`~sklearn_gd._engine._activations.ACTIVATIONS`.
    loss : Loss
        Output link and loss, see :mod:`sklearn_gd._engine._losses`.
    backend : NumpyBackend or ArrayApiBackend, default=NumPy's
        The array library the passes compute in (:mod:`sklearn_gd._engine._backend`).
    """

    def __init__(self, layout, activation, loss, backend=NUMPY):
        self.layout = layout
        self.activation = activation
        self.loss = loss
        self.backend = backend

    def workspace(self, n_rows, dtype, dropout=False):
        """Buffers for batches of at most ``n_rows`` rows, reused across batches
        where the backend reuses buffers."""
        return self.backend.workspace(self.layout, n_rows, dtype, dropout)

    def l2_term(self, c, theta, ws=None):
        """The objective's L2 term ``c / 2 sum_l ||W_l||^2`` for ``theta``'s library (see
        :class:`L2Penalty`), the one place a run makes it: :meth:`loss_and_grad` adds
        its gradient for a full batch, the update step in mini-batch training.
        ``ws`` (a :meth:`workspace`) lends its scratch; without, the term has its own."""
        return self.backend.l2_term(c, self.layout, theta, getattr(ws, "weight_scratch", None))

    def forward(self, theta, X, ws=None, masks=None):
        """Run the network; return ``(R, P)``: raw outputs and predictions.

        Without a workspace (prediction), each layer's output is a fresh
        array, so concurrent calls share nothing, and the rows go through in
        chunks (the backend's ``prediction_chunk_rows``); with one (training),
        its buffers are filled and returned as views.
        """
        if ws is None:
            chunk = self._prediction_chunk_rows(float_bits(theta.dtype) // 8)
            if X.shape[0] > chunk:
                return self._forward_in_chunks(theta, X, chunk)
            ws = FreshWorkspace(self.backend, self.layout)
        rows = ws.rows(X.shape[0])
        R = self._raw_outputs(theta, X, ws, rows, masks)
        return R, self.backend.link(self.loss, R, rows.P)

    def _prediction_chunk_rows(self, itemsize):
        widest = max(self.layout.layer_sizes[1:])
        block = self.layout.input_block
        if block is not None:  # its output, and the cosines of every feature and frequency
            widest = max(widest, block.n_outputs, block.n_features * block.n_frequencies)
        return self.backend.prediction_chunk_rows(widest, itemsize)

    def _forward_in_chunks(self, theta, X, chunk):
        n = X.shape[0]
        parts = [self.forward(theta, self.backend.row_slice(X, start, min(start + chunk, n)))
                 for start in range(0, n, chunk)]
        return tuple(self.backend.concat([part[i] for part in parts], axis=0) for i in (0, 1))

    def _raw_outputs(self, theta, X, ws, rows, masks=None):
        """Hidden layers and the output layer's affine map: ``Z_L``.

        Each layer writes into the batch rows' buffer where there is one;
        the rows record each layer's input ``A_{l-1}`` and each hidden
        layer's ``f(Z_l)`` for the backward pass.
        """
        ops = self.backend
        weights, biases = ws.parameter_views(self.layout, theta)
        A = self._input_block_forward(theta, X, rows)
        last = self.layout.n_layers - 1
        for layer, (W, b) in enumerate(zip(weights, biases)):
            Z = ops.dot(A, W, out=rows.Z[layer])
            if layer == last:
                return ops.bias_activation(Z, b, "identity")
            A = rows.activated[layer] = ops.bias_activation(Z, b, self.activation)
            if masks is not None and masks[layer] is not None:
                A = ops.multiply(A, masks[layer], out=rows.dropped[layer])
            rows.inputs[layer + 1] = A

    def _input_block_forward(self, theta, X, rows):
        """The first layer's input: ``X``, or the input block's output; recorded
        as ``inputs[0]`` with what the block's backward pass needs."""
        block = self.layout.input_block
        A = X
        if block is not None:
            A = block.forward(self.layout.input_params(theta), X, self.backend, rows.block_cache)
            rows.block_input = X
        rows.inputs[0] = A
        return A

    def l2_penalty(self, theta, c):
        """``c / 2 * sum_l ||W_l||^2`` (biases excluded)."""
        return 0.5 * c * sum(self.backend.squared_norm(W) for W in self.layout.weights(theta))

    def evaluate(self, theta, X, Y, weights, c):
        """``(J, P)``: the objective of the weights on ``(X, Y)`` and the predictions.

        No workspace and no dropout, as for prediction: the validation
        objective of each epoch, data loss plus :meth:`l2_penalty`.
        """
        R, P = self.forward(theta, X)
        data_loss = self.backend.weighted_loss(self.loss, R, P, Y, weights)
        return data_loss + self.l2_penalty(theta, c), P

    def constant_loss(self, bias, Y, weights):
        """``sum_i w_i loss_i`` of the output layer's ``bias`` alone as every raw output.

        The constant model a fresh network starts from: a reference the
        divergence guard measures the first batch's objective against.
        """
        ops = self.backend
        R = ops.constant_outputs(bias, Y)
        return ops.weighted_loss(self.loss, R, ops.link(self.loss, R), Y, weights)

    def objective(self, theta, X, Y, weights, c, ws):
        """``J`` on one batch, as :meth:`loss_and_grad` returns it, without the gradient.

        No dropout: the objective of the weights themselves. The penalty is
        :meth:`l2_penalty`'s (summed in another order than the gradient's,
        so equal to rounding).
        """
        data_loss, _, _ = self._data_loss(theta, X, Y, weights, ws)
        return float(data_loss) + (self.l2_penalty(theta, c) if c else 0.0)

    def _data_loss(self, theta, X, Y, weights, ws, masks=None):
        """Forward pass and ``sum_i w_i loss_i``; also ``Delta_L`` and the batch's rows."""
        rows = ws.rows(X.shape[0])
        R = self._raw_outputs(theta, X, ws, rows, masks)
        data_loss, delta = self.backend.loss_and_delta(self.loss, R, Y, weights, rows.P,
                                                       rows.delta[-1])
        return data_loss, delta, rows

    def loss_and_grad(self, theta, X, Y, weights, c, ws, grad, masks=None):
        """Objective on one batch and its gradient, written into ``grad``.

        Parameters
        ----------
        theta : array of shape (n_params,)
        X : array or sparse matrix of shape (m, n_features)
        Y : array of shape (m, n_outputs)
        weights : array of shape (m,)
            The batch's weights ``w_i`` of the objective.
        c : float
            L2 coefficient ``alpha / N``.
        ws : Workspace or FreshWorkspace or None
            From :meth:`workspace`; None computes in new arrays.
        grad : array of shape (n_params,)
            Output buffer.
        masks : list of (array or None), optional
            One dropout mask per hidden layer, already scaled by ``1 / (1 - p)``.

        Returns
        -------
        data_loss : float or 0-d array
            ``sum_i w_i loss_i`` (without the penalty); off NumPy a 0-d array
            on the device, read back by the caller when it needs it.
        penalty : float or 0-d array
            ``c / 2 * ||W||^2``.
        """
        ops = self.backend
        if ws is None:
            ws = FreshWorkspace(ops, self.layout)
        data_loss, delta, rows = self._data_loss(theta, X, Y, weights, ws, masks)
        layout = self.layout
        W_list, _ = ws.parameter_views(layout, theta)
        gW_list, gb_list = ws.gradient_views(layout, grad)
        for layer in range(layout.n_layers - 1, -1, -1):
            W = W_list[layer]
            gW = ops.transpose_dot(rows.inputs[layer], delta, out=gW_list[layer])
            gb = ops.dot(rows.ones_for(delta), delta, out=gb_list[layer])  # column sums, by BLAS
            if gW is not gW_list[layer]:  # computed in a new array: into the flat buffer
                grad[layout.weight_slices[layer]] = ops.flat(gW)
            if gb is not gb_list[layer]:
                grad[layout.bias_slices[layer]] = gb
            if layer == 0:
                break
            delta = self._backprop_delta(delta, W, rows, masks, layer - 1)
        if layout.input_block is not None:
            error = ops.dot(delta, W_list[0].T, out=rows.block_error(delta, W_list[0]))
            layout.input_block.backward(
                layout.input_params(theta), rows.block_input, rows.block_cache, error,
                ops, grad, layout.input_slice,
            )
        penalty = self._l2_term(c, ws, theta).add_gradient(grad, theta) if c else 0.0
        return data_loss, penalty

    def _l2_term(self, c, ws, theta):
        """:meth:`l2_term`, made once per workspace and coefficient."""
        term = ws.l2
        if term is None or term.c != c:
            term = ws.l2 = self.l2_term(c, theta, ws)
        return term

    def _backprop_delta(self, delta, W, rows, masks, hidden):
        """``Delta_{l-1} = (Delta_l W_l^T) * M_{l-1} * f'(Z_{l-1})``.

        Through a layer of few outputs (a classifier's output layer), in one
        fused kernel where that is faster (see ``NARROW_MAX_OUTPUTS`` in
        :mod:`~sklearn_gd._engine._kernels`).
        """
        ops = self.backend
        previous = rows.delta[hidden]
        mask = None if masks is None else masks[hidden]
        A, scratch = rows.activated[hidden], rows.derivative[hidden]
        if rows.narrow[hidden]:
            return ops.narrow_backward(
                previous, delta, W, A, mask, self.activation, scratch, rows.transposed
            )
        previous = ops.dot(delta, W.T, out=previous)
        return ops.activation_backward(previous, A, mask, self.activation, scratch)


class L2Penalty:
    """The objective's L2 term ``c / 2 sum_l ||W_l||^2``: its gradient ``c W`` is
    added to a gradient by :meth:`add_gradient`, the one place it is written.

    :meth:`Network.loss_and_grad` adds it for a full batch. Mini-batch
    training leaves it out of the backward pass and lets the update step add
    it (:class:`sklearn_gd._optim._optimizers.Chain`): the kernel table's fused
    Adam step adds it in the pass over ``theta`` it makes anyway (one pass
    over the parameters less per batch; the same floats, see
    :func:`sklearn_gd._engine._kernels.l2_gradient_blocks`).

    Parameters
    ----------
    c : float
        ``alpha / N``.
    layout : Layout
        Where the weights (not the biases) sit in ``theta``.
    scratch : ndarray
        At least as long as the largest weight matrix (NumPy kernels only).
    """

    #: Whether the fused Adam kernel adds the term in its own pass.
    fusable = True

    def __init__(self, c, layout, scratch):
        self.c = float(c)
        bounds = [(s.start, s.stop) for s in layout.weight_slices]
        self.weight_bounds = np.array(bounds, dtype=np.int64).reshape(-1, 2)
        self.scratch = scratch

    def add_gradient(self, g, theta):
        """``g <- g + c W``; return the penalty at ``theta``."""
        return _kernels.l2_gradient_blocks(g, theta, self.c, self.weight_bounds, self.scratch)


class MaskedL2Penalty(L2Penalty):
    """:class:`L2Penalty` off NumPy: the term on every weight at once, through a
    mask of the weights on ``theta``'s device (a few passes whatever the
    number of layers, where one per layer would launch more kernels on a GPU)."""

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


class Workspace:
    """Preallocated per-layer buffers for batches of at most ``n_rows`` rows (NumPy).

    ``Z[l]`` holds layer ``l``'s pre-activation, overwritten in place by its
    activation for hidden layers; ``dropped[l]`` the masked activation when
    dropout is on; ``P`` the predictions; ``delta[l]`` the backpropagated
    error; ``derivative[l]`` the activation derivative; ``transposed`` the
    scratch of :func:`~sklearn_gd._engine._kernels.narrow_backward`.
    """

    l2 = None  # the L2 term of Network.loss_and_grad, made at its first call

    def __init__(self, layout, n_rows, dtype, dropout):
        fan_outs = layout.layer_sizes[1:]
        hidden = fan_outs[:-1]
        self.Z = [np.empty((n_rows, k), dtype=dtype) for k in fan_outs]
        self.P = np.empty((n_rows, fan_outs[-1]), dtype=dtype)
        self._views = {}
        self.ones = np.ones(n_rows, dtype=dtype)
        self.delta = [np.empty((n_rows, k), dtype=dtype) for k in fan_outs]
        # One scratch serves every layer's activation derivative and the
        # L2 term c W: each is used once, then dropped, never two at a time.
        largest_weight = max(a * b for a, b in layout.shapes)
        scratch = np.empty(max(n_rows * max(hidden, default=0), largest_weight), dtype)
        self.weight_scratch = scratch
        self.derivative = [scratch[: n_rows * k].reshape(n_rows, k) for k in hidden]
        # W^T for narrow_backward, for the layers it may backpropagate through
        narrow = [a * b for a, b in layout.shapes[1:] if b <= _kernels.NARROW_MAX_OUTPUTS]
        self.transposed = np.empty(max(narrow, default=0), dtype)
        self.dropped = (
            [np.empty((n_rows, k), dtype=dtype) for k in hidden] if dropout else None
        )
        self._rows = {}

    def rows(self, m):
        """The buffers' first ``m`` rows, as a :class:`BatchRows` made once per ``m``.

        Slicing every buffer anew for each batch would cost a few percent of
        a small network's step.
        """
        rows = self._rows.get(m)
        if rows is None:
            rows = self._rows[m] = BatchRows(self, m)
        return rows

    def parameter_views(self, layout, buffer):
        """``(weights, biases)`` views of a flat buffer, made once per buffer."""
        key = id(buffer)
        cached = self._views.get(key)
        if cached is None or cached[0] is not buffer:
            cached = (buffer, layout.weights(buffer), layout.biases(buffer))
            self._views[key] = cached
        return cached[1], cached[2]

    #: The backward pass writes each gradient block into its view of the flat buffer.
    gradient_views = parameter_views


class BatchRows:
    """Views of a :class:`Workspace`'s buffers for a batch of ``m`` rows.

    The same attributes as the workspace (``Z``, ``P``, ``delta``,
    ``derivative``, ``dropped``, ``ones``), cut to ``m`` rows (``transposed``
    whole); ``narrow``, whether the error into each hidden layer goes through
    :func:`~sklearn_gd._engine._kernels.narrow_backward` (decided once per ``m``); and,
    as the last forward pass set them, ``inputs``: each layer's input
    ``A_{l-1}`` (``A_0 = X``), which the weight gradients read, and
    ``activated``: each hidden layer's ``f(Z_l)``, which its derivative reads.
    """

    def __init__(self, ws, m):
        self.Z = [Z[:m] for Z in ws.Z]
        self.P = ws.P[:m]
        self.inputs = [None] * len(ws.Z)
        self.activated = [None] * (len(ws.Z) - 1)
        self.block_input, self.block_cache = None, BlockCache(reuse=True)
        self.dropped = [None] * len(self.activated) if ws.dropped is None else [
            D[:m] for D in ws.dropped]
        self.ones = ws.ones[:m]
        self.delta = [D[:m] for D in ws.delta]
        self.derivative = [D[:m] for D in ws.derivative]
        self.transposed = ws.transposed
        fan_outs = [D.shape[1] for D in ws.delta]
        self.narrow = [  # per hidden layer: backpropagate into it by narrow_backward
            _kernels.uses_narrow_backward(m * a, b) for a, b in zip(fan_outs, fan_outs[1:])
        ]

    def ones_for(self, delta):
        """The ones whose product with ``delta`` sums its columns."""
        return self.ones

    def block_error(self, delta, W):
        """The buffer of ``dJ/de = Delta_1 W_1^T``, kept for the next batch."""
        return self.block_cache.get("error", (delta.shape[0], W.shape[0]), delta.dtype)


class FreshWorkspace:
    """A workspace without buffers: every pass computes in new arrays.

    Prediction's (concurrent calls share nothing) and every pass's off
    NumPy, where the Array API has no ``out=``.
    """

    weight_scratch = None
    l2 = None  # the L2 term of Network.loss_and_grad, made at its first call

    def __init__(self, backend, layout):
        self.backend = backend
        self.n_layers = layout.n_layers
        self._ones = {}

    def rows(self, m):
        """A new :class:`FreshRows` for a batch of ``m`` rows."""
        return FreshRows(self, m)

    def parameter_views(self, layout, buffer):
        """``(weights, biases)`` of a flat buffer (views where the library makes them)."""
        reshape = self.backend.reshape
        weights = [reshape(buffer[s], shape)
                   for s, shape in zip(layout.weight_slices, layout.shapes)]
        return weights, [buffer[s] for s in layout.bias_slices]

    def gradient_views(self, layout, grad):
        """No views: each gradient block is computed in a new array, then stored."""
        return [None] * layout.n_layers, [None] * layout.n_layers

    def ones(self, m, like):
        """A vector of ``m`` ones in ``like``'s dtype and device, made once per ``m``."""
        key = (m, like.dtype)
        ones = self._ones.get(key)
        if ones is None:
            ones = self._ones[key] = self.backend.ones(m, like.dtype, like)
        return ones


class FreshRows:
    """:class:`BatchRows` without buffers: every buffer is None, and the lists
    record the arrays of the last forward pass."""

    transposed = None

    def __init__(self, ws, m):
        L = ws.n_layers
        self.Z, self.delta = [None] * L, [None] * L
        self.P = None
        self.inputs, self.activated = [None] * L, [None] * (L - 1)
        self.dropped, self.derivative = [None] * (L - 1), [None] * (L - 1)
        self.narrow = [False] * (L - 1)
        self.block_input, self.block_cache = None, BlockCache(reuse=False)
        self._ws, self._m = ws, m

    def ones_for(self, delta):
        """Ones for ``delta``'s rows (column sums as a product, as with NumPy)."""
        return self._ws.ones(self._m, delta)

    def block_error(self, delta, W):
        return None
