"""BaseGD: parameters, validation, and the fit / partial_fit / warm_start plumbing.

The estimator is a shell around the trainer: it validates, builds a frozen
:class:`~sklearn_gd._train._trainer.TrainConfig` from its parameters, calls
:func:`~sklearn_gd._train._trainer.train` on its :class:`~sklearn_gd._train._state.TrainState`
(or a fresh one), and assigns the result in one step.
"""

import contextlib
import copy
import dataclasses
import functools
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn import config_context, get_config
from sklearn.base import BaseEstimator, is_classifier
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y, validate_data

from ._array_api_estimator import ArrayAPIMixin
from ._callbacks import EpochHooks
from ._compat import (
    ARRAY_API_TRAINING,
    CallbackSupportMixin,
    Interval,
    Options,
    StrOptions,
    _check_sample_weight,
    _fit_context,
    callback_teardown,
)
from ._dask_estimator import chunked_train_data, is_dask_collection
from ._data._batches import dropout_rates, resolve_batch_size
from ._data._in_memory import TrainData, check_validation_size
from ._engine._activations import ACTIVATIONS
from ._engine._array_api import (
    all_finite,
    astype,
    device_of,
    namespace,
    numpy_dtype,
    to_device,
)
from ._engine._backend import backend_for, backend_in, on_numpy
from ._engine._categories import CategoryBlock
from ._engine._input_block import InputBlock
from ._engine._layout import Layout
from ._engine._losses import get_loss
from ._engine._network import Network
from ._engine._table_block import TableBlock
from ._engine._values import cast_finite
from ._memory import check_training_memory, training_memory
from ._optim._optimizers import SOLVERS
from ._optim._schedules import SCHEDULES
from ._table import columns_named_in_errors
from ._table_input import TableInput, missing_values_not_learned, needs_table
from ._train._state import init_state
from ._train._trainer import TrainConfig, optimizer_for, train


def reads_one_model(method):
    """Run a prediction ``method`` on the model as it is when the call starts.

    The method runs on a view sharing the estimator's attribute dictionary,
    read once: a refit in another thread replaces that dictionary in one
    assignment (see ``BaseGD._fit``) and never changes the one the view
    holds, so the method reads all its attributes from one fitted model.
    """

    @functools.wraps(method)
    def on_one_model(self, *args, **kwargs):
        view = object.__new__(type(self))
        view.__dict__ = self.__dict__
        return method(view, *args, **kwargs)

    return on_one_model


def _is_minibatch(estimator):
    """``available_if`` condition of ``partial_fit``."""
    if estimator.solver == "lbfgs":
        raise AttributeError(
            "partial_fit is only available for mini-batch solvers, not solver='lbfgs'."
        )
    return True


def _is_plain_target(y, n_samples):
    """True when ``validate_data`` would return ``y`` unchanged and raise nothing.

    A 1-D or 2-D numeric ndarray (not a subclass) with ``n_samples`` rows,
    non-empty and finite (its sum is: overflow only sends it the long way).
    """
    return (
        type(y) is np.ndarray
        and y.dtype.kind in "biuf"
        and y.ndim in (1, 2)
        and y.shape[0] == n_samples
        and y.size > 0
        and (y.dtype.kind != "f" or _sum_is_finite(y))
    )


def _is_bool(value):
    """True for Python's and NumPy's booleans (``True`` is an ``Integral``:
    as a layer size it is a mistake, not one unit)."""
    return isinstance(value, (bool, np.bool_))


def _check_weight_total(sw, what):
    """``sw`` (non-negative) when its total is positive and finite; else a ValueError."""
    with np.errstate(over="ignore"):
        total = sw.sum()
    if not total > 0:  # scikit-learn < 1.7 does not check this itself
        raise ValueError(f"{what} sums to zero: at least one sample needs a positive weight.")
    if not np.isfinite(total):
        raise ValueError(
            f"{what} sums to more than the largest {sw.dtype} (max weight "
            f"{float(sw.max()):.3g}); rescale them: the data term depends only on "
            "their ratios, and the L2 penalty is alpha divided by their total."
        )
    return sw


