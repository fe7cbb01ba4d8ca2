"""
Data-parallel training on a Dask cluster
========================================

Train one :class:`~sklearn_gd.MLPBackpropClassifier` on data that stays on the
cluster's workers: ``fit`` on a Dask dataframe validates and persists each
partition where it lives, and every L-BFGS iteration (or mini-batch step)
sends the weights to the partitions and sums their losses and gradients.
The L-BFGS fit lands on the in-memory fit's weights. Needs
``pip install "sklearn-gd[dask]"``.
"""

import warnings

import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning

from sklearn_gd import MLPBackpropClassifier


def main():
    warnings.simplefilter("ignore", ConvergenceWarning)  # short runs, on purpose
    X, y = make_classification(n_samples=6000, n_features=12, n_informative=8, n_classes=3,
                               random_state=0)
    frame = pd.DataFrame(X, columns=[f"feature_{i}" for i in range(X.shape[1])])
    labels = pd.Series(np.array(["low", "mid", "high"])[y])
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster):
        X_parts = dd.from_pandas(frame, npartitions=6)
        y_parts = dd.from_pandas(labels, npartitions=6)

        params = dict(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=30, random_state=0)
        on_cluster = MLPBackpropClassifier(**params).fit(X_parts, y_parts)
        in_memory = MLPBackpropClassifier(**params).fit(frame, labels)
        difference = np.max(np.abs(on_cluster.coefs_[0] - in_memory.coefs_[0]))
        print(f"L-BFGS on 6 partitions: accuracy {on_cluster.score(X_parts, y_parts):.3f}, "
              f"largest weight difference from the in-memory fit {difference:.1e}")

        # mini-batch steps take rows from every partition; early stopping holds
        # out a tenth of each partition on its worker
        adam = MLPBackpropClassifier(hidden_layer_sizes=(32,), batch_size=2000,
                                     learning_rate_init=0.02, early_stopping=True,
                                     max_iter=15, random_state=0).fit(X_parts, y_parts)
        print(f"adam, batch 2000: {adam.n_iter_} epochs, best validation loss "
              f"{-adam.best_validation_score_:.4f}, accuracy {adam.score(X_parts, y_parts):.3f}")
        print("lazy predictions:", adam.predict(X_parts))
        print("first five:", adam.predict(X_parts).compute()[:5])


if __name__ == "__main__":
    main()
