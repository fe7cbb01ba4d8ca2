"""The one training loop: epochs, mini-batches, validation, early stopping.

:func:`train_minibatch` runs epochs of mini-batch gradient descent on an
estimator's flat parameter buffer and records each epoch in the estimator's
history (``loss_curve_``, ``validation_scores_``, ...); :func:`train_lbfgs`
minimises the full-batch objective with SciPy's L-BFGS-B. Both only read the
estimator's hyper-parameters and update its fitted state.
"""

import math
import time
import warnings

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning

from ._batches import BatchSource, Regularizers, dropout_rates, resolve_batch_size
from ._optimizers import L2Penalty
from ._schedules import make_schedule

#: ``learning_rate="adaptive"`` divides the rate by this on a plateau ...
ADAPTIVE_DIVISOR = 5.0
#: ... and stops once the rate falls to this value.
ADAPTIVE_MIN_RATE = 1e-6


class DivergenceWarning(UserWarning):
    """Training diverged and was stopped; the last finite weights were kept.

    Raised as a warning when a batch objective becomes non-finite or grows
    ``DIVERGENCE_RATIO`` times over the run's first one, or when L-BFGS returns
    non-finite weights. Filter it like any warning, e.g.
    ``warnings.simplefilter("error", sklearn_gd.DivergenceWarning)`` to turn
    divergence into an exception.
    """


#: A batch objective this many times the run's first one counts as divergence.
DIVERGENCE_RATIO = 1e8


class _DivergenceGuard:
    """Flags non-finite objectives and ones exploding past the run's first.

    A loss that grows ``DIVERGENCE_RATIO`` times over its starting value
    is an optimizer running away (too large a rate, unscaled data), not
    learning; catching it early keeps usable weights to fall back on.
    """

    def __init__(self):
        self.limit = None

    def ok(self, loss):
        if not math.isfinite(loss):
            return False
        if self.limit is None:
            self.limit = DIVERGENCE_RATIO * loss + 1.0
        return loss <= self.limit


DIVERGENCE_ADVICE = (
    "The last finite weights were kept. Try scaling the features (for example "
    "with StandardScaler), lowering learning_rate_init, or increasing alpha."
)


