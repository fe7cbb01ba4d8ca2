"""Mini-batches for the training loop: row gathering, weights, dropout masks, input noise.

Written once for every array library, through the run's backend
(:mod:`sklearn_gd._engine._backend`): NumPy reuses buffers allocated once per fit and
gathers each shuffled batch into them; other libraries allocate, and gather
an epoch's rows in one pass (see :class:`BatchSource`). The random draws
(shuffling, masks, noise) come from the estimator's one generator.
"""

import numpy as np
import scipy.sparse as sp

from .._engine._backend import NUMPY


def resolve_batch_size(batch_size, n_samples):
    """``"auto"`` -> ``min(200, n)``, ``None`` -> ``n`` (full batch), int -> clipped."""
    if batch_size is None:
        return n_samples
    if batch_size == "auto":
        return min(200, n_samples)
    return max(1, min(int(batch_size), n_samples))


def steps_per_epoch(n_samples, batch_size):
    """``ceil(n / B)``: the mini-batches (optimizer steps) of an epoch of ``n`` rows."""
    return -(-n_samples // batch_size)


def dropout_rates(dropout, n_hidden):
    """One dropout rate per hidden layer from a float or a sequence."""
    if np.ndim(dropout) == 0:
        return [float(dropout)] * n_hidden
    return [float(p) for p in dropout]


class BatchSource:
    """Yields ``(X_b, Y_b, w_b)`` mini-batches.

    ``w_b`` are the batch's objective weights ``w_i = s_i n / (m S)`` (``n``
    rows of total weight ``S``; ``1 / m`` without sample weights), which make
    the batch gradient an unbiased estimate of the full objective's whatever
    the weights (``w_i = s_i / S`` at full batch); ``None`` for a batch whose
    weights are all zero. Targets may be stored compactly (boolean indicators
    for classifiers); each batch of them is converted into the float dtype.

    The shuffling order is drawn by the model's NumPy generator, so a fixed
    ``random_state`` gives the same batches on every library. NumPy gathers
    each batch's rows into buffers reused for every batch; a backend that
    gathers per epoch (a GPU prefers one gather to one per batch) takes the
    epoch's rows in that order in one pass, a copy of the data on the
    device, and each batch is a slice of them.

    Parameters
    ----------
    X, Y, sw : arrays
        Features, 2-D targets and sample weights (or None), in the
        backend's library.
    batch_size : int
    shuffle : bool
    rng : numpy.random.Generator
    dtype : dtype
        The float dtype of the batches' targets and weights.
    ops : backend, default=NumPy's
    """

    def __init__(self, X, Y, sw, batch_size, shuffle, rng, dtype, ops=NUMPY):
        self.X, self.Y, self.sw = X, Y, sw
        self.ops = ops
        self.n = X.shape[0]
        self.batch_size = batch_size
        self.shuffle = shuffle and batch_size < self.n
        self.rng = rng
        self.dtype = dtype
        self.rows_per_weight = 1.0 if sw is None else self.n / ops.total(sw)
        self.convert_Y = Y.dtype != dtype
        k = Y.shape[1]
        buffer = ops.buffer
        self.Y_buf = buffer((batch_size, k), dtype) if self.shuffle or self.convert_Y else None
        self.w_buf = buffer((batch_size,), dtype)
        self._uniform = {}
        self.X_buf = self.Y_raw_buf = None
        if self.shuffle and not ops.gathers_per_epoch:
            self.X_buf = None if sp.issparse(X) else buffer((batch_size, X.shape[1]), X.dtype)
            self.Y_raw_buf = buffer((batch_size, k), Y.dtype) if self.convert_Y else None

    def __iter__(self):
        ops = self.ops
        X, Y, sw = self.X, self.Y, self.sw
        order = self.rng.permutation(self.n) if self.shuffle else None
        if order is not None and ops.gathers_per_epoch:
            X, Y, sw = (None if a is None else ops.gather(a, order) for a in (X, Y, sw))
            order = None
        for start in range(0, self.n, self.batch_size):
            stop = min(start + self.batch_size, self.n)
            m = stop - start
            if order is None:
                rows = slice(start, stop)
                Xb = ops.gather(X, rows)
                Yb = ops.astype(ops.gather(Y, rows), self.dtype, out=_cut(self.Y_buf, m))
            else:
                rows = order[start:stop]
                Xb = ops.gather(X, rows, out=_cut(self.X_buf, m))
                Yb = ops.gather(Y, rows, out=_cut(self.Y_buf, m),
                                scratch=_cut(self.Y_raw_buf, m))
            yield Xb, Yb, self._weights(sw, rows, m)

    def _weights(self, sw, rows, m):
        ops = self.ops
        if sw is None:
            w = self._uniform.get(m)
            if w is None:
                w = self._uniform[m] = ops.full(m, 1.0 / m, self.dtype, like=self.X)
            return w
        w = ops.gather(sw, rows, out=_cut(self.w_buf, m))
        if not ops.any_nonzero(w):
            return None  # nothing to learn from: all rows have zero weight
        return ops.scale_own(w, self.rows_per_weight / m)


def _cut(buffer, m):
    """A buffer's first ``m`` rows (None without a buffer)."""
    return None if buffer is None else buffer[:m]


class Regularizers:
    """Dropout masks and input noise, drawn by the backend's generator.

    On NumPy, from the estimator's generator itself, into buffers reused for
    every batch; off NumPy, on the device by its library's generator
    (:class:`~sklearn_gd._engine._array_api.Generator`), seeded from the estimator's.
    """

    def __init__(self, rates, input_noise, batch_size, hidden_sizes, dtype, rng, ops=NUMPY,
                 device=None, noisy_columns=None):
        self.rates = rates
        self.input_noise = float(input_noise)
        self.noisy_columns = noisy_columns
        self.hidden_sizes = hidden_sizes
        self.dtype = dtype
        self.ops = ops
        self.active = any(p > 0 for p in rates)
        self.generator = None
        if self.active or self.input_noise:
            self.generator = ops.generator(rng, device)
        self.mask_bufs = [
            ops.buffer((batch_size, k), dtype) if p > 0 else None
            for p, k in zip(rates, hidden_sizes)
        ]
        self.noise_buf = None

    def masks(self, m):
        """One inverted dropout mask per hidden layer (None where its rate is 0):
        ``1 / (1 - p)`` with probability ``1 - p``, else 0."""
        if not self.active:
            return None
        return [
            None if p == 0 else self.ops.dropout_mask(
                self.generator.uniform((m, k), self.dtype, out=_cut(buf, m)), p)
            for p, k, buf in zip(self.rates, self.hidden_sizes, self.mask_bufs)
        ]

    def noisy(self, Xb):
        """``Xb + sigma * N(0, 1)``; on sparse input only stored entries get noise,
        with ``noisy_columns`` set only the first that many columns (a table's
        numbers: its flags and category codes are not quantities)."""
        if self.input_noise == 0:
            return Xb
        sigma = self.input_noise
        if self.noisy_columns is not None and self.noisy_columns < Xb.shape[1]:
            return self.ops.concat([self._noisy_dense(Xb[:, :self.noisy_columns], sigma),
                                    Xb[:, self.noisy_columns:]], axis=1)
        if sp.issparse(Xb):
            Xb = Xb.copy()
            Xb.data += sigma * self.generator.normal(Xb.data.shape, self.dtype)
            return Xb
        return self._noisy_dense(Xb, sigma)

    def _noisy_dense(self, Xb, sigma):
        m = Xb.shape[0]
        if self.noise_buf is None or self.noise_buf.shape[0] < m:
            self.noise_buf = self.ops.buffer(tuple(Xb.shape), self.dtype)
        noise = self.generator.normal(tuple(Xb.shape), self.dtype, out=_cut(self.noise_buf, m))
        noise = self.ops.scale_own(noise, sigma)
        noise += Xb
        return noise
