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
import itertools
import numbers
import threading
import warnings
import weakref

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .. import _compiled, _tasks
from .. import _functional as fn
from .._modules import MLP
from .._persistence import PersistenceMixin
from .._random import OwnGenerator, own_randomness
from .._training import all_finite
from .._warnings import SingleTaskWarning, UnadaptedPredictionWarning
from ._params import check_shots, check_verbose

_MODULE_PREFIX = "module__"
# class -> its parameter names (TaskEstimator._get_param_names).
_PARAM_NAMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# A long-format fit without task ids on this many rows or more may warn (SingleTaskWarning).
ONE_TASK_WARNING_ROWS = 1000

# Streams of the estimator's seed (see ``_rngs``) for draws outside meta-training,
# which uses streams 0, 1, ... (its step counts): far from them.
_PROBE_STREAM = 2**40
_ADAPT_STREAM = 2**40 + 1
_PREDICT_STREAM = 2**40 + 2
_PRETRAIN_STREAM = 2**41  # + epochs done: fine-tune pretraining's dropout

# module_ -> per-thread shallow copies of it (see TaskEstimator._private_module).
_PRIVATE_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PRIVATE_LOCK = threading.Lock()


def _row_mixing_layers(module: nn.Module, modes) -> list[str]:
    """Names of the layers that compute statistics over rows in any of ``modes``
    (True: training mode, False: eval mode)."""
    names = []
    for name, layer in module.named_modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            if any(training or not layer.track_running_stats for training in modes):
                names.append(f"{name or 'module'} ({type(layer).__name__})")
        elif isinstance(layer, nn.InstanceNorm1d):
            names.append(f"{name or 'module'} ({type(layer).__name__})")
    return names


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
    @classmethod
    def _get_param_names(cls):
        """scikit-learn's parameter names from ``__init__``'s signature, read once per class
        (``fit``, ``partial_fit``, ``get_params`` and ``set_params`` ask at every call)."""
        names = _PARAM_NAMES.get(cls)
        if names is None:
            names = _PARAM_NAMES[cls] = super()._get_param_names()
        return list(names)

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
        """Instantiate ``module`` (class, instance or None) on ``device_``, seeded.

        Built on the CPU with every draw of its initialisation from a generator
        seeded by ``seed`` (:class:`~skmeta._random.OwnGenerator`): torch's global
        generator is neither read nor reseeded.
        """
        module, kwargs = self.module, self._module_kwargs()
        generator = torch.Generator()
        generator.manual_seed(seed)
        with OwnGenerator(generator):
            if module is None:
                unknown = sorted(set(kwargs) - {"dropout"})
                if unknown:
                    raise TypeError(
                        f"module__ parameters {unknown} were given, but module=None builds "
                        "the default MLP, which takes only module__dropout (its layers are "
                        "set by hidden_layer_sizes); pass module=YourModuleClass to use them."
                    )
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

    def _probe_module(self, X_sample: torch.Tensor) -> None:
        """Check the new ``module_``'s output on a few rows and record in
        ``_draws_random_`` whether its forward draws random numbers (dropout).

        The probe's own draws come from the estimator's generator. Modules that
        draw get every later forward pass under
        :class:`~skmeta._random.OwnGenerator`; the others skip its per-operation cost.
        """
        generator, _ = self._rngs(self._seed_, stream=_PROBE_STREAM)
        with OwnGenerator(generator) as recorder:
            self._check_module_output(X_sample, self._output_width())
        self._draws_random_ = recorder.used

    def _randomness(self, generator: torch.Generator):
        """Context in which the module's random draws come from ``generator``."""
        return own_randomness(generator, getattr(self, "_draws_random_", False))

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
        if not isinstance(output, torch.Tensor):
            raise TypeError(
                f"module returned {fn.describe_output(output)}; its forward must return one "
                "torch.Tensor (not a tuple, dict or numpy array)."
            )
        self._target.check_output(output, len(X_sample), width)

    def _private_module(self, training: bool) -> nn.Module:
        """This thread's own copy of ``module_``, in training mode or not.

        Functional calls swap tensors into the module they run, and ``train()``
        sets a flag on it: done on the shared ``module_``, a prediction in one
        thread would change another's. Each thread gets a shallow copy (its own
        submodules, the same parameter and buffer tensors, so no memory is
        duplicated and in-place updates of the meta-parameters show through).
        The copies are kept outside the estimator, per module object, so
        predicting changes nothing in the estimator's ``__dict__``.
        """
        source = self.module_
        with _PRIVATE_LOCK:
            local = _PRIVATE_COPIES.get(source)
            if local is None:
                local = _PRIVATE_COPIES[source] = threading.local()
        private = getattr(local, "module", None)
        if private is None:
            tensors = itertools.chain(source.parameters(), source.buffers())
            private = local.module = copy.deepcopy(source, memo={id(t): t for t in tensors})
        return private.train(training)

    def _check_padding_invisible(self, taskset: _tasks.TaskSet, *, modes) -> None:
        """Refuse tasks that would be padded when the module mixes rows in ``modes``.

        Tasks of unequal support or query sizes are zero-padded to equal size;
        masked losses make padding invisible unless a layer computes statistics
        over the rows of a batch (BatchNorm in training mode, or without running
        statistics; InstanceNorm1d, which on the 2-D rows of a task normalises
        each feature over the rows). Per-row normalisations (LayerNorm,
        GroupNorm) are fine.
        """
        mixing = _row_mixing_layers(self.module_, modes)
        if not mixing:
            return
        quota = taskset.support_quota(self.shots, stratify=self._target.classification)
        n_support = quota.sum(axis=1)
        n_query = taskset.sizes - n_support
        if len(np.unique(n_support)) == 1 and len(np.unique(n_query)) == 1:
            return
        raise ValueError(
            f"The module has layers that normalise over the rows of a batch ({', '.join(mixing)}), "
            "and these tasks have unequal support or query sizes (support "
            f"{n_support.min()} to {n_support.max()} rows, query {n_query.min()} to "
            f"{n_query.max()}): the zero rows that pad them to equal size would enter those "
            "statistics. Give every task the same number of rows (for classifiers, of rows "
            "per class) and an int shots, or use a per-row normalisation (LayerNorm, GroupNorm)."
        )

    def _network(self, training: bool = False) -> fn.Network:
        """The fitted module as a pure function, on this thread's copy of the
        module, with copies of its buffers.

        Copies: adaptation in training mode must not move the running stats.
        """
        buffers = {name: b.detach().clone() for name, b in self.module_.named_buffers()}
        return fn.Network(self._private_module(training), self._target.loss, buffers)

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
        net = self._network(training=algorithm.adapt_in_train_mode)
        meta = self.meta_params_.tree(detach=True)
        generator, _ = self._rngs(self._seed_, stream=_ADAPT_STREAM)
        with torch.no_grad(), self._randomness(generator):
            adapted = algorithm.adapt(net, meta, X_t, y_t, w)
        adapted = {name: t.detach() for name, t in adapted.items()}
        self._check_adaptation(all_finite(adapted.values()), "the adapted parameters")
        return adapted

    def _adaptation_hint(self) -> str:
        """What to change when adaptation diverges (each family names its step size)."""
        raise NotImplementedError

    def _check_adaptation(self, finite: bool, what: str) -> None:
        """Raise ``FloatingPointError`` when adaptation produced NaN or inf."""
        if not finite:
            raise FloatingPointError(
                f"Adaptation diverged: {what} contain NaN or inf. {self._adaptation_hint()} "
                "The estimator was left as it was before this call."
            )

    def _forward(self, X) -> torch.Tensor:
        """Outputs for ``X`` (on the CPU) with the adapted model, else the learned
        initialisation; ``FloatingPointError`` when any is NaN or inf."""
        check_is_fitted(self, "meta_params_")
        X = _tasks.read_features(self, X)
        adapted = getattr(self, "adapted_params_", None)
        if adapted is None:
            self._warn_unadapted()
        algorithm = self._algorithm(n_classes=None)
        net, meta = self._network(training=False), self.meta_params_.tree(detach=True)
        generator, _ = self._rngs(self._seed_, stream=_PREDICT_STREAM)
        with torch.no_grad(), self._randomness(generator):
            outputs = algorithm.predict(net, meta, adapted, self._as_tensor(X))
        outputs = outputs.cpu()  # the one copy to the host; the check below runs there
        if not bool(torch.isfinite(outputs).all()):
            raise FloatingPointError(
                "The model's outputs contain NaN or inf for these rows: their values are "
                "probably far larger than those seen in fit (standardise the features), or "
                "the parameters are extreme (fit or adapt with smaller step sizes)."
            )
        return outputs

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
        modes = {self._algorithm_class.adapt_in_train_mode, False}
        self._check_padding_invisible(taskset, modes=modes)
        target = self._target
        generator, _ = self._rngs(self._draw_seed(), stream=0)
        chunks = _tasks.score_batches(
            taskset, self.device_, self.shots, target.classification, generator, self._SCORE_CHUNK
        )
        n_classes = max(map(len, taskset.classes)) if target.classification else None
        algorithm = self._algorithm(n_classes=n_classes)
        for chunk in chunks:
            with self._randomness(generator):
                outputs = self._adapted_query_outputs(algorithm, chunk)
            # One copy to the host per chunk of up to _SCORE_CHUNK tasks.
            finite = bool(torch.isfinite(outputs).all())
            self._check_adaptation(finite, "the adapted models' outputs on the query rows")
            yield chunk, target.task_outputs(outputs, chunk.y_support, chunk.w_support)

    def _adapted_query_outputs(self, algorithm, batch: _tasks.MetaBatch) -> torch.Tensor:
        """Outputs on each task's query rows after adapting on its support rows."""
        # This thread's module copy: its mode is set for each half below.
        net = self._network(training=algorithm.adapt_in_train_mode)
        meta = self.meta_params_.tree(detach=True)
        module, loss_fn, batching = net.module, net.loss_fn, self.batching_

        def adapt(buffers, meta, X, y, w):
            network = fn.Network(module, loss_fn, buffers)
            one_task = lambda X, y, w: algorithm.adapt(network, meta, X, y, w)
            return fn.over_tasks(one_task, batching)(X, y, w)

        def predict(buffers, meta, adapted, X):
            network = fn.Network(module, loss_fn, buffers)
            one_task = lambda adapted, X: algorithm.predict(network, meta, adapted, X)
            return fn.over_tasks(one_task, batching)(adapted, X)

        compiled = _compiled.compiled_for(self)
        if compiled is not None:  # compile=True: both run through torch.compile
            adapt = compiled.wrap(("adapt", algorithm, batching, module), adapt)
            predict = compiled.wrap(("predict", algorithm, batching, module), predict)
        with torch.no_grad():
            module.train(algorithm.adapt_in_train_mode)
            adapted = adapt(net.buffers, meta, batch.X_support, batch.y_support, batch.w_support)
            module.train(False)
            return predict(net.buffers, meta, adapted, batch.X_query)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.target_tags.required = True
        return tags
