"""Categorical columns as the first layer's input: one-hot codes, or learned embeddings.

A categorical column ``j`` holds integer codes ``0 .. K_j - 1``, ``0`` being
the slot of a missing value or of a category not seen in fit (see
:mod:`sklearn_gd._table`). With ``O_j`` the rows' one-hot matrix,
``O_j[m, i] = 1`` where row ``m`` has code ``i``:

- a column of at most ``one_hot_max`` codes enters as ``O_j`` itself
  (``K_j`` values: the first layer's weights learn one vector per category);
- a column of more enters as ``O_j T_j``, each row's row of a learned table
  ``T_j`` of shape ``(K_j, d)``: an entity embedding of size ``d``, drawn from
  ``N(0, 1)`` at the start (PyTorch's ``Embedding``), so that a category
  costs ``d`` parameters in front of the first layer rather than a row of
  its weights.

The block's output is the columns' parts side by side, in column order.
Backward, from ``G_j = dJ/d(O_j T_j)`` (the output's columns of column
``j``), each category's rows are summed:

.. math::

    \\frac{\\partial J}{\\partial T_j} = O_j^T G_j.

One-hot columns have no parameters. Like the input block's, the tables are
not penalised by ``alpha`` (they are not weights of a dense layer).
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ._backend import NUMPY
from ._layout import parameter_blocks


@dataclass(frozen=True)
class CategoryBlock:
    """Categorical columns, one-hot or embedded, in front of the network.

    Parameters
    ----------
    cardinalities : tuple of int
        ``K_j``: each column's number of codes, the missing-or-unknown slot included.
    embedding_size : int
        ``d``: the values of an embedded column.
    one_hot_max : int
        A column of at most this many codes is one-hot encoded, one of more embedded.
    """

    cardinalities: tuple
    embedding_size: int = 8
    one_hot_max: int = 9

    def embedded(self, j):
        """Whether column ``j`` is embedded (else one-hot encoded)."""
        return self.cardinalities[j] > self.one_hot_max

    @cached_property
    def widths(self):
        """Each column's number of output values: ``d`` embedded, ``K_j`` one-hot."""
        return tuple(self.embedding_size if self.embedded(j) else k
                     for j, k in enumerate(self.cardinalities))

    @property
    def n_outputs(self):
        return sum(self.widths)

    @cached_property
    def _blocks(self):
        """``(column, start, stop, shape)`` of each embedded column's table, in buffer order."""
        return parameter_blocks({j: (k, self.embedding_size)
                                 for j, k in enumerate(self.cardinalities) if self.embedded(j)})

    @property
    def size(self):
        """Number of parameters."""
        return self._blocks[-1][2] if self._blocks else 0

    def tables(self, params, ops=NUMPY):
        """``{column: T_j}``: views of the flat ``params``, one table per embedded column."""
        return {j: ops.reshape(params[start:stop], shape)
                for j, start, stop, shape in self._blocks}

    def initialize(self, params, rng):
        """Draw every table from ``N(0, 1)`` into ``params``."""
        for table in self.tables(params).values():
            table[...] = rng.standard_normal(table.shape)

    def forward(self, params, codes, ops=NUMPY):
        """The block's output for the rows' ``codes`` (m, columns), integers held in
        floats of the parameters' dtype."""
        tables = self.tables(params, ops)
        parts = []
        for j, k in enumerate(self.cardinalities):
            O = ops.one_hot(codes[:, j], k, codes.dtype)
            parts.append(ops.matmul(O, tables[j]) if j in tables else O)
        return ops.concat(parts, axis=1)

    def backward(self, codes, G, ops, grad, where):
        """Write ``dJ/dT_j = O_j^T G_j`` into ``grad[where]`` from ``G = dJ/d(output)``."""
        starts = np.cumsum((0,) + self.widths)
        for j, start, stop, shape in self._blocks:
            O = ops.one_hot(codes[:, j], shape[0], G.dtype)
            G_j = G[:, int(starts[j]):int(starts[j + 1])]
            gradient = ops.matmul(ops.permute(O, (1, 0)), G_j)
            grad[where.start + start:where.start + stop] = ops.flat(gradient)
