"""Few-shot scorers: any scikit-learn metric, scored the way a meta-learner is judged.

A scikit-learn scorer (``scoring="r2"``) calls ``estimator.predict(X_test)``:
for a meta-learner that is the learned initialisation, never adapted to a
task. A few-shot scorer instead splits each test task into support and query
rows exactly as the estimator's few-shot ``score`` does (``shots``, seeded by
``random_state``), adapts on the support rows and applies the metric to the
query rows. Adaptation runs through the estimator's own vectorised path, all
tasks at once; the metric then sees each task's responses through a small
read-only view (:class:`_RegressorResponses`, :class:`_ClassifierResponses`),
so scikit-learn's own scorer logic (response methods, ``pos_label``, signs)
applies unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import get_scorer, make_scorer, r2_score
from sklearn.pipeline import Pipeline
from sklearn.utils.metadata_routing import MetadataRequest
from sklearn.utils.validation import check_is_fitted

from . import _tasks
from ._estimators._base import TaskEstimator


class _RegressorResponses(RegressorMixin, BaseEstimator):
    """One task's adapted predictions on its query rows, read by row index."""

    def __init__(self, predictions):
        self.predictions = predictions

    def predict(self, rows):
        return self.predictions[rows]


class _ClassifierResponses(ClassifierMixin, BaseEstimator):
    """One task's adapted logits on its query rows (columns: ``classes``), read by row index."""

    def __init__(self, classes, logits):
        self.classes = classes
        self.logits = logits
        self.classes_ = classes

    def predict(self, rows):
        return self.classes_[self.logits[rows].argmax(axis=1)]

    def predict_proba(self, rows):
        return torch.softmax(torch.from_numpy(self.logits[rows]), dim=1).numpy()


def _task_responses(estimator: TaskEstimator, taskset: _tasks.TaskSet):
    """Yield ``(responses, y_true)`` per task: a view of its query rows' responses after
    adapting on its support rows, and their true targets (original labels)."""
    classification = estimator._target.classification
    t = 0
    for chunk, outputs in estimator._few_shot_outputs(taskset):
        rows = (chunk.w_query > 0).cpu().numpy()
        y_query = chunk.y_query.cpu().numpy()
        outputs = outputs.detach().to(torch.float64).cpu().numpy()
        for i in range(len(rows)):
            if classification:
                classes = taskset.classes[t]
                logits = outputs[i][rows[i]][:, : len(classes)]
                yield _ClassifierResponses(classes, logits), classes[y_query[i][rows[i]]]
            else:
                predictions = outputs[i].reshape(len(rows[i]))[rows[i]]
                yield _RegressorResponses(predictions), y_query[i][rows[i]].astype(np.float64)
            t += 1


def _final_step(estimator, X, y):
    """The skmeta estimator to score, and ``X`` as it sees it (through a Pipeline's
    transformers)."""
    if isinstance(estimator, Pipeline):
        head, estimator = estimator[:-1], estimator[-1]
        if _tasks.is_task_list(X, y):
            X = [(head.transform(X_t), y_t) for X_t, y_t in X]
        else:
            X = head.transform(X)
    if not isinstance(estimator, TaskEstimator):
        raise TypeError(
            "A few-shot scorer scores skmeta estimators (or a Pipeline ending in one), "
            f"got {type(estimator).__name__}."
        )
    return estimator, X


class FewShotScorer:
    """Scorer that adapts on each task's support rows and scores its query rows.

    Build it with :func:`make_few_shot_scorer`; it is called as
    ``scorer(estimator, X, y=None, groups=None)`` like any scikit-learn scorer,
    and requests ``groups`` from metadata routing.
    """

    def __init__(self, scorer: Callable, *, pooled_r2: bool, description: str):
        self._scorer = scorer
        self._pooled_r2 = pooled_r2
        self._description = description

    def __repr__(self) -> str:
        return self._description

    def __call__(self, estimator, X, y=None, groups=None, **kwargs) -> float:
        """Few-shot score of a fitted ``estimator`` on the tasks of ``X``.

        Parameters
        ----------
        estimator : skmeta estimator or Pipeline ending in one
        X : array-like, DataFrame or list of (X_i, y_i)
            Tasks in any form that ``score`` takes: long format with
            ``groups``, a DataFrame with the estimator's ``task_col``, or a
            list of tasks.
        y : array-like of shape (n_samples,), optional
        groups : array-like of shape (n_samples,), optional
            Task id of each row.

        Returns
        -------
        score : float
        """
        if kwargs:
            raise TypeError(f"{self!r} got unexpected argument(s) {sorted(kwargs)}.")
        estimator, X = _final_step(estimator, X, y)
        check_is_fitted(estimator, "meta_params_")
        if not _tasks.has_tasks(X, y, groups, getattr(estimator, "task_col", None)):
            raise ValueError(
                f"{self!r} needs tasks to score few-shot, but got X and y without task ids. "
                "Pass groups (cross_validate and GridSearchCV route them to the scorer "
                "only with metadata routing on: sklearn.set_config("
                "enable_metadata_routing=True)), set the estimator's task_col, or give a "
                "list of (X_i, y_i) tasks."
            )
        classification = estimator._target.classification
        taskset = _tasks.read_tasks(
            estimator, X, y, groups, reset=False, classification=classification
        )
        if self._pooled_r2 and not classification:
            return estimator._few_shot_score(taskset)
        scores = [
            self._scorer(responses, np.arange(len(y_true)), y_true)
            for responses, y_true in _task_responses(estimator, taskset)
        ]
        return float(np.mean(scores))

    def get_metadata_routing(self) -> MetadataRequest:
        """Metadata routing: ``groups`` is requested for ``score``.

        Returns
        -------
        routing : sklearn.utils.metadata_routing.MetadataRequest
        """
        request = MetadataRequest(owner=self)
        request.score.add_request(param="groups", alias=True)
        return request


