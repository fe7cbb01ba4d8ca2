"""Behaviour of the estimators: counters, paths through fit, inputs and outputs."""

import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.preprocessing import StandardScaler

from sklearn_gd import GDRegressor, MLPBackpropClassifier
from sklearn_gd._engine._activations import ACTIVATIONS
from sklearn_gd._engine._losses import REGRESSION_LOSSES
from sklearn_gd._optim._optimizers import SOLVERS
from sklearn_gd._optim._schedules import SCHEDULES
from sklearn_gd._train._trainer import DivergenceWarning


@pytest.fixture(scope="module")
def clf_data():
    X, y = make_classification(n_samples=120, n_features=6, n_informative=4,
                               n_classes=3, random_state=0)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def reg_data():
    X, y = make_regression(n_samples=100, n_features=4, noise=1.0, random_state=0)
    return X, y / 50


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


# ---------------------------------------------------------------- architecture
def test_hidden_layer_sizes_accepts_int_and_tuple(clf_data):
    X, y = clf_data
    a = quiet(MLPBackpropClassifier(hidden_layer_sizes=7, max_iter=2).fit, X, y)
    b = quiet(MLPBackpropClassifier(hidden_layer_sizes=(7, 5), max_iter=2).fit, X, y)
    assert [W.shape for W in a.coefs_] == [(6, 7), (7, 3)]
    assert [W.shape for W in b.coefs_] == [(6, 7), (7, 5), (5, 3)]
    assert b.n_layers_ == 4 and b.n_outputs_ == 3 and b.out_activation_ == "softmax"


def test_coefs_are_views_of_the_current_weights_after_pickling(reg_data):
    X, y = reg_data
    reg = quiet(GDRegressor(hidden_layer_sizes=(3,), max_iter=3, random_state=0).fit, X, y)
    loaded = pickle.loads(pickle.dumps(reg))
    for a, b in zip(loaded.coefs_ + loaded.intercepts_, reg.coefs_ + reg.intercepts_):
        np.testing.assert_array_equal(a, b)
    before = [W.copy() for W in loaded.coefs_]
    loaded.partial_fit(X, y)
    assert not np.allclose(before[0], loaded.coefs_[0])
    np.testing.assert_array_equal(loaded.predict(X[:3]), loaded.predict(X[:3]))
    assert np.shares_memory(loaded.coefs_[0], loaded._theta)


# ---------------------------------------------------------------- counters
def test_counters_after_fit_and_partial_fit(reg_data):
    X, y = reg_data
    reg = GDRegressor(max_iter=7, tol=0.0, n_iter_no_change=np.inf, random_state=0)
    quiet(reg.fit, X, y)
    assert reg.n_iter_ == 7 and len(reg.loss_curve_) == 7 and reg.t_ == 7 * len(X)
    reg.partial_fit(X[:30], y[:30])
    assert reg.n_iter_ == 8 and len(reg.loss_curve_) == 8 and reg.t_ == 7 * len(X) + 30
    fresh = GDRegressor(random_state=0)
    for _ in range(3):
        fresh.partial_fit(X, y)
    assert fresh.n_iter_ == 3 and len(fresh.loss_curve_) == 3 and fresh.t_ == 3 * len(X)


def test_loss_is_the_last_epochs_objective(reg_data, clf_data):
    """``loss_`` as MLPClassifier has it: the last epoch's training objective."""
    X, y = reg_data
    reg = GDRegressor(max_iter=3, random_state=0)
    assert not hasattr(reg, "loss_")
    quiet(reg.fit, X, y)
    assert reg.loss_ == reg.loss_curve_[-1] and len(reg.loss_curve_) == 3
    reg.partial_fit(X[:30], y[:30])
    assert reg.loss_ == reg.loss_curve_[-1] and len(reg.loss_curve_) == 4
    Xc, yc = clf_data
    clf = quiet(MLPBackpropClassifier(solver="lbfgs", max_iter=4, random_state=0).fit, Xc, yc)
    assert clf.loss_ == clf.loss_curve_[-1]
    blown = GDRegressor(solver="sgd", learning_rate_init=1e300, max_iter=2, random_state=0)
    with pytest.warns(DivergenceWarning):
        blown.fit(X, y)
    assert blown.loss_curve_ == [] and blown.loss_ is None


