"""The compiled meta-step: ``torch.compile`` of an algorithm's tensor-only work.

With ``compile=True`` (or a dict of :func:`torch.compile` keyword arguments)
an estimator runs two things through ``torch.compile``:

* in meta-training, the algorithm's ``outer_core``: for the algorithms
  with a meta-gradient (MAML and its family, Prototypical Networks), the
  meta-loss and its gradient together, as one function
  (:meth:`Compiled.loss_and_gradient`; with the ``"loop"`` batching, whose
  modules update buffers in place, the loss is compiled and autograd takes
  its gradient); for Reptile, the tasks' inner loops. The step-dependent
  values (MAML++'s loss weights) enter as tensors, so one graph serves
  every step;
* in few-shot ``score``, the batched adaptation and the query predictions.

Compiled callables live in a per-estimator cache that is never pickled or
cloned and is rebuilt on first use. Any failure to compile (or to run the
compiled code) falls back to eager execution, with one warning naming the
reason, for the rest of the estimator's life (until it is refit).
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Callable

import torch

# Attribute of an estimator that holds its Compiled cache; dropped when pickling.
CACHE_ATTRIBUTE = "_compiled_cache"


def check_compile(value) -> None:
    """``compile`` must be a bool or a dict of :func:`torch.compile` keyword arguments."""
    if isinstance(value, bool):
        return
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return
    raise ValueError(
        "compile must be True, False or a dict of torch.compile keyword arguments "
        f"(e.g. {{'mode': 'reduce-overhead'}}), got {value!r}."
    )


def compile_options(value) -> dict | None:
    """Keyword arguments for :func:`torch.compile`, or None when compilation is off."""
    if value is False or value is None:
        return None
    return {} if value is True else dict(value)


class Compiled:
    """Compiled versions of an estimator's functions, by key, with one eager fallback."""

    def __init__(self, options: dict):
        self.options = options
        self.functions: dict = {}
        self.failure: str | None = None
        # key -> {kind: names}: the meta-parameters that get a meta-gradient.
        self.gradient_of: dict = {}

    def wrap(self, key, function: Callable) -> Callable:
        """``function`` compiled (once per ``key``), falling back to ``function`` on failure.

        ``function`` must be pure in its tensor arguments: when the compiled
        call fails it is simply run again eagerly.
        """
        if self.failure is not None:
            return function
        compiled = self.functions.get(key)
        if compiled is None:
            try:
                compiled = torch.compile(_own_code(function), **self.options)
            except Exception as exc:  # a bad option, or no compiler on this platform
                self._fail(exc)
                return function
            self.functions[key] = compiled

        def run(*args):
            if self.failure is None:
                try:
                    return compiled(*args)
                except Exception as exc:
                    self._fail(exc)
            return function(*args)

        return run

    def loss_and_gradient(self, key, loss_of: Callable, meta, args: tuple, eager_step: Callable):
        """``(loss, meta-gradient)`` of ``loss_of(meta, *args)``, compiled as one function.

        :func:`torch.func.grad_and_value` of the loss, traced by torch.compile
        with every input detached: one inference graph holding the loss and
        its gradient, with no autograd around it (on the sinusoid MLP at
        meta-batch 25, about twice the speed of the compiled loss followed by
        autograd's backward pass through the compiled graph).

        The gradient covers the meta-parameters that ``eager_step()`` (the
        eager ``(loss, meta-gradient)``, run for the first step of each
        ``key``) gave one: those that require a gradient and that the loss
        uses. The others get none, as eagerly, so the outer optimizer skips
        them rather than stepping on a zero gradient.
        """
        wrt = self.gradient_of.get(key)
        if wrt is None or self.failure is not None:
            loss, gradient = eager_step()
            self.gradient_of[key] = {kind: tuple(grads) for kind, grads in gradient.items()}
            return loss, gradient
        run = self.wrap(("gradient", key), _with_gradient(loss_of))
        fixed = {kind: {name: t.detach() for name, t in ts.items()} for kind, ts in meta.items()}
        differentiated = {kind: {name: fixed[kind][name] for name in wrt[kind]} for kind in wrt}
        return run(differentiated, fixed, *args)

    def _fail(self, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        self.failure = reason
        self.functions.clear()
        warnings.warn(
            f"compile=True: torch.compile failed ({reason}); running eagerly instead.",
            UserWarning,
            stacklevel=4,
        )


def _with_gradient(loss_of: Callable) -> Callable:
    """``(differentiated, fixed, *args) -> (loss, gradient)``: the gradient of
    ``loss_of(meta, *args)`` with respect to the ``differentiated`` entries of
    ``meta`` (``fixed`` holds every entry)."""

    def loss_and_gradient(differentiated, fixed, *args):
        def loss(differentiated):
            meta = {
                kind: {name: differentiated.get(kind, {}).get(name, t) for name, t in ts.items()}
                for kind, ts in fixed.items()
            }
            return loss_of(meta, *args)

        gradient, value = torch.func.grad_and_value(loss)(differentiated)
        return value, gradient

    return loss_and_gradient


def _own_code(function: Callable) -> Callable:
    """``function`` with a code object of its own.

    torch.compile caches graphs per code object and stops compiling one
    after a few recompilations (``torch._dynamo.config.recompile_limit``):
    without a copy, every estimator of a grid search would share the cache
    of one code object and the later ones would silently run eagerly.
    """
    return types.FunctionType(
        function.__code__.replace(),
        function.__globals__,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )


def compiled_for(estimator) -> Compiled | None:
    """The estimator's cache of compiled functions, or None when ``compile`` is off
    (or the estimator has no ``compile`` parameter, like the fine-tuning ones)."""
    options = compile_options(getattr(estimator, "compile", False))
    if options is None:
        return None
    cache = getattr(estimator, CACHE_ATTRIBUTE, None)
    if cache is None or cache.options != options:
        cache = Compiled(options)
        setattr(estimator, CACHE_ATTRIBUTE, cache)
    return cache
