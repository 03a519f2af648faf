"""MAMLClassifier: label handling, few-shot accuracy, errors, sklearn tooling."""

import pickle
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_validate
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmeta import MAMLClassifier
from skmeta.datasets import FewShotDigits

N_WAY = 5


def relabel(tasks, mapping):
    """The same tasks with each label replaced by ``mapping[label]``."""
    return [(X, np.array([mapping[label] for label in y])) for X, y in tasks]


@pytest.fixture(scope="module")
def digit_tasks():
    """5-way 5-shot digits tasks (5 query per class): meta-train and meta-test."""
    train = FewShotDigits(N_WAY, 5, 5, split="meta-train").sample(200, random_state=0)
    test = FewShotDigits(N_WAY, 5, 5, split="meta-test").sample(40, random_state=1)
    return train, test


@pytest.fixture(scope="module")
def meta_trained(digit_tasks):
    train, _ = digit_tasks
    clf = MAMLClassifier(
        hidden_layer_sizes=(64, 64),
        inner_lr=0.4,
        inner_steps=2,
        meta_batch_size=10,
        max_iter=150,
        shots=5,
        random_state=0,
    )
    return clf.fit(train)


@pytest.fixture
def metadata_routing():
    previous = sklearn.get_config()["enable_metadata_routing"]
    sklearn.set_config(enable_metadata_routing=True)
    try:
        yield
    finally:
        sklearn.set_config(enable_metadata_routing=previous)


def query_accuracy(clf, task, n_support):
    X, y = task
    return float(
        np.mean(clf.adapt(X[:n_support], y[:n_support]).predict(X[n_support:]) == y[n_support:])
    )


# ------------------------------------------------------------------ labels
@pytest.mark.parametrize(
    "labels",
    [
        ["ant", "bee", "cat", "dog", "emu"],
        [-2, 3, 7, 41, 100],
    ],
    ids=["strings", "non-contiguous ints"],
)
def test_labels_round_trip_through_adapt_predict(meta_trained, digit_tasks, labels):
    _, test = digit_tasks
    X, y = test[0]
    # Order-preserving, so the task-local codes (sorted labels) are unchanged.
    mapping = dict(zip(np.unique(y), labels))
    ((X, y_new),) = relabel([(X, y)], mapping)
    n_support = N_WAY * 5
    clf = meta_trained.adapt(X[:n_support], y_new[:n_support])
    assert sorted(clf.classes_.tolist()) == sorted(labels)
    y_pred = clf.predict(X[n_support:])
    assert set(y_pred.tolist()) <= set(labels)
    # The relabelled task is predicted exactly as the original one, label for label.
    y_orig = meta_trained.adapt(X[:n_support], y[:n_support]).predict(X[n_support:])
    np.testing.assert_array_equal(y_pred, [mapping[label] for label in y_orig])


def test_predict_proba_columns_follow_classes(meta_trained, digit_tasks):
    _, test = digit_tasks
    X, y = relabel(test[:1], dict(zip(np.unique(test[0][1]), "abcde")))[0]
    clf = meta_trained.adapt(X[:25], y[:25])
    proba = clf.predict_proba(X[25:])
    assert proba.shape == (25, len(clf.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X[25:]))


def test_disjoint_label_sets_across_tasks(meta_trained, digit_tasks):
    _, test = digit_tasks
    task_a = relabel(test[2:3], dict(zip(np.unique(test[2][1]), [3, 7, 11, 13, 17])))[0]
    task_b = relabel(test[3:4], dict(zip(np.unique(test[3][1]), "vwxyz")))[0]
    pred_a = meta_trained.adapt(task_a[0][:25], task_a[1][:25]).predict(task_a[0][25:])
    assert meta_trained.classes_.tolist() == [3, 7, 11, 13, 17]
    pred_b = meta_trained.adapt(task_b[0][:25], task_b[1][:25]).predict(task_b[0][25:])
    assert meta_trained.classes_.tolist() == list("vwxyz")
    assert set(pred_b.tolist()) <= set("vwxyz")
    # adapt starts from the meta-init every time: task A again, same predictions.
    again = meta_trained.adapt(task_a[0][:25], task_a[1][:25]).predict(task_a[0][25:])
    np.testing.assert_array_equal(again, pred_a)


def test_fit_on_tasks_with_different_label_sets():
    rng = np.random.RandomState(0)
    tasks = [
        (rng.normal(size=(12, 3)), np.repeat(["cat", "dog", "owl"], 4)),
        (rng.normal(size=(8, 3)), np.repeat([3, 7], 4)),
    ]
    clf = MAMLClassifier(max_iter=5, shots=2, random_state=0).fit(tasks)
    assert clf.n_way_ == 3
    assert not hasattr(clf, "classes_")
    with pytest.raises(NotFittedError, match="call adapt"):
        clf.predict(tasks[0][0])
    clf.adapt(*tasks[1])
    assert set(clf.predict(tasks[1][0]).tolist()) <= {3, 7}
    assert clf.predict_proba(tasks[1][0]).shape == (8, 2)


def test_single_task_fit_is_a_plain_classifier():
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.normal(-2, 1, size=(30, 2)), rng.normal(2, 1, size=(30, 2))])
    y = np.repeat(["no", "yes"], 30)
    clf = MAMLClassifier(max_iter=100, meta_lr=1e-2, inner_lr=0.1, shots=0.5, random_state=0)
    clf.fit(X, y)
    np.testing.assert_array_equal(clf.classes_, ["no", "yes"])
    assert clf.score(X, y) > 0.9


