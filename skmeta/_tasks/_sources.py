"""Sources of meta-batches during meta-training: a fixed task set, or a sampler."""

from __future__ import annotations

import numpy as np
import torch

from ._readers import read_sampled_tasks, sample_tasks, stack_equal_tasks
from ._taskset import MAX_QUERY_ROWS, MetaBatch, PaddedTasks, TaskSet, split_on_host


class FixedTasks:
    """Meta-batches drawn from a fixed TaskSet held on the device.

    Tasks of one size are padded once (a reshape of the rows); tasks of
    unequal sizes stay long and each meta-batch is padded to its own largest
    task, with at most :data:`MAX_QUERY_ROWS` query rows per task.
    """

    def __init__(self, taskset: TaskSet, device, shots, *, stratify: bool):
        self.taskset = taskset
        sizes = taskset.sizes
        self.padded = self.rows = None
        if (sizes == sizes[0]).all():
            self.padded = taskset.to_padded(
                device, shots, stratify=stratify, max_query=MAX_QUERY_ROWS
            )
        else:
            self.rows = taskset.to_rows(device, shots, stratify=stratify)

    @property
    def n_tasks(self) -> int:
        return self.taskset.n_tasks

    def next_batch(self, n_tasks: int, generator, rng, *, relabel_to=None) -> MetaBatch:
        n_total = self.n_tasks
        if self.padded is not None:
            tasks = None
            if n_tasks < n_total:
                tasks = torch.randperm(n_total, generator=generator, device=generator.device)
                tasks = tasks[:n_tasks]
            return self.padded.split(generator, tasks, relabel_to=relabel_to, weights=False)
        # Long rows: padding to the batch's largest task needs its tasks' sizes on the
        # host, so the tasks are drawn there (from rng): no copy from the device per step.
        tasks = np.arange(n_total)
        if n_tasks < n_total:
            tasks = rng.choice(n_total, n_tasks, replace=False)
        padded = self.rows.padded(tasks, max_query=MAX_QUERY_ROWS)
        return padded.split(generator, relabel_to=relabel_to)


class SampledTasks:
    """Meta-batches of fresh tasks drawn from a sampler at every step.

    ``first`` is a batch already drawn (at ``fit``, to learn the feature
    count); it is used before any new draw. ``check``, if given, is called
    with each TaskSet read by the full checks.

    Regression tasks of one size, the usual draw, are split on the host
    (:func:`split_on_host`): their rows arrive there, and numpy splits a
    small meta-batch in fewer and cheaper operations than torch does once
    the rows are on the device. Later draws of float arrays skip building a
    TaskSet (:func:`stack_equal_tasks`); they need none of ``check``'s
    checks, which are of classes and of padding (tasks of one size and one
    support size are not padded).
    """

    def __init__(
        self, estimator, sampler, device, shots, *, stratify, classification, first=None, check=None
    ):
        self.estimator, self.sampler = estimator, sampler
        self.device, self.shots = device, shots
        self.stratify, self.classification = stratify, classification
        self.pending = first
        self.check = check  # called on every new draw, e.g. to check class counts
        # (n_tasks, rows per task) -> (support rows, query rows) of regression tasks of
        # that shape, found (and checked) once by TaskSet.support_quota.
        self._split_sizes: dict[tuple[int, int], tuple[int, int]] = {}

    def next_batch(self, n_tasks: int, generator, rng, *, relabel_to=None) -> MetaBatch:
        taskset, self.pending = self.pending, None
        arrays = None
        if taskset is None or taskset.n_tasks != n_tasks:
            tasks = sample_tasks(self.sampler, n_tasks, rng)
            if not self.classification:
                arrays = stack_equal_tasks(self.estimator, tasks)
            if arrays is None:
                taskset = read_sampled_tasks(
                    self.estimator,
                    self.sampler,
                    tasks,
                    reset=False,
                    classification=self.classification,
                )
                if self.check is not None:
                    self.check(taskset)
        if arrays is None and not self.classification:
            arrays = taskset.equal_arrays()
        if arrays is not None:
            n_support, n_query = self._sizes(*arrays)
            return split_on_host(*arrays, n_support, n_query, rng, self.device)
        return self._pad(taskset).split(generator, relabel_to=relabel_to, weights=False)

    def _sizes(self, X: np.ndarray, y: np.ndarray) -> tuple[int, int]:
        """Support and query rows of each regression task of a draw of this shape."""
        sizes = self._split_sizes.get(y.shape)
        if sizes is None:
            n_rows = y.shape[1]
            # Every task has the same quota: the first one's, which raises (naming the
            # task) when the tasks are too small for shots.
            first = TaskSet(
                X=X[0], y=y[0], task_index=np.zeros(n_rows, dtype=np.int64), task_ids=np.arange(1)
            )
            n_support = int(first.support_quota(self.shots, stratify=False)[0].sum())
            sizes = n_support, min(n_rows - n_support, MAX_QUERY_ROWS)
            self._split_sizes[y.shape] = sizes
        return sizes

    def _pad(self, taskset: TaskSet) -> PaddedTasks:
        """The draw as padded tasks: at once for tasks of one size, else as long rows
        padded to the draw's largest task."""
        sizes = taskset.sizes
        if (sizes == sizes[0]).all():
            return taskset.to_padded(
                self.device, self.shots, stratify=self.stratify, max_query=MAX_QUERY_ROWS
            )
        rows = taskset.to_rows(self.device, self.shots, stratify=self.stratify)
        return rows.padded(np.arange(taskset.n_tasks), max_query=MAX_QUERY_ROWS)


def score_batches(taskset: TaskSet, device, shots, stratify: bool, generator, chunk: int):
    """Support/query splits of every task for few-shot scoring, in batches of at most ``chunk``.

    Tasks of one size are split at once and cut into chunks; tasks of
    unequal sizes are grouped by size (:meth:`TaskRows.batches`) and each
    group is padded to its own largest task, so one large task pads no
    small one. Every query row is used.
    """
    sizes = taskset.sizes
    if (sizes == sizes[0]).all():
        batch = taskset.to_padded(device, shots, stratify=stratify).split(generator)
        for start in range(0, taskset.n_tasks, chunk):
            yield MetaBatch(*(t[start : start + chunk] for t in batch))
        return
    rows = taskset.to_rows(device, shots, stratify=stratify)
    for tasks in rows.batches(chunk):
        yield rows.padded(tasks).split(generator)
