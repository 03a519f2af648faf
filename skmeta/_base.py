"""Machinery shared by every skmeta estimator.

Module construction (``module`` / ``module__*``), device resolution, the one
seeding path, hyper-parameter checks, prediction with the adapted or
meta-learned parameters, and few-shot scoring. Nothing here knows how an
estimator meta-trains or adapts: subclasses provide that.
"""

from __future__ import annotations

import copy
import numbers
import os
import pickle
import warnings
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.func import functional_call

from . import _functional as fn
from . import _tasks
from ._modules import MLP

_MODULE_PREFIX = "module__"


def resolve_device(device) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"`` or a :class:`torch.device` -> device.

    ``"auto"`` picks CUDA when available. Raises ``ValueError`` for unknown
    strings and for CUDA when no CUDA device is available.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        resolved = device
    elif isinstance(device, str):
        try:
            resolved = torch.device(device)
        except RuntimeError:
            resolved = None
        if resolved is None or resolved.type not in ("cpu", "cuda"):
            raise ValueError(f"Unknown device {device!r}: use 'cpu', 'cuda', 'cuda:N' or 'auto'.")
    else:
        raise TypeError(f"device must be a string or torch.device, got {type(device).__name__}.")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} but CUDA is not available on this machine; "
            "use device='cpu' or device='auto'."
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


def check_shots(shots) -> None:
    """``shots`` is a positive int (rows, or rows per class) or a fraction in (0, 1)."""
    if isinstance(shots, numbers.Integral) and not isinstance(shots, bool):
        check_number("shots", shots, integer=True)
    elif isinstance(shots, numbers.Real) and not isinstance(shots, bool) and 0 < shots < 1:
        return
    else:
        raise ValueError(
            f"shots must be a positive int or a fraction strictly between 0 and 1, got {shots!r}."
        )


