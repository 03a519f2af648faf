"""Tasks inside skmeta: long arrays grouped by task (:class:`TaskSet`) and, for
the vectorised inner loop, zero-padded tensors on the device (:class:`PaddedTasks`)
from which support/query splits (:class:`MetaBatch`) are drawn without leaving
the device.

Tasks of one size are padded once (a reshape). Tasks of unequal sizes stay
long on the device (:class:`TaskRows`) and are padded per meta-batch, to the
largest task *of that batch*; in meta-training a task's query set is capped
at :data:`MAX_QUERY_ROWS` rows per step, so the cost of a step follows the
rows it uses, not the largest task of the task set.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

# Query rows a task contributes to one meta-training step, at most: a fresh random
# subset of its other rows at every step. Few-shot benchmarks use fewer (5-way
# 15-query: 75; 20-way 15-query: 300), so they are unaffected; a 10,000-row task
# among small ones no longer makes every step pay for its 10,000 rows. Scoring
# (and adapt) use every row.
MAX_QUERY_ROWS = 500


class MetaBatch(NamedTuple):
    """Support and query sets of a batch of tasks, zero-padded to equal size.

    Every tensor has the task as its leading dimension. ``w_*`` are 1.0 for
    real rows and 0.0 for padding, so losses are exact masked means; they are
    None when every row is real and the caller asked for no weights
    (``split(weights=False)``, meta-training on equal-size tasks): the losses
    are then plain means.
    """

    X_support: torch.Tensor  # (n_tasks, n_support_max, n_features)
    y_support: torch.Tensor  # (n_tasks, n_support_max)
    w_support: torch.Tensor | None  # (n_tasks, n_support_max)
    X_query: torch.Tensor  # (n_tasks, n_query_max, n_features)
    y_query: torch.Tensor  # (n_tasks, n_query_max)
    w_query: torch.Tensor | None  # (n_tasks, n_query_max)


def task_name(task_id):
    """A task id as a plain Python value, for messages."""
    return task_id.item() if isinstance(task_id, np.generic) else task_id


# shots="auto": support rows per task (regression) or per class (classification), at most.
AUTO_SHOTS = 10


def auto_quota(counts: np.ndarray, *, stratify: bool) -> np.ndarray:
    """Support rows per stratum for ``shots="auto"``, from the rows per stratum ``counts``.

    Regression (one stratum): ``min(10, n_rows - 1)`` rows, so at least one
    row is left for the query set. Classification: the same number ``k`` of
    rows from every class of the task, ``k = min(10, smallest class - 1)``,
    at least 1: when every class has 2 rows or more, every class keeps a
    query row; a class of a single row goes wholly to the support set (a
    task still needs one query row overall).
    """
    present = counts > 0
    if stratify:
        smallest = np.where(present, counts, np.iinfo(np.int64).max).min(axis=1, keepdims=True)
        k = np.clip(smallest - 1, 1, AUTO_SHOTS)
    else:
        k = np.clip(counts[:, :1] - 1, 1, AUTO_SHOTS)
    return np.where(present, k, 0).astype(np.int64)


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

    def equal_arrays(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(X, y)`` of shapes ``(n_tasks, n_rows, n_features)`` and ``(n_tasks, n_rows)``
        when every task has ``n_rows`` rows (views, no copy), else None."""
        sizes = self.sizes
        if not len(sizes) or not (sizes == sizes[0]).all():
            return None
        n_tasks, n_rows = self.n_tasks, int(sizes[0])
        return self.X.reshape(n_tasks, n_rows, -1), self.y.reshape(n_tasks, n_rows)

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
        if isinstance(shots, str):  # "auto": see auto_quota
            quota = auto_quota(counts, stratify=stratify)
        elif isinstance(shots, numbers.Integral):
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
        self,
        device: torch.device,
        shots: numbers.Real,
        *,
        stratify: bool,
        max_query: int | None = None,
    ) -> PaddedTasks:
        """Zero-padded tensors on ``device``, ready for support/query draws.

        ``max_query`` caps the query rows drawn per task (None: all the
        others). For tasks of unequal sizes, :meth:`to_rows` pads per batch instead.
        """
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
            n_query_max=_capped(int((sizes - n_support).max()), max_query),
            uniform=bool(
                not stratify and (sizes == width).all() and (n_support == n_support[0]).all()
            ),
        )

    def to_rows(self, device: torch.device, shots: numbers.Real, *, stratify: bool) -> TaskRows:
        """The rows as long tensors on ``device``, padded per batch of tasks by
        :meth:`TaskRows.padded`: memory proportional to the rows."""
        quota = self.support_quota(shots, stratify=stratify)
        sizes = self.sizes
        as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)
        strata = self.y if stratify else np.zeros(len(self.y), dtype=np.int64)
        return TaskRows(
            X=as_tensor(self.X),
            y=as_tensor(self.y),
            strata=as_tensor(strata.astype(np.int64, copy=False)),
            quota=as_tensor(quota),
            sizes=sizes,
            n_support=quota.sum(axis=1),
            offsets=np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64),
        )


