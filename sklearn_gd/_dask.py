"""Data-parallel training on Dask collections: the data stays on the workers.

``fit`` and ``partial_fit`` on a Dask array or dataframe validate and encode
each chunk on the worker that holds it and persist the result there once
(:func:`chunked_train_data`). Each step of training then sends the
parameters to the chunks, each chunk computes the *summed* data loss and
gradient of its rows (:func:`_chunk_loss_and_grad`, :func:`_chunk_batch`),
the sums are reduced in a tree of ``REDUCE_FAN_IN`` (a few kB of gradient per
chunk, never a row of data), and the client takes the step, as in memory.

The objective is the one written down for in-memory training,

.. math::

    J(\\theta) = \\frac{1}{S} \\sum_c \\sum_{i \\in c} s_i\\, \\ell_i
    + \\frac{\\alpha}{2 S} \\|W\\|^2,\\qquad S = \\sum_c \\sum_{i \\in c} s_i,

with each chunk ``c`` dividing its own weights by the total ``S`` (known
before the first step) and the L2 term added once, on the client. L-BFGS
therefore minimises exactly the in-memory ``J``, up to the order of the
floating-point sums.

Mini-batch solvers take synchronous data-parallel steps: an epoch of
``ceil(n / B)`` steps (``B = batch_size``) in which step ``k`` takes from
chunk ``c`` (of ``n_c`` rows) its rows ``floor(n_c k B / n)`` to
``floor(n_c (k + 1) B / n)`` in the chunk's own (shuffled) order: every chunk
contributes in proportion to its rows, each row once per epoch, and a step
holds ``B`` rows give or take one per chunk. With shuffling, each chunk's
order is a uniform permutation, so a step's rows are a sample of the data
stratified by chunk: the same distribution of batch gradients as the
in-memory epoch's (uniform samples without replacement) up to that
stratification. With one chunk and ``shuffle=False`` the steps are the
in-memory ones, row for row.
"""

import copy
import sys
import uuid
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone, is_classifier
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from ._batches import Regularizers, resolve_batch_size
from ._compat import _check_feature_names, _check_n_features, _check_sample_weight
from ._network import L2Penalty

#: How many partial sums one reduction task adds: a tree of depth
#: ``log_{fan_in}(chunks)`` instead of one task receiving every chunk's gradient.
REDUCE_FAN_IN = 8

#: Exceptions of ``distributed`` that mean the cluster, not the data, failed.
CLUSTER_FAILURES = ("KilledWorker", "FutureCancelledError", "CancelledError", "CommClosedError")


def is_dask_collection(obj):
    """True for a Dask array, dataframe or series (without importing Dask)."""
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(obj)


# ---------------------------------------------------------------------- on the workers
@dataclass
class Chunk:
    """One chunk's validated rows on its worker: ``X`` (2-D float or CSR), encoded
    targets ``Y`` (2-D), effective sample weights ``sw`` (or None)."""

    X: Any
    Y: np.ndarray
    sw: Optional[np.ndarray]

    def __len__(self):
        return self.Y.shape[0]


def _prepare_chunk(encoder, X, y, sw, dtype, per_class):
    """Validate and encode one chunk as the estimator does in memory.

    ``encoder`` holds the fitted target encoding (``classes_``...);
    ``per_class`` the class weights, or None.
    """
    X = check_array(X, accept_sparse="csr", dtype=dtype, ensure_min_samples=0)
    if sp.issparse(X):
        X = X.tocsr()
    y = np.asarray(y)
    if y.shape[0] != X.shape[0] or (sw is not None and np.shape(sw)[0] != X.shape[0]):
        lengths = [X.shape[0], y.shape[0]] + ([] if sw is None else [np.shape(sw)[0]])
        raise ValueError(
            f"A chunk of X, y and sample_weight has {lengths} rows: partition them alike "
            "(the same row chunks, or the same dataframe partitions)."
        )
    Y = encoder._encode_targets(y, dtype, fitting=False)
    if sw is not None:
        sw = _check_sample_weight(sw, X, dtype=dtype, ensure_non_negative=True)
    if per_class is not None:
        weights = per_class[np.searchsorted(encoder.classes_, y.ravel())].astype(dtype)
        sw = weights if sw is None else sw * weights
    return Chunk(X, Y, sw)


