"""The algorithm family learns: each variant beats its own unadapted meta-init and a
network trained from scratch with the same step budget; the grid search over the
options picks a sensible winner."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neural_network import MLPClassifier
from sklearn.utils import check_random_state

from skmeta import (
    MAMLClassifier,
    MAMLRegressor,
    ProtoNetClassifier,
    ReptileClassifier,
    ReptileRegressor,
)
from skmeta._modules import MLP
from skmeta.datasets import FewShotDigits, SinusoidTasks

K = 10  # support points per sine task

REGRESSORS = {
    "Meta-SGD": MAMLRegressor(learn_inner_lr="per-parameter", meta_lr=3e-3),
    "ANIL": MAMLRegressor(adapt_params="head", meta_lr=3e-3),
    "ANIL + Meta-SGD": MAMLRegressor(
        adapt_params="head", learn_inner_lr="per-parameter", meta_lr=3e-3
    ),
    "MAML++": MAMLRegressor(
        inner_steps=3, learn_inner_lr="per-layer-per-step", multi_step_loss=True, meta_lr=3e-3
    ),
    "Reptile": ReptileRegressor(),
}


@pytest.fixture(scope="module")
def sine_test_tasks():
    return SinusoidTasks(n_samples=60).sample(25, random_state=123)  # a seed never trained on


def query_mse(predict, tasks):
    return float(np.mean([np.mean((predict(X[:K], y[:K], X[K:]) - y[K:]) ** 2) for X, y in tasks]))


def scratch_regression(X_s, y_s, X_q, *, steps, lr, seed):
    """The same 1-40-40-1 network from a fresh initialisation, ``steps`` SGD steps at ``lr``."""
    torch.manual_seed(seed)
    net = MLP(1, 1, (40, 40))
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    X_s, y_s = torch.as_tensor(X_s), torch.as_tensor(y_s)
    for _ in range(steps):
        optimizer.zero_grad()
        ((net(X_s).squeeze(-1) - y_s) ** 2).mean().backward()
        optimizer.step()
    with torch.no_grad():
        return net(torch.as_tensor(X_q)).squeeze(-1).numpy()


@pytest.mark.parametrize("name", REGRESSORS)
def test_regressor_beats_its_meta_init_and_training_from_scratch(name, sine_test_tasks):
    est = REGRESSORS[name].set_params(max_iter=500, random_state=0)
    est.fit(SinusoidTasks(n_samples=2 * K))
    steps = est.inner_steps  # the budget meta-training optimised for

    def adapted(adapt_steps):
        est.set_params(adapt_steps=adapt_steps)
        return lambda X_s, y_s, X_q: est.adapt(X_s, y_s).predict(X_q)

    tasks = sine_test_tasks
    adapted_mse, unadapted_mse = query_mse(adapted(steps), tasks), query_mse(adapted(0), tasks)
    scratch_mse = query_mse(
        lambda X_s, y_s, X_q: scratch_regression(
            X_s, y_s, X_q, steps=steps, lr=est.inner_lr, seed=0
        ),
        tasks,
    )
    assert adapted_mse < 0.6 * unadapted_mse, (adapted_mse, unadapted_mse)
    assert adapted_mse < 0.5 * scratch_mse, (adapted_mse, scratch_mse)


def test_grid_search_over_the_options_picks_learned_step_sizes():
    # Meta-SGD adapts in one step far better than plain MAML (Li et al., 2017, Table 1),
    # with all parameters or the head alone: the search must see it.
    tasks = SinusoidTasks(n_samples=20, amplitude_range=(1.0, 5.0)).sample(80, random_state=0)
    search = GridSearchCV(
        MAMLRegressor(max_iter=300, meta_lr=3e-3, random_state=0),
        {"adapt_params": ["all", "head"], "learn_inner_lr": [None, "per-parameter"]},
        cv=KFold(2),
    ).fit(tasks)
    assert search.best_params_["learn_inner_lr"] == "per-parameter"
    scores = {
        (p["adapt_params"], p["learn_inner_lr"]): s
        for p, s in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"])
    }
    for adapt_params in ("all", "head"):
        assert scores[adapt_params, "per-parameter"] > scores[adapt_params, None] + 0.05, scores


class DigitsWithDistractors:
    """Few-shot digits with 64 columns of uniform noise appended to the 64 pixels.

    On the plain digits a random embedding already separates the unseen
    meta-test digits about as well as a meta-learned one (their shapes differ
    from every meta-train digit); with distractor columns, what transfers is
    which features to trust, so meta-learning has something to learn.
    """

    def __init__(self, split, k_shot=1):
        self.tasks = FewShotDigits(5, k_shot, 5, split=split)

    def sample(self, n_tasks, random_state=None):
        rng = np.random.default_rng(check_random_state(random_state).randint(2**31))
        tasks = self.tasks.sample(n_tasks, random_state=random_state)
        noise = lambda n: rng.random((n, 64), dtype=np.float32)
        return [(np.hstack([X, noise(len(X))]), y) for X, y in tasks]


CLASSIFIER_BASE = dict(hidden_layer_sizes=(64, 64), max_iter=200, shots=1, random_state=0)
MAML_BASE = dict(inner_lr=0.4, inner_steps=3, meta_batch_size=16, meta_lr=3e-3)
CLASSIFIERS = {
    "Meta-SGD": MAMLClassifier(**MAML_BASE, learn_inner_lr="per-parameter"),
    "ANIL": MAMLClassifier(**MAML_BASE, adapt_params="head"),
    "MAML++": MAMLClassifier(
        **MAML_BASE, learn_inner_lr="per-layer-per-step", multi_step_loss=True
    ),
    "Reptile": ReptileClassifier(inner_lr=0.1, inner_steps=5, meta_batch_size=16),
}
N_SUPPORT = 5  # 5-way 1-shot: the first 5 rows of a task are its support set


@pytest.fixture(scope="module")
def digit_test_tasks():
    return DigitsWithDistractors("meta-test").sample(40, random_state=1)


def query_accuracy(predict, tasks):
    return float(
        np.mean(
            [
                np.mean(predict(X[:N_SUPPORT], y[:N_SUPPORT], X[N_SUPPORT:]) == y[N_SUPPORT:])
                for X, y in tasks
            ]
        )
    )


def scratch_classifier(steps, lr):
    """A fresh 64-64 MLP, ``steps`` full-batch SGD steps at ``lr`` on the support rows."""

    def predict(X_s, y_s, X_q):
        net = MLPClassifier(
            (64, 64),
            solver="sgd",
            learning_rate_init=lr,
            momentum=0.0,
            batch_size=len(X_s),
            max_iter=steps,
            shuffle=False,
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: the budget is the point
            return net.fit(X_s, y_s).predict(X_q)

    return predict


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_beats_its_meta_init_and_training_from_scratch(name, digit_test_tasks):
    est = CLASSIFIERS[name].set_params(**CLASSIFIER_BASE).fit(DigitsWithDistractors("meta-train"))
    steps = est.inner_steps

    def adapted(adapt_steps):
        est.set_params(adapt_steps=adapt_steps)
        return lambda X_s, y_s, X_q: est.adapt(X_s, y_s).predict(X_q)

    tasks = digit_test_tasks
    accuracy, unadapted = query_accuracy(adapted(steps), tasks), query_accuracy(adapted(0), tasks)
    scratch = query_accuracy(scratch_classifier(steps, est.inner_lr), tasks)
    assert accuracy > unadapted + 0.25, (accuracy, unadapted)
    assert accuracy > scratch + 0.1, (accuracy, scratch)


def test_protonet_learns_an_embedding_that_transfers(digit_test_tasks):
    train = DigitsWithDistractors("meta-train")
    proto = ProtoNetClassifier(meta_batch_size=8, max_iter=200, shots=1, random_state=0).fit(train)
    # The same network before meta-training (one step at a negligible rate).
    untrained = ProtoNetClassifier(
        meta_batch_size=8, max_iter=1, meta_lr=1e-12, shots=1, random_state=0
    )
    untrained.fit(train)
    adapt_predict = lambda est: lambda X_s, y_s, X_q: est.adapt(X_s, y_s).predict(X_q)
    accuracy = query_accuracy(adapt_predict(proto), digit_test_tasks)
    assert accuracy > query_accuracy(adapt_predict(untrained), digit_test_tasks) + 0.1
    # Prototypes take no gradient step; a network trained from scratch for as many
    # steps as the gradient-based methods adapt (5) does far worse.
    assert accuracy > query_accuracy(scratch_classifier(5, 0.4), digit_test_tasks) + 0.1
