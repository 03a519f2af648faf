"""Model-agnostic meta-learning (MAML) estimators."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from tqdm.auto import tqdm

from . import _functional as fn
from . import _tasks
from ._base import (
    BaseTaskEstimator,
    ClassificationTaskMixin,
    RegressionTaskMixin,
    check_number,
    resolve_device,
)

# Meta-losses are copied to the host in chunks of this many steps: one sync per chunk.
_CHECK_EVERY = 20


def _clone_state(state):
    """Copy of a (nested) state dict with its tensors cloned: deepcopy at a fraction
    of the cost, taken every ``_CHECK_EVERY`` steps."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {key: _clone_state(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_clone_state(value) for value in state)
    return copy.deepcopy(state)


class MAMLBase(BaseTaskEstimator):
    """Meta-training, adaptation and few-shot scoring shared by the MAML estimators."""

    def __init__(
        self,
        module=None,
        *,
        hidden_layer_sizes=(40, 40),
        inner_lr=0.01,
        inner_steps=1,
        adapt_steps=None,
        first_order=False,
        meta_lr=1e-3,
        meta_batch_size=25,
        max_iter=1000,
        shots=10,
        task_col=None,
        device="cpu",
        random_state=None,
        verbose=0,
        warm_start=False,
        **kwargs,
    ):
        self.module = module
        self.hidden_layer_sizes = hidden_layer_sizes
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.adapt_steps = adapt_steps
        self.first_order = first_order
        self.meta_lr = meta_lr
        self.meta_batch_size = meta_batch_size
        self.max_iter = max_iter
        self.shots = shots
        self.task_col = task_col
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self._store_module_kwargs(kwargs)

    # ------------------------------------------------------------ settings
    def _check_params(self) -> None:
        self._check_common_params()
        check_number("inner_lr", self.inner_lr)
        check_number("inner_steps", self.inner_steps, integer=True)
        if self.adapt_steps is not None:
            check_number("adapt_steps", self.adapt_steps, integer=True, strict=False)
        check_number("meta_lr", self.meta_lr)
        check_number("meta_batch_size", self.meta_batch_size, integer=True)
        check_number("max_iter", self.max_iter, integer=True)

    def _inner_loop(self, *, adapting: bool = False) -> fn.InnerLoop:
        if adapting:
            steps = self.inner_steps if self.adapt_steps is None else self.adapt_steps
            return fn.InnerLoop(self.inner_lr, steps, first_order=True)
        return fn.InnerLoop(self.inner_lr, self.inner_steps, self.first_order)

    def _relabel_to(self):
        """Classifiers shuffle class codes per task during meta-training."""
        return None

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
        if not (self.warm_start and hasattr(self, "module_")):
            self._clear_fit()
        return self._meta_train(X, y, groups, n_steps=self.max_iter)

    def partial_fit(self, X, y=None, groups=None):
        """One outer (meta) step on a meta-batch drawn from the given tasks.

        Parameters are as for :meth:`fit`. Returns self.
        """
        return self._meta_train(X, y, groups, n_steps=1)

    def _clear_fit(self) -> None:
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("module__")]:
            delattr(self, name)

    def _meta_train(self, X, y, groups, *, n_steps: int):
        self._check_params()
        first_call = not hasattr(self, "module_")
        if first_call:
            self.device_ = resolve_device(self.device)
            self._seed = self._draw_seed()
            self.n_iter_ = 0
        generator, rng = self._rngs(self._seed, stream=self.n_iter_)
        source, taskset = self._task_source(X, y, groups, rng, reset=first_call)
        if first_call:
            self.module_ = self._build_module(
                self.n_features_in_, self._n_outputs(taskset), seed=self._seed
            )
            self._check_module_output(self._as_tensor(taskset.X[:2]))
            self.optimizer_ = torch.optim.Adam(self.module_.parameters(), lr=self.meta_lr)
            self.loss_curve_ = []
            self.batching_ = None
        for group in self.optimizer_.param_groups:
            group["lr"] = self.meta_lr
        self.adapted_params_ = None
        self._run_outer_steps(source, n_steps, generator, rng)
        return self

    def _task_source(self, X, y, groups, rng, *, reset: bool):
        """Validate the input and return (meta-batch source, a TaskSet of it)."""
        classification, stratify = self._classification, self._classification
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
                stratify=stratify,
                classification=classification,
                first=first,
                check=self._check_tasks,
            )
            return source, first
        taskset = _tasks.read_tasks(self, X, y, groups, reset=reset, classification=classification)
        return _tasks.FixedTasks(taskset, self.device_, self.shots, stratify=stratify), taskset

    def _run_outer_steps(self, source, n_steps: int, generator, rng) -> None:
        module, loss_fn = self.module_, self._loss_fn
        params = dict(module.named_parameters())
        buffers = dict(module.named_buffers())
        settings = self._inner_loop()
        n_tasks = self.meta_batch_size
        if isinstance(source, _tasks.FixedTasks):
            n_tasks = min(n_tasks, source.padded.n_tasks)
        module.train()
        # Meta-losses stay on the device until a check copies the chunk to the host.
        pending: list[torch.Tensor] = []
        snapshot = self._snapshot()
        with tqdm(total=n_steps, disable=not self.verbose, desc="meta-train", leave=False) as bar:
            for step in range(n_steps):
                batch = source.next_batch(n_tasks, generator, rng, relabel_to=self._relabel_to())
                if self.batching_ is None:
                    self.batching_ = fn.choose_batching(
                        module, loss_fn, params, buffers, batch, settings
                    )
                self.optimizer_.zero_grad(set_to_none=True)
                loss = fn.meta_loss(
                    module, loss_fn, params, buffers, batch, settings, batching=self.batching_
                )
                loss.backward()
                self.optimizer_.step()
                pending.append(loss.detach())
                if len(pending) == _CHECK_EVERY or step == n_steps - 1:
                    snapshot = self._record(pending, snapshot, bar)
        module.eval()

    def _snapshot(self) -> dict:
        """Copies of the module and optimizer states, restored on divergence."""
        return {
            "module": {k: v.detach().clone() for k, v in self.module_.state_dict().items()},
            # Adam's moments absorb a NaN gradient too; warm starts need them clean.
            "optimizer": _clone_state(self.optimizer_.state_dict()),
        }

    def _record(self, pending: list, snapshot: dict, bar) -> dict:
        """Append a chunk of meta-losses to ``loss_curve_``; stop on a non-finite step.

        A step is non-finite when its meta-loss or any meta-gradient is NaN or
        inf. Adam turns a NaN/inf gradient into NaN parameters, so checking the
        parameters once per chunk catches a bad gradient whose own loss was
        finite, without a check at every step. The module and optimizer states
        of the last check are then restored, with ``n_iter_`` and
        ``loss_curve_`` as they were there, so nothing fitted before the
        divergence is lost.
        """
        losses = torch.stack(pending).tolist()
        pending.clear()
        bad = [i for i, loss in enumerate(losses) if not math.isfinite(loss)]
        params = [p.detach().reshape(-1) for p in self.module_.parameters()]
        if not bad and not torch.isfinite(torch.cat(params)).all():
            bad = [len(losses) - 1]  # finite losses: the last step's gradient was not
        if bad:
            kept, first = self.n_iter_, bad[0]
            self.module_.load_state_dict(snapshot["module"])
            self.optimizer_.load_state_dict(snapshot["optimizer"])
            what = (
                f"the meta-loss became {losses[first]}"
                if not math.isfinite(losses[first])
                else f"a meta-gradient became NaN or inf (meta-loss {losses[first]:.4g})"
            )
            raise FloatingPointError(
                f"Meta-training diverged: {what} at iteration {kept + first + 1}. Training "
                f"stopped and the parameters after iteration {kept} were kept "
                f"(n_iter_={kept}). The inner_lr ({self.inner_lr}) or meta_lr "
                f"({self.meta_lr}) is probably too large; lower them, or standardise the "
                "features and targets."
            )
        self.loss_curve_.extend(losses)
        self.n_iter_ += len(losses)
        bar.update(len(losses))
        bar.set_postfix(meta_loss=f"{losses[-1]:.4g}")
        return self._snapshot()

    # ------------------------------------------------------------ adaptation
    def _adaptation(self, y_support, w_support):
        # SGD with inner_lr for adapt_steps, from the meta-learned initialisation.
        return fn.adapt, self._loss_fn, self._params(), self._inner_loop(adapting=True)

    def _check_tasks(self, taskset: _tasks.TaskSet) -> None:
        """Classifiers check each sampled task's class count."""


