"""skmeta: scikit-learn compatible meta-learning on PyTorch."""

from ._estimators import (
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    ProtoNetClassifier,
    ReptileClassifier,
    ReptileRegressor,
)
from ._pipeline import adapt_pipeline

__all__ = [
    "FineTuneClassifier",
    "FineTuneRegressor",
    "MAMLClassifier",
    "MAMLRegressor",
    "ProtoNetClassifier",
    "ReptileClassifier",
    "ReptileRegressor",
    "adapt_pipeline",
]
__version__ = "0.1.0"
