"""MAMLRegressor: meta-learning works, and the estimator behaves like scikit-learn's."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, cross_validate
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skmeta import MAMLRegressor, adapt_pipeline
from skmeta._modules import MLP
from skmeta.datasets import SinusoidTasks


def query_mse(model_predict, tasks, k=10):
    return float(
        np.mean([np.mean((model_predict(X[:k], y[:k], X[k:]) - y[k:]) ** 2) for X, y in tasks])
    )


def scratch_predict(X_s, y_s, X_q, seed=0):
    """The same 1-40-40-1 network trained from scratch (Adam, 500 steps) on the support set."""
    torch.manual_seed(seed)
    net = MLP(1, 1, (40, 40))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    X_s, y_s = torch.as_tensor(X_s), torch.as_tensor(y_s)
    for _ in range(500):
        opt.zero_grad()
        ((net(X_s).squeeze(-1) - y_s) ** 2).mean().backward()
        opt.step()
    with torch.no_grad():
        return net(torch.as_tensor(X_q)).squeeze(-1).numpy()


def test_adapted_model_beats_meta_init_and_training_from_scratch(trained_maml):
    family = SinusoidTasks(n_samples=60)
    tasks = family.sample(25, random_state=123)  # held out: a seed never used in training
    maml = clone(trained_maml).set_params(adapt_steps=10)
    maml.__dict__.update({k: v for k, v in vars(trained_maml).items() if k.endswith("_")})

    adapted = query_mse(lambda Xs, ys, Xq: maml.adapt(Xs, ys).predict(Xq), tasks)
    unadapted = query_mse(
        lambda Xs, ys, Xq: maml.set_params(adapt_steps=0).adapt(Xs, ys).predict(Xq), tasks
    )
    scratch = query_mse(scratch_predict, tasks)
    assert adapted < 0.5 * unadapted
    assert adapted < 0.7 * scratch


def test_grid_search_over_tasks_prefers_the_inner_lr_that_adapts():
    # Amplitudes >= 1: per-task R² of near-flat sines (amplitude 0.1) is dominated by noise.
    tasks = SinusoidTasks(n_samples=20, amplitude_range=(1.0, 5.0)).sample(90, random_state=0)
    search = GridSearchCV(
        MAMLRegressor(max_iter=300, meta_lr=3e-3, random_state=0),
        {"inner_lr": [1e-5, 1e-2]},
        cv=KFold(3),
    ).fit(tasks)
    assert search.best_params_ == {"inner_lr": 1e-2}
    low, high = search.cv_results_["mean_test_score"]
    assert high > low + 0.2


class RecordingMAML(MAMLRegressor):
    """Records the task ids that reach fit and score."""

    def fit(self, X, y=None, groups=None):
        super().fit(X, y, groups=groups)
        self.fit_groups_ = None if groups is None else np.unique(groups)
        return self

    def score(self, X, y=None, sample_weight=None, groups=None):
        self.score_groups_ = None if groups is None else np.unique(groups)
        return super().score(X, y, sample_weight=sample_weight, groups=groups)


def test_pipeline_grid_search_with_group_kfold_routes_groups(routing, long_format):
    X, y, groups = long_format
    pipe = Pipeline(
        [("scale", StandardScaler()), ("mamlregressor", RecordingMAML(max_iter=30, random_state=0))]
    )
    grid = {"mamlregressor__inner_lr": [1e-3, 1e-2], "mamlregressor__inner_steps": [1, 2]}
    search = GridSearchCV(pipe, grid, cv=GroupKFold(3)).fit(X, y, groups=groups)
    assert len(search.cv_results_["mean_test_score"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    np.testing.assert_array_equal(search.best_estimator_[-1].fit_groups_, np.unique(groups))

    result = cross_validate(
        pipe,
        X,
        y,
        params={"groups": groups},
        cv=GroupKFold(3),
        return_estimator=True,
        return_indices=True,
    )
    for est, train, test in zip(
        result["estimator"], result["indices"]["train"], result["indices"]["test"]
    ):
        np.testing.assert_array_equal(est[-1].fit_groups_, np.unique(groups[train]))
        np.testing.assert_array_equal(est[-1].score_groups_, np.unique(groups[test]))


def test_few_shot_score_differs_from_plain_score(trained_maml, long_format):
    X, y, groups = long_format
    few_shot = trained_maml.score(X, y, groups=groups)
    plain = trained_maml.score(X, y)
    assert few_shot != plain
    assert few_shot == trained_maml.score(X, y, groups=groups)  # seeded split: reproducible


def test_task_col_equals_groups(long_format):
    X, y, groups = long_format
    df = pd.DataFrame(X, columns=["x"]).assign(task=groups)
    a = MAMLRegressor(max_iter=20, random_state=0, task_col="task").fit(df, y)
    b = MAMLRegressor(max_iter=20, random_state=0).fit(
        pd.DataFrame(X, columns=["x"]), y, groups=groups
    )
    assert a.loss_curve_ == b.loss_curve_
    assert list(a.feature_names_in_) == ["x"]
    np.testing.assert_array_equal(a.predict(df), b.predict(df[["x"]]))
    assert a.score(df, y) == b.score(pd.DataFrame(X, columns=["x"]), y, groups=groups)


def test_adapt_starts_from_the_meta_init_and_leaves_it_alone(trained_maml, sine_tasks):
    maml = pickle.loads(pickle.dumps(trained_maml))
    before = {k: v.clone() for k, v in maml.module_.state_dict().items()}
    (Xa, ya), (Xb, yb) = sine_tasks[0], sine_tasks[1]
    first = maml.adapt(Xa[:10], ya[:10]).predict(Xa)
    maml.adapt(Xb[:10], yb[:10])
    again = maml.adapt(Xa[:10], ya[:10]).predict(Xa)
    np.testing.assert_array_equal(first, again)
    for k, v in maml.module_.state_dict().items():
        assert torch.equal(v, before[k])
    meta_init = maml.set_params(adapt_steps=0).adapt(Xa[:10], ya[:10]).predict(Xa)
    assert not np.allclose(meta_init, first)


def test_same_random_state_same_run_and_clone_and_pickle(sine_tasks):
    X, y = sine_tasks[5]
    a = MAMLRegressor(max_iter=40, random_state=7).fit(SinusoidTasks(20))
    b = clone(a).fit(SinusoidTasks(20))
    assert a.loss_curve_ == b.loss_curve_
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    c = MAMLRegressor(max_iter=40, random_state=8).fit(SinusoidTasks(20))
    assert a.loss_curve_ != c.loss_curve_

    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.predict(X), a.predict(X))
    a.adapt(X[:10], y[:10])
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.predict(X), a.predict(X))


def test_partial_fit_and_warm_start_continue_training(sine_tasks):
    maml = MAMLRegressor(meta_batch_size=10, random_state=0)
    maml.partial_fit(sine_tasks)
    maml.partial_fit(sine_tasks)
    assert maml.n_iter_ == 2 and len(maml.loss_curve_) == 2
    warm = MAMLRegressor(max_iter=15, warm_start=True, random_state=0).fit(sine_tasks)
    first_params = {k: v.clone() for k, v in warm.module_.state_dict().items()}
    warm.fit(sine_tasks)
    assert warm.n_iter_ == 30 and len(warm.loss_curve_) == 30
    assert any(not torch.equal(v, first_params[k]) for k, v in warm.module_.state_dict().items())
    cold = MAMLRegressor(max_iter=15, random_state=0).fit(sine_tasks).fit(sine_tasks)
    assert cold.n_iter_ == 15


class Wide(nn.Module):
    def __init__(self, width=8, n_features=1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, width), nn.Tanh(), nn.Linear(width, 1))

    def forward(self, X):
        return self.net(X)


def test_module_as_class_instance_or_default(sine_tasks):
    est = MAMLRegressor(module=Wide, module__width=16, max_iter=5, random_state=0)
    assert est.get_params()["module__width"] == 16
    est.set_params(module__width=12)
    assert clone(est).get_params()["module__width"] == 12
    est.fit(sine_tasks)
    assert est.module_.net[0].out_features == 12

    instance = Wide(width=5)
    fitted = MAMLRegressor(module=instance, max_iter=5, random_state=0).fit(sine_tasks)
    assert fitted.module_ is not instance and fitted.module_.net[0].out_features == 5
    default = MAMLRegressor(hidden_layer_sizes=(7,), max_iter=5).fit(sine_tasks)
    assert [m.out_features for m in default.module_.modules() if isinstance(m, nn.Linear)] == [7, 1]


def test_batchnorm_module_trains_through_the_loop_path(sine_tasks):
    class WithBatchNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.Linear(1, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1)
            )

        def forward(self, X):
            return self.net(X)

    est = MAMLRegressor(module=WithBatchNorm(), max_iter=10, random_state=0).fit(sine_tasks)
    assert est.batching_ == "loop"
    assert np.isfinite(est.predict(sine_tasks[0][0])).all()
    assert MAMLRegressor(max_iter=2).fit(sine_tasks).batching_ == "vmap"


def test_adapt_pipeline_adapts_on_transformed_support(trained_maml, sine_tasks):
    X, y = sine_tasks[3]
    pipe = make_pipeline(StandardScaler(), MAMLRegressor(max_iter=200, random_state=0))
    pipe.fit(
        SinusoidTasks(20).sample(1, random_state=0)[0][0],
        SinusoidTasks(20).sample(1, random_state=0)[0][1],
    )
    before = pipe.predict(X[10:])
    adapt_pipeline(pipe, X[:10], y[:10])
    after = pipe.predict(X[10:])
    expected = pipe[-1].predict(pipe[0].transform(X[10:]))
    np.testing.assert_array_equal(after, expected)
    assert not np.allclose(before, after)


def test_verbose_shows_a_progress_bar_with_the_meta_loss(capsys, sine_tasks):
    MAMLRegressor(max_iter=40, verbose=1, random_state=0).fit(sine_tasks)
    err = capsys.readouterr().err
    assert "meta-train" in err and "meta_loss=" in err


def test_device_auto_resolves_and_bad_device_is_rejected(sine_tasks):
    est = MAMLRegressor(max_iter=2, device="auto").fit(sine_tasks)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert est.device_.type == expected
    assert all(p.device.type == expected for p in est.module_.parameters())
    with pytest.raises(ValueError, match="Unknown device 'gpu'"):
        MAMLRegressor(device="gpu").fit(sine_tasks)


def test_one_task_without_groups_behaves_as_a_plain_regressor():
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(200, 2))
    y = X[:, 0] * 2 - X[:, 1]
    est = MAMLRegressor(max_iter=300, meta_lr=1e-2, shots=0.5, random_state=0).fit(X, y)
    assert est.score(X, y) > 0.9
