"""
Learning-rate schedules
=======================

Every mini-batch solver accepts every schedule. Here SGD with momentum trains
the same network with ``constant``, ``invscaling``, ``adaptive`` and ``cosine``
rates for the same budget of epochs. ``invscaling`` decays fast (the rate
falls with the number of *samples* seen), ``adaptive`` only divides the rate
once the loss stalls, and ``cosine`` ends every run with small steps.
"""

import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from sklearn_gd import MLPBackpropClassifier

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)

fig, ax = plt.subplots()
for schedule in ["constant", "invscaling", "adaptive", "cosine"]:
    clf = MLPBackpropClassifier(
        hidden_layer_sizes=(64,), solver="sgd", learning_rate=schedule,
        learning_rate_init=0.05, power_t=0.25, max_iter=40, tol=0.0,
        n_iter_no_change=3, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    ax.plot(clf.loss_curve_, label=f"{schedule}: final loss {clf.loss_curve_[-1]:.4f}")
    print(f"{schedule:10s} epochs {clf.n_iter_:3d}  final loss {clf.loss_curve_[-1]:.4f}")
ax.set(xlabel="epoch", ylabel="training loss", yscale="log")
ax.legend()
plt.show()
