"""First-class scikit-learn citizenship: pipelines, searches, routing, callbacks, plots."""

import os
import subprocess
import sys

import numpy as np
import pytest
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    LearningCurveDisplay,
    RandomizedSearchCV,
    cross_validate,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.fixes import parse_version

from sklearn_gd import GDRegressor, LossCurveDisplay, MLPBackpropClassifier

sklearn_version = parse_version(sklearn.__version__)

X, y = make_classification(n_samples=120, n_features=5, n_informative=3, random_state=0)
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def frame():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.normal(40, 10, 150), "income": rng.normal(5e4, 1e4, 150),
                       "city": rng.choice(["paris", "lyon", "nice"], 150)})
    target = ((df["age"] > 40) ^ (df["city"] == "nice")).astype(int)
    return df, target


def tabular_pipeline(**params):
    columns = ColumnTransformer([("num", StandardScaler(), ["age", "income"]),
                                 ("cat", OneHotEncoder(), ["city"])])
    return Pipeline([("prep", columns),
                     ("clf", MLPBackpropClassifier(random_state=0, **params))])


def test_column_transformer_pipeline_on_dataframe(frame):
    df, target = frame
    pipe = tabular_pipeline(hidden_layer_sizes=(16,), solver="lbfgs").fit(df, target)
    assert pipe.score(df, target) > 0.9
    assert pipe.predict(df.iloc[:5]).shape == (5,)


def test_grid_and_randomized_search_in_parallel(frame):
    df, target = frame
    grid = {"clf__solver": ["adam", "sgd"], "clf__alpha": [1e-4, 1e-2],
            "clf__dropout": [0.0, 0.2], "clf__learning_rate_init": [1e-3, 1e-2],
            "clf__hidden_layer_sizes": [(4,), (8, 4)]}
    search = GridSearchCV(tabular_pipeline(max_iter=20), grid, cv=2, n_jobs=2).fit(df, target)
    assert len(search.cv_results_["params"]) == 32
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    randomized = RandomizedSearchCV(tabular_pipeline(max_iter=20), grid, n_iter=5, cv=2,
                                    n_jobs=2, random_state=0).fit(df, target)
    assert randomized.best_score_ > 0.5


