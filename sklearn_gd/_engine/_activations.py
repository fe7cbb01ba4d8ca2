"""Hidden-layer activations, each declared once in :data:`ACTIVATIONS`.

An :class:`Activation` holds everything the package does with one:

- ``forward(Z, ops)`` overwrites the pre-activation ``Z`` with ``A = f(Z)``
  where the library allows (NumPy), and returns ``A``;
- ``derivative(A, out, ops)`` gives ``f'(Z)``, written into ``out`` where the
  library allows, computed from the activation's *output* ``A`` only, so
  that backpropagation needs no copy of ``Z``;
- ``kernel``: the kind of the compiled fused kernel that computes it
  (a key of ``sklearn_gd._engine._fused.ACTIVATION_KINDS``), or None where
  the elementwise operations do;
- ``onnx``: the ONNX operator and its attributes, or None for the identity.

Each is written once, against an elementwise table ``ops``
(:mod:`._elementwise`): NumPy's writes into the buffers given, another
library's returns new arrays. ``ops`` defaults to NumPy's.

Every ``f`` here is monotone, which is what makes ``f'`` a function of
``f(Z)`` alone.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional

from ._elementwise import NUMPY_ELEMENTWISE as NUMPY

LEAKY_RELU_SLOPE = 0.01


def _identity(Z, ops=NUMPY):
    return Z


def _identity_derivative(A, out, ops=NUMPY):
    return ops.ones_like(A, out=out)


def _logistic(Z, ops=NUMPY):
    """``f(z) = 1 / (1 + exp(-z))``."""
    return ops.logistic(Z, out=Z)


def _logistic_derivative(A, out, ops=NUMPY):
    """``f'(z) = f (1 - f)``."""
    out = ops.subtract(1.0, A, out=out)
    return ops.multiply(out, A, out=out)


def _tanh(Z, ops=NUMPY):
    """``f(z) = tanh(z)``."""
    return ops.tanh(Z, out=Z)


def _tanh_derivative(A, out, ops=NUMPY):
    """``f'(z) = 1 - f^2``."""
    out = ops.multiply(A, A, out=out)
    return ops.subtract(1.0, out, out=out)


def _relu(Z, ops=NUMPY):
    """``f(z) = max(z, 0)``."""
    return ops.maximum(Z, 0, out=Z)


def _relu_derivative(A, out, ops=NUMPY):
    """``f'(z) = 1 if f > 0 else 0``."""
    return ops.heaviside(A, out=out)


def _leaky_relu(Z, ops=NUMPY):
    """``f(z) = z if z > 0 else 0.01 z``."""
    # max(z, s z) equals the piecewise form because 0 < s < 1.
    return ops.maximum(Z, Z * LEAKY_RELU_SLOPE, out=Z)


def _leaky_relu_derivative(A, out, ops=NUMPY):
    """``f'(z) = 1 if f > 0 else 0.01``."""
    out = ops.heaviside(A, out=out)
    out = ops.multiply(out, 1.0 - LEAKY_RELU_SLOPE, out=out)
    return ops.add(out, LEAKY_RELU_SLOPE, out=out)


def _elu(Z, ops=NUMPY):
    """``f(z) = z if z > 0 else exp(z) - 1``."""
    # expm1 of min(z, 0), so that large positive z, which are kept, do not overflow
    return ops.where(Z < 0, ops.expm1(ops.minimum(Z, 0)), Z, out=Z)


def _elu_derivative(A, out, ops=NUMPY):
    """``f'(z) = 1 if f > 0 else f + 1``."""
    out = ops.add(A, 1.0, out=out)
    return ops.minimum(out, 1.0, out=out)


def _softplus(Z, ops=NUMPY):
    """``f(z) = log(1 + exp(z))``, computed without overflow."""
    return ops.logaddexp(0.0, Z, out=Z)


def _softplus_derivative(A, out, ops=NUMPY):
    """``f'(z) = sigmoid(z) = 1 - exp(-f)``."""
    out = ops.negative(A, out=out)
    out = ops.expm1(out, out=out)
    return ops.negative(out, out=out)


@dataclass(frozen=True)
class Activation:
    """One hidden-layer activation (see the module docstring for each field)."""

    forward: Callable
    derivative: Callable
    kernel: Optional[str]
    onnx: Optional[str]
    onnx_attributes: dict = field(default_factory=dict)


ACTIVATIONS = {
    "identity": Activation(_identity, _identity_derivative, kernel="identity", onnx=None),
    "logistic": Activation(_logistic, _logistic_derivative, kernel=None, onnx="Sigmoid"),
    "tanh": Activation(_tanh, _tanh_derivative, kernel=None, onnx="Tanh"),
    "relu": Activation(_relu, _relu_derivative, kernel="relu", onnx="Relu"),
    "leaky_relu": Activation(_leaky_relu, _leaky_relu_derivative, kernel="leaky_relu",
                             onnx="LeakyRelu", onnx_attributes={"alpha": LEAKY_RELU_SLOPE}),
    "elu": Activation(_elu, _elu_derivative, kernel=None, onnx="Elu",
                      onnx_attributes={"alpha": 1.0}),
    "softplus": Activation(_softplus, _softplus_derivative, kernel=None, onnx="Softplus"),
}