def test_few_shot_score_masks_unused_output_units():
    """Tasks with fewer classes than n_way: score agrees with adapt + predict."""
    rng = np.random.RandomState(0)
    # Each class's rows are copies of one point, so every support/query split is the same.
    tasks = []
    for _ in range(6):
        points = rng.normal(size=(2, 4))
        tasks.append((np.repeat(points, 3, axis=0), np.repeat(rng.choice(50, 2, replace=False), 3)))
    clf = MAMLClassifier(n_way=5, max_iter=3, shots=2, adapt_steps=0, random_state=0)
    clf.fit(tasks)
    manual = []
    for X, y in tasks:
        support = np.r_[0, 1, 3, 4]
        query = np.r_[2, 5]
        manual.append(np.mean(clf.adapt(X[support], y[support]).predict(X[query]) == y[query]))
    assert clf.score(tasks) == pytest.approx(np.mean(manual))


def test_pickle_round_trip_keeps_adapted_predictions(meta_trained, digit_tasks):
    _, test = digit_tasks
    X, y = test[4]
    clf = meta_trained.adapt(X[:25], y[:25])
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(X[25:]), clf.predict(X[25:]))
    np.testing.assert_array_equal(restored.classes_, clf.classes_)


# ------------------------------------------------------------------ accuracy
def test_meta_learning_beats_chance_and_training_from_scratch(meta_trained, digit_tasks):
    """Meta-test classes, 5-way 5-shot: the meta-learned init against a random init.

    The baseline is the same network trained from scratch on each support set
    with the same budget as adapt (2 full-batch SGD steps at inner_lr), so the
    difference is what meta-training bought.
    """
    _, test = digit_tasks
    maml = np.mean([query_accuracy(meta_trained, task, 25) for task in test])
    scratch = []
    for i, (X, y) in enumerate(test):
        net = MLPClassifier(
            hidden_layer_sizes=(64, 64),
            solver="sgd",
            learning_rate_init=meta_trained.inner_lr,
            momentum=0.0,
            batch_size=25,
            max_iter=meta_trained.inner_steps,
            shuffle=False,
            random_state=i,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            net.fit(X[:25], y[:25])
        scratch.append(np.mean(net.predict(X[25:]) == y[25:]))
    assert maml > 0.5  # chance is 0.2
    assert maml > np.mean(scratch) + 0.05
    # Few-shot score (its own support/query splits) tells the same story.
    assert meta_trained.score(test) > 0.5


# ------------------------------------------------------------------ errors
def test_task_with_more_classes_than_n_way_is_named():
    rng = np.random.RandomState(0)
    tasks = [
        (rng.normal(size=(8, 2)), np.repeat([0, 1], 4)),
        (rng.normal(size=(12, 2)), np.repeat([0, 1, 2], 4)),
    ]
    with pytest.raises(ValueError, match=r"Task 1 has 3 classes, more than n_way=2"):
        MAMLClassifier(n_way=2, max_iter=2, shots=2).fit(tasks)
    clf = MAMLClassifier(max_iter=2, shots=2).fit(tasks[:1])
    with pytest.raises(ValueError, match=r"adapt has 3 classes, more than n_way=2"):
        clf.adapt(*tasks[1])


def test_task_with_one_class_is_named():
    rng = np.random.RandomState(0)
    tasks = [
        (rng.normal(size=(8, 2)), np.repeat(["a", "b"], 4)),
        (rng.normal(size=(8, 2)), np.repeat(["a"], 8)),
    ]
    with pytest.raises(ValueError, match=r"Task 1 has one class only \('a'\)"):
        MAMLClassifier(max_iter=2, shots=2).fit(tasks)
    clf = MAMLClassifier(max_iter=2, shots=2).fit(tasks[:1])
    with pytest.raises(ValueError, match="one class only"):
        clf.adapt(*tasks[1])
    with pytest.raises(ValueError, match=r"Task 1 has one class only"):
        clf.score(tasks)


def test_sampler_with_too_many_classes_is_rejected():
    with pytest.raises(ValueError, match="5 classes, more than n_way=3"):
        MAMLClassifier(n_way=3, max_iter=2, shots=1).fit(FewShotDigits(5, 1, 1))


def test_bad_n_way():
    X, y = np.arange(16.0).reshape(8, 2), np.repeat([0, 1], 4)
    with pytest.raises(ValueError, match="n_way must be >= 2"):
        MAMLClassifier(n_way=1, shots=2, max_iter=1).fit(X, y)


# ------------------------------------------------------------------ tooling
def test_grid_search_over_inner_lr_picks_the_useful_step(digit_tasks):
    train, _ = digit_tasks
    tasks = relabel(train[:60], {c: f"class {c}" for c in range(40)})
    search = GridSearchCV(
        MAMLClassifier(max_iter=40, shots=5, meta_batch_size=10, random_state=0),
        {"inner_lr": [0.001, 0.5]},
        cv=3,
    )
    search.fit(tasks)
    assert search.best_params_ == {"inner_lr": 0.5}
    assert search.best_score_ > 0.4


def test_pipeline_under_group_kfold_with_metadata_routing(metadata_routing, digit_tasks):
    train, _ = digit_tasks
    X = np.concatenate([X_t for X_t, _ in train[:30]])
    y = np.concatenate([y_t for _, y_t in train[:30]])
    groups = np.repeat(np.arange(30), [len(y_t) for _, y_t in train[:30]])
    pipe = make_pipeline(
        StandardScaler(),
        MAMLClassifier(inner_lr=0.1, max_iter=20, shots=5, meta_batch_size=10, random_state=0),
    )
    result = cross_validate(pipe, X, y, cv=GroupKFold(n_splits=3), params={"groups": groups})
    assert result["test_score"].shape == (3,)
    assert np.all((result["test_score"] > 0.2) & (result["test_score"] <= 1.0))
