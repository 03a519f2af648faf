"""A module used as a pure function of its parameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn
from torch.func import functional_call

from .._modules import runs_forward_with

Params = dict[str, Tensor]
LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]


def describe_output(output) -> str:
    """A module's output in words, for error messages."""
    if isinstance(output, Tensor):
        return f"a tensor of shape {tuple(output.shape)}"
    return f"a {type(output).__module__}.{type(output).__qualname__}".replace("builtins.", "")


def has_tied_tensors(module: nn.Module) -> bool:
    """Whether one tensor of ``module`` appears under two names (tied weights)."""
    named = list(module.named_parameters(remove_duplicate=False))
    named += list(module.named_buffers(remove_duplicate=False))
    return len({id(tensor) for _, tensor in named}) < len(named)


@dataclass(frozen=True)
class Network:
    """The architecture of ``module``, its buffers and a loss, as pure functions.

    ``module`` is used only as the architecture for
    :func:`torch.func.functional_call`: its own parameters are never read
    or written. This is the one object every algorithm receives, in place
    of a ``(module, loss_fn, buffers)`` argument triple.

    Parameters
    ----------
    module : torch.nn.Module
        The architecture.
    loss_fn : callable
        ``loss_fn(output, y, w)``: a masked loss of :mod:`._losses`.
    buffers : dict of str to Tensor
        Buffers (BatchNorm statistics) passed with every call.
    tied : bool or None, default=None
        Whether ``module`` shares a tensor between two of its names (tied
        weights), as :func:`has_tied_tensors` tells; None: unknown. Only
        False lets :func:`~torch.func.functional_call` skip looking for
        them at every call.
    """

    module: nn.Module
    loss_fn: LossFn
    buffers: Params
    tied: bool | None = None

    def __post_init__(self):
        # skmeta's own MLP is called as a function of its parameters directly
        # (MLP.forward_with): the same values as functional_call, without its swap.
        object.__setattr__(self, "_forward_with", runs_forward_with(self.module))

    def __call__(self, params: Params, X: Tensor, buffers: Params | None = None) -> Tensor:
        """Output of the module with ``params`` (and ``buffers``, default its own) on ``X``."""
        if self._forward_with:
            return self.module.forward_with(params, X)
        buffers = self.buffers if buffers is None else buffers
        output = functional_call(
            self.module,
            (params, buffers) if buffers else params,
            (X,),
            tie_weights=self.tied is not False,
        )
        # Checked at every call (shapes only, no device sync): a module right for
        # some row counts only would otherwise broadcast silently in the loss.
        if not isinstance(output, Tensor) or output.ndim == 0 or output.shape[0] != X.shape[0]:
            raise ValueError(
                f"module returned {describe_output(output)} for {X.shape[0]} input rows; it "
                "must return a tensor with one row per input row."
            )
        return output

    def loss(self, params: Params, X: Tensor, y: Tensor, w: Tensor, buffers=None) -> Tensor:
        """Loss of the module with ``params`` on the rows ``(X, y)`` weighted by ``w``."""
        return self.loss_fn(self(params, X, buffers), y, w)

    def support_loss(self, X: Tensor, y: Tensor, w: Tensor):
        """``loss_of(params, buffers)`` on these rows, for :func:`~._inner.inner_loop`
        (which passes the buffers along with ``buffers=self.buffers``)."""
        return lambda params, buffers: self.loss(params, X, y, w, buffers)
