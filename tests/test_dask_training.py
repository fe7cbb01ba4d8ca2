"""Data-parallel training on Dask collections (sklearn_gd._data._dask), on a real LocalCluster."""

import os
import re
import signal
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification, make_regression
from sklearn.metrics import accuracy_score, r2_score

from sklearn_gd import DivergenceWarning, GDRegressor, MLPBackpropClassifier
from sklearn_gd._dask_estimator import chunked_train_data
from sklearn_gd._data import _dask
from sklearn_gd._data._dask import _chunks, _cluster

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")
distributed = pytest.importorskip("distributed")


def local_cluster(**kwargs):
    options = dict(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                   dashboard_address=":0", protocol="tcp")
    return distributed.LocalCluster(**{**options, **kwargs})


@pytest.fixture(scope="module")
def client(dask_cluster):
    # not the process's default client: other modules' clients stay theirs
    with distributed.Client(dask_cluster, set_as_default=False) as client:
        yield client


@pytest.fixture(autouse=True)
def on_this_modules_cluster(request):
    """Tests that ask for ``client`` compute on it (``as_current``), whatever other
    clients this test process holds."""
    if "client" not in request.fixturenames:
        yield
        return
    with request.getfixturevalue("client").as_current():
        yield


@pytest.fixture(scope="module")
def classification():
    X, y = make_classification(n_samples=600, n_features=6, n_informative=4, n_classes=3,
                               random_state=0)
    return X, y


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=500, n_features=5, noise=5.0, random_state=0)
    return X, y / 50.0


