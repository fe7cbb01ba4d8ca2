"""Hidden-layer activations, each declared once in :data:`ACTIVATIONS`.

An :class:`Activation` holds everything the package does with one:

- ``forward(Z)`` overwrites the pre-activation ``Z`` with ``A = f(Z)``;
- ``derivative(A, out)`` writes ``f'(Z)`` into ``out``, computed from the
  activation's *output* ``A`` only, so that backpropagation needs no copy of
  ``Z``;
- ``portable`` and ``portable_derivative``: the same two, written against
  the Array API standard for any library (``xp``), returning new arrays;
- ``kernel``: the kind of the compiled fused kernel that computes it
  (a key of ``sklearn_gd._engine._fused.ACTIVATION_KINDS``), or None where NumPy does;
- ``onnx``: the ONNX operator and its attributes, or None for the identity.

Every ``f`` here is monotone, which is what makes ``f'`` a function of
``f(Z)`` alone.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from scipy.special import expit

from ._array_api import device_of, zero

LEAKY_RELU_SLOPE = 0.01


def _identity(Z):
    return Z


def _identity_derivative(A, out):
    out.fill(1.0)
    return out


def _logistic(Z):
    """``f(z) = 1 / (1 + exp(-z))``."""
    return expit(Z, out=Z)


def _logistic_derivative(A, out):
    """``f'(z) = f (1 - f)``."""
    np.subtract(1.0, A, out=out)
    out *= A
    return out


def _tanh(Z):
    """``f(z) = tanh(z)``."""
    return np.tanh(Z, out=Z)


def _tanh_derivative(A, out):
    """``f'(z) = 1 - f^2``."""
    np.multiply(A, A, out=out)
    np.subtract(1.0, out, out=out)
    return out


def _relu(Z):
    """``f(z) = max(z, 0)``."""
    return np.maximum(Z, 0, out=Z)


def _relu_derivative(A, out):
    """``f'(z) = 1 if f > 0 else 0``."""
    np.greater(A, 0, out=out, casting="unsafe")
    return out


def _leaky_relu(Z):
    """``f(z) = z if z > 0 else 0.01 z``."""
    # max(z, s z) equals the piecewise form because 0 < s < 1.
    return np.maximum(Z, Z * LEAKY_RELU_SLOPE, out=Z)


def _leaky_relu_derivative(A, out):
    """``f'(z) = 1 if f > 0 else 0.01``."""
    np.greater(A, 0, out=out, casting="unsafe")
    out *= 1.0 - LEAKY_RELU_SLOPE
    out += LEAKY_RELU_SLOPE
    return out


def _elu(Z):
    """``f(z) = z if z > 0 else exp(z) - 1``."""
    negative = Z < 0
    Z[negative] = np.expm1(Z[negative])
    return Z


def _elu_derivative(A, out):
    """``f'(z) = 1 if f > 0 else f + 1``."""
    np.add(A, 1.0, out=out)
    np.minimum(out, 1.0, out=out)
    return out


def _softplus(Z):
    """``f(z) = log(1 + exp(z))``, computed without overflow."""
    return np.logaddexp(0.0, Z, out=Z)


def _softplus_derivative(A, out):
    """``f'(z) = sigmoid(z) = 1 - exp(-f)``."""
    np.negative(A, out=out)
    np.expm1(out, out=out)
    np.negative(out, out=out)
    return out


# The same functions against the Array API standard: f(Z, xp) and f'(A, xp),
# returning new arrays (no ``out=``), for arrays of any library and device.
def _identity_xp(Z, xp):
    return Z


def _identity_derivative_xp(A, xp):
    return xp.ones_like(A)


def _logistic_xp(Z, xp):
    return 1.0 / (1.0 + xp.exp(-Z))


def _logistic_derivative_xp(A, xp):
    return (1.0 - A) * A


def _tanh_xp(Z, xp):
    return xp.tanh(Z)


def _tanh_derivative_xp(A, xp):
    return 1.0 - A * A


def _relu_xp(Z, xp):
    return xp.maximum(Z, zero(xp, Z.dtype, device_of(Z)))


def _relu_derivative_xp(A, xp):
    return xp.astype(A > 0, A.dtype)


def _leaky_relu_xp(Z, xp):
    return xp.maximum(Z, Z * LEAKY_RELU_SLOPE)


def _leaky_relu_derivative_xp(A, xp):
    return xp.astype(A > 0, A.dtype) * (1.0 - LEAKY_RELU_SLOPE) + LEAKY_RELU_SLOPE


def _elu_xp(Z, xp):
    return xp.where(Z < 0, xp.expm1(xp.minimum(Z, xp.zeros_like(Z))), Z)


def _elu_derivative_xp(A, xp):
    return xp.minimum(A + 1.0, xp.ones_like(A))


def _softplus_xp(Z, xp):
    return xp.logaddexp(xp.zeros_like(Z), Z)


def _softplus_derivative_xp(A, xp):
    return -xp.expm1(-A)


@dataclass(frozen=True)
class Activation:
    """One hidden-layer activation (see the module docstring for each field)."""

    forward: Callable
    derivative: Callable
    portable: Callable
    portable_derivative: Callable
    kernel: Optional[str]
    onnx: Optional[str]
    onnx_attributes: dict = field(default_factory=dict)


ACTIVATIONS = {
    "identity": Activation(_identity, _identity_derivative, _identity_xp,
                           _identity_derivative_xp, kernel="identity", onnx=None),
    "logistic": Activation(_logistic, _logistic_derivative, _logistic_xp,
                           _logistic_derivative_xp, kernel=None, onnx="Sigmoid"),
    "tanh": Activation(_tanh, _tanh_derivative, _tanh_xp, _tanh_derivative_xp,
                       kernel=None, onnx="Tanh"),
    "relu": Activation(_relu, _relu_derivative, _relu_xp, _relu_derivative_xp,
                       kernel="relu", onnx="Relu"),
    "leaky_relu": Activation(_leaky_relu, _leaky_relu_derivative, _leaky_relu_xp,
                             _leaky_relu_derivative_xp, kernel="leaky_relu",
                             onnx="LeakyRelu", onnx_attributes={"alpha": LEAKY_RELU_SLOPE}),
    "elu": Activation(_elu, _elu_derivative, _elu_xp, _elu_derivative_xp, kernel=None,
                      onnx="Elu", onnx_attributes={"alpha": 1.0}),
    "softplus": Activation(_softplus, _softplus_derivative, _softplus_xp,
                           _softplus_derivative_xp, kernel=None, onnx="Softplus"),
}
