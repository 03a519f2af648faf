"""Task input: the forms users hold tasks in, read into one :class:`TaskSet`.

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

Inside, tasks are held as long arrays grouped by task (:class:`TaskSet`) and,
for the vectorised inner loop, as zero-padded tensors on the device
(:class:`PaddedTasks`) from which support/query splits are drawn without
leaving the device.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, validate_data


class MetaBatch(NamedTuple):
    """Support and query sets of a batch of tasks, zero-padded to equal size.

    Every tensor has the task as its leading dimension. ``w_*`` are 1.0 for
    real rows and 0.0 for padding, so losses are exact masked means.
    """

    X_support: torch.Tensor  # (n_tasks, n_support_max, n_features)
    y_support: torch.Tensor  # (n_tasks, n_support_max)
    w_support: torch.Tensor  # (n_tasks, n_support_max)
    X_query: torch.Tensor  # (n_tasks, n_query_max, n_features)
    y_query: torch.Tensor  # (n_tasks, n_query_max)
    w_query: torch.Tensor  # (n_tasks, n_query_max)


def task_name(task_id):
    """A task id as a plain Python value, for messages."""
    return task_id.item() if isinstance(task_id, np.generic) else task_id


@dataclass
class TaskSet:
    """Tasks as long arrays, rows grouped by task.

    Attributes
    ----------
    X : ndarray of shape (n_rows, n_features), float32
    y : ndarray of shape (n_rows,)
        float32 targets (regression) or int64 task-local class codes
        ``0..n_classes_i - 1`` (classification).
    task_index : ndarray of shape (n_rows,), int64
        Task of each row, non-decreasing, in ``[0, n_tasks)``.
    task_ids : ndarray of shape (n_tasks,)
        The user's id of each task (group value, list position or draw index).
    classes : list of ndarray or None
        Classification only: ``classes[t][c]`` is the original label of code
        ``c`` in task ``t``.
    """

    X: np.ndarray
    y: np.ndarray
    task_index: np.ndarray
    task_ids: np.ndarray
    classes: list[np.ndarray] | None = None

    @property
    def n_tasks(self) -> int:
        return len(self.task_ids)

    @property
    def sizes(self) -> np.ndarray:
        """Number of rows of each task."""
        return np.bincount(self.task_index, minlength=self.n_tasks)

    def task(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows of task ``t`` as ``(X_t, y_t)`` (class codes for classification)."""
        start, stop = np.searchsorted(self.task_index, [t, t + 1])
        return self.X[start:stop], self.y[start:stop]

    def support_quota(self, shots: numbers.Real, *, stratify: bool) -> np.ndarray:
        """Rows of each stratum that go to the support set, per task.

        Returns an int64 array of shape ``(n_tasks, n_strata + 1)``; the strata
        are the classes (``stratify=True``, ``shots`` per class) or the whole
        task (one stratum); the last column, for padding rows, is zero.
        Raises ``ValueError`` naming the task when a task is too small to leave
        at least one query row.
        """
        if stratify:
            n_strata = int(self.y.max()) + 1 if len(self.y) else 1
            flat = self.task_index * (n_strata + 1) + self.y
            counts = np.bincount(flat, minlength=self.n_tasks * (n_strata + 1))
            counts = counts.reshape(self.n_tasks, n_strata + 1)
        else:
            counts = np.zeros((self.n_tasks, 2), dtype=np.int64)
            counts[:, 0] = self.sizes
        if isinstance(shots, numbers.Integral):
            quota = np.where(counts > 0, int(shots), 0)
        else:
            quota = np.where(counts > 0, np.maximum(1, np.floor(shots * counts)), 0)
            quota = quota.astype(np.int64)
        sizes = counts.sum(axis=1)
        short = (quota > counts).any(axis=1) | (quota.sum(axis=1) >= sizes)
        if short.any():
            t = int(np.flatnonzero(short)[0])
            per_class = " per class (with every class that often)" if stratify else ""
            raise ValueError(
                f"Task {task_name(self.task_ids[t])!r} has n_samples={sizes[t]}, too few for "
                f"shots={shots!r}: it needs {int(quota[t].sum())} support rows{per_class} plus "
                "at least one query row. Use fewer shots or larger tasks."
            )
        return quota

    def to_padded(
        self, device: torch.device, shots: numbers.Real, *, stratify: bool
    ) -> PaddedTasks:
        """Zero-padded tensors on ``device``, ready for support/query draws."""
        quota = self.support_quota(shots, stratify=stratify)
        sizes = self.sizes
        n_tasks, width = self.n_tasks, int(sizes.max())

        if (sizes == width).all():  # equal sizes (the usual sampler case): a reshape, no scatter
            X = self.X.reshape(n_tasks, width, -1)
            y = self.y.reshape(n_tasks, width)
            strata = y if stratify else np.zeros((n_tasks, width), dtype=np.int64)
        else:
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            position = np.arange(len(self.y)) - offsets[self.task_index]
            X = np.zeros((n_tasks, width, self.X.shape[1]), dtype=np.float32)
            X[self.task_index, position] = self.X
            y = np.zeros((n_tasks, width), dtype=self.y.dtype)
            y[self.task_index, position] = self.y
            strata = np.full((n_tasks, width), quota.shape[1] - 1, dtype=np.int64)
            strata[self.task_index, position] = self.y if stratify else 0

        n_support = quota.sum(axis=1)
        as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)
        return PaddedTasks(
            X=as_tensor(X),
            y=as_tensor(y),
            strata=as_tensor(strata),
            quota=as_tensor(quota),
            lengths=as_tensor(sizes.astype(np.int64)),
            n_support_max=int(n_support.max()),
            n_query_max=int((sizes - n_support).max()),
            uniform=bool(
                not stratify and (sizes == width).all() and (n_support == n_support[0]).all()
            ),
        )


