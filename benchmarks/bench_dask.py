"""When does training on a Dask cluster pay? The same fits in memory and on LocalClusters.

One synthetic binary classification (``--rows`` x ``--features``, float64,
one hidden layer of 64), cut into ``--chunks`` row chunks, trained

- in memory (NumPy, this process, its BLAS threads),
- on a ``distributed.LocalCluster`` of 1 worker and of 2 worker processes
  (one thread each: a worker's BLAS runs single-threaded),

with ``solver="lbfgs"`` (seconds per L-BFGS iteration) and with ``adam`` at
two batch sizes (seconds per epoch). The last column is each configuration's
time over the in-memory one. It also measures the scheduling overhead of one
synchronous step: a round trip that sends the parameters to every chunk and
reduces a gradient-sized result, with no arithmetic; and, beside it, Dask's own
floor on the same cluster (as many empty tasks as chunks, and one reduction).

Run ``python benchmarks/bench_dask.py`` (``--quick``: small data, for a check).
"""

import argparse
import time
import warnings

import dask
import numpy as np
from sklearn.datasets import make_classification

from sklearn_gd import MLPBackpropClassifier
from sklearn_gd._dask_estimator import chunked_train_data
from sklearn_gd._data._dask import _cluster

HIDDEN = (64,)


def make_data(rows, features, seed=0):
    X, y = make_classification(n_samples=rows, n_features=features, n_informative=features // 2,
                               random_state=seed)
    return X, y


def fit_seconds(X, y, epochs, **params):
    """``(seconds per epoch or L-BFGS iteration, epochs run)`` of one fit."""
    model = MLPBackpropClassifier(hidden_layer_sizes=HIDDEN, max_iter=epochs, random_state=0,
                                  tol=0.0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - start
    return seconds / model.n_iter_, model.n_iter_


def step_overhead(X, y, repeats):
    """Seconds of one parameter round trip over the chunks, without arithmetic."""
    model = MLPBackpropClassifier(hidden_layer_sizes=HIDDEN, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(*dask.compute(X[:50], y[:50]))  # a model to take steps with, in memory
    data = chunked_train_data(model, X, y, None, False, True, None, (None,) * 3,
                                    stops_early=False)
    theta = model._theta
    where = _cluster.holders(data.chunks)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        theta_d = _cluster.shared(theta.copy(), "theta")
        calls = [(chunk, theta_d) for chunk in data.chunks]
        _cluster.compute(_cluster.tree_sum(_cluster.on_chunks(_parameters_back, calls, where)))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _parameters_back(chunk, theta):
    return (theta,)


def dask_floor(tasks, repeats):
    """Seconds of Dask's own round trip: ``tasks`` empty tasks and one reduction."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        parts = [dask.delayed(_nothing, pure=False)() for _ in range(tasks)]
        dask.compute(dask.delayed(_nothing)(*parts))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _nothing(*args):
    return None


def configurations(batch_sizes, epochs, lbfgs_iterations):
    yield "lbfgs", "per L-BFGS iteration", lbfgs_iterations, dict(solver="lbfgs")
    for batch in batch_sizes:
        yield f"adam, batch {batch}", "per epoch", epochs, dict(batch_size=batch)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rows, chunks = (4_000, 4) if args.quick else (args.rows, args.chunks)
    batch_sizes = (2_000, 50_000) if not args.quick else (200, 2_000)
    epochs, iterations = (1, 3) if args.quick else (2, 10)

    import dask.array as da
    import distributed

    X, y = make_data(rows, args.features)
    print(f"{rows} rows x {args.features} features (float64, {X.nbytes / 2**20:.0f} MiB), "
          f"{chunks} chunks, hidden_layer_sizes={HIDDEN}")
    Xd = da.from_array(X, chunks=(-(-rows // chunks), args.features))
    yd = da.from_array(y, chunks=-(-rows // chunks))
    results = {}
    for name, unit, count, params in configurations(batch_sizes, epochs, iterations):
        results[(name, "in memory")] = fit_seconds(X, y, count, **params)[0]
    overheads = {}
    for workers in (1, 2):
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                      dashboard_address=":0") as cluster, \
                distributed.Client(cluster):
            Xp, yp = Xd.persist(), yd.persist()
            label = f"LocalCluster, {workers} worker{'s' if workers > 1 else ''}"
            for name, unit, count, params in configurations(batch_sizes, epochs, iterations):
                results[(name, label)] = fit_seconds(Xp, yp, count, **params)[0]
            overheads[label] = step_overhead(Xp, yp, repeats=20), dask_floor(chunks, 20)
    print()
    print("| configuration | where | seconds | vs in memory |")
    print("|---|---|---|---|")
    for name, unit, _, _ in configurations(batch_sizes, epochs, iterations):
        base = results[(name, "in memory")]
        for where in ("in memory", "LocalCluster, 1 worker", "LocalCluster, 2 workers"):
            seconds = results[(name, where)]
            print(f"| {name} ({unit}) | {where} | {seconds:.4f} | {seconds / base:.2f}x |")
    print()
    for label, (step, floor) in overheads.items():
        print(f"scheduling overhead of one step ({chunks} chunks), {label}: {step * 1e3:.1f} ms "
              f"(Dask's floor, {chunks} empty tasks and a reduction: {floor * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