def quietly(estimator, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached: the tests stop early on purpose
        return estimator.fit(*args, **kwargs)


def relative(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


# ---------------------------------------------------------------------- full batch
CHUNKINGS = [500, 77, (100, 250, 3, 147)]


def objective_pair(model, X, y, sw, chunks):
    """The in-memory and the chunked full-batch objectives of a fitted ``model``."""
    from sklearn_gd._data._in_memory import full_batch_objective

    config = model._train_config(model._layout, False, 1, early_stopping=False)
    memory = model._train_data(X, y, sw, False, True, None, (None,) * 3, stops_early=False)
    Xd = da.from_array(X, chunks=(chunks, X.shape[1]))
    chunked = chunked_train_data(model, Xd, da.from_array(y, chunks=chunks),
                                       da.from_array(sw, chunks=chunks), False, True, None,
                                       (None,) * 3, stops_early=False)
    return (lambda theta: full_batch_objective(config, memory, theta)(theta),
            lambda theta: chunked.full_batch_objective(config, theta)(theta))


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("classifier", [False, True])
def test_the_objective_summed_over_chunks_is_the_in_memory_one(regression, classification,
                                                               chunks, classifier):
    """The same J and gradient at any weights, up to the order of the sums
    (sample weights, and class weights for the classifier)."""
    X, y = classification if classifier else regression
    sw = np.random.default_rng(1).uniform(0.1, 3.0, len(y))
    if classifier:
        X, y, sw = X[:500], y[:500], sw[:500]
        model = MLPBackpropClassifier(hidden_layer_sizes=(7,), alpha=0.3, max_iter=1,
                                      class_weight="balanced")
    else:
        model = GDRegressor(hidden_layer_sizes=(7,), alpha=0.3, max_iter=1)
    quietly(model, X, y, sample_weight=sw)
    in_memory, chunked = objective_pair(model, X, y, sw, chunks)
    for seed in range(3):
        theta = np.random.default_rng(seed).normal(size=model._theta.shape)
        J, grad = in_memory(theta.copy())
        J_chunked, grad_chunked = chunked(theta.copy())
        assert J_chunked == pytest.approx(J, rel=1e-12)
        assert relative(grad_chunked, grad) < 1e-12


@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_lbfgs_linear_model_converges_with_the_in_memory_fit_whatever_the_chunks(
        client, regression, chunks):
    """Both fits land on Ridge's solution, within what L-BFGS-B's stopping rule
    (a relative decrease of the objective under 2.2e-9) leaves of it: about 1e-6
    here, for the in-memory fit as for the chunked one."""
    from sklearn.linear_model import Ridge

    X, y = regression
    sw = np.random.default_rng(1).uniform(0.1, 3.0, len(y))
    params = dict(solver="lbfgs", alpha=3.0, max_iter=1000, tol=1e-12)
    reference = GDRegressor(**params).fit(X, y, sample_weight=sw)
    chunked = GDRegressor(**params).fit(da.from_array(X, chunks=(chunks, 5)),
                                        da.from_array(y, chunks=chunks),
                                        sample_weight=da.from_array(sw, chunks=chunks))
    ridge = Ridge(alpha=3.0, solver="cholesky").fit(X, y, sample_weight=sw)
    exact = np.r_[ridge.coef_, ridge.intercept_]
    assert relative(reference._theta, exact) < 1e-5
    assert relative(chunked._theta, exact) < 1e-5
    assert chunked.n_features_in_ == 5


def test_lbfgs_logistic_regression_on_a_dataframe_with_class_weights(client, classification):
    X, y = classification
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    labels = np.array(["ant", "bee", "cat"], dtype=object)[y]
    params = dict(hidden_layer_sizes=(), solver="lbfgs", alpha=1.0, max_iter=1000, tol=1e-12,
                  class_weight="balanced")
    reference = MLPBackpropClassifier(**params).fit(frame, labels)
    chunked = MLPBackpropClassifier(**params).fit(
        dd.from_pandas(frame, npartitions=3), dd.from_pandas(pd.Series(labels), npartitions=3))
    from sklearn.linear_model import LogisticRegression

    exact = LogisticRegression(C=1.0, tol=1e-14, max_iter=10_000, class_weight="balanced")
    exact = exact.fit(frame, labels).predict_proba(frame)
    # Both within what L-BFGS-B's stopping rule leaves of the optimum: it stops when
    # the objective's relative decrease falls under ftol = 2.2e-9 (SciPy's default,
    # as for MLPClassifier), which at this problem's smallest curvature (alpha / N =
    # 1/600) leaves the weights up to sqrt(2 * 2.2e-9 * 600) ~ 1.6e-3 and the
    # probabilities up to ~3e-4 from the optimum; where in that range a run stops
    # depends on the rounding of the gradient's sums (BLAS threads, kernels).
    np.testing.assert_allclose(reference.predict_proba(frame), exact, atol=3e-4)
    np.testing.assert_allclose(chunked.predict_proba(frame), exact, atol=3e-4)
    assert list(chunked.classes_) == ["ant", "bee", "cat"]
    assert list(chunked.feature_names_in_) == list(frame.columns)


def test_twenty_lbfgs_iterations_of_a_network_equal_the_in_memory_ones(client, classification):
    X, y = classification
    params = dict(hidden_layer_sizes=(16, 8), solver="lbfgs", max_iter=20, random_state=0)
    reference = quietly(MLPBackpropClassifier(**params), X, y)
    chunked = quietly(MLPBackpropClassifier(**params), da.from_array(X, chunks=(130, 6)),
                      da.from_array(y, chunks=130))
    assert chunked.n_iter_ == reference.n_iter_ == 20
    assert relative(chunked._theta, reference._theta) < 1e-6
    np.testing.assert_allclose(chunked.loss_curve_, reference.loss_curve_, rtol=1e-9)


def test_input_block_trains_on_chunks_as_in_memory(client, regression):
    """The periodic embedding and input scale are part of each chunk's gradient."""
    X, y = regression
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=10, random_state=0,
                  embedding="periodic", embedding_frequencies=3, input_scale=True)
    reference = quietly(GDRegressor(**params), X, y)
    chunked = quietly(GDRegressor(**params), da.from_array(X, chunks=(130, 5)),
                      da.from_array(y, chunks=130))
    assert chunked._layout == reference._layout
    assert relative(chunked._theta, reference._theta) < 1e-6


# ---------------------------------------------------------------------- mini-batch
@pytest.mark.parametrize("weighted", [False, True])
def test_one_chunk_without_shuffling_is_the_in_memory_fit(client, regression, weighted):
    X, y = regression
    sw = np.random.default_rng(2).uniform(0.0, 2.0, len(y)) if weighted else None
    params = dict(hidden_layer_sizes=(12,), batch_size=64, shuffle=False, max_iter=4,
                  alpha=0.01, random_state=0)
    reference = quietly(GDRegressor(**params), X, y, sample_weight=sw)
    chunked = quietly(GDRegressor(**params), da.from_array(X, chunks=(500, 5)),
                      da.from_array(y, chunks=500),
                      sample_weight=None if sw is None else da.from_array(sw, chunks=500))
    np.testing.assert_array_equal(chunked._theta, reference._theta)
    assert chunked.loss_curve_ == reference.loss_curve_
    assert chunked.t_ == reference.t_ == 4 * len(y)


def test_n_steps_no_change_counts_the_steps_of_an_epoch_on_chunks(client, regression):
    """Two steps an epoch and n_steps_no_change=6: three epochs without improvement are
    tolerated, as in memory. A tol no epoch meets makes every epoch after the first a
    plateau, so training stops after the first epoch and those three, plus one."""
    X, y = regression
    params = dict(hidden_layer_sizes=(12,), batch_size=250, shuffle=False, max_iter=50,
                  tol=1e9, n_iter_no_change=1, n_steps_no_change=6, random_state=0)
    reference = GDRegressor(**params).fit(X, y)
    chunked = GDRegressor(**params).fit(da.from_array(X, chunks=(500, 5)),
                                        da.from_array(y, chunks=500))
    assert chunked.n_iter_ == reference.n_iter_ == 1 + 3 + 1
    np.testing.assert_array_equal(chunked._theta, reference._theta)


@settings(max_examples=50, deadline=None)
@given(rows=st.lists(st.integers(0, 60), min_size=1, max_size=6).filter(lambda r: sum(r) > 0),
       batch_size=st.integers(1, 80))
def test_every_row_once_per_epoch_in_steps_of_batch_size_rows(rows, batch_size):
    steps = list(_dask.step_bounds(rows, batch_size))
    n = sum(rows)
    assert len(steps) == -(-n // batch_size)
    for c, r in enumerate(rows):  # each chunk's rows, in order, once
        assert [b[c][0] for b, _ in steps][0] == 0
        assert all(steps[k][0][c][1] == steps[k + 1][0][c][0] for k in range(len(steps) - 1))
        assert steps[-1][0][c][1] == r
    for k, (bounds, m) in enumerate(steps):
        assert m == sum(stop - start for start, stop in bounds)
        wanted = min((k + 1) * batch_size, n) - k * batch_size
        assert abs(m - wanted) <= len(rows)  # batch_size rows, give or take one per chunk
        for (start, stop), r in zip(bounds, rows):  # in proportion to the chunk's rows
            assert abs((stop - start) - wanted * r / n) < 1 + 1e-9


def test_an_epochs_step_gradients_average_to_the_full_gradient(classification):
    """Unbiased steps: each row once per epoch, weighted ``s_i n / (m S)``, so the
    steps' gradients weighted by ``m / n`` sum to the full-batch gradient."""
    X, y = classification
    sw = np.random.default_rng(3).uniform(0.0, 2.0, len(y))
    model = quietly(MLPBackpropClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=0),
                    X, y)
    net, theta = model._network(), model._theta
    Y = model._encode_targets(y, X.dtype, fitting=False)
    full = np.empty_like(theta)
    net.loss_and_grad(theta, X, Y.astype(float), sw / sw.sum(), 0.0, net.workspace(len(y), float),
                      full)
    cuts = [0, 170, 171, 400, 600]
    chunks = [_chunks.Chunk(X[a:b], Y[a:b], sw[a:b]) for a, b in zip(cuts, cuts[1:])]
    rows = [len(chunk) for chunk in chunks]
    orders = [_chunks.chunk_order(r, [7, i], True) for i, r in enumerate(rows)]
    averaged = np.zeros_like(theta)
    for bounds, m in _dask.step_bounds(rows, 64):
        for chunk, order, (start, stop) in zip(chunks, orders, bounds):
            if stop > start:
                _, grad, _ = _chunks.chunk_batch(chunk, order, start, stop, theta, net, m,
                                                len(y) / sw.sum(), ([0], (0.0,), 0.0))
                averaged += grad * m / len(y)
    np.testing.assert_allclose(averaged, full, rtol=1e-10, atol=1e-14)


def test_minibatch_over_chunks_learns_as_well_as_in_memory(client, classification):
    X, y = classification
    params = dict(hidden_layer_sizes=(16,), max_iter=15, learning_rate_init=0.01,
                  random_state=0)
    reference = quietly(MLPBackpropClassifier(**params), X, y)
    Xd, yd = da.from_array(X, chunks=(150, 6)), da.from_array(y, chunks=150)
    chunked = quietly(MLPBackpropClassifier(**params), Xd, yd)
    assert chunked.n_iter_ == 15 and chunked.t_ == 15 * len(y)
    assert chunked.loss_curve_[-1] < chunked.loss_curve_[0]
    assert abs(chunked.score(X, y) - reference.score(X, y)) < 0.05
    again = quietly(MLPBackpropClassifier(**params), Xd, yd)
    np.testing.assert_array_equal(again._theta, chunked._theta)  # same seed, same fit


def test_dropout_masks_come_from_the_seed(client, classification):
    X, y = classification
    Xd, yd = da.from_array(X, chunks=(200, 6)), da.from_array(y, chunks=200)

    def fit(**params):
        return quietly(MLPBackpropClassifier(hidden_layer_sizes=(16,), max_iter=2,
                                             input_noise=0.1, **params), Xd, yd)

    first, second = fit(dropout=0.3, random_state=0), fit(dropout=0.3, random_state=0)
    np.testing.assert_array_equal(first._theta, second._theta)
    assert not np.allclose(first._theta, fit(dropout=0.3, random_state=1)._theta)
    assert not np.allclose(first._theta, fit(dropout=0.0, random_state=0)._theta)


def test_dropout_drawn_on_a_worker_keeps_its_rate():
    X = np.ones((4000, 3))
    chunk = _chunks.Chunk(X, np.zeros((4000, 1)), None)
    model = GDRegressor(hidden_layer_sizes=(50,), max_iter=1, random_state=0)
    quietly(model, X[:10], np.zeros(10))
    net = model._network()
    masks = []
    original = net.loss_and_grad

    def spy(theta, Xb, Yb, weights, c, ws, grad, masks_=None):
        masks.append(masks_[0].copy())
        return original(theta, Xb, Yb, weights, c, ws, grad, masks_)

    net.loss_and_grad = spy
    _chunks.chunk_batch(chunk, None, 0, 4000, model._theta, net, 4000, 1.0, ([5, 0], (0.25,), 0.0))
    dropped = np.mean(masks[0] == 0)
    assert abs(dropped - 0.25) < 0.01
    np.testing.assert_allclose(masks[0][masks[0] > 0], 1 / 0.75)


# ---------------------------------------------------------------------- as in memory
def test_early_stopping_holds_out_part_of_each_chunk(client, classification):
    X, y = classification
    Xd, yd = da.from_array(X, chunks=(200, 6)), da.from_array(y, chunks=200)
    model = quietly(MLPBackpropClassifier(hidden_layer_sizes=(16,), early_stopping=True,
                                          max_iter=30, n_iter_no_change=3, scoring=None,
                                          learning_rate_init=0.02, random_state=0), Xd, yd)
    assert len(model.validation_scores_) == model.n_iter_
    assert model.t_ == model.n_iter_ * (len(y) - 60)  # 10% of each chunk held out
    assert all(0 <= s <= 1 for s in model.validation_scores_)
    assert model.best_validation_score_ == max(model.validation_scores_)


def test_a_dask_validation_set_is_scored_as_in_memory(client, regression):
    X, y = regression
    params = dict(hidden_layer_sizes=(8,), early_stopping=True, max_iter=3, scoring=None,
                  shuffle=False, batch_size=500, random_state=0)
    reference = quietly(GDRegressor(**params), X[:400], y[:400], X_val=X[400:], y_val=y[400:])
    chunked = quietly(GDRegressor(**params), da.from_array(X[:400], chunks=(400, 5)),
                      da.from_array(y[:400], chunks=400),
                      X_val=da.from_array(X[400:], chunks=(30, 5)),
                      y_val=da.from_array(y[400:], chunks=30))
    np.testing.assert_allclose(chunked.validation_scores_, reference.validation_scores_,
                               rtol=1e-9)
    np.testing.assert_allclose(chunked.validation_loss_curve_,
                               reference.validation_loss_curve_, rtol=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 4), st.booleans())
