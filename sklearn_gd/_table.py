"""The columns of a table: which are numbers and which are categories, and their encoding.

What a fit learns of a mixed-type table (a pandas DataFrame, or a 2-D array
with ``categorical_features`` given), before any network sees it:

- **numeric** columns (floats, integers, pandas' nullable ``Int64`` and
  ``Float64``) become floats; a missing value (``NaN``, ``pd.NA``) stays
  ``NaN``, for the network's own missing-value handling;
- **boolean** columns (``bool``, nullable ``boolean``) become ``0.0``/``1.0``,
  missing ``NaN``;
- **categorical** columns become integer codes: ``0`` is the slot of a
  missing value and of any category not seen when the columns were learned,
  ``1 .. k`` the ``k`` categories seen, in scikit-learn's
  ``OrdinalEncoder`` order (sorted). A category first seen later therefore
  shares the missing slot: prediction never fails on it.

``categorical_features`` has ``HistGradientBoosting*``'s meaning: ``None``
(no categorical column), ``"from_dtype"`` (pandas ``category`` columns and,
unlike ``HistGradientBoosting*``, string and ``object`` columns too: a
column of text is a column of categories), or the categorical columns as
indices, names, or a boolean mask. Columns a network cannot use (dates and
durations, a column with no value at all, text where numbers are expected)
are refused with an error that names them; nothing is dropped silently.
"""

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from sklearn.preprocessing import OrdinalEncoder

#: The code of a missing value and of a category not seen in fit.
MISSING_OR_UNKNOWN = 0


@dataclass
class EncodedTable:
    """A table as numbers: ``numeric`` (n, n_numeric) floats with ``NaN`` where a
    value is missing; ``codes`` (n, n_categorical) int64 category codes
    (:data:`MISSING_OR_UNKNOWN` for missing or unseen)."""

    numeric: np.ndarray
    codes: np.ndarray


@dataclass
class TableColumns:
    """The columns' kinds and categories, learned by :func:`learn_columns`.

    Attributes
    ----------
    names : list of str
        Every column's name (``"x0"``, ``"x1"``... for arrays).
    kinds : list of {"numeric", "boolean", "categorical"}
        Every column's kind, in the table's order.
    categories : list of ndarray
        For each categorical column (in order), the categories seen; category
        ``categories[j][i]`` has code ``i + 1``.
    """

    names: list
    kinds: list
    categories: list = field(default_factory=list)
    encoder: OrdinalEncoder = None

    @property
    def numeric_columns(self):
        """Indices of the numeric and boolean columns, in order."""
        return [i for i, kind in enumerate(self.kinds) if kind != "categorical"]

    @property
    def categorical_columns(self):
        """Indices of the categorical columns, in order."""
        return [i for i, kind in enumerate(self.kinds) if kind == "categorical"]

    @property
    def cardinalities(self):
        """For each categorical column, its number of codes: categories plus the
        missing-or-unknown slot."""
        return [len(c) + 1 for c in self.categories]

    def encode(self, X):
        """``X`` (a table with the learned columns) as an :class:`EncodedTable`."""
        X = as_pandas(X)
        columns = _columns_of(X)
        if len(columns) != len(self.kinds):
            raise ValueError(
                f"X has {len(columns)} columns; the columns were learned from {len(self.kinds)}."
            )
        numeric = np.empty((X.shape[0], len(self.numeric_columns)), np.float64)
        for out, i in enumerate(self.numeric_columns):
            numeric[:, out] = _numbers(columns[i], self.names[i], self.kinds[i])
        return EncodedTable(numeric, self._codes(columns))

    def _codes(self, columns):
        n_rows = len(columns[0]) if columns else 0
        if not self.categorical_columns or not n_rows:  # an empty block of a Dask table
            return np.empty((n_rows, len(self.categorical_columns)), np.int64)
        values = np.column_stack(
            [_labels(columns[i]) for i in self.categorical_columns]
        )
        codes = _encode_labels(self.encoder, values, self.names, self.categorical_columns)
        return codes.astype(np.int64) + 1  # -1 (missing or unseen) becomes slot 0


