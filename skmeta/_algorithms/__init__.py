"""The algorithms, one small module of pure functions each.

Every algorithm is a frozen settings object whose methods are pure functions
of their arguments (a :class:`~skmeta._functional.Network`, the
meta-parameter tree ``{"init": params, kind: {name: tensor}}``, tensors):

* ``learned(init)``: initial values of its meta-parameters besides the
  initial weights (learned step sizes), by kind and parameter name;
* ``adapt(net, meta, X, y, w)``: one task's adapted state (parameters, or
  prototypes);
* ``predict(net, meta, adapted, X)``: outputs with an adapted state;
* ``episode_loss(net, meta, batch, step, batching)``: the meta-loss of a
  meta-batch;
* ``outer_step(...)``: ``(meta-loss, update)``, in three parts so that the
  middle one can be compiled: ``outer_inputs(step, batch)`` (the step's
  tensors, e.g. MAML++'s loss weights), ``outer_core(net, meta, batch,
  inputs, batching)`` (a pure function of tensors) and ``outer_finish(core,
  meta, step)``; ``outer_update`` says
  whether the update is a meta-gradient for the outer optimizer
  (``"gradient"``: ``outer_core`` then returns the meta-loss and the update
  is its gradient, which ``compile=True`` takes in the same compiled graph)
  or an increment added to the meta-parameters (``"increment"``, Reptile);
* ``fixed_head``: whether output units stand for classes (labels are then
  shuffled per task in classification meta-training);
* ``adapt_in_train_mode``: the module's mode while adapting.

:class:`FineTune` has ``adapt``/``predict`` only: its pretraining is plain
supervised training.
"""

from ._common import Step, meta_gradient
from .finetune import FineTune
from .maml import LEARN_INNER_LR, MAML, multi_step_weights
from .protonet import ProtoNet, distance_logits, prototypes
from .reptile import INNER_OPTIMIZERS, Reptile

__all__ = [
    "INNER_OPTIMIZERS",
    "LEARN_INNER_LR",
    "MAML",
    "FineTune",
    "ProtoNet",
    "Reptile",
    "Step",
    "distance_logits",
    "meta_gradient",
    "multi_step_weights",
    "prototypes",
]
