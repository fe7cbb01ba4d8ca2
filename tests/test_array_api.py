"""Training in other array libraries under ``array_api_dispatch`` (array_api_strict,
PyTorch on CPU/CUDA/MPS, CuPy): same results as NumPy, parameters where the data is,
masks from the library's generator, clear refusals, saving and moving models."""

import importlib
import os
import pickle
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.datasets import make_classification, make_regression

from sklearn_gd import GDRegressor, MLPBackpropClassifier, move_model
from sklearn_gd._compat import ARRAY_API_TRAINING
from sklearn_gd._data._batches import Regularizers
from sklearn_gd._engine._array_api import Generator, namespace, to_numpy
from sklearn_gd._engine._backend import NUMPY, ArrayApiBackend
from sklearn_gd._testing import assert_allclose_in_dtype, rounding_tolerance

pytestmark = [
    pytest.mark.skipif(not ARRAY_API_TRAINING, reason="needs scikit-learn >= 1.8"),
    pytest.mark.skipif(os.environ.get("SCIPY_ARRAY_API") != "1",
                       reason="SCIPY_ARRAY_API=1 is not set"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]

LIBRARIES = [
    pytest.param(("array_api_strict", None), id="array_api_strict"),
    pytest.param(("torch", "cpu"), id="torch-cpu"),
    pytest.param(("torch", "cuda"), id="torch-cuda"),
    pytest.param(("torch", "mps"), id="torch-mps"),
    pytest.param(("cupy", None), id="cupy"),
]


@pytest.fixture(params=LIBRARIES)
def lib(request):
    """``(module, device)`` of an available library; skips with the reason otherwise."""
    name, device = request.param
    module = pytest.importorskip(name)
    if name == "torch" and device == "cuda" and not module.cuda.is_available():
        pytest.skip("no CUDA device")
    if name == "torch" and device == "mps" and not module.backends.mps.is_available():
        pytest.skip("no MPS device")
    if name == "cupy":
        try:
            module.cuda.runtime.getDeviceCount()
        except Exception as exc:  # noqa: BLE001 - CuPy raises its own runtime errors
            pytest.skip(f"CuPy has no device: {exc}")
    return module, device


def has_float64(lib):
    return lib[1] != "mps"


def on(lib, a):
    module, device = lib
    return module.asarray(np.asarray(a), device=device)


def dispatch():
    return sklearn.config_context(array_api_dispatch=True)


def data(kind, dtype=np.float64):
    if kind == "classifier":
        X, y = make_classification(n_samples=90, n_features=5, n_informative=3, n_classes=3,
                                   random_state=0)
    else:
        X, y = make_regression(n_samples=90, n_features=5, n_targets=2, noise=1.0,
                               random_state=0)
        y = y / 50
    return X.astype(dtype), y


MODELS = {"classifier": MLPBackpropClassifier, "regressor": GDRegressor}
SMALL = dict(hidden_layer_sizes=(8,), max_iter=12, batch_size=32, alpha=1e-3, random_state=0)
#: dependent steps of a SMALL fit (12 epochs of 3 batches) and its prediction (2 layers),
#: the depth of float32 comparisons between libraries (see rounding_tolerance)
SMALL_FIT_DEPTH = 12 * 3 + 2


def fit_both(lib, kind, dtype=np.float64, sample_weight=None, **params):
    """The same model fitted on NumPy arrays and on the library's."""
    X, y = data(kind, dtype)
    make = MODELS[kind]
    sw = {} if sample_weight is None else {"sample_weight": sample_weight}
    reference = make(**{**SMALL, **params}).fit(X, y, **sw)
    with dispatch():
        sw = {} if sample_weight is None else {"sample_weight": on(lib, sample_weight)}
        model = make(**{**SMALL, **params}).fit(on(lib, X), on(lib, y), **sw)
    return reference, model, X


def assert_same_predictions(reference, model, X, lib, rtol):
    """Predictions as NumPy's: to ``rtol`` in float64; in float32 to the rounding of a
    SMALL fit (two libraries' float32 sums differ by more than 1e-5 on some CPUs)."""
    with dispatch():
        X_lib = on(lib, X)
        outputs = [("predict", model.predict(X_lib))]
        if hasattr(model, "predict_proba"):
            outputs.append(("predict_proba", model.predict_proba(X_lib)))
    for method, result in outputs:
        assert namespace(result) is namespace(X_lib), method
        expected = getattr(reference, method)(X)
        if expected.dtype == np.float32:
            assert_allclose_in_dtype(to_numpy(result), expected, np.float32,
                                     depth=SMALL_FIT_DEPTH, err_msg=method)
        else:
            np.testing.assert_allclose(to_numpy(result), expected, rtol=rtol, atol=rtol * 1e-2,
                                       err_msg=method)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("solver, params", [
    ("adam", {}),
    ("sgd", {"learning_rate": "invscaling", "learning_rate_init": 0.05}),
    ("adamw", {"learning_rate": "cosine"}),
    ("rmsprop", {"learning_rate": "adaptive"}),
    ("adagrad", {"learning_rate_init": 0.05}),
    ("lbfgs", {"max_iter": 30}),
])
def test_same_results_as_numpy_in_float64(lib, kind, solver, params):
    if not has_float64(lib):
        pytest.skip("the device has no float64")
    reference, model, X = fit_both(lib, kind, solver=solver, **params)
    theta = model._theta
    assert namespace(theta) is namespace(on(lib, X[:1]))
    assert type(model.coefs_[0]) is type(theta) and model.coefs_[0].shape == (5, 8)
    np.testing.assert_allclose(to_numpy(theta), reference._theta, rtol=1e-10, atol=1e-12)
    assert model.n_iter_ == reference.n_iter_ and model.t_ == reference.t_
    np.testing.assert_allclose(model.loss_curve_, reference.loss_curve_, rtol=1e-10)
    assert_same_predictions(reference, model, X, lib, rtol=1e-10)
    with dispatch():
        score = model.score(on(lib, X), on(lib, data(kind)[1]))
    assert isinstance(score, float)
    assert score == pytest.approx(reference.score(X, data(kind)[1]), abs=1e-6)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_same_results_as_numpy_in_float32(lib, kind):
    reference, model, X = fit_both(lib, kind, dtype=np.float32, solver="adam")
    assert to_numpy(model._theta).dtype == np.float32
    assert_same_predictions(reference, model, X, lib, rtol=1e-5)


def test_weights_early_stopping_and_validation_as_numpy(lib):
    if not has_float64(lib):
        pytest.skip("the device has no float64")
    sw = np.random.default_rng(0).uniform(0.2, 2.0, 90)
    params = dict(class_weight="balanced", early_stopping=True, validation_fraction=0.25,
                  n_iter_no_change=3, max_iter=30, shuffle=True)
    reference, model, X = fit_both(lib, "classifier", sample_weight=sw, **params)
    assert model.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(model.validation_scores_, reference.validation_scores_,
                               rtol=1e-10)
    assert model.best_iteration_ == reference.best_iteration_
    assert_same_predictions(reference, model, X, lib, rtol=1e-10)


def test_user_validation_set_and_continued_training(lib):
    X, y = data("regressor", np.float32)
    make = lambda: GDRegressor(**{**SMALL, "early_stopping": True})  # noqa: E731
    reference = make().fit(X[:60], y[:60], X_val=X[60:], y_val=y[60:])
    reference.partial_fit(X, y)
    with dispatch():
        model = make().fit(on(lib, X[:60]), on(lib, y[:60]), X_val=on(lib, X[60:]),
                           y_val=on(lib, y[60:]))
        model.partial_fit(on(lib, X), on(lib, y))
    assert_allclose_in_dtype(model.validation_scores_, reference.validation_scores_,
                             np.float32, depth=SMALL_FIT_DEPTH)
    assert model.n_iter_ == reference.n_iter_
    assert_same_predictions(reference, model, X, lib, rtol=1e-5)


def test_partial_fit_with_classes_of_the_library(lib):
    X, y = data("classifier", np.float32)
    reference = MLPBackpropClassifier(**SMALL).partial_fit(X, y, classes=[0, 1, 2])
    with dispatch():
        model = MLPBackpropClassifier(**SMALL).partial_fit(on(lib, X), on(lib, y),
                                                            classes=on(lib, [0, 1, 2]))
        labels = model.predict(on(lib, X))
    np.testing.assert_array_equal(to_numpy(labels), reference.predict(X))
    assert namespace(labels) is namespace(on(lib, X[:1]))


def test_targets_and_weights_follow_X(lib):
    """scikit-learn's convention: y and sample_weight move to X's library and device."""
    X, y = data("classifier", np.float32)
    with dispatch():
        model = MLPBackpropClassifier(**SMALL).fit(on(lib, X), y.tolist(),
                                                   sample_weight=np.ones(90))
        assert model.score(on(lib, X), y) == pytest.approx(
            MLPBackpropClassifier(**SMALL).fit(X, y).score(X, y), abs=1e-6)


# ---------------------------------------------------------------- randomness
def test_masks_come_from_the_library_at_their_rate(lib):
    module, device = lib
    X = on(lib, np.zeros((1, 1), np.float32))
    xp = namespace(X)
    regs = Regularizers([0.3, 0.0], 0.5, 2000, [40, 5], X.dtype,
                        np.random.default_rng(0), ArrayApiBackend(xp), device)
    masks = regs.masks(2000)
    assert masks[1] is None
    kept = to_numpy(masks[0])
    assert namespace(masks[0]) is xp and kept.shape == (2000, 40)
    assert set(np.unique(kept)) == {0.0, np.float32(1 / 0.7)}
    assert abs((kept == 0).mean() - 0.3) < 0.01  # 80,000 draws: 5 standard deviations
    noise = to_numpy(regs.noisy(xp.zeros((2000, 40), dtype=X.dtype, device=device)))
    assert abs(noise.std() - 0.5) < 0.01 and abs(noise.mean()) < 0.01
    again = Regularizers([0.3, 0.0], 0.5, 2000, [40, 5], X.dtype,
                         np.random.default_rng(0), ArrayApiBackend(xp), device)
    np.testing.assert_array_equal(to_numpy(again.masks(2000)[0]), kept)
    other = Regularizers([0.3, 0.0], 0.5, 2000, [40, 5], X.dtype,
                         np.random.default_rng(1), ArrayApiBackend(xp), device)
    assert not np.array_equal(to_numpy(other.masks(2000)[0]), kept)
    expected_kind = {"torch": "torch", "cupy": "cupy"}.get(module.__name__, "numpy")
    assert Generator(xp, device, 0).kind == expected_kind


def test_dropout_and_noise_fits_are_reproducible(lib):
    X, y = data("classifier", np.float32)
    params = {**SMALL, "dropout": 0.2, "input_noise": 0.1}
    with dispatch():
        fits = [to_numpy(MLPBackpropClassifier(**{**params, "random_state": seed})
                         .fit(on(lib, X), on(lib, y))._theta) for seed in (0, 0, 1)]
    np.testing.assert_array_equal(fits[0], fits[1])
    assert not np.allclose(fits[0], fits[2])


# ---------------------------------------------------------------- refusals
def test_refuses_a_model_fitted_elsewhere(lib):
    X, y = data("regressor", np.float32)
    with dispatch():
        model = GDRegressor(**SMALL).fit(on(lib, X), on(lib, y))
        with pytest.raises(ValueError, match=r"GDRegressor.predict\(\) must use the same"):
            model.predict(X)
        numpy_model = GDRegressor(**SMALL).fit(X, y)
        with pytest.raises(ValueError, match="must use the same namespace"):
            numpy_model.predict(on(lib, X))
        with pytest.raises(ValueError, match="must use the same namespace"):
            numpy_model.partial_fit(on(lib, X), on(lib, y))
    with pytest.raises(ValueError, match="array_api_dispatch=True.*move_model"):
        model.predict(X)


@pytest.mark.parametrize("block", [
    dict(embedding="periodic", embedding_frequencies=3, input_scale=True),
    dict(embedding="periodic", embedding_frequencies=2, embedding_size=3),
    dict(input_scale=True),
])
def test_the_input_block_as_numpy(lib, block):
    """The tabular recipe's input block trains on any library with NumPy's results."""
    reference, model, X = fit_both(lib, "classifier", dtype=np.float32, solver="adamw",
                                   **block)
    assert_allclose_in_dtype(to_numpy(model._theta), reference._theta, np.float32,
                             depth=SMALL_FIT_DEPTH)
    assert_same_predictions(reference, model, X, lib, rtol=1e-5)
    if has_float64(lib):
        reference, model, X = fit_both(lib, "regressor", **block)
        np.testing.assert_allclose(to_numpy(model._theta), reference._theta, rtol=1e-10,
                                   atol=1e-12)
        assert_same_predictions(reference, model, X, lib, rtol=1e-10)


def test_prediction_in_chunks(lib, monkeypatch):
    from sklearn_gd._engine import _backend

    X, y = data("regressor", np.float32)
    with dispatch():
        model = GDRegressor(**SMALL, embedding="periodic").fit(on(lib, X), on(lib, y))
        whole = to_numpy(model.predict(on(lib, X)))
        monkeypatch.setattr(_backend, "PREDICT_CHUNK_ROWS", 7)
        np.testing.assert_allclose(to_numpy(model.predict(on(lib, X))), whole, rtol=1e-5,
                                   atol=1e-6)


def test_refuses_onnx_export_on_a_device(lib):
    X, y = data("regressor", np.float32)
    with dispatch():
        model = GDRegressor(**SMALL).fit(on(lib, X), on(lib, y))
    assert GDRegressor(input_scale=True).__sklearn_tags__().array_api_support
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx

    from sklearn_gd.onnx import register_onnx_converters

    register_onnx_converters()
    with pytest.raises(ValueError, match=r"ONNX export needs them in NumPy.*move_model"):
        to_onnx(model, X[:1])
    to_onnx(move_model(model, np), X[:1])  # the documented way


def test_refuses_sparse_tensors():
    torch = pytest.importorskip("torch")
    X, y = data("regressor", np.float32)
    with dispatch(), pytest.raises(TypeError, match="sparse"):
        GDRegressor(max_iter=1).fit(torch.asarray(X).to_sparse(), torch.asarray(y))


def test_a_device_without_float64_gets_a_float32_model():
    xps = pytest.importorskip("array_api_strict")
    X, y = data("regressor")
    model = GDRegressor(**SMALL).fit(X, y)
    with pytest.warns(UserWarning, match="no float64.*float32"):
        moved = move_model(model, xps, xps.Device("no_float64"))
    assert moved._theta.dtype == xps.float32
    with dispatch():
        X32 = xps.asarray(X.astype(np.float32), device=xps.Device("no_float64"))
        np.testing.assert_allclose(to_numpy(moved.predict(X32)), model.predict(X), rtol=1e-5)
        refit = GDRegressor(**SMALL).fit(X32, xps.asarray(y.astype(np.float32),
                                                         device=xps.Device("no_float64")))
    assert refit._theta.dtype == xps.float32


# ---------------------------------------------------------------- saving and moving
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_pickle_and_moves_between_libraries(lib, kind):
    X, y = data(kind, np.float32)
    with dispatch():
        model = MODELS[kind](**SMALL).fit(on(lib, X), on(lib, y))
        expected = to_numpy(model.predict(on(lib, X)))
        loaded = pickle.loads(pickle.dumps(model))
        np.testing.assert_array_equal(to_numpy(loaded.predict(on(lib, X))), expected)
    on_numpy = move_model(model, np)
    assert type(on_numpy._theta) is np.ndarray and type(model._theta) is not np.ndarray
    # the same float32 weights; only the two libraries' forward passes (2 layers) differ
    assert_allclose_in_dtype(on_numpy.predict(X), expected, np.float32, depth=2)
    on_numpy.partial_fit(X, y)  # the optimizer's state moved too
    back = move_model(on_numpy, *lib)
    with dispatch():
        assert_allclose_in_dtype(to_numpy(back.predict(on(lib, X))), on_numpy.predict(X),
                                 np.float32, depth=2)


def test_skops_saves_a_moved_model(lib, tmp_path):
    sio = pytest.importorskip("skops.io")
    X, y = data("classifier", np.float32)
    with dispatch():
        model = MLPBackpropClassifier(**SMALL).fit(on(lib, X), on(lib, y))
    path = tmp_path / "model.skops"
    sio.dump(move_model(model, np), path)
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    with dispatch():
        expected = to_numpy(model.predict_proba(on(lib, X)))
    assert_allclose_in_dtype(loaded.predict_proba(X), expected, np.float32, depth=2)


def test_move_a_pipeline():
    torch = pytest.importorskip("torch")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = data("regressor")
    with dispatch():
        pipe = make_pipeline(StandardScaler(), GDRegressor(**SMALL)).fit(torch.asarray(X),
                                                                         torch.asarray(y))
        expected = pipe.predict(torch.asarray(X)).numpy()
    moved = move_model(pipe, np)
    np.testing.assert_allclose(moved.predict(X), expected, rtol=1e-10)


def test_numpy_path_unchanged_under_dispatch():
    """NumPy input trains on the NumPy engine (compiled kernels), dispatch or not."""
    X, y = data("classifier")
    reference = MLPBackpropClassifier(**SMALL).fit(X, y)
    with dispatch(), warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning either
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        model = MLPBackpropClassifier(**SMALL).fit(X, y)
    np.testing.assert_array_equal(model._theta, reference._theta)
    assert importlib.import_module("numpy").ndarray is type(model._theta)


def test_divergence_keeps_the_numpy_paths_last_good_weights(lib):
    """The guard reads the device's batch objectives at the epoch's end: the
    same epoch is undone, the same weights kept, as on NumPy."""
    from sklearn_gd import DivergenceWarning

    X, y = data("regressor", np.float32)
    X = X * 30
    params = {**SMALL, "solver": "sgd", "learning_rate_init": 0.001, "max_iter": 20}
    with pytest.warns(DivergenceWarning):
        reference = GDRegressor(**params).fit(X, y)
    with pytest.warns(DivergenceWarning), dispatch():
        model = GDRegressor(**params).fit(on(lib, X), on(lib, y))
    assert model.n_iter_ == reference.n_iter_ == 4  # four epochs kept, the fifth undone
    # four epochs of three sgd steps, on a diverging run that amplifies rounding
    assert_allclose_in_dtype(to_numpy(model._theta), reference._theta, np.float32,
                             depth=4 * 3)
    assert np.isfinite(to_numpy(model._theta)).all()


# ---------------------------------------------------------------- the recipe's scaler
def scaler_data():
    rng = np.random.default_rng(0)
    X = rng.standard_t(2, size=(41, 5))
    X[::3, 0] = np.nan  # missing values
    X[:, 1] = 7.0  # constant: becomes 0
    X[:, 2] = np.where(np.arange(41) == 5, 3.0, 1.0)  # quartiles coincide: scaled by the range
    X[:, 3] = np.nan  # all missing
    return X


@pytest.mark.parametrize("dtype", [None, "float32"])
def test_robust_smooth_clip_scaler_as_numpy(lib, dtype):
    from sklearn_gd import RobustSmoothClipScaler

    X = scaler_data()
    if not has_float64(lib):
        X = X.astype(np.float32)
    reference = RobustSmoothClipScaler(dtype=dtype).fit(X)
    with dispatch():
        scaler = RobustSmoothClipScaler(dtype=dtype).fit(on(lib, X))
        transformed = scaler.transform(on(lib, X))
        back = scaler.inverse_transform(transformed)
    assert namespace(scaler.center_) is namespace(transformed) is namespace(on(lib, X[:1]))
    # float32: a median, a scale and a smooth clip (a few dependent steps)
    rtol = 1e-12 if to_numpy(transformed).dtype == np.float64 else rounding_tolerance(
        np.float32, depth=4)
    np.testing.assert_allclose(to_numpy(scaler.center_), reference.center_, rtol=rtol)
    np.testing.assert_allclose(to_numpy(scaler.scale_), reference.scale_, rtol=rtol)
    expected = reference.transform(X)
    assert to_numpy(transformed).dtype == expected.dtype
    np.testing.assert_allclose(to_numpy(transformed), expected, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(to_numpy(back), reference.inverse_transform(expected),
                               rtol=1e-4, atol=1e-5)
    with dispatch(), pytest.raises(ValueError, match="must use the same namespace"):
        scaler.transform(X)


def test_the_tabular_recipe_on_the_library(lib):
    from sklearn_gd import make_tabular_classifier

    X, y = data("classifier", np.float32)
    params = dict(hidden_layer_sizes=(16, 16), max_iter=15, batch_size=16, random_state=0,
                  embedding_frequencies=4)
    reference = make_tabular_classifier(**params).fit(X, y)
    with dispatch():
        model = make_tabular_classifier(**params).fit(on(lib, X), on(lib, y))
        proba = model.predict_proba(on(lib, X))
        score = model.score(on(lib, X), on(lib, y))
    assert namespace(proba) is namespace(on(lib, X[:1]))
    assert namespace(model[-1]._theta) is namespace(proba)
    # dropout masks come from the library's generator: close, not equal, to NumPy's fit
    assert abs(score - reference.score(X, y)) < 0.15
    np.testing.assert_allclose(to_numpy(proba).sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("scoring", ["accuracy", "neg_log_loss"])
def test_a_scorer_for_early_stopping_scores_as_on_numpy(lib, scoring):
    """A scorer monitoring early stopping gives the NumPy path's scores."""
    if not has_float64(lib):
        pytest.skip("the device has no float64")
    sw = np.random.default_rng(1).uniform(0.5, 1.5, 90)
    reference, model, X = fit_both(lib, "classifier", sample_weight=sw, early_stopping=True,
                                   scoring=scoring, n_iter_no_change=4, max_iter=20)
    np.testing.assert_allclose(model.validation_scores_, reference.validation_scores_,
                               rtol=1e-9)


def test_string_labels_stay_on_the_host(lib):
    X, y = data("classifier", np.float32)
    labels = np.array(["ant", "bee", "cat"])[y]
    reference = MLPBackpropClassifier(**SMALL).fit(X, labels)
    with dispatch():
        model = MLPBackpropClassifier(**SMALL).fit(on(lib, X), labels)
        predicted = model.predict(on(lib, X))
        score = model.score(on(lib, X), labels)
    np.testing.assert_array_equal(predicted, reference.predict(X))
    assert score == pytest.approx(reference.score(X, labels))


# ---------------------------------------------------------------- the portable kernels
@pytest.mark.parametrize("solver", ["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_each_optimizer_step_as_numpy(lib, solver):
    """Each update rule, with the L2 term, makes the NumPy path's steps (which
    tests/test_optimizers.py checks against the formulas)."""
    from sklearn_gd._engine._layout import Layout
    from sklearn_gd._engine._network import L2Penalty
    from sklearn_gd._engine._network import MaskedL2Penalty as PortableL2Penalty
    from sklearn_gd._optim._optimizers import make_optimizer

    if not has_float64(lib):
        pytest.skip("the device has no float64")
    layout = Layout([3, 4, 2])
    rng = np.random.default_rng(0)
    theta = rng.normal(size=layout.size)
    theta_lib = on(lib, theta.copy())  # CPU libraries may share NumPy's memory
    chains = [make_optimizer(solver, weight_mask=layout.weight_mask().astype(float), ops=ops)
              for ops in (NUMPY, ArrayApiBackend(namespace(theta_lib)))]
    states = [chains[0].init(theta), chains[1].init(theta_lib)]
    l2 = L2Penalty(0.1, layout, np.empty(12))
    portable_l2 = PortableL2Penalty(0.1, layout, theta_lib)
    for _ in range(3):
        g = rng.normal(size=layout.size)
        penalty = chains[0].step(theta, g.copy(), states[0], 0.01, l2)
        portable_penalty = chains[1].step(theta_lib, on(lib, g), states[1], 0.01, portable_l2)
        np.testing.assert_allclose(to_numpy(theta_lib), theta, rtol=1e-12)
        assert float(portable_penalty) == pytest.approx(penalty, rel=1e-12)


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu", "leaky_relu",
                                        "elu", "softplus"])
@pytest.mark.parametrize("loss", ["squared_error", "huber", "poisson", "binary_log_loss",
                                  "log_loss"])
def test_portable_gradient_as_numpy(lib, activation, loss):
    """Every activation and loss: the portable objective and gradient are the
    NumPy network's (which tests/test_network.py checks by finite differences)."""
    from sklearn_gd._engine._layout import Layout
    from sklearn_gd._engine._losses import get_loss
    from sklearn_gd._engine._network import Network

    if not has_float64(lib):
        pytest.skip("the device has no float64")
    rng = np.random.default_rng(0)
    layout = Layout([3, 5, 4, 2])
    theta = rng.normal(scale=0.5, size=layout.size)
    X = rng.normal(size=(7, 3))
    if loss == "log_loss":
        Y = np.eye(2)[rng.integers(0, 2, 7)]
    elif loss in ("poisson", "binary_log_loss"):
        Y = rng.uniform(0, 1, size=(7, 2))
    else:
        Y = rng.normal(size=(7, 2))
    weights = rng.uniform(0.1, 1.0, 7)
    masks = [rng.choice([0.0, 2.0], size=(7, 5)), None]
    net = Network(layout, activation, get_loss(loss))
    grad = np.empty(layout.size)
    loss_np, penalty_np = net.loss_and_grad(theta, X, Y, weights, 0.3,
                                            net.workspace(7, np.float64, dropout=True), grad,
                                            masks)
    xp = namespace(on(lib, X))
    portable = Network(layout, activation, get_loss(loss), ArrayApiBackend(xp))
    grad_lib = on(lib, np.zeros(layout.size))
    loss_lib, penalty_lib = portable.loss_and_grad(
        on(lib, theta), on(lib, X), on(lib, Y), on(lib, weights), 0.3, None, grad_lib,
        [on(lib, masks[0]), None])
    assert float(loss_lib) == pytest.approx(loss_np, rel=1e-12)
    assert float(penalty_lib) == pytest.approx(penalty_np, rel=1e-12)
    np.testing.assert_allclose(to_numpy(grad_lib), grad, rtol=1e-10, atol=1e-13)


def test_zero_for_devices_that_cannot_be_cache_keys():
    """A library whose device objects are unhashable still gets its zero."""
    from sklearn_gd._engine._array_api import zero

    class Unhashable:
        __hash__ = None

    made = []

    class Library:
        float64 = np.float64

        @staticmethod
        def zeros(shape, dtype, device):
            made.append(device)
            return np.zeros(shape, dtype)

    device = Unhashable()
    assert zero(Library, np.float64, device).shape == () and made == [device]
    assert zero(Library, np.float64, device) == 0 and made == [device, device]
