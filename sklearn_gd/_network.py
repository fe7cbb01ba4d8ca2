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
:class:`~sklearn_gd._batches.BatchSource`) and ``c = alpha / N`` are passed
in by the caller. Backpropagation:

.. math::

    \\Delta_L = w \\odot \\partial\\ell/\\partial Z_L,\\quad
    \\nabla W_l = A_{l-1}^T \\Delta_l + c W_l,\\quad
    \\nabla b_l = 1^T \\Delta_l,\\quad
    \\Delta_{l-1} = (\\Delta_l W_l^T) \\odot M_{l-1} \\odot f'(Z_{l-1}).

The math functions are deterministic: dropout masks come in as arguments.
"""

import numpy as np
import scipy.sparse as sp

from . import _kernels


#: Prediction feeds the rows through in chunks whose widest layer output
#: takes about this many bytes, so that a layer's output is still in cache
#: when the next layer reads it (faster than all rows at once on large
#: inputs), and memory is bounded by the chunk, not the data.
PREDICT_CHUNK_BYTES = 2**19


class Network:
    """A fully connected architecture: layout, hidden activation and loss.

    Parameters
    ----------
    layout : Layout
    activation : str
        Key of :data:`~sklearn_gd._activations.ACTIVATIONS`.
    loss : Loss
        Output link and loss, see :mod:`sklearn_gd._losses`.
    """

    def __init__(self, layout, activation, loss):
        self.layout = layout
        self.activation = activation
        self.loss = loss

    def workspace(self, n_rows, dtype, dropout=False):
        """Buffers for batches of at most ``n_rows`` rows, reused across batches."""
        return Workspace(self.layout, n_rows, dtype, dropout)

    def l2_term(self, c, ws, theta):
        """The :class:`L2Penalty` an optimizer step adds for ``theta``."""
        return L2Penalty(c, self.layout, ws.weight_scratch)

    def forward(self, theta, X, ws=None, masks=None):
        """Run the network; return ``(R, P)``: raw outputs and predictions.

        Without a workspace (prediction), each layer's output is a fresh
        array, so concurrent calls share nothing, and the rows go through in
        chunks (see ``PREDICT_CHUNK_BYTES``); with one (training), its buffers
        are filled and returned as views.
        """
        if ws is None:
            chunk = self._prediction_chunk_rows(theta.itemsize)
            if X.shape[0] > chunk:
                return self._forward_in_chunks(theta, X, chunk)
        R = self._raw_outputs(theta, X, ws, masks)
        out = np.empty_like(R) if ws is None else ws.rows(X.shape[0]).P
        return R, self.loss.link(R, out)

    def _prediction_chunk_rows(self, itemsize):
        widest = max(self.layout.layer_sizes[1:])
        block = self.layout.input_block
        if block is not None:  # its output, and the cosines of every feature and frequency
            widest = max(widest, block.n_outputs, block.n_features * block.n_frequencies)
        return max(64, PREDICT_CHUNK_BYTES // (widest * itemsize))

    def _forward_in_chunks(self, theta, X, chunk):
        R = P = None
        for start in range(0, X.shape[0], chunk):
            rows = slice(start, start + chunk)
            R_rows, P_rows = self.forward(theta, X[rows])
            if R is None:
                R = np.empty((X.shape[0], R_rows.shape[1]), R_rows.dtype)
                P = np.empty_like(R)
            R[rows], P[rows] = R_rows, P_rows
        return R, P

    def _raw_outputs(self, theta, X, ws=None, masks=None):
        """Hidden layers and the output layer's affine map: ``Z_L``.

        Each layer writes into the workspace's buffer, or into a fresh array
        without a workspace; with one, the workspace's row views also record
        each layer's input ``A_{l-1}`` for the backward pass.
        """
        if ws is None:
            weights, biases = self.layout.weights(theta), self.layout.biases(theta)
            rows = None
        else:
            weights, biases = ws.parameter_views(self.layout, theta)
            rows = ws.rows(X.shape[0])
        A = self._input_block_forward(theta, X, rows)
        last = self.layout.n_layers - 1
        for layer, (W, b) in enumerate(zip(weights, biases)):
            Z = _product(A, W, out=None if rows is None else rows.Z[layer])
            if layer == last:
                _kernels.bias_activation(Z, b, "identity")
                return Z
            A = _kernels.bias_activation(Z, b, self.activation)
            if masks is not None and masks[layer] is not None:
                A = np.multiply(Z, masks[layer], out=rows.dropped[layer])
            if rows is not None:
                rows.inputs[layer + 1] = A

    def _input_block_forward(self, theta, X, rows):
        """The first layer's input: ``X``, or the input block's output.

        With batch rows, records it as ``inputs[0]`` and keeps ``X`` and the
        block's intermediate values for the backward pass.
        """
        block = self.layout.input_block
        A = X
        if block is not None:
            cache = None if rows is None else rows.block_cache
            A = block.forward(self.layout.input_params(theta), X, cache)
            if rows is not None:
                rows.block_input = X
        if rows is not None:
            rows.inputs[0] = A
        return A

    def l2_penalty(self, theta, c):
        """``c / 2 * sum_l ||W_l||^2`` (biases excluded)."""
        return 0.5 * c * sum(float(np.dot(W.ravel(), W.ravel())) for W in self.layout.weights(theta))

    def evaluate(self, theta, X, Y, weights, c):
        """``(J, P)``: the objective of the weights on ``(X, Y)`` and the predictions.

        No workspace and no dropout, as for prediction: the validation
        objective of each epoch, data loss plus :meth:`l2_penalty`.
        """
        R, P = self.forward(theta, X)
        return float(self.loss.value(R, P, Y) @ weights) + self.l2_penalty(theta, c), P

    def constant_loss(self, bias, Y, weights):
        """``sum_i w_i loss_i`` of the output layer's ``bias`` alone as every raw output.

        The constant model a fresh network starts from: a reference the
        divergence guard measures the first batch's objective against.
        """
        R = np.broadcast_to(bias, Y.shape)
        P = self.loss.link(np.array(R), np.empty(Y.shape, bias.dtype))
        return float(self.loss.value(R, P, Y) @ weights)

    def objective(self, theta, X, Y, weights, c, ws):
        """``J`` on one batch, as :meth:`loss_and_grad` returns it, without the gradient.

        No dropout: the objective of the weights themselves. The penalty is
        :meth:`l2_penalty`'s (summed in another order than the gradient's,
        so equal to rounding).
        """
        data_loss, _, _ = self._data_loss(theta, X, Y, weights, ws)
        return data_loss + (self.l2_penalty(theta, c) if c else 0.0)

    def _data_loss(self, theta, X, Y, weights, ws, masks=None):
        """Forward pass and ``sum_i w_i loss_i``; also ``Delta_L`` and the batch's row views."""
        R = self._raw_outputs(theta, X, ws, masks)
        rows = ws.rows(X.shape[0])
        data_loss, delta = self.loss.loss_and_delta(R, Y, weights, rows.P, rows.delta[-1])
        return data_loss, delta, rows

    def loss_and_grad(self, theta, X, Y, weights, c, ws, grad, masks=None):
        """Objective on one batch and its gradient, written into ``grad``.

        Parameters
        ----------
        theta : ndarray of shape (n_params,)
        X : ndarray or sparse matrix of shape (m, n_features)
        Y : ndarray of shape (m, n_outputs)
        weights : ndarray of shape (m,)
            The batch's weights ``w_i`` of the objective.
        c : float
            L2 coefficient ``alpha / N``.
        ws : Workspace
        grad : ndarray of shape (n_params,)
            Output buffer.
        masks : list of (ndarray or None), optional
            One dropout mask per hidden layer, already scaled by ``1 / (1 - p)``.

        Returns
        -------
        data_loss : float
            ``sum_i w_i loss_i`` (without the penalty).
        penalty : float
            ``c / 2 * ||W||^2``.
        """
        data_loss, delta, rows = self._data_loss(theta, X, Y, weights, ws, masks)
        layout = self.layout
        W_list, _ = ws.parameter_views(layout, theta)
        gW_list, gb_list = ws.parameter_views(layout, grad)
        penalty = 0.0
        for layer in range(layout.n_layers - 1, -1, -1):
            W = W_list[layer]
            _transpose_dot(rows.inputs[layer], delta, out=gW_list[layer])
            np.dot(rows.ones, delta, out=gb_list[layer])  # column sums, by BLAS
            if c:
                penalty += _kernels.l2_gradient(gW_list[layer], W, c, ws.weight_scratch)
            if layer == 0:
                break
            delta = self._backprop_delta(delta, W, rows, masks, layer - 1)
        if layout.input_block is not None:
            layout.input_block.backward(
                layout.input_params(theta), rows.block_input, rows.block_cache,
                _block_error(rows, delta, W_list[0]), layout.input_params(grad),
            )
        return data_loss, penalty

    def _backprop_delta(self, delta, W, rows, masks, hidden):
        """``Delta_{l-1} = (Delta_l W_l^T) * M_{l-1} * f'(Z_{l-1})``.

        Through a layer of few outputs (a classifier's output layer), in one
        fused kernel where that is faster (see ``NARROW_MAX_OUTPUTS`` in
        :mod:`~sklearn_gd._kernels`).
        """
        previous = rows.delta[hidden]
        mask = None if masks is None else masks[hidden]
        A, scratch = rows.Z[hidden], rows.derivative[hidden]
        if rows.narrow[hidden]:
            return _kernels.narrow_backward(
                previous, delta, W, A, mask, self.activation, scratch, rows.transposed
            )
        np.dot(delta, W.T, out=previous)
        return _kernels.activation_backward(previous, A, mask, self.activation, scratch)


