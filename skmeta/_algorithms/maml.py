"""MAML and its family: first-order MAML, Meta-SGD, ANIL and MAML++ (LSLR + MSL).

Finn et al. (2017) learn an initialisation from which a few SGD steps on a
task's support rows fit it; the meta-gradient of the query loss flows
through the inner steps (second order) or not (first order). The options
compose:

* ``trainable`` — the parameters the inner loop adapts: all, or the head
  only (ANIL, Raghu et al. 2020), or any subset; the others still get a
  meta-gradient.
* ``learn_inner_lr`` — ``"per-parameter"``: one learned step size per
  parameter entry (Meta-SGD, Li et al. 2017), signed as in the paper (it
  learns a direction too); ``"per-layer-per-step"``: one per parameter tensor
  and inner step (MAML++'s LSLR, Antoniou et al. 2019), learned as its
  logarithm so that it stays positive and Adam moves it by a fraction of
  itself. Both start at ``inner_lr`` and are meta-parameters.
* ``msl_iterations`` — MAML++'s multi-step loss: the query loss after every
  inner step, weighted, the weights annealed towards the last step over the
  first ``msl_iterations`` outer steps; plain MAML's loss afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import torch
from torch import Tensor

from .._functional import SGD, Network, Params, PerParameterSGD, PerStepSGD, inner_loop, over_tasks
from .._meta_parameters import Tree
from ._common import Step, meta_gradient

LEARN_INNER_LR = (None, "per-parameter", "per-layer-per-step")
# MAML++ keeps every non-final step's weight above this fraction of the uniform weight.
_MSL_FLOOR = 0.03


def multi_step_weights(steps: int, iteration: int, anneal_iterations: int) -> list[float]:
    """MAML++'s per-step loss weights at an outer ``iteration``.

    Uniform (``1/steps`` each) at iteration 0; every non-final weight then
    falls linearly to ``0.03/steps`` and the final one rises to take up the
    rest, over ``anneal_iterations`` (Antoniou et al. 2019, section 4; their
    annealing runs over epochs).
    """
    uniform = 1.0 / steps
    decay = uniform * min(iteration, anneal_iterations) / anneal_iterations
    floor = _MSL_FLOOR / steps
    weights = [max(uniform - decay, floor)] * (steps - 1)
    final = min(uniform + decay * (steps - 1), 1.0 - (steps - 1) * floor)
    return weights + [final]


@dataclass(frozen=True)
class MAML:
    """Settings of one MAML-family algorithm; its methods are pure functions of their arguments.

    Parameters
    ----------
    inner_lr : float
        Step size of the inner SGD steps (the initial value when learned).
    inner_steps : int
        Inner steps in meta-training.
    adapt_steps : int
        Inner steps in adaptation (``adapt``, few-shot ``score``).
    first_order : bool
        Detach the inner gradients.
    trainable : tuple of str or None
        Names of the parameters the inner loop adapts; None: all.
    learn_inner_lr : {None, "per-parameter", "per-layer-per-step"}
        Learned inner step sizes.
    msl_iterations : int
        Outer steps of MAML++'s multi-step loss; 0: off.
    """

    inner_lr: float
    inner_steps: int
    adapt_steps: int
    first_order: bool = False
    trainable: tuple[str, ...] | None = None
    learn_inner_lr: str | None = None
    msl_iterations: int = 0

    outer_update = "gradient"  # the outer optimizer follows the meta-gradient
    fixed_head = True  # output units are classes: shuffle labels across tasks in meta-training
    adapt_in_train_mode = True

    # ---------------------------------------------------------------- meta-parameters
    def _adapted_names(self, init: Params) -> Collection[str]:
        return tuple(init) if self.trainable is None else self.trainable

    def learned(self, init: Params) -> Tree:
        """Initial learned step sizes (none for plain MAML), for the adapted parameters.

        Meta-SGD's under ``"inner_lr"``; LSLR's as logarithms under
        ``"log_inner_lr"``. With Adam's steps of about ``meta_lr`` whatever
        the gradient's scale, a step size of 0.01 learned directly moves by a
        tenth of itself per outer step: over several inner steps LSLR then
        turns negative or grows until the inner loop diverges (measured on
        the sinusoid with 5 inner steps: meta-losses of 1e13 to 1e17 within
        2000 outer steps, step sizes from -0.2 to 0.28). Its logarithm moves
        by about 0.1% of the step size per outer step.
        """
        names = self._adapted_names(init)
        if self.learn_inner_lr == "per-parameter":
            rates = {n: torch.full_like(init[n].detach(), self.inner_lr) for n in names}
            return {"inner_lr": rates}
        if self.learn_inner_lr == "per-layer-per-step":
            log_rate = math.log(self.inner_lr)
            rates = {n: init[n].detach().new_full((self.inner_steps,), log_rate) for n in names}
            return {"log_inner_lr": rates}
        return {}

    def _rule(self, meta: Tree):
        if self.learn_inner_lr == "per-parameter":
            return PerParameterSGD(meta["inner_lr"])
        if self.learn_inner_lr == "per-layer-per-step":
            return PerStepSGD({name: t.exp() for name, t in meta["log_inner_lr"].items()})
        return SGD(self.inner_lr)

    # ---------------------------------------------------------------- one task
    def adapt(self, net: Network, meta: Tree, X: Tensor, y: Tensor, w: Tensor) -> Params:
        """Parameters after ``adapt_steps`` inner steps on one task's rows."""
        return inner_loop(
            net.support_loss(X, y, w),
            meta["init"],
            self._rule(meta),
            self.adapt_steps,
            buffers=net.buffers,
            trainable=self.trainable,
            first_order=True,
        )[-1]

    def predict(self, net: Network, meta: Tree, adapted: Params | None, X: Tensor) -> Tensor:
        """Outputs with the adapted parameters (the meta-init when None)."""
        return net(meta["init"] if adapted is None else adapted, X)

    # ---------------------------------------------------------------- meta-batch
    def outer_inputs(self, step: Step, batch) -> tuple:
        """The step-dependent tensors of :meth:`outer_core`: MAML++'s loss weights, or None."""
        if self.msl_iterations and self.inner_steps > 1 and step.iteration < self.msl_iterations:
            values = multi_step_weights(self.inner_steps, step.iteration, self.msl_iterations)
            return (batch[0].new_tensor(values),)
        return (None,)

    def episode_loss(self, net: Network, meta: Tree, batch, step: Step, batching: str) -> Tensor:
        """Mean over the meta-batch of each task's query loss after its inner loop."""
        return self.outer_core(net, meta, batch, self.outer_inputs(step, batch), batching)

    def outer_core(self, net: Network, meta: Tree, batch, inputs: tuple, batching: str) -> Tensor:
        """:meth:`episode_loss` with the step's tensors given (``torch.compile`` runs this)."""
        (weights,) = inputs
        rule = self._rule(meta)

        def one_task(X_s, y_s, w_s, X_q, y_q, w_q):
            path = inner_loop(
                net.support_loss(X_s, y_s, w_s),
                meta["init"],
                rule,
                self.inner_steps,
                buffers=net.buffers,
                trainable=self.trainable,
                first_order=self.first_order,
                trajectory=weights is not None,
            )
            if weights is None:
                return net.loss(path[-1], X_q, y_q, w_q)
            losses = torch.stack([net.loss(params, X_q, y_q, w_q) for params in path[1:]])
            return (weights * losses).sum()

        return over_tasks(one_task, batching)(*batch).mean()

    def outer_finish(self, loss: Tensor, meta: Tree, step: Step):
        """``(meta-loss, meta-gradient)`` from :meth:`outer_core`'s loss."""
        return loss, meta_gradient(loss, meta)

    def outer_step(self, net: Network, meta: Tree, batch, step: Step, batching: str):
        """``(meta-loss, meta-gradient)`` of one meta-batch."""
        loss = self.outer_core(net, meta, batch, self.outer_inputs(step, batch), batching)
        return self.outer_finish(loss, meta, step)
