"""Quantiles of columns spread over blocks, without gathering them.

Each block summarises a column's numbers (NaN removed) as **rank points**
(:func:`rank_points`): its values themselves, each of weight 1, when it has
at most :data:`RANK_POINTS`; else its quantiles at ``(k + 1/2) / K``,
``k = 0 .. K - 1``, each of weight ``count / K``; and the exact percentiles
the client asked for (NumPy's: ``np.median`` for 50, ``np.percentile``
otherwise). :func:`merged_percentile` gives

- the block's exact percentile when one block holds the column's values;
- NumPy's percentile of all values when every block sent its values;
- otherwise the weighted quantile of the points: within about ``1 / K`` of
  each summarised block's rows in rank.
"""

import warnings
from dataclasses import dataclass

import numpy as np

from . import _cluster
from ._cluster import row_blocks

#: Rank points a block sends of a column of more values.
RANK_POINTS = 201


@dataclass
class RankPoints:
    """One block's summary of one column's numbers (see the module's docstring)."""

    values: np.ndarray
    weights: np.ndarray
    exact: dict


def rank_points(numbers, percentiles):
    """The :class:`RankPoints` of a 1-D float array without NaN, with its exact
    ``percentiles`` (in ``[0, 100]``)."""
    exact = {q: numpy_percentile(numbers, q) for q in percentiles} if numbers.size else {}
    if numbers.size <= RANK_POINTS:
        return RankPoints(numbers, np.ones(numbers.size), exact)
    q = (np.arange(RANK_POINTS) + 0.5) / RANK_POINTS
    return RankPoints(np.quantile(numbers, q), np.full(RANK_POINTS, numbers.size / RANK_POINTS),
                      exact)


def numpy_percentile(values, q):
    """NumPy's percentile ``q`` of ``values``: ``np.median`` for 50 (the mean of the
    two middle values, which linear interpolation may round differently)."""
    return np.median(values) if q == 50 else np.percentile(values, q)


def merged_percentile(points, q):
    """Percentile ``q`` of a column from its blocks' :class:`RankPoints` (None for a
    block without numbers; see the module's docstring), or NaN without any value."""
    points = [p for p in points if p is not None and p.values.size]
    if not points:
        return np.nan
    if len(points) == 1:
        return points[0].exact[q]
    values = np.concatenate([p.values for p in points])
    weights = np.concatenate([p.weights for p in points])
    if np.all(weights == 1):
        return numpy_percentile(values, q)
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    i = int(np.searchsorted(cumulative, q / 100 * cumulative[-1]))
    return values[order][min(i, values.size - 1)]


def column_statistics(X, to_numbers, percentiles):
    """``(percentiles, minimum, maximum)`` of the columns of Dask ``X``'s numbers
    (NaN ignored; NaN for a column without a value): ``percentiles`` an array of
    one row per requested percentile, merged from the blocks' rank points.

    ``to_numbers`` turns a block into its 2-D float array of numbers, on the worker.
    """
    from dask import delayed

    summaries = _cluster.compute(*[delayed(block_statistics)(block, to_numbers, percentiles)
                                   for block in row_blocks(X)])
    columns = zip(*[points for points, _, _ in summaries])
    merged = [[merged_percentile(column, q) for q in percentiles] for column in columns]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="All-NaN")  # a column without a value
        minimum = np.nanmin([m for _, m, _ in summaries], axis=0)
        maximum = np.nanmax([m for _, _, m in summaries], axis=0)
    return np.array(merged).T, minimum, maximum


def block_statistics(block, to_numbers, percentiles):
    """One block's ``(rank points, minimum, maximum)`` of each column of its numbers."""
    numbers = to_numbers(block)
    points, minimum, maximum = [], [], []
    for column in numbers.T:  # in the block's dtype, as in memory
        column = column[~np.isnan(column)]
        points.append(rank_points(column, percentiles))
        minimum.append(column.min() if column.size else np.nan)
        maximum.append(column.max() if column.size else np.nan)
    return points, np.array(minimum), np.array(maximum)
