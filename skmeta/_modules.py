"""Default network: a multi-layer perceptron sized like scikit-learn's MLPs."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


class MLP(nn.Module):
    """Fully connected ReLU network ``n_features -> hidden... -> n_outputs``.

    Parameters
    ----------
    n_features : int
        Input width.
    n_outputs : int
        Output width (1 for regression, the number of classes for classification).
    hidden_layer_sizes : sequence of int, default=(40, 40)
        Width of each hidden layer; ``()`` gives a linear model.
    """

    def __init__(
        self, n_features: int, n_outputs: int, hidden_layer_sizes: Sequence[int] = (40, 40)
    ):
        super().__init__()
        widths = [n_features, *hidden_layer_sizes]
        layers: list[nn.Module] = []
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)
