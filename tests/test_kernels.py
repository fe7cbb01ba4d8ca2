"""The compiled kernels against their NumPy references, alone and inside fits.

The compiled module is built by ``pip install`` when a C compiler is present.
Without it these tests skip, saying so; CI checks separately that its main
install built the module (``.ci/run``).
"""

import concurrent.futures
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_gd import GDRegressor, MLPBackpropClassifier
from sklearn_gd._engine import _kernels
from sklearn_gd._engine._activations import ACTIVATIONS
from sklearn_gd._engine._kernels import FUSED_KINDS, CompiledKernels, NumpyKernels

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 1e-5, np.float64: 1e-12}

pytestmark = pytest.mark.skipif(
    "compiled" not in _kernels.IMPLEMENTATIONS,
    reason="the compiled kernels (sklearn_gd._engine._fused) were not built: installed without a "
    "C compiler, or sklearn_gd imported from a source tree that was not installed with "
    "`pip install -e .`",
)


def test_the_compiled_module_is_the_one_this_package_expects():
    """Its interface version is the one defined in _kernels.py (setup.py passes it)."""
    assert _kernels._compiled.API_VERSION == _kernels.API_VERSION
    assert _kernels._compiled.__name__ == "sklearn_gd._engine._fused"


def test_activation_kinds_come_from_the_compiled_table():
    """One table of kinds, in C: every kind is a registered activation, codes are distinct,
    and the code after the last is refused."""
    assert FUSED_KINDS == _kernels._compiled.ACTIVATION_KINDS
    assert {"identity", "relu", "leaky_relu"} <= set(FUSED_KINDS) <= set(ACTIVATIONS)
    assert sorted(FUSED_KINDS.values()) == list(range(len(FUSED_KINDS)))
    with pytest.raises(ValueError, match="unknown activation kind"):
        _kernels._compiled.bias_activation(np.zeros((2, 2)), np.zeros(2), len(FUSED_KINDS), 0.0)


def random_arrays(dtype, *shapes, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=shape).astype(dtype) for shape in shapes]
    for a in arrays:  # exact zeros exercise the relu boundary (f'(0) = 0)
        a.reshape(-1)[::7] = 0
    return arrays