@dataclass
class PaddedTasks:
    """Tasks as zero-padded tensors on one device, for vectorised batches.

    Unequal task sizes are handled by masking: every task is padded to the
    largest one, and :meth:`split` returns weights that are zero on padding.
    """

    X: torch.Tensor  # (n_tasks, width, n_features)
    y: torch.Tensor  # (n_tasks, width)
    strata: torch.Tensor  # (n_tasks, width): class code, 0 for regression, pad_stratum on padding
    quota: torch.Tensor  # (n_tasks, n_strata + 1): support rows per stratum
    lengths: torch.Tensor  # (n_tasks,)
    n_support_max: int
    n_query_max: int
    # One stratum, no padding, the same support size everywhere (known on the host
    # when the tasks are padded): split is then a random permutation per task.
    uniform: bool = False

    @property
    def n_tasks(self) -> int:
        return self.X.shape[0]

    @staticmethod
    def _stratified_order(strata, quota, keys, positions):
        """Row order putting ``quota`` random rows of each stratum first, then
        the other real rows, then padding; random within each group."""
        by_stratum = torch.argsort(strata.to(keys.dtype) + keys, dim=1)
        sorted_strata = strata.gather(1, by_stratum)
        rank_in_stratum = positions - torch.searchsorted(sorted_strata, sorted_strata)
        in_support = rank_in_stratum < quota.gather(1, sorted_strata)
        is_padding = sorted_strata == quota.shape[1] - 1
        group = torch.where(in_support, 0.0, torch.where(is_padding, 2.0, 1.0))
        return by_stratum.gather(1, torch.argsort(group + keys.gather(1, by_stratum), dim=1))

    def split(
        self,
        generator: torch.Generator,
        tasks: torch.Tensor | None = None,
        *,
        relabel_to: int | None = None,
    ) -> MetaBatch:
        """Draw a random support/query split of some tasks, on the device.

        Parameters
        ----------
        generator : torch.Generator
            On the tensors' device; the only source of randomness.
        tasks : LongTensor of shape (n_batch,), optional
            Which tasks to split (all by default).
        relabel_to : int, optional
            Classification during meta-training: map each task's class codes
            through a fresh random injection into ``0..relabel_to - 1``, so
            that output units carry no class identity across tasks.
        """
        X, y, strata, quota, lengths = self.X, self.y, self.strata, self.quota, self.lengths
        if tasks is not None:
            X, y, strata, quota, lengths = (
                X[tasks],
                y[tasks],
                strata[tasks],
                quota[tasks],
                lengths[tasks],
            )
        n_batch, width = strata.shape
        device = X.device
        if self.uniform and relabel_to is None:
            return self._split_uniform(X, y, generator)
        positions = torch.arange(width, device=device)

        keys = torch.rand((n_batch, width), generator=generator, device=device)
        if quota.shape[1] == 2:
            # One stratum (regression): a random order of the real rows, padding
            # last; the first n_support rows are the support set.
            order = torch.argsort(strata.to(keys.dtype) + keys, dim=1)
        else:
            order = self._stratified_order(strata, quota, keys, positions)
        n_support = quota.sum(dim=1, keepdim=True)
        support_pos = positions[: self.n_support_max].expand(n_batch, -1)
        query_pos = n_support + torch.arange(self.n_query_max, device=device)
        support_rows = order.gather(1, support_pos)
        query_rows = order.gather(1, query_pos.clamp(max=width - 1))
        batch_index = torch.arange(n_batch, device=device)[:, None]

        if relabel_to is not None:
            injection = torch.argsort(
                torch.rand((n_batch, relabel_to), generator=generator, device=device), dim=1
            )
            y = injection.gather(1, y)
        dtype = X.dtype
        return MetaBatch(
            X_support=X[batch_index, support_rows],
            y_support=y[batch_index, support_rows],
            w_support=(support_pos < n_support).to(dtype),
            X_query=X[batch_index, query_rows],
            y_query=y[batch_index, query_rows],
            w_query=(query_pos < lengths[:, None]).to(dtype),
        )

    def _split_uniform(self, X, y, generator: torch.Generator) -> MetaBatch:
        """``split`` when every task has the same rows and support size and no padding.

        Draws the same keys and so the same split as the general path (whose
        sort keys are then ``0 + keys``), in a quarter of the tensor operations:
        the per-step cost of sampled meta-batches.
        """
        n_batch, width = y.shape
        n_support, n_query = self.n_support_max, self.n_query_max
        keys = torch.rand((n_batch, width), generator=generator, device=X.device)
        rows = torch.argsort(keys, dim=1)[:, : n_support + n_query]
        X_rows = X.gather(1, rows.unsqueeze(-1).expand(-1, -1, X.shape[-1]))
        y_rows = y.gather(1, rows)
        w = torch.ones((n_batch, n_support + n_query), dtype=X.dtype, device=X.device)
        return MetaBatch(
            X_support=X_rows[:, :n_support],
            y_support=y_rows[:, :n_support],
            w_support=w[:, :n_support],
            X_query=X_rows[:, n_support:],
            y_query=y_rows[:, n_support:],
            w_query=w[:, n_support:],
        )


