"""Meta-training through the outer loop, for every algorithm that has one.

``fit``/``partial_fit`` read the tasks, build the module and the algorithm's
meta-parameters on the first call, then run outer steps
(:func:`skmeta._training.run_outer_steps`) that draw a meta-batch, ask the
algorithm for its ``(loss, update)`` and apply it. MAML and its family,
Reptile and Prototypical Networks differ only in the algorithm object.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import _compiled, _distributed, _tasks, _training, _workers
from .. import _functional as fn
from .._algorithms import Step
from .._meta_parameters import MetaParameters
from ._base import TaskEstimator
from ._params import check_number, resolve_device


class MetaTrainedEstimator(TaskEstimator):
    """``fit`` and ``partial_fit`` by outer steps on meta-batches (not for direct use).

    A family defines ``_algorithm_class``, ``_algorithm``, ``_check_params``
    (calling ``_check_meta_params``) and ``_divergence_hint``.
    """

    def _check_meta_params(self) -> None:
        self._check_common_params()
        check_number("meta_batch_size", self.meta_batch_size, integer=True)
        check_number("max_iter", self.max_iter, integer=True)
        _compiled.check_compile(self.compile)

    def _divergence_hint(self) -> str:
        raise NotImplementedError

    def _n_outputs(self, taskset: _tasks.TaskSet) -> int:
        return self._output_width()

    # ------------------------------------------------------------ fitting
    def fit(self, X, y=None, groups=None):
        """Meta-train on tasks.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features), list of (X_i, y_i), \
