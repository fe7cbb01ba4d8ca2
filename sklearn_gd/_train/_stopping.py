"""Stopping rules: small objects the training loop consults after each epoch.

Each rule has ``after_epoch(state, stopping)``, called once per completed
epoch with the state being trained (which it may update: the best epoch, the
plateau factor of the learning rate) and whether an earlier rule already
stops the run, returning True when training should stop; and
``finish(state)``, called when the run ends however it ends. A new rule is a
new class in this module and one line where the loop's rules are made
(:func:`sklearn_gd._train._trainer.stopping_rules`).

The divergence guard is consulted more often: after every batch.
"""

import math

from .._engine._array_api import copy

#: ``learning_rate="adaptive"`` divides the rate by this on a plateau ...
ADAPTIVE_DIVISOR = 5.0
#: ... and stops once the rate falls to this value.
ADAPTIVE_MIN_RATE = 1e-6
#: A batch objective this many times its reference counts as divergence.
DIVERGENCE_RATIO = 1e8


class DivergenceGuard:
    """Flags non-finite objectives and ones far beyond a sane model's.

    The reference is the run's first batch objective; when that is already
    above ``DIVERGENCE_RATIO``, the objective of the output layer's bias
    alone on that batch (the constant model a fresh network starts from:
    class priors, the target mean) if it is smaller. A loss that grows
    ``DIVERGENCE_RATIO`` times over the reference is an optimizer running
    away (too large a rate), or inputs so large that the first step already
    starts there (unscaled features): not learning. Catching it early keeps
    usable weights to fall back on.
    """

    def __init__(self):
        self.limit = None

    def ok(self, loss, constant_loss=None):
        """Whether the objective ``loss`` (of one batch, or of the epoch's weights) is sane.

        ``constant_loss()`` (that of the bias alone on the same batch) is
        called on the run's first call, which sets the limit, when ``loss``
        is that large.
        """
        if not math.isfinite(loss):
            return False
        if self.limit is None:
            reference = loss
            if loss > DIVERGENCE_RATIO and constant_loss is not None:
                reference = min(loss, constant_loss())
            self.limit = DIVERGENCE_RATIO * reference + 1.0
        return loss <= self.limit


def mark_best_epoch(state):
    """Record ``state``'s last epoch (validated) as the best: its score, validation
    loss, number and weights (one copy, into the buffer kept for them)."""
    record = state.history[-1]
    state.best_validation_score = record.validation_score
    state.best_loss = record.validation_loss
    state.best_iteration = state.n_iter
    if state.best_theta is None:
        state.best_theta = copy(state.theta)
    else:
        state.best_theta[...] = state.theta


def track_best_loss(state, tol=0.0):
    """Record ``state``'s last epoch as the best if its training loss is the lowest
    of the run; return whether it improved on the best before by more than ``tol``."""
    loss = state.history[-1].loss
    improved_by_tol = loss < state.best_loss - tol
    if loss < state.best_loss:
        state.best_loss, state.best_iteration = loss, state.n_iter
    return improved_by_tol


class PlateauRateCut:
    """``learning_rate="adaptive"``: on a plateau, divide the rate by ``ADAPTIVE_DIVISOR``.

    The factor lives in the optimizer state (``lr_factor``), which the
    learning rate of every epoch multiplies (``_training.learning_rate``).
    """

    def __init__(self, learning_rate_init):
        self.learning_rate_init = learning_rate_init

    running = False  # a cut takes effect at once: no epochs of its own

    def cut(self, state):
        """Cut the rate and return the new one, or None when it would fall too low."""
        rate = self.learning_rate_init * state.optimizer.lr_factor
        if rate / ADAPTIVE_DIVISOR > ADAPTIVE_MIN_RATE:
            state.optimizer.lr_factor /= ADAPTIVE_DIVISOR
            return rate / ADAPTIVE_DIVISOR
        return None

    def describe(self, rate):
        return f"Setting learning rate to {rate:g}"

    def finish(self, state):
        pass  # the cut factor stays: a warm start goes on at the cut rate


