"""Prototypical Networks: ``ProtoNetClassifier``, a thin shell over
:class:`skmeta._algorithms.ProtoNet`."""

from __future__ import annotations

from .. import _tasks
from .._algorithms import ProtoNet
from ._docs import COMMON_TAIL, META_TRAINED_ATTRIBUTES, compose
from ._meta import MetaTrainedEstimator
from ._outputs import ClassifierOutputs
from ._params import check_number, store_parameters


class ProtoNetClassifier(ClassifierOutputs, MetaTrainedEstimator):
    __doc__ = compose(
        """
        Prototypical Networks (Snell et al., 2017) for N-way few-shot classification.

        ``module`` is an embedding network. A task's prototypes are the mean
        embeddings of its support rows per class, and a row's logits are the
        negative squared Euclidean distances of its embedding to them.
        Meta-training minimises the query cross-entropy of these logits over
        episodes, vectorised over the meta-batch; :meth:`adapt` computes the
        prototypes of the support classes, with no gradient step, and
        :meth:`predict`/:meth:`predict_proba` classify by them. Tasks may
        have any labels and, at :meth:`adapt` and :meth:`score`, any number
        of classes. Fit on a single task, the estimator adapts to it at the
        end of ``fit`` and predicts like a plain classifier.
        """,
        parameters=[
            "module/embedding",
            "hidden_layer_sizes",
            "embedding_size",
            "meta_lr",
            "meta_batch_size",
            "max_iter",
            "compile",
            "shots/classifier",
            *COMMON_TAIL,
        ],
        attributes=[
            "classes_",
            """
            n_way_ : int
                Prototype slots in meta-training: the most classes of a task at the
                first fit.
            """,
            *META_TRAINED_ATTRIBUTES,
        ],
        see_also="""
            MAMLClassifier : gradient-based few-shot classification.
            skmeta.datasets.FewShotDigits : N-way K-shot tasks from rotated digits.
        """,
        examples="""
            >>> from skmeta import ProtoNetClassifier
            >>> from skmeta.datasets import FewShotDigits
            >>> train = FewShotDigits(n_way=5, k_shot=1, n_query=5, split="meta-train")
            >>> clf = ProtoNetClassifier(shots=1, max_iter=20, random_state=0).fit(train)
            >>> X, y = FewShotDigits(5, 1, 5, split="meta-test").sample(1, random_state=0)[0]
            >>> clf.adapt(X[:5], y[:5]).predict_proba(X[5:]).shape
            (25, 5)
        """,
    )

    _algorithm_class = ProtoNet

    def __init__(
        self,
        module=None,
        *,
        hidden_layer_sizes=(64, 64),
        embedding_size=64,
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
        check_number("embedding_size", self.embedding_size, integer=True)
        check_number("meta_lr", self.meta_lr)

    def _n_outputs(self, taskset: _tasks.TaskSet) -> int:
        return int(self.embedding_size)

    def _output_width(self) -> None:
        return None  # any embedding width

    def _algorithm(self, n_classes: int | None = None) -> ProtoNet:
        return ProtoNet(n_classes=self.n_way_ if n_classes is None else n_classes)

    def _adaptation_hint(self) -> str:
        return (
            "Prototypical Networks take no adaptation step: the support rows' embeddings "
            "overflowed. Standardise the features (their scale is probably far from that "
            "of fit)."
        )

    def _divergence_hint(self) -> str:
        return (
            f"The meta_lr ({self.meta_lr}) is probably too large; lower it, or standardise "
            "the features."
        )

    def _after_meta_training(self, taskset: _tasks.TaskSet, *, single: bool) -> None:
        # One task fit on: its labels keep their meaning, so its prototypes classify.
        if single:
            X, codes = taskset.task(0)
            self.adapted_params_ = self._adapted(X, codes, n_classes=len(self.classes_))
