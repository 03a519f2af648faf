"""The same random_state gives the same run: losses, parameters, predictions, grid search."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold

from skmeta import MAMLRegressor
from skmeta.datasets import SinusoidTasks

sampler = SinusoidTasks(n_samples=20)
tasks = sampler.sample(12, random_state=0)
X_long = np.concatenate([X_t for X_t, _ in tasks])
y_long = np.concatenate([y_t for _, y_t in tasks])
groups = np.repeat(np.arange(len(tasks)), 20)
X_new, y_new = sampler.sample(1, random_state=1)[0]

INPUTS = {
    "list of tasks": lambda est: est.fit(tasks),
    "long format": lambda est: est.fit(X_long, y_long, groups=groups),
    "sampler": lambda est: est.fit(sampler),
}


def maml(**params):
    settings = dict(max_iter=25, meta_batch_size=4, shots=10, hidden_layer_sizes=(16,))
    return MAMLRegressor(**{**settings, **params})


def outcome(est):
    """Everything a run produces that a user can see."""
    meta_pred = est.predict(X_new)
    score = est.score(tasks[:4])
    adapted_pred = est.adapt(X_new[:10], y_new[:10]).predict(X_new[10:])
    params = {k: v.clone() for k, v in est.module_.state_dict().items()}
    return est.loss_curve_, params, meta_pred, adapted_pred, score


def assert_same(a, b):
    loss_a, params_a, *rest_a = a
    loss_b, params_b, *rest_b = b
    assert loss_a == loss_b
    assert params_a.keys() == params_b.keys()
    for name in params_a:
        assert torch.equal(params_a[name], params_b[name]), name
    for x, y in zip(rest_a, rest_b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("form", INPUTS)
def test_same_random_state_same_run(form):
    fit = INPUTS[form]
    first = outcome(fit(maml(random_state=3)))
    assert_same(first, outcome(fit(maml(random_state=3))))
    assert_same(first, outcome(fit(clone(maml(random_state=3)))))
    # Refitting the same object starts afresh from the same seed.
    est = fit(maml(random_state=3))
    assert_same(first, outcome(fit(est)))
    # And the comparison can fail: another seed gives another run.
    other = outcome(fit(maml(random_state=4)))
    assert other[0] != first[0]


def test_clone_of_a_fitted_estimator_reproduces_it():
    est = maml(random_state=7).fit(tasks)
    assert_same(outcome(clone(est).fit(tasks)), outcome(est))


def test_partial_fit_sequence_is_reproducible():
    def run():
        est = maml(random_state=5)
        for _ in range(5):
            est.partial_fit(tasks)
        return outcome(est)

    first = run()
    assert_same(first, run())
    assert len(set(first[0])) == 5  # successive steps draw different meta-batches


def test_grid_search_n_jobs_does_not_change_the_result():
    grid = {"inner_lr": [0.01, 0.1]}

    def search(n_jobs):
        search = GridSearchCV(maml(random_state=0, max_iter=10), grid, cv=KFold(2), n_jobs=n_jobs)
        return search.fit(tasks)

    serial, parallel = search(1), search(2)
    for key in ["mean_test_score", "std_test_score"] + [f"split{i}_test_score" for i in range(2)]:
        np.testing.assert_array_equal(serial.cv_results_[key], parallel.cv_results_[key], key)
    assert serial.best_params_ == parallel.best_params_
    np.testing.assert_array_equal(
        serial.best_estimator_.predict(X_new), parallel.best_estimator_.predict(X_new)
    )
