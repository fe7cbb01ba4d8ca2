"""The input block (periodic embedding, learnable scale): its formula, its gradient
by finite differences, and the network around it."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from test_network import OUTPUT_KINDS, make_targets, objective_and_gradient

from sklearn_gd import GDRegressor, MLPBackpropClassifier
from sklearn_gd._engine._activations import ACTIVATIONS
from sklearn_gd._engine._input_block import InputBlock
from sklearn_gd._engine._layout import Layout
from sklearn_gd._engine._losses import get_loss
from sklearn_gd._engine._network import Network
from sklearn_gd._testing import central_differences, relative_error
from sklearn_gd._train._state import init_state


def block_strategy(n_features):
    return st.builds(
        InputBlock,
        n_features=st.just(n_features),
        n_frequencies=st.integers(0, 4),
        embedding_size=st.integers(1, 4),
        sigma=st.floats(0.05, 2.0),
        scale=st.booleans(),
        scale_rate=st.floats(0.5, 8.0),
    )


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
    hidden=st.lists(st.integers(1, 5), min_size=0, max_size=2),
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    kind=st.sampled_from(OUTPUT_KINDS),
    n_samples=st.integers(1, 7),
    n_features=st.integers(1, 4),
    alpha=st.floats(0.0, 2.0),
    use_dropout=st.booleans(),
)
def test_gradient_through_the_input_block_matches_finite_differences(
    seed, data, hidden, activation, kind, n_samples, n_features, alpha, use_dropout
):
    block = data.draw(block_strategy(n_features))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    Y, loss_name = make_targets(kind, rng, n_samples, 2)
    weights = rng.uniform(0.1, 1.0, size=n_samples)
    weights /= weights.sum()
    layout = Layout([block.n_outputs, *hidden, Y.shape[1]], block)
    net = Network(layout, activation, get_loss(loss_name, huber_delta=0.7))
    theta = rng.normal(scale=0.5, size=layout.size)
    masks = None
    if use_dropout and hidden:
        masks = [(rng.random((n_samples, h)) >= 0.3) / 0.7 for h in hidden]

    J, grad = objective_and_gradient(net, theta, X, Y, weights, alpha, masks)
    numeric = central_differences(
        lambda t: objective_and_gradient(net, t, X, Y, weights, alpha, masks)[0], theta
    )
    assert np.isfinite(J)
    assert relative_error(grad, numeric) <= 1e-6
    # the block's own part of the gradient, on its own (it is not swamped by the rest),
    # down to the differences' own error (rounding of J over eps: about 1e-10)
    block_part = layout.input_slice
    error = np.linalg.norm(grad[block_part] - numeric[block_part])
    assert error <= 1e-5 * np.linalg.norm(numeric[block_part]) + 1e-8


def reference_embedding(block, params, X):
    """The module docstring's formula, one row and one feature at a time."""
    p = block.views(params)
    rows = []
    for x in X:
        h = []
        for j, x_j in enumerate(x):
            z = 2 * np.pi * block.sigma * p["omega"][j] * x_j + p["phi"][j]
            h.extend(np.cos(z) @ p["U"][j] + p["c"][j])
        rows.append(np.concatenate([h, x]))
    E = np.array(rows)
    if block.scale:
        E = E * block.scale_rate * p["v"]
    return E


@pytest.mark.parametrize("scale", [False, True])
def test_embedding_is_the_documented_formula(scale):
    rng = np.random.default_rng(0)
    block = InputBlock(3, n_frequencies=5, embedding_size=3, sigma=0.3, scale=scale,
                       scale_rate=4.0)
    params = rng.normal(size=block.size)
    X = rng.normal(size=(6, 3))
    assert block.n_outputs == 9
    np.testing.assert_allclose(block.forward(params, X), reference_embedding(block, params, X),
                               rtol=1e-12, atol=1e-12)


def test_scale_alone_multiplies_each_feature():
    block = InputBlock(3, scale=True, scale_rate=6.0)
    params = np.array([1.0, 0.5, -2.0]) / 6.0
    X = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(block.forward(params, X), X * [1.0, 0.5, -2.0])


def test_initial_block_follows_its_documented_distributions():
    d, k = 200, 16
    block = InputBlock(d, n_frequencies=k, embedding_size=4, sigma=0.1, scale=True,
                       scale_rate=6.0)
    params = np.empty(block.size)
    block.initialize(params, np.random.default_rng(0))
    p = block.views(params)
    assert abs(p["omega"].std() - 1.0) < 0.03 and abs(p["omega"].mean()) < 0.03
    assert np.all(np.abs(p["phi"]) <= np.pi) and p["phi"].std() > 1.7  # U(-pi, pi): 1.81
    assert np.all(np.abs(p["U"]) <= 1 / np.sqrt(k)) and np.all(np.abs(p["c"]) <= 1 / np.sqrt(k))
    # the scale starts at 1 for every column
    np.testing.assert_allclose(block.scale_rate * p["v"], 1.0)


