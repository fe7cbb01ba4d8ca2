"""
Comparing optimizers
====================

Train the same network on the digits data with each mini-batch solver and
compare their training-loss curves and test accuracy.
"""

import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_gd import MLPBackpropClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

settings = {
    "sgd": dict(learning_rate_init=0.05),
    "adam": dict(learning_rate_init=1e-3),
    "adamw": dict(learning_rate_init=1e-3, weight_decay=0.05),
    "rmsprop": dict(learning_rate_init=1e-3),
    "adagrad": dict(learning_rate_init=0.05),
}
fig, ax = plt.subplots()
for solver, params in settings.items():
    clf = MLPBackpropClassifier(hidden_layer_sizes=(64,), solver=solver, max_iter=30,
                                random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train, y_train)
    accuracy = clf.score(X_test, y_test)
    ax.plot(clf.loss_curve_, label=f"{solver} (test accuracy {accuracy:.3f})")
    print(f"{solver:8s} test accuracy {accuracy:.3f}")
ax.set_xlabel("epoch")
ax.set_ylabel("training loss")
ax.set_yscale("log")
ax.legend()
plt.show()
