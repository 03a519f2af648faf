"""Non-finite meta-training stops with a clear error and keeps the last finite state."""

import numpy as np
import pytest
import torch
from torch import nn

from skmeta import MAMLRegressor

rng = np.random.RandomState(0)
X = rng.randn(40, 1).astype(np.float32)
y = rng.randn(40).astype(np.float32)
groups = np.repeat(np.arange(4), 10)


class Kink(nn.Module):
    """Output and first derivative finite, second derivative infinite at ``kink=0``.

    Second-order MAML then gets a NaN meta-gradient for ``kink`` while every
    meta-loss stays finite.
    """

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)
        self.kink = nn.Parameter(torch.zeros(()))

    def forward(self, X):
        return self.linear(X) + self.kink.abs() ** 1.5


class ExplodingTasks:
    """Sinusoid-like tasks whose targets become 1e30 from draw ``explode_at`` on.

    The targets are finite float32 (they pass validation) but their squares
    overflow, so the meta-loss becomes inf at exactly that iteration.
    """

    def __init__(self, explode_at):
        self.explode_at, self.n_draws = explode_at, 0

    def sample(self, n_tasks, random_state=None):
        self.n_draws += 1
        rs = np.random.RandomState(self.n_draws)
        scale = 1e30 if self.n_draws >= self.explode_at else 1.0
        X_draw = rs.uniform(-5, 5, size=(n_tasks, 10, 1)).astype(np.float32)
        y_draw = (scale * np.sin(X_draw[..., 0])).astype(np.float32)
        return [(X_draw[t], y_draw[t]) for t in range(n_tasks)]


def maml(**params):
    settings = dict(meta_batch_size=4, shots=5, hidden_layer_sizes=(8,), random_state=0)
    return MAMLRegressor(**{**settings, **params})


def test_nan_meta_gradient_with_finite_loss_is_caught():
    # Before the gradient check, max_iter=1 here returned NaN parameters silently.
    est = maml(module=Kink, max_iter=1, shots=3)
    with pytest.raises(FloatingPointError, match="meta-gradient became NaN or inf") as info:
        est.fit(X, y, groups=groups)
    assert "iteration 1" in str(info.value) and "inner_lr" in str(info.value)
    assert est.n_iter_ == 0 and est.loss_curve_ == []
    assert all(torch.isfinite(p).all() for p in est.module_.parameters())
    assert est.module_.kink.item() == 0.0  # its initial value
    assert np.isfinite(est.predict(X)).all()
    # Adam's moments were restored with the parameters: no NaN left in the optimizer.
    for state in est.optimizer_.state.values():
        assert all(torch.isfinite(v).all() for v in state.values() if torch.is_tensor(v))


def test_first_order_is_not_affected_by_the_kink():
    est = maml(module=Kink, max_iter=3, shots=3, first_order=True).fit(X, y, groups=groups)
    assert est.n_iter_ == 3 and np.isfinite(est.loss_curve_).all()


def test_divergence_keeps_the_parameters_of_the_last_check():
    est = maml(max_iter=60)
    with pytest.raises(FloatingPointError, match="meta-loss became (inf|nan) at iteration 31"):
        est.fit(ExplodingTasks(explode_at=31))
    # Losses are checked every 20 steps: the state after step 20 is the last known finite one.
    assert est.n_iter_ == 20 and len(est.loss_curve_) == 20
    assert np.isfinite(est.loss_curve_).all()

    reference = maml(max_iter=20).fit(ExplodingTasks(explode_at=31))
    assert est.loss_curve_ == reference.loss_curve_
    for (name, p), q in zip(est.module_.named_parameters(), reference.module_.parameters()):
        assert torch.equal(p, q), name
    ref_state = reference.optimizer_.state_dict()["state"]
    for index, state in est.optimizer_.state_dict()["state"].items():
        for key, value in state.items():
            assert torch.equal(value, ref_state[index][key]), (index, key)
    np.testing.assert_array_equal(est.predict(X), reference.predict(X))


def test_large_inner_lr_diverges_with_a_hint():
    est = maml(max_iter=50, inner_lr=1e4, hidden_layer_sizes=(40, 40))
    with pytest.raises(FloatingPointError, match=r"inner_lr \(10000.0\).*too large"):
        est.fit(X, 1e3 * y, groups=groups)
    assert est.n_iter_ == len(est.loss_curve_)
    assert all(torch.isfinite(p).all() for p in est.module_.parameters())


def test_training_continues_after_a_divergence():
    # The restored state is usable: partial_fit on sane tasks carries on from it.
    est = maml(max_iter=60)
    with pytest.raises(FloatingPointError):
        est.fit(ExplodingTasks(explode_at=31))
    est.partial_fit(ExplodingTasks(explode_at=10**9))
    assert est.n_iter_ == 21 and len(est.loss_curve_) == 21
    assert np.isfinite(est.loss_curve_[-1])