def assert_same_models(got, want):
    for a, b in zip(got.coefs_ + got.intercepts_, want.coefs_ + want.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert got.loss_curve_ == want.loss_curve_


def test_fits_in_python_threads_equal_the_same_fits_one_after_another():
    """The kernels release the GIL on large arrays and share no state: fits in joblib's
    threading backend, and a GridSearchCV(n_jobs=4) under it, give the models of the
    same fits run one after another, bit for bit (batches of 128 rows into 64 units:
    large enough for the kernels to run without the GIL)."""
    from joblib import Parallel, delayed, parallel_backend

    X_big, y_big = make_classification(n_samples=600, n_features=20, n_informative=10,
                                       n_classes=3, random_state=0)
    settings = [dict(alpha=alpha, random_state=seed) for alpha in (1e-4, 1e-2) for seed in (0, 1)]

    def fit(params):
        return MLPBackpropClassifier(hidden_layer_sizes=(64, 64), batch_size=128, max_iter=3,
                                     **params).fit(X_big, y_big)

    one_after_another = [fit(params) for params in settings]
    with parallel_backend("threading", n_jobs=4):
        in_threads = Parallel()(delayed(fit)(params) for params in settings)
    for got, want in zip(in_threads, one_after_another):
        assert_same_models(got, want)

    def search(n_jobs):
        return GridSearchCV(
            MLPBackpropClassifier(hidden_layer_sizes=(64,), batch_size=128, max_iter=3,
                                  random_state=0),
            {"alpha": [1e-4, 1e-2], "learning_rate_init": [1e-3, 1e-2]}, cv=2, n_jobs=n_jobs,
        ).fit(X_big, y_big)

    with parallel_backend("threading"):
        threaded = search(n_jobs=4)
    sequential = search(n_jobs=1)
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(threaded.cv_results_[key], sequential.cv_results_[key])
    assert_same_models(threaded.best_estimator_, sequential.best_estimator_)


def test_cross_validate_both_estimators():
    scores = cross_validate(MLPBackpropClassifier(hidden_layer_sizes=(8,), max_iter=50,
                                                  learning_rate_init=0.05,
                                                  random_state=0), X, y, cv=3)
    assert scores["test_score"].mean() > 0.7
    regression = cross_validate(GDRegressor(solver="lbfgs"), X, X @ np.arange(5.0), cv=3)
    assert regression["test_score"].mean() > 0.99


def test_learning_curve_uses_partial_fit():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    calls = []
    original = MLPBackpropClassifier.partial_fit

    class Recording(MLPBackpropClassifier):
        def partial_fit(self, *args, **kwargs):
            calls.append(1)
            return original(self, *args, **kwargs)

    display = LearningCurveDisplay.from_estimator(
        Recording(hidden_layer_sizes=(8,), random_state=0), X, y, cv=2,
        train_sizes=[0.3, 0.6, 1.0], exploit_incremental_learning=True,
    )
    assert len(calls) == 2 * 3  # one partial_fit per size increment and split
    assert display.train_scores.shape == (3, 2)


# ---------------------------------------------------------------- metadata routing
@pytest.mark.skipif(
    sklearn_version < parse_version("1.9"),
    reason="scikit-learn 1.6 does not route score metadata through Pipeline.score "
    "(UnsetMetadataPassedError for Pipeline.score); checked on 1.9",
)
def test_sample_weight_routed_to_fit_and_score():
    sw = np.random.default_rng(1).uniform(0.1, 3.0, size=len(y))
    cv = KFold(3)
    with sklearn.config_context(enable_metadata_routing=True):
        est = MLPBackpropClassifier(hidden_layer_sizes=(4,), solver="lbfgs", random_state=0)
        est.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
        scaler = StandardScaler().set_fit_request(sample_weight=False)
        search = GridSearchCV(make_pipeline(scaler, est),
                              {"mlpbackpropclassifier__alpha": [1e-3]}, cv=cv)
        search.fit(X, y, sample_weight=sw)
    for split, (train, test) in enumerate(cv.split(X)):
        scaler = StandardScaler().fit(X[train])
        model = MLPBackpropClassifier(hidden_layer_sizes=(4,), solver="lbfgs", alpha=1e-3,
                                      random_state=0)
        model.fit(scaler.transform(X[train]), y[train], sample_weight=sw[train])
        expected = model.score(scaler.transform(X[test]), y[test], sample_weight=sw[test])
        assert search.cv_results_[f"split{split}_test_score"][0] == pytest.approx(expected)
        unweighted = model.score(scaler.transform(X[test]), y[test])
        assert expected != pytest.approx(unweighted)  # the weights made a difference


# A subprocess: scikit-learn enables array API dispatch only when SCIPY_ARRAY_API=1
# was set before SciPy was imported. argv[1]: "pipeline" puts a StandardScaler first.
ARRAY_API_FITS = """
import sys, warnings
import numpy as np, sklearn, array_api_strict as xps
from sklearn.datasets import make_classification, make_regression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn_gd import GDRegressor, MLPBackpropClassifier
warnings.simplefilter("ignore")
scaled = sys.argv[1] == "pipeline"
X, y = make_classification(n_samples=60, n_features=4, random_state=0)
Xr, yr = make_regression(n_samples=60, n_features=4, random_state=0)
for make, X, y in ((MLPBackpropClassifier, X, y), (GDRegressor, Xr, yr)):
    def model():
        return make_pipeline(*[StandardScaler()] * scaled, make(max_iter=5, random_state=0))
    numpy_fit = model().fit(X, y)
    with sklearn.config_context(array_api_dispatch=True):
        pipe = model().fit(xps.asarray(X), xps.asarray(y))
        assert not scaled or type(pipe[0].mean_) is not np.ndarray  # the scaler dispatched
        predicted = pipe.predict(xps.asarray(X))
        trained_there = type(pipe[-1].coefs_[0]) is not np.ndarray  # scikit-learn >= 1.8
        assert trained_there == (sklearn.__version__ >= "1.8")
        assert type(predicted) is type(pipe[-1].coefs_[0])
        score = pipe.score(xps.asarray(X), y)  # y follows X's library
        est = make(random_state=0)
        extra = {"classes": xps.asarray([0, 1])} if make is MLPBackpropClassifier else {}
        est.partial_fit(xps.asarray(X), xps.asarray(y), **extra)
    np.testing.assert_allclose(np.asarray(pipe[-1].coefs_[0]), numpy_fit[-1].coefs_[0],
                               rtol=1e-12)
    np.testing.assert_allclose(np.asarray(predicted), numpy_fit.predict(X), rtol=1e-10)
    assert abs(score - numpy_fit.score(X, y)) < 1e-12
print("ok")
"""


@pytest.mark.parametrize("steps", [
    "alone",
    pytest.param("pipeline", marks=pytest.mark.skipif(
        sklearn_version < parse_version("1.9"),
        reason="scikit-learn 1.7's StandardScaler itself fails on array_api_strict 2.6 "
        "arrays ('dtype' must be a dtype); checked on 1.9")),
])
def test_array_api_dispatch_feeds_the_numpy_network(steps):
    """Under ``array_api_dispatch`` another library's arrays (a scaler's output)
    train and predict in that library (scikit-learn >= 1.8), with the NumPy
    copies' results, not a dtype error."""
    pytest.importorskip("array_api_strict")
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    done = subprocess.run([sys.executable, "-c", ARRAY_API_FITS, steps], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


# ---------------------------------------------------------------- class_weight
def test_class_weight_multiplies_sample_weight():
    params = dict(hidden_layer_sizes=(4,), solver="lbfgs", random_state=0)
    sw = np.random.default_rng(2).uniform(0.5, 2.0, size=len(y))
    by_class = MLPBackpropClassifier(class_weight={0: 3.0, 1: 0.5}, **params)
    by_class.fit(X, y, sample_weight=sw)
    by_sample = MLPBackpropClassifier(**params)
    by_sample.fit(X, y, sample_weight=sw * np.where(y == 0, 3.0, 0.5))
    np.testing.assert_allclose(by_class._theta, by_sample._theta, rtol=1e-10)


def test_balanced_class_weight_rebalances_predictions():
    Xi, yi = make_classification(n_samples=300, weights=[0.9, 0.1], flip_y=0.05,
                                 class_sep=0.5, random_state=0)
    params = dict(hidden_layer_sizes=(), solver="lbfgs", random_state=0)
    plain = MLPBackpropClassifier(**params).fit(Xi, yi)
    balanced = MLPBackpropClassifier(class_weight="balanced", **params).fit(Xi, yi)
    assert (balanced.predict(Xi) == 1).sum() > (plain.predict(Xi) == 1).sum()
    with pytest.raises(ValueError, match="balanced.*partial_fit"):
        MLPBackpropClassifier(class_weight="balanced").partial_fit(Xi, yi, classes=[0, 1])
    MLPBackpropClassifier(class_weight={0: 1, 1: 9}).partial_fit(Xi, yi, classes=[0, 1])


def test_balanced_class_weight_on_a_warm_started_y_lacking_a_class():
    # was scikit-learn's "classes should have valid labels that are in y"
    y3 = np.arange(len(y)) % 3
    part = y3 < 2
    params = dict(hidden_layer_sizes=(4,), max_iter=3, warm_start=True, random_state=0)
    balanced = MLPBackpropClassifier(class_weight="balanced", **params).fit(X, y3)
    as_dict = MLPBackpropClassifier(class_weight="balanced", **params).fit(X, y3)
    balanced.fit(X[part], y3[part])
    counts = np.bincount(y3[part])
    balanced_by_hand = {label: part.sum() / (2 * count) for label, count in enumerate(counts)}
    as_dict.set_params(class_weight=balanced_by_hand)
    as_dict.fit(X[part], y3[part])
    assert balanced.classes_.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(balanced.coefs_[0], as_dict.coefs_[0])


# ---------------------------------------------------------------- verbose and plots
def test_verbose_reports_validation_when_early_stopping(capsys):
    """Verbose names what early stopping monitors: the validation loss (reported
    once, not again as a negated "score"), or the score by its name."""
    MLPBackpropClassifier(hidden_layer_sizes=(4,), early_stopping=True, max_iter=3,
                          verbose=True, random_state=0).fit(X, y)
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("Iteration")]
    assert len(lines) == 3
    for part in ("loss = ", "validation loss = ", "learning rate", "elapsed"):
        assert part in lines[0]
    assert "score" not in lines[0]
    MLPBackpropClassifier(hidden_layer_sizes=(4,), early_stopping=True, max_iter=3,
                          verbose=True, random_state=0, scoring=None).fit(X, y)
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("Iteration")]
    assert "validation loss = " in lines[0] and "validation accuracy = " in lines[0]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 3 epochs on purpose