def test_scores_summed_over_chunks_are_scikit_learns(seed, n_outputs, classifier):
    rng = np.random.default_rng(seed)
    n = 40
    sw = rng.uniform(0.0, 2.0, n)
    cuts = [0, *sorted(rng.integers(0, n, 3)), n]
    if classifier:
        Y = np.eye(n_outputs + 1)[rng.integers(0, n_outputs + 1, n)]
        P = rng.dirichlet(np.ones(n_outputs + 1), n)
        expected = accuracy_score(Y.argmax(1), P.argmax(1), sample_weight=sw)
        kind = "accuracy"
    else:
        Y, P = rng.normal(size=(n, n_outputs)), rng.normal(size=(n, n_outputs))
        expected = r2_score(Y, P, sample_weight=sw)
        kind = "r2"
    sums = _cluster.add_sums(*[_chunks.score_sums(kind, P[a:b], Y[a:b], sw[a:b])
                        for a, b in zip(cuts, cuts[1:])])
    assert _chunks.score_from_sums(kind, sw.sum(), sums) == pytest.approx(expected, rel=1e-9)


def test_divergence_keeps_the_last_finite_weights(client, regression):
    X, y = regression
    Xd, yd = da.from_array(X * 1e3, chunks=(100, 5)), da.from_array(y * 1e3, chunks=100)
    model = GDRegressor(solver="sgd", learning_rate_init=10.0, momentum=0.0, max_iter=5,
                        random_state=0)
    with pytest.warns(DivergenceWarning):
        model.fit(Xd, yd)
    assert np.isfinite(model._theta).all()


def test_verbose_reports_each_epoch(client, regression, capsys):
    X, y = regression
    quietly(GDRegressor(max_iter=2, verbose=True), da.from_array(X, chunks=(250, 5)),
            da.from_array(y, chunks=250))
    out = capsys.readouterr().out
    assert "Iteration 1, loss = " in out and "Iteration 2, loss = " in out


