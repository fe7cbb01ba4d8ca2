"""A table's columns as the first layer's input: numbers, flags and categories side by side.

The shell encodes a mixed-type table as one matrix ``X`` of three column
groups (see :mod:`sklearn_gd._table`): ``n_numeric`` numbers, ``n_flags``
flags (booleans as ``+-1``, missing-value indicators as ``0/1``) and the
categorical columns' codes. The block maps a row to

.. math::

    e = (\\,b(x_{\\mathrm{num}}),\\; x_{\\mathrm{flag}},\\; c(x_{\\mathrm{code}})\\,)

where ``b`` is the :class:`~sklearn_gd._engine._input_block.InputBlock` the
estimator's parameters ask for (periodic embedding, input scale; the
identity without one) and ``c`` the
:class:`~sklearn_gd._engine._categories.CategoryBlock` (one-hot or learned
embeddings). Flags and codes do not pass through the numeric embedding: a
0/1 column has two values, which a periodic function of it cannot tell
apart better than the first layer's weights do, and a code is a name, not
a quantity. Backward, ``G = dJ/de`` is split by the same column groups and
each part goes to its block; the flags have no parameters.
"""

from dataclasses import dataclass
from functools import cached_property

from ._backend import NUMPY


@dataclass(frozen=True)
class TableBlock:
    """Numbers through an input block, flags as they are, codes through a category block.

    Parameters
    ----------
    n_numeric : int
        Numeric columns, first in ``X``.
    n_flags : int
        Flag columns, after the numeric ones.
    numeric : InputBlock or None
        The numeric columns' block; None passes them on as they are.
    categories : CategoryBlock or None
        The categorical columns' block (their codes are last in ``X``); None without any.
    """

    n_numeric: int
    n_flags: int
    numeric: object = None
    categories: object = None

    @property
    def n_features(self):
        """Columns of ``X``: numbers, flags and codes."""
        n_codes = 0 if self.categories is None else len(self.categories.cardinalities)
        return self.n_numeric + self.n_flags + n_codes

    @property
    def n_frequencies(self):
        """The numeric embedding's frequencies per feature (0 without one)."""
        return 0 if self.numeric is None else self.numeric.n_frequencies

    @cached_property
    def widths(self):
        """Output width of each group: numbers, flags, categories."""
        numbers = self.n_numeric if self.numeric is None else self.numeric.n_outputs
        codes = 0 if self.categories is None else self.categories.n_outputs
        return numbers, self.n_flags, codes

    @property
    def n_outputs(self):
        return sum(self.widths)

    @property
    def _numeric_size(self):
        return 0 if self.numeric is None else self.numeric.size

    @property
    def size(self):
        """Number of parameters: the numeric block's, then the category block's."""
        return self._numeric_size + (0 if self.categories is None else self.categories.size)

    def initialize(self, params, rng):
        """Draw the numeric block's parameters, then the category block's."""
        split = self._numeric_size
        if self.numeric is not None:
            self.numeric.initialize(params[:split], rng)
        if self.categories is not None:
            self.categories.initialize(params[split:], rng)

    def _groups(self, X):
        """``X``'s numbers, flags and codes: views of its columns."""
        a, b = self.n_numeric, self.n_numeric + self.n_flags
        return X[:, :a], X[:, a:b], X[:, b:]

    def forward(self, params, X, ops=NUMPY, cache=None):
        """``e`` for the rows of ``X``; what the backward pass needs goes into ``cache``
        (see :meth:`InputBlock.forward <sklearn_gd._engine._input_block.InputBlock.forward>`)."""
        numbers, flags, codes = self._groups(X)
        numbers_in, split, parts = numbers, self._numeric_size, []
        if self.n_numeric:
            if self.numeric is not None:
                numbers = self.numeric.forward(params[:split], numbers, ops, cache)
            parts.append(numbers)
        if self.n_flags:
            parts.append(flags)
        if self.categories is not None:
            parts.append(self.categories.forward(params[split:], codes, ops))
        if cache is not None:
            cache["table_numbers"] = numbers_in
        return parts[0] if len(parts) == 1 else ops.concat(parts, axis=1)

    def backward(self, params, X, cache, G, ops, grad, where):
        """Write ``dJ/dparams`` into ``grad[where]`` from ``G = dJ/de``: each group's
        columns of ``G`` to its block."""
        codes = X[:, self.n_numeric + self.n_flags:]
        numbers = cache.get("table_numbers")
        split = self._numeric_size
        width = self.widths[0]
        if self.numeric is not None:
            self.numeric.backward(params[:split], numbers, cache, G[:, :width], ops, grad,
                                  slice(where.start, where.start + split))
        if self.categories is not None:
            start = width + self.n_flags
            self.categories.backward(codes, G[:, start:], ops, grad,
                                     slice(where.start + split, where.stop))
