"""The policy of a run: what differs by array library, chosen once.

The network, its input block and the training loop are written once (see
:mod:`sklearn_gd._engine._network`). Each elementwise or matrix operation they make
goes through a backend, with the buffer it may write into:

- :class:`NumpyBackend` writes into the preallocated buffer it is given
  (NumPy's ``out=``), so that a training step allocates nothing, and runs
  the active kernel table of :mod:`sklearn_gd._engine._kernels` (the compiled
  kernels when they are built, their NumPy reference otherwise);
- :class:`ArrayApiBackend` computes with the Array API standard's functions,
  which have no ``out=``: it ignores the buffer and returns a new array
  (GPU libraries cache their allocations themselves).

Every operation returns its result; a caller never assumes that the buffer
was written. The buffers themselves come from the workspace the backend
makes (:meth:`NumpyBackend.workspace`); a workspace without buffers
(:class:`~sklearn_gd._engine._network.FreshWorkspace`) serves prediction, so that
concurrent predictions share nothing.

:func:`backend_for` picks the backend of an array: the only place where the
engine asks which library an array belongs to.
"""

import numpy as np
import scipy.sparse as sp

from . import _kernels
from ._array_api import Generator, device_of, is_numpy, namespace, numpy_dtype, to_device, to_numpy
from ._elementwise import ArrayApiElementwise, NumpyElementwise
from ._values import max_abs

#: NumPy prediction feeds the rows through in chunks whose widest layer output
#: takes about this many bytes, so that a layer's output is still in cache
#: when the next layer reads it (faster than all rows at once on large
#: inputs), and memory is bounded by the chunk, not the data.
PREDICT_CHUNK_BYTES = 2**19

#: Off NumPy, prediction feeds at most this many rows through at once: large
#: batches keep a GPU busy, and the bound keeps the input block's (features x
#: rows x frequencies) arrays within memory.
PREDICT_CHUNK_ROWS = 65536


def backend_for(like):
    """The backend of the array ``like`` (NumPy's for None, NumPy arrays and sparse input)."""
    if like is None or is_numpy(like) or sp.issparse(like):
        return NUMPY
    return ArrayApiBackend(namespace(like))


def on_numpy(array):
    """Whether ``array`` (parameters, fitted statistics) computes on the NumPy backend."""
    return backend_for(array) is NUMPY


def backend_in(where):
    """The backend of arrays in the library and on the device ``where``, an
    ``(xp, device)`` pair (NumPy's for None)."""
    return NUMPY if where is None else ArrayApiBackend(where[0])


