"""Regression vs classification: a small strategy object every algorithm shares.

A target strategy says how targets are coded (the readers' ``classification``
flag: float targets, or task-local class codes ``0..n_classes - 1``), which
loss trains the network, what output width and shape the network must have,
how a task's outputs are read (classification: the units above a task's
classes get no probability) and how a task's query rows are scored. It knows
no algorithm: MAML, Reptile, ProtoNet and fine-tuning use the same two.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._functional import LossFn, mask_absent_classes, weighted_cross_entropy, weighted_mse


class Regression:
    """One output per row, masked MSE, few-shot R²."""

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
    def query_scores(outputs: Tensor, y: Tensor, w: Tensor) -> Tensor:
        """R² of each task's query rows (1 if perfect on constant targets, else 0)."""
        pred = outputs.reshape(y.shape)
        n = w.sum(dim=1)
        mean = (w * y).sum(dim=1) / n
        ss_res = (w * (y - pred) ** 2).sum(dim=1)
        ss_tot = (w * (y - mean[:, None]) ** 2).sum(dim=1)
        constant = ss_tot == 0
        r2 = 1 - ss_res / torch.where(constant, torch.ones_like(ss_tot), ss_tot)
        return torch.where(constant, (ss_res == 0).to(r2.dtype), r2)


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
    def query_scores(outputs: Tensor, y: Tensor, w: Tensor) -> Tensor:
        """Accuracy of each task's query rows."""
        correct = (outputs.argmax(dim=-1) == y).to(w.dtype)
        return (correct * w).sum(dim=1) / w.sum(dim=1)


REGRESSION = Regression()
CLASSIFICATION = Classification()
