"""Analytic gradients of the objective against central finite differences."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_gd._engine import _kernels
from sklearn_gd._engine._activations import ACTIVATIONS
from sklearn_gd._engine._layout import Layout
from sklearn_gd._engine._losses import get_loss
from sklearn_gd._engine._network import Network
from sklearn_gd._testing import assert_allclose_in_dtype, central_differences, relative_error

narrow_backward = _kernels.narrow_backward
requires_compiled = pytest.mark.skipif(
    "compiled" not in _kernels.IMPLEMENTATIONS,
    reason="the compiled kernels (sklearn_gd._engine._fused) were not built; NumPy's never "
    "backpropagate through narrow_backward",
)

OUTPUT_KINDS = ["squared_error", "huber", "poisson", "binary", "multilabel", "multiclass"]


def make_targets(kind, rng, n, k):
    """Targets and loss name for an output kind (``k`` outputs)."""
    if kind in ("squared_error", "huber"):
        return rng.normal(size=(n, k)), kind
    if kind == "poisson":
        return rng.poisson(2.0, size=(n, k)).astype(float), kind
    if kind == "binary":
        return rng.integers(0, 2, size=(n, 1)).astype(float), "binary_log_loss"
    if kind == "multilabel":
        return rng.integers(0, 2, size=(n, k)).astype(float), "binary_log_loss"
    labels = rng.integers(0, k + 1, size=n)
    return np.eye(k + 1)[labels], "log_loss"


def objective_and_gradient(net, theta, X, Y, weights, c, masks):
    ws = net.workspace(X.shape[0], np.float64, dropout=masks is not None)
    grad = np.empty_like(theta)
    data, penalty = net.loss_and_grad(theta, X, Y, weights, c, ws, grad, masks)
    return data + penalty, grad


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    hidden=st.lists(st.integers(1, 6), min_size=0, max_size=3),
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    kind=st.sampled_from(OUTPUT_KINDS),
    n_outputs=st.integers(1, 3),
    n_samples=st.integers(1, 8),
    n_features=st.integers(1, 5),
    alpha=st.floats(0.0, 2.0),
    use_dropout=st.booleans(),
    sparse_input=st.booleans(),
)
def test_gradient_matches_finite_differences(
    seed, hidden, activation, kind, n_outputs, n_samples, n_features, alpha,
    use_dropout, sparse_input,
):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    Y, loss_name = make_targets(kind, rng, n_samples, n_outputs)
    sw = rng.uniform(0.0, 2.0, size=n_samples)
    sw[rng.random(n_samples) < 0.2] = 0.0
    if sw.sum() == 0:
        sw[0] = 1.0
    weights = sw / sw.sum()
    layout = Layout([n_features, *hidden, Y.shape[1]])
    net = Network(layout, activation, get_loss(loss_name, huber_delta=0.7))
    theta = rng.normal(scale=0.5, size=layout.size)
    masks = None
    if use_dropout and hidden:
        masks = [(rng.random((n_samples, h)) >= 0.3) / 0.7 for h in hidden]
    if sparse_input:
        X[rng.random(X.shape) < 0.5] = 0.0
        X = sp.csr_matrix(X)
    c = alpha / sw.sum()

    J, grad = objective_and_gradient(net, theta, X, Y, weights, c, masks)
    numeric = central_differences(
        lambda t: objective_and_gradient(net, t, X, Y, weights, c, masks)[0], theta
    )
    assert np.isfinite(J)
    assert relative_error(grad, numeric) <= 1e-6


@requires_compiled
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "identity", "tanh"])
@pytest.mark.parametrize("use_dropout", [False, True])
def test_gradient_through_the_narrow_kernel_matches_finite_differences(
    monkeypatch, activation, use_dropout
):
    """Backpropagation through layers of few outputs by narrow_backward (made to
    run on this small network), including a narrow hidden layer."""
    monkeypatch.setattr(_kernels, "NARROW_MIN_ENTRIES", 0)
    calls = []
    monkeypatch.setattr(
        _kernels, "narrow_backward", lambda *a, **k: calls.append(1) or narrow_backward(*a, **k)
    )
    rng = np.random.default_rng(4)
    X, (Y, loss_name) = rng.normal(size=(9, 4)), make_targets("multiclass", rng, 9, 2)
    # narrow: the output layer and the 2-unit one; the 12-unit one is too wide
    layout = Layout([4, 7, 2, 12, Y.shape[1]])
    net = Network(layout, activation, get_loss(loss_name))
    theta = rng.normal(scale=0.5, size=layout.size)
    masks = [(rng.random((9, h)) >= 0.3) / 0.7 for h in (7, 2, 12)] if use_dropout else None
    weights, c = np.full(9, 1 / 9), 0.1

    J, grad = objective_and_gradient(net, theta, X, Y, weights, c, masks)
    assert len(calls) == 2
    numeric = central_differences(
        lambda t: objective_and_gradient(net, t, X, Y, weights, c, masks)[0], theta
    )
    assert relative_error(grad, numeric) <= 1e-6


@requires_compiled
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_narrow_layers_backpropagate_through_the_narrow_kernel(monkeypatch, dtype):
    """256 rows into 128 units and 3 outputs: the compiled narrow kernel runs, and
    the gradient is the NumPy one (OpenBLAS's product) up to rounding."""
    calls = []
    monkeypatch.setattr(
        _kernels, "narrow_backward", lambda *a, **k: calls.append(1) or narrow_backward(*a, **k)
    )
    rng = np.random.default_rng(5)
    X, (Y, loss_name) = rng.normal(size=(256, 6)), make_targets("multiclass", rng, 256, 2)
    layout = Layout([6, 128, Y.shape[1]])
    net = Network(layout, "relu", get_loss(loss_name))
    theta = rng.normal(scale=0.5, size=layout.size).astype(dtype)
    X, Y = X.astype(dtype), Y.astype(dtype)
    grads = {}
    for name in ("compiled", "numpy"):
        with _kernels.use(name):
            ws, grad = net.workspace(256, dtype), np.empty_like(theta)
            net.loss_and_grad(theta, X, Y, np.full(256, 1 / 256, dtype), 0.1, ws, grad)
            grads[name] = grad
    assert len(calls) == 1  # the compiled run's; NumPy multiplies with OpenBLAS
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(grads["compiled"], grads["numpy"], rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", OUTPUT_KINDS)
@pytest.mark.parametrize("c", [0.0, 0.3])
def test_objective_is_loss_and_grads_objective(kind, c):
    """The objective alone (the divergence check of an epoch's last weights)
    is the one the gradient comes with: the data term bit for bit, the L2
    penalty to rounding (it is summed in another order)."""
    rng = np.random.default_rng(1)
    Y, loss_name = make_targets(kind, rng, 7, 2)
    layout = Layout([3, 4, Y.shape[1]])
    net = Network(layout, "tanh", get_loss(loss_name, huber_delta=0.7))
    theta = rng.normal(scale=0.5, size=layout.size)
    X, weights = rng.normal(size=(7, 3)), np.full(7, 1 / 7)
    ws = net.workspace(10, np.float64)
    data, penalty = net.loss_and_grad(theta, X, Y, weights, c, ws, np.empty_like(theta))
    objective = net.objective(theta, X, Y, weights, c, ws)
    if c:
        assert objective == pytest.approx(data + penalty, rel=1e-13, abs=0)
    else:
        assert objective == data and penalty == 0.0


def test_forward_without_workspace_matches_training_buffers():
    rng = np.random.default_rng(0)
    layout = Layout([3, 4, 2])
    net = Network(layout, "tanh", get_loss("log_loss"))
    theta = rng.normal(size=layout.size)
    X = rng.normal(size=(5, 3))
    _, P_alloc = net.forward(theta, X)
    _, P_ws = net.forward(theta, X, net.workspace(8, np.float64))
    np.testing.assert_allclose(P_alloc, P_ws)
    np.testing.assert_allclose(P_alloc.sum(axis=1), 1.0)


@pytest.mark.parametrize("sparse_input", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prediction_in_chunks_matches_all_rows_at_once(monkeypatch, sparse_input, dtype):
    from sklearn_gd._engine import _backend

    rng = np.random.default_rng(0)
    layout = Layout([4, 6, 3])
    net = Network(layout, "relu", get_loss("log_loss"))
    theta = rng.normal(size=layout.size).astype(dtype)
    X = rng.normal(size=(301, 4)).astype(dtype)
    X = sp.csr_matrix(X) if sparse_input else X
    R_whole, P_whole = net.forward(theta, X)  # 301 rows: below one chunk
    monkeypatch.setattr(_backend, "PREDICT_CHUNK_BYTES", 1)  # 64-row chunks
    assert net._prediction_chunk_rows(theta.itemsize) == 64
    R, P = net.forward(theta, X)
    assert R.dtype == P.dtype == dtype and R.shape == (301, 3)
    # BLAS may block a product of 64 rows otherwise than one of 301: rounding of 2 layers
    assert_allclose_in_dtype(R, R_whole, dtype, depth=2)
    assert_allclose_in_dtype(P, P_whole, dtype, depth=2)


def test_forward_matches_explicit_formula():
    rng = np.random.default_rng(1)
    layout = Layout([3, 4, 5, 2])
    net = Network(layout, "relu", get_loss("squared_error"))
    theta = rng.normal(size=layout.size)
    X = rng.normal(size=(6, 3))
    W, b = layout.weights(theta), layout.biases(theta)
    H1 = np.maximum(X @ W[0] + b[0], 0)
    H2 = np.maximum(H1 @ W[1] + b[1], 0)
    expected = H2 @ W[2] + b[2]
    np.testing.assert_allclose(net.forward(theta, X)[1], expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_stays_float32(dtype):
    rng = np.random.default_rng(2)
    layout = Layout([3, 4, 2])
    net = Network(layout, "relu", get_loss("binary_log_loss"))
    theta = rng.normal(size=layout.size).astype(dtype)
    X = rng.normal(size=(5, 3)).astype(dtype)
    Y = rng.integers(0, 2, size=(5, 2)).astype(dtype)
    ws = net.workspace(5, dtype)
    grad = np.empty_like(theta)
    net.loss_and_grad(theta, X, Y, np.full(5, 0.2, dtype), 0.1, ws, grad)
    assert grad.dtype == dtype
    assert net.forward(theta, X)[1].dtype == dtype