def test_fresh_state_draws_the_block_after_the_same_weights():
    """A block changes neither how the weights are drawn nor the output bias."""
    block = InputBlock(3, n_frequencies=2, embedding_size=2)
    plain = init_state(Layout([6, 5, 2]), "relu", np.float64, seed=1, output_bias=[0.1, 0.2])
    embedded = init_state(Layout([6, 5, 2], block), "relu", np.float64, seed=1,
                          output_bias=[0.1, 0.2])
    assert embedded.layout.input_block == block
    assert embedded.theta.size == plain.theta.size + block.size
    np.testing.assert_array_equal(embedded.theta[block.size:], plain.theta)


def test_float32_stays_float32():
    block = InputBlock(2, n_frequencies=3, scale=True)
    params = np.ones(block.size, dtype=np.float32)
    E = block.forward(params, np.ones((4, 2), dtype=np.float32))
    assert E.dtype == np.float32 and E.flags.c_contiguous


# ---------------------------------------------------------------- in the estimators

BLOCK = dict(embedding="periodic", embedding_frequencies=4, embedding_size=3,
             embedding_sigma=0.3, input_scale=True, input_scale_rate=2.0)


def small_data(seed=0):
    X, y = make_classification(n_samples=80, n_features=5, n_informative=3, random_state=seed)
    return X, y


def quiet_fit(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kwargs)


@pytest.mark.parametrize("cls", [MLPBackpropClassifier, GDRegressor])
def test_estimator_builds_the_block_its_parameters_describe(cls):
    X, y = small_data()
    model = quiet_fit(cls(hidden_layer_sizes=(6,), max_iter=3, random_state=0, **BLOCK), X, y)
    block = model._layout.input_block
    assert block == InputBlock(5, n_frequencies=4, embedding_size=3, sigma=0.3, scale=True,
                               scale_rate=2.0)
    # the first layer reads the 5 x 3 embedded values
    assert model.coefs_[0].shape == (15, 6)
    assert model.n_features_in_ == 5
    # the network's prediction is the block's output through the layers
    E = block.forward(model._layout.input_params(model._theta), X)
    A = np.maximum(E @ model.coefs_[0] + model.intercepts_[0], 0)
    raw = A @ model.coefs_[1] + model.intercepts_[1]
    expected = raw.ravel() if cls is GDRegressor else (raw.ravel() > 0).astype(int)
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-10, atol=1e-12)


def test_without_embedding_or_scale_the_model_is_unchanged():
    """``embedding=None, input_scale=False`` (the defaults) add no parameter at all."""
    X, y = small_data()
    plain = quiet_fit(MLPBackpropClassifier(hidden_layer_sizes=(6,), max_iter=5,
                                            random_state=0), X, y)
    explicit = quiet_fit(MLPBackpropClassifier(hidden_layer_sizes=(6,), max_iter=5,
                                               random_state=0, embedding=None,
                                               input_scale=False, embedding_size=7), X, y)
    assert plain._layout.input_block is None
    np.testing.assert_array_equal(plain._theta, explicit._theta)


def test_block_trains_and_helps_where_a_feature_needs_a_periodic_response():
    """y depends on sin(3 x): the periodic embedding fits it, leaving a fifth of the
    variance the plain network of the same width and training leaves, or less."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(400, 2))
    y = np.sin(3 * X[:, 0]) + 0.1 * X[:, 1]
    common = dict(hidden_layer_sizes=(16,), max_iter=150, random_state=0,
                  learning_rate_init=0.01)
    plain = quiet_fit(GDRegressor(**common), X, y)
    embedded = quiet_fit(GDRegressor(embedding="periodic", embedding_sigma=0.3, **common), X, y)
    unexplained = 1 - embedded.score(X, y), 1 - plain.score(X, y)
    assert unexplained[0] < 0.02
    assert unexplained[0] < unexplained[1] / 5


def test_scale_learns_to_shrink_a_noise_feature():
    """With the scale the first layer's input for a pure-noise feature shrinks
    relative to the informative one."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] > 0).astype(int)
    clf = quiet_fit(MLPBackpropClassifier(hidden_layer_sizes=(8,), input_scale=True,
                                          input_scale_rate=6.0, alpha=0.0, max_iter=200,
                                          learning_rate_init=0.01, random_state=0), X, y)
    p = clf._layout.input_block.views(clf._layout.input_params(clf._theta))
    scale = 6.0 * p["v"]
    assert not np.allclose(scale, 1.0)  # it was trained
    assert clf.score(X, y) > 0.95


@pytest.mark.parametrize("cls", [MLPBackpropClassifier, GDRegressor])
def test_sparse_input_is_refused_with_a_clear_error(cls):
    X, y = small_data()
    with pytest.raises(TypeError, match="need dense X"):
        cls(input_scale=True).fit(sp.csr_matrix(X), y)
    model = quiet_fit(cls(embedding="periodic", max_iter=2), X, y)
    with pytest.raises(TypeError, match="fitted with an input embedding"):
        model.predict(sp.csr_matrix(X))
    # a refit without the block takes sparse input again
    quiet_fit(model.set_params(embedding=None), sp.csr_matrix(X), y)


