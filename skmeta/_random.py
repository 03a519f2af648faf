"""Random draws from an estimator's own generator, never from torch's global one.

Modules draw random numbers through torch's global generator: ``nn.Dropout``
masks, the ``nn.init`` calls of a module's constructor, a ``DataLoader``'s
shuffling. An estimator must take every draw from its own seeded
:class:`torch.Generator` instead, so that equal ``random_state`` gives equal
results whatever the caller did to the global generator, in any thread or
process; reseeding the global generator is no answer (it is shared by all
threads, and it is the caller's).

:class:`OwnGenerator` is a :class:`~torch.overrides.TorchFunctionMode` that
gives ``generator=`` to every random function called while it is active, and
computes dropout masks from it. Torch function modes are per thread, so one
thread's mode never reaches another's draws. The mode costs a Python call per
torch operation: estimators enter it only for modules that draw random numbers
(found once per fit by :func:`draws_random_numbers`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import init
from torch.overrides import TorchFunctionMode

# Random functions that accept ``generator=``: they get the mode's one when given none.
_TAKE_GENERATOR = frozenset(
    {
        torch.rand,
        torch.randn,
        torch.randint,
        torch.randperm,
        torch.bernoulli,
        torch.normal,
        torch.multinomial,
        torch.poisson,
        Tensor.uniform_,
        Tensor.normal_,
        Tensor.bernoulli_,
        Tensor.bernoulli,
        Tensor.random_,
        Tensor.exponential_,
        Tensor.geometric_,
        Tensor.cauchy_,
        Tensor.log_normal_,
        Tensor.multinomial,
        # nn.init dispatches to the mode before drawing: it must get the generator itself.
        init.uniform_,
        init.normal_,
        init.trunc_normal_,
        init.kaiming_uniform_,
        init.kaiming_normal_,
        init.xavier_uniform_,
        init.xavier_normal_,
        init.orthogonal_,
        init.sparse_,
    }
)

# ``*_like`` draws, which take no generator: rewritten as the plain draw of that shape.
_LIKE = {torch.rand_like: torch.rand, torch.randn_like: torch.randn}

# Dropout functions by the number of trailing dimensions a mask entry covers
# (0: every element; k: whole channels of a k-d feature map).
_DROPOUT = {F.dropout: 0, F.dropout1d: 1, F.dropout2d: 2, F.dropout3d: 3}

# Random functions that cannot take a generator and are not rewritten here.
_UNSUPPORTED = frozenset(
    {
        F.alpha_dropout,
        F.feature_alpha_dropout,
        F.rrelu,
        F.rrelu_,
        torch.rrelu,
        torch.randint_like,
        torch.dropout,
        torch.feature_dropout,
        torch.alpha_dropout,
        torch.feature_alpha_dropout,
    }
)

_RANDOM = _TAKE_GENERATOR | frozenset(_LIKE) | frozenset(_DROPOUT) | _UNSUPPORTED


def _argument(args, kwargs, position: int, name: str, default):
    return args[position] if len(args) > position else kwargs.get(name, default)


def _dropout(input: Tensor, p: float, training: bool, inplace: bool, feature_dims: int, generator):
    """Inverted dropout with a mask drawn from ``generator`` (``F.dropout*`` semantics)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    shape = tuple(input.shape)
    if feature_dims:
        # A batched input has (N, C, *spatial), an unbatched one (C, *spatial):
        # one mask entry per channel either way.
        keep = input.dim() - feature_dims
        shape = shape[:keep] + (1,) * feature_dims
    if p == 1.0:
        mask = torch.zeros(shape, dtype=input.dtype, device=input.device)
    else:
        # Out of place: under vmap an in-place draw on a fresh (unbatched) tensor
        # could not differ between tasks.
        keep = torch.full(shape, 1.0 - p, dtype=input.dtype, device=input.device)
        mask = torch.bernoulli(keep, generator=generator) / (1.0 - p)
    return input.mul_(mask) if inplace else input * mask


class OwnGenerator(TorchFunctionMode):
    """While active (``with OwnGenerator(generator):``), random draws in this
    thread come from ``generator``.

    Parameters
    ----------
    generator : torch.Generator or None
        The source of every draw; on the device of the tensors drawn. None
        records whether any random function was called (``used``) and
        changes nothing.

    Raises ``TypeError`` for the few random functions that cannot take a
    generator (``alpha_dropout``, ``rrelu`` in training mode, ``randint_like``):
    drawing them from the global generator would break reproducibility silently.
    """

    def __init__(self, generator: torch.Generator | None):
        super().__init__()
        self.generator = generator
        self.used = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func not in _RANDOM:
            return func(*args, **kwargs)
        if func in _DROPOUT:
            p = _argument(args, kwargs, 1, "p", 0.5)
            training = _argument(args, kwargs, 2, "training", True)
            inplace = _argument(args, kwargs, 3, "inplace", False)
            if not training or p == 0.0:
                return func(*args, **kwargs)  # no draw
            self.used = True
            if self.generator is None:
                return func(*args, **kwargs)
            return _dropout(args[0], p, training, inplace, _DROPOUT[func], self.generator)
        if func in (F.rrelu, F.rrelu_) and not _argument(args, kwargs, 3, "training", False):
            return func(*args, **kwargs)  # random only in training mode
        self.used = True
        if self.generator is None:
            return func(*args, **kwargs)
        if func in _TAKE_GENERATOR:
            if kwargs.get("generator") is None:
                kwargs["generator"] = self.generator
            return func(*args, **kwargs)
        if func in _LIKE:
            like = args[0]
            return _LIKE[func](
                like.shape,
                generator=self.generator,
                dtype=kwargs.get("dtype") or like.dtype,
                device=kwargs.get("device") or like.device,
                requires_grad=kwargs.get("requires_grad", False),
            )
        raise TypeError(
            f"The module calls {getattr(func, '__name__', func)}, which draws random numbers "
            "from torch's global generator and cannot take the estimator's own; skmeta "
            "draws every random number from the estimator's generators so that "
            "random_state reproduces a run. Use nn.Dropout / F.dropout instead."
        )


def own_randomness(generator: torch.Generator, active: bool = True):
    """``OwnGenerator(generator)`` when ``active``, else a context that does nothing."""
    return OwnGenerator(generator) if active else nullcontext()


def draws_random_numbers(call: Callable[[], object]) -> bool:
    """Whether ``call()`` (e.g. a module's forward in training mode) calls a random function."""
    with OwnGenerator(None) as recorder:
        call()
    return recorder.used
