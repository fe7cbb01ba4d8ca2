"""The real-data benchmark's harness: runs, resumes from its results files, and
tabulates (on scikit-learn's own small sets; the benchmark's packages are optional)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "bench_real_data.py"

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def bench(tmp_path, monkeypatch):
    path = list(sys.path)
    spec = importlib.util.spec_from_file_location("bench_real_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.path[:] = path

    def small(load, n):
        def loader():
            X, y = load(return_X_y=True)
            return X[:n], y[:n]
        return loader

    monkeypatch.setattr(module, "DATASETS", {
        "cancer": (small(load_breast_cancer, 200), "classification"),
        "diabetes": (small(load_diabetes, 150), "regression"),
    })
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    return module


def test_every_run_is_saved_and_a_second_run_resumes(bench, tmp_path):
    contenders = ["HistGradientBoosting", "recipe - label smoothing", "recipe - early stopping"]
    logged = []
    bench.run(contenders, ["cancer", "diabetes"], seeds=(0, 1), log=logged.append)
    hgb = json.loads((tmp_path / "HistGradientBoosting.json").read_text())
    assert sorted(hgb) == ["cancer/0", "cancer/1", "diabetes/0", "diabetes/1"]
    assert all(r["cpu_s"] >= 0 and -1 < r["score"] <= 1 for r in hgb.values())
    # label smoothing is a classifier's: its ablation has no regression run
    smoothing = json.loads((tmp_path / "recipe_-_label_smoothing.json").read_text())
    assert sorted(smoothing) == ["cancer/0", "cancer/1"]
    assert len(logged) == 4 + 2 + 4

    def refit(*args):
        raise AssertionError("a saved run was fitted again")

    bench.run_one = refit
    bench.run(contenders, ["cancer", "diabetes"], seeds=(0, 1))


def test_table_has_a_column_per_set_and_means_where_a_row_is_complete(bench):
    bench.run(["HistGradientBoosting"], ["cancer", "diabetes"], seeds=(0,))
    bench.run(["recipe"], ["cancer"], seeds=(0,))
    table = bench.summary(["HistGradientBoosting", "recipe", "RealMLP-TD"],
                          ["cancer", "diabetes"], seeds=(0,))
    assert set(table["recipe"]) == {"cancer"} and table["RealMLP-TD"] == {}
    text = bench.format_table(table, ["cancer", "diabetes"])
    rows = {line.split("|")[1].strip(): line for line in text.splitlines()[2:]}
    assert set(rows) == {"HistGradientBoosting", "recipe"}
    score, cpu = table["HistGradientBoosting"]["cancer"]
    assert f"{score:.4f} ({cpu:.1f})" in rows["HistGradientBoosting"]
    # means over complete groups only: the recipe has no regression run
    hgb_cells = [c.strip() for c in rows["HistGradientBoosting"].strip("|").split("|")]
    recipe_cells = [c.strip() for c in rows["recipe"].strip("|").split("|")]
    assert hgb_cells[-3] == f"{score:.4f}" and hgb_cells[-2] != ""
    assert recipe_cells[-3] != "" and recipe_cells[-2:] == ["", ""]


def test_mixed_tables_go_to_the_contenders_that_take_them_and_binary_ones_score_roc_auc(
        bench, tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    city = rng.choice(["Paris", "Lyon", "Nice"], 300)
    amount = rng.normal(size=300)
    amount[::7] = np.nan
    X = pd.DataFrame({"city": city, "amount": amount})
    y = np.where((city == "Paris") ^ (rng.random(300) < 0.2), "yes", "no")
    monkeypatch.setitem(bench.DATASETS, "table", (lambda: (X, y), "classification"))
    monkeypatch.setattr(bench, "MIXED_TABLES", {"table": bench.DATASETS["table"]})
    monkeypatch.setattr(bench, "ROC_AUC", {"table"})
    bench.run(["HistGradientBoosting", "MLPClassifier/Regressor"], ["table"], seeds=(0,))
    assert not bench._results_file("MLPClassifier/Regressor").exists()  # takes numbers only
    assert bench._applies("recipe", "table") and bench._applies("ours, defaults, raw table",
                                                                "table")
    result = json.loads((tmp_path / "HistGradientBoosting.json").read_text())["table/0"]
    X_tr, X_te, y_tr, y_te = bench.split("table", 0)
    model = bench.CONTENDERS["HistGradientBoosting"]("classification", 0).fit(X_tr, y_tr)
    assert result["score"] == roc_auc_score(y_te == "yes", model.predict_proba(X_te)[:, 1])
    assert result["score"] > 0.7  # the city decides, through the native categories
    text = bench.format_table(bench.summary(["HistGradientBoosting"], ["table"], seeds=(0,)),
                              ["table"])
    assert "mean ROC AUC" in text.splitlines()[0]
