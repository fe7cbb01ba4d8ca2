"""The estimators' side of training on other array libraries (see :mod:`._array_api`).

:class:`ArrayAPIMixin` holds what :class:`~sklearn_gd._base.BaseGD` does
differently when ``X`` is another library's array under
``array_api_dispatch``: ``X`` is validated where it lives; the targets and
sample weights (one or a few values per row) are checked and encoded on the
host as for NumPy input, then copied once to ``X``'s device; the fitted
parameters live on that device; prediction runs there.
"""

import copy as copy_module
import dataclasses
import warnings

import numpy as np
from sklearn import config_context, get_config
from sklearn.utils.validation import check_X_y, validate_data

from ._compat import ARRAY_API_TRAINING, check_same_namespace, move_estimator_to, move_to
from ._data._in_memory import TrainData
from ._engine._array_api import (
    copy,
    device_of,
    float_bits,
    has_float64,
    input_namespace,
    namespace,
    numpy_dtype,
    to_device,
    to_numpy,
    xp_float,
)
from ._engine._backend import on_numpy


class ArrayAPIMixin:
    """Array API support of the estimators: validation, data, prediction, moves."""

    def _where(self, X):
        """``(xp, device)`` when ``X`` is trained on in its own library, else None."""
        return input_namespace(X)

    # ------------------------------------------------------------------ fitting
    def _portable_X(self, X, reset, where):
        """``X`` validated in its library: a float dtype its device computes in."""
        xp, device = where
        if getattr(X, "is_sparse", False) or "sparse" in str(getattr(X, "layout", "")):
            raise TypeError(
                f"A sparse {xp.__name__} array was passed: sparse X trains as a SciPy sparse "
                "matrix (on the CPU) only. Pass a dense array (X.to_dense()) or a SciPy CSR "
                "matrix."
            )
        if self._table() is not None:  # encoded on the host, then where the parameters are
            return self._on_parameters_device(self._table_matrix(X, reset=reset))
        dtypes = (xp.float64, xp.float32) if has_float64(xp, device) else (xp.float32,)
        if not reset:  # the model's dtype
            dtypes = (xp_float(xp, self._theta.dtype),)
        return validate_data(self, X, reset=reset, dtype=dtypes)

    def _portable_train_data(self, X, y, sample_weight, incremental, continuing, classes,
                             validation, where):
        """:class:`TrainData` with ``X``, the encoded targets and the weights on ``X``'s device."""
        X = self._portable_X(X, reset=not continuing, where=where)
        Y, sw, y_host = self._host_targets(X, y, sample_weight, incremental,
                                           fitting=not continuing, classes=classes)
        return TrainData(
            X, to_device(Y, *where), to_device(sw, *where), y=y_host,
            stratify=self._targets().stratify(y_host),
            validation=self._portable_validation(*validation, where=where, dtype=X.dtype),
            host_targets=(Y, sw),
        )

    def _host_targets(self, X, y, sample_weight, incremental, fitting, classes=None):
        """``(Y, sample weights, y)`` checked and encoded on the host, for ``X``'s rows.

        The checks of ``y`` and the weights need only the number of rows, which
        a host array of no columns stands in for.
        """
        dtype = numpy_dtype(X.dtype)
        rows = np.empty((X.shape[0], 0), dtype)
        with config_context(array_api_dispatch=False):
            y = _host(y)
            _, y = check_X_y(rows, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=self._y_numeric, ensure_min_features=0)
            Y = self._encode_targets(y, dtype, fitting=fitting, classes=classes)
            sw = self._validate_sample_weight(_host(sample_weight), rows)
            sw = self._effective_sample_weight(y, sw, incremental)
        return Y, sw, y

    def _portable_validation(self, X_val, y_val, sample_weight_val, where, dtype):
        """The user's validation set on the training device, or None."""
        if X_val is None:
            return None
        xp, device = where
        if self._table() is not None:
            X_val = self._on_parameters_device(self._table_matrix(X_val, reset=False))
        else:
            X_val = validate_data(self, move_to(X_val, xp=xp, device=device), reset=False,
                                  dtype=(dtype,))
        Y, sw, y = self._host_targets(X_val, y_val, sample_weight_val, incremental=False,
                                      fitting=False)
        return TrainData(X_val, to_device(Y, *where), to_device(sw, *where), y=y)

    def _move_state(self, state, where):
        """A fresh state with its parameters on ``X``'s device (``where``), or as it was."""
        if where is None:
            return state
        return dataclasses.replace(state, theta=to_device(state.theta, *where))

    def _continuing_where(self, X, method, where):
        """Where a fitted model trains on ``X``: a table model whose parameters live
        on a device trains there from tables (encoded on the host); other
        models only on ``X`` of their parameters' library and device."""
        if self._table() is not None and not on_numpy(self._theta) and where is None:
            return namespace(self._theta), device_of(self._theta)
        self._check_same_library(X, method)
        return where

    def _check_same_library(self, X, method):
        """Refuse ``X`` of another library or device than the fitted parameters."""
        theta = self._theta
        if get_config()["array_api_dispatch"]:
            check_same_namespace(X, self, attribute="_theta", method=method)
        elif not on_numpy(theta):
            raise ValueError(
                f"This {type(self).__name__} was fitted on {namespace(theta).__name__} arrays "
                f"(device {device_of(theta)}); call {method} on such arrays inside "
                "sklearn.config_context(array_api_dispatch=True), or move the model first: "
                "sklearn_gd.move_model(model, numpy, 'cpu')."
            )

    # ------------------------------------------------------------------ prediction
    def _portable_forward(self, X, method):
        """``(R, P)`` for ``X`` of the fitted parameters' library and device."""
        self._check_same_library(X, method)
        xp = namespace(self._theta)
        X = validate_data(self, X, reset=False, dtype=(xp_float(xp, self._theta.dtype),))
        return self._finite_outputs(X)

    def _follow_X(self, X, *arrays):
        """``arrays`` (targets, weights) moved to ``X``'s library and device, as
        scikit-learn's metrics take them under ``array_api_dispatch``.

        Labels that library cannot hold (strings) stay NumPy arrays, as
        :meth:`predict` gives them.
        """
        where = self._where(X)
        if where is None:
            return arrays
        return [_follow(a, *where) for a in arrays]

    # ------------------------------------------------------------------ moves
    def __sklearn_array_api_convert__(self, converter):
        """A copy of the fitted model with every array converted by ``converter``.

        scikit-learn's ``move_estimator_to`` calls this;
        :func:`sklearn_gd.move_model` is the public way.
        """
        new = copy_module.copy(self)
        if hasattr(self, "_state"):
            new._set_state(self._state.copy(convert=converter))
        return new


