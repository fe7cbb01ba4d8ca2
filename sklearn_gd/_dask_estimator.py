"""The estimators' side of Dask collections, as :mod:`._array_api_estimator` is
of other array libraries' arrays.

A fit on Dask input learns here, on the client, what the in-memory fit
learns from the whole table (feature names and count, the targets' classes or
form, class weights, how validation scores are summed), then hands the fitted
targets' object down to the data source (:mod:`._data._dask`), whose chunks are
prepared on the workers: the workers never receive the estimator for
training. Prediction and scores run the fitted model block by block on the
workers (:func:`blockwise`, :func:`blockwise_score`).
"""

import copy
import functools
import uuid
import warnings

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import accuracy_score
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from ._compat import (
    _check_feature_names,
    _check_n_features,
    assert_all_finite_quietly,
    check_part_sample_weight,
)
from ._data._dask import _cluster
from ._data._dask._chunks import MissingValues, label_counts, score_from_sums, score_sums
from ._data._dask._cluster import (
    aligned_blocks,
    is_dask_collection,
    is_dataframe,
    row_blocks,
    shared,
    tree_sum,
)
from ._data._dask._data import persisted
from ._data._dask._tables import learn_table, needs_table
from ._data._in_memory import check_validation_size
from ._table import _is_frame, as_pandas


# ---------------------------------------------------------------------- fitting
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
    if not continuing and needs_table(X, estimator.categorical_features):
        estimator._table_input = learn_table(X, estimator.categorical_features)
    dtype = _model_dtype(estimator, X, continuing)
    n_outputs, counts = _encode_on_client(estimator, y, dtype, not continuing, classes)
    per_class = _class_weights(estimator, counts, incremental)
    classifier = is_classifier(estimator)
    targets = estimator._targets()
    try:
        data = persisted(targets, X, y, sample_weight, dtype, per_class, estimator._table())
    except MissingValues:
        if continuing or estimator._table() is not None:
            raise
        # numbers with missing values: a table after all, learned as in memory
        estimator._table_input = learn_table(X, estimator.categorical_features)
        data = persisted(targets, X, y, sample_weight, dtype, per_class, estimator._table())
    data.describe(n_outputs, score_kind, classifier)
    X_val, y_val, sw_val = validation
    if X_val is not None:
        X_val = _as_dask(X_val, estimator._table())
        check_metadata(estimator, X_val, reset=False)
        val_counts = _encode_on_client(estimator, y_val, dtype, False, None)[1]
        val_per_class = _class_weights(estimator, val_counts, False)
        data.validation = persisted(targets, X_val, y_val, sw_val, dtype, val_per_class,
                                    estimator._table())
        check_validation_size(data.validation.n)
        data.validation.describe(n_outputs, score_kind, classifier)
    return data


def _model_dtype(estimator, X, continuing):
    if continuing:
        return estimator._theta.dtype
    if estimator._table() is not None:
        return np.dtype(estimator._table().dtype)
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


def _as_dask(X, table):
    """In-memory ``X_val`` as one Dask block (a table's: as it is, for its encoding)."""
    import dask.array as da

    if is_dask_collection(X):
        return X
    if table is None:
        return da.from_array(check_array(X, accept_sparse=False, dtype=None))
    X = as_pandas(X)
    if _is_frame(X):
        import dask.dataframe as dd

        return dd.from_pandas(X, npartitions=1)
    return da.from_array(np.asarray(X))


# ---------------------------------------------------------------------- prediction
def blockwise(method):
    """Decorate a prediction method: on Dask input, it runs block by block on the
    workers and returns a lazy Dask array (:func:`predict_blocks`)."""
    @functools.wraps(method)
    def predict(self, X):
        if is_dask_collection(X):
            return predict_blocks(self, X, method.__name__)
        return method(self, X)

    return predict


def blockwise_score(method):
    """Decorate ``score``: on Dask input, it sums right answers (or R²'s sums) block by
    block on the workers (:func:`score_blocks`) and gathers only the sums."""

    @functools.wraps(method)
    def score(self, X, y, sample_weight=None):
        if is_dask_collection(X):
            return score_blocks(self, X, y, sample_weight)
        return method(self, X, y, sample_weight)

    return score


def predict_blocks(estimator, X, method):
    """``estimator.method`` on each block of Dask ``X``, lazily: a Dask array."""
    check_is_fitted(estimator)
    check_metadata(estimator, X, reset=False)
    model = copy.copy(estimator)
    name = f"sklearn-gd-{method}-{uuid.uuid4().hex}"
    sample = _sample_output(model, method)
    if is_dataframe(X):
        meta = np.empty((0,) + sample.shape[1:], sample.dtype)
        return X.map_partitions(predict_block, model, method, meta=meta)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    if sample.ndim == 1:
        return X.map_blocks(predict_block, model, method, dtype=sample.dtype, drop_axis=1,
                            name=name)
    return X.map_blocks(predict_block, model, method, dtype=sample.dtype,
                        chunks=(X.chunks[0], (sample.shape[1],)), name=name)


def _sample_output(model, method):
    """What ``model.method`` returns for one row (its dtype and columns), from a row
    of zeros (a table model's: a row of its input matrix)."""
    probe_model = copy.copy(model)
    width = probe_model.n_features_in_
    if model._table() is not None:
        width = model._layout.n_features
        probe_model._reads_matrices(width)
    probe = np.zeros((1, width), model._theta.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(probe_model, method)(probe)


def score_blocks(estimator, X, y, sample_weight):
    """Accuracy (classifier) or R² (regressor) summed block by block on the workers."""
    from dask import delayed

    check_is_fitted(estimator)
    check_metadata(estimator, X, reset=False)
    kind = "accuracy" if is_classifier(estimator) else "r2"
    X_blocks = row_blocks(X)
    y_blocks = aligned_blocks(y, X, X_blocks, "y")
    sw_blocks = aligned_blocks(sample_weight, X, X_blocks, "sample_weight")
    model = shared(copy.copy(estimator), "model")
    parts = [delayed(score_block)(model, xb, yb, wb, kind)
             for xb, yb, wb in zip(X_blocks, y_blocks, sw_blocks)]
    sums = _cluster.compute(tree_sum(parts))[0]
    if kind == "accuracy":
        return float(sums[0] / sums[1])
    return score_from_sums("r2", sums[0], sums[1:])


def predict_block(X, model, method):
    return getattr(model, method)(X)


def score_block(model, X, y, sw, kind):
    """Score sums of one block of a fitted model, as :func:`score_sums`.

    The block's targets and weights are validated by the checks ``score``
    runs in memory (NaN, label types, finite weights; negative weights are
    allowed there too), so the same errors are raised.
    """
    predicted = model.predict(X)
    y = np.asarray(y)
    sw = (np.ones(y.shape[0]) if sw is None
          else check_part_sample_weight(sw, y.reshape(y.shape[0], -1), dtype=np.float64,
                                        ensure_non_negative=False))
    if kind == "accuracy":
        if y.shape[0] == 0:  # an empty block: nothing to check or count
            return (0.0, 0.0)
        right = accuracy_score(y, predicted, sample_weight=sw, normalize=False)
        return (float(right), float(sw.sum()))
    Y = check_array(y, ensure_2d=False, dtype="numeric", ensure_min_samples=0)
    P = predicted.reshape(y.shape[0], -1).astype(np.float64)
    Y = Y.reshape(y.shape[0], -1).astype(np.float64)
    return (float(sw.sum()), *score_sums("r2", P, Y, sw))