def _numpy_namespace():
    """A context in which scikit-learn's validation converts to NumPy.

    The networks compute in NumPy. Under ``array_api_dispatch=True``
    scikit-learn's ``check_array`` keeps an array in its own namespace (a
    PyTorch tensor stays a tensor) and fails on the NumPy dtypes it is
    asked for; with dispatch off it converts CPU arrays with ``np.asarray``,
    so that an array-API pipeline step (``StandardScaler``) can feed these
    estimators. A GPU array still fails, with its library's own message.
    """
    if get_config()["array_api_dispatch"]:
        return config_context(array_api_dispatch=False)
    return contextlib.nullcontext()


def _validate_data_quietly(*args, **kwargs):
    """scikit-learn's ``validate_data`` without NumPy's floating-point warnings, its
    errors about a data frame's values naming the columns behind them.

    Its finiteness check first sums X: finite values of both signs near the
    largest float give ``inf - inf`` there, and NumPy warns of an invalid
    value that is not in the data (the check then goes element by element
    and raises only for a real NaN or infinity).
    """
    X = args[1] if len(args) > 1 else kwargs.get("X")
    with np.errstate(over="ignore", invalid="ignore"), _numpy_namespace(), \
            columns_named_in_errors(X, args[0]):
        try:
            return validate_data(*args, **kwargs)
        except ValueError as error:
            if kwargs.get("reset", True) or not str(error).startswith("Input X contains NaN"):
                raise
            # scikit-learn's words would say the estimator never takes NaN
            raise ValueError(missing_values_not_learned(type(args[0]).__name__)) from None


