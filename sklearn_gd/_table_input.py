"""A mixed-type table as the network's input matrix: numbers, flags and category codes.

What :func:`~sklearn_gd._table.learn_columns` learned of a table becomes one
float matrix ``X`` in three column groups, which the engine's
:class:`~sklearn_gd._engine._table_block.TableBlock` reads:

- **numbers**: each numeric column, a missing value replaced by the
  column's median at fit, ``mu_j``;
- **flags**: each boolean column as ``+1``/``-1`` (``0`` where missing), then
  one missing-value indicator ``n_j = 1[x_j missing]`` for each numeric or
  boolean column that had a missing value at fit;
- **codes**: each categorical column's codes (``0`` for missing and unseen),
  held in floats.

With the indicator, the first layer's pre-activation for a row with ``x_j``
missing is

.. math::

    z = \\dots + b_j(\\mu_j)\\, W_j + u_j

where ``b_j(mu_j) W_j`` is what the median contributes (through the
numeric block ``b_j``: the embedding, or the identity) and ``u_j`` is the
indicator's row of the first layer's weights, learned like any weight: the
network learns where a missing value should land, a learned fill in the
first layer's output space (a learned fill value ``f_j`` would give only
the line ``b_j(f_j) W_j``). A column without missing values at fit has no
indicator; a value missing there at predict time gets its median.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._table import _columns_of, _is_frame, _is_missing, as_pandas, learn_columns


@dataclass
class TableInput:
    """How a fitted model turns a table into its input matrix (see the module's docstring).

    Attributes
    ----------
    columns : TableColumns
        The columns' kinds and categories.
    fill : ndarray of shape (n_numeric,)
        ``mu_j``: each numeric column's median at fit.
    indicated : list of int
        Positions, among the numeric and boolean columns, of those with an indicator.
    dtype : {"float32", "float64"}
        The matrix's: float32 where every numeric column was float32, else float64
        (a name: a saved model holds no NumPy dtype object).
    """

    columns: object
    fill: np.ndarray
    indicated: list
    dtype: str

    @classmethod
    def learn(cls, X, categorical_features):
        """Learn the columns of ``X``, their fill values and which get an indicator."""
        X = as_pandas(X)
        columns = learn_columns(X, categorical_features)
        numbers = columns.encode(X).numeric[:, cls._is_number(columns)]
        return cls.of(columns, X, [np.median(c[~np.isnan(c)]) for c in numbers.T])

    @classmethod
    def of(cls, columns, X, fill):
        """The input of ``X``'s learned ``columns``, numbers filled by ``fill``; an
        indicator for each numeric or boolean column where ``X`` misses a value
        (``X``: the table, or a digest of it with its dtypes and missing values)."""
        held = _columns_of(as_pandas(X))
        indicated = [j for j, i in enumerate(columns.numeric_columns)
                     if _is_missing(held[i]).any()]
        return cls(columns, np.asarray(fill, dtype=np.float64), indicated,
                   _matrix_dtype(X, columns))

    @staticmethod
    def _is_number(columns):
        """Among the numeric and boolean columns, which are numeric (a bool mask)."""
        return np.array([columns.kinds[i] == "numeric" for i in columns.numeric_columns],
                        dtype=bool)

    @property
    def n_numeric(self):
        return len(self.fill)

    @property
    def n_flags(self):
        """Boolean columns and indicators."""
        return len(self.columns.numeric_columns) - self.n_numeric + len(self.indicated)

    @property
    def cardinalities(self):
        return tuple(self.columns.cardinalities)

    @property
    def n_inputs(self):
        """Columns of the input matrix: numbers, flags and codes."""
        return self.n_numeric + self.n_flags + len(self.cardinalities)

    @property
    def needs_block(self):
        """Whether the matrix holds more than numbers (flags or codes), so that the
        network needs the table block in front of it."""
        return bool(self.n_flags or self.cardinalities)

    def matrix(self, X):
        """The input matrix of the table ``X`` (with the learned columns)."""
        encoded = self.columns.encode(X)
        numeric, is_number = encoded.numeric, self._is_number(self.columns)
        missing = np.isnan(numeric)
        numbers = np.where(missing[:, is_number], self.fill, numeric[:, is_number])
        signs = np.nan_to_num(2.0 * numeric[:, ~is_number] - 1.0, nan=0.0)
        parts = [numbers, signs, missing[:, self.indicated], encoded.codes]
        dtype = np.dtype(self.dtype)
        return np.concatenate([p.astype(dtype, copy=False) for p in parts], axis=1)


def _matrix_dtype(X, columns):
    """float32 when every numeric column of ``X`` is float32 (the tabular recipe's
    scaler gives them so: the network then trains in float32), else float64."""
    kinds = [columns.kinds[i] for i in columns.numeric_columns]
    dtypes = [getattr(c, "dtype", None) for c in _columns_of(X)]
    numbers = [dtypes[i] for i, kind in zip(columns.numeric_columns, kinds) if kind == "numeric"]
    return "float32" if numbers and all(d == np.float32 for d in numbers) else "float64"


def needs_table(X, categorical_features):
    """Whether ``X`` takes the table route rather than scikit-learn's ``check_array``.

    It does when it is a data frame (pandas or polars) with a column that is not plain NumPy
    numbers (a category, text, boolean or nullable dtype), when it has a
    missing value, or when ``categorical_features`` names a column (by index,
    name or mask). Numbers without missing values keep the route they
    always took: the same model, bit for bit.
    """
    if X is None or sp.issparse(X):
        return False
    X = as_pandas(X)
    if _names_columns(categorical_features):
        return True
    if _is_frame(X):
        plain = all(isinstance(dtype, np.dtype) and dtype.kind in "fiu" for dtype in X.dtypes)
        return not plain or any(_is_missing(c).any() for c in _columns_of(X))
    if not isinstance(X, (np.ndarray, list, tuple)):  # other libraries' arrays: validated as such
        return False
    values = np.asarray(X)
    return values.dtype.kind == "f" and values.ndim == 2 and bool(np.isnan(values).any())


def _names_columns(categorical_features):
    """Whether ``categorical_features`` chooses columns itself (not None or "from_dtype")."""
    if categorical_features is None or isinstance(categorical_features, str):
        return False
    chosen = np.asarray(categorical_features)
    return bool(chosen.any()) if chosen.dtype == bool else chosen.size > 0


def missing_values_not_learned(estimator_name):
    """The message of a model fitted on numbers without missing values that meets one."""
    return (f"Input X contains NaN.\nThis {estimator_name} was fitted on numbers without "
            "missing values, so it learned nothing for them: fill them, or fit on data with "
            "its missing values (a fit learns them: see categorical_features).")
