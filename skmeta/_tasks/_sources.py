"""Sources of meta-batches during meta-training: a fixed task set, or a sampler."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ._readers import draw_tasks
from ._taskset import MetaBatch, PaddedTasks, TaskSet


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
