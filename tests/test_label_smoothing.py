"""``label_smoothing``: the targets, the objective against an independent solver, gradients."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from scipy.special import log_softmax, logsumexp
from sklearn.datasets import make_classification

from sklearn_gd import MLPBackpropClassifier
from sklearn_gd._engine._layout import Layout
from sklearn_gd._engine._losses import get_loss
from sklearn_gd._engine._network import Network
from sklearn_gd._testing import central_differences, relative_error


def encoded(y, eps):
    model = MLPBackpropClassifier(hidden_layer_sizes=(), label_smoothing=eps)
    return model._encode_targets(y, np.float64, fitting=True)


def test_smoothed_targets_follow_the_formula():
    multiclass = encoded(np.array([0, 2, 1]), 0.3)
    np.testing.assert_allclose(multiclass, 0.7 * np.eye(3)[[0, 2, 1]] + 0.1)
    np.testing.assert_allclose(multiclass.sum(axis=1), 1.0)
    np.testing.assert_allclose(encoded(np.array(["a", "b", "b"]), 0.2), [[0.1], [0.9], [0.9]])
    multilabel = encoded(np.array([[1, 0], [1, 1], [0, 0]]), 0.5)
    np.testing.assert_allclose(multilabel, [[0.75, 0.25], [0.75, 0.75], [0.25, 0.25]])
    plain = encoded(np.array([0, 1, 2]), 0.0)
    assert plain.dtype == bool  # no smoothing: targets stay one byte each


def smoothed_objective(n_classes, X, y, eps, alpha):
    """J of (multinomial) logistic regression on smoothed targets, written out
    independently: ``mean_i loss_i + alpha / (2 n) ||W||^2``."""
    n, d = X.shape
    k = 1 if n_classes == 2 else n_classes
    Y = np.eye(n_classes)[y] if k > 1 else y[:, None].astype(float)
    Y = (1 - eps) * Y + eps / (n_classes if k > 1 else 2)

    def J(params):
        W, b = params[: d * k].reshape(d, k), params[d * k:]
        R = X @ W + b
        if k == 1:
            loss = np.logaddexp(0, R) - Y * R
        else:
            loss = -(Y * log_softmax(R, axis=1))
        return loss.sum() / n + alpha / (2 * n) * np.sum(W**2)

    return J, d * k + k


@pytest.mark.parametrize("n_classes", [2, 3])
def test_lbfgs_fit_minimises_the_smoothed_objective(n_classes):
    X, y = make_classification(n_samples=120, n_features=4, n_informative=3, n_redundant=0,
                               n_classes=n_classes, class_sep=3.0, random_state=0)
    eps, alpha = 0.2, 1e-3
    model = MLPBackpropClassifier(hidden_layer_sizes=(), solver="lbfgs", alpha=alpha,
                                  label_smoothing=eps, max_iter=5000, tol=1e-10,
                                  random_state=0).fit(X, y)
    J, size = smoothed_objective(n_classes, X, y, eps, alpha)
    exact = minimize(J, np.zeros(size), method="BFGS", options={"gtol": 1e-10}).x
    ours = np.concatenate([model.coefs_[0].ravel(), model.intercepts_[0]])
    assert J(ours) == pytest.approx(model.loss_curve_[-1], rel=1e-9)  # the same J
    # at its minimum, within what L-BFGS-B's stopping rule (ftol) leaves
    assert J(exact) <= J(ours) <= J(exact) * (1 + 3e-5)
    # softmax logits are defined up to a constant: compare what they predict
    reference = MLPBackpropClassifier(hidden_layer_sizes=(), solver="lbfgs").fit(X, y)
    reference.coefs_[0][...] = exact[: size - reference.intercepts_[0].size].reshape(4, -1)
    reference.intercepts_[0][...] = exact[size - reference.intercepts_[0].size:]
    np.testing.assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-4)
    # smoothing keeps the probabilities away from 0 and 1 on this nearly separable data
    unsmoothed = MLPBackpropClassifier(hidden_layer_sizes=(), solver="lbfgs", alpha=alpha,
                                       max_iter=5000, tol=1e-10).fit(X, y)
    assert model.predict_proba(X).max() < unsmoothed.predict_proba(X).max()


def test_the_smoothed_priors_are_the_constant_models_optimum():
    """With no information in X, the best model predicts the smoothed class
    frequencies; the output bias starts there, so L-BFGS has nothing to do."""
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=200, p=[0.6, 0.3, 0.1])
    sw = rng.uniform(0.5, 2.0, size=200)
    X = np.zeros((200, 1))
    eps = 0.3
    model = MLPBackpropClassifier(hidden_layer_sizes=(), solver="lbfgs", label_smoothing=eps)
    with pytest.warns(UserWarning, match="L-BFGS made no iteration"):
        model.fit(X, y, sample_weight=sw)
    frequencies = np.array([sw[y == k].sum() for k in range(3)]) / sw.sum()
    np.testing.assert_allclose(model.predict_proba(X[:1])[0], (1 - eps) * frequencies + eps / 3,
                               rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["logistic", "softmax"]),
       n_outputs=st.integers(2, 4), hidden=st.lists(st.integers(1, 5), max_size=2))
def test_gradient_with_smoothed_targets_matches_finite_differences(seed, kind, n_outputs,
                                                                   hidden):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(6, 3))
    if kind == "softmax":  # row-stochastic soft targets, as smoothing makes them
        Y, loss = rng.dirichlet(np.ones(n_outputs), size=6), "log_loss"
    else:
        Y, loss = rng.uniform(0, 1, size=(6, n_outputs)), "binary_log_loss"
    net = Network(Layout([3, *hidden, n_outputs]), "tanh", get_loss(loss))
    theta = rng.normal(scale=0.5, size=net.layout.size)
    weights = np.full(6, 1 / 6)

    def objective(t):
        grad = np.empty_like(t)
        data, penalty = net.loss_and_grad(t, X, Y, weights, 0.1, net.workspace(6, float), grad)
        return data + penalty, grad

    _, grad = objective(theta)
    numeric = central_differences(lambda t: objective(t)[0], theta)
    assert relative_error(grad, numeric) <= 1e-6


def test_the_softmax_kernel_takes_soft_targets():
    """The fused softmax + log-loss kernel's value is the loss of the written-down formula."""
    rng = np.random.default_rng(1)
    R, Y = rng.normal(size=(5, 4)), rng.dirichlet(np.ones(4), size=5)
    weights = rng.uniform(size=5)
    P, delta = np.empty_like(R), np.empty_like(R)
    value = get_loss("log_loss").loss_and_delta(R, Y, weights, P, delta)[0]
    expected = weights @ (logsumexp(R, axis=1) - (Y * R).sum(axis=1))
    assert value == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(delta, weights[:, None] * (np.exp(log_softmax(R, axis=1)) - Y))
