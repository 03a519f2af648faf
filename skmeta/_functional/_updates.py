"""Update rules of the inner loop.

An update rule maps ``(step, params, grads, state)`` to ``(params, state)``
for the trainable parameters of one task; ``init(params)`` gives its first
state. Rules are pure: the learned step sizes of Meta-SGD and MAML++ are
tensors held by the rule, so the meta-gradient flows into them.

* :class:`SGD`: one fixed step size (MAML, Reptile, fine-tuning).
* :class:`PerParameterSGD`: a learned step size per parameter entry (Meta-SGD).
* :class:`PerStepSGD`: a learned step size per parameter tensor and step
  (MAML++'s per-layer per-step learning rates, LSLR).
* :class:`Adam`: Adam with fresh moments (Reptile, fine-tuning); not meant
  to be differentiated through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from ._network import Params


@dataclass(frozen=True)
class SGD:
    """``p - lr * g`` with one fixed step size."""

    lr: float

    def init(self, params: Params):
        return None

    def __call__(self, step: int, params: Params, grads: Params, state):
        return {name: p - self.lr * grads[name] for name, p in params.items()}, state


@dataclass(frozen=True)
class PerParameterSGD:
    """``p - lr[name] * g``, ``lr[name]`` a tensor of ``p``'s shape (Meta-SGD)."""

    lr: Mapping[str, Tensor]

    def init(self, params: Params):
        return None

    def __call__(self, step: int, params: Params, grads: Params, state):
        return {name: p - self.lr[name] * grads[name] for name, p in params.items()}, state


@dataclass(frozen=True)
class PerStepSGD:
    """``p - lr[name][step] * g``, one learned step size per tensor and step (MAML++ LSLR).

    ``lr[name]`` has shape ``(n_steps,)``; steps beyond ``n_steps`` (an
    ``adapt`` longer than meta-training's inner loop) use the last one.
    """

    lr: Mapping[str, Tensor]

    def init(self, params: Params):
        return None

    def __call__(self, step: int, params: Params, grads: Params, state):
        def size(name: str) -> Tensor:
            rates = self.lr[name]
            return rates[min(step, rates.shape[0] - 1)]

        return {name: p - size(name) * grads[name] for name, p in params.items()}, state


@dataclass(frozen=True)
class Adam:
    """Adam with bias correction, in the same arithmetic as :class:`torch.optim.Adam`."""

    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def init(self, params: Params):
        zeros = {name: torch.zeros_like(p) for name, p in params.items()}
        return zeros, dict(zeros)

    def __call__(self, step: int, params: Params, grads: Params, state):
        beta1, beta2 = self.betas
        first, second = state
        first = {name: beta1 * m + (1 - beta1) * grads[name] for name, m in first.items()}
        second = {name: beta2 * v + (1 - beta2) * grads[name] ** 2 for name, v in second.items()}
        correction1, correction2 = 1 - beta1 ** (step + 1), (1 - beta2 ** (step + 1)) ** 0.5
        params = {
            name: p
            - (self.lr / correction1) * first[name] / (second[name].sqrt() / correction2 + self.eps)
            for name, p in params.items()
        }
        return params, (first, second)