def test_partial_fit_runs_one_epoch_over_the_chunks(client, classification):
    X, y = classification
    Xd, yd = da.from_array(X, chunks=(200, 6)), da.from_array(y, chunks=200)
    model = MLPBackpropClassifier(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        model.partial_fit(Xd, yd)
    model.partial_fit(Xd, yd, classes=[0, 1, 2]).partial_fit(Xd, yd)
    assert model.n_iter_ == 2 and model.t_ == 2 * len(y)


# ---------------------------------------------------------------------- prediction
def test_prediction_runs_block_by_block(client, classification):
    X, y = classification
    model = quietly(MLPBackpropClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0),
                    X, y)
    Xd, yd = da.from_array(X, chunks=(100, 3)), da.from_array(y, chunks=100)
    predicted, proba = model.predict(Xd), model.predict_proba(Xd)
    assert isinstance(predicted, da.Array) and isinstance(proba, da.Array)
    np.testing.assert_array_equal(predicted.compute(), model.predict(X))
    np.testing.assert_allclose(proba.compute(), model.predict_proba(X), rtol=1e-12)
    np.testing.assert_allclose(model.predict_log_proba(Xd).compute(), model.predict_log_proba(X))
    sw = np.linspace(0, 1, len(y))
    assert model.score(Xd, yd, sample_weight=da.from_array(sw, chunks=100)) == pytest.approx(
        model.score(X, y, sample_weight=sw), rel=1e-12)


def test_regressor_predicts_and_scores_a_dataframe(client, regression):
    X, y = regression
    frame = pd.DataFrame(X, columns=list("abcde"))
    model = GDRegressor(solver="lbfgs").fit(frame, y)
    Xf, yf = dd.from_pandas(frame, npartitions=4), dd.from_pandas(pd.Series(y), npartitions=4)
    predicted = model.predict(Xf)
    assert isinstance(predicted, da.Array)
    np.testing.assert_allclose(predicted.compute(), model.predict(frame), rtol=1e-12)
    assert model.score(Xf, yf) == pytest.approx(model.score(frame, y), rel=1e-10)


# ---------------------------------------------------------------------- refusals
def test_clear_errors_for_dask_input(client, classification):
    X, y = classification
    Xd, yd = da.from_array(X, chunks=(200, 6)), da.from_array(y, chunks=200)
    with pytest.raises(TypeError, match="X is not"):
        MLPBackpropClassifier().fit(X, yd)
    with pytest.raises(ValueError, match="multilabel"):
        MLPBackpropClassifier().fit(Xd, da.from_array(np.eye(3)[y], chunks=200))
    with pytest.raises(ValueError, match="scoring='accuracy'"):
        MLPBackpropClassifier(early_stopping=True, scoring="accuracy").fit(Xd, yd)
    frame = dd.from_pandas(pd.DataFrame(X), npartitions=3)
    with pytest.raises(ValueError, match="partitions"):
        MLPBackpropClassifier().fit(frame, dd.from_pandas(pd.Series(y), npartitions=2))


# accuracy_score casts NaN labels to int (NumPy warns) before it refuses them, in memory too
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
def test_dask_score_validates_targets_and_weights_as_in_memory(client, classification,
                                                               regression):
    """Invalid targets or weights given to ``score`` on Dask input raise the in-memory
    errors (they gave numbers: NaN, 0.0 or a count over the valid rows)."""
    X, y = classification
    clf = quietly(MLPBackpropClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0),
                  X, y)
    Xr, yr = regression
    reg = quietly(GDRegressor(max_iter=2, random_state=0), Xr, yr)
    one_nan = y.astype(float)
    one_nan[7] = np.nan
    nan_weights = np.ones(len(yr))
    nan_weights[3] = np.nan
    y_reg_nan = yr.copy()
    y_reg_nan[9] = np.nan
    cases = [
        (clf, X, one_nan, None),
        (clf, X, np.full(len(y), np.nan), None),
        (clf, X, np.array(["a", "b", "c"])[y], None),
        (reg, Xr, y_reg_nan, None),
        (reg, Xr, yr, nan_weights),
    ]
    for model, X_, y_, sw in cases:
        with pytest.raises(ValueError) as in_memory:
            model.score(X_, y_, sample_weight=sw)
        sw_d = None if sw is None else da.from_array(sw, chunks=200)
        with pytest.raises(type(in_memory.value), match=str(in_memory.value)[:20]):
            model.score(da.from_array(X_, chunks=(200, X_.shape[1])),
                        da.from_array(y_, chunks=200), sample_weight=sw_d)


def _with(values, row, value):
    values = np.array(values, dtype=float)
    values[(row,) + (0,) * (values.ndim - 1)] = value
    return values


def _error(call):
    with pytest.raises(ValueError) as raised:
        call()
    return type(raised.value), str(raised.value)


