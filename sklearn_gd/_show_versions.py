"""``show_versions()``: what a bug report or a benchmark needs to say."""

import platform

from ._engine import _kernels
from ._version import __version__


def _blas_lines():
    from threadpoolctl import threadpool_info  # a scikit-learn dependency

    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            yield (f"{pool.get('internal_api')} {pool.get('version')} "
                   f"({pool.get('architecture')}), {pool.get('num_threads')} threads")


def show_versions():
    """Print the versions, the BLAS in use and which kernels sklearn-gd runs.

    ``kernels: compiled`` means the fused C kernels were built at install
    (with ``(avx2)`` when their AVX2 versions run on this CPU, else
    ``(baseline)``); ``numpy`` means they were not (no C compiler then): the
    results are the same, training is slower. Reinstall with a C compiler to
    build them.
    """
    import numpy
    import scipy
    import sklearn

    lines = [
        f"sklearn-gd: {__version__}",
        f"kernels: {_kernels.description()}",
        f"python: {platform.python_version()} ({platform.machine()}, {platform.system()})",
        f"numpy: {numpy.__version__}",
        f"scipy: {scipy.__version__}",
        f"scikit-learn: {sklearn.__version__}",
    ]
    lines += [f"BLAS: {line}" for line in _blas_lines()]
    print("\n".join(lines))
