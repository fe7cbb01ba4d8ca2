"""
Out-of-core training on Dask
============================

Train :class:`~sklearn_gd.MLPBackpropClassifier` block by block on a dask
array with ``dask_ml.wrappers.Incremental`` (one ``partial_fit`` per block, on
the cluster's workers), then run a grid search on the cluster through joblib's
``dask`` backend. Needs ``pip install "sklearn-gd[dask]"``.
"""

import joblib
import numpy as np
from dask import array as da
from dask_ml.wrappers import Incremental
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV

from sklearn_gd import MLPBackpropClassifier


def main():
    X, y = make_classification(n_samples=4000, n_features=20, n_informative=10,
                               n_classes=3, random_state=0)
    X_blocks, y_blocks = da.from_array(X, chunks=500), da.from_array(y, chunks=500)
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster):
        # each partial_fit is one epoch over a block's 500 rows: a higher rate than the
        # default 1e-3 learns in a few passes
        model = Incremental(MLPBackpropClassifier(hidden_layer_sizes=(32,),
                                                  learning_rate_init=1e-2, random_state=0))
        for epoch in range(3):  # each fit call is one pass over the blocks
            model.fit(X_blocks, y_blocks, classes=np.unique(y))
            print(f"pass {epoch + 1}: accuracy {model.score(X_blocks, y_blocks):.3f}")
        print("predictions:", model.predict(X_blocks[:5]).compute())

        # early stopping ends each fit when the held-out loss stops improving
        search = GridSearchCV(MLPBackpropClassifier(early_stopping=True, learning_rate_init=1e-2,
                                                    random_state=0),
                              {"alpha": [1e-4, 1e-2], "hidden_layer_sizes": [(16,), (32,)]},
                              cv=3)
        with joblib.parallel_backend("dask"):
            search.fit(X[:1000], y[:1000])
        print("best parameters:", search.best_params_, f"accuracy {search.best_score_:.3f}")


if __name__ == "__main__":
    main()
