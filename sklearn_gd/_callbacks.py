"""Bridge from the training loop to scikit-learn's callback API (``sklearn.callback``).

A fit is one task whose subtasks are its epochs (L-BFGS iterations for
``lbfgs``). Each epoch calls ``on_fit_task_begin`` and ``on_fit_task_end``;
the end hook receives the training data and, lazily, a copy of the estimator
with that epoch's weights (``fitted_estimator``), so that ``ScoringMonitor``
can score every epoch. A callback that returns True from ``on_fit_task_end``
stops training after that epoch, as a converged run does. Without callbacks,
or on scikit-learn < 1.9, every method here is a cheap no-op.
"""

import dataclasses

from ._engine._array_api import copy


class EpochHooks:
    """Callback hooks around one ``fit`` / ``partial_fit`` call."""

    def __init__(self, estimator, X, y, sample_weight, max_epochs):
        self.estimator = estimator
        self.X, self.y = X, y
        self.metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        self.context = None
        self.epoch_context = None
        if hasattr(estimator, "_init_callback_context"):
            self.context = estimator._init_callback_context(max_subtasks=max_epochs)
            self.context.call_on_fit_task_begin(
                estimator=estimator, X=X, y=y, metadata=self.metadata
            )

    def begin_epoch(self):
        if self.context is None:
            return
        self.epoch_context = self.context.subcontext(task_name="epoch")
        self.epoch_context.call_on_fit_task_begin(
            estimator=self.estimator, X=self.X, y=self.y, metadata=self.metadata
        )

    def end_epoch(self, state, completed=True):
        """Close the epoch's task; return True when a callback asks to stop.

        ``state`` is the :class:`~sklearn_gd._train._state.TrainState` being trained;
        a callback that asks for the fitted estimator gets a copy with this
        epoch's weights.
        """
        if self.epoch_context is None:
            return False
        context, self.epoch_context = self.epoch_context, None
        if not completed:
            context.call_on_fit_task_end(estimator=self.estimator)
            return False
        return bool(
            context.call_on_fit_task_end(
                estimator=self.estimator,
                X=self.X,
                y=self.y,
                metadata=self.metadata,
                reconstruction_attributes=lambda: {
                    "_state": dataclasses.replace(state, theta=copy(state.theta))
                },
            )
        )

    def close(self):
        if self.context is None:
            return
        if self.epoch_context is not None:
            self.end_epoch(None, completed=False)
        self.context.call_on_fit_task_end(
            estimator=self.estimator, X=self.X, y=self.y, metadata=self.metadata,
            reconstruction_attributes={},
        )