def test_lbfgs_counts_iterations_as_epochs(reg_data):
    X, y = reg_data
    reg = GDRegressor(solver="lbfgs").fit(X, y)
    assert reg.n_iter_ == len(reg.loss_curve_) > 0
    assert reg.t_ == reg.n_iter_ * len(X)
    assert not hasattr(reg, "partial_fit")
    with pytest.raises(AttributeError, match="partial_fit"):
        reg.partial_fit(X, y)


def test_warm_start_continues_and_accumulates(reg_data):
    X, y = reg_data
    reg = GDRegressor(warm_start=True, max_iter=5, tol=0.0, n_iter_no_change=np.inf,
                      learning_rate_init=0.01, random_state=0)
    quiet(reg.fit, X, y)
    first_curve = list(reg.loss_curve_)
    quiet(reg.fit, X, y)
    assert reg.n_iter_ == 10 and len(reg.loss_curve_) == 10
    assert reg.loss_curve_[:5] == first_curve
    assert reg.loss_curve_[5] < first_curve[0]
    cold = quiet(GDRegressor(max_iter=5, random_state=0).fit, X, y)
    assert cold.n_iter_ <= 5


def test_fit_equals_the_same_epochs_through_partial_fit(clf_data):
    X, y = clf_data
    params = dict(hidden_layer_sizes=(5,), batch_size=16, dropout=0.1, max_iter=4,
                  tol=0.0, n_iter_no_change=np.inf, random_state=3)
    fitted = quiet(MLPBackpropClassifier(**params).fit, X, y)
    streamed = MLPBackpropClassifier(**params)
    for _ in range(4):
        streamed.partial_fit(X, y, classes=np.unique(y))
    np.testing.assert_array_equal(fitted._theta, streamed._theta)
    assert fitted.loss_curve_ == streamed.loss_curve_


def test_same_random_state_gives_bit_identical_weights(clf_data):
    X, y = clf_data
    params = dict(hidden_layer_sizes=(8,), batch_size=10, dropout=0.2, input_noise=0.1,
                  early_stopping=True, max_iter=5, random_state=11)
    a = quiet(MLPBackpropClassifier(**params).fit, X, y)
    b = quiet(MLPBackpropClassifier(**params).fit, X, y)
    np.testing.assert_array_equal(a._theta, b._theta)
    c = quiet(MLPBackpropClassifier(**{**params, "random_state": 12}).fit, X, y)
    assert not np.array_equal(a._theta, c._theta)


