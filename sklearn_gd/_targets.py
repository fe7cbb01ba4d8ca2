"""What the trainer and the data sources know of the targets, handed down by the estimator.

The estimator learns the targets' form when it fits (a classifier's classes
and kind, a regressor's number of dimensions); the rest of the package sees
only the frozen object it builds from them: :class:`ClassTargets` or
:class:`RegressionTargets`. It encodes targets for the network, gives the
initial output bias and scores encoded predictions; Dask workers receive it
to encode their chunks. Nothing below the estimator reads the estimator.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import r2_score
from sklearn.utils.multiclass import (
    check_classification_targets,
    is_multilabel,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import column_or_1d

from ._compat import assert_all_finite_quietly, attach_unique
from ._engine._backend import backend_for
from ._engine._values import cast_finite

#: Prior probabilities are clipped to this distance from 0 and 1 for the initial bias.
PRIOR_CLIP = 1e-6


@dataclass(frozen=True)
class ClassTargets:
    """A classifier's targets: ``classes`` (sorted), ``kind`` (``"binary"``,
    ``"multiclass"`` or ``"multilabel"``) and ``label_smoothing``;
    ``estimator_name`` names the estimator in messages."""

    classes: np.ndarray
    kind: str
    label_smoothing: float = 0.0
    estimator_name: str = "MLPBackpropClassifier"

    def encode(self, y, dtype, classes=None):
        """Indicator targets (one column for binary), smoothed by ``label_smoothing``.

        Without smoothing they are boolean: training converts each batch to
        the model's float dtype, so the stored targets take one byte per
        entry. ``classes``, when given (``partial_fit``'s), must be
        :attr:`classes`.
        """
        return self.encode_parsed(parse_labels(y), dtype, classes)

    def encode_parsed(self, parsed, dtype, classes=None):
        """:meth:`encode` for the output of :func:`parse_labels`."""
        return self._smoothed(self._indicators(parsed, classes), dtype)

    def _indicators(self, parsed, classes):
        form, y, _ = parsed
        if form == "multilabel":
            if self.kind != "multilabel" or y.shape[1] != self.classes.shape[0]:
                raise ValueError(
                    f"y is a multilabel matrix with {y.shape[1]} labels, but the model was "
                    "fitted on different targets; call fit to start over."
                )
            return np.ascontiguousarray(y, dtype=bool)
        if self.kind == "multilabel":
            raise ValueError(
                "y holds labels, but the model was fitted on a multilabel indicator matrix; "
                "pass one with its columns, or call fit to start over."
            )
        if classes is not None and not np.array_equal(declared_classes(classes), self.classes):
            raise ValueError(
                f"classes={listed(classes)} differs from the classes of "
                f"the first partial_fit call, {self.classes.tolist()}."
            )
        index = np.searchsorted(self.classes, y)
        known = self.classes[np.minimum(index, self.classes.shape[0] - 1)] == y
        if not known.all():
            raise ValueError(
                f"y contains labels {np.unique(y[~known]).tolist()} that are not in "
                f"classes_ {self.classes.tolist()}."
            )
        if self.kind == "binary":
            return (index == 1).reshape(-1, 1)
        Y = np.zeros((y.shape[0], self.classes.shape[0]), dtype=bool)
        Y[np.arange(y.shape[0]), index] = True
        return Y

    def _smoothed(self, Y, dtype):
        """``(1 - eps) Y + eps / K`` in ``dtype`` (``K``: classes of a softmax output,
        2 for logistic outputs); ``Y`` itself without smoothing."""
        eps = self.label_smoothing
        if not eps:
            return Y
        per_row = Y.shape[1] if self.kind == "multiclass" else 2
        smoothed = Y.astype(dtype)
        smoothed *= 1.0 - eps
        smoothed += eps / per_row
        return smoothed

    def mean(self, Y, sw):
        """The weighted class frequencies ``sum_i s_i Y_i / S`` (of the smoothed targets,
        with ``label_smoothing``)."""
        if sw is None:
            return Y.sum(axis=0) / Y.shape[0]
        if Y.dtype != bool:
            return (sw @ Y) / sw.sum()
        return np.array([sw[column].sum() for column in Y.T]) / sw.sum()

    def output_bias(self, mean):
        """Start at the weighted class priors ``mean``: log-odds, or log-probabilities
        (softmax)."""
        prior = np.clip(mean, PRIOR_CLIP, 1 - PRIOR_CLIP)
        if self.kind == "multiclass":
            return np.log(prior)
        return np.log(prior) - np.log1p(-prior)

    def score(self, P, Y, sw):
        """Accuracy of the predictions ``P`` on encoded targets ``Y`` (subset accuracy
        for multilabel), weighted by ``sw``; in ``P``'s library."""
        ops = backend_for(P)
        if self.kind == "multiclass":
            correct = ops.argmax(P, axis=1) == ops.argmax(Y, axis=1)
        else:
            correct = ops.all((P > 0.5) == (Y > 0.5), axis=1)
        return ops.weighted_mean(correct, sw, P.dtype)

    def stratify(self, y):
        """The labels a validation split is stratified by (None for multilabel)."""
        return None if self.kind == "multilabel" else y


@dataclass(frozen=True)
class RegressionTargets:
    """A regressor's targets: ``y_ndim`` (1 or 2) and its ``loss``; ``estimator_name``
    names the estimator in messages."""

    y_ndim: int
    loss: str
    estimator_name: str = "GDRegressor"

    def encode(self, y, dtype):
        """``y`` as a 2-D float array of ``dtype``, checked (numbers, finite; non-negative
        for ``loss='poisson'``)."""
        if sp.issparse(y):
            # as Ridge and MLPRegressor: np.asarray would make a 0-d object array
            raise TypeError(
                "Sparse data was passed for y, but a regressor needs dense targets; "
                "use y.toarray()."
            )
        y = numeric_targets(np.asarray(y))
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if self.loss == "poisson" and np.any(Y < 0):
            raise ValueError("loss='poisson' requires non-negative y; some y values are negative.")
        assert_all_finite_quietly(Y, input_name="y")  # validate_data's message in memory
        return np.ascontiguousarray(cast_finite(Y, dtype, "y"))

    def mean(self, Y, sw):
        """The weighted target mean ``sum_i (s_i / S) y_i``.

        Targets near the dtype's largest value, whose plain sum overflows,
        are divided by ``S`` before they are summed.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            mean = Y.mean(axis=0) if sw is None else (sw @ Y) / sw.sum()
        if not np.isfinite(mean).all():
            weights = np.full(Y.shape[0], 1.0 / Y.shape[0]) if sw is None else sw / sw.sum()
            mean = (weights[:, None] * Y).sum(axis=0)
        return mean

    def output_bias(self, mean):
        """Start at the weighted target ``mean`` (its log for poisson)."""
        if self.loss == "poisson":
            return np.log(np.maximum(mean, np.finfo(mean.dtype).tiny))
        return mean

    def score(self, P, Y, sw):
        """R² of the predictions ``P`` (uniform average over outputs)."""
        return r2_score(Y, P, sample_weight=sw)

    def stratify(self, y):
        """Regression splits are not stratified."""
        return None


def parse_labels(y, warn=True):
    """``(form, y, sparse)``: a classifier's ``y`` checked as labels.

    ``form`` is ``"multilabel"`` (``y`` a dense indicator matrix; ``sparse``
    whether it came sparse) or ``"labels"`` (``y`` 1-D, a column vector
    flattened with scikit-learn's warning when ``warn``).
    """
    if sp.issparse(y):
        return "multilabel", _dense_indicator(y), True
    # one np.unique(y) for type_of_target's checks and for the classes
    y = attach_unique(np.asarray(y))
    check_classification_targets(y)
    # type_of_target's own test for "multilabel-indicator"; only a matrix
    # can be one, and a 1-D y skips the test (~0.15 ms per partial_fit)
    if y.ndim == 2 and is_multilabel(y):
        return "multilabel", y, False
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=warn)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D or a multilabel indicator matrix, got shape {y.shape}.")
    return "labels", y, False


def _dense_indicator(y):
    """A sparse ``y`` as a dense array; only a multilabel indicator matrix may be sparse."""
    kind = type_of_target(y)
    if kind != "multilabel-indicator":
        raise ValueError(
            "A sparse y must be a multilabel indicator matrix (one 0/1 column per "
            f"label); type_of_target(y) is {kind!r}."
        )
    return y.toarray()


def declared_classes(classes):
    """``partial_fit``'s ``classes=``, sorted and unique, checked as labels are.

    scikit-learn's ``unique_labels`` refuses NaN, mixed strings and numbers,
    and what is not a label type, as ``MLPClassifier.partial_fit`` does. A
    list stays a list for it (NumPy would turn ``[1, "a"]`` into strings);
    an array of any library becomes a NumPy one.
    """
    if not isinstance(classes, (list, tuple)):
        classes = np.asarray(classes)
    if np.ndim(classes) != 1 or len(classes) == 0:
        raise ValueError(
            f"classes must be a non-empty 1-D list of labels, got {listed(classes)!r}."
        )
    try:
        with np.errstate(invalid="ignore"):  # its integer test casts NaN before refusing it
            return unique_labels(classes)
    except ValueError as exc:
        raise ValueError(f"classes={listed(classes)!r} are not valid labels: {exc}") from None


def listed(classes):
    """``classes`` as a list for a message, each label with its own type."""
    return list(classes) if isinstance(classes, (list, tuple)) else np.asarray(classes).tolist()


def numeric_targets(y):
    """``y`` as numbers: strings of numbers are parsed (as scikit-learn's
    linear regressors do); other strings are a ValueError that says so."""
    if y.dtype.kind not in "SU":
        return y
    try:
        return y.astype(np.float64)
    except ValueError as exc:
        raise ValueError(f"y must be numeric for a regressor: {exc}.") from None