def _chunk_stats(chunk):
    """``(rows, total weight, sum_i s_i Y_i)`` of a chunk, in float64."""
    Y = chunk.Y.astype(np.float64)
    if chunk.sw is None:
        return len(chunk), float(len(chunk)), Y.sum(axis=0)
    sw = chunk.sw.astype(np.float64)
    return len(chunk), float(sw.sum()), sw @ Y


def _quiet(function):
    """Run a worker's arithmetic as the client's loop does: overflow is detected
    (and undone) by the divergence guard, so NumPy need not warn."""
    import functools

    @functools.wraps(function)
    def quiet(*args):
        with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
            return function(*args)

    return quiet


@_quiet
def _chunk_loss_and_grad(chunk, theta, net, n, total):
    """``(sum_i w_i loss_i, its gradient)`` with ``w_i = s_i / S`` (``1 / n``
    unweighted): the chunk's share of the full-batch data loss."""
    m = len(chunk)
    weights = np.full(m, 1.0 / n, dtype=theta.dtype) if chunk.sw is None else chunk.sw / total
    ws = net.workspace(m, theta.dtype)
    grad = np.empty_like(theta)
    data_loss, _ = net.loss_and_grad(theta, chunk.X, chunk.Y.astype(theta.dtype), weights,
                                     0.0, ws, grad)
    return data_loss, grad


def _chunk_order(n_rows, seed, shuffle):
    """The chunk's row order for one epoch (None: in order)."""
    return np.random.default_rng(seed).permutation(n_rows) if shuffle else None


def _batch_rows(chunk, order, start, stop, dtype, m, rows_per_weight):
    """Rows ``start:stop`` of the chunk's order, and their objective weights
    ``w_i = s_i n / (m S)`` (``1 / m`` unweighted), as in memory."""
    rows = slice(start, stop) if order is None else order[start:stop]
    X, Y = chunk.X[rows], chunk.Y[rows].astype(dtype)
    if chunk.sw is None:
        weights = np.full(stop - start, 1.0 / m, dtype=dtype)
    else:
        weights = np.array(chunk.sw[rows], dtype=dtype)  # a copy: the chunk stays as it was
        weights *= rows_per_weight / m
    return X, Y, weights


@_quiet
def _chunk_batch(chunk, order, start, stop, theta, net, m, rows_per_weight, draws):
    """The chunk's part of one synchronous step: ``(data loss, gradient, weight)``.

    ``draws``: ``(seed, rates, input_noise)`` of the dropout masks and input
    noise, drawn here from a generator seeded per step and chunk.
    """
    X, Y, weights = _batch_rows(chunk, order, start, stop, theta.dtype, m, rows_per_weight)
    seed, rates, input_noise = draws
    hidden = net.layout.layer_sizes[1:-1]
    regs = Regularizers(list(rates), input_noise, stop - start, hidden, theta.dtype,
                        np.random.default_rng(seed))
    ws = net.workspace(stop - start, theta.dtype, dropout=regs.active)
    grad = np.empty_like(theta)
    data_loss, _ = net.loss_and_grad(theta, regs.noisy(X), Y, weights, 0.0, ws, grad,
                                     regs.masks(stop - start))
    return data_loss, grad, float(weights.sum())


@_quiet
def _chunk_batch_objective(chunk, order, start, stop, theta, net, m, rows_per_weight):
    """The chunk's part of the data loss of ``theta`` on a step's rows (no dropout)."""
    X, Y, weights = _batch_rows(chunk, order, start, stop, theta.dtype, m, rows_per_weight)
    R, P = net.forward(theta, X)
    return (float(net.loss.value(R, P, Y) @ weights),)


@_quiet
def _chunk_constant_loss(chunk, order, start, stop, bias, net, m, rows_per_weight):
    """The chunk's part of the constant model's loss on a step's rows."""
    _, Y, weights = _batch_rows(chunk, order, start, stop, bias.dtype, m, rows_per_weight)
    return (net.constant_loss(bias, Y, weights),)


