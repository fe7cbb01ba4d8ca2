"""GDRegressor: linear regression or an MLP regressor trained by gradient descent."""

from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import RegressorMixin
from sklearn.utils.metaestimators import available_if

from ._base import BaseGD, _is_minibatch, reads_one_model
from ._compat import Interval, StrOptions, _fit_context
from ._dask_estimator import blockwise, blockwise_score
from ._docstrings import OBJECTIVE, SHARED_ATTRIBUTES, SHARED_PARAMETERS
from ._engine._backend import backend_for
from ._engine._losses import LOSSES, REGRESSION_LOSSES
from ._targets import RegressionTargets


class GDRegressor(RegressorMixin, BaseGD):
    __doc__ = f"""Regression by gradient descent and backpropagation.

    With the default ``hidden_layer_sizes=()`` this is linear regression (ridge
    regression when ``alpha > 0``) trained by gradient descent; with hidden
    layers it is a multi-layer perceptron regressor.
{OBJECTIVE}

    With ``hidden_layer_sizes=()`` and ``loss='squared_error'``, :math:`J` is
    ``Ridge(alpha=alpha)``'s objective divided by :math:`2N`: both have the same
    minimiser.

    Parameters
    ----------
    loss : {{'squared_error', 'huber', 'poisson'}}, default='squared_error'
        ``squared_error``: :math:`\\ell = \\frac12 \\sum_k (p_k - y_k)^2` with
        identity output. ``huber``: quadratic up to ``huber_delta``, linear
        beyond. ``poisson``: :math:`\\ell = \\sum_k e^{{r_k}} - y_k r_k` with
        exponential output ``p = exp(r)`` (targets must be non-negative).

    hidden_layer_sizes : int or tuple of int, default=()
        Width of each hidden layer; ``()`` gives a linear model.
{SHARED_PARAMETERS}

    huber_delta : float, default=1.0
        Residual size at which the huber loss turns from quadratic to linear.

    Attributes
    ----------{SHARED_ATTRIBUTES}

    See Also
    --------
    MLPBackpropClassifier : The classifier built on the same engine.
    sklearn.neural_network.MLPRegressor : scikit-learn's MLP regressor.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_gd import GDRegressor
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> y = 2 * X.ravel() + 1
    >>> reg = GDRegressor(solver="lbfgs", alpha=0.0).fit(X, y)
    >>> np.round(reg.predict([[4.0]]), 3)
    array([9.])
    """

    _parameter_constraints: dict = {
        **BaseGD._parameter_constraints,
        "loss": [StrOptions(set(REGRESSION_LOSSES))],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
    }
    _y_numeric = True

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=0.0,
        input_noise=0.0,
        weight_decay=0.01,
        rho=0.9,
        scoring="loss",
        huber_delta=1.0,
        embedding=None,
        embedding_frequencies=16,
        embedding_size=4,
        embedding_sigma=0.1,
        input_scale=False,
        input_scale_rate=6.0,
        categorical_features="from_dtype",
        category_one_hot_max=9,
        category_embedding_size=4,
        anneal_epochs=0,
        n_steps_no_change=0,
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.input_noise = input_noise
        self.weight_decay = weight_decay
        self.rho = rho
        self.scoring = scoring
        self.huber_delta = huber_delta
        self.embedding = embedding
        self.embedding_frequencies = embedding_frequencies
        self.embedding_size = embedding_size
        self.embedding_sigma = embedding_sigma
        self.input_scale = input_scale
        self.input_scale_rate = input_scale_rate
        self.categorical_features = categorical_features
        self.category_one_hot_max = category_one_hot_max
        self.category_embedding_size = category_embedding_size
        self.anneal_epochs = anneal_epochs
        self.n_steps_no_change = n_steps_no_change

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.positive_only = self.loss == "poisson"
        return tags

    @available_if(_is_minibatch)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Run one epoch over ``(X, y)``, initialising on the first call.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        return self._partial_fit(X, y, sample_weight)

    @blockwise
    @reads_one_model
    def predict(self, X):
        """Predict targets, shaped like the ``y`` given to ``fit``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        _, P = self._forward(X)
        if self._y_ndim != 1:
            return P
        return backend_for(P).flat(P)

    @blockwise_score
    def score(self, X, y, sample_weight=None):
        """R² of :meth:`predict` on ``(X, y)`` (uniform average over outputs).

        On Dask input the predictions and the sums R² is made of are
        computed block by block on the workers; only the sums are gathered.

        Returns
        -------
        score : float
        """
        return super().score(X, *self._follow_X(X, y, sample_weight))

    # ------------------------------------------------------------------ hooks
    def _loss_name(self):
        return self.loss

    def _loss_kwargs(self):
        return {"huber_delta": self.huber_delta} if self.loss == "huber" else {}

    def _out_activation_name(self):
        return LOSSES[self.loss].out_activation

    def _targets(self):
        """The fitted targets' :class:`~sklearn_gd._targets.RegressionTargets`, handed
        down to the trainer and the data sources."""
        return RegressionTargets(self._y_ndim, self.loss, type(self).__name__)

    def _encode_targets(self, y, dtype, fitting, classes=None):
        """``y`` checked and as 2-D floats (see :meth:`RegressionTargets.encode`); when
        ``fitting``, its number of dimensions is learned too."""
        if not fitting:
            return self._targets().encode(y, dtype)
        y_ndim = None if sp.issparse(y) else np.ndim(y)  # refused by encode
        Y = RegressionTargets(y_ndim, self.loss, type(self).__name__).encode(y, dtype)
        self._y_ndim = y_ndim  # once y is known good: a refused y leaves the model as it was
        return Y
