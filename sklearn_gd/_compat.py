"""The only module that imports private scikit-learn API (scikit-learn >= 1.6)."""

import inspect

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import assert_all_finite
from sklearn.utils._optional_dependencies import check_matplotlib_support
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight

try:  # scikit-learn >= 1.6 has them as functions; older ones as estimator methods
    from sklearn.utils.validation import _check_feature_names, _check_n_features
except ImportError:  # pragma: no cover

    def _check_feature_names(estimator, X, *, reset):
        estimator._check_feature_names(X, reset=reset)

    def _check_n_features(estimator, X, reset):
        estimator._check_n_features(X, reset=reset)

def check_part_sample_weight(sample_weight, X, dtype=None, ensure_non_negative=True):
    """``_check_sample_weight`` for one part of the data (a Dask chunk or block).

    Finite (and non-negative, as ``fit`` requires) as in memory, but all zeros
    are allowed: a part may hold only zero-weight rows when the whole set has
    weight (which the caller checks on the total).
    """
    kwargs = {"dtype": dtype, "ensure_non_negative": ensure_non_negative}
    if _ALLOWS_ALL_ZERO:  # scikit-learn >= 1.7 refuses all-zero weights unless told
        kwargs["allow_all_zero_weights"] = True
    return _check_sample_weight(sample_weight, X, **kwargs)


_ALLOWS_ALL_ZERO = "allow_all_zero_weights" in inspect.signature(_check_sample_weight).parameters


def assert_all_finite_quietly(A, *, input_name):
    """scikit-learn's ``assert_all_finite`` (its message, naming ``input_name``),
    without NumPy's floating-point warnings.

    Its first pass sums ``A``: finite values of both signs near the largest
    float give ``inf - inf`` there, and NumPy warns of an invalid value that
    is not in the data (the check then goes entry by entry and raises only
    for a real NaN or infinity), as ``validate_data`` does in memory.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        assert_all_finite(A, input_name=input_name)

__all__ = [
    "_fit_context",
    "assert_all_finite_quietly",
    "check_part_sample_weight",
    "Interval",
    "Options",
    "StrOptions",
    "_check_sample_weight",
    "_check_feature_names",
    "_check_n_features",
    "check_matplotlib_support",
]

try:  # scikit-learn >= 1.9: the callback API
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # older scikit-learn: estimators work, without callbacks

    class CallbackSupportMixin:
        """Stand-in for scikit-learn's mixin when ``sklearn.callback`` is absent."""


__all__ += ["CallbackSupportMixin"]

try:  # scikit-learn >= 1.9: what fit's decorator runs to tear callbacks down
    from sklearn.callback._callback_support import (
        callback_management_context as callback_teardown,
    )
except ImportError:  # older scikit-learn: no callbacks to tear down
    from contextlib import nullcontext as callback_teardown
__all__ += ["callback_teardown"]

try:  # a view of y carrying np.unique(y), which type_of_target then reuses
    from sklearn.utils._unique import attach_unique as _attach_unique
    from sklearn.utils._unique import cached_unique
except ImportError:  # without it every caller computes np.unique(y) itself

    def _attach_unique(y):
        return y

    def cached_unique(y):
        return np.unique(y)


def attach_unique(y):
    """``y`` carrying ``np.unique(y)`` for ``type_of_target`` and :func:`cached_unique`.

    ``y`` itself when its labels cannot be sorted (``[None, 1]``), so that
    ``check_classification_targets`` says what is wrong with them.
    """
    try:
        return _attach_unique(y)
    except TypeError:
        return y


__all__ += ["attach_unique", "cached_unique"]

try:  # scikit-learn >= 1.8: "everything follows X" across array libraries
    from sklearn.utils._array_api import (
        check_same_namespace,
        get_namespace_and_device,
        move_estimator_to,
        move_to,
    )

    from sklearn.externals.array_api_compat import array_namespace
    from sklearn.externals.array_api_compat import device as array_device

    ARRAY_API_TRAINING = True
except ImportError:  # older: arrays of other libraries are converted to NumPy
    ARRAY_API_TRAINING = False
    get_namespace_and_device = move_to = move_estimator_to = check_same_namespace = None
    array_namespace = array_device = None

__all__ += ["ARRAY_API_TRAINING", "array_device", "array_namespace", "check_same_namespace",
            "get_namespace_and_device",
            "move_estimator_to", "move_to"]
