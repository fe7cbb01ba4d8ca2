"""Training and prediction speed against scikit-learn, PyTorch and the BLAS floor.

Contenders: MLPClassifier, MLPRegressor, SGDRegressor and Ridge, a plain PyTorch
loop, and the floor.

Run ``python benchmarks/bench_training.py`` (``--quick`` for a short run)
after ``pip install .``: it measures the installed package, with its compiled
kernels. The PyTorch column is skipped when torch is not installed.

The *floor* of an epoch is the time of its matrix products alone, with the
exact shapes the network needs (forward, weight gradients, input gradients),
run back to back in NumPy; every contender is reported as a ratio to it.

``--device cuda`` (or ``mps``, ``cpu``) instead trains the classifier
configurations on PyTorch tensors on that device (scikit-learn's
``array_api_dispatch``) against a plain PyTorch loop on the same device (same
architecture, batch, optimizer and epochs), and against our own NumPy path on
the CPU.
"""

import argparse
import os

# scikit-learn's array API dispatch (--device) needs it before SciPy is imported
os.environ.setdefault("SCIPY_ARRAY_API", "1")
import platform
import statistics
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge, SGDRegressor
from sklearn.metrics import r2_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from threadpoolctl import threadpool_limits  # a scikit-learn dependency

from sklearn_gd import GDRegressor, MLPBackpropClassifier, show_versions

try:
    import torch
except ImportError:  # the PyTorch column is optional
    torch = None

warnings.simplefilter("ignore", ConvergenceWarning)

CONFIGS = {
    "large float64": dict(n=50_000, d=100, hidden=(256, 256), batch=256, dtype=np.float64),
    "large float32": dict(n=50_000, d=100, hidden=(256, 256), batch=256, dtype=np.float32),
    "small float64": dict(n=20_000, d=50, hidden=(100,), batch=200, dtype=np.float64),
    "small float32": dict(n=20_000, d=50, hidden=(100,), batch=200, dtype=np.float32),
}
N_CLASSES = 10
#: A round is *quiet* for a contender when the machine's second core delivered
#: while it ran: in the phase probes taken just before and just after it, a
#: 512 x 512 float32 product ran at least this many times faster on two BLAS
#: threads than on one (this 2-core machine: 1.9x-2.0x in its quiet phases;
#: 1.35x-1.6x in its slow ones, where the floor takes 1.7x as long).
QUIET_SPEEDUP = 1.75


def make_data(n, d, dtype, seed=0):
    """A learnable 10-class problem: labels from a random two-layer teacher."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + n // 4, d)).astype(dtype)
    teacher = np.tanh(X @ rng.normal(size=(d, 32))) @ rng.normal(size=(32, N_CLASSES))
    y = teacher.argmax(axis=1)
    return X[:n], y[:n], X[n:], y[n:]


def floor_epoch(n, d, hidden, batch, dtype):
    """A function running one epoch of the network's matrix products only.

    An epoch has ``n // batch`` full batches and, when ``batch`` does not
    divide ``n``, a last one of the remaining rows, as every contender's.
    """
    sizes = [d, *hidden, N_CLASSES]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(batch, d)).astype(dtype)
    Ws = [rng.normal(size=(a, b)).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
    acts = [np.empty((batch, s), dtype) for s in sizes[1:]]
    grads = [np.empty_like(W) for W in Ws]
    deltas = [rng.normal(size=(batch, s)).astype(dtype) for s in sizes[1:]]
    batch_rows = [batch] * (n // batch) + ([n % batch] if n % batch else [])

    def products(m):
        # row slices of C-ordered buffers: C-contiguous, as np.dot's out needs
        A = X[:m]
        for W, out in zip(Ws, acts):
            np.dot(A, W, out=out[:m])
            A = out[:m]
        for layer in range(len(Ws) - 1, -1, -1):
            A_in = X[:m] if layer == 0 else acts[layer - 1][:m]
            np.dot(A_in.T, deltas[layer][:m], out=grads[layer])
            if layer:
                np.dot(deltas[layer][:m], Ws[layer].T, out=deltas[layer - 1][:m])

    def epoch():
        for m in batch_rows:
            products(m)

    return epoch


def phase_probe(repeats=3):
    """A function returning how many times faster a 512 x 512 float32 product
    runs on two BLAS threads than on one (the best of ``repeats`` each, ~12 ms
    in all): about 2 when both cores deliver, less in a slow phase."""
    A = np.random.default_rng(0).normal(size=(512, 512)).astype(np.float32)
    out = np.empty_like(A)

    def best_time():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            np.dot(A, A, out=out)
            times.append(time.perf_counter() - start)
        return min(times)

    def speedup():
        with threadpool_limits(2, user_api="blas"):
            two = best_time()
        with threadpool_limits(1, user_api="blas"):
            one = best_time()
        return one / two

    return speedup


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_memory(fn):
    """Peak Python-tracked allocation (NumPy buffers included) while running ``fn``."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def torch_trainer(X, y, hidden, batch, epochs, dtype, seed, device="cpu"):
    """A plain PyTorch training loop; returns ``fit() -> accuracy(X_test, y_test)``.

    On ``device``, with the data moved there before the clock starts, and
    waiting for the device at the end of ``fit``.
    """
    torch.manual_seed(seed)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    layers, width = [], X.shape[1]
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    layers.append(torch.nn.Linear(width, N_CLASSES))
    model = torch.nn.Sequential(*layers).to(device=device, dtype=tdtype)
    Xt, yt = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=0.0)
    loss_fn = torch.nn.CrossEntropyLoss()

    def accuracy(X_test, y_test):
        with torch.no_grad():
            predicted = model(torch.from_numpy(X_test).to(device)).argmax(1).cpu().numpy()
        return float((predicted == y_test).mean())

    def fit():
        for _ in range(epochs):
            perm = torch.randperm(Xt.shape[0], device=device)
            for start in range(0, Xt.shape[0], batch):
                idx = perm[start : start + batch]
                optimizer.zero_grad()
                loss = loss_fn(model(Xt[idx]), yt[idx])
                loss.backward()
                optimizer.step()
        synchronize(device)
        return accuracy

    return fit


