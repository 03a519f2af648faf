"""Hyper-parameter checks, device resolution, and ``__init__`` for estimator variants."""

from __future__ import annotations

import inspect
import numbers

import numpy as np
import torch

from .. import _tasks, _workers


def resolve_device(device) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"`` or a :class:`torch.device` -> device.

    ``"auto"`` picks CUDA when available. Raises ``ValueError`` for unknown
    strings and for CUDA when no CUDA device is available.
    """
    if device == "auto":
        # After a fork from a parent that used CUDA, CUDA cannot work: stay on the CPU.
        use_cuda = not _workers.in_bad_fork() and torch.cuda.is_available()
        return torch.device("cuda" if use_cuda else "cpu")
    if isinstance(device, torch.device):
        resolved = device
    elif isinstance(device, str):
        try:
            resolved = torch.device(device)
        except RuntimeError:
            resolved = None
    else:
        raise TypeError(f"device must be a string or torch.device, got {type(device).__name__}.")
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise ValueError(
            f"Unknown device {device!r}: use 'cpu', 'cuda', 'cuda:N' or 'auto' "
            "(or the torch.device of one)."
        )
    if resolved.type == "cuda" and _workers.in_bad_fork():
        raise ValueError(
            f"device={device!r} in a process forked after its parent initialised CUDA, "
            "where CUDA cannot be used; run parallel fits in spawned workers (joblib's "
            "default loky backend, Dask or Ray) or with device='cpu'."
        )
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} but CUDA is not available on this machine; "
            "use device='cpu' or device='auto'."
        )
    if resolved.type == "cuda" and resolved.index is not None:
        count = torch.cuda.device_count()
        if resolved.index >= count:
            raise ValueError(
                f"device={device!r} but this machine has {count} CUDA device(s) "
                f"(cuda:0 to cuda:{count - 1}); use one of them or device='auto'."
            )
    return resolved


def check_number(name: str, value, *, integer: bool = False, minimum=0, strict: bool = True):
    """Raise ``ValueError`` unless ``value`` is a number above ``minimum``."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {expected}, got {value!r}.")
    if not np.isfinite(value) or value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be {relation} {minimum}, got {value!r}.")


def check_verbose(verbose) -> None:
    """``verbose`` is True, False or an integer >= 0 (as in scikit-learn)."""
    if isinstance(verbose, (bool, np.bool_)):
        return
    if not isinstance(verbose, numbers.Integral) or verbose < 0:
        raise ValueError(f"verbose must be True, False or an integer >= 0, got {verbose!r}.")


def check_choice(name: str, value, choices) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if not any(value is c or (isinstance(value, str) and value == c) for c in choices):
        raise ValueError(f"{name} must be one of {choices}, got {value!r}.")


def check_shots(shots) -> None:
    """``shots`` is ``"auto"``, a positive int (rows, or rows per class) or a fraction in (0, 1)."""
    if isinstance(shots, str) and shots == "auto":
        return
    if isinstance(shots, numbers.Integral) and not isinstance(shots, bool):
        check_number("shots", shots, integer=True)
    elif isinstance(shots, numbers.Real) and not isinstance(shots, bool) and 0 < shots < 1:
        return
    else:
        raise ValueError(
            'shots must be "auto", a positive int or a fraction strictly between 0 and 1, '
            f"got {shots!r}."
        )


def check_two_classes(labels: np.ndarray, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` when ``labels`` has a single class."""
    if len(labels) < 2:
        raise ValueError(
            f"{what} has one class only ({_tasks.task_name(labels[0])!r}); a classification "
            "task needs at least 2 classes."
        )


def store_parameters(estimator, arguments: dict) -> None:
    """Store an ``__init__``'s arguments unchanged: ``store_parameters(self, locals())``.

    Every named parameter becomes an attribute of the same name, as
    scikit-learn requires; ``kwargs`` (``module__*``) go to
    ``_store_module_kwargs``. The signature is the single list of parameters.
    """
    for name, value in arguments.items():
        if name == "kwargs":
            estimator._store_module_kwargs(value)
        elif name not in ("self", "__class__"):
            setattr(estimator, name, value)


def with_parameters(**changes):
    """Class decorator: the class's ``__init__`` with the inherited parameters, some defaults
    changed or added.

    scikit-learn reads an estimator's parameters from its ``__init__``
    signature, so a variant with one more parameter (a classifier's
    ``n_way``) or other defaults needs its own signature. Rather than
    repeating every parameter, the variant's ``__init__`` is derived from the
    inherited one: names already there get the new default, new names become
    keyword-only parameters before ``**kwargs``. Like every estimator
    ``__init__`` here, it stores each parameter unchanged
    (:func:`store_parameters`).
    """

    def decorate(cls):
        signature = inspect.signature(cls.__init__)
        parameters = [
            p.replace(default=changes[p.name]) if p.name in changes else p
            for p in signature.parameters.values()
            if p.kind != p.VAR_KEYWORD
        ]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
            for name, default in changes.items()
            if name not in signature.parameters
        ]
        var_keyword = [p for p in signature.parameters.values() if p.kind == p.VAR_KEYWORD]
        derived = signature.replace(parameters=parameters + added + var_keyword)

        def __init__(self, *args, **kwargs):
            bound = derived.bind(self, *args, **kwargs)
            bound.apply_defaults()
            store_parameters(self, bound.arguments)

        __init__.__signature__ = derived
        __init__.__module__ = cls.__module__
        __init__.__qualname__ = f"{cls.__qualname__}.__init__"
        cls.__init__ = __init__
        return cls

    return decorate
