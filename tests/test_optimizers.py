"""Each optimizer against the update rule in its docstring, and on a quadratic."""

import numpy as np
import pytest

from sklearn_gd._engine import _kernels
from sklearn_gd._engine._backend import ArrayApiBackend
from sklearn_gd._engine._layout import Layout
from sklearn_gd._engine._losses import get_loss
from sklearn_gd._engine._network import L2Penalty, Network
from sklearn_gd._optim._optimizers import make_optimizer

MASK = np.array([1.0, 1.0, 0.0, 1.0])  # third entry plays a bias
HYPER = dict(momentum=0.8, beta_1=0.85, beta_2=0.95, epsilon=1e-3, rho=0.7, weight_decay=0.05)


def reference_steps(solver, theta, grads, lr, nesterov=True):
    """The docstring formulas, written out step by step."""
    theta = theta.copy()
    mu, b1, b2, eps = HYPER["momentum"], HYPER["beta_1"], HYPER["beta_2"], HYPER["epsilon"]
    v = np.zeros_like(theta)
    m = np.zeros_like(theta)
    s = np.zeros_like(theta)
    history = []
    for t, g in enumerate(grads, start=1):
        if solver == "sgd":
            v = mu * v - lr * g
            u = mu * v - lr * g if nesterov else v
        elif solver in ("adam", "adamw"):
            m = b1 * m + (1 - b1) * g
            s = b2 * s + (1 - b2) * g**2
            direction = (m / (1 - b1**t)) / (np.sqrt(s / (1 - b2**t)) + eps)
            if solver == "adamw":
                direction = direction + HYPER["weight_decay"] * theta * MASK
            u = -lr * direction
        elif solver == "rmsprop":
            s = HYPER["rho"] * s + (1 - HYPER["rho"]) * g**2
            u = -lr * g / (np.sqrt(s) + eps)
        elif solver == "adagrad":
            s = s + g**2
            u = -lr * g / (np.sqrt(s) + eps)
        theta = theta + u
        history.append(theta.copy())
    return history


@pytest.mark.parametrize(
    "solver, nesterov",
    [("sgd", True), ("sgd", False), ("adam", True), ("adamw", True),
     ("rmsprop", True), ("adagrad", True)],
)
def test_first_steps_match_docstring_formula(solver, nesterov):
    rng = np.random.default_rng(0)
    theta0 = rng.normal(size=4)
    grads = [rng.normal(size=4) for _ in range(4)]
    lr = 0.1
    chain = make_optimizer(solver, nesterovs_momentum=nesterov, weight_mask=MASK, **HYPER)
    theta = theta0.copy()
    state = chain.init(theta)
    expected = reference_steps(solver, theta0, grads, lr, nesterov)
    for g, want in zip(grads, expected):
        chain.step(theta, g.copy(), state, lr)
        np.testing.assert_allclose(theta, want, rtol=1e-12, atol=1e-14)


def test_sgd_without_momentum_is_plain_gradient_descent():
    chain = make_optimizer("sgd", momentum=0.0)
    theta = np.array([1.0, -2.0])
    state = chain.init(theta)
    chain.step(theta, np.array([0.5, 0.5]), state, 0.2)
    np.testing.assert_allclose(theta, [0.9, -2.1])


@pytest.mark.parametrize(
    "solver, lr, steps",
    [("sgd", 0.05, 400), ("adam", 0.05, 2000), ("adamw", 0.05, 2000),
     ("rmsprop", 0.001, 6000), ("adagrad", 0.5, 3000)],
)
def test_converges_on_convex_quadratic(solver, lr, steps):
    """Minimise ``1/2 theta^T A theta - b^T theta``; the minimiser is ``A^-1 b``."""
    rng = np.random.default_rng(1)
    Q = rng.normal(size=(5, 5))
    A = Q @ Q.T + np.eye(5)
    b = rng.normal(size=5)
    target = np.linalg.solve(A, b)
    mask = np.ones(5)
    chain = make_optimizer(solver, weight_decay=0.0, weight_mask=mask)
    theta = np.zeros(5)
    state = chain.init(theta)
    for _ in range(steps):
        chain.step(theta, A @ theta - b, state, lr)
    np.testing.assert_allclose(theta, target, atol=1e-3)


def test_adamw_decay_is_decoupled_from_the_gradient():
    """With a zero gradient AdamW only shrinks weights, by ``lr * wd * theta``."""
    mask = np.array([1.0, 0.0])
    chain = make_optimizer("adamw", weight_decay=0.1, weight_mask=mask)
    theta = np.array([2.0, 2.0])
    state = chain.init(theta)
    chain.step(theta, np.zeros(2), state, 0.5)
    np.testing.assert_allclose(theta, [2.0 - 0.5 * 0.1 * 2.0, 2.0])


