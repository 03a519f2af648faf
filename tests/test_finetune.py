"""FineTuneRegressor: pretraining on pooled tasks, fine-tuning, same contract as MAML."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from skmeta import FineTuneRegressor, MAMLRegressor, adapt_pipeline
from skmeta._modules import MLP, head_parameter_names
from skmeta.datasets import SinusoidTasks


def long_format(tasks):
    X = np.concatenate([X_t for X_t, _ in tasks])
    y = np.concatenate([y_t for _, y_t in tasks])
    groups = np.repeat(np.arange(len(tasks)), [len(y_t) for _, y_t in tasks])
    return X, y, groups


def copy_of(estimator, **params):
    """A copy with other settings, so that tests never change a shared fixture."""
    return pickle.loads(pickle.dumps(estimator)).set_params(**params)


def query_mse(estimator, tasks, k_shot):
    errors = [
        np.mean((estimator.adapt(X[:k_shot], y[:k_shot]).predict(X[k_shot:]) - y[k_shot:]) ** 2)
        for X, y in tasks
    ]
    return float(np.mean(errors))


@pytest.fixture(scope="module")
def sine_model():
    """Pretrained on 200 sine tasks; fixture shared because fitting is the slow part."""
    return FineTuneRegressor(n_sampled_tasks=200, max_epochs=40, lr=3e-3, random_state=0).fit(
        SinusoidTasks(n_samples=20)
    )


@pytest.fixture(scope="module")
def held_out():
    return SinusoidTasks(n_samples=30).sample(20, random_state=123)


def test_head_parameter_names_is_the_output_layer():
    assert head_parameter_names(MLP(3, 1, (8, 8))) == ("layers.4.weight", "layers.4.bias")


# ---------------------------------------------------------------- behaviour
def test_adapting_improves_query_mse_on_sinusoids(sine_model, held_out):
    pretrained = query_mse(copy_of(sine_model, adapt_steps=0), held_out, k_shot=10)
    tuned = query_mse(copy_of(sine_model, adapt_steps=10), held_out, k_shot=10)
    assert tuned < 0.8 * pretrained
    # Few-shot score says the same: R² on query rows after fine-tuning on the support rows.
    scores = {s: copy_of(sine_model, adapt_steps=s).score(held_out) for s in (0, 10)}
    assert scores[10] > scores[0]
    adam = copy_of(sine_model, adapt_optimizer="adam", adapt_lr=0.01, adapt_steps=10)
    assert query_mse(adam, held_out, k_shot=10) < 0.8 * pretrained


def test_head_only_fine_tuning_changes_only_the_last_layer(sine_model, held_out):
    X, y = held_out[0]
    model = copy_of(sine_model, adapt_layers="head", adapt_steps=5)
    adapted = model.adapt(X[:10], y[:10]).adapted_params_
    pretrained = dict(model.module_.named_parameters())
    changed = {name for name, p in adapted.items() if not torch.equal(p, pretrained[name])}
    assert changed == set(head_parameter_names(model.module_))


def test_adapt_never_changes_the_pretrained_network(sine_model, held_out):
    model = copy_of(sine_model, adapt_steps=10)
    before = {k: v.clone() for k, v in model.module_.state_dict().items()}
    (X_a, y_a), (X_b, y_b) = held_out[0], held_out[1]
    fresh = model.adapt(X_b[:10], y_b[:10]).predict(X_b[10:])
    for X, y in held_out[2:6]:
        model.adapt(X[:10], y[:10])
    model.set_params(adapt_optimizer="adam").adapt(X_a[:10], y_a[:10])
    model.set_params(adapt_optimizer="sgd")
    np.testing.assert_array_equal(model.adapt(X_b[:10], y_b[:10]).predict(X_b[10:]), fresh)
    for name, value in model.module_.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)


def test_without_task_variation_fine_tuning_matches_pooled_training():
    """Every task is y = sin(x): there is nothing to adapt to, the pooled fit is the answer."""
    family = SinusoidTasks(n_samples=30, amplitude_range=(1.0, 1.0), phase_range=(0.0, 0.0))
    train, test = family.sample(40, random_state=0), family.sample(20, random_state=1)
    X, y, _ = long_format(train)
    settings = dict(hidden_layer_sizes=(40, 40), max_epochs=150, lr=1e-2, random_state=0)
    ft = FineTuneRegressor(early_stopping=False, batch_size=200, adapt_steps=10, **settings)
    ft.fit(train)
    plain = MLPRegressor(
        hidden_layer_sizes=(40, 40),
        learning_rate_init=1e-2,
        batch_size=200,
        max_iter=150,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain.fit(X, y)
    X_q = np.concatenate([X_t[10:] for X_t, _ in test])
    y_q = np.concatenate([y_t[10:] for _, y_t in test])
    plain_mse = float(np.mean((plain.predict(X_q) - y_q) ** 2))
    tuned_mse = query_mse(ft, test, k_shot=10)
    assert plain_mse < 0.05
    assert tuned_mse < 0.05
    assert abs(tuned_mse - plain_mse) < 0.03


# ---------------------------------------------------------------- inputs
def test_long_format_list_and_task_col_train_the_same_network():
    tasks = SinusoidTasks(n_samples=15).sample(12, random_state=0)
    X, y, groups = long_format(tasks)
    settings = dict(max_epochs=5, validation_fraction=0.25, random_state=0)
    X_new = tasks[0][0]
    from_list = FineTuneRegressor(**settings).fit(tasks).predict(X_new)
    from_long = FineTuneRegressor(**settings).fit(X, y, groups=groups).predict(X_new)
    frame = pd.DataFrame({"x": X[:, 0], "task": groups})
    from_col = FineTuneRegressor(task_col="task", **settings).fit(frame, y)
    np.testing.assert_allclose(from_long, from_list, rtol=1e-6)
    np.testing.assert_allclose(from_col.predict(pd.DataFrame({"x": X_new[:, 0]})), from_list)


def test_early_stopping_holds_out_whole_tasks():
    # Task t has 2**t rows: the held-out row count names the held-out tasks in binary.
    rng = np.random.RandomState(0)
    tasks = [(rng.randn(2**t, 2), rng.randn(2**t)) for t in range(10)]
    est = FineTuneRegressor(
        max_epochs=200, validation_fraction=0.2, n_iter_no_change=3, random_state=0
    ).fit(tasks)
    valid_rows = sum(b.get("valid_batch_size", 0) for b in est.history_[-1, "batches"])
    assert bin(valid_rows).count("1") == 2
    assert est.n_iter_ < 200
    assert len(est.validation_loss_curve_) == len(est.loss_curve_) == est.n_iter_


def test_user_callbacks_run_and_warm_start_continues():
    class CountEpochs(Callback):
        def initialize(self):
            self.epochs = 0
            return self

        def on_epoch_end(self, net, **kwargs):
            self.epochs += 1

    counter = CountEpochs()
    tasks = SinusoidTasks(n_samples=10).sample(5, random_state=0)
    est = FineTuneRegressor(max_epochs=4, callbacks=[counter], warm_start=True, random_state=0)
    est.fit(tasks)
    assert est.history_[-1, "epoch"] == 4 and est.n_iter_ == 4
    est.fit(tasks)
    assert est.n_iter_ == 8 and len(est.loss_curve_) == 8
    assert counter.epochs == 4  # skorch re-initialises callbacks at every fit
    assert est.loss_curve_[-1] < est.loss_curve_[0]


def test_fit_is_reproducible_and_leaves_global_rng_alone():
    tasks = SinusoidTasks(n_samples=10).sample(20, random_state=0)
    torch.manual_seed(7)
    expected = torch.rand(1)
    torch.manual_seed(7)
    first = FineTuneRegressor(max_epochs=3, random_state=0).fit(tasks).predict(tasks[0][0])
    assert torch.equal(torch.rand(1), expected)
    second = FineTuneRegressor(max_epochs=3, random_state=0).fit(tasks).predict(tasks[0][0])
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"adapt_optimizer": "rmsprop"}, "adapt_optimizer must be one of"),
        ({"adapt_layers": "body"}, "adapt_layers must be one of"),
        ({"validation_fraction": 1.0}, r"validation_fraction must be in \[0, 1\)"),
        ({"adapt_steps": -1}, "adapt_steps must be >= 0"),
        ({"max_epochs": 0}, "max_epochs must be > 0"),
        ({"callbacks": "early"}, "callbacks must be None or a list"),
        ({"n_sampled_tasks": 2.5}, "n_sampled_tasks must be an integer"),
    ],
)
def test_bad_parameters_are_named(params, message):
    tasks = SinusoidTasks(n_samples=10).sample(3, random_state=0)
    with pytest.raises(ValueError, match=message):
        FineTuneRegressor(**{"max_epochs": 1, **params}).fit(tasks)


def test_sampler_with_y_is_rejected():
    with pytest.raises(ValueError, match="y and groups must be None"):
        FineTuneRegressor().fit(SinusoidTasks(), np.zeros(3))


# ---------------------------------------------------------------- model selection
def _grid_search(estimator, param_grid, X, y, groups):
    """The user's code: only the estimator and its grid change between families."""
    pipe = Pipeline([("scale", StandardScaler()), ("est", estimator)])
    search = GridSearchCV(pipe, {f"est__{k}": v for k, v in param_grid.items()}, cv=GroupKFold(3))
    with sklearn.config_context(enable_metadata_routing=True):
        search.fit(X, y, groups=groups)
    return search


