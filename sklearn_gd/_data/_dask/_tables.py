"""A table's columns learned on the cluster, without gathering its rows.

A fit on Dask input that is a table (a dataframe of categories, text,
booleans or nullable columns, ``categorical_features`` naming columns, or
numbers with missing values) learns the same
:class:`~sklearn_gd._table_input.TableInput` as in memory, from one
summary per block (:func:`block_summary`):

- a **digest** of each column: its distinct values where the column may hold
  categories (text, ``category``, booleans, the columns named in
  ``categorical_features``), its smallest and largest values otherwise, and
  one missing value where it has any. A digest answers what
  :func:`~sklearn_gd._table.learn_columns` asks of a column (its kind, its
  categories, whether it is empty or holds text or infinities) as the whole
  column would, so the in-memory code learns the columns from the digests;
- the **rank points** of each column of numbers (:mod:`._quantiles`), from
  which the client takes the fill value ``mu_j``, the median: exact when one
  block holds the column's values or every block holds at most 201 of them,
  otherwise within about ``1/201`` of each larger block's rows in rank.

The workers then encode each chunk with the learned table
(:func:`~._chunks.prepare_chunk`).
"""

import numpy as np

from ..._table import (
    _categorical_mask,
    _columns_of,
    _holds_labels,
    _is_categorical_dtype,
    _is_frame,
    _is_missing,
    _names_of,
    _numpy_kind,
    learn_columns,
)
from ..._table_input import TableInput, _names_columns
from . import _cluster
from ._cluster import is_dataframe, row_blocks
from ._quantiles import merged_percentile, rank_points


def needs_table(X, categorical_features):
    """Whether Dask ``X`` is a table from its metadata: a dataframe with a column
    that is not plain NumPy numbers, or ``categorical_features`` naming
    columns. (Missing values among plain numbers are found as the chunks are
    prepared: :class:`~._chunks.MissingValues`.)"""
    if _names_columns(categorical_features):
        return True
    return is_dataframe(X) and not all(
        isinstance(dtype, np.dtype) and dtype.kind in "fiu" for dtype in X.dtypes)


def learn_table(X, categorical_features):
    """The :class:`~sklearn_gd._table_input.TableInput` of Dask ``X``, from its
    blocks' summaries (see the module's docstring)."""
    from dask import delayed

    empty = empty_like(X)
    listed = _listed_columns(empty, categorical_features)
    summaries = _cluster.compute(*[delayed(block_summary)(block, listed)
                                   for block in row_blocks(X)])
    n_rows = sum(rows for rows, _, _ in summaries)
    if not n_rows:
        raise ValueError("X has no rows: every chunk of the Dask input is empty.")
    digest = _joined_digest(empty, [digests for _, digests, _ in summaries], listed)
    columns = learn_columns(digest, categorical_features, n_rows=n_rows)
    numbers = [i for i in columns.numeric_columns if columns.kinds[i] == "numeric"]
    fill = [merged_percentile([points[i] for _, _, points in summaries], 50) for i in numbers]
    return TableInput.of(columns, digest, fill)


def empty_like(X):
    """A table with ``X``'s columns and dtypes and no rows (pandas or NumPy)."""
    if not is_dataframe(X):
        return np.empty((0, X.shape[1]), X.dtype)
    import pandas as pd

    empty = pd.DataFrame({i: pd.Series(dtype=dtype) for i, dtype in enumerate(X.dtypes)})
    empty.columns = X.columns
    return empty


def _listed_columns(empty, categorical_features):
    """Positions of the columns whose digest lists their distinct values."""
    columns = _columns_of(empty)
    chosen = [False] * len(columns)
    if not isinstance(categorical_features, str):
        chosen = _categorical_mask(categorical_features, columns,
                                   _names_of(empty, len(columns)), _is_frame(empty))
    return [i for i, column in enumerate(columns)
            if chosen[i] or _holds_labels(column) or _numpy_kind(column.dtype) == "b"]


# ---------------------------------------------------------------- on the workers
def block_summary(block, listed):
    """``(rows, digests, rank points)`` of one block of the user's ``X``: for
    each column its digest, and its rank points ``(values, weights)`` (None
    where it does not hold numbers)."""
    columns = _columns_of(block)
    digests, points = [], []
    for i, column in enumerate(columns):
        missing = _is_missing(column)
        values = _take(column, ~missing)
        digests.append(_digest(column, missing, values, i in listed))
        points.append(_rank_points(values))
    return block.shape[0], digests, points


def _digest(column, missing, values, listed):
    """The column's distinct values (``listed``) or its extremes, and one missing value."""
    if listed:
        kept = values.drop_duplicates() if hasattr(values, "drop_duplicates") else np.unique(values)
    else:
        kept = _take(values, _extremes(values))
    return _concatenated([kept, _take(column, np.flatnonzero(missing)[:1])])


def _extremes(values):
    """Positions of the smallest and largest values (the first value, where they are
    not numbers: dates, which the columns' learning refuses by their dtype)."""
    if not len(values):
        return []
    try:
        numbers = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return [0]
    return [int(np.argmin(numbers)), int(np.argmax(numbers))]


def _rank_points(values):
    """The column's :class:`~._quantiles.RankPoints` with its exact median, or None
    where its values are not numbers (text, categories, booleans)."""
    dtype = getattr(values, "dtype", None)
    if _numpy_kind(dtype) == "b" or (dtype is not None and _is_categorical_dtype(dtype)):
        return None
    try:
        numbers = np.asarray(values).astype(np.float64)  # as in memory: text of numbers too
    except (TypeError, ValueError):
        return None
    return rank_points(numbers, (50,))


# ---------------------------------------------------------------- on the client
def _joined_digest(empty, per_block, listed):
    """One table of the blocks' digests, digested again, each column repeating its
    last value to the longest's length (a repeat changes no answer of a digest)."""
    digests = []
    for i, column in enumerate(_columns_of(empty)):
        joined = _concatenated([block[i] for block in per_block], column)
        missing = _is_missing(joined)
        digests.append(_digest(joined, missing, _take(joined, ~missing), i in listed))
    length = max(len(d) for d in digests)
    digests = [_take(d, np.minimum(np.arange(length), len(d) - 1)) for d in digests]
    if not _is_frame(empty):
        return np.column_stack(digests).astype(empty.dtype, copy=False)
    import pandas as pd

    table = pd.DataFrame({i: d.reset_index(drop=True) for i, d in enumerate(digests)})
    table.columns = empty.columns
    return table


def _concatenated(parts, like=None):
    """Pandas Series (categories united) or NumPy arrays, end to end."""
    if not hasattr(parts[0], "iloc"):
        return np.concatenate(parts)
    import pandas as pd

    if like is not None and _is_categorical_dtype(like.dtype):
        return pd.Series(pd.api.types.union_categoricals(parts))
    return pd.concat(parts, ignore_index=True)


def _take(column, rows):
    """Rows of a Series or an array by position (or a boolean mask)."""
    return column.iloc[rows] if hasattr(column, "iloc") else column[rows]
