"""The public estimators: thin shells over the algorithms, one module per family."""

from ._finetune import FineTuneClassifier, FineTuneRegressor
from ._maml import MAMLClassifier, MAMLRegressor
from ._protonet import ProtoNetClassifier
from ._reptile import ReptileClassifier, ReptileRegressor

__all__ = [
    "FineTuneClassifier",
    "FineTuneRegressor",
    "MAMLClassifier",
    "MAMLRegressor",
    "ProtoNetClassifier",
    "ReptileClassifier",
    "ReptileRegressor",
]