def split_on_host(
    X: np.ndarray, y: np.ndarray, n_support: int, n_query: int, rng, device
) -> MetaBatch:
    """A random support/query split of tasks of one size held on the host, on ``device``.

    ``X`` and ``y`` have shapes ``(n_tasks, n_rows, n_features)`` and
    ``(n_tasks, n_rows)``. Each task's rows are put in a random order drawn
    from ``rng`` (a numpy ``RandomState``); the first ``n_support`` are its
    support set, the next ``n_query`` its query set (a fresh random subset
    of the others when ``n_query`` caps them). Only those rows are copied to
    ``device``. No row is padding, so the weights are None.
    """
    order = rng.random_sample(y.shape).argsort(axis=1)[:, : n_support + n_query]
    X = torch.from_numpy(np.take_along_axis(X, order[..., None], axis=1)).to(device)
    y = torch.from_numpy(np.take_along_axis(y, order, axis=1)).to(device)
    return _cut(X, y, n_support, None)


def _cut(X_rows, y_rows, n_support: int, w) -> MetaBatch:
    """The meta-batch of rows already in support-then-query order: the first
    ``n_support`` of each task are its support set, the others its query set
    (``w``, weights of the same rows, cut alike, or None)."""
    return MetaBatch(
        X_support=X_rows[:, :n_support],
        y_support=y_rows[:, :n_support],
        w_support=None if w is None else w[:, :n_support],
        X_query=X_rows[:, n_support:],
        y_query=y_rows[:, n_support:],
        w_query=None if w is None else w[:, n_support:],
    )


def _capped(n_query: int, max_query: int | None) -> int:
    return n_query if max_query is None else min(n_query, int(max_query))


