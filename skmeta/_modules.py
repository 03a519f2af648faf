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
    dropout : float, default=0.0
        Dropout probability after each hidden layer (none when 0). Set it on an
        estimator with ``module__dropout=0.2``; its masks come from the
        estimator's generators, so ``random_state`` still reproduces a run.
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        hidden_layer_sizes: Sequence[int] = (40, 40),
        dropout: float = 0.0,
    ):
        super().__init__()
        widths = [n_features, *hidden_layer_sizes]
        layers: list[nn.Module] = []
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1], n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)


def head_parameter_names(module: nn.Module) -> tuple[str, ...]:
    """Names of the parameters of the last submodule (in registration order) that owns any.

    For the default MLP and most feed-forward networks this is the output layer.
    """
    head: tuple[str, ...] = ()
    for prefix, submodule in module.named_modules():
        own = [name for name, _ in submodule.named_parameters(recurse=False)]
        if own:
            head = tuple(f"{prefix}.{name}" if prefix else name for name in own)
    return head


def select_parameters(
    module: nn.Module, spec, *, what: str = "adapt_params"
) -> tuple[str, ...] | None:
    """Parameter names chosen by ``spec``: ``"all"`` (None: every parameter), ``"head"``,
    or a list of name prefixes (``"layers.4"`` selects ``layers.4.weight`` and
    ``layers.4.bias``).

    Raises ``ValueError`` naming a prefix that selects nothing, with the
    module's parameter names.
    """
    names = [name for name, _ in module.named_parameters()]
    if isinstance(spec, str) and spec == "all":
        return None
    if isinstance(spec, str) and spec == "head":
        return head_parameter_names(module)
    prefixes = [spec] if isinstance(spec, str) else list(spec)
    chosen = []
    for prefix in prefixes:
        matched = [n for n in names if n == prefix or n.startswith(f"{prefix}.")]
        if not matched:
            raise ValueError(
                f"{what}: {prefix!r} names no parameter of the module; its parameters are {names}."
            )
        chosen += [n for n in matched if n not in chosen]
    return tuple(n for n in names if n in chosen)
