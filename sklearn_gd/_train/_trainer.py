"""The trainer: pure functions of a configuration, a state and the data.

:func:`train` takes a frozen :class:`TrainConfig` (the estimator's
hyper-parameters for this call), a :class:`~sklearn_gd._train._state.TrainState`
(left unchanged) and a :class:`TrainData`, and returns a :class:`TrainResult`
holding the trained copy of the state. The mini-batch loop reads top-down:

    start the run -> epochs -> batches -> loss and gradient -> update
    -> record -> ask the stopping rules

:func:`train_lbfgs` minimises the full-batch objective with SciPy's L-BFGS-B
instead. Neither knows about the estimator.
"""

import dataclasses
import functools
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning

from .._engine._array_api import all_finite, copy, namespace, numpy_dtype, to_numpy
from .._engine._network import Network
from .._optim._optimizers import make_optimizer
from .._optim._schedules import make_schedule
from ._state import Bookmark, EpochRecord, OptimizerState
from ._stopping import (
    Annealing,
    CallbackRequest,
    DivergenceGuard,
    NoImprovement,
    PlateauRateCut,
    mark_best_epoch,
    track_best_loss,
)


class DivergenceWarning(UserWarning):
    """Training diverged and was stopped; the last finite weights were kept.

    Raised as a warning when a batch objective becomes non-finite or grows
    ``DIVERGENCE_RATIO`` times over the run's first one, or when L-BFGS returns
    non-finite weights. Filter it like any warning, e.g.
    ``warnings.simplefilter("error", sklearn_gd.DivergenceWarning)`` to turn
    divergence into an exception.
    """


SCALING_ADVICE = (
    "Try scaling the features (for example with StandardScaler), lowering "
    "learning_rate_init, or increasing alpha."
)
DIVERGENCE_ADVICE = "The last finite weights were kept. " + SCALING_ADVICE
#: a partial_fit call that diverges is undone as a whole (see BaseGD._fit)
PARTIAL_FIT_DIVERGENCE_ADVICE = (
    "This partial_fit call was undone: the model is as it was before the call "
    "(unfitted if it was). " + SCALING_ADVICE
)


@dataclass(frozen=True)
class TrainConfig:
    """What one ``fit`` or ``partial_fit`` call trains with, fixed for the call.

    The estimator's hyper-parameters of the same names, and:

    network : Network
        Layout, hidden activation and loss.
    score : callable
        ``score(state, validation, P, loss)``: the early-stopping score of an
        epoch from the validation data, its predictions and its objective.
    max_epochs : int
        ``max_iter`` for ``fit``, 1 for ``partial_fit``.
    incremental : bool
        A ``partial_fit`` call: the optimizer and the stopping rule's state
        carry over from the previous call, and the rule never stops.
    early_stopping : bool
        Whether this call holds out a validation part (only a mini-batch ``fit``).
    dropout : tuple of float
        One rate per hidden layer.
    monitor : str
        The name of what early stopping monitors (``"loss"``, ``"accuracy"``,
        ``"r2"``, a scorer's name), for what the run reports.
    optimizer : Chain or None
        The mini-batch solver's update rule (:func:`optimizer_for`), built
        once for the call and shared by everything that steps or initialises
        it; None for L-BFGS. It holds configuration only: the moments and
        any per-device array live in the state it is given.
    """

    network: Network
    score: Callable
    max_epochs: int
    incremental: bool
    solver: str
    alpha: float
    batch_size: Any
    shuffle: bool
    learning_rate: str
    learning_rate_init: float
    power_t: float
    max_iter: int
    tol: float
    n_iter_no_change: Any
    early_stopping: bool
    validation_fraction: float
    dropout: tuple
    input_noise: float
    momentum: float
    nesterovs_momentum: bool
    beta_1: float
    beta_2: float
    epsilon: float
    rho: float
    weight_decay: float
    max_fun: int
    verbose: Any
    anneal_epochs: int = 0
    n_steps_no_change: int = 0
    monitor: str = "loss"
    optimizer: Any = None