@dataclass
class TaskRows:
    """Tasks as long tensors on one device, zero-padded per batch of tasks.

    ``X`` and ``y`` stay long; :meth:`padded` returns a :class:`PaddedTasks`
    for some tasks that is padded to the largest of *those* tasks and that
    gathers only the rows a split draws.
    """

    X: torch.Tensor  # (n_rows, n_features)
    y: torch.Tensor  # (n_rows,)
    strata: torch.Tensor  # (n_rows,): class code, or 0 for regression
    quota: torch.Tensor  # (n_tasks, n_strata + 1)
    sizes: np.ndarray  # (n_tasks,) rows per task, on the host
    n_support: np.ndarray  # (n_tasks,) support rows per task, on the host
    offsets: np.ndarray  # (n_tasks,) first row of each task, on the host

    @property
    def n_tasks(self) -> int:
        return len(self.sizes)

    def padded(self, tasks: np.ndarray, *, max_query: int | None = None) -> PaddedTasks:
        """``tasks`` (host indices) padded to the largest of them, for :meth:`PaddedTasks.split`.

        Only the sort keys of the split, ``(len(tasks), width)`` integers, are
        padded here; the features of the drawn rows are gathered by the split.
        """
        device = self.X.device
        sizes = self.sizes[tasks]
        width = int(sizes.max())
        index = torch.from_numpy(np.asarray(tasks, dtype=np.int64)).to(device)
        lengths = torch.from_numpy(sizes.astype(np.int64)).to(device)
        offsets = torch.from_numpy(self.offsets[tasks]).to(device)
        positions = torch.arange(width, device=device)
        real = positions < lengths[:, None]
        rows = torch.where(real, offsets[:, None] + positions, 0)
        pad_stratum = self.quota.shape[1] - 1
        n_support = self.n_support[tasks]
        return PaddedTasks(
            X=self.X,
            y=self.y,
            strata=torch.where(real, self.strata[rows], pad_stratum),
            quota=self.quota[index],
            lengths=lengths,
            n_support_max=int(n_support.max()),
            n_query_max=_capped(int((sizes - n_support).max()), max_query),
            offsets=offsets,
        )

    def batches(self, chunk: int):
        """Host index arrays of tasks of similar sizes, at most ``chunk`` tasks each.

        Tasks sorted by size are cut into runs whose largest task has at most
        twice the rows of the smallest (or ``chunk`` tasks), so padding at most
        doubles the rows of each run and one large task pads no small one.
        """
        order = np.argsort(self.sizes, kind="stable")
        start = 0
        while start < len(order):
            stop = start + 1
            smallest = self.sizes[order[start]]
            while (
                stop < len(order)
                and stop - start < chunk
                and self.sizes[order[stop]] <= 2 * smallest
            ):
                stop += 1
            yield order[start:stop]
            start = stop


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
    # Set by TaskRows.padded: X and y are then long (n_rows, ...) and a task's
    # row at position p is offsets[t] + p; only the drawn rows are gathered.
    offsets: torch.Tensor | None = None

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
        weights: bool = True,
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
        weights : bool, default=True
            False: when no row is padding (tasks of one size and one support
            size), return None as the weights rather than tensors of ones.
        """
        X, y, strata, quota, lengths = self.X, self.y, self.strata, self.quota, self.lengths
        if self.offsets is not None:
            if tasks is not None:
                raise ValueError("Select the tasks with TaskRows.padded.")
            return self._split_rows(generator, relabel_to)
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
            return self._split_uniform(X, y, generator, weights)
        order, n_support, support_pos, query_pos, injection = self._draw(
            strata, quota, generator, relabel_to
        )
        support_rows = order.gather(1, support_pos)
        query_rows = order.gather(1, query_pos.clamp(max=width - 1))
        batch_index = torch.arange(n_batch, device=device)[:, None]
        if injection is not None:
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

    def _draw(self, strata, quota, generator: torch.Generator, relabel_to: int | None):
        """The random part of a split, shared by padded tensors and long rows.

        Returns ``(order, n_support, support_pos, query_pos, injection)``: each
        task's rows in random order with ``quota`` rows of each stratum first
        and padding last, its support size, the positions in ``order`` of the
        support and query rows, and the relabelling injection (None without
        ``relabel_to``).
        """
        n_batch, width = strata.shape
        device = strata.device
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
        injection = None
        if relabel_to is not None:
            injection = torch.argsort(
                torch.rand((n_batch, relabel_to), generator=generator, device=device), dim=1
            )
        return order, n_support, support_pos, query_pos, injection

    def _split_rows(self, generator: torch.Generator, relabel_to: int | None) -> MetaBatch:
        """``split`` of tasks held as long rows: the same draw as for padded
        tensors, then only the support and query rows are gathered."""
        lengths, width = self.lengths, self.strata.shape[1]
        order, n_support, support_pos, query_pos, injection = self._draw(
            self.strata, self.quota, generator, relabel_to
        )

        def take(pos, real):
            rows = order.gather(1, pos.clamp(max=width - 1))
            rows = torch.where(real, self.offsets[:, None] + rows, 0)
            X = torch.where(real[..., None], self.X[rows], 0.0)
            y = torch.where(real, self.y[rows], 0)
            return X, (y if injection is None else injection.gather(1, y))

        w_support = support_pos < n_support
        w_query = query_pos < lengths[:, None]
        X_support, y_support = take(support_pos, w_support)
        X_query, y_query = take(query_pos, w_query)
        dtype = self.X.dtype
        return MetaBatch(
            X_support=X_support,
            y_support=y_support,
            w_support=w_support.to(dtype),
            X_query=X_query,
            y_query=y_query,
            w_query=w_query.to(dtype),
        )

    def _split_uniform(self, X, y, generator: torch.Generator, weights: bool) -> MetaBatch:
        """``split`` when every task has the same rows and support size and no padding.

        Draws the same keys and so the same split as the general path (whose
        sort keys are then ``0 + keys``), in a quarter of the tensor operations:
        the per-step cost of meta-batches from a fixed set of equal-size tasks.
        """
        n_batch, width = y.shape
        n_support, n_query = self.n_support_max, self.n_query_max
        keys = torch.rand((n_batch, width), generator=generator, device=X.device)
        rows = torch.argsort(keys, dim=1)[:, : n_support + n_query]
        X_rows = X.gather(1, rows.unsqueeze(-1).expand(-1, -1, X.shape[-1]))
        y_rows = y.gather(1, rows)
        w = None
        if weights:
            w = torch.ones((n_batch, n_support + n_query), dtype=X.dtype, device=X.device)
        return _cut(X_rows, y_rows, n_support, w)
