"""Where a training epoch's time goes, per batch, in the machine's quiet and slow phases.

Run ``python benchmarks/profile_step.py`` (``--config "large float64"``,
``--rounds 60``). Each round runs bench_training's floor and a one-epoch
``partial_fit`` of sklearn-gd on the configuration, with the phase probe
before and after (a round is quiet when both probes saw two BLAS threads at
least ``QUIET_SPEEDUP`` times faster than one). Inside the fit, every matrix
product (by kind and output shape: ``fwd`` ``A W``, ``wgrad`` ``A^T Delta``,
``dgrad`` ``Delta W^T``, ``bias_sum`` ``1^T Delta``, ``w.w`` the penalty's
sum of squares) and every kernel call is
timed. Per phase, the script prints the median microseconds per batch of each
item and its share of the floor's batch; the timers add about half a
microsecond per call.

``--repeat-kernels`` runs each large kernel twice in a row and times both
calls: the second finds its data in the caches where the first left it, so the
difference is what fetching the data costs the first. (The repeated Adam step
and bias pass change the training; only the times are meant.)
"""

import argparse
import collections
import contextlib
import os
import statistics
import sys
import time
import types

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_training import (  # noqa: E402
    CONFIGS,
    N_CLASSES,
    QUIET_SPEEDUP,
    floor_epoch,
    make_data,
    phase_probe,
)

from sklearn_gd import MLPBackpropClassifier  # noqa: E402
from sklearn_gd._engine import _backend, _kernels, _losses
from sklearn_gd._train import _trainer

#: The kernels timed, as ``_kernels`` functions; the ones a repeat may run twice.
KERNELS = ("adam", "bias_activation", "activation_backward", "narrow_backward", "take_rows")
REPEATABLE = ("adam", "bias_activation", "activation_backward", "narrow_backward")
EPOCH = "epoch"


def product_kind(a, b, result):
    """``fwd``, ``wgrad``, ``dgrad`` or ``bias_sum``, with the result's shape."""
    if result.ndim == 0:
        kind = "w.w"  # the L2 penalty of the epoch's last-batch check
    elif a.ndim == 1:
        kind = "bias_sum"
    elif not b.flags.c_contiguous:
        kind = "dgrad"  # Delta @ W.T
    elif not a.flags.c_contiguous:
        kind = "wgrad"  # A.T @ Delta
    else:
        kind = "fwd"
    return f"{kind} {tuple(result.shape)}"


@contextlib.contextmanager
def timed_calls(totals, repeat_kernels=False):
    """Inside, add each product's and kernel's seconds to ``totals[item]``."""
    clock = time.perf_counter
    patched = []

    def patch(owner, name, replacement):
        patched.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    def timer(label, function, twice):
        def call(*args, **kwargs):
            start = clock()
            result = function(*args, **kwargs)
            if twice:
                second = clock()
                result = function(*args, **kwargs)
                totals[label + ", 2nd call"] += clock() - second
                totals[label + ", 1st call"] += second - start
            else:
                totals[label] += clock() - start
            return result

        return call

    def dot(a, b, out=None):
        start = clock()
        result = np.dot(a, b, out=out)
        totals[product_kind(a, b, result)] += clock() - start
        return result

    timed_numpy = types.SimpleNamespace(**{**vars(np), "dot": dot})
    try:
        for name in KERNELS:
            twice = repeat_kernels and name in REPEATABLE
            patch(_kernels, name, timer(name, getattr(_kernels, name), twice))
        patch(_losses.Loss, "loss_and_delta", timer("loss", _losses.Loss.loss_and_delta, False))
        patch(_trainer, "run_epoch", timer(EPOCH, _trainer.run_epoch, False))
        patch(_backend, "np", timed_numpy)
        yield totals
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)


def profile(cfg, rounds, repeat_kernels=False, seed=0):
    """Per round: phase, floor seconds, fit seconds and ``{item: seconds}``."""
    X, y, _, _ = make_data(cfg["n"], cfg["d"], cfg["dtype"])
    floor = floor_epoch(**cfg)
    probe = phase_probe()
    records = []
    for round_ in range(rounds):
        before = probe()
        start = time.perf_counter()
        floor()
        floor_seconds = time.perf_counter() - start
        clf = MLPBackpropClassifier(
            hidden_layer_sizes=cfg["hidden"], batch_size=cfg["batch"], max_iter=1,
            random_state=seed + round_,
        )
        totals = collections.defaultdict(float)
        with timed_calls(totals, repeat_kernels):
            start = time.perf_counter()
            clf.partial_fit(X, y, classes=np.arange(N_CLASSES))
            fit_seconds = time.perf_counter() - start
        quiet = min(before, probe()) >= QUIET_SPEEDUP
        records.append(dict(quiet=quiet, floor=floor_seconds, fit=fit_seconds, items=totals))
    return records


def report(records, n_batches):
    """Print, per phase, each item's median microseconds per batch and share of the floor."""
    for phase, quiet in (("quiet", True), ("slow", False)):
        rounds = [r for r in records if r["quiet"] == quiet]
        if not rounds:
            continue
        floor = statistics.median(r["floor"] for r in rounds)
        ratio = statistics.median(r["fit"] / r["floor"] for r in rounds)
        print(f"\n## {phase} rounds: {len(rounds)}; floor {floor / n_batches * 1e6:.0f} us per "
              f"batch; the one-epoch fit {ratio:.3f}x the floor (set-up included)")
        print("| item | us per batch | % of the floor |\n|---|---|---|")
        medians = {
            item: statistics.median(r["items"].get(item, 0.0) for r in rounds)
            for item in set().union(*(r["items"] for r in rounds))
        }
        epoch = medians.pop(EPOCH)
        fit = statistics.median(r["fit"] for r in rounds)
        timed = sum(medians.values())
        medians["other, in the epoch (Python, timers)"] = epoch - timed
        medians["outside the epoch (the fit's set-up)"] = fit - epoch
        for item, seconds in sorted(medians.items(), key=lambda kv: -kv[1]):
            print(f"| {item} | {seconds / n_batches * 1e6:.1f} | {100 * seconds / floor:.1f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=list(CONFIGS), default="large float32")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--repeat-kernels", action="store_true",
                        help="run each large kernel twice in a row, timing both calls")
    args = parser.parse_args(argv)
    cfg = CONFIGS[args.config]
    print(f"# {args.config}: {cfg['n']} x {cfg['d']}, hidden {cfg['hidden']}, "
          f"batch {cfg['batch']}, {args.rounds} rounds")
    records = profile(cfg, args.rounds, args.repeat_kernels)
    report(records, n_batches=-(-cfg["n"] // cfg["batch"]))


if __name__ == "__main__":
    main()
