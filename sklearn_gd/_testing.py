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
