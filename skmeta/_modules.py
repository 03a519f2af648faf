"""Default network: a multi-layer perceptron sized like scikit-learn's MLPs."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from torch.nn import functional as F


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

    def forward_with(self, params: dict[str, Tensor], X: Tensor) -> Tensor:
        """``forward`` with ``params`` (name -> tensor) in place of the module's parameters.

        The same torch functions as ``forward`` on the same tensors, so the
        same values bit for bit as :func:`torch.func.functional_call`, without
        swapping the tensors into the module at every call (the inner loop calls
        the network twice per task and step; the swap is about a tenth of a
        small meta-step's time).
        """
        h = X
        for index, layer in enumerate(self.layers):
            if isinstance(layer, nn.Linear):
                h = F.linear(h, params[f"layers.{index}.weight"], params[f"layers.{index}.bias"])
            elif isinstance(layer, nn.ReLU):
                h = F.relu(h)
            else:
                h = F.dropout(h, layer.p, layer.training)
        return h


def runs_forward_with(module: nn.Module) -> bool:
    """Whether ``module`` is skmeta's own MLP (not a subclass) with no forward hooks:
    :meth:`MLP.forward_with` then computes what ``functional_call`` would."""
    if type(module) is not MLP:
        return False
    hooks = (nn.modules.module._global_forward_hooks, nn.modules.module._global_forward_pre_hooks)
    if any(hooks):
        return False
    return not any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())


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
