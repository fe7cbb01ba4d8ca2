"""Parameter and attribute documentation shared by both estimators."""

OBJECTIVE = r"""
    The objective minimised is

    .. math::

        J(\theta) = \frac{\sum_i s_i\, \ell_i(\theta)}{\sum_i s_i}
                    + \frac{\alpha}{2N} \sum_l \|W_l\|_F^2

    where :math:`s_i` are the sample weights (ones by default),
    :math:`\ell_i` is sample *i*'s loss summed over its outputs,
    :math:`N = \sum_i s_i` is the total sample weight of the data given to
    ``fit`` (or to this ``partial_fit`` call; the training part only with
    early stopping), and biases are not penalised. A mini-batch gradient is
    the gradient of the same expression with the first sum restricted to the
    batch, an estimate of :math:`\nabla J`."""

SHARED_PARAMETERS = """
    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', 'elu', \\
'softplus'}, default='relu'
        Activation of the hidden layers. ``leaky_relu`` has slope 0.01 for
        negative inputs; ``elu`` is ``exp(z) - 1`` for negative inputs;
        ``softplus`` is ``log(1 + exp(z))``.

    solver : {'adam', 'sgd', 'adamw', 'rmsprop', 'adagrad', 'lbfgs'}, default='adam'
        Optimizer. The mini-batch solvers' update rules are written in
        :mod:`sklearn_gd._optim._optimizers`; ``sgd`` uses ``momentum`` and
        ``nesterovs_momentum`` as ``MLPClassifier`` does (``momentum=0`` is
        plain gradient descent); ``adamw`` is Adam with decoupled weight decay
        ``weight_decay`` on the weights; ``lbfgs`` minimises the full-batch
        objective with SciPy's L-BFGS-B (no dropout or input noise).

    alpha : float, default=0.0001
        Strength of the L2 penalty in the objective above.

    batch_size : int, 'auto' or None, default='auto'
        Mini-batch size: ``'auto'`` is ``min(200, n_samples)``, ``None`` means
        full-batch gradient descent; larger values are clipped to
        ``n_samples``. Ignored by ``lbfgs``.

    learning_rate : {'constant', 'invscaling', 'adaptive', 'cosine'}, default='constant'
        Learning-rate schedule, for every mini-batch solver:
        ``constant`` keeps ``learning_rate_init``; ``invscaling`` uses
        ``learning_rate_init / (t + 1) ** power_t`` with ``t`` the samples seen;
        ``adaptive`` divides the rate by 5 each time the monitored quantity
        stops improving (see ``tol``) instead of stopping, until it falls
        below 1e-6; ``cosine`` decays from ``learning_rate_init`` to zero along
        a half cosine over ``max_iter`` epochs.

    learning_rate_init : float, default=0.001
        Initial learning rate.

    power_t : float, default=0.5
        Exponent of the ``invscaling`` schedule.

    max_iter : int, default=200
        Maximum number of epochs (iterations for ``lbfgs``) per ``fit``.

    shuffle : bool, default=True
        Shuffle the samples at each epoch.

    random_state : int, RandomState instance or None, default=None
        Seeds the one generator of a ``fit``: initial weights, shuffling,
        validation split, dropout masks and input noise.

    tol : float, default=1e-4
        Training stops when the training loss (or the validation score with
        early stopping) does not improve by at least ``tol`` for more than
        ``n_iter_no_change`` consecutive epochs.

    verbose : bool, default=False
        Print one line per epoch.

    warm_start : bool, default=False
        Continue from the current weights on ``fit`` (a fresh optimizer state
        and schedule; counters and curves keep accumulating).

    momentum : float, default=0.9
        Momentum of ``sgd``, in ``[0, 1]``.

    nesterovs_momentum : bool, default=True
        Nesterov's momentum for ``sgd``.

    early_stopping : bool, default=False
        Score each epoch on a validation set, stop when the score stops
        improving, and restore the weights of the best epoch. The validation
        set is the one given to ``fit`` (``X_val``, ``y_val``), or else
        ``validation_fraction`` of the training data, held out (stratified for
        classifiers). Mini-batch solvers only; ``partial_fit`` never holds
        data out.

    validation_fraction : float, default=0.1
        Fraction of the data held out for early stopping when ``fit`` is
        given no ``X_val``.

    beta_1, beta_2 : float, default=0.9, 0.999
        Decay rates of Adam's first and second moment estimates.

    epsilon : float, default=1e-8
        Numerical stability term of ``adam``, ``adamw``, ``rmsprop``, ``adagrad``.

    n_iter_no_change : int, default=10
        Number of epochs without improvement tolerated (see ``tol``).

    max_fun : int, default=15000
        Maximum number of loss evaluations for ``lbfgs``.

    dropout : float or sequence of float, default=0.0
        Inverted dropout rate per hidden layer (one value for all, or one per
        hidden layer): during training each hidden unit is zeroed with this
        probability and the survivors are scaled by ``1 / (1 - p)``; prediction
        uses the full network.

    input_noise : float, default=0.0
        Standard deviation of Gaussian noise added to the inputs of each
        training batch (data augmentation); for sparse input only the stored
        entries receive noise.

    weight_decay : float, default=0.01
        Decoupled weight decay of ``adamw`` (unused by other solvers).

    rho : float, default=0.9
        Decay of the squared-gradient average of ``rmsprop``.

    scoring : str, callable or None, default="loss"
        What early stopping monitors on the validation set, as
        ``HistGradientBoosting*``'s parameter: ``"loss"``, the validation
        objective (``validation_scores_`` then holds minus
        ``validation_loss_curve_``); ``None``, the estimator's own score
        (accuracy for the classifier, R² for the regressor), as
        ``MLPClassifier`` does; a scorer name (``"roc_auc"``, ...) or a
        callable ``scorer(estimator, X, y)``. Unused without
        ``early_stopping``. The loss is the default: accuracy on a small
        validation part moves in coarse steps and stops training long before
        the model is fit (``benchmarks/bench_early_stopping.py``: 2-21 points
        of test accuracy lost on scikit-learn's small data sets).

    embedding : {'periodic'} or None, default=None
        Numeric-feature embedding in front of the first layer. ``'periodic'``
        is RealMLP's PBLD embedding (Gorishniy et al. 2022, "On Embeddings
        for Numerical Features"; Holzmueller et al. 2024): each feature
        :math:`x_j` becomes ``embedding_size - 1`` learned values
        :math:`h_{jq} = \\sum_r \\cos(2\\pi\\sigma\\omega_{jr} x_j + \\phi_{jr})
        U_{jrq} + c_{jq}` and itself, so the first layer sees
        ``n_features_in_ * embedding_size`` inputs (``coefs_[0]`` has as many
        rows: the embeddings of every feature, then the features). The
        frequencies, phases and maps are trained with the network; they are
        neither penalised by ``alpha`` nor decayed by ``weight_decay``. Needs
        dense ``X`` (scaled: see :class:`RobustSmoothClipScaler`).

    embedding_frequencies : int, default=16
        Number of frequencies :math:`k` per feature of the periodic embedding.

    embedding_size : int, default=4
        Values per feature the periodic embedding outputs, the feature
        itself included (``1``: the features alone).

    embedding_sigma : float, default=0.1
        :math:`\\sigma`: the initial frequencies are drawn from
        :math:`N(0, \\sigma^2)`; they are stored in units of :math:`\\sigma`,
        so an Adam-type step moves a frequency by about :math:`\\sigma` times
        the learning rate (small, smooth embeddings stay so).

    input_scale : bool, default=False
        Learn one scale per input of the first layer (per feature, or per
        embedded value), starting at 1: a soft feature selection that
        Adam-type solvers move ``input_scale_rate`` times as fast as the
        weights. Not penalised or decayed. Needs dense ``X``.

    input_scale_rate : float, default=6.0
        :math:`\\rho`: each scale is stored as :math:`s / \\rho`, so an
        Adam-type step (whose size does not depend on the gradient's scale)
        moves :math:`s` about :math:`\\rho` times the learning rate.

    categorical_features : {'from_dtype'}, array-like of int, str or bool, or None, \
default='from_dtype'
        The categorical columns of a table, with ``HistGradientBoosting*``'s
        meaning: ``'from_dtype'`` takes a data frame's ``category`` columns
        and its columns of text (``object``, ``string``, pyarrow strings; a
        text column whose values are all numbers is numbers); indices,
        names or a boolean mask choose the columns (of an array too);
        ``None`` has none. Each categorical column's categories are learned
        at the first ``fit`` (or ``partial_fit``) and enter the network
        one-hot or as learned embeddings (``category_one_hot_max``); a
        missing value, and a category first seen later (``partial_fit``,
        ``warm_start``, ``predict``), go to a reserved slot of their own.
        Missing numeric values (NaN, ``pd.NA``) are taken too: the first
        layer sees the column's median and a missing-value indicator (see
        the user guide's "Mixed-type tables"). Booleans enter as one
        :math:`\\pm 1` value. A table of numbers without missing values
        trains as an array does.

    category_one_hot_max : int, default=9
        A categorical column of at most this many codes (its categories
        plus the missing-or-unknown slot) enters one-hot; one of more
        enters as a learned embedding of ``category_embedding_size`` values
        per row (an entity embedding: a table of one vector per category,
        drawn from :math:`N(0, 1)` and trained with the network, neither
        penalised by ``alpha`` nor decayed). RealMLP's threshold: one-hot up
        to 64 codes did no better on the benchmark's mixed tables.

    category_embedding_size : int, default=4
        The values of each category's learned embedding. RealMLP uses 8; on
        the benchmark's mixed tables 4 scores as well on the classification
        tables and better on the regression ones, at fewer parameters
        (``benchmarks/bench_real_data.py``, the tabular recipe's page).

    anneal_epochs : int, default=0
        What a plateau (see ``tol``) does: 0 stops training, as
        ``MLPClassifier`` does; a positive number instead anneals the rate
        to zero over that many more epochs, then stops (with early stopping,
        keeping the best epoch's weights either way). From the plateau's epoch ``p``, epoch
        ``p + k + 1`` (``k = 0 .. A - 1``, ``A = anneal_epochs``) trains at
        the schedule's rate times :math:`(1 + \\cos(\\pi k / A)) / 2`: the
        last epochs of a cosine schedule, within the epochs the run will
        actually train. The factor holds for this call only.

    n_steps_no_change : int, default=0
        The optimizer steps a plateau must also span: training tolerates
        :math:`\\max(n_{\\text{iter}}, \\lceil n_{\\text{steps}} / s \\rceil)`
        epochs without improvement, with :math:`n_{\\text{iter}}` =
        ``n_iter_no_change``, :math:`n_{\\text{steps}}` = ``n_steps_no_change``
        and :math:`s` the steps of an epoch (``ceil(n_samples / batch_size)``,
        validation rows excluded). An epoch of a large data set is many steps,
        of a small one a few: patience counted in epochs alone is either long
        on large data or too short on small data, where a few steps barely
        change the model. 0 counts epochs only, as ``MLPClassifier`` does.
        Mini-batch solvers only.
"""

