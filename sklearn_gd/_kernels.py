"""Fused elementwise kernels of the training step, compiled or in NumPy.

Between its matrix products, a training step gathers the rows of a shuffled
batch and makes many elementwise passes (bias, activation, its derivative, the
L2 term, softmax and log-loss, Adam's moments and step). NumPy runs one pass
over memory per operation and pays a fixed cost per call; the compiled module
``_sklearn_gd_fused`` (source ``sklearn_gd/_fused.c``) does each group below
in one pass (:func:`narrow_backward` with the product through a layer of few
outputs before its backward pass). Every function here is written in NumPy
as the reference for its compiled twin, which makes the same floating-point
operations in the same order (bit-identical arrays; softmax only up to
rounding, as it multiplies by the reciprocal of the row sum where NumPy
divides, and the L2 penalty, a returned float, only up to its summation
order); the compiled one runs when the extension is built (``pip install``
builds it when a C compiler is present), the NumPy one otherwise.

The large compiled kernels (Adam's step, bias plus activation and its
backward passes) split over the threads of NumPy's OpenBLAS, the ones that ran
the products before them, with the same floats whatever the split (see
"BLAS threads" in ``_fused.c``; :func:`use_blas_threads` switches it).

:func:`implementation` says which runs; :func:`use` switches (for tests and
for comparing the two).
"""

import contextlib

import numpy as np

from ._activations import ACTIVATIONS, LEAKY_RELU_SLOPE

#: Must equal the compiled module's ``API_VERSION``; a stale build is ignored.
API_VERSION = 8

try:
    import _sklearn_gd_fused as _compiled
except ImportError:  # built without a C compiler: NumPy only
    _compiled = None
if getattr(_compiled, "API_VERSION", None) != API_VERSION:
    _compiled = None


def _numpy_extension_path():
    """File of NumPy's compiled core, which links NumPy's BLAS."""
    try:
        from numpy._core import _multiarray_umath
    except ImportError:  # NumPy < 2
        from numpy.core import _multiarray_umath
    return getattr(_multiarray_umath, "__file__", None)  # None when built in


#: True when the large compiled kernels can split over the threads of NumPy's
#: OpenBLAS (see "BLAS threads" in _fused.c). False with another BLAS, or an
#: OpenBLAS that exports no thread pool (the scipy-openblas 0.3.34 of NumPy
#: 2.5's wheels hides it): they then run on the calling thread, same floats.
_numpy_core_file = _numpy_extension_path()
BLAS_POOL_FOUND = bool(
    _compiled is not None
    and _numpy_core_file is not None
    and _compiled.attach_blas_threads(_numpy_core_file)
)

#: Activations with a compiled fused forward and backward pass (kind codes).
FUSED_KINDS = {"identity": 0, "relu": 1, "leaky_relu": 2}

#: :func:`narrow_backward` runs (compiled kernels only) for layers of at most
#: this many outputs whose backpropagated error has at least
#: ``NARROW_MIN_ENTRIES`` entries (rows x inputs). There, NumPy's
#: ``delta @ W.T`` followed by :func:`activation_backward` measured 1.0x-3.1x
#: slower than the fused kernel split over two threads (batches of 128 to
#: 1,000 rows, 100 to 512 inputs, 1 to 10 outputs; float32 and float64), and
#: 4x-5x slower in this machine's slow phases, where OpenBLAS's two-thread
#: product of this shape slows most. With 16 outputs it was 0.8x-1.6x as fast
#: by shape, slower from 24; on fewer entries (one thread) OpenBLAS's product
#: is faster.
NARROW_MAX_OUTPUTS = 10
NARROW_MIN_ENTRIES = 32768


def adam_direction(g, u, w, beta_1, beta_2, eps, scale):
    """Adam's moment updates, then ``g <- scale * u / (sqrt(w) + eps)`` (NumPy only)."""
    u *= beta_1
    u += g
    g *= g
    w *= beta_2
    w += g
    np.sqrt(w, out=g)
    g += eps
    np.divide(u, g, out=g)
    g *= scale
    return g


