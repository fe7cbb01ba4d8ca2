"""The one-line tabular recipe: what it builds, and that it behaves as scikit-learn
objects do (cloning, grid search, cross-validation, metadata routing)."""

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import make_classification, make_regression
from sklearn.metrics import accuracy_score, make_scorer
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_gd import (
    GDRegressor,
    MLPBackpropClassifier,
    RobustSmoothClipScaler,
    make_tabular_classifier,
    make_tabular_regressor,
)
from sklearn_gd._recipe import CLASSIFIER_RECIPE, TABULAR_RECIPE

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: A recipe small enough for tests: the pieces are the recipe's, the sizes are not.
SMALL = dict(hidden_layer_sizes=(16,), max_iter=5, batch_size=32, embedding_frequencies=4,
             random_state=0)


def classification(n=120, seed=0):
    return make_classification(n_samples=n, n_features=6, n_informative=4, random_state=seed)


def test_classifier_recipe_is_a_pipeline_of_the_documented_pieces():
    pipe = make_tabular_classifier()
    assert isinstance(pipe, Pipeline) and [name for name, _ in pipe.steps] == ["scaler", "model"]
    scaler, model = pipe["scaler"], pipe["model"]
    assert isinstance(scaler, RobustSmoothClipScaler) and scaler.dtype == np.float32
    assert isinstance(model, MLPBackpropClassifier)
    params = model.get_params()
    for name, value in {**TABULAR_RECIPE, **CLASSIFIER_RECIPE}.items():
        assert params[name] == value, name
    assert params["embedding"] == "periodic" and params["input_scale"]
    assert params["label_smoothing"] == 0.1


def test_parameters_replace_the_recipes_and_the_scaler_can_change():
    pipe = make_tabular_classifier(embedding=None, max_iter=7, scaler=StandardScaler())
    assert pipe["model"].embedding is None and pipe["model"].max_iter == 7
    assert pipe["model"].input_scale  # the rest is the recipe's
    assert isinstance(pipe["scaler"], StandardScaler)
    assert make_tabular_classifier(scaler="passthrough")["scaler"] == "passthrough"
    with pytest.raises(TypeError, match="unexpected keyword"):
        MLPBackpropClassifier(**{**TABULAR_RECIPE, "no_such_parameter": 1})


def test_classifier_recipe_trains_in_float32_and_predicts_labels():
    X, y = classification()
    labels = np.array(["no", "yes"])[y]
    pipe = make_tabular_classifier(**SMALL).fit(X, labels)
    model = pipe["model"]
    assert model.coefs_[0].dtype == np.float32
    assert model._layout.input_block.embedded and model._layout.input_block.scale
    assert set(pipe.predict(X)) <= {"no", "yes"}
    assert pipe.predict_proba(X).shape == (120, 2)
    # the best epoch's weights on the 20% validation split
    assert model.best_iteration_ is not None and len(model.validation_scores_) == model.n_iter_


def test_recipe_is_cloned_and_tuned_by_grid_search():
    X, y = classification()
    pipe = make_tabular_classifier(**SMALL)
    assert clone(pipe).get_params()["model__embedding"] == "periodic"
    search = GridSearchCV(
        pipe,
        {"model__learning_rate_init": [1e-3, 1e-2], "scaler__max_absolute_value": [2.0, 3.0]},
        cv=2,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_["scaler"].max_absolute_value in (2.0, 3.0)


def test_sample_weight_is_routed_to_the_network_in_cross_validation():
    X, y = classification(n=160)
    weights = np.random.default_rng(0).uniform(0.0, 3.0, size=len(y))
    cv = KFold(3, shuffle=True, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_tabular_classifier(**SMALL)
        pipe["model"].set_fit_request(sample_weight=True)
        scoring = make_scorer(accuracy_score).set_score_request(sample_weight=False)
        routed = cross_validate(pipe, X, y, cv=cv, params={"sample_weight": weights},
                                scoring=scoring, return_estimator=True)
    for (train, _), fitted in zip(cv.split(X, y), routed["estimator"]):
        by_hand = make_tabular_classifier(**SMALL).fit(
            X[train], y[train], model__sample_weight=weights[train])
        np.testing.assert_array_equal(fitted["model"]._theta, by_hand["model"]._theta)
    unweighted = make_tabular_classifier(**SMALL).fit(X[train], y[train])
    assert not np.array_equal(unweighted["model"]._theta, by_hand["model"]._theta)


def test_regressor_recipe_standardizes_the_target():
    X, y = make_regression(n_samples=150, n_features=5, noise=1.0, random_state=0)
    reg = make_tabular_regressor(**SMALL)
    assert isinstance(reg, TransformedTargetRegressor)
    assert isinstance(reg.transformer, StandardScaler)
    assert isinstance(reg.regressor["model"], GDRegressor)
    assert reg.regressor["model"].get_params()["embedding"] == "periodic"
    assert "label_smoothing" not in reg.regressor["model"].get_params()
    # in standardized units, the target's scale and offset do not change what is learnt
    shifted = clone(reg).fit(X, 1000.0 * y + 5.0).predict(X)
    plain = reg.fit(X, y).predict(X)
    np.testing.assert_allclose(shifted, 1000.0 * plain + 5.0, rtol=1e-3, atol=1e-2 * np.std(y))
    pipeline = make_tabular_regressor(target_scaler=None, **SMALL)
    assert isinstance(pipeline, Pipeline)


def test_recipe_learns_a_classification_problem_at_its_own_sizes():
    """A smoke test of the recipe as it is (three layers of 256, 256 epochs at most)."""
    X, y = make_classification(n_samples=500, n_features=8, n_informative=5, random_state=1)
    recipe = make_tabular_classifier(random_state=0).fit(X[:400], y[:400])
    assert recipe.score(X[400:], y[400:]) > 0.85
