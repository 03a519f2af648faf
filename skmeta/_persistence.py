"""Device-aware pickling, and save/load of all meta-parameters to a tensors-only file."""

from __future__ import annotations

import copy
import os
import pickle
import warnings

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._distributed import is_main_process
from ._workers import in_bad_fork


def _device_available(device: torch.device) -> bool:
    if device.type == "cpu":
        return True
    if device.type != "cuda" or in_bad_fork() or not torch.cuda.is_available():
        return False
    return device.index is None or device.index < torch.cuda.device_count()


def _to_device(value, device: torch.device):
    """``value`` with every tensor on ``device``: modules in place, containers rebuilt."""
    if isinstance(value, nn.Module):
        return value.to(device)  # in place: Parameter objects (shared with optimizers) stay
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, torch.optim.Optimizer):
        # Its parameters moved with their module; loading its own state casts the
        # state to the parameters' device (and leaves Adam's step counters where
        # they must be).
        value.load_state_dict(value.state_dict())
        return value
    if isinstance(value, dict):
        return {key: _to_device(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value):
        return type(value)(_to_device(item, device) for item in value)
    return value


def _move_state(state: dict, names, device: torch.device) -> dict:
    """``state`` with the named entries on ``device``; modules before optimizers."""
    state = dict(state)
    is_optimizer = lambda name: isinstance(state[name], torch.optim.Optimizer)
    for name in sorted((n for n in names if n in state), key=is_optimizer):
        state[name] = _to_device(state[name], device)
    return state


def _plain(value):
    """``value`` as the plain Python values ``torch.load(weights_only=True)`` reads back,
    or None when it has none (a module class, a callable...)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        items = [_plain(v) for v in value]
        return items if all(i is not None or v is None for i, v in zip(items, value)) else None
    return None


def _describe_module(module) -> str:
    if module is None:
        return "default MLP"
    cls = module if isinstance(module, type) else type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def _about(estimator) -> dict:
    """What a parameter file holds, recorded next to its tensors."""
    from . import __version__

    options = {}
    for name, value in estimator.get_params(deep=False).items():
        options[name] = _describe_module(value) if name == "module" else _plain(value)
    return {
        "format": _FORMAT,
        "skmeta_version": __version__,
        "estimator": type(estimator).__name__,
        "options": options,
        "n_features_in": int(estimator.n_features_in_),
        "n_outputs": _plain(estimator._output_width()),
        "classes": _plain(_training_classes(estimator)),
    }


def _training_classes(estimator):
    """The labels that the learned parameters' output units stand for, or None."""
    classes = getattr(estimator, "pretrain_classes_", None)
    return getattr(estimator, "_fit_classes_", None) if classes is None else classes


_FORMAT = 1


def _check_about(estimator, about: dict, path) -> None:
    """Refuse a file written by another estimator class, or for other inputs or outputs."""
    name = repr(os.fspath(path))
    if about.get("estimator") != type(estimator).__name__:
        raise ValueError(
            f"{name} holds the parameters of a {about.get('estimator')}, not of a "
            f"{type(estimator).__name__}; load it into a {about.get('estimator')}."
        )
    expected = {
        "n_features_in": (int(estimator.n_features_in_), "features"),
        "n_outputs": (_plain(estimator._output_width()), "output units"),
    }
    for key, (value, what) in expected.items():
        if about.get(key) != value:
            raise ValueError(
                f"{name} was saved from an estimator with {about.get(key)} {what}, but this "
                f"one has {value}; fit it on data of the same shape first."
            )
    classes, saved = _plain(_training_classes(estimator)), about.get("classes")
    if classes is not None and saved is not None and classes != saved:
        raise ValueError(
            f"{name} was saved from an estimator trained on the labels {saved[:10]}, but this "
            f"one was trained on {classes[:10]}: their output units mean different classes."
        )


def _check_file_layout(state, path) -> None:
    """A parameter file is ``{"network": {name: tensor}, "learned": {kind: {name: tensor}},
    "about": {...}}``."""

    def named_tensors(value) -> bool:
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
        )

    learned = state.get("learned") if isinstance(state, dict) else None
    if not (
        isinstance(state, dict)
        and set(state) == {"network", "learned", "about"}
        and named_tensors(state["network"])
        and isinstance(learned, dict)
        and all(named_tensors(v) for v in learned.values())
        and isinstance(state["about"], dict)
    ):
        raise ValueError(
            f"{os.fspath(path)!r} is not a parameter file from save_params: expected "
            "{'network': {name: tensor}, 'learned': {kind: {name: tensor}}, 'about': {...}}"
            + (
                " (this one has no 'about' record: written by skmeta 0.1.0 before it "
                "recorded what a file holds?)."
                if isinstance(state, dict) and set(state) == {"network", "learned"}
                else "."
            )
        )


