"""Property-based tests of the task parser: every input form gives the same TaskSet content.

Random task counts, ragged sizes, arbitrary task labels and shuffled row
order; long arrays with ``groups``, DataFrames with ``groups`` or
``task_col``, lists of array or DataFrame tasks, and the sampler fast path
must all agree on which rows belong to which task.
"""

from collections import Counter

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skmeta import MAMLRegressor
from skmeta._tasks import TaskSet, draw_tasks, read_tasks

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def task_collections(draw):
    """``(tasks, labels, permutation, classification)`` for ragged random tasks."""
    n_tasks = draw(st.integers(1, 5))
    n_features = draw(st.integers(1, 3))
    sizes = draw(st.lists(st.integers(1, 7), min_size=n_tasks, max_size=n_tasks))
    classification = draw(st.booleans())
    labels = draw(
        st.one_of(
            st.lists(st.integers(-50, 50), min_size=n_tasks, max_size=n_tasks, unique=True),
            st.lists(
                st.text("abcxyz", min_size=1, max_size=3),
                min_size=n_tasks,
                max_size=n_tasks,
                unique=True,
            ),
        )
    )
    values = st.floats(-1e3, 1e3, width=32, allow_subnormal=False)
    tasks = []
    for size in sizes:
        X_t = draw(arrays(np.float32, (size, n_features), elements=values))
        if classification:
            y_t = draw(arrays(np.int64, (size,), elements=st.integers(0, 2)))
        else:
            y_t = draw(arrays(np.float32, (size,), elements=values))
        tasks.append((X_t, y_t))
    permutation = draw(st.permutations(range(sum(sizes))))
    return tasks, labels, np.array(permutation, dtype=np.int64), classification


def content(taskset: TaskSet, label_of) -> dict:
    """Task label -> multiset of (features..., original target) rows."""
    result = {}
    for t in range(taskset.n_tasks):
        X_t, y_t = taskset.task(t)
        if taskset.classes is not None:
            y_t = taskset.classes[t][y_t]
        rows = Counter(tuple(row) + (target,) for row, target in zip(X_t.tolist(), y_t.tolist()))
        result[label_of(taskset.task_ids[t])] = rows
    return result


def expected_content(tasks, labels) -> dict:
    return {
        label: Counter(tuple(row) + (target,) for row, target in zip(X_t.tolist(), y_t.tolist()))
        for label, (X_t, y_t) in zip(labels, tasks)
    }


def check_invariants(taskset: TaskSet, tasks, classification):
    assert taskset.X.dtype == np.float32
    assert np.all(np.diff(taskset.task_index) >= 0)
    assert sorted(taskset.sizes.tolist()) == sorted(len(y_t) for _, y_t in tasks)
    if classification:
        for t in range(taskset.n_tasks):
            codes = taskset.task(t)[1]
            assert codes.min() == 0 and codes.max() == len(taskset.classes[t]) - 1


def long_arrays(tasks, labels, permutation):
    X = np.concatenate([X_t for X_t, _ in tasks])[permutation]
    y = np.concatenate([y_t for _, y_t in tasks])[permutation]
    groups = np.concatenate([[label] * len(y_t) for label, (_, y_t) in zip(labels, tasks)])
    return X, y, groups[permutation]


def columns(n_features):
    return [f"f{j}" for j in range(n_features)]


@SETTINGS
@given(task_collections())
def test_every_input_form_gives_the_same_tasks(collection):
    tasks, labels, permutation, classification = collection
    expected = expected_content(tasks, labels)
    by_position = lambda task_id: labels[int(task_id)]
    by_label = lambda task_id: task_id.item() if hasattr(task_id, "item") else task_id
    X, y, groups = long_arrays(tasks, labels, permutation)
    names = columns(X.shape[1])

    def read(*args, task_col=None, **kwargs):
        est = MAMLRegressor(task_col=task_col)
        taskset = read_tasks(est, *args, reset=True, classification=classification, **kwargs)
        check_invariants(taskset, tasks, classification)
        assert est.n_features_in_ == X.shape[1]
        return taskset

    forms = {
        "list of arrays": (read(tasks), by_position),
        "list of DataFrames": (
            read([(pd.DataFrame(X_t, columns=names), y_t) for X_t, y_t in tasks]),
            by_position,
        ),
        "long arrays": (read(X, y, groups), by_label),
        "DataFrame + groups": (read(pd.DataFrame(X, columns=names), y, groups), by_label),
        "DataFrame + task_col": (
            read(pd.DataFrame(X, columns=names).assign(task=groups), y, task_col="task"),
            by_label,
        ),
    }
    for form, (taskset, label_of) in forms.items():
        assert content(taskset, label_of) == expected, form


class ListSampler:
    def __init__(self, tasks):
        self.tasks = tasks

    def sample(self, n_tasks, random_state=None):
        return self.tasks[:n_tasks]


@SETTINGS
@given(task_collections())
def test_sampler_fast_path_matches_the_checked_path(collection):
    tasks, labels, _, classification = collection
    est = MAMLRegressor()
    checked = read_tasks(est, tasks, reset=True, classification=classification)
    # n_features_in_ is now set and no feature names: draws take the fast path.
    fast = draw_tasks(
        est, ListSampler(tasks), len(tasks), None, reset=False, classification=classification
    )
    by_position = lambda task_id: labels[int(task_id)]
    assert content(fast, by_position) == content(checked, by_position)
    np.testing.assert_array_equal(fast.X, checked.X)
    np.testing.assert_array_equal(fast.task_index, checked.task_index)


@SETTINGS
@given(task_collections(), st.data())
def test_row_order_within_the_input_does_not_change_the_tasks(collection, data):
    tasks, labels, permutation, classification = collection
    X, y, groups = long_arrays(tasks, labels, permutation)
    other = np.array(data.draw(st.permutations(range(len(y)))), dtype=np.int64)
    first = read_tasks(MAMLRegressor(), X, y, groups, reset=True, classification=classification)
    second = read_tasks(
        MAMLRegressor(),
        X[other],
        y[other],
        groups[other],
        reset=True,
        classification=classification,
    )
    label = lambda task_id: task_id.item() if hasattr(task_id, "item") else task_id
    assert content(first, label) == content(second, label)
    np.testing.assert_array_equal(first.task_ids, second.task_ids)
    np.testing.assert_array_equal(first.sizes, second.sizes)
