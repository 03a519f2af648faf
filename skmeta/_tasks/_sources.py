"""Sources of meta-batches during meta-training: a fixed task set, or a sampler."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ._readers import read_sampled_tasks, sample_tasks, stack_equal_tasks
from ._taskset import MAX_QUERY_ROWS, MetaBatch, PaddedTasks, TaskSet


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
            tasks = sample_tasks(self.sampler, n_tasks, rng)
            padded = self._equal_draw(tasks)
            if padded is not None:
                return padded.split(generator, relabel_to=relabel_to, weights=False)
            taskset = read_sampled_tasks(
                self.estimator, self.sampler, tasks, reset=False, classification=self.classification
            )
            if self.check is not None:
                self.check(taskset)
        return self._pad(taskset).split(generator, relabel_to=relabel_to, weights=False)

    def _equal_draw(self, tasks) -> PaddedTasks | None:
        """The usual draw, regression tasks of one shape seen before, without a TaskSet.

        Their rows are read by :func:`stack_equal_tasks` and put in the
        layout of the earlier draw of that shape; they need none of
        ``check``'s checks, which are of classes and of padding (tasks of
        one size and one support size are not padded). The padded tasks are
        those :meth:`_pad` would return. None when the tasks need the full
        path.
        """
        if self.classification:
            return None
        stacked = stack_equal_tasks(self.estimator, tasks)
        if stacked is None:
            return None
        layout = self._layouts.get(stacked[1].shape)
        return None if layout is None else self._with_rows(layout, *stacked)

    def _with_rows(self, layout: PaddedTasks, X: np.ndarray, y: np.ndarray) -> PaddedTasks:
        """``layout`` (padded tasks of this shape) holding the rows ``X``, ``y`` instead."""
        as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
        return replace(layout, X=as_tensor(X), y=as_tensor(y))

    def _pad(self, taskset: TaskSet) -> PaddedTasks:
        """``taskset.to_padded``, reusing the layout of earlier draws of the same shape.

        Samplers usually return tasks of one size: the support quota and
        padding of a draw then depend on its shape alone, so only X and y
        are new.
        """
        sizes = taskset.sizes
        width = int(sizes[0]) if len(sizes) else 0
        if not (sizes == width).all():  # unequal sizes: pad to this draw's largest task
            rows = taskset.to_rows(self.device, self.shots, stratify=self.stratify)
            return rows.padded(np.arange(taskset.n_tasks), max_query=MAX_QUERY_ROWS)
        key = (taskset.n_tasks, width)
        layout = None if self.stratify else self._layouts.get(key)
        if layout is None:
            padded = taskset.to_padded(
                self.device, self.shots, stratify=self.stratify, max_query=MAX_QUERY_ROWS
            )
            if padded.uniform:
                self._layouts[key] = padded
            return padded
        return self._with_rows(
            layout,
            taskset.X.reshape(taskset.n_tasks, width, -1),
            taskset.y.reshape(taskset.n_tasks, width),
        )


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
