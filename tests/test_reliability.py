"""Bad input, divergence, interruption and determinism (what users are promised)."""

import pickle
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from sklearn_gd import GDRegressor, MLPBackpropClassifier
from sklearn_gd._train._trainer import DivergenceWarning

rng = np.random.default_rng(0)
X = rng.normal(size=(30, 4))
y_reg = X @ [1.0, -2.0, 0.5, 0.0]
y_clf = (X[:, 0] > 0).astype(int)


def with_value(array, index, value):
    out = np.array(array, dtype=float)
    out[index] = value
    return out


REG, CLF = GDRegressor, MLPBackpropClassifier

# (estimator class, params, fit args, expected error type, message regex)
BAD_FIT_INPUT = [
    (REG, {}, (with_value(X, (1, 2), np.inf), y_reg), "Input X contains infinity"),
    (REG, {}, (X, with_value(y_reg, 3, np.nan)), "Input y contains NaN"),
    (REG, {}, (X, with_value(y_reg, 3, -np.inf)), "Input y contains infinity"),
    (CLF, {}, (X, with_value(y_clf, 3, np.nan)), "Input y contains NaN"),
    (REG, {}, (X, y_reg, with_value(np.ones(30), 2, np.nan)), "sample_weight contains NaN"),
    (REG, {}, (X, y_reg, with_value(np.ones(30), 2, np.inf)), "sample_weight contains infinity"),
    (REG, {}, (X, y_reg, with_value(np.ones(30), 2, -1.0)), "[Nn]egative values in data passed to `sample_weight`"),
    (REG, {}, (X, y_reg, np.zeros(30)), "[Ss]ample weights must contain at least one non-zero|sample_weight sums to zero"),
    (REG, {}, (X, y_reg, np.ones(29)), r"sample_weight.shape == \(29,\), expected \(30,\)"),
    (REG, {}, (X[0], y_reg), "Expected 2D array, got 1D array"),
    (REG, {}, (X, y_reg[:-1]), "inconsistent numbers of samples"),
    (REG, {}, (X[:0], y_reg[:0]), "0 sample"),
    (REG, {}, (X[:, :0], y_reg), "0 feature"),
    (CLF, {}, (X, np.zeros(30)), "at least 2 classes"),
    (CLF, {}, (X[:1], y_clf[:1]), "at least 2 classes"),
    (CLF, {}, (X, y_reg), "Unknown label type"),
    (CLF, {}, (X, np.array([None, 1] * 15, dtype=object)), "Unknown label type"),
    (REG, {"loss": "poisson"}, (X, y_reg), "poisson.*non-negative"),
    (CLF, {"class_weight": {0: -1.0, 1: 1.0}}, (X, y_clf),
     r"class_weight must be finite and non-negative; it gives \[-1.0\] to classes \[0\]"),
    (CLF, {"class_weight": {0: np.inf, 1: 1.0}}, (X, y_clf), "class_weight must be finite"),
    (CLF, {"class_weight": {0: 0.0, 1: 0.0}}, (X, y_clf), "sample_weight times class_weight sums to zero"),
    (CLF, {"class_weight": {0: 0.0, 1: 1.0}}, (X, y_clf, (1 - y_clf).astype(float)),
     "sample_weight times class_weight sums to zero"),
    (CLF, {"class_weight": {0: 1e300, 1: 1e300}}, (X, y_clf, np.full(30, 1e10)),
     "sample_weight times class_weight sums to more than the largest float64"),
    (REG, {}, (X, np.array(["a", "b"] * 15)), "y must be numeric for a regressor: could not convert"),
    (REG, {"early_stopping": True}, (X[:1], y_reg[:1]), "early_stopping.*validation_fraction"),
    (CLF, {"early_stopping": True}, (X[:3], [0, 1, 1]), "early_stopping.*validation_fraction"),
    # one validation sample: R^2 undefined (NaN scores and a warning per epoch before)
    (REG, {"early_stopping": True}, (X[:10], y_reg[:10]),
     r"held out only one of 10 samples \(validation_fraction=0.1\).*at least two"),
    # one weighted sample: the training or the validation part gets none
    (CLF, {"early_stopping": True}, (X, y_clf, with_value(np.zeros(30), 4, 1.0)),
     r"validation_fraction=0.1.*part has no sample of positive weight \(1 of 30"),
    (REG, {"early_stopping": True}, (X, y_reg, with_value(np.zeros(30), 4, 1.0)),
     "part has no sample of positive weight"),
]


@pytest.mark.parametrize("cls, params, args, message", BAD_FIT_INPUT)
def test_bad_fit_input_gives_a_clear_error(cls, params, args, message):
    with pytest.raises(ValueError, match=message):
        cls(**params).fit(*args)


