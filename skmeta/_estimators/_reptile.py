"""Reptile: ``ReptileRegressor`` and ``ReptileClassifier``, thin shells over
:class:`skmeta._algorithms.Reptile`."""

from __future__ import annotations

from .._algorithms import INNER_OPTIMIZERS, Reptile
from ._docs import COMMON_TAIL, FIXED_HEAD_CLASSIFICATION, META_TRAINED_ATTRIBUTES, compose
from ._meta import MetaTrainedEstimator
from ._outputs import ClassifierOutputs, RegressorOutputs
from ._params import check_choice, check_number, store_parameters, with_parameters


class ReptileEstimator(MetaTrainedEstimator):
    """Reptile (not for direct use): the parameters and their checks."""

    _algorithm_class = Reptile

    def __init__(
        self,
        module=None,
        *,
        hidden_layer_sizes=(40, 40),
        inner_lr=0.01,
        inner_steps=10,
        adapt_steps=None,
        inner_optimizer="sgd",
        outer_step_size=1.0,
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
        check_choice("inner_optimizer", self.inner_optimizer, INNER_OPTIMIZERS)
        check_number("outer_step_size", self.outer_step_size)

    def _algorithm(self, n_classes: int | None = None) -> Reptile:
        return Reptile(
            inner_lr=float(self.inner_lr),
            inner_steps=int(self.inner_steps),
            adapt_steps=int(self.inner_steps if self.adapt_steps is None else self.adapt_steps),
            inner_optimizer=self.inner_optimizer,
            outer_step_size=float(self.outer_step_size),
        )

    def _adaptation_hint(self) -> str:
        steps = int(self.inner_steps if self.adapt_steps is None else self.adapt_steps)
        return (
            f"{steps} {self.inner_optimizer} step(s) (adapt_steps) of size "
            f"inner_lr={self.inner_lr} are too many or too large for this task: lower "
            "inner_lr or adapt_steps, or standardise the features and targets."
        )

    def _divergence_hint(self) -> str:
        return (
            f"The inner_lr ({self.inner_lr}) or outer_step_size ({self.outer_step_size}) is "
            "probably too large; lower them, or standardise the features and targets."
        )


_REPTILE_PARAMETERS = [
    "hidden_layer_sizes",
    "inner_lr",
    "inner_steps",
    "adapt_steps",
    "inner_optimizer",
    "outer_step_size",
    "meta_batch_size",
    "max_iter",
    "compile",
]
_REPTILE_ATTRIBUTES = [a for a in META_TRAINED_ATTRIBUTES if a != "optimizer_"]
_REPTILE_SUMMARY = """\
Reptile (Nichol et al., 2018) learns an initialisation without a
meta-gradient: each task of a meta-batch takes ``inner_steps`` SGD or Adam
steps on its support rows from the initialisation ``theta``, reaching
``phi_i``, and the initialisation moves towards them,
``theta += eps * mean_i(phi_i - theta)``, vectorised over the tasks, with
``eps`` annealed linearly from ``outer_step_size`` to 0 over a fit.
:meth:`adapt` takes the same steps from the learned initialisation.
``loss_curve_`` records the mean query loss of the ``phi_i``.
"""
_REPTILE_DEFAULTS = {"inner_lr": 0.01, "inner_steps": 10}


class ReptileRegressor(RegressorOutputs, ReptileEstimator):
    __doc__ = compose(
        "Reptile for regression tasks.\n\n" + _REPTILE_SUMMARY,
        parameters=["module/regressor", *_REPTILE_PARAMETERS, "shots/regressor", *COMMON_TAIL],
        attributes=_REPTILE_ATTRIBUTES,
        defaults=_REPTILE_DEFAULTS,
        see_also="""
            ReptileClassifier : the same for classification tasks.
            MAMLRegressor : meta-learning through the inner loop's gradient.
        """,
        examples="""
            >>> from skmeta import ReptileRegressor
            >>> from skmeta.datasets import SinusoidTasks
            >>> tasks = SinusoidTasks(n_samples=20)
            >>> reptile = ReptileRegressor(max_iter=100, random_state=0).fit(tasks)
            >>> X, y = tasks.sample(1, random_state=1)[0]
            >>> reptile.adapt(X[:10], y[:10]).predict(X[10:]).shape
            (10,)
        """,
    )


@with_parameters(n_way=None)
class ReptileClassifier(ClassifierOutputs, ReptileEstimator):
    __doc__ = compose(
        "Reptile for N-way few-shot classification.\n\n"
        + _REPTILE_SUMMARY
        + FIXED_HEAD_CLASSIFICATION,
        parameters=[
            "module/classifier",
            "n_way",
            *_REPTILE_PARAMETERS,
            "shots/classifier",
            *COMMON_TAIL,
        ],
        attributes=["classes_", "n_way_", *_REPTILE_ATTRIBUTES],
        defaults=_REPTILE_DEFAULTS,
        see_also="""
            ReptileRegressor : the same for regression tasks.
            MAMLClassifier : meta-learning through the inner loop's gradient.
        """,
        examples="""
            >>> from skmeta import ReptileClassifier
            >>> from skmeta.datasets import FewShotDigits
            >>> train = FewShotDigits(n_way=5, k_shot=1, n_query=5, split="meta-train")
            >>> clf = ReptileClassifier(inner_lr=0.1, shots=1, max_iter=20, random_state=0)
            >>> clf = clf.fit(train)
            >>> X, y = FewShotDigits(5, 1, 5, split="meta-test").sample(1, random_state=0)[0]
            >>> clf.adapt(X[:5], y[:5]).predict(X[5:]).shape
            (25,)
        """,
    )