class NumpyKernels:
    """The reference implementation: plain NumPy, one pass per operation."""

    name = "numpy"

    @staticmethod
    def adam(theta, g, u, w, beta_1, beta_2, eps, scale, c=0.0, weight_bounds=None,
             scratch=None):
        """One Adam step on rescaled moments, in place; ``g`` is used as scratch.

        .. math::

            u \\leftarrow \\beta_1 u + g,\\quad
            w \\leftarrow \\beta_2 w + g^2,\\quad
            \\theta \\leftarrow \\theta + s\\, \\frac{u}{\\sqrt{w} + \\epsilon}

        With ``c != 0``, ``g`` first gets the L2 term, and the L2 penalty is
        returned, as :func:`l2_gradient_blocks` does (``weight_bounds`` and
        ``scratch`` as there); ``0.0`` is returned when ``c == 0``.
        """
        penalty = _l2_blocks(NumpyKernels.l2_gradient, g, theta, c, weight_bounds, scratch)
        theta += adam_direction(g, u, w, beta_1, beta_2, eps, scale)
        return penalty

    @staticmethod
    def bias_activation(Z, b, activation, split=True):
        """``Z <- f(Z + b)`` in place (``b`` broadcast over the rows).

        ``split=False`` keeps the compiled kernel on the calling thread (see
        "BLAS threads" in ``_fused.c``); it changes nothing else.
        """
        Z += b
        return ACTIVATIONS[activation][0](Z)

    @staticmethod
    def activation_backward(delta, A, mask, activation, scratch):
        """``delta <- delta * mask * f'(A)`` in place (``mask`` may be None).

        ``scratch`` is a buffer of ``delta``'s shape for ``f'``.
        """
        if mask is not None:
            delta *= mask
        delta *= ACTIVATIONS[activation][1](A, scratch)
        return delta

    @staticmethod
    def narrow_backward(previous, delta, W, A, mask, activation, scratch, transposed):
        """``previous <- (delta W^T) * mask * f'(A)``, the product summed in ascending ``k``.

        .. math::

            P_{ij} = (\\ldots((\\delta_{i1} W_{j1} + \\delta_{i2} W_{j2})
            + \\delta_{i3} W_{j3}) \\ldots) + \\delta_{ik} W_{jk}

        each term rounded, then added (no fused multiply-add), then
        :meth:`activation_backward` (``scratch`` as there). The compiled
        kernel makes these very floats; ``transposed`` is its scratch for
        ``W^T`` (at least ``W.size`` entries). Training calls it only where
        :meth:`uses_narrow_backward` says so.
        """
        np.multiply(delta[:, :1], W[:, 0], out=previous)
        for q in range(1, W.shape[1]):
            previous += delta[:, q : q + 1] * W[:, q]
        return NumpyKernels.activation_backward(previous, A, mask, activation, scratch)

    @staticmethod
    def uses_narrow_backward(n_entries, n_outputs):
        """Whether backpropagation through ``n_outputs`` goes through :meth:`narrow_backward`.

        Never in NumPy: its loop over the outputs is slower than one product.
        """
        return False

    @staticmethod
    def l2_gradient(gW, W, c, scratch):
        """``gW <- gW + c W`` in place; return the penalty ``c / 2 ||W||^2``."""
        # Not SciPy's BLAS axpy: alternating between SciPy's and NumPy's
        # OpenBLAS thread pools makes both spin (measured 8x slower epochs).
        cW = np.multiply(W, c, out=scratch[: W.size].reshape(W.shape))
        gW += cW
        return 0.5 * c * float(np.dot(W.reshape(-1), W.reshape(-1)))

    @staticmethod
    def softmax(R, P):
        """``P = exp(z) / sum_k exp(z_k)`` per row, with ``z = r - max(r)``; returns ``P``."""
        np.subtract(R, R.max(axis=1, keepdims=True), out=P)
        np.exp(P, out=P)
        P /= P.sum(axis=1, keepdims=True)
        return P

    @staticmethod
    def softmax_log_loss(R, Y, weights, P, delta):
        """Softmax, weighted log-loss and its gradient in one go.

        With ``z = r - max(r)`` and ``s = sum_k exp(z_k)`` per row:
        ``P = exp(z) / s``, ``delta = w (P - Y)`` and the returned loss
        ``sum_i w_i (log(s_i) - sum_k y_ik z_ik)``, which is
        ``sum_i w_i (logsumexp(r_i) - y_i . r_i)`` for row-stochastic ``Y``.
        """
        np.subtract(R, R.max(axis=1, keepdims=True), out=P)
        target_logit = np.einsum("ij,ij->i", Y, P)
        np.exp(P, out=P)
        s = P.sum(axis=1, keepdims=True)
        P /= s
        loss = float(weights @ (np.log(s[:, 0]) - target_logit))
        np.subtract(P, Y, out=delta)
        delta *= weights[:, None]
        return loss

    @staticmethod
    def take_rows(source, rows, out, scratch):
        """``out <- source[rows]`` for a 2-D ``source``, converted to ``out``'s dtype.

        ``scratch`` is a buffer of ``source``'s dtype and ``out``'s shape,
        used when the dtypes differ (bool targets into a float batch).
        """
        if source.dtype == out.dtype:
            return source.take(rows, axis=0, out=out)
        np.copyto(out, source.take(rows, axis=0, out=scratch))
        return out


