"""Masked losses: every row has a weight, 1 for real rows and 0 for padding.

Tasks of unequal size arrive zero-padded with weights ``w``, and every loss
here is a weighted mean, so padding changes nothing. ``w=None`` means every
row is real (meta-batches of equal-size tasks): the plain mean, the same
value as with unit weights in fewer operations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def weighted_mse(output: Tensor, y: Tensor, w: Tensor | None) -> Tensor:
    """Mean squared error over the rows with weight 1 (``output`` is (n,) or (n, 1))."""
    squared_error = (output.reshape(y.shape) - y) ** 2
    if w is None:
        return squared_error.mean()
    return (squared_error * w).sum() / w.sum()


def weighted_cross_entropy(output: Tensor, y: Tensor, w: Tensor | None) -> Tensor:
    """Cross-entropy of logits ``output`` (n, n_classes) over the rows with weight 1."""
    losses = F.cross_entropy(output, y, reduction="none")
    if w is None:
        return losses.mean()
    return (losses * w).sum() / w.sum()


def mask_absent_classes(output: Tensor, y_support: Tensor, w_support: Tensor | None) -> Tensor:
    """Logits with the units above a task's largest class code set to -inf.

    Class codes are ``0..n_classes - 1`` per task and every class has
    support rows, so the largest support code tells which output units a
    task does not use: they get no probability. Works for one task
    (``output`` (n, units)) or a batch (a leading task dimension everywhere).
    """
    real = y_support if w_support is None else y_support * (w_support > 0)
    n_classes = real.amax(dim=-1, keepdim=True) + 1
    units = torch.arange(output.shape[-1], device=output.device)
    unused = units >= n_classes.unsqueeze(-1)
    return output.masked_fill(unused, float("-inf"))