# ---------------------------------------------------------------- convergence
def test_convergence_warning_only_when_max_iter_is_reached(reg_data):
    X, y = reg_data
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        GDRegressor(max_iter=3, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        reg = GDRegressor(solver="lbfgs").fit(X, y)
        reg = GDRegressor(learning_rate_init=0.05, tol=1e-3, max_iter=500, random_state=0).fit(X, y)
    assert reg.n_iter_ < 500
    assert reg.best_loss_ == min(reg.loss_curve_)
    assert reg.loss_curve_[reg.best_iteration_ - 1] == reg.best_loss_


def test_adaptive_rate_divides_by_five_instead_of_stopping(reg_data):
    X, y = reg_data
    params = dict(learning_rate_init=0.05, tol=1e-3, n_iter_no_change=2, max_iter=300,
                  random_state=0)
    constant = quiet(GDRegressor(**params).fit, X, y)
    adaptive = quiet(GDRegressor(learning_rate="adaptive", **params).fit, X, y)
    assert adaptive.n_iter_ > constant.n_iter_
    assert adaptive._opt_state.lr_factor < 1.0
    assert np.log(adaptive._opt_state.lr_factor) / np.log(1 / 5) == pytest.approx(
        round(np.log(adaptive._opt_state.lr_factor) / np.log(1 / 5))
    )


def test_early_stopping_records_history_and_restores_best_weights(clf_data):
    X, y = clf_data
    # tol=1 makes every epoch "not improving", so training always runs past the best epoch
    params = dict(hidden_layer_sizes=(10,), early_stopping=True, validation_fraction=0.25,
                  learning_rate_init=0.05, batch_size=16, tol=1.0, n_iter_no_change=10,
                  scoring=None, random_state=5)
    clf = MLPBackpropClassifier(**params).fit(X, y)
    # epoch 1 improves on -inf; epochs 2-12 do not: more than 10 in a row stops
    assert clf.n_iter_ == 12 == len(clf.validation_scores_) == len(clf.validation_loss_curve_)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    best = clf.best_iteration_
    assert clf.validation_scores_[best - 1] == clf.best_validation_score_
    assert clf.best_loss_ == clf.validation_loss_curve_[best - 1]
    assert best < clf.n_iter_
    truncated = quiet(MLPBackpropClassifier(**{**params, "max_iter": best}).fit, X, y)
    np.testing.assert_array_equal(clf._theta, truncated._theta)


def test_no_validation_score_where_nothing_is_held_out(clf_data):
    """lbfgs and partial_fit train on all the rows whatever early_stopping says:
    their best validation score is None (it was -inf), as without early stopping."""
    X, y = clf_data
    lbfgs = quiet(MLPBackpropClassifier(solver="lbfgs", early_stopping=True, max_iter=3).fit, X, y)
    streamed = MLPBackpropClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
    for model in (lbfgs, streamed):
        assert model.best_validation_score_ is None and model.validation_scores_ == []
    held_out = quiet(MLPBackpropClassifier(early_stopping=True, max_iter=2).fit, X, y)
    assert held_out.best_validation_score_ == max(held_out.validation_scores_)


def test_early_stopping_validation_split_is_stratified():
    X, y = make_classification(n_samples=60, weights=[0.9, 0.1], flip_y=0, random_state=0)
    clf = MLPBackpropClassifier(early_stopping=True, validation_fraction=0.2, max_iter=3,
                                random_state=0)
    quiet(clf.fit, X, y)  # 6 minority samples: an unstratified split could hold out none
    assert len(clf.validation_scores_) == clf.n_iter_


def test_divergence_keeps_last_finite_weights():
    X, y = make_regression(n_samples=50, n_features=3, random_state=0)
    X = X * 1e3
    reg = GDRegressor(solver="sgd", learning_rate_init=10.0, max_iter=50, random_state=0)
    with pytest.warns(DivergenceWarning, match="scal"):
        reg.fit(X, y)
    assert np.isfinite(reg._theta).all()
    assert np.isfinite(reg.predict(X)).all()
    assert all(np.isfinite(reg.loss_curve_))


# ---------------------------------------------------------------- regularisation
def test_dropout_changes_training_not_prediction(clf_data):
    X, y = clf_data
    params = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0)
    plain = quiet(MLPBackpropClassifier(**params).fit, X, y)
    dropped = quiet(MLPBackpropClassifier(dropout=0.5, **params).fit, X, y)
    assert not np.allclose(plain._theta, dropped._theta)
    np.testing.assert_array_equal(dropped.predict_proba(X), dropped.predict_proba(X))


def test_dropout_per_layer_is_validated(clf_data):
    X, y = clf_data
    quiet(MLPBackpropClassifier(hidden_layer_sizes=(4, 3), dropout=[0.1, 0.0], max_iter=2).fit, X, y)
    with pytest.raises(ValueError, match="dropout has 1 values but there are 2 hidden"):
        MLPBackpropClassifier(hidden_layer_sizes=(4, 3), dropout=[0.1]).fit(X, y)
    with pytest.raises(ValueError, match="dropout"):
        MLPBackpropClassifier(hidden_layer_sizes=(4,), dropout=[1.5]).fit(X, y)
    with pytest.raises(ValueError, match="lbfgs"):
        MLPBackpropClassifier(solver="lbfgs", dropout=0.2).fit(X, y)


