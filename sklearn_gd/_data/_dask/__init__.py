"""Data-parallel training on Dask collections: the data stays on the workers.

``fit`` and ``partial_fit`` on a Dask array or dataframe validate and encode
each chunk on the worker that holds it and persist the result there once
(:func:`sklearn_gd._dask_estimator.chunked_train_data`). Each step of
training then sends the parameters to the chunks, each chunk computes the *summed* data loss and
gradient of its rows (:func:`chunk_loss_and_grad`, :func:`chunk_batch`),
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

The package's modules, by where their code runs:

- :mod:`._chunks`: on the workers, one chunk at a time (validation, the
  chunk's sums of loss and gradient, its part of a step, its validation sums);
- :mod:`._cluster`: talking to Dask (compute, placement, reduction tree,
  cutting ``y`` and weights like ``X``);
- :mod:`._data`: the data source (:class:`ChunkedData`: the chunks
  persisted on the workers, the full-batch objective, the validation split);
- :mod:`._epochs`: the synchronous mini-batch steps;
- :mod:`._tables`: a table's columns, categories and medians learned from
  summaries of its blocks, for the chunks to encode.

The estimators' side (what a fit learns on the client before the chunks are
prepared, and prediction block by block) is :mod:`sklearn_gd._dask_estimator`:
nothing here takes the estimator.
"""

from ._cluster import compute, is_dask_collection
from ._data import ChunkedData
from ._epochs import ChunkedEpochs, step_bounds

__all__ = [
    "ChunkedData",
    "ChunkedEpochs",
    "compute",
    "is_dask_collection",
    "step_bounds",
]