@pytest.fixture(scope="module")
def sine_long():
    return long_format(SinusoidTasks(n_samples=20).sample(60, random_state=0))


@pytest.mark.parametrize(
    "estimator",
    [
        MAMLRegressor(max_iter=60, meta_lr=1e-2, random_state=0),
        FineTuneRegressor(max_epochs=15, lr=1e-2, random_state=0),
    ],
    ids=["maml", "finetune"],
)
def test_same_grid_search_code_for_both_families(estimator, sine_long):
    search = _grid_search(estimator, {"adapt_steps": [0, 5]}, *sine_long)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_params_ == {"est__adapt_steps": 5}
    X, y, groups = sine_long
    task = groups == 0
    pipe = adapt_pipeline(search.best_estimator_, X[task][:10], y[task][:10])
    assert pipe.predict(X[task][10:]).shape == (10,)
    assert not sklearn.get_config()["enable_metadata_routing"]


def test_grid_search_over_adapt_lr_and_adapt_steps(sine_long):
    estimator = FineTuneRegressor(max_epochs=15, lr=1e-2, random_state=0)
    grid = {"adapt_lr": [1e-4, 1e-2], "adapt_steps": [1, 10]}
    search = _grid_search(estimator, grid, *sine_long)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_ == {"est__adapt_lr": 1e-2, "est__adapt_steps": 10}
