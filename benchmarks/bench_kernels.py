"""The error through a layer of few outputs: the fused kernel against BLAS's product.

Backpropagating through a layer of ``k`` outputs computes
``(delta W^T) * f'(A)``: one product of a ``(rows, k)`` by a ``(k, cols)``
matrix, then an elementwise pass. ``narrow_backward`` does both in one pass,
row block by row block; this script times it against NumPy's product (the
machine's BLAS) followed by the compiled ``activation_backward``, for shapes
around ``_kernels.NARROW_MAX_OUTPUTS`` and ``NARROW_MIN_ENTRIES``, and prints
a table (microseconds per call, best of several runs; ratio > 1: the fused
kernel is faster).

Run ``python benchmarks/bench_kernels.py`` after ``pip install -e .``
(``--quick`` for fewer repeats).
"""

import argparse
import time

import numpy as np

from sklearn_gd._engine import _kernels

SHAPES = [  # (rows, cols, k): batch rows, the layer's inputs, its outputs
    (256, 256, 10), (256, 256, 3), (256, 100, 1), (128, 512, 10), (1000, 256, 10),
    (200, 100, 10), (256, 256, 16), (256, 256, 24),
]


def best_time(fn, calls, repeats):
    """Best over ``repeats`` of the mean time of ``calls`` calls, in microseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return min(times) * 1e6


def compare(rows, cols, k, dtype, calls, repeats):
    """``(fused us, product + backward us)`` for one shape."""
    compiled = _kernels._compiled
    rng = np.random.default_rng(0)
    delta = rng.normal(size=(rows, k)).astype(dtype)
    W = rng.normal(size=(cols, k)).astype(dtype)
    A = np.maximum(rng.normal(size=(rows, cols)), 0).astype(dtype)
    previous, transposed = np.empty((rows, cols), dtype), np.empty(W.size, dtype)
    relu = _kernels.FUSED_KINDS["relu"]

    def fused():
        compiled.narrow_backward(previous, delta, W, transposed, A, None, relu, 0.0)

    def product_then_backward():
        np.dot(delta, W.T, out=previous)
        compiled.activation_backward(previous, A, None, relu, 0.0)

    return best_time(fused, calls, repeats), best_time(product_then_backward, calls, repeats)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and repeats")
    args = parser.parse_args(argv)
    if _kernels._compiled is None:
        raise SystemExit("the compiled kernels are not built: pip install -e . with a C compiler")
    calls, repeats = (20, 2) if args.quick else (300, 5)
    print(f"kernels: {_kernels.description()}; narrow_backward runs for k <= "
          f"{_kernels.NARROW_MAX_OUTPUTS} and rows x cols >= {_kernels.NARROW_MIN_ENTRIES}")
    print("| dtype | rows, cols, k | used in training | fused (us) | product + backward (us) "
          "| ratio |")
    print("|---|---|---|---|---|---|")
    for dtype in (np.float32, np.float64):
        for rows, cols, k in SHAPES:
            fused, product = compare(rows, cols, k, dtype, calls, repeats)
            used = _kernels.CompiledKernels.uses_narrow_backward(rows * cols, k)
            print(f"| {np.dtype(dtype).name} | {rows}, {cols}, {k} | {'yes' if used else 'no'} "
                  f"| {fused:.1f} | {product:.1f} | {product / fused:.2f} |")


if __name__ == "__main__":
    main()