def test_verbose_reports_validation_only_for_epochs_that_validated(capsys):
    """A partial_fit epoch after an early-stopping fit holds out nothing: its line
    shows no validation loss (not the last one the fit measured)."""
    model = MLPBackpropClassifier(hidden_layer_sizes=(4,), early_stopping=True, max_iter=3,
                                  verbose=True, random_state=0).fit(X, y)
    capsys.readouterr()
    model.partial_fit(X, y)
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("Iteration")]
    assert len(lines) == 1 and lines[0].startswith("Iteration 4, loss = ")
    assert "validation" not in lines[0]
    assert len(model.validation_scores_) == 3 and len(model.loss_curve_) == 4


def test_loss_curve_display_from_estimator():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    est = MLPBackpropClassifier(hidden_layer_sizes=(8,), early_stopping=True, max_iter=15,
                                random_state=0).fit(X, y)
    fig, ax = plt.subplots()
    display = LossCurveDisplay.from_estimator(est, ax=ax)
    assert display.ax_ is ax and display.figure_ is fig
    np.testing.assert_allclose(display.line_.get_ydata(), est.loss_curve_)
    np.testing.assert_allclose(display.validation_line_.get_ydata(), est.validation_loss_curve_)
    # monitoring the loss (the default), the scores are minus the validation loss: not drawn
    assert display.score_line_ is None
    assert display.best_line_.get_xdata()[0] == est.best_iteration_
    by_accuracy = MLPBackpropClassifier(hidden_layer_sizes=(8,), early_stopping=True,
                                        max_iter=15, random_state=0, scoring="accuracy")
    display = LossCurveDisplay.from_estimator(by_accuracy.fit(X, y))
    np.testing.assert_allclose(display.score_line_.get_ydata(), by_accuracy.validation_scores_)
    assert display.score_ax_.get_ylabel() == "validation accuracy"
    plain = LossCurveDisplay.from_estimator(
        make_pipeline(StandardScaler(), MLPBackpropClassifier(max_iter=3)).fit(X, y))
    assert plain.validation_line_ is None and plain.score_line_ is None
    plt.close("all")