# --------------------------------------------------------------------------
# Readers: user input -> validated arrays / TaskSet
# --------------------------------------------------------------------------


def is_sampler(X: Any) -> bool:
    """True for task samplers: objects with a ``sample`` method that hold no data.

    DataFrames also have ``sample``; they are data, not samplers.
    """
    data_types = (np.ndarray, pd.DataFrame, pd.Series, list, tuple)
    return callable(getattr(X, "sample", None)) and not isinstance(X, data_types)


def is_task_list(X: Any, y: Any) -> bool:
    """True for a list of ``(X_i, y_i)`` pairs (``y`` must then be None)."""
    if y is not None or not isinstance(X, (list, tuple)) or len(X) == 0:
        return False
    first = X[0]
    # ndim >= 1, not == 2: a list of pairs with a 1-D X_0 is a malformed task list,
    # to be reported as such (naming the task), not as long-format input without y.
    return (
        isinstance(first, (list, tuple))
        and len(first) == 2
        and not isinstance(first[0], (numbers.Number, str))
        and np.ndim(first[0]) >= 1
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
    try:
        X_arr = np.asarray(X, dtype=np.float64)
        y_arr = np.asarray(y, dtype=np.float64) if y is not None else None
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


def _check_targets(y: np.ndarray, *, classification: bool):
    if classification:
        check_classification_targets(y)
        return y
    return y.astype(np.float32, copy=False)


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


def _group_rows(X, y, groups, *, classification: bool) -> TaskSet:
    """Build a TaskSet from validated long arrays and per-row task ids."""
    n_rows = len(y)
    if groups is None:
        task_index = np.zeros(n_rows, dtype=np.int64)
        task_ids = np.array([0])
    else:
        groups = np.asarray(groups)
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
    return _group_rows(X.astype(np.float32, copy=False), y, groups, classification=classification)


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
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"Task {t}: {exc}") from exc
    if n_features is not None and X_arr.shape[1] != n_features:
        raise ValueError(
            f"Task {t} has {X_arr.shape[1]} features, but "
            f"{'task 0 has' if reset else 'the estimator was fitted with'} {n_features}."
        )
    return X_arr, y_arr


