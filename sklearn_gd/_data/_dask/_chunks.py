"""What runs on the workers: one chunk at a time, its sums sent back.

Every function here takes a :class:`Chunk` (or a block of the user's data)
and returns sums that add over chunks: the client never sees a row.
"""

import functools
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array

from ..._compat import check_part_sample_weight
from ..._table_input import missing_values_not_learned
from .._batches import Regularizers


@dataclass
class Chunk:
    """One chunk's validated rows on its worker: ``X`` (2-D float or CSR), encoded
    targets ``Y`` (2-D), effective sample weights ``sw`` (or None)."""

    X: Any
    Y: np.ndarray
    sw: Optional[np.ndarray]

    def __len__(self):
        return self.Y.shape[0]


class MissingValues(ValueError):
    """A chunk of numbers holds a missing value, and no table was learned to fill it:
    the client learns one (:mod:`._tables`) when fitting from scratch."""


def prepare_chunk(targets, X, y, sw, dtype, per_class, table=None):
    """Validate and encode one chunk as the estimator does in memory.

    ``targets`` are the fitted targets (:mod:`sklearn_gd._targets`);
    ``per_class`` the class weights, or None; ``table`` the fitted
    :class:`~sklearn_gd._table_input.TableInput` that turns a block of a table
    into its input matrix, or None for numbers taken as they are.
    """
    if table is not None:
        X = table.matrix(X)
    try:
        X = check_array(X, accept_sparse="csr", dtype=dtype, ensure_min_samples=0,
                        input_name="X", estimator=targets.estimator_name)
    except ValueError as error:
        if "Input X contains NaN" not in str(error):
            raise
        raise MissingValues(missing_values_not_learned(targets.estimator_name)) from None
    if sp.issparse(X):
        X = X.tocsr()
    y = np.asarray(y)
    if y.shape[0] != X.shape[0] or (sw is not None and np.shape(sw)[0] != X.shape[0]):
        lengths = [X.shape[0], y.shape[0]] + ([] if sw is None else [np.shape(sw)[0]])
        raise ValueError(
            f"A chunk of X, y and sample_weight has {lengths} rows: partition them alike "
            "(the same row chunks, or the same dataframe partitions)."
        )
    Y = targets.encode(y, dtype)
    if sw is not None:
        sw = check_part_sample_weight(sw, X, dtype=dtype)
    if per_class is not None:
        weights = per_class[np.searchsorted(targets.classes, y.ravel())].astype(dtype)
        sw = weights if sw is None else sw * weights
    return Chunk(X, Y, sw)


def label_counts(y):
    """The distinct labels of one block of ``y`` and their counts."""
    return np.unique(np.asarray(y), return_counts=True)


def chunk_stats(chunk):
    """``(rows, total weight, sum_i s_i Y_i)`` of a chunk, in float64."""
    Y = chunk.Y.astype(np.float64)
    if chunk.sw is None:
        return len(chunk), float(len(chunk)), Y.sum(axis=0)
    sw = chunk.sw.astype(np.float64)
    return len(chunk), float(sw.sum()), sw @ Y


def _quiet(function):
    """Run a worker's arithmetic as the client's loop does: overflow is detected
    (and undone) by the divergence guard, so NumPy need not warn."""
    @functools.wraps(function)
    def quiet(*args):
        with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
            return function(*args)

    return quiet


@_quiet
def chunk_loss_and_grad(chunk, theta, net, n, total):
    """``(sum_i w_i loss_i, its gradient)`` with ``w_i = s_i / S`` (``1 / n``
    unweighted): the chunk's share of the full-batch data loss."""
    m = len(chunk)
    weights = np.full(m, 1.0 / n, dtype=theta.dtype) if chunk.sw is None else chunk.sw / total
    ws = net.workspace(m, theta.dtype)
    grad = np.empty_like(theta)
    data_loss, _ = net.loss_and_grad(theta, chunk.X, chunk.Y.astype(theta.dtype), weights,
                                     0.0, ws, grad)
    return data_loss, grad


def chunk_order(n_rows, seed, shuffle):
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
def chunk_batch(chunk, order, start, stop, theta, net, m, rows_per_weight, draws):
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
def chunk_batch_objective(chunk, order, start, stop, theta, net, m, rows_per_weight):
    """The chunk's part of the data loss of ``theta`` on a step's rows (no dropout)."""
    X, Y, weights = _batch_rows(chunk, order, start, stop, theta.dtype, m, rows_per_weight)
    R, P = net.forward(theta, X)
    return (float(net.loss.value(R, P, Y) @ weights),)


@_quiet
def chunk_constant_loss(chunk, order, start, stop, bias, net, m, rows_per_weight):
    """The chunk's part of the constant model's loss on a step's rows."""
    _, Y, weights = _batch_rows(chunk, order, start, stop, bias.dtype, m, rows_per_weight)
    return (net.constant_loss(bias, Y, weights),)


def split_chunk(chunk, fraction, seed, stratify):
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
def chunk_evaluate(chunk, theta, net, score_kind):
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