# ---------------------------------------------------------------- the user's validation set
def validation_split():
    X_big, y_big = make_classification(n_samples=300, n_features=6, n_informative=4,
                                       random_state=3)
    return X_big[:200], y_big[:200], X_big[200:], y_big[200:]


@pytest.mark.parametrize("cls", [MLPBackpropClassifier, GDRegressor])
def test_early_stopping_scores_the_validation_set_given_to_fit(cls):
    """No row is held out (t_ counts every row of every epoch), each epoch is scored on
    X_val, and the weights kept are the best epoch's: their score on X_val is the best one."""
    X_tr, y_tr, X_val, y_val = validation_split()
    model = cls(hidden_layer_sizes=(8,), early_stopping=True, max_iter=8, n_iter_no_change=50,
                scoring=None, random_state=0)
    model.fit(X_tr, y_tr, X_val=X_val, y_val=y_val)
    assert model.t_ == model.n_iter_ * len(X_tr)
    assert len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert model.score(X_val, y_val) == pytest.approx(model.best_validation_score_, rel=1e-12)
    held_out = cls(hidden_layer_sizes=(8,), early_stopping=True, max_iter=8,
                   n_iter_no_change=50, random_state=0).fit(X_tr, y_tr)
    assert held_out.t_ < held_out.n_iter_ * len(X_tr)


def test_validation_sample_weights_weigh_the_validation_loss():
    X_tr, y_tr, X_val, y_val = validation_split()
    params = dict(hidden_layer_sizes=(8,), early_stopping=True, max_iter=3, random_state=0)
    plain = GDRegressor(**params).fit(X_tr, y_tr, X_val=X_val, y_val=y_val)
    weights = np.where(np.arange(len(y_val)) % 2 == 0, 3.0, 0.0)
    weighted = GDRegressor(**params).fit(X_tr, y_tr, X_val=X_val, y_val=y_val,
                                         sample_weight_val=weights)
    evens = GDRegressor(**params).fit(X_tr, y_tr, X_val=X_val[::2], y_val=y_val[::2])
    assert weighted.validation_loss_curve_ != plain.validation_loss_curve_
    np.testing.assert_allclose(weighted.validation_loss_curve_, evens.validation_loss_curve_,
                               rtol=1e-12)


