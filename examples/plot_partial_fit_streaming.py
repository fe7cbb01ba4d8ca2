"""
Streaming training with ``partial_fit``
=======================================

When data arrives in chunks (or does not fit in memory), ``partial_fit`` runs
one epoch over each chunk; the optimizer state, schedule and counters carry
over between calls. Here a regressor learns a nonlinear function from 40
chunks of 250 rows, and its error on held-out data falls as chunks arrive.
"""

import matplotlib.pyplot as plt
import numpy as np

from sklearn_gd import GDRegressor


def chunk(rng, n=250):
    X = rng.uniform(-3, 3, size=(n, 2))
    return X, np.sin(X[:, 0]) * X[:, 1] + 0.1 * rng.normal(size=n)


rng = np.random.default_rng(0)
X_test, y_test = chunk(rng, 2000)
model = GDRegressor(hidden_layer_sizes=(64, 64), activation="tanh",
                    learning_rate_init=3e-3, batch_size=32, random_state=0)
scores = []
for _ in range(40):
    X, y = chunk(rng)
    model.partial_fit(X, y)
    scores.append(model.score(X_test, y_test))
print(f"after {model.n_iter_} chunks ({model.t_} rows): test R² {scores[-1]:.3f}")

fig, ax = plt.subplots()
ax.plot(np.arange(1, len(scores) + 1), scores)
ax.set(xlabel="chunks seen", ylabel="test R²")
plt.show()
