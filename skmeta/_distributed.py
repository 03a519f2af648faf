"""Data-parallel meta-training over a :mod:`torch.distributed` process group.

When an estimator meta-trains inside an initialised default process group of
more than one process (``torchrun``, or ``torch.distributed.init_process_group``
called by the user), every rank draws the same full meta-batch from the same
seeded generators and keeps its contiguous share of the tasks
(:func:`shard`). Each rank computes the ``(loss, update)`` of its share; the
updates and losses, weighted by each rank's fraction of the tasks, are summed
across ranks in one all-reduce (:func:`all_reduce_update`), so every rank
applies the update of the whole meta-batch, exactly as one process would
(up to float rounding), and all ranks keep identical meta-parameters.

Shards may be uneven (7 tasks on 2 ranks: 4 and 3); the weights keep the
mean exact. A meta-batch with fewer tasks than ranks is refused. Setting the
environment variable ``SKMETA_DATA_PARALLEL=0`` makes every rank train on
its own, as without a process group.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch

from ._meta_parameters import Tree

ENV_SWITCH = "SKMETA_DATA_PARALLEL"


class Shard(NamedTuple):
    """This rank's part of a meta-batch: tasks ``start:stop`` of ``n_tasks``."""

    rank: int
    world_size: int
    start: int
    stop: int
    n_tasks: int

    @property
    def weight(self) -> float:
        """This rank's fraction of the meta-batch's tasks (the weights sum to 1)."""
        return (self.stop - self.start) / self.n_tasks


def process_group() -> tuple[int, int] | None:
    """``(rank, world_size)`` when meta-training is data parallel, else None.

    Data parallel means: :mod:`torch.distributed` is available, its default
    process group is initialised with more than one process, and
    ``SKMETA_DATA_PARALLEL`` is not ``"0"``.
    """
    if os.environ.get(ENV_SWITCH, "1").strip() == "0":
        return None
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return None
    world_size = dist.get_world_size()
    if world_size < 2:
        return None
    return dist.get_rank(), world_size


def is_main_process() -> bool:
    """True unless this is a rank other than 0 of a data-parallel process group."""
    group = process_group()
    return group is None or group[0] == 0


def shard_bounds(n_tasks: int, rank: int, world_size: int) -> Shard:
    """Contiguous, near-equal share of ``n_tasks`` tasks for ``rank``.

    The first ``n_tasks % world_size`` ranks get one task more. Raises
    ``ValueError`` when there are fewer tasks than ranks (a rank would have none).
    """
    if n_tasks < world_size:
        raise ValueError(
            f"The meta-batch has {n_tasks} task(s), fewer than the {world_size} processes of "
            "the data-parallel process group: every process needs at least one task. Raise "
            "meta_batch_size (or give more tasks), or run fewer processes."
        )
    base, extra = divmod(n_tasks, world_size)
    start = rank * base + min(rank, extra)
    stop = start + base + (rank < extra)
    return Shard(rank, world_size, start, stop, n_tasks)


def shard(batch, rank: int, world_size: int):
    """``(this rank's part of batch, Shard)``; ``batch`` is a MetaBatch (task axis first,
    with ``w_*`` None for unpadded batches)."""
    part = shard_bounds(batch[0].shape[0], rank, world_size)
    rows = slice(part.start, part.stop)
    return type(batch)(*(None if t is None else t[rows] for t in batch)), part


def all_reduce_update(loss: torch.Tensor, update: Tree, part: Shard):
    """The meta-batch's ``(loss, update)`` from each rank's, weighted by ``part.weight``.

    The loss and every tensor of the update are flattened into one buffer,
    scaled by this rank's weight and summed across ranks with a single
    all-reduce: each rank gets the bitwise same result. Every rank must pass
    updates with the same keys and shapes (they run the same algorithm).
    """
    keys = [(kind, name) for kind in sorted(update) for name in sorted(update[kind])]
    tensors = [loss.detach().reshape(1)] + [update[k][n].detach().reshape(-1) for k, n in keys]
    flat = torch.cat(tensors) * part.weight
    torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
    reduced: Tree = {}
    offset = 1
    for kind, name in keys:
        original = update[kind][name]
        size = original.numel()
        reduced.setdefault(kind, {})[name] = flat[offset : offset + size].view_as(original)
        offset += size
    return flat[0], reduced


def broadcast_seed(seed: int) -> int:
    """Rank 0's seed on every rank (so ``random_state=None`` gives one run, not one per rank)."""
    if process_group() is None:
        return seed
    box = [seed]
    torch.distributed.broadcast_object_list(box, src=0)
    return int(box[0])


def broadcast_parameters(tensors) -> None:
    """Overwrite ``tensors`` (an iterable of tensors) in place with rank 0's values."""
    if process_group() is None:
        return
    with torch.no_grad():
        for tensor in tensors:
            torch.distributed.broadcast(tensor.data, src=0)
