"""Synchronous data-parallel mini-batch steps over the chunks of a :class:`ChunkedData`.

See the package's docstring for the sampling: each step takes rows from every
chunk in proportion to its size, each row once per epoch.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._batches import resolve_batch_size, steps_per_epoch
from . import _cluster
from ._chunks import chunk_batch, chunk_batch_objective, chunk_constant_loss, chunk_order
from ._cluster import holders, on_chunks, shared, tree_sum


def step_bounds(rows, batch_size):
    """The steps of an epoch over chunks of ``rows`` rows each, with batches of ``B``.

    Yields, for each of the ``ceil(n / B)`` steps ``k``, the rows
    ``(floor(r k B / n), floor(r min((k + 1) B, n) / n))`` of each chunk of
    ``r`` rows (in that chunk's order), and the step's total rows.
    """
    n = sum(rows)
    for k in range(steps_per_epoch(n, batch_size)):
        low, high = k * batch_size, min((k + 1) * batch_size, n)
        bounds = [(low * r // n, high * r // n) for r in rows]
        yield bounds, sum(stop - start for start, stop in bounds)


class ChunkedEpochs:
    """Epochs of synchronous data-parallel steps over a :class:`ChunkedData`.

    An epoch source of :func:`~sklearn_gd._train._trainer.run_epoch`, as
    :class:`~sklearn_gd._data._in_memory.LocalEpochs` is in memory.
    """

    def __init__(self, config, state, data):
        net, theta = config.network, state.theta
        self.data, self.config, self.rng = data, config, state.rng
        self.n = data.n
        self.batch_size = resolve_batch_size(config.batch_size, self.n)
        self.n_steps = steps_per_epoch(self.n, self.batch_size)
        self.c = config.alpha / data.total_weight
        self.l2 = net.l2_term(self.c, theta) if self.c else None
        self.rows_per_weight = self.n / data.total_weight  # 1.0 unweighted
        self.chain = config.optimizer
        self.net_d = shared(net, "network")
        self.deferred = False

    def steps(self):
        """``(m, (step, seed))`` for each synchronous step of the epoch, the chunks'
        row orders drawn and persisted on their workers first."""
        import dask

        config, data = self.config, self.data
        shuffle = config.shuffle and self.batch_size < self.n
        epoch_seed = int(self.rng.integers(np.iinfo(np.int64).max))
        self.where = holders(data.chunks)
        orders = dask.persist(*on_chunks(
            chunk_order, [(r, [epoch_seed, i], shuffle) for i, r in enumerate(data.rows)],
            self.where))
        for k, (bounds, m) in enumerate(step_bounds(data.rows, self.batch_size)):
            yield m, (Step(orders, bounds, m), [epoch_seed, k])

    def loss_and_grad(self, theta, step):
        """The step's summed ``(data loss, gradient)``; None when its rows have no weight."""
        result = self._step(theta, *step)
        if result is None or result[2] == 0:
            return None
        return result[0], result[1]

    def constant_loss(self, bias, step):
        """The data loss of the output bias alone on the step's rows."""
        return self._step_sum(chunk_constant_loss, bias, step[0])

    def objective(self, theta, step):
        """The objective of ``theta`` on the step's rows, without dropout, L2 included."""
        final = self._step_sum(chunk_batch_objective, theta, step[0])
        return final + (self.net.l2_penalty(theta, self.c) if self.c else 0.0)

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
        return _cluster.compute(tree_sum(on_chunks(chunk_batch, calls, step.where(self.where))))[0]

    def _step_sum(self, function, array, step):
        """``function``'s single sum over one step's rows, as a float."""
        array_d = shared(array.copy(), "parameters")
        calls = [(chunk, order, start, stop, array_d, self.net_d, step.m, self.rows_per_weight)
                 for _, (chunk, order, start, stop) in step.parts(self.data.chunks)]
        return _cluster.compute(tree_sum(on_chunks(function, calls, step.where(self.where))))[0][0]


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

