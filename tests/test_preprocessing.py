"""RobustSmoothClipScaler: its formula, edge cases, inverse, and scikit-learn's checks."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_gd import MLPBackpropClassifier, RobustSmoothClipScaler


@parametrize_with_checks([RobustSmoothClipScaler(), RobustSmoothClipScaler(max_absolute_value=1.0,
                                                                           quantile_range=(10, 90))])
def test_sklearn_compatible_transformer(estimator, check):
    check(estimator)


def test_transform_is_the_formula():
    rng = np.random.default_rng(0)
    X = rng.standard_t(df=2, size=(200, 3)) * [1.0, 10.0, 1e4] + [0.0, 5.0, -3.0]
    scaler = RobustSmoothClipScaler(max_absolute_value=2.5, quantile_range=(20, 80)).fit(X)
    median = np.median(X, axis=0)
    factor = 1 / (np.percentile(X, 80, axis=0) - np.percentile(X, 20, axis=0))
    z = (X - median) * factor
    np.testing.assert_allclose(scaler.transform(X), z / np.sqrt(1 + (z / 2.5) ** 2), rtol=1e-12)
    np.testing.assert_allclose(scaler.center_, median)
    np.testing.assert_allclose(scaler.scale_, factor)


def test_features_without_a_quartile_spread():
    X = np.column_stack([
        [0.0] * 8 + [1.0, 3.0],   # quartiles equal, not constant: half the range scales it
        [7.0] * 10,               # constant: becomes 0
        [np.nan] * 10,            # all missing: stays missing
    ])
    scaler = RobustSmoothClipScaler().fit(X)
    np.testing.assert_allclose(scaler.scale_[:2], [2 / 3, 0.0])
    out = scaler.transform(X)
    np.testing.assert_allclose(out[:, 1], 0.0)
    assert np.isnan(out[:, 2]).all()
    z = X[:, 0] * 2 / 3
    np.testing.assert_allclose(out[:, 0], z / np.sqrt(1 + (z / 3) ** 2))


def test_a_subnormal_spread_counts_as_none_without_numpy_warnings():
    """1 / spread overflows for a spread below about 1e-308: the feature is then
    treated as constant (0), without NumPy's overflow warning."""
    X = np.arange(5.0)[:, None] * 1e-310
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        scaler = RobustSmoothClipScaler().fit(X)
        out = scaler.transform(X)
    assert scaler.scale_[0] == 0.0
    np.testing.assert_array_equal(out, 0.0)


def test_missing_values_are_ignored_in_fit_and_kept():
    X = np.array([[1.0], [np.nan], [2.0], [3.0], [4.0], [5.0]])
    scaler = RobustSmoothClipScaler().fit(X)
    assert scaler.center_[0] == 3.0
    out = scaler.transform(X)
    assert np.isnan(out[1, 0]) and np.isfinite(np.delete(out, 1)).all()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e300, 1e300, allow_nan=False), min_size=4, max_size=30),
       st.floats(0.1, 10.0))
def test_bounded_monotone_and_inverted(values, bound):
    X = np.array(values)[:, None]
    scaler = RobustSmoothClipScaler(max_absolute_value=bound).fit(X)
    out = scaler.transform(X)
    assert np.all(np.abs(out) <= bound)
    order = np.argsort(X[:, 0], kind="stable")
    assert np.all(np.diff(out[order, 0]) >= 0)  # monotone: the order of the values is kept
    inside = np.abs(out[:, 0]) < 0.99 * bound  # where the inverse is well conditioned
    if scaler.scale_[0] > 0:
        np.testing.assert_allclose(scaler.inverse_transform(out)[inside], X[inside], rtol=1e-6,
                                   atol=1e-9 / scaler.scale_[0])


def test_float32_stays_float32_and_the_input_is_not_changed():
    X = np.random.default_rng(1).normal(size=(20, 2)).astype(np.float32)
    before = X.copy()
    out = RobustSmoothClipScaler().fit_transform(X)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, "float32"])
def test_dtype_sets_the_output_dtype(dtype):
    X = np.random.default_rng(2).normal(size=(30, 3))
    scaler = RobustSmoothClipScaler(dtype=dtype).fit(X)
    out = scaler.transform(X)
    assert out.dtype == np.dtype(dtype)
    # the same values as in float64, to float32's precision
    np.testing.assert_allclose(out, RobustSmoothClipScaler().fit_transform(X), rtol=1e-6,
                               atol=1e-6)
    assert RobustSmoothClipScaler().fit(X).transform(X.astype(np.float32)).dtype == np.float32


def test_bad_dtype_is_a_clear_error():
    with pytest.raises(ValueError, match="dtype must be np.float32, np.float64 or None"):
        RobustSmoothClipScaler(dtype=np.int64).fit(np.ones((3, 1))).transform(np.ones((3, 1)))


def test_bad_quantile_range_is_a_clear_error():
    with pytest.raises(ValueError, match="quantile_range must be two percentiles"):
        RobustSmoothClipScaler(quantile_range=(75.0, 25.0)).fit(np.ones((3, 1)))


def test_in_a_pipeline_with_outliers():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    X[:5] *= 1e6  # a few wild values
    pipe = make_pipeline(RobustSmoothClipScaler(),
                         MLPBackpropClassifier(hidden_layer_sizes=(8,), solver="lbfgs",
                                               random_state=0)).fit(X, y)
    assert pipe.score(X[5:], y[5:]) > 0.9
    assert list(pipe[0].get_feature_names_out()) == ["x0", "x1", "x2", "x3"]


def test_values_near_the_largest_float_reach_the_bound():
    X = np.array([[1.0], [2.0], [3.0], [4.0], [1e308], [-1e308]])
    out = RobustSmoothClipScaler(max_absolute_value=0.1).fit_transform(X)
    np.testing.assert_array_equal(out[4:, 0], [0.1, -0.1])  # z / c overflows: the limit
    assert np.isfinite(out).all()


def test_float64_values_beyond_a_float32_output_are_clipped_not_refused():
    """A float32 output is cast after the clip: a finite float64 outlier beyond
    float32's range becomes c, at fit, transform and in the recipe's predict."""
    import warnings

    from sklearn_gd import make_tabular_regressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=60)
    X_out = X.copy()
    X_out[5, 1] = 1e300
    X_out[6, 2] = -1e300
    scaler = RobustSmoothClipScaler(dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        out = scaler.fit(X_out).transform(X_out)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert out[5, 1] == pytest.approx(3.0) and out[6, 2] == pytest.approx(-3.0)
    np.testing.assert_allclose(out[:5], RobustSmoothClipScaler().fit(X_out).transform(X_out)[:5],
                               rtol=1e-6)
    model = make_tabular_regressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_out, y)
    assert np.isfinite(model.predict(X_out)).all()