class L2Penalty:
    """The objective's L2 term ``c / 2 sum_l ||W_l||^2``, added by the step.

    Mini-batch training leaves it out of the backward pass and lets the
    optimizer step add its gradient ``c W`` to the weights' gradient: the
    fused Adam kernel does so in the pass over ``theta`` it makes anyway (one
    pass over the parameters less per batch; same floats as in the backward
    pass, see :func:`sklearn_gd._kernels.l2_gradient_blocks`).

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


class Workspace:
    """Preallocated per-layer buffers for batches of at most ``n_rows`` rows.

    ``Z[l]`` holds layer ``l``'s pre-activation, overwritten in place by its
    activation for hidden layers; ``dropped[l]`` the masked activation when
    dropout is on; ``P`` the predictions; ``delta[l]`` the backpropagated
    error; ``derivative[l]`` the activation derivative; ``transposed`` the
    scratch of :func:`~sklearn_gd._kernels.narrow_backward`.
    """

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


class BatchRows:
    """Views of a :class:`Workspace`'s buffers for a batch of ``m`` rows.

    The same attributes as the workspace (``Z``, ``P``, ``delta``,
    ``derivative``, ``dropped``, ``ones``), cut to ``m`` rows (``transposed``
    whole); ``narrow``, whether the error into each hidden layer goes through
    :func:`~sklearn_gd._kernels.narrow_backward` (decided once per ``m``); and
    ``inputs``: each layer's input ``A_{l-1}`` (``A_0 = X``) as the last
    forward pass set it, which the weight gradients read.
    """

    def __init__(self, ws, m):
        self.Z = [Z[:m] for Z in ws.Z]
        self.P = ws.P[:m]
        self.inputs = [None] * len(ws.Z)
        self.block_input, self.block_cache = None, {}  # the input block's, see Network
        self.dropped = None if ws.dropped is None else [D[:m] for D in ws.dropped]
        self.ones = ws.ones[:m]
        self.delta = [D[:m] for D in ws.delta]
        self.derivative = [D[:m] for D in ws.derivative]
        self.transposed = ws.transposed
        fan_outs = [D.shape[1] for D in ws.delta]
        self.narrow = [  # per hidden layer: backpropagate into it by narrow_backward
            _kernels.uses_narrow_backward(m * a, b) for a, b in zip(fan_outs, fan_outs[1:])
        ]


def _block_error(rows, delta, W):
    """``dJ/de = Delta_1 W_1^T`` into the batch rows' buffer, kept for the next batch."""
    error = rows.block_cache.get("error")
    if error is None:
        error = rows.block_cache["error"] = np.empty((delta.shape[0], W.shape[0]), delta.dtype)
    return np.dot(delta, W.T, out=error)


def _product(A, W, out=None):
    """``out = A W`` (``A`` dense or CSR sparse); a new C-ordered array when ``out`` is None."""
    if out is None:
        return np.ascontiguousarray(A @ W)
    if _is_sparse(A):
        out[...] = A @ W
    else:
        np.dot(A, W, out=out)
    return out


def _transpose_dot(A, delta, out):
    """``out = A^T delta`` (``A`` dense or CSR sparse)."""
    if _is_sparse(A):
        out[...] = A.T @ delta
    else:
        np.dot(A.T, delta, out=out)
    return out


def _is_sparse(A):
    """``sp.issparse``, answered without its ABC check for ndarrays (most calls)."""
    return type(A) is not np.ndarray and sp.issparse(A)
