"""Test session setup.

scikit-learn's Array API dispatch (``config_context(array_api_dispatch=True)``)
needs ``SCIPY_ARRAY_API=1`` set before SciPy is first imported; set here, it
lets the array-API tests and scikit-learn's array-API estimator checks run
(they skip, with that reason, where the variable is absent).
"""

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")
