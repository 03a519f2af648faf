"""Prototypical Networks (Snell et al., 2017): classify by distance to class prototypes.

The module is an embedding network. A task's prototypes are the mean
embeddings of its support rows per class; a row's logits are the negative
squared Euclidean distances of its embedding to the prototypes. Meta-training
minimises the query cross-entropy of these logits over episodes, vectorised
over the meta-batch; adaptation computes the prototypes, with no gradient
step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._functional import Network, Params, mask_absent_classes, over_tasks
from .._meta_parameters import Tree
from ._common import Step, meta_gradient


def prototypes(embeddings: Tensor, y: Tensor, w: Tensor | None, n_classes: int) -> Tensor:
    """Mean embedding of each class ``0..n_classes - 1`` over the rows with weight 1
    (every row when ``w`` is None).

    A class with no row gets a zero prototype (its logits are masked later).
    """
    classes = torch.arange(n_classes, device=y.device)
    members = (y[:, None] == classes).to(embeddings.dtype)  # (n_rows, n_classes)
    if w is not None:
        members = members * w[:, None]
    counts = members.sum(dim=0).clamp(min=1.0)
    return (members.T @ embeddings) / counts[:, None]


def distance_logits(embeddings: Tensor, centres: Tensor) -> Tensor:
    """Negative squared Euclidean distance of each row to each prototype: (n_rows, n_classes)."""
    return -((embeddings[:, None, :] - centres[None, :, :]) ** 2).sum(dim=-1)


@dataclass(frozen=True)
class ProtoNet:
    """Settings of Prototypical Networks.

    Parameters
    ----------
    n_classes : int
        Prototype slots: the most classes a task of the batch has.
    """

    n_classes: int

    outer_update = "gradient"
    fixed_head = False  # logits follow each task's own class codes: no label shuffling
    adapt_in_train_mode = False  # support and query rows are embedded alike

    def learned(self, init: Params) -> Tree:
        return {}

    def adapt(self, net: Network, meta: Tree, X: Tensor, y: Tensor, w: Tensor) -> Params:
        """``{"prototypes": (n_classes, embedding width)}`` of one task's support rows."""
        return {"prototypes": prototypes(net(meta["init"], X), y, w, self.n_classes)}

    def predict(self, net: Network, meta: Tree, adapted: Params | None, X: Tensor) -> Tensor:
        if adapted is None:
            raise ValueError("Prototypical Networks predict from prototypes: adapt first.")
        return distance_logits(net(meta["init"], X), adapted["prototypes"])

    def outer_inputs(self, step: Step, batch) -> tuple:
        return ()

    def episode_loss(self, net: Network, meta: Tree, batch, step: Step, batching: str) -> Tensor:
        """Mean over episodes of the query cross-entropy of the distance logits."""
        return self.outer_core(net, meta, batch, (), batching)

    def outer_core(self, net: Network, meta: Tree, batch, inputs: tuple, batching: str) -> Tensor:
        """:meth:`episode_loss` (no step-dependent input; ``torch.compile`` runs this)."""

        def one_task(X_s, y_s, w_s, X_q, y_q, w_q):
            centres = prototypes(net(meta["init"], X_s), y_s, w_s, self.n_classes)
            logits = distance_logits(net(meta["init"], X_q), centres)
            return net.loss_fn(mask_absent_classes(logits, y_s, w_s), y_q, w_q)

        return over_tasks(one_task, batching)(*batch).mean()

    def outer_finish(self, loss: Tensor, meta: Tree, step: Step):
        return loss, meta_gradient(loss, meta)

    def outer_step(self, net: Network, meta: Tree, batch, step: Step, batching: str):
        return self.outer_finish(self.outer_core(net, meta, batch, (), batching), meta, step)
