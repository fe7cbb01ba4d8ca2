"""Robust scaling with smooth clipping: the numeric preprocessing of tabular MLPs."""

import functools
import warnings
from numbers import Real

import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._compat import ARRAY_API_TRAINING, Interval, StrOptions, _fit_context, check_same_namespace
from ._data._dask._cluster import is_dask_collection
from ._engine._array_api import (
    device_of,
    has_float64,
    input_namespace,
    namespace,
    xp_float,
)
from ._engine._backend import on_numpy
from ._table import _is_frame, columns_named_in_errors


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

    A Dask array or dataframe is fitted without gathering its rows: each
    block sends a summary of each feature (its values, or 201 of its
    quantiles where it has more), so the statistics are the in-memory ones
    when no block holds more than 201 values of a feature, and otherwise
    within about 1/201 of a block's rows in rank. :meth:`transform` of a
    Dask collection is lazy, block by block.

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
    numeric_only : bool, default=False
        With a data frame, scale only its numeric columns (floats, integers,
        nullable ``Int64``/``Float64``; not booleans) and return a data frame
        in which every other column (categories, text, booleans) is as it
        was, in the same order: the step in front of an estimator of this
        package that learns the other columns itself (the tabular recipe's).
        Arrays are scaled whole either way.

    Attributes
    ----------
    center_ : ndarray of shape (n_features,)
        Each feature's median (each scaled column's, with ``numeric_only``).
    scale_ : ndarray of shape (n_features,)
        Each feature's factor ``f``.
    numeric_columns_ : ndarray of int or None
        With ``numeric_only`` and a data frame, the positions of the columns
        scaled; None when every column is.
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
        "numeric_only": ["boolean"],
    }

    def __init__(self, max_absolute_value=3.0, quantile_range=(25.0, 75.0), copy=True,
                 dtype=None, numeric_only=False):
        self.max_absolute_value = max_absolute_value
        self.quantile_range = quantile_range
        self.copy = copy
        self.dtype = dtype
        self.numeric_only = numeric_only

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.array_api_support = ARRAY_API_TRAINING
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
        self.numeric_columns_ = None
        if is_dask_collection(X):
            return self._fit_dask(X, low, high)
        if self.numeric_only and _is_frame(X):
            validate_data(self, X, skip_check_array=True)  # the frame's columns and names
            self.numeric_columns_ = _numeric_columns(X)
            return self._fit_statistics(_numeric_values(X, self.numeric_columns_), low, high)
        where = input_namespace(X)
        if where is not None:
            X = validate_data(self, X, dtype=_float_dtypes(*where), ensure_all_finite="allow-nan")
            self.center_, self.scale_ = _portable_statistics(X, low, high, where[0])
            return self
        with columns_named_in_errors(X, self):
            X = validate_data(self, X, dtype=[np.float64, np.float32],
                              ensure_all_finite="allow-nan")
        return self._fit_statistics(X, low, high)

    def _fit_statistics(self, X, low, high):
        """``center_`` and ``scale_`` of the float array ``X``'s columns."""
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            # an all-NaN feature has no median: expected, handled below
            warnings.filterwarnings("ignore", message="All-NaN slice encountered")
            percentiles = np.stack([np.nanmedian(X, axis=0), np.nanpercentile(X, low, axis=0),
                                    np.nanpercentile(X, high, axis=0)])
            extremes = np.nanmin(X, axis=0), np.nanmax(X, axis=0)
        return self._set_statistics(percentiles, *extremes, X.dtype)

    def _fit_dask(self, X, low, high):
        """The statistics of a Dask array or dataframe, from its blocks' summaries
        (:mod:`sklearn_gd._data._dask._quantiles`: percentiles exact for blocks of
        at most 201 values, within a rank step of 1/201 of a block otherwise)."""
        from ._data._dask._quantiles import column_statistics
        from ._data._dask._tables import empty_like

        empty = empty_like(X)
        validate_data(self, empty, skip_check_array=True)  # the columns' count and names
        to_numbers = functools.partial(_as_numbers, dtype=[np.float64, np.float32])
        if self.numeric_only and _is_frame(empty):
            self.numeric_columns_ = _numeric_columns(empty)
            to_numbers = functools.partial(_numeric_values, columns=self.numeric_columns_)
        percentiles, *extremes = column_statistics(X, to_numbers, (50, low, high))
        dtype = to_numbers(empty).dtype
        return self._set_statistics(percentiles.astype(dtype), *extremes, dtype)

    def _set_statistics(self, percentiles, minimum, maximum, dtype):
        """``center_`` and ``scale_`` from each column's median, low and high
        percentiles (the rows of ``percentiles``) and extremes."""
        median, q_low, q_high = percentiles
        self.center_ = median
        with np.errstate(invalid="ignore"):
            # halves, so that features spanning the whole float range do not overflow
            half_spread = _half_difference(q_high, q_low)
            half_range = _half_difference(maximum, minimum)
        # f = 1 / (q_high - q_low), or 1 / half the range when the quantiles coincide;
        # a spread so small (subnormal) that f overflows counts as none, silently
        with np.errstate(over="ignore"):
            scale = np.where(half_spread > 0, 0.5 / np.where(half_spread > 0, half_spread, 1.0),
                             1.0 / np.where(half_range > 0, half_range, np.inf))
        # an all-NaN or constant feature has no spread: it becomes 0 (NaN stays NaN)
        self.scale_ = np.where(np.isfinite(scale), scale, 0.0).astype(dtype)
        self.center_ = np.where(np.isfinite(self.center_), self.center_, 0.0).astype(dtype)
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
        if is_dask_collection(X):
            return self._blockwise(X, self.transform)
        if getattr(self, "numeric_columns_", None) is not None:
            return self._map_numeric_columns(X, self._smooth_clip, "transform")
        if self._on_device(X, "transform"):
            return self._portable_transform(X)
        with columns_named_in_errors(X, self):
            X = validate_data(self, X, reset=False, dtype=self._compute_dtype(),
                              ensure_all_finite="allow-nan", copy=self.copy)
        return self._smooth_clip(X)

    def _map_numeric_columns(self, X, function, method):
        """``numeric_only``: the data frame ``X`` with ``function`` applied to its
        numeric columns (as one float array, in place) and the others as they are."""
        if not _is_frame(X):
            raise TypeError(
                "This RobustSmoothClipScaler was fitted on a data frame with numeric_only=True; "
                f"{method} takes a data frame with the same columns, got {type(X).__name__}."
            )
        validate_data(self, X, reset=False, skip_check_array=True)
        values = _numeric_values(X, self.numeric_columns_)
        if self._compute_dtype() is np.float64:
            values = values.astype(np.float64, copy=False)
        mapped = function(values)
        out = X.copy()
        for j, i in enumerate(self.numeric_columns_):
            out.isetitem(int(i), mapped[:, j])
        return out

    def _smooth_clip(self, X):
        """Scale and smoothly clip the validated float array ``X``, in place."""
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
        np.clip(X, -c, c, out=X)  # rounding may land an ulp beyond c
        # cast after clipping: values beyond a float32 output's range are clipped, not inf
        return X if self.dtype is None else X.astype(self._output_dtype(), copy=False)

    def inverse_transform(self, X):
        """Undo :meth:`transform` (a constant feature comes back as its median).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Values in ``(-max_absolute_value, max_absolute_value)``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            A data frame with its numeric columns unscaled, after a fit with
            ``numeric_only`` on a data frame.
        """
        check_is_fitted(self)
        if is_dask_collection(X):
            return self._blockwise(X, self.inverse_transform)
        if getattr(self, "numeric_columns_", None) is not None:
            return self._map_numeric_columns(X, self._unclip, "inverse_transform")
        if self._on_device(X, "inverse_transform"):
            return self._portable_inverse_transform(X)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32],
                          ensure_all_finite="allow-nan", copy=self.copy)
        return self._unclip(X)

    def _unclip(self, X):
        """Undo the smooth clip and the scaling of the validated float array ``X``, in place."""
        c = self.max_absolute_value
        with np.errstate(divide="ignore", invalid="ignore"):
            X /= np.sqrt(1.0 - np.square(X / c))
            X /= np.where(self.scale_ > 0, self.scale_, np.inf)
        X += self.center_
        return X

    def _blockwise(self, X, method):
        """``method`` on each block of Dask ``X``, lazily: a dataframe for a data
        frame scaled by ``numeric_only``, else a Dask array."""
        from ._data._dask._tables import empty_like

        empty = empty_like(X)
        if _is_frame(empty) and getattr(self, "numeric_columns_", None) is not None:
            return X.map_partitions(method, meta=method(empty))
        probe = method(np.zeros((1, X.shape[1]), _as_numbers(empty, None).dtype))
        meta = np.empty((0, X.shape[1]), probe.dtype)
        if _is_frame(empty):
            return X.map_partitions(method, meta=meta)
        return X.rechunk({1: -1}).map_blocks(method, dtype=probe.dtype, meta=meta)

    # ---------------------------------------------------------------- other libraries
    def _on_device(self, X, method):
        """Whether ``X`` or the fitted statistics belong to another array library
        than NumPy (then both must be the same one: scikit-learn's check)."""
        if input_namespace(X) is None and on_numpy(self.center_):
            return False
        if get_config()["array_api_dispatch"]:
            check_same_namespace(X, self, attribute="center_", method=method)
            return True
        raise ValueError(
            f"This RobustSmoothClipScaler was fitted on {namespace(self.center_).__name__} "
            f"arrays; call {method} on such arrays inside "
            "sklearn.config_context(array_api_dispatch=True)."
        )

    def _portable_transform(self, X):
        xp = namespace(self.center_)
        dtypes = _float_dtypes(xp, device_of(self.center_))
        if self.dtype is not None and np.dtype(self._output_dtype()) == np.float64:
            dtypes = (xp_float(xp, self._output_dtype()),)
        X = validate_data(self, X, reset=False, dtype=dtypes, ensure_all_finite="allow-nan")
        c = self.max_absolute_value
        t = (X - xp.astype(self.center_, X.dtype)) * xp.astype(self.scale_, X.dtype) / c
        smooth = t / xp.hypot(xp.ones_like(t), t)  # hypot: no overflow in t^2
        smooth = xp.where(xp.isinf(t), xp.sign(t), smooth)
        clipped = xp.clip(smooth * c, -c, c)  # rounding may land an ulp beyond c
        if self.dtype is None:
            return clipped
        return xp.astype(clipped, xp_float(xp, self._output_dtype()))  # after clipping

    def _portable_inverse_transform(self, X):
        xp = namespace(self.center_)
        X = validate_data(self, X, reset=False, dtype=_float_dtypes(xp, device_of(self.center_)),
                          ensure_all_finite="allow-nan")
        c = self.max_absolute_value
        scale = xp.astype(self.scale_, X.dtype)
        divisor = xp.where(scale > 0, scale, xp.full_like(scale, float("inf")))
        return X / xp.sqrt(1.0 - (X / c) ** 2) / divisor + xp.astype(self.center_, X.dtype)

    def _compute_dtype(self):
        """The dtype :meth:`transform` computes in: the input's precision, or float64
        when that is the output's (a float32 output is cast from the clipped values)."""
        if self.dtype is not None and np.dtype(self._output_dtype()) == np.float64:
            return np.float64
        return [np.float64, np.float32]

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


