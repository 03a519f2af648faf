"""The compiled meta-step: ``torch.compile`` of an algorithm's tensor-only work.

With ``compile=True`` (or a dict of :func:`torch.compile` keyword arguments)
an estimator runs two things through ``torch.compile``:

* in meta-training, the algorithm's ``outer_core`` (MAML and its family: the
  meta-loss, whose backward pass is compiled with it; Prototypical Networks:
  the episode loss; Reptile: the tasks' inner loops). The step-dependent
  values (MAML++'s loss weights) enter as tensors and the meta-gradient is
  taken outside, so one graph serves every step;
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

    def _fail(self, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        self.failure = reason
        self.functions.clear()
        warnings.warn(
            f"compile=True: torch.compile failed ({reason}); running eagerly instead.",
            UserWarning,
            stacklevel=4,
        )


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