# partial_fit of a fitted model on arrays that the plain-array path could take
BAD_PARTIAL_FIT_INPUT = [
    (REG, (with_value(X, (0, 0), np.nan), y_reg), "Input X contains NaN"),
    (REG, (with_value(X, (1, 2), np.inf), y_reg), "Input X contains infinity"),
    (REG, (X, with_value(y_reg, 3, np.nan)), "Input y contains NaN"),
    (REG, (X, with_value(y_reg, 3, np.inf)), "Input y contains infinity"),
    (REG, (X, np.full(30, 1e308)), None),  # finite, but its sum overflows: the long path
    (CLF, (X, with_value(y_clf, 3, np.nan)), "Input y contains NaN"),
    (REG, (X, y_reg[:-1]), "inconsistent numbers of samples"),
    (REG, (X[:, :3], y_reg), "X has 3 features, but GDRegressor is expecting 4"),
    (REG, (X[:0], y_reg[:0]), "0 sample"),
    (REG, (X, y_reg[:, None, None]), None),  # 3-D y: scikit-learn's own check
]


@pytest.mark.filterwarnings("ignore::sklearn_gd.DivergenceWarning")  # 1e308 targets diverge, as in fit
@pytest.mark.parametrize("cls, args, message", BAD_PARTIAL_FIT_INPUT)
def test_bad_partial_fit_input_gives_the_same_error_as_fit(cls, args, message):
    est = cls(hidden_layer_sizes=(3,), random_state=0)
    est.partial_fit(X, y_reg if cls is REG else y_clf, **({} if cls is REG else {"classes": [0, 1]}))
    if message is None:  # whatever validate_data says, partial_fit says the same
        try:
            cls(hidden_layer_sizes=(3,), random_state=0).fit(*args)
        except ValueError as exc:
            message = str(exc)[:40]
        else:
            est.partial_fit(*args)
            return
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        est.partial_fit(*args)


@pytest.mark.parametrize("cls", [REG, CLF])
def test_partial_fit_on_plain_arrays_equals_the_validated_path(cls):
    """ndarrays skip validate_data; lists and float32 rows take it: same model."""
    target = y_reg if cls is REG else y_clf
    kwargs = {} if cls is REG else {"classes": [0, 1]}
    plain, validated = (cls(hidden_layer_sizes=(3,), random_state=0) for _ in range(2))
    for est, as_input in ((plain, np.asarray), (validated, lambda a: a.tolist())):
        est.partial_fit(X, target, **kwargs)
        for rows in (slice(0, 10), slice(10, 30)):
            est.partial_fit(as_input(X[rows]), as_input(target[rows]))
        est.partial_fit(X.astype(np.float32), target[:, None] if cls is REG else target)
    np.testing.assert_array_equal(plain._theta, validated._theta)
    assert plain.loss_curve_ == validated.loss_curve_


BAD_PARAMS = [
    ("hidden_layer_sizes", 0), ("hidden_layer_sizes", (3, 0)), ("hidden_layer_sizes", "abc"),
    ("hidden_layer_sizes", (2.5,)), ("hidden_layer_sizes", True), ("hidden_layer_sizes", (4, False)),
    ("activation", "swish"), ("solver", "newton"),
    ("alpha", -1.0), ("batch_size", 0), ("batch_size", "big"), ("learning_rate", "step"),
    ("learning_rate_init", 0.0), ("power_t", -0.5), ("max_iter", 0), ("shuffle", "yes"),
    ("random_state", "seed"), ("tol", -1.0), ("momentum", 1.5), ("nesterovs_momentum", 2),
    ("early_stopping", "no"), ("validation_fraction", 1.0), ("validation_fraction", 0.0),
    ("beta_1", 1.0), ("beta_2", -0.1), ("epsilon", 0.0), ("n_iter_no_change", 0),
    ("max_fun", 0), ("dropout", 1.0), ("dropout", -0.1), ("dropout", [0.5, "a"]),
    ("dropout", [[0.1]]), ("dropout", [np.nan]), ("dropout", [1.0]), ("input_noise", -1.0),
    ("weight_decay", -0.1), ("rho", 1.0), ("warm_start", "x"),
]


@pytest.mark.parametrize("cls", [REG, CLF])
@pytest.mark.parametrize("name, value", BAD_PARAMS)
def test_invalid_parameter_names_the_parameter(cls, name, value):
    params = {"hidden_layer_sizes": (3,), name: value}
    y = y_reg if cls is REG else y_clf
    with pytest.raises((ValueError, TypeError), match=name):
        cls(**params).fit(X, y)


def test_regressor_specific_parameters_are_validated():
    for name, value in [("loss", "absolute"), ("huber_delta", 0.0)]:
        with pytest.raises(ValueError, match=name):
            GDRegressor(**{name: value}).fit(X, y_reg)


def test_wrong_feature_count_and_unseen_classes():
    reg = GDRegressor(solver="lbfgs").fit(X, y_reg)
    with pytest.raises(ValueError, match="X has 3 features, but GDRegressor is expecting 4"):
        reg.predict(X[:, :3])
    clf = MLPBackpropClassifier(hidden_layer_sizes=(3,))
    clf.partial_fit(X, y_clf, classes=[0, 1])
    with pytest.raises(ValueError, match=r"labels \[5\] that are not in classes_"):
        clf.partial_fit(X[:2], [0, 5])
    with pytest.raises(ValueError, match="X has 5 features"):
        clf.partial_fit(np.ones((2, 5)), [0, 1])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # stops early on purpose