def run_both(kernel, *arrays, **kwargs):
    """Run ``kernel`` of both implementations on copies; return both results and arrays."""
    results = {}
    for impl in (NumpyKernels, CompiledKernels):
        copies = [a.copy() for a in arrays]
        out = getattr(impl, kernel)(*copies, **kwargs)
        results[impl.name] = (out, copies)
    return results["numpy"], results["compiled"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_is_bit_identical(dtype):
    theta, g, u = random_arrays(dtype, (1001,), (1001,), (1001,))
    w = np.abs(random_arrays(dtype, (1001,), seed=1)[0])
    (_, ref), (_, got) = run_both("adam", theta, g, u, w, beta_1=0.9, beta_2=0.999,
                                  eps=1e-6, scale=-0.01)
    for r, c, name in zip(ref, got, ["theta", "g", "u", "w"]):
        if name != "g":  # g is scratch space
            np.testing.assert_array_equal(c, r, err_msg=name)


WEIGHT_BOUNDS = [  # [start, stop) weight blocks of a 1001-entry buffer
    [[0, 533], [540, 990]],  # biases between and after; 533 not a multiple of 8
    [[0, 1001]],  # one block to the end
    [[3, 3], [10, 1001]],  # an empty block
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bounds", WEIGHT_BOUNDS)
def test_adam_with_the_l2_term_is_the_l2_pass_then_adam(dtype, bounds):
    """The fused step makes the floats of ``l2_gradient_blocks`` followed by ``adam``."""
    bounds = np.array(bounds, dtype=np.int64)
    theta, g, u = random_arrays(dtype, (1001,), (1001,), (1001,))
    w = np.abs(random_arrays(dtype, (1001,), seed=1)[0])
    scratch = np.empty(1001, dtype)
    hyper = dict(beta_1=0.9, beta_2=0.999, eps=1e-6, scale=-0.01)
    expected_penalty = 0.15 * sum(np.sum(theta[a:b].astype(np.float64) ** 2) for a, b in bounds)
    fused = {}
    for impl in (CompiledKernels, NumpyKernels):
        with _kernels.use(impl.name):
            arrays = [a.copy() for a in (theta, g, u, w)]
            penalty = impl.adam(*arrays, **hyper, c=0.3, weight_bounds=bounds, scratch=scratch)
            two_passes = [a.copy() for a in (theta, g, u, w)]
            l2_penalty = _kernels.l2_gradient_blocks(
                two_passes[1], two_passes[0], 0.3, bounds, scratch)
            assert impl.adam(*two_passes, **hyper) == 0.0
        assert penalty == l2_penalty
        assert penalty == pytest.approx(expected_penalty, rel=TOL[dtype])
        del arrays[1], two_passes[1]  # g is scratch space
        for got, want, name in zip(arrays, two_passes, ["theta", "u", "w"]):
            np.testing.assert_array_equal(got, want, err_msg=f"{impl.name}: {name}")
        fused[impl.name] = arrays
    for got, want in zip(fused["compiled"], fused["numpy"]):
        np.testing.assert_array_equal(got, want)


def test_l2_gradient_blocks_adds_c_theta_on_the_weights_only():
    theta = np.arange(1.0, 11.0)
    g = np.zeros(10)
    bounds = np.array([[0, 4], [6, 9]])
    penalty = _kernels.l2_gradient_blocks(g, theta, 0.5, bounds, np.empty(4))
    weights = np.r_[0:4, 6:9]
    np.testing.assert_array_equal(g[weights], 0.5 * theta[weights])
    np.testing.assert_array_equal(np.delete(g, weights), 0.0)
    assert penalty == pytest.approx(0.25 * np.sum(theta[weights] ** 2), rel=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_bias_activation_is_bit_identical(dtype, activation):
    Z, b = random_arrays(dtype, (33, 17), (17,))
    (ref, _), (got, _) = run_both("bias_activation", Z, b, activation=activation)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "logistic", "elu"])
@pytest.mark.parametrize("with_mask", [False, True])
def test_activation_backward_is_bit_identical(dtype, activation, with_mask):
    delta, Z = random_arrays(dtype, (33, 17), (33, 17))
    A = NumpyKernels.bias_activation(Z, np.zeros(17, dtype), activation)
    mask = (np.arange(33 * 17).reshape(33, 17) % 3 != 0) * dtype(1.5) if with_mask else None
    scratch = np.empty_like(delta)
    (ref, _), (got, _) = run_both(
        "activation_backward", delta, A, mask=mask, activation=activation, scratch=scratch
    )
    np.testing.assert_array_equal(got, ref)


NARROW_SHAPES = [(37, 70, 3), (5, 16, 10), (1, 3, 1), (8, 33, 2)]  # (rows, inputs, outputs)


def narrow_arrays(dtype, rows, cols, k, activation="relu", with_mask=False):
    """delta (rows, k), W (cols, k), A = f(Z) (rows, cols) and a dropout mask or None."""
    delta, W, Z = random_arrays(dtype, (rows, k), (cols, k), (rows, cols))
    A = NumpyKernels.bias_activation(Z, np.zeros(cols, dtype), activation)
    mask = (np.arange(rows * cols).reshape(rows, cols) % 3 != 0) * dtype(1.5) if with_mask else None
    return delta, W, A, mask


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "identity", "tanh"])
@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("shape", NARROW_SHAPES)
def test_narrow_backward_is_bit_identical(dtype, activation, with_mask, shape):
    """The compiled kernel sums over k in the NumPy reference's order, without FMA."""
    delta, W, A, mask = narrow_arrays(dtype, *shape, activation, with_mask)
    previous = np.full(shape[:2], np.nan, dtype)
    scratch, transposed = np.empty_like(previous), np.full(W.size, np.nan, dtype)
    (ref, _), (got, _) = run_both(
        "narrow_backward", previous, delta, W, A, mask=mask, activation=activation,
        scratch=scratch, transposed=transposed,
    )
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh"])
def test_narrow_backward_is_the_product_then_the_backward_pass(dtype, activation):
    delta, W, A, mask = narrow_arrays(dtype, 37, 70, 3, activation, with_mask=True)
    scratch = np.empty((37, 70), dtype)
    expected = NumpyKernels.activation_backward(delta @ W.T, A, mask, activation, scratch)
    got = CompiledKernels.narrow_backward(
        np.empty((37, 70), dtype), delta, W, A, mask, activation, scratch, np.empty(W.size, dtype)
    )
    np.testing.assert_allclose(got, expected, rtol=TOL[dtype], atol=TOL[dtype])


