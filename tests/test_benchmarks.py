"""The benchmark script runs and reports every contender (tiny sizes; no timing is asserted)."""

import contextlib
import importlib.util
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "bench_training.py"

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def bench():
    path = list(sys.path)
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


PROFILER = SCRIPT.parent / "profile_step.py"


@pytest.fixture(scope="module")
def profiler():
    path = list(sys.path)  # the script puts benchmarks/ first
    spec = importlib.util.spec_from_file_location("profile_step", PROFILER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.path[:] = path
    return module


TINY = dict(n=300, d=5, hidden=(6,), batch=50, dtype=np.float64)


def test_profiler_names_each_product_by_kind_and_shape(profiler):
    rng = np.random.default_rng(0)
    A, W, delta = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    kind = profiler.product_kind
    assert kind(A, W, A @ W) == "fwd (4, 2)"
    assert kind(A.T, delta, A.T @ delta) == "wgrad (3, 2)"
    assert kind(delta, W.T, delta @ W.T) == "dgrad (4, 3)"
    assert kind(np.ones(4), delta, np.ones(4) @ delta) == "bias_sum (2,)"
    assert kind(W.ravel(), W.ravel(), np.dot(W.ravel(), W.ravel())) == "w.w ()"


def test_profiler_times_a_fit_and_puts_the_package_back(profiler):
    from sklearn_gd import MLPBackpropClassifier
    from sklearn_gd._engine import _backend, _kernels, _losses
    from sklearn_gd._train import _trainer

    originals = [_kernels.adam, _kernels.take_rows, _losses.Loss.loss_and_delta,
                 _trainer.run_epoch, _backend.np]
    X, y, _, _ = profiler.make_data(TINY["n"], TINY["d"], TINY["dtype"])
    totals = profiler.collections.defaultdict(float)
    with pytest.raises(RuntimeError), profiler.timed_calls(totals):
        MLPBackpropClassifier(hidden_layer_sizes=(6,), batch_size=50, max_iter=1).fit(X, y)
        raise RuntimeError  # leaving by an exception restores the package too
    assert [_kernels.adam, _kernels.take_rows, _losses.Loss.loss_and_delta,
            _trainer.run_epoch, _backend.np] == originals
    # 6 batches of 50 rows: forward 50 x 6 and 50 x 10, gradients 5 x 6 and 6 x 10
    expected = {"fwd (50, 6)", "fwd (50, 10)", "wgrad (5, 6)", "wgrad (6, 10)",
                "dgrad (50, 6)", "bias_sum (6,)", "bias_sum (10,)", "adam",
                "bias_activation", "activation_backward", "take_rows", "loss", "epoch"}
    assert expected <= set(totals)
    assert all(seconds > 0 for seconds in totals.values())
    assert sum(v for k, v in totals.items() if k != "epoch") < totals["epoch"]


def test_profiler_repeats_the_large_kernels_when_asked(profiler, monkeypatch):
    from sklearn_gd import MLPBackpropClassifier
    from sklearn_gd._engine import _kernels

    calls = []
    adam = _kernels.adam
    monkeypatch.setattr(_kernels, "adam", lambda *a, **k: calls.append(1) or adam(*a, **k))
    X, y, _, _ = profiler.make_data(TINY["n"], TINY["d"], TINY["dtype"])
    totals = profiler.collections.defaultdict(float)
    with profiler.timed_calls(totals, repeat_kernels=True):
        MLPBackpropClassifier(hidden_layer_sizes=(6,), batch_size=50, max_iter=1).fit(X, y)
    assert len(calls) == 2 * 6  # each of the 6 batches' steps, twice
    assert {"adam, 1st call", "adam, 2nd call", "bias_activation, 2nd call"} <= set(totals)
    assert "adam" not in totals and "take_rows" in totals  # the gather runs once


def test_profiler_report_splits_the_fit_into_items_per_batch(profiler, capsys):
    records = [  # seconds; two quiet rounds, one slow
        dict(quiet=True, floor=0.4, fit=0.6, items={"epoch": 0.5, "adam": 0.1}),
        dict(quiet=True, floor=0.4, fit=0.6, items={"epoch": 0.5, "adam": 0.1}),
        dict(quiet=False, floor=0.8, fit=1.6, items={"epoch": 1.2, "adam": 0.4}),
    ]
    profiler.report(records, n_batches=10)
    out = capsys.readouterr().out
    assert "quiet rounds: 2; floor 40000 us per batch; the one-epoch fit 1.500x" in out
    assert "slow rounds: 1; floor 80000 us per batch; the one-epoch fit 2.000x" in out
    quiet, slow = out.split("## slow")
    assert "| adam | 10000.0 | 25.0 |" in quiet
    assert "| other, in the epoch (Python, timers) | 40000.0 | 100.0 |" in quiet
    assert "| outside the epoch (the fit's set-up) | 10000.0 | 25.0 |" in quiet
    assert "| adam | 40000.0 | 50.0 |" in slow


def test_profiler_labels_each_round_by_its_phase_probes(profiler, monkeypatch):
    speedups = iter([2.0, 1.9, 1.9, 1.2])  # before and after each of two rounds
    monkeypatch.setattr(profiler, "phase_probe", lambda: lambda: next(speedups))
    records = profiler.profile(TINY, rounds=2)
    assert [r["quiet"] for r in records] == [True, False]
    assert all(r["fit"] > r["items"]["epoch"] > 0 and r["floor"] > 0 for r in records)


def test_kernel_benchmark_compares_every_shape(capsys):
    """bench_kernels.py: one row per dtype and shape, saying whether training uses the kernel."""
    from sklearn_gd._engine import _kernels

    if _kernels._compiled is None:
        pytest.skip("the compiled kernels (sklearn_gd._engine._fused) were not built")
    path = SCRIPT.parent / "bench_kernels.py"
    spec = importlib.util.spec_from_file_location("bench_kernels", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick"])
    lines = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("| float")]
    assert len(lines) == 2 * len(module.SHAPES)
    for line in lines:
        dtype, shape, used, fused, product, ratio = (c.strip() for c in line.strip("|").split("|"))
        rows, cols, k = (int(v) for v in shape.split(","))
        expected = k <= _kernels.NARROW_MAX_OUTPUTS and rows * cols >= _kernels.NARROW_MIN_ENTRIES
        assert used == ("yes" if expected else "no")
        assert float(fused) > 0 and float(product) > 0
        fused, product = float(fused), float(product)  # each rounded to 0.05 us at most
        low, high = (product - 0.05) / (fused + 0.05), (product + 0.05) / (fused - 0.05)
        assert low - 0.005 <= float(ratio) <= high + 0.005


def test_device_table_compares_with_the_pytorch_loop_there(bench, capsys):
    torch = pytest.importorskip("torch")
    bench.torch = torch
    try:
        config = dict(n=300, d=5, hidden=(6,), batch=50, dtype=np.float32)
        bench.bench_device("tiny float32", config, epochs=1, repeats=1, device="cpu")
    finally:
        bench.torch = None
    rows = table_rows(capsys.readouterr().out)
    assert set(rows) == {"sklearn-gd (torch cpu)", "PyTorch loop (cpu)", "sklearn-gd (NumPy, CPU)"}
    for ms, to_loop, cpu_over_this, accuracy in rows.values():
        assert float(ms) > 0 and float(to_loop) > 0 and float(cpu_over_this) > 0
        assert 0 <= float(accuracy) <= 1
    assert rows["PyTorch loop (cpu)"][1] == "1.00"
    assert float(rows["sklearn-gd (NumPy, CPU)"][2]) == 1.0


def test_a_ratio_far_below_one_is_not_printed_as_zero(bench):
    # one stalled run of another contender on a busy machine gives such ratios
    assert bench.ratio_text(1.0) == "1.00" and bench.ratio_text(0.123) == "0.12"
    assert float(bench.ratio_text(0.0031)) == 0.0031
    assert float(bench.ratio_text(2e-5)) == 2e-5