def test_plain_ndarray_prediction_skips_validation_but_not_its_checks():
    """A finite float ndarray goes straight to the network (fast path); the
    same rows as a list take ``validate_data``: same predictions. Input the
    fast path must not accept still gets scikit-learn's errors and warnings."""
    clf = MLPBackpropClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0)
    clf.fit(X, y_clf)
    for rows in (X, np.asfortranarray(X), X.astype(np.float32), X[:1]):
        np.testing.assert_array_equal(clf.predict_proba(rows), clf.predict_proba(rows.tolist()))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.predict(with_value(X, (0, 0), np.nan))
    with pytest.raises(ValueError, match="Input X contains infinity"):
        clf.predict(with_value(X, (0, 0), -np.inf))
    with pytest.raises(ValueError, match="0 sample"):
        clf.predict(X[:0])
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="Expected 2D array"):
        clf.predict(X[0])
    pd = pytest.importorskip("pandas")
    named = MLPBackpropClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0)
    named.fit(pd.DataFrame(X, columns=list("abcd")), y_clf)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        named.predict(X)


def test_predict_overflow_is_reported_not_returned_as_nan():
    reg = GDRegressor(solver="lbfgs").fit(X, y_reg)  # coefficients near (1, -2, 0.5, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # only our error, no NumPy overflow noise
        with pytest.raises(ValueError, match="non-finite predictions.*scale"):
            reg.predict(np.full((2, 4), 1e308))


# Finite values near the largest float: sums of them overflow
HUGE = np.finfo(np.float64).max / 2


def test_targets_near_the_largest_float_give_a_finite_model():
    """The initial output bias is y's mean, which must not overflow to inf:
    training then diverges (a DivergenceWarning, no NumPy noise) and keeps
    the finite initial model, as for any diverging fit."""
    for y in (np.full(30, HUGE), np.where(y_clf == 1, HUGE, HUGE / 3)):
        reg = GDRegressor(hidden_layer_sizes=(3,), random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            with pytest.warns(DivergenceWarning):
                reg.fit(X, y)
        assert np.isfinite(reg._theta).all()
        assert np.isclose(reg.intercepts_[-1][0], np.sum(y / y.size), rtol=1e-12)  # y's mean
    reg = GDRegressor(hidden_layer_sizes=(3,), random_state=0).partial_fit(X, y_reg)
    before = reg._theta.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.warns(DivergenceWarning):
            reg.partial_fit(X, np.full(30, HUGE))  # takes the plain-array check, then diverges
    np.testing.assert_array_equal(reg._theta, before)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # stops early on purpose
def test_targets_beyond_a_float32_models_range_are_an_error():
    """float32 X makes a float32 model: y past float32's range would become
    inf in its targets."""
    with pytest.raises(ValueError, match=r"y has values too large for a float32 model.*1e\+300"):
        GDRegressor(hidden_layer_sizes=(3,)).fit(X.astype(np.float32), np.full(30, 1e300))
    reg = GDRegressor(hidden_layer_sizes=(3,), random_state=0).fit(X.astype(np.float32), y_reg)
    before = reg._theta.copy()
    with pytest.raises(ValueError, match="y has values too large for a float32 model"):
        reg.partial_fit(X.astype(np.float32), with_value(y_reg, 4, -1e39))
    # float64 rows into the float32 model: predicted, or trained on, only if they fit
    for call in (reg.predict, lambda rows: reg.partial_fit(rows, y_reg)):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            with pytest.raises(ValueError, match=r"X has values too large for a float32 model"):
                call(with_value(X, (2, 1), 1e39))
    np.testing.assert_array_equal(reg._theta, before)
    np.testing.assert_array_equal(reg.predict(X), reg.predict(X.astype(np.float32)))


def test_sample_weights_whose_sum_overflows_are_an_error():
    with pytest.raises(ValueError, match="sample_weight sums to more than the largest float64"):
        GDRegressor(hidden_layer_sizes=(3,)).fit(X, y_reg, sample_weight=np.full(30, HUGE))
    with pytest.raises(ValueError, match="sample_weight sums to more than the largest float32"):
        GDRegressor(hidden_layer_sizes=(3,)).fit(X.astype(np.float32), y_reg,
                                                 sample_weight=np.full(30, 3e37))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # stops early on purpose
def test_regressor_parses_numeric_string_targets_as_ridge_does():
    from sklearn.linear_model import Ridge

    as_text = y_reg.astype(str)
    assert Ridge().fit(X, as_text).coef_.shape == (4,)  # scikit-learn's regressors accept them
    for solver in ("lbfgs", "adam"):
        text, numbers = (GDRegressor(hidden_layer_sizes=(), solver=solver, max_iter=20,
                                     random_state=0).fit(X, target) for target in (as_text, y_reg))
        np.testing.assert_array_equal(text.predict(X), numbers.predict(X))


# ---------------------------------------------------------------- fuzzing
finite_values = st.sampled_from([0.0, 1.0, -1.0, 1e-300, 1e-8, 1e8, 1e150, -1e150, 3.5])


@st.composite
def datasets(draw):
    n = draw(st.integers(1, 12))
    d = draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.int64]))
    seed = draw(st.integers(0, 2**31))
    kind = draw(st.sampled_from(["normal", "huge", "tiny", "constant", "duplicates", "mixed",
                                 "extreme"]))
    r = np.random.default_rng(seed)
    if kind == "normal":
        Xf = r.normal(size=(n, d))
    elif kind == "huge":
        Xf = r.normal(size=(n, d)) * 1e30
    elif kind == "tiny":
        Xf = r.normal(size=(n, d)) * 1e-30
    elif kind == "constant":
        Xf = np.full((n, d), draw(finite_values))
    elif kind == "duplicates":
        Xf = np.repeat(r.normal(size=(1, d)), n, axis=0)
    elif kind == "extreme":  # near the dtype's largest value: sums and products overflow
        largest = float(np.finfo(np.float32 if dtype is np.float32 else np.float64).max)
        Xf = r.choice([-1.0, 1.0], size=(n, d)) * largest / draw(st.sampled_from([1.0, 3.0, 1e10]))
    else:
        Xf = np.array([[draw(finite_values) for _ in range(d)] for _ in range(n)])
    if dtype is np.float32 and kind != "extreme":
        Xf = np.clip(Xf, -1e30, 1e30)
    Xd = Xf.astype(dtype) if dtype is not np.int64 else np.clip(Xf, -2**62, 2**62).astype(dtype)
    # clipped so that the largest scale stays finite (1.5e308)
    y = np.clip(r.normal(size=n), -1.5, 1.5) * draw(st.sampled_from([1.0, 1e6, 1e-6, 1e300, 1e308]))
    labels = r.integers(0, draw(st.integers(1, 3)), size=n)
    return Xd, y, labels