class CompiledKernels:
    """The same kernels, one compiled pass each (``sklearn_gd/_fused.c``)."""

    name = "compiled"

    @staticmethod
    def adam(theta, g, u, w, beta_1, beta_2, eps, scale, c=0.0, weight_bounds=None,
             scratch=None):
        # one pass: the L2 term is added on the fly, g is left unchanged
        return _compiled.adam(theta, g, u, w, beta_1, beta_2, eps, scale, c, weight_bounds)

    @staticmethod
    def bias_activation(Z, b, activation, split=True):
        kind = FUSED_KINDS.get(activation)
        if kind is None:
            _compiled.bias_activation(Z, b, 0, 0.0, split)
            return ACTIVATIONS[activation][0](Z)
        _compiled.bias_activation(Z, b, kind, LEAKY_RELU_SLOPE, split)
        return Z

    @staticmethod
    def activation_backward(delta, A, mask, activation, scratch):
        kind = FUSED_KINDS.get(activation)
        if not kind:  # identity and the activations without a fused kernel
            return NumpyKernels.activation_backward(delta, A, mask, activation, scratch)
        _compiled.activation_backward(delta, A, mask, kind, LEAKY_RELU_SLOPE)
        return delta

    @staticmethod
    def narrow_backward(previous, delta, W, A, mask, activation, scratch, transposed):
        kind = FUSED_KINDS.get(activation)
        if kind is None:  # the product here, the derivative in NumPy
            _compiled.narrow_backward(previous, delta, W, transposed, A, None, 0, 0.0)
            return NumpyKernels.activation_backward(previous, A, mask, activation, scratch)
        _compiled.narrow_backward(previous, delta, W, transposed, A, mask, kind, LEAKY_RELU_SLOPE)
        return previous

    @staticmethod
    def uses_narrow_backward(n_entries, n_outputs):
        return n_outputs <= NARROW_MAX_OUTPUTS and n_entries >= NARROW_MIN_ENTRIES

    @staticmethod
    def l2_gradient(gW, W, c, scratch):
        return _compiled.l2_gradient(gW.reshape(-1), W.reshape(-1), c)

    # Softmax: NumPy's exp (vectorized) between two compiled passes.
    @staticmethod
    def softmax(R, P):
        _compiled.subtract_row_max(R, P)
        np.exp(P, out=P)
        _compiled.normalize_rows(P)
        return P

    @staticmethod
    def softmax_log_loss(R, Y, weights, P, delta):
        _compiled.subtract_row_max(R, P)
        np.exp(P, out=P)
        return _compiled.log_loss_from_exp(R, Y, weights, P, delta)

    @staticmethod
    def take_rows(source, rows, out, scratch):
        if not source.flags.c_contiguous or rows.dtype != np.int64:
            return NumpyKernels.take_rows(source, rows, out, scratch)
        _compiled.take_rows(source, rows, out)
        return out


IMPLEMENTATIONS = {"numpy": NumpyKernels}
if _compiled is not None:
    IMPLEMENTATIONS["compiled"] = CompiledKernels

_active = IMPLEMENTATIONS.get("compiled", NumpyKernels)


def implementation():
    """Name of the kernels in use: ``"compiled"`` or ``"numpy"``."""
    return _active.name


