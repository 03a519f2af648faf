"""The inner loop of gradient-based meta-learning, as pure functions.

Everything here is a function of ``(model, loss_fn, params, buffers, data,
settings)`` and knows nothing of scikit-learn. ``model`` is used only as the
architecture for :func:`torch.func.functional_call`: its own parameters are
never read or written.

* :func:`adapt` runs ``steps`` SGD steps on one task's support set.
* :func:`query_loss` is the loss of the adapted parameters on the task's query set.
* :func:`meta_loss` averages :func:`query_loss` over a meta-batch, vectorised with
  :func:`torch.func.vmap` (``batching="vmap"``) or with a per-task Python loop
  (``batching="loop"``) for modules vmap cannot run (BatchNorm updating its
  running statistics, data-dependent control flow).
* :func:`adapt_batch` / :func:`predict_batch` adapt many tasks at once and
  predict with the per-task parameters (used to score).
* :func:`fine_tune` is the fine-tuning counterpart of :func:`adapt`: SGD or
  Adam on all parameters or a named subset (the network's head).

Second order by default: the gradient of the meta-loss flows through the
inner SGD steps (the inner gradients are part of the autograd graph).
``first_order=True`` detaches the inner gradients (FOMAML).

Tasks of unequal size arrive zero-padded with weights ``w`` (1 for real rows,
0 for padding) and every loss is a weighted mean, so padding changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

Params = dict[str, Tensor]
LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class InnerLoop:
    """Settings of the inner (task-level) optimisation.

    Parameters
    ----------
    inner_lr : float
        Step size of the inner SGD steps.
    steps : int
        Number of inner SGD steps.
    first_order : bool
        Detach inner gradients (first-order MAML).
    """

    inner_lr: float
    steps: int
    first_order: bool = False


def weighted_mse(output: Tensor, y: Tensor, w: Tensor) -> Tensor:
    """Mean squared error over the rows with weight 1 (``output`` is (n,) or (n, 1))."""
    squared_error = (output.reshape(y.shape) - y) ** 2
    return (squared_error * w).sum() / w.sum()


def weighted_cross_entropy(output: Tensor, y: Tensor, w: Tensor) -> Tensor:
    """Cross-entropy of logits ``output`` (n, n_classes) over the rows with weight 1."""
    losses = F.cross_entropy(output, y, reduction="none")
    return (losses * w).sum() / w.sum()


def present_class_cross_entropy(output: Tensor, y: Tensor, w: Tensor) -> Tensor:
    """:func:`weighted_cross_entropy` over the units ``0..max(y)`` only.

    For class heads padded to a batch's widest task: the units above a
    task's largest code get no probability, so a task is fine-tuned as if
    its head had exactly its own classes.
    """
    n_classes = (y * (w > 0)).amax() + 1
    units = torch.arange(output.shape[-1], device=output.device)
    return weighted_cross_entropy(output.masked_fill(units >= n_classes, float("-inf")), y, w)


def task_loss(
    model: nn.Module,
    loss_fn: LossFn,
    params: Params,
    buffers: Params,
    X: Tensor,
    y: Tensor,
    w: Tensor,
) -> Tensor:
    """Loss of ``model`` with ``params`` on one task's rows."""
    return loss_fn(functional_call(model, (params, buffers), (X,)), y, w)


def adapt(
    model: nn.Module,
    loss_fn: LossFn,
    params: Params,
    buffers: Params,
    X: Tensor,
    y: Tensor,
    w: Tensor,
    settings: InnerLoop,
) -> Params:
    """Parameters after ``settings.steps`` SGD steps on one task's support set.

    Differentiable with respect to ``params`` (second order) unless
    ``settings.first_order``; call under :func:`torch.no_grad` when no
    meta-gradient is wanted.
    """
    gradient = grad(task_loss, argnums=2)
    for _ in range(settings.steps):
        grads = gradient(model, loss_fn, params, buffers, X, y, w)
        if settings.first_order:
            grads = {name: g.detach() for name, g in grads.items()}
        params = {name: p - settings.inner_lr * grads[name] for name, p in params.items()}
    return params


@dataclass(frozen=True)
class FineTune:
    """Settings of fine-tuning a pretrained network on one task.

    Parameters
    ----------
    lr : float
        Step size.
    steps : int
        Number of optimizer steps (full batch: the whole support set).
    optimizer : {"sgd", "adam"}
        Plain gradient descent, or Adam with bias correction and fresh moments.
    trainable : tuple of str or None
        Names of the parameters to train; the others stay fixed. None: all.
    """

    lr: float
    steps: int
    optimizer: str = "sgd"
    trainable: tuple[str, ...] | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


