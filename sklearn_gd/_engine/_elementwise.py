"""Elementwise operations with an optional output buffer, one table per kind of library.

The math of the layers (the activations and their derivatives) is written
once, against these tables: :class:`NumpyElementwise` writes into ``out``
when one is given (NumPy's ``out=``, so that training reuses its buffers);
:class:`ArrayApiElementwise` ignores ``out`` and returns new arrays, as the
Array API standard has no ``out=``. Callers always use the returned array.
The backends (:mod:`._backend`) are these tables plus the rest of their policy.
"""

import numpy as np
from scipy.special import expit, log_softmax

from ._array_api import device_of, zero


class NumpyElementwise:
    """NumPy's operations, each written into ``out`` when given."""

    @staticmethod
    def add(a, b, out=None):
        return np.add(a, b, out=out)

    @staticmethod
    def subtract(a, b, out=None):
        return np.subtract(a, b, out=out)

    @staticmethod
    def multiply(a, b, out=None):
        return np.multiply(a, b, out=out)

    @staticmethod
    def negative(a, out=None):
        return np.negative(a, out=out)

    @staticmethod
    def maximum(a, b, out=None):
        return np.maximum(a, b, out=out)

    @staticmethod
    def minimum(a, b, out=None):
        return np.minimum(a, b, out=out)

    @staticmethod
    def sqrt(a, out=None):
        return np.sqrt(a, out=out)

    @staticmethod
    def cos(a, out=None):
        return np.cos(a, out=out)

    @staticmethod
    def sin(a, out=None):
        return np.sin(a, out=out)

    @staticmethod
    def tanh(a, out=None):
        return np.tanh(a, out=out)

    @staticmethod
    def divide(a, b, out=None):
        return np.divide(a, b, out=out)

    @staticmethod
    def exp(a, out=None):
        return np.exp(a, out=out)

    @staticmethod
    def log(a, out=None):
        return np.log(a, out=out)

    @staticmethod
    def abs(a, out=None):
        return np.abs(a, out=out)

    @staticmethod
    def square(a, out=None):
        return np.square(a, out=out)

    @staticmethod
    def clip(a, low, high, out=None):
        return np.clip(a, low, high, out=out)

    @staticmethod
    def row_sums(a, keepdims=False):
        """``sum_k a_ik`` per row."""
        return a.sum(axis=1, keepdims=keepdims)

    @staticmethod
    def row_max(a):
        """``max_k a_ik`` per row, as a column."""
        return a.max(axis=1, keepdims=True)

    @staticmethod
    def row_dots(a, b):
        """``sum_k a_ik b_ik`` per row."""
        return np.einsum("ij,ij->i", a, b)

    @staticmethod
    def squared_norm(a):
        """``sum a^2`` as a Python float."""
        return float(np.dot(a.reshape(-1), a.reshape(-1)))

    @staticmethod
    def log_softmax(R):
        """``log(softmax(r))`` per row, by SciPy."""
        return log_softmax(R, axis=1)

    @staticmethod
    def scalar(value, like):
        """``value`` typed as ``like``'s dtype (NumPy < 2 would otherwise compute a
        float32 array's products with a Python float in float64)."""
        return like.dtype.type(value)

    @staticmethod
    def weighted_total(values, weights):
        """``sum_i w_i v_i`` as a Python float."""
        return float(values @ weights)

    @staticmethod
    def expm1(a, out=None):
        return np.expm1(a, out=out)

    @staticmethod
    def logaddexp(a, b, out=None):
        return np.logaddexp(a, b, out=out)

    @staticmethod
    def logistic(a, out=None):
        """``1 / (1 + exp(-a))``, by SciPy's ``expit`` (no overflow warning)."""
        return expit(a, out=out)

    @staticmethod
    def heaviside(a, out=None):
        """1 where ``a > 0``, else 0, in ``a``'s dtype."""
        if out is None:
            return (a > 0).astype(a.dtype)
        return np.greater(a, 0, out=out, casting="unsafe")

    @staticmethod
    def ones_like(a, out=None):
        if out is None:
            return np.ones_like(a)
        out.fill(1.0)
        return out

    @staticmethod
    def where(condition, a, b, out=None):
        """``a`` where ``condition``, else ``b``; into ``out`` when it is ``b``."""
        if out is b:
            np.copyto(out, a, where=condition)
            return out
        return np.where(condition, a, b)


class ArrayApiElementwise:
    """The same operations for any Array API library (``xp``): new arrays, ``out`` ignored.

    Python scalars become 0-d arrays of the other operand's dtype and device
    where the standard's functions need arrays.
    """

    def __init__(self, xp):
        self.xp = xp

    def _array(self, value, like):
        if not isinstance(value, (int, float)):
            return value
        if value == 0:
            return zero(self.xp, like.dtype, device_of(like))
        return self.xp.asarray(value, dtype=like.dtype, device=device_of(like))

    @staticmethod
    def add(a, b, out=None):
        return a + b

    @staticmethod
    def subtract(a, b, out=None):
        return a - b

    @staticmethod
    def multiply(a, b, out=None):
        return a * b

    @staticmethod
    def negative(a, out=None):
        return -a

    def maximum(self, a, b, out=None):
        return self.xp.maximum(a, self._array(b, a))

    def minimum(self, a, b, out=None):
        return self.xp.minimum(a, self._array(b, a))

    def sqrt(self, a, out=None):
        return self.xp.sqrt(a)

    def cos(self, a, out=None):
        return self.xp.cos(a)

    def sin(self, a, out=None):
        return self.xp.sin(a)

    def tanh(self, a, out=None):
        return self.xp.tanh(a)

    @staticmethod
    def divide(a, b, out=None):
        return a / b

    def exp(self, a, out=None):
        return self.xp.exp(a)

    def log(self, a, out=None):
        return self.xp.log(a)

    def abs(self, a, out=None):
        return self.xp.abs(a)

    def square(self, a, out=None):
        return self.xp.square(a)

    def clip(self, a, low, high, out=None):
        return self.xp.clip(a, low, high)

    def row_sums(self, a, keepdims=False):
        return self.xp.sum(a, axis=1, keepdims=keepdims)

    def row_max(self, a):
        return self.xp.max(a, axis=1, keepdims=True)

    def row_dots(self, a, b):
        return self.xp.sum(a * b, axis=1)

    def squared_norm(self, a):
        return float(self.xp.sum(a * a))

    def log_softmax(self, R):
        Z = R - self.xp.max(R, axis=1, keepdims=True)
        return Z - self.xp.log(self.xp.sum(self.xp.exp(Z), axis=1, keepdims=True))

    @staticmethod
    def scalar(value, like):
        return float(value)

    def weighted_total(self, values, weights):
        """``sum_i w_i v_i`` as a 0-d array on the device (reading it back would wait)."""
        return self.xp.sum(values * weights)

    def expm1(self, a, out=None):
        return self.xp.expm1(a)

    def logaddexp(self, a, b, out=None):
        return self.xp.logaddexp(self._array(a, b), b)

    def logistic(self, a, out=None):
        return 1.0 / (1.0 + self.xp.exp(-a))

    def heaviside(self, a, out=None):
        return self.xp.astype(a > 0, a.dtype)

    def ones_like(self, a, out=None):
        return self.xp.ones_like(a)

    def where(self, condition, a, b, out=None):
        return self.xp.where(condition, a, b)


#: The NumPy table, for the kernel table's NumPy reference.
NUMPY_ELEMENTWISE = NumpyElementwise()
