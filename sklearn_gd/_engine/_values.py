"""Value checks shared by the estimators and the targets."""

import numpy as np
import scipy.sparse as sp


def max_abs(X):
    """The largest absolute value of a dense or sparse ``X`` (0 when empty)."""
    values = X.data if sp.issparse(X) else X
    return float(np.max(np.abs(values))) if values.size else 0.0


def cast_finite(A, dtype, name):
    """``A`` (finite) as ``dtype``; a ValueError when values overflow it."""
    with np.errstate(over="ignore"):
        cast = A.astype(dtype, copy=False)
    values = cast.data if sp.issparse(cast) else cast
    if np.dtype(dtype).itemsize < A.dtype.itemsize and not np.isfinite(values).all():
        raise ValueError(
            f"{name} has values too large for a {np.dtype(dtype)} model (max |{name}| = "
            f"{max_abs(A):.3g}): a model fitted on {np.dtype(dtype)} X computes in "
            f"{np.dtype(dtype)}; fit it on float64 X, or scale {name}."
        )
    return cast