def _mismatches(expected: dict, found: dict, where: str) -> list[str]:
    problems = [f"missing {where}{name!r}" for name in expected if name not in found]
    problems += [f"unexpected {where}{name!r}" for name in found if name not in expected]
    problems += [
        f"{where}{name!r} has shape {tuple(found[name].shape)} in the file but "
        f"{tuple(t.shape)} in the estimator"
        for name, t in expected.items()
        if name in found and found[name].shape != t.shape
    ]
    return problems


class PersistenceMixin:
    """Pickles that load on any machine, and tensors-only parameter files.

    Covers every meta-parameter (``meta_params_``: the network's weights and
    buffers, and any learned step sizes) and, in pickles, the optimizer state.
    """

    def __getstate__(self):
        state = super().__getstate__()
        # Compiled callables are never pickled: they are rebuilt on first use.
        state = {k: v for k, v in state.items() if k != "_compiled_cache"}
        device = state.get("device_")
        if device is not None and device.type != "cpu":
            # Tensors travel on the CPU so the pickle loads anywhere; device_ records
            # where they go back. Copied first: pickling must not move self.
            state = _move_state(copy.deepcopy(state), list(state), torch.device("cpu"))
        return state

    def __setstate__(self, state):
        device = state.get("device_")
        if device is not None and device.type != "cpu":
            if _device_available(device):
                fitted = [name for name in state if name.endswith("_")]
                state = _move_state(state, fitted, device)
            else:
                warnings.warn(
                    f"This {type(self).__name__} was fitted on device {str(device)!r}, "
                    "which is not available here; it was loaded onto the CPU (device_ is "
                    "now 'cpu'). Refitting still uses device="
                    f"{state.get('device')!r}.",
                    UserWarning,
                    stacklevel=2,
                )
                state = dict(state, device_=torch.device("cpu"))
        super().__setstate__(state)

    def save_params(self, path: str | os.PathLike) -> None:
        """Save every meta-parameter to a tensors-only file.

        The file holds, on the CPU, the network's ``state_dict`` (its
        learned initialisation and buffers) under ``"network"``, what the
        algorithm learns besides (e.g. Meta-SGD's step sizes) under
        ``"learned"``, and under ``"about"`` what it holds: the estimator
        class, its parameters (plain values; the module as its class name),
        ``n_features_in``, the output width ``n_outputs``, the labels the
        output units stand for (``classes``, where they have a fixed meaning)
        and the skmeta version. It holds nothing else, so :meth:`load_params` reads it with
        ``torch.load(weights_only=True)``: loading cannot run code. Unlike a
        pickle of the estimator, it does not keep the hyper-parameters, the
        training history or an adaptation. In data-parallel meta-training
        (a ``torch.distributed`` process group), only rank 0 writes the file;
        every rank holds the same parameters.

        Parameters
        ----------
        path : str or path-like
            Where to write (conventionally ``*.pt``).
        """
        check_is_fitted(self, "meta_params_")
        if not is_main_process():
            return
        cpu = lambda tensors: {name: t.detach().cpu() for name, t in tensors.items()}
        learned = {kind: cpu(t.as_dict()) for kind, t in self.meta_params_.learned.items()}
        state = {
            "network": cpu(self.module_.state_dict()),
            "learned": learned,
            "about": _about(self),
        }
        torch.save(state, path)

    def load_params(self, path: str | os.PathLike):
        """Load meta-parameters saved by :meth:`save_params` into this estimator.

        The estimator must be fitted (or initialised: ``fit`` with
        ``max_iter=1`` on data with the right number of features is enough),
        so that its meta-parameters exist, with the same architecture and
        algorithm options as the ones saved: the same names with the same
        shapes. A file saved from another estimator class, for another
        number of features or output units, or (where both record them) for
        other classes is refused with a ``ValueError``, as is a file that is
        not one from :meth:`save_params` (empty, truncated, text); the
        estimator is then unchanged. The file is read with ``torch.load(weights_only=True)``,
        which refuses anything but tensors and plain containers, so loading
        cannot run code. Any adaptation is dropped and the outer optimizer's
        moments are reset; ``n_iter_`` and ``loss_curve_`` are kept.

        Parameters
        ----------
        path : str or path-like
            A file written by :meth:`save_params`.

        Returns
        -------
        self
        """
        check_is_fitted(
            self,
            "meta_params_",
            msg=(
                f"This {type(self).__name__} has no meta-parameters to load into: fit it "
                "first (max_iter=1 is enough) with the same module and number of features."
            ),
        )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except OSError:
            raise  # missing file, a directory, no permission: already clear
        except pickle.UnpicklingError as exc:
            if "Unsupported global" not in str(exc):  # not an object: garbled or text
                raise ValueError(
                    f"{os.fspath(path)!r} could not be read as a parameter file from "
                    f"save_params: {exc}"
                ) from exc
            raise ValueError(
                f"{os.fspath(path)!r} holds objects other than tensors and was not loaded "
                f"(torch.load with weights_only=True refused it): {exc}"
            ) from exc
        except Exception as exc:  # torch's errors for truncated, empty or text files
            raise ValueError(
                f"{os.fspath(path)!r} could not be read as a parameter file from save_params "
                f"(empty, truncated, or another format): {type(exc).__name__}: {exc}"
            ) from exc
        _check_file_layout(state, path)
        _check_about(self, state["about"], path)
        learned = {kind: t.as_dict() for kind, t in self.meta_params_.learned.items()}
        problems = _mismatches(self.module_.state_dict(), state["network"], "")
        problems += [
            f"missing learned {kind!r}" for kind in learned if kind not in state["learned"]
        ]
        problems += [
            f"unexpected learned {kind!r}" for kind in state["learned"] if kind not in learned
        ]
        for kind, tensors in learned.items():
            if kind in state["learned"]:
                problems += _mismatches(tensors, state["learned"][kind], f"{kind} ")
        if problems:
            raise ValueError(
                "The saved parameters do not fit this estimator's meta-parameters (a different "
                f"architecture or algorithm option?): {'; '.join(problems)}."
            )
        tensors = [*state["network"].items()]
        tensors += [(f"{k} {n}", t) for k, ts in state["learned"].items() for n, t in ts.items()]
        bad = [n for n, t in tensors if t.is_floating_point() and not t.isfinite().all()]
        if bad:
            raise ValueError(f"The saved parameters {bad} contain NaN or inf.")
        with torch.no_grad():
            self.module_.load_state_dict(state["network"])
            for kind, values in learned.items():
                for name, tensor in values.items():
                    tensor.copy_(state["learned"][kind][name])
        self.adapted_params_ = None
        if getattr(self, "optimizer_", None) is not None:
            self.optimizer_.state.clear()  # Adam's moments belonged to the old parameters
        return self
