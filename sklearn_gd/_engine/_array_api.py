"""The array library a call works in: NumPy, or another one through the Array API.

Under ``sklearn.config_context(array_api_dispatch=True)``, a fit on another
library's array (a PyTorch tensor on a GPU, a CuPy or ``array_api_strict``
array) trains in that library and on that device: the parameters, the
optimizer's state, the batches and the masks live there. NumPy arrays always
take the NumPy engine (with the compiled kernels), dispatch or not.

This module answers which library an array belongs to and moves the few
things that cross between host and device (initial weights, shuffling orders,
encoded targets, L-BFGS's flat vectors). Everything else is written against
the Array API standard where it runs.
"""

import functools

import numpy as np
import scipy.sparse as sp
from sklearn import config_context, get_config

from .._compat import (
    ARRAY_API_TRAINING,
    array_device,
    array_namespace,
    get_namespace_and_device,
    move_to,
)


def is_numpy(a):
    """True for a NumPy array (the NumPy engine's arrays); fast for the common case."""
    return type(a) is np.ndarray or isinstance(a, np.ndarray)


def namespace(a):
    """The Array API namespace of a non-NumPy array (``array_api_compat``'s wrapper),
    whether dispatch is on or not (a fitted model's parameters keep their library)."""
    return array_namespace(a)


def input_namespace(X):
    """``(xp, device)`` when ``X`` is to be trained on in its own library, else None.

    That is under ``array_api_dispatch=True``, for an array of a library
    other than NumPy (scikit-learn >= 1.8); NumPy arrays, sparse matrices,
    lists and data frames take the NumPy engine.
    """
    if (not ARRAY_API_TRAINING or not get_config()["array_api_dispatch"] or is_numpy(X)
            or sp.issparse(X)):
        return None
    if not hasattr(X, "__array_namespace__") and not _is_known_array(X):
        return None
    xp, _, device = get_namespace_and_device(X)
    if xp.__name__.endswith("numpy"):
        return None
    return xp, device


def _is_known_array(X):
    """PyTorch tensors and CuPy arrays, which ``array_api_compat`` wraps."""
    module = type(X).__module__
    return module.startswith("torch") or module.startswith("cupy")


def float_bits(dtype):
    """32 or 64: the width of a real floating dtype of any library."""
    try:
        return np.dtype(dtype).itemsize * 8
    except TypeError:
        return 64 if "64" in str(dtype) else 32


def numpy_dtype(dtype):
    """The NumPy float dtype of the width of ``dtype`` (any library's)."""
    return np.dtype(np.float64 if float_bits(dtype) == 64 else np.float32)


def xp_float(xp, dtype):
    """The float dtype of ``xp`` of the width of ``dtype``."""
    return xp.float64 if float_bits(dtype) == 64 else xp.float32


def has_float64(xp, device):
    """Whether ``device`` of ``xp`` computes in float64 (MPS does not)."""
    try:
        kinds = xp.__array_namespace_info__().dtypes(kind="real floating", device=device)
    except (AttributeError, TypeError):
        return True
    return "float64" in kinds


def zero(xp, dtype, device):
    """A 0-d zero of ``dtype`` on ``device``, made once (``xp.maximum(Z, zero(...))``
    is one pass where ``xp.zeros_like(Z)`` would be two)."""
    try:
        return _cached_zero(xp, dtype, device)
    except TypeError:  # a library whose device objects cannot be cache keys
        return xp.zeros((), dtype=dtype, device=device)


@functools.lru_cache(maxsize=64)
def _cached_zero(xp, dtype, device):
    return xp.zeros((), dtype=dtype, device=device)


def to_device(a, xp, device):
    """A NumPy array (or None) as an array of ``xp`` on ``device``."""
    if a is None:
        return None
    return xp.asarray(np.ascontiguousarray(a), device=device)


def to_numpy(a):
    """Any library's array as a NumPy array (a copy off the device where needed)."""
    if a is None or is_numpy(a):
        return a
    with config_context(array_api_dispatch=True):  # to see the array's own library
        return move_to(a, xp=np, device="cpu")


