"""Talking to Dask: computing, placing tasks by their chunk, the reduction tree,
and cutting ``y`` and sample weights like ``X``."""

import contextlib
import sys
import uuid

import numpy as np

#: How many partial sums one reduction task adds: a tree of depth
#: ``log_{fan_in}(chunks)`` instead of one task receiving every chunk's gradient.
REDUCE_FAN_IN = 8

#: Exceptions of ``distributed`` that mean the cluster, not the data, failed.
CLUSTER_FAILURES = ("KilledWorker", "FutureCancelledError", "CancelledError", "CommClosedError")


def is_dask_collection(obj):
    """True for a Dask array, dataframe or series (without importing Dask)."""
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(obj)


def is_dataframe(X):
    """A Dask dataframe or series (partitions), not a Dask array (chunks)."""
    return hasattr(X, "npartitions") and not hasattr(X, "rechunk")


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
    """The client Dask computes with (``Client.current``: the one made current by
    ``as_current``, or else the latest), or None."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        return distributed.Client.current()
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
        parts = [delayed(add_sums, pure=True)(*parts[i:i + REDUCE_FAN_IN])
                 for i in range(0, len(parts), REDUCE_FAN_IN)]
    return parts[0]


def add_sums(*parts):
    """Elementwise sum of tuples of partial sums (None: a chunk with nothing to add)."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    total = list(parts[0])
    for part in parts[1:]:
        for i, value in enumerate(part):
            total[i] = total[i] + value
    return tuple(total)


def shared(value, what):
    """``value`` as one delayed object: sent to each worker once, not once per task."""
    from dask import delayed

    return delayed(value, name=f"sklearn-gd-{what}-{uuid.uuid4().hex}")


def row_blocks(X):
    """The row blocks of ``X`` (a Dask array: one chunk of columns; a dataframe:
    its partitions) as delayed objects."""
    if is_dataframe(X):
        return list(X.to_delayed())
    if X.ndim == 2 and len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return list(X.to_delayed().ravel())


def aligned_blocks(values, X, blocks, name):
    """``values`` (y or sample weights: Dask or in memory, or None) cut like ``X``'s blocks."""
    import dask.array as da

    if values is None:
        return [None] * len(blocks)
    _check_same_rows(X, values)
    if is_dask_collection(values):
        if is_dataframe(values):
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
    _check_same_rows(X, values, n_rows=sum(lengths))
    chunks = (tuple(lengths),) + tuple((k,) for k in values.shape[1:])
    return list(da.from_array(values, chunks=chunks).to_delayed().ravel())


def _check_same_rows(X, values, n_rows=None):
    """scikit-learn's error for inputs of different lengths, where both are known
    without computing (a dataframe's length or unknown chunks are checked per block)."""
    rows = [_known_rows(X) if n_rows is None else n_rows, _known_rows(values)]
    if None not in rows and rows[0] != rows[1]:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: {rows}")


def _known_rows(values):
    """The number of rows when it is a known integer, else None."""
    n = values.shape[0] if hasattr(values, "shape") else len(values)
    return int(n) if isinstance(n, (int, np.integer)) else None


def _block_lengths(X):
    """Rows of each of ``X``'s blocks (computed on the workers when Dask does not know them)."""
    if hasattr(X, "chunks") and not any(np.isnan(X.chunks[0])):
        return [int(c) for c in X.chunks[0]]
    if hasattr(X, "chunks"):
        return [int(c) for c in X.compute_chunk_sizes().chunks[0]]
    return [int(c) for c in X.map_partitions(len).compute()]