ALLOWED = (ValueError, TypeError)


def _check_call(fn):
    """Run ``fn``: it must succeed with finite outputs or raise a clear error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", DivergenceWarning)
        # fuzzed data may leave L-BFGS's gradient below tol at the start: it says so
        warnings.filterwarnings("ignore", "L-BFGS made no iteration", UserWarning)
        warnings.simplefilter("error", RuntimeWarning)  # numpy noise must not leak out
        try:
            out = fn()
        except ALLOWED as exc:
            assert str(exc), "errors must explain themselves"
            return None
    if isinstance(out, np.ndarray) and out.dtype.kind == "f":
        assert np.isfinite(out).all()
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=datasets(), hidden=st.sampled_from([(), (3,), (4, 2)]),
       solver=st.sampled_from(["adam", "sgd", "lbfgs"]), classify=st.booleans())
# found by a CI run: finite targets of both signs near the largest float, whose
# sum is inf - inf (NumPy warned inside the regressor's finiteness check)
@example(data=(np.random.default_rng(0).normal(size=(8, 4)),
               np.array([-3.8e307, 1.5e308, 6.5e307, 6.6e307, -5.1e307, -1.5e308, 1.7e307,
                         1.1e307]),
               np.zeros(8, dtype=int)),
         hidden=(), solver="adam", classify=False)
def test_fuzz_fit_partial_fit_predict(data, hidden, solver, classify):
    Xd, y, labels = data
    cls = MLPBackpropClassifier if classify else GDRegressor
    target = labels if classify else y
    est = cls(hidden_layer_sizes=hidden, solver=solver, max_iter=5, random_state=0)
    fitted = _check_call(lambda: est.fit(Xd, target))
    if fitted is None:
        return
    assert np.isfinite(est._theta).all()
    _check_call(lambda: est.predict(Xd))
    if classify:
        proba = _check_call(lambda: est.predict_proba(Xd))
        if proba is not None:
            assert ((proba >= 0) & (proba <= 1)).all()
    if solver != "lbfgs":
        kwargs = {"classes": np.unique(labels)} if classify else {}
        _check_call(lambda: est.partial_fit(Xd, target, **kwargs))
        assert np.isfinite(est._theta).all()


@pytest.mark.parametrize("cls", [REG, CLF])
def test_a_network_too_large_to_allocate_names_its_size(cls):
    """NumPy said "Maximum allowed dimension exceeded" (or "Unable to allocate
    58 TiB"); the error names the parameter and the size, and the model stays as it was."""
    model = cls(hidden_layer_sizes=(10**10, 10**10))
    target = y_clf if cls is CLF else y_reg
    with pytest.raises(MemoryError, match=r"hidden_layer_sizes=\(10000000000, 10000000000\) "
                       r"makes a network of 100,000,000,0\d\d,\d{3},\d{3},\d{3} parameters"):
        model.fit(X, target)
    assert not hasattr(model, "coefs_")


def test_invscaling_with_a_large_power_t_trains():
    # (samples_seen + 1) ** power_t overflows after the first batch: an OverflowError
    # from the schedule before, as in scikit-learn's MLP; the rate is ~0 instead
    reg = GDRegressor(solver="sgd", learning_rate="invscaling", power_t=1e6,
                      batch_size=10, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y_reg)
    assert np.isfinite(reg._theta).all()
    assert reg.n_iter_ == 2


# ---------------------------------------------------------------- divergence
def test_divergence_warns_and_keeps_finite_weights():
    Xb = X * 1e4
    reg = GDRegressor(hidden_layer_sizes=(5,), learning_rate_init=10, solver="sgd",
                      random_state=0)
    with pytest.warns(DivergenceWarning, match="learning rate"):
        reg.fit(Xb, y_reg * 1e4)
    assert np.isfinite(reg._theta).all()
    assert np.isfinite(reg.predict(Xb)).all()


@pytest.mark.parametrize("cls, target", [(REG, y_reg), (CLF, y_clf)])
@pytest.mark.parametrize("max_iter", [1, 3])
def test_a_blown_up_last_step_is_not_kept(cls, target, max_iter):
    """With one batch per epoch every step is an epoch's last: no later batch
    objective checks it. Its weights (~1e300, finite) must not become the
    model, nor the start kept after the next epoch diverges."""
    est = cls(hidden_layer_sizes=(4,), learning_rate_init=1e300, max_iter=max_iter,
              random_state=0)
    with pytest.warns(DivergenceWarning, match="epoch 1"):
        est.fit(X, target)
    assert est.n_iter_ == 0 and est.loss_curve_ == []
    assert np.abs(est._theta).max() < 1.5  # the initial weights (Glorot bounds)
    assert np.isfinite(est.predict(X)).all()


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_divergence_restarts_the_optimizer_state(solver):
    """The diverging steps' moments (inf, NaN or huge) are not carried into a
    later ``partial_fit``: it continues from the kept weights with a new state."""
    reg = GDRegressor(hidden_layer_sizes=(5,), solver=solver, learning_rate_init=1e6,
                      alpha=1e-3, batch_size=5, random_state=0)
    with pytest.warns(DivergenceWarning):
        reg.fit(X, y_reg)
    from sklearn_gd._train._trainer import new_optimizer_state

    config = reg._train_config(reg._layout, incremental=True, max_epochs=1,
                                early_stopping=False)
    fresh = new_optimizer_state(config, reg._state).chain
    for kept, new in zip(reg._opt_state.chain, fresh):
        for name, value in vars(new).items():
            np.testing.assert_array_equal(getattr(kept, name), value)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        reg.set_params(learning_rate_init=1e-3).partial_fit(X, y_reg)
    assert np.isfinite(reg.loss_curve_[-1])


def test_diverging_partial_fit_leaves_model_as_before():
    reg = GDRegressor(hidden_layer_sizes=(5,), solver="sgd", learning_rate_init=1e-3,
                      batch_size=5, random_state=0)
    reg.partial_fit(X, y_reg)
    before = pickle.dumps(reg)
    reg.set_params(learning_rate_init=1e6)
    with pytest.warns(DivergenceWarning):
        reg.partial_fit(X, y_reg)
    after = reg.set_params(learning_rate_init=1e-3)
    restored = pickle.loads(before)
    np.testing.assert_array_equal(after._theta, restored._theta)
    assert (after.n_iter_, after.t_) == (restored.n_iter_, restored.t_)
    # the generator is back too: the next call shuffles as if nothing had failed
    after.partial_fit(X, y_reg)
    restored.partial_fit(X, y_reg)
    np.testing.assert_array_equal(after._theta, restored._theta)


def test_failed_partial_fit_truncates_the_histories_it_appended_to(monkeypatch):
    from sklearn_gd._train import _trainer

    reg = GDRegressor(hidden_layer_sizes=(5,), random_state=0)
    for _ in range(3):
        reg.partial_fit(X, y_reg)
    curve = reg.loss_curve_  # a reference held by the user
    before = list(curve)

    def failing_report(*args, **kwargs):  # runs after the epoch's loss is appended
        raise RuntimeError("report failed")

    monkeypatch.setattr(_trainer, "_report", failing_report)
    with pytest.raises(RuntimeError, match="report failed"):
        reg.partial_fit(X, y_reg)
    assert reg.loss_curve_ is curve and curve == before
    assert reg.n_iter_ == 3


def _model_state(est):
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(est).items()
            if not isinstance(v, np.random.Generator)}


