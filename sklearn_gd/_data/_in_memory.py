"""The in-memory data source: arrays of NumPy or of another library on its device.

:class:`TrainData` is what the trainer asks for batches, full-batch objectives
and validation sums, as :class:`~sklearn_gd._data._dask.ChunkedData` is for
chunks on a Dask cluster; :class:`LocalEpochs` gives the epoch loop its steps.
"""

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .._engine._array_api import astype, device_of, empty_like, take_rows, to_numpy
from ._batches import BatchSource, Regularizers, resolve_batch_size, steps_per_epoch


@dataclass(frozen=True)
class TrainData:
    """Encoded training data: ``X``, 2-D targets ``Y``, sample weights or None,
    the targets as given (``y``, for scorers), the labels a validation split is
    stratified by (or None), and the user's validation set for early stopping
    (a ``TrainData``, or None to hold one out)."""

    X: Any
    Y: np.ndarray
    sample_weight: Optional[np.ndarray] = None
    y: Any = None
    stratify: Optional[np.ndarray] = None
    validation: Optional["TrainData"] = None
    #: ``(Y, sample_weight)`` on the host when ``X`` is another library's array
    #: (the targets are encoded there, then copied to ``X``'s device once)
    host_targets: Optional[tuple] = None

    # The trainer's view of its data, which data in chunks on a Dask cluster
    # (sklearn_gd._data._dask.ChunkedData) provides too.
    def shape_info(self):
        """``(n_features, n_outputs, dtype)`` of the network this data trains."""
        return self.X.shape[1], self.Y.shape[1], self.X.dtype

    def target_mean(self, targets):
        """The weighted mean of the encoded targets (``targets.mean``, see
        :mod:`sklearn_gd._targets`), from which the output bias starts."""
        Y, sw = self.host_targets or (self.Y, self.sample_weight)
        return targets.mean(Y, sw)

    @property
    def n(self):
        """Rows."""
        return self.X.shape[0]

    def split_validation(self, config, rng):
        return split_validation(config, self, rng)

    def epochs(self, config, state):
        return LocalEpochs(config, state, self)

    def full_batch_objective(self, config, theta):
        return full_batch_objective(config, self, theta)

    def evaluate(self, config, state, c):
        """``(objective, score)`` of the state's weights on this (validation) data."""
        theta = state.theta
        Y = astype(self.Y, theta.dtype)
        weights, _ = objective_weights(self.sample_weight, self.X.shape[0], theta,
                                       config.network.backend)
        loss, P = config.network.evaluate(theta, self.X, Y, weights, c)
        return loss, config.score(state, self, P, loss)


def split_validation(config, data, rng):
    """Hold out ``validation_fraction`` of the rows (stratified for classifiers).

    Returns the training part and the validation part, each as :class:`TrainData`.
    """
    from sklearn.model_selection import train_test_split

    X, Y, sw = data.X, data.Y, data.sample_weight
    sw_host = to_numpy(sw)
    fraction = config.validation_fraction
    idx = np.arange(X.shape[0])
    try:
        train_idx, val_idx = train_test_split(
            idx,
            test_size=fraction,
            random_state=int(rng.integers(np.iinfo(np.int32).max)),
            stratify=data.stratify,
        )
    except ValueError as exc:
        raise ValueError(
            f"early_stopping=True could not hold out validation_fraction="
            f"{fraction} of {X.shape[0]} samples: {exc} Use more "
            "samples, another validation_fraction, or early_stopping=False."
        ) from exc
    if val_idx.shape[0] < 2:  # R^2 of one sample is undefined: NaN scores and a warning per epoch
        raise ValueError(
            f"The validation set is too small: early_stopping=True held out only one of "
            f"{X.shape[0]} samples (validation_fraction={fraction}); a validation score needs "
            "at least two. Increase validation_fraction or the size of your dataset, or set "
            "early_stopping=False."
        )
    train_idx.sort()
    val_idx.sort()
    if sw is not None:
        for part, index in (("training", train_idx), ("validation", val_idx)):
            if not sw_host[index].sum() > 0:
                raise ValueError(
                    f"early_stopping=True held out validation_fraction="
                    f"{fraction} of the samples, and the {part} part has no "
                    f"sample of positive weight ({int(np.count_nonzero(sw))} of "
                    f"{X.shape[0]} samples have one). Use more samples of positive weight, "
                    "another validation_fraction, or early_stopping=False."
                )

    def rows(index):
        y = None if data.y is None else _take_rows(data.y, index)
        return TrainData(take_rows(X, index), take_rows(Y, index),
                         None if sw is None else take_rows(sw, index), y=y)

    return rows(train_idx), rows(val_idx)


