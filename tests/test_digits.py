"""Few-shot rotated digits: classes, split, rotations and the task sampler."""

import numpy as np
import pytest

from skmeta.datasets import FewShotDigits, load_rotated_digits


def test_forty_classes_split_24_16_by_digit():
    _, y_train = load_rotated_digits("meta-train")
    _, y_test = load_rotated_digits("meta-test")
    _, y_all = load_rotated_digits("all")
    train, test = set(y_train.tolist()), set(y_test.tolist())
    assert (len(train), len(test), len(set(y_all.tolist()))) == (24, 16, 40)
    assert not train & test
    # All four rotations of a digit stay on one side of the split.
    assert {c // 4 for c in train}.isdisjoint({c // 4 for c in test})


def test_rotated_classes_are_rotations_of_the_same_images():
    X, y = load_rotated_digits("meta-test")
    assert X.dtype == np.float32 and X.min() >= 0 and X.max() <= 1
    upright = X[y % 4 == 0].reshape(-1, 8, 8)
    quarter = X[y % 4 == 1].reshape(-1, 8, 8)
    np.testing.assert_array_equal(quarter, np.rot90(upright, k=1, axes=(1, 2)))


def test_sampled_tasks_are_n_way_k_shot_with_support_first():
    sampler = FewShotDigits(n_way=5, k_shot=2, n_query=3, split="meta-test")
    tasks = sampler.sample(4, random_state=0)
    test_classes = set(load_rotated_digits("meta-test")[1].tolist())
    for X, y in tasks:
        assert X.shape == (25, 64) and y.shape == (25,)
        support, query = y[:10], y[10:]
        assert set(support.tolist()) <= test_classes
        labels, counts = np.unique(support, return_counts=True)
        assert len(labels) == 5 and (counts == 2).all()
        labels_q, counts_q = np.unique(query, return_counts=True)
        np.testing.assert_array_equal(labels_q, labels)
        assert (counts_q == 3).all()
        assert len(np.unique(X, axis=0)) == 25  # distinct images
    again = sampler.sample(4, random_state=0)
    for (X_a, y_a), (X_b, y_b) in zip(tasks, again):
        np.testing.assert_array_equal(X_a, X_b)
        np.testing.assert_array_equal(y_a, y_b)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_way": 17, "split": "meta-test"}, "only 16 classes"),
        ({"k_shot": 0}, "k_shot must be an int >= 1"),
        ({"n_way": 1}, "n_way must be an int >= 2"),
        ({"k_shot": 100, "n_query": 100}, "smallest class"),
        ({"split": "test"}, "split must be one of"),
    ],
)
def test_bad_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FewShotDigits(**kwargs)