class Annealing:
    """``anneal_epochs``: on a plateau, anneal the rate to zero over ``epochs`` more
    epochs, then stop.

    From the plateau's epoch ``p``, epoch ``p + k + 1`` (``k = 0 .. A - 1``,
    ``A = epochs``) trains at the schedule's rate times
    ``(1 + cos(pi k / A)) / 2``, through the optimizer state's ``lr_factor``,
    which :meth:`finish` puts back: the annealing belongs to this call.
    """

    def __init__(self, epochs):
        self.epochs = epochs
        self.start = None
        self.factor = None

    @property
    def running(self):
        return self.start is not None

    def cut(self, state):
        """Start annealing at this plateau; return the next epoch's factor."""
        self.start, self.factor = state.n_iter, state.optimizer.lr_factor
        self.advance(state)
        return state.optimizer.lr_factor

    def advance(self, state):
        """Set the next epoch's factor; return True once the ``epochs`` are trained."""
        k = state.n_iter - self.start
        if k >= self.epochs:
            return True
        state.optimizer.lr_factor = self.factor * 0.5 * (1.0 + math.cos(math.pi * k / self.epochs))
        return False

    def describe(self, factor):
        return f"Annealing the learning rate to zero over {self.epochs} epochs"

    def finish(self, state):
        if self.running:
            state.optimizer.lr_factor = self.factor


class NoImprovement:
    """``MLPClassifier``'s rule: stop after a plateau, keeping the best weights.

    An epoch that does not improve the monitored value (the training loss,
    or the validation score with early stopping) by ``tol`` counts; after more
    than ``n_iter_no_change`` such epochs in a row training stops, or, with a
    ``rate_cut``, the rate is cut and counting starts over (stopping once the
    rate is too small). With early stopping the best epoch's weights are kept
    and put back when the run ends. ``may_stop=False`` (``partial_fit``)
    tracks the best epoch without ever stopping.
    """

    def __init__(self, tol, n_iter_no_change, validating, may_stop=True, rate_cut=None,
                 verbose=False, monitor="loss"):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.validating = validating
        self.may_stop = may_stop
        self.rate_cut = rate_cut
        self.verbose = verbose
        self.monitor = monitor

    def after_epoch(self, state, stopping=False):
        improved_by_tol = self._track_best(state)
        if self.rate_cut is not None and self.rate_cut.running:  # annealing: no plateaus
            annealed = self.rate_cut.advance(state)
            if annealed:
                self._say("The learning rate is annealed. Stopping.")
            return annealed
        state.no_improvement_count = 0 if improved_by_tol else state.no_improvement_count + 1
        if not self.may_stop or state.no_improvement_count <= self.n_iter_no_change:
            return False
        monitored = f"validation {self.monitor}" if self.validating else "training loss"
        message = (
            f"{monitored} did not improve more than tol={self.tol} for "
            f"{self.n_iter_no_change} consecutive epochs."
        )
        if self.rate_cut is not None:
            new_rate = self.rate_cut.cut(state)
            if new_rate is not None:
                state.no_improvement_count = 0
                self._say(f"{message} {self.rate_cut.describe(new_rate)}")
                return False
            message += " Learning rate too small."
        self._say(f"{message} Stopping.")
        return True

    def finish(self, state):
        if self.rate_cut is not None:
            self.rate_cut.finish(state)
        if self.validating and state.best_theta is not None:
            state.theta[...] = state.best_theta

    def _track_best(self, state):
        """Record the epoch if it is the best so far; return True if it improved by ``tol``."""
        if self.validating:
            score = state.history[-1].validation_score
            improved_by_tol = score > state.best_validation_score + self.tol
            if score > state.best_validation_score:
                mark_best_epoch(state)
            return improved_by_tol
        return track_best_loss(state, self.tol)

    def _say(self, message):
        if self.verbose:
            print(message)


class CallbackRequest:
    """A scikit-learn callback's request to stop (see :mod:`sklearn_gd._callbacks`).

    Closes each epoch's callback task, whose callbacks may ask to stop.
    """

    def __init__(self, hooks, verbose=False):
        self.hooks = hooks
        self.verbose = verbose

    def after_epoch(self, state, stopping=False):
        if not self.hooks.end_epoch(state) or stopping:
            return False
        if self.verbose:
            print("A callback asked to stop training.")
        return True

    def finish(self, state):
        pass