def _assert_same_state(est, state):
    assert set(vars(est)) >= set(state)
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(est, key), value, err_msg=key)
        elif isinstance(value, (int, float, str, list, tuple, type(None))):
            assert getattr(est, key) == value, key


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # stops early on purpose
def test_failed_fit_leaves_the_fitted_model_as_it_was(monkeypatch):
    """Bad input to fit, or an error during its training, does not cost the
    user the model they had (scikit-learn's validation resets the feature
    names, and the classifier its classes, before they raise)."""
    pd = pytest.importorskip("pandas")
    from sklearn_gd._train import _trainer

    frame = pd.DataFrame(X, columns=list("abcd"))
    clf = MLPBackpropClassifier(hidden_layer_sizes=(3,), max_iter=30, random_state=0)
    clf.fit(frame, y_clf)
    state, proba = _model_state(clf), clf.predict_proba(frame)
    bad_calls = [
        lambda: clf.fit(X, np.zeros(30)),  # one class
        lambda: clf.fit(np.ones((30, 5)), with_value(y_clf, 0, np.nan)),  # NaN in y
        lambda: clf.set_params(warm_start=True).fit(frame, [0, 1, 2] * 10),  # new classes
    ]
    for call in bad_calls:
        with pytest.raises(ValueError):
            call()
        clf.set_params(warm_start=False)
        _assert_same_state(clf, state)
        assert list(clf.feature_names_in_) == list("abcd")
        np.testing.assert_array_equal(clf.predict_proba(frame), proba)

    def failing_report(*args, **kwargs):  # after the first epoch's loss is recorded
        raise RuntimeError("report failed")

    monkeypatch.setattr(_trainer, "_report", failing_report)
    with pytest.raises(RuntimeError, match="report failed"):
        clf.fit(frame, y_clf)
    _assert_same_state(clf, state)
    assert clf.loss_curve_ == state["loss_curve_"]
    np.testing.assert_array_equal(clf.predict_proba(frame), proba)


