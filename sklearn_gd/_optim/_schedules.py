"""Learning-rate schedules: plain functions of the training progress.

Each schedule maps ``(epoch, samples_seen)`` -- counted since the optimizer
was initialised -- to the learning rate used during that epoch.

- ``constant``: ``lr = lr0``.
- ``invscaling``: ``lr = lr0 / (samples_seen + 1) ** power_t`` (``MLPClassifier``).
- ``adaptive``: ``lr0``, divided by 5 by the training loop each time the loss
  stops improving (``MLPClassifier``); the schedule itself is constant.
- ``cosine``: ``lr = lr0 (1 + cos(pi * min(epoch, T) / T)) / 2`` with
  ``T = max_iter``: a half cosine from ``lr0`` down to zero over ``max_iter``
  epochs.
"""

import math


def _constant(lr0, power_t, max_iter):
    return lambda epoch, samples_seen: lr0


def _invscaling(lr0, power_t, max_iter):
    return lambda epoch, samples_seen: _inverse_scaling(lr0, samples_seen, power_t)


def _cosine(lr0, power_t, max_iter):
    horizon = max(int(max_iter), 1)
    return lambda epoch, samples_seen: (
        0.5 * lr0 * (1 + math.cos(math.pi * min(epoch, horizon) / horizon))
    )


#: The schedules: name -> ``(lr0, power_t, max_iter) -> rate(epoch, samples_seen)``.
#: The estimators' ``learning_rate`` parameter accepts these names.
SCHEDULES = {"constant": _constant, "invscaling": _invscaling, "adaptive": _constant,
             "cosine": _cosine}


def make_schedule(name, learning_rate_init, *, power_t=0.5, max_iter=200):
    """Return ``rate(epoch, samples_seen) -> float`` for the schedule ``name``."""
    if name not in SCHEDULES:
        raise ValueError(f"Unknown learning-rate schedule {name!r}.")
    return SCHEDULES[name](float(learning_rate_init), power_t, max_iter)


def _inverse_scaling(lr0, samples_seen, power_t):
    """``lr0 / (samples_seen + 1) ** power_t``, also where the power overflows.

    A large ``power_t`` overflows the power long before the rate itself leaves
    the float range (``1e300 / 10**310`` is ``1e-10``); the rate is then taken
    in logarithms, which is exact up to rounding and underflows to 0.
    """
    try:
        return lr0 / (samples_seen + 1) ** power_t
    except OverflowError:
        return math.exp(math.log(lr0) - power_t * math.log(samples_seen + 1))
