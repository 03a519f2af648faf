"""FineTuneClassifier: pooled pretraining, a fresh head per task, same contract as MAML."""

import pickle

import numpy as np
import pytest
import sklearn
import torch
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skmeta import FineTuneClassifier, MAMLClassifier
from skmeta import _functional as fn
from skmeta._algorithms import FineTune
from skmeta.datasets import FewShotDigits

N_WAY, K_SHOT = 5, 5
N_SUPPORT = N_WAY * K_SHOT


def relabel(tasks, mapping):
    """The same tasks with each label replaced by ``mapping[label]``."""
    return [(X, np.array([mapping[label] for label in y])) for X, y in tasks]


def long_format(tasks):
    X = np.concatenate([X_t for X_t, _ in tasks])
    y = np.concatenate([y_t for _, y_t in tasks])
    groups = np.repeat(np.arange(len(tasks)), [len(y_t) for _, y_t in tasks])
    return X, y, groups


def query_accuracy(clf, tasks):
    return float(
        np.mean(
            [
                np.mean(
                    clf.adapt(X[:N_SUPPORT], y[:N_SUPPORT]).predict(X[N_SUPPORT:]) == y[N_SUPPORT:]
                )
                for X, y in tasks
            ]
        )
    )


@pytest.fixture(scope="module")
def digit_tasks():
    """5-way 5-shot digits tasks: meta-train (5 query per class) and meta-test (10)."""
    train = FewShotDigits(N_WAY, K_SHOT, 5, split="meta-train").sample(150, random_state=0)
    test = FewShotDigits(N_WAY, K_SHOT, 10, split="meta-test").sample(20, random_state=1)
    return train, test


@pytest.fixture(scope="module")
def pretrained(digit_tasks):
    train, _ = digit_tasks
    clf = FineTuneClassifier(
        hidden_layer_sizes=(64, 64), lr=3e-3, max_epochs=15, shots=K_SHOT, random_state=0
    )
    return clf.fit(train)


def copy_of(estimator, **params):
    """A copy with other settings, so that tests never change the shared fixture."""
    return pickle.loads(pickle.dumps(estimator)).set_params(**params)


# ---------------------------------------------------------------- pretraining
def test_pretraining_pools_the_union_of_labels(pretrained, digit_tasks):
    """Before adapt it is one classifier over every meta-train label, and a good one."""
    train, _ = digit_tasks
    labels = np.unique(np.concatenate([y for _, y in train]))
    np.testing.assert_array_equal(pretrained.pretrain_classes_, labels)
    np.testing.assert_array_equal(pretrained.classes_, labels)
    X, y, _ = long_format(train[:20])
    # Pooled codes that did not follow the labels would leave this near 1/24.
    assert np.mean(pretrained.predict(X) == y) > 0.7
    assert pretrained.history_[-1, "valid_loss"] < pretrained.history_[0, "valid_loss"]


def test_single_task_fit_is_a_plain_classifier():
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.normal(-2, 1, size=(30, 2)), rng.normal(2, 1, size=(30, 2))])
    y = np.repeat(["no", "yes"], 30)
    clf = FineTuneClassifier(max_epochs=30, lr=1e-2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, ["no", "yes"])
    assert clf.score(X, y) > 0.9


def test_warm_start_rejects_labels_without_an_output_unit():
    rng = np.random.RandomState(0)
    tasks = [(rng.normal(size=(8, 3)), np.repeat([0, 1], 4)) for _ in range(4)]
    clf = FineTuneClassifier(max_epochs=2, warm_start=True, random_state=0).fit(tasks)
    clf.fit(tasks)  # same labels: continues
    with pytest.raises(ValueError, match=r"labels \[7\]"):
        clf.fit([(X, np.where(y == 1, 7, 0)) for X, y in tasks])


# ---------------------------------------------------------------- labels
@pytest.mark.parametrize(
    "mapping",
    [
        {c: f"class {c}" for c in range(40)},  # strings
        {c: 1000 + 7 * c for c in range(40)},  # non-contiguous ints
    ],
    ids=["strings", "sparse-ints"],
)
def test_labels_round_trip_through_adapt_predict(pretrained, digit_tasks, mapping):
    _, test = digit_tasks
    clf = pretrained
    for X, y in relabel(test[:3], mapping):
        y_pred = clf.adapt(X[:N_SUPPORT], y[:N_SUPPORT]).predict(X[N_SUPPORT:])
        np.testing.assert_array_equal(clf.classes_, np.unique(y[:N_SUPPORT]))
        assert set(y_pred) <= set(y)
        assert np.mean(y_pred == y[N_SUPPORT:]) > 0.4


def test_disjoint_label_sets_across_tasks(pretrained, digit_tasks):
    _, test = digit_tasks
    (X_a, y_a), (X_b, y_b) = test[0], relabel(test[1:2], {c: f"b{c}" for c in range(40)})[0]
    pred_a = pretrained.adapt(X_a[:N_SUPPORT], y_a[:N_SUPPORT]).predict(X_a[N_SUPPORT:])
    pred_b = pretrained.adapt(X_b[:N_SUPPORT], y_b[:N_SUPPORT]).predict(X_b[N_SUPPORT:])
    assert set(pred_a) <= set(y_a) and set(pred_b) <= set(y_b)
    np.testing.assert_array_equal(pretrained.classes_, np.unique(y_b))


