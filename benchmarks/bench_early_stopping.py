"""What early stopping should monitor: the validation score or the validation loss.

On data sets that ship with scikit-learn, each estimator trains with
``early_stopping=True`` at its defaults (a 10% split, ``n_iter_no_change=10``)
and ``scoring=None`` (accuracy / R²) or ``scoring="loss"``, behind a
``StandardScaler``, over several train/test splits; the script prints the mean
test score and the mean number of epochs of each, and MLPClassifier's /
MLPRegressor's (which monitor the score) beside them.

Run ``python benchmarks/bench_early_stopping.py`` (``--quick``: 2 splits).
"""

import argparse
import statistics
import warnings

from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_gd import GDRegressor, MLPBackpropClassifier

DATASETS = {
    "breast cancer (569 x 30)": (load_breast_cancer, "classification"),
    "digits (1797 x 64)": (load_digits, "classification"),
    "wine (178 x 13)": (load_wine, "classification"),
    "iris (150 x 4)": (load_iris, "classification"),
    "diabetes (442 x 10, R²)": (load_diabetes, "regression"),
}


def contenders(task, seed):
    """``{label: estimator}`` for one task and seed."""
    common = dict(early_stopping=True, random_state=seed, max_iter=500)
    if task == "classification":
        return {
            "ours, scoring=None": MLPBackpropClassifier(**common),
            'ours, scoring="loss"': MLPBackpropClassifier(scoring="loss", **common),
            "MLPClassifier": MLPClassifier(**common),
        }
    hidden = dict(hidden_layer_sizes=(100,), **common)
    return {
        "ours, scoring=None": GDRegressor(**hidden),
        'ours, scoring="loss"': GDRegressor(scoring="loss", **hidden),
        "MLPRegressor": MLPRegressor(**common),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 splits instead of 5")
    args = parser.parse_args(argv)
    splits = 2 if args.quick else 5
    warnings.simplefilter("ignore", ConvergenceWarning)
    print(f"mean test score (accuracy, or R²) and epochs over {splits} splits")
    print("| data set | contender | test score | epochs |")
    print("|---|---|---|---|")
    for name, (load, task) in DATASETS.items():
        X, y = load(return_X_y=True)
        results = {}
        for seed in range(splits):
            X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=seed)
            for label, model in contenders(task, seed).items():
                pipe = make_pipeline(StandardScaler(), model).fit(X_tr, y_tr)
                results.setdefault(label, []).append((pipe.score(X_te, y_te), model.n_iter_))
        for label, runs in results.items():
            score = statistics.mean(r[0] for r in runs)
            epochs = statistics.mean(r[1] for r in runs)
            print(f"| {name} | {label} | {score:.4f} | {epochs:.0f} |")


if __name__ == "__main__":
    main()
