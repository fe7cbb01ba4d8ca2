"""sklearn-gd: scikit-learn estimators trained by gradient descent and backpropagation."""

from ._array_api_estimator import move_model
from ._classifier import MLPBackpropClassifier
from ._persistence import skops_trusted_types
from ._plot import LossCurveDisplay
from ._preprocessing import RobustSmoothClipScaler
from ._recipe import make_tabular_classifier, make_tabular_regressor
from ._regressor import GDRegressor
from ._show_versions import show_versions
from ._train._trainer import DivergenceWarning
from ._version import __version__

__all__ = [
    "DivergenceWarning",
    "GDRegressor",
    "LossCurveDisplay",
    "MLPBackpropClassifier",
    "RobustSmoothClipScaler",
    "__version__",
    "make_tabular_classifier",
    "make_tabular_regressor",
    "move_model",
    "show_versions",
    "skops_trusted_types",
]
