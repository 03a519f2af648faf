"""Readers: the forms users hold tasks in -> validated arrays and :class:`TaskSet`.

This module is the only place that parses task input. Every estimator method
that receives data (``fit``, ``partial_fit``, ``adapt``, ``predict``,
``score``) goes through a reader defined here, so the rules for shapes,
dtypes, missing values, feature names and task ids live in one place.

The forms accepted by ``fit``:

* long format: ``X`` 2-D (array or DataFrame), ``y`` 1-D and ``groups`` the
  task id of each row (``groups=None`` means the whole dataset is one task);
* ``task_col``: like long format, the task id being a column of the DataFrame;
* a list of ``(X_i, y_i)`` pairs, one per task;
* a task sampler: any object with ``sample(n_tasks, random_state)`` returning
  such a list, drawn afresh for every meta-batch.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, validate_data

from ._taskset import TaskSet, task_name


def is_sampler(X: Any) -> bool:
    """True for task samplers: objects with a ``sample`` method that hold no data.

    DataFrames also have ``sample``; they are data, not samplers.
    """
    data_types = (np.ndarray, pd.DataFrame, pd.Series, list, tuple)
    return callable(getattr(X, "sample", None)) and not isinstance(X, data_types)


def _ndim(value: Any) -> int:
    """``np.ndim``, or -1 for ragged nested lists."""
    try:
        return np.ndim(value)
    except ValueError:
        return -1


def is_task_list(X: Any, y: Any) -> bool:
    """True for a list of ``(X_i, y_i)`` pairs (``y`` must then be None)."""
    if y is not None or not isinstance(X, (list, tuple)) or len(X) == 0:
        return False
    first = X[0]
    # ndim >= 1, not == 2: a list of pairs with a 1-D X_0 is a malformed task list,
    # to be reported as such (naming the task), not as long-format input without y;
    # likewise a first task of 3 arrays (the reader says "expected an (X, y) pair").
    return (
        isinstance(first, (list, tuple))
        and len(first) >= 2
        and not isinstance(first[0], (numbers.Number, str))
        and _ndim(first[0]) >= 1
        and (len(first) == 2 or _ndim(first[1]) >= 1)
    )


def _check_not_tasks(X: Any, method: str) -> None:
    """``predict``-like methods take the rows of one task: refuse tasks and (X, y) pairs."""
    if is_task_list(X, None):
        looks_like_pair = len(X) == 2 and _ndim(X[0]) == 2 and _ndim(X[1]) == 1
        what = "an (X, y) pair" if looks_like_pair else "a list of (X_i, y_i) tasks"
        raise TypeError(
            f"{method} takes the rows of one task (a 2-D X), but got {what}. To predict a "
            "task, call adapt(X_support, y_support) and then predict(X_query); to score "
            "tasks few-shot, call score(tasks)."
        )
    if isinstance(X, (list, tuple)) and len(X) == 2 and _ndim(X[0]) == 2 and _ndim(X[1]) == 1:
        raise TypeError(
            f"{method} takes the rows of one task (a 2-D X), but got an (X, y) pair. "
            "Call adapt(X, y) to adapt to a task, then predict(X_query)."
        )


def has_tasks(X: Any, y: Any, groups: Any, task_col: str | None) -> bool:
    """True when the input names tasks (used by ``score`` to pick few-shot scoring)."""
    return (
        groups is not None
        or is_task_list(X, y)
        or is_sampler(X)
        or (task_col is not None and isinstance(X, pd.DataFrame) and task_col in X.columns)
    )


def _split_task_col(X: Any, groups: Any, task_col: str | None, *, required: bool):
    """Take the task-id column out of a DataFrame ``X``."""
    if task_col is None:
        return X, groups
    if not isinstance(X, pd.DataFrame) or task_col not in X.columns:
        if required:
            raise ValueError(
                f"task_col={task_col!r} needs X to be a pandas DataFrame with a "
                f"{task_col!r} column."
            )
        return X, groups
    if groups is not None:
        raise ValueError(f"Pass the task ids either as groups or as X[{task_col!r}], not both.")
    return X.drop(columns=[task_col]), X[task_col].to_numpy()


def _is_array_like(X: Any) -> bool:
    return hasattr(X, "__array__") or hasattr(X, "__len__") or hasattr(X, "shape")


def _first_non_finite_row(X, y, groups):
    """``(row, task id)`` of the first row with NaN/inf in X or y, or None.

    Used to make sklearn's "Input contains NaN" message name the task.
    """
    if groups is None:
        return None

    def as_float(a):
        if isinstance(a, (pd.DataFrame, pd.Series)):  # nullable dtypes: pd.NA -> NaN
            return a.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asarray(a, dtype=np.float64)

    try:
        X_arr = as_float(X)
        y_arr = as_float(y) if y is not None else None
        groups = np.asarray(groups)
    except (TypeError, ValueError):
        return None
    if X_arr.ndim != 2 or len(groups) != len(X_arr):
        return None
    bad = ~np.isfinite(X_arr).all(axis=1)
    if y_arr is not None and y_arr.shape == bad.shape:
        bad |= ~np.isfinite(y_arr)
    if not bad.any():
        return None
    row = int(np.flatnonzero(bad)[0])
    return row, task_name(groups[row])


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def to_float32(array: np.ndarray, what: str) -> np.ndarray:
    """``array`` as float32, refusing finite values that float32 cannot hold.

    The network computes in float32, where such values would become inf
    silently (and NaN a step later).
    """
    if array.dtype.itemsize > 4 and array.size:
        magnitude = np.abs(array).reshape(len(array), -1)
        if magnitude.max() > _FLOAT32_MAX:
            row = int(np.flatnonzero((magnitude > _FLOAT32_MAX).any(axis=1))[0])
            value = array.reshape(len(array), -1)[row][magnitude[row].argmax()]
            raise ValueError(
                f"{what} holds {value:.3g} (first at row "
                f"{row}), beyond the float32 range (+-{_FLOAT32_MAX:.3g}) the network computes "
                f"in; rescale {what} (e.g. with StandardScaler)."
            )
    return array.astype(np.float32, copy=False)


def _check_targets(y: np.ndarray, *, classification: bool):
    if classification:
        check_classification_targets(y)
        return y
    return to_float32(y, "y")


def _encode_per_task(y: np.ndarray, task_index: np.ndarray, n_tasks: int):
    """Task-local class codes: labels of task t become 0..n_classes_t - 1."""
    codes = np.empty(len(y), dtype=np.int64)
    classes = []
    bounds = np.searchsorted(task_index, np.arange(n_tasks + 1))
    for t in range(n_tasks):
        rows = slice(bounds[t], bounds[t + 1])
        labels, codes[rows] = np.unique(y[rows], return_inverse=True)
        classes.append(labels)
    return codes, classes


def _check_group_kinds(groups) -> np.ndarray:
    """``groups`` as an array, refusing ids that mix strings with other kinds.

    A list ``[0, "0"]`` would become the strings ``["0", "0"]`` (one task)
    while the same ids in an object array cannot be sorted: both are refused.
    """
    array = np.asarray(groups)
    if array.dtype.kind not in "OUS":
        return array  # numbers only
    if isinstance(groups, np.ndarray) and array.dtype.kind in "US":
        return array  # strings only
    as_objects = np.asarray(groups, dtype=object) if array.ndim == 1 else array.astype(object)
    kinds = {isinstance(g, str) for g in as_objects.reshape(-1) if not pd.isna(g)}
    if len(kinds) > 1:
        first = next(g for g in as_objects.reshape(-1) if isinstance(g, str))
        other = next(g for g in as_objects.reshape(-1) if not isinstance(g, str))
        raise ValueError(
            f"groups mixes strings (e.g. {first!r}) with other task ids (e.g. {other!r}); "
            "use one kind of id (all strings or all numbers)."
        )
    return array


def _group_rows(X, y, groups, *, classification: bool) -> TaskSet:
    """Build a TaskSet from validated long arrays and per-row task ids."""
    n_rows = len(y)
    if groups is None:
        task_index = np.zeros(n_rows, dtype=np.int64)
        task_ids = np.array([0])
    else:
        groups = _check_group_kinds(groups)
        if groups.ndim != 1 or len(groups) != n_rows:
            raise ValueError(
                f"groups must be 1-D with one task id per row of X: got shape {groups.shape} "
                f"for {n_rows} rows."
            )
        missing = pd.isna(groups)
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise ValueError(
                f"groups has a missing task id (NaN or None) at row {row}; "
                "every row needs a task id."
            )
        try:
            task_ids, task_index = np.unique(groups, return_inverse=True)
        except TypeError as exc:
            raise ValueError(f"groups holds task ids that cannot be compared: {exc}") from exc
        task_index = task_index.astype(np.int64)
    order = np.argsort(task_index, kind="stable")
    X, y, task_index = X[order], y[order], task_index[order]
    classes = None
    if classification:
        y, classes = _encode_per_task(y, task_index, len(task_ids))
    return TaskSet(X=X, y=y, task_index=task_index, task_ids=task_ids, classes=classes)


def read_tasks(
    estimator,
    X: Any,
    y: Any = None,
    groups: Any = None,
    *,
    reset: bool,
    classification: bool = False,
) -> TaskSet:
    """Read long-format, ``task_col`` or list-of-tasks input into a TaskSet.

    With ``reset=True`` (``fit``) the estimator's ``n_features_in_`` and
    ``feature_names_in_`` are set; otherwise the input is checked against them.
    Samplers are not accepted here: draw from them with :func:`draw_tasks`.
    """
    task_col = getattr(estimator, "task_col", None)
    if is_sampler(X):
        raise TypeError(
            "A task sampler cannot be used here; draw a fixed list of tasks from it "
            "with sampler.sample(n_tasks, random_state=...)."
        )
    if is_task_list(X, y):
        if groups is not None:
            raise ValueError("groups must be None when X is a list of (X_i, y_i) tasks.")
        return _read_task_list(estimator, X, reset=reset, classification=classification)
    if y is None and isinstance(X, (list, tuple)) and len(X) == 0:
        raise ValueError("Got an empty list of tasks.")
    if y is None and not _is_array_like(X):
        raise TypeError(
            "X must be array-like (with y), a list of (X_i, y_i) tasks, or a task sampler "
            f"with a sample(n_tasks, random_state) method; got {type(X).__name__}"
            f"{' whose sample is not callable' if hasattr(X, 'sample') else ''}."
        )
    # At fit, a task_col missing from X is a mistake (the rows would silently be one task).
    X, groups = _split_task_col(X, groups, task_col, required=reset and groups is None)
    try:
        X, y = validate_data(
            estimator,
            X,
            y,
            reset=reset,
            dtype=[np.float32, np.float64],
            y_numeric=not classification,
        )
    except ValueError as exc:
        where = _first_non_finite_row(X, y, groups)
        if where is None:
            raise
        raise ValueError(f"{exc} (first at row {where[0]}, task {where[1]!r})") from exc
    y = _check_targets(y, classification=classification)
    return _group_rows(to_float32(X, "X"), y, groups, classification=classification)


def _check_one_task(t, X_t, y_t, n_features, *, reset: bool, classification: bool):
    """Validate one ``(X_t, y_t)`` pair; errors name the task."""
    try:
        X_arr = check_array(X_t, dtype=[np.float32, np.float64], ensure_min_samples=1)
        y_arr = np.asarray(y_t)
        if y_arr.ndim != 1:
            raise ValueError(f"y must be 1-D, got shape {y_arr.shape}")
        if len(y_arr) != len(X_arr):
            raise ValueError(f"X has {len(X_arr)} rows but y has {len(y_arr)}")
        y_arr = check_array(
            y_arr,
            ensure_2d=False,
            dtype=None if classification else [np.float32, np.float64],
            ensure_min_samples=1,
        )
        y_arr = _check_targets(y_arr, classification=classification)
        X_arr = to_float32(X_arr, "X")
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"Task {t}: {exc}") from exc
    if n_features is not None and X_arr.shape[1] != n_features:
        raise ValueError(
            f"Task {t} has {X_arr.shape[1]} features, but "
            f"{'task 0 has' if reset else 'the estimator was fitted with'} {n_features}."
        )
    return X_arr, y_arr


def stack_equal_tasks(estimator, tasks) -> tuple[np.ndarray, np.ndarray] | None:
    """Regression tasks of one shape, stacked: the sampler's per-step fast path.

    When :func:`_plain_arrays` reads the tasks and they all have
    ``n_rows`` rows, and the estimator is fitted without feature names,
    returns float32 ``X`` of shape ``(n_tasks, n_rows, n_features)`` and
    ``y`` of shape ``(n_tasks, n_rows)``: the values :func:`_read_task_list`
    would read, without building a TaskSet. Returns None otherwise (the
    full checks then read the tasks, or name what is wrong).
    """
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None or hasattr(estimator, "feature_names_in_") or not tasks:
        return None
    plain = _plain_arrays(tasks, n_features, classification=False)
    if plain is None:
        return None
    X, sizes, y = plain
    if not (sizes == sizes[0]).all():
        return None
    return X.reshape(len(tasks), sizes[0], n_features), y.reshape(len(tasks), sizes[0])


def _plain_arrays(tasks, n_features, *, classification: bool):
    """Fast path for samplers: tasks that are pairs of ndarrays of numbers, all finite.

    Returns ``(X_all, sizes, y)``: float32 ``X_all`` of the tasks' rows in
    order, the rows of each task, and float32 ``y_all`` (regression) or the
    list of each task's labels as given (classification). ``X_i`` must be of
    shape ``(n_i, n_features)``, ``n_i >= 1``, ``y_i`` of shape ``(n_i,)``,
    and the common dtype of the ``X_i`` (of the ``y_i``, for regression) a
    float one: ints next to floats become floats, as the full checks convert
    them. Returns None when anything needs the full checks (which then also
    produce the error message naming the task).
    """
    # The checks run on the sets of types and shapes (one element each for the
    # usual sampler), not task by task, then one concatenation: this runs at
    # every outer step.
    if not {type(pair) for pair in tasks} <= {tuple, list} or {len(p) for p in tasks} != {2}:
        return None
    X_parts, y_parts = zip(*tasks)
    if {type(part) for part in X_parts + y_parts} != {np.ndarray}:
        return None
    X_shapes, y_shapes = {part.shape for part in X_parts}, {part.shape for part in y_parts}
    if any(len(shape) != 2 or shape[1] != n_features or shape[0] == 0 for shape in X_shapes):
        return None
    if any(len(shape) != 1 for shape in y_shapes):
        return None
    if len(X_shapes) == 1 and len(y_shapes) == 1:
        (X_shape,), (y_shape,) = X_shapes, y_shapes
        if X_shape[0] != y_shape[0]:
            return None
        sizes = np.full(len(tasks), X_shape[0], dtype=np.int64)
    else:
        sizes = np.array([len(part) for part in X_parts], dtype=np.int64)
        if not np.array_equal(sizes, [len(part) for part in y_parts]):
            return None
    try:
        X_all = np.concatenate(X_parts)
        y_all = None if classification else np.concatenate(y_parts)
    except (TypeError, ValueError):  # no common dtype (numbers and strings, say)
        return None
    if X_all.dtype.kind != "f" or (y_all is not None and y_all.dtype.kind != "f"):
        return None
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused just below
        X_all = X_all.astype(np.float32, copy=False)
        y_all = list(y_parts) if y_all is None else y_all.astype(np.float32, copy=False)
    if not np.isfinite(X_all).all():
        return None
    if not classification and not np.isfinite(y_all).all():
        return None  # NaN, inf, or beyond float32: the full checks name it
    return X_all, sizes, y_all


def _check_same_columns(frames: list) -> None:
    """DataFrame tasks must share their columns (pd.concat would fill the gaps with NaN)."""
    columns = list(frames[0].columns)
    for t, frame in enumerate(frames[1:], start=1):
        if list(frame.columns) != columns:
            raise ValueError(
                f"Task {t} has columns {list(frame.columns)}, but task 0 has {columns}; "
                "every DataFrame task needs the same columns in the same order."
            )


def _ravel_column_targets(tasks) -> list:
    """The tasks with every column-vector ``y_i`` (shape ``(n, 1)``) raveled to 1-D.

    scikit-learn's convention, as for long-format ``y``: one
    ``DataConversionWarning`` (per call, naming the tasks), then the targets
    are used as 1-D.
    """
    raveled, out = [], []
    for t, pair in enumerate(tasks):
        if isinstance(pair, (list, tuple)) and len(pair) == 2:
            try:
                shape = np.shape(pair[1])
            except ValueError:  # ragged: reported by the checks
                shape = ()
            if len(shape) == 2 and shape[1] == 1:
                pair = (pair[0], np.asarray(pair[1]).reshape(-1))
                raveled.append(t)
        out.append(pair)
    if raveled:
        which = (
            "every task"
            if len(raveled) == len(out)
            else f"task{'s' if len(raveled) > 1 else ''} {raveled[:5]}"
            + ("..." if len(raveled) > 5 else "")
        )
        warnings.warn(
            f"A column-vector y was passed for {which} when a 1d array was expected; "
            "y of shape (n_samples, 1) is used as (n_samples,). Pass 1-D targets, for "
            "example with y.ravel().",
            DataConversionWarning,
            stacklevel=4,
        )
    return out


def _read_task_list(estimator, tasks, *, reset: bool, classification: bool) -> TaskSet:
    """Read a list of ``(X_i, y_i)`` pairs; errors name the offending task."""
    tasks = _ravel_column_targets(tasks)
    plain = None
    if not reset and not hasattr(estimator, "feature_names_in_"):
        plain = _plain_arrays(tasks, estimator.n_features_in_, classification=classification)
    if plain is not None:
        X_all, sizes, y_read = plain
        y_parts, y_all = (y_read, None) if classification else (None, y_read)
    else:
        for t, pair in enumerate(tasks):
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                raise ValueError(f"Task {t}: expected an (X, y) pair, got {type(pair).__name__}.")
        y_all = None
        n_features = None if reset else getattr(estimator, "n_features_in_", None)
        X_parts, y_parts = [], []
        for t, (X_t, y_t) in enumerate(tasks):
            X_arr, y_arr = _check_one_task(
                t, X_t, y_t, n_features, reset=reset, classification=classification
            )
            n_features = X_arr.shape[1]
            X_parts.append(X_t if isinstance(X_t, pd.DataFrame) else X_arr)
            y_parts.append(y_arr)
        if all(isinstance(part, pd.DataFrame) for part in X_parts):
            _check_same_columns(X_parts)
            X_all = pd.concat(X_parts, ignore_index=True)
        else:
            X_all = np.concatenate([np.asarray(part) for part in X_parts])
        # Feature-count and feature-name bookkeeping: the values were checked above.
        X_all = validate_data(estimator, X_all, reset=reset, dtype=[np.float32, np.float64])
        sizes = [len(part) for part in y_parts]
    task_index = np.repeat(np.arange(len(tasks), dtype=np.int64), sizes)
    classes = None
    if classification:
        classes, codes = [], []
        for part in y_parts:
            labels, part_codes = np.unique(part, return_inverse=True)
            classes.append(labels)
            codes.append(part_codes)
        y_all = np.concatenate(codes).astype(np.int64)
    else:
        y_all = np.concatenate(y_parts) if y_all is None else y_all
        y_all = y_all.astype(np.float32, copy=False)
    return TaskSet(
        X=X_all.astype(np.float32, copy=False),
        y=y_all,
        task_index=task_index,
        task_ids=np.arange(len(tasks)),
        classes=classes,
    )


def _sample_call(sampler, n_tasks: int) -> str:
    return f"{type(sampler).__name__}.sample({n_tasks}, random_state)"


def sample_tasks(sampler, n_tasks: int, rng) -> list | tuple:
    """``sampler.sample(n_tasks, rng)``, checked to be a list of ``n_tasks`` tasks."""
    tasks = sampler.sample(n_tasks, random_state=rng)
    if not isinstance(tasks, (list, tuple)) or len(tasks) != n_tasks:
        raise ValueError(
            f"{_sample_call(sampler, n_tasks)} must return a list of {n_tasks} (X, y) tasks; "
            f"got {type(tasks).__name__}"
            f"{f' of length {len(tasks)}' if isinstance(tasks, (list, tuple)) else ''}."
        )
    return tasks


def read_sampled_tasks(estimator, sampler, tasks, *, reset: bool, classification: bool):
    """Read the tasks a sampler returned into a TaskSet; errors name the sampler and task."""
    try:
        return _read_task_list(estimator, tasks, reset=reset, classification=classification)
    except (ValueError, TypeError) as exc:
        call = _sample_call(sampler, len(tasks))
        raise type(exc)(f"{call} returned an invalid task: {exc}") from exc


def draw_tasks(estimator, sampler, n_tasks: int, rng, *, reset: bool, classification: bool):
    """Draw ``n_tasks`` tasks from a sampler and read them into a TaskSet."""
    tasks = sample_tasks(sampler, n_tasks, rng)
    return read_sampled_tasks(estimator, sampler, tasks, reset=reset, classification=classification)


def read_task(estimator, X: Any, y: Any, *, classification: bool = False):
    """Read one task's ``(X, y)`` for ``adapt``: checked against the fitted features.

    Returns ``(X, y, classes)``: float32 ``X``, targets (class codes for
    classification) and the task's sorted labels (None for regression).
    """
    X, _ = _split_task_col(X, None, getattr(estimator, "task_col", None), required=False)
    X, y = validate_data(
        estimator, X, y, reset=False, dtype=[np.float32, np.float64], y_numeric=not classification
    )
    y = _check_targets(y, classification=classification)
    classes = None
    if classification:
        classes, y = np.unique(y, return_inverse=True)
        y = y.astype(np.int64)
    return to_float32(X, "X"), y, classes


def read_features(estimator, X: Any) -> np.ndarray:
    """Read ``X`` for ``predict``: 2-D, finite, same features as at ``fit``."""
    _check_not_tasks(X, "predict")
    X, _ = _split_task_col(X, None, getattr(estimator, "task_col", None), required=False)
    X = validate_data(estimator, X, reset=False, dtype=[np.float32, np.float64])
    return to_float32(X, "X")