def _stack_plain_arrays(tasks, n_features, *, classification: bool):
    """Fast path for samplers: float ndarrays of the right shapes, all finite.

    Returns ``(X_all, y_parts, y_all)`` (``y_all`` None for classification)
    or None when anything needs the full checks (which then also produce the
    error message naming the task).
    """
    X_parts, y_parts = [], []
    for pair in tasks:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            return None
        X_t, y_t = pair
        if not (isinstance(X_t, np.ndarray) and isinstance(y_t, np.ndarray)):
            return None
        if X_t.ndim != 2 or X_t.shape[1] != n_features or X_t.dtype.kind != "f":
            return None
        if y_t.ndim != 1 or len(y_t) != len(X_t) or len(y_t) == 0:
            return None
        if not classification and y_t.dtype.kind != "f":
            return None
        X_parts.append(X_t)
        y_parts.append(y_t)
    X_all = np.concatenate(X_parts).astype(np.float32, copy=False)
    if not np.isfinite(X_all).all():
        return None
    y_all = None if classification else np.concatenate(y_parts)
    if y_all is not None and not np.isfinite(y_all).all():
        return None
    return X_all, y_parts, y_all


def _check_same_columns(frames: list) -> None:
    """DataFrame tasks must share their columns (pd.concat would fill the gaps with NaN)."""
    columns = list(frames[0].columns)
    for t, frame in enumerate(frames[1:], start=1):
        if list(frame.columns) != columns:
            raise ValueError(
                f"Task {t} has columns {list(frame.columns)}, but task 0 has {columns}; "
                "every DataFrame task needs the same columns in the same order."
            )


def _read_task_list(estimator, tasks, *, reset: bool, classification: bool) -> TaskSet:
    """Read a list of ``(X_i, y_i)`` pairs; errors name the offending task."""
    stacked = None
    if not reset and not hasattr(estimator, "feature_names_in_"):
        stacked = _stack_plain_arrays(
            tasks, estimator.n_features_in_, classification=classification
        )
    if stacked is not None:
        X_all, y_parts, y_all = stacked
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
    task_index = np.repeat(np.arange(len(tasks), dtype=np.int64), [len(p) for p in y_parts])
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