def _numeric_columns(frame):
    """Positions of a data frame's numeric columns (booleans are not numbers here)."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype  # noqa: PLC0415

    return np.array([i for i, dtype in enumerate(frame.dtypes)
                     if is_numeric_dtype(dtype) and not is_bool_dtype(dtype)], dtype=np.intp)


def _numeric_values(frame, columns):
    """The data frame's ``columns`` as one float array (float32 where all are), missing
    values NaN."""
    part = frame.iloc[:, columns]
    float32 = len(columns) and all(dtype == np.float32 for dtype in part.dtypes)
    return part.to_numpy(dtype=np.float32 if float32 else np.float64, na_value=np.nan, copy=True)


def _as_numbers(block, dtype):
    """A block of a Dask table or array as a float array (NaN kept), as ``fit``
    validates it in memory."""
    from sklearn.utils import check_array

    return check_array(block, dtype=dtype, ensure_all_finite="allow-nan", ensure_min_samples=0)


def _half_difference(a, b):
    """``(a - b) / 2`` without overflow for values near the largest float."""
    return 0.5 * a - 0.5 * b


def _float_dtypes(xp, device):
    """The float dtypes of ``xp`` that ``device`` computes in, widest first."""
    return (xp.float64, xp.float32) if has_float64(xp, device) else (xp.float32,)


def _portable_statistics(X, low, high, xp):
    """``(center, scale)`` as :meth:`RobustSmoothClipScaler.fit` defines them, in ``X``'s
    library and on its device.

    Each column is sorted (NaN last, as NumPy, PyTorch and CuPy sort), and the
    percentiles are interpolated linearly between the values of its non-NaN
    entries, as NumPy's ``nanpercentile`` does by default.
    """
    valid = xp.sum(xp.astype(~xp.isnan(X), xp.int64), axis=0)
    ordered = xp.sort(X, axis=0)
    last = xp.astype(xp.clip(valid - 1, 0, None), X.dtype)

    def value_at(index):
        return xp.take_along_axis(ordered, xp.astype(index, xp.int64)[None, :], axis=0)[0, :]

    def percentile(q):
        position = last * (q / 100)
        below, above = xp.floor(position), xp.ceil(position)
        lower, upper = value_at(below), value_at(above)
        return lower + (upper - lower) * (position - below)

    center = percentile(50.0)
    half_spread = _half_difference(percentile(high), percentile(low))
    half_range = _half_difference(value_at(last), ordered[0, :])
    ones, infinities = xp.ones_like(half_spread), xp.full_like(half_spread, float("inf"))
    scale = xp.where(half_spread > 0, 0.5 / xp.where(half_spread > 0, half_spread, ones),
                     1.0 / xp.where(half_range > 0, half_range, infinities))
    zeros = xp.zeros_like(scale)
    return (xp.where(xp.isfinite(center), center, zeros),
            xp.where(xp.isfinite(scale), scale, zeros))
