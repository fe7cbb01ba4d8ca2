"""The estimator's side of a fit on Dask collections: what it learns before the
chunks are prepared (feature names and count, the targets' classes or form,
class weights, how validation scores are summed), and the call that prepares
them (:func:`chunked_train_data`). The data source below it
(:mod:`._data`) and the workers receive the fitted targets' object, never the
estimator."""

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils import check_array

from ..._compat import _check_feature_names, _check_n_features, assert_all_finite_quietly
from .._in_memory import check_validation_size
from . import _cluster
from ._chunks import label_counts
from ._cluster import is_dask_collection, is_dataframe
from ._data import persisted


def chunked_train_data(estimator, X, y, sample_weight, incremental, continuing, classes,
                       validation, stops_early):
    """Validate and encode Dask ``(X, y, sample_weight)`` chunk by chunk on the
    workers, persisted there; return the :class:`ChunkedData`.

    Sets the estimator's ``n_features_in_`` (and ``feature_names_in_``) and,
    when fitting from scratch, its target encoding, as in memory.
    ``stops_early``: whether the call validates after each epoch (the
    estimator decides it once per call), so the data carries its kind of score.
    """
    if not is_dask_collection(X):
        raise TypeError(
            "y (or sample_weight) is a Dask collection but X is not: give X as a Dask array "
            "or dataframe too, partitioned like y."
        )
    score_kind = _score_kind(estimator) if stops_early else None
    check_metadata(estimator, X, reset=not continuing)
    dtype = _model_dtype(estimator, X, continuing)
    n_outputs, counts = _encode_on_client(estimator, y, dtype, not continuing, classes)
    per_class = _class_weights(estimator, counts, incremental)
    classifier = is_classifier(estimator)
    targets = estimator._targets()
    data = persisted(targets, X, y, sample_weight, dtype, per_class)
    data.describe(n_outputs, score_kind, classifier)
    X_val, y_val, sw_val = validation
    if X_val is not None:
        X_val = _as_dask(X_val)
        check_metadata(estimator, X_val, reset=False)
        val_counts = _encode_on_client(estimator, y_val, dtype, False, None)[1]
        val_per_class = _class_weights(estimator, val_counts, False)
        data.validation = persisted(targets, X_val, y_val, sw_val, dtype, val_per_class)
        check_validation_size(data.validation.n)
        data.validation.describe(n_outputs, score_kind, classifier)
    return data


def _model_dtype(estimator, X, continuing):
    if continuing:
        return estimator._theta.dtype
    dtypes = getattr(X, "dtypes", None)
    if dtypes is not None:  # a dataframe: float32 only when every column is
        return np.float32 if all(d == np.float32 for d in dtypes) else np.float64
    return np.float32 if X.dtype == np.float32 else np.float64


def check_metadata(estimator, X, reset):
    """Feature count and names, from Dask's metadata (nothing computed)."""
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-D Dask array or a dataframe for X, got {X.ndim} dimensions."
        )
    if np.isnan(X.shape[1]):
        raise ValueError("X has an unknown number of columns; compute its chunk sizes first.")
    if is_dataframe(X):  # scikit-learn reads the names of pandas frames: an empty one
        import pandas as pd

        X = pd.DataFrame(columns=X.columns)
    _check_feature_names(estimator, X, reset=reset)
    _check_n_features(estimator, X, reset=reset)


def _encode_on_client(estimator, y, dtype, fitting, classes):
    """Set up the target encoding from ``y``'s labels (classifier) or metadata
    (regressor); return ``(number of outputs, class counts or None)``."""
    import dask.array as da

    if not is_dask_collection(y):
        y = da.from_array(np.asarray(y))
    if not is_classifier(estimator):
        columns = () if y.ndim == 1 else (y.shape[1],)
        dtypes = [y.dtype] if hasattr(y, "dtype") else list(y.dtypes)
        sample = np.empty((0, *columns), np.result_type(*dtypes))
        return estimator._encode_targets(sample, dtype, fitting=fitting).shape[1], None
    if y.ndim != 1:
        raise ValueError(
            "A Dask y for MLPBackpropClassifier must hold one label per row (binary or "
            "multiclass); multilabel indicator matrices are supported in memory only."
        )
    labels, counts = _labels_and_counts(y)
    assert_all_finite_quietly(labels, input_name="y")  # before the label checks, as validate_data
    # checks the labels (and classes=) as in memory; sets the classes when fitting
    encoded = estimator._encode_targets(labels, dtype, fitting=fitting, classes=classes)
    return encoded.shape[1], dict(zip(labels.tolist(), counts.tolist()))


def _labels_and_counts(y):
    """The distinct labels of a Dask ``y`` and their counts, from each block's."""
    from dask import delayed

    blocks = list(y.to_delayed()) if is_dataframe(y) else list(y.to_delayed().ravel())
    per_block = _cluster.compute(*[delayed(label_counts)(block) for block in blocks])
    if not sum(counts.sum() for _, counts in per_block):
        raise ValueError("y has no rows: every chunk of the Dask input is empty.")
    labels, inverse = np.unique(np.concatenate([labels for labels, _ in per_block]),
                                return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=np.concatenate([c for _, c in per_block]))
    return labels, counts.astype(np.int64)


def _class_weights(estimator, counts, incremental):
    """``class_weight`` for each of ``classes_`` (None without it), as in memory."""
    class_weight = getattr(estimator, "class_weight", None)
    if class_weight is None:
        return None
    estimator._check_class_weight_request(incremental)
    if class_weight == "balanced":
        per_class = estimator._balanced_class_weight(counts)
    else:
        per_class = estimator._per_class_weight(estimator.classes_)
    bad = ~(np.isfinite(per_class) & (per_class >= 0))
    if bad.any():
        raise ValueError(
            "class_weight must be finite and non-negative; it gives "
            f"{per_class[bad].tolist()} to classes {estimator.classes_[bad].tolist()}."
        )
    return per_class


def _score_kind(estimator):
    """How the validation score is summed over chunks (``scoring`` None or ``"loss"``)."""
    if estimator.scoring == "loss":
        return "loss"
    if estimator.scoring is None:
        return "accuracy" if is_classifier(estimator) else "r2"
    raise ValueError(
        f"scoring={estimator.scoring!r} needs the validation predictions in one place; with "
        "Dask input each epoch's validation score is summed over the chunks on the workers: "
        "use scoring='loss' (the default) or scoring=None (accuracy or R²)."
    )


def _as_dask(X):
    import dask.array as da

    return X if is_dask_collection(X) else da.from_array(check_array(X, accept_sparse=False,
                                                                      dtype=None))
