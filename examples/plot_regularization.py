"""
Dropout and L2 against overfitting
==================================

A wide network trained on 300 digits fits its training data perfectly while
test accuracy lags behind. L2 (``alpha``) and dropout trade some fit of the
training data for test accuracy; compare the bars.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_gd import MLPBackpropClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=300, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

settings = {
    "none": dict(),
    "L2 (alpha=3)": dict(alpha=3.0),
    "dropout 0.5": dict(dropout=0.5),
    "both": dict(alpha=1.0, dropout=0.3),
}
train_scores, test_scores = [], []
for name, params in settings.items():
    clf = MLPBackpropClassifier(hidden_layer_sizes=(256,), learning_rate_init=3e-3,
                                max_iter=60, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train, y_train)
    train_scores.append(clf.score(X_train, y_train))
    test_scores.append(clf.score(X_test, y_test))
    print(f"{name:14s} train {train_scores[-1]:.3f}  test {test_scores[-1]:.3f}")

positions = np.arange(len(settings))
fig, ax = plt.subplots()
ax.bar(positions - 0.2, train_scores, width=0.4, label="train")
ax.bar(positions + 0.2, test_scores, width=0.4, label="test")
ax.set_xticks(positions, list(settings))
ax.set(ylabel="accuracy", ylim=(0.8, 1.0))
ax.legend()
plt.show()
