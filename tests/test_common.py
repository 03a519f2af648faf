"""scikit-learn's common estimator checks, on every public estimator.

Three sets: small tuned settings with every algorithm option; every estimator
with its default parameters, but 100 outer steps for the meta-trained ones
(``max_iter=100``; the fine-tune ones are exactly default); and, with
``SKMETA_SLOW_CHECKS=1``, every estimator exactly as default-constructed
(minutes per estimator on a laptop CPU).
"""

import os

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmeta import (
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    ProtoNetClassifier,
    ReptileClassifier,
    ReptileRegressor,
)

# Small but real settings: the checks fit dozens of times.
ESTIMATORS = [
    MAMLRegressor(max_iter=100, meta_lr=1e-2, shots=0.5, random_state=0),
    FineTuneRegressor(max_epochs=30, lr=1e-2, shots=0.5, random_state=0),
    MAMLClassifier(max_iter=100, meta_lr=1e-2, inner_lr=0.1, shots=0.5, random_state=0),
    FineTuneClassifier(max_epochs=30, lr=1e-2, shots=0.5, random_state=0),
    # The checks' regression targets are unscaled (up to a few hundred): 10 SGD steps at
    # the default 0.02 diverge there (with a clear FloatingPointError); 5 at 0.01 do not.
    ReptileRegressor(max_iter=100, inner_steps=5, inner_lr=0.01, shots=0.5, random_state=0),
    ReptileClassifier(max_iter=50, inner_steps=3, inner_lr=0.1, shots=0.5, random_state=0),
    ProtoNetClassifier(max_iter=100, meta_lr=1e-2, shots=0.5, random_state=0),
    # The MAML family's options, combined.
    MAMLRegressor(
        max_iter=100,
        meta_lr=1e-2,
        shots=0.5,
        adapt_params="head",
        learn_inner_lr="per-parameter",
        random_state=0,
    ),
    MAMLClassifier(
        max_iter=100,
        meta_lr=1e-2,
        inner_lr=0.1,
        inner_steps=2,
        learn_inner_lr="per-layer-per-step",
        multi_step_loss=True,
        shots=0.5,
        random_state=0,
    ),
]

CLASSES = [
    MAMLRegressor,
    MAMLClassifier,
    ReptileRegressor,
    ReptileClassifier,
    ProtoNetClassifier,
    FineTuneRegressor,
    FineTuneClassifier,
]


def _short(cls):
    """Default parameters, but a short meta-training (fine-tuning keeps its defaults)."""
    return cls() if "max_epochs" in cls().get_params() else cls(max_iter=100)


# Default shots ("auto") on check_estimator's small tasks (e.g. 8 rows per class).
SHORT_DEFAULTS = [_short(cls) for cls in CLASSES]
DEFAULTS = [cls() for cls in CLASSES] if os.environ.get("SKMETA_SLOW_CHECKS") else []

_KWARGS_IN_SET_PARAMS = {
    "check_do_not_raise_errors_in_init_or_set_params": (
        "The check passes a parameter literally named 'kwargs' (from the **kwargs that "
        "carries module__* parameters, skorch-style) to set_params; set_params rejects "
        "unknown names, as scikit-learn's own estimators do, so that typos fail at once."
    ),
}
_FLOAT32_SUBSET = {
    "check_methods_subset_invariance": (
        "The network computes in float32; predicting a subset of rows changes the matrix "
        "shapes and so the BLAS blocking, which moves results by ~1e-7 relative, at the "
        "check's rtol=1e-7 limit."
    ),
}

# Checks that cannot pass, with the reason. Subset invariance fails where float32 noise
# reaches the check's tolerance (FineTuneClassifier: its predict_proba, after 100 head
# steps); it passes for the others (an argmax absorbs the noise; the tuned
# FineTuneRegressor's settings happen to be exact, its default ones do not).
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "MAMLRegressor": {**_KWARGS_IN_SET_PARAMS, **_FLOAT32_SUBSET},
    # Its default instance meets the float32 noise (the tuned one happens to be exact).
    "FineTuneRegressor": {**_KWARGS_IN_SET_PARAMS, **_FLOAT32_SUBSET},
    # Its MAML++ instance's predict_proba meets the float32 noise; the plain one passes.
    "MAMLClassifier": {**_KWARGS_IN_SET_PARAMS, **_FLOAT32_SUBSET},
    "FineTuneClassifier": {**_KWARGS_IN_SET_PARAMS, **_FLOAT32_SUBSET},
    "ReptileRegressor": {
        **_KWARGS_IN_SET_PARAMS,
        **_FLOAT32_SUBSET,
        # Only the default instance fails it (the tuned one, 5 inner steps, passes).
        "check_regressor_data_not_an_array": (
            "The check's targets are unscaled (a few hundred): the default 10 inner SGD "
            "steps at inner_lr=0.01 diverge there, and fit raises a FloatingPointError "
            "naming inner_lr. Standardise the targets (TransformedTargetRegressor)."
        ),
    },
    "ReptileClassifier": _KWARGS_IN_SET_PARAMS,
    "ProtoNetClassifier": _KWARGS_IN_SET_PARAMS,
}


# The checks fit single tasks of at most a few hundred rows: neither warning may fire.
@pytest.mark.filterwarnings("error::skmeta.SingleTaskWarning")
@pytest.mark.filterwarnings("error::skmeta.UnadaptedPredictionWarning")
@parametrize_with_checks(
    ESTIMATORS + SHORT_DEFAULTS + DEFAULTS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
