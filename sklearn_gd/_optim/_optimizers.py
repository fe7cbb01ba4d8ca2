"""Composable gradient transforms on flat arrays (``init`` / ``update`` pairs).

A transform turns the gradient ``g`` into an update ``u`` in place, keeping its
own state; a named optimizer is a :class:`Chain` of transforms whose final
output is added to the parameters: ``theta <- theta + u``. Every update rule is
a handful of vectorized operations over the whole parameter buffer.

Named optimizers (``lr`` is the learning rate of the current epoch):

- ``sgd`` (``MLPClassifier``'s form):
  ``v <- mu v - lr g``; ``u = v``, or ``u = mu v - lr g`` with Nesterov.
- ``adam``: ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``;
  ``u = -lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.
- ``adamw``: Adam with decoupled weight decay on the weights only:
  ``u = -lr (adam(g) + wd * theta * [theta is a weight])``.
- ``rmsprop``: ``s <- rho s + (1 - rho) g^2``; ``u = -lr g / (sqrt(s) + eps)``.
- ``adagrad``: ``s <- s + g^2``; ``u = -lr g / (sqrt(s) + eps)``.
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .._engine._array_api import zeros_like
from .._engine._backend import NUMPY


@dataclass(eq=False)
class TransformState:
    """What a transform keeps between steps: arrays shaped like the parameters
    (in their library, on their device) and numbers. Each transform has its own
    subclass, so a saved model's optimizer state says what each value is."""

    def map_arrays(self, convert):
        """A state of the same type whose arrays are ``convert(array)``; numbers
        and None are kept (a copy, or a move to another library or device)."""
        return dataclasses.replace(self, **{
            field.name: convert(value) for field in dataclasses.fields(self)
            if not isinstance(value := getattr(self, field.name), (int, float, type(None)))
        })


@dataclass(eq=False)
class NoState(TransformState):
    """The state of a transform that keeps nothing."""


@dataclass(eq=False)
class TraceState(TransformState):
    """Momentum's velocity ``v``."""

    velocity: Any


@dataclass(eq=False)
class AdamState(TransformState):
    """Adam's moments over their weights, ``u = m / (1 - b1)`` and
    ``w = v / (1 - b2)``, and ``step``, the steps taken (``t``)."""

    u: Any
    w: Any
    step: int = 0


@dataclass(eq=False)
class RootState(TransformState):
    """The running sum of squared gradients ``s`` of RMSprop or Adagrad, and a
    buffer for ``g^2`` and ``sqrt(s)`` (None off NumPy, which allocates)."""

    s: Any
    scratch: Any


@dataclass(eq=False)
class DecayState(TransformState):
    """Decoupled weight decay's buffer for ``wd * theta`` (None off NumPy), and its
    weight mask in the parameters' library and on their device when that is
    not NumPy's (made at the first step; None on NumPy, where the
    transform's own mask serves)."""

    scratch: Any
    mask: Any = None


def _decay_towards(average, value, decay):
    """``average <- decay * average + (1 - decay) * value``, in place, no temporary."""
    average -= value
    average *= decay
    average += value
    return average


def _divide_by_root(ops, g, s, epsilon, scratch):
    """``g <- g / (sqrt(s) + epsilon)``, in place (the root into ``scratch`` on NumPy)."""
    root = ops.sqrt(s, out=scratch)
    root += epsilon
    g /= root
    return g


class Transform:
    """A gradient transform: ``init(theta)`` makes its state, ``update(g, state, theta,
    lr)`` turns ``g`` into an update in place; :meth:`step` applies it.

    :class:`Chain` is one too, of its transforms one after the other.
    """

    def step(self, theta, g, state, lr, l2=None):
        """``theta <- theta + update(g + c W)``, the whole step of an update rule of
        this transform; ``g`` is overwritten.

        ``l2`` is the objective's L2 term (an
        :class:`~sklearn_gd._engine._network.L2Penalty`, or None): its gradient
        ``c W`` is added to ``g`` before the update. Returns its penalty at
        ``theta`` before the step (``0.0`` without). A transform with a kernel
        for its whole step overrides this (:meth:`ScaleByAdam.step`), with
        :meth:`reference_step`'s floats.
        """
        return self.reference_step(theta, g, state, lr, l2)

    def reference_step(self, theta, g, state, lr, l2=None):
        """:meth:`step` by the L2 term's own pass, then :meth:`update`."""
        penalty = 0.0 if l2 is None else l2.add_gradient(g, theta)
        theta += self.update(g, state, theta, lr)
        return penalty


