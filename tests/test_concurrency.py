"""Prediction, adaptation and scoring from several threads at once.

Each thread must get bit for bit what a serial call gets, and the
meta-parameters (and ``module_``'s own tensors) must not change: a thread
never swaps tensors into, or toggles the mode of, the shared module.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from sklearn.base import clone
from test_contract import ESTIMATORS, make, meta_state, tasks_for

N_THREADS = 4
ROUNDS = 6


def module_tensors(est):
    """The module's own tensors, by identity and value."""
    return [(id(t), t.detach().clone()) for t in est.module_.state_dict(keep_vars=True).values()]


def same_tensors(before, after):
    return [i for i, _ in before] == [i for i, _ in after] and all(
        torch.equal(a, b) for (_, a), (_, b) in zip(before, after)
    )


def in_threads(call, inputs):
    """``call(x)`` for every x, ROUNDS times over, from N_THREADS threads at once."""
    with ThreadPoolExecutor(N_THREADS) as pool:
        return list(pool.map(call, inputs * ROUNDS))


@pytest.fixture(scope="module", params=list(ESTIMATORS))
def fitted(request):
    name = request.param
    tasks = tasks_for(name)
    est = make(name).fit(tasks[:10])
    return name, est, tasks[10:]


def test_predict_from_threads_equals_serial(fitted):
    name, est, held_out = fitted
    X_s, y_s = held_out[0]
    est.adapt(X_s, y_s)
    rows = [X for X, _ in held_out + held_out]
    serial = [est.predict(X) for X in rows]
    before, module_before = meta_state(est), module_tensors(est)
    threaded = in_threads(est.predict, rows)
    for got, want in zip(threaded, serial * ROUNDS):
        np.testing.assert_array_equal(got, want)
    after = meta_state(est)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert same_tensors(module_before, module_tensors(est))


def test_score_from_threads_equals_serial(fitted):
    name, est, held_out = fitted
    serial = est.score(held_out)
    before = meta_state(est)
    scores = in_threads(lambda tasks: est.score(tasks), [held_out])
    assert scores == [serial] * ROUNDS
    after = meta_state(est)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_adapt_from_threads_equals_serial(fitted):
    """Concurrent adapt-and-predict on copies that share the fitted module and meta-parameters."""
    name, est, held_out = fitted
    serial = [clone_fitted(est).adapt(X, y).predict(X) for X, y in held_out]

    def adapt_predict(task):
        X, y = task
        return clone_fitted(est).adapt(X, y).predict(X)

    before, module_before = meta_state(est), module_tensors(est)
    for got, want in zip(in_threads(adapt_predict, held_out), serial * ROUNDS):
        np.testing.assert_array_equal(got, want)
    after = meta_state(est)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert same_tensors(module_before, module_tensors(est))


def clone_fitted(est):
    """A new estimator object sharing ``est``'s fitted module and meta-parameters
    (not copies), as a web server's per-request objects would."""
    copy = clone(est)
    copy.__dict__.update({k: v for k, v in vars(est).items() if k.endswith("_")})
    return copy


def test_fit_in_threads_equals_serial_fit():
    """clone + fit with the same random_state in several threads: one result, the serial one."""
    for name in ["MAML", "FineTune"]:
        tasks = tasks_for(name)
        est = make(name, module__dropout=0.3)
        serial = meta_state(clone(est).fit(tasks))
        results = in_threads(lambda e, tasks=tasks: meta_state(clone(e).fit(tasks)), [est])
        for state in results[: N_THREADS + 1]:
            assert all(torch.equal(state[k], serial[k]) for k in serial), name
