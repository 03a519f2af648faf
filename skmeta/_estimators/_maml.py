"""MAML and its family: ``MAMLRegressor`` and ``MAMLClassifier``.

Thin shells over :class:`skmeta._algorithms.MAML`: the estimator turns its
parameters into the algorithm's settings; meta-training, adaptation and
scoring are shared by every algorithm.
"""

from __future__ import annotations

import numbers

from .._algorithms import LEARN_INNER_LR, MAML
from .._modules import select_parameters
from ._docs import COMMON_TAIL, FIXED_HEAD_CLASSIFICATION, META_TRAINED_ATTRIBUTES, compose
from ._meta import MetaTrainedEstimator
from ._outputs import ClassifierOutputs, RegressorOutputs
from ._params import check_choice, check_number, store_parameters, with_parameters


def check_adapt_params(value) -> None:
    """``"all"``, ``"head"``, a name prefix, or a non-empty list of prefixes."""
    if isinstance(value, str):
        return
    if (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, str) for v in value)
    ):
        return
    raise ValueError(
        f'adapt_params must be "all", "head" or a non-empty list of parameter-name prefixes, '
        f"got {value!r}."
    )


class MAMLEstimator(MetaTrainedEstimator):
    """MAML and its family (not for direct use): the parameters and their checks."""

    _algorithm_class = MAML

    def __init__(
        self,
        module=None,
        *,
        hidden_layer_sizes=(40, 40),
        inner_lr=0.01,
        inner_steps=1,
        adapt_steps=None,
        first_order=False,
        adapt_params="all",
        learn_inner_lr=None,
        multi_step_loss=False,
        meta_lr=1e-3,
        meta_batch_size=25,
        max_iter=1000,
        compile=False,
        shots="auto",
        task_col=None,
        device="cpu",
        random_state=None,
        verbose=0,
        warm_start=False,
        **kwargs,
    ):
        store_parameters(self, locals())

    def _check_params(self) -> None:
        self._check_meta_params()
        check_number("inner_lr", self.inner_lr)
        check_number("inner_steps", self.inner_steps, integer=True)
        if self.adapt_steps is not None:
            check_number("adapt_steps", self.adapt_steps, integer=True, strict=False)
        check_number("meta_lr", self.meta_lr)
        check_adapt_params(self.adapt_params)
        check_choice("learn_inner_lr", self.learn_inner_lr, LEARN_INNER_LR)
        msl = self.multi_step_loss
        if not isinstance(msl, bool) and not (isinstance(msl, numbers.Integral) and int(msl) > 0):
            raise ValueError(
                f"multi_step_loss must be True, False or a positive number of outer steps, "
                f"got {msl!r}."
            )

    def _msl_iterations(self) -> int:
        if self.multi_step_loss is True:
            return max(1, self.max_iter // 10)
        return int(self.multi_step_loss)  # False -> 0

    def _algorithm(self, n_classes: int | None = None) -> MAML:
        return MAML(
            inner_lr=float(self.inner_lr),
            inner_steps=int(self.inner_steps),
            adapt_steps=int(self.inner_steps if self.adapt_steps is None else self.adapt_steps),
            first_order=bool(self.first_order),
            trainable=select_parameters(self.module_, self.adapt_params),
            learn_inner_lr=self.learn_inner_lr,
            msl_iterations=self._msl_iterations(),
        )

    def _adaptation_hint(self) -> str:
        steps = int(self.inner_steps if self.adapt_steps is None else self.adapt_steps)
        if self.learn_inner_lr is None:
            return (
                f"{steps} step(s) (adapt_steps) of size inner_lr={self.inner_lr} are too many "
                "or too large for this task: lower inner_lr or adapt_steps, or standardise "
                "the features and targets."
            )
        beyond = ""
        if steps > self.inner_steps:
            beyond = (
                f" adapt_steps={steps} is more than the inner_steps={self.inner_steps} the "
                "step sizes were meta-trained for"
                + (
                    " (steps beyond those reuse the last step's size)"
                    if self.learn_inner_lr == "per-layer-per-step"
                    else ""
                )
                + f": use adapt_steps <= {self.inner_steps}."
            )
        return (
            f"The {steps} adaptation step(s) use the step sizes learned by "
            f"learn_inner_lr={self.learn_inner_lr!r} (meta_params_.learned), which are too "
            f"large for this task.{beyond} Otherwise lower adapt_steps, or standardise the "
            "features and targets."
        )

    def _divergence_hint(self) -> str:
        return (
            f"The inner_lr ({self.inner_lr}) or meta_lr ({self.meta_lr}) is probably too "
            "large; lower them, or standardise the features and targets."
        )


_MAML_PARAMETERS = [
    "hidden_layer_sizes",
    "inner_lr",
    "inner_steps",
    "adapt_steps",
    "first_order",
    "adapt_params",
    "learn_inner_lr",
    "multi_step_loss",
    "meta_lr",
    "meta_batch_size",
    "max_iter",
    "compile",
]
_MAML_SUMMARY = """\
Meta-trains the initialisation of a network so that a few gradient steps on
a new task's support examples fit that task (Finn et al., 2017). Options
give the family: ``first_order`` (FOMAML), ``adapt_params="head"`` (ANIL),
``learn_inner_lr`` (Meta-SGD, MAML++'s LSLR) and ``multi_step_loss``
(MAML++'s MSL); they combine (ANIL with Meta-SGD, say) and are plain
parameters that ``GridSearchCV`` can search. The inner loop is a pure
function vectorised over the meta-batch with :func:`torch.func.vmap`.
"""


class MAMLRegressor(RegressorOutputs, MAMLEstimator):
    __doc__ = compose(
        "Model-agnostic meta-learning (MAML) for regression tasks.\n\n" + _MAML_SUMMARY,
        parameters=["module/regressor", *_MAML_PARAMETERS, "shots/regressor", *COMMON_TAIL],
        attributes=META_TRAINED_ATTRIBUTES,
        defaults={"inner_lr": 0.01, "inner_steps": 1},
        see_also="""
            MAMLClassifier : the same for classification tasks.
            ReptileRegressor : first-order meta-learning without a meta-gradient.
            FineTuneRegressor : pretrain on pooled tasks, then fine-tune.
        """,
        examples="""
            >>> from skmeta import MAMLRegressor
            >>> from skmeta.datasets import SinusoidTasks
            >>> tasks = SinusoidTasks(n_samples=20)
            >>> maml = MAMLRegressor(max_iter=200, random_state=0).fit(tasks)
            >>> X, y = tasks.sample(1, random_state=1)[0]
            >>> maml.adapt(X[:10], y[:10]).predict(X[10:]).shape
            (10,)

            Meta-SGD on the head only (ANIL + learned step sizes):

            >>> anil = MAMLRegressor(adapt_params="head", learn_inner_lr="per-parameter",
            ...                      max_iter=50, random_state=0).fit(tasks)
            >>> sorted(anil.meta_params_.learned["inner_lr"].names)
            ['layers.4.bias', 'layers.4.weight']
        """,
    )


_CLASSIFIER_INNER_LR = """
inner_lr : float, default=0.1
    Step size of the inner steps, in meta-training and in :meth:`adapt`
    (the initial value of learned step sizes). The default comes from
    measurements on few-shot digits (``python benchmarks/fewshot_digits.py
    --tune --methods maml-defaults``, ``OMP_NUM_THREADS=1``: 5-way tasks,
    every other parameter at its default, 1000 outer steps, seed 0, scored on
    200 tasks of digit classes held out of meta-training): the mean 1-shot and
    5-shot query accuracy was 17.7 % with 0.01 (below chance, 20 %: one step
    of 0.01 barely moves the initialisation), 49.2 % with 0.1, 48.7 % with 0.4
    and 48.9 % with 1.0.
"""


@with_parameters(n_way=None, inner_lr=0.1)
class MAMLClassifier(ClassifierOutputs, MAMLEstimator):
    __doc__ = compose(
        "Model-agnostic meta-learning (MAML) for N-way few-shot classification.\n\n"
        + _MAML_SUMMARY
        + FIXED_HEAD_CLASSIFICATION,
        parameters=[
            "module/classifier",
            "n_way",
            *[_CLASSIFIER_INNER_LR if p == "inner_lr" else p for p in _MAML_PARAMETERS],
            "shots/classifier",
            *COMMON_TAIL,
        ],
        attributes=["classes_", "n_way_", *META_TRAINED_ATTRIBUTES],
        defaults={"inner_steps": 1},
        see_also="""
            MAMLRegressor : the same for regression tasks.
            ProtoNetClassifier : metric-based few-shot classification.
            skmeta.datasets.FewShotDigits : N-way K-shot tasks from rotated digits.
        """,
        examples="""
            >>> from skmeta import MAMLClassifier
            >>> from skmeta.datasets import FewShotDigits
            >>> train = FewShotDigits(n_way=5, k_shot=1, n_query=5, split="meta-train")
            >>> clf = MAMLClassifier(inner_lr=0.5, shots=1, max_iter=20, random_state=0).fit(train)
            >>> test = FewShotDigits(n_way=5, k_shot=1, n_query=5, split="meta-test")
            >>> X, y = test.sample(1, random_state=0)[0]
            >>> n_support = 5 * 1  # the first n_way * k_shot rows are the support set
            >>> clf.adapt(X[:n_support], y[:n_support]).predict_proba(X[n_support:]).shape
            (25, 5)
        """,
    )
