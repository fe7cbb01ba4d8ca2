"""What a fitted model carries from one call to the next: one :class:`TrainState`.

The trainer (:mod:`sklearn_gd._train._trainer`) never changes a trained state it is
given: it trains a :meth:`TrainState.copy` and returns it (a fresh state,
which no model holds yet, it trains itself), and the estimator assigns the
returned state in one step. A call that raises therefore leaves the model as
it was, by construction.
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .._engine._array_api import copy
from .._engine._layout import Layout


@dataclass(frozen=True)
class EpochRecord:
    """One completed epoch (an iteration, for L-BFGS) in a model's history.

    Attributes
    ----------
    loss : float
        The training objective of the epoch (data loss plus L2).
    validation_loss, validation_score : float or None
        The objective and score on the held-out rows after the epoch, when
        the run validated (early stopping); None otherwise.
    """

    loss: float
    validation_loss: Optional[float] = None
    validation_score: Optional[float] = None


@dataclass(eq=False)
class OptimizerState:
    """The update rule's state and the learning rate's position in its schedule.

    Attributes
    ----------
    solver : str
        The solver whose update rule made ``chain``.
    chain : tuple of TransformState or None
        One state per transform of the solver's chain
        (:mod:`sklearn_gd._optim._optimizers`); None for L-BFGS.
    epoch, samples : int
        The schedule's position: epochs and samples trained with this state.
    lr_factor : float
        The factor on ``learning_rate_init`` that ``learning_rate="adaptive"``
        divides on each plateau.
    """

    solver: str
    chain: Optional[tuple] = None
    epoch: int = 0
    samples: int = 0
    lr_factor: float = 1.0

    def copy(self, convert=copy):
        """A state with its own arrays, made by ``convert`` (see :meth:`TrainState.copy`)."""
        chain = None if self.chain is None else tuple(s.map_arrays(convert) for s in self.chain)
        return dataclasses.replace(self, chain=chain)


@dataclass
class TrainState:
    """Parameters, optimizer, random generator, counters and histories of a model.

    Attributes
    ----------
    layout : Layout
        Where each layer's weights and biases sit in ``theta`` (never changed).
    theta : ndarray of shape (layout.size,)
        The flat parameter buffer.
    rng : numpy.random.Generator
        The one source of shuffling, validation splits, dropout masks and noise.
    optimizer : OptimizerState or None
        None before the first training call.
    n_iter, t : int
        Epochs run and samples seen since initialisation.
    history : list of EpochRecord
        One record per epoch since initialisation, as skorch's ``History``:
        :attr:`loss_curve`, :attr:`validation_loss_curve` and
        :attr:`validation_scores` are read from it.
    best_loss, best_validation_score, best_iteration, best_theta
        The best epoch of the current run, as the stopping rule tracks it.
    no_improvement_count : int
        Epochs in a row without improvement by ``tol`` in the current run.
    """

    layout: Layout
    theta: np.ndarray
    rng: np.random.Generator
    optimizer: Optional[OptimizerState] = None
    n_iter: int = 0
    t: int = 0
    history: list = field(default_factory=list)
    best_loss: float = np.inf
    best_validation_score: Optional[float] = None
    best_iteration: Optional[int] = None
    best_theta: Optional[np.ndarray] = None
    no_improvement_count: int = 0

    def copy(self, convert=copy):
        """A state that shares nothing mutable with this one (the layout is immutable).

        ``convert(array) -> array`` makes each of its arrays (weights, best
        weights, optimizer state): a copy by default; a move to another array
        library or device for :func:`sklearn_gd.move_model`.
        """
        return dataclasses.replace(
            self,
            theta=convert(self.theta),
            rng=_copy_generator(self.rng),
            optimizer=None if self.optimizer is None else self.optimizer.copy(convert),
            history=list(self.history),  # records are immutable: the list is enough
            best_theta=None if self.best_theta is None else convert(self.best_theta),
        )

    @property
    def loss_curve(self):
        """The training objective of every epoch."""
        return [record.loss for record in self.history]

    @property
    def validation_loss_curve(self):
        """The validation objective of every validated epoch."""
        return [r.validation_loss for r in self.history if r.validation_loss is not None]

    @property
    def validation_scores(self):
        """The validation score of every validated epoch."""
        return [r.validation_score for r in self.history if r.validation_score is not None]


@dataclass(frozen=True)
class Bookmark:
    """Where a :class:`TrainState`'s counters and histories stood at an epoch boundary.

    Cheap (numbers and the history's length, no arrays): the trainer takes one before
    each epoch, and an interrupted epoch puts them back (:meth:`restore`)
    along with the weights from before it, so that counters and histories
    always describe the weights the model holds.
    """

    n_iter: int
    t: int
    schedule_position: tuple
    lr_factor: float
    n_records: int
    best_loss: float
    best_validation_score: Optional[float]
    best_iteration: Optional[int]
    no_improvement_count: int

    @classmethod
    def of(cls, state):
        optimizer = state.optimizer or OptimizerState(solver=None)
        return cls(
            n_iter=state.n_iter,
            t=state.t,
            schedule_position=(optimizer.epoch, optimizer.samples),
            lr_factor=optimizer.lr_factor,
            n_records=len(state.history),
            best_loss=state.best_loss,
            best_validation_score=state.best_validation_score,
            best_iteration=state.best_iteration,
            no_improvement_count=state.no_improvement_count,
        )

    def restore(self, state):
        """Put ``state``'s counters and histories back to this bookmark (not its weights)."""
        state.n_iter, state.t = self.n_iter, self.t
        if state.optimizer is not None:
            state.optimizer.epoch, state.optimizer.samples = self.schedule_position
            state.optimizer.lr_factor = self.lr_factor
        del state.history[self.n_records:]
        state.best_loss = self.best_loss
        state.best_validation_score = self.best_validation_score
        state.best_iteration = self.best_iteration
        state.no_improvement_count = self.no_improvement_count

    def one_more_epoch_recorded(self, state, validating):
        """Whether ``state`` holds exactly one more epoch's record than the bookmark:
        its loss and, when ``validating``, its validation loss and score."""
        recorded = state.n_iter == self.n_iter + 1 and len(state.history) == self.n_records + 1
        if recorded and validating:
            recorded = state.history[-1].validation_score is not None
        return recorded


#: Seeds the bit generator of a copy, whose state is then overwritten: a
#: ready SeedSequence spares the copy drawing entropy or hashing a seed.
_PLACEHOLDER_SEED = np.random.SeedSequence(0)


def _copy_generator(rng):
    """A generator in ``rng``'s state (several times cheaper than ``copy.deepcopy``)."""
    bit_generator = type(rng.bit_generator)(_PLACEHOLDER_SEED)
    bit_generator.state = rng.bit_generator.state
    return np.random.Generator(bit_generator)


def init_state(layout, activation, dtype, seed, output_bias, name="the network"):
    """A fresh state: Glorot-uniform weights and hidden biases, the output bias given.

    Each hidden layer's weights, then its biases, are drawn uniformly in
    Glorot's bound ``sqrt(6 / (fan_in + fan_out))``, with ``sqrt(2 / ...)``
    for the logistic activation (whose slope at 0 is 1/4), as
    ``MLPClassifier`` does. Random biases spread the units' kinks (or
    saturations) over the inputs: with zero biases, every logistic unit
    starts in the same near-linear regime, and L-BFGS, from there, often
    stops at the linear model's solution. He's larger bound for rectifiers
    trained slower per epoch on the benchmark problems (shallow tabular
    networks), so rectifiers keep Glorot's. The output layer's weights are
    drawn likewise; its bias is ``output_bias`` (class priors or the target
    mean: the best constant model).

    Parameters
    ----------
    layout : Layout
        The network's layer sizes (inputs, hidden layers, outputs) and input
        block, whose parameters are initialised by the block after the weights
        are drawn.
    activation : str
        The hidden activation.
    dtype : dtype
        float32 or float64.
    seed : int
        Seed of the state's generator, which draws the weights first.
    output_bias : array-like of shape (layout.layer_sizes[-1],)
        The output layer's initial bias.
    name : str
        What the network is called in the error when it cannot be allocated.
    """
    rng = np.random.default_rng(seed)
    try:
        theta = np.zeros(layout.size, dtype=dtype)
    except (MemoryError, ValueError):  # ValueError: beyond what NumPy can index
        raise MemoryError(
            f"{name} makes a network of {layout.size:,} parameters "
            f"({layout.size * np.dtype(dtype).itemsize / 2**30:,.1f} GiB as "
            f"{np.dtype(dtype).name}), more memory than can be allocated."
        ) from None
    n_layers = layout.n_layers
    for layer, (W, b) in enumerate(zip(layout.weights(theta), layout.biases(theta))):
        fan_in, fan_out = W.shape
        hidden = layer < n_layers - 1
        if hidden and activation == "logistic":
            bound = np.sqrt(2.0 / (fan_in + fan_out))
        else:
            bound = np.sqrt(6.0 / (fan_in + fan_out))
        W[...] = rng.uniform(-bound, bound, size=W.shape)
        if hidden:
            b[...] = rng.uniform(-bound, bound, size=b.shape)
        else:
            b[...] = output_bias
    if layout.input_block is not None:
        layout.input_block.initialize(layout.input_params(theta), rng)
    return TrainState(layout=layout, theta=theta, rng=rng)
