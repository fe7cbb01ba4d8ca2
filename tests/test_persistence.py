"""Saving, loading and serving fitted models: pickle, joblib, skops, threads."""

import pickle
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
from sklearn.datasets import make_classification

from sklearn_gd import GDRegressor, MLPBackpropClassifier

X, y = make_classification(n_samples=150, n_features=6, n_informative=4, n_classes=3,
                           random_state=0)


def fitted_models():
    clf = MLPBackpropClassifier(hidden_layer_sizes=(8,), dropout=0.1, max_iter=5,
                                random_state=0).fit(X, y)
    reg = GDRegressor(hidden_layer_sizes=(5,), loss="huber", max_iter=5,
                      random_state=0).fit(X, X[:, 0] * 2.0)
    embedded = MLPBackpropClassifier(hidden_layer_sizes=(8,), embedding="periodic",
                                     embedding_frequencies=3, input_scale=True, max_iter=5,
                                     random_state=0).fit(X, y)
    return [clf, reg, embedded]


@pytest.fixture(scope="module")
def models():
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fitted_models()


def _predictions(model):
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X)
    return model.predict(X)


def _continue(model):
    if isinstance(model, MLPBackpropClassifier):
        return model.partial_fit(X, y)
    return model.partial_fit(X, X[:, 0] * 2.0)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_pickle_and_joblib_round_trips(models, index, tmp_path):
    model = models[index]
    for loaded in (pickle.loads(pickle.dumps(model)),
                   joblib.load(joblib.dump(model, tmp_path / "m.joblib")[0])):
        np.testing.assert_array_equal(_predictions(loaded), _predictions(model))
        before = loaded._theta.copy()
        _continue(loaded)
        assert loaded.n_iter_ == model.n_iter_ + 1
        assert not np.array_equal(loaded._theta, before)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_skops_round_trip_trusts_only_our_classes(models, index, tmp_path):
    sio = pytest.importorskip("skops.io")
    model = models[index]
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted, "our own classes are not trusted by default"
    assert all(name.startswith("sklearn_gd.") for name in untrusted), untrusted
    loaded = sio.load(path, trusted=untrusted)
    np.testing.assert_array_equal(_predictions(loaded), _predictions(model))
    _continue(loaded)
    assert loaded.n_iter_ == model.n_iter_ + 1


@pytest.mark.parametrize("index", [0, 1, 2])
def test_predict_is_safe_from_many_threads(models, index):
    model = models[index]
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(int(rng.integers(1, 300)), X.shape[1])) for _ in range(64)]
    expected = [_predict_all(model, chunk) for chunk in inputs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda chunk: _predict_all(model, chunk), inputs))
    for want, have in zip(expected, got):
        for a, b in zip(want, have):
            np.testing.assert_array_equal(a, b)


def _predict_all(model, chunk):
    outputs = [model.predict(chunk)]
    if hasattr(model, "predict_proba"):
        outputs.append(model.predict_proba(chunk))
    return outputs


def _table():
    """``X`` as a table: its numbers with missing values, a text column of many
    categories (embedded) and a boolean column."""
    pd = pytest.importorskip("pandas")
    table = pd.DataFrame(X[:, :2], columns=["a", "b"])
    table.loc[::5, "a"] = np.nan
    return table.assign(city=[f"c{i % 12}" for i in range(len(X))], flag=X[:, 2] > 0)


def test_skops_untrusted_types_are_the_documented_ones(tmp_path):
    """Every type skops asks to trust, for plain models, the input block and the
    tabular recipe, is one that docs/saving_and_serving.md lists, and the docs list
    exactly ``skops_trusted_types()``."""
    import pathlib
    import re
    import warnings

    from sklearn_gd import GDRegressor, make_tabular_classifier, skops_trusted_types

    sio = pytest.importorskip("skops.io")
    documented = set(skops_trusted_types())
    saved = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model in (MLPBackpropClassifier(max_iter=2, random_state=0).fit(X, y),
                      GDRegressor(embedding="periodic", input_scale=True, max_iter=2,
                                  random_state=0).fit(X, X[:, 0]),
                      make_tabular_classifier(max_iter=2, random_state=0).fit(X, y),
                      *(MLPBackpropClassifier(solver=solver, max_iter=2, random_state=0).fit(X, y)
                        for solver in ("sgd", "rmsprop")),
                      MLPBackpropClassifier(max_iter=2, random_state=0).fit(_table(), y)):
            untrusted = set(sio.get_untrusted_types(data=sio.dumps(model)))
            assert untrusted <= documented, untrusted - documented
            saved |= untrusted
    assert saved == documented  # no documented type that no model holds
    docs = (pathlib.Path(__file__).parents[1] / "docs" / "saving_and_serving.md").read_text()
    block = docs.split("skops-trusted-types: start")[1].split("skops-trusted-types: end")[0]
    assert set(re.findall(r"^- `([\w.]+)`", block, flags=re.M)) == documented