def _split_chunk(chunk, fraction, seed, stratify):
    """``(training part, validation part)``: ``round(fraction * rows)`` of the
    chunk's rows held out at random, class by class when ``stratify``."""
    rng = np.random.default_rng(seed)
    if stratify:
        labels = chunk.Y.argmax(axis=1) if chunk.Y.shape[1] > 1 else chunk.Y[:, 0]
        groups = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    else:
        groups = [np.arange(len(chunk))]
    held_out = [rng.permutation(g)[: int(round(fraction * g.shape[0]))] for g in groups]
    val = np.sort(np.concatenate(held_out)) if held_out else np.empty(0, np.intp)
    train = np.setdiff1d(np.arange(len(chunk)), val, assume_unique=True)

    def rows(index):
        return Chunk(chunk.X[index], chunk.Y[index], None if chunk.sw is None else chunk.sw[index])

    return rows(train), rows(val)


@_quiet
def _chunk_evaluate(chunk, theta, net, score_kind):
    """Sums of one validation chunk: ``(sum s_i loss_i, S_c, score sums...)``."""
    R, P = net.forward(theta, chunk.X)
    Y = chunk.Y.astype(theta.dtype)
    sw = np.ones(len(chunk)) if chunk.sw is None else chunk.sw.astype(np.float64)
    loss = float(net.loss.value(R, P, Y).astype(np.float64) @ sw)
    return (loss, float(sw.sum()), *score_sums(score_kind, P, Y, sw))


def score_sums(kind, P, Y, sw):
    """Additive sums from which :func:`score_from_sums` gives the score.

    ``"accuracy"``: ``sum s_i [row i right]`` (argmax for several columns,
    0.5 thresholds otherwise); ``"r2"``: per output ``sum s (y - p)^2``,
    ``sum s y``, ``sum s y^2``.
    """
    if kind == "accuracy":
        if Y.shape[1] > 1:
            right = np.argmax(P, axis=1) == np.argmax(Y, axis=1)
        else:
            right = np.all((P > 0.5) == (Y > 0.5), axis=1)
        return (float(right @ sw),)
    Y = Y.astype(np.float64)
    return ((sw @ (Y - P) ** 2), sw @ Y, sw @ Y**2)


def score_from_sums(kind, total, sums):
    """Accuracy, or R² (uniform average over outputs), from the summed :func:`score_sums`.

    R² of output ``j`` is ``1 - SS_res / SS_tot`` with
    ``SS_tot = sum s y^2 - (sum s y)^2 / S``; a constant output scores 1 when
    predicted exactly and 0 otherwise, as ``sklearn.metrics.r2_score`` does.
    """
    if kind == "accuracy":
        return sums[0] / total
    residual, first, second = (np.asarray(s, dtype=np.float64) for s in sums)
    spread = second - first**2 / total
    constant = spread <= 1e-12 * np.maximum(second, 1.0)
    safe = np.where(constant, 1.0, spread)
    r2 = np.where(constant, np.where(residual == 0, 1.0, 0.0), 1.0 - residual / safe)
    return float(np.mean(r2))


