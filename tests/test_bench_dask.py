"""The Dask benchmark's measurements run (tiny data, Dask's local scheduler; no timing
asserted)."""

import importlib.util
import sys
from pathlib import Path

import pytest

da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "bench_dask.py"


@pytest.fixture(scope="module")
def bench():
    path = list(sys.path)
    spec = importlib.util.spec_from_file_location("bench_dask", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.path[:] = path
    return module


def test_fits_report_seconds_per_epoch_on_dask_and_in_memory(bench):
    X, y = bench.make_data(300, 8)
    Xd, yd = da.from_array(X, chunks=(100, 8)), da.from_array(y, chunks=100)
    for name, unit, count, params in bench.configurations((50,), epochs=1, lbfgs_iterations=2):
        for data in ((X, y), (Xd, yd)):
            seconds, epochs = bench.fit_seconds(*data, count, **params)
            assert seconds > 0 and epochs == count


def test_step_overhead_is_one_round_trip_over_the_chunks(bench, monkeypatch):
    from sklearn_gd._data._dask import _cluster

    X, y = bench.make_data(300, 8)
    calls = []
    original = _cluster.compute
    monkeypatch.setattr(_cluster, "compute", lambda *a: calls.append(a) or original(*a))
    seconds = bench.step_overhead(da.from_array(X, chunks=(100, 8)), da.from_array(y, chunks=100),
                                  repeats=3)
    assert seconds > 0
    # the data's preparation (labels, per-chunk statistics), then one round trip per repeat
    assert len(calls) == 2 + 3


def test_dask_floor_is_a_round_trip_of_empty_tasks(bench):
    assert bench.dask_floor(tasks=3, repeats=2) > 0
