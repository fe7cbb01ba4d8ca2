"""The categorical block: one-hot or embedded columns, their gradient by finite differences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_gd._engine._backend import NUMPY, ArrayApiBackend
from sklearn_gd._engine._categories import CategoryBlock
from sklearn_gd._testing import central_differences, relative_error


@st.composite
def blocks_and_codes(draw):
    """A block of 1-4 columns (some one-hot, some embedded), its parameters, and codes."""
    cardinalities = tuple(draw(st.lists(st.integers(1, 14), min_size=1, max_size=4)))
    block = CategoryBlock(cardinalities, embedding_size=draw(st.integers(1, 4)),
                          one_hot_max=draw(st.integers(1, 10)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    m = draw(st.integers(1, 12))
    codes = np.column_stack([rng.integers(0, k, m) for k in cardinalities]).astype(np.float64)
    params = rng.normal(size=block.size)
    return block, params, codes, rng.normal(size=(m, block.n_outputs))


@settings(max_examples=40, deadline=None)
@given(case=blocks_and_codes())
def test_gradient_of_the_tables_matches_finite_differences(case):
    """``J = sum(output * G)``: ``dJ/dT_j = O_j^T G_j``, against central differences."""
    block, params, codes, G = case
    grad = np.full(block.size + 3, np.nan)
    block.backward(codes, G, NUMPY, grad, slice(3, 3 + block.size))
    numeric = central_differences(lambda p: float(np.sum(block.forward(p, codes) * G)), params)
    assert np.isnan(grad[:3]).all()  # only its own slice is written
    assert relative_error(grad[3:], numeric) < 1e-8


def test_few_codes_enter_one_hot_and_many_as_rows_of_their_table():
    block = CategoryBlock((3, 5), embedding_size=2, one_hot_max=4)
    assert block.widths == (3, 2) and block.n_outputs == 5 and block.size == 10
    params = np.arange(10, dtype=float)
    codes = np.array([[0.0, 4.0], [2.0, 0.0], [1.0, 2.0]])
    output = block.forward(params, codes)
    table = params.reshape(5, 2)
    np.testing.assert_array_equal(output[:, :3], np.eye(3)[[0, 2, 1]])
    np.testing.assert_array_equal(output[:, 3:], table[[4, 0, 2]])


def test_missing_or_unknown_code_has_its_own_row():
    block = CategoryBlock((12,), embedding_size=3)
    params = np.random.default_rng(0).normal(size=block.size)
    output = block.forward(params, np.array([[0.0], [0.0], [5.0]]))
    np.testing.assert_array_equal(output[0], params[:3])
    assert not np.array_equal(output[0], output[2])


def test_tables_start_from_a_standard_normal():
    block = CategoryBlock((2000,), embedding_size=8)
    params = np.empty(block.size)
    block.initialize(params, np.random.default_rng(0))
    assert abs(params.mean()) < 0.02 and abs(params.std() - 1.0) < 0.02


def test_the_same_math_on_every_library():
    """The one definition, run by the NumPy backend and by the Array API's."""
    xp = pytest.importorskip("array_api_strict")
    block = CategoryBlock((3, 20, 1), embedding_size=4, one_hot_max=9)
    rng = np.random.default_rng(1)
    params = rng.normal(size=block.size)
    codes = np.column_stack([rng.integers(0, k, 30) for k in block.cardinalities]).astype(float)
    G = rng.normal(size=(30, block.n_outputs))
    ops = ArrayApiBackend(xp)
    output = block.forward(xp.asarray(params), xp.asarray(codes), ops)
    np.testing.assert_allclose(np.asarray(output), block.forward(params, codes), rtol=1e-15)
    grad, grad_xp = np.zeros(block.size), xp.zeros(block.size, dtype=xp.float64)
    block.backward(codes, G, NUMPY, grad, slice(0, block.size))
    block.backward(xp.asarray(codes), xp.asarray(G), ops, grad_xp, slice(0, block.size))
    np.testing.assert_allclose(np.asarray(grad_xp), grad, rtol=1e-14)
