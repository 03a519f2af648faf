"""Reptile (Nichol et al., 2018): move the initialisation towards each task's solution.

No meta-gradient: each task of the meta-batch runs ``inner_steps`` SGD or
Adam steps on its support rows from the initialisation ``theta``, reaching
``phi_i``, and the outer update is ``theta += eps * mean_i(phi_i - theta)``,
vectorised over the tasks, with ``eps`` annealed linearly from
``outer_step_size`` to 0 over a fit, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._functional import SGD, Adam, Network, Params, inner_loop, over_tasks
from .._meta_parameters import Tree
from ._common import Step

INNER_OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class Reptile:
    """Settings of Reptile; its methods are pure functions of their arguments.

    Parameters
    ----------
    inner_lr : float
        Step size of the inner steps.
    inner_steps : int
        Inner steps per task in meta-training.
    adapt_steps : int
        Inner steps in adaptation.
    inner_optimizer : {"sgd", "adam"}
        Inner update rule (Adam with fresh moments per task).
    outer_step_size : float
        ``eps`` at the start of a fit.
    """

    inner_lr: float
    inner_steps: int
    adapt_steps: int
    inner_optimizer: str = "sgd"
    outer_step_size: float = 1.0

    outer_update = "increment"  # the outer step adds an increment to the meta-parameters
    fixed_head = True
    adapt_in_train_mode = True

    def learned(self, init: Params) -> Tree:
        return {}

    def _rule(self):
        return Adam(self.inner_lr) if self.inner_optimizer == "adam" else SGD(self.inner_lr)

    def _solve(self, net: Network, init: Params, X, y, w, steps: int) -> Params:
        loss_of = net.support_loss(X, y, w)
        return inner_loop(
            loss_of, init, self._rule(), steps, buffers=net.buffers, first_order=True
        )[-1]

    def adapt(self, net: Network, meta: Tree, X: Tensor, y: Tensor, w: Tensor) -> Params:
        """Parameters after ``adapt_steps`` inner steps on one task's rows."""
        return self._solve(net, meta["init"], X, y, w, self.adapt_steps)

    def predict(self, net: Network, meta: Tree, adapted: Params | None, X: Tensor) -> Tensor:
        return net(meta["init"] if adapted is None else adapted, X)

    def step_size(self, step: Step) -> float:
        """``eps`` at this point of the schedule: linear from ``outer_step_size`` to 0."""
        return self.outer_step_size * (1.0 - step.fraction)

    def _solutions(self, net: Network, meta: Tree, batch, batching: str):
        def one_task(X_s, y_s, w_s, X_q, y_q, w_q):
            phi = self._solve(net, meta["init"], X_s, y_s, w_s, self.inner_steps)
            return phi, net.loss(phi, X_q, y_q, w_q)

        with torch.no_grad():
            return over_tasks(one_task, batching)(*batch)

    def episode_loss(self, net: Network, meta: Tree, batch, step: Step, batching: str) -> Tensor:
        """Mean query loss of the tasks' solutions ``phi_i`` (what ``loss_curve_`` records)."""
        return self._solutions(net, meta, batch, batching)[1].mean()

    def outer_inputs(self, step: Step, batch) -> tuple:
        return ()

    def outer_core(self, net: Network, meta: Tree, batch, inputs: tuple, batching: str):
        """The tasks' solutions and query losses (``torch.compile`` runs this)."""
        return self._solutions(net, meta, batch, batching)

    def outer_step(self, net: Network, meta: Tree, batch, step: Step, batching: str):
        """``(meta-loss, {"init": eps * mean_i(phi_i - theta)})``."""
        return self.outer_finish(self._solutions(net, meta, batch, batching), meta, step)

    def outer_finish(self, core, meta: Tree, step: Step):
        """The outer update from :meth:`outer_core`'s solutions, with this step's ``eps``."""
        solutions, losses = core
        eps = self.step_size(step)
        with torch.no_grad():
            increment = {
                name: eps * (solutions[name] - theta).mean(dim=0)
                for name, theta in meta["init"].items()
                if theta.requires_grad
            }
        return losses.mean(), {"init": increment}
