"""The estimators and the recipe on mixed-type tables: categories, text, booleans, missing values."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline

from sklearn_gd import (
    GDRegressor,
    MLPBackpropClassifier,
    RobustSmoothClipScaler,
    make_tabular_classifier,
    make_tabular_regressor,
)
from sklearn_gd._engine._table_block import TableBlock

pd = pytest.importorskip("pandas")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def mixed_frame(n=300, seed=0):
    """Numbers with missing values, a nullable integer, 20 cities as text, a category,
    a nullable boolean; a target that depends on each."""
    rng = np.random.default_rng(seed)
    city = rng.integers(0, 20, n)
    frame = pd.DataFrame({
        "amount": rng.normal(size=n),
        "count": pd.array(rng.integers(0, 50, n), dtype="Int64"),
        "city": pd.Series([f"city{c}" for c in city], dtype=object),
        "tier": pd.Categorical(rng.choice(["gold", "silver", "bronze"], n)),
        "member": pd.array(rng.random(n) > 0.5, dtype="boolean"),
    })
    score = frame["amount"].to_numpy() + (city % 3 == 0) + frame["member"].to_numpy(bool)
    frame.loc[rng.random(n) < 0.1, "amount"] = np.nan
    frame.loc[rng.random(n) < 0.1, "count"] = pd.NA
    frame.loc[rng.random(n) < 0.05, "member"] = pd.NA
    return frame, (score > 0.8).astype(int)


def small(model_class, **params):
    return model_class(hidden_layer_sizes=(16,), max_iter=40, learning_rate_init=0.01,
                       random_state=0, **params)


def test_a_mixed_table_trains_and_predicts_better_than_its_numbers_alone():
    X, y = mixed_frame()
    model = small(MLPBackpropClassifier).fit(X, y)
    numbers = small(MLPBackpropClassifier).fit(X[["amount"]].fillna(0.0), y)
    assert model.score(X, y) > numbers.score(X[["amount"]].fillna(0.0), y) + 0.05
    assert model.n_features_in_ == 5
    assert list(model.feature_names_in_) == list(X.columns)
    block = model._layout.input_block
    assert isinstance(block, TableBlock)
    # amount and count; member as +-1; indicators of amount, count and member
    assert (block.n_numeric, block.n_flags) == (2, 4)
    assert block.categories.cardinalities == (21, 4)
    assert block.categories.embedded(0) and not block.categories.embedded(1)


def test_unseen_and_missing_categories_go_to_the_reserved_slot():
    X, y = mixed_frame()
    model = small(MLPBackpropClassifier).fit(X, y)
    new = X.head(4).copy()
    new["city"] = ["atlantis", None, "city1", "city1"]
    new["tier"] = pd.Categorical(["platinum", None, "gold", "gold"])
    proba = model.predict_proba(new)
    assert np.isfinite(proba).all()
    same_slot = new.iloc[[0, 0]].copy()
    same_slot["city"] = ["atlantis", None]
    same_slot["tier"] = pd.Categorical(["platinum", None])
    p = model.predict_proba(same_slot)
    np.testing.assert_array_equal(p[0], p[1])  # unseen and missing: one slot


def test_missing_numbers_take_the_median_and_an_indicator():
    X, y = mixed_frame()
    model = small(MLPBackpropClassifier).fit(X, y)
    table = model._table()
    matrix = table.matrix(X)
    missing = X["amount"].isna().to_numpy()
    np.testing.assert_array_equal(matrix[missing, 0], np.nanmedian(X["amount"]))
    assert table.fill[0] == np.nanmedian(X["amount"])
    np.testing.assert_array_equal(matrix[:, 3], missing)  # after amount, count, member
    row = X.head(1).copy()
    filled = row.assign(amount=table.fill[0])
    assert not np.array_equal(model.predict_proba(row.assign(amount=np.nan)),
                              model.predict_proba(filled))


def test_numbers_alone_train_exactly_as_an_array_does():
    """A table of numbers without missing values is the array it holds: same model."""
    X, y = mixed_frame()
    numbers = X[["amount"]].fillna(0.0).assign(other=np.arange(len(X)) % 7 * 1.0)
    from_frame = small(MLPBackpropClassifier).fit(numbers, y)
    from_array = small(MLPBackpropClassifier).fit(numbers.to_numpy(), y)
    assert from_frame._table() is None
    np.testing.assert_array_equal(from_frame._theta, from_array._theta)


def test_missing_values_in_an_array_are_handled_too():
    X, y = mixed_frame()
    array = X[["amount"]].to_numpy()
    model = small(GDRegressor).fit(array, y.astype(float))
    assert model._table() is not None and model.n_features_in_ == 1
    assert np.isfinite(model.predict(array)).all()


@pytest.mark.parametrize("chosen", [[2, 3], ["city", "tier"], [False, False, True, True, False]])
def test_categorical_features_by_index_name_or_mask(chosen):
    X, y = mixed_frame()
    X = X.assign(city=X["city"].str[4:].astype(int))  # city codes as integers
    model = small(MLPBackpropClassifier, categorical_features=chosen).fit(X, y)
    assert model._layout.input_block.categories.cardinalities == (21, 4)


def test_columns_that_differ_at_predict_time_are_refused_by_name():
    X, y = mixed_frame()
    model = small(MLPBackpropClassifier).fit(X, y)
    with pytest.raises(ValueError, match="Feature names seen at fit time, yet now missing:\n- "
                                         "tier"):
        model.predict(X.drop(columns="tier"))
    with pytest.raises(ValueError, match="same order"):
        model.predict(X[X.columns[::-1]])


def test_partial_fit_keeps_the_categories_of_its_first_call():
    X, y = mixed_frame()
    model = MLPBackpropClassifier(hidden_layer_sizes=(8,), random_state=0)
    model.partial_fit(X[X["city"] != "city3"], y[X["city"] != "city3"], classes=[0, 1])
    layout = model._layout
    model.partial_fit(X, y)  # city3 first seen: the missing-or-unknown slot
    assert model._layout is layout
    assert "city3" not in model._table().columns.categories[0]


def test_early_stopping_with_a_validation_table_and_a_scorer():
    X, y = mixed_frame()
    model = small(MLPBackpropClassifier, early_stopping=True, scoring="roc_auc")
    model.fit(X[:200], y[:200], X_val=X[200:], y_val=y[200:])
    assert len(model.validation_scores_) == model.n_iter_
    assert 0.5 < model.best_validation_score_ <= 1.0


def test_pickle_and_skops_keep_the_table():
    X, y = mixed_frame()
    model = small(MLPBackpropClassifier).fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    sio = pytest.importorskip("skops.io")
    from sklearn_gd import skops_trusted_types

    loaded = sio.loads(sio.dumps(model), trusted=skops_trusted_types()
                       + sio.get_untrusted_types(data=sio.dumps(model)))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_pipelines_search_and_cross_validation_take_the_table():
    X, y = mixed_frame()
    search = GridSearchCV(small(MLPBackpropClassifier), {"category_embedding_size": [2, 4]},
                          cv=2).fit(X, y)
    assert search.best_estimator_._layout.input_block.categories.embedding_size in (2, 4)
    scores = cross_validate(make_pipeline(RobustSmoothClipScaler(numeric_only=True),
                                          small(MLPBackpropClassifier)), X, y, cv=2)
    assert (scores["test_score"] > 0.6).all()
    assert clone(search.best_estimator_).get_params()["categorical_features"] == "from_dtype"


def test_the_recipe_takes_the_raw_table():
    X, y = mixed_frame()
    small_recipe = dict(hidden_layer_sizes=(16,), max_iter=40, batch_size=32, random_state=0)
    classifier = make_tabular_classifier(**small_recipe).fit(X, y)
    assert classifier.score(X, y) > 0.75  # 0.82-0.88 over seeds; the majority class: 0.51
    assert classifier[-1]._theta.dtype == np.float32  # the scaler's numbers, in float32
    regressor = make_tabular_regressor(**small_recipe)
    target = y + X["amount"].fillna(0.0)
    regressor.fit(X, target)
    assert regressor.score(X, target) > 0.8  # 0.91-0.93 over seeds; a constant scores 0


def test_the_recipe_scaler_scales_only_numbers_and_keeps_the_order():
    X, _ = mixed_frame()
    scaled = RobustSmoothClipScaler(numeric_only=True, dtype=np.float32).fit_transform(X)
    assert list(scaled.columns) == list(X.columns)
    assert scaled["amount"].dtype == np.float32 and scaled["count"].dtype == np.float32
    assert scaled["amount"].isna().equals(X["amount"].isna())
    for name in ("city", "tier", "member"):
        pd.testing.assert_series_equal(scaled[name], X[name])
    assert np.nanmax(np.abs(scaled["count"])) < 3.0
    np.testing.assert_array_equal(  # the numbers alone, as an array: the same values
        scaled[["amount", "count"]].to_numpy(),
        RobustSmoothClipScaler(dtype=np.float32).fit_transform(
            X[["amount", "count"]].to_numpy(dtype=float, na_value=np.nan)))


def test_the_recipe_scaler_unscales_only_numbers():
    """inverse_transform of a numeric_only scaler undoes transform on the numeric
    columns and hands the others back as they are, in a data frame."""
    X, _ = mixed_frame()
    scaler = RobustSmoothClipScaler(numeric_only=True).fit(X)
    back = scaler.inverse_transform(scaler.transform(X))
    assert list(back.columns) == list(X.columns)
    for name in ("city", "tier", "member"):
        pd.testing.assert_series_equal(back[name], X[name])
    inside = np.abs(scaler.transform(X)["amount"].to_numpy()) < 2.9  # well inside the clip
    np.testing.assert_allclose(back["amount"].to_numpy()[inside],
                               X["amount"].to_numpy()[inside], rtol=1e-9)
    assert back["amount"].isna().equals(X["amount"].isna())
    with pytest.raises(TypeError, match="inverse_transform takes a data frame"):
        scaler.inverse_transform(X.to_numpy())


def test_onnx_export_refuses_a_table_model_saying_what_to_do():
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn_gd.onnx import register_onnx_converters

    register_onnx_converters()
    X, y = mixed_frame()
    model = small(MLPBackpropClassifier).fit(X, y)
    with pytest.raises(ValueError, match="fitted on a table .* Export a pipeline"):
        skl2onnx.to_onnx(model, np.zeros((1, 5), np.float32))


def test_input_noise_leaves_flags_and_codes_alone():
    X, y = mixed_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model = small(MLPBackpropClassifier, input_noise=0.5).fit(X, y)
    assert model.score(X, y) > 0.7


def test_a_polars_table_trains_as_its_pandas_twin():
    pl = pytest.importorskip("polars")
    X, y = mixed_frame()
    from_polars = small(MLPBackpropClassifier).fit(pl.from_pandas(X), y)
    from_pandas = small(MLPBackpropClassifier).fit(X, y)
    np.testing.assert_array_equal(from_polars._theta, from_pandas._theta)
    assert list(from_polars.feature_names_in_) == list(X.columns)
    np.testing.assert_array_equal(from_polars.predict_proba(pl.from_pandas(X)),
                                  from_pandas.predict_proba(X))
    numbers = X[["amount"]].fillna(0.0)  # numbers alone: the array's route, as with pandas
    plain = small(GDRegressor).fit(pl.from_pandas(numbers), y.astype(float))
    assert plain._table() is None
    np.testing.assert_array_equal(plain.predict(pl.from_pandas(numbers)),
                                  small(GDRegressor).fit(numbers, y.astype(float)).predict(numbers))


def test_a_table_model_moved_to_another_library_encodes_on_the_host():
    """The table is encoded in NumPy, then predicted where the parameters are."""
    xp = pytest.importorskip("array_api_strict")
    from sklearn_gd import move_model

    X, y = mixed_frame()
    model = small(MLPBackpropClassifier).fit(X, y)
    moved = move_model(model, xp)
    proba = moved.predict_proba(X)
    assert type(proba).__module__.startswith("array_api_strict")
    np.testing.assert_allclose(np.asarray(proba), model.predict_proba(X), rtol=1e-12)


def test_a_table_model_moved_to_another_library_trains_there_from_tables():
    """partial_fit and a warm-started fit with a validation table: encoded on the
    host, trained where the parameters are, to the host's model."""
    xp = pytest.importorskip("array_api_strict")
    from sklearn_gd import move_model

    X, y = mixed_frame()
    host = small(MLPBackpropClassifier).partial_fit(X, y, classes=[0, 1])
    moved = move_model(host, xp)
    host.partial_fit(X, y)
    moved.partial_fit(X, y)
    assert type(moved._theta).__module__.startswith("array_api_strict")
    np.testing.assert_allclose(np.asarray(moved._theta), host._theta, rtol=1e-12, atol=1e-14)

    host = small(MLPBackpropClassifier, warm_start=True, early_stopping=True)
    host.set_params(max_iter=3)
    fit_args, validation = (X[:150], y[:150]), dict(X_val=X[150:], y_val=y[150:])
    host.fit(*fit_args, **validation)
    moved = move_model(host, xp)
    host.fit(*fit_args, **validation)
    moved.fit(*fit_args, **validation)
    assert type(moved._theta).__module__.startswith("array_api_strict")
    np.testing.assert_allclose(np.asarray(moved._theta), host._theta, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(moved.validation_loss_curve_, host.validation_loss_curve_,
                               rtol=1e-12)
    with pytest.raises(ValueError, match="expecting 5 features"), \
            pytest.warns(UserWarning, match="does not have valid feature names"):
        moved.partial_fit(np.zeros((3, 3)), [0, 1, 0])


def test_metadata_routing_carries_weights_and_the_validation_table():
    """Through a pipeline, the table model gets the routed weights and a validation
    table that the pipeline transforms: the model the direct calls give."""
    from sklearn import config_context
    from sklearn.pipeline import Pipeline

    X, y = mixed_frame()
    weights = np.where(y == 1, 2.0, 1.0)
    params = dict(early_stopping=True, n_iter_no_change=5)
    with config_context(enable_metadata_routing=True):
        model = small(MLPBackpropClassifier, **params).set_fit_request(
            sample_weight=True, X_val=True, y_val=True)
        pipeline = Pipeline([("scale", RobustSmoothClipScaler(numeric_only=True)),
                             ("model", model)], transform_input=["X_val"])
        pipeline.fit(X[:200], y[:200], sample_weight=weights[:200], X_val=X[200:],
                     y_val=y[200:])
    scaler = RobustSmoothClipScaler(numeric_only=True).fit(X[:200])
    direct = small(MLPBackpropClassifier, **params).fit(
        scaler.transform(X[:200]), y[:200], sample_weight=weights[:200],
        X_val=scaler.transform(X[200:]), y_val=y[200:])
    np.testing.assert_array_equal(pipeline[-1]._theta, direct._theta)
    assert pipeline[-1].validation_scores_ == direct.validation_scores_


def test_warm_start_keeps_the_columns_and_sends_new_categories_to_the_slot():
    X, y = mixed_frame()
    model = small(MLPBackpropClassifier, warm_start=True).set_params(max_iter=5)
    model.fit(X[X["city"] != "city3"], y[X["city"] != "city3"])
    table, layout = model._table(), model._layout
    model.fit(X, y)  # city3 first seen: the missing-or-unknown slot
    assert model._table() is table and model._layout == layout and model.n_iter_ == 10
    city3 = X[X["city"] == "city3"].head(1)
    np.testing.assert_array_equal(model.predict_proba(city3),
                                  model.predict_proba(city3.assign(city=None)))


def test_pyarrow_backed_columns_train_as_their_numpy_twins():
    pytest.importorskip("pyarrow")
    X, y = mixed_frame()
    arrow = X.assign(city=X["city"].astype("string[pyarrow]"),
                     amount=X["amount"].astype("float64[pyarrow]"))
    np.testing.assert_array_equal(small(MLPBackpropClassifier).fit(arrow, y)._theta,
                                  small(MLPBackpropClassifier).fit(X, y)._theta)
