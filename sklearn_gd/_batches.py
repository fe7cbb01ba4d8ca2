"""Mini-batches for the training loop: row gathering, weights, dropout masks, input noise.

Everything here reuses buffers allocated once per fit; the random draws
(shuffling, masks, noise) come from the estimator's one generator.
"""

import numpy as np
import scipy.sparse as sp

from . import _kernels
from ._array_api import Generator, device_of, namespace


def resolve_batch_size(batch_size, n_samples):
    """``"auto"`` -> ``min(200, n)``, ``None`` -> ``n`` (full batch), int -> clipped."""
    if batch_size is None:
        return n_samples
    if batch_size == "auto":
        return min(200, n_samples)
    return max(1, min(int(batch_size), n_samples))


def dropout_rates(dropout, n_hidden):
    """One dropout rate per hidden layer from a float or a sequence."""
    if np.ndim(dropout) == 0:
        return [float(dropout)] * n_hidden
    return [float(p) for p in dropout]


class BatchSource:
    """Yields ``(X_b, Y_b, w_b)`` mini-batches, reusing buffers for every batch.

    ``w_b`` are the batch's objective weights ``w_i = s_i n / (m S)`` (``n``
    rows of total weight ``S``; ``1 / m`` without sample weights), which make
    the batch gradient an unbiased estimate of the full objective's whatever
    the weights (``w_i = s_i / S`` at full batch); ``None`` for a batch whose
    weights are all zero. Targets may be stored compactly (boolean indicators
    for classifiers); each batch of them is converted into a float buffer.
    """

    def __init__(self, X, Y, sw, batch_size, shuffle, rng, dtype):
        self.X, self.Y, self.sw = X, Y, sw
        self.n = X.shape[0]
        self.batch_size = batch_size
        self.shuffle = shuffle and batch_size < self.n
        self.rng = rng
        self.rows_per_weight = 1.0 if sw is None else self.n / float(sw.sum())
        self.convert_Y = Y.dtype != dtype
        k = Y.shape[1]
        self.Y_buf = np.empty((batch_size, k), dtype) if self.shuffle or self.convert_Y else None
        self.w_buf = np.empty(batch_size, dtype)
        self._uniform_rows = None
        if self.shuffle:
            self.X_buf = None if sp.issparse(X) else np.empty((batch_size, X.shape[1]), X.dtype)
            self.Y_raw_buf = np.empty((batch_size, k), Y.dtype) if self.convert_Y else None

    def __iter__(self):
        order = self.rng.permutation(self.n) if self.shuffle else None
        for start in range(0, self.n, self.batch_size):
            stop = min(start + self.batch_size, self.n)
            if order is None:
                rows = slice(start, stop)
                Xb, Yb = self.X[rows], self._as_float(self.Y[rows])
            else:
                rows = order[start:stop]
                Xb, Yb = self._gather(rows)
            yield Xb, Yb, self._weights(rows, stop - start)

    def _gather(self, idx):
        m = idx.shape[0]
        if self.X_buf is None:
            Xb = self.X[idx]
        else:
            Xb = _kernels.take_rows(self.X, idx, self.X_buf[:m], None)
        raw = None if self.Y_raw_buf is None else self.Y_raw_buf[:m]
        return Xb, _kernels.take_rows(self.Y, idx, self.Y_buf[:m], raw)

    def _weights(self, rows, m):
        w = self.w_buf[:m]
        if self.sw is None:
            if self._uniform_rows != m:  # refill only when the batch size changes
                w.fill(1.0 / m)
                self._uniform_rows = m
            return w
        if isinstance(rows, slice):
            w[...] = self.sw[rows]
        else:
            np.take(self.sw, rows, out=w)
        if not w.any():
            return None  # nothing to learn from: all rows have zero weight
        w *= self.rows_per_weight / m
        return w

    def _as_float(self, Yb):
        if not self.convert_Y:
            return Yb
        out = self.Y_buf[: Yb.shape[0]]
        np.copyto(out, Yb)
        return out


