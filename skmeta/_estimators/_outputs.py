"""The scikit-learn face of the two target strategies, shared by every algorithm.

:class:`RegressorOutputs` and :class:`ClassifierOutputs` give an estimator its
``_target`` strategy (:mod:`skmeta._targets`), ``predict`` (and
``predict_proba``), the bookkeeping of ``classes_``, and ``score``: few-shot
when tasks are given, plain otherwise. They know no algorithm.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from .. import _tasks
from .._targets import CLASSIFICATION, REGRESSION
from ._params import check_number, check_two_classes


class FewShotScoreMixin:
    """``score`` that scores tasks few-shot when tasks are given, plainly otherwise."""

    def score(self, X, y=None, sample_weight=None, groups=None):
        """Score on tasks (few-shot) or on plain data.

        With tasks (``groups``, a list of ``(X_i, y_i)``, or ``task_col``):
        each task is split into support (``shots``) and query rows with a
        split seeded by ``random_state``, the estimator adapts on the support
        rows from its learned initialisation, and the query rows are scored:

        - regressors: R² pooled over the query rows of all tasks, each task's
          rows measured about that task's own query mean,
          ``1 - sum_t sum_i (y_ti - f_t(x_ti))**2 / sum_t sum_i (y_ti - mean_t)**2``
          (``f_t`` the model adapted to task ``t``, ``mean_t`` the mean of
          its query targets). For given tasks it ranks models exactly as
          their query MSE does, which a mean of per-task R² does not on
          small query sets. It is undefined, and a ``ValueError`` is raised,
          when every task's query targets are constant (one query row per
          task, say);
        - classifiers: the query accuracy of each task, averaged over tasks.

        :func:`skmeta.make_few_shot_scorer` scores other metrics the same
        way. Without tasks: the plain score of the current model (adapted if
        :meth:`adapt` ran).

        Parameters
        ----------
        X : array-like, DataFrame or list of (X_i, y_i)
        y : array-like of shape (n_samples,), optional
        sample_weight : array-like of shape (n_samples,), optional
            Plain scoring only.
        groups : array-like of shape (n_samples,), optional
            Task id of each row.

        Returns
        -------
        score : float
        """
        check_is_fitted(self, "meta_params_")
        if _tasks.has_tasks(X, y, groups, getattr(self, "task_col", None)):
            if sample_weight is not None:
                raise ValueError("sample_weight is not supported when scoring on tasks.")
            taskset = _tasks.read_tasks(
                self, X, y, groups, reset=False, classification=self._target.classification
            )
            return self._few_shot_score(taskset)
        return super().score(X, y, sample_weight=sample_weight)


class RegressorOutputs(FewShotScoreMixin, RegressorMixin):
    """Regression: one output per row, MSE, few-shot R²."""

    _target = REGRESSION

    def _output_width(self) -> int:
        return 1

    def _check_tasks(self, taskset: _tasks.TaskSet, *, training: bool) -> None:
        """Regression tasks need no check beyond the readers'."""

    def _fit_tasks(self, taskset: _tasks.TaskSet, *, single: bool, reset: bool) -> None:
        """Regression keeps no per-fit label state."""

    def _relabel_to(self):
        return None

    def predict(self, X) -> np.ndarray:
        """Predict with the adapted model if :meth:`adapt` ran, else the learned initialisation.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self._forward(X).reshape(-1).cpu().numpy().astype(np.float64)


class ClassifierOutputs(FewShotScoreMixin, ClassifierMixin):
    """Classification: logits over a task's classes, cross-entropy, few-shot accuracy.

    Every task is encoded to class codes ``0..n_classes_t - 1``. Algorithms
    whose output units stand for classes (``fixed_head``: MAML, Reptile)
    have ``n_way_`` units; a task with fewer classes ignores the units above
    its own, and during meta-training on several tasks each task's codes are
    mapped to the units through a fresh random permutation per meta-batch,
    so that no unit learns a class identity (Finn et al., 2017, section 5.2).
    Fit on a single task, labels keep one meaning: they are not shuffled,
    ``classes_`` is set at fit and the estimator predicts without ``adapt``.
    """

    _target = CLASSIFICATION

    # ------------------------------------------------------------ class counts
    def _max_classes(self) -> int | None:
        """The most classes a task may have (the head's units), or None for no limit."""
        return self.n_way_ if self._algorithm_class.fixed_head else None

    def _output_width(self) -> int:
        return self.n_way_

    def _set_n_way(self, taskset: _tasks.TaskSet) -> None:
        """Fix ``n_way_`` at the first fit: the ``n_way`` parameter, or the largest task."""
        n_way = getattr(self, "n_way", None)
        if n_way is not None:
            check_number("n_way", n_way, integer=True, minimum=2, strict=False)
            self.n_way_ = int(n_way)
        else:
            self.n_way_ = max(2, max(len(labels) for labels in taskset.classes))

    def _check_n_classes(self, labels: np.ndarray, what: str, limit: int | None) -> None:
        check_two_classes(labels, what)
        if limit is not None and len(labels) > limit:
            if getattr(self, "n_way", "absent") == "absent":
                raise ValueError(
                    f"{what} has {len(labels)} classes, more than the {limit} of the widest "
                    f"task {type(self).__name__} was first fit on; meta-training batches "
                    "keep that width. Give the first fit tasks as wide as any later one."
                )
            raise ValueError(
                f"{what} has {len(labels)} classes, more than n_way={limit} output units. "
                "Set n_way to at least the largest task's number of classes."
            )

    def _check_tasks(self, taskset: _tasks.TaskSet, *, training: bool) -> None:
        """Every task needs 2 classes, and (fixed heads, or training) at most ``n_way_``."""
        limit = self.n_way_ if training else self._max_classes()
        for t, labels in enumerate(taskset.classes):
            what = f"Task {_tasks.task_name(taskset.task_ids[t])!r}"
            self._check_n_classes(labels, what, limit)

    def _adaptation_classes(self, classes: np.ndarray) -> None:
        self._check_n_classes(classes, "The task given to adapt", self._max_classes())

    # ------------------------------------------------------------ labels over fits
    def _fit_tasks(self, taskset: _tasks.TaskSet, *, single: bool, reset: bool) -> None:
        """Record the labels of a single-task fit (they then keep their meaning)."""
        if reset:
            self._set_n_way(taskset)
            self._fit_classes_ = taskset.classes[0] if single else None
        elif self._fit_classes_ is not None and not (
            single and np.array_equal(taskset.classes[0], self._fit_classes_)
        ):
            self._fit_classes_ = None  # labels now come from several tasks
        self._check_tasks(taskset, training=True)
        if self._fit_classes_ is None:
            vars(self).pop("classes_", None)
        else:
            self.classes_ = self._fit_classes_

    def _relabel_to(self):
        """Meta-training shuffles class codes per task when output units stand for classes."""
        if self._fit_classes_ is not None or not self._algorithm_class.fixed_head:
            return None
        return self.n_way_

    # ------------------------------------------------------------ outputs
    def _no_task_classes(self) -> str:
        return (
            f"This {type(self).__name__} was meta-trained on several tasks, whose labels "
            "mean different things, so it has no classes_: call adapt(X_support, y_support) "
            "on the task to predict first. To score it few-shot in cross_validate or "
            "GridSearchCV, use scoring=skmeta.make_few_shot_scorer(...) (scoring='accuracy' "
            "and the other scikit-learn scorer names call predict unadapted), or its own "
            "score with tasks."
        )

    def __getattr__(self, name: str):
        # Only reached for missing attributes: scikit-learn's scorers read classes_ first.
        if name == "classes_" and "meta_params_" in vars(self):
            raise AttributeError(self._no_task_classes())
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _task_logits(self, X) -> torch.Tensor:
        """Logits of the current task's classes (the columns of ``classes_``)."""
        check_is_fitted(self, "meta_params_")
        if getattr(self, "classes_", None) is None:
            raise NotFittedError(self._no_task_classes())
        return self._forward(X)[:, : len(self.classes_)]

    def predict(self, X) -> np.ndarray:
        """Labels of the adapted task (or of the single fit task before any adapt).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Values from ``classes_``.
        """
        codes = self._task_logits(X).argmax(dim=1).cpu().numpy()
        return self.classes_[codes]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities for the adapted task; columns follow ``classes_``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        proba = torch.softmax(self._task_logits(X).to(torch.float64), dim=1)
        return proba.cpu().numpy()
