"""scikit-learn's callback API (``sklearn.callback``, scikit-learn >= 1.9)."""

import warnings

import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from sklearn_gd import MLPBackpropClassifier

callback = pytest.importorskip("sklearn.callback", reason="scikit-learn < 1.9")
X, y = make_classification(n_samples=120, n_features=5, n_informative=3, random_state=0)
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


class StopAfter:
    """A callback asking to stop after ``n`` epochs."""

    def __init__(self, n):
        self.n, self.ends = n, 0

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context):
        if context.task_name != "epoch":
            return False
        self.ends += 1
        return self.ends >= self.n


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_callback_can_stop_training_cleanly(solver):
    est = MLPBackpropClassifier(hidden_layer_sizes=(4,), solver=solver, max_iter=100, tol=0,
                                n_iter_no_change=1000, random_state=0)
    est.set_callbacks(StopAfter(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
    assert est.n_iter_ == 3 == len(est.loss_curve_)
    assert est.predict(X).shape == y.shape


def test_scoring_monitor_logs_a_score_per_epoch():
    monitor = callback.ScoringMonitor(scoring="accuracy")
    est = MLPBackpropClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    est.set_callbacks(monitor).fit(X, y)
    rows = [row for row in monitor.get_logs().data if "accuracy" in row]
    epoch_rows = [row for row in rows if len(row["task_id_path"]) == 2]
    assert len(epoch_rows) == 5
    assert all(0 <= row["accuracy"] <= 1 for row in epoch_rows)


def test_progress_bar_alone_and_nested_in_grid_search(capsys):
    pytest.importorskip("rich")
    est = MLPBackpropClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    est.set_callbacks(callback.ProgressBar()).fit(X, y)
    search = GridSearchCV(MLPBackpropClassifier(hidden_layer_sizes=(4,), max_iter=3),
                          {"alpha": [1e-4, 1e-2]}, cv=2)
    search.set_callbacks(callback.ProgressBar(max_propagation_depth=None)).fit(X, y)
    assert len(search.cv_results_["params"]) == 2
    assert "MLPBackpropClassifier" in capsys.readouterr().out


def test_without_callbacks_nothing_is_left_on_the_estimator():
    est = MLPBackpropClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)
    assert not [k for k in vars(est) if k.startswith(("_callback", "_skl_callbacks"))]
