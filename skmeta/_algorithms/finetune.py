"""Fine-tuning a pretrained network on a task (the model-dependent family).

Pretraining on the pooled tasks is plain supervised training (skorch does it
in the estimators); adaptation is the one inner loop with SGD or Adam on all
parameters or a subset, not differentiated through. For classification the
pretrained output layer is replaced by a fresh zero head with one unit per
class of the task (Chen et al., 2019's "Baseline").
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .._functional import SGD, Adam, Network, Params, inner_loop, mask_absent_classes
from .._meta_parameters import Tree

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class FineTune:
    """Settings of fine-tuning.

    Parameters
    ----------
    lr : float
        Step size.
    steps : int
        Full-batch steps on the support rows.
    optimizer : {"sgd", "adam"}
        Update rule (Adam with fresh moments each time).
    trainable : tuple of str or None
        Names of the parameters to train; None: all.
    head : tuple of str
        Names of the output layer's parameters, replaced by zeros of
        ``head_width`` output units when ``head_width`` is set.
    head_width : int or None
        Units of a fresh head (classification), or None to keep the
        pretrained one.
    """

    lr: float
    steps: int
    optimizer: str = "sgd"
    trainable: tuple[str, ...] | None = None
    head: tuple[str, ...] = ()
    head_width: int | None = None

    fixed_head = False  # not meta-trained: no label shuffling
    adapt_in_train_mode = True

    def start(self, init: Params) -> Params:
        """The parameters fine-tuning starts from: the pretrained ones, with a fresh head."""
        if self.head_width is None:
            return init
        fresh = {n: init[n].new_zeros((self.head_width, *init[n].shape[1:])) for n in self.head}
        return {**init, **fresh}

    def adapt(self, net: Network, meta: Tree, X: Tensor, y: Tensor, w: Tensor) -> Params:
        rule = Adam(self.lr) if self.optimizer == "adam" else SGD(self.lr)
        if self.head_width is None:
            loss_of = net.support_loss(X, y, w)
        else:  # a head as wide as the batch's widest task: a task's unused units get no mass

            def loss_of(params, buffers):
                logits = mask_absent_classes(net(params, X, buffers), y, w)
                return net.loss_fn(logits, y, w)

        start = self.start(meta["init"])
        return inner_loop(
            loss_of, start, rule, self.steps, buffers=net.buffers, trainable=self.trainable
        )[-1]

    def predict(self, net: Network, meta: Tree, adapted: Params | None, X: Tensor) -> Tensor:
        return net(meta["init"] if adapted is None else adapted, X)