@pytest.mark.parametrize("Estimator", [MLPBackpropClassifier, GDRegressor])
def test_dask_fit_and_predict_refuse_bad_input_with_the_in_memory_errors(client, classification,
                                                                         Estimator):
    """NaN or infinite X, y or weights, negative weights and inputs of different
    lengths: the Dask fit and predict raise the in-memory error, word for word."""
    X, y = classification
    params = dict(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    ones = np.ones(len(y))
    fit_cases = [
        (_with(X, 3, np.inf), y, None),
        (X, _with(y, 5, np.nan), None),
        (X, y[:-20], None),
        (X, y, _with(ones, 4, np.nan)),
        (X, y, _with(ones, 4, -1.0)),
        (X, y, _with(ones, 4, np.inf)),
    ]
    for X_, y_, sw in fit_cases:
        expected = _error(lambda: Estimator(**params).fit(X_, y_, sample_weight=sw))
        sw_d = None if sw is None else da.from_array(sw, chunks=200)
        assert _error(lambda: Estimator(**params).fit(
            da.from_array(X_, chunks=(200, 6)), da.from_array(y_, chunks=200),
            sample_weight=sw_d)) == expected
    model = quietly(Estimator(**params), X, y)
    for X_ in [_with(X, 3, np.nan), _with(X, 3, np.inf), X[:, :4]]:
        expected = _error(lambda: model.predict(X_))
        assert _error(lambda: model.predict(da.from_array(X_, chunks=200)).compute()) == expected


def test_dask_score_takes_negative_weights_as_in_memory(client, regression):
    X, y = regression
    model = quietly(GDRegressor(max_iter=2, random_state=0), X, y)
    sw = _with(np.ones(len(y)), 4, -0.5)
    assert model.score(da.from_array(X, chunks=(200, 5)), da.from_array(y, chunks=200),
                       sample_weight=da.from_array(sw, chunks=200)) == pytest.approx(
        model.score(X, y, sample_weight=sw), rel=1e-10)


def test_a_chunk_of_zero_weights_is_valid_when_the_whole_set_has_weight(client, regression):
    X, y = regression
    sw = np.r_[np.zeros(200), np.ones(300)]
    params = dict(hidden_layer_sizes=(), solver="lbfgs", alpha=1e-3, random_state=0)
    in_memory = quietly(GDRegressor(**params), X, y, sample_weight=sw)
    chunked = quietly(GDRegressor(**params), da.from_array(X, chunks=(200, 5)),
                      da.from_array(y, chunks=200), sample_weight=da.from_array(sw, chunks=200))
    np.testing.assert_allclose(chunked.predict(X), in_memory.predict(X), rtol=1e-4, atol=1e-4)
    assert chunked.score(da.from_array(X, chunks=(200, 5)), da.from_array(y, chunks=200),
                         sample_weight=da.from_array(sw, chunks=200)) == pytest.approx(
        in_memory.score(X, y, sample_weight=sw), rel=1e-4)
    with pytest.raises(ValueError, match="sums to zero"):
        GDRegressor(**params).fit(da.from_array(X, chunks=(200, 5)),
                                  da.from_array(y, chunks=200),
                                  sample_weight=da.zeros(len(y), chunks=200))


def test_a_bad_chunk_leaves_the_model_as_it_was(client, classification):
    X, y = classification
    model = quietly(MLPBackpropClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0),
                    X, y)
    before = model._theta.copy()
    bad = X.copy()
    bad[550, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.partial_fit(da.from_array(bad, chunks=(200, 6)), da.from_array(y, chunks=200))
    np.testing.assert_array_equal(model._theta, before)
    assert model.n_iter_ == 2


# ---------------------------------------------------------------------- the cluster
@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_a_worker_killed_mid_fit_is_recomputed_from_lineage(client, classification, monkeypatch,
                                                            solver):
    """L-BFGS: the fit equals the in-memory one. Adam with early stopping: the
    worker dies after the validation split, and the fit equals the same fit
    on a cluster that lost nothing."""
    X, y = classification
    params = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=10, random_state=0)
    if solver == "adam":
        params.update(early_stopping=True, batch_size=150)
    Xd, yd = da.from_array(X, chunks=(100, 6)), da.from_array(y, chunks=100)
    reference = quietly(MLPBackpropClassifier(**params), *((X, y) if solver == "lbfgs"
                                                             else (Xd, yd)))
    compute, calls, killed = _cluster.compute, [], []

    def compute_killing_a_worker(*objects):
        calls.append(1)
        if len(calls) == 4:  # L-BFGS's second evaluation; adam's first step after the split
            holding = [address for address, keys in client.has_what().items() if keys]
            pids = client.run(os.getpid)
            os.kill(pids[holding[0]], signal.SIGKILL)
            killed.append(holding[0])
        return compute(*objects)

    monkeypatch.setattr(_cluster, "compute", compute_killing_a_worker)
    model = quietly(MLPBackpropClassifier(**params), Xd, yd)
    assert killed and len(calls) > 4
    assert model.n_iter_ == reference.n_iter_
    assert relative(model._theta, reference._theta) < 1e-6
    # the nanny restarts the killed worker; a new worker process imports NumPy, SciPy
    # and scikit-learn, which took over 60 s on a loaded 2-core machine: a generous margin
    client.wait_for_workers(2, timeout=600)


def test_the_validation_split_releases_the_whole_chunks(classification):
    X, y = classification
    model = quietly(MLPBackpropClassifier(hidden_layer_sizes=(4,), max_iter=1), X, y)
    model.early_stopping = True
    data = chunked_train_data(model, da.from_array(X, chunks=(200, 6)),
                                    da.from_array(y, chunks=200), None, False, True, None,
                                    (None,) * 3, stops_early=True)
    config = model._train_config(model._layout, False, 1, early_stopping=False)
    train, val = data.split_validation(config, np.random.default_rng(0))
    assert data.chunks == []  # each row is held once: in the training or the validation part
    assert (train.n, val.n) == (540, 60) and len(train.chunks) == len(val.chunks) == 3