def learn_columns(X, categorical_features="from_dtype", n_rows=None):
    """Learn which columns of ``X`` are numeric, boolean or categorical, and the
    categories of the categorical ones.

    Parameters
    ----------
    X : pandas DataFrame or array-like of shape (n_samples, n_features)
        The table, or a digest of it (its distinct values, see
        :mod:`sklearn_gd._data._dask._tables`).
    categorical_features : "from_dtype", None, or array-like of int, str or bool
        See the module's docstring.
    n_rows : int, optional
        The table's rows, where ``X`` is a digest (default: ``X``'s).

    Returns
    -------
    columns : TableColumns
    """
    X = as_pandas(X)
    columns = _columns_of(X)
    names = _names_of(X, len(columns))
    categorical = _categorical_mask(categorical_features, columns, names, _is_frame(X))
    kinds = [_kind(column, name, is_categorical)
             for column, name, is_categorical in zip(columns, names, categorical)]
    _check_no_text(kinds, names)
    for column, name in zip(columns, names):
        _check_not_empty(column, name)
    table = TableColumns(names, kinds)
    for i in table.numeric_columns:
        _numbers(columns[i], names[i], kinds[i])  # refuses text, infinities
    chosen = table.categorical_columns
    if chosen:
        for i in chosen:
            _check_declared_levels(columns[i], names[i], n_rows)
        values = np.column_stack([_labels(columns[i]) for i in chosen])
        table.encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                       encoded_missing_value=-1)
        _encode_labels(table.encoder, values, names, chosen, fit=True)
        table.categories = [_without_missing(c) for c in table.encoder.categories_]
    return table


# ---------------------------------------------------------------- columns
def as_pandas(X):
    """A polars DataFrame as pandas' (categories, text and nulls as pandas holds
    them), so that one reading of columns serves both; anything else as it is."""
    if type(X).__module__.split(".")[0] == "polars" and hasattr(X, "to_pandas"):
        return X.to_pandas()
    return X


def _is_frame(X):
    return hasattr(X, "columns") and hasattr(X, "iloc")


def _columns_of(X):
    """``X``'s columns, each a pandas Series (data frames) or a 1-D array."""
    if _is_frame(X):
        return [X.iloc[:, i] for i in range(X.shape[1])]
    X = np.asarray(X) if not hasattr(X, "ndim") else X
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D table, got an array of {X.ndim} dimensions.")
    return [X[:, i] for i in range(X.shape[1])]


def _names_of(X, n_columns):
    if _is_frame(X):
        return [str(name) for name in X.columns]
    return [f"x{i}" for i in range(n_columns)]


def _categorical_mask(categorical_features, columns, names, is_frame):
    """One bool per column: whether it is categorical (``"from_dtype"``: by the
    data frame's dtypes; an array's columns have none that says so)."""
    n = len(columns)
    if categorical_features is None:
        return [False] * n
    if isinstance(categorical_features, str):
        if categorical_features != "from_dtype":
            raise ValueError(
                "categorical_features must be 'from_dtype', None, or the categorical columns "
                f"as indices, names or a boolean mask; got {categorical_features!r}."
            )
        return [is_frame and _holds_categories(column) for column in columns]
    chosen = np.asarray(categorical_features)
    if chosen.dtype == bool:
        if chosen.shape != (n,):
            raise ValueError(
                f"categorical_features as a boolean mask needs one value per column ({n}); "
                f"got {chosen.shape[0] if chosen.ndim == 1 else chosen.shape}."
            )
        return chosen.tolist()
    mask = [False] * n
    for item in chosen.ravel().tolist():
        mask[_column_index(item, names)] = True
    return mask


def _column_index(item, names):
    if isinstance(item, str):
        if item not in names:
            raise ValueError(
                f"categorical_features names the column {item!r}, which X does not have "
                f"(its columns: {names})."
            )
        return names.index(item)
    if isinstance(item, (int, np.integer)) and -len(names) <= item < len(names):
        return int(item) % len(names)
    raise ValueError(
        f"categorical_features holds {item!r}: expected column names, or indices in "
        f"[0, {len(names)})."
    )


