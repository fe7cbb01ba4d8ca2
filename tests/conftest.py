"""Test session setup.

scikit-learn's Array API dispatch (``config_context(array_api_dispatch=True)``)
needs SciPy >= 1.14 and ``SCIPY_ARRAY_API=1`` set before SciPy is first
imported; set here, it lets the array-API tests and scikit-learn's array-API
estimator checks run (they skip, with that reason, where it is absent). Older
SciPy is left as it is: its experimental support needs other packages.
"""

import os
from importlib.metadata import version

import pytest


def _at_least(installed, minimum):
    parts = [int(p) for p in installed.split(".")[:2] if p.isdigit()]
    return tuple(parts) >= minimum


if _at_least(version("scipy"), (1, 14)):
    os.environ.setdefault("SCIPY_ARRAY_API", "1")


#: A LocalCluster's options for the tests: two single-threaded worker processes on
#: the loopback interface, no dashboard port to collide on.
DASK_CLUSTER_OPTIONS = dict(n_workers=2, threads_per_worker=1, processes=True,
                            host="127.0.0.1", dashboard_address=":0", protocol="tcp")


@pytest.fixture(scope="session")
def dask_cluster():
    """One Dask cluster for the test modules that can share it (each pytest-xdist
    process has its own): starting worker processes is the slow part of those tests,
    and on a loaded machine several clusters starting at once made workers late."""
    distributed = pytest.importorskip("distributed")
    import dask

    # A killed worker's nanny starts a new process, which on a loaded machine can take
    # longer than the 15 s after which the cluster counts the worker as lost and closes
    # its nanny for good (the cluster then runs one worker short): a generous margin.
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "600s"}), \
            distributed.LocalCluster(**DASK_CLUSTER_OPTIONS) as cluster:
        yield cluster