def test_alpha_shrinks_weights(reg_data):
    X, y = reg_data
    small = GDRegressor(solver="lbfgs", alpha=0.0).fit(X, y)
    large = GDRegressor(solver="lbfgs", alpha=100.0).fit(X, y)
    assert np.linalg.norm(large.coefs_[0]) < 0.8 * np.linalg.norm(small.coefs_[0])


# ---------------------------------------------------------------- sample weights
def test_zero_weight_rows_contribute_nothing(reg_data):
    X, y = reg_data
    sw = np.ones(len(X))
    sw[:20] = 0.0
    y_corrupt = y.copy()
    y_corrupt[:20] = 1e3
    params = dict(hidden_layer_sizes=(4,), solver="lbfgs", random_state=0)
    weighted = GDRegressor(**params).fit(X, y_corrupt, sample_weight=sw)
    # same initial weights need the same n_features; the output bias starts at
    # the weighted mean, also unaffected by zero-weight rows
    removed = GDRegressor(**params).fit(X[20:], y[20:])
    np.testing.assert_allclose(weighted.predict(X), removed.predict(X), rtol=1e-5, atol=1e-6)


def test_all_zero_weight_batches_are_skipped(reg_data):
    X, y = reg_data
    sw = np.ones(len(X))
    sw[:50] = 0.0
    reg = GDRegressor(batch_size=10, shuffle=False, random_state=0)
    reg.partial_fit(X, y, sample_weight=sw)
    assert reg._opt_state.chain[0].step == 5  # only the 5 batches with weight
    assert np.isfinite(reg._theta).all()


def test_negative_or_null_sample_weights_are_rejected(reg_data):
    X, y = reg_data
    sw = np.ones(len(X))
    sw[3] = -1
    with pytest.raises(ValueError, match="[Nn]egative values in data passed to `sample_weight`"):
        GDRegressor().fit(X, y, sample_weight=sw)
    with pytest.raises(ValueError, match="[Ss]ample weights must contain at least one non-zero|sample_weight sums to zero"):
        GDRegressor().fit(X, y, sample_weight=np.zeros(len(X)))


# ---------------------------------------------------------------- inputs
def test_float32_stays_float32_end_to_end(clf_data, reg_data):
    X, y = clf_data
    X32 = X.astype(np.float32)
    clf = quiet(MLPBackpropClassifier(max_iter=3, random_state=0).fit, X32, y)
    assert clf._theta.dtype == np.float32
    assert all(W.dtype == np.float32 for W in clf.coefs_)
    assert clf.predict_proba(X32).dtype == np.float32
    assert clf.predict_proba(X).dtype == np.float32
    state = clf._opt_state.chain[0]
    assert state.u.dtype == state.w.dtype == np.float32
    Xr, yr = reg_data
    reg = quiet(GDRegressor(max_iter=3).fit, Xr.astype(np.float32), yr)
    assert reg.predict(Xr.astype(np.float32)).dtype == np.float32
    assert quiet(GDRegressor(max_iter=2).fit, Xr, yr).predict(Xr).dtype == np.float64


def test_integer_input_is_converted(clf_data):
    X, y = clf_data
    Xi = np.round(X * 3).astype(np.int64)
    clf = quiet(MLPBackpropClassifier(max_iter=3).fit, Xi, y)
    assert clf._theta.dtype == np.float64
    assert clf.predict(Xi).shape == y.shape


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_matches_dense(reg_data, fmt):
    X, y = reg_data
    X = X.copy()
    X[np.abs(X) < 0.7] = 0.0
    params = dict(hidden_layer_sizes=(5,), batch_size=16, max_iter=5, random_state=0)
    dense = quiet(GDRegressor(**params).fit, X, y)
    sparse = quiet(GDRegressor(**params).fit, sp.csr_matrix(X).asformat(fmt), y)
    np.testing.assert_allclose(sparse._theta, dense._theta, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sparse.predict(sp.csc_matrix(X)), dense.predict(X))