def _sum_is_finite(a):
    """``isfinite(a.sum())``: True when every entry is finite (NaN and inf
    reach the sum), at the cost of one sum. Finite values whose sum overflows
    also answer False (callers then take the full check), without NumPy's
    overflow warning."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(a.sum()))


class BaseGD(ArrayAPIMixin, CallbackSupportMixin, BaseEstimator):
    """Common machinery of :class:`GDRegressor` and :class:`MLPBackpropClassifier`.

    Subclasses define how targets are learned and encoded (``_encode_targets``),
    the fitted targets' object handed down to the trainer and the data sources
    (``_targets``: encoding, initial output bias, scores in encoded space, see
    :mod:`sklearn_gd._targets`) and the loss (``_loss_name``).
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"lbfgs", *SOLVERS})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
            None,
        ],
        "learning_rate": [StrOptions(set(SCHEDULES))],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dropout": ["array-like", Interval(Real, 0, 1, closed="left")],
        "input_noise": [Interval(Real, 0, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "rho": [Interval(Real, 0, 1, closed="left")],
        "scoring": [StrOptions({"loss"} | set(get_scorer_names())), callable, None],
        "embedding": [StrOptions({"periodic"}), None],
        "embedding_frequencies": [Interval(Integral, 1, None, closed="left")],
        "embedding_size": [Interval(Integral, 1, None, closed="left")],
        "embedding_sigma": [Interval(Real, 0, None, closed="neither")],
        "input_scale": ["boolean"],
        "input_scale_rate": [Interval(Real, 0, None, closed="neither")],
        "categorical_features": ["array-like", StrOptions({"from_dtype"}), None],
        "category_one_hot_max": [Interval(Integral, 1, None, closed="left")],
        "category_embedding_size": [Interval(Integral, 1, None, closed="left")],
        "anneal_epochs": [Interval(Integral, 0, None, closed="left")],
        "n_steps_no_change": [Interval(Integral, 0, None, closed="left")],
    }

    # ------------------------------------------------------------------ fitted views
    @property
    def coefs_(self):
        """List of per-layer weight matrices ``(fan_in, fan_out)``: views of the buffer."""
        check_is_fitted(self)
        return self._layout.weights(self._theta)

    @property
    def intercepts_(self):
        """List of per-layer bias vectors: views of the parameter buffer."""
        check_is_fitted(self)
        return self._layout.biases(self._theta)

    @property
    def loss_(self):
        """Training objective of the last completed epoch (``MLPClassifier.loss_``)."""
        check_is_fitted(self)
        return self.loss_curve_[-1] if self.loss_curve_ else None

    @property
    def _theta(self):
        """The flat parameter buffer of the fitted state."""
        return self._state.theta

    @property
    def _layout(self):
        return self._state.layout

    @property
    def _opt_state(self):
        """The optimizer's state: ``solver``, ``chain``, ``epoch``, ``samples``, ``lr_factor``."""
        return self._state.optimizer

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_state")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # the input block (embedding, input scale) works on dense rows only
        tags.input_tags.sparse = self.embedding is None and not self.input_scale
        tags.input_tags.allow_nan = True  # a missing value makes X a table (see _table_input)
        tags.array_api_support = ARRAY_API_TRAINING
        return tags

    # ------------------------------------------------------------------ public API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None):
        """Train the network on ``(X, y)`` for at most ``max_iter`` epochs.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets; for the classifier, labels or a multilabel indicator
            matrix, which may be sparse.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights ``s_i`` of the objective; ``None`` means ones.
        X_val : {array-like, sparse matrix} of shape (n_val, n_features), default=None
            The validation set of early stopping (``early_stopping=True``
            only), as ``HistGradientBoostingClassifier.fit`` takes it: each
            epoch is scored on it and no rows of ``X`` are held out. In a
            ``Pipeline``, route it with metadata routing
            (``set_fit_request(X_val=True, y_val=True)``) and have the
            pipeline transform it (``Pipeline(..., transform_input=["X_val"])``).
        y_val : array-like of shape (n_val,) or (n_val, n_outputs), default=None
            Targets of ``X_val``; required with it.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of the validation samples.

        Returns
        -------
        self : object
        """
        validation = (X_val, y_val, sample_weight_val)
        return self._fit(X, y, sample_weight, incremental=False, validation=validation)

    def _partial_fit(self, X, y, sample_weight=None, classes=None):
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    # ------------------------------------------------------------------ plumbing
    def _fit(self, X, y, sample_weight, incremental, classes=None, validation=(None,) * 3):
        """Run one ``fit`` or ``partial_fit`` call; one that raises leaves the model as it was.

        The call works on a shallow copy of the estimator (validation and
        target encoding set attributes; the trainer returns a new state and
        changes none it is given), tears the call's callbacks down, and only
        then gives the estimator the copy's attributes, in one assignment: a
        ``predict`` running meanwhile in another thread sees the old model or
        the new one, never a mixture, and a callback whose teardown raises
        leaves the model as it was. Training stopped on purpose is kept by
        ``fit``: an interrupted one keeps its last completed epoch (then
        re-raises ``KeyboardInterrupt``; one that completed no epoch keeps
        nothing), a diverged one its last finite weights; a ``partial_fit``
        call that is interrupted or diverges is not kept.
        """
        staged, result = copy.copy(self), None
        try:
            with callback_teardown(staged):
                result = staged._fit_staged(X, y, sample_weight, incremental, classes,
                                            validation)
        except KeyboardInterrupt:
            if result is None:
                raise
            result = dataclasses.replace(result, interrupted=True)  # during the teardown
        undone = result.interrupted and not result.completed_epochs
        if not (undone or incremental and (result.diverged or result.interrupted)):
            self.__dict__ = vars(staged)  # one assignment: the whole fitted model
        if result.interrupted:
            raise KeyboardInterrupt
        return self

    def _fit_staged(self, X, y, sample_weight, incremental, classes, validation):
        """Validate, initialise when needed, train; return the :class:`TrainResult`."""
        self._validate_hyperparameters()
        self._check_validation_request(*validation)
        stops_early = self._stops_early(incremental)  # decided here, once per call
        continuing = self.__sklearn_is_fitted__() and (incremental or self.warm_start)
        on_dask = is_dask_collection(X) or is_dask_collection(y)
        if not continuing:
            self._table_input = None  # a table's: learned with the data, below
        where = None if on_dask else self._where(X)
        if continuing and not on_dask:
            where = self._continuing_where(X, "partial_fit" if incremental else "fit", where)
        if on_dask:
            data = chunked_train_data(
                self, X, y, sample_weight, incremental, continuing, classes, validation,
                stops_early=stops_early,
            )
        elif where is not None:
            data = self._portable_train_data(X, y, sample_weight, incremental, continuing,
                                             classes, validation, where)
        else:
            data = self._train_data(X, y, sample_weight, incremental, continuing, classes,
                                    validation, stops_early=stops_early)
        n_features, n_outputs, dtype = data.shape_info()
        if continuing:
            self._check_continuation(n_outputs)
        layout = self._layout if continuing else self._new_layout(n_features, n_outputs)
        max_epochs = 1 if incremental else self.max_iter
        config = self._train_config(layout, incremental, max_epochs, early_stopping=stops_early,
                                    where=where, dtype=numpy_dtype(dtype))
        if continuing:
            state = self._state
        else:
            state = self._move_state(
                self._initial_state(layout, numpy_dtype(dtype), self._initial_output_bias(data)),
                where,
            )
        hooks = EpochHooks(self, X, y, sample_weight, max_epochs)
        result = train(config, state, data, hooks)
        self._set_state(result.state)
        if not result.interrupted:
            try:
                hooks.close()
            except KeyboardInterrupt:  # the training is done: keep it, as an interrupt does
                result = dataclasses.replace(result, interrupted=True)
        return result

    def _train_data(self, X, y, sample_weight, incremental, continuing, classes, validation,
                    stops_early):
        """In-memory data, validated and encoded, as :class:`TrainData`; ``stops_early``:
        whether this call validates after each epoch (:meth:`_stops_early`)."""
        if not continuing:
            self._table_input = (TableInput.learn(X, self.categorical_features)
                                 if needs_table(X, self.categorical_features) else None)
        X, y = self._validate_X_y(X, y, reset=not continuing)
        Y = self._encode_targets(y, X.dtype, fitting=not continuing, classes=classes)
        sw = self._effective_sample_weight(
            y, self._validate_sample_weight(sample_weight, X), incremental
        )
        if not (incremental and continuing):  # a further partial_fit: the network exists
            self._check_memory(X, Y, holds_out=stops_early and validation[0] is None)
        return TrainData(X, Y, sw, y=y, stratify=self._targets().stratify(y),
                         validation=self._validation_data(*validation, dtype=X.dtype))

    def _check_memory(self, X, Y, holds_out):
        """Refuse, with the estimate, a call that would need more memory than there is."""
        _, sizes = self._layer_sizes(X.shape[1], Y.shape[1])
        n_samples = X.shape[0]
        minibatch = self.solver != "lbfgs"
        parts = training_memory(
            sizes, X.dtype.itemsize, self.solver,
            resolve_batch_size(self.batch_size, n_samples) if minibatch else n_samples,
            n_samples, X.shape[1],
            holds_out=holds_out,
            dropout=self._any_dropout(),
        )
        n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        check_training_memory(parts, n_params, f"hidden_layer_sizes={self.hidden_layer_sizes!r}")

    def _check_validation_request(self, X_val, y_val, sample_weight_val):
        """A validation set must come whole, and only where early stopping uses it."""
        if X_val is None and y_val is None and sample_weight_val is None:
            return
        if X_val is None or y_val is None:
            raise ValueError("X_val and y_val go together: give both, or neither.")
        if not self.early_stopping:
            raise ValueError(
                "X_val and y_val are the validation set of early stopping, which is off: set "
                "early_stopping=True to use them (fit would otherwise ignore them)."
            )
        if self.solver == "lbfgs":
            raise ValueError(
                "solver='lbfgs' does not stop early, so X_val and y_val would be ignored: "
                "use a mini-batch solver with early_stopping=True, or leave them out."
            )

    def _validation_data(self, X_val, y_val, sample_weight_val, dtype):
        """The user's validation set, validated and encoded as the training data; or None."""
        if X_val is None:
            return None
        if self._table() is not None:
            X_val, y_val = self._checked_y(self._table_matrix(X_val, reset=False), y_val)
        else:
            X_val, y_val = _validate_data_quietly(
                self, X_val, y_val, reset=False, accept_sparse=["csr", "csc"],
                dtype=[np.float64, np.float32], multi_output=True, y_numeric=self._y_numeric,
            )
        check_validation_size(X_val.shape[0])
        X_val = cast_finite(X_val.tocsr() if sp.issparse(X_val) else X_val, dtype, "X_val")
        Y_val = self._encode_targets(y_val, dtype, fitting=False)
        sw_val = self._effective_sample_weight(
            y_val, self._validate_sample_weight(sample_weight_val, X_val), incremental=False
        )
        return TrainData(X_val, Y_val, sw_val, y=y_val)

    def _train_config(self, layout, incremental, max_epochs, early_stopping, where=None,
                      dtype=np.float64):
        """The frozen :class:`TrainConfig` of this call, from the parameters, built
        before the state it trains: its network computes in the library and on
        the device ``where`` (NumPy when None), its update rule is built for
        ``dtype``; ``early_stopping`` says whether the call validates after each
        epoch (:meth:`_stops_early`, decided once per call)."""
        loss = get_loss(self._loss_name(), **self._loss_kwargs())
        config = TrainConfig(
            network=Network(layout, self.activation, loss, backend_in(where)),
            score=self._validation_scorer(),
            monitor=self._monitored_name(),
            max_epochs=max_epochs,
            incremental=incremental,
            early_stopping=early_stopping,
            dropout=tuple(dropout_rates(self.dropout, len(self._hidden_sizes()))),
            **{name: getattr(self, name) for name in (
                "solver", "alpha", "batch_size", "shuffle", "learning_rate",
                "learning_rate_init", "power_t", "max_iter", "tol", "n_iter_no_change",
                "validation_fraction", "input_noise", "momentum", "nesterovs_momentum",
                "beta_1", "beta_2", "epsilon", "rho", "weight_decay", "max_fun", "verbose",
                "anneal_epochs", "n_steps_no_change",
            )},
        )
        if self.solver == "lbfgs":
            return config
        return dataclasses.replace(config, optimizer=optimizer_for(config, layout, dtype))

    def _monitored_name(self):
        """What early stopping monitors, by name: ``"loss"``, the estimator's own score
        (``"accuracy"``, ``"r2"``), a scorer's name, or ``"score"`` for a callable."""
        if self.scoring is None:
            return "accuracy" if is_classifier(self) else "r2"
        return self.scoring if isinstance(self.scoring, str) else "score"

    def _validation_scorer(self):
        """``score(state, validation, P, loss)``: the early-stopping score of an epoch.

        ``scoring=None``: accuracy (classifier) or R² (regressor) of the
        predictions ``P``; ``"loss"``: minus the validation objective
        ``loss``; a scorer name or callable: the scorer on a copy of the
        estimator holding the epoch's state.
        """
        if self.scoring is None:
            targets = self._targets()
            return lambda state, validation, P, loss: targets.score(
                P, astype(validation.Y, P.dtype), validation.sample_weight)
        if self.scoring == "loss":
            return lambda state, validation, P, loss: -loss
        scorer = check_scoring(self, scoring=self.scoring)

        def score(state, validation, P, loss):
            model = copy.copy(self)
            model._set_state(dataclasses.replace(state))
            if model._table() is not None:  # the validation rows are the table's matrix
                model._reads_matrices(validation.X.shape[1])
            y, weights = model._follow_X(validation.X, validation.y, validation.sample_weight)
            kwargs = {} if weights is None else {"sample_weight": weights}
            return scorer(model, validation.X, y, **kwargs)

        return score

    def _set_state(self, state):
        """Hold ``state``; the fitted attributes name its counters and histories."""
        self._state = state
        self.n_iter_ = state.n_iter
        self.t_ = state.t
        self.loss_curve_ = state.loss_curve
        self.validation_scores_ = state.validation_scores
        self.validation_loss_curve_ = state.validation_loss_curve
        self.best_loss_ = state.best_loss
        self.best_validation_score_ = state.best_validation_score
        self.best_iteration_ = state.best_iteration

    def _effective_sample_weight(self, y, sw, incremental):
        """Sample weights used in the objective (the classifier folds in class weights)."""
        return sw

    def _initial_output_bias(self, data):
        """The output layer's starting bias: from the weighted mean of ``data``'s
        encoded targets (class priors, the target mean)."""
        targets = self._targets()
        return targets.output_bias(data.target_mean(targets))

    def _validate_hyperparameters(self):
        sizes = self._hidden_sizes()
        if any(_is_bool(s) or not isinstance(s, (Integral, np.integer)) or s < 1
               for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must contain positive integers, got {self.hidden_layer_sizes!r}."
            )
        if np.ndim(self.dropout) == 1:
            try:
                rates = np.asarray(self.dropout, dtype=float)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"dropout must contain numbers, got {self.dropout!r}.") from exc
            if len(rates) != len(sizes):
                raise ValueError(
                    f"dropout has {len(rates)} values but there are {len(sizes)} hidden "
                    "layers; give one rate per hidden layer or a single float."
                )
            if not np.all((rates >= 0) & (rates < 1)):  # NaN fails too
                raise ValueError(f"dropout rates must be in [0, 1), got {self.dropout!r}.")
        elif np.ndim(self.dropout) != 0:
            raise ValueError(f"dropout must be a float or a 1-D sequence, got {self.dropout!r}.")
        if self.anneal_epochs and self.learning_rate == "adaptive":
            raise ValueError(
                "anneal_epochs and learning_rate='adaptive' both say what a plateau does "
                "(anneal to zero and stop, or divide the rate by 5 and go on): choose one."
            )
        if self.solver == "lbfgs" and (self._any_dropout() or self.input_noise > 0):
            raise ValueError(
                "solver='lbfgs' needs a deterministic objective: set dropout=0 and "
                "input_noise=0, or use a mini-batch solver."
            )

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if np.ndim(sizes) == 0:
            sizes = [sizes]
        if isinstance(sizes, str) or np.ndim(sizes) != 1:
            raise ValueError(
                f"hidden_layer_sizes must be an int or a sequence of ints, got {sizes!r}."
            )
        return list(sizes)

    def _stops_early(self, incremental):
        """Whether this training call validates after each epoch to stop early: only a
        mini-batch ``fit`` does (L-BFGS and ``partial_fit`` train on every row)."""
        return self.early_stopping and self.solver != "lbfgs" and not incremental

    def _any_dropout(self):
        return any(p > 0 for p in dropout_rates(self.dropout, len(self._hidden_sizes())))

    def _validate_X_y(self, X, y, reset):
        if self._table() is not None:
            X, y = self._checked_y(self._table_matrix(X, reset), y)
            return self._as_model_input(X), y
        if not reset and self._is_plain_input(X) and _is_plain_target(y, X.shape[0]):
            # what validate_data would return, without its cost (most of a small partial_fit)
            return self._as_model_input(X), y
        X, y = _validate_data_quietly(
            self,
            X,
            y,
            reset=reset,
            accept_sparse=["csr", "csc"],
            dtype=[np.float64, np.float32],
            multi_output=True,
            y_numeric=self._y_numeric,
        )
        _check_dense_for_block(X, self._input_block(X.shape[1]), "is set to use")
        return self._as_model_input(X), y

    def _is_plain_input(self, X):
        """True when ``X`` needs none of ``validate_data``'s conversions or warnings.

        That is a finite, non-empty 2-D float32/float64 ndarray (not a
        subclass) with the fitted number of columns, for an estimator fitted
        without feature names. Such input goes straight to the network:
        ``validate_data`` costs more than the network's arithmetic on a
        single row; anything else takes the full path, which raises the usual
        errors and warnings.
        """
        return (
            type(X) is np.ndarray
            and X.dtype in (np.float64, np.float32)
            and X.ndim == 2
            and X.shape[0] > 0
            and X.shape[1] == self.n_features_in_
            and not hasattr(self, "feature_names_in_")
            and self._table() is None
            and _sum_is_finite(X)
        )

    # ------------------------------------------------------------------ tables
    def _table(self):
        """The fitted :class:`~sklearn_gd._table_input.TableInput`, or None: X is
        validated by scikit-learn and enters the network as it is."""
        return getattr(self, "_table_input", None)

    def _table_matrix(self, X, reset):
        """The network's input matrix of the table ``X``: its columns checked against
        the fitted ones (recorded when ``reset``) by scikit-learn, then encoded."""
        with _numpy_namespace():
            validate_data(self, X, reset=reset, skip_check_array=True)
        return check_array(self._table().matrix(X), dtype=None)  # refuses zero rows

    def _checked_y(self, X, y):
        """``(X, y)`` with ``y`` checked against the rows of the input matrix ``X``."""
        return check_X_y(X, y, dtype=None, multi_output=True, y_numeric=self._y_numeric)

    def _reads_matrices(self, n_columns):
        """Make this copy of a fitted model predict from input matrices of ``n_columns``
        (the early-stopping scorer's validation rows), not from tables."""
        self._table_input = None
        self.n_features_in_ = n_columns
        self.__dict__.pop("feature_names_in_", None)

    def _as_model_input(self, X):
        """CSR for sparse input; the model's dtype once fitted."""
        if sp.issparse(X):
            X = X.tocsr()
        if self.__sklearn_is_fitted__() and X.dtype != self._theta.dtype:
            X = cast_finite(X, self._theta.dtype, "X")
        return X

    def _validate_sample_weight(self, sample_weight, X):
        """Checked weights, or None for unit weights (no array of ones is kept)."""
        if sample_weight is None:
            return None
        sw = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        return _check_weight_total(sw, "sample_weight")

    def _check_continuation(self, n_outputs):
        if n_outputs != self._layout.layer_sizes[-1]:
            raise ValueError(
                f"y has {n_outputs} outputs but the fitted network has "
                f"{self._layout.layer_sizes[-1]}; call fit to start over."
            )
        if self._layout.layer_sizes[1:-1] != tuple(self._hidden_sizes()):
            raise ValueError(
                "hidden_layer_sizes changed since the network was fitted; call fit "
                "without warm_start to start over."
            )
        if self._input_block(self._layout.n_features) != self._layout.input_block:
            raise ValueError(
                "The input block (embedding, input_scale, the categories' sizes and their "
                "parameters) changed since "
                "the network was fitted; call fit without warm_start to start over."
            )
        if self.activation != self._fitted_activation:
            raise ValueError(
                f"activation changed since the network was fitted "
                f"({self._fitted_activation!r} -> {self.activation!r}); call fit without "
                "warm_start to start over."
            )
        if self._out_activation_name() != self.out_activation_:
            raise ValueError(
                f"loss={self._loss_name()!r} needs the output {self._out_activation_name()!r}, "
                f"but the network was fitted with {self.out_activation_!r}; call fit without "
                "warm_start to start over."
            )

    def _input_block(self, n_features):
        """The block the parameters and the fitted table ask for in front of the
        network: a :class:`TableBlock` for a table of more than numbers, else the
        numbers' :class:`InputBlock` or None."""
        table = self._table()
        if table is None or not table.needs_block:
            return self._numeric_block(n_features)
        categories = None
        if table.cardinalities:
            categories = CategoryBlock(table.cardinalities,
                                       embedding_size=self.category_embedding_size,
                                       one_hot_max=self.category_one_hot_max)
        numeric = self._numeric_block(table.n_numeric) if table.n_numeric else None
        return TableBlock(table.n_numeric, table.n_flags, numeric, categories)

    def _numeric_block(self, n_features):
        """The :class:`InputBlock` of ``n_features`` numbers the parameters ask for, or None."""
        if self.embedding is None and not self.input_scale:
            return None
        return InputBlock(
            n_features,
            n_frequencies=self.embedding_frequencies if self.embedding == "periodic" else 0,
            embedding_size=self.embedding_size,
            sigma=float(self.embedding_sigma),
            scale=bool(self.input_scale),
            scale_rate=float(self.input_scale_rate),
        )

    def _layer_sizes(self, n_features, n_outputs):
        """``(input block or None, layer sizes)``: the first layer reads the block's output."""
        block = self._input_block(n_features)
        n_inputs = n_features if block is None else block.n_outputs
        return block, [n_inputs, *self._hidden_sizes(), n_outputs]

    def _new_layout(self, n_features, n_outputs):
        """The :class:`Layout` of a new network for the parameters and the data's shape."""
        block, sizes = self._layer_sizes(n_features, n_outputs)
        return Layout(sizes, input_block=block)

    def _initial_state(self, layout, dtype, output_bias):
        """Fresh weights, generator and counters; the fitted network's description."""
        self.n_outputs_ = layout.layer_sizes[-1]
        self.n_layers_ = len(layout.layer_sizes)
        self.out_activation_ = self._out_activation_name()
        # what the network computes, fixed at fit: see _network
        self._fitted_activation = self.activation
        self._fitted_loss = (self._loss_name(), self._loss_kwargs())
        return init_state(
            layout,
            self.activation,
            dtype,
            seed=check_random_state(self.random_state).randint(np.iinfo(np.int32).max),
            output_bias=output_bias,
            name=f"hidden_layer_sizes={self.hidden_layer_sizes!r}",
        )

    def _network(self):
        """The fitted network, for prediction: with the hidden activation and the
        loss (so the output link) it was fitted with, so that ``set_params`` on
        a fitted model does not change what it predicts before the next fit.
        Training takes the loss as the parameters now say (``huber_delta``,
        say, may change between ``partial_fit`` calls; see :meth:`_train_config`);
        ``_check_continuation`` has refused an activation or output link that
        differs from the fitted one.
        """
        name, kwargs = self._fitted_loss
        return _network_for(self._layout, self._fitted_activation, get_loss(name, **kwargs),
                            self._theta)

    def _loss_kwargs(self):
        return {}

    # ------------------------------------------------------------------ prediction
    def _forward(self, X, method="predict"):
        """Validate ``X``; return the raw outputs ``R`` and predictions ``P`` (2-D).

        ``method`` names the caller in the error for ``X`` of another array
        library than the fitted parameters'.
        """
        check_is_fitted(self)
        if self._table() is not None:  # encoded on the host, then where the parameters are
            return self._finite_outputs(self._on_parameters_device(
                self._table_matrix(X, reset=False)))
        if not on_numpy(self._theta) or self._where(X) is not None:
            return self._portable_forward(X, method)
        if not self._is_plain_input(X):
            X = _validate_data_quietly(
                self, X, reset=False, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32]
            )
        _check_dense_for_block(X, self._layout.input_block, "was fitted with")
        return self._finite_outputs(self._as_model_input(X))

    def _on_parameters_device(self, X):
        """The NumPy matrix ``X`` in the parameters' dtype, library and device."""
        X = X.astype(numpy_dtype(self._theta.dtype), copy=False)
        if on_numpy(self._theta):
            return X
        return to_device(X, namespace(self._theta), device_of(self._theta))

    def _finite_outputs(self, X):
        """``(R, P)`` of the fitted network on validated ``X`` (of its library); a
        ValueError that says what to do where a prediction is not finite."""
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            R, P = self._network().forward(self._theta, X)
        if not all_finite(P):  # NaN in R reaches P; +-inf logits are decisive
            raise ValueError(
                "The network produced non-finite predictions: the input values are "
                f"too large for the fitted weights (max |X| = {backend_for(X).max_abs(X):.3g}). "
                "Scale the data as it was scaled for training."
            )
        return R, P


def _network_for(layout, activation, loss, like):
    """The :class:`Network` computing in ``like``'s library (NumPy for None)."""
    return Network(layout, activation, loss, backend_for(like))


def _check_dense_for_block(X, block, which):
    """The input block works on dense rows: refuse sparse ``X`` with a clear message."""
    if block is not None and sp.issparse(X):
        raise TypeError(
            f"This model {which} an input embedding or input_scale, which need dense X; "
            "a sparse matrix was passed. Use X.toarray(), or embedding=None and "
            "input_scale=False."
        )