def check_validation_size(n_val):
    """A validation set of one sample scores nothing (R² is undefined, accuracy 0 or 1):
    refused, as the held-out split of early stopping refuses it."""
    if n_val < 2:
        raise ValueError(
            f"X_val has {n_val} sample; early stopping's validation score needs at least "
            "two. Give a larger validation set, or leave X_val and y_val out to hold out "
            "validation_fraction of the training data."
        )


def _take_rows(y, index):
    """Rows ``index`` of targets as given (an array, a sparse matrix, a pandas object)."""
    if hasattr(y, "iloc"):
        return y.iloc[index]
    return y[index]


def objective_weights(sw, n, like, ops):
    """Full-batch weights ``s_i / S`` and the total weight ``S``, in the library,
    on the device and in the dtype of the array ``like`` (of the backend ``ops``)."""
    total = total_weight(sw, n, ops)
    if sw is not None:
        return sw / total, total
    return ops.full(n, 1.0 / n, like.dtype, like), total


def total_weight(sw, n, ops):
    """``S``: the total of the sample weights ``sw`` (of ``ops``'s library), ``n`` without."""
    return float(n) if sw is None else ops.total(sw)


class LocalEpochs:
    """Epochs over in-memory data (NumPy arrays or a device's): the batches,
    buffers and update rule of one run.

    An epoch source of :func:`~sklearn_gd._train._trainer.run_epoch`, as
    :class:`~sklearn_gd._data._dask._epochs.ChunkedEpochs` is for chunks on a Dask
    cluster: ``n`` rows per epoch; ``c`` the L2 coefficient ``alpha / N`` and
    ``l2`` its term (None when ``c`` is 0); ``chain`` the update rule;
    ``deferred``, whether the batches' objectives stay on the device until
    the epoch ends; :meth:`steps` and the loss, reference and objective of a
    step.
    """

    def __init__(self, config, state, data):
        net, theta = config.network, state.theta
        self.net = net
        self.n = data.X.shape[0]
        batch_size = resolve_batch_size(config.batch_size, self.n)
        self.n_steps = steps_per_epoch(self.n, batch_size)
        self.c = config.alpha / total_weight(data.sample_weight, self.n, net.backend)
        self.regs = Regularizers(list(config.dropout), config.input_noise, batch_size,
                                 net.layout.layer_sizes[1:-1], theta.dtype, state.rng,
                                 net.backend, device_of(theta),
                                 noisy_columns=getattr(net.layout.input_block, "n_numeric", None))
        self.batches = BatchSource(data.X, data.Y, data.sample_weight, batch_size,
                                   config.shuffle, state.rng, theta.dtype, net.backend)
        self.ws = net.workspace(batch_size, theta.dtype, dropout=self.regs.active)
        self.grad = empty_like(theta)
        self.l2 = net.l2_term(self.c, theta, self.ws) if self.c else None
        self.chain = config.optimizer
        self.deferred = net.backend.defers_reads

    def steps(self):
        """``(m, batch)`` for each mini-batch of the epoch."""
        for batch in self.batches:
            yield batch[0].shape[0], batch

    def loss_and_grad(self, theta, batch):
        """``(data loss, gradient)`` of one batch, dropout and noise drawn; None
        when all its rows have zero weight."""
        Xb, Yb, weights = batch
        if weights is None:
            return None
        regs = self.regs
        data_loss, _ = self.net.loss_and_grad(theta, regs.noisy(Xb), Yb, weights, 0.0, self.ws,
                                              self.grad, regs.masks(Xb.shape[0]))
        return data_loss, self.grad

    def constant_loss(self, bias, batch):
        """The data loss of the output bias alone on the batch (the guard's reference)."""
        _, Yb, weights = batch
        return self.net.constant_loss(bias, Yb, weights)

    def objective(self, theta, batch):
        """The objective of ``theta`` on the batch, without dropout, L2 included."""
        return self.net.objective(theta, *batch, self.c, self.ws)


def full_batch_objective(config, data, theta):
    """``objective(theta) -> (J, grad)`` on the whole of ``data`` (in memory), data
    loss plus L2, with its buffers allocated once."""
    net, X = config.network, data.X
    Y = astype(data.Y, theta.dtype)
    weights, total = objective_weights(data.sample_weight, X.shape[0], theta, net.backend)
    c = config.alpha / total
    ws = net.workspace(X.shape[0], theta.dtype)
    grad = empty_like(theta)

    def objective(theta):
        data_loss, penalty = net.loss_and_grad(theta, X, Y, weights, c, ws, grad)
        return data_loss + penalty, grad

    return objective
