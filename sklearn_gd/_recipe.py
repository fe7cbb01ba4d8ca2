"""The tabular recipe: RealMLP-TD's training recipe as a scikit-learn pipeline in one line.

``make_tabular_classifier()`` and ``make_tabular_regressor()`` return ordinary
scikit-learn objects built from this package's public pieces, so every piece
is a parameter that ``set_params``, ``GridSearchCV`` and ``clone`` see.
"""

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ._classifier import MLPBackpropClassifier
from ._preprocessing import RobustSmoothClipScaler
from ._regressor import GDRegressor

#: The recipe's network and training, shared by both tasks (see the user guide's
#: "tabular recipe" section for where each value comes from).
TABULAR_RECIPE = dict(
    hidden_layer_sizes=(256, 256, 256),
    solver="adamw",
    weight_decay=0.02,
    alpha=0.0,
    beta_2=0.95,
    learning_rate="cosine",
    learning_rate_init=2e-3,
    batch_size=256,
    max_iter=256,
    dropout=0.15,
    early_stopping=True,
    validation_fraction=0.2,
    n_iter_no_change=5,
    n_steps_no_change=20,
    anneal_epochs=15,
    embedding="periodic",
    input_scale=True,
)

#: What the classifier adds: smoothed targets for its log-loss.
CLASSIFIER_RECIPE = dict(label_smoothing=0.1)


def _scaler(scaler):
    if isinstance(scaler, str) and scaler == "default":
        return RobustSmoothClipScaler(dtype=np.float32, numeric_only=True)
    return scaler


def make_tabular_classifier(*, scaler="default", **params):
    """An :class:`MLPBackpropClassifier` with the tabular recipe, behind its scaler.

    The recipe is RealMLP-TD's (Holzmueller et al., NeurIPS 2024) written in
    this package's parameters: robust scaling with smooth clipping
    (:class:`RobustSmoothClipScaler`, in float32), a periodic embedding of
    each feature and a learnable input scale, three hidden layers of 256
    units with dropout 0.15, ``adamw`` (weight decay 0.02, ``beta_2=0.95``)
    with a cosine schedule from 2e-3 over 256 epochs of batches of 256,
    label smoothing 0.1, and the weights of the best epoch on a 20%
    validation split; once the validation loss has not improved for 5
    epochs (and at least 20 steps), the rate anneals to zero over 15 more and
    training stops (:data:`TABULAR_RECIPE`).

    Parameters
    ----------
    scaler : transformer, "passthrough" or "default", default="default"
        The preprocessing step: ``"default"`` is
        ``RobustSmoothClipScaler(dtype=np.float32, numeric_only=True)``, which
        scales the numeric columns of a data frame and passes its categorical,
        text and boolean columns on to the network, which learns them (see
        ``categorical_features``).
    **params
        Parameters of :class:`MLPBackpropClassifier` that replace the recipe's
        (``random_state=0``, ``max_iter=100``, ``embedding=None``, ...).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``"scaler"`` and ``"model"``: tune the network as
        ``model__learning_rate_init``, the scaler as
        ``scaler__max_absolute_value``.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn_gd import make_tabular_classifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = make_tabular_classifier(max_iter=20, random_state=0).fit(X, y)
    >>> round(model.score(X, y), 2) > 0.9
    True
    """
    model = MLPBackpropClassifier(**{**TABULAR_RECIPE, **CLASSIFIER_RECIPE, **params})
    return Pipeline([("scaler", _scaler(scaler)), ("model", model)])


def make_tabular_regressor(*, scaler="default", target_scaler="default", **params):
    """A :class:`GDRegressor` with the tabular recipe, on scaled features and targets.

    The recipe of :func:`make_tabular_classifier` without label smoothing;
    the targets are standardized for training (and predictions mapped
    back) by a ``TransformedTargetRegressor``, as RealMLP-TD normalises its
    outputs: the output layer then starts at the scale the recipe's
    learning rate suits, whatever the target's unit.

    Parameters
    ----------
    scaler : transformer, "passthrough" or "default", default="default"
        The preprocessing step: ``"default"`` is
        ``RobustSmoothClipScaler(dtype=np.float32, numeric_only=True)``, which
        scales the numeric columns of a data frame and passes its categorical,
        text and boolean columns on to the network, which learns them (see
        ``categorical_features``).
    target_scaler : transformer, None or "default", default="default"
        How the targets are transformed for training: ``"default"`` is
        ``StandardScaler()``; None returns the pipeline alone.
    **params
        Parameters of :class:`GDRegressor` that replace the recipe's.

    Returns
    -------
    regressor : sklearn.compose.TransformedTargetRegressor or sklearn.pipeline.Pipeline
        ``regressor`` is the pipeline of steps ``"scaler"`` and ``"model"``
        (tune as ``regressor__model__learning_rate_init``).

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn_gd import make_tabular_regressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = make_tabular_regressor(max_iter=20, random_state=0).fit(X, y)
    >>> round(model.score(X, y), 1) > 0.3
    True
    """
    model = GDRegressor(**{**TABULAR_RECIPE, **params})
    pipeline = Pipeline([("scaler", _scaler(scaler)), ("model", model)])
    if target_scaler is None:
        return pipeline
    transformer = StandardScaler() if target_scaler == "default" else target_scaler
    return TransformedTargetRegressor(regressor=pipeline, transformer=transformer)