def _add(*parts):
    """Elementwise sum of tuples of partial sums (None: a chunk with nothing to add)."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    total = list(parts[0])
    for part in parts[1:]:
        for i, value in enumerate(part):
            total[i] = total[i] + value
    return tuple(total)


def _predict_block(X, model, method):
    return getattr(model, method)(X)


def _score_block(model, X, y, sw, kind):
    """Score sums of one block of a fitted model, as :func:`score_sums`."""
    predicted = model.predict(X)
    y = np.asarray(y)
    sw = np.ones(y.shape[0]) if sw is None else np.asarray(sw, dtype=np.float64)
    if kind == "accuracy":
        right = predicted == y if y.ndim == 1 else np.all(predicted == y, axis=1)
        return (float(right @ sw), float(sw.sum()))
    P = predicted.reshape(y.shape[0], -1).astype(np.float64)
    Y = y.reshape(y.shape[0], -1).astype(np.float64)
    return (float(sw.sum()), *score_sums("r2", P, Y, sw))


# ---------------------------------------------------------------------- on the client
def compute(*objects):
    """``dask.compute`` on the active scheduler; a lost cluster becomes a clear error."""
    import dask

    try:
        return dask.compute(*objects)
    except Exception as exc:
        if type(exc).__name__ not in CLUSTER_FAILURES:
            raise
        raise RuntimeError(
            f"Training on the Dask cluster failed ({type(exc).__name__}: {exc}); the workers "
            "could not recompute the lost chunks. The model is left as it was before this call."
        ) from exc


def holders(chunks):
    """The worker holding each chunk (None without a distributed client, or when lost)."""
    client = _distributed_client()
    if client is None:
        return [None] * len(chunks)
    held = client.who_has(chunks)
    return [(held.get(chunk.key) or [None])[0] for chunk in chunks]


def _distributed_client():
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        return distributed.default_client()
    except ValueError:  # no client: Dask's local scheduler
        return None


def on_chunks(function, calls, where):
    """``delayed(function)(*args)`` for each ``args`` in ``calls`` (the chunk first),
    each run on the worker holding its chunk (``where``, from :func:`holders`).

    The scheduler would otherwise place the first tasks by a default duration
    estimate, and might copy whole chunks to an idle worker: the tasks are
    pinned to their chunk's worker, loosely, so that a chunk recomputed
    elsewhere after its worker was lost is used where it now is.
    """
    import contextlib

    import dask
    from dask import delayed

    tasks = []
    for args, worker in zip(calls, where):
        pinned = (dask.annotate(workers=[worker], allow_other_workers=True) if worker
                  else contextlib.nullcontext())
        with pinned:
            tasks.append(delayed(function)(*args))
    return tasks


def tree_sum(parts):
    """The sum of delayed tuples of partial sums, added ``REDUCE_FAN_IN`` at a time."""
    from dask import delayed

    parts = list(parts)
    while len(parts) > 1:
        parts = [delayed(_add, pure=True)(*parts[i:i + REDUCE_FAN_IN])
                 for i in range(0, len(parts), REDUCE_FAN_IN)]
    return parts[0]


def shared(value, what):
    """``value`` as one delayed object: sent to each worker once, not once per task."""
    from dask import delayed

    return delayed(value, name=f"sklearn-gd-{what}-{uuid.uuid4().hex}")


def row_blocks(X):
    """The row blocks of ``X`` (a Dask array: one chunk of columns; a dataframe:
    its partitions) as delayed objects."""
    if _is_dataframe(X):
        return list(X.to_delayed())
    if X.ndim == 2 and len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return list(X.to_delayed().ravel())


def aligned_blocks(values, X, blocks, name):
    """``values`` (y or sample weights: Dask or in memory, or None) cut like ``X``'s blocks."""
    import dask.array as da

    if values is None:
        return [None] * len(blocks)
    if is_dask_collection(values):
        if _is_dataframe(values):
            if values.npartitions != len(blocks):
                raise ValueError(
                    f"{name} has {values.npartitions} partitions but X has {len(blocks)} "
                    "blocks: partition them alike."
                )
            return list(values.to_delayed())
        if hasattr(X, "chunks") and not any(np.isnan(X.chunks[0])):
            values = values.rechunk({0: X.chunks[0], **({1: -1} if values.ndim == 2 else {})})
        elif len(values.chunks[0]) != len(blocks):
            raise ValueError(f"{name} has {len(values.chunks[0])} row chunks but X has "
                             f"{len(blocks)}: chunk them alike.")
        elif values.ndim == 2:
            values = values.rechunk({1: -1})
        return list(values.to_delayed().ravel())
    values = np.asarray(values)
    lengths = _block_lengths(X)
    if values.shape[0] != sum(lengths):
        raise ValueError(f"{name} has {values.shape[0]} rows but X has {sum(lengths)}.")
    chunks = (tuple(lengths),) + tuple((k,) for k in values.shape[1:])
    return list(da.from_array(values, chunks=chunks).to_delayed().ravel())


def _block_lengths(X):
    """Rows of each of ``X``'s blocks (computed on the workers when Dask does not know them)."""
    if hasattr(X, "chunks") and not any(np.isnan(X.chunks[0])):
        return [int(c) for c in X.chunks[0]]
    if hasattr(X, "chunks"):
        return [int(c) for c in X.compute_chunk_sizes().chunks[0]]
    return [int(c) for c in X.map_partitions(len).compute()]


def _model_dtype(estimator, X, continuing):
    if continuing:
        return estimator._theta.dtype
    dtypes = getattr(X, "dtypes", None)
    if dtypes is not None:  # a dataframe: float32 only when every column is
        return np.float32 if all(d == np.float32 for d in dtypes) else np.float64
    return np.float32 if X.dtype == np.float32 else np.float64