def description():
    """:func:`implementation`, with the compiled kernels' vector instructions and threads.

    ``"compiled (avx2, 2 threads)"`` or ``"compiled (baseline, 1 thread)"``
    (see ``COMPILED_TWICE`` and "BLAS threads" in ``_fused.c``: the threads
    are NumPy's OpenBLAS's, over which the large kernels split; "no BLAS
    thread pool" when NumPy's BLAS lends none, see :data:`BLAS_POOL_FOUND`),
    or ``"numpy"``.
    """
    if _active is NumpyKernels:
        return _active.name
    threads = _compiled.blas_threads()
    plural = "s" if threads > 1 else ""
    pool = "" if BLAS_POOL_FOUND else ", no BLAS thread pool"
    return f"{_active.name} ({_compiled.vector_isa()}, {threads} thread{plural}{pool})"


@contextlib.contextmanager
def _switched(get, set_to, value):
    """Inside: ``set_to(value)``; after: back to what ``get()`` gave before."""
    previous = get()
    set_to(value)
    try:
        yield
    finally:
        set_to(previous)


def use_vector_isa(name):
    """Run the compiled kernels' ``"avx2"`` or ``"baseline"`` version inside.

    ``_compiled.vector_isas()`` lists the versions this build and CPU can run.
    """
    return _switched(_compiled.vector_isa, _compiled.set_vector_isa, name)


def use_blas_threads(enabled):
    """Split the large compiled kernels over OpenBLAS's threads inside (or not).

    ``_compiled.blas_threads()`` says over how many threads they run.
    """
    return _switched(_compiled.blas_threads_enabled, _compiled.set_blas_threads, enabled)


@contextlib.contextmanager
def use(name):
    """Run the enclosed code with the kernels called ``name``."""
    global _active
    previous, _active = _active, IMPLEMENTATIONS[name]
    try:
        yield
    finally:
        _active = previous


def adam(theta, g, u, w, beta_1, beta_2, eps, scale, c=0.0, weight_bounds=None, scratch=None):
    """See :meth:`NumpyKernels.adam`; runs the active implementation."""
    return _active.adam(theta, g, u, w, beta_1, beta_2, eps, scale, c, weight_bounds, scratch)


def bias_activation(Z, b, activation, split=True):
    """See :meth:`NumpyKernels.bias_activation`; runs the active implementation."""
    return _active.bias_activation(Z, b, activation, split)


def activation_backward(delta, A, mask, activation, scratch):
    """See :meth:`NumpyKernels.activation_backward`; runs the active implementation."""
    return _active.activation_backward(delta, A, mask, activation, scratch)


def narrow_backward(previous, delta, W, A, mask, activation, scratch, transposed):
    """See :meth:`NumpyKernels.narrow_backward`; runs the active implementation."""
    return _active.narrow_backward(previous, delta, W, A, mask, activation, scratch, transposed)


def uses_narrow_backward(n_entries, n_outputs):
    """See :meth:`NumpyKernels.uses_narrow_backward`; for the active implementation."""
    return _active.uses_narrow_backward(n_entries, n_outputs)


def l2_gradient(gW, W, c, scratch):
    """See :meth:`NumpyKernels.l2_gradient`; runs the active implementation."""
    return _active.l2_gradient(gW, W, c, scratch)


def l2_gradient_blocks(g, theta, c, weight_bounds, scratch):
    """The L2 term on a flat buffer: ``g <- g + c theta`` on the weight blocks.

    ``weight_bounds`` is an int64 array of ``[start, stop)`` rows, one per
    weight matrix, ascending; ``scratch`` as for :func:`l2_gradient`. Returns
    the penalty ``c / 2 sum theta^2`` over the blocks, added from the last
    block to the first (the order of the backward pass, so that the objective
    is the same float either way); ``0.0`` when ``c == 0``.
    """
    return _l2_blocks(l2_gradient, g, theta, c, weight_bounds, scratch)


def _l2_blocks(l2_gradient_kernel, g, theta, c, weight_bounds, scratch):
    penalty = 0.0
    if c:
        for start, stop in weight_bounds[::-1]:
            penalty += l2_gradient_kernel(g[start:stop], theta[start:stop], c, scratch)
    return penalty


def softmax(R, P):
    """See :meth:`NumpyKernels.softmax`; runs the active implementation."""
    return _active.softmax(R, P)


def softmax_log_loss(R, Y, weights, P, delta):
    """See :meth:`NumpyKernels.softmax_log_loss`; runs the active implementation."""
    return _active.softmax_log_loss(R, Y, weights, P, delta)


def take_rows(source, rows, out, scratch):
    """See :meth:`NumpyKernels.take_rows`; runs the active implementation."""
    return _active.take_rows(source, rows, out, scratch)