# ---------------------------------------------------------------- interruption

@pytest.mark.parametrize("early_stopping", [False, True])
def test_keyboard_interrupt_leaves_a_usable_model(monkeypatch, early_stopping):
    from sklearn_gd._optim import _optimizers

    calls = {"n": 0}
    original = _optimizers.Chain.step

    def interrupting_step(self, *args):
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(_optimizers.Chain, "step", interrupting_step)
    clf = MLPBackpropClassifier(hidden_layer_sizes=(4,), batch_size=5, max_iter=50,
                                early_stopping=early_stopping, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y_clf)
    assert clf.n_iter_ == len(clf.loss_curve_) >= 1
    assert np.isfinite(clf._theta).all()
    assert clf.predict(X).shape == y_clf.shape
    if early_stopping:
        assert clf.best_iteration_ is not None


def _interrupt_on_call(monkeypatch, owner, name, call, when=lambda *a, **k: True):
    """Make ``owner.name`` raise KeyboardInterrupt on its ``call``-th call for which
    ``when(*args, **kwargs)`` holds (as Ctrl-C would arrive there)."""
    original = getattr(owner, name)
    calls = {"n": 0}

    def interrupting(*args, **kwargs):
        if when(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == call:
                raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, interrupting)


def _phases():
    """Where an epoch can be interrupted: ``(owner, attribute, when)``."""
    from sklearn_gd import _callbacks
    from sklearn_gd._optim import _optimizers
    from sklearn_gd._train import _stopping, _trainer

    return {
        "batch": (_optimizers.Chain, "step", lambda *a, **k: True),
        "validation pass": (_trainer, "record_validation", lambda *a, **k: True),
        "report": (_trainer, "_report", lambda *a, **k: True),
        "stopping rule": (_stopping.NoImprovement, "after_epoch", lambda *a, **k: True),
        "callback end of epoch": (_callbacks.EpochHooks, "end_epoch",
                                  lambda self, state, completed=True: completed),
    }


INTERRUPT_PARAMS = dict(hidden_layer_sizes=(5,), batch_size=10, max_iter=20, tol=0,
                        random_state=0, early_stopping=True, validation_fraction=0.3)


@pytest.mark.parametrize("phase", ["batch", "validation pass", "report", "stopping rule",
                                   "callback end of epoch"])
def test_an_interrupt_in_any_phase_keeps_the_last_completed_epoch(monkeypatch, phase):
    """Interrupted in epoch 4 (in its batches, its validation pass, its report, its
    stopping rule or a callback's end-of-epoch hook): the model is the one a fit of the
    epochs recorded before the interrupt gives, bit for bit, with coherent counters."""
    owner, name, when = _phases()[phase]
    # the batch interrupt comes in epoch 4's first step (21 training rows in batches of
    # 10: 3 steps an epoch), the validation pass's before epoch 4's score is recorded:
    # epoch 4 is undone, three completed; the others come after epoch 4's record: four
    call = {"batch": 3 * 3 + 1}.get(phase, 4)
    _interrupt_on_call(monkeypatch, owner, name, call, when)
    clf = MLPBackpropClassifier(**INTERRUPT_PARAMS)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y_clf)
    monkeypatch.undo()
    completed = 3 if phase in ("batch", "validation pass") else 4
    reference = MLPBackpropClassifier(**{**INTERRUPT_PARAMS, "max_iter": completed})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference.fit(X, y_clf)
    assert clf.n_iter_ == len(clf.loss_curve_) == completed
    assert len(clf.validation_scores_) == len(clf.validation_loss_curve_) == completed
    assert clf.t_ == reference.t_
    assert clf.loss_curve_ == reference.loss_curve_
    assert clf.validation_scores_ == reference.validation_scores_
    assert clf.best_iteration_ == reference.best_iteration_
    assert clf.best_validation_score_ == reference.best_validation_score_
    np.testing.assert_array_equal(clf._theta, reference._theta)
    np.testing.assert_array_equal(clf.predict_proba(X), reference.predict_proba(X))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # stops early on purpose
@pytest.mark.parametrize("phase", ["batch", "validation pass"])
def test_an_interrupt_before_the_first_epoch_completes_keeps_the_model_as_it_was(
        monkeypatch, phase):
    """A refit interrupted in its first epoch leaves the previous model exactly as it
    was (never untrained weights); a first fit leaves the estimator unfitted."""
    owner, name, when = _phases()[phase]
    clf = MLPBackpropClassifier(**INTERRUPT_PARAMS).fit(X, y_clf)
    before = {key: copy_of(value) for key, value in vars(clf).items()}
    proba = clf.predict_proba(X)
    _interrupt_on_call(monkeypatch, owner, name, 1, when)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X[::-1], y_clf[::-1])
    assert clf.n_iter_ == before["n_iter_"] and clf.loss_curve_ == before["loss_curve_"]
    np.testing.assert_array_equal(clf._theta, before["_state"].theta)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    monkeypatch.undo()
    _interrupt_on_call(monkeypatch, owner, name, 1, when)
    _assert_interrupted_first_fit_leaves_it_unfitted(MLPBackpropClassifier(**INTERRUPT_PARAMS),
                                                     y_clf)