def test_warm_start_refuses_a_changed_block_and_keeps_the_model():
    X, y = small_data()
    clf = quiet_fit(MLPBackpropClassifier(max_iter=2, warm_start=True, random_state=0,
                                          **BLOCK), X, y)
    theta = clf._theta.copy()
    for change in (dict(embedding=None), dict(embedding_size=2), dict(input_scale=False),
                   dict(input_scale_rate=3.0), dict(embedding_sigma=1.0)):
        with pytest.raises(ValueError, match="input block .* changed"):
            clf.set_params(**{**BLOCK, **change}).fit(X, y)
        np.testing.assert_array_equal(clf._theta, theta)
    clf.set_params(**BLOCK)
    quiet_fit(clf, X, y)  # unchanged: training continues
    assert clf.n_iter_ == 4


@pytest.mark.parametrize("cls", [MLPBackpropClassifier, GDRegressor])
def test_fitted_block_survives_pickling_and_partial_fit(cls):
    X, y = small_data()
    model = cls(hidden_layer_sizes=(5,), random_state=0, **BLOCK)
    model.partial_fit(X, y, **({"classes": [0, 1]} if cls is MLPBackpropClassifier else {}))
    model.partial_fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    assert restored._layout == model._layout
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    assert model.n_iter_ == 2


def test_lbfgs_trains_the_block_too():
    X, y = small_data()
    clf = quiet_fit(MLPBackpropClassifier(solver="lbfgs", hidden_layer_sizes=(5,), max_iter=40,
                                          random_state=0, **BLOCK), X, y)
    start = MLPBackpropClassifier(hidden_layer_sizes=(5,), random_state=0, **BLOCK)
    start = quiet_fit(start.set_params(max_iter=1, learning_rate_init=1e-12), X, y)
    moved = np.abs(clf._layout.input_params(clf._theta)
                   - start._layout.input_params(start._theta)).max()
    assert moved > 1e-3
    assert clf.score(X, y) > 0.9


def test_an_adam_step_moves_scales_and_frequencies_at_their_documented_rates():
    """Adam's first step is ``lr * g / (|g| + eps)``, about ``lr`` per parameter: a
    scale stored in units of ``1 / rho`` moves ``rho * lr``, a frequency stored in
    units of ``sigma`` moves ``sigma * lr``, a weight ``lr``."""
    X, y = small_data()
    lr, rho, sigma = 1e-3, 6.0, 0.2
    clf = MLPBackpropClassifier(hidden_layer_sizes=(4,), solver="adam", learning_rate_init=lr,
                                batch_size=len(y), random_state=0, embedding="periodic",
                                embedding_frequencies=3, embedding_sigma=sigma,
                                input_scale=True, input_scale_rate=rho)
    clf.partial_fit(X, y, classes=[0, 1])
    before = clf._state.copy()
    clf.partial_fit(X, y)  # one full-batch step (the second: bias correction as the first)
    block = clf._layout.input_block
    old = block.views(clf._layout.input_params(before.theta))
    new = block.views(clf._layout.input_params(clf._theta))
    scale_moves = np.abs(rho * (new["v"] - old["v"]))
    frequency_moves = np.abs(sigma * (new["omega"] - old["omega"]))
    weight_moves = np.abs(clf.coefs_[1] - clf._layout.weights(before.theta)[1])
    # Adam's second step is at most about lr per parameter; most move by a good part of it
    assert scale_moves.max() <= rho * lr * 1.01 and np.median(scale_moves) > 0.2 * rho * lr
    assert frequency_moves.max() <= sigma * lr * 1.01
    assert np.median(frequency_moves) > 0.2 * sigma * lr
    assert weight_moves.max() <= lr * 1.01 and np.median(weight_moves) > 0.2 * lr


def test_reused_batch_buffers_give_each_batch_its_own_gradient():
    """The block keeps its arrays between batches of as many rows: a batch after
    another gets the gradient a fresh workspace gives it, and prediction (no
    workspace) the same outputs as training's forward pass."""
    rng = np.random.default_rng(3)
    block = InputBlock(3, n_frequencies=4, embedding_size=3, scale=True, scale_rate=2.0)
    layout = Layout([block.n_outputs, 5, 2], block)
    net = Network(layout, "tanh", get_loss("squared_error"))
    theta = rng.normal(size=layout.size)
    batches = [(rng.normal(size=(6, 3)), rng.normal(size=(6, 2))) for _ in range(2)]
    weights = np.full(6, 1 / 6)
    shared = net.workspace(6, np.float64)
    for X, Y in batches:
        grad_shared, grad_fresh = np.empty_like(theta), np.empty_like(theta)
        net.loss_and_grad(theta, X, Y, weights, 0.1, shared, grad_shared)
        net.loss_and_grad(theta, X, Y, weights, 0.1, net.workspace(6, np.float64), grad_fresh)
        np.testing.assert_array_equal(grad_shared, grad_fresh)
        np.testing.assert_array_equal(net.forward(theta, X)[0], net.forward(theta, X, shared)[0])
