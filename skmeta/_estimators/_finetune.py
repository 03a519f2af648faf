"""Pretrain + fine-tune: the model-dependent family, ``FineTuneRegressor`` and
``FineTuneClassifier``.

``fit`` pretrains one network on the rows of all tasks pooled, with skorch
doing the supervised training (its history, callbacks and early stopping on
held-out *tasks*). ``adapt`` fine-tunes a copy of the pretrained parameters
on a new task's support set with :class:`skmeta._algorithms.FineTune`, the
one inner loop of the package; the pretrained network never changes.
"""

from __future__ import annotations

import numbers
import re
import sys
import warnings

import numpy as np
import torch
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import Callback, EarlyStopping
from skorch.helper import predefined_split
from torch import nn
from torch.utils.data import BatchSampler, RandomSampler, TensorDataset

from .. import _functional as fn
from .. import _tasks, _workers
from .._algorithms import FineTune
from .._algorithms.finetune import OPTIMIZERS
from .._meta_parameters import MetaParameters
from .._modules import head_parameter_names
from .._training import all_finite
from ._base import _PRETRAIN_STREAM, TaskEstimator
from ._docs import compose
from ._outputs import ClassifierOutputs, RegressorOutputs
from ._params import check_choice, check_number, resolve_device, store_parameters, with_parameters

_ADAPT_LAYERS = ("all", "head")
_ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")


def _print_log_line(text: str) -> None:
    """skorch's PrintLog sink: its colour codes reach a terminal only, never a log file."""
    if not sys.stdout.isatty():
        text = _ANSI_CODE.sub("", text)
    print(text, flush=True)