class ScaleByLearningRate(Transform):
    """``u = -lr * g``."""

    def init(self, theta):
        return NoState()

    def update(self, g, state, theta, lr):
        g *= -lr
        return g


class Trace(Transform):
    """Momentum on updates: ``v <- mu v + u``; ``u = v`` (or ``mu v + u``, Nesterov).

    Placed after :class:`ScaleByLearningRate`, this is ``MLPClassifier``'s
    ``v <- mu v - lr g``.
    """

    def __init__(self, momentum, nesterov):
        self.momentum = momentum
        self.nesterov = nesterov

    def init(self, theta):
        return TraceState(velocity=zeros_like(theta))

    def update(self, u, state, theta, lr):
        v = state.velocity
        v *= self.momentum
        v += u
        if self.nesterov:
            u *= 1.0 / self.momentum  # u + mu v = mu (u / mu + v), without a temporary
            u += v
            u *= self.momentum
        else:
            u[...] = v
        return u


class ScaleByAdam(Transform):
    """Adam direction ``mhat / (sqrt(vhat) + eps)`` with bias-corrected moments.

    The state holds the moments divided by their weights, ``u = m / (1 - b1)``
    and ``w = v / (1 - b2)``, so each update is ``u <- b1 u + g`` and
    ``w <- b2 w + g^2`` (two passes each instead of three); with
    ``a = (1 - b1) / (1 - b1^t)`` and ``c = sqrt((1 - b2) / (1 - b2^t))``,
    ``mhat / (sqrt(vhat) + eps) = (a / c) u / (sqrt(w) + eps / c)``: the same
    value. With ``scale_by_learning_rate`` the step ``-lr`` is folded into that
    last scaling, and :meth:`step` applies the whole update to ``theta`` as one
    fused kernel (:func:`sklearn_gd._engine._kernels.adam`: one pass over memory when
    compiled).
    """

    def __init__(self, beta_1, beta_2, epsilon, scale_by_learning_rate=False, ops=NUMPY):
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.scale_by_learning_rate = scale_by_learning_rate
        self.ops = ops

    def init(self, theta):
        return AdamState(u=zeros_like(theta), w=zeros_like(theta))

    def _step_constants(self, state, step_size):
        """Advance the step count; return ``(eps / c, step_size * a / c)``.

        Python floats, so that float32 arrays stay float32 in NumPy's passes.
        """
        state.step += 1
        t = state.step
        a = (1 - self.beta_1) / (1 - self.beta_1**t)
        c = math.sqrt((1 - self.beta_2) / (1 - self.beta_2**t))
        return float(self.epsilon / c), float(step_size * a / c)

    def update(self, g, state, theta, lr):
        eps, scale = self._step_constants(state, -lr if self.scale_by_learning_rate else 1.0)
        return self.ops.adam_direction(
            g, state.u, state.w, self.beta_1, self.beta_2, eps, scale
        )

    def step(self, theta, g, state, lr, l2=None):
        """``theta <- theta + update(g + c W)`` by the kernel table's Adam step
        (``ops.adam``: one pass over memory when compiled, the L2 term ``l2``
        added in the same pass where the term allows, ``l2.fusable``);
        :meth:`Transform.reference_step`'s floats. Returns the L2 penalty.

        Without ``scale_by_learning_rate`` the update is a direction, not the
        step: the reference step.
        """
        if not self.scale_by_learning_rate:
            return self.reference_step(theta, g, state, lr, l2)
        eps, scale = self._step_constants(state, -lr)
        penalty = 0.0
        if l2 is not None and not l2.fusable:  # its own passes first, then the plain step
            penalty, l2 = l2.add_gradient(g, theta), None
        l2_args = () if l2 is None else (l2.c, l2.weight_bounds, l2.scratch)
        return penalty + self.ops.adam(
            theta, g, state.u, state.w, self.beta_1, self.beta_2, eps, scale, *l2_args
        )


class _ScaleByRoot(Transform):
    """``g / (sqrt(s) + eps)`` for a running sum of squares ``s`` that
    :meth:`_accumulate` updates with ``g^2``."""

    def __init__(self, epsilon, ops=NUMPY):
        self.epsilon = epsilon
        self.ops = ops

    def init(self, theta):
        return RootState(s=zeros_like(theta), scratch=self.ops.buffer(theta.shape, theta.dtype))

    def update(self, g, state, theta, lr):
        s, scratch = state.s, state.scratch
        self._accumulate(s, self.ops.multiply(g, g, out=scratch))
        return _divide_by_root(self.ops, g, s, self.epsilon, scratch)