def _assert_interrupted_first_fit_leaves_it_unfitted(model, target):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(KeyboardInterrupt):
        model.fit(X, target)
    with pytest.raises(NotFittedError):
        model.predict(X)


def copy_of(value):
    import copy

    return copy.deepcopy(value)


def test_an_interrupted_lbfgs_keeps_its_last_accepted_iterate(monkeypatch):
    """Ctrl-C inside L-BFGS's objective: the model is the last accepted iterate, with
    one loss per iteration; interrupted before its first iteration, the model is as
    it was (unfitted)."""
    from sklearn_gd._data import _in_memory

    params = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=200, tol=0,
                  random_state=0)
    original = _in_memory.full_batch_objective
    evaluations = {"n": 0, "stop_at": 12}

    def interrupting_objective(*args):
        objective = original(*args)

        def counted(theta):
            evaluations["n"] += 1
            if evaluations["n"] == evaluations["stop_at"]:
                raise KeyboardInterrupt
            return objective(theta)

        return counted

    monkeypatch.setattr(_in_memory, "full_batch_objective", interrupting_objective)
    reg = GDRegressor(**params)
    with pytest.raises(KeyboardInterrupt):
        reg.fit(X, y_reg)
    k = reg.n_iter_
    assert 1 <= k == len(reg.loss_curve_) and reg.t_ == k * X.shape[0]
    objective = original(_training_config(reg), _in_memory.TrainData(X, y_reg[:, None]),
                         reg._theta)
    # the kept weights are those whose objective the loss curve recorded last
    assert objective(reg._theta.copy())[0] == pytest.approx(reg.loss_curve_[-1], rel=1e-12)
    assert np.isfinite(reg.predict(X)).all()
    evaluations.update(n=0, stop_at=1)
    _assert_interrupted_first_fit_leaves_it_unfitted(GDRegressor(**params), y_reg)


def _training_config(model):
    return model._train_config(model._layout, incremental=False, max_epochs=1,
                               early_stopping=False)