def _holds_labels(column):
    """Whether a column's dtype says it holds categories: pandas ``category``,
    strings, Python objects."""
    dtype = getattr(column, "dtype", None)
    if dtype is None:
        return False
    if _is_categorical_dtype(dtype):
        return True
    if getattr(dtype, "kind", None) in ("O", "U", "S"):
        return True
    return "string" in str(dtype).lower() or str(dtype) == "str"


def _holds_categories(column):
    """Whether a data frame's column is categorical by its dtype: ``category``, or
    text that is not all numbers (numbers written as text are numbers)."""
    return _holds_labels(column) and (_is_categorical_dtype(column.dtype)
                                      or not _converts_to_numbers(column))


def _is_categorical_dtype(dtype):
    return type(dtype).__name__ == "CategoricalDtype"


def _kind(column, name, is_categorical):
    """The column's kind (``"text"``: a data frame's column of text not chosen as
    categorical), or a ValueError naming it where the network cannot use it."""
    dtype = getattr(column, "dtype", None)
    kind_code = _numpy_kind(dtype)
    if kind_code in ("M", "m"):
        raise ValueError(
            f"Column {name!r} holds dates or durations ({dtype}), which the network does not "
            "encode: turn it into numbers first (for example its year, month and day of week "
            "as separate columns, or skrub's DatetimeEncoder), or drop it."
        )
    if is_categorical:
        return "categorical"
    if hasattr(column, "iloc") and _holds_categories(column):
        return "text"
    return "boolean" if kind_code == "b" or _holds_only_booleans(column) else "numeric"


def _holds_only_booleans(column):
    """Whether a column of Python objects holds booleans and missing values only
    (a nullable boolean column as polars hands it to pandas)."""
    if _numpy_kind(getattr(column, "dtype", None)) != "O":
        return False
    values = np.asarray(column, dtype=object)[~_is_missing(column)]
    return len(values) > 0 and all(isinstance(v, (bool, np.bool_)) for v in values)


def _check_no_text(kinds, names):
    """Refuse, naming them all, the columns of text that are not categorical."""
    text = [name for name, kind in zip(names, kinds) if kind == "text"]
    if text:
        raise ValueError(
            f"Column{'s' if len(text) > 1 else ''} {', '.join(map(repr, text))} "
            f"hold{'' if len(text) > 1 else 's'} categories or text, not numbers: pass "
            "categorical_features='from_dtype' (or name them in categorical_features) to "
            "learn their categories, or encode them yourself."
        )


def _numpy_kind(dtype):
    """NumPy's kind letter of a column dtype, pandas' extension dtypes included."""
    if dtype is None:
        return None
    numpy_dtype = getattr(dtype, "numpy_dtype", None)  # Int64, Float64, boolean
    if numpy_dtype is not None:
        return numpy_dtype.kind
    if str(dtype) == "boolean":
        return "b"
    return getattr(dtype, "kind", None)


def _is_missing(column):
    """A boolean array: where ``column`` has no value (NaN, None, pd.NA, NaT)."""
    if hasattr(column, "isna"):
        return np.asarray(column.isna(), dtype=bool)
    values = np.asarray(column)
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "O":
        return np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in values],
                        dtype=bool)
    return np.zeros(values.shape, bool)


def _check_not_empty(column, name):
    if len(column) and _is_missing(column).all():
        raise ValueError(
            f"Column {name!r} has no value at all (every row is missing): it carries no "
            "information; drop it."
        )


