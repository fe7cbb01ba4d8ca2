"""Loss values against their formulas, and stability at extreme logits."""

import numpy as np
import pytest
from scipy.special import expit, softmax

from sklearn_gd._engine._losses import get_loss

rng = np.random.default_rng(0)
R = rng.normal(scale=2.0, size=(6, 3))


def values(name, R, Y, **kwargs):
    loss = get_loss(name, **kwargs)
    P = loss.link(R, np.empty_like(R))
    grad = loss.gradient(R, P, Y, np.empty_like(R))
    return P, loss.value(R, P, Y), grad


def test_squared_error_formula():
    Y = rng.normal(size=R.shape)
    P, value, grad = values("squared_error", R, Y)
    np.testing.assert_allclose(value, 0.5 * ((R - Y) ** 2).sum(axis=1))
    np.testing.assert_allclose(grad, R - Y)


def test_huber_formula():
    Y = np.zeros_like(R)
    _, value, grad = values("huber", R, Y, huber_delta=1.5)
    r = np.abs(R)
    expected = np.where(r <= 1.5, 0.5 * r**2, 1.5 * (r - 0.75)).sum(axis=1)
    np.testing.assert_allclose(value, expected)
    np.testing.assert_allclose(grad, np.clip(R, -1.5, 1.5))


def test_poisson_formula():
    Y = rng.poisson(2.0, size=R.shape).astype(float)
    P, value, grad = values("poisson", R, Y)
    np.testing.assert_allclose(P, np.exp(R))
    np.testing.assert_allclose(value, (np.exp(R) - Y * R).sum(axis=1))
    np.testing.assert_allclose(grad, np.exp(R) - Y)


def test_binary_log_loss_formula():
    Y = rng.integers(0, 2, size=R.shape).astype(float)
    P, value, grad = values("binary_log_loss", R, Y)
    p = expit(R)
    np.testing.assert_allclose(value, -(Y * np.log(p) + (1 - Y) * np.log(1 - p)).sum(axis=1))
    np.testing.assert_allclose(grad, p - Y)


def test_log_loss_formula():
    Y = np.eye(3)[rng.integers(0, 3, size=R.shape[0])]
    P, value, grad = values("log_loss", R, Y)
    np.testing.assert_allclose(P, softmax(R, axis=1))
    np.testing.assert_allclose(value, -(Y * np.log(softmax(R, axis=1))).sum(axis=1))
    np.testing.assert_allclose(grad, P - Y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["binary_log_loss", "log_loss"])
def test_extreme_logits_give_finite_probabilities_and_losses(name, dtype):
    R = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=dtype)
    Y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        P, value, grad = values(name, R, Y)
    assert np.isfinite(P).all() and np.isfinite(value).all() and np.isfinite(grad).all()
    assert ((P >= 0) & (P <= 1)).all()
    assert value.min() > 1e3  # confidently wrong: a large, finite loss


@pytest.mark.parametrize("name, kwargs", [("squared_error", {}), ("huber", {"huber_delta": 0.7}),
                                          ("poisson", {}), ("binary_log_loss", {}),
                                          ("log_loss", {})])
def test_each_loss_is_the_same_math_on_every_library(name, kwargs):
    """The one definition, run by NumPy's backend (into buffers, the fused kernel
    for log-loss) and by the Array API's (new arrays): the same link, values,
    gradient and weighted loss and delta."""
    xp = pytest.importorskip("array_api_strict")
    from sklearn_gd._engine._backend import ArrayApiBackend

    loss, ops = get_loss(name, **kwargs), ArrayApiBackend(xp)
    Y = np.eye(3)[rng.integers(0, 3, R.shape[0])] if name == "log_loss" else rng.random(R.shape)
    weights = rng.random(R.shape[0])
    P, value, grad = values(name, R, Y, **kwargs)
    total, delta = loss.loss_and_delta(R, Y, weights, np.empty_like(R), np.empty_like(R))
    on = xp.asarray
    P_xp = loss.link(on(R), None, ops)
    total_xp, delta_xp = loss.loss_and_delta(on(R), on(Y), on(weights), None, None, ops)
    np.testing.assert_allclose(np.asarray(P_xp), P, rtol=1e-14)
    np.testing.assert_allclose(np.asarray(loss.value(on(R), P_xp, on(Y), ops)), value, rtol=1e-14)
    np.testing.assert_allclose(np.asarray(loss.gradient(on(R), P_xp, on(Y), None, ops)), grad,
                               rtol=1e-14)
    assert float(total_xp) == pytest.approx(total, rel=1e-14)
    np.testing.assert_allclose(np.asarray(delta_xp), delta, rtol=1e-14)
