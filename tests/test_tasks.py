"""The task parser: three input forms -> one TaskSet; support/query splits."""

import numpy as np
import pandas as pd
import pytest
import torch

from skmeta import MAMLRegressor
from skmeta._tasks import TaskSet, has_tasks, is_sampler, is_task_list, read_tasks
from skmeta.datasets import SinusoidTasks


def ragged_tasks(seed=0, n_tasks=6, n_features=3):
    rng = np.random.RandomState(seed)
    sizes = rng.randint(12, 25, size=n_tasks)
    return [(rng.randn(n, n_features), rng.randn(n)) for n in sizes]


def task_contents(taskset: TaskSet):
    """Per task, the multiset of rows (X and y) as a sorted array."""
    out = []
    for t in range(taskset.n_tasks):
        X, y = taskset.task(t)
        rows = np.column_stack([X, y])
        out.append(rows[np.lexsort(rows.T[::-1])])
    return out


def test_long_list_and_task_col_forms_give_the_same_taskset():
    tasks = ragged_tasks()
    X = np.concatenate([X for X, _ in tasks])
    y = np.concatenate([y for _, y in tasks])
    groups = np.repeat([f"task-{t}" for t in range(len(tasks))], [len(y) for _, y in tasks])
    perm = np.random.RandomState(1).permutation(len(y))  # row order must not matter

    from_list = read_tasks(MAMLRegressor(), tasks, reset=True)
    from_long = read_tasks(MAMLRegressor(), X[perm], y[perm], groups[perm], reset=True)
    df = pd.DataFrame(X[perm], columns=["a", "b", "c"]).assign(task=groups[perm])
    from_col = read_tasks(MAMLRegressor(task_col="task"), df, y[perm], reset=True)

    for other in (from_long, from_col):
        assert other.n_tasks == from_list.n_tasks
        for a, b in zip(task_contents(from_list), task_contents(other)):
            np.testing.assert_allclose(a, b, rtol=1e-6)
    assert list(from_long.task_ids) == [f"task-{t}" for t in range(len(tasks))]


def test_no_groups_means_one_task_and_features_are_recorded():
    X, y = np.random.RandomState(0).randn(30, 2), np.arange(30.0)
    est = MAMLRegressor()
    taskset = read_tasks(est, pd.DataFrame(X, columns=["u", "v"]), y, reset=True)
    assert taskset.n_tasks == 1 and taskset.sizes.tolist() == [30]
    assert est.n_features_in_ == 2 and list(est.feature_names_in_) == ["u", "v"]


def test_input_form_detection():
    tasks = ragged_tasks(n_tasks=2)
    assert is_task_list(tasks, None) and not is_task_list(tasks, np.zeros(2))
    assert not is_task_list([[1.0, 2.0], [3.0, 4.0]], None)  # a 2-D list of numbers is X
    assert is_sampler(SinusoidTasks()) and not is_sampler(pd.DataFrame({"a": [1]}))
    assert has_tasks(np.zeros((3, 1)), np.zeros(3), [0, 0, 1], None)
    assert not has_tasks(np.zeros((3, 1)), np.zeros(3), None, None)


def test_split_sizes_are_exact_and_disjoint_for_ragged_tasks():
    tasks = ragged_tasks()
    taskset = read_tasks(MAMLRegressor(), tasks, reset=True)
    padded = taskset.to_padded(torch.device("cpu"), 5, stratify=False)
    batch = padded.split(torch.Generator().manual_seed(0))
    for t, (_, y) in enumerate(tasks):
        n_support, n_query = int(batch.w_support[t].sum()), int(batch.w_query[t].sum())
        assert n_support == 5 and n_query == len(y) - 5
        support = batch.y_support[t][batch.w_support[t] > 0].numpy()
        query = batch.y_query[t][batch.w_query[t] > 0].numpy()
        # Together the two sets are exactly the task's rows, each once.
        np.testing.assert_allclose(
            np.sort(np.concatenate([support, query])), np.sort(y.astype(np.float32)), rtol=1e-6
        )


def test_split_is_seeded_and_fractional_shots_work():
    taskset = read_tasks(MAMLRegressor(), ragged_tasks(), reset=True)
    padded = taskset.to_padded(torch.device("cpu"), 0.25, stratify=False)
    a = padded.split(torch.Generator().manual_seed(3))
    b = padded.split(torch.Generator().manual_seed(3))
    c = padded.split(torch.Generator().manual_seed(4))
    assert torch.equal(a.y_support, b.y_support) and not torch.equal(a.y_support, c.y_support)
    expected = np.maximum(1, np.floor(0.25 * taskset.sizes))
    np.testing.assert_array_equal(a.w_support.sum(1).numpy(), expected)


