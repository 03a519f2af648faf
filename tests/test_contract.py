"""The full estimator contract, for every estimator and algorithm option.

Fit on the three task forms, partial_fit, adapt from the learned
initialisation, predict(_proba), few-shot score, Pipeline, GridSearchCV,
cross_validate, clone, pickle, save_params/load_params (learned step sizes
included), determinism with random_state, verbose progress, loss_curve_.
"""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone, is_classifier
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmeta import (
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    ProtoNetClassifier,
    ReptileClassifier,
    ReptileRegressor,
    adapt_pipeline,
)
from skmeta.datasets import FewShotDigits, SinusoidTasks

META = dict(max_iter=8, meta_batch_size=4, hidden_layer_sizes=(16,), random_state=0)
FINETUNE = dict(max_epochs=3, hidden_layer_sizes=(16,), random_state=0)
ESTIMATORS = {
    "MAML": MAMLRegressor(**META),
    "Meta-SGD": MAMLRegressor(**META, learn_inner_lr="per-parameter"),
    "ANIL + Meta-SGD": MAMLRegressor(**META, adapt_params="head", learn_inner_lr="per-parameter"),
    "MAML++": MAMLRegressor(
        **META, inner_steps=2, learn_inner_lr="per-layer-per-step", multi_step_loss=True
    ),
    "Reptile": ReptileRegressor(**META),
    "FineTune": FineTuneRegressor(**FINETUNE),
    "MAMLClassifier": MAMLClassifier(**META, inner_lr=0.3),
    "Meta-SGD classifier": MAMLClassifier(**META, inner_lr=0.3, learn_inner_lr="per-parameter"),
    "ReptileClassifier": ReptileClassifier(**META, inner_lr=0.1),
    "ProtoNet": ProtoNetClassifier(**META),
    "FineTuneClassifier": FineTuneClassifier(**FINETUNE, adapt_steps=5),
}
META_TRAINED = [name for name, est in ESTIMATORS.items() if hasattr(est, "partial_fit")]
SHOTS = 2  # support rows per task (regression) or per class (classification)


def make(name, **params):
    est = clone(ESTIMATORS[name]).set_params(shots=SHOTS, **params)
    return est


def tasks_for(name, n_tasks=12, seed=0):
    if is_classifier(ESTIMATORS[name]):
        # Labels 3-way per task, the same 24 classes throughout (FineTune pools them).
        return FewShotDigits(3, SHOTS, 3, split="meta-train").sample(n_tasks, random_state=seed)
    return SinusoidTasks(n_samples=8).sample(n_tasks, random_state=seed)


def long_format(tasks):
    X = np.concatenate([X for X, _ in tasks])
    y = np.concatenate([y for _, y in tasks])
    groups = np.repeat(np.arange(len(tasks)), [len(y) for _, y in tasks])
    return X, y, groups


def sampler_for(name):
    if is_classifier(ESTIMATORS[name]):
        return FewShotDigits(3, SHOTS, 3, split="meta-train")
    return SinusoidTasks(n_samples=8)


def meta_state(est):
    return {k: v.detach().clone() for k, v in est.meta_params_.state_dict().items()}


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def new_task(name):
    X, y = tasks_for(name, n_tasks=1, seed=99)[0]
    n_support = 3 * SHOTS if is_classifier(ESTIMATORS[name]) else 4
    return X[:n_support], y[:n_support], X[n_support:]


@pytest.mark.parametrize("name", ESTIMATORS)
def test_three_task_forms_and_determinism(name):
    tasks = tasks_for(name)
    from_list = make(name).fit(tasks)
    from_long = make(name).fit(*long_format(tasks)[:2], groups=long_format(tasks)[2])
    assert from_list.loss_curve_ == from_long.loss_curve_
    assert len(from_list.loss_curve_) == from_list.n_iter_ > 0
    assert np.isfinite(from_list.loss_curve_).all()
    assert_same_state(meta_state(from_list), meta_state(from_long))
    again = clone(from_list).fit(tasks)
    assert_same_state(meta_state(from_list), meta_state(again))
    other = make(name, random_state=1).fit(tasks)
    assert from_list.loss_curve_ != other.loss_curve_
    sampled = make(name).fit(sampler_for(name))
    assert sampled.n_features_in_ == from_list.n_features_in_


@pytest.mark.parametrize("name", ESTIMATORS)
def test_adapt_predict_score_leave_the_meta_parameters_alone(name):
    est = make(name).fit(tasks_for(name))
    before = meta_state(est)
    X_s, y_s, X_q = new_task(name)
    first = est.adapt(X_s, y_s).predict(X_q)
    X_other, y_other = tasks_for(name, n_tasks=1, seed=42)[0]
    est.adapt(X_other, y_other)  # another task in between
    assert np.array_equal(est.adapt(X_s, y_s).predict(X_q), first)
    if is_classifier(est):
        proba = est.predict_proba(X_q)
        assert proba.shape == (len(X_q), len(np.unique(y_s)))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
        assert set(first) <= set(y_s)
    score = est.score(tasks_for(name, n_tasks=4, seed=5))
    assert np.isfinite(score) and score == est.score(tasks_for(name, n_tasks=4, seed=5))
    assert_same_state(before, meta_state(est))