def split_validation(est, X, Y, sw, y_stratify):
    """Hold out ``validation_fraction`` of the rows (stratified for classifiers)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(X.shape[0])
    try:
        train_idx, val_idx = train_test_split(
            idx,
            test_size=est.validation_fraction,
            random_state=int(est._rng.integers(np.iinfo(np.int32).max)),
            stratify=y_stratify,
        )
    except ValueError as exc:
        raise ValueError(
            f"early_stopping=True could not hold out validation_fraction="
            f"{est.validation_fraction} of {X.shape[0]} samples: {exc} Use more "
            "samples, another validation_fraction, or early_stopping=False."
        ) from exc
    if val_idx.shape[0] < 2:  # R^2 of one sample is undefined: NaN scores and a warning per epoch
        raise ValueError(
            f"early_stopping=True held out only one of {X.shape[0]} samples "
            f"(validation_fraction={est.validation_fraction}); a validation score needs at "
            "least two. Use more samples, a larger validation_fraction, or early_stopping=False."
        )
    train_idx.sort()
    val_idx.sort()
    if sw is not None:
        for part, index in (("training", train_idx), ("validation", val_idx)):
            if not sw[index].sum() > 0:
                raise ValueError(
                    f"early_stopping=True held out validation_fraction="
                    f"{est.validation_fraction} of the samples, and the {part} part has no "
                    f"sample of positive weight ({int(np.count_nonzero(sw))} of "
                    f"{X.shape[0]} samples have one). Use more samples of positive weight, "
                    "another validation_fraction, or early_stopping=False."
                )

    def rows(index):
        return X[index], Y[index], None if sw is None else sw[index]

    return rows(train_idx), rows(val_idx)


def _objective_weights(sw, n, dtype):
    """Full-batch weights ``s_i / S`` and the total weight ``S``."""
    if sw is None:
        return np.full(n, 1.0 / n, dtype=dtype), float(n)
    total = float(sw.sum())
    return sw / total, total


def _run_epoch(net, theta, batches, regs, ws, grad, chain, opt_state, lr, l2, guard):
    """One pass over the batches; return the epoch's mean objective or NaN.

    The L2 term (``l2``, or None) is added by the optimizer step, which
    returns its penalty, rather than by the backward pass (``c = 0`` there).

    NaN (divergence) also when the weights the epoch ends with fail the
    guard on the last batch: each batch's objective is that of the weights
    before its step, and without this check nothing would vouch for the
    last step's result before a diverged fit keeps it.
    """
    weighted_loss, rows, last = 0.0, 0, None
    for Xb, Yb, weights in batches:
        m = Xb.shape[0]
        rows += m
        if weights is None:
            continue  # all-zero sample weights: no step
        data_loss, _ = net.loss_and_grad(
            theta, regs.noisy(Xb), Yb, weights, 0.0, ws, grad, regs.masks(m)
        )
        batch_loss = data_loss + chain.step(theta, grad, opt_state, lr, l2)
        if not guard.ok(batch_loss):
            return np.nan
        weighted_loss += batch_loss * m
        last = Xb, Yb, weights
    if not np.isfinite(theta).all():
        return np.nan
    if last is not None and not guard.ok(net.objective(theta, *last, l2.c if l2 else 0.0, ws)):
        return np.nan
    return weighted_loss / rows


def train_minibatch(est, net, X, Y, sw, *, max_epochs, incremental, hooks, y_stratify=None):
    """Train ``est`` by mini-batch gradient descent for at most ``max_epochs``.

    ``est`` provides the hyper-parameters and holds the fitted state (``_theta``,
    ``_opt_state``, ``_rng``, counters and history), which this updates.

    Returns True when training diverged (the weights from before the
    diverging epoch are back in place). A ``KeyboardInterrupt`` puts back the
    weights of the last completed epoch (the best ones with early stopping)
    before propagating.
    """
    early_stopping = est._holds_out(incremental)
    validation = None
    if early_stopping:
        (X, Y, sw), validation = split_validation(est, X, Y, sw, y_stratify)
    theta = est._theta
    n = X.shape[0]
    batch_size = resolve_batch_size(est.batch_size, n)
    total_weight = float(n if sw is None else sw.sum())
    c = est.alpha / total_weight
    rates = dropout_rates(est.dropout, net.layout.n_layers - 1)
    hidden_sizes = net.layout.layer_sizes[1:-1]
    regs = Regularizers(rates, est.input_noise, batch_size, hidden_sizes, theta.dtype, est._rng)
    ws = net.workspace(batch_size, theta.dtype, dropout=regs.active)
    grad = np.empty_like(theta)
    l2 = L2Penalty(c, net.layout, ws.weight_scratch) if c else None
    batches = BatchSource(X, Y, sw, batch_size, est.shuffle, est._rng, theta.dtype)
    chain = est._make_optimizer(net.layout)
    state = est._opt_state
    schedule = make_schedule(
        est.learning_rate, est.learning_rate_init, power_t=est.power_t, max_iter=est.max_iter
    )
    last_good = theta.copy()
    guard = _DivergenceGuard()
    start_time = time.perf_counter()
    stopped = diverged = False
    for _ in range(max_epochs):
        lr = schedule(state["epoch"], state["samples"]) * state["lr_factor"]
        last_good[...] = theta
        hooks.begin_epoch()
        try:
            epoch_loss = _run_epoch(
                net, theta, batches, regs, ws, grad, chain, state["chain"], lr, l2, guard
            )
        except KeyboardInterrupt:
            best = est._best_theta if early_stopping and est._best_theta is not None else last_good
            theta[...] = best
            hooks.end_epoch(theta, completed=False)
            raise
        if not np.isfinite(epoch_loss):
            _undo_diverged_epoch(est, theta, last_good, chain, hooks, lr)
            diverged = stopped = True
            break
        _count_epoch(est, n, epoch_loss)
        if early_stopping:
            _record_validation(est, net, theta, validation, c)
        _report(est, lr, start_time)
        if _update_no_improvement(est, theta, early_stopping, may_stop=not incremental):
            hooks.end_epoch(theta)
            stopped = True
            break
        if hooks.end_epoch(theta):
            if est.verbose:
                print("A callback asked to stop training.")
            stopped = True
            break
    if early_stopping and est._best_theta is not None:
        theta[...] = est._best_theta
    if not stopped and not incremental:
        warnings.warn(
            f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached and "
            "the optimization hasn't converged yet.",
            ConvergenceWarning,
        )
    return diverged


def _undo_diverged_epoch(est, theta, last_good, chain, hooks, lr):
    """Put back the weights from before the epoch, restart the optimizer, warn."""
    theta[...] = last_good
    # the diverging steps' moments would throw a later partial_fit off
    est._opt_state["chain"] = chain.init(theta)
    hooks.end_epoch(theta, completed=False)
    warnings.warn(
        f"Training diverged in epoch {est.n_iter_ + 1} (the loss or the weights "
        f"blew up with learning rate {lr:.3g}); training stopped. " + DIVERGENCE_ADVICE,
        DivergenceWarning,
    )


def _count_epoch(est, n, epoch_loss):
    """Record a completed epoch of ``n`` samples in the counters and the loss curve."""
    state = est._opt_state
    est.n_iter_ += 1
    est.t_ += n
    state["epoch"] += 1
    state["samples"] += n
    est.loss_curve_.append(float(epoch_loss))


def _record_validation(est, net, theta, validation, c):
    X_val, Y_val, sw_val = validation
    Y_val = Y_val.astype(theta.dtype, copy=False)
    R, P = net.forward(theta, X_val)
    weights, _ = _objective_weights(sw_val, X_val.shape[0], theta.dtype)
    val_loss = float(net.loss.value(R, P, Y_val) @ weights) + net.l2_penalty(theta, c)
    est.validation_loss_curve_.append(val_loss)
    est.validation_scores_.append(float(est._score_encoded(P, Y_val, sw_val)))


def _update_no_improvement(est, theta, early_stopping, may_stop=True):
    """Track the best epoch; return True when training should stop.

    As ``MLPClassifier``: an epoch that does not improve the monitored value
    (training loss, or validation score with early stopping) by ``tol`` counts;
    after more than ``n_iter_no_change`` such epochs in a row training stops,
    or with ``learning_rate="adaptive"`` the rate is divided by 5 (stopping
    once it falls below 1e-6).
    """
    improved_by_tol = _track_best(est, theta, early_stopping)
    est._no_improvement_count = 0 if improved_by_tol else est._no_improvement_count + 1
    if not may_stop or est._no_improvement_count <= est.n_iter_no_change:
        return False
    monitored = "validation score" if early_stopping else "training loss"
    message = (
        f"{monitored} did not improve more than tol={est.tol} for "
        f"{est.n_iter_no_change} consecutive epochs."
    )
    if est.learning_rate == "adaptive":
        state = est._opt_state
        rate = est.learning_rate_init * state["lr_factor"]
        if rate / ADAPTIVE_DIVISOR > ADAPTIVE_MIN_RATE:
            state["lr_factor"] /= ADAPTIVE_DIVISOR
            est._no_improvement_count = 0
            if est.verbose:
                print(f"{message} Setting learning rate to {rate / ADAPTIVE_DIVISOR:g}")
            return False
        message += " Learning rate too small."
    if est.verbose:
        print(f"{message} Stopping.")
    return True


def _track_best(est, theta, early_stopping):
    """Record the epoch if it is the best so far; return True if it improved by ``tol``.

    The monitored value is the validation score with early stopping (whose
    best weights are kept), else the training loss.
    """
    if early_stopping:
        score = est.validation_scores_[-1]
        improved_by_tol = score > est.best_validation_score_ + est.tol
        if score > est.best_validation_score_:
            est.best_validation_score_ = score
            est.best_loss_ = est.validation_loss_curve_[-1]
            est.best_iteration_ = est.n_iter_
            if est._best_theta is None:
                est._best_theta = theta.copy()
            else:
                est._best_theta[...] = theta
        return improved_by_tol
    loss = est.loss_curve_[-1]
    improved_by_tol = loss < est.best_loss_ - est.tol
    if loss < est.best_loss_:
        est.best_loss_ = loss
        est.best_iteration_ = est.n_iter_
    return improved_by_tol


def _report(est, lr, start_time):
    if not est.verbose:
        return
    parts = [f"Epoch {est.n_iter_}", f"loss = {est.loss_curve_[-1]:.6f}"]
    if est.validation_scores_:
        parts.append(f"validation loss = {est.validation_loss_curve_[-1]:.6f}")
        parts.append(f"validation score = {est.validation_scores_[-1]:.6f}")
    if lr is not None:  # L-BFGS has no learning rate
        parts.append(f"learning rate = {lr:.3g}")
    parts.append(f"elapsed = {time.perf_counter() - start_time:.2f}s")
    print(", ".join(parts))


def train_lbfgs(est, net, X, Y, sw, *, max_epochs, hooks):
    """Minimise the full-batch objective with SciPy's L-BFGS-B.

    One L-BFGS iteration counts as one epoch (``n_iter_``, ``loss_curve_``).
    """
    theta = est._theta
    Y = Y.astype(theta.dtype, copy=False)
    weights, total = _objective_weights(sw, X.shape[0], theta.dtype)
    c = est.alpha / total
    ws = net.workspace(X.shape[0], theta.dtype)
    grad = np.empty_like(theta)

    def objective(params):
        theta[...] = params
        data_loss, penalty = net.loss_and_grad(theta, X, Y, weights, c, ws, grad)
        return data_loss + penalty, grad.astype(np.float64)

    def record(intermediate_result):
        hooks.begin_epoch()
        est.n_iter_ += 1
        est.t_ += X.shape[0]
        est.loss_curve_.append(float(intermediate_result.fun))
        if est.loss_curve_[-1] < est.best_loss_:
            est.best_loss_ = est.loss_curve_[-1]
            est.best_iteration_ = est.n_iter_
        _report(est, None, start_time)
        if hooks.end_epoch(intermediate_result.x.astype(theta.dtype)):
            raise StopIteration  # a callback asked to stop: SciPy ends the run cleanly

    start = theta.astype(np.float64)
    start_time = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):
        result = scipy.optimize.minimize(
            objective,
            start,
            method="L-BFGS-B",
            jac=True,
            callback=record,
            options={"maxiter": max_epochs, "maxfun": est.max_fun, "gtol": est.tol},
        )
    if np.isfinite(result.x).all() and np.isfinite(result.fun):
        theta[...] = result.x
    else:
        theta[...] = start
        warnings.warn(
            "L-BFGS produced non-finite weights; training stopped. " + DIVERGENCE_ADVICE,
            DivergenceWarning,
        )
        return True
    if result.status == 1:  # max_iter or max_fun reached (99: a callback stopped it)
        warnings.warn(
            f"lbfgs failed to converge after {result.nit} iterations "
            f"(status={result.status}): {result.message}. Increase max_iter or "
            "max_fun, or scale the data.",
            ConvergenceWarning,
        )
