"""Output layers and their losses, each declared once in :data:`LOSSES` (the
regressor's :data:`REGRESSION_LOSSES` and the classifier's
:data:`CLASSIFICATION_LOSSES`).

Each entry maps a loss name to a :class:`Loss` with

- ``link(R, out, ops)``: the output activation, mapping the raw outputs
  (logits) ``R`` of the last layer to predictions ``P``;
- ``value(R, P, Y, ops)``: the per-sample loss ``loss_i``, summed over a
  sample's outputs, computed from the logits where that is more stable;
- ``gradient(R, P, Y, out, ops)``: ``d loss_i / d R`` per sample and output;
- ``out_activation``: the link's name (the fitted ``out_activation_``);
- ``onnx``: the link's ONNX operator (None for the identity), with
  ``onnx_attributes``;
- ``fused``: optionally, the kernel-table operation computing loss and delta
  in one pass (fewer passes over memory, fewer kernel launches on a GPU).

Each is written once, against the backend ``ops`` of the arrays
(:mod:`._backend`; NumPy's by default), which writes into ``out`` where its
library allows and supplies the kernel table (the softmax among them).
For the canonical pairs (identity + squared error, exp + poisson,
logistic + binary log-loss, softmax + log-loss) the gradient is ``P - Y``.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ._array_api import float_bits
from ._backend import NUMPY


@dataclass(frozen=True)
class Loss:
    """One output layer and its loss (see the module docstring for each field)."""

    link: Callable
    value: Callable
    gradient: Callable
    out_activation: str
    onnx: Optional[str]
    onnx_attributes: dict = field(default_factory=dict)
    fused: Optional[str] = None

    def loss_and_delta(self, R, Y, weights, P_out, delta_out, ops=NUMPY):
        """Weighted loss ``sum_i w_i loss_i`` and the output delta ``w_i dloss_i/dR``.

        Returns ``(loss, delta)``: the loss a float on NumPy, a 0-d array on
        the device elsewhere (reading it back would wait for it). The
        predictions go to ``P_out`` and the delta to ``delta_out`` where the
        library writes into buffers. Losses with a ``fused`` operation do all
        of it in one pass (softmax and log-sum-exp share their exponentials).
        """
        if self.fused is not None:
            return getattr(ops, self.fused)(R, Y, weights, P_out, delta_out)
        P = self.link(R, P_out, ops)
        loss = ops.weighted_total(self.value(R, P, Y, ops), weights)
        delta = self.gradient(R, P, Y, delta_out, ops)
        return loss, ops.multiply(delta, weights[:, None], out=delta)


def _identity(R, out=None, ops=NUMPY):
    return R  # no copy: nothing writes to the predictions of an identity output


def _exp(R, out=None, ops=NUMPY):
    return ops.exp(R, out=out)


def _logistic(R, out=None, ops=NUMPY):
    return ops.logistic(R, out=out)


def _softmax(R, out=None, ops=NUMPY):
    """``p_k = exp(r_k) / sum_j exp(r_j)`` per row, by the kernel table."""
    return ops.softmax(R, out)


def _residual(R, P, Y, out=None, ops=NUMPY):
    """Canonical gradient ``P - Y``."""
    return ops.subtract(P, Y, out=out)


def _squared_error(R, P, Y, ops=NUMPY):
    """``loss_i = 1/2 sum_k (p_ik - y_ik)^2``."""
    return 0.5 * ops.row_sums(ops.square(P - Y))


def _huber(delta):
    """Huber loss with threshold ``delta`` on each residual ``r = p - y``.

    ``loss(r) = r^2 / 2`` if ``|r| <= delta`` else ``delta (|r| - delta / 2)``;
    its gradient is ``clip(r, -delta, delta)``.
    """
    # A delta beyond a float32 model's range rounds to inf there, and the
    # linear part's inf * 0 is NaN; the largest float is the same threshold.
    within_range = {np.dtype(t).itemsize * 8: min(delta, float(np.finfo(t).max))
                    for t in (np.float32, np.float64)}

    def value(R, P, Y, ops=NUMPY):
        r = ops.abs(P - Y)
        d = ops.scalar(within_range[float_bits(r.dtype)], r)
        quadratic = ops.minimum(r, d)
        return ops.row_sums(0.5 * quadratic**2 + d * (r - quadratic))

    def gradient(R, P, Y, out=None, ops=NUMPY):
        out = ops.subtract(P, Y, out=out)
        return ops.clip(out, -delta, delta, out=out)

    return Loss(_identity, value, gradient, out_activation="identity", onnx=None)


def _poisson(R, P, Y, ops=NUMPY):
    """Half Poisson deviance up to a constant: ``sum_k exp(r_k) - y_k r_k``."""
    return ops.row_sums(P - Y * R)


def _binary_log_loss(R, P, Y, ops=NUMPY):
    """``-sum_k y log p + (1 - y) log(1 - p)`` = ``sum_k softplus(r) - y r``."""
    return ops.row_sums(ops.logaddexp(0.0, R) - Y * R)


def _log_loss(R, P, Y, ops=NUMPY):
    """``-sum_k y_k log p_k`` with ``p = softmax(r)``."""
    return -ops.row_sums(Y * ops.log_softmax(R))


def get_loss(name, huber_delta=1.0):
    """Return the :class:`Loss` called ``name``."""
    if name == "huber":
        return _huber(huber_delta)
    return LOSSES[name]


#: The regressor's losses (its ``loss`` parameter accepts these names).
REGRESSION_LOSSES = {
    "squared_error": Loss(_identity, _squared_error, _residual, out_activation="identity",
                          onnx=None),
    "huber": _huber(1.0),  # get_loss makes it for the threshold asked
    "poisson": Loss(_exp, _poisson, _residual, out_activation="exp", onnx="Exp"),
}

#: The classifier's losses, chosen by the number of outputs.
CLASSIFICATION_LOSSES = {
    "binary_log_loss": Loss(_logistic, _binary_log_loss, _residual, out_activation="logistic",
                            onnx="Sigmoid"),
    "log_loss": Loss(_softmax, _log_loss, _residual, out_activation="softmax", onnx="Softmax",
                     onnx_attributes={"axis": 1}, fused="softmax_log_loss"),
}

LOSSES = {**REGRESSION_LOSSES, **CLASSIFICATION_LOSSES}