class ScaleByRms(_ScaleByRoot):
    """RMSprop direction ``g / (sqrt(s) + eps)``, ``s <- rho s + (1 - rho) g^2``."""

    def __init__(self, rho, epsilon, ops=NUMPY):
        super().__init__(epsilon, ops)
        self.rho = rho

    def _accumulate(self, s, squared):
        _decay_towards(s, squared, self.rho)


class ScaleByAdagrad(_ScaleByRoot):
    """Adagrad direction ``g / (sqrt(s) + eps)``, ``s <- s + g^2``."""

    @staticmethod
    def _accumulate(s, squared):
        s += squared


class AddDecayedWeights(Transform):
    """``u <- u + wd * theta`` on the weights only (``mask`` is False on biases)."""

    def __init__(self, weight_decay, mask, ops=NUMPY):
        self.weight_decay = weight_decay
        self.mask = mask
        self.ops = ops

    def init(self, theta):
        return DecayState(scratch=self.ops.buffer(theta.shape, theta.dtype))

    def _mask_for(self, state, theta):
        """The mask in ``theta``'s library and on its device: off NumPy a copy, kept
        with the state it serves (which move_model moves with theta), made at the
        first step."""
        mask = state.mask
        if mask is None:
            mask = self.ops.like(self.mask, theta)
            if mask is not self.mask:
                state.mask = mask
        return mask

    def update(self, u, state, theta, lr):
        scratch = self.ops.multiply(theta, self._mask_for(state, theta), out=state.scratch)
        scratch *= self.weight_decay
        u += scratch
        return u


class Chain(Transform):
    """Apply transforms one after the other; their states are kept in a tuple.

    A chain of one transform steps as that transform does (Adam's kernel for
    ``adam``); a longer one by :meth:`Transform.reference_step`.
    """

    def __init__(self, *transforms):
        self.transforms = transforms

    def init(self, theta):
        return tuple(t.init(theta) for t in self.transforms)

    def update(self, g, state, theta, lr):
        for transform, transform_state in zip(self.transforms, state):
            g = transform.update(g, transform_state, theta, lr)
        return g

    def step(self, theta, g, state, lr, l2=None):
        if len(self.transforms) == 1:
            return self.transforms[0].step(theta, g, state[0], lr, l2)
        return self.reference_step(theta, g, state, lr, l2)


def _sgd(h):
    return Chain(ScaleByLearningRate(), Trace(h["momentum"],
                                              h["nesterovs_momentum"] and h["momentum"] > 0))


def _adam(h):
    return Chain(ScaleByAdam(h["beta_1"], h["beta_2"], h["epsilon"],
                             scale_by_learning_rate=True, ops=h["ops"]))


def _adamw(h):
    decay = AddDecayedWeights(h["weight_decay"], h["weight_mask"], ops=h["ops"])
    return Chain(ScaleByAdam(h["beta_1"], h["beta_2"], h["epsilon"], ops=h["ops"]), decay,
                 ScaleByLearningRate())


def _rmsprop(h):
    return Chain(ScaleByRms(h["rho"], h["epsilon"], ops=h["ops"]), ScaleByLearningRate())


def _adagrad(h):
    return Chain(ScaleByAdagrad(h["epsilon"], ops=h["ops"]), ScaleByLearningRate())


#: The mini-batch solvers: name -> builder of its :class:`Chain` from the
#: hyperparameters of :func:`make_optimizer`. The estimators' ``solver``
#: parameter accepts these names and ``"lbfgs"``.
SOLVERS = {"sgd": _sgd, "adam": _adam, "adamw": _adamw, "rmsprop": _rmsprop,
           "adagrad": _adagrad}


def make_optimizer(
    solver,
    *,
    momentum=0.9,
    nesterovs_momentum=True,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-8,
    rho=0.9,
    weight_decay=0.01,
    weight_mask=None,
    ops=NUMPY,
):
    """Build the :class:`Chain` for a mini-batch ``solver`` name (a key of :data:`SOLVERS`),
    stepping arrays of the backend ``ops``'s library (:mod:`sklearn_gd._engine._backend`)."""
    if solver not in SOLVERS:
        raise ValueError(f"Unknown mini-batch solver {solver!r}.")
    return SOLVERS[solver](dict(
        momentum=momentum, nesterovs_momentum=nesterovs_momentum, beta_1=beta_1, beta_2=beta_2,
        epsilon=epsilon, rho=rho, weight_decay=weight_decay, weight_mask=weight_mask, ops=ops))
