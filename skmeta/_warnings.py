"""Warnings of skmeta: the silent mistakes it makes loud."""


class UnadaptedPredictionWarning(UserWarning):
    """``predict`` on an estimator meta-trained on several tasks, before any ``adapt``.

    The predictions then come from the learned initialisation, which is
    meant to be adapted to a task, not used as it is; scikit-learn's named
    scorers (``scoring="r2"``) score exactly that. Call ``adapt`` first, or
    score with :func:`skmeta.make_few_shot_scorer` or the estimator's own
    ``score`` on tasks.
    """


class SingleTaskWarning(UserWarning):
    """A long-format ``fit`` without task ids on far more rows than a few-shot task.

    With ``groups=None`` and no ``task_col`` every row belongs to one task,
    which is rarely meant when there are many rows: the task ids were
    probably dropped on the way (metadata routing off in ``cross_validate``
    or ``GridSearchCV``).
    """
