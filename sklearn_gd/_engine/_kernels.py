"""Fused elementwise kernels of the training step, compiled or in NumPy.

Between its matrix products, a training step gathers the rows of a shuffled
batch and makes many elementwise passes (bias, activation, its derivative, the
L2 term, softmax and log-loss, Adam's moments and step). NumPy runs one pass
over memory per operation and pays a fixed cost per call; the compiled module
:mod:`sklearn_gd._engine._fused` (``_fused.c`` and ``_fused_kernels.h``) does each
group below in one pass (:func:`narrow_backward` with the product through a
layer of few outputs before its backward pass). Every function here is
written in NumPy as the reference for its compiled twin, which makes the same
floating-point operations in the same order (bit-identical arrays; softmax
only up to rounding, as it multiplies by the reciprocal of the row sum where
NumPy divides, and the L2 penalty, a returned float, only up to its summation
order); the compiled one runs when the extension is built (``pip install``
builds it when a C compiler is present), the NumPy one otherwise.

The compiled kernels run on the calling thread and release the GIL on large
arrays, as NumPy's own loops do: fits in several Python threads run at once,
each with the results it would have alone.

:func:`implementation` says which runs; :func:`use` switches (for tests and
for comparing the two). The compiled module picks its vector instructions
once, at import: the best this CPU runs (AVX2 or the baseline), unless the
environment variable ``SKLEARN_GD_VECTOR_ISA`` names one (``"baseline"`` or
``"avx2"``); :func:`description` says which.
"""

import contextlib

import numpy as np

from ._activations import ACTIVATIONS, LEAKY_RELU_SLOPE

#: The compiled module's interface version, defined here alone: ``setup.py``
#: compiles it into the module, and a build of another version is ignored.
API_VERSION = 10

try:
    from . import _fused as _compiled
except ImportError:  # built without a C compiler: NumPy only
    _compiled = None
if getattr(_compiled, "API_VERSION", None) != API_VERSION:
    _compiled = None

#: Activations with a compiled fused forward and backward pass, with the code
#: of their kernel kind: each activation declares its kind
#: (:class:`~sklearn_gd._engine._activations.Activation`), the compiled module numbers
#: them (``ACTIVATION_KINDS``). Empty without the compiled module.
FUSED_KINDS = {
    name: _compiled.ACTIVATION_KINDS[activation.kernel]
    for name, activation in ACTIVATIONS.items()
    if _compiled is not None and activation.kernel is not None
}

#: :func:`narrow_backward` runs (compiled kernels only) for layers of at most
#: this many outputs whose backpropagated error has at least
#: ``NARROW_MIN_ENTRIES`` entries (rows x inputs): there, one pass computing
#: each row of ``delta @ W.T`` and its backward pass while the row is in
#: cache beats BLAS's product, which is tuned for wide operands, followed by a
#: second pass (``benchmarks/bench_kernels.py`` compares the two).
NARROW_MAX_OUTPUTS = 10
NARROW_MIN_ENTRIES = 32768


def adam_direction(g, u, w, beta_1, beta_2, eps, scale):
    """Adam's moment updates, then ``g <- scale * u / (sqrt(w) + eps)``."""
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
    def bias_activation(Z, b, activation):
        """``Z <- f(Z + b)`` in place (``b`` broadcast over the rows)."""
        Z += b
        return ACTIVATIONS[activation].forward(Z)

    @staticmethod
    def activation_backward(delta, A, mask, activation, scratch):
        """``delta <- delta * mask * f'(A)`` in place (``mask`` may be None).

        ``scratch`` is a buffer of ``delta``'s shape for ``f'``.
        """
        if mask is not None:
            delta *= mask
        delta *= ACTIVATIONS[activation].derivative(A, scratch)
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
        # OpenBLAS thread pools makes both pools spin for the cores.
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
    """The same kernels, one compiled pass each (``sklearn_gd/_engine/_fused.c``)."""

    name = "compiled"

    @staticmethod
    def adam(theta, g, u, w, beta_1, beta_2, eps, scale, c=0.0, weight_bounds=None,
             scratch=None):
        # one pass: the L2 term is added on the fly, g is left unchanged
        return _compiled.adam(theta, g, u, w, weight_bounds, beta_1, beta_2, eps, scale, c)

    @staticmethod
    def bias_activation(Z, b, activation):
        kind = FUSED_KINDS.get(activation)
        if kind is None:
            _compiled.bias_activation(Z, b, FUSED_KINDS["identity"], 0.0)
            return ACTIVATIONS[activation].forward(Z)
        _compiled.bias_activation(Z, b, kind, LEAKY_RELU_SLOPE)
        return Z

    @staticmethod
    def activation_backward(delta, A, mask, activation, scratch):
        kind = FUSED_KINDS.get(activation)
        if kind is None or activation == "identity":  # the mask alone, or no fused kernel
            return NumpyKernels.activation_backward(delta, A, mask, activation, scratch)
        _compiled.activation_backward(delta, A, mask, kind, LEAKY_RELU_SLOPE)
        return delta

    @staticmethod
    def narrow_backward(previous, delta, W, A, mask, activation, scratch, transposed):
        kind = FUSED_KINDS.get(activation)
        if kind is None:  # the product here, the derivative in NumPy
            _compiled.narrow_backward(previous, delta, W, transposed, A, None,
                                      FUSED_KINDS["identity"], 0.0)
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
    """:func:`implementation`, with the compiled kernels' vector instructions.

    ``"compiled (avx2)"`` or ``"compiled (baseline)"`` (the version of the
    kernels this CPU runs), or ``"numpy"``.
    """
    if _active is NumpyKernels:
        return _active.name
    return f"{_active.name} ({_compiled.vector_isa()})"


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


def bias_activation(Z, b, activation):
    """See :meth:`NumpyKernels.bias_activation`; runs the active implementation."""
    return _active.bias_activation(Z, b, activation)


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
