"""
A pipeline and a grid search on a DataFrame
===========================================

Numeric and categorical columns of a pandas DataFrame are prepared by a
``ColumnTransformer``; a grid search with two jobs tunes the solver, the L2
strength, dropout and the architecture of :class:`~sklearn_gd.MLPBackpropClassifier`.
"""

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sklearn_gd import MLPBackpropClassifier

rng = np.random.default_rng(0)
n = 600
frame = pd.DataFrame({
    "age": rng.normal(45, 12, n),
    "income": rng.lognormal(10, 0.5, n),
    "region": rng.choice(["north", "south", "east", "west"], n),
    "plan": rng.choice(["basic", "premium"], n),
})
risk = 0.05 * (frame["age"] - 45) + (frame["plan"] == "basic") - (frame["region"] == "west")
target = (risk + rng.normal(0, 0.5, n) > 0.3).map({True: "churn", False: "stay"})
X_train, X_test, y_train, y_test = train_test_split(frame, target, random_state=0)

model = Pipeline([
    ("prepare", ColumnTransformer([
        ("numbers", StandardScaler(), ["age", "income"]),
        ("categories", OneHotEncoder(), ["region", "plan"]),
    ])),
    ("classify", MLPBackpropClassifier(early_stopping=True, max_iter=300, random_state=0)),
])
grid = {
    "classify__solver": ["adam", "adamw"],
    "classify__alpha": [1e-4, 1e-1],
    "classify__dropout": [0.0, 0.2],
    "classify__hidden_layer_sizes": [(16,), (32, 16)],
}
search = GridSearchCV(model, grid, cv=3, n_jobs=2).fit(X_train, y_train)
print("best parameters:", search.best_params_)
print(f"cross-validated accuracy {search.best_score_:.3f}, "
      f"test accuracy {search.score(X_test, y_test):.3f}")
