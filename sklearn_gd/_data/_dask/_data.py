"""The data source of a fit on Dask collections: the data validated and
persisted chunk by chunk on the workers (:func:`persisted`), as
:class:`ChunkedData`, whose full-batch objective, validation split and
validation scores are sums over the chunks."""

import numpy as np

from . import _cluster
from ._chunks import (
    chunk_evaluate,
    chunk_loss_and_grad,
    chunk_stats,
    prepare_chunk,
    score_from_sums,
    split_chunk,
)
from ._cluster import aligned_blocks, holders, on_chunks, row_blocks, shared, tree_sum
from ._epochs import ChunkedEpochs


def persisted(targets, X, y, sample_weight, dtype, per_class, table=None):
    """Each block validated and encoded on its worker (by the fitted ``targets``,
    :mod:`sklearn_gd._targets`, and the fitted ``table``, or None) and persisted there."""
    import dask
    from dask import delayed

    X_blocks = row_blocks(X)
    y_blocks = aligned_blocks(y, X, X_blocks, "y")
    sw_blocks = aligned_blocks(sample_weight, X, X_blocks, "sample_weight")
    targets = shared(targets, "targets")
    table_d = None if table is None else shared(table, "table")
    prepared = [
        delayed(prepare_chunk)(targets, xb, yb, wb, dtype, per_class, table_d)
        for xb, yb, wb in zip(X_blocks, y_blocks, sw_blocks)
    ]
    chunks = list(dask.persist(*prepared))
    stats = _cluster.compute(*statistics(chunks, holders(chunks)))
    n_features = X.shape[1] if table is None else table.n_inputs
    return ChunkedData(chunks, stats, dtype, n_features, sources=prepared)


def statistics(chunks, where):
    """Delayed :func:`~._chunks.chunk_stats` of each chunk, on its worker."""
    return on_chunks(chunk_stats, [(chunk,) for chunk in chunks], where)


class ChunkedData:
    """Training data in chunks persisted on the workers (see :mod:`sklearn_gd._data._dask`).

    ``chunks``: delayed :class:`Chunk` objects (futures with a distributed
    client); ``sources``: the same, not persisted (the graph that makes them
    from the user's data); ``rows``, ``weights``: each chunk's rows and total
    weight; ``n`` and ``total_weight`` their sums. Chunks without rows are
    left out.
    """

    validation = None

    def __init__(self, chunks, stats, dtype, n_features, sources):
        kept = [(chunk, source, s) for chunk, source, s in zip(chunks, sources, stats) if s[0] > 0]
        if not kept:
            raise ValueError("X has no rows: every chunk is empty.")
        self.chunks = [chunk for chunk, _, _ in kept]
        self.sources = [source for _, source, _ in kept]
        self.rows = [s[0] for _, _, s in kept]
        self.weights = [s[1] for _, _, s in kept]
        self.weighted_targets = sum(s[2] for _, _, s in kept)
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
                f"sample_weight sums to more than the largest {self.dtype} "
                f"({self.total_weight:.3g}); rescale them: the data term depends only on "
                "their ratios, and the L2 penalty is alpha divided by their total."
            )

    def shape_info(self):
        return self.n_features, self.n_outputs, self.dtype

    def target_mean(self, targets):
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
        l2 = net.l2_term(c, theta)
        net_d = shared(net, "network")
        total = self.total_weight

        def objective(theta):
            theta_d = shared(theta.copy(), "theta")
            calls = [(chunk, theta_d, net_d, self.n, total) for chunk in self.chunks]
            parts = on_chunks(chunk_loss_and_grad, calls, holders(self.chunks))
            data_loss, grad = _cluster.compute(tree_sum(parts))[0]
            penalty = l2.add_gradient(grad, theta) if c else 0.0
            return data_loss + penalty, grad

        return objective

    # ------------------------------------------------------------------ mini-batch
    def epochs(self, config, state):
        return ChunkedEpochs(config, state, self)

    def split_validation(self, config, rng):
        """``(training part, validation part)``: ``validation_fraction`` of each chunk's
        rows held out on its worker (per class for classifiers), both persisted.

        The parts are made from :attr:`sources`, so that a worker lost later
        is recomputed from the user's data; the whole chunks are then released
        (this object holds none any more): the workers hold each row once.
        """
        import dask

        seed = int(rng.integers(np.iinfo(np.int32).max))
        where = holders(self.chunks)
        calls = [(source, config.validation_fraction, [seed, i], self.classifier)
                 for i, source in enumerate(self.sources)]
        pairs = on_chunks(split_chunk, calls, where)
        parts = dask.persist(*[p[0] for p in pairs], *[p[1] for p in pairs])
        self.chunks = []
        k = len(self.sources)
        stats = _cluster.compute(*statistics(parts, where + where))
        train = self._part(parts[:k], stats[:k], [p[0] for p in pairs])
        val = self._part(parts[k:], stats[k:], [p[1] for p in pairs])
        if val.n < 2:
            raise ValueError(
                f"The validation set is too small: early_stopping=True held out only {val.n} "
                f"of {self.n} samples (validation_fraction={config.validation_fraction}); a "
                "validation score needs at least two. Increase validation_fraction, or set "
                "early_stopping=False."
            )
        return train, val

    def _part(self, chunks, stats, sources):
        part = ChunkedData(chunks, stats, self.dtype, self.n_features, sources)
        part.describe(self.n_outputs, self.score_kind, self.classifier)
        return part

    def evaluate(self, config, state, c):
        """``(validation objective, score)`` of the state's weights: per-chunk sums
        from the workers."""
        theta = state.theta
        kind = "r2" if self.score_kind == "r2" else "accuracy"
        theta_d, net_d = shared(theta.copy(), "theta"), shared(config.network, "network")
        calls = [(chunk, theta_d, net_d, kind) for chunk in self.chunks]
        parts = on_chunks(chunk_evaluate, calls, holders(self.chunks))
        loss, total, *sums = _cluster.compute(tree_sum(parts))[0]
        value = loss / total + config.network.l2_penalty(theta, c)
        if self.score_kind == "loss":
            return value, -value
        return value, score_from_sums(kind, total, sums)