def draw_tasks(estimator, sampler, n_tasks: int, rng, *, reset: bool, classification: bool):
    """Draw ``n_tasks`` tasks from a sampler and read them into a TaskSet."""
    tasks = sampler.sample(n_tasks, random_state=rng)
    call = f"{type(sampler).__name__}.sample({n_tasks}, random_state)"
    if not isinstance(tasks, (list, tuple)) or len(tasks) != n_tasks:
        raise ValueError(
            f"{call} must return a list of {n_tasks} (X, y) tasks; got {type(tasks).__name__}"
            f"{f' of length {len(tasks)}' if isinstance(tasks, (list, tuple)) else ''}."
        )
    try:
        return _read_task_list(estimator, tasks, reset=reset, classification=classification)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{call} returned an invalid task: {exc}") from exc


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
    return X.astype(np.float32, copy=False), y, classes


def read_features(estimator, X: Any) -> np.ndarray:
    """Read ``X`` for ``predict``: 2-D, finite, same features as at ``fit``."""
    X, _ = _split_task_col(X, None, getattr(estimator, "task_col", None), required=False)
    X = validate_data(estimator, X, reset=False, dtype=[np.float32, np.float64])
    return X.astype(np.float32, copy=False)


# --------------------------------------------------------------------------
# Sources of meta-batches during meta-training
# --------------------------------------------------------------------------


class FixedTasks:
    """Meta-batches drawn from a fixed TaskSet held on the device."""

    def __init__(self, taskset: TaskSet, device, shots, *, stratify: bool):
        self.taskset = taskset
        self.padded = taskset.to_padded(device, shots, stratify=stratify)

    def next_batch(self, n_tasks: int, generator, rng, *, relabel_to=None) -> MetaBatch:
        n_total = self.padded.n_tasks
        tasks = None
        if n_tasks < n_total:
            tasks = torch.randperm(n_total, generator=generator, device=generator.device)
            tasks = tasks[:n_tasks]
        return self.padded.split(generator, tasks, relabel_to=relabel_to)


class SampledTasks:
    """Meta-batches of fresh tasks drawn from a sampler at every step.

    ``first`` is a batch already drawn (at ``fit``, to learn the feature
    count); it is used before any new draw. ``check``, if given, is called
    with each newly drawn TaskSet.
    """

    def __init__(
        self, estimator, sampler, device, shots, *, stratify, classification, first=None, check=None
    ):
        self.estimator, self.sampler = estimator, sampler
        self.device, self.shots = device, shots
        self.stratify, self.classification = stratify, classification
        self.pending = first
        self.check = check  # called on every new draw, e.g. to check class counts
        # (n_tasks, rows per task) -> padded tasks of that shape, whose quota, strata and
        # lengths (checked once by to_padded) are reused for equal-size draws.
        self._layouts: dict[tuple[int, int], PaddedTasks] = {}

    def next_batch(self, n_tasks: int, generator, rng, *, relabel_to=None) -> MetaBatch:
        taskset, self.pending = self.pending, None
        if taskset is None or taskset.n_tasks != n_tasks:
            taskset = draw_tasks(
                self.estimator,
                self.sampler,
                n_tasks,
                rng,
                reset=False,
                classification=self.classification,
            )
            if self.check is not None:
                self.check(taskset)
        return self._pad(taskset).split(generator, relabel_to=relabel_to)

    def _pad(self, taskset: TaskSet) -> PaddedTasks:
        """``taskset.to_padded``, reusing the layout of earlier draws of the same shape.

        Samplers usually return tasks of one size: the support quota and
        padding of a draw then depend on its shape alone, so only X and y
        are new.
        """
        sizes = taskset.sizes
        width = int(sizes[0]) if len(sizes) else 0
        key, layout = (taskset.n_tasks, width), None
        if not self.stratify and (sizes == width).all():
            layout = self._layouts.get(key)
        if layout is None:
            padded = taskset.to_padded(self.device, self.shots, stratify=self.stratify)
            if padded.uniform:
                self._layouts[key] = padded
            return padded
        as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
        return replace(
            layout,
            X=as_tensor(taskset.X.reshape(taskset.n_tasks, width, -1)),
            y=as_tensor(taskset.y.reshape(taskset.n_tasks, width)),
        )