def _check_declared_levels(column, name, n_rows=None):
    """A pandas category column declaring more categories than the table has rows
    (``n_rows``, default the column's) is an identifier, not a category."""
    dtype = getattr(column, "dtype", None)
    n_rows = len(column) if n_rows is None else n_rows
    if dtype is not None and _is_categorical_dtype(dtype):
        levels = len(dtype.categories)
        if levels > n_rows:
            raise ValueError(
                f"Column {name!r} declares {levels} categories for {n_rows} rows: a "
                "category column needs more rows than categories to learn anything of "
                "each. Is it an identifier? Drop it, or remove its unused categories "
                "(Series.cat.remove_unused_categories())."
            )


# ---------------------------------------------------------------- values
def _numbers(column, name, kind):
    """A numeric or boolean column as float64, missing values NaN."""
    missing = _is_missing(column)
    values = np.asarray(column, dtype=object) if missing.any() else np.asarray(column)
    if missing.any():
        values = values.copy()
        values[missing] = np.nan
    try:
        numbers = values.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"Column {name!r} is a {kind} column but holds values that are not numbers: "
            "name it in categorical_features to learn its categories, or give it numbers."
        ) from None
    if np.isinf(numbers).any():
        raise ValueError(
            f"Column {name!r} holds infinite values: replace them (by NaN, which the "
            "network treats as missing, or by a large finite number)."
        )
    return numbers


def _labels(column):
    """A categorical column as a 1-D object array, missing values NaN."""
    values = np.asarray(column, dtype=object).copy()
    values[_is_missing(column)] = np.nan
    return values


def _encode_labels(encoder, values, names, chosen, fit=False):
    """``encoder``'s codes of ``values``; a mix of strings and numbers in one column
    gets an error that names it."""
    try:
        if fit:
            encoder.fit(values)
        return encoder.transform(values)
    except TypeError:
        for j, i in enumerate(chosen):
            kinds = {type(v).__name__ for v in values[:, j]
                     if not (isinstance(v, float) and np.isnan(v))}
            if len({"str" if k in ("str", "str_") else "number" for k in kinds}) > 1:
                raise ValueError(
                    f"Column {names[i]!r} mixes text and numbers ({sorted(kinds)}): give "
                    "it one kind of value (for example astype(str))."
                ) from None
        raise


def _without_missing(categories):
    """The categories an ``OrdinalEncoder`` saw, without its missing-value entry."""
    keep = [not (isinstance(c, float) and np.isnan(c)) and c is not None for c in categories]
    return np.asarray(categories)[np.asarray(keep, dtype=bool)]


# ---------------------------------------------------------------- errors
@contextmanager
def columns_named_in_errors(X, estimator):
    """Re-raise scikit-learn's validation error about a data frame ``X``'s values
    naming the columns behind it: text that is not numbers, or missing values."""
    try:
        yield
    except ValueError as error:
        better = _column_error(X, error, type(estimator).__name__)
        if better is None:
            raise
        raise better from error


def _column_error(X, error, who):
    """A ValueError naming the columns of ``X`` that ``error`` is about, or None."""
    if not hasattr(X, "iloc"):  # a pandas data frame: its columns have names and dtypes
        return None
    columns, names = _columns_of(X), _names_of(X, X.shape[1])
    text = [name for name, column in zip(names, columns)
            if _holds_labels(column) and not _converts_to_numbers(column)]
    if text:
        plural = len(text) > 1
        return ValueError(
            f"Column{'s' if plural else ''} {', '.join(map(repr, text))} of X "
            f"hold{'' if plural else 's'} text or categories, which {who} does not encode: "
            f"encode {'them' if plural else 'it'} first (for example with a OneHotEncoder in "
            f"a ColumnTransformer), or drop {'them' if plural else 'it'}."
        )
    if "NaN" in str(error):
        missing = [name for name, column in zip(names, columns) if _is_missing(column).any()]
        if missing:
            return ValueError(f"{error}\nThe missing values are in the column"
                              f"{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}.")
    return None


def _converts_to_numbers(column):
    """Whether every value of a data frame's column is a number or missing."""
    import pandas as pd  # noqa: PLC0415 - the column is pandas'

    converted = pd.to_numeric(column.astype(object), errors="coerce")
    return bool((converted.isna() == _is_missing(column)).all())
