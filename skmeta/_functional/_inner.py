"""The one inner loop of every gradient-based algorithm in skmeta."""

from __future__ import annotations

from collections.abc import Callable, Collection

from torch import Tensor
from torch.func import grad

from ._network import Params


def inner_loop(
    loss_of: Callable[[Params, Params], Tensor],
    params: Params,
    rule,
    steps: int,
    *,
    buffers: Params | None = None,
    trainable: Collection[str] | None = None,
    first_order: bool = False,
    trajectory: bool = False,
) -> list[Params]:
    """``steps`` updates of the ``trainable`` parameters by ``rule``, minimising ``loss_of``.

    Parameters
    ----------
    loss_of : callable
        ``loss_of(params, buffers) -> scalar``: one task's support loss (a
        closure over its rows).
    params : dict of str to Tensor
        The parameters the loop starts from. Differentiable: unless
        ``first_order``, the meta-gradient flows through every step (the
        inner gradients are part of the autograd graph), into ``params``
        and into any learned step sizes held by ``rule``.
    rule : update rule
        An object of :mod:`._updates`.
    steps : int
        Number of updates; 0 returns ``params``.
    buffers : dict of str to Tensor, optional
        Passed to ``loss_of`` as an argument of the differentiated function
        rather than captured, so that a module may update them in place
        (BatchNorm's running statistics in training mode).
    trainable : collection of str, optional
        Names of the parameters to update; the others stay fixed (but the
        meta-gradient still reaches them through the loss). None: all.
    first_order : bool, default=False
        Detach the inner gradients (first-order MAML).
    trajectory : bool, default=False
        Return the parameters after every step, ``[params, after step 1,
        ..., after step steps]`` (for a multi-step loss), instead of the
        last ones only.

    Returns
    -------
    list of dict of str to Tensor
        ``[after the last step]``, or the whole trajectory.
    """
    names = tuple(params) if trainable is None else tuple(n for n in params if n in trainable)
    fixed = {name: p for name, p in params.items() if name not in names}

    def with_fixed(trained: Params) -> Params:
        return {name: trained.get(name, p) for name, p in params.items()} if fixed else trained

    gradient = grad(lambda trained, buffers: loss_of(with_fixed(trained), buffers))
    trained = {name: params[name] for name in names}
    state = rule.init(trained)
    path = [params]
    for step in range(steps):
        grads = gradient(trained, {} if buffers is None else buffers)
        if first_order:
            grads = {name: g.detach() for name, g in grads.items()}
        trained, state = rule(step, trained, grads, state)
        if trajectory:
            path.append(with_fixed(trained))
    return path if trajectory else [with_fixed(trained)]