def _check_metadata(estimator, X, reset):
    """Feature count and names, from Dask's metadata (nothing computed)."""
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D Dask array or a dataframe for X, got {X.ndim} dimensions.")
    if np.isnan(X.shape[1]):
        raise ValueError("X has an unknown number of columns; compute its chunk sizes first.")
    if _is_dataframe(X):  # scikit-learn reads the names of pandas frames: an empty one
        import pandas as pd

        X = pd.DataFrame(columns=X.columns)
    _check_feature_names(estimator, X, reset=reset)
    _check_n_features(estimator, X, reset=reset)


def _is_dataframe(X):
    """A Dask dataframe or series (partitions), not a Dask array (chunks)."""
    return hasattr(X, "npartitions") and not hasattr(X, "rechunk")


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
    if _is_dataframe(y):  # a series: its own count, without converting its dtype
        counted = compute(y.value_counts())[0]
        labels, counts = np.asarray(counted.index), np.asarray(counted)
    else:
        labels, counts = compute(*da.unique(y, return_counts=True))
    # checks the labels (and classes=) as in memory; sets the classes when fitting
    encoded = estimator._encode_targets(labels, dtype, fitting=fitting, classes=classes)
    return encoded.shape[1], dict(zip(labels.tolist(), counts.tolist()))


def _class_weights(estimator, counts, incremental):
    """``class_weight`` for each of ``classes_`` (None without it), as in memory."""
    class_weight = getattr(estimator, "class_weight", None)
    if class_weight is None:
        return None
    if incremental and class_weight == "balanced":
        estimator._effective_sample_weight(estimator.classes_, None, incremental)  # its error
    if class_weight == "balanced":
        present = np.array([label in counts for label in estimator.classes_.tolist()])
        per_class = np.zeros(estimator.classes_.shape[0])
        counted = np.array([counts[label] for label in estimator.classes_[present].tolist()],
                           dtype=np.float64)
        per_class[present] = counted.sum() / (present.sum() * counted)
    else:
        per_class = estimator._per_class_weight(estimator.classes_)
    bad = ~(np.isfinite(per_class) & (per_class >= 0))
    if bad.any():
        raise ValueError(
            "class_weight must be finite and non-negative; it gives "
            f"{per_class[bad].tolist()} to classes {estimator.classes_[bad].tolist()}."
        )
    return per_class


def _encoder(estimator):
    """An unfitted copy holding only the target encoding: what each chunk task receives."""
    encoder = clone(estimator)
    for name in ("classes_", "_target_kind", "_y_ndim"):
        if hasattr(estimator, name):
            setattr(encoder, name, getattr(estimator, name))
    return encoder


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


def chunked_train_data(estimator, X, y, sample_weight, incremental, continuing, classes,
                       validation):
    """Validate and encode Dask ``(X, y, sample_weight)`` chunk by chunk on the
    workers, persisted there; return the :class:`ChunkedData`.

    Sets the estimator's ``n_features_in_`` (and ``feature_names_in_``) and,
    when fitting from scratch, its target encoding, as in memory.
    """
    if not is_dask_collection(X):
        raise TypeError(
            "y (or sample_weight) is a Dask collection but X is not: give X as a Dask array "
            "or dataframe too, partitioned like y."
        )
    score_kind = _score_kind(estimator) if estimator.early_stopping else None
    _check_metadata(estimator, X, reset=not continuing)
    dtype = _model_dtype(estimator, X, continuing)
    n_outputs, counts = _encode_on_client(estimator, y, dtype, not continuing, classes)
    per_class = _class_weights(estimator, counts, incremental)
    classifier = is_classifier(estimator)
    data = _persisted(estimator, X, y, sample_weight, dtype, per_class)
    data.describe(n_outputs, score_kind, classifier)
    X_val, y_val, sw_val = validation
    if X_val is not None:
        X_val = _as_dask(X_val)
        _check_metadata(estimator, X_val, reset=False)
        val_counts = _encode_on_client(estimator, y_val, dtype, False, None)[1]
        val_per_class = _class_weights(estimator, val_counts, False)
        data.validation = _persisted(estimator, X_val, y_val, sw_val, dtype, val_per_class)
        data.validation.describe(n_outputs, score_kind, classifier)
    return data


def _as_dask(X):
    import dask.array as da

    return X if is_dask_collection(X) else da.from_array(check_array(X, accept_sparse=False,
                                                                      dtype=None))