def test_pandas_dataframe_keeps_feature_names(clf_data):
    pd = pytest.importorskip("pandas")
    X, y = clf_data
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    clf = quiet(MLPBackpropClassifier(max_iter=3).fit, df, pd.Series(y))
    np.testing.assert_array_equal(clf.feature_names_in_, df.columns)
    assert clf.predict(df).shape == (len(df),)
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)


# ---------------------------------------------------------------- targets
def test_string_labels_binary_and_multiclass(clf_data):
    X, y = clf_data
    names = np.array(["ant", "bee", "cat"])[y]
    clf = quiet(MLPBackpropClassifier(max_iter=20, random_state=0).fit, X, names)
    assert set(clf.predict(X)) <= {"ant", "bee", "cat"}
    assert list(clf.classes_) == ["ant", "bee", "cat"]
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    binary = np.where(y == 0, "no", "yes")
    clf = quiet(MLPBackpropClassifier(max_iter=20, random_state=0).fit, X, binary)
    assert clf.predict_proba(X).shape == (len(X), 2) and clf.n_outputs_ == 1
    assert clf.out_activation_ == "logistic"
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), clf.predict_proba(X))


def test_multilabel_targets():
    X, Y = make_multilabel_classification(n_samples=80, n_features=5, n_classes=3, random_state=0)
    X = StandardScaler().fit_transform(X)
    clf = MLPBackpropClassifier(hidden_layer_sizes=(10,), solver="lbfgs", random_state=0)
    quiet(clf.fit, X, Y)
    assert clf.predict(X).shape == Y.shape
    assert set(np.unique(clf.predict(X))) <= {0, 1}
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape and ((proba > 0) & (proba < 1)).all()
    np.testing.assert_array_equal(clf.classes_, np.arange(3))
    assert clf.score(X, Y) > 0.5  # exact-match accuracy over 3 labels
    assert clf.out_activation_ == "logistic"
    streamed = MLPBackpropClassifier(hidden_layer_sizes=(10,))
    streamed.partial_fit(X, Y)
    assert streamed.predict(X).shape == Y.shape


@pytest.mark.parametrize("to_sparse", [sp.csr_matrix, sp.csc_matrix, sp.coo_array])
def test_sparse_multilabel_targets_train_as_dense_ones(to_sparse):
    """A sparse indicator y (as MLPClassifier takes it) trains the dense y's
    model; predict answers in the fitted y's format."""
    X, Y = make_multilabel_classification(n_samples=40, n_features=5, n_classes=3, random_state=0)
    sparse = MLPBackpropClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=0)
    dense = MLPBackpropClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=0)
    quiet(sparse.fit, X, to_sparse(Y))
    quiet(dense.fit, X, Y)
    np.testing.assert_array_equal(sparse._theta, dense._theta)
    predicted = sparse.predict(X)
    assert sp.issparse(predicted) and predicted.format == "csr"
    np.testing.assert_array_equal(predicted.toarray(), dense.predict(X))
    assert isinstance(dense.predict(X), np.ndarray)
    assert sparse.score(X, to_sparse(Y)) == dense.score(X, Y)
    sparse.partial_fit(X, Y)  # a dense y continues the same targets
    dense.partial_fit(X, to_sparse(Y))
    np.testing.assert_array_equal(sparse._theta, dense._theta)


def test_sparse_targets_other_than_indicators_are_refused():
    X = np.random.default_rng(0).normal(size=(6, 2))
    labels = sp.csr_matrix(np.array([[0.0], [1.5], [2.0], [0.0], [1.0], [2.5]]))
    with pytest.raises(ValueError, match="sparse y must be a multilabel indicator"):
        MLPBackpropClassifier(max_iter=2).fit(X, labels)
    with pytest.raises(TypeError, match="Sparse data was passed for y"):
        GDRegressor(max_iter=2).fit(X, labels)