class NumpyBackend(NumpyElementwise):
    """NumPy: operations write into the buffers given; the active kernel table runs."""

    name = "numpy"
    xp = np

    # ---- buffers
    def workspace(self, layout, n_rows, dtype, dropout):
        """Buffers for batches of at most ``n_rows`` rows, reused across batches."""
        from ._network import Workspace

        return Workspace(layout, n_rows, dtype, dropout)

    @staticmethod
    def buffer(shape, dtype):
        return np.empty(shape, dtype)

    @staticmethod
    def ones(n, dtype, like):
        return np.ones(n, dtype=dtype)

    def prediction_chunk_rows(self, widest, itemsize):
        return max(64, PREDICT_CHUNK_BYTES // (widest * itemsize))

    # ---- batches
    #: Whether a shuffled epoch gathers all its rows at once (else each batch's)
    gathers_per_epoch = False

    @staticmethod
    def gather(A, rows, out=None, scratch=None):
        """Rows ``rows`` (a slice or a NumPy index array) of ``A``: a view for a
        slice without ``out``; with ``out``, copied into it, converted to its
        dtype (``scratch``, of ``A``'s dtype and ``out``'s shape, serves the
        conversion of an index array's rows)."""
        if isinstance(rows, slice):
            if out is None:
                return A[rows]
            out[...] = A[rows]
            return out
        if out is None:
            return A[rows]
        if A.ndim == 1:
            return np.take(A, rows, out=out)
        return _kernels.take_rows(A, rows, out, scratch)

    @staticmethod
    def astype(a, dtype, out=None):
        """``a`` as ``dtype``: ``a`` itself when it is, else converted into ``out``."""
        if a.dtype == dtype:
            return a
        if out is None:
            return a.astype(dtype)
        np.copyto(out, a)
        return out

    @staticmethod
    def full(n, value, dtype, like):
        return np.full(n, value, dtype=dtype)

    @staticmethod
    def total(a):
        """The sum of all entries, as a float."""
        return float(a.sum())

    @staticmethod
    def any_nonzero(a):
        return bool(a.any())

    @staticmethod
    def scale_own(a, factor):
        """``a * factor``, in place: ``a`` is the caller's own buffer."""
        a *= factor
        return a

    @staticmethod
    def generator(rng, device):
        """The draws of masks and noise: the model's generator itself, on the host."""
        return Generator(None, None, rng=rng)

    @staticmethod
    def dropout_mask(u, p):
        """``1 / (1 - p)`` where the uniform draw ``u >= p``, else 0 (in ``u``)."""
        np.greater_equal(u, p, out=u, casting="unsafe")
        u *= 1.0 / (1.0 - p)
        return u

    # ---- update rules and the trainer's host exchanges
    #: Whether the batches' objectives stay where they are computed until the
    #: epoch ends (a GPU would otherwise wait for each one to be read back)
    defers_reads = False

    @staticmethod
    def like(host_array, theta):
        """A NumPy array in ``theta``'s library and on its device (NumPy: itself)."""
        return host_array

    @staticmethod
    def from_host(vector, theta):
        """A NumPy float64 vector (SciPy's) in ``theta``'s dtype, library and device."""
        return vector.astype(theta.dtype)

    @staticmethod
    def adam_direction(g, u, w, beta_1, beta_2, eps, scale):
        return _kernels.adam_direction(g, u, w, beta_1, beta_2, eps, scale)

    @staticmethod
    def adam(theta, g, u, w, beta_1, beta_2, eps, scale, c=0.0, weight_bounds=None,
             scratch=None):
        return _kernels.adam(theta, g, u, w, beta_1, beta_2, eps, scale, c, weight_bounds,
                             scratch)

    # ---- array manipulation
    @staticmethod
    def reshape(a, shape):
        return a.reshape(shape)

    @staticmethod
    def permute(a, axes):
        return a.transpose(axes)

    @staticmethod
    def concat(arrays, axis, out=None):
        return np.concatenate(arrays, axis=axis, out=out)

    @staticmethod
    def flat(a):
        return a.reshape(-1)

    @staticmethod
    def row_slice(X, start, stop):
        """Rows ``start:stop`` of ``X`` (dense or sparse)."""
        return X[start:stop]

    # ---- arithmetic with an output buffer
    @staticmethod
    def dot(A, W, out=None):
        """``A W`` (``A`` dense or CSR sparse); a new C-ordered array when ``out`` is None."""
        if out is None:
            return np.ascontiguousarray(A @ W)
        if _is_sparse(A):
            out[...] = A @ W
        else:
            np.dot(A, W, out=out)
        return out

    @staticmethod
    def transpose_dot(A, delta, out=None):
        """``A^T delta`` (``A`` dense or CSR sparse)."""
        if out is None:
            return np.ascontiguousarray(A.T @ delta)
        if _is_sparse(A):
            out[...] = A.T @ delta
        else:
            np.dot(A.T, delta, out=out)
        return out

    @staticmethod
    def matmul(a, b, out=None):
        return np.matmul(a, b, out=out)

    @staticmethod
    def sum(a, axis, out=None):
        return np.sum(a, axis=axis, out=out)

    @staticmethod
    def one_hot(codes, n_codes, dtype):
        """``O[m, i] = 1`` where ``codes[m] == i`` (``codes`` integers held in floats)."""
        return np.equal(codes[:, None], np.arange(n_codes, dtype=codes.dtype)).astype(dtype)

    @staticmethod
    def column_dots(G, E, out=None):
        """``sum_m G_mi E_mi`` per column ``i``."""
        return np.einsum("mi,mi->i", G, E, out=out)

    @staticmethod
    def feature_dots(D, X, out=None):
        """``sum_m D_jmr X_mj`` per feature ``j`` and frequency ``r``."""
        return np.einsum("jmr,mj->jr", D, X, out=out)

    @staticmethod
    def max_abs(X):
        """The largest absolute value of ``X`` (dense or sparse), as a float."""
        return max_abs(X)

    # ---- the kernel table (the compiled kernels or their NumPy reference)
    @staticmethod
    def bias_activation(Z, b, activation):
        return _kernels.bias_activation(Z, b, activation)

    @staticmethod
    def activation_backward(delta, A, mask, activation, scratch):
        return _kernels.activation_backward(delta, A, mask, activation, scratch)

    @staticmethod
    def narrow_backward(previous, delta, W, A, mask, activation, scratch, transposed):
        return _kernels.narrow_backward(previous, delta, W, A, mask, activation, scratch,
                                        transposed)

    @staticmethod
    def uses_narrow_backward(n_entries, n_outputs):
        return _kernels.uses_narrow_backward(n_entries, n_outputs)

    def l2_term(self, c, layout, theta, scratch=None):
        """The :class:`~._network.L2Penalty` of ``theta``; ``scratch`` (as long as the
        largest weight matrix) is made when not lent."""
        from ._network import L2Penalty

        if scratch is None:
            scratch = np.empty(max(a * b for a, b in layout.shapes), theta.dtype)
        return L2Penalty(c, layout, scratch)

    # ---- losses
    def link(self, loss, R, out=None):
        return loss.link(R, np.empty_like(R) if out is None else out, self)

    def loss_and_delta(self, loss, R, Y, weights, P_out, delta_out):
        """``(sum_i w_i loss_i, Delta_L)``, the loss a float."""
        if P_out is None:
            P_out, delta_out = np.empty_like(R), np.empty_like(R)
        return loss.loss_and_delta(R, Y, weights, P_out, delta_out, self)

    def weighted_loss(self, loss, R, P, Y, weights):
        return self.weighted_total(loss.value(R, P, Y, self), weights)

    @staticmethod
    def softmax(R, out):
        return _kernels.softmax(R, np.empty_like(R) if out is None else out)

    @staticmethod
    def softmax_log_loss(R, Y, weights, P, delta):
        """Softmax, weighted log-loss and its delta in one pass: ``(loss, delta)``."""
        return _kernels.softmax_log_loss(R, Y, weights, P, delta), delta

    @staticmethod
    def constant_outputs(bias, Y):
        """``bias`` as every row of an array of ``Y``'s shape."""
        return np.array(np.broadcast_to(bias, Y.shape))

    # ---- outputs (the estimators' predictions)
    @staticmethod
    def open_unit_interval(P):
        """Probabilities kept inside (0, 1), where they truly are: the logistic
        rounds to exactly 1.0 beyond logits of about 37, and the nearest float
        below one is closer to the true value than 1.0 is (in place)."""
        info = _FINFO[P.dtype.type]
        return np.clip(P, info.tiny, 1 - info.epsneg, out=P)

    @staticmethod
    def log(a):
        """``log(a)``, ``-inf`` where ``a`` is 0, without a warning."""
        with np.errstate(divide="ignore"):
            return np.log(a)

    @staticmethod
    def argmax(a, axis):
        return np.argmax(a, axis=axis)

    @staticmethod
    def all(a, axis):
        return np.all(a, axis=axis)

    @staticmethod
    def positive(a):
        """1 where ``a > 0``, else 0, as integers."""
        return (a > 0).astype(int)

    @staticmethod
    def take_labels(classes, index):
        return classes[index]

    @staticmethod
    def label_matrix(labels, sparse):
        """A multilabel prediction, sparse (CSR) when the model was fitted on one."""
        return sp.csr_matrix(labels) if sparse else labels

    @staticmethod
    def weighted_mean(values, weights, dtype):
        return np.average(values, weights=weights)


class ArrayApiBackend(ArrayApiElementwise):
    """Any library of the Array API standard: every operation returns a new array.

    The same methods as :class:`NumpyBackend` (not a subclass: a method it
    lacked would otherwise run NumPy's on another library's arrays), less
    ``narrow_backward``, which its rows never ask for.

    Parameters
    ----------
    xp : namespace
        The Array API namespace of the data and the parameters.
    """

    name = "array-api"

    def __init__(self, xp):
        super().__init__(xp)
        self.kernels = _kernels.ReferenceKernels(self, "array-api")

    def __eq__(self, other):
        return type(other) is ArrayApiBackend and other.xp is self.xp

    def __hash__(self):
        return hash(self.xp)

    def workspace(self, layout, n_rows, dtype, dropout):
        """No buffers: each pass allocates (see the module docstring)."""
        from ._network import FreshWorkspace

        return FreshWorkspace(self, layout)

    def buffer(self, shape, dtype):
        return None

    def ones(self, n, dtype, like):
        return self.xp.ones((n,), dtype=dtype, device=device_of(like))

    def prediction_chunk_rows(self, widest, itemsize):
        return PREDICT_CHUNK_ROWS

    gathers_per_epoch = True

    def gather(self, A, rows, out=None, scratch=None):
        """Rows ``rows`` of ``A``: a view for a slice, a new array for an index array."""
        if isinstance(rows, slice):
            return A[rows, ...]
        xp = self.xp
        return xp.take(A, xp.asarray(rows, device=device_of(A)), axis=0)

    def astype(self, a, dtype, out=None):
        return self.xp.astype(a, dtype)

    def full(self, n, value, dtype, like):
        return self.xp.full((n,), value, dtype=dtype, device=device_of(like))

    def total(self, a):
        return float(self.xp.sum(a))

    def any_nonzero(self, a):
        return bool(self.xp.any(a != 0))

    @staticmethod
    def scale_own(a, factor):
        """``a * factor``, a new array (``a`` may be a view of the data)."""
        return a * factor

    def generator(self, rng, device):
        """Draws on the device by its library's generator, seeded from the model's."""
        return Generator(self.xp, device, rng.integers(2**63 - 1))

    def dropout_mask(self, u, p):
        return self.xp.astype(u >= p, u.dtype) * (1.0 / (1.0 - p))

    defers_reads = True

    def like(self, host_array, theta):
        return to_device(host_array, self.xp, device_of(theta))

    def from_host(self, vector, theta):
        return self.xp.asarray(vector.astype(numpy_dtype(theta.dtype)), device=device_of(theta))

    # ---- the kernel table: the reference, in this library
    def adam_direction(self, g, u, w, beta_1, beta_2, eps, scale):
        return self.kernels.adam_direction(g, u, w, beta_1, beta_2, eps, scale)

    def adam(self, theta, g, u, w, beta_1, beta_2, eps, scale, c=0.0, weight_bounds=None,
             scratch=None):
        """The reference Adam step; the L2 term is added to ``g`` before, off NumPy
        (:class:`~._network.MaskedL2Penalty`), so ``c`` is 0 here."""
        return self.kernels.adam(theta, g, u, w, beta_1, beta_2, eps, scale, c, weight_bounds,
                                 scratch)

    def reshape(self, a, shape):
        return self.xp.reshape(a, shape)

    def permute(self, a, axes):
        return self.xp.permute_dims(a, axes)

    def concat(self, arrays, axis, out=None):
        return self.xp.concat(arrays, axis=axis)

    def flat(self, a):
        return self.xp.reshape(a, (-1,))

    @staticmethod
    def row_slice(X, start, stop):
        return X[start:stop, ...]

    @staticmethod
    def dot(A, W, out=None):
        return A @ W

    @staticmethod
    def transpose_dot(A, delta, out=None):
        return A.T @ delta

    @staticmethod
    def matmul(a, b, out=None):
        return a @ b

    def sum(self, a, axis, out=None):
        return self.xp.sum(a, axis=axis)

    def one_hot(self, codes, n_codes, dtype):
        xp = self.xp
        levels = xp.arange(n_codes, dtype=codes.dtype, device=device_of(codes))
        return xp.astype(codes[:, None] == levels[None, :], dtype)

    def column_dots(self, G, E, out=None):
        return self.xp.sum(G * E, axis=0)

    def feature_dots(self, D, X, out=None):
        return self.xp.sum(D * self.xp.permute_dims(X, (1, 0))[:, :, None], axis=1)

    def max_abs(self, X):
        return float(self.xp.max(self.xp.abs(X))) if X.shape[0] else 0.0

    def bias_activation(self, Z, b, activation):
        return self.kernels.bias_activation(Z, b, activation)

    def activation_backward(self, delta, A, mask, activation, scratch):
        return self.kernels.activation_backward(delta, A, mask, activation, scratch)

    @staticmethod
    def uses_narrow_backward(n_entries, n_outputs):
        return False

    def l2_term(self, c, layout, theta, scratch=None):
        """The :class:`~sklearn_gd._engine._network.MaskedL2Penalty` of ``theta``."""
        from ._network import MaskedL2Penalty

        return MaskedL2Penalty(c, layout, theta)

    def link(self, loss, R, out=None):
        return loss.link(R, None, self)

    def loss_and_delta(self, loss, R, Y, weights, P_out, delta_out):
        """``(sum_i w_i loss_i, Delta_L)``, the loss a 0-d array on the device
        (reading it back would wait for it)."""
        return loss.loss_and_delta(R, Y, weights, None, None, self)

    def weighted_loss(self, loss, R, P, Y, weights):
        return float(self.weighted_total(loss.value(R, P, Y, self), weights))

    def softmax(self, R, out=None):
        return self.kernels.softmax(R, None)

    def softmax_log_loss(self, R, Y, weights, P_out=None, delta_out=None):
        """``(loss, delta)`` of the reference softmax log-loss, the loss a 0-d array."""
        return self.kernels.softmax_log_loss_and_delta(R, Y, weights, None, None)

    def constant_outputs(self, bias, Y):
        return self.xp.zeros_like(Y) + bias

    def open_unit_interval(self, P):
        info = self.xp.finfo(P.dtype)
        return self.xp.clip(P, info.smallest_normal, 1.0 - info.eps / 2)

    def log(self, a):
        return self.xp.log(a)

    def argmax(self, a, axis):
        return self.xp.argmax(a, axis=axis)

    def all(self, a, axis):
        return self.xp.all(a, axis=axis)

    def positive(self, a):
        return self.xp.astype(a > 0, self.xp.int64)

    def take_labels(self, classes, index):
        """Labels there; labels this library cannot hold (strings) come back as
        a NumPy array."""
        if classes.dtype.kind not in "biuf":
            return classes[to_numpy(index)]
        return self.xp.take(to_device(classes, self.xp, device_of(index)), index)

    @staticmethod
    def label_matrix(labels, sparse):
        """A multilabel prediction: a dense indicator array in this library."""
        return labels

    def weighted_mean(self, values, weights, dtype):
        values = self.xp.astype(values, dtype)
        if weights is None:
            return float(self.xp.mean(values))
        return float(self.xp.sum(values * weights) / self.xp.sum(weights))


def _is_sparse(A):
    """``sp.issparse``, answered without its ABC check for ndarrays (most calls)."""
    return type(A) is not np.ndarray and sp.issparse(A)


_FINFO = {t: np.finfo(t) for t in (np.float32, np.float64)}

NUMPY = NumpyBackend()
