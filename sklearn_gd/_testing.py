"""Numerical checks shared by the tests and the documentation."""

import numpy as np


def central_differences(func, theta, eps=1e-6):
    """Gradient of ``func`` at ``theta`` by central finite differences.

    .. math:: \\partial_j f(\\theta) \\approx \\frac{f(\\theta + \\epsilon e_j)
              - f(\\theta - \\epsilon e_j)}{2 \\epsilon}

    Parameters
    ----------
    func : callable
        ``func(theta) -> float``; may not keep a reference to ``theta``.
    theta : ndarray of shape (n_params,)
    eps : float, default=1e-6

    Returns
    -------
    grad : ndarray of shape (n_params,)
    """
    theta = np.array(theta, dtype=np.float64)
    grad = np.empty_like(theta)
    for j in range(theta.size):
        original = theta[j]
        theta[j] = original + eps
        f_plus = func(theta)
        theta[j] = original - eps
        f_minus = func(theta)
        theta[j] = original
        grad[j] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(a, b):
    """``||a - b|| / max(||a||, ||b||, tiny)``."""
    scale = max(np.linalg.norm(a), np.linalg.norm(b), np.finfo(np.float64).tiny)
    return float(np.linalg.norm(a - b) / scale)


def rounding_tolerance(dtype, depth):
    """Relative tolerance between two implementations of one computation in ``dtype``.

    Two libraries (or kernels, or thread counts) computing the same thing in
    floating point differ by their rounding: each dependent operation adds
    about one unit in the last place, and sums are ordered differently. So
    the tolerance is the dtype's machine epsilon times ``depth`` (the number
    of dependent steps: layers of a forward pass, optimizer steps of a run)
    times a margin of 100, as scikit-learn's array-API tests allow
    ``1000 eps`` for one estimator call.

    Parameters
    ----------
    dtype : dtype
        The dtype the computation ran in.
    depth : int
        Dependent steps of the computation.

    Returns
    -------
    rtol : float
    """
    return 100 * depth * float(np.finfo(dtype).eps)


def assert_allclose_in_dtype(actual, desired, dtype, *, depth, err_msg=""):
    """Assert two implementations' results agree to the rounding of ``dtype``.

    ``|actual - desired| <= rtol * |desired| + rtol * max|desired|`` with
    ``rtol = rounding_tolerance(dtype, depth)``: the absolute part is scaled
    by the largest value, since a value near zero is the cancellation of
    terms of that size and carries their rounding error, not its own.
    """
    actual, desired = np.asarray(actual), np.asarray(desired)
    rtol = rounding_tolerance(dtype, depth)
    scale = float(np.max(np.abs(desired))) if desired.size else 0.0
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale, err_msg=err_msg)
