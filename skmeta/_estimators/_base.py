"""Machinery shared by every skmeta estimator, whatever its algorithm.

Parameters (``module`` / ``module__*``), device, the one seeding path, module
construction, and the task-level methods: ``adapt``, predictions and
few-shot scoring, each through the estimator's algorithm object (a pure
settings object of :mod:`skmeta._algorithms`) and target strategy
(:mod:`skmeta._targets`). Nothing here knows how an algorithm trains or
adapts: the algorithm does.
"""

from __future__ import annotations

import copy
import numbers
import warnings
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .. import _functional as fn
from .. import _tasks
from .._modules import MLP
from .._persistence import PersistenceMixin
from .._warnings import SingleTaskWarning, UnadaptedPredictionWarning
from ._params import check_shots, check_verbose

_MODULE_PREFIX = "module__"
# A long-format fit without task ids on this many rows or more may warn (SingleTaskWarning).
ONE_TASK_WARNING_ROWS = 1000


class TaskEstimator(PersistenceMixin, BaseEstimator):
    """Common base of the skmeta estimators (not for direct use).

    A family subclass defines ``__init__`` (keyword-only, storing parameters
    unchanged, ``**kwargs`` for ``module__*``), ``_check_params``,
    ``_algorithm`` (its configured algorithm object), ``_n_outputs`` and its
    training. A target mixin (:class:`~._outputs.RegressorOutputs` or
    :class:`~._outputs.ClassifierOutputs`) supplies ``_target`` and the
    sklearn-facing outputs.
    """

    # Task ids reach fit/score with metadata routing on, with no set_*_request call.
    __metadata_request__fit = {"groups": True}
    __metadata_request__partial_fit = {"groups": True}
    __metadata_request__score = {"groups": True}

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
        check_verbose(self.verbose)
        if not isinstance(self.hidden_layer_sizes, (list, tuple)) or not all(
            isinstance(h, numbers.Integral) and h > 0 for h in self.hidden_layer_sizes
        ):
            raise ValueError(
                "hidden_layer_sizes must be a tuple of positive ints, "
                f"got {self.hidden_layer_sizes!r}."
            )

    def _clear_fit(self) -> None:
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("module__")]:
            delattr(self, name)

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

    def _check_module_output(self, X_sample: torch.Tensor, width: int) -> None:
        """Run a forward pass on a couple of rows and check the output's shape."""
        with torch.no_grad():
            try:
                output = self.module_(X_sample)
            except Exception as exc:
                raise ValueError(
                    f"module failed on input of shape {tuple(X_sample.shape)} "
                    f"({self.n_features_in_} features): {exc}"
                ) from exc
        self._target.check_output(output, len(X_sample), width)

    def _network(self) -> fn.Network:
        """The fitted module as a pure function, with copies of its buffers.

        Copies: adaptation in training mode must not move the running stats.
        """
        buffers = {name: b.detach().clone() for name, b in self.module_.named_buffers()}
        return fn.Network(self.module_, self._target.loss, buffers)

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

    # ---------------------------------------------------------------- algorithm hooks
    def _algorithm(self, n_classes: int | None = None):
        """The configured algorithm object; ``n_classes`` sizes class heads and prototypes."""
        raise NotImplementedError

    def _adaptation_classes(self, n_classes: int | None):
        """Hook: classifiers check a task's class count before adapting to it."""

    # ---------------------------------------------------------------- adapt / predict
    def adapt(self, X, y):
        """Adapt to a new task from its support examples.

        Starts every time from the learned initialisation (meta-learned, or
        pretrained for fine-tuning) and adapts on ``(X, y)`` with the
        estimator's adaptation settings (gradient steps, or prototypes for
        Prototypical Networks). The learned initialisation is not changed,
        so calling ``adapt`` twice with the same data gives the same model;
        :meth:`predict` then uses the adapted model.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_support, n_features)
        y : array-like of shape (n_support,)

        Returns
        -------
        self
        """
        check_is_fitted(self, "meta_params_")
        self._check_params()
        X, y, classes = _tasks.read_task(self, X, y, classification=self._target.classification)
        self._adaptation_classes(classes)
        adapted = self._adapted(X, y, n_classes=None if classes is None else len(classes))
        self.adapted_params_ = adapted
        if classes is not None:
            self.classes_ = classes
        return self

    def _adapted(self, X: np.ndarray, y: np.ndarray, n_classes: int | None) -> dict:
        """The adapted model for rows already read (``y`` coded for classification)."""
        algorithm = self._algorithm(n_classes=n_classes)
        X_t, y_t = self._as_tensor(X), self._as_tensor(y)
        w = torch.ones(len(y), dtype=X_t.dtype, device=self.device_)
        net, meta = self._network(), self.meta_params_.tree(detach=True)
        with torch.no_grad(), self._module_mode(algorithm.adapt_in_train_mode):
            adapted = algorithm.adapt(net, meta, X_t, y_t, w)
        return {name: t.detach() for name, t in adapted.items()}

    def _forward(self, X) -> torch.Tensor:
        """Outputs for ``X`` with the adapted model, else the learned initialisation."""
        check_is_fitted(self, "meta_params_")
        X = _tasks.read_features(self, X)
        adapted = getattr(self, "adapted_params_", None)
        if adapted is None:
            self._warn_unadapted()
        algorithm = self._algorithm(n_classes=None)
        net, meta = self._network(), self.meta_params_.tree(detach=True)
        with torch.no_grad(), self._module_mode(False):
            return algorithm.predict(net, meta, adapted, self._as_tensor(X))

    def _warn_unadapted(self) -> None:
        """Warn, once per fit, that a model fit on several tasks predicts unadapted."""
        if not vars(self).get("_unadapted_warning_due", False):
            return  # leaves the estimator's __dict__ as it was (sklearn's check_dict_unchanged)
        self._unadapted_warning_due = False
        warnings.warn(
            f"This {type(self).__name__} was fit on several tasks and has not been adapted: "
            "its predictions come from the learned initialisation, which is meant to be "
            "adapted to a task first. Call adapt(X_support, y_support) before predicting; "
            "to score it few-shot in cross_validate or GridSearchCV, use "
            "scoring=skmeta.make_few_shot_scorer(...) (scoring='r2' and the other "
            "scikit-learn scorer names score this unadapted model), or its own score with "
            "tasks (groups, task_col or a list of tasks). Shown once per fit.",
            UnadaptedPredictionWarning,
            stacklevel=4,
        )

    def _warn_if_one_large_task(self, X, y, groups, taskset: _tasks.TaskSet) -> None:
        """Warn when long-format rows without task ids look like several tasks.

        The rule: ``fit`` got no ``groups``, no ``task_col`` and no list of
        tasks, and the one task it made has at least
        :data:`ONE_TASK_WARNING_ROWS` rows and at least 20 times the rows of
        its support set (``shots`` rows, or ``shots`` per class; an int
        ``shots`` of 10 when it is not a number). scikit-learn's estimator
        checks use at most a few hundred rows.
        """
        n_rows = len(taskset.y)
        task_col = getattr(self, "task_col", None)
        if n_rows < ONE_TASK_WARNING_ROWS or _tasks.has_tasks(X, y, groups, task_col):
            return
        shots = self.shots
        if isinstance(shots, numbers.Real) and not isinstance(shots, numbers.Integral):
            n_support = shots * n_rows
        else:
            per_stratum = shots if isinstance(shots, numbers.Integral) else 10
            n_classes = len(taskset.classes[0]) if self._target.classification else 1
            n_support = per_stratum * n_classes
        if n_rows < 20 * n_support:
            return
        warnings.warn(
            f"{type(self).__name__}.fit got {n_rows} rows with groups=None and no task_col, "
            "so it treats them all as ONE task. If the rows come from several tasks, pass "
            "their ids: fit(X, y, groups=task_ids). In cross_validate, cross_val_score and "
            "GridSearchCV, groups reach fit only with metadata routing on "
            "(sklearn.set_config(enable_metadata_routing=True)); without it, name a "
            "DataFrame column of task ids with task_col, or pass a list of (X_i, y_i) tasks.",
            SingleTaskWarning,
            stacklevel=4,
        )

    def _after_fit_on(self, n_tasks: int) -> None:
        """Arm the :class:`~skmeta.UnadaptedPredictionWarning` after a fit on several tasks
        (a sampler counts as several); a single-task fit predicts as a plain model."""
        self._unadapted_warning_due = n_tasks > 1

    # ---------------------------------------------------------------- few-shot score
    def _few_shot_score(self, taskset: _tasks.TaskSet) -> float:
        """Adapt on each task's support part, score the query parts (the target's few-shot
        score: pooled R², or the mean accuracy over tasks)."""
        target = self._target
        terms = [
            target.query_terms(outputs, chunk.y_query, chunk.w_query)
            for chunk, outputs in self._few_shot_outputs(taskset)
        ]
        return target.few_shot_score(torch.cat(terms))

    def _few_shot_outputs(self, taskset: _tasks.TaskSet):
        """Yield ``(chunk, outputs)``: a :class:`~skmeta._tasks.MetaBatch` of consecutive
        tasks, split into support and query rows as :meth:`score` splits them (seeded by
        ``random_state``), and the outputs on its query rows after adapting on its support
        rows (classification: logits, the units above a task's classes at -inf)."""
        self._check_tasks(taskset, training=False)
        target = self._target
        padded = taskset.to_padded(self.device_, self.shots, stratify=target.classification)
        generator, _ = self._rngs(self._draw_seed(), stream=0)
        batch = padded.split(generator)
        n_classes = max(map(len, taskset.classes)) if target.classification else None
        algorithm = self._algorithm(n_classes=n_classes)
        for start in range(0, padded.n_tasks, self._SCORE_CHUNK):
            chunk = _tasks.MetaBatch(*(t[start : start + self._SCORE_CHUNK] for t in batch))
            outputs = self._adapted_query_outputs(algorithm, chunk)
            yield chunk, target.task_outputs(outputs, chunk.y_support, chunk.w_support)

    def _adapted_query_outputs(self, algorithm, batch: _tasks.MetaBatch) -> torch.Tensor:
        """Outputs on each task's query rows after adapting on its support rows."""
        net, meta = self._network(), self.meta_params_.tree(detach=True)
        adapt = lambda X, y, w: algorithm.adapt(net, meta, X, y, w)
        predict = lambda adapted, X: algorithm.predict(net, meta, adapted, X)
        with torch.no_grad():
            with self._module_mode(algorithm.adapt_in_train_mode):
                adapted = fn.over_tasks(adapt, self.batching_)(
                    batch.X_support, batch.y_support, batch.w_support
                )
            with self._module_mode(False):
                return fn.over_tasks(predict, self.batching_)(adapted, batch.X_query)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.target_tags.required = True
        return tags