@dataclass(frozen=True)
class TrainResult:
    """The trained state, and how the run ended.

    ``diverged``: stopped by the divergence guard, with the weights from
    before the diverging epoch. ``interrupted``: stopped by a
    ``KeyboardInterrupt``, with the weights of the last completed epoch (the
    best ones with early stopping; L-BFGS: its last accepted iterate); the
    caller re-raises it. ``completed_epochs``: epochs (L-BFGS iterations)
    this call completed; an interrupted call that completed none has nothing
    worth keeping.
    """

    state: Any
    diverged: bool = False
    interrupted: bool = False
    completed_epochs: int = 0


def train(config, state, data, hooks):
    """Train a copy of ``state`` on ``data``; return a :class:`TrainResult`.

    A state never trained (fresh from :func:`~sklearn_gd._train._state.init_state`,
    which no model holds yet) is trained itself: a copy would only double
    the parameters' memory.

    ``hooks`` are the call's :class:`~sklearn_gd._callbacks.EpochHooks`.
    Overflow is detected (and undone) by the loop: NumPy need not warn.
    """
    state = start_run(config, state)
    with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
        if config.solver == "lbfgs":
            return train_lbfgs(config, state, data, hooks)
        return train_minibatch(config, state, data, hooks)


def start_run(config, state):
    """``state`` ready for this call: a copy of a trained one.

    ``partial_fit`` carries the optimizer (unless the solver changed) and the
    stopping rule's trackers over; ``fit``, warm-started or not, starts a new
    run: a fresh optimizer, schedule position and plateau factor, and fresh
    trackers.
    """
    carry_over = config.incremental and state.optimizer is not None
    if state.optimizer is not None:  # a trained state, which its model holds: train a copy
        state = state.copy()
    if not (carry_over and state.optimizer.solver == config.solver):
        state.optimizer = new_optimizer_state(config, state)
    if not carry_over:
        state.no_improvement_count = 0
        state.best_loss = np.inf
        state.best_validation_score = -np.inf if config.early_stopping else None
        state.best_theta = None
    return state


def optimizer_for(config, layout, dtype):
    """The update rule of a mini-batch solver
    (:func:`~sklearn_gd._optim._optimizers.make_optimizer`), for the arrays of
    the configuration's network."""
    weight_mask = None
    if config.solver == "adamw":
        weight_mask = layout.weight_mask().astype(numpy_dtype(dtype))
    return make_optimizer(
        config.solver,
        momentum=config.momentum,
        nesterovs_momentum=config.nesterovs_momentum,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        epsilon=config.epsilon,
        rho=config.rho,
        weight_decay=config.weight_decay,
        weight_mask=weight_mask,
        ops=config.network.backend,
    )


def new_optimizer_state(config, state):
    """The chain's state (mini-batch solvers only), schedule position and plateau factor."""
    chain = None if config.optimizer is None else config.optimizer.init(state.theta)
    return OptimizerState(solver=config.solver, chain=chain)


def learning_rate(config, optimizer_state):
    """The rate of the next epoch: the schedule at the optimizer's position, times the
    plateau factor (see :class:`~sklearn_gd._train._stopping.PlateauRateCut`). The one place
    the rate is decided."""
    schedule = make_schedule(config.learning_rate, config.learning_rate_init,
                             power_t=config.power_t, max_iter=config.max_iter)
    position = optimizer_state.epoch, optimizer_state.samples
    return schedule(*position) * optimizer_state.lr_factor