def test_narrow_backward_runs_for_few_outputs_and_many_entries():
    """Where it measured faster than OpenBLAS's product (see NARROW_MAX_OUTPUTS)."""
    assert CompiledKernels.uses_narrow_backward(256 * 256, 10)
    assert CompiledKernels.uses_narrow_backward(_kernels.NARROW_MIN_ENTRIES, 1)
    assert not CompiledKernels.uses_narrow_backward(256 * 256, 11)
    assert not CompiledKernels.uses_narrow_backward(200 * 100, 10)
    assert not NumpyKernels.uses_narrow_backward(256 * 256, 10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_l2_gradient(dtype):
    gW, W = random_arrays(dtype, (41, 13), (41, 13))  # 533 entries: not a multiple of 8
    scratch = np.empty(W.size, dtype)
    (ref_penalty, (ref_gW, *_)), (penalty, (got_gW, *_)) = run_both(
        "l2_gradient", gW, W, c=0.3, scratch=scratch
    )
    np.testing.assert_array_equal(got_gW, ref_gW)
    expected = 0.15 * np.sum(W.astype(np.float64) ** 2)
    assert penalty == pytest.approx(expected, rel=1e-12)
    assert ref_penalty == pytest.approx(expected, rel=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_log_loss(dtype):
    rng = np.random.default_rng(0)
    R = (rng.normal(size=(50, 7)) * 30).astype(dtype)  # large logits: stability
    Y = np.eye(7, dtype=dtype)[rng.integers(0, 7, 50)]
    weights = rng.random(50).astype(dtype)
    P, delta = np.empty_like(R), np.empty_like(R)
    (ref, (_, _, _, ref_P, ref_delta)), (got, (_, _, _, got_P, got_delta)) = run_both(
        "softmax_log_loss", R, Y, weights, P, delta
    )
    assert got == pytest.approx(ref, rel=TOL[dtype])
    np.testing.assert_allclose(got_P, ref_P, rtol=TOL[dtype], atol=TOL[dtype] * 1e-3)
    np.testing.assert_allclose(got_delta, ref_delta, rtol=TOL[dtype], atol=TOL[dtype] * 1e-3)
    np.testing.assert_allclose(got_P.sum(axis=1), 1, rtol=TOL[dtype] * 10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax(dtype):
    R = (random_arrays(dtype, (40, 6))[0] * 30)[:, ::2]  # strided, large logits
    ref = NumpyKernels.softmax(R, np.empty((40, 3), dtype))
    got = CompiledKernels.softmax(R, np.empty((40, 3), dtype))
    assert got.dtype == dtype
    np.testing.assert_allclose(got, ref, rtol=TOL[dtype], atol=TOL[dtype] * 1e-3)
    np.testing.assert_allclose(got.sum(axis=1), 1, rtol=TOL[dtype] * 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cols", range(1, 14))
def test_softmax_steps_are_exact_for_every_width_and_stride(dtype, cols):
    """Row maxima in four lanes (and the contiguous instances) change no float.

    ``R - max(R)`` is exact whatever the order of the comparisons, so the
    compiled step equals NumPy's bit for bit, wherever the maximum sits
    (every column holds it in some row); the contiguous and the strided
    instances of both steps agree bit for bit.
    """
    rng = np.random.default_rng(cols)
    R = rng.normal(size=(3 * cols, cols)).astype(dtype)
    R[np.arange(3 * cols), np.arange(3 * cols) % cols] = 5.0
    wide = np.zeros((3 * cols, 2 * cols), dtype)
    wide[:, ::2] = R
    strided = wide[:, ::2]
    Y = np.eye(cols, dtype=dtype)[rng.integers(0, cols, 3 * cols)]
    weights = rng.random(3 * cols).astype(dtype)
    results = []
    for logits, targets in ((R, Y), (strided, np.asfortranarray(Y))):
        P, delta = np.empty_like(R), np.empty_like(R)
        _kernels._compiled.subtract_row_max(logits, P)
        np.testing.assert_array_equal(P, R - R.max(axis=1, keepdims=True))
        np.exp(P, out=P)
        loss = _kernels._compiled.log_loss_from_exp(logits, targets, weights, P, delta)
        results.append((P, delta, loss))
    (P, delta, loss), (P_strided, delta_strided, loss_strided) = results
    np.testing.assert_array_equal(P_strided, P)
    np.testing.assert_array_equal(delta_strided, delta)
    assert loss_strided == loss


def test_softmax_log_loss_accepts_strided_inputs():
    rng = np.random.default_rng(0)
    R = rng.normal(size=(20, 6))
    Y = np.eye(3)[rng.integers(0, 3, 20)]
    weights = np.full(40, 0.05)
    P, delta = np.empty((20, 3)), np.empty((20, 3))
    expected = NumpyKernels.softmax_log_loss(R[:, ::2], Y, weights[::2], P.copy(), delta.copy())
    loss = CompiledKernels.softmax_log_loss(R[:, ::2], np.asfortranarray(Y), weights[::2], P, delta)
    assert loss == pytest.approx(expected, rel=1e-12)


def compiled_kernel_outputs(dtype):
    """Every compiled kernel's results on awkward sizes (no multiple of a vector width)."""
    rng = np.random.default_rng(3)
    n = 4099
    theta, g, u = (rng.normal(size=n).astype(dtype) for _ in range(3))
    w = np.abs(rng.normal(size=n)).astype(dtype)
    Z = rng.normal(size=(37, 111)).astype(dtype)
    Z[::3, ::5] = 0
    b = rng.normal(size=111).astype(dtype)
    mask = (rng.random(Z.shape) > 0.3) * dtype(1.4)
    arrays = [a.copy() for a in (theta, g, u, w)]
    CompiledKernels.adam(*arrays, 0.9, 0.999, 1e-8, -1e-3)
    results = arrays[::2] + arrays[3:]
    arrays = [a.copy() for a in (theta, g, u, w)]
    bounds = np.array([[0, 1999], [2011, 4090]])
    results += [CompiledKernels.adam(*arrays, 0.9, 0.999, 1e-8, -1e-3, 0.3, bounds)]
    results += arrays[::2] + arrays[3:]
    gW = g.copy()
    results += [gW, CompiledKernels.l2_gradient(gW, theta, 0.3, None)]
    for activation in ("identity", "relu", "leaky_relu"):
        results.append(CompiledKernels.bias_activation(Z.copy(), b, activation))
    for activation in ("relu", "leaky_relu"):
        for m in (None, mask):
            results.append(CompiledKernels.activation_backward(
                Z.copy(), np.maximum(Z, 0), m, activation, None))
    for activation, m in (("relu", None), ("leaky_relu", mask), ("identity", mask)):
        results.append(CompiledKernels.narrow_backward(
            np.empty_like(Z), Z[:, :7].copy(), b[:, None] * Z[0, :7], np.maximum(Z, 0), m,
            activation, None, np.empty(111 * 7, dtype)))
    return [np.asarray(r) for r in results]


# Runs compiled_kernel_outputs in a fresh process: the compiled module reads
# SKLEARN_GD_VECTOR_ISA once, when it is imported.
KERNEL_OUTPUTS = """
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("kernel_tests", sys.argv[1])
tests = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tests)
from sklearn_gd._engine import _kernels
print(_kernels.description())
for dtype in tests.DTYPES:
    np.savez(f"{sys.argv[2]}-{dtype.__name__}.npz", *tests.compiled_kernel_outputs(dtype))
"""


def kernel_outputs_under(isa, tmp_path):
    """(description, {dtype: outputs}) of the kernels with SKLEARN_GD_VECTOR_ISA=isa."""
    env = dict(os.environ, SKLEARN_GD_VECTOR_ISA=isa)
    done = subprocess.run([sys.executable, "-c", KERNEL_OUTPUTS, __file__, str(tmp_path / isa)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    outputs = {}
    for dtype in DTYPES:
        with np.load(tmp_path / f"{isa}-{dtype.__name__}.npz") as saved:
            outputs[dtype] = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    return done.stdout.strip(), outputs


def test_avx2_and_baseline_versions_agree_bit_for_bit(tmp_path):
    if "avx2" not in _kernels._compiled.vector_isas():
        pytest.skip("this CPU (or build) runs only the baseline kernels")
    runs = {isa: kernel_outputs_under(isa, tmp_path) for isa in ("avx2", "baseline")}
    for isa, (description, _) in runs.items():
        assert description == f"compiled ({isa})"
    for dtype in DTYPES:
        avx2, baseline = runs["avx2"][1][dtype], runs["baseline"][1][dtype]
        assert len(avx2) == len(baseline) == len(compiled_kernel_outputs(dtype))
        for got, ref in zip(avx2, baseline):
            np.testing.assert_array_equal(got, ref)


def test_an_unknown_vector_isa_fails_the_import_naming_the_choices():
    env = dict(os.environ, SKLEARN_GD_VECTOR_ISA="avx512")
    done = subprocess.run([sys.executable, "-c", "import sklearn_gd._engine._fused"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "ValueError: SKLEARN_GD_VECTOR_ISA=avx512: this build and CPU run" in done.stderr
    assert "'baseline'" in done.stderr


def test_the_vector_isa_cannot_be_switched_under_running_fits():
    """Chosen once at import (no process-wide switch another thread could flip)."""
    assert _kernels._compiled.vector_isa() in _kernels._compiled.vector_isas()
    assert not hasattr(_kernels._compiled, "set_vector_isa")


LAYOUT_BOUNDS = [  # weight blocks of a 100,003-entry buffer
    [[0, 50_001], [50_100, 99_000]],  # biases between and after
    [[0, 25_000], [25_003, 25_013], [25_020, 100_003]],  # a short block, one to the end
    [[k * 1000, k * 1000 + 997] for k in range(100)],  # many small blocks
]


@st.composite
def weight_layouts(draw):
    """A buffer length and ascending [start, stop) weight blocks within it."""
    n = draw(st.integers(1, 20_000))
    cuts = sorted(draw(st.lists(st.integers(0, n), min_size=0, max_size=8)))
    blocks = [[a, b] for a, b in zip(cuts[::2], cuts[1::2])]
    return n, np.array(blocks, dtype=np.int64).reshape(-1, 2)


def assert_adam_with_l2_is_two_passes(n, bounds, dtype):
    """The fused step (one call) against the L2 pass then Adam (two), bit for bit."""
    theta, g, u = random_arrays(dtype, (n,), (n,), (n,))
    w = np.abs(random_arrays(dtype, (n,), seed=1)[0])
    hyper = dict(beta_1=0.9, beta_2=0.999, eps=1e-6, scale=-0.01)
    fused = [a.copy() for a in (theta, g, u, w)]
    penalty = CompiledKernels.adam(*fused, **hyper, c=0.3, weight_bounds=bounds)
    two_passes = [a.copy() for a in (theta, g, u, w)]
    assert penalty == _kernels.l2_gradient_blocks(
        two_passes[1], two_passes[0], 0.3, bounds, np.empty(n, dtype))
    assert CompiledKernels.adam(*two_passes, **hyper) == 0.0
    for got, want in zip(fused[::2] + fused[3:], two_passes[::2] + two_passes[3:]):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bounds", LAYOUT_BOUNDS)
def test_adam_with_l2_on_large_buffers_is_two_passes(dtype, bounds):
    assert_adam_with_l2_is_two_passes(100_003, np.array(bounds, dtype=np.int64), dtype)


@pytest.mark.parametrize("n, n_blocks", [(200_000, 40), (1_100_000, 3), (50_000, 70)])
def test_adam_with_l2_over_many_chunks_and_blocks_is_two_passes(n, n_blocks):
    edges = np.linspace(0, n, n_blocks + 1).astype(np.int64)
    bounds = np.column_stack([edges[:-1], edges[1:] - 5])  # 5 biases after each block
    assert_adam_with_l2_is_two_passes(n, bounds, np.float32)


@settings(max_examples=25, deadline=None)
@given(layout=weight_layouts(), float32=st.booleans())
def test_adam_with_l2_in_any_layout_is_two_passes(layout, float32):
    n, bounds = layout
    assert_adam_with_l2_is_two_passes(n, bounds, np.float32 if float32 else np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("source_dtype", ["same", bool])
def test_gathers_report_the_first_row_out_of_range(dtype, source_dtype):
    rng = np.random.default_rng(0)
    source = rng.normal(size=(5_000, 100)).astype(dtype)
    source = source > 0 if source_dtype is bool else source
    rows = rng.integers(0, 5_000, size=300)
    got = CompiledKernels.take_rows(source, rows, np.empty((300, 100), dtype), None)
    np.testing.assert_array_equal(got, source[rows].astype(dtype))
    for first_bad in (0, 160, 299):
        bad = rows.copy()
        bad[first_bad] = 5_000
        bad[-1] = -1 if first_bad < 299 else bad[-1]
        message = rf"rows\[{first_bad}\] = 5000 is out of bounds for 5000 rows"
        with pytest.raises(ValueError, match=message):
            CompiledKernels.take_rows(source, bad, np.empty((300, 100), dtype), None)


def test_kernels_called_from_several_threads_at_once():
    """Large calls release the GIL: each thread's results are those of a lone call."""
    n = 70_001
    inputs = [random_arrays(np.float64, (n,), (n,), (n,), (n,), seed=s) for s in range(4)]
    bounds = np.array([[0, 40_000], [40_100, 70_000]])

    def step(arrays):
        arrays = [a.copy() for a in arrays]
        arrays[3] = np.abs(arrays[3])
        penalties = [CompiledKernels.adam(*arrays, 0.9, 0.999, 1e-8, -1e-3, 0.1, bounds)
                     for _ in range(20)]
        Z = arrays[0][:40_000].reshape(200, 200).copy()
        CompiledKernels.bias_activation(Z, arrays[2][:200], "relu")
        return penalties, arrays + [Z]

    expected = [step(arrays) for arrays in inputs]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(step, inputs))
    for (penalties, arrays), (want_penalties, want_arrays) in zip(got, expected):
        assert penalties == want_penalties
        for a, b in zip(arrays, want_arrays):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("source_dtype", ["same", bool])
def test_take_rows_is_exact(dtype, source_dtype):
    rng = np.random.default_rng(0)
    source = rng.normal(size=(57, 9)).astype(dtype)
    if source_dtype is bool:
        source = source > 0
    rows = rng.permutation(57)[:23]
    rows[-1] = rows[0]  # a row taken twice
    out, scratch = np.full((23, 9), np.nan, dtype), np.empty((23, 9), source.dtype)
    (ref, _), (got, _) = run_both("take_rows", source, rows, out, scratch)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got, source[rows].astype(dtype))


def test_take_rows_falls_back_on_fortran_order():
    source = np.asfortranarray(np.arange(12.0).reshape(4, 3))
    rows = np.array([3, 1])
    got = CompiledKernels.take_rows(source, rows, np.empty((2, 3)), None)
    np.testing.assert_array_equal(got, source[rows])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: CompiledKernels.adam(*[np.zeros(3, int)] * 4, 0.9, 0.9, 1e-8, -1.0),
         "theta must be float32 or float64"),
        (lambda: CompiledKernels.adam(np.zeros(3), np.zeros(3, np.float32), np.zeros(3),
                                      np.zeros(3), 0.9, 0.9, 1e-8, -1.0),
         "g must have the same dtype"),
        (lambda: CompiledKernels.adam(np.zeros(3), np.zeros(4), np.zeros(3), np.zeros(3),
                                      0.9, 0.9, 1e-8, -1.0),
         "same length"),
        (lambda: CompiledKernels.adam(*[np.zeros(3)] * 4, 0.9, 0.9, 1e-8, -1.0, 0.1),
         "c != 0 needs weight_bounds"),
        (lambda: CompiledKernels.adam(*[np.zeros(9)] * 4, 0.9, 0.9, 1e-8, -1.0, 0.1,
                                      np.array([[4, 6], [0, 2]])),
         r"weight_bounds must be an int64 array of shape \(k, 2\) of ascending"),
        (lambda: CompiledKernels.adam(*[np.zeros(9)] * 4, 0.9, 0.9, 1e-8, -1.0, 0.1,
                                      np.array([[0, 10]])),
         "blocks within theta"),
        (lambda: CompiledKernels.adam(*[np.zeros(9)] * 4, 0.9, 0.9, 1e-8, -1.0, 0.1,
                                      np.array([[0, 2]], dtype=np.int32)),
         "int64 array of shape"),
        (lambda: CompiledKernels.adam(*[np.zeros(9)] * 4, 0.9, 0.9, 1e-8, -1.0, 0.1,
                                      np.array([0, 2])),
         "int64 array of shape"),
        (lambda: CompiledKernels.bias_activation(np.zeros((4, 3)), np.zeros(2), "relu"),
         "one entry per column"),
        (lambda: CompiledKernels.bias_activation(np.zeros((4, 6))[:, ::2], np.zeros(3), "relu"),
         "Z must be a C-contiguous writable"),
        (lambda: CompiledKernels.activation_backward(
            np.zeros((4, 3)), np.zeros((4, 2)), None, "relu", None), "same shape"),
        (lambda: CompiledKernels.narrow_backward(
            np.zeros((4, 3)), np.zeros((4, 2)), np.zeros((3, 3)), np.zeros((4, 3)), None,
            "relu", None, np.zeros(9)), r"delta must be \(rows, k\) and W \(cols, k\)"),
        (lambda: CompiledKernels.narrow_backward(
            np.zeros((4, 3)), np.zeros((4, 2)), np.zeros((3, 2)), np.zeros((4, 3)), None,
            "relu", None, np.zeros(5)), "Wt must hold k \\* cols entries"),
        (lambda: CompiledKernels.narrow_backward(
            np.zeros((4, 3)), np.zeros((4, 2)), np.zeros((3, 2)), np.zeros((4, 2)), None,
            "relu", None, np.zeros(6)), "previous, A and mask must have the same shape"),
        (lambda: CompiledKernels.softmax_log_loss(
            np.zeros((4, 3)), np.zeros((4, 3)), np.zeros(5), np.zeros((4, 3)), np.zeros((4, 3))),
         "weights one entry per row"),
        (lambda: CompiledKernels.take_rows(np.zeros((4, 3)), np.array([0, 4]),
                                           np.zeros((2, 3)), None),
         r"rows\[1\] = 4 is out of bounds for 4 rows"),
        (lambda: CompiledKernels.take_rows(np.zeros((4, 3)), np.array([-1, 0]),
                                           np.zeros((2, 3)), None),
         r"rows\[0\] = -1 is out of bounds"),
        (lambda: CompiledKernels.take_rows(np.zeros((4, 3)), np.array([0, 1]),
                                           np.zeros((2, 3), np.float32), None),
         "source must be 2-D, bool or of out's float dtype"),
        (lambda: CompiledKernels.take_rows(np.zeros((4, 3)), np.array([0, 1]),
                                           np.zeros((3, 3)), None),
         "one row per entry of rows"),
    ],
)
def test_compiled_kernels_reject_bad_arrays_clearly(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "make, dtype",
    [
        (lambda: MLPBackpropClassifier(hidden_layer_sizes=(12, 8), alpha=1e-3, max_iter=6,
                                       batch_size=16, random_state=0), np.float64),
        (lambda: MLPBackpropClassifier(hidden_layer_sizes=(12,), dropout=0.2, max_iter=6,
                                       batch_size=16, random_state=0), np.float32),
        (lambda: MLPBackpropClassifier(hidden_layer_sizes=(10,), activation="tanh",
                                       solver="adamw", max_iter=6, random_state=0), np.float64),
        (lambda: GDRegressor(hidden_layer_sizes=(9,), activation="leaky_relu", max_iter=6,
                             batch_size=8, learning_rate_init=0.01, random_state=0), np.float32),
    ],
)
def test_fits_agree_between_implementations(make, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 5)).astype(dtype)
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1)
    fitted = {}
    for name in ("numpy", "compiled"):
        with _kernels.use(name):
            est = make().fit(X, y if isinstance(make(), MLPBackpropClassifier) else X[:, 0] - X[:, 3])
        fitted[name] = est
    numpy_fit, compiled_fit = fitted["numpy"], fitted["compiled"]
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    for a, b in zip(compiled_fit.coefs_ + compiled_fit.intercepts_,
                    numpy_fit.coefs_ + numpy_fit.intercepts_):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(compiled_fit.loss_curve_, numpy_fit.loss_curve_, rtol=rtol)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_fits_through_the_narrow_kernel_agree_between_implementations(dtype, dropout):
    """Batches of 256 rows into 160 units and 3 classes: the compiled fit backpropagates
    through narrow_backward (NumPy's through OpenBLAS's product); same model up to rounding."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(512, 6)).astype(dtype)
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1)
    assert CompiledKernels.uses_narrow_backward(256 * 160, 3)
    fitted = {}
    for name in ("numpy", "compiled"):
        with _kernels.use(name):
            fitted[name] = MLPBackpropClassifier(
                hidden_layer_sizes=(160,), batch_size=256, dropout=dropout, max_iter=6,
                random_state=0,
            ).fit(X, y)
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    for a, b in zip(fitted["compiled"].coefs_ + fitted["compiled"].intercepts_,
                    fitted["numpy"].coefs_ + fitted["numpy"].intercepts_):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(fitted["compiled"].loss_curve_, fitted["numpy"].loss_curve_,
                               rtol=rtol)


def test_use_switches_and_restores():
    before = _kernels.implementation()
    with _kernels.use("numpy"):
        assert _kernels.implementation() == "numpy"
    assert _kernels.implementation() == before == "compiled"


def test_show_versions_says_which_kernels_run(capsys):
    import sklearn_gd

    with _kernels.use("numpy"):
        sklearn_gd.show_versions()
    out = capsys.readouterr().out
    assert "kernels: numpy" in out
    assert f"sklearn-gd: {sklearn_gd.__version__}" in out
    assert f"numpy: {np.__version__}" in out
    sklearn_gd.show_versions()
    out = capsys.readouterr().out
    assert ("kernels: compiled (avx2)" in out) or ("kernels: compiled (baseline)" in out)