def test_stratified_split_takes_shots_per_class_and_relabels():
    rng = np.random.RandomState(0)
    tasks = [
        (rng.randn(12, 2), np.repeat(["cat", "dog", "owl"], 4)),
        (rng.randn(8, 2), np.repeat([7, 3], 4)),
    ]
    taskset = read_tasks(MAMLRegressor(), tasks, reset=True, classification=True)
    assert [list(c) for c in taskset.classes] == [["cat", "dog", "owl"], [3, 7]]
    padded = taskset.to_padded(torch.device("cpu"), 2, stratify=True)
    batch = padded.split(torch.Generator().manual_seed(0))
    for t, n_classes in enumerate((3, 2)):
        labels = batch.y_support[t][batch.w_support[t] > 0]
        assert torch.bincount(labels, minlength=n_classes).tolist() == [2] * n_classes
    shuffled = padded.split(torch.Generator().manual_seed(0), relabel_to=5)
    for t in range(2):  # an injection: equal codes stay equal, distinct stay distinct
        before = batch.y_support[t][batch.w_support[t] > 0]
        after = shuffled.y_support[t][shuffled.w_support[t] > 0]
        assert len(set(zip(before.tolist(), after.tolist()))) == len(set(before.tolist()))
        assert int(after.max()) < 5


def test_too_small_task_is_named_in_the_error():
    tasks = ragged_tasks(n_tasks=3)
    tasks[1] = (tasks[1][0][:4], tasks[1][1][:4])
    taskset = read_tasks(MAMLRegressor(), tasks, reset=True)
    with pytest.raises(ValueError, match="Task 1 has n_samples=4, too few for shots=5"):
        taskset.to_padded(torch.device("cpu"), 5, stratify=False)


def test_bad_groups_and_task_errors_name_the_problem():
    X, y = np.zeros((6, 2)), np.zeros(6)
    with pytest.raises(ValueError, match="one task id per row"):
        read_tasks(MAMLRegressor(), X, y, groups=[0, 1], reset=True)
    tasks = ragged_tasks(n_tasks=3)
    tasks[2] = (tasks[2][0][:, :2], tasks[2][1])
    with pytest.raises(ValueError, match="Task 2 has 2 features"):
        read_tasks(MAMLRegressor(), tasks, reset=True)
    tasks = ragged_tasks(n_tasks=2)
    tasks[1][0][3, 0] = np.nan
    with pytest.raises(ValueError, match="Task 1: .*NaN"):
        read_tasks(MAMLRegressor(), tasks, reset=True)


def test_equal_size_fast_paths_draw_the_same_batches_as_the_general_path():
    import dataclasses

    from skmeta._tasks import SampledTasks

    sampler = SinusoidTasks(n_samples=20)
    maml = MAMLRegressor(max_iter=1, shots=8, random_state=0).fit(sampler)
    taskset = read_tasks(maml, sampler.sample(6, random_state=1), None, None, reset=False)
    padded = taskset.to_padded(maml.device_, 8, stratify=False)
    assert padded.uniform
    general = dataclasses.replace(padded, uniform=False)
    for subset in (None, torch.tensor([4, 0, 2])):
        fast = padded.split(torch.Generator().manual_seed(3), subset)
        slow = general.split(torch.Generator().manual_seed(3), subset)
        for a, b in zip(fast, slow):
            assert torch.equal(a, b)

    # The sampler source splits draws of equal-size regression tasks on the host, with
    # the step's numpy generator after the draw; support and query sizes are found once.
    from skmeta._tasks import split_on_host

    source = SampledTasks(maml, sampler, maml.device_, 8, stratify=False, classification=False)
    for seed in range(3):
        got = source.next_batch(6, torch.Generator().manual_seed(seed), np.random.RandomState(seed))
        rng = np.random.RandomState(seed)
        drawn = read_tasks(maml, sampler.sample(6, random_state=rng), None, None, reset=False)
        expected = split_on_host(*drawn.equal_arrays(), 8, 12, rng, maml.device_)
        # Meta-training batches of equal-size tasks carry no weights: every row is real.
        assert got.w_support is None and got.w_query is None
        for a, b in zip(got, expected):
            assert (a is None and b is None) or torch.equal(a, b)
    assert source._split_sizes == {(6, 20): (8, 12)}
