"""Over the tasks of a batch: vectorised with vmap, or one task at a time."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import vmap
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

BATCHINGS = ("vmap", "loop")


def over_tasks(function: Callable, batching: str) -> Callable:
    """``function`` applied to every task: its arguments and results gain a leading task axis.

    ``batching="vmap"`` vectorises with :func:`torch.func.vmap` (every
    argument is batched along dimension 0; unbatched values are closed
    over). ``"loop"`` calls ``function`` once per task and stacks the
    results, for modules vmap cannot run (BatchNorm updating its running
    statistics, data-dependent control flow). Both compute the same values
    and gradients. Arguments and results may be tensors or nested
    dicts/tuples of tensors; an argument that is None (a meta-batch's
    weights when no row is padding) is passed as None to every task.
    """
    if batching == "vmap":
        batched = vmap(function, randomness="different")

        def vmapped(*args):
            if any(arg is None for arg in args):
                in_dims = tuple(None if arg is None else 0 for arg in args)
                return vmap(function, in_dims=in_dims, randomness="different")(*args)
            return batched(*args)

        return vmapped
    if batching != "loop":
        raise ValueError(f"batching must be one of {BATCHINGS}, got {batching!r}")

    def row(t, i):
        return None if t is None else t[i]

    def looped(*args):
        n_tasks = next(t for t in tree_flatten(args)[0] if t is not None).shape[0]
        results = [function(*tree_map(lambda t, i=i: row(t, i), args)) for i in range(n_tasks)]
        leaves = [tree_flatten(result)[0] for result in results]
        stacked = [torch.stack(column) for column in zip(*leaves)]
        return tree_unflatten(stacked, tree_flatten(results[0])[1])

    return looped


def choose_batching(module: nn.Module, probe: Callable[[str], object]) -> str:
    """``"vmap"`` if ``probe("vmap")`` runs on ``module``, else ``"loop"``.

    BatchNorm layers that track running statistics in training mode write
    to their buffers in place, which vmap cannot batch: they go straight to
    the loop. Other failures under vmap are found by running ``probe`` (a
    small evaluation of the algorithm, e.g. on two tasks) without building
    a graph. Chosen once per fit and stored by the estimator.
    """
    for submodule in module.modules():
        if isinstance(submodule, nn.modules.batchnorm._BatchNorm):
            if submodule.track_running_stats and submodule.training:
                return "loop"
    try:
        with torch.no_grad():
            probe("vmap")
    except (RuntimeError, NotImplementedError, ValueError):
        return "loop"
    return "vmap"