def check_two_classes(labels: np.ndarray, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` when ``labels`` has a single class."""
    if len(labels) < 2:
        raise ValueError(
            f"{what} has one class only ({_tasks.task_name(labels[0])!r}); a classification "
            "task needs at least 2 classes."
        )


def _device_available(device: torch.device) -> bool:
    if device.type == "cpu":
        return True
    if device.type != "cuda" or not torch.cuda.is_available():
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


class BaseTaskEstimator(BaseEstimator):
    """Common base of the skmeta estimators (not for direct use).

    Subclasses define ``__init__`` (keyword-only, storing parameters
    unchanged, ``**kwargs`` for ``module__*``), their meta-training and
    ``_adapted_query_outputs``. A task-type mixin (regression or
    classification) supplies the loss, output width, output mapping and
    per-task query score.
    """

    # Task ids reach fit/score with metadata routing on, with no set_*_request call.
    __metadata_request__fit = {"groups": True}
    __metadata_request__partial_fit = {"groups": True}
    __metadata_request__score = {"groups": True}

    _classification = False
    _SCORE_CHUNK = 256

    # ---------------------------------------------------------------- params
    def _store_module_kwargs(self, kwargs: dict) -> None:
        # Stored unchecked (sklearn: __init__ never raises); fit rejects non-module__ names.
        for key, value in kwargs.items():
            setattr(self, key, value)

    def _check_extra_kwargs(self) -> None:
        known = set(self._get_param_names())
        unknown = [
            key
            for key in vars(self)
            if key not in known
            and not key.endswith("_")
            and not key.startswith("_")
            and not key.startswith(_MODULE_PREFIX)
        ]
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected parameter(s) {sorted(unknown)}; "
                "only module__<name> parameters are routed to the module."
            )

    def _module_kwargs(self) -> dict:
        return {
            key[len(_MODULE_PREFIX) :]: value
            for key, value in vars(self).items()
            if key.startswith(_MODULE_PREFIX)
        }

    def get_params(self, deep: bool = True) -> dict:
        params = super().get_params(deep=deep)
        params.update({k: v for k, v in vars(self).items() if k.startswith(_MODULE_PREFIX)})
        return params

    def set_params(self, **params):
        for key in [k for k in params if k.startswith(_MODULE_PREFIX)]:
            setattr(self, key, params.pop(key))
        return super().set_params(**params)

    def _check_common_params(self) -> None:
        self._check_extra_kwargs()
        check_shots(self.shots)
        check_number("verbose", self.verbose, integer=True, minimum=0, strict=False)
        if not isinstance(self.hidden_layer_sizes, (list, tuple)) or not all(
            isinstance(h, numbers.Integral) and h > 0 for h in self.hidden_layer_sizes
        ):
            raise ValueError(
                "hidden_layer_sizes must be a tuple of positive ints, "
                f"got {self.hidden_layer_sizes!r}."
            )

    # ---------------------------------------------------------------- seeding
    def _draw_seed(self) -> int:
        """A fresh base seed from ``random_state`` (fixed for an int, random for None)."""
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _rngs(self, seed: int, stream: int):
        """Torch generator (on ``device_``) and numpy RandomState for one stream.

        The single seeding path: every random draw of an estimator comes from
        ``(seed, stream)``, so equal ``random_state`` gives equal runs, and
        successive ``partial_fit`` calls (stream = ``n_iter_``) differ.
        """
        torch_seed, numpy_seed = np.random.SeedSequence([seed, stream]).generate_state(2)
        generator = torch.Generator(device=self.device_)
        generator.manual_seed(int(torch_seed))
        return generator, np.random.RandomState(int(numpy_seed))

    # ---------------------------------------------------------------- module
    def _build_module(self, n_features: int, n_outputs: int, seed: int) -> nn.Module:
        """Instantiate ``module`` (class, instance or None) on ``device_``, seeded."""
        module, kwargs = self.module, self._module_kwargs()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if module is None:
                built = MLP(n_features, n_outputs, tuple(self.hidden_layer_sizes), **kwargs)
            elif isinstance(module, nn.Module):
                if kwargs:
                    raise ValueError(
                        f"module__ parameters {sorted(kwargs)} need module to be a class, "
                        "but an instance was given."
                    )
                built = copy.deepcopy(module)
            elif isinstance(module, type) and issubclass(module, nn.Module):
                try:
                    built = module(**kwargs)
                except TypeError as exc:
                    raise TypeError(
                        f"Could not build {module.__name__}(**{kwargs}): {exc}"
                    ) from exc
            else:
                raise TypeError(
                    "module must be a torch.nn.Module subclass or instance, or None; "
                    f"got {type(module).__name__}."
                )
        built = built.to(self.device_)
        if not any(p.requires_grad for p in built.parameters()):
            raise ValueError("module has no trainable parameters.")
        return built

    def _check_module_output(self, X_sample: torch.Tensor) -> None:
        """Run a forward pass on a couple of rows and check the output width."""
        with torch.no_grad():
            try:
                output = self.module_(X_sample)
            except Exception as exc:
                raise ValueError(
                    f"module failed on input of shape {tuple(X_sample.shape)} "
                    f"({self.n_features_in_} features): {exc}"
                ) from exc
        self._check_output_shape(output, len(X_sample))

    def _params(self) -> dict:
        """Meta-learned parameters, detached (for adaptation and prediction)."""
        return {name: p.detach() for name, p in self.module_.named_parameters()}

    def _buffers(self) -> dict:
        # Copies: adaptation in training mode must not move the module's running stats.
        return {name: b.detach().clone() for name, b in self.module_.named_buffers()}

    @contextmanager
    def _module_mode(self, training: bool):
        previous = self.module_.training
        self.module_.train(training)
        try:
            yield self.module_
        finally:
            self.module_.train(previous)

    def _as_tensor(self, array: np.ndarray) -> torch.Tensor:
        array = np.ascontiguousarray(array)
        if not array.flags.writeable:  # e.g. a read-only memmap: torch needs writable memory
            array = array.copy()
        return torch.from_numpy(array).to(self.device_)

    # ---------------------------------------------------------------- predict
    def _forward(self, X) -> torch.Tensor:
        """Network output for ``X`` with the adapted parameters, else the meta-init."""
        check_is_fitted(self, "module_")
        X = _tasks.read_features(self, X)
        params = getattr(self, "adapted_params_", None) or self._params()
        with torch.no_grad(), self._module_mode(False) as module:
            return functional_call(module, (params, self._buffers()), (self._as_tensor(X),))

    # ---------------------------------------------------------------- score
    def _few_shot_score(self, taskset: _tasks.TaskSet) -> float:
        """Adapt on each task's support part, score its query part, average over tasks."""
        padded = taskset.to_padded(self.device_, self.shots, stratify=self._classification)
        generator, _ = self._rngs(self._draw_seed(), stream=0)
        batch = padded.split(generator)
        scores = []
        for start in range(0, padded.n_tasks, self._SCORE_CHUNK):
            chunk = _tasks.MetaBatch(*(t[start : start + self._SCORE_CHUNK] for t in batch))
            outputs = self._adapted_query_outputs(chunk)
            scores.append(self._query_scores(outputs, chunk.y_query, chunk.w_query))
        return float(torch.cat(scores).mean())

    # ---------------------------------------------------------------- adaptation
    def _adaptation(self, y_support: torch.Tensor, w_support: torch.Tensor):
        """How this estimator adapts: ``(adapt_fn, loss_fn, start params, settings)``.

        ``adapt_fn`` is a pure function of :mod:`skmeta._functional` with the
        signature of :func:`~skmeta._functional.adapt`; the targets let
        classifiers size a fresh head.
        """
        raise NotImplementedError

    def _set_task_classes(self, classes) -> None:
        """Classifiers record the adapted task's labels."""

    def adapt(self, X, y):
        """Adapt to a new task from its support examples.

        Starts every time from the learned initialisation (meta-learned for
        MAML, pretrained for fine-tuning) and runs ``adapt_steps`` steps on
        ``(X, y)``, with the estimator's adaptation settings. The learned
        initialisation is not changed, so calling ``adapt`` twice with the
        same data gives the same model; :meth:`predict` then uses the adapted
        parameters.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_support, n_features)
        y : array-like of shape (n_support,)

        Returns
        -------
        self
        """
        check_is_fitted(self, "module_")
        self._check_params()
        X, y, classes = _tasks.read_task(self, X, y, classification=self._classification)
        self._set_task_classes(classes)
        X_t, y_t = self._as_tensor(X), self._as_tensor(y)
        w = torch.ones(len(y), dtype=X_t.dtype, device=self.device_)
        adapt_fn, loss_fn, params, settings = self._adaptation(y_t, w)
        with torch.no_grad(), self._module_mode(True) as module:
            adapted = adapt_fn(module, loss_fn, params, self._buffers(), X_t, y_t, w, settings)
        self.adapted_params_ = {name: p.detach() for name, p in adapted.items()}
        return self

    def _adapted_query_outputs(self, batch: _tasks.MetaBatch) -> torch.Tensor:
        """Outputs on each task's query rows after adapting on its support rows."""
        adapt_fn, loss_fn, params, settings = self._adaptation(batch.y_support, batch.w_support)
        buffers = self._buffers()
        with torch.no_grad():
            with self._module_mode(True) as module:
                batching = getattr(self, "batching_", None) or fn.choose_batching(
                    module, loss_fn, params, buffers, batch, fn.InnerLoop(1e-3, 1, True)
                )
                adapted = fn.adapt_batch(
                    module,
                    loss_fn,
                    params,
                    buffers,
                    batch.X_support,
                    batch.y_support,
                    batch.w_support,
                    settings,
                    batching=batching,
                    adapt_fn=adapt_fn,
                )
            with self._module_mode(False) as module:
                return fn.predict_batch(module, adapted, buffers, batch.X_query, batching=batching)

    # ---------------------------------------------------------------- persistence
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
        """Save the meta-learned parameters to a tensors-only file.

        The file holds the module's ``state_dict`` (parameters and buffers,
        on the CPU) and nothing else, so :meth:`load_params` reads it with
        ``torch.load(weights_only=True)``: loading cannot run code. Unlike a
        pickle of the estimator, it does not keep the hyper-parameters, the
        training history or an adaptation.

        Parameters
        ----------
        path : str or path-like
            Where to write (conventionally ``*.pt``).
        """
        check_is_fitted(self, "module_")
        state = {name: t.detach().cpu() for name, t in self.module_.state_dict().items()}
        torch.save(state, path)

    def load_params(self, path: str | os.PathLike):
        """Load meta-parameters saved by :meth:`save_params` into this estimator.

        The estimator must be fitted (or initialised: ``fit`` with
        ``max_iter=1`` on data with the right number of features is enough),
        so that ``module_`` exists, and its module must have the same
        architecture as the one saved: the same parameter and buffer names
        with the same shapes. The file is read with
        ``torch.load(weights_only=True)``, which refuses anything but tensors
        and plain containers, so loading cannot run code. Any adaptation is
        dropped and the outer optimizer's moments are reset; ``n_iter_`` and
        ``loss_curve_`` are kept.

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
            "module_",
            msg=(
                f"This {type(self).__name__} has no module_ to load parameters into: fit it "
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
        if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
        ):
            raise ValueError(
                f"{os.fspath(path)!r} is not a parameter file from save_params: expected a "
                "dict of named tensors."
            )
        expected = self.module_.state_dict()
        problems = [f"missing {name!r}" for name in expected if name not in state]
        problems += [f"unexpected {name!r}" for name in state if name not in expected]
        problems += [
            f"{name!r} has shape {tuple(state[name].shape)} in the file but "
            f"{tuple(t.shape)} in module_"
            for name, t in expected.items()
            if name in state and state[name].shape != t.shape
        ]
        if problems:
            raise ValueError(
                "The saved parameters do not fit this estimator's module (a different "
                f"architecture?): {'; '.join(problems)}."
            )
        bad = [n for n, t in state.items() if t.is_floating_point() and not t.isfinite().all()]
        if bad:
            raise ValueError(f"The saved parameters {bad} contain NaN or inf.")
        self.module_.load_state_dict(state)
        self.adapted_params_ = None
        if hasattr(self, "optimizer_"):
            self.optimizer_.state.clear()  # Adam's moments belonged to the old parameters
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.target_tags.required = True
        return tags


class FewShotScoreMixin:
    """``score`` that scores tasks few-shot when tasks are given, plainly otherwise."""

    def score(self, X, y=None, sample_weight=None, groups=None):
        """Score on tasks (few-shot) or on plain data.

        With tasks (``groups``, a list of ``(X_i, y_i)``, or ``task_col``):
        each task is split into support (``shots``) and query rows with a
        split seeded by ``random_state``, the estimator adapts on the support
        rows from the meta-learned initialisation, the query rows are scored
        (R² for regressors, accuracy for classifiers) and the mean over tasks
        is returned. Without tasks: the plain score of the current parameters
        (adapted if :meth:`adapt` ran).

        Parameters
        ----------
        X : array-like, DataFrame or list of (X_i, y_i)
        y : array-like of shape (n_samples,), optional
        sample_weight : array-like of shape (n_samples,), optional
            Plain scoring only.
        groups : array-like of shape (n_samples,), optional
            Task id of each row.

        Returns
        -------
        score : float
        """
        check_is_fitted(self, "module_")
        if _tasks.has_tasks(X, y, groups, getattr(self, "task_col", None)):
            if sample_weight is not None:
                raise ValueError("sample_weight is not supported when scoring on tasks.")
            taskset = _tasks.read_tasks(
                self, X, y, groups, reset=False, classification=self._classification
            )
            return self._few_shot_score(taskset)
        return super().score(X, y, sample_weight=sample_weight)


class RegressionTaskMixin(FewShotScoreMixin, RegressorMixin):
    """Regression specifics: one output, masked MSE, R² per task."""

    _classification = False
    _loss_fn = staticmethod(fn.weighted_mse)

    def _n_outputs(self, taskset: _tasks.TaskSet) -> int:
        return 1

    def _check_output_shape(self, output: torch.Tensor, n_rows: int) -> None:
        if output.shape not in ((n_rows,), (n_rows, 1)):
            raise ValueError(
                f"module output has shape {tuple(output.shape)} for {n_rows} rows; a regressor "
                f"needs ({n_rows},) or ({n_rows}, 1). Check the module's output size."
            )

    def predict(self, X) -> np.ndarray:
        """Predict with the adapted parameters if :meth:`adapt` ran, else the meta-init.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self._forward(X).reshape(-1).cpu().numpy().astype(np.float64)

    @staticmethod
    def _query_scores(outputs: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """R² of each task's query rows (1 if perfect on constant targets, else 0)."""
        pred = outputs.reshape(y.shape)
        n = w.sum(dim=1)
        mean = (w * y).sum(dim=1) / n
        ss_res = (w * (y - pred) ** 2).sum(dim=1)
        ss_tot = (w * (y - mean[:, None]) ** 2).sum(dim=1)
        constant = ss_tot == 0
        r2 = 1 - ss_res / torch.where(constant, torch.ones_like(ss_tot), ss_tot)
        return torch.where(constant, (ss_res == 0).to(r2.dtype), r2)


class ClassificationTaskMixin(FewShotScoreMixin, ClassifierMixin):
    """N-way classification specifics: ``n_way`` logits, cross-entropy, accuracy per task.

    Every task is encoded to class codes ``0..n_classes_t - 1``; the network
    has ``n_way_`` output units, and a task with fewer classes ignores the
    units above its own (their logits are masked out in :meth:`predict`,
    :meth:`predict_proba` and few-shot scoring). The estimator must have an
    ``n_way`` parameter (None: the largest task's class count at fit).
    """

    _classification = True
    _loss_fn = staticmethod(fn.weighted_cross_entropy)

    def _n_outputs(self, taskset: _tasks.TaskSet) -> int:
        return self.n_way_

    def _check_output_shape(self, output: torch.Tensor, n_rows: int) -> None:
        if output.shape != (n_rows, self.n_way_):
            raise ValueError(
                f"module output has shape {tuple(output.shape)} for {n_rows} rows; a classifier "
                f"with n_way={self.n_way_} needs ({n_rows}, {self.n_way_}). Check the module's "
                "output size."
            )

    def _set_n_way(self, taskset: _tasks.TaskSet) -> None:
        """Fix ``n_way_`` at the first fit: the ``n_way`` parameter, or the largest task."""
        if self.n_way is not None:
            check_number("n_way", self.n_way, integer=True, minimum=2, strict=False)
            self.n_way_ = int(self.n_way)
        else:
            self.n_way_ = max(2, max(len(labels) for labels in taskset.classes))

    def _check_tasks(self, taskset: _tasks.TaskSet) -> None:
        """Every task needs 2..n_way_ classes; the error names the first that has not."""
        for t, labels in enumerate(taskset.classes):
            self._check_n_classes(labels, f"Task {_tasks.task_name(taskset.task_ids[t])!r}")

    def _check_n_classes(self, labels: np.ndarray, what: str) -> None:
        check_two_classes(labels, what)
        if len(labels) > self.n_way_:
            raise ValueError(
                f"{what} has {len(labels)} classes, more than n_way={self.n_way_} output units. "
                "Set n_way to at least the largest task's number of classes."
            )

    def _set_task_classes(self, classes: np.ndarray) -> None:
        self._check_n_classes(classes, "The task given to adapt")
        self.classes_ = classes

    def _task_logits(self, X) -> torch.Tensor:
        """Logits of the current task's classes (the columns of ``classes_``)."""
        check_is_fitted(self, "module_")
        if getattr(self, "classes_", None) is None:
            raise NotFittedError(
                f"This {type(self).__name__} was meta-trained on several tasks, whose labels "
                "mean different things: call adapt(X_support, y_support) on the task to "
                "predict before predict or predict_proba."
            )
        return self._forward(X)[:, : len(self.classes_)]

    def predict(self, X) -> np.ndarray:
        """Labels of the adapted task (or of the single fit task before any adapt).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Values from ``classes_``.
        """
        codes = self._task_logits(X).argmax(dim=1).cpu().numpy()
        return self.classes_[codes]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities for the adapted task; columns follow ``classes_``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        proba = torch.softmax(self._task_logits(X).to(torch.float64), dim=1)
        return proba.cpu().numpy()

    def _few_shot_score(self, taskset: _tasks.TaskSet) -> float:
        self._check_tasks(taskset)
        return super()._few_shot_score(taskset)

    def _adapted_query_outputs(self, batch: _tasks.MetaBatch) -> torch.Tensor:
        # Codes are 0..n_classes_t - 1 and every class has support rows, so the
        # largest support code tells which output units the task does not use.
        outputs = super()._adapted_query_outputs(batch)
        n_classes = (batch.y_support * (batch.w_support > 0)).amax(dim=1) + 1
        units = torch.arange(outputs.shape[-1], device=outputs.device)
        unused = units[None, None, :] >= n_classes[:, None, None]
        return outputs.masked_fill(unused, float("-inf"))

    @staticmethod
    def _query_scores(outputs: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Accuracy of each task's query rows."""
        correct = (outputs.argmax(dim=-1) == y).to(w.dtype)
        return (correct * w).sum(dim=1) / w.sum(dim=1)
