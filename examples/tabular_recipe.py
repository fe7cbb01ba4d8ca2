"""
The tabular recipe in one line, next to the defaults and gradient boosting
==========================================================================

:func:`~sklearn_gd.make_tabular_classifier` returns a ``Pipeline`` with
RealMLP-TD's training recipe in this package's parameters. Three-fold
cross-validation on scikit-learn's breast cancer data compares it with
:class:`~sklearn_gd.MLPBackpropClassifier` at its (``MLPClassifier``'s)
defaults and with ``HistGradientBoostingClassifier`` (on a data set this
small the three are within noise of each other: see the documentation's
tabular recipe page for the benchmark on larger ones); then a grid search
tunes two of the recipe's parameters.
"""

import time
import warnings

from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_gd import MLPBackpropClassifier, make_tabular_classifier

warnings.simplefilter("ignore", ConvergenceWarning)
X, y = load_breast_cancer(return_X_y=True)
cv = StratifiedKFold(3, shuffle=True, random_state=0)

models = {
    "recipe": make_tabular_classifier(random_state=0),
    "defaults": make_pipeline(StandardScaler(), MLPBackpropClassifier(random_state=0)),
    "HistGradientBoosting": HistGradientBoostingClassifier(random_state=0),
}
print(f"{'model':30s} accuracy   seconds")
for name, model in models.items():
    start = time.perf_counter()
    scores = cross_val_score(model, X, y, cv=cv)
    print(f"{name:30s} {scores.mean():.4f}   {time.perf_counter() - start:6.1f}")

# %%
# Every piece is a parameter of the pipeline's steps: ``"scaler"`` and ``"model"``.
search = GridSearchCV(
    make_tabular_classifier(random_state=0, max_iter=32),
    {"model__learning_rate_init": [1e-3, 4e-3], "scaler__max_absolute_value": [2.0, 3.0]},
    cv=2,
).fit(X, y)
print("best:", search.best_params_, f"{search.best_score_:.4f}")