or task sampler
            Long-format rows (with ``y`` and ``groups``), a list of tasks, or
            an object with ``sample(n_tasks, random_state)`` drawing fresh
            tasks for every meta-batch.
        y : array-like of shape (n_samples,), optional
            Targets, for long-format input.
        groups : array-like of shape (n_samples,), optional
            Task id of each row. None with long-format input: all rows are one task.

        Returns
        -------
        self
        """
        clear = not (self.warm_start and hasattr(self, "meta_params_"))
        return self._meta_train(X, y, groups, n_steps=self.max_iter, schedule_start=0, clear=clear)

    def partial_fit(self, X, y=None, groups=None, classes=None):
        """One outer (meta) step on a meta-batch drawn from the given tasks.

        Parameters are as for :meth:`fit`, plus ``classes`` (scikit-learn's
        incremental-classifier convention, classifiers only): if given with
        long-format ``y``, every label of ``y`` must be in it. Schedules
        (Reptile's step size, MAML++'s loss weights) follow ``n_iter_``.

        Returns
        -------
        self
        """
        if classes is not None:
            if not self._target.classification:
                raise ValueError("classes is for classifiers; a regressor takes none.")
            if y is not None:
                unknown = np.setdiff1d(np.asarray(y), np.asarray(classes))
                if len(unknown):
                    raise ValueError(
                        f"y has labels {unknown.tolist()[:5]} that are not in classes={classes!r}."
                    )
        start = min(getattr(self, "n_iter_", 0), self.max_iter - 1)
        return self._meta_train(X, y, groups, n_steps=1, schedule_start=start)

    def _task_source(self, X, y, groups, rng, *, reset: bool):
        """Validate the input and return (meta-batch source, a TaskSet of it)."""
        classification = self._target.classification
        if _tasks.is_sampler(X):
            if y is not None or groups is not None:
                raise ValueError("y and groups must be None when X is a task sampler.")
            first = _tasks.draw_tasks(
                self, X, self.meta_batch_size, rng, reset=reset, classification=classification
            )
            source = _tasks.SampledTasks(
                self,
                X,
                self.device_,
                self.shots,
                stratify=classification,
                classification=classification,
                first=first,
                check=self._check_training_tasks,
            )
            return source, first
        taskset = _tasks.read_tasks(self, X, y, groups, reset=reset, classification=classification)
        if reset:
            self._warn_if_one_large_task(X, y, groups, taskset)
        source = _tasks.FixedTasks(taskset, self.device_, self.shots, stratify=classification)
        return source, taskset

    def _check_training_tasks(self, taskset: _tasks.TaskSet) -> None:
        self._check_tasks(taskset, training=True)
        if not hasattr(self, "module_"):  # the first draw is checked once the module is built
            return
        sizes = taskset.sizes
        if self._target.classification or not (sizes == sizes[0]).all():
            # Regression tasks of one size have one support size: nothing is padded,
            # so the per-draw walk over the module's layers is skipped.
            self._check_padding_invisible(taskset, modes={True})

    def _meta_train(self, X, y, groups, *, n_steps: int, schedule_start: int, clear=False):
        # Until the first outer step, an error leaves the estimator exactly as it was
        # (a failed refit keeps the previous model); from then on, run_outer_steps keeps
        # it consistent at the last completed check.
        previous = dict(vars(self))
        try:
            if clear:
                self._clear_fit()
            algorithm, source, generator, rng, taskset, single = self._prepare_meta_training(
                X, y, groups
            )
        except BaseException:
            vars(self).clear()
            vars(self).update(previous)
            raise
        self._run_outer_steps(algorithm, source, n_steps, schedule_start, generator, rng)
        self._after_meta_training(taskset, single=single)
        self._after_fit_on(1 if single else max(2, taskset.n_tasks))
        return self

    def _prepare_meta_training(self, X, y, groups):
        """Read and check the input, build what the first call needs; nothing trained yet."""
        self._check_params()
        _workers.use_worker_threads()
        first_call = not hasattr(self, "meta_params_")
        if first_call:
            self.device_ = resolve_device(self.device)
            self._seed_ = _distributed.broadcast_seed(self._draw_seed())
            self.n_iter_ = 0
        generator, rng = self._rngs(self._seed_, stream=self.n_iter_)
        source, taskset = self._task_source(X, y, groups, rng, reset=first_call)
        single = isinstance(source, _tasks.FixedTasks) and taskset.n_tasks == 1
        self._fit_tasks(taskset, single=single, reset=first_call)
        if first_call:
            self.module_ = self._build_module(
                self.n_features_in_, self._n_outputs(taskset), seed=self._seed_
            )
            self._probe_module(self._as_tensor(taskset.X[:5]))
        self._check_padding_invisible(taskset, modes={True})  # meta-training: training mode
        algorithm = self._algorithm(n_classes=self._training_classes())
        if first_call:
            init = dict(self.module_.named_parameters())
            self.meta_params_ = MetaParameters(self.module_, algorithm.learned(init))
            _distributed.broadcast_parameters(
                [*self.meta_params_.parameters(), *self.meta_params_.buffers()]
            )
            self.optimizer_ = None
            if algorithm.outer_update == "gradient":
                self.optimizer_ = _training.outer_adam(
                    self.meta_params_.parameters(), self.meta_lr, self.device_
                )
            self.loss_curve_ = []
            self.batching_ = None
            setattr(self, _compiled.CACHE_ATTRIBUTE, None)  # compiled for the old module
        else:
            self._check_same_meta_parameters(algorithm)
        if self.optimizer_ is not None:
            for group in self.optimizer_.param_groups:
                group["lr"] = self.meta_lr
        self.adapted_params_ = None
        return algorithm, source, generator, rng, taskset, single

    def _training_classes(self) -> int | None:
        return self.n_way_ if self._target.classification else None

    def _check_same_meta_parameters(self, algorithm) -> None:
        """A warm start or ``partial_fit`` must learn what the first fit learned."""
        init = dict(self.module_.named_parameters())
        expected = {
            kind: {name: tuple(t.shape) for name, t in tensors.items()}
            for kind, tensors in algorithm.learned(init).items()
        }
        if expected != self.meta_params_.learned_shapes():
            raise ValueError(
                "The algorithm options changed since the first fit (learn_inner_lr, "
                "adapt_params or inner_steps with learned step sizes), so the learned "
                "meta-parameters no longer fit; refit with warm_start=False."
            )

    def _after_meta_training(self, taskset: _tasks.TaskSet, *, single: bool) -> None:
        """Hook: Prototypical Networks fit on one task adapt to it, to predict as a plain
        classifier."""

    def _outer_step(self, algorithm, net: fn.Network, meta, batch, step: Step):
        """``algorithm.outer_step``, compiled when ``compile`` is on (:mod:`skmeta._compiled`)."""
        compiled = _compiled.compiled_for(self)
        if compiled is None:
            return algorithm.outer_step(net, meta, batch, step, self.batching_)
        module, loss_fn, batching = net.module, net.loss_fn, self.batching_
        key = ("outer", algorithm, batching, module, module.training)

        def core(meta, buffers, batch, inputs):
            network = fn.Network(module, loss_fn, buffers)
            return algorithm.outer_core(network, meta, batch, inputs, batching)

        args = (net.buffers, batch, algorithm.outer_inputs(step, batch))
        if algorithm.outer_update == "gradient" and batching == "vmap":
            eager = lambda: algorithm.outer_step(net, meta, batch, step, batching)
            return compiled.loss_and_gradient(key, core, meta, args, eager)
        result = compiled.wrap(key, core)(meta, *args)
        return algorithm.outer_finish(result, meta, step)

    def _run_outer_steps(self, algorithm, source, n_steps, schedule_start, generator, rng):
        module = self.module_
        buffers = dict(module.named_buffers())
        net = fn.Network(module, self._target.loss, buffers, fn.has_tied_tensors(module))
        meta = self.meta_params_.tree()
        n_tasks = self.meta_batch_size
        if isinstance(source, _tasks.FixedTasks):
            n_tasks = min(n_tasks, source.n_tasks)
        relabel_to = self._relabel_to()
        group = _distributed.process_group()  # data parallel: (rank, world_size)

        def take_step(i: int) -> torch.Tensor:
            batch = source.next_batch(n_tasks, generator, rng, relabel_to=relabel_to)
            if group is not None:  # every rank drew the same batch: keep this rank's tasks
                batch, part = _distributed.shard(batch, *group)
            step = Step(self.n_iter_ + i, (schedule_start + i) / self.max_iter)
            if self.batching_ is None:
                small = _tasks.MetaBatch(*(None if t is None else t[:2] for t in batch))
                probe = lambda batching: algorithm.episode_loss(net, meta, small, step, batching)
                self.batching_ = fn.choose_batching(module, probe)
            loss, update = self._outer_step(algorithm, net, meta, batch, step)
            if group is not None:
                loss, update = _distributed.all_reduce_update(loss, update, part)
            _training.apply_update(meta, update, algorithm.outer_update, self.optimizer_)
            return loss.detach()

        def record(losses: list[float]) -> None:
            self.loss_curve_.extend(losses)
            self.n_iter_ += len(losses)

        def divergence_message(first: int, loss: float, loss_finite: bool) -> str:
            kept = self.n_iter_
            update = "a meta-gradient" if self.optimizer_ is not None else "an outer update"
            what = (
                f"the meta-loss became {loss}"
                if not loss_finite
                else f"{update} became NaN or inf (meta-loss {loss:.4g})"
            )
            return (
                f"Meta-training diverged: {what} at iteration {kept + first + 1}. Training "
                f"stopped and the parameters after iteration {kept} were kept "
                f"(n_iter_={kept}). {self._divergence_hint()}"
            )

        module.train()
        try:
            with self._randomness(generator):
                _training.run_outer_steps(
                    self.meta_params_,
                    self.optimizer_,
                    take_step,
                    n_steps,
                    record=record,
                    divergence_message=divergence_message,
                    verbose=self.verbose if group is None or group[0] == 0 else 0,
                )
        finally:
            module.eval()
