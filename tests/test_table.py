"""The columns of a mixed-type table: kinds, categories, codes, and the errors that name a column."""

import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_gd import GDRegressor, MLPBackpropClassifier, RobustSmoothClipScaler
from sklearn_gd._table import MISSING_OR_UNKNOWN, learn_columns


def mixed_frame():
    """One column of each kind a real table has, with missing values."""
    return pd.DataFrame({
        "float": [1.0, np.nan, 3.0, 4.0, 5.0],
        "Int64": pd.array([1, None, 3, 4, 5], dtype="Int64"),
        "Float64": pd.array([0.5, 1.5, None, 2.0, 2.5], dtype="Float64"),
        "bool": [True, False, True, True, False],
        "boolean": pd.array([True, None, False, True, True], dtype="boolean"),
        "category": pd.Categorical(["a", "b", None, "a", "b"]),
        "object": pd.Series(["Paris", "Lyon", "Paris", None, "Nice"], dtype=object),
        "string": pd.array(["x", "y", "x", None, "y"], dtype="string"),
    })


def test_each_column_kind_is_read_from_its_dtype():
    table = learn_columns(mixed_frame())
    assert table.kinds == ["numeric"] * 3 + ["boolean"] * 2 + ["categorical"] * 3
    assert [list(c) for c in table.categories] == [["a", "b"], ["Lyon", "Nice", "Paris"],
                                                   ["x", "y"]]
    assert table.cardinalities == [3, 4, 3]


def test_numbers_keep_their_values_and_missing_becomes_nan():
    encoded = learn_columns(mixed_frame()).encode(mixed_frame())
    expected = np.array([
        [1.0, 1.0, 0.5, 1.0, 1.0],
        [np.nan, np.nan, 1.5, 0.0, np.nan],
        [3.0, 3.0, np.nan, 1.0, 0.0],
        [4.0, 4.0, 2.0, 1.0, 1.0],
        [5.0, 5.0, 2.5, 0.0, 1.0],
    ])
    np.testing.assert_array_equal(encoded.numeric, expected)
    assert encoded.numeric.dtype == np.float64


def test_categories_are_coded_from_one_and_missing_takes_slot_zero():
    codes = learn_columns(mixed_frame()).encode(mixed_frame()).codes
    np.testing.assert_array_equal(codes, [[1, 3, 1], [2, 1, 2], [0, 3, 1], [1, 0, 0], [2, 2, 2]])
    assert codes.dtype == np.int64


def test_a_category_unseen_in_fit_takes_the_missing_slot():
    table = learn_columns(mixed_frame())
    later = mixed_frame()
    later["object"] = ["Marseille", "Lyon", "Paris", "Paris", "Nice"]
    later["category"] = pd.Categorical(["c", "a", "b", "a", "a"])
    codes = table.encode(later).codes
    assert codes[0, 0] == codes[0, 1] == MISSING_OR_UNKNOWN
    np.testing.assert_array_equal(codes[1:, 1], [1, 3, 3, 2])


@pytest.mark.parametrize("chosen", [["city"], [1], [-2], [False, True, False]])
def test_categorical_features_by_name_index_or_mask(chosen):
    X = pd.DataFrame({"size": [1.0, 2.0, 3.0], "city": [10, 20, 10], "age": [5, 6, 7]})
    table = learn_columns(X, categorical_features=chosen)
    assert table.kinds == ["numeric", "categorical", "numeric"]
    np.testing.assert_array_equal(table.encode(X).codes[:, 0], [1, 2, 1])


def test_an_array_takes_categorical_features_by_index():
    X = np.array([[0.5, 3], [1.5, 7], [2.5, 3]])
    table = learn_columns(X, categorical_features=[1])
    assert table.names == ["x0", "x1"]
    np.testing.assert_array_equal(table.encode(X).codes[:, 0], [1, 2, 1])
    assert learn_columns(X).kinds == ["numeric", "numeric"]  # from_dtype: arrays have none


def test_text_without_categorical_features_is_refused_naming_the_column():
    message = "Columns 'category', 'object', 'string' hold categories or text, not numbers"
    with pytest.raises(ValueError, match=message):
        learn_columns(mixed_frame(), categorical_features=None)
    with pytest.raises(ValueError, match="Column 'object' holds categories or text"):
        learn_columns(mixed_frame(), categorical_features=["category", "string"])


def test_dates_are_refused_naming_the_column():
    X = pd.DataFrame({"x": [1.0, 2.0], "when": pd.to_datetime(["2024-01-01", "2024-02-01"])})
    with pytest.raises(ValueError, match="Column 'when' holds dates or durations"):
        learn_columns(X)


@pytest.mark.parametrize("column", ["float", "object"])
def test_a_column_with_no_value_is_refused_naming_it(column):
    X = mixed_frame()
    X[column] = pd.Series([None] * 5, dtype=X[column].dtype)
    with pytest.raises(ValueError, match=f"Column '{column}' has no value at all"):
        learn_columns(X)


def test_a_category_column_declaring_more_levels_than_rows_is_refused():
    X = pd.DataFrame({"id": pd.Categorical(["a", "b"], categories=list("abcde"))})
    with pytest.raises(ValueError, match="Column 'id' declares 5 categories for 2 rows"):
        learn_columns(X)