def test_adamw_serves_states_on_different_devices_with_one_transform_chain():
    """The chain is configuration: the weight mask on a device lives in the state
    of that device's run, not in the chain (which another run reuses)."""
    xp = pytest.importorskip("array_api_strict")
    chain = make_optimizer("adamw", weight_mask=MASK, **HYPER, ops=ArrayApiBackend(xp))
    expected = reference_steps("adamw", np.ones(4), [np.full(4, 0.5)], lr=0.1)[-1]
    for name in ("device1", "device2"):
        theta = xp.ones(4, dtype=xp.float64, device=xp.Device(name))
        state = chain.init(theta)
        chain.step(theta, xp.full(4, 0.5, dtype=xp.float64, device=theta.device), state, 0.1)
        np.testing.assert_allclose(np.asarray(xp.asarray(theta, device=xp.Device("CPU_DEVICE"))),
                                   expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_keeps_dtype(dtype):
    for solver in ("sgd", "adam", "adamw", "rmsprop", "adagrad"):
        chain = make_optimizer(solver, weight_mask=np.ones(3, dtype))
        theta = np.ones(3, dtype)
        state = chain.init(theta)
        chain.step(theta, np.ones(3, dtype), state, 0.1)
        assert theta.dtype == dtype
        for part in state:
            for value in vars(part).values():
                if isinstance(value, np.ndarray):
                    assert value.dtype == dtype


SOLVERS = ["sgd", "adam", "adamw", "rmsprop", "adagrad"]


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kernels", sorted(_kernels.IMPLEMENTATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_l2_term_in_the_step_equals_l2_term_in_the_backward_pass(solver, kernels, dtype):
    """Training adds ``c W`` in the step (fused into Adam's pass), not in the backward pass.

    Both must give the same floats: the same weights after each step and the
    same objective.
    """
    layout = Layout([4, 6, 5, 3])
    net = Network(layout, "relu", get_loss("log_loss"))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7, 4)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 7)]
    weights = np.full(7, 1 / 7, dtype)
    c = 0.05
    ws = net.workspace(7, dtype)
    grad = np.empty(layout.size, dtype)
    theta0 = rng.normal(size=layout.size).astype(dtype)
    chain = make_optimizer(solver, weight_mask=layout.weight_mask())
    l2 = L2Penalty(c, layout, ws.weight_scratch)
    runs = {}
    with _kernels.use(kernels):
        for where in ("backward pass", "step"):
            theta, state, terms = theta0.copy(), chain.init(theta0), []
            for _ in range(3):
                if where == "backward pass":
                    data, penalty = net.loss_and_grad(theta, X, Y, weights, c, ws, grad)
                    assert chain.step(theta, grad, state, 0.01) == 0.0
                else:
                    data, zero = net.loss_and_grad(theta, X, Y, weights, 0.0, ws, grad)
                    assert zero == 0.0
                    penalty = chain.step(theta, grad, state, 0.01, l2)
                terms.append((data, penalty))
            runs[where] = theta, terms
    np.testing.assert_array_equal(runs["step"][0], runs["backward pass"][0])
    assert runs["step"][1] == runs["backward pass"][1]
    expected = 0.5 * c * sum(np.sum(W.astype(np.float64) ** 2) for W in layout.weights(theta0))
    assert runs["step"][1][0][1] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kernels", sorted(_kernels.IMPLEMENTATIONS))
def test_the_chains_step_is_its_reference_step(solver, kernels, monkeypatch):
    """The step a chain chooses (the kernel table's fused Adam step for a lone Adam)
    makes its reference step's floats, L2 term and penalty included, and a lone
    Adam runs the fused kernel."""
    layout = Layout([4, 6, 3])
    rng = np.random.default_rng(1)
    theta0 = rng.normal(size=layout.size)
    grads = [rng.normal(size=layout.size) for _ in range(3)]
    l2 = L2Penalty(0.05, layout, np.empty(layout.size))
    fused_calls = []
    adam = _kernels.adam
    monkeypatch.setattr(_kernels, "adam", lambda *a: fused_calls.append(1) or adam(*a))
    with _kernels.use(kernels):
        chain = make_optimizer(solver, weight_mask=layout.weight_mask().astype(float), **HYPER)
        thetas, states = [theta0.copy(), theta0.copy()], [chain.init(theta0), chain.init(theta0)]
        for g in grads:
            penalty = chain.step(thetas[0], g.copy(), states[0], 0.01, l2)
            assert penalty == chain.reference_step(thetas[1], g.copy(), states[1], 0.01, l2)
            np.testing.assert_array_equal(thetas[0], thetas[1])
    assert len(fused_calls) == (len(grads) if solver == "adam" else 0)
