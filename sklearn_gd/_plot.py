"""LossCurveDisplay: what training did, epoch by epoch (matplotlib, imported lazily)."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._compat import check_matplotlib_support


class LossCurveDisplay:
    """Training loss, validation loss and validation score per epoch.

    Build it with :meth:`from_estimator`; attributes follow scikit-learn's
    Display conventions (artists are kept after :meth:`plot`).

    Parameters
    ----------
    loss_curve : array-like of shape (n_epochs,)
        Training objective per epoch (``loss_curve_``).
    validation_loss_curve : array-like of shape (n_epochs,), default=None
        Validation objective per epoch (``validation_loss_curve_``).
    validation_scores : array-like of shape (n_epochs,), default=None
        Validation score per epoch (``validation_scores_``); :meth:`from_estimator`
        leaves it out when early stopping monitored the loss (the scores are
        then minus ``validation_loss_curve``).
    best_iteration : int, default=None
        The best epoch (1-based, ``best_iteration_``), marked by a vertical line.
    estimator_name : str, default=None
        Used in the title.
    score_name : str, default="score"
        What the scores are (``"accuracy"``, ``"r2"``, a scorer's name), for the
        label of their axis.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The training-loss curve.
    validation_line_ : matplotlib Line2D or None
        The validation-loss curve.
    score_line_ : matplotlib Line2D or None
        The validation-score curve, on a twin y axis (``score_ax_``).
    best_line_ : matplotlib Line2D or None
        The vertical line at the best epoch.
    ax_ : matplotlib Axes
        The axes of the losses.
    score_ax_ : matplotlib Axes or None
        The twin axes of the validation score.
    figure_ : matplotlib Figure
    """

    def __init__(self, *, loss_curve, validation_loss_curve=None, validation_scores=None,
                 best_iteration=None, estimator_name=None, score_name="score"):
        self.loss_curve = loss_curve
        self.validation_loss_curve = validation_loss_curve
        self.validation_scores = validation_scores
        self.score_name = score_name
        self.best_iteration = best_iteration
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, **plot_kwargs):
        """Plot the history of a fitted :class:`GDRegressor` or :class:`MLPBackpropClassifier`.

        Parameters
        ----------
        estimator : fitted estimator (or a Pipeline ending in one)
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        **plot_kwargs
            Passed to :meth:`plot`.

        Returns
        -------
        display : LossCurveDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        if hasattr(estimator, "steps"):
            estimator = estimator.steps[-1][1]
        check_is_fitted(estimator)
        monitor = estimator._monitored_name()
        # monitoring the loss, the scores are minus the validation loss: not drawn twice
        scores = None if monitor == "loss" else estimator.validation_scores_ or None
        display = cls(
            loss_curve=estimator.loss_curve_,
            validation_loss_curve=estimator.validation_loss_curve_ or None,
            validation_scores=scores,
            score_name=monitor,
            best_iteration=estimator.best_iteration_,
            estimator_name=type(estimator).__name__,
        )
        return display.plot(ax=ax, **plot_kwargs)

    def plot(self, ax=None, *, show_best=True):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
        show_best : bool, default=True
            Mark the best epoch with a vertical line.

        Returns
        -------
        display : LossCurveDisplay
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        epochs = np.arange(1, len(self.loss_curve) + 1)
        (self.line_,) = ax.plot(epochs, self.loss_curve, label="training loss")
        self.validation_line_ = self.score_line_ = self.score_ax_ = self.best_line_ = None
        if self.validation_loss_curve is not None:
            (self.validation_line_,) = ax.plot(
                epochs, self.validation_loss_curve, label="validation loss"
            )
        lines = [self.line_] + ([self.validation_line_] if self.validation_line_ else [])
        if self.validation_scores is not None:
            self.score_ax_ = ax.twinx()
            (self.score_line_,) = self.score_ax_.plot(
                epochs, self.validation_scores, color="tab:green", linestyle="--",
                label=f"validation {self.score_name}",
            )
            self.score_ax_.set_ylabel(f"validation {self.score_name}")
            lines.append(self.score_line_)
        if show_best and self.best_iteration is not None:
            self.best_line_ = ax.axvline(
                self.best_iteration, color="grey", linestyle=":",
                label=f"best epoch ({self.best_iteration})",
            )
            lines.append(self.best_line_)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        # the legend goes on the top-most axes, so no curve is drawn over it
        top = self.score_ax_ if self.score_ax_ is not None else ax
        top.legend(lines, [line.get_label() for line in lines], loc="center right")
        if self.estimator_name:
            ax.set_title(self.estimator_name)
        self.ax_, self.figure_ = ax, ax.figure
        return self
