"""
Early stopping and the loss-curve display
=========================================

With ``early_stopping=True`` a stratified tenth of the data is held out; each
epoch records the validation loss, training stops once it stops improving
(``scoring="loss"``, the default; ``scoring="accuracy"`` or any scorer would
monitor that instead), and the best epoch's weights are restored.
:class:`~sklearn_gd.LossCurveDisplay` shows the whole history.
"""

from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from sklearn_gd import LossCurveDisplay, MLPBackpropClassifier

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)
clf = MLPBackpropClassifier(hidden_layer_sizes=(128,), early_stopping=True,
                            n_iter_no_change=8, learning_rate_init=3e-3,
                            max_iter=300, random_state=0).fit(X, y)
print(f"stopped after {clf.n_iter_} epochs; best epoch {clf.best_iteration_} "
      f"with validation loss {clf.best_loss_:.3f} (monitored: scoring={clf.scoring!r})")
display = LossCurveDisplay.from_estimator(clf)