def synchronize(device):
    """Wait for the work queued on a GPU (timings would otherwise stop early)."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    elif str(device).startswith("mps"):
        torch.mps.synchronize()


def device_contenders(X, y, cfg, epochs, seed, device):
    """Our classifier on torch tensors on ``device``, the PyTorch loop there, and our
    NumPy path on the CPU, each as ``fit() -> accuracy(X_test, y_test)``."""
    import sklearn

    common = dict(hidden_layer_sizes=cfg["hidden"], batch_size=cfg["batch"], max_iter=epochs,
                  tol=0.0, n_iter_no_change=10**6, random_state=seed, solver="adam")

    def on_device():
        Xt, yt = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
        synchronize(device)

        def fit():
            with sklearn.config_context(array_api_dispatch=True):
                model = MLPBackpropClassifier(**common).fit(Xt, yt)
            synchronize(device)

            def accuracy(X_test, y_test):
                with sklearn.config_context(array_api_dispatch=True):
                    predicted = model.predict(torch.from_numpy(X_test).to(device))
                return float((predicted.cpu().numpy() == y_test).mean())

            return accuracy

        return fit

    def on_cpu():
        return MLPBackpropClassifier(**common).fit(X, y).score

    return {f"sklearn-gd (torch {device})": on_device(),
            f"PyTorch loop ({device})": torch_trainer(X, y, cfg["hidden"], cfg["batch"], epochs,
                                                      cfg["dtype"], seed, device),
            "sklearn-gd (NumPy, CPU)": on_cpu}


def ratio_text(ratio):
    """A ratio with two decimals, or two significant digits below 0.1.

    One stalled run of another contender (a busy machine) can make a ratio
    far below 0.01, which two decimals would print as a zero.
    """
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"


def bench_device(name, cfg, epochs, repeats, device):
    """Time per epoch of the :func:`device_contenders`, round robin, one seed per round.

    Reports the median time per epoch, the ratio to the PyTorch loop on the
    device and how many times faster than our CPU path it is; accuracy is the
    mean over the seeds. One untimed round runs first, so that one-time costs
    (a device's context, PyTorch's lazy initialisation of autograd and its
    optimizers, the first BLAS call) fall outside every contender's times.
    """
    X, y, X_test, y_test = make_data(cfg["n"], cfg["d"], cfg["dtype"])
    for fit in device_contenders(X, y, cfg, epochs, 0, device).values():
        fit()
    times, accuracies = {}, {}
    for seed in range(repeats):
        for label, fit in device_contenders(X, y, cfg, epochs, seed, device).items():
            start = time.perf_counter()
            score = fit()
            times.setdefault(label, []).append((time.perf_counter() - start) / epochs)
            accuracies.setdefault(label, []).append(score(X_test, y_test))
    ours, loop, cpu = times
    print(f"\n## {name} on {device}: {cfg['n']} x {cfg['d']}, hidden {cfg['hidden']}, batch "
          f"{cfg['batch']}, adam, {epochs} epochs, {repeats} rounds (seeds 0-{repeats - 1})")
    print("| contender | ms/epoch | x PyTorch loop | CPU path / this | mean test accuracy |")
    print("|---|---|---|---|---|")
    for label in times:
        median = statistics.median(times[label])
        print(f"| {label} | {median * 1e3:.1f} | "
              f"{ratio_text(median / statistics.median(times[loop]))} | "
              f"{statistics.median(times[cpu]) / median:.3g} | "
              f"{statistics.mean(accuracies[label]):.4f} |")


def classifier_contenders(X, y, cfg, epochs, seed):
    """Each contender as ``fit() -> accuracy(X_test, y_test)``, for one seed."""
    common = dict(hidden_layer_sizes=cfg["hidden"], batch_size=cfg["batch"], max_iter=epochs,
                  tol=0.0, n_iter_no_change=10**6, random_state=seed, solver="adam")

    def sklearn_fit(cls):
        def fit():
            return cls(**common).fit(X, y).score
        return fit

    contenders = {"sklearn-gd": sklearn_fit(MLPBackpropClassifier),
                  "MLPClassifier": sklearn_fit(MLPClassifier)}
    if torch is not None:
        contenders["PyTorch loop"] = torch_trainer(X, y, cfg["hidden"], cfg["batch"], epochs,
                                                   cfg["dtype"], seed)
    return contenders


def bench_classifier(name, cfg, epochs, repeats):
    """Round robin over the contenders with the floor run between them, one seed per round.

    Each contender runs between two runs of the floor, and its ratio to the
    floor in a round is its time over the mean of those two: paired
    measurements seconds apart, which this shared machine's slow phases
    (lasting many seconds) move far less than they move times. The table
    reports the median time, the median ratio and its range over the rounds.
    The slow phases also change the ratios themselves (memory-bound work slows
    more than the products), so the median ratio is also given over the
    *quiet* rounds alone: those in which the phase probes taken with the
    floors before and after the contender both measured two BLAS threads at
    least ``QUIET_SPEEDUP`` times faster than one. Accuracy is the mean over
    the seeds.
    """
    X, y, X_test, y_test = make_data(cfg["n"], cfg["d"], cfg["dtype"])
    if torch is not None:
        torch.set_num_threads(os.cpu_count())
    floor = floor_epoch(cfg["n"], cfg["d"], cfg["hidden"], cfg["batch"], cfg["dtype"])
    probe = phase_probe()
    floors, speedups, times, floors_around, quiet, accuracies = [], [], {}, {}, {}, {}

    def time_floor():
        speedups.append(probe())
        start = time.perf_counter()
        floor()
        floors.append(time.perf_counter() - start)

    for seed in range(repeats):
        time_floor()
        for label, fit in classifier_contenders(X, y, cfg, epochs, seed).items():
            start = time.perf_counter()
            score = fit()
            times.setdefault(label, []).append((time.perf_counter() - start) / epochs)
            time_floor()
            floors_around.setdefault(label, []).append((floors[-2], floors[-1]))
            quiet.setdefault(label, []).append(min(speedups[-2:]) >= QUIET_SPEEDUP)
            accuracies.setdefault(label, []).append(score(X_test, y_test))

    def to_floor(label, quiet_only=False):
        return [t / ((before + after) / 2)
                for t, (before, after), calm in zip(times[label], floors_around[label], quiet[label])
                if calm or not quiet_only]

    def median_and_range(ratios):
        return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"

    def quiet_median(label):
        ratios = to_floor(label, quiet_only=True)
        return f"{statistics.median(ratios):.2f} ({len(ratios)})" if ratios else "-"

    def to_ours(label):
        return statistics.median(a / b for a, b in zip(times[label], times["sklearn-gd"]))

    print(f"\n## {name}: {cfg['n']} x {cfg['d']}, hidden {cfg['hidden']}, batch {cfg['batch']}, "
          f"adam, {epochs} epochs, {repeats} rounds (seeds 0-{repeats - 1})")
    print(f"floor (matrix products only): {statistics.median(floors) * 1e3:.1f} ms/epoch "
          f"(fastest {min(floors) * 1e3:.1f}); phase probe, two BLAS threads over one: "
          f"{min(speedups):.2f}-{max(speedups):.2f}x (quiet: {QUIET_SPEEDUP:.2f}x or more)")
    print("| contender | ms/epoch | x floor (range over rounds) | x floor, quiet rounds (how many) | "
          "x sklearn-gd | mean test accuracy | peak MiB |")
    print("|---|---|---|---|---|---|---|")
    for label, fit in classifier_contenders(X, y, cfg, epochs, 0).items():
        # torch's allocator is invisible to tracemalloc
        memory = "n/a" if label == "PyTorch loop" else f"{peak_memory(fit) / 2**20:.1f}"
        print(f"| {label} | {statistics.median(times[label]) * 1e3:.1f} | "
              f"{median_and_range(to_floor(label))} | {quiet_median(label)} | "
              f"{ratio_text(to_ours(label))} | {statistics.mean(accuracies[label]):.4f} | {memory} |")


def bench_linear_regression(repeats, n=200_000, d=100):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + rng.normal(scale=0.5, size=n)
    ridge_start = time.perf_counter()
    target = r2_score(y, Ridge(alpha=1.0).fit(X, y).predict(X))
    ridge_time = time.perf_counter() - ridge_start

    def time_to_target(make, max_epochs=50):
        model, start = make(), time.perf_counter()
        for epoch in range(1, max_epochs + 1):
            model.partial_fit(X, y)
            if r2_score(y, model.predict(X)) >= target - 1e-3:
                return time.perf_counter() - start, epoch
        return float("inf"), max_epochs

    batch = 1000
    contenders = {
        "sklearn-gd GDRegressor(adam, batch 1000)": lambda: GDRegressor(
            batch_size=batch, learning_rate_init=0.05, alpha=1.0, random_state=0),
        # the same objective: MLPRegressor scales its penalty by 1 / batch size
        "MLPRegressor(hidden_layer_sizes=(), adam, batch 1000)": lambda: MLPRegressor(
            hidden_layer_sizes=(), batch_size=batch, learning_rate_init=0.05,
            alpha=1.0 * batch / n, random_state=0),
        "SGDRegressor": lambda: SGDRegressor(alpha=1.0 / n, random_state=0),
    }
    print(f"\n## linear regression: {n} x {d}, time to an R² within 1e-3 of Ridge's ({target:.5f})")
    print("| contender | seconds | epochs |")
    print("|---|---|---|")
    print(f"| Ridge (closed form) | {ridge_time:.3f} | - |")
    for label, make in contenders.items():
        results = [time_to_target(make) for _ in range(repeats)]
        seconds = statistics.median(r[0] for r in results)
        print(f"| {label} | {seconds:.3f} | {results[0][1]} |")


def bench_prediction(repeats):
    X, y, X_test, _ = make_data(20_000, 50, np.float64)
    kwargs = dict(hidden_layer_sizes=(100,), max_iter=2, random_state=0)
    ours = MLPBackpropClassifier(**kwargs).fit(X, y)
    theirs = MLPClassifier(**kwargs).fit(X, y)
    rows = np.random.default_rng(1).normal(size=(100_000, 50))
    one = rows[:1]
    print("\n## prediction: predict_proba, hidden (100,), 50 features")
    print("| contender | rows/s (100,000 rows) | single-row latency (µs) |")
    print("|---|---|---|")
    models = {"sklearn-gd": ours, "MLPClassifier": theirs}
    bulk = {label: [] for label in models}
    single = {label: [] for label in models}
    for _ in range(max(repeats, 7)):  # round robin, as for training
        for label, model in models.items():
            bulk[label].append(median_time(lambda: model.predict_proba(rows), 1))
            single[label].append(
                median_time(lambda: [model.predict_proba(one) for _ in range(200)], 1) / 200
            )
    for label in models:
        print(f"| {label} | {100_000 / statistics.median(bulk[label]):,.0f} | "
              f"{statistics.median(single[label]) * 1e6:.1f} |")


def print_machine():
    print("# sklearn-gd benchmarks")
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
          f"{platform.system()} {platform.release()}")
    show_versions()  # versions, BLAS library and threads, compiled or NumPy kernels
    print(f"torch: {torch.__version__}" if torch else "torch: not installed (column skipped)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and repeats")
    parser.add_argument("--only", choices=["classifier", "linear", "prediction"], default=None)
    parser.add_argument("--config", choices=list(CONFIGS), action="append")
    parser.add_argument("--device", default=None,
                        help="train on torch tensors on this device (cuda, mps, cpu) against "
                        "a PyTorch loop there, instead of the CPU tables")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else 7
    print_machine()
    if args.device is not None:
        if torch is None:
            parser.error("--device needs PyTorch")
        for name in args.config or CONFIGS:
            epochs = 1 if args.quick else (3 if "large" in name else 5)
            bench_device(name, CONFIGS[name], epochs, 2 if args.quick else 3, args.device)
        return
    if args.only in (None, "classifier"):
        for name in args.config or CONFIGS:
            epochs = 1 if args.quick else (3 if "large" in name else 5)
            bench_classifier(name, CONFIGS[name], epochs, repeats)
    if args.only in (None, "linear"):
        bench_linear_regression(repeats=1 if args.quick else 3)
    if args.only in (None, "prediction"):
        bench_prediction(repeats)


if __name__ == "__main__":
    main()