def test_predict_proba_rows_sum_to_one_and_follow_classes(pretrained, digit_tasks):
    _, test = digit_tasks
    X, y = test[0]
    clf = pretrained.adapt(X[:N_SUPPORT], y[:N_SUPPORT])
    proba = clf.predict_proba(X[N_SUPPORT:])
    assert proba.shape == (len(X) - N_SUPPORT, N_WAY)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X[N_SUPPORT:]))


def test_a_task_with_one_class_is_named():
    rng = np.random.RandomState(0)
    tasks = [(rng.normal(size=(6, 2)), np.array([0, 0, 0, 1, 1, 1])) for _ in range(3)]
    with pytest.raises(ValueError, match="Task 2.*one class only"):
        FineTuneClassifier(max_epochs=1).fit([*tasks[:2], (tasks[2][0], np.zeros(6, int))])
    clf = FineTuneClassifier(max_epochs=1, random_state=0).fit(tasks)
    with pytest.raises(ValueError, match="task given to adapt has one class only"):
        clf.adapt(tasks[0][0], np.zeros(6, int))


def test_module_without_a_linear_like_head_is_rejected():
    class ScaledLogits(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 2)
            self.scale = nn.Linear(1, 1, bias=False)  # last layer owning parameters

        def forward(self, X):
            return self.linear(X) * self.scale.weight

    X, y = np.random.RandomState(0).normal(size=(10, 2)), np.repeat([0, 1], 5)
    with pytest.raises(ValueError, match="output unit as first dimension"):
        FineTuneClassifier(ScaledLogits, max_epochs=1).fit(X, y)


# ---------------------------------------------------------------- adaptation
def test_fine_tuning_beats_chance_and_the_untrained_head(pretrained, digit_tasks):
    """Meta-test classes, 5-way 5-shot: the fine-tuned head is what makes it work."""
    _, test = digit_tasks
    X, y, groups = long_format(test)
    clf = copy_of(pretrained)
    head = clf.score(X, y, groups=groups)
    whole = clf.set_params(adapt_layers="all").score(X, y, groups=groups)
    # A zero head predicts one class everywhere: exactly chance on balanced queries.
    untrained = clf.set_params(adapt_steps=0).score(X, y, groups=groups)
    assert untrained == pytest.approx(1 / N_WAY)
    assert head > 0.6 and whole > 0.6
    assert query_accuracy(clf.set_params(adapt_steps=100, adapt_layers="head"), test) > 0.6


def test_adapt_never_changes_the_pretrained_network(pretrained, digit_tasks):
    _, test = digit_tasks
    clf = copy_of(pretrained, adapt_layers="all", adapt_steps=20)
    before = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    (X_a, y_a), (X_b, y_b) = test[:2]
    first = clf.adapt(X_a[:N_SUPPORT], y_a[:N_SUPPORT]).predict_proba(X_a)
    clf.adapt(X_b[:N_SUPPORT], y_b[:N_SUPPORT])
    again = clf.adapt(X_a[:N_SUPPORT], y_a[:N_SUPPORT]).predict_proba(X_a)
    np.testing.assert_array_equal(first, again)
    for name, value in clf.module_.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)


# ---------------------------------------------------------------- sklearn tooling
@pytest.mark.parametrize(
    "estimator, grid",
    [
        (MAMLClassifier(max_iter=20, meta_batch_size=10, shots=5, random_state=0), "inner_lr"),
        (FineTuneClassifier(max_epochs=5, adapt_steps=30, shots=5, random_state=0), "adapt_lr"),
    ],
    ids=["MAMLClassifier", "FineTuneClassifier"],
)
def test_same_grid_search_code_for_both_families(digit_tasks, estimator, grid):
    train, _ = digit_tasks
    X, y, groups = long_format(train[:30])
    previous = sklearn.get_config()["enable_metadata_routing"]
    sklearn.set_config(enable_metadata_routing=True)
    try:
        pipe = Pipeline([("scale", StandardScaler()), ("est", estimator)])
        search = GridSearchCV(pipe, {f"est__{grid}": [0.1, 0.5]}, cv=GroupKFold(3))
        search.fit(X, y, groups=groups)
    finally:
        sklearn.set_config(enable_metadata_routing=previous)
    assert search.cv_results_["mean_test_score"].shape == (2,)
    assert search.best_score_ > 1 / N_WAY


def test_padded_head_units_do_not_change_fine_tuning():
    """Few-shot score pads fresh heads to the widest task; the loss must ignore the extra units."""
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    net = fn.Network(model, fn.weighted_cross_entropy, {})
    meta = {"init": {k: v.detach() for k, v in model.named_parameters()}}
    X, y, w = torch.randn(9, 4), torch.tensor([0, 1, 2] * 3), torch.ones(9)
    head = ("weight", "bias")
    with torch.no_grad():
        narrow = FineTune(0.5, 10, head=head, head_width=3).adapt(net, meta, X, y, w)
        wide = FineTune(0.5, 10, head=head, head_width=5).adapt(net, meta, X, y, w)
    torch.testing.assert_close(wide["weight"][:3], narrow["weight"])
    torch.testing.assert_close(wide["bias"][:3], narrow["bias"])
    # Without the mask the two extra units would take probability and move the others.
    with torch.no_grad():
        start = FineTune(0.5, 0, head=head, head_width=5).start(meta["init"])
        plain = fn.inner_loop(net.support_loss(X, y, w), start, fn.SGD(0.5), 10)[-1]
    assert not torch.allclose(plain["weight"][:3], narrow["weight"])
