"""Demo: ``python -m sklearn_gd``.

Trains :class:`MLPBackpropClassifier` on scikit-learn's bundled digits data,
showing per-epoch progress, and compares test accuracy and fit time with
scikit-learn's ``MLPClassifier`` on the same split and architecture.
"""

import argparse
import sys
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from sklearn_gd import MLPBackpropClassifier

PARAMS = dict(hidden_layer_sizes=(64,), batch_size=64, learning_rate_init=1e-3,
              max_iter=40, random_state=0)


def _timed_fit(estimator, X, y):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    return time.perf_counter() - start


def main(argv=None):
    argparse.ArgumentParser(
        prog="python -m sklearn_gd",
        description="Train MLPBackpropClassifier on scikit-learn's digits data, printing "
        "each epoch, and compare test accuracy and fit time with MLPClassifier's.",
    ).parse_args(argv)
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    print(f"digits: {X_train.shape[0]} training and {X_test.shape[0]} test images, "
          f"{X.shape[1]} features, 10 classes")
    print(f"MLPBackpropClassifier({', '.join(f'{k}={v!r}' for k, v in PARAMS.items())}):")
    ours = MLPBackpropClassifier(verbose=True, **PARAMS)
    ours_time = _timed_fit(ours, X_train, y_train)
    theirs = MLPClassifier(**PARAMS)
    theirs_time = _timed_fit(theirs, X_train, y_train)
    print()
    print(f"{'model':<24}{'test accuracy':>15}{'fit time (s)':>15}{'epochs':>8}")
    for name, model, seconds in [("MLPBackpropClassifier", ours, ours_time),
                                 ("MLPClassifier", theirs, theirs_time)]:
        print(f"{name:<24}{model.score(X_test, y_test):>15.4f}{seconds:>15.3f}{model.n_iter_:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
