"""The trainer as a function of (configuration, state, data), and the stopping rules."""

import numpy as np
import pytest

from sklearn_gd import GDRegressor
from sklearn_gd._callbacks import EpochHooks
from sklearn_gd._data._in_memory import TrainData
from sklearn_gd._engine._layout import Layout
from sklearn_gd._train._state import EpochRecord, OptimizerState, TrainState
from sklearn_gd._train._stopping import (
    ADAPTIVE_DIVISOR,
    Annealing,
    CallbackRequest,
    NoImprovement,
    PlateauRateCut,
)
from sklearn_gd._train._trainer import learning_rate, train

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 3))
y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=60)


def snapshot(state):
    """Copies of everything in ``state`` that training could change."""
    return dict(
        theta=state.theta.copy(),
        rng=state.rng.bit_generator.state,
        chain=[vars(t.map_arrays(np.copy)) for t in state.optimizer.chain],
        counters=(state.optimizer.epoch, state.optimizer.samples, state.n_iter, state.t),
        loss_curve=list(state.loss_curve),
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # stops early on purpose
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_train_returns_a_new_state_and_leaves_the_given_one_unchanged(solver):
    est = GDRegressor(hidden_layer_sizes=(4,), solver=solver, batch_size=16, max_iter=3,
                      random_state=0).fit(X, y)
    given = est._state
    before = snapshot(given) if solver != "lbfgs" else dict(theta=given.theta.copy())
    config = est._train_config(given.layout, incremental=solver != "lbfgs", max_epochs=2,
                               early_stopping=False)
    result = train(config, given, TrainData(X, y[:, None]), EpochHooks(est, X, y, None, 2))
    assert result.state is not given and result.state.theta is not given.theta
    assert result.state.n_iter > given.n_iter
    assert not np.array_equal(result.state.theta, given.theta)
    after = snapshot(given) if solver != "lbfgs" else dict(theta=given.theta.copy())
    for key, value in before.items():
        if key == "chain":
            for kept, new in zip(value, after[key]):
                for name in kept:
                    np.testing.assert_array_equal(kept[name], new[name])
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[key], value)
        else:
            assert after[key] == value, key


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # stops early on purpose
def test_the_learning_rate_is_the_schedule_times_the_plateau_factor():
    est = GDRegressor(learning_rate="invscaling", learning_rate_init=0.1, power_t=0.5)
    est.fit(X, y)
    config = est._train_config(est._layout, incremental=True, max_epochs=1, early_stopping=False)
    optimizer = OptimizerState("sgd", epoch=3, samples=99, lr_factor=0.04)
    assert learning_rate(config, optimizer) == pytest.approx(0.1 / 100**0.5 * 0.04)


def scripted_state(losses, validation_scores=None):
    """A state whose history ends with ``losses`` (and ``validation_scores``)."""
    layout = Layout([2, 1])
    scores = [None] * len(losses)
    scores[len(losses) - len(validation_scores or []):] = validation_scores or []
    history = [EpochRecord(loss, None if score is None else 0.0, score)
               for loss, score in zip(losses, scores)]
    return TrainState(
        layout=layout, theta=np.zeros(layout.size), rng=np.random.default_rng(0),
        optimizer=OptimizerState("sgd"), history=history,
        best_validation_score=-np.inf if validation_scores else None,
    )


def run_rule(rule, state, losses=(), scores=()):
    """Feed the rule one epoch per loss (or score); return the epochs at which it stopped."""
    stops = []
    for epoch, value in enumerate(scores or losses, start=1):
        record = EpochRecord(0.0, -value, value) if scores else EpochRecord(value)
        state.history.append(record)
        state.n_iter = epoch
        state.theta[:] = epoch
        if rule.after_epoch(state):
            stops.append(epoch)
    return stops


def test_no_improvement_stops_after_n_iter_no_change_plus_one_flat_epochs():
    rule = NoImprovement(tol=0.1, n_iter_no_change=2, validating=False)
    state = scripted_state([])
    # 4.0 improves by more than tol; 3.95, 3.93 and 3.92 do not: the third stops;
    # 1.0 improves again, and the count starts over
    assert run_rule(rule, state, losses=[5.0, 4.0, 3.95, 3.93, 3.92, 1.0]) == [5]
    assert state.best_loss == 1.0 and state.best_iteration == 6
    assert state.no_improvement_count == 0