def _persisted(estimator, X, y, sample_weight, dtype, per_class):
    """Each block validated and encoded on its worker and persisted there."""
    import dask
    from dask import delayed

    X_blocks = row_blocks(X)
    y_blocks = aligned_blocks(y, X, X_blocks, "y")
    sw_blocks = aligned_blocks(sample_weight, X, X_blocks, "sample_weight")
    encoder = shared(_encoder(estimator), "encoder")
    prepared = [
        delayed(_prepare_chunk)(encoder, xb, yb, wb, dtype, per_class)
        for xb, yb, wb in zip(X_blocks, y_blocks, sw_blocks)
    ]
    chunks = list(dask.persist(*prepared))
    stats = compute(*on_chunks(_chunk_stats, [(chunk,) for chunk in chunks], holders(chunks)))
    return ChunkedData(chunks, stats, dtype, X.shape[1])


class ChunkedData:
    """Training data in chunks persisted on the workers (see :mod:`sklearn_gd._dask`).

    ``chunks``: delayed :class:`Chunk` objects (futures with a distributed
    client); ``rows``, ``weights``: each chunk's rows and total weight;
    ``n`` and ``total_weight`` their sums.
    """

    validation = None

    def __init__(self, chunks, stats, dtype, n_features):
        kept = [(chunk, s) for chunk, s in zip(chunks, stats) if s[0] > 0]
        if not kept:
            raise ValueError("X has no rows: every chunk is empty.")
        self.chunks = [chunk for chunk, _ in kept]
        self.rows = [s[0] for _, s in kept]
        self.weights = [s[1] for _, s in kept]
        self.weighted_targets = sum(s[2] for _, s in kept)
        self.n = sum(self.rows)
        self.total_weight = float(np.sum(self.weights))
        self.dtype = np.dtype(dtype)
        self.n_features = n_features
        self._check_total_weight()
        self.describe(None, None, False)

    def describe(self, n_outputs, score_kind, classifier):
        """What the estimator knows of the targets: outputs, how the validation
        score is summed, and whether to hold out per class."""
        self.n_outputs, self.score_kind, self.classifier = n_outputs, score_kind, classifier

    def _check_total_weight(self):
        if not self.total_weight > 0:
            raise ValueError(
                "sample_weight sums to zero: at least one sample needs a positive weight."
            )
        if not np.isfinite(np.array(self.total_weight, dtype=self.dtype)):
            raise ValueError(
                f"sample_weight sums to more than the largest {self.dtype} ({self.total_weight:.3g});"
                " rescale them: the data term depends only on their ratios, and the L2 "
                "penalty is alpha divided by their total."
            )

    def shape_info(self):
        return self.n_features, self.n_outputs, self.dtype

    def target_mean(self, estimator):
        """``sum_i s_i Y_i / S`` from the chunks' sums (class frequencies in float64,
        target means in the model's dtype, as in memory)."""
        mean = self.weighted_targets / self.total_weight
        return mean if self.classifier else mean.astype(self.dtype)

    # ------------------------------------------------------------------ L-BFGS
    def full_batch_objective(self, config, theta):
        """``objective(theta) -> (J, grad)``: the chunks' data loss and gradient, summed
        on the cluster, plus the L2 term on the client."""
        net = config.network
        c = config.alpha / self.total_weight
        l2 = L2Penalty(c, net.layout, np.empty(max(a * b for a, b in net.layout.shapes),
                                                theta.dtype))
        net_d = shared(net, "network")
        total = self.total_weight

        def objective(theta):
            theta_d = shared(theta.copy(), "theta")
            calls = [(chunk, theta_d, net_d, self.n, total) for chunk in self.chunks]
            parts = on_chunks(_chunk_loss_and_grad, calls, holders(self.chunks))
            data_loss, grad = compute(tree_sum(parts))[0]
            penalty = l2.add_gradient(grad, theta) if c else 0.0
            return data_loss + penalty, grad

        return objective

    # ------------------------------------------------------------------ mini-batch
    def epochs(self, config, state):
        return ChunkedEpochs(config, state, self)

    def split_validation(self, config, rng):
        """``(training part, validation part)``: ``validation_fraction`` of each chunk's
        rows held out on its worker (per class for classifiers), both persisted."""
        import dask

        seed = int(rng.integers(np.iinfo(np.int32).max))
        where = holders(self.chunks)
        calls = [(chunk, config.validation_fraction, [seed, i], self.classifier)
                 for i, chunk in enumerate(self.chunks)]
        pairs = on_chunks(_split_chunk, calls, where)
        parts = dask.persist(*[p[0] for p in pairs], *[p[1] for p in pairs])
        k = len(self.chunks)
        stats = compute(*on_chunks(_chunk_stats, [(part,) for part in parts], where + where))
        train, val = self._part(parts[:k], stats[:k]), self._part(parts[k:], stats[k:])
        if val.n < 2:
            raise ValueError(
                f"The validation set is too small: early_stopping=True held out only {val.n} "
                f"of {self.n} samples (validation_fraction={config.validation_fraction}); a "
                "validation score needs at least two. Increase validation_fraction, or set "
                "early_stopping=False."
            )
        return train, val

    def _part(self, chunks, stats):
        part = ChunkedData(chunks, stats, self.dtype, self.n_features)
        part.describe(self.n_outputs, self.score_kind, self.classifier)
        return part

    def evaluate(self, config, theta, c):
        """``(validation objective, score)`` of ``theta``: per-chunk sums from the workers."""
        kind = "r2" if self.score_kind == "r2" else "accuracy"
        theta_d, net_d = shared(theta.copy(), "theta"), shared(config.network, "network")
        calls = [(chunk, theta_d, net_d, kind) for chunk in self.chunks]
        parts = on_chunks(_chunk_evaluate, calls, holders(self.chunks))
        loss, total, *sums = compute(tree_sum(parts))[0]
        value = loss / total + config.network.l2_penalty(theta, c)
        if self.score_kind == "loss":
            return value, -value
        return value, score_from_sums(kind, total, sums)