def test_a_cluster_that_cannot_recompute_raises_and_keeps_the_model(classification, monkeypatch):
    X, y = classification
    model = quietly(MLPBackpropClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0),
                    X, y)
    before = model._theta.copy()

    import dask

    compute, calls = dask.compute, []

    def compute_then_lose_the_cluster(*objects, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # mid-training
            raise type("KilledWorker", (Exception,), {})("all workers died running the task")
        return compute(*objects, **kwargs)

    monkeypatch.setattr(dask, "compute", compute_then_lose_the_cluster)
    with pytest.raises(RuntimeError, match="left as it was"):
        model.fit(da.from_array(X, chunks=(200, 6)), da.from_array(y, chunks=200))
    assert len(calls) == 5
    np.testing.assert_array_equal(model._theta, before)


def rows_and_targets(seed, rows, columns):
    """One block of a synthetic regression, ``y = x_0 + ... + x_4 + 0.1``, in float32."""
    X = np.random.default_rng(seed).standard_normal((rows, columns), dtype=np.float32)
    return X, X[:, :5].sum(axis=1) + np.float32(0.1)


def test_data_larger_than_a_workers_memory_limit_trains():
    """1.08 times a worker's memory limit of rows, made on the workers in 32 blocks
    (spilling to disk off): no worker could hold the data, and neither does the client.
    Three workers, so that an uneven placement of the blocks (or one worker's
    restart, whose blocks the others then recompute) does not push one past its
    limit: the data is still more than any one of them can hold."""
    import dask
    from dask import delayed

    limit, columns, blocks = 1536 * 2**20, 50, 32
    rows = int(1.08 * limit / (columns * 4)) // blocks
    config = {"distributed.worker.memory.target": False, "distributed.worker.memory.spill": False,
              "distributed.worker.memory.pause": False}
    with dask.config.set(config), local_cluster(n_workers=3, memory_limit=limit) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client, client.as_current():
        pairs = [delayed(rows_and_targets, nout=2)(i, rows, columns) for i in range(blocks)]
        X = da.concatenate([da.from_delayed(p[0], (rows, columns), np.float32) for p in pairs])
        y = da.concatenate([da.from_delayed(p[1], (rows,), np.float32) for p in pairs])
        assert X.nbytes > limit
        tracemalloc.start()
        model = quietly(GDRegressor(solver="lbfgs", max_iter=5), X, y)
        _, client_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert client_peak < 32 * 2**20
        assert model._theta.dtype == np.float32 and model.n_iter_ >= 1
        np.testing.assert_allclose(model.coefs_[0][:, 0], [1] * 5 + [0] * 45, atol=1e-3)
        assert model.intercepts_[0][0] == pytest.approx(0.1, abs=1e-3)


def test_a_dask_ml_preprocessing_pipeline_on_a_dataframe(client, classification):
    """Categorical and numeric columns, the categories one-hot encoded by
    dask-ml on the workers, then trained on without leaving them. (dask-ml's
    ColumnTransformer does not accept Dask dataframes: dask/dask-ml#993.)"""
    preprocessing = pytest.importorskip("dask_ml.preprocessing")
    from sklearn.pipeline import make_pipeline

    X, y = classification
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    frame["colour"] = np.array(["red", "green"])[y % 2]
    Xf = dd.from_pandas(frame, npartitions=3)
    yf = dd.from_pandas(pd.Series(y), npartitions=3)
    pipe = make_pipeline(
        preprocessing.Categorizer(columns=["colour"]),
        preprocessing.DummyEncoder(columns=["colour"]),
        MLPBackpropClassifier(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=50,
                              random_state=0),
    )
    quietly(pipe, Xf, yf)
    assert pipe[-1].n_features_in_ == 8
    assert "colour_red" in pipe[-1].feature_names_in_
    assert pipe.score(Xf, yf) > 0.8
    assert isinstance(pipe.predict(Xf), da.Array)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_a_callback_stops_training_on_dask_input(client, classification, solver):
    pytest.importorskip("sklearn.callback", reason="scikit-learn < 1.9")

    class StopAfterTwoEpochs:
        def __init__(self):
            self.ends = 0

        def setup(self, estimator, context):
            pass

        def teardown(self, estimator, context):
            pass

        def on_fit_task_begin(self, estimator, context):
            pass

        def on_fit_task_end(self, estimator, context):
            if context.task_name == "epoch":
                self.ends += 1
            return self.ends >= 2

    X, y = classification
    model = MLPBackpropClassifier(hidden_layer_sizes=(8,), solver=solver, max_iter=50,
                                  random_state=0)
    model.set_callbacks(StopAfterTwoEpochs())
    quietly(model, da.from_array(X, chunks=(200, 6)), da.from_array(y, chunks=200))
    assert model.n_iter_ == 2 == len(model.loss_curve_)


def test_in_memory_targets_and_weights_are_cut_like_the_dask_x(client, regression):
    X, y = regression
    sw = np.random.default_rng(4).uniform(0.5, 1.5, len(y))
    Xd = da.from_array(X, chunks=(120, 5))
    params = dict(hidden_layer_sizes=(6,), max_iter=3, random_state=0)
    given_in_memory = quietly(GDRegressor(**params), Xd, y, sample_weight=sw)
    given_as_dask = quietly(GDRegressor(**params), Xd, da.from_array(y, chunks=120),
                            sample_weight=da.from_array(sw, chunks=120))
    np.testing.assert_array_equal(given_in_memory._theta, given_as_dask._theta)
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[500, 499\]"):
        GDRegressor().fit(Xd, y[:-1])


def test_warm_start_and_multi_output_targets_as_in_memory(client, regression):
    X, y = regression
    Y = np.column_stack([y, -2 * y])
    params = dict(hidden_layer_sizes=(6,), max_iter=2, shuffle=False, batch_size=100,
                  warm_start=True, random_state=0)
    reference, chunked = GDRegressor(**params), GDRegressor(**params)
    Xd, Yd = da.from_array(X, chunks=(500, 5)), da.from_array(Y, chunks=(500, 2))
    for _ in range(2):
        quietly(reference, X, Y)
        quietly(chunked, Xd, Yd)
    np.testing.assert_array_equal(chunked._theta, reference._theta)
    assert chunked.predict(Xd).shape == (500, 2)
    assert chunked.score(Xd, Yd) == pytest.approx(reference.score(X, Y), rel=1e-12)


def test_an_in_memory_validation_set_with_dask_training_data(client, classification):
    X, y = classification
    model = quietly(MLPBackpropClassifier(hidden_layer_sizes=(8,), early_stopping=True,
                                          max_iter=3, random_state=0),
                    da.from_array(X[:500], chunks=(250, 6)), da.from_array(y[:500], chunks=250),
                    X_val=X[500:], y_val=y[500:])
    assert model.t_ == 3 * 500  # no row of X held out
    # the best epoch's validation objective is that of the weights kept, in memory
    Y_val = model._encode_targets(y[500:], np.float64, fitting=False).astype(float)
    expected, _ = model._network().evaluate(model._theta, X[500:], Y_val,
                                            np.full(100, 1 / 100), model.alpha / 500)
    assert min(model.validation_loss_curve_) == pytest.approx(expected, rel=1e-10)


def test_unknown_chunk_sizes_and_empty_partitions(client, classification):
    X, y = classification
    frame, labels = pd.DataFrame(X, columns=list("abcdef")), pd.Series(y)
    Xf, yf = dd.from_pandas(frame, npartitions=3), dd.from_pandas(labels, npartitions=3)
    params = dict(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    reference = quietly(MLPBackpropClassifier(**params), Xf, yf)
    unknown = quietly(MLPBackpropClassifier(**params), Xf.to_dask_array(), yf.to_dask_array())
    np.testing.assert_array_equal(unknown._theta, reference._theta)

    def first_half(part):
        return part[part.index < 300]

    halved = quietly(MLPBackpropClassifier(**params), Xf.map_partitions(first_half),
                     yf.map_partitions(first_half))  # the last partitions hold no row
    assert halved.t_ == 2 * 300
    with pytest.raises(ValueError, match="no rows"):
        empty = Xf.map_partitions(lambda part: part[:0]), yf.map_partitions(lambda part: part[:0])
        MLPBackpropClassifier(**params).fit(*empty)


def test_label_smoothing_is_encoded_on_the_workers(client, classification):
    X, y = classification
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=10, label_smoothing=0.2,
                  random_state=0)
    reference = quietly(MLPBackpropClassifier(**params), X, y)
    chunked = quietly(MLPBackpropClassifier(**params), da.from_array(X, chunks=(150, 6)),
                      da.from_array(y, chunks=150))
    assert relative(chunked._theta, reference._theta) < 1e-6
    np.testing.assert_allclose(chunked.loss_curve_, reference.loss_curve_, rtol=1e-9)


# ---------------------------------------------------------------------- tables
def mixed_table(n_rows=300, seed=0):
    """A table of every column kind, missing values in most, and a binary target."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "amount": rng.normal(size=n_rows),
        "count": pd.array(rng.integers(0, 9, n_rows), dtype="Int64"),
        "city": pd.Categorical(rng.choice([f"c{i}" for i in range(14)], n_rows)),
        "plan": rng.choice(["basic", "plus", "pro"], n_rows).astype(object),
        "active": rng.random(n_rows) > 0.5,
        "opted_in": pd.array(rng.random(n_rows) > 0.3, dtype="boolean"),
    })
    frame.loc[::7, "amount"] = np.nan
    frame.loc[3::9, "count"] = pd.NA
    frame.loc[5::11, "plan"] = None
    frame.loc[::13, "opted_in"] = pd.NA
    y = ((frame["amount"].fillna(0) + frame["city"].cat.codes % 3 + frame["active"]) > 1.5)
    return frame, y.astype(int).to_numpy()


def test_a_mixed_table_in_one_partition_trains_as_in_memory(client):
    """Categories, text, booleans, nullable columns and missing values in a Dask
    dataframe: the same columns, medians, indicators and weights as in memory."""
    frame, y = mixed_table()
    params = dict(hidden_layer_sizes=(8,), batch_size=50, shuffle=False, max_iter=3,
                  random_state=0)
    reference = quietly(MLPBackpropClassifier(**params), frame, y)
    chunked = quietly(MLPBackpropClassifier(**params), dd.from_pandas(frame, npartitions=1),
                      dd.from_pandas(pd.Series(y), npartitions=1))
    table, expected = chunked._table_input, reference._table_input
    assert table.columns.kinds == expected.columns.kinds
    for ours, theirs in zip(table.columns.categories, expected.columns.categories):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(table.fill, expected.fill)
    assert table.indicated == expected.indicated == [0, 1, 3]
    assert chunked.n_features_in_ == 6 and list(chunked.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(chunked._theta, reference._theta)
    predicted = chunked.predict(dd.from_pandas(frame, npartitions=3)).compute()
    np.testing.assert_array_equal(predicted, reference.predict(frame))
    assert chunked.score(dd.from_pandas(frame, npartitions=3),
                         dd.from_pandas(pd.Series(y), npartitions=3)) == reference.score(frame, y)


def test_every_partitions_categories_and_values_make_the_table(client):
    """Categories seen in one partition only, and a column missing values in one
    partition only, are learned from the blocks' digests without gathering the
    rows; the medians of blocks of at most RANK_POINTS values are exact."""
    frame, y = mixed_table(n_rows=360, seed=1)
    frame["plan"] = np.where(np.arange(360) < 120, "early", frame["plan"])
    frame.loc[300, "active"] = False
    frame["late"] = np.where(np.arange(360) >= 300, np.nan, np.arange(360.0))
    Xd = dd.from_pandas(frame, npartitions=3)
    model = quietly(MLPBackpropClassifier(hidden_layer_sizes=(6,), max_iter=2, random_state=0),
                    Xd, dd.from_pandas(pd.Series(y), npartitions=3))
    expected = _table_input_of(frame)
    table = model._table_input
    assert table.columns.kinds == expected.columns.kinds
    for ours, theirs in zip(table.columns.categories, expected.columns.categories):
        np.testing.assert_array_equal(ours, theirs)
    assert "early" in table.columns.categories[1]
    assert table.indicated == expected.indicated
    np.testing.assert_array_equal(table.fill, expected.fill)  # blocks of 120 rows: exact


def _table_input_of(frame):
    from sklearn_gd._table_input import TableInput

    return TableInput.learn(frame, "from_dtype")


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(0, 700), min_size=1, max_size=5).filter(lambda s: sum(s) > 0),
       q=st.sampled_from([50, 25, 75, 5]), seed=st.integers(0, 2**31 - 1))
def test_a_merged_percentile_is_numpys_or_within_a_rank_step(sizes, q, seed):
    """Blocks of at most RANK_POINTS values, or one block holding them all, merge to
    NumPy's percentile exactly (np.median's for 50); larger blocks send
    quantiles, and the merged percentile's rank is within n / K of q n for
    each block that does."""
    from sklearn_gd._data._dask._quantiles import (
        RANK_POINTS,
        merged_percentile,
        numpy_percentile,
        rank_points,
    )

    rng = np.random.default_rng(seed)
    blocks = [rng.standard_t(3, size) * rng.uniform(0.1, 10) for size in sizes]
    values = np.concatenate(blocks)
    merged = merged_percentile([rank_points(block, (q,)) for block in blocks], q)
    if all(size <= RANK_POINTS for size in sizes) or sum(s > 0 for s in sizes) == 1:
        assert merged == numpy_percentile(values, q)
        return
    n, summarised = values.size, sum(size > RANK_POINTS for size in sizes)
    rank = np.searchsorted(np.sort(values), merged)
    assert abs(rank - q / 100 * n) <= summarised * (max(sizes) / RANK_POINTS + 1) + 1


def test_numbers_with_missing_values_on_dask_are_learned_as_in_memory(client, regression):
    """A Dask array of numbers with NaN: found as the chunks are prepared, then
    learned (medians and indicators) as in memory; a model fitted on numbers
    without NaN refuses them when it continues, as in memory."""
    X, y = regression
    X = _with(_with(X, 3, np.nan), 40, np.nan)
    params = dict(hidden_layer_sizes=(6,), batch_size=100, shuffle=False, max_iter=2,
                  random_state=0)
    reference = quietly(GDRegressor(**params), X, y)
    chunked = quietly(GDRegressor(**params), da.from_array(X, chunks=(500, 5)),
                      da.from_array(y, chunks=500))
    np.testing.assert_array_equal(chunked._table_input.fill, reference._table_input.fill)
    assert chunked._table_input.indicated == reference._table_input.indicated == [0]
    np.testing.assert_array_equal(chunked._theta, reference._theta)
    in_chunks = quietly(GDRegressor(**params), da.from_array(X, chunks=(100, 5)),
                        da.from_array(y, chunks=100))
    np.testing.assert_array_equal(in_chunks._table_input.fill, reference._table_input.fill)
    np.testing.assert_allclose(in_chunks.predict(da.from_array(X, chunks=(100, 5))).compute(),
                               in_chunks.predict(X))
    plain = quietly(GDRegressor(**params), da.from_array(regression[0], chunks=(100, 5)),
                    da.from_array(y, chunks=100))
    with pytest.raises(ValueError, match="fitted on numbers without missing values"):
        plain.partial_fit(da.from_array(X, chunks=(100, 5)), da.from_array(y, chunks=100))


def test_a_table_model_continues_and_validates_on_dask(client):
    """partial_fit of a table model on Dask encodes with the first fit's columns (a
    category first seen later goes to the reserved slot, as in memory), and an
    in-memory or Dask validation table is encoded as the training table."""
    frame, y = mixed_table()
    params = dict(hidden_layer_sizes=(8,), batch_size=50, shuffle=False, random_state=0)
    reference = MLPBackpropClassifier(**params).partial_fit(frame, y, classes=[0, 1])
    chunked = MLPBackpropClassifier(**params).partial_fit(
        dd.from_pandas(frame, npartitions=1), dd.from_pandas(pd.Series(y), npartitions=1),
        classes=[0, 1])
    later = frame.assign(city=frame["city"].cat.add_categories(["new"]))
    later.loc[:40, "city"] = "new"
    reference.partial_fit(later, y)
    chunked.partial_fit(dd.from_pandas(later, npartitions=1),
                        dd.from_pandas(pd.Series(y), npartitions=1))
    assert "new" not in chunked._table_input.columns.categories[0]
    np.testing.assert_array_equal(chunked._theta, reference._theta)

    stopping = dict(params, early_stopping=True, max_iter=3, n_iter_no_change=10)
    reference = quietly(MLPBackpropClassifier(**stopping), frame[:240], y[:240],
                        X_val=frame[240:], y_val=y[240:])
    for X_val in (frame[240:], dd.from_pandas(frame[240:], npartitions=2)):
        chunked = quietly(MLPBackpropClassifier(**stopping),
                          dd.from_pandas(frame[:240], npartitions=1),
                          dd.from_pandas(pd.Series(y[:240]), npartitions=1),
                          X_val=X_val, y_val=y[240:])
        np.testing.assert_allclose(chunked.validation_loss_curve_,
                                   reference.validation_loss_curve_, rtol=1e-9)


def test_a_dask_table_is_refused_as_in_memory_naming_the_column(client):
    """Text with categorical_features=None, a column with no value, a category
    column declaring more categories than the whole table has rows, dates, an
    infinite number: the in-memory errors, naming the column."""
    frame, y = mixed_table(n_rows=60)
    many = pd.Categorical(frame["plan"].fillna("basic"),
                          categories=[f"k{i}" for i in range(70)] + ["basic", "plus", "pro"])
    cases = [
        (frame, dict(categorical_features=None)),
        (frame.assign(empty=np.nan), {}),
        (frame.assign(code=many), {}),
        (frame.assign(when=pd.date_range("2020-01-01", periods=60)), {}),
        (frame.assign(amount=frame["amount"].where(frame.index != 40, np.inf)), {}),
    ]
    for table, params in cases:
        model = MLPBackpropClassifier(hidden_layer_sizes=(4,), max_iter=2, **params)
        with pytest.raises(ValueError) as in_memory:
            model.fit(table, y)
        with pytest.raises(type(in_memory.value), match=f"^{re.escape(str(in_memory.value))}$"):
            model.fit(dd.from_pandas(table, npartitions=3), dd.from_pandas(pd.Series(y),
                                                                           npartitions=3))


def test_the_robust_scaler_learns_and_scales_dask_collections_blockwise(client):
    """RobustSmoothClipScaler on a Dask dataframe (numeric_only) or array: the
    in-memory statistics (exact for blocks of at most RANK_POINTS values), and
    lazy transforms equal to the in-memory ones."""
    from sklearn_gd import RobustSmoothClipScaler

    frame, _ = mixed_table(n_rows=360)
    in_memory = RobustSmoothClipScaler(numeric_only=True, dtype=np.float32).fit(frame)
    scaler = RobustSmoothClipScaler(numeric_only=True, dtype=np.float32).fit(
        dd.from_pandas(frame, npartitions=2))
    np.testing.assert_array_equal(scaler.numeric_columns_, in_memory.numeric_columns_)
    np.testing.assert_array_equal(scaler.center_, in_memory.center_)
    np.testing.assert_array_equal(scaler.scale_, in_memory.scale_)
    assert list(scaler.feature_names_in_) == list(frame.columns)
    scaled = scaler.transform(dd.from_pandas(frame, npartitions=3))
    assert isinstance(scaled, dd.DataFrame)
    expected = in_memory.transform(frame)
    np.testing.assert_array_equal(scaled.compute()[["amount", "count"]].to_numpy(),
                                  expected[["amount", "count"]].to_numpy())
    back = scaler.inverse_transform(scaled)
    assert isinstance(back, dd.DataFrame)
    np.testing.assert_allclose(back.compute()[["amount", "count"]].to_numpy(),
                               in_memory.inverse_transform(expected)[["amount", "count"]])

    X = _with(np.random.default_rng(0).standard_t(3, (500, 3)), 7, np.nan)
    in_memory = RobustSmoothClipScaler().fit(X)
    scaler = RobustSmoothClipScaler().fit(da.from_array(X, chunks=(100, 3)))
    np.testing.assert_array_equal(scaler.center_, in_memory.center_)
    np.testing.assert_array_equal(scaler.scale_, in_memory.scale_)
    scaled = scaler.transform(da.from_array(X, chunks=(100, 3)))
    assert isinstance(scaled, da.Array)
    np.testing.assert_array_equal(scaled.compute(), in_memory.transform(X))
    np.testing.assert_allclose(scaler.inverse_transform(scaled).compute(), X, rtol=1e-9)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_tabular_recipe_trains_on_a_dask_table(client):
    """make_tabular_classifier on a Dask dataframe: its scaler and its network
    learn on the cluster; without the steps that draw on the workers (dropout,
    shuffling, the held-out split) one partition gives the in-memory model."""
    from sklearn_gd import make_tabular_classifier

    frame, y = mixed_table()
    params = dict(max_iter=2, hidden_layer_sizes=(16,), random_state=0, early_stopping=False,
                  dropout=0.0, shuffle=False, label_smoothing=0.0)
    reference = make_tabular_classifier(**params).fit(frame, y)
    chunked = make_tabular_classifier(**params).fit(dd.from_pandas(frame, npartitions=1),
                                                     dd.from_pandas(pd.Series(y), npartitions=1))
    np.testing.assert_array_equal(chunked[-1]._theta, reference[-1]._theta)
    recipe = make_tabular_classifier(max_iter=4, hidden_layer_sizes=(16,), random_state=0)
    recipe.fit(dd.from_pandas(frame, npartitions=2), dd.from_pandas(pd.Series(y), npartitions=2))
    predicted = recipe.predict(dd.from_pandas(frame, npartitions=2))
    np.testing.assert_array_equal(predicted.compute(), recipe.predict(frame))
