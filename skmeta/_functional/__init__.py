"""The math of skmeta, as pure functions that know nothing of scikit-learn.

* :mod:`._network`: :class:`Network`, a module used as a function of its parameters.
* :mod:`._losses`: masked losses (padding rows have weight 0).
* :mod:`._updates`: update rules (SGD, Meta-SGD, MAML++ LSLR, Adam).
* :mod:`._inner`: :func:`inner_loop`, the one inner loop: steps x rule over a
  trainable subset, first or second order, optionally the whole trajectory.
* :mod:`._batching`: :func:`over_tasks`, vmap or a per-task loop, chosen once
  by :func:`choose_batching`.
"""

from ._batching import BATCHINGS, choose_batching, over_tasks
from ._inner import inner_loop
from ._losses import (
    mask_absent_classes,
    weighted_cross_entropy,
    weighted_mse,
)
from ._network import LossFn, Network, Params, describe_output, has_tied_tensors
from ._updates import SGD, Adam, PerParameterSGD, PerStepSGD

__all__ = [
    "BATCHINGS",
    "SGD",
    "Adam",
    "LossFn",
    "Network",
    "Params",
    "PerParameterSGD",
    "PerStepSGD",
    "choose_batching",
    "describe_output",
    "has_tied_tensors",
    "inner_loop",
    "mask_absent_classes",
    "over_tasks",
    "weighted_cross_entropy",
    "weighted_mse",
]
