"""Out-of-core and distributed training on a real dask.distributed LocalCluster."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV

from sklearn_gd import GDRegressor, MLPBackpropClassifier

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
wrappers = pytest.importorskip("dask_ml.wrappers")

CHUNK = 100


@pytest.fixture(scope="module")
def client(dask_cluster):
    with distributed.Client(dask_cluster) as client:
        yield client


@pytest.fixture(scope="module")
def blocks():
    X, y = make_classification(n_samples=800, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)
    return X, y


def in_memory(estimator, X, y, **kwargs):
    for start in range(0, len(X), CHUNK):
        estimator.partial_fit(X[start:start + CHUNK], y[start:start + CHUNK], **kwargs)
    return estimator


def test_incremental_on_dask_array_matches_in_memory_partial_fit(client, blocks):
    X, y = blocks
    params = dict(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0)
    Xd, yd = da.from_array(X, chunks=CHUNK), da.from_array(y, chunks=CHUNK)
    classes = np.unique(y)
    inc = wrappers.Incremental(MLPBackpropClassifier(**params), shuffle_blocks=False)
    inc.fit(Xd, yd, classes=classes)
    reference = in_memory(MLPBackpropClassifier(**params), X, y, classes=classes)
    trained = inc.estimator_
    assert trained.n_iter_ == reference.n_iter_ == len(X) // CHUNK
    assert trained.score(X, y) >= reference.score(X, y) - 1e-12
    np.testing.assert_allclose(trained._theta, reference._theta)
    predicted = inc.predict(Xd)
    assert isinstance(predicted, da.Array)
    np.testing.assert_array_equal(predicted.compute(), reference.predict(X))


def test_incremental_on_dask_dataframe(client, blocks):
    pd = pytest.importorskip("pandas")
    X, y = blocks
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    Xd = dd.from_pandas(frame, npartitions=len(X) // CHUNK)
    yd = dd.from_pandas(pd.Series(X[:, 0] - X[:, 1]), npartitions=len(X) // CHUNK)
    inc = wrappers.Incremental(GDRegressor(batch_size=10, learning_rate_init=0.05, random_state=0),
                               shuffle_blocks=False)
    inc.fit(Xd, yd)
    assert list(inc.estimator_.feature_names_in_) == list(frame.columns)
    assert inc.estimator_.score(frame, X[:, 0] - X[:, 1]) > 0.9
    assert inc.predict(Xd).compute().shape == (len(X),)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # stops early on purpose
def test_grid_search_on_the_joblib_dask_backend(client, blocks):
    import joblib

    X, y = blocks
    search = GridSearchCV(
        MLPBackpropClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0),
        {"alpha": [1e-4, 1e-1], "solver": ["adam", "sgd"]}, cv=3, n_jobs=-1,
    )
    with joblib.parallel_backend("dask"):
        search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_score_ > 0.5
    workers = client.scheduler_info()["workers"]
    assert len(workers) == 2
