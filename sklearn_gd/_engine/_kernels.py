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
from ._elementwise import NUMPY_ELEMENTWISE

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


class ReferenceKernels:
    """The reference kernel table, written once against an elementwise table ``ops``
    (:mod:`._elementwise`).

    With NumPy's (:data:`NumpyKernels`) each operation is one pass over
    memory, written into the buffers given: the reference the compiled kernels
    are checked against, which runs where they are not built. With another
    library's, it is that library's kernel table (new arrays; state arrays
    updated by the standard's in-place operators).
    """

    def __init__(self, ops, name):
        self.ops = ops
        self.name = name

    def adam_direction(self, g, u, w, beta_1, beta_2, eps, scale):
        """Adam's moment updates, then the direction ``scale * u / (sqrt(w) + eps)``
        (written into ``g`` where the library allows)."""
        ops = self.ops
        u *= beta_1
        u += g
        squared = ops.multiply(g, g, out=g)
        w *= beta_2
        w += squared
        root = ops.add(ops.sqrt(w, out=squared), eps, out=squared)
        return ops.multiply(ops.divide(u, root, out=root), scale, out=root)

    def adam(self, theta, g, u, w, beta_1, beta_2, eps, scale, c=0.0, weight_bounds=None,
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
        penalty = _l2_blocks(self.l2_gradient, g, theta, c, weight_bounds, scratch)
        theta += self.adam_direction(g, u, w, beta_1, beta_2, eps, scale)
        return penalty

    def bias_activation(self, Z, b, activation):
        """``Z <- f(Z + b)`` (``b`` broadcast over the rows), in place where allowed."""
        return ACTIVATIONS[activation].forward(self.ops.add(Z, b, out=Z), self.ops)

    def activation_backward(self, delta, A, mask, activation, scratch):
        """``delta <- delta * mask * f'(A)`` (``mask`` may be None), in place where allowed.

        ``scratch`` is a buffer of ``delta``'s shape for ``f'`` (None off NumPy).
        """
        ops = self.ops
        if mask is not None:
            delta = ops.multiply(delta, mask, out=delta)
        return ops.multiply(delta, ACTIVATIONS[activation].derivative(A, scratch, ops), out=delta)

    def narrow_backward(self, previous, delta, W, A, mask, activation, scratch, transposed):
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
        previous = self.ops.multiply(delta[:, :1], W[:, 0], out=previous)
        for q in range(1, W.shape[1]):
            previous += delta[:, q : q + 1] * W[:, q]
        return self.activation_backward(previous, A, mask, activation, scratch)

    @staticmethod
    def uses_narrow_backward(n_entries, n_outputs):
        """Whether backpropagation through ``n_outputs`` goes through :meth:`narrow_backward`.

        Never here: its loop over the outputs is slower than one product.
        """
        return False

    def l2_gradient(self, gW, W, c, scratch):
        """``gW <- gW + c W`` in place; return the penalty ``c / 2 ||W||^2``."""
        # Not SciPy's BLAS axpy: alternating between SciPy's and NumPy's
        # OpenBLAS thread pools makes both pools spin for the cores.
        ops = self.ops
        cW = ops.multiply(W, c, out=None if scratch is None else scratch[: W.size].reshape(W.shape))
        gW += cW
        return 0.5 * c * ops.squared_norm(W)

    def softmax(self, R, P):
        """``P = exp(z) / sum_k exp(z_k)`` per row, with ``z = r - max(r)``; returns ``P``."""
        ops = self.ops
        E = ops.exp(ops.subtract(R, ops.row_max(R), out=P), out=P)
        return ops.divide(E, ops.row_sums(E, keepdims=True), out=E)

    def softmax_log_loss(self, R, Y, weights, P, delta):
        """Softmax, weighted log-loss and its gradient in one go; returns the loss.

        With ``z = r - max(r)`` and ``s = sum_k exp(z_k)`` per row:
        ``P = exp(z) / s``, ``delta = w (P - Y)`` and the returned loss
        ``sum_i w_i (log(s_i) - sum_k y_ik z_ik)``, which is
        ``sum_i w_i (logsumexp(r_i) - y_i . r_i)`` for row-stochastic ``Y``.
        """
        return self.softmax_log_loss_and_delta(R, Y, weights, P, delta)[0]

    def softmax_log_loss_and_delta(self, R, Y, weights, P, delta):
        """:meth:`softmax_log_loss`, returning ``(loss, delta)`` (a new delta off NumPy)."""
        ops = self.ops
        Z = ops.subtract(R, ops.row_max(R), out=P)
        target_logit = ops.row_dots(Y, Z)
        E = ops.exp(Z, out=Z)
        s = ops.row_sums(E, keepdims=True)
        P = ops.divide(E, s, out=E)
        loss = ops.weighted_total(ops.log(s[:, 0]) - target_logit, weights)
        delta = ops.subtract(P, Y, out=delta)
        return loss, ops.multiply(delta, weights[:, None], out=delta)

    @staticmethod
    def take_rows(source, rows, out, scratch):
        """``out <- source[rows]`` for a 2-D NumPy ``source``, converted to ``out``'s dtype.

        ``scratch`` is a buffer of ``source``'s dtype and ``out``'s shape,
        used when the dtypes differ (bool targets into a float batch).
        """
        if source.dtype == out.dtype:
            return source.take(rows, axis=0, out=out)
        np.copyto(out, source.take(rows, axis=0, out=scratch))
        return out


#: The reference kernels on NumPy: plain NumPy, one pass per operation.
NumpyKernels = ReferenceKernels(NUMPY_ELEMENTWISE, "numpy")


def adam_direction(g, u, w, beta_1, beta_2, eps, scale):
    """See :meth:`ReferenceKernels.adam_direction` (NumPy's)."""
    return NumpyKernels.adam_direction(g, u, w, beta_1, beta_2, eps, scale)


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