SHARED_ATTRIBUTES = """
    coefs_ : list of ndarray
        Weight matrix of each layer, shape ``(fan_in, fan_out)``: views of the
        current parameters.

    intercepts_ : list of ndarray
        Bias vector of each layer: views of the current parameters.

    n_iter_ : int
        Epochs run (an ``lbfgs`` iteration or a ``partial_fit`` call counts as one).

    t_ : int
        Training samples seen.

    loss_curve_ : list of float
        Training objective of each epoch (mean of the batch objectives).

    loss_ : float or None
        Training objective of the last epoch, ``loss_curve_[-1]`` (None when
        the first epoch diverged).

    validation_scores_ : list of float
        Validation score of each epoch with early stopping (empty otherwise).

    validation_loss_curve_ : list of float
        Validation objective of each epoch with early stopping (empty otherwise).

    best_loss_ : float
        Lowest training loss of the last ``fit`` or, with early stopping, the
        validation loss at the best epoch.

    best_validation_score_ : float or None
        Best validation score; None where no validation part is held out
        (without early stopping, with ``lbfgs``, after ``partial_fit``).

    best_iteration_ : int or None
        Epoch (value of ``n_iter_``) at which ``best_loss_`` or
        ``best_validation_score_`` was reached.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` has string column names.

    n_layers_ : int
        Number of layers, input and output included.

    n_outputs_ : int
        Number of output units.

    out_activation_ : str
        Output activation."""