class MAMLRegressor(RegressionTaskMixin, MAMLBase):
    """Model-agnostic meta-learning (MAML) for regression tasks.

    Meta-trains the initialisation of a network so that a few SGD steps on
    a new task's support examples fit that task (Finn et al., 2017). The
    inner loop is a pure function vectorised over the meta-batch with
    :func:`torch.func.vmap`.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=None
        The network. A class is instantiated with the ``module__*``
        parameters; an instance is deep-copied. None builds an MLP
        ``n_features -> hidden_layer_sizes -> 1`` with ReLU activations. The
        output must have shape ``(n, 1)`` or ``(n,)``.
    hidden_layer_sizes : tuple of int, default=(40, 40)
        Hidden widths of the default MLP (ignored when ``module`` is given).
    inner_lr : float, default=0.01
        Step size of the inner SGD steps, in meta-training and in :meth:`adapt`.
    inner_steps : int, default=1
        Inner SGD steps per task during meta-training.
    adapt_steps : int, default=None
        SGD steps in :meth:`adapt` and few-shot :meth:`score`; None means
        ``inner_steps``. 0 evaluates the meta-init itself.
    first_order : bool, default=False
        Ignore second derivatives in the meta-gradient (first-order MAML).
    meta_lr : float, default=1e-3
        Adam step size of the outer (meta) update.
    meta_batch_size : int, default=25
        Tasks per outer step (at most the number of tasks given).
    max_iter : int, default=1000
        Outer steps of :meth:`fit`.
    shots : int or float, default=10
        Support rows per task (int) or their fraction (float in (0, 1)) for
        the support/query split of meta-training and scoring; the other rows
        are the query set.
    task_col : str, default=None
        Name of a DataFrame column of ``X`` holding the task id; it is
        removed from the features.
    device : {"cpu", "cuda", "auto"} or torch.device, default="cpu"
        Where the network and every tensor live.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, task draws and support/query splits.
    verbose : int, default=0
        1 shows a progress bar with the running meta-loss.
    warm_start : bool, default=False
        Continue from the previous fit instead of starting afresh.
    **kwargs
        ``module__<name>`` parameters passed to the ``module`` class.

    Attributes
    ----------
    module_ : torch.nn.Module
        The network holding the meta-learned initialisation.
    adapted_params_ : dict of str to Tensor or None
        Parameters after the last :meth:`adapt`; None before.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when fit on a DataFrame with string column names.
    n_iter_ : int
        Outer steps taken.
    loss_curve_ : list of float
        Meta-loss (mean query loss of the meta-batch) at each outer step.
    device_ : torch.device
        The resolved device.
    batching_ : {"vmap", "loop"}
        How the meta-batch is evaluated: vectorised, or one task at a time
        for modules vmap cannot run.
    optimizer_ : torch.optim.Adam
        The outer optimizer (kept for ``warm_start`` and ``partial_fit``).

    See Also
    --------
    FineTuneRegressor : pretrain on pooled tasks, then fine-tune.

    Examples
    --------
    >>> from skmeta import MAMLRegressor
    >>> from skmeta.datasets import SinusoidTasks
    >>> tasks = SinusoidTasks(n_samples=20)
    >>> maml = MAMLRegressor(max_iter=200, random_state=0).fit(tasks)
    >>> X, y = tasks.sample(1, random_state=1)[0]
    >>> maml.adapt(X[:10], y[:10]).predict(X[10:]).shape
    (10,)
    """