def test_no_improvement_in_partial_fit_tracks_the_best_without_stopping():
    rule = NoImprovement(tol=0.1, n_iter_no_change=1, validating=False, may_stop=False)
    state = scripted_state([])
    assert run_rule(rule, state, losses=[5.0, 5.0, 5.0, 5.0]) == []
    assert state.no_improvement_count == 3 and state.best_iteration == 1


def test_early_stopping_keeps_and_restores_the_best_weights():
    rule = NoImprovement(tol=0.0, n_iter_no_change=1, validating=True)
    state = scripted_state([], validation_scores=[])
    state.best_validation_score = -np.inf
    assert run_rule(rule, state, scores=[0.5, 0.9, 0.8, 0.7]) == [4]
    assert state.best_iteration == 2 and state.best_loss == -0.9
    np.testing.assert_array_equal(state.best_theta, 2.0)
    rule.finish(state)
    np.testing.assert_array_equal(state.theta, 2.0)


def test_the_plateau_rule_cuts_the_rate_then_stops_when_it_is_too_small(capsys):
    rule = NoImprovement(tol=0.0, n_iter_no_change=0, validating=False,
                         rate_cut=PlateauRateCut(learning_rate_init=1e-5), verbose=True)
    state = scripted_state([])
    # every epoch after the first is flat: 1e-5 -> 2e-6 (cut), then 4e-7 < 1e-6: stop
    assert run_rule(rule, state, losses=[1.0, 1.0, 1.0]) == [3]
    assert state.optimizer.lr_factor == 1 / ADAPTIVE_DIVISOR
    out = capsys.readouterr().out
    assert "Setting learning rate to 2e-06" in out
    assert "Learning rate too small. Stopping." in out


def test_a_plateau_anneals_the_rate_over_anneal_epochs_then_stops(capsys):
    """The plateau at epoch p starts the annealing: epoch p + k + 1 trains at the
    factor (1 + cos(pi k / A)) / 2, no plateau stops it early, it stops after A
    epochs, and finish puts the factor back and the best weights in place."""
    rule = NoImprovement(tol=0.0, n_iter_no_change=1, validating=True,
                         rate_cut=Annealing(4), verbose=True)
    state = scripted_state([], validation_scores=[])
    state.best_validation_score = -np.inf
    state.optimizer.lr_factor = 0.5  # a factor from before: annealing multiplies it
    factors = []
    stops = []
    for epoch, score in enumerate([0.5, 0.9, 0.8, 0.7, 0.6, 0.95, 0.1, 0.1, 0.1], start=1):
        state.history.append(EpochRecord(0.0, -score, score))
        state.n_iter = epoch
        state.theta[:] = epoch
        if rule.after_epoch(state):
            stops.append(epoch)
            break
        factors.append(state.optimizer.lr_factor)
    # the plateau: epochs 3 and 4 do not improve on epoch 2 (more than 1 epoch): at 4
    expected = [0.5 * 0.5 * (1 + np.cos(np.pi * k / 4)) for k in range(4)]
    np.testing.assert_allclose(factors[3:], expected[:len(factors) - 3])
    assert factors[:3] == [0.5, 0.5, 0.5]
    assert stops == [8]  # epochs 5 to 8 anneal, whatever the scores
    assert state.best_iteration == 6  # the annealed epochs count for the best
    rule.finish(state)
    assert state.optimizer.lr_factor == 0.5
    np.testing.assert_array_equal(state.theta, 6.0)
    out = capsys.readouterr().out
    assert "Annealing the learning rate to zero over 4 epochs" in out
    assert "The learning rate is annealed. Stopping." in out


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_anneal_epochs_trains_the_plateau_then_the_annealed_epochs(capsys):
    """A fit with anneal_epochs trains exactly anneal_epochs more than the fit that
    stops at the plateau, at the annealed rates, then keeps its best epoch."""
    params = dict(hidden_layer_sizes=(8,), early_stopping=True, n_iter_no_change=2,
                  learning_rate_init=0.05, max_iter=300, random_state=0)
    stopped = GDRegressor(**params).fit(X, y)
    annealed = GDRegressor(anneal_epochs=5, verbose=True, **params).fit(X, y)
    assert annealed.n_iter_ == stopped.n_iter_ + 5
    np.testing.assert_array_equal(annealed.loss_curve_[:stopped.n_iter_], stopped.loss_curve_)
    rates = [float(line.split("learning rate = ")[1].split(",")[0])
             for line in capsys.readouterr().out.splitlines() if "learning rate = " in line]
    np.testing.assert_allclose(rates[-5:], [0.05 * 0.5 * (1 + np.cos(np.pi * k / 5))
                                            for k in range(5)], rtol=5e-3)
    assert annealed._state.optimizer.lr_factor == 1.0
    with pytest.raises(ValueError, match="anneal_epochs and learning_rate='adaptive'"):
        GDRegressor(anneal_epochs=3, learning_rate="adaptive").fit(X, y)


