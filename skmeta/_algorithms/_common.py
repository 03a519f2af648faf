"""What every algorithm module shares: the step it is at, and its meta-gradient."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .._meta_parameters import Tree


class Step(NamedTuple):
    """Where meta-training is: for schedules (multi-step loss weights, Reptile's step size).

    Attributes
    ----------
    iteration : int
        Outer steps taken before this one, over every ``fit``/``partial_fit``
        (the estimator's ``n_iter_``).
    fraction : float
        Position in the current ``fit``'s schedule, in [0, 1): step ``i`` of
        ``max_iter`` is ``i / max_iter``.
    """

    iteration: int = 0
    fraction: float = 0.0


def meta_gradient(loss: Tensor, meta: Tree) -> Tree:
    """Gradient of ``loss`` with respect to every meta-parameter that requires one.

    Meta-parameters the loss does not depend on, or that do not require a
    gradient (frozen layers), are left out: the optimizer skips them.
    """
    wrt = [
        (kind, name, t) for kind, ts in meta.items() for name, t in ts.items() if t.requires_grad
    ]
    grads = torch.autograd.grad(loss, [t for *_, t in wrt], allow_unused=True)
    gradient: Tree = {}
    for (kind, name, _), g in zip(wrt, grads):
        if g is not None:
            gradient.setdefault(kind, {})[name] = g
    return gradient
