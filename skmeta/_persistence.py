"""Device-aware pickling, and save/load of all meta-parameters to a tensors-only file."""

from __future__ import annotations

import copy
import os
import pickle
import warnings

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


def _check_file_layout(state, path) -> None:
    """A parameter file is ``{"network": {name: tensor}, "learned": {kind: {name: tensor}}}``."""

    def named_tensors(value) -> bool:
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
        )

    learned = state.get("learned") if isinstance(state, dict) else None
    if not (
        isinstance(state, dict)
        and set(state) == {"network", "learned"}
        and named_tensors(state["network"])
        and isinstance(learned, dict)
        and all(named_tensors(v) for v in learned.values())
    ):
        raise ValueError(
            f"{os.fspath(path)!r} is not a parameter file from save_params: expected "
            "{'network': {name: tensor}, 'learned': {kind: {name: tensor}}}."
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
        learned initialisation and buffers) under ``"network"`` and what the
        algorithm learns besides (e.g. Meta-SGD's step sizes) under
        ``"learned"``, and nothing else, so :meth:`load_params` reads it with
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
        torch.save({"network": cpu(self.module_.state_dict()), "learned": learned}, path)

    def load_params(self, path: str | os.PathLike):
        """Load meta-parameters saved by :meth:`save_params` into this estimator.

        The estimator must be fitted (or initialised: ``fit`` with
        ``max_iter=1`` on data with the right number of features is enough),
        so that its meta-parameters exist, with the same architecture and
        algorithm options as the ones saved: the same names with the same
        shapes. The file is read with ``torch.load(weights_only=True)``,
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
        except pickle.UnpicklingError as exc:
            raise ValueError(
                f"{os.fspath(path)!r} holds objects other than tensors and was not loaded "
                f"(torch.load with weights_only=True refused it): {exc}"
            ) from exc
        _check_file_layout(state, path)
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