class MAMLClassifier(ClassificationTaskMixin, MAMLBase):
    """Model-agnostic meta-learning (MAML) for N-way few-shot classification.

    Each task is a classification problem with its own labels (task A may use
    ``{3, 7}``, task B ``{"cat", "dog", "owl"}``). Inside, a task's labels are
    coded ``0..n_classes - 1``; during meta-training the codes of every task
    are mapped to the ``n_way`` output units through a fresh random
    permutation at each meta-batch, so that no unit learns a class identity
    and the initialisation learns to adapt instead (Finn et al., 2017,
    section 5.2). :meth:`adapt` fixes the label mapping of a new task;
    :meth:`predict` returns that task's labels and :meth:`predict_proba`
    has one column per entry of ``classes_``.

    Fit on a single task (``groups=None`` with plain ``X, y``), the labels
    keep one meaning throughout, so they are not shuffled, ``classes_`` is
    set at fit and the estimator predicts without :meth:`adapt` like a plain
    classifier.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=None
        The network. A class is instantiated with the ``module__*``
        parameters; an instance is deep-copied. None builds an MLP
        ``n_features -> hidden_layer_sizes -> n_way`` with ReLU activations.
        The output must be logits of shape ``(n, n_way)``.
    n_way : int, default=None
        Output units, the most classes a task may have. None: the number of
        classes of the largest task seen at the first fit.
    hidden_layer_sizes : tuple of int, default=(40, 40)
        Hidden widths of the default MLP (ignored when ``module`` is given).
    inner_lr : float, default=0.01
        Step size of the inner SGD steps, in meta-training and in :meth:`adapt`.
    inner_steps : int, default=1
        Inner SGD steps per task during meta-training.
    adapt_steps : int, default=None
        SGD steps in :meth:`adapt` and few-shot :meth:`score`; None means
        ``inner_steps``. 0 evaluates the meta-init itself.
    first_order : bool, default=False
        Ignore second derivatives in the meta-gradient (first-order MAML).
    meta_lr : float, default=1e-3
        Adam step size of the outer (meta) update.
    meta_batch_size : int, default=25
        Tasks per outer step (at most the number of tasks given).
    max_iter : int, default=1000
        Outer steps of :meth:`fit`.
    shots : int or float, default=10
        Support rows per class (int) or the fraction of each class's rows
        (float in (0, 1)) in the support/query split of meta-training and
        scoring; the other rows are the query set.
    task_col : str, default=None
        Name of a DataFrame column of ``X`` holding the task id; it is
        removed from the features.
    device : {"cpu", "cuda", "auto"} or torch.device, default="cpu"
        Where the network and every tensor live.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, task draws, label permutations and
        support/query splits.
    verbose : int, default=0
        1 shows a progress bar with the running meta-loss.
    warm_start : bool, default=False
        Continue from the previous fit instead of starting afresh.
    **kwargs
        ``module__<name>`` parameters passed to the ``module`` class.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Labels of the task last given to :meth:`adapt`, or of the single task
        fit on; absent after meta-training on several tasks until
        :meth:`adapt` is called.
    n_way_ : int
        Output units of the network.
    module_ : torch.nn.Module
        The network holding the meta-learned initialisation.
    adapted_params_ : dict of str to Tensor or None
        Parameters after the last :meth:`adapt`; None before.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when fit on a DataFrame with string column names.
    n_iter_ : int
        Outer steps taken.
    loss_curve_ : list of float
        Meta-loss (mean query cross-entropy of the meta-batch) at each outer step.
    device_ : torch.device
        The resolved device.
    batching_ : {"vmap", "loop"}
        How the meta-batch is evaluated: vectorised, or one task at a time
        for modules vmap cannot run.
    optimizer_ : torch.optim.Adam
        The outer optimizer (kept for ``warm_start`` and ``partial_fit``).

    See Also
    --------
    MAMLRegressor : the same for regression tasks.
    skmeta.datasets.FewShotDigits : N-way K-shot tasks from rotated digits.

    Examples
    --------
    >>> from skmeta import MAMLClassifier
    >>> from skmeta.datasets import FewShotDigits
    >>> train = FewShotDigits(n_way=5, k_shot=1, n_query=5, split="meta-train")
    >>> clf = MAMLClassifier(inner_lr=0.5, shots=1, max_iter=20, random_state=0).fit(train)
    >>> test = FewShotDigits(n_way=5, k_shot=1, n_query=5, split="meta-test")
    >>> X, y = test.sample(1, random_state=0)[0]
    >>> n_support = 5 * 1  # the first n_way * k_shot rows are the support set
    >>> clf.adapt(X[:n_support], y[:n_support]).predict_proba(X[n_support:]).shape
    (25, 5)
    """

    def __init__(
        self,
        module=None,
        *,
        n_way=None,
        hidden_layer_sizes=(40, 40),
        inner_lr=0.01,
        inner_steps=1,
        adapt_steps=None,
        first_order=False,
        meta_lr=1e-3,
        meta_batch_size=25,
        max_iter=1000,
        shots=10,
        task_col=None,
        device="cpu",
        random_state=None,
        verbose=0,
        warm_start=False,
        **kwargs,
    ):
        super().__init__(
            module,
            hidden_layer_sizes=hidden_layer_sizes,
            inner_lr=inner_lr,
            inner_steps=inner_steps,
            adapt_steps=adapt_steps,
            first_order=first_order,
            meta_lr=meta_lr,
            meta_batch_size=meta_batch_size,
            max_iter=max_iter,
            shots=shots,
            task_col=task_col,
            device=device,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            **kwargs,
        )
        self.n_way = n_way

    def partial_fit(self, X, y=None, groups=None, classes=None):
        """One outer (meta) step on a meta-batch drawn from the given tasks.

        Parameters are as for :meth:`fit`, plus ``classes`` (scikit-learn's
        incremental-classifier convention): if given with long-format ``y``,
        every label of ``y`` must be in it. Returns self.
        """
        if classes is not None and y is not None:
            unknown = np.setdiff1d(np.asarray(y), np.asarray(classes))
            if len(unknown):
                raise ValueError(
                    f"y has labels {unknown.tolist()[:5]} that are not in classes={classes!r}."
                )
        return super().partial_fit(X, y, groups)

    def _task_source(self, X, y, groups, rng, *, reset: bool):
        source, taskset = super()._task_source(X, y, groups, rng, reset=reset)
        single = isinstance(source, _tasks.FixedTasks) and taskset.n_tasks == 1
        if reset:
            self._set_n_way(taskset)
            self._fit_classes_ = taskset.classes[0] if single else None
        elif self._fit_classes_ is not None and not (
            single and np.array_equal(taskset.classes[0], self._fit_classes_)
        ):
            self._fit_classes_ = None  # labels now come from several tasks
        self._check_tasks(taskset)
        if self._fit_classes_ is None:
            vars(self).pop("classes_", None)
        else:
            self.classes_ = self._fit_classes_
        return source, taskset

    def _relabel_to(self):
        # One task keeps its labels' meaning; across tasks, shuffle codes per task.
        return None if self._fit_classes_ is not None else self.n_way_
