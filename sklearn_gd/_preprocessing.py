"""Robust scaling with smooth clipping: the numeric preprocessing of tabular MLPs."""

import warnings
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._compat import Interval, StrOptions, _fit_context


class RobustSmoothClipScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Center by the median, scale by the interquartile range, then clip smoothly.

    Each feature ``x`` becomes

    .. math::

        z = (x - \\mathrm{median}) \\, f,\\qquad
        \\tilde x = \\frac{z}{\\sqrt{1 + (z / c)^2}}

    with ``c = max_absolute_value`` and the scale factor ``f = 1 / (q_{75} -
    q_{25})`` (the quantiles of ``quantile_range``); ``f = 2 / (max - min)``
    for a feature whose quartiles coincide but which is not constant, and
    ``f = 0`` for a constant feature (it becomes 0). The second step is the
    identity near 0 and approaches ``+-c`` for outliers, so the network
    sees values in ``(-c, c)`` without the hard edges of clipping: the robust
    scaling and smooth clipping of RealMLP (Holzmueller et al., "Better by
    default: strong pre-tuned MLPs and boosted trees on tabular data",
    NeurIPS 2024).

    Missing values (NaN) are ignored when fitting and kept when transforming.

    Parameters
    ----------
    max_absolute_value : float, default=3.0
        The bound ``c`` that the transformed values approach.
    quantile_range : tuple of float, default=(25.0, 75.0)
        The percentiles whose difference scales each feature.
    copy : bool, default=True
        Transform a copy of ``X`` (the input is never changed in place when
        its dtype must change).
    dtype : {np.float32, np.float64} or None, default=None
        The dtype of :meth:`transform`'s output; None keeps float32 and
        float64 input as it is (other input becomes float64). ``np.float32``
        in front of an estimator of this package makes it train in float32
        (faster, notably for the periodic ``embedding``: NumPy's float32
        cosine is vectorised).

    Attributes
    ----------
    center_ : ndarray of shape (n_features,)
        Each feature's median.
    scale_ : ndarray of shape (n_features,)
        Each feature's factor ``f``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined when ``X`` has feature names that are all strings.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_gd import RobustSmoothClipScaler
    >>> X = np.array([[1.0], [2.0], [3.0], [4.0], [1000.0]])
    >>> RobustSmoothClipScaler().fit_transform(X).ravel().round(3)
    array([-0.949, -0.493,  0.   ,  0.493,  3.   ])
    """

    _parameter_constraints: dict = {
        "max_absolute_value": [Interval(Real, 0, None, closed="neither")],
        "quantile_range": [tuple],
        "copy": ["boolean"],
        "dtype": [StrOptions({"float32", "float64"}), type, np.dtype, None],
    }

    def __init__(self, max_absolute_value=3.0, quantile_range=(25.0, 75.0), copy=True,
                 dtype=None):
        self.max_absolute_value = max_absolute_value
        self.quantile_range = quantile_range
        self.copy = copy
        self.dtype = dtype

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn each feature's median and scale factor.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        low, high = self._percentiles()
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan")
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            # an all-NaN feature has no median: expected, handled below
            warnings.filterwarnings("ignore", message="All-NaN slice encountered")
            self.center_ = np.nanmedian(X, axis=0)
            # halves, so that features spanning the whole float range do not overflow
            half_spread = _half_difference(np.nanpercentile(X, high, axis=0),
                                           np.nanpercentile(X, low, axis=0))
            half_range = _half_difference(np.nanmax(X, axis=0), np.nanmin(X, axis=0))
        # f = 1 / (q_high - q_low), or 1 / half the range when the quantiles coincide
        scale = np.where(half_spread > 0, 0.5 / np.where(half_spread > 0, half_spread, 1.0),
                         1.0 / np.where(half_range > 0, half_range, np.inf))
        # an all-NaN or constant feature has no spread: it becomes 0 (NaN stays NaN)
        self.scale_ = np.where(np.isfinite(scale), scale, 0.0).astype(X.dtype)
        self.center_ = np.where(np.isfinite(self.center_), self.center_, 0.0).astype(X.dtype)
        return self

    def transform(self, X):
        """Scale and smoothly clip ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features)
            Values in ``(-max_absolute_value, max_absolute_value)``, NaN where
            ``X`` has NaN.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=self._output_dtype(),
                          ensure_all_finite="allow-nan", copy=self.copy)
        c = self.max_absolute_value
        with np.errstate(over="ignore", invalid="ignore"):
            X -= self.center_
            X *= self.scale_
            X /= c  # t = z / c; the result is c t / sqrt(1 + t^2)
            infinite = np.isinf(X)  # from values beyond the dtype's range
            limits = np.sign(X[infinite])
            X /= np.hypot(1.0, X)  # hypot: no overflow in t^2
        X[infinite] = limits
        X *= c
        return np.clip(X, -c, c, out=X)  # rounding may land an ulp beyond c

    def inverse_transform(self, X):
        """Undo :meth:`transform` (a constant feature comes back as its median).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Values in ``(-max_absolute_value, max_absolute_value)``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32],
                          ensure_all_finite="allow-nan", copy=self.copy)
        c = self.max_absolute_value
        with np.errstate(divide="ignore", invalid="ignore"):
            X /= np.sqrt(1.0 - np.square(X / c))
            X /= np.where(self.scale_ > 0, self.scale_, np.inf)
        X += self.center_
        return X

    def _output_dtype(self):
        if self.dtype is None:
            return [np.float64, np.float32]
        dtype = np.dtype(self.dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be np.float32, np.float64 or None, got {self.dtype!r}.")
        return dtype

    def _percentiles(self):
        low, high = self.quantile_range if len(self.quantile_range) == 2 else (None, None)
        if low is None or not 0 <= low < high <= 100:
            raise ValueError(
                f"quantile_range must be two percentiles (low, high) with "
                f"0 <= low < high <= 100, got {self.quantile_range!r}."
            )
        return low, high


def _half_difference(a, b):
    """``(a - b) / 2`` without overflow for values near the largest float."""
    return 0.5 * a - 0.5 * b
