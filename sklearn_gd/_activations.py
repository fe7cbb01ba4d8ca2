"""Hidden-layer activations: forward in place, derivative from the output.

Each entry maps a name to ``(forward, derivative)``:

- ``forward(Z)`` overwrites the pre-activation ``Z`` with ``A = f(Z)``;
- ``derivative(A, out)`` writes ``f'(Z)`` into ``out``, computed from the
  activation's *output* ``A`` only, so that backpropagation needs no copy of
  ``Z``.

Every ``f`` here is monotone, which is what makes ``f'`` a function of
``f(Z)`` alone.
"""

import numpy as np
from scipy.special import expit

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


ACTIVATIONS = {
    "identity": (_identity, _identity_derivative),
    "logistic": (_logistic, _logistic_derivative),
    "tanh": (_tanh, _tanh_derivative),
    "relu": (_relu, _relu_derivative),
    "leaky_relu": (_leaky_relu, _leaky_relu_derivative),
    "elu": (_elu, _elu_derivative),
    "softplus": (_softplus, _softplus_derivative),
}
