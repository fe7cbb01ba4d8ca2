"""What a saved model holds, for loaders that trust types one by one (skops)."""

from ._classifier import MLPBackpropClassifier
from ._engine._categories import CategoryBlock
from ._engine._input_block import InputBlock
from ._engine._layout import Layout
from ._optim._optimizers import AdamState, DecayState, NoState, RootState, TraceState
from ._preprocessing import RobustSmoothClipScaler
from ._regressor import GDRegressor
from ._table import TableColumns
from ._table_input import TableInput
from ._engine._table_block import TableBlock
from ._train._state import EpochRecord, OptimizerState, TrainState

#: Every class of this package that a fitted estimator, scaler or tabular
#: recipe holds; everything else in a saved model is NumPy and scikit-learn's.
_SAVED_CLASSES = (GDRegressor, MLPBackpropClassifier, RobustSmoothClipScaler, TrainState,
                  EpochRecord, OptimizerState, NoState, TraceState, AdamState, RootState,
                  DecayState, Layout, InputBlock, TableBlock, CategoryBlock, TableInput,
                  TableColumns)


def skops_trusted_types():
    """The names of this package's types a model saved with ``skops.io`` may contain.

    ``skops.io.load`` refuses types it does not know until the user trusts
    them; ``skops.io.get_untrusted_types`` on a file saved from this
    package's models lists a subset of these names (and nothing else). Review
    that list, then pass it as ``trusted=``.

    Returns
    -------
    names : list of str
        Fully qualified class names, sorted.
    """
    return sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in _SAVED_CLASSES)
