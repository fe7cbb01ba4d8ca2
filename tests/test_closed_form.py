"""Linear models against their closed-form / reference solutions."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from sklearn_gd import GDRegressor, MLPBackpropClassifier

ALPHA = 3.0


@pytest.fixture(scope="module")
def regression_data():
    X, y = make_regression(n_samples=120, n_features=5, noise=5.0, random_state=0)
    X = StandardScaler().fit_transform(X) + 1.0  # an offset so the intercept matters
    sw = np.random.default_rng(0).uniform(0.2, 2.0, size=X.shape[0])
    return X, y / 10, sw


def _fit_quietly(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    "params",
    [
        dict(solver="lbfgs", tol=1e-12, max_iter=2000),
        dict(solver="sgd", momentum=0.0, batch_size=None, learning_rate_init=0.1,
             tol=0.0, n_iter_no_change=np.inf, max_iter=2000),
        dict(solver="adam", batch_size=None, learning_rate_init=0.05, tol=0.0, n_iter_no_change=np.inf, max_iter=3000),
    ],
    ids=["lbfgs", "full-batch-gd", "full-batch-adam"],
)
def test_linear_regressor_full_batch_matches_ridge(regression_data, params, weighted):
    X, y, sw = regression_data
    sw = sw if weighted else None
    ridge = Ridge(alpha=ALPHA).fit(X, y, sample_weight=sw)
    reg = _fit_quietly(
        GDRegressor(hidden_layer_sizes=(), alpha=ALPHA, random_state=0, **params),
        X, y, sample_weight=sw,
    )
    np.testing.assert_allclose(reg.coefs_[0].ravel(), ridge.coef_, atol=1e-4)
    np.testing.assert_allclose(reg.intercepts_[0][0], ridge.intercept_, atol=1e-4)


@pytest.mark.parametrize("batch_size, learning_rate_init", [(1, 0.002), (16, 0.01)])
def test_linear_regressor_mini_batches_approach_ridge(regression_data, batch_size, learning_rate_init):
    """Mini-batch SGD with a decaying rate: within 1e-2 of Ridge's coefficients."""
    X, y, sw = regression_data
    ridge = Ridge(alpha=ALPHA).fit(X, y, sample_weight=sw)
    reg = _fit_quietly(
        GDRegressor(
            alpha=ALPHA, solver="sgd", batch_size=batch_size, learning_rate="cosine",
            learning_rate_init=learning_rate_init, max_iter=300, tol=0.0, n_iter_no_change=np.inf, random_state=0,
        ),
        X, y, sample_weight=sw,
    )
    np.testing.assert_allclose(reg.coefs_[0].ravel(), ridge.coef_, atol=1e-2)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_linear_classifier_full_batch_matches_logistic_regression(n_classes, weighted):
    X, y = make_classification(
        n_samples=150, n_features=4, n_informative=3, n_redundant=0,
        n_classes=n_classes, random_state=1,
    )
    sw = np.random.default_rng(1).uniform(0.2, 2.0, size=X.shape[0]) if weighted else None
    alpha = 0.5
    logreg = LogisticRegression(C=1 / alpha, tol=1e-12, max_iter=10_000).fit(X, y, sample_weight=sw)
    clf = _fit_quietly(
        MLPBackpropClassifier(hidden_layer_sizes=(), alpha=alpha, solver="lbfgs",
                              tol=1e-12, max_iter=5000, random_state=0),
        X, y, sample_weight=sw,
    )
    np.testing.assert_allclose(clf.predict_proba(X), logreg.predict_proba(X), atol=1e-4)


def test_linear_classifier_full_batch_gradient_descent_matches_logistic_regression():
    X, y = make_classification(n_samples=150, n_features=4, random_state=2)
    alpha = 1.0
    logreg = LogisticRegression(C=1 / alpha, tol=1e-12).fit(X, y)
    clf = _fit_quietly(
        MLPBackpropClassifier(hidden_layer_sizes=(), alpha=alpha, solver="sgd", momentum=0.9,
                              batch_size=None, learning_rate_init=0.5, tol=0.0, n_iter_no_change=np.inf,
                              max_iter=3000, random_state=0),
        X, y,
    )
    np.testing.assert_allclose(clf.predict_proba(X), logreg.predict_proba(X), atol=1e-4)


def test_linear_classifier_mini_batches_approach_logistic_regression():
    """Mini-batch Adam with a cosine schedule: probabilities within 1e-2."""
    X, y = make_classification(n_samples=200, n_features=4, n_classes=3,
                               n_informative=3, n_redundant=0, random_state=3)
    alpha = 1.0
    logreg = LogisticRegression(C=1 / alpha, tol=1e-10).fit(X, y)
    clf = _fit_quietly(
        MLPBackpropClassifier(hidden_layer_sizes=(), alpha=alpha, batch_size=20,
                              learning_rate="cosine", learning_rate_init=0.02,
                              tol=0.0, n_iter_no_change=np.inf, max_iter=300, random_state=0),
        X, y,
    )
    np.testing.assert_allclose(clf.predict_proba(X), logreg.predict_proba(X), atol=1e-2)


def test_linear_poisson_regressor_matches_poisson_glm():
    """``sum_i (exp(r_i) - y_i r_i) / n + alpha / (2n) ||w||^2`` is
    ``PoissonRegressor(alpha=alpha / n)``'s objective up to a constant."""
    from sklearn.linear_model import PoissonRegressor

    rng = np.random.default_rng(4)
    X = rng.normal(size=(150, 3))
    y = rng.poisson(np.exp(X @ [0.3, -0.2, 0.1] + 0.5))
    alpha = 2.0
    glm = PoissonRegressor(alpha=alpha / len(X), tol=1e-12, max_iter=1000).fit(X, y)
    reg = GDRegressor(loss="poisson", alpha=alpha, solver="lbfgs", tol=1e-12,
                      max_iter=1000).fit(X, y)
    np.testing.assert_allclose(reg.coefs_[0].ravel(), glm.coef_, atol=1e-4)
    np.testing.assert_allclose(reg.predict(X), glm.predict(X), rtol=1e-4)
