"""The registries of activations and losses: every entry declares every piece."""

import dataclasses

import numpy as np
import pytest

from sklearn_gd._engine import _kernels
from sklearn_gd._engine._activations import ACTIVATIONS, Activation
from sklearn_gd._engine._losses import LOSSES, Loss, get_loss


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_each_activation_declares_forward_derivative_kernel_and_onnx(name):
    activation = ACTIVATIONS[name]
    assert isinstance(activation, Activation)
    for piece in dataclasses.fields(Activation):
        assert hasattr(activation, piece.name)
    assert callable(activation.forward) and callable(activation.derivative)
    assert activation.kernel is None or isinstance(activation.kernel, str)
    # only the identity maps to no ONNX operator
    assert (activation.onnx is None) == (name == "identity")


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_each_derivative_from_the_output_is_the_forward_passs_slope(name):
    """``derivative(f(z))`` against central differences of ``forward`` (away from kinks)."""
    activation = ACTIVATIONS[name]
    z = np.linspace(-3, 3, 61)
    z = z[np.abs(z) > 0.05]
    h = 1e-6
    slope = (activation.forward(z + h) - activation.forward(z - h)) / (2 * h)
    derivative = activation.derivative(activation.forward(z.copy()), np.empty_like(z))
    np.testing.assert_allclose(derivative, slope, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_each_activation_is_the_same_math_on_every_library(name):
    """The one definition, run by NumPy's elementwise table (in place) and by the
    Array API's (new arrays): the same values, ``inf`` and ``-800`` included."""
    xp = pytest.importorskip("array_api_strict")
    from sklearn_gd._engine._elementwise import ArrayApiElementwise

    activation, ops = ACTIVATIONS[name], ArrayApiElementwise(xp)
    z = np.concatenate([np.linspace(-3, 3, 61), [-800.0, 800.0, np.inf, -np.inf]])
    with np.errstate(over="ignore", invalid="ignore"):
        A = activation.forward(z.copy())
        D = activation.derivative(A, np.empty_like(z))
        A_xp = activation.forward(xp.asarray(z), ops)
        D_xp = activation.derivative(A_xp, None, ops)
    np.testing.assert_allclose(np.asarray(A_xp), A, rtol=1e-15)
    np.testing.assert_allclose(np.asarray(D_xp), D, rtol=1e-15)


def test_declared_kernels_are_the_compiled_modules_kinds():
    """Each kind an activation names exists in C, and each C kind serves an activation."""
    if "compiled" not in _kernels.IMPLEMENTATIONS:
        pytest.skip("the compiled kernels (sklearn_gd._engine._fused) were not built")
    declared = {a.kernel for a in ACTIVATIONS.values() if a.kernel is not None}
    assert declared == set(_kernels._compiled.ACTIVATION_KINDS)
    assert set(_kernels.FUSED_KINDS) == {
        name for name, a in ACTIVATIONS.items() if a.kernel is not None}


def test_declared_onnx_operators_exist():
    ops = pytest.importorskip("skl2onnx.algebra.onnx_ops")
    declared = [a.onnx for a in ACTIVATIONS.values()] + [loss.onnx for loss in LOSSES.values()]
    for operator in filter(None, declared):
        assert hasattr(ops, f"Onnx{operator}"), operator


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_loss_declares_link_value_gradient_and_onnx(name):
    loss = LOSSES[name]
    assert isinstance(loss, Loss)
    assert callable(loss.link) and callable(loss.value) and callable(loss.gradient)
    assert loss.out_activation in {"identity", "exp", "logistic", "softmax"}
    assert (loss.onnx is None) == (loss.out_activation == "identity")
    assert get_loss(name).out_activation == loss.out_activation