@pytest.mark.parametrize("kind", ["multiclass-multioutput", "binary column", "sequence"])
def test_target_kinds_other_than_labels_or_indicators(kind):
    """Only 1-D labels (or one column of them) and 0/1 indicator matrices are targets."""
    X = np.random.default_rng(0).normal(size=(6, 2))
    clf = MLPBackpropClassifier(hidden_layer_sizes=(3,), max_iter=5)
    if kind == "multiclass-multioutput":
        with pytest.raises(ValueError, match="1-D or a multilabel indicator matrix"):
            clf.fit(X, np.array([[0, 1], [2, 0], [1, 1], [0, 2], [2, 2], [1, 0]]))
    elif kind == "binary column":  # a column vector of labels: warned about, then used
        with pytest.warns(DataConversionWarning):
            quiet(clf.fit, X, np.array([[0], [1], [0], [1], [1], [0]]))
        assert clf.classes_.tolist() == [0, 1] and clf.n_outputs_ == 1
    else:
        with pytest.raises(ValueError):
            clf.fit(X, [[0, 1], [1], [0], [1, 0], [1], [0]])


def test_partial_fit_classes_rules(clf_data):
    X, y = clf_data
    clf = MLPBackpropClassifier(hidden_layer_sizes=(4,))
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert list(clf.classes_) == [0, 1, 2] and clf.n_outputs_ == 3
    with pytest.raises(ValueError, match=r"labels \[7\] that are not in classes_"):
        clf.partial_fit(X[:3], [0, 7, 1])
    with pytest.raises(ValueError, match="differs from the classes of the first"):
        clf.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match=r"classes=\[1\] has only one class"):
        MLPBackpropClassifier().partial_fit(X, y, classes=[1])


@pytest.mark.parametrize("classes, message", [
    ([], r"non-empty 1-D list of labels, got \[\]"),  # was an IndexError
    ([[0, 1], [2, 3]], "non-empty 1-D list"),  # was flattened into 4 classes
    ([0.0, 1.0, 2.0, np.nan], r"classes=\[0.0, 1.0, 2.0, nan\] are not valid labels: .*NaN"),
    (["a", 1], r"classes=\['a', 1\] are not valid labels: Mix of label input types"),
])
def test_partial_fit_refuses_classes_that_are_not_labels(clf_data, classes, message):
    X, y = clf_data
    with pytest.raises(ValueError, match=message):
        MLPBackpropClassifier().partial_fit(X, y.astype(float), classes=classes)
    fitted = MLPBackpropClassifier(max_iter=1).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=message):
        fitted.partial_fit(X, y, classes=classes)


def test_partial_fit_takes_classes_from_any_array_library(clf_data):
    xps = pytest.importorskip("array_api_strict")
    pd = pytest.importorskip("pandas")
    X, y = clf_data
    reference = MLPBackpropClassifier(random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    for classes in (xps.asarray([0, 1, 2]), pd.Series([2, 0, 1]), (0, 1, 2), np.array([1, 2, 0])):
        clf = MLPBackpropClassifier(random_state=0).partial_fit(X, y, classes=classes)
        assert clf.classes_.tolist() == [0, 1, 2]
        np.testing.assert_array_equal(clf.coefs_[0], reference.coefs_[0])
        clf.partial_fit(X, y, classes=classes)  # the same classes on a later call


def test_warm_start_keeps_the_fitted_classes(clf_data):
    X, y = clf_data
    clf = quiet(MLPBackpropClassifier(hidden_layer_sizes=(4,), max_iter=2, warm_start=True).fit, X, y)
    quiet(clf.fit, X[y < 2], y[y < 2])
    assert clf.classes_.tolist() == [0, 1, 2] and clf.predict_proba(X).shape == (len(X), 3)
    with pytest.raises(ValueError, match=r"labels \[3\] that are not in classes_"):
        clf.fit(X, y + 1)


def test_partial_fit_keeps_the_target_type(clf_data):
    """A model fitted on a multilabel matrix does not take 1-D labels (nor the
    reverse): they would be read as another kind of target."""
    X, y = clf_data
    Y = np.column_stack([y == 0, y == 1]).astype(int)
    multilabel = MLPBackpropClassifier(hidden_layer_sizes=(4,)).partial_fit(X, Y)
    with pytest.raises(ValueError, match="fitted on a multilabel indicator matrix"):
        multilabel.partial_fit(X, (y == 1).astype(int))
    labels = MLPBackpropClassifier(hidden_layer_sizes=(4,)).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="y is a multilabel matrix"):
        labels.partial_fit(X, np.column_stack([Y, Y[:, :1]]))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # stops early on purpose
