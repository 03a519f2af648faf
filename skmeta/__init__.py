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
from ._scoring import FewShotScorer, make_few_shot_scorer
from ._warnings import SingleTaskWarning, UnadaptedPredictionWarning

__all__ = [
    "FewShotScorer",
    "FineTuneClassifier",
    "FineTuneRegressor",
    "MAMLClassifier",
    "MAMLRegressor",
    "ProtoNetClassifier",
    "ReptileClassifier",
    "ReptileRegressor",
    "SingleTaskWarning",
    "UnadaptedPredictionWarning",
    "adapt_pipeline",
    "make_few_shot_scorer",
]
__version__ = "0.1.0"