def fine_tune(
    model: nn.Module,
    loss_fn: LossFn,
    params: Params,
    buffers: Params,
    X: Tensor,
    y: Tensor,
    w: Tensor,
    settings: FineTune,
) -> Params:
    """Parameters after fine-tuning on one task's support set.

    Same signature as :func:`adapt` (so :func:`adapt_batch` can vectorise it
    over tasks), with :class:`FineTune` settings. Not meant to be
    differentiated through: call it under :func:`torch.no_grad`.
    """
    if settings.optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {settings.optimizer!r}")
    names = tuple(params) if settings.trainable is None else settings.trainable
    fixed = {name: p for name, p in params.items() if name not in names}
    trained = {name: params[name] for name in names}

    def loss_of_trained(trained: Params) -> Tensor:
        return task_loss(model, loss_fn, {**fixed, **trained}, buffers, X, y, w)

    gradient = grad(loss_of_trained)
    beta1, beta2 = settings.betas
    first = {name: torch.zeros_like(p) for name, p in trained.items()}
    second = {name: torch.zeros_like(p) for name, p in trained.items()}
    for step in range(1, settings.steps + 1):
        grads = gradient(trained)
        if settings.optimizer == "sgd":
            trained = {name: p - settings.lr * grads[name] for name, p in trained.items()}
            continue
        first = {name: beta1 * m + (1 - beta1) * grads[name] for name, m in first.items()}
        second = {name: beta2 * v + (1 - beta2) * grads[name] ** 2 for name, v in second.items()}
        # Bias-corrected moments, in the same arithmetic as torch.optim.Adam.
        correction1, correction2 = 1 - beta1**step, (1 - beta2**step) ** 0.5
        trained = {
            name: p
            - (settings.lr / correction1)
            * first[name]
            / (second[name].sqrt() / correction2 + settings.eps)
            for name, p in trained.items()
        }
    return {name: trained.get(name, p) for name, p in params.items()}


def query_loss(
    model: nn.Module,
    loss_fn: LossFn,
    params: Params,
    buffers: Params,
    X_support: Tensor,
    y_support: Tensor,
    w_support: Tensor,
    X_query: Tensor,
    y_query: Tensor,
    w_query: Tensor,
    settings: InnerLoop,
) -> Tensor:
    """Query-set loss of one task after adapting on its support set."""
    adapted = adapt(model, loss_fn, params, buffers, X_support, y_support, w_support, settings)
    return task_loss(model, loss_fn, adapted, buffers, X_query, y_query, w_query)


def meta_loss(
    model: nn.Module,
    loss_fn: LossFn,
    params: Params,
    buffers: Params,
    batch,
    settings: InnerLoop,
    *,
    batching: str = "vmap",
) -> Tensor:
    """Mean query loss over a meta-batch (each task counts equally).

    ``batch`` is a :class:`skmeta._tasks.MetaBatch` (or any 6-tuple of
    support/query tensors with the task as leading dimension).
    ``batching`` is ``"vmap"`` (one vectorised call for the whole batch) or
    ``"loop"`` (one call per task); both compute the same value and gradient.
    """

    def one_task(*task):
        return query_loss(model, loss_fn, params, buffers, *task, settings)

    if batching == "vmap":
        losses = vmap(one_task, randomness="different")(*batch)
    elif batching == "loop":
        losses = torch.stack([one_task(*task) for task in zip(*batch)])
    else:
        raise ValueError(f"batching must be 'vmap' or 'loop', got {batching!r}")
    return losses.mean()


def adapt_batch(
    model: nn.Module,
    loss_fn: LossFn,
    params: Params,
    buffers: Params,
    X: Tensor,
    y: Tensor,
    w: Tensor,
    settings: InnerLoop | FineTune,
    *,
    batching: str = "vmap",
    adapt_fn: Callable[..., Params] = adapt,
) -> Params:
    """Adapt to each task of a batch; returns parameters stacked along dim 0.

    ``adapt_fn`` is :func:`adapt` (with :class:`InnerLoop` settings) or
    :func:`fine_tune` (with :class:`FineTune` settings).
    """

    def one_task(X_t, y_t, w_t):
        return adapt_fn(model, loss_fn, params, buffers, X_t, y_t, w_t, settings)

    if batching == "vmap":
        return vmap(one_task, randomness="different")(X, y, w)
    per_task = [one_task(*task) for task in zip(X, y, w)]
    return {name: torch.stack([p[name] for p in per_task]) for name in params}


def predict_batch(
    model: nn.Module, params: Params, buffers: Params, X: Tensor, *, batching: str = "vmap"
) -> Tensor:
    """Outputs for ``X[t]`` with ``params[name][t]``, for every task ``t``."""

    def one_task(params_t, X_t):
        return functional_call(model, (params_t, buffers), (X_t,))

    if batching == "vmap":
        return vmap(one_task, randomness="different")(params, X)
    return torch.stack(
        [one_task({n: p[t] for n, p in params.items()}, X[t]) for t in range(X.shape[0])]
    )


def choose_batching(
    model: nn.Module, loss_fn: LossFn, params: Params, buffers: Params, batch, settings: InnerLoop
) -> str:
    """``"vmap"`` if one vectorised meta-loss evaluation runs on ``model``, else ``"loop"``.

    BatchNorm layers that track running statistics in training mode write
    to their buffers in place, which vmap cannot batch: they go straight to
    the loop. Other failures under vmap are found by trying one batch of
    two tasks without building a graph.
    """
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            if module.track_running_stats and module.training:
                return "loop"
    small = type(batch)(*(tensor[:2] for tensor in batch))
    try:
        with torch.no_grad():
            meta_loss(model, loss_fn, params, buffers, small, settings, batching="vmap")
    except (RuntimeError, NotImplementedError, ValueError):
        return "loop"
    return "vmap"