def step_bounds(rows, batch_size):
    """The steps of an epoch over chunks of ``rows`` rows each, with batches of ``B``.

    Yields, for each of the ``ceil(n / B)`` steps ``k``, the rows
    ``(floor(r k B / n), floor(r min((k + 1) B, n) / n))`` of each chunk of
    ``r`` rows (in that chunk's order), and the step's total rows.
    """
    n = sum(rows)
    for k in range(-(-n // batch_size)):
        low, high = k * batch_size, min((k + 1) * batch_size, n)
        bounds = [(low * r // n, high * r // n) for r in rows]
        yield bounds, sum(stop - start for start, stop in bounds)


class ChunkedEpochs:
    """Epochs of synchronous data-parallel steps over a :class:`ChunkedData`.

    The same interface as :class:`~sklearn_gd._training.LocalEpochs`:
    ``n``, ``c``, ``chain`` and :meth:`run`.
    """

    def __init__(self, config, state, data):
        from ._training import optimizer_for

        net, theta = config.network, state.theta
        self.data, self.config, self.rng = data, config, state.rng
        self.n = data.n
        self.batch_size = resolve_batch_size(config.batch_size, self.n)
        self.c = config.alpha / data.total_weight
        scratch = np.empty(max(a * b for a, b in net.layout.shapes), theta.dtype)
        self.l2 = L2Penalty(self.c, net.layout, scratch) if self.c else None
        self.rows_per_weight = self.n / data.total_weight  # 1.0 unweighted
        self.chain = optimizer_for(config, net.layout, theta.dtype)
        self.net_d = shared(net, "network")

    def run(self, theta, chain_state, lr, guard):
        """One epoch; its mean objective, or NaN when it diverged (as in memory)."""
        import dask

        config, data = self.config, self.data
        shuffle = config.shuffle and self.batch_size < self.n
        epoch_seed = int(self.rng.integers(np.iinfo(np.int64).max))
        self.where = holders(data.chunks)
        orders = dask.persist(*on_chunks(
            _chunk_order, [(r, [epoch_seed, i], shuffle) for i, r in enumerate(data.rows)],
            self.where))
        weighted_loss, rows, last = 0.0, 0, None
        for k, (bounds, m) in enumerate(step_bounds(data.rows, self.batch_size)):
            rows += m
            step = Step(orders, bounds, m)
            result = self._step(theta, step, [epoch_seed, k])
            if result is None or result[2] == 0:
                continue  # no row of positive weight: no step
            data_loss, grad, _ = result
            constant_loss = None
            if guard.limit is None:
                bias = self.net.layout.biases(theta)[-1].copy()
                constant_loss = lambda: self._step_sum(  # noqa: E731
                    _chunk_constant_loss, bias, step)
            batch_loss = data_loss + self.chain.step(theta, grad, chain_state, lr, self.l2)
            if not guard.ok(batch_loss, constant_loss):
                return np.nan
            weighted_loss += batch_loss * m
            last = step
        if not np.isfinite(theta).all():
            return np.nan
        if last is not None:
            final = self._step_sum(_chunk_batch_objective, theta, last)
            final += self.net.l2_penalty(theta, self.c) if self.c else 0.0
            if not guard.ok(final):
                return np.nan
        return weighted_loss / rows

    @property
    def net(self):
        return self.config.network

    def _step(self, theta, step, seed):
        """The summed ``(data loss, gradient, weight)`` of one step's rows."""
        config = self.config
        theta_d = shared(theta.copy(), "theta")
        calls = [
            (chunk, order, start, stop, theta_d, self.net_d, step.m, self.rows_per_weight,
             ([*seed, i], config.dropout, config.input_noise))
            for i, (chunk, order, start, stop) in step.parts(self.data.chunks)
        ]
        return compute(tree_sum(on_chunks(_chunk_batch, calls, step.where(self.where))))[0]

    def _step_sum(self, function, array, step):
        """``function``'s single sum over one step's rows, as a float."""
        array_d = shared(array.copy(), "parameters")
        calls = [(chunk, order, start, stop, array_d, self.net_d, step.m, self.rows_per_weight)
                 for _, (chunk, order, start, stop) in step.parts(self.data.chunks)]
        return compute(tree_sum(on_chunks(function, calls, step.where(self.where))))[0][0]


@dataclass
class Step:
    """One synchronous step: each chunk's row order, its ``(start, stop)``, total rows ``m``."""

    orders: Any
    bounds: list
    m: int

    def parts(self, chunks):
        """``(i, (chunk, order, start, stop))`` for the chunks that give this step rows."""
        for i, (chunk, order, (start, stop)) in enumerate(zip(chunks, self.orders, self.bounds)):
            if stop > start:
                yield i, (chunk, order, start, stop)

    def where(self, holders):
        return [worker for worker, (start, stop) in zip(holders, self.bounds) if stop > start]


# ---------------------------------------------------------------------- prediction
def blockwise(method):
    """Decorate a prediction method: on Dask input, it runs block by block on the
    workers and returns a lazy Dask array (:func:`predict_blocks`)."""
    import functools

    @functools.wraps(method)
    def predict(self, X):
        if is_dask_collection(X):
            return predict_blocks(self, X, method.__name__)
        return method(self, X)

    return predict


def predict_blocks(estimator, X, method):
    """``estimator.method`` on each block of Dask ``X``, lazily: a Dask array."""
    import warnings

    check_is_fitted(estimator)
    _check_metadata(estimator, X, reset=False)
    model = copy.copy(estimator)
    name = f"sklearn-gd-{method}-{uuid.uuid4().hex}"
    probe = np.zeros((1, X.shape[1]), estimator._theta.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sample = getattr(model, method)(probe)
    if _is_dataframe(X):
        meta = np.empty((0,) + sample.shape[1:], sample.dtype)
        return X.map_partitions(_predict_block, model, method, meta=meta)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    if sample.ndim == 1:
        return X.map_blocks(_predict_block, model, method, dtype=sample.dtype, drop_axis=1,
                            name=name)
    return X.map_blocks(_predict_block, model, method, dtype=sample.dtype,
                        chunks=(X.chunks[0], (sample.shape[1],)), name=name)


def score_blocks(estimator, X, y, sample_weight):
    """Accuracy (classifier) or R² (regressor) summed block by block on the workers."""
    from dask import delayed

    check_is_fitted(estimator)
    _check_metadata(estimator, X, reset=False)
    kind = "accuracy" if is_classifier(estimator) else "r2"
    X_blocks = row_blocks(X)
    y_blocks = aligned_blocks(y, X, X_blocks, "y")
    sw_blocks = aligned_blocks(sample_weight, X, X_blocks, "sample_weight")
    model = shared(copy.copy(estimator), "model")
    parts = [delayed(_score_block)(model, xb, yb, wb, kind)
             for xb, yb, wb in zip(X_blocks, y_blocks, sw_blocks)]
    sums = compute(tree_sum(parts))[0]
    if kind == "accuracy":
        return float(sums[0] / sums[1])
    return score_from_sums("r2", sums[0], sums[1:])
