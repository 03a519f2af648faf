"""What an algorithm meta-learns, in one module: the network and any learned tensors."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

Tree = dict[str, dict[str, Tensor]]


class NamedTensors(nn.Module):
    """Learned tensors keyed by parameter name (names may contain dots, which
    :class:`torch.nn.ParameterDict` refuses)."""

    def __init__(self, tensors: Mapping[str, Tensor]):
        super().__init__()
        self.names = list(tensors)
        self.values = nn.ParameterList([nn.Parameter(t.detach().clone()) for t in tensors.values()])

    def as_dict(self) -> dict[str, Tensor]:
        return dict(zip(self.names, self.values))


class MetaParameters(nn.Module):
    """The meta-parameters of a fitted estimator, as one :class:`torch.nn.Module`.

    ``network`` holds the learned initialisation (its parameters) and its
    buffers; ``learned`` holds what an algorithm learns besides, such as
    Meta-SGD's or MAML++'s inner step sizes, by kind (``"inner_lr"``) and
    parameter name. Being one module, the outer optimizer, the divergence
    snapshot, device moves, pickling and ``save_params`` cover all of them.

    Parameters
    ----------
    network : torch.nn.Module
        The estimator's ``module_`` (shared, not copied).
    learned : mapping of str to mapping of str to Tensor, optional
        Initial values of the other meta-parameters.
    """

    def __init__(self, network: nn.Module, learned: Mapping[str, Mapping[str, Tensor]] = ()):
        super().__init__()
        self.network = network
        self.learned = nn.ModuleDict({kind: NamedTensors(t) for kind, t in dict(learned).items()})

    def tree(self, *, detach: bool = False) -> Tree:
        """``{"init": network parameters, kind: {name: tensor}}`` (the live tensors,
        or detached views of them)."""
        tree = {"init": dict(self.network.named_parameters())}
        tree.update({kind: tensors.as_dict() for kind, tensors in self.learned.items()})
        if detach:
            tree = {kind: {n: t.detach() for n, t in ts.items()} for kind, ts in tree.items()}
        return tree

    def learned_shapes(self) -> dict[str, dict[str, tuple[int, ...]]]:
        """Shapes of the learned tensors, to compare with what an algorithm expects."""
        return {
            kind: {name: tuple(t.shape) for name, t in tensors.as_dict().items()}
            for kind, tensors in self.learned.items()
        }