def test_a_callback_whose_teardown_raises_leaves_the_model_as_it_was():
    pytest.importorskip("sklearn.callback", reason="scikit-learn < 1.9")

    class FailingTeardown:
        """A fit callback (no optional dependency) whose teardown raises."""

        def setup(self, estimator, context):
            pass

        def on_fit_task_begin(self, estimator, context):
            pass

        def on_fit_task_end(self, estimator, context):
            return False

        def teardown(self, estimator, context):
            raise RuntimeError("teardown failed")

    clf = MLPBackpropClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y_clf)
    theta = clf._theta.copy()
    clf.set_callbacks(FailingTeardown())
    with pytest.raises(RuntimeError, match="teardown failed"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.set_params(max_iter=5).fit(X[::-1], y_clf[::-1])
    assert clf.n_iter_ == 3
    np.testing.assert_array_equal(clf._theta, theta)


def test_a_diverging_first_partial_fit_says_the_call_was_undone():
    from sklearn.exceptions import NotFittedError

    reg = GDRegressor(hidden_layer_sizes=(4,), learning_rate_init=10.0, solver="sgd",
                      batch_size=5, random_state=0)
    with pytest.warns(DivergenceWarning, match="partial_fit call was undone.*unfitted"):
        reg.partial_fit(X * 1e3, y_reg * 1e3)
    with pytest.raises(NotFittedError):
        reg.predict(X)


def test_predict_during_a_refit_in_another_thread_never_fails():
    """The fitted model is assigned in one step: threads predicting while another
    refits (with and without the input block) see the old model or the new one."""
    import threading

    clf = MLPBackpropClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y_clf)
    errors, done = [], threading.Event()

    def predict_until_done():
        while not done.is_set():
            try:
                assert clf.predict_proba(X).shape == (30, 2)
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc)
                return

    readers = [threading.Thread(target=predict_until_done) for _ in range(2)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: inside the assignment, if it had steps
    for reader in readers:
        reader.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for i in range(60):
                clf.set_params(embedding="periodic" if i % 2 else None,
                               input_scale=bool(i % 3), random_state=i).fit(X, y_clf)
    finally:
        done.set()
        for reader in readers:
            reader.join()
        sys.setswitchinterval(interval)
    assert errors == []


@pytest.mark.parametrize("make, target", [(MLPBackpropClassifier, y_clf), (GDRegressor, y_reg)])
def test_a_one_row_validation_set_is_refused_as_the_held_out_split_is(make, target):
    model = make(hidden_layer_sizes=(3,), early_stopping=True, random_state=0)
    with pytest.raises(ValueError, match="X_val has 1 sample.*at least two"):
        model.fit(X, target, X_val=X[:1], y_val=target[:1])
    with pytest.raises(ValueError, match="at least two"):
        GDRegressor(early_stopping=True, validation_fraction=0.01).fit(X, y_reg)


# ---------------------------------------------------------------- determinism
def test_pickle_round_trip_continues_bit_identically():
    clf = MLPBackpropClassifier(hidden_layer_sizes=(6,), dropout=0.3, batch_size=8,
                                random_state=1)
    clf.partial_fit(X, y_clf, classes=[0, 1])
    twin = pickle.loads(pickle.dumps(clf))
    for model in (clf, twin):
        model.partial_fit(X, y_clf)
        model.partial_fit(X, y_clf)
    np.testing.assert_array_equal(clf._theta, twin._theta)
    np.testing.assert_array_equal(clf.predict_proba(X), twin.predict_proba(X))


def test_failed_first_partial_fit_leaves_the_model_unfitted():
    from sklearn.exceptions import NotFittedError

    clf = MLPBackpropClassifier(hidden_layer_sizes=(3,))
    with pytest.raises(ValueError, match="not in classes_"):
        clf.partial_fit(X, y_clf, classes=[0, 7])
    with pytest.raises(NotFittedError):
        clf.predict(X)
    assert not hasattr(clf, "n_features_in_")


def test_switching_solver_between_partial_fit_calls_starts_a_fresh_optimizer():
    reg = GDRegressor(hidden_layer_sizes=(3,), solver="adam", random_state=0)
    reg.partial_fit(X, y_reg)
    reg.set_params(solver="sgd").partial_fit(X, y_reg)
    assert reg._opt_state.solver == "sgd" and reg.n_iter_ == 2
    assert np.isfinite(reg._theta).all()


# ---------------------------------------------------------------- what users are told
@pytest.mark.parametrize("cls", [REG, CLF])
def test_features_far_too_large_get_the_scaling_advice_from_both_estimators(cls):
    """The classifier's loss on X * 1e300 is huge but finite at the first step: it is
    judged against the constant model's (the output bias alone), as the regressor's
    blow-up is, and both stop with the same advice, keeping the initial weights."""
    target = y_clf if cls is CLF else y_reg
    est = cls(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with pytest.warns(DivergenceWarning, match="epoch 1.*Try scaling the features"):
        est.fit(X * 1e300, target)
    assert est.n_iter_ == 0 and est.loss_curve_ == []
    fresh = cls(hidden_layer_sizes=(4,), max_iter=1, random_state=0)
    with pytest.warns(DivergenceWarning):
        fresh.fit(X * 1e300, target)
    np.testing.assert_array_equal(est.coefs_[0], fresh.coefs_[0])


def test_lbfgs_that_makes_no_iteration_says_so():
    """One sample of non-zero weight: the initial output bias already predicts it, the
    gradient is below tol, L-BFGS stops at once; a warning says why and what to do."""
    sw = np.zeros(len(X))
    sw[3] = 1.0
    clf = CLF(solver="lbfgs", random_state=0)
    with pytest.warns(UserWarning, match="L-BFGS made no iteration.*Only one sample has a "
                      "non-zero weight"):
        clf.fit(X, y_clf, sample_weight=sw)
    assert clf.n_iter_ == 0 and clf.loss_curve_ == [] and clf.loss_ is None


def test_a_validation_set_too_small_is_named_as_scikit_learn_names_it():
    with pytest.raises(ValueError, match="The validation set is too small: .*held out only "
                       "one of 2 samples"):
        REG(early_stopping=True).fit(X[:2], y_reg[:2])


# ---------------------------------------------------------------- memory
@pytest.mark.parametrize("solver, early_stopping, hidden",
                         [("adam", False, (300, 300)), ("lbfgs", False, (150, 150)),
                          ("sgd", True, (200,))])
def test_the_memory_estimate_is_within_a_factor_of_two_of_the_peak(solver, early_stopping,
                                                                   hidden):
    """The estimate against the peak NumPy allocations of a fit (tracemalloc sees them)."""
    import tracemalloc

    from sklearn_gd._memory import training_memory

    data = np.random.default_rng(0).normal(size=(1500, 40))
    target = np.arange(1500) % 3
    model = CLF(hidden_layer_sizes=hidden, solver=solver, early_stopping=early_stopping,
                batch_size=128, max_iter=2, random_state=0)
    tracemalloc.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(data, target)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    batch = 1500 if solver == "lbfgs" else 128
    parts = training_memory([40, *hidden, 3], 8, solver, batch, 1500, 40,
                            holds_out=early_stopping)
    assert 0.5 <= sum(parts.values()) / peak <= 2.0


@pytest.mark.parametrize("cls", [REG, CLF])
def test_a_network_that_needs_more_memory_than_available_is_refused(cls, monkeypatch):
    from sklearn_gd import _memory

    target = y_clf if cls is CLF else y_reg
    model = cls(hidden_layer_sizes=(64,), max_iter=2, random_state=0)
    monkeypatch.setattr(_memory, "CHECKED_FROM_BYTES", 0)
    monkeypatch.setattr(_memory, "available_memory", lambda: 2**16)  # 64 KiB
    with pytest.raises(MemoryError, match=r"hidden_layer_sizes=\(64,\) makes a network of "
                       r"\d+ parameters, which needs about .* GiB to train \(parameters .*"
                       r"optimizer .*\): more than the 0.00 GiB of memory available"):
        model.fit(X, target)
    assert not hasattr(model, "coefs_")
    monkeypatch.setattr(_memory, "available_memory", lambda: None)  # unknown: no check
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, target)
    assert model.n_iter_ == 2