def make_few_shot_scorer(
    metric: str | Callable,
    *,
    greater_is_better: bool = True,
    response_method: str | tuple[str, ...] = "predict",
    **kwargs,
) -> FewShotScorer:
    """Make a scorer that scores skmeta estimators few-shot, for any metric.

    Use it wherever scikit-learn takes ``scoring=``: ``GridSearchCV``,
    ``RandomizedSearchCV``, ``cross_validate``, ``cross_val_score``, alone
    or in a dict of several metrics. For each test task the scorer splits the
    rows into support and query rows exactly as the estimator's few-shot
    ``score`` does (``shots``, a split seeded by ``random_state``), adapts
    the estimator on the support rows from its learned initialisation, and
    applies the metric to the query rows; the score is the mean over tasks.
    A scikit-learn scorer such as ``scoring="r2"`` would instead score the
    un-adapted initialisation.

    ``"r2"`` (or :func:`sklearn.metrics.r2_score`) on a regressor is the
    estimator's own few-shot ``score``: R² pooled over the query rows of all
    tasks, each task's rows measured about its own query mean, not a mean of
    per-task R² (unstable on small query sets). For classifiers each task's
    labels are its own: binary metrics need a ``pos_label`` present in every
    task, and macro averages (``"f1_macro"``) are usually what is meant.

    The scorer requests ``groups`` from metadata routing, so with
    ``sklearn.set_config(enable_metadata_routing=True)`` the task ids of
    long-format data reach it with no ``set_score_request`` call. Without
    routing, give tasks as a list of ``(X_i, y_i)`` or through the
    estimator's ``task_col``; long-format data without task ids raises a
    ``ValueError`` (which cross-validation reports as a warning and a NaN
    score). Each scorer of a dict adapts the estimator once on every task.

    Parameters
    ----------
    metric : str or callable
        A scikit-learn scorer name (``"r2"``, ``"neg_mean_squared_error"``,
        ``"accuracy"``, ``"f1_macro"``, ``"neg_log_loss"``, ...; see
        :func:`sklearn.metrics.get_scorer_names`) or a metric function
        ``metric(y_true, y_pred, **kwargs)``.
    greater_is_better : bool, default=True
        For a metric function: whether higher is better (if not, the score
        is negated, as :func:`sklearn.metrics.make_scorer` does).
    response_method : str or tuple of str, default="predict"
        For a metric function: the estimator's method whose output the
        metric takes (``"predict_proba"`` for probabilities; a tuple lists
        methods in order of preference).
    **kwargs
        For a metric function: further arguments to it.

    Returns
    -------
    scorer : FewShotScorer
        Callable as ``scorer(estimator, X, y=None, groups=None)``.

    See Also
    --------
    sklearn.metrics.make_scorer : the scikit-learn scorer of a metric.

    Examples
    --------
    >>> from sklearn.model_selection import KFold, cross_validate
    >>> from skmeta import MAMLRegressor, make_few_shot_scorer
    >>> from skmeta.datasets import SinusoidTasks
    >>> tasks = SinusoidTasks(n_samples=20).sample(30, random_state=0)
    >>> scoring = {"r2": make_few_shot_scorer("r2"),
    ...            "mse": make_few_shot_scorer("neg_mean_squared_error")}
    >>> maml = MAMLRegressor(max_iter=50, random_state=0)
    >>> result = cross_validate(maml, tasks, cv=KFold(3), scoring=scoring)
    >>> sorted(key for key in result if key.startswith("test_"))
    ['test_mse', 'test_r2']
    """
    if hasattr(metric, "set_score_request"):
        raise TypeError(
            "make_few_shot_scorer takes a metric function or a scorer name, not a "
            "scikit-learn scorer: pass the function the scorer was made from, with its "
            "greater_is_better, response_method and arguments."
        )
    if isinstance(metric, str):
        if greater_is_better is not True or response_method != "predict" or kwargs:
            raise ValueError(
                f"The scorer name {metric!r} fixes its sign, response method and arguments; "
                "greater_is_better, response_method and metric arguments are for a metric "
                "function."
            )
        return FewShotScorer(
            get_scorer(metric),
            pooled_r2=metric == "r2",
            description=f"make_few_shot_scorer({metric!r})",
        )
    if not callable(metric):
        raise TypeError(
            f"metric must be a scorer name or a metric function, got {type(metric).__name__}."
        )
    scorer = make_scorer(
        metric, greater_is_better=greater_is_better, response_method=response_method, **kwargs
    )
    pooled = metric is r2_score and greater_is_better and response_method == "predict"
    options = "".join(
        [
            "" if greater_is_better else ", greater_is_better=False",
            "" if response_method == "predict" else f", response_method={response_method!r}",
            *(f", {key}={value!r}" for key, value in kwargs.items()),
        ]
    )
    name = getattr(metric, "__name__", repr(metric))
    return FewShotScorer(
        scorer,
        pooled_r2=pooled and not kwargs,
        description=f"make_few_shot_scorer({name}{options})",
    )
