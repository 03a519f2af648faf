"""Regression vs classification: a small strategy object every algorithm shares.

A target strategy says how targets are coded (the readers' ``classification``
flag: float targets, or task-local class codes ``0..n_classes - 1``), which
loss trains the network, what output width and shape the network must have,
how a task's outputs are read (classification: the units above a task's
classes get no probability) and how the query rows of tasks are scored
(per-task terms, summed over all tasks into one few-shot score). It knows
no algorithm: MAML, Reptile, ProtoNet and fine-tuning use the same two.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._functional import LossFn, mask_absent_classes, weighted_cross_entropy, weighted_mse


class Regression:
    """One output per row, masked MSE, few-shot R² pooled over the query rows of all tasks."""

    classification = False
    loss: LossFn = staticmethod(weighted_mse)

    @staticmethod
    def check_output(output: Tensor, n_rows: int, width: int = 1) -> None:
        """Raise ``ValueError`` unless ``output`` is ``(n_rows,)`` or ``(n_rows, 1)``."""
        if output.shape not in ((n_rows,), (n_rows, 1)):
            raise ValueError(
                f"module output has shape {tuple(output.shape)} for {n_rows} rows; a regressor "
                f"needs ({n_rows},) or ({n_rows}, 1). Check the module's output size."
            )

    @staticmethod
    def task_outputs(outputs: Tensor, y_support: Tensor, w_support: Tensor) -> Tensor:
        """Outputs as they are read for a task (regression: unchanged)."""
        return outputs

    @staticmethod
    def query_terms(outputs: Tensor, y: Tensor, w: Tensor) -> Tensor:
        """Per task, in float64: the sum of squared errors of its query rows and their
        sum of squares about the task's own query mean; shape ``(n_tasks, 2)``."""
        y, pred, w = y.double(), outputs.reshape(y.shape).double(), w.double()
        mean = (w * y).sum(dim=1, keepdim=True) / w.sum(dim=1, keepdim=True)
        ss_res = (w * (y - pred) ** 2).sum(dim=1)
        ss_tot = (w * (y - mean) ** 2).sum(dim=1)
        return torch.stack([ss_res, ss_tot], dim=1)

    @staticmethod
    def few_shot_score(terms: Tensor) -> float:
        """Pooled R² from the :meth:`query_terms` of all tasks.

        ``1 - sum_t SSE_t / sum_t SST_t``, where ``SST_t`` is taken about
        task ``t``'s own query mean: for fixed tasks it falls exactly as the
        query MSE grows (unlike a mean of per-task R², which small query sets
        make erratic). Raises ``ValueError`` when every task's query targets
        are constant (one query row per task, say): R² is then undefined.
        """
        ss_res, ss_tot = terms.sum(dim=0).tolist()
        if ss_tot == 0:
            raise ValueError(
                "The few-shot R² is undefined: the query targets of every task are constant "
                "(for example one query row per task), so there is no variance to explain. "
                "Leave more query rows per task (fewer shots or larger tasks), or score with "
                "skmeta.make_few_shot_scorer('neg_mean_squared_error')."
            )
        return 1.0 - ss_res / ss_tot


class Classification:
    """Logits over class codes, masked cross-entropy, few-shot accuracy."""

    classification = True
    loss: LossFn = staticmethod(weighted_cross_entropy)

    @staticmethod
    def check_output(output: Tensor, n_rows: int, width: int | None) -> None:
        """Raise ``ValueError`` unless ``output`` is ``(n_rows, width)`` (any width if None)."""
        if width is None and output.ndim == 2 and output.shape[0] == n_rows:
            return
        if output.shape != (n_rows, width):
            width = "d" if width is None else width
            raise ValueError(
                f"module output has shape {tuple(output.shape)} for {n_rows} rows; this "
                f"classifier needs ({n_rows}, {width}). Check the module's output size."
            )

    @staticmethod
    def task_outputs(outputs: Tensor, y_support: Tensor, w_support: Tensor) -> Tensor:
        """Logits with the units a task does not use (above its classes) at -inf."""
        return mask_absent_classes(outputs, y_support, w_support)

    @staticmethod
    def query_terms(outputs: Tensor, y: Tensor, w: Tensor) -> Tensor:
        """Per task, in float64: the accuracy of its query rows, and 1 (it counts once);
        shape ``(n_tasks, 2)``."""
        correct = (outputs.argmax(dim=-1) == y).double()
        w = w.double()
        accuracy = (correct * w).sum(dim=1) / w.sum(dim=1)
        return torch.stack([accuracy, torch.ones_like(accuracy)], dim=1)

    @staticmethod
    def few_shot_score(terms: Tensor) -> float:
        """Mean over tasks of the query accuracy, from the :meth:`query_terms` of all tasks."""
        accuracy, n_tasks = terms.sum(dim=0).tolist()
        return accuracy / n_tasks


REGRESSION = Regression()
CLASSIFICATION = Classification()