def test_changed_parameters_do_not_change_a_fitted_network(clf_data, reg_data):
    """The activation and loss are the fitted model's until the next fit:
    set_params on them changes no prediction, and training on without a new
    fit is refused."""
    X, y = clf_data
    clf = quiet(MLPBackpropClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit,
                X, y)
    proba = clf.predict_proba(X)
    for activation in ("tanh", "identity", "not an activation"):
        clf.set_params(activation=activation)
        np.testing.assert_array_equal(clf.predict_proba(X), proba)
    clf.set_params(activation="tanh")
    with pytest.raises(ValueError, match=r"activation changed since the network was fitted "
                                         r"\('relu' -> 'tanh'\)"):
        clf.partial_fit(X, y)
    with pytest.raises(ValueError, match="activation changed"):
        clf.set_params(warm_start=True).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    assert clf.set_params(warm_start=False).fit(X, y)._fitted_activation == "tanh"

    Xr, yr = reg_data
    reg = quiet(GDRegressor(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit, Xr, yr)
    predictions = reg.predict(Xr)
    reg.set_params(loss="poisson")  # an exp output link, were it used
    np.testing.assert_array_equal(reg.predict(Xr), predictions)
    with pytest.raises(ValueError, match="loss='poisson' needs the output 'exp', but the "
                                         "network was fitted with 'identity'"):
        reg.partial_fit(Xr, np.abs(yr))
    # a loss with the fitted output trains on, with its own gradient
    huber, squared = (quiet(GDRegressor(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit,
                            Xr, yr) for _ in range(2))
    huber.set_params(loss="huber", huber_delta=1e-3).partial_fit(Xr, yr)
    squared.partial_fit(Xr, yr)
    assert not np.allclose(huber.coefs_[0], squared.coefs_[0])


def test_failed_partial_fit_leaves_the_model_unchanged(clf_data):
    X, y = clf_data
    clf = MLPBackpropClassifier(hidden_layer_sizes=(4,), random_state=0)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    theta, n_iter, t = clf._theta.copy(), clf.n_iter_, clf.t_
    for bad_X, bad_y in [(X[:, :3], y), (X[:5], [0, 1, 9, 0, 1])]:
        with pytest.raises(ValueError):
            clf.partial_fit(bad_X, bad_y)
        np.testing.assert_array_equal(clf._theta, theta)
        assert (clf.n_iter_, clf.t_) == (n_iter, t)


def test_one_class_is_rejected(clf_data):
    X, _ = clf_data
    with pytest.raises(ValueError, match="at least 2 classes"):
        MLPBackpropClassifier().fit(X, np.zeros(len(X)))


def test_multi_output_regression_shapes(reg_data):
    X, y = reg_data
    Y = np.column_stack([y, -y, 2 * y])
    reg = GDRegressor(solver="lbfgs").fit(X, Y)
    assert reg.predict(X).shape == (len(X), 3)
    assert reg.score(X, Y) > 0.99
    column = GDRegressor(solver="lbfgs").fit(X, y[:, None])
    assert column.predict(X).shape == (len(X), 1)
    assert GDRegressor(solver="lbfgs").fit(X, y).predict(X).shape == (len(X),)


def test_huber_is_robust_to_outliers():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 1))
    y = 3 * X.ravel() + rng.normal(scale=0.1, size=200)
    y[:10] += 50
    params = dict(solver="lbfgs", alpha=0.0)
    squared = GDRegressor(**params).fit(X, y)
    huber = GDRegressor(loss="huber", huber_delta=0.5, **params).fit(X, y)
    assert abs(huber.coefs_[0][0, 0] - 3) < 0.1 < abs(squared.coefs_[0][0, 0] - 3) + 0.1
    assert abs(huber.intercepts_[0][0]) < abs(squared.intercepts_[0][0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_huber_beyond_every_residual_is_squared_error(dtype, solver):
    # 1e300 is beyond float32's range: it rounded to inf there, and inf * 0 made
    # the loss NaN (a model that "diverged" in its first epoch)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(dtype)
    y = (X @ [1.0, 2.0, 3.0]).astype(dtype)
    params = dict(hidden_layer_sizes=(4,), solver=solver, max_iter=5, random_state=0)
    huber = quiet(GDRegressor(loss="huber", huber_delta=1e300, **params).fit, X, y)
    squared = quiet(GDRegressor(**params).fit, X, y)
    assert huber.n_iter_ == squared.n_iter_ == 5
    np.testing.assert_array_equal(huber.loss_curve_, squared.loss_curve_)
    np.testing.assert_array_equal(huber.coefs_[0], squared.coefs_[0])


def test_poisson_requires_non_negative_targets(reg_data):
    X, y = reg_data
    with pytest.raises(ValueError, match="non-negative"):
        GDRegressor(loss="poisson").fit(X, y)


def test_verbose_prints_one_line_per_epoch(reg_data, capsys):
    X, y = reg_data
    quiet(GDRegressor(max_iter=3, verbose=True).fit, X, y)
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("Iteration")]
    assert len(lines) == 3 and "loss = " in lines[0] and "learning rate" in lines[0]


def test_input_noise_on_sparse_input_touches_only_stored_entries(reg_data):
    X, y = reg_data
    X = X.copy()
    X[np.abs(X) < 0.7] = 0.0
    Xs = sp.csr_matrix(X)
    params = dict(hidden_layer_sizes=(4,), batch_size=16, max_iter=3, random_state=0)
    noisy = quiet(GDRegressor(input_noise=0.5, **params).fit, Xs, y)
    clean = quiet(GDRegressor(**params).fit, Xs, y)
    assert np.isfinite(noisy._theta).all()
    assert not np.allclose(noisy._theta, clean._theta)
    np.testing.assert_array_equal(Xs.toarray(), X)  # the caller's matrix is untouched


def test_multi_output_early_stopping_scores_r2(reg_data):
    X, y = reg_data
    Y = np.column_stack([y, -y])
    reg = quiet(GDRegressor(early_stopping=True, learning_rate_init=0.05, max_iter=30,
                            scoring=None, random_state=0).fit, X, Y)
    assert reg.best_validation_score_ > 0.9
    assert reg.predict(X).shape == Y.shape


@pytest.mark.parametrize(
    "Estimator, parameter, names",
    [(Estimator, parameter, names)
     for Estimator in (GDRegressor, MLPBackpropClassifier)
     for parameter, names in [("solver", {"lbfgs", *SOLVERS}), ("learning_rate", set(SCHEDULES)),
                              ("activation", set(ACTIVATIONS))]]
    + [(GDRegressor, "loss", set(REGRESSION_LOSSES))],
)
def test_the_documented_and_accepted_names_are_the_tables(Estimator, parameter, names):
    """Each name a table declares is documented and accepted, and no other."""
    entry = re.search(rf"^ *{parameter} : {{(.*?)}}, default", Estimator.__doc__, re.M | re.S)
    assert set(re.findall(r"'(\w+)'", entry.group(1))) == names
    assert Estimator._parameter_constraints[parameter][0].options == names
