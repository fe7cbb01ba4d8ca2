"""MLPBackpropClassifier: binary, multiclass and multilabel classification."""

from numbers import Real

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target

from ._base import BaseGD, _check_weight_total, _is_minibatch, reads_one_model
from ._compat import Interval, StrOptions, _fit_context, cached_unique
from ._dask_estimator import blockwise, blockwise_score
from ._docstrings import OBJECTIVE, SHARED_ATTRIBUTES, SHARED_PARAMETERS
from ._engine._backend import backend_for
from ._engine._losses import LOSSES
from ._targets import ClassTargets, declared_classes, parse_labels


class MLPBackpropClassifier(ClassifierMixin, BaseGD):
    __doc__ = f"""Multi-layer perceptron classifier trained by backpropagation.

    Softmax output with log-loss for multiclass targets; logistic outputs with
    binary log-loss for binary targets and multilabel indicator matrices. With
    ``hidden_layer_sizes=()`` it is (multinomial) logistic regression.
{OBJECTIVE}

    With ``hidden_layer_sizes=()``, :math:`J` is
    ``LogisticRegression(C=1 / alpha)``'s objective divided by :math:`N`.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(100,)
        Width of each hidden layer; ``()`` gives logistic regression.
{SHARED_PARAMETERS}

    class_weight : dict, 'balanced' or None, default=None
        Weights ``{{class_label: weight}}`` multiplying the sample weights of
        each class's samples (as scikit-learn's linear classifiers combine
        them); ``'balanced'`` uses ``n_samples / (n_classes * bincount(y))``
        of the data given to ``fit`` (not available in ``partial_fit``, where
        the class frequencies of the whole stream are unknown: pass a dict).
        Not supported for multilabel targets.

    label_smoothing : float in [0, 1), default=0.0
        Train on smoothed targets: each sample's indicator row ``y`` becomes
        ``(1 - label_smoothing) y + label_smoothing / K``, with ``K`` the
        number of classes for softmax outputs (multiclass) and ``K = 2`` for
        each logistic output (binary and multilabel), so that the loss is

        .. math::

            \\ell_i = -\\sum_k \\tilde y_{{ik}} \\log p_{{ik}},\\qquad
            \\tilde y = (1 - \\varepsilon)\\, y + \\varepsilon / K

        (and its two-class form per logistic output). The output delta stays
        ``P - Y~``; the constant model the output bias starts from, and the
        validation loss of early stopping, use the smoothed targets too.
        Predicted labels are unaffected; probabilities are pulled towards
        ``1 / K``, which discourages over-confident logits.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (for multilabel targets, ``arange(n_labels)``).
{SHARED_ATTRIBUTES}

    See Also
    --------
    GDRegressor : The regressor built on the same engine.
    sklearn.neural_network.MLPClassifier : scikit-learn's MLP classifier.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_gd import MLPBackpropClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPBackpropClassifier(solver="lbfgs", random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.95
    True
    """

    _parameter_constraints: dict = {
        **BaseGD._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }
    _y_numeric = False

    def __init__(
        self,
        hidden_layer_sizes=(100,),
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
        class_weight=None,
        label_smoothing=0.0,
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
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
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
        tags.classifier_tags.multi_label = True
        return tags

    @available_if(_is_minibatch)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Run one epoch over ``(X, y)``, initialising on the first call.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : {array-like, sparse matrix} of shape (n_samples,) or (n_samples, n_labels)
            Labels, or a multilabel indicator matrix (dense or sparse).
        classes : array-like of shape (n_classes,), default=None
            All the classes that will ever be seen; required on the first
            call (for multilabel targets, ignored: the labels are the columns).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        if not self.__sklearn_is_fitted__() and classes is None:
            y_kind = type_of_target(y)
            if not y_kind.startswith("multilabel"):
                raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._partial_fit(X, y, sample_weight, classes=classes)

    @blockwise
    @reads_one_model
    def predict_proba(self, X):
        """Class probabilities.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            For multilabel targets, each label's probability.
        """
        return self._proba(X, "predict_proba")

    def _proba(self, X, method):
        R, P = self._forward(X, method)
        if self._target_kind == "multiclass":
            return P
        ops = backend_for(P)
        if self._target_kind == "binary":
            # the logistic of -r rather than 1 - p: exact for confident negatives too
            P = ops.concat([ops.logistic(-R), P], axis=1)
        return ops.open_unit_interval(P)

    @blockwise
    @reads_one_model
    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba` (``-inf`` where it underflows to 0)."""
        proba = self._proba(X, "predict_log_proba")
        return backend_for(proba).log(proba)

    @blockwise
    @reads_one_model
    def predict(self, X):
        """Predicted class labels.

        For multilabel targets, an indicator matrix: sparse (CSR) when the
        model was fitted on a sparse one, dense otherwise (always dense in
        another array library). Labels that library cannot hold (strings)
        come back as a NumPy array.
        """
        R, _ = self._forward(X)
        ops = backend_for(R)
        if self._target_kind == "multilabel":
            return ops.label_matrix(ops.positive(R), self._sparse_labels)
        if self._target_kind == "binary":
            return ops.take_labels(self.classes_, ops.positive(R[:, 0]))
        return ops.take_labels(self.classes_, ops.argmax(R, axis=1))

    @blockwise_score
    def score(self, X, y, sample_weight=None):
        """Accuracy of :meth:`predict` on ``(X, y)``, weighted by ``sample_weight``.

        On Dask input the predictions and the counts of right answers are
        computed block by block on the workers; only the counts are gathered.
        Subset accuracy for multilabel targets, as ``ClassifierMixin.score``.

        Returns
        -------
        score : float
        """
        return super().score(X, *self._follow_X(X, y, sample_weight))

    # ------------------------------------------------------------------ hooks
    def _effective_sample_weight(self, y, sw, incremental):
        """``sample_weight * class_weight[y]``."""
        if self.class_weight is None:
            return sw
        self._check_class_weight_request(incremental)
        y = np.asarray(y).ravel()
        per_class = self._per_class_weight(y)
        bad = ~(np.isfinite(per_class) & (per_class >= 0))
        if bad.any():
            raise ValueError(
                "class_weight must be finite and non-negative; it gives "
                f"{per_class[bad].tolist()} to classes {self.classes_[bad].tolist()}."
            )
        weights = per_class[np.searchsorted(self.classes_, y)].astype(
            sw.dtype if sw is not None else np.float64
        )
        with np.errstate(over="ignore"):
            weights = weights if sw is None else sw * weights
        return _check_weight_total(weights, "sample_weight times class_weight")

    def _check_class_weight_request(self, incremental):
        """Refuse ``class_weight`` where it cannot apply."""
        if self._target_kind == "multilabel":
            raise ValueError("class_weight is not supported for multilabel targets.")
        if incremental and self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' is not supported for partial_fit: the class "
                "frequencies of the whole stream are unknown. Compute them with "
                "sklearn.utils.class_weight.compute_class_weight and pass a dict."
            )

    def _per_class_weight(self, y):
        """``class_weight`` for each of ``classes_``.

        ``'balanced'`` weighs the classes ``y`` holds: a warm-started fit may
        train on a ``y`` lacking some of ``classes_`` (no sample takes their
        weight), where scikit-learn's ``compute_class_weight`` would refuse.
        """
        if self.class_weight != "balanced":
            return compute_class_weight(self.class_weight, classes=self.classes_, y=y)
        labels, counts = np.unique(y, return_counts=True)
        return self._balanced_class_weight(dict(zip(labels.tolist(), counts.tolist())))

    def _balanced_class_weight(self, counts):
        """``class_weight='balanced'`` from ``{label: samples}``: ``n / (k n_c)`` for
        each of the ``k`` classes of ``classes_`` that ``counts`` holds (``n``
        samples in all), 0 for the others (in memory from ``y``, on Dask from
        the chunks' counts)."""
        present = np.array([label in counts for label in self.classes_.tolist()])
        counted = np.array([counts[label] for label in self.classes_[present].tolist()],
                           dtype=np.float64)
        per_class = np.zeros(self.classes_.shape[0])
        per_class[present] = counted.sum() / (present.sum() * counted)
        return per_class

    def _loss_name(self):
        return "log_loss" if self._target_kind == "multiclass" else "binary_log_loss"

    def _out_activation_name(self):
        return LOSSES[self._loss_name()].out_activation

    def _targets(self):
        """The fitted targets' :class:`~sklearn_gd._targets.ClassTargets`, handed down
        to the trainer and the data sources."""
        return ClassTargets(self.classes_, self._target_kind, self.label_smoothing,
                            type(self).__name__)

    def _encode_targets(self, y, dtype, fitting, classes=None):
        """Indicator targets (see :meth:`ClassTargets.encode`); when ``fitting``, the
        classes are learned from ``y`` (or ``classes``) too, and kept once ``y``
        is encoded (a refused ``y`` leaves the model as it was)."""
        if not fitting:
            return self._targets().encode(y, dtype, classes)
        parsed = parse_labels(y)
        targets = self._learned_targets(parsed, classes)
        Y = targets.encode_parsed(parsed, dtype)
        self.classes_, self._target_kind = targets.classes, targets.kind
        if targets.kind == "multilabel":  # predict answers in the fitted y's format,
            self._sparse_labels = parsed[2]  # as MLPClassifier does
        return Y

    def _learned_targets(self, parsed, classes):
        """The :class:`ClassTargets` of parsed labels (see :func:`parse_labels`), with
        the declared ``classes`` when given."""
        form, y, _ = parsed
        name = type(self).__name__
        if form == "multilabel":
            return ClassTargets(np.arange(y.shape[1]), "multilabel", self.label_smoothing, name)
        learned = cached_unique(y) if classes is None else declared_classes(classes)
        if learned.shape[0] < 2:
            where = "y has" if classes is None else f"classes={learned.tolist()} has"
            raise ValueError(
                f"{name} needs samples of at least 2 classes; {where} "
                f"only one class: {learned.tolist()[0]!r}."
            )
        kind = "binary" if learned.shape[0] == 2 else "multiclass"
        return ClassTargets(learned, kind, self.label_smoothing, name)