class Regularizers:
    """Draws dropout masks and input noise from the estimator's generator."""

    def __init__(self, rates, input_noise, batch_size, hidden_sizes, dtype, rng):
        self.rates = rates
        self.input_noise = float(input_noise)
        self.rng = rng
        self.dtype = dtype
        self.active = any(p > 0 for p in rates)
        self.mask_bufs = [
            np.empty((batch_size, k), dtype) if p > 0 else None
            for p, k in zip(rates, hidden_sizes)
        ]
        self.noise_buf = None

    def masks(self, m):
        if not self.active:
            return None
        out = []
        for p, buf in zip(self.rates, self.mask_bufs):
            if buf is None:
                out.append(None)
                continue
            mask = self.rng.random(out=buf[:m], dtype=self.dtype)
            np.greater_equal(mask, p, out=mask, casting="unsafe")
            mask *= 1.0 / (1.0 - p)
            out.append(mask)
        return out

    def noisy(self, Xb):
        """``Xb + sigma * N(0, 1)``; on sparse input only stored entries get noise."""
        if self.input_noise == 0:
            return Xb
        sigma = self.input_noise
        if sp.issparse(Xb):
            Xb = Xb.copy()
            Xb.data += sigma * self.rng.standard_normal(Xb.data.shape, dtype=self.dtype)
            return Xb
        if self.noise_buf is None or self.noise_buf.shape[0] < Xb.shape[0]:
            self.noise_buf = np.empty(Xb.shape, self.dtype)
        noise = self.rng.standard_normal(out=self.noise_buf[: Xb.shape[0]], dtype=self.dtype)
        noise *= sigma
        noise += Xb
        return noise


class PortableBatchSource:
    """:class:`BatchSource` for arrays of any library: the same batches and weights.

    The shuffling order is drawn by the model's NumPy generator (so a fixed
    ``random_state`` gives the NumPy engine's batches) and copied to the
    device once per epoch, where the epoch's rows are gathered in that order
    in one pass (a copy of the data, on the device); each batch is then a
    slice of them: one gather per epoch rather than one per batch, as a GPU
    prefers. ``Y`` may be stored compactly (boolean indicators) and is
    converted per batch.
    """

    def __init__(self, X, Y, sw, batch_size, shuffle, rng, dtype):
        self.X, self.Y, self.sw = X, Y, sw
        self.xp, self.device = namespace(X), device_of(X)
        self.n = X.shape[0]
        self.batch_size = batch_size
        self.shuffle = shuffle and batch_size < self.n
        self.rng = rng
        self.dtype = dtype
        self.rows_per_weight = 1.0 if sw is None else self.n / float(self.xp.sum(sw))
        self._uniform = {}

    def __iter__(self):
        xp = self.xp
        X, Y, sw = self.X, self.Y, self.sw
        if self.shuffle:
            order = xp.asarray(self.rng.permutation(self.n), device=self.device)
            X, Y = xp.take(X, order, axis=0), xp.take(Y, order, axis=0)
            sw = None if sw is None else xp.take(sw, order)
        for start in range(0, self.n, self.batch_size):
            stop = min(start + self.batch_size, self.n)
            rows = slice(start, stop)
            yield X[rows, ...], xp.astype(Y[rows, ...], self.dtype), self._weights(sw, rows)

    def _weights(self, sw, rows):
        xp = self.xp
        m = rows.stop - rows.start
        if sw is None:
            if m not in self._uniform:
                self._uniform[m] = xp.full((m,), 1.0 / m, dtype=self.dtype, device=self.device)
            return self._uniform[m]
        w = sw[rows]
        if not bool(xp.any(w != 0)):
            return None  # nothing to learn from: all rows have zero weight
        return w * (self.rows_per_weight / m)


class PortableRegularizers:
    """:class:`Regularizers` for arrays of any library: dropout masks and input
    noise drawn on the device by its library's generator
    (:class:`~sklearn_gd._array_api.Generator`), seeded from the model's."""

    def __init__(self, rates, input_noise, batch_size, hidden_sizes, dtype, rng, xp, device):
        self.rates = rates
        self.input_noise = float(input_noise)
        self.hidden_sizes = hidden_sizes
        self.dtype = dtype
        self.xp = xp
        self.active = any(p > 0 for p in rates)
        self.generator = None
        if self.active or self.input_noise:
            self.generator = Generator(xp, device, rng.integers(2**63 - 1))

    def masks(self, m):
        if not self.active:
            return None
        xp, dtype = self.xp, self.dtype
        return [
            None if p == 0 else
            xp.astype(self.generator.uniform((m, k), dtype) >= p, dtype) * (1.0 / (1.0 - p))
            for p, k in zip(self.rates, self.hidden_sizes)
        ]

    def noisy(self, Xb):
        """``Xb + sigma * N(0, 1)``."""
        if self.input_noise == 0:
            return Xb
        return Xb + self.input_noise * self.generator.normal(tuple(Xb.shape), self.dtype)
