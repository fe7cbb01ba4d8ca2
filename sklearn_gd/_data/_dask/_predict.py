"""Prediction and scores on Dask input, block by block on the workers."""

import copy
import functools
import uuid
import warnings

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted

from . import _cluster
from ._chunks import predict_block, score_block, score_from_sums
from ._cluster import (
    aligned_blocks,
    is_dask_collection,
    is_dataframe,
    row_blocks,
    shared,
    tree_sum,
)
from ._intake import check_metadata


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
    probe = np.zeros((1, X.shape[1]), estimator._theta.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sample = getattr(model, method)(probe)
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

