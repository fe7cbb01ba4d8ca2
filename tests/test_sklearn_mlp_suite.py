"""scikit-learn's own MLP tests, run against our estimators: the drop-in contract.

The installed scikit-learn's ``sklearn/neural_network/tests/test_mlp.py`` runs
here with its ``MLPClassifier`` replaced by :class:`MLPBackpropClassifier` and
its ``MLPRegressor`` by ``GDRegressor(hidden_layer_sizes=(100,))`` (the only
default that differs), in its module and in its parametrizations. Every
test that still fails is an expected failure (strict: one that starts
passing fails here, so the list stays true) whose reason is either that it
reaches into scikit-learn's private attributes, or a row of the table of
deliberate differences in ``docs/migrating.md``.
"""

import types

import pytest
import sklearn
from sklearn.utils.fixes import parse_version

from sklearn_gd import GDRegressor, MLPBackpropClassifier

SUITE_VERSION = "1.9"  # the scikit-learn whose test_mlp.py the reasons below describe

pytestmark = [
    pytest.mark.skipif(
        parse_version(sklearn.__version__).base_version.rsplit(".", 1)[0] != SUITE_VERSION,
        reason=f"the expected failures are listed for scikit-learn {SUITE_VERSION}'s test_mlp.py",
    ),
    # scikit-learn's tests train for few iterations, diverge and warm-start on purpose:
    # the warnings they provoke are expected (the tests that check a warning catch it)
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::sklearn_gd.DivergenceWarning"),
    pytest.mark.filterwarnings("ignore:L-BFGS made no iteration:UserWarning"),
]

upstream = pytest.importorskip("sklearn.neural_network.tests.test_mlp")


def MLPRegressor(hidden_layer_sizes=(100,), **params):  # noqa: N802  (the name it stands for)
    return GDRegressor(hidden_layer_sizes=hidden_layer_sizes, **params)


SHIMS = {upstream.MLPClassifier: MLPBackpropClassifier, upstream.MLPRegressor: MLPRegressor}

PRIVATE = "reaches into scikit-learn's private attributes ({})"
EXPECTED_FAILURES = {
    "test_adaptive_learning_rate": PRIVATE.format("_optimizer.learning_rate"),
    "test_learning_rate_warmstart": PRIVATE.format("_optimizer.learning_rate"),
    "test_gradient": PRIVATE.format("_loss_grad_lbfgs"),
    "test_n_iter_no_change": PRIVATE.format("_no_improvement_count"),
    "test_n_iter_no_change_inf": PRIVATE.format("_no_improvement_count"),
    "test_fit": PRIVATE.format("_coef_grads, _intercept_grads, assigning coefs_: see the "
                               "migration table's coefs_ row"),
    "test_mlp_diverging_loss": "migration table, divergence: stops and keeps the last finite "
                               "weights (no NaN validation score)",
    "test_nonfinite_params": "migration table, divergence: a DivergenceWarning and the last "
                             "finite weights, not a ValueError",
    "test_warm_start": "migration table, warm_start fit whose y lacks some of classes_: trains "
                       "on, as partial_fit does",
    "test_early_stopping_stratified": "migration table, impossible early-stopping split (a "
                                      "class with one member): names the class by its label "
                                      "(1), not by its encoding ('True')",
    "test_early_stopping": "migration table, best_loss_ with early stopping: the validation "
                           "loss at the best epoch, not None",
    "test_mlp_warm_start_no_convergence": "migration table, n_iter_ after a warm-started fit: "
                                          "every epoch since initialisation",
    "test_warm_start_full_iteration": "migration table, n_iter_ after a warm-started fit: every "
                                      "epoch since initialisation",
    "test_mlp_partial_fit_after_fit": "migration table, partial_fit with early_stopping=True: "
                                      "trains on the rows given, no ValueError",
}

#: Expected failures for some parametrizations only: test name -> {estimator: reason}.
EXPECTED_FAILURES_OF = {
    "test_preserve_feature_names": {
        MLPBackpropClassifier: "migration table, a y of one class: a ValueError, not a model "
                               "that predicts it",
    },
}


@pytest.fixture(autouse=True)
def _our_estimators(monkeypatch):
    """The module's own references to the estimators, for the test bodies."""
    monkeypatch.setattr(upstream, "MLPClassifier", SHIMS[upstream.MLPClassifier])
    monkeypatch.setattr(upstream, "MLPRegressor", MLPRegressor)


@pytest.fixture
def global_random_seed():
    """scikit-learn's conftest fixture, at its default seed."""
    return 42


def _ours(value):
    """``value`` with scikit-learn's estimators replaced by ours (in tuples and params too)."""
    if isinstance(value, type) and value in SHIMS:  # classes only: arrays are unhashable
        return SHIMS[value]
    if isinstance(value, tuple):
        return tuple(_ours(v) for v in value)
    if isinstance(value, list):
        return [_ours(v) for v in value]
    if type(value).__name__ == "ParameterSet":  # pytest.param(...)
        return pytest.param(*_ours(value.values), marks=value.marks, id=value.id)
    return value


def _expected_failure(name, value):
    """``value``, marked as an expected failure when :data:`EXPECTED_FAILURES_OF` lists it."""
    reasons = EXPECTED_FAILURES_OF.get(name, {})
    reason = reasons.get(value) if isinstance(value, type) else None
    if reason is None:
        return value
    return pytest.param(value, marks=pytest.mark.xfail(reason=reason, strict=True))


def _adopted(test):
    """A copy of an upstream test whose parametrizations pass our estimators."""
    copy = types.FunctionType(test.__code__, test.__globals__, test.__name__,
                              test.__defaults__, test.__closure__)
    marks = []
    for mark in getattr(test, "pytestmark", []):
        if mark.name == "parametrize":
            names, values = mark.args[:2]
            values = [_expected_failure(test.__name__, _ours(v)) for v in values]
            mark = pytest.mark.parametrize(names, values, **mark.kwargs).mark
        marks.append(mark)
    if test.__name__ in EXPECTED_FAILURES:
        marks.append(pytest.mark.xfail(reason=EXPECTED_FAILURES[test.__name__],
                                       strict=True).mark)
    copy.pytestmark = marks
    return copy


for _name in dir(upstream):
    if _name.startswith("test_") and callable(getattr(upstream, _name)):
        globals()[_name] = _adopted(getattr(upstream, _name))


def test_each_expected_failure_names_a_private_attribute_or_a_row_of_the_migration_table():
    from pathlib import Path

    table = (Path(__file__).parent.parent / "docs" / "migrating.md").read_text(encoding="utf-8")
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")]
    reasons = list(EXPECTED_FAILURES.values())
    reasons += [r for per_estimator in EXPECTED_FAILURES_OF.values() for r in per_estimator.values()]
    for reason in reasons:
        if reason.startswith("reaches into scikit-learn's private attributes"):
            continue
        assert reason.startswith("migration table, "), reason
        row = reason.removeprefix("migration table, ").split(":")[0]
        assert any(row == cell.replace("`", "") for cell in rows), (row, rows)
