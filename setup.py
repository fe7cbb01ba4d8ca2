"""Build of the optional compiled kernels, ``sklearn_gd._engine._fused``.

Everything else about the package is declared in ``pyproject.toml``. The
extension is optional: without a working C compiler the build skips it and
the same math runs in NumPy (``sklearn_gd.show_versions()`` says which).
"""

import pathlib
import re

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = pathlib.Path(__file__).parent

# Each kernel makes its NumPy reference's floating-point operations in the
# same order, so a * b + c must not be fused into one multiply-add; errno and
# traps are not needed, and without them sqrt and the loops vectorize.
# MSVC's /fp:precise does not contract multiply-adds unless /fp:contract is given.
COMPILE_ARGS = {
    "msvc": ["/O2", "/fp:precise"],
    "unix": ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"],
}


def kernels_api_version():
    """``API_VERSION`` of ``sklearn_gd/_engine/_kernels.py``, the one place it is defined."""
    source = (HERE / "sklearn_gd" / "_engine" / "_kernels.py").read_text(encoding="utf-8")
    return re.search(r"^API_VERSION = (\d+)$", source, re.MULTILINE).group(1)


class BuildExt(build_ext):
    """build_ext with the compile flags of the compiler in use."""

    def build_extensions(self):
        # "unix" covers GCC and Clang, also MinGW's ("mingw32") flags
        args = COMPILE_ARGS.get(self.compiler.compiler_type, COMPILE_ARGS["unix"])
        for extension in self.extensions:
            extension.extra_compile_args = args
        super().build_extensions()


setup(
    ext_modules=[
        Extension(
            "sklearn_gd._engine._fused",
            sources=["sklearn_gd/_engine/_fused.c"],
            depends=["sklearn_gd/_engine/_fused_kernels.h", "sklearn_gd/_engine/_fused_types.h"],
            define_macros=[("KERNELS_API_VERSION", kernels_api_version())],
            optional=True,
        )
    ],
    cmdclass={"build_ext": BuildExt},
)