def plateau_epochs(config, steps_per_epoch):
    """The epochs without improvement a run tolerates:
    ``max(n_iter_no_change, ceil(n_steps_no_change / steps_per_epoch))``."""
    return max(config.n_iter_no_change, -(-config.n_steps_no_change // steps_per_epoch))


def stopping_rules(config, hooks, steps_per_epoch):
    """The rules a mini-batch run consults after each epoch, in order, for epochs of
    ``steps_per_epoch`` steps."""
    rate_cut = None
    if config.learning_rate == "adaptive":
        rate_cut = PlateauRateCut(config.learning_rate_init)
    elif config.anneal_epochs:
        rate_cut = Annealing(config.anneal_epochs)
    no_improvement = NoImprovement(
        config.tol, plateau_epochs(config, steps_per_epoch), validating=config.early_stopping,
        may_stop=not config.incremental, rate_cut=rate_cut, verbose=config.verbose,
        monitor=config.monitor,
    )
    return [no_improvement, CallbackRequest(hooks, verbose=config.verbose)]


def train_minibatch(config, state, data, hooks):
    """Mini-batch gradient descent on ``state`` (trained in place) for at most
    ``config.max_epochs`` epochs; returns a :class:`TrainResult`.

    ``data`` is in memory (:class:`TrainData`) or in chunks on a Dask cluster
    (:class:`~sklearn_gd._data._dask.ChunkedData`, which makes its own epochs:
    synchronous data-parallel steps); the loop around the epochs is the same.
    """
    validation = None
    if config.early_stopping:
        validation = data.validation
        if validation is None:
            data, validation = data.split_validation(config, state.rng)
    epochs = data.epochs(config, state)
    theta = state.theta
    rules = stopping_rules(config, hooks, epochs.n_steps)
    last_good = copy(theta)
    guard = DivergenceGuard()
    start_time = time.perf_counter()
    stopped = False
    completed = 0
    for _ in range(config.max_epochs):
        lr = learning_rate(config, state.optimizer)
        last_good[...] = theta
        bookmark = Bookmark.of(state)
        try:
            hooks.begin_epoch()
            epoch_loss = run_epoch(epochs, theta, state.optimizer.chain, lr, guard)
            if not np.isfinite(epoch_loss):
                _undo_diverged_epoch(config, state, last_good, epochs.chain, hooks, lr)
                return TrainResult(state, diverged=True, completed_epochs=completed)
            record_epoch(state, epochs.n, epoch_loss)
            if validation is not None:
                record_validation(config, state, validation, epochs.c)
            _report(config, state, lr, start_time)
            for rule in rules:
                stopped = rule.after_epoch(state, stopped) or stopped
        except KeyboardInterrupt:
            if _keep_or_undo_interrupted_epoch(state, bookmark, last_good, epochs.chain,
                                               validating=validation is not None):
                completed += 1
            _finish(rules, state)
            _close_interrupted_epoch(hooks, state)
            return TrainResult(state, interrupted=True, completed_epochs=completed)
        completed += 1
        if stopped:
            break
    _finish(rules, state)
    if not stopped and not config.incremental:
        warnings.warn(
            f"Stochastic Optimizer: Maximum iterations ({config.max_iter}) reached and "
            "the optimization hasn't converged yet.",
            ConvergenceWarning,
        )
    return TrainResult(state, completed_epochs=completed)


def _keep_or_undo_interrupted_epoch(state, bookmark, last_good, chain, validating):
    """After a ``KeyboardInterrupt`` in an epoch: keep it if it was recorded; else undo it.

    An epoch whose loss (and validation score) were recorded keeps its weights
    and record, whatever came after (the stopping rules' bookkeeping, a
    callback's end-of-epoch hook): the best epoch is then re-derived from the
    record, so an interrupt inside that bookkeeping leaves it coherent. Any
    other epoch is undone: the weights, counters and histories of the bookmark
    come back, and the optimizer's state starts afresh (its moments had moved
    on with the undone steps). Returns True when the epoch was kept.
    """
    if bookmark.one_more_epoch_recorded(state, validating):
        if validating:
            _track_best_of_last_epoch(state, bookmark)
        return True
    bookmark.restore(state)
    state.theta[...] = last_good
    state.optimizer.chain = chain.init(state.theta)
    return False


def _track_best_of_last_epoch(state, bookmark):
    """With early stopping, the best epoch after the last one, as the stopping rule has it."""
    score = state.history[-1].validation_score
    previous_best = bookmark.best_validation_score
    if previous_best is not None and not score > previous_best:
        state.best_validation_score = previous_best
        state.best_loss, state.best_iteration = bookmark.best_loss, bookmark.best_iteration
        return
    mark_best_epoch(state)


def _close_interrupted_epoch(hooks, state):
    """Close the interrupted epoch's callback task; a second interrupt there changes
    nothing (the caller re-raises one anyway)."""
    try:
        hooks.end_epoch(state, completed=False)
    except KeyboardInterrupt:
        pass


def _finish(rules, state):
    for rule in rules:
        rule.finish(state)


def run_epoch(source, theta, chain_state, lr, guard):
    """One pass over an epoch source's steps; return the epoch's mean objective or NaN.

    ``source`` is in memory (:class:`LocalEpochs`) or in chunks on a Dask
    cluster (:class:`~sklearn_gd._data._dask._epochs.ChunkedEpochs`): it gives the
    steps, each step's loss and gradient, and the references below; this
    loop, the divergence guard and the update are the same for both.

    The objective's L2 term (``source.l2``, made by
    :meth:`~sklearn_gd._engine._network.Network.l2_term`, or None) is handed to
    the update rule's step, which adds its gradient and returns its penalty
    (:meth:`~sklearn_gd._optim._optimizers.Transform.step`): Adam's kernel adds
    it in the pass over the parameters it makes anyway, where the backward
    pass would make one more (``c = 0`` there).

    NaN (divergence) also when the weights the epoch ends with fail the
    guard on the last step: each step's objective is that of the weights
    before it, and without this check nothing would vouch for the last
    step's result before a diverged fit keeps it.

    With ``source.deferred`` (off NumPy), the steps' objectives stay on the
    device until the epoch ends, and the guard reads them then, in order:
    reading each back at once would make a GPU wait for every batch. The
    decision is the same; a diverging epoch runs to its end before its
    weights are undone.
    """
    chain, l2 = source.chain, source.l2
    weighted_loss, rows, last, pending = 0.0, 0, None, []
    needs_reference = guard.limit is None
    for m, step in source.steps():
        rows += m
        result = source.loss_and_grad(theta, step)
        if result is None:
            continue  # no row of positive weight: no step
        data_loss, grad = result
        constant_loss = None
        if needs_reference:  # the run's first step: its reference, from the bias before the step
            needs_reference = False
            constant_loss = functools.partial(source.constant_loss,
                                              copy(source.net.layout.biases(theta)[-1]), step)
        batch_loss = data_loss + chain.step(theta, grad, chain_state, lr, l2)
        last = step
        if source.deferred:
            pending.append((batch_loss, m, constant_loss))
            continue
        if not guard.ok(batch_loss, constant_loss):
            return np.nan
        weighted_loss += batch_loss * m
    for batch_loss, m, constant_loss in _read_back(pending):
        if not guard.ok(batch_loss, constant_loss):
            return np.nan
        weighted_loss += batch_loss * m
    if not all_finite(theta):
        return np.nan
    if last is not None and not guard.ok(source.objective(theta, last)):
        return np.nan
    return weighted_loss / rows


def _read_back(pending):
    """``pending`` with each batch's objective (a 0-d device array) as a float, in
    one transfer."""
    if not pending:
        return pending
    xp = namespace(pending[0][0])
    values = to_numpy(xp.stack([xp.reshape(loss, ()) for loss, _, _ in pending])).tolist()
    return [(value, m, constant) for value, (_, m, constant) in zip(values, pending)]


def _undo_diverged_epoch(config, state, last_good, chain, hooks, lr):
    """Put back the weights from before the epoch, restart the optimizer, warn."""
    state.theta[...] = last_good
    # the diverging steps' moments would throw a later partial_fit off
    state.optimizer.chain = chain.init(state.theta)
    hooks.end_epoch(state, completed=False)
    advice = PARTIAL_FIT_DIVERGENCE_ADVICE if config.incremental else DIVERGENCE_ADVICE
    warnings.warn(
        f"Training diverged in epoch {state.n_iter + 1} (the loss or the weights "
        f"blew up with learning rate {lr:.3g}); training stopped. " + advice,
        DivergenceWarning,
    )


def record_epoch(state, n, epoch_loss):
    """Record a completed epoch of ``n`` samples in the counters and the loss curve."""
    state.n_iter += 1
    state.t += n
    state.optimizer.epoch += 1
    state.optimizer.samples += n
    state.history.append(EpochRecord(float(epoch_loss)))


def record_validation(config, state, validation, c):
    """The validation objective (data loss + L2, as in training) and score of the
    epoch, added to its record."""
    val_loss, score = validation.evaluate(config, state, c)
    state.history[-1] = dataclasses.replace(state.history[-1], validation_loss=float(val_loss),
                                            validation_score=float(score))


def _report(config, state, lr, start_time):
    """With ``verbose``, one line per epoch: scikit-learn's MLP's start
    (``Iteration N, loss = ...``, which log parsers read), then our fields."""
    if not config.verbose:
        return
    record = state.history[-1]
    parts = [f"Iteration {state.n_iter}", f"loss = {record.loss:.8f}"]
    if record.validation_score is not None:
        parts.append(f"validation loss = {record.validation_loss:.6f}")
        if config.monitor != "loss":  # the loss's score is minus the loss: said once
            parts.append(f"validation {config.monitor} = {record.validation_score:.6f}")
    if lr is not None:  # L-BFGS has no learning rate
        parts.append(f"learning rate = {lr:.3g}")
    parts.append(f"elapsed = {time.perf_counter() - start_time:.2f}s")
    print(", ".join(parts))


def _no_iteration_message(config, data):
    """What an L-BFGS run that stopped at its starting weights says."""
    message = (
        "L-BFGS made no iteration: the gradient at the starting weights is already "
        f"below tol={config.tol}, so the model is the initial network (n_iter_ is 0, "
        "loss_curve_ is empty and loss_ is None)."
    )
    sw = getattr(data, "sample_weight", None)  # in memory only
    if sw is not None and np.count_nonzero(sw) == 1:
        message += (
            " Only one sample has a non-zero weight: the initial output bias already "
            "predicts its target; give more samples a positive weight."
        )
    return message


def train_lbfgs(config, state, data, hooks):
    """Minimise the full-batch objective with SciPy's L-BFGS-B.

    One L-BFGS iteration counts as one epoch (``n_iter``, ``loss_curve``).
    The objective and its gradient come from the data in memory, or summed
    over the chunks of a Dask cluster (:class:`~sklearn_gd._data._dask.ChunkedData`).
    """
    theta = state.theta
    n, objective_at = data.n, data.full_batch_objective(config, theta)

    # theta may live on a device: only the flat vectors cross to SciPy and back
    ops = config.network.backend
    to_theta = functools.partial(ops.from_host, theta=theta)

    def objective(params):
        theta[...] = to_theta(params)
        value, grad = objective_at(theta)
        return float(value), to_numpy(grad).astype(np.float64)

    # the last accepted iterate, its record complete: what an interrupt keeps
    accepted = {"x": None, "bookmark": Bookmark.of(state), "iterations": 0}

    def record(intermediate_result):
        hooks.begin_epoch()
        x = intermediate_result.x.copy()
        record_epoch(state, n, intermediate_result.fun)
        track_best_loss(state)
        accepted.update(x=x, bookmark=Bookmark.of(state), iterations=accepted["iterations"] + 1)
        _report(config, state, None, start_time)
        iterate = dataclasses.replace(state, theta=to_theta(x))
        if hooks.end_epoch(iterate):
            raise StopIteration  # a callback asked to stop: SciPy ends the run cleanly

    start = to_numpy(theta).astype(np.float64)
    start_time = time.perf_counter()
    try:
        result = scipy.optimize.minimize(
            objective,
            start,
            method="L-BFGS-B",
            jac=True,
            callback=record,
            options={"maxiter": config.max_epochs, "maxfun": config.max_fun,
                     "gtol": config.tol},
        )
    except KeyboardInterrupt:
        accepted["bookmark"].restore(state)
        theta[...] = to_theta(start if accepted["x"] is None else accepted["x"])
        _close_interrupted_epoch(hooks, state)
        return TrainResult(state, interrupted=True, completed_epochs=accepted["iterations"])
    if np.isfinite(result.x).all() and np.isfinite(result.fun):
        theta[...] = to_theta(result.x)
    else:
        theta[...] = to_theta(start)
        warnings.warn(
            "L-BFGS produced non-finite weights; training stopped. " + DIVERGENCE_ADVICE,
            DivergenceWarning,
        )
        return TrainResult(state, diverged=True)
    if result.nit == 0:
        warnings.warn(_no_iteration_message(config, data), UserWarning)
    if result.status == 1:  # max_iter or max_fun reached (99: a callback stopped it)
        warnings.warn(
            f"lbfgs failed to converge after {result.nit} iterations "
            f"(status={result.status}): {result.message}. Increase max_iter or "
            "max_fun, or scale the data.",
            ConvergenceWarning,
        )
    return TrainResult(state, completed_epochs=result.nit)
