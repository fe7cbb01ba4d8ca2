"""The benchmark script runs and reports every contender (tiny sizes; no timing is asserted)."""

import contextlib
import importlib.util
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import sklearn_gd  # noqa: F401  the installed package, before the script puts the repository first

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "bench_training.py"

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def bench():
    path = list(sys.path)  # the script puts the repository first on sys.path
    spec = importlib.util.spec_from_file_location("bench_training", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.path[:] = path
    module.torch = None  # the PyTorch column is optional: covered by its absence here
    return module


def table_rows(text):
    """``{first cell: other cells}`` of the markdown table rows in ``text``."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| contender"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_floor_epoch_runs_the_networks_products(bench, monkeypatch):
    calls = []
    original = np.dot

    def counting_dot(a, b, out=None):
        calls.append((a.shape, b.shape))
        return original(a, b, out=out)

    # 25 rows in batches of 10: two full batches and one of the last 5 rows
    epoch = bench.floor_epoch(n=25, d=3, hidden=(4, 5), batch=10, dtype=np.float32)
    monkeypatch.setattr(np, "dot", counting_dot)
    epoch()
    # per batch: 3 forward products, 3 weight gradients, 2 input gradients
    assert len(calls) == 3 * 8
    assert calls[:3] == [((10, 3), (3, 4)), ((10, 4), (4, 5)), ((10, 5), (5, 10))]
    assert calls[16:19] == [((5, 3), (3, 4)), ((5, 4), (4, 5)), ((5, 5), (5, 10))]
    # the last batch's weight gradients sum over its 5 rows, into full-size gradients
    assert calls[19:21] == [((5, 5), (5, 10)), ((5, 10), (10, 5))]


def test_classifier_table_reports_every_contender(bench, capsys):
    config = dict(n=300, d=5, hidden=(6,), batch=50, dtype=np.float32)
    bench.bench_classifier("tiny float32", config, epochs=1, repeats=2)
    rows = table_rows(capsys.readouterr().out)
    assert set(rows) == {"sklearn-gd", "MLPClassifier"}
    for label, (ms, to_floor, quiet, to_ours, accuracy, memory) in rows.items():
        assert float(ms) > 0
        assert re.fullmatch(r"[\d.]+ \([\d.]+-[\d.]+\)", to_floor)
        assert re.fullmatch(r"[\d.]+ \(\d\)|-", quiet)
        assert 0 <= float(accuracy) <= 1 and float(memory) >= 0  # MiB, tiny here
    assert rows["sklearn-gd"][3] == "1.00"


def test_quiet_rounds_are_those_whose_phase_probes_both_saw_two_cores(bench, capsys, monkeypatch):
    # per round: a probe with the floor before the first contender and after each
    # one; the third probe (after MLPClassifier in round 0) sees a slow phase
    speedups = iter([2.0, 1.9, 1.2, 2.0, 1.8, 1.8])
    monkeypatch.setattr(bench, "phase_probe", lambda: lambda: next(speedups))
    config = dict(n=300, d=5, hidden=(6,), batch=50, dtype=np.float32)
    bench.bench_classifier("tiny float32", config, epochs=1, repeats=2)
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert rows["sklearn-gd"][2].endswith("(2)") and rows["MLPClassifier"][2].endswith("(1)")
    assert "two BLAS threads over one: 1.20-2.00x" in out


def test_phase_probe_is_the_best_one_thread_time_over_the_best_two_thread_time(
    bench, monkeypatch
):
    """On a scripted clock: each product takes the next duration for the BLAS
    thread count in force (no real time is measured, so nothing is noisy)."""
    durations = {2: iter([3.0, 1.0, 2.0]), 1: iter([4.0, 6.0, 5.0])}
    clock, threads, limits = [0.0], [None], []

    @contextlib.contextmanager
    def fake_limits(n, user_api):
        assert user_api == "blas"
        limits.append(n)
        threads[0] = n
        yield

    class TimedNumpy:
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def dot(a, b, out):
            assert a.shape == b.shape == out.shape == (512, 512)
            clock[0] += next(durations[threads[0]])

    monkeypatch.setattr(bench, "threadpool_limits", fake_limits)
    monkeypatch.setattr(bench, "np", TimedNumpy())
    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    assert bench.phase_probe(repeats=3)() == 4.0  # best of 4, 6, 5 over best of 3, 1, 2
    assert limits == [2, 1]


def test_linear_regression_race_reaches_ridge(bench, capsys):
    bench.bench_linear_regression(repeats=1, n=3000, d=5)
    rows = table_rows(capsys.readouterr().out)
    assert set(rows) == {
        "Ridge (closed form)",
        "sklearn-gd GDRegressor(adam, batch 1000)",
        "MLPRegressor(hidden_layer_sizes=(), adam, batch 1000)",
        "SGDRegressor",
    }
    # every iterative contender reached Ridge's R² within the epoch budget
    for label, (seconds, epochs) in rows.items():
        if label != "Ridge (closed form)":
            assert seconds != "inf" and int(epochs) >= 1