def test_a_column_mixing_text_and_numbers_is_refused_naming_it():
    X = pd.DataFrame({"code": pd.Series(["a", 1, "b", 2], dtype=object)})
    with pytest.raises(ValueError, match="Column 'code' mixes text and numbers"):
        learn_columns(X)


def test_text_where_numbers_were_learned_is_refused_naming_the_column():
    table = learn_columns(mixed_frame())
    later = mixed_frame()
    later["float"] = ["a", "b", "c", "d", "e"]
    with pytest.raises(ValueError, match="Column 'float' is a numeric column but holds values"):
        table.encode(later)


def test_infinite_numbers_are_refused_naming_the_column():
    X = pd.DataFrame({"x": [1.0, np.inf, 2.0]})
    with pytest.raises(ValueError, match="Column 'x' holds infinite values"):
        learn_columns(X)


@pytest.mark.parametrize("bad, message", [
    ("auto", "categorical_features must be 'from_dtype', None"),
    (["nope"], "names the column 'nope', which X does not have"),
    ([8], r"holds 8: expected column names, or indices in \[0, 3\)"),
    ([True, False], "boolean mask needs one value per column"),
])
def test_bad_categorical_features_get_a_clear_error(bad, message):
    X = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "c": [5.0, 6.0]})
    with pytest.raises(ValueError, match=message):
        learn_columns(X, categorical_features=bad)


def test_a_different_number_of_columns_is_refused():
    table = learn_columns(mixed_frame())
    with pytest.raises(ValueError, match="X has 7 columns; the columns were learned from 8"):
        table.encode(mixed_frame().iloc[:, :7])


def test_learned_columns_survive_pickle():
    table = learn_columns(mixed_frame())
    again = pickle.loads(pickle.dumps(table))
    np.testing.assert_array_equal(again.encode(mixed_frame()).codes,
                                  table.encode(mixed_frame()).codes)


def test_pyarrow_strings_are_categories():
    pytest.importorskip("pyarrow")
    X = pd.DataFrame({"s": pd.array(["u", None, "v", "u"], dtype="string[pyarrow]")})
    table = learn_columns(X)
    assert table.kinds == ["categorical"]
    np.testing.assert_array_equal(table.encode(X).codes[:, 0], [1, 0, 2, 1])


labels = st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d", "e"])),
                  min_size=2, max_size=30).filter(lambda v: any(x is not None for x in v))


@settings(max_examples=30, deadline=None)
@given(fit_values=labels, later_values=labels)
def test_codes_name_the_category_seen_or_the_missing_slot(fit_values, later_values):
    """Code ``i + 1`` is ``categories[i]``; 0 is missing or unseen."""
    table = learn_columns(pd.DataFrame({"c": pd.Series(fit_values, dtype=object)}))
    codes = table.encode(pd.DataFrame({"c": pd.Series(later_values, dtype=object)})).codes[:, 0]
    seen = table.categories[0].tolist()
    assert seen == sorted({v for v in fit_values if v is not None})
    for value, code in zip(later_values, codes):
        assert code == (seen.index(value) + 1 if value in seen else MISSING_OR_UNKNOWN)


# ---------------------------------------------------------------- the estimators' errors
def text_frame():
    return pd.DataFrame({"size": [1.0, 2.0, 3.0, 4.0] * 10, "city": ["a", "b", "c", "d"] * 10,
                         "digits": ["1", "2", "3", None] * 10})


def test_a_text_column_is_named_where_it_is_not_categorical():
    """Without categorical_features the text is refused, naming the column and the
    parameter (numbers written as text are numbers)."""
    with pytest.raises(ValueError, match="^Column 'city' holds categories or text, not numbers: "
                                         "pass categorical_features='from_dtype'"):
        MLPBackpropClassifier(max_iter=2, categorical_features=None).fit(text_frame(),
                                                                          [0, 1] * 20)


def test_a_text_column_is_named_where_the_scaler_refuses_it():
    with pytest.raises(ValueError, match="^Column 'city' of X holds text or categories, which "
                                         "RobustSmoothClipScaler does not encode: encode it first"):
        RobustSmoothClipScaler().fit(text_frame())


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 2 epochs
def test_a_text_column_at_predict_time_is_named():
    X = pd.DataFrame({"size": [1.0, 2.0, 3.0, 4.0] * 10, "digits": [1.0, 2.0, 3.0, 4.0] * 10})
    model = GDRegressor(max_iter=2).fit(X, np.arange(40.0))
    X["digits"] = ["one", "two", "three", "four"] * 10
    with pytest.raises(ValueError, match="Column 'digits' of X holds text"):
        model.predict(X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 2 epochs
def test_missing_values_refused_by_a_model_of_numbers_are_named():
    """A model fitted on numbers without missing values refuses them at predict time as
    scikit-learn does, and names their columns."""
    X = pd.DataFrame({"a": [1.0, 2.0] * 20, "b": [1.0] * 40, "c": [3.0, 2.0] * 20})
    model = MLPBackpropClassifier(max_iter=2).fit(X, [0, 1] * 20)
    X.loc[1, "a"] = X.loc[0, "c"] = np.nan
    with pytest.raises(ValueError, match="(?s)^Input X contains NaN.*The missing values are "
                                         "in the columns 'a', 'c'.$"):
        model.predict(X)