@pytest.mark.parametrize("batch_size, steps_per_epoch", [(16, 4), (60, 1)])
def test_n_steps_no_change_counts_the_plateau_in_steps_too(batch_size, steps_per_epoch):
    """n_steps_no_change=S tolerates max(n_iter_no_change, ceil(S / steps per epoch))
    epochs without improvement: the same run as that many epochs of n_iter_no_change,
    and no change where n_iter_no_change epochs already span S steps."""
    params = dict(hidden_layer_sizes=(8,), tol=1e-3, learning_rate_init=0.05, max_iter=500,
                  batch_size=batch_size, random_state=0)
    short = GDRegressor(n_iter_no_change=2, **params).fit(X, y)
    counted = GDRegressor(n_iter_no_change=2, n_steps_no_change=20, **params).fit(X, y)
    longer = GDRegressor(n_iter_no_change=20 // steps_per_epoch, **params).fit(X, y)
    assert short.n_iter_ < counted.n_iter_ < params["max_iter"]
    assert counted.n_iter_ == longer.n_iter_
    np.testing.assert_array_equal(counted.loss_curve_, longer.loss_curve_)
    np.testing.assert_array_equal(counted.coefs_[0], longer.coefs_[0])
    spanned = GDRegressor(n_iter_no_change=2, n_steps_no_change=2 * steps_per_epoch,
                          **params).fit(X, y)
    np.testing.assert_array_equal(spanned.loss_curve_, short.loss_curve_)


class ScriptedHooks:
    def __init__(self, answers):
        self.answers = list(answers)
        self.closed = 0

    def end_epoch(self, state, completed=True):
        self.closed += 1
        return self.answers.pop(0)


def test_a_callbacks_request_stops_and_every_epoch_is_closed(capsys):
    hooks = ScriptedHooks([False, True, True])
    rule = CallbackRequest(hooks, verbose=True)
    state = scripted_state([1.0])
    assert [rule.after_epoch(state), rule.after_epoch(state)] == [False, True]
    assert "A callback asked to stop training." in capsys.readouterr().out
    # another rule already stops the run: the epoch is closed, nothing more is said
    assert rule.after_epoch(state, stopping=True) is False
    assert hooks.closed == 3 and capsys.readouterr().out == ""


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # stops early on purpose
def test_state_copy_shares_nothing_mutable():
    est = GDRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, y)
    state = est._state
    twin = state.copy()
    generator_state = state.rng.bit_generator.state
    assert twin.rng.bit_generator.state == generator_state  # the same stream ...
    twin.theta += 1
    twin.optimizer.chain[0].u += 1
    twin.optimizer.lr_factor = 0.5
    twin.history.append(EpochRecord(0.0))
    twin.rng.random()  # ... drawn from independently
    assert state.rng.bit_generator.state == generator_state
    assert state.optimizer.lr_factor == 1.0 and len(state.loss_curve) == 2
    assert not np.array_equal(twin.theta, state.theta)
    assert not np.array_equal(twin.optimizer.chain[0].u, state.optimizer.chain[0].u)
