"""Output layers and their losses, each declared once in :data:`LOSSES` (the
regressor's :data:`REGRESSION_LOSSES` and the classifier's
:data:`CLASSIFICATION_LOSSES`).

Each entry maps a loss name to a :class:`Loss` with

- ``link(R, out)``: the output activation, mapping the raw outputs (logits)
  ``R`` of the last layer to predictions ``P`` written into ``out``;
- ``value(R, P, Y)``: the per-sample loss ``loss_i``, summed over a sample's
  outputs, computed from the logits where that is more stable;
- ``gradient(R, P, Y, out)``: ``d loss_i / d R`` per sample and output;
- ``out_activation``: the link's name (the fitted ``out_activation_``);
- ``onnx``: the link's ONNX operator (None for the identity), with
  ``onnx_attributes``;
- ``portable``: ``(link, value, gradient)`` written against the Array API
  standard for any library (each takes ``xp`` last and returns new arrays);
- ``portable_fused``: optionally, ``(loss, P, delta)`` in one go for any
  library (fewer passes, so fewer kernel launches on a GPU);
- ``fused``: optionally, a kernel computing loss and delta in one pass.

For the canonical pairs (identity + squared error, exp + poisson,
logistic + binary log-loss, softmax + log-loss) the gradient is ``P - Y``.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from scipy.special import expit, log_softmax

from . import _kernels
from ._array_api import float_bits


@dataclass(frozen=True)
class Loss:
    """One output layer and its loss (see the module docstring for each field)."""

    link: Callable
    value: Callable
    gradient: Callable
    out_activation: str
    onnx: Optional[str]
    portable: tuple = ()
    portable_fused: Optional[Callable] = None
    onnx_attributes: dict = field(default_factory=dict)
    fused: Optional[Callable] = None

    def loss_and_delta(self, R, Y, weights, P_out, delta_out):
        """Weighted loss ``sum_i w_i loss_i`` and the output delta ``w_i dloss_i/dR``.

        The predictions go to ``P_out`` and the delta to ``delta_out``; returns
        ``(loss, delta)``. Losses with a ``fused`` kernel do all of it in one
        pass (softmax and log-sum-exp share their exponentials).
        """
        if self.fused is not None:
            return self.fused(R, Y, weights, P_out, delta_out), delta_out
        P = self.link(R, P_out)
        loss = float(self.value(R, P, Y) @ weights)
        delta = self.gradient(R, P, Y, out=delta_out)
        delta *= weights[:, None]
        return loss, delta

    def portable_loss_and_delta(self, R, Y, weights, xp):
        """:meth:`loss_and_delta` for arrays of any library: ``(loss, P, delta)``,
        the loss a 0-d array on the device (reading it back would wait for it)."""
        if self.portable_fused is not None:
            return self.portable_fused(R, Y, weights, xp)
        link, value, gradient = self.portable
        P = link(R, xp)
        loss = xp.sum(value(R, P, Y, xp) * weights)
        return loss, P, gradient(R, P, Y, xp) * weights[:, None]


def _identity(R, out):
    return R  # no copy: nothing writes to the predictions of an identity output


def _exp(R, out):
    return np.exp(R, out=out)


def _logistic(R, out):
    return expit(R, out=out)


def _residual(R, P, Y, out):
    """Canonical gradient ``P - Y``."""
    return np.subtract(P, Y, out=out)


def _squared_error(R, P, Y):
    """``loss_i = 1/2 sum_k (p_ik - y_ik)^2``."""
    return 0.5 * np.square(P - Y).sum(axis=1)


def _huber(delta):
    """Huber loss with threshold ``delta`` on each residual ``r = p - y``.

    ``loss(r) = r^2 / 2`` if ``|r| <= delta`` else ``delta (|r| - delta / 2)``;
    its gradient is ``clip(r, -delta, delta)``.
    """
    # A delta beyond a float32 model's range rounds to inf there, and the
    # linear part's inf * 0 is NaN; the largest float is the same threshold.
    # Typed, so that NumPy < 2 does not compute a float32 model's loss in float64.
    within_range = {
        np.dtype(t): t(min(delta, float(np.finfo(t).max))) for t in (np.float32, np.float64)
    }

    def value(R, P, Y):
        r = np.abs(P - Y)
        d = within_range.get(r.dtype, delta)
        quadratic = np.minimum(r, d)
        return (0.5 * quadratic**2 + d * (r - quadratic)).sum(axis=1)

    def gradient(R, P, Y, out):
        np.subtract(P, Y, out=out)
        return np.clip(out, -delta, delta, out=out)

    portable = _huber_xp(delta, {np.dtype(t).itemsize * 8: float(d)
                                 for t, d in within_range.items()})
    return Loss(_identity, value, gradient, out_activation="identity", onnx=None,
                portable=portable)


def _poisson(R, P, Y):
    """Half Poisson deviance up to a constant: ``sum_k exp(r_k) - y_k r_k``."""
    return (P - Y * R).sum(axis=1)


def _binary_log_loss(R, P, Y):
    """``-sum_k y log p + (1 - y) log(1 - p)`` = ``sum_k softplus(r) - y r``."""
    return (np.logaddexp(0.0, R) - Y * R).sum(axis=1)


def _log_loss(R, P, Y):
    """``-sum_k y_k log p_k`` with ``p = softmax(r)``."""
    return -(Y * log_softmax(R, axis=1)).sum(axis=1)


# The same losses against the Array API standard (see ``Loss.portable``).
def _identity_xp(R, xp):
    return R


def _exp_xp(R, xp):
    return xp.exp(R)


def _logistic_xp(R, xp):
    return 1.0 / (1.0 + xp.exp(-R))


def _softmax_xp(R, xp):
    E = xp.exp(R - xp.max(R, axis=1, keepdims=True))
    return E / xp.sum(E, axis=1, keepdims=True)


def _residual_xp(R, P, Y, xp):
    return P - Y


def _squared_error_xp(R, P, Y, xp):
    return 0.5 * xp.sum((P - Y) ** 2, axis=1)


def _poisson_xp(R, P, Y, xp):
    return xp.sum(P - Y * R, axis=1)


def _binary_log_loss_xp(R, P, Y, xp):
    return xp.sum(xp.logaddexp(xp.zeros_like(R), R) - Y * R, axis=1)


def _log_loss_xp(R, P, Y, xp):
    Z = R - xp.max(R, axis=1, keepdims=True)
    log_sum = xp.log(xp.sum(xp.exp(Z), axis=1))
    return log_sum * xp.sum(Y, axis=1) - xp.sum(Y * Z, axis=1)


def _softmax_log_loss_xp(R, Y, weights, xp):
    """Softmax, weighted log-loss and its gradient sharing one exponential, as
    :func:`sklearn_gd._engine._kernels.softmax_log_loss` (rows of ``Y`` sum to one)."""
    Z = R - xp.max(R, axis=1, keepdims=True)
    E = xp.exp(Z)
    s = xp.sum(E, axis=1, keepdims=True)
    P = E / s
    loss = xp.sum(weights * (xp.log(s[:, 0]) - xp.sum(Y * Z, axis=1)))
    return loss, P, (P - Y) * weights[:, None]


def _huber_xp(delta, within_range):
    def value(R, P, Y, xp):
        r = xp.abs(P - Y)
        d = within_range[float_bits(r.dtype)]
        quadratic = xp.minimum(r, xp.full_like(r, d))
        return xp.sum(0.5 * quadratic**2 + d * (r - quadratic), axis=1)

    def gradient(R, P, Y, xp):
        return xp.clip(P - Y, -delta, delta)

    return _identity_xp, value, gradient


def get_loss(name, huber_delta=1.0):
    """Return the :class:`Loss` called ``name``."""
    if name == "huber":
        return _huber(huber_delta)
    return LOSSES[name]


#: The regressor's losses (its ``loss`` parameter accepts these names).
REGRESSION_LOSSES = {
    "squared_error": Loss(_identity, _squared_error, _residual, out_activation="identity",
                          onnx=None, portable=(_identity_xp, _squared_error_xp, _residual_xp)),
    "huber": _huber(1.0),  # get_loss makes it for the threshold asked
    "poisson": Loss(_exp, _poisson, _residual, out_activation="exp", onnx="Exp",
                    portable=(_exp_xp, _poisson_xp, _residual_xp)),
}

#: The classifier's losses, chosen by the number of outputs.
CLASSIFICATION_LOSSES = {
    "binary_log_loss": Loss(_logistic, _binary_log_loss, _residual, out_activation="logistic",
                            onnx="Sigmoid",
                            portable=(_logistic_xp, _binary_log_loss_xp, _residual_xp)),
    "log_loss": Loss(_kernels.softmax, _log_loss, _residual, out_activation="softmax",
                     onnx="Softmax", onnx_attributes={"axis": 1},
                     portable=(_softmax_xp, _log_loss_xp, _residual_xp),
                     portable_fused=_softmax_log_loss_xp,
                     fused=_kernels.softmax_log_loss),
}

LOSSES = {**REGRESSION_LOSSES, **CLASSIFICATION_LOSSES}
