"""ONNX export: the exported graph in onnxruntime matches predict / predict_proba."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_gd import GDRegressor, MLPBackpropClassifier
from sklearn_gd._engine._activations import ACTIVATIONS

skl2onnx = pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")

from sklearn_gd.onnx import register_onnx_converters  # noqa: E402

register_onnx_converters()
RTOL, ATOL = 1e-5, 1e-6


def run_onnx(model, X):
    onx = skl2onnx.to_onnx(model, X[:1], options={id(model): {"zipmap": False}}
                           if hasattr(model, "predict_proba") else None)
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


def fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def data(n_classes=3, seed=0):
    X, y = make_classification(n_samples=120, n_features=5, n_informative=4, n_redundant=0,
                               n_classes=n_classes, random_state=seed)
    return X.astype(np.float32), y


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_matches_onnxruntime(activation, n_classes):
    X, y = data(n_classes)
    clf = fit(MLPBackpropClassifier(hidden_layer_sizes=(7, 4), activation=activation,
                                    max_iter=30, random_state=0), X, y)
    label, proba = run_onnx(clf, X)
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(label, clf.predict(X))


def test_string_labels_and_linear_classifier():
    X, y = data(3)
    names = np.array(["low", "mid", "high"])[y]
    clf = fit(MLPBackpropClassifier(hidden_layer_sizes=(), max_iter=30, random_state=0), X, names)
    label, proba = run_onnx(clf, X)
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(label, clf.predict(X))


def test_multilabel_classifier():
    X, Y = make_multilabel_classification(n_samples=100, n_features=5, n_classes=3,
                                          random_state=0)
    X = X.astype(np.float32)
    clf = fit(MLPBackpropClassifier(hidden_layer_sizes=(6,), activation="tanh", max_iter=30,
                                    random_state=0), X, Y)
    label, proba = run_onnx(clf, X)
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(label, clf.predict(X))


@pytest.mark.parametrize("loss", ["squared_error", "huber", "poisson"])
@pytest.mark.parametrize("hidden", [(), (6, 3)])
def test_regressor_matches_onnxruntime(loss, hidden):
    X, _ = data()
    y = np.exp(0.3 * X[:, 0]) if loss == "poisson" else X @ np.arange(5.0)
    Y = np.column_stack([y, 2 * y])
    reg = fit(GDRegressor(loss=loss, hidden_layer_sizes=hidden, activation="elu",
                          max_iter=30, random_state=0), X, Y)
    (out,) = run_onnx(reg, X)
    np.testing.assert_allclose(out, reg.predict(X), rtol=RTOL, atol=ATOL)


def test_pipeline_with_scaler_exports():
    X, y = data(3)
    pipe = fit(make_pipeline(StandardScaler(),
                             MLPBackpropClassifier(hidden_layer_sizes=(8,), max_iter=30,
                                                   random_state=0)), X, y)
    onx = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    label, proba = session.run(None, {session.get_inputs()[0].name: X})
    np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(label, pipe.predict(X))


@pytest.mark.parametrize("embedding, input_scale",
                         [("periodic", False), (None, True), ("periodic", True)])
def test_input_block_exports(embedding, input_scale):
    X, y = data(3)
    block = dict(embedding=embedding, input_scale=input_scale, embedding_frequencies=5,
                 embedding_size=3, embedding_sigma=0.5)
    clf = fit(MLPBackpropClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0,
                                    **block), X, y)
    label, proba = run_onnx(clf, X)
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(label, clf.predict(X))
    reg = fit(GDRegressor(hidden_layer_sizes=(6,), max_iter=30, random_state=0, **block),
              X, X @ np.arange(5.0))
    (out,) = run_onnx(reg, X)
    np.testing.assert_allclose(out.ravel(), reg.predict(X), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_the_tabular_recipe_exports_with_matching_outputs(kind):
    """The recipe as shipped (smooth-clip scaler, embedding, input scale) exports; the
    graph's outputs match, outliers beyond the clip included."""
    from sklearn_gd import make_tabular_classifier, make_tabular_regressor

    X, y = data(3)
    X[0, 1], X[1, 2] = 1e30, -1e30  # saturate the smooth clip
    make = make_tabular_classifier if kind == "classifier" else make_tabular_regressor
    target = y if kind == "classifier" else y.astype(np.float64)
    model = fit(make(hidden_layer_sizes=(16, 16), max_iter=5, random_state=0), X, target)
    options = {id(model[-1]): {"zipmap": False}} if kind == "classifier" else None
    onx = skl2onnx.to_onnx(model, X[:1], options=options)
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: X})
    if kind == "classifier":
        np.testing.assert_allclose(outputs[1], model.predict_proba(X), rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(outputs[0], model.predict(X))
    else:
        np.testing.assert_allclose(outputs[0].ravel(), model.predict(X), rtol=1e-4, atol=1e-4)


def test_the_scaler_alone_matches_onnxruntime():
    from sklearn_gd import RobustSmoothClipScaler

    X, _ = data(3)
    X[3, 0] = 3e38
    scaler = RobustSmoothClipScaler(dtype=np.float32).fit(X)
    onx = skl2onnx.to_onnx(scaler, X[:1])
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: X})[0]
    np.testing.assert_allclose(out, scaler.transform(X), rtol=1e-5, atol=1e-6)