def copy(a):
    """A copy of an array of any library."""
    if is_numpy(a):
        return a.copy()
    return namespace(a).asarray(a, copy=True)


def zeros_like(a):
    """Zeros of ``a``'s shape, dtype, library and device."""
    if is_numpy(a):
        return np.zeros_like(a)
    return namespace(a).zeros_like(a)


def empty_like(a):
    """An uninitialised array of ``a``'s shape, dtype, library and device."""
    if is_numpy(a):
        return np.empty_like(a)
    return namespace(a).empty_like(a)


def astype(a, dtype):
    """``a`` as ``dtype`` (the same object when it is already)."""
    if is_numpy(a):
        return a.astype(dtype, copy=False)
    xp = namespace(a)
    return a if a.dtype == dtype else xp.astype(a, dtype)


def all_finite(a):
    """Whether every entry of ``a`` is finite."""
    if is_numpy(a):
        return bool(np.isfinite(a).all())
    xp = namespace(a)
    return bool(xp.all(xp.isfinite(a)))


def reshape(a, shape):
    """``a`` reshaped (a view where the library makes one)."""
    if is_numpy(a):
        return a.reshape(shape)
    return namespace(a).reshape(a, shape)


def take_rows(a, index):
    """Rows ``index`` (a NumPy integer array) of an array of any library."""
    if is_numpy(a) or sp.issparse(a):
        return a[index]
    xp = namespace(a)
    return xp.take(a, xp.asarray(index, device=device_of(a)), axis=0)


def device_of(a):
    """The device of an array of any library (None for NumPy)."""
    if is_numpy(a):
        return None
    return array_device(a)


class Generator:
    """Uniform and normal draws, where the arrays live.

    PyTorch and CuPy draw on their device (a GPU would otherwise wait for
    masks drawn on the host and copied each batch), from a generator seeded
    from the model's NumPy generator, so a fixed ``random_state`` gives the
    same masks run after run; a library without a generator of its own
    (``array_api_strict``) gets NumPy's draws, copied. With ``xp`` None
    (NumPy training) the model's generator ``rng`` draws itself, into the
    ``out`` buffer when one is given.
    """

    def __init__(self, xp, device, seed=None, rng=None):
        self.xp, self.device = xp, device
        name = "" if xp is None else xp.__name__
        if "torch" in name:
            import torch

            self._torch = torch.Generator(device=device).manual_seed(int(seed))
            self.kind = "torch"
        elif "cupy" in name:
            import cupy

            with cupy.cuda.Device(getattr(device, "id", device)):
                self._cupy = cupy.random.default_rng(int(seed))
            self.kind = "cupy"
        else:
            self._numpy = rng if xp is None else np.random.default_rng(int(seed))
            self.kind = "numpy"

    def uniform(self, shape, dtype, out=None):
        """Draws from U[0, 1) of ``shape`` and ``dtype`` (into ``out``, a NumPy
        buffer, when given)."""
        if self.kind == "torch":
            import torch

            return torch.rand(shape, generator=self._torch, dtype=dtype, device=self.device)
        if self.kind == "cupy":
            return self._cupy.random(shape, dtype=dtype)
        return self._placed(self._numpy.random(shape, dtype=numpy_dtype(dtype), out=out))

    def normal(self, shape, dtype, out=None):
        """Draws from N(0, 1) of ``shape`` and ``dtype`` (into ``out`` when given)."""
        if self.kind == "torch":
            import torch

            return torch.randn(shape, generator=self._torch, dtype=dtype, device=self.device)
        if self.kind == "cupy":
            return self._cupy.standard_normal(shape, dtype=dtype)
        return self._placed(
            self._numpy.standard_normal(shape, dtype=numpy_dtype(dtype), out=out))

    def _placed(self, drawn):
        """NumPy's draws where the arrays live: as drawn on the host, else copied."""
        return drawn if self.xp is None else self.xp.asarray(drawn, device=self.device)
