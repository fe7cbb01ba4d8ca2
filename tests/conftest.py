"""Test session setup.

scikit-learn's Array API dispatch (``config_context(array_api_dispatch=True)``)
needs SciPy >= 1.14 and ``SCIPY_ARRAY_API=1`` set before SciPy is first
imported; set here, it lets the array-API tests and scikit-learn's array-API
estimator checks run (they skip, with that reason, where it is absent). Older
SciPy is left as it is: its experimental support needs other packages.
"""

import os
from importlib.metadata import version


def _at_least(installed, minimum):
    parts = [int(p) for p in installed.split(".")[:2] if p.isdigit()]
    return tuple(parts) >= minimum


if _at_least(version("scipy"), (1, 14)):
    os.environ.setdefault("SCIPY_ARRAY_API", "1")
