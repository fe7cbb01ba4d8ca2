"""The only module that imports private scikit-learn API (scikit-learn >= 1.6)."""

from sklearn.base import _fit_context
from sklearn.utils._optional_dependencies import check_matplotlib_support
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight

__all__ = [
    "_fit_context",
    "Interval",
    "Options",
    "StrOptions",
    "_check_sample_weight",
    "check_matplotlib_support",
]

try:  # scikit-learn >= 1.9: the callback API
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # older scikit-learn: estimators work, without callbacks

    class CallbackSupportMixin:
        """Stand-in for scikit-learn's mixin when ``sklearn.callback`` is absent."""


__all__ += ["CallbackSupportMixin"]