class _PooledLoss(nn.Module):
    """skorch criterion: the estimator's task loss, every row weighted 1."""

    def __init__(self, loss_fn):
        super().__init__()
        self.loss_fn = loss_fn

    def forward(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(output, y, torch.ones(len(y), dtype=output.dtype, device=y.device))


class _Diverged(Exception):
    """Raised by :class:`_EpochGuard` to stop skorch at a non-finite epoch."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


class _EpochGuard(Callback):
    """skorch callback: a copy of the parameters after each finite epoch; stops at a
    non-finite one.

    The copy is what a failed pretraining returns to, so that the network
    always matches the epochs recorded.
    """

    def on_train_begin(self, net, **kwargs):
        self.epochs = 0
        self.between_epochs = True
        self._keep(net.module_)

    def on_epoch_begin(self, net, **kwargs):
        self.between_epochs = False

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1, "train_loss"]
        if not np.isfinite(loss):
            raise _Diverged(f"the training loss became {loss}")
        if not all_finite(p.detach() for p in net.module_.parameters()):
            raise _Diverged(f"a parameter became NaN or inf (training loss {loss:.4g})")
        self.epochs += 1
        self.between_epochs = True
        self._keep(net.module_)

    def _keep(self, module: nn.Module) -> None:
        self.state = {name: t.detach().clone() for name, t in module.state_dict().items()}

    def restore(self, module: nn.Module) -> None:
        with torch.no_grad():
            module.load_state_dict(self.state)


def _record_interrupt(net, guard: _EpochGuard) -> list:
    """Wrap ``net.fit_loop`` so that a KeyboardInterrupt (which skorch swallows) is noted.

    Returns a list that gets one entry when training was interrupted within an
    epoch; one raised between epochs is a callback ending training
    (EarlyStopping does so), not an interruption.
    """
    interrupted = []
    fit_loop = net.fit_loop

    def noting_fit_loop(*args, **kwargs):
        try:
            return fit_loop(*args, **kwargs)
        except KeyboardInterrupt:
            if not guard.between_epochs:
                interrupted.append(True)
            raise

    net.fit_loop = noting_fit_loop
    return interrupted


class FineTuneEstimator(TaskEstimator):
    """Pretraining on pooled tasks and fine-tuning (not for direct use).

    Subclasses add a target mixin and ``_net_class``, the skorch net that
    pretrains.
    """

    _algorithm_class = FineTune
    _net_class = NeuralNetRegressor

    def __init__(
        self,
        module=None,
        *,
        hidden_layer_sizes=(40, 40),
        lr=1e-3,
        max_epochs=100,
        batch_size=128,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        callbacks=None,
        n_sampled_tasks=1000,
        adapt_lr=0.01,
        adapt_steps=10,
        adapt_optimizer="sgd",
        adapt_layers="all",
        shots="auto",
        task_col=None,
        device="cpu",
        random_state=None,
        verbose=0,
        warm_start=False,
        **kwargs,
    ):
        store_parameters(self, locals())

    # ------------------------------------------------------------ settings
    def _check_params(self) -> None:
        self._check_common_params()
        check_number("lr", self.lr)
        check_number("max_epochs", self.max_epochs, integer=True)
        check_number("batch_size", self.batch_size, integer=True)
        check_number("n_iter_no_change", self.n_iter_no_change, integer=True)
        check_number("n_sampled_tasks", self.n_sampled_tasks, integer=True)
        check_number("adapt_lr", self.adapt_lr)
        check_number("adapt_steps", self.adapt_steps, integer=True, strict=False)
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise ValueError(f"early_stopping must be True or False, got {self.early_stopping!r}.")
        fraction = self.validation_fraction
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, numbers.Real)
            or not (0 <= fraction < 1)
        ):
            raise ValueError(f"validation_fraction must be in [0, 1), got {fraction!r}.")
        check_choice("adapt_optimizer", self.adapt_optimizer, OPTIMIZERS)
        check_choice("adapt_layers", self.adapt_layers, _ADAPT_LAYERS)
        if self.callbacks is not None and not isinstance(self.callbacks, (list, tuple)):
            raise ValueError(
                "callbacks must be None or a list of skorch callbacks (or (name, callback) "
                f"pairs), got {type(self.callbacks).__name__}."
            )

    def _adaptation_hint(self) -> str:
        return (
            f"{self.adapt_steps} {self.adapt_optimizer} step(s) (adapt_steps) of size "
            f"adapt_lr={self.adapt_lr} are too many or too large for this task: lower "
            "adapt_lr or adapt_steps, or standardise the features and targets."
        )

    def _algorithm(self, n_classes: int | None = None) -> FineTune:
        head = head_parameter_names(self.module_)
        return FineTune(
            lr=float(self.adapt_lr),
            steps=int(self.adapt_steps),
            optimizer=self.adapt_optimizer,
            trainable=head if self.adapt_layers == "head" else None,
            head=head,
            head_width=self._head_width(n_classes),
        )

    def _head_width(self, n_classes: int | None) -> int | None:
        """Units of a fresh head for adaptation (classification), or None to keep the head."""
        return None

    def _n_outputs(self, taskset: _tasks.TaskSet) -> int:
        return self._output_width()

    # ------------------------------------------------------------ fitting
    def fit(self, X, y=None, groups=None):
        """Pretrain one network on the rows of all tasks, pooled.

        A fraction ``validation_fraction`` of the *tasks* (not rows) is held
        out, and training stops when their loss has not improved for
        ``n_iter_no_change`` epochs; the best epoch's parameters are kept.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features), list of (X_i, y_i), \
or task sampler
            Long-format rows (with ``y`` and ``groups``), a list of tasks, or
            an object with ``sample(n_tasks, random_state)``, from which
            ``n_sampled_tasks`` tasks are drawn once.
        y : array-like of shape (n_samples,), optional
            Targets, for long-format input.
        groups : array-like of shape (n_samples,), optional
            Task id of each row. None with long-format input: all rows are one task.

        Returns
        -------
        self
        """
        # Until pretraining starts, an error leaves the estimator exactly as it was (a
        # failed refit keeps the previous model); during pretraining, see _pretrain.
        previous = dict(vars(self))
        try:
            self._check_params()
            _workers.use_worker_threads()
            warm = self.warm_start and hasattr(self, "meta_params_")
            if not warm:
                self._clear_fit()
                self.device_ = resolve_device(self.device)
                self._seed_ = self._draw_seed()
                self.n_iter_ = 0
                self.loss_curve_ = []
                self.validation_loss_curve_ = []
            _, rng = self._rngs(self._seed_, stream=self.n_iter_)
            taskset = self._read_training_tasks(X, y, groups, rng, reset=not warm)
            if not warm:
                self.module_ = self._build_module(
                    self.n_features_in_, self._n_outputs(taskset), seed=self._seed_
                )
                self._probe_module(self._as_tensor(taskset.X[:5]))
        except BaseException:
            vars(self).clear()
            vars(self).update(previous)
            raise
        self.adapted_params_ = None
        self.interrupted_epoch_ = None
        try:
            self._pretrain(taskset, rng)
        finally:  # also after a divergence: the kept parameters are the fitted ones
            self.meta_params_ = MetaParameters(self.module_)
            if not warm:
                self.batching_ = self._choose_batching(taskset)
        self._after_fit_on(taskset.n_tasks)
        return self

    def _choose_batching(self, taskset: _tasks.TaskSet) -> str:
        """vmap or loop for batched adaptation, probed once on two tiny tasks of the data."""
        rows = np.resize(np.arange(len(taskset.y)), 4)
        X = self._as_tensor(taskset.X[rows]).reshape(2, 2, -1)
        y = self._as_tensor(taskset.y[rows] % 2 if self._target.classification else taskset.y[rows])
        y = y.reshape(2, 2)
        w = torch.ones_like(X[..., 0])
        algorithm = self._algorithm(n_classes=2 if self._target.classification else None)
        net, meta = self._network(training=True), self.meta_params_.tree(detach=True)
        adapt = lambda X_t, y_t, w_t: algorithm.adapt(net, meta, X_t, y_t, w_t)
        generator, _ = self._rngs(self._seed_, stream=0)
        with self._randomness(generator):
            return fn.choose_batching(net.module, lambda b: fn.over_tasks(adapt, b)(X, y, w))

    def _read_training_tasks(self, X, y, groups, rng, *, reset: bool) -> _tasks.TaskSet:
        classification = self._target.classification
        if _tasks.is_sampler(X):
            if y is not None or groups is not None:
                raise ValueError("y and groups must be None when X is a task sampler.")
            return _tasks.draw_tasks(
                self, X, self.n_sampled_tasks, rng, reset=reset, classification=classification
            )
        taskset = _tasks.read_tasks(self, X, y, groups, reset=reset, classification=classification)
        self._warn_if_one_large_task(X, y, groups, taskset)
        return taskset

    def _pooled_targets(self, taskset: _tasks.TaskSet) -> np.ndarray:
        """Targets of the pooled pretraining rows (regression: the task targets)."""
        return taskset.y

    def _validation_tasks(self, taskset: _tasks.TaskSet, rng) -> np.ndarray:
        """Indices of the tasks held out for early stopping (empty when off or too few)."""
        n_valid = int(self.validation_fraction * taskset.n_tasks) if self.early_stopping else 0
        if n_valid == 0 or n_valid == taskset.n_tasks:
            return np.array([], dtype=np.int64)
        return np.sort(rng.permutation(taskset.n_tasks)[:n_valid])

    def _pretrain(self, taskset: _tasks.TaskSet, rng) -> None:
        X = self._as_tensor(taskset.X)
        y = self._as_tensor(self._pooled_targets(taskset))
        valid_tasks = self._validation_tasks(taskset, rng)
        is_valid = self._as_tensor(np.isin(taskset.task_index, valid_tasks))
        train = TensorDataset(X[~is_valid], y[~is_valid])
        # Whole mini-batches are sliced from the tensors in one indexing call:
        # row-by-row collation would dominate the cost of small networks.
        generator = torch.Generator(device="cpu")  # the sampler draws on the CPU
        generator.manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        shuffle = RandomSampler(train, generator=generator)
        batches = BatchSampler(shuffle, self.batch_size, drop_last=False)
        # First, so that it sees every epoch before a callback (EarlyStopping) ends training.
        guard = _EpochGuard()
        callbacks = [("skmeta_epoch_guard", guard), *(self.callbacks or [])]
        train_split = None
        if bool(is_valid.any()):
            train_split = predefined_split(TensorDataset(X[is_valid], y[is_valid]))
            stopper = EarlyStopping(
                monitor="valid_loss", patience=self.n_iter_no_change, load_best=True
            )
            callbacks.append(("early_stopping", stopper))
        net = self._net_class(
            module=self.module_,
            criterion=_PooledLoss(self._target.loss),
            optimizer=torch.optim.Adam,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train__sampler=batches,
            iterator_train__batch_size=None,
            # DataLoaders draw a base seed per epoch: from this generator, not the global one.
            iterator_train__generator=generator,
            iterator_valid__generator=generator,
            train_split=train_split,
            callbacks=callbacks,
            device=self.device_,
            verbose=int(self.verbose),
            # PrintLog writes to any sink but print even when quiet: set one only when verbose.
            **({"callbacks__print_log__sink": _print_log_line} if self.verbose else {}),
        )
        interrupted = _record_interrupt(net, guard)
        # Shuffling and dropout draw from the estimator's generators, not torch's global one.
        dropout, _ = self._rngs(self._seed_, stream=_PRETRAIN_STREAM + self.n_iter_)
        try:
            with self._randomness(dropout):
                net.fit(train, y=None)
        except BaseException as exc:
            # Diverged, or an error from the module: back to the last completed finite
            # epoch, which n_iter_ and loss_curve_ then describe.
            guard.restore(net.module_)
            self._record_epochs(net, guard.epochs, with_validation=train_split is not None)
            if isinstance(exc, _Diverged):
                raise FloatingPointError(
                    f"Pretraining diverged: {exc.what} in epoch {self.n_iter_ + 1}. Training "
                    f"stopped and the parameters after epoch {self.n_iter_} were kept "
                    f"(n_iter_={self.n_iter_}). The lr ({self.lr}) is probably too large; "
                    "lower it, or standardise the features and targets."
                ) from None
            raise
        finally:
            self.module_ = net.module_
            self.module_.eval()
            self.history_ = net.history
        n_epochs = sum("train_loss" in row for row in net.history)
        self._record_epochs(net, n_epochs, with_validation=train_split is not None)
        if interrupted:
            self.interrupted_epoch_ = self.n_iter_ + 1
            warnings.warn(
                f"Pretraining was interrupted (KeyboardInterrupt) in epoch "
                f"{self.interrupted_epoch_}, as skorch allows: the model was kept as training "
                f"left it ({n_epochs} complete epoch(s) in this fit; with early stopping, the "
                "best epoch's parameters). interrupted_epoch_ records the epoch.",
                UserWarning,
                stacklevel=3,
            )

    def _record_epochs(self, net, n_epochs: int, *, with_validation: bool) -> None:
        """Add the first ``n_epochs`` completed epochs of skorch's history to ours."""
        rows = [row for row in net.history if "train_loss" in row][:n_epochs]
        self.loss_curve_.extend(float(row["train_loss"]) for row in rows)
        if with_validation:
            self.validation_loss_curve_.extend(float(row["valid_loss"]) for row in rows)
        self.n_iter_ += len(rows)


_FINETUNE_PARAMETERS = [
    "hidden_layer_sizes",
    """
    lr : float, default=1e-3
        Adam step size of pretraining.
    """,
    """
    max_epochs : int, default=100
        Most passes over the pooled training rows.
    """,
    """
    batch_size : int, default=128
        Rows per pretraining mini-batch.
    """,
    """
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the tasks and stop when their
        loss stops improving, keeping the best epoch's parameters. It is off
        when that fraction rounds down to no task (e.g. a single task).
    """,
    """
    validation_fraction : float, default=0.1
        Fraction of the tasks (whole tasks, not rows) held out for early stopping.
    """,
    """
    n_iter_no_change : int, default=10
        Epochs without improvement of the held-out loss before stopping.
    """,
    """
    callbacks : list of skorch callbacks, default=None
        Extra callbacks (or ``(name, callback)`` pairs) for the skorch net.
    """,
    """
    n_sampled_tasks : int, default=1000
        Tasks drawn, once, when ``fit`` is given a task sampler; pretraining
        then runs epochs over this fixed set.
    """,
]
_FINETUNE_ATTRIBUTES = [
    """
    module_ : torch.nn.Module
        The pretrained network (the one skorch trained).
    """,
    """
    meta_params_ : torch.nn.Module
        The pretrained parameters fine-tuning starts from (``module_``'s),
        as for the meta-trained estimators.
    """,
    "adapted_params_",
    """
    history_ : skorch.History
        skorch's record of the last ``fit``: losses per epoch and batch.
    """,
    """
    loss_curve_ : list of float
        Training loss per epoch, over all ``fit`` calls.
    """,
    """
    validation_loss_curve_ : list of float
        Held-out tasks' loss per epoch (empty without early stopping).
    """,
    """
    n_iter_ : int
        Epochs run.
    """,
    """
    interrupted_epoch_ : int or None
        The epoch (counted over all ``fit`` calls) in which the last ``fit``
        was stopped by a ``KeyboardInterrupt``, as skorch allows (``fit``
        then warns and keeps the model); None when it was not.
    """,
    "n_features_in_",
    "feature_names_in_",
    "device_",
    "batching_",
]
_FINETUNE_TAIL = [
    "task_col",
    "device",
    """
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, task draws, the held-out tasks, shuffling and
        support/query splits.
    """,
    """
    verbose : bool or int, default=0
        True (or 1) prints skorch's table of losses per epoch (without
        colour codes when standard output is not a terminal).
    """,
    """
    warm_start : bool, default=False
        Continue pretraining the current network (with a fresh optimizer)
        instead of starting afresh.
    """,
    "kwargs",
]


def _adaptation_parameters(adapt_lr, adapt_steps, layers: str) -> list[str]:
    return [
        f"""
        adapt_lr : float, default={adapt_lr}
            Step size of fine-tuning in :meth:`adapt` and few-shot :meth:`score`.
        """,
        f"""
        adapt_steps : int, default={adapt_steps}
            Full-batch fine-tuning steps; 0 evaluates the pretrained network
            (for the classifier: the zero head, chance level).
        """,
        """
        adapt_optimizer : {"sgd", "adam"}, default="sgd"
            Optimizer of fine-tuning (Adam starts from fresh moments each time).
        """,
        layers,
    ]


class FineTuneRegressor(RegressorOutputs, FineTuneEstimator):
    __doc__ = compose(
        """
        Pretrain one network on all tasks pooled, then fine-tune it per task.

        The model-dependent baseline that MAML is compared with (Finn et al.,
        2017): :meth:`fit` trains a single network on the rows of every task
        pooled, with skorch's :class:`~skorch.NeuralNetRegressor` (Adam,
        mini-batches, early stopping on held-out tasks); :meth:`adapt`
        fine-tunes a copy of it on a new task's support examples. It takes the
        same task inputs and has the same ``adapt``/``predict``/``score``
        contract as :class:`MAMLRegressor`, so either drops into the same
        pipeline, grid search or benchmark.
        """,
        parameters=[
            "module/regressor",
            *_FINETUNE_PARAMETERS,
            *_adaptation_parameters(
                0.01,
                10,
                """
                adapt_layers : {"all", "head"}, default="all"
                    Fine-tune every parameter, or only the last layer (the last
                    submodule, in registration order, that owns parameters).
                """,
            ),
            """
            shots : "auto", int or float, default="auto"
                Support rows per task (int) or their fraction (float in (0, 1)) for
                few-shot :meth:`score`; pretraining uses every row. ``"auto"``:
                ``min(10, n_rows - 1)`` rows of each task.
            """,
            *_FINETUNE_TAIL,
        ],
        attributes=_FINETUNE_ATTRIBUTES,
        see_also="""
            MAMLRegressor : meta-learn an initialisation that adapts in a few steps.
        """,
        examples="""
            >>> from skmeta import FineTuneRegressor
            >>> from skmeta.datasets import SinusoidTasks
            >>> tasks = SinusoidTasks(n_samples=20)
            >>> ft = FineTuneRegressor(n_sampled_tasks=100, max_epochs=20, random_state=0)
            >>> ft = ft.fit(tasks)
            >>> X, y = tasks.sample(1, random_state=1)[0]
            >>> ft.adapt(X[:10], y[:10]).predict(X[10:]).shape
            (10,)
        """,
    )


@with_parameters(adapt_lr=0.1, adapt_steps=100, adapt_layers="head")
class FineTuneClassifier(ClassifierOutputs, FineTuneEstimator):
    __doc__ = compose(
        """
        Pretrain one classifier on all meta-train classes, then fine-tune a new head per task.

        The "Baseline" of few-shot classification studies (Chen et al., 2019),
        the model-dependent counterpart of :class:`MAMLClassifier`: :meth:`fit`
        trains a single network on the rows of every task pooled, to tell apart
        the union of the tasks' labels, with skorch's
        :class:`~skorch.NeuralNetClassifier` (Adam, mini-batches, early stopping
        on held-out tasks). Labels must therefore mean the same thing in every
        task (class ``7`` of one task is class ``7`` of another), as in
        :class:`~skmeta.datasets.FewShotDigits`. :meth:`adapt` replaces the
        output layer with a fresh one, with one unit per class of the new task,
        and trains it on the task's support examples; by default only this head
        is trained (``adapt_layers="head"``): multinomial logistic regression on
        the pretrained features, which is what few examples can support.
        ``adapt_layers="all"`` fine-tunes the whole network from there.

        The new head starts at zero, so adaptation depends on no random draw and
        ``adapt_steps=0`` gives chance-level predictions (every class tied). It
        takes the same task inputs and has the same ``adapt``/``predict``/
        ``score`` contract as :class:`MAMLClassifier`, so either drops into the
        same pipeline, grid search or benchmark. Before any :meth:`adapt`,
        :meth:`predict` is the pretrained classifier over all meta-train labels
        (``classes_`` is their union), which for a single task is a plain
        classifier.
        """,
        parameters=[
            """
            module : torch.nn.Module class or instance, default=None
                The network. A class is instantiated with the ``module__*``
                parameters; an instance is deep-copied. None builds an MLP
                ``n_features -> hidden_layer_sizes -> n_pretrain_classes`` with ReLU
                activations. The output must be logits of shape ``(n,
                n_pretrain_classes)``, and its last layer (the last submodule, in
                registration order, that owns parameters) must be like
                :class:`torch.nn.Linear`: parameters whose first dimension is the
                output unit, so that a head of another width can replace it.
            """,
            *_FINETUNE_PARAMETERS,
            *_adaptation_parameters(
                0.1,
                100,
                """
                adapt_layers : {"head", "all"}, default="head"
                    Train only the new head, or the new head and every pretrained layer.
                """,
            ),
            """
            shots : "auto", int or float, default="auto"
                Support rows per class (int) or the fraction of each class's rows
                (float in (0, 1)) for few-shot :meth:`score`; pretraining uses every row.
                ``"auto"``: ``k = min(10, n_smallest_class - 1)`` (at least 1) rows of
                every class of a task.
            """,
            *_FINETUNE_TAIL,
        ],
        attributes=[
            """
            classes_ : ndarray of shape (n_classes,)
                Labels of the task last given to :meth:`adapt`; before any
                :meth:`adapt`, ``pretrain_classes_``.
            """,
            """
            pretrain_classes_ : ndarray of shape (n_pretrain_classes,)
                Every label of the tasks pretrained on, sorted: the pretrained
                network's output units.
            """,
            *_FINETUNE_ATTRIBUTES,
        ],
        see_also="""
            MAMLClassifier : meta-learn an initialisation that adapts in a few steps.
            FineTuneRegressor : the same baseline for regression tasks.
            skmeta.datasets.FewShotDigits : N-way K-shot tasks from rotated digits.
        """,
        examples="""
            >>> from skmeta import FineTuneClassifier
            >>> from skmeta.datasets import FewShotDigits
            >>> train = FewShotDigits(n_way=5, k_shot=5, n_query=5, split="meta-train")
            >>> clf = FineTuneClassifier(n_sampled_tasks=100, max_epochs=10, shots=5,
            ...                          random_state=0).fit(train)
            >>> len(clf.pretrain_classes_)  # every meta-train class
            24
            >>> test = FewShotDigits(n_way=5, k_shot=5, n_query=5, split="meta-test")
            >>> X, y = test.sample(1, random_state=0)[0]
            >>> n_support = 5 * 5  # the first n_way * k_shot rows are the support set
            >>> clf.adapt(X[:n_support], y[:n_support]).predict_proba(X[n_support:]).shape
            (25, 5)
        """,
    )

    _net_class = NeuralNetClassifier

    # ------------------------------------------------------------ pretraining
    def _read_training_tasks(self, X, y, groups, rng, *, reset: bool) -> _tasks.TaskSet:
        taskset = super()._read_training_tasks(X, y, groups, rng, reset=reset)
        self._check_tasks(taskset, training=False)
        try:
            labels = np.unique(np.concatenate(taskset.classes))
        except TypeError as exc:
            raise ValueError(
                f"The tasks' labels cannot be sorted together ({exc}); pretraining pools "
                "them, so they must be of one kind (all numbers or all strings)."
            ) from exc
        if reset:
            self.pretrain_classes_ = labels
        else:
            new = np.setdiff1d(labels, self.pretrain_classes_)
            if len(new):
                raise ValueError(
                    f"warm_start: the tasks have labels {new.tolist()[:5]} that the first fit "
                    "did not, and the pretrained network has no output unit for them."
                )
        self.classes_ = self.pretrain_classes_
        return taskset

    def _output_width(self) -> int:
        return len(self.pretrain_classes_)

    def _max_classes(self) -> None:
        return None  # every task gets a head as wide as its own classes

    def _head_width(self, n_classes: int | None) -> int | None:
        return n_classes

    def _pooled_targets(self, taskset: _tasks.TaskSet) -> np.ndarray:
        """Each row's label coded over ``pretrain_classes_`` (not per task)."""
        to_pretrain_code = [np.searchsorted(self.pretrain_classes_, c) for c in taskset.classes]
        offsets = np.cumsum([0] + [len(c) for c in taskset.classes])
        return np.concatenate(to_pretrain_code)[offsets[taskset.task_index] + taskset.y]

    def _check_module_output(self, X_sample: torch.Tensor, width: int) -> None:
        super()._check_module_output(X_sample, width)
        head = head_parameter_names(self.module_)
        params = {name: p.detach() for name, p in self.module_.named_parameters()}
        # A two-unit head must fit where the pretrained one was: that is what adapt does.
        shapes = [tuple(params[name].shape) for name in head]
        try:
            if any(shape[:1] != (width,) for shape in shapes):
                raise ValueError(f"its parameters have shapes {shapes}")
            fresh = FineTune(lr=0.0, steps=0, head=head, head_width=2).start(params)
            with torch.no_grad():
                output = torch.func.functional_call(self.module_, fresh, X_sample)
            if output.shape != (len(X_sample), 2):
                raise ValueError(f"a two-unit head gave outputs of shape {tuple(output.shape)}")
        except (RuntimeError, ValueError) as exc:
            raise ValueError(
                f"FineTuneClassifier replaces the module's last layer ({', '.join(head)}) by a "
                "head with one unit per class of the adapted task, so its parameters must have "
                f"the output unit as first dimension, like torch.nn.Linear: {exc}"
            ) from exc
