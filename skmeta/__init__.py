"""skmeta: scikit-learn compatible meta-learning on PyTorch."""

from ._finetune import FineTuneClassifier, FineTuneRegressor
from ._maml import MAMLClassifier, MAMLRegressor
from ._pipeline import adapt_pipeline

__all__ = [
    "FineTuneClassifier",
    "FineTuneRegressor",
    "MAMLClassifier",
    "MAMLRegressor",
    "adapt_pipeline",
]
__version__ = "0.1.0"