@pytest.mark.parametrize("name", META_TRAINED)
def test_partial_fit_and_warm_start_continue(name):
    tasks = tasks_for(name)
    est = make(name)
    est.partial_fit(tasks)
    est.partial_fit(tasks)
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    warm = make(name, warm_start=True).fit(tasks)
    first = meta_state(warm)
    warm.fit(tasks)
    assert warm.n_iter_ == 2 * warm.max_iter
    assert any(not torch.equal(v, first[k]) for k, v in meta_state(warm).items())


@pytest.mark.parametrize("name", ESTIMATORS)
def test_pickle_and_parameter_files_carry_every_meta_parameter(name, tmp_path):
    est = make(name).fit(tasks_for(name))
    X_s, y_s, X_q = new_task(name)
    restored = pickle.loads(pickle.dumps(est.adapt(X_s, y_s)))
    assert np.array_equal(restored.predict(X_q), est.predict(X_q))
    assert_same_state(meta_state(restored), meta_state(est))

    est.save_params(tmp_path / "meta.pt")
    other = make(name, random_state=7).fit(tasks_for(name))
    assert other.load_params(tmp_path / "meta.pt") is other
    assert_same_state(meta_state(other), meta_state(est))
    assert np.array_equal(other.adapt(X_s, y_s).predict(X_q), est.adapt(X_s, y_s).predict(X_q))


@pytest.mark.parametrize("name", ESTIMATORS)
def test_grid_search_cross_validate_and_pipeline(name):
    tasks = tasks_for(name)
    grid = {"shots": [1, 2]}
    search = GridSearchCV(make(name), grid, cv=KFold(2)).fit(tasks)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    result = cross_validate(make(name), tasks, cv=KFold(3))
    assert np.isfinite(result["test_score"]).all()

    X, y, _ = long_format(tasks[:1])
    pipe = make_pipeline(StandardScaler(), make(name)).fit(X, y)
    X_s, y_s, X_q = new_task(name)
    adapt_pipeline(pipe, X_s, y_s)
    expected = pipe[-1].predict(pipe[0].transform(X_q))
    assert np.array_equal(pipe.predict(X_q), expected)


@pytest.mark.parametrize("name", META_TRAINED)
def test_verbose_shows_the_meta_loss(name, capsys):
    make(name, verbose=1).fit(tasks_for(name))
    err = capsys.readouterr().err
    assert "meta-train" in err and "meta_loss=" in err


@pytest.mark.parametrize(
    "name, kind",
    [("Meta-SGD", "inner_lr"), ("MAML++", "log_inner_lr"), ("Meta-SGD classifier", "inner_lr")],
)
def test_learned_step_sizes_are_meta_parameters(name, kind):
    est = make(name, max_iter=20).fit(tasks_for(name))
    sizes = est.meta_params_.learned[kind].as_dict()
    assert set(sizes) == {n for n, _ in est.module_.named_parameters()}
    initial = est.inner_lr if kind == "inner_lr" else float(np.log(est.inner_lr))
    assert any(not torch.allclose(t, torch.full_like(t, initial)) for t in sizes.values())
    optimized = est.optimizer_.param_groups[0]["params"]
    assert all(any(p is q for q in optimized) for p in sizes.values())


def test_changing_the_learned_meta_parameters_needs_a_fresh_fit():
    tasks = tasks_for("MAML")
    est = make("Meta-SGD", warm_start=True).fit(tasks)
    est.set_params(learn_inner_lr="per-layer-per-step")
    with pytest.raises(ValueError, match="algorithm options changed since the first fit"):
        est.fit(tasks)
    with pytest.raises(ValueError, match="algorithm options changed"):
        est.partial_fit(tasks)
    est.set_params(warm_start=False).fit(tasks)  # a fresh fit is fine
    assert est.meta_params_.learned["log_inner_lr"].as_dict()["layers.0.weight"].shape == (1,)


def test_protonet_fit_on_one_task_predicts_like_a_plain_classifier():
    X, y = FewShotDigits(3, 10, 10, split="meta-train").sample(1, random_state=0)[0]
    labels = np.array(["cat", "dog", "owl"])[np.searchsorted(np.unique(y), y)]
    est = ProtoNetClassifier(max_iter=30, shots=5, random_state=0).fit(X, labels)
    assert list(est.classes_) == ["cat", "dog", "owl"]
    assert est.score(X, labels) > 0.9


def test_protonet_adapts_to_more_classes_than_it_was_trained_with():
    est = make("ProtoNet").fit(tasks_for("ProtoNet"))  # 3-way episodes
    X, y = FewShotDigits(6, 2, 3, split="meta-test").sample(1, random_state=0)[0]
    est.adapt(X[:12], y[:12])
    assert est.predict_proba(X[12:]).shape == (18, 6)
    assert est.score([(X, y)]) > 1 / 6