def move_model(estimator, xp, device=None):
    """A copy of a fitted sklearn-gd model whose parameters live in ``xp`` on ``device``.

    Use it to carry a model between a GPU and the CPU, or from PyTorch to
    NumPy (for ONNX export, skops, or serving without PyTorch): the weights,
    the optimizer's state (so training can go on with ``partial_fit`` there)
    and the best epoch's weights are copied; the original is left as it is.

    Parameters
    ----------
    estimator : GDRegressor, MLPBackpropClassifier, or a Pipeline of steps
        A fitted model, or a pipeline ending in one (every step is moved
        with scikit-learn's ``move_estimator_to`` convention).
    xp : module
        The target array library: ``numpy``, ``torch``, ``cupy``,
        ``array_api_strict`` (or its ``array_api_compat`` namespace).
    device : str or device, default=None
        The target device (``"cpu"``, ``"cuda"``, ``"mps"``...); None for
        the library's default. A device without float64 (MPS) gets a
        float32 model.

    Returns
    -------
    model : estimator
        The moved copy.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_gd import GDRegressor, move_model
    >>> model = GDRegressor(solver="lbfgs").fit(np.eye(3), [0.0, 1.0, 2.0])
    >>> same = move_model(model, np)
    >>> same.coefs_[0].shape
    (3, 1)
    """
    from sklearn.base import BaseEstimator

    if not ARRAY_API_TRAINING:  # pragma: no cover - scikit-learn < 1.8
        raise ImportError("move_model needs scikit-learn >= 1.8.")
    if xp is np or getattr(xp, "__name__", "").endswith("numpy"):
        xp, device = np, "cpu"
    else:  # the library's Array API namespace (array_api_compat's wrapper of torch, cupy)
        xp = namespace(xp.asarray(0))

    def converter(a):
        return copy(move_to(a, xp=xp, device=device))

    with config_context(array_api_dispatch=True):
        if isinstance(estimator, BaseEstimator) and hasattr(estimator,
                                                             "__sklearn_array_api_convert__"):
            moved = estimator.__sklearn_array_api_convert__(converter)
        else:
            moved = move_estimator_to(estimator, xp, device)
    _warn_if_narrowed(estimator, moved, device)
    return moved


def _warn_if_narrowed(estimator, moved, device):
    """Say so when a float64 model became float32 (a device without float64)."""
    last = getattr(estimator, "steps", [(None, estimator)])[-1][1]
    last_moved = getattr(moved, "steps", [(None, moved)])[-1][1]
    if not hasattr(last, "_state"):
        return
    before, after = float_bits(last._theta.dtype), float_bits(last_moved._theta.dtype)
    if after < before:
        warnings.warn(
            f"The device {device} has no float64: the model's parameters were converted to "
            "float32, and it computes in float32 there.", UserWarning,
        )


def _follow(a, xp, device):
    """A target or weight vector in ``xp`` on ``device``; non-numeric labels on the host."""
    if a is None:
        return None
    if isinstance(a, (list, tuple)) or hasattr(a, "iloc"):
        a = np.asarray(a)
    if isinstance(a, np.ndarray) and a.dtype.kind not in "biuf":
        return a
    return move_to(a, xp=xp, device=device)


def _host(a):
    """A target or weight vector on the host: other libraries' arrays copied, the rest as given."""
    if hasattr(a, "__dlpack__") and not (isinstance(a, np.ndarray) or hasattr(a, "iloc")):
        return to_numpy(a)
    return a