@pytest.mark.parametrize(
    "params, fit_kwargs, message",
    [
        ({}, dict(X_val=X, y_val=y), "early stopping, which is off"),
        ({"early_stopping": True}, dict(X_val=X), "X_val and y_val go together"),
        ({"early_stopping": True, "solver": "lbfgs"}, dict(X_val=X, y_val=y),
         "solver='lbfgs' does not stop early"),
        ({"early_stopping": True}, dict(X_val=X[:, :3], y_val=y), "features"),
    ],
)
def test_a_validation_set_is_refused_where_it_would_be_ignored_or_wrong(params, fit_kwargs,
                                                                        message):
    with pytest.raises(ValueError, match=message):
        MLPBackpropClassifier(hidden_layer_sizes=(3,), max_iter=2, **params).fit(X, y, **fit_kwargs)


def test_the_validation_set_is_routed_and_transformed_in_a_pipeline():
    """Metadata routing carries X_val and y_val to the network, and the pipeline's
    transform_input transforms X_val by the steps before it, as it does X."""
    if "transform_input" not in Pipeline([("s", StandardScaler())]).get_params():
        pytest.skip("Pipeline(transform_input=...) needs scikit-learn >= 1.6")
    X_tr, y_tr, X_val, y_val = validation_split()
    params = dict(hidden_layer_sizes=(8,), early_stopping=True, max_iter=5, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        network = MLPBackpropClassifier(**params).set_fit_request(X_val=True, y_val=True)
        pipe = Pipeline([("scale", StandardScaler()), ("mlp", network)],
                        transform_input=["X_val"])
        pipe.fit(X_tr, y_tr, X_val=X_val, y_val=y_val)
        search = GridSearchCV(pipe, {"mlp__alpha": [1e-4, 1e-2]}, cv=2)
        search.fit(X_tr, y_tr, X_val=X_val, y_val=y_val)
    scaler = StandardScaler().fit(X_tr)
    direct = MLPBackpropClassifier(**params).fit(
        scaler.transform(X_tr), y_tr, X_val=scaler.transform(X_val), y_val=y_val)
    assert pipe[-1].validation_scores_ == direct.validation_scores_
    np.testing.assert_array_equal(pipe[-1].coefs_[0], direct.coefs_[0])
    assert search.best_estimator_[-1].t_ == 5 * len(X_tr)  # trained on every row: X_val given


# ---------------------------------------------------------------- what early stopping monitors
def test_scoring_loss_monitors_the_validation_objective():
    X_tr, y_tr, X_val, y_val = validation_split()
    model = MLPBackpropClassifier(hidden_layer_sizes=(8,), early_stopping=True, max_iter=6,
                                  n_iter_no_change=50, scoring="loss", random_state=0)
    model.fit(X_tr, y_tr, X_val=X_val, y_val=y_val)
    assert model.validation_scores_ == [-loss for loss in model.validation_loss_curve_]
    assert model.best_loss_ == min(model.validation_loss_curve_)
    assert model.best_iteration_ == 1 + int(np.argmin(model.validation_loss_curve_))


@pytest.mark.parametrize("scoring", ["roc_auc", "neg_log_loss", "callable"])
def test_scoring_by_a_scorer_scores_each_epochs_weights(scoring):
    """Each epoch's score is the scorer's on a copy holding that epoch's weights: with
    every epoch kept (no stop) and the best restored, the final model scores the best."""
    from sklearn.metrics import get_scorer

    X_tr, y_tr, X_val, y_val = validation_split()
    if scoring == "callable":
        def scoring(estimator, X, y):
            return -float(np.mean(np.abs(estimator.predict_proba(X)[:, 1] - y)))
    model = MLPBackpropClassifier(hidden_layer_sizes=(8,), early_stopping=True, max_iter=6,
                                  n_iter_no_change=50, scoring=scoring, random_state=0)
    model.fit(X_tr, y_tr, X_val=X_val, y_val=y_val)
    scorer = scoring if callable(scoring) else get_scorer(scoring)
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert scorer(model, X_val, y_val) == pytest.approx(model.best_validation_score_, rel=1e-12)
    assert len(set(model.validation_scores_)) > 1


def test_scoring_by_a_scorer_on_the_held_out_part():
    """Without X_val, the scorer sees the held-out rows with their labels as given."""
    labels = np.where(y == 1, "yes", "no")
    model = MLPBackpropClassifier(hidden_layer_sizes=(4,), early_stopping=True, max_iter=3,
                                  scoring="f1_macro", random_state=0).fit(X, labels)
    assert len(model.validation_scores_) == 3
    assert all(0.0 <= score <= 1.0 for score in model.validation_scores_)


def test_an_unknown_scoring_is_refused():
    with pytest.raises(ValueError, match="scoring"):
        MLPBackpropClassifier(scoring="no_such_scorer").fit(X, y)
