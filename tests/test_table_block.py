"""The table block: numbers, flags and codes side by side; its gradient by finite differences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_gd._engine._backend import NUMPY, ArrayApiBackend
from sklearn_gd._engine._categories import CategoryBlock
from sklearn_gd._engine._input_block import InputBlock
from sklearn_gd._engine._network import BlockCache
from sklearn_gd._engine._table_block import TableBlock
from sklearn_gd._testing import central_differences, relative_error


def _table(rng, block, m):
    """``m`` rows for ``block``: normal numbers, 0/1 flags, codes in range."""
    parts = [rng.normal(size=(m, block.n_numeric)),
             rng.integers(0, 2, (m, block.n_flags)).astype(float)]
    if block.categories is not None:
        parts.append(np.column_stack([rng.integers(0, k, m)
                                      for k in block.categories.cardinalities]).astype(float))
    return np.concatenate(parts, axis=1)


@st.composite
def blocks_and_rows(draw):
    """A table block of 0-3 numbers (with or without an embedding and a scale),
    0-2 flags and 0-2 categorical columns, its parameters, rows and ``G``."""
    n_numeric, n_flags = draw(st.integers(0, 3)), draw(st.integers(0, 2))
    cardinalities = tuple(draw(st.lists(st.integers(1, 12), max_size=2)))
    if n_numeric + n_flags + len(cardinalities) == 0:
        n_numeric = 1
    numeric = None
    if n_numeric and draw(st.booleans()):
        numeric = InputBlock(n_numeric, n_frequencies=draw(st.integers(0, 3)), embedding_size=3,
                             sigma=0.5, scale=draw(st.booleans()), scale_rate=2.0)
        if not numeric.embedded and not numeric.scale:
            numeric = None
    categories = CategoryBlock(cardinalities, embedding_size=2, one_hot_max=5) \
        if cardinalities else None
    block = TableBlock(n_numeric, n_flags, numeric, categories)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    m = draw(st.integers(1, 8))
    params = rng.normal(size=block.size)
    return block, params, _table(rng, block, m), rng.normal(size=(m, block.n_outputs))


@settings(max_examples=40, deadline=None)
@given(case=blocks_and_rows(), reuse=st.booleans())
def test_gradient_matches_finite_differences(case, reuse):
    """``J = sum(e * G)``: the block's gradient against central differences, computing
    in reused buffers (NumPy training) or in new arrays."""
    block, params, X, G = case
    cache = BlockCache(reuse=reuse)
    block.forward(params, X, NUMPY, cache)
    grad = np.full(block.size + 2, np.nan)
    block.backward(params, X, cache, G, NUMPY, grad, slice(2, 2 + block.size))
    numeric = central_differences(lambda p: float(np.sum(block.forward(p, X) * G)), params)
    assert np.isnan(grad[:2]).all()  # only its own slice is written
    assert relative_error(grad[2:], numeric) < 1e-6


def test_flags_pass_as_they_are_and_codes_do_not_enter_the_embedding():
    numeric = InputBlock(2, n_frequencies=4, embedding_size=3, sigma=1.0)
    categories = CategoryBlock((3,), one_hot_max=9)
    block = TableBlock(2, 1, numeric, categories)
    rng = np.random.default_rng(0)
    params = rng.normal(size=block.size)
    X = np.array([[0.5, -1.0, 1.0, 2.0], [0.1, 0.2, 0.0, 0.0]])
    e = block.forward(params, X)
    assert block.widths == (6, 1, 3) and e.shape == (2, 10)
    np.testing.assert_array_equal(e[:, :6], numeric.forward(params, X[:, :2]))
    np.testing.assert_array_equal(e[:, 6], X[:, 2])
    np.testing.assert_array_equal(e[:, 7:], [[0, 0, 1], [1, 0, 0]])
    assert block.size == numeric.size  # one-hot columns have no parameters


def test_the_same_math_on_every_library():
    xp = pytest.importorskip("array_api_strict")
    block = TableBlock(2, 1, InputBlock(2, n_frequencies=3, embedding_size=2, scale=True),
                       CategoryBlock((3, 12), embedding_size=2))
    rng = np.random.default_rng(2)
    params, X = rng.normal(size=block.size), _table(rng, block, 7)
    G = rng.normal(size=(7, block.n_outputs))
    ops = ArrayApiBackend(xp)
    cache, cache_xp = BlockCache(reuse=False), BlockCache(reuse=False)
    e = block.forward(params, X, NUMPY, cache)
    e_xp = block.forward(xp.asarray(params), xp.asarray(X), ops, cache_xp)
    np.testing.assert_allclose(np.asarray(e_xp), e, rtol=1e-13)
    grad, grad_xp = np.zeros(block.size), xp.zeros(block.size, dtype=xp.float64)
    block.backward(params, X, cache, G, NUMPY, grad, slice(0, block.size))
    block.backward(xp.asarray(params), xp.asarray(X), cache_xp, xp.asarray(G), ops, grad_xp,
                   slice(0, block.size))
    np.testing.assert_allclose(np.asarray(grad_xp), grad, rtol=1e-12)
