"""State that survives failures, for every estimator.

One table-driven test per group of the hardening issue:

* divergent adaptation raises ``FloatingPointError`` naming the step size,
  and sets nothing (``adapt``, ``score``, ``predict_proba``);
* a failing ``adapt`` sets nothing (``classes_``, ``adapted_params_``);
* a failing refit leaves the fitted estimator exactly as it was;
* an exception or ``KeyboardInterrupt`` during meta-training leaves the
  estimator consistent at the last completed check (parameters, optimizer,
  ``n_iter_``, ``loss_curve_``);
* fine-tune pretraining: divergence keeps the last finite epoch and names
  it; ``KeyboardInterrupt`` stops as in skorch, with a warning and
  ``interrupted_epoch_``;
* BatchNorm with tasks of unequal sizes is refused (padding would enter the
  batch statistics);
* ``load_params`` refuses unreadable files and files from another estimator
  or shape, leaving the estimator unchanged;
* ``shots="auto"`` works on small tasks.
"""

from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone, is_classifier
from torch import nn

from skmeta import (
    FineTuneClassifier,
    FineTuneRegressor,
    MAMLClassifier,
    MAMLRegressor,
    ProtoNetClassifier,
    ReptileClassifier,
    ReptileRegressor,
)
from skmeta._tasks import TaskSet
from skmeta.datasets import FewShotDigits, SinusoidTasks

META = dict(max_iter=4, meta_batch_size=3, hidden_layer_sizes=(8,), shots=2, random_state=0)
FINETUNE = dict(max_epochs=3, hidden_layer_sizes=(8,), shots=2, random_state=0)
ESTIMATORS = {
    "MAML": MAMLRegressor(**META),
    "FOMAML": MAMLRegressor(**META, first_order=True),
    "Meta-SGD": MAMLRegressor(**META, learn_inner_lr="per-parameter"),
    "ANIL": MAMLRegressor(**META, adapt_params="head"),
    "MAML++": MAMLRegressor(
        **META, inner_steps=2, learn_inner_lr="per-layer-per-step", multi_step_loss=True
    ),
    "Reptile": ReptileRegressor(**{**META, "inner_steps": 2}),
    "FineTune": FineTuneRegressor(**FINETUNE, adapt_steps=2),
    "MAMLClassifier": MAMLClassifier(**META, inner_lr=0.3),
    "Meta-SGD classifier": MAMLClassifier(**META, inner_lr=0.3, learn_inner_lr="per-parameter"),
    "ReptileClassifier": ReptileClassifier(**{**META, "inner_steps": 2}, inner_lr=0.1),
    "ProtoNet": ProtoNetClassifier(**META),
    "FineTuneClassifier": FineTuneClassifier(**FINETUNE, adapt_steps=2),
}
META_TRAINED = [name for name, est in ESTIMATORS.items() if hasattr(est, "partial_fit")]
GRADIENT_ADAPTED = [name for name in ESTIMATORS if name != "ProtoNet"]
# The parameter that sets the adaptation's step size, per family.
STEP_SIZE = {"FineTune": "adapt_lr", "FineTuneClassifier": "adapt_lr"}


def make(name, **params):
    return clone(ESTIMATORS[name]).set_params(**params)


def family(name):
    """Tasks of the estimator's kind: 3-way digits (24 shared classes) or sinusoids."""
    if is_classifier(ESTIMATORS[name]):
        return FewShotDigits(3, 2, 2, split="meta-train")
    return SinusoidTasks(n_samples=8)


def tasks_for(name, n_tasks=6, seed=0):
    return family(name).sample(n_tasks, random_state=seed)


def new_task(name, seed=99):
    X, y = tasks_for(name, n_tasks=1, seed=seed)[0]
    return X[:6], y[:6], X[6:]


def n_labels(tasks):
    """Labels of the tasks pooled: FineTuneClassifier's pretraining output units."""
    return len(np.unique(np.concatenate([y for _, y in tasks])))


def fitted(name, **params):
    return make(name, **params).fit(tasks_for(name))


def state_of(est) -> dict:
    """Everything a user can observe of a fitted estimator, copied."""
    state = {"meta": {k: v.detach().clone() for k, v in est.meta_params_.state_dict().items()}}
    for key, value in vars(est).items():
        if key in ("meta_params_", "module_", "optimizer_", "history_"):
            continue
        state[key] = copy.deepcopy(value)
    optimizer = getattr(est, "optimizer_", None)
    if optimizer is not None:
        state["optimizer"] = copy.deepcopy(optimizer.state_dict())
    return state


def assert_same(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), path
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (path, set(a) ^ set(b))
        for key in a:
            assert_same(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, z) in enumerate(zip(a, b)):
            assert_same(x, z, f"{path}[{i}]")
    elif isinstance(a, torch.optim.Optimizer) or callable(a):
        return
    else:
        assert a == b or (a != a and b != b), (path, a, b)


def outputs(est, X):
    return est.predict_proba(X) if is_classifier(est) else est.predict(X)


# ---------------------------------------------------------------- 5 and 11: adaptation
def blow_up_step_sizes(est, name):
    """Make the adaptation step sizes absurd, learned ones included."""
    learned = est.meta_params_.learned
    with torch.no_grad():
        for kind, tensors in learned.items():
            fill = 1e30 if kind == "inner_lr" else np.log(1e30)
            for tensor in tensors.as_dict().values():
                tensor.fill_(fill)
    if not learned:
        est.set_params(**{STEP_SIZE.get(name, "inner_lr"): 1e30})
    if name == "FineTuneClassifier":  # a head alone (logistic regression) stays finite
        est.set_params(adapt_layers="all")
    return est.set_params(adapt_steps=10)


@pytest.mark.parametrize("name", GRADIENT_ADAPTED)
def test_divergent_adaptation_raises_and_sets_nothing(name):
    est = fitted(name)
    X_s, y_s, X_q = new_task(name)
    est.adapt(X_s, y_s)
    blow_up_step_sizes(est, name)
    before, predicted = state_of(est), outputs(est, X_q)
    X_other, y_other = tasks_for(name, n_tasks=1, seed=7)[0]
    with pytest.raises(FloatingPointError, match="Adaptation diverged") as info:
        est.adapt(X_other * 10, y_other)
    message = str(info.value)
    if est.meta_params_.learned:
        assert "learn_inner_lr" in message
    else:
        assert f"{STEP_SIZE.get(name, 'inner_lr')}=1e+30" in message
    assert "adapt_steps" in message
    assert_same(before, state_of(est))
    np.testing.assert_array_equal(outputs(est, X_q), predicted)
    with pytest.raises(FloatingPointError, match="Adaptation diverged"):
        est.score(tasks_for(name, n_tasks=3, seed=3))


def test_learned_step_sizes_used_beyond_their_steps_are_named():
    est = fitted("MAML++")  # step sizes learned for inner_steps=2
    with torch.no_grad():
        for tensor in est.meta_params_.learned["log_inner_lr"].as_dict().values():
            tensor[-1] = np.log(1e4)  # the last step's size, reused by every later step
    X_s, y_s, _ = new_task("MAML++")
    est.set_params(adapt_steps=20)
    with pytest.raises(FloatingPointError, match=r"adapt_steps=20 is more than the inner_steps=2"):
        est.adapt(X_s * 10, y_s)
    assert est.adapted_params_ is None


def test_protonet_overflowing_embeddings_raise():
    est = fitted("ProtoNet")
    X_s, y_s, X_q = new_task("ProtoNet")
    est.adapt(X_s, y_s)
    huge = 3e38 / np.abs(X_s).max()  # within float32, but the distances overflow
    with pytest.raises(FloatingPointError, match="outputs contain NaN or inf"):
        est.predict_proba(X_q * huge)
    X_t, y_t = tasks_for("ProtoNet", n_tasks=1, seed=5)[0]
    with pytest.raises(FloatingPointError, match="Standardise the features"):
        est.score([(X_t * 3e38 / np.abs(X_t).max(), y_t)])
    assert est.predict(X_q).shape == (len(X_q),)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_failing_adapt_sets_nothing(name):
    est = fitted(name)
    X_s, y_s, X_q = new_task(name)
    est.adapt(X_s, y_s)
    before, predicted = state_of(est), outputs(est, X_q)
    adapted = est.adapted_params_
    bad_inputs = [(np.full_like(X_s, np.nan), y_s), (np.hstack([X_s, X_s]), y_s)]
    if is_classifier(est):
        bad_inputs.append((X_s, np.zeros_like(y_s)))  # one class only
        if name != "FineTuneClassifier" and name != "ProtoNet":
            bad_inputs.append((np.tile(X_s, (2, 1)), np.arange(12)))  # wider than n_way
    for X_bad, y_bad in bad_inputs:
        with pytest.raises(ValueError):
            est.adapt(X_bad, y_bad)
        assert est.adapted_params_ is adapted
        assert_same(before, state_of(est))
        np.testing.assert_array_equal(outputs(est, X_q), predicted)


# ---------------------------------------------------------------- 9: refit on bad input
@pytest.mark.parametrize("name", ESTIMATORS)
def test_failed_refit_leaves_the_fitted_estimator_as_it_was(name):
    est = fitted(name)
    X_s, y_s, X_q = new_task(name)
    est.adapt(X_s, y_s)
    before, predicted = state_of(est), outputs(est, X_q)
    tasks = tasks_for(name)
    X_nan = tasks[1][0].copy()
    X_nan[2, 0] = np.nan
    bad = [tasks[:1] + [(X_nan, tasks[1][1])] + tasks[2:]]
    bad.append([(np.hstack([X, X]), y) for X, y in tasks])  # other features: fine for a fresh fit
    calls = [("fit", bad[0])]
    if name in META_TRAINED:
        calls += [("partial_fit", bad[0]), ("partial_fit", bad[1])]
    else:
        calls += [("fit", tasks[:1] + [(X_nan * 0, tasks[1][1] * np.nan)])]
    for method, tasks_bad in calls:
        with pytest.raises(ValueError):
            getattr(est, method)(tasks_bad)
        assert_same(before, state_of(est))
        np.testing.assert_array_equal(outputs(est, X_q), predicted)


# ---------------------------------------------------------------- 10: exceptions in training
class FailingSampler:
    """A task family whose ``sample`` raises ``error`` at its ``fail_at``-th call."""

    def __init__(self, tasks, fail_at, error):
        self.tasks, self.fail_at, self.error, self.calls = tasks, fail_at, error, 0

    def sample(self, n_tasks, random_state=None):
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.error
        return self.tasks.sample(n_tasks, random_state=random_state)


@pytest.mark.parametrize("error", [ValueError("bad task"), KeyboardInterrupt()])
@pytest.mark.parametrize("name", META_TRAINED)
def test_exception_in_meta_training_keeps_a_consistent_state(name, error):
    """Interrupted at step 27 or at step 21: both keep the 20 steps of the first check."""
    settings = dict(max_iter=60)
    states = []
    for fail_at in (27, 21):
        est = make(name, **settings)
        with pytest.raises(type(error)):
            est.fit(FailingSampler(family(name), fail_at, error))
        assert est.n_iter_ == len(est.loss_curve_) == 20
        states.append(state_of(est))
        # It carries on from there.
        est.partial_fit(family(name))
        assert est.n_iter_ == len(est.loss_curve_) == 21
    assert_same(states[0], states[1])


class ExplodingModule(nn.Module):
    """An MLP whose forward raises ``error`` when ``armed`` is set and ``calls`` runs out."""

    calls = None
    error: BaseException = RuntimeError("module failed")

    def __init__(self, n_features=1, n_outputs=1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, 8), nn.ReLU(), nn.Linear(8, n_outputs))

    def forward(self, X):
        if ExplodingModule.calls is not None:
            ExplodingModule.calls -= 1
            if ExplodingModule.calls < 0:
                ExplodingModule.calls = None
                raise ExplodingModule.error
        return self.net(X)


@pytest.mark.parametrize("error", [RuntimeError("module failed"), KeyboardInterrupt()])
def test_module_error_in_meta_training_rolls_back_to_the_last_check(error):
    tasks = tasks_for("MAML")
    reference = make("MAML", module=ExplodingModule, max_iter=20).fit(tasks)
    est = make("MAML", module=ExplodingModule, max_iter=60)
    ExplodingModule.error, ExplodingModule.calls = error, 70  # about 2 calls a step
    try:
        with pytest.raises(type(error)):
            est.fit(tasks)
    finally:
        ExplodingModule.calls = None
    assert 20 <= est.n_iter_ < 60 and est.n_iter_ % 20 == 0
    assert est.n_iter_ == len(est.loss_curve_)
    assert est.loss_curve_[:20] == reference.loss_curve_[:20]


# ---------------------------------------------------------------- 10 and 12: fine-tune
@pytest.mark.parametrize("name", ["FineTune", "FineTuneClassifier"])
def test_finetune_pretraining_divergence_keeps_the_last_finite_epoch(name):
    tasks = tasks_for(name)
    est = make(name, max_epochs=30, lr=1e20, early_stopping=False)
    with pytest.raises(FloatingPointError, match=r"Pretraining diverged: .* in epoch \d+") as info:
        est.fit(tasks)
    message = str(info.value)
    assert f"in epoch {est.n_iter_ + 1}" in message and "lr (1e+20)" in message
    assert f"after epoch {est.n_iter_} were kept" in message
    assert est.n_iter_ == len(est.loss_curve_) < 30
    assert np.isfinite(est.loss_curve_).all()
    assert all(torch.isfinite(p).all() for p in est.module_.parameters())
    X_s, y_s, X_q = new_task(name)
    try:  # the kept parameters are extreme: outputs are finite or refused, never NaN
        assert np.isfinite(outputs(est, X_q)).all()
    except FloatingPointError as exc:
        assert "outputs contain NaN or inf" in str(exc)


@pytest.mark.parametrize("name", ["FineTune", "FineTuneClassifier"])
def test_finetune_module_error_keeps_the_last_completed_epoch(name):
    tasks = tasks_for(name)
    params = dict(early_stopping=False, batch_size=8)
    if name == "FineTuneClassifier":
        params.update(module__n_features=64, module__n_outputs=n_labels(tasks))
    reference = make(name, module=ExplodingModule, max_epochs=2, **params).fit(tasks)
    est = make(name, module=ExplodingModule, max_epochs=5, **params)
    n_batches = -(-sum(len(y) for _, y in tasks) // 8)
    ExplodingModule.error = RuntimeError("module failed")
    probes = 2 if name == "FineTuneClassifier" else 1  # output checks before training
    ExplodingModule.calls = probes + 2 * n_batches + 1  # 2 epochs, then fail in epoch 3
    try:
        with pytest.raises(RuntimeError, match="module failed"):
            est.fit(tasks)
    finally:
        ExplodingModule.calls = None
    assert est.n_iter_ == len(est.loss_curve_) == 2
    assert est.loss_curve_ == reference.loss_curve_
    for p, q in zip(est.module_.parameters(), reference.module_.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("name", ["FineTune", "FineTuneClassifier"])
def test_finetune_keyboard_interrupt_stops_like_skorch_and_warns(name):
    tasks = tasks_for(name)
    params = dict(early_stopping=False, batch_size=8, max_epochs=5)
    if name == "FineTuneClassifier":
        params.update(module__n_features=64, module__n_outputs=n_labels(tasks))
    est = make(name, module=ExplodingModule, **params)
    n_batches = -(-sum(len(y) for _, y in tasks) // 8)
    ExplodingModule.error = KeyboardInterrupt()
    probes = 2 if name == "FineTuneClassifier" else 1
    ExplodingModule.calls = probes + 2 * n_batches + 1
    try:
        with pytest.warns(UserWarning, match="interrupted .KeyboardInterrupt. in epoch 3"):
            est.fit(tasks)
    finally:
        ExplodingModule.calls = None
    assert est.interrupted_epoch_ == 3
    assert est.n_iter_ == len(est.loss_curve_) == 2
    X_s, y_s, X_q = new_task(name)
    assert np.isfinite(outputs(est.adapt(X_s, y_s), X_q)).all()
    # Early stopping ends training with skorch's KeyboardInterrupt too: not an interruption.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stopped = make(name, max_epochs=200, n_iter_no_change=1).fit(tasks_for(name, 20))
    assert stopped.interrupted_epoch_ is None and stopped.n_iter_ < 200


# ---------------------------------------------------------------- 7: BatchNorm and padding
class NormNet(nn.Module):
    """Linear -> a normalisation layer -> ReLU -> Linear."""

    def __init__(self, n_features=1, n_outputs=1, norm="batch"):
        super().__init__()
        layers = {
            "batch": nn.BatchNorm1d(8),
            "layer": nn.LayerNorm(8),
            "group": nn.GroupNorm(2, 8),
            "instance": nn.InstanceNorm1d(8),
        }
        self.net = nn.Sequential(nn.Linear(n_features, 8), layers[norm], nn.ReLU())
        self.head = nn.Linear(8, n_outputs)

    def forward(self, X):
        return self.head(self.net(X))


def norm_settings(name, norm):
    params = dict(module=NormNet, module__norm=norm)
    if is_classifier(ESTIMATORS[name]):
        width = n_labels(tasks_for(name)) if name == "FineTuneClassifier" else 3
        params.update(module__n_features=64, module__n_outputs=width)
    return params


def ragged(tasks):
    """The same tasks, every other one a row shorter (in its largest class)."""
    out = []
    for t, (X, y) in enumerate(tasks):
        if t % 2:
            labels, counts = np.unique(y, return_counts=True)
            drop = np.flatnonzero(y == labels[counts.argmax()])[0]
            X, y = np.delete(X, drop, axis=0), np.delete(y, drop)
        out.append((X, y))
    return out


@pytest.mark.parametrize("name", ESTIMATORS)
def test_batchnorm_with_padded_tasks_is_refused(name):
    tasks = tasks_for(name)
    est = make(name, **norm_settings(name, "batch")).fit(tasks)  # equal sizes: fine
    assert np.isfinite(est.score(tasks_for(name, n_tasks=3, seed=4)))
    match = r"normalise over the rows of a batch \(net.1 \(BatchNorm1d\)\)"
    if name in META_TRAINED:
        with pytest.raises(ValueError, match=match):
            make(name, **norm_settings(name, "batch")).fit(ragged(tasks))
    if name != "ProtoNet":  # ProtoNet embeds in eval mode when scoring: running statistics
        with pytest.raises(ValueError, match=match):
            est.score(ragged(tasks_for(name, n_tasks=3, seed=4)))
    for norm in ("layer", "group"):  # per-row normalisations: padding stays invisible
        make(name, **norm_settings(name, norm)).fit(ragged(tasks)).score(ragged(tasks))


def test_instance_norm_over_rows_is_refused():
    with pytest.raises(ValueError, match=r"InstanceNorm1d"):
        make("MAML", **norm_settings("MAML", "instance")).fit(ragged(tasks_for("MAML")))


@pytest.mark.parametrize("name", ["MAML", "Reptile", "FineTune"])
def test_padding_changes_nothing_without_batch_statistics(name):
    """Adapting on support rows padded with weight-0 rows gives the same query outputs,
    with a per-row normalisation; with BatchNorm it would not (hence the refusal)."""
    from skmeta._tasks import MetaBatch

    X, y = tasks_for(name, n_tasks=1, seed=9)[0]
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    pad = lambda t: torch.cat([t, torch.zeros((2, *t.shape[1:]), dtype=t.dtype)])  # noqa: E731

    def query_outputs(est, padded):
        X_s, y_s = (pad(X_t[:4]), pad(y_t[:4])) if padded else (X_t[:4], y_t[:4])
        w_s = torch.ones(len(y_s))
        if padded:
            w_s[4:] = 0
        batch = MetaBatch(X_s[None], y_s[None], w_s[None], X_t[None, 4:], y_t[None, 4:], None)
        return est._adapted_query_outputs(est._algorithm(), batch)

    for norm, invisible in [("layer", True), ("group", True), ("batch", False)]:
        est = fitted(name, module=NormNet, module__norm=norm)
        same = torch.allclose(query_outputs(est, False), query_outputs(est, True), atol=1e-6)
        assert same == invisible, norm


# ---------------------------------------------------------------- 13: parameter files
@pytest.mark.parametrize("name", ESTIMATORS)
def test_load_params_refuses_bad_files_and_leaves_the_estimator_alone(name, tmp_path):
    est = fitted(name)
    est.save_params(tmp_path / "good.pt")
    saved = torch.load(tmp_path / "good.pt", weights_only=True)
    about = saved["about"]
    assert about["estimator"] == type(est).__name__
    assert about["n_features_in"] == est.n_features_in_
    assert about["skmeta_version"]
    assert about["options"]["shots"] == 2 and about["options"]["module"] == "default MLP"
    if name == "FineTuneClassifier":
        assert about["classes"] == est.pretrain_classes_.tolist()
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "text.pt").write_text("layers.0.weight = [1, 2, 3]\n")

    other = make(name, random_state=1).fit(tasks_for(name))
    before = state_of(other)
    for bad in ("truncated.pt", "empty.pt", "text.pt"):
        with pytest.raises(ValueError, match=f"{bad}' could not be read as a parameter file"):
            other.load_params(tmp_path / bad)
        assert_same(before, state_of(other))

    for field, value, message in [
        ("estimator", "SomethingElse", "holds the parameters of a SomethingElse"),
        ("n_features_in", 5, "with 5 features, but this one has"),
        ("n_outputs", 7, "with 7 output units"),
    ]:
        torch.save({**saved, "about": {**about, field: value}}, tmp_path / "changed.pt")
        with pytest.raises(ValueError, match=message):
            other.load_params(tmp_path / "changed.pt")
        assert_same(before, state_of(other))
    assert other.load_params(tmp_path / "good.pt") is other


def test_load_params_refuses_another_class_and_other_labels(tmp_path):
    fitted("MAML").save_params(tmp_path / "maml.pt")
    reptile = fitted("Reptile")
    with pytest.raises(ValueError, match="parameters of a MAMLRegressor, not of a Reptile"):
        reptile.load_params(tmp_path / "maml.pt")
    # Single-task classifiers: the output units are the fit's labels.
    X, y = tasks_for("MAMLClassifier", n_tasks=1)[0]
    make("MAMLClassifier").fit(X, y).save_params(tmp_path / "labels.pt")
    other = make("MAMLClassifier").fit(X, np.unique(y, return_inverse=True)[1] + 100)
    with pytest.raises(ValueError, match="trained on the labels"):
        other.load_params(tmp_path / "labels.pt")


# ---------------------------------------------------------------- 15: shots="auto"
def test_auto_shots_quota():
    def quota(labels, stratify):
        y = np.asarray(labels)
        taskset = TaskSet(
            X=np.zeros((len(y), 1), np.float32),
            y=y,
            task_index=np.zeros(len(y), np.int64),
            task_ids=np.array([0]),
        )
        return taskset.support_quota("auto", stratify=stratify)[0].tolist()

    assert quota(np.zeros(12), False) == [10, 0]
    assert quota(np.zeros(5), False) == [4, 0]
    assert quota(np.zeros(2), False) == [1, 0]
    assert quota(np.repeat([0, 1], 8), True) == [7, 7, 0]
    assert quota(np.repeat([0, 1], [30, 20]), True) == [10, 10, 0]
    assert quota(np.repeat([0, 1, 2], [5, 3, 9]), True) == [2, 2, 2, 0]
    assert quota([0, 1, 1], True) == [1, 1, 0]  # class 0 wholly support; class 1 keeps a row
    with pytest.raises(ValueError, match="too few for shots='auto'"):
        quota([0.0], False)
    with pytest.raises(ValueError, match="too few for shots='auto'"):
        quota([0, 1], True)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_default_shots_work_on_small_tasks(name):
    est = make(name, shots="auto")
    assert type(est)().shots == "auto"
    rng = np.random.RandomState(0)
    if is_classifier(est):  # 8 rows per class, as in check_estimator
        tasks = [(rng.randn(16, 3), np.repeat([0, 1], 8)) for _ in range(4)]
    else:  # 12-row regression tasks
        tasks = [(rng.randn(12, 3), rng.randn(12)) for _ in range(4)]
    score = est.fit(tasks).score(tasks)
    assert np.isfinite(score)


def test_pickle_keeps_the_interrupted_epoch():
    est = fitted("FineTune")
    assert est.interrupted_epoch_ is None
    assert pickle.loads(pickle.dumps(est)).interrupted_epoch_ is None


# ---------------------------------------------------------------- 6 and 14, every estimator
class ReturnsTuple(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, X):
        return X * self.scale, X


@pytest.mark.parametrize("name", ESTIMATORS)
def test_clear_errors_for_every_estimator(name):
    tasks = tasks_for(name)
    est = fitted(name)
    X_s, y_s, X_q = new_task(name)
    est.adapt(X_s, y_s)  # classifiers trained on several tasks predict after adapt only
    huge = X_s.astype(np.float64)
    huge[1, 0] = 1e39
    cases = [
        (lambda: make(name, module=ReturnsTuple).fit(tasks), TypeError, "returned a tuple"),
        (lambda: make(name, module__width=3).fit(tasks), TypeError, "default MLP"),
        (lambda: make(name).fit([(*tasks[0], None)] + tasks[1:]), ValueError, "(X, y) pair"),
        (lambda: est.predict(tasks), TypeError, "a list of (X_i, y_i) tasks"),
        (lambda: est.predict((X_s, y_s)), TypeError, "an (X, y) pair"),
        (lambda: est.predict(huge), ValueError, "X holds 1e+39 (first at row 1)"),
        (lambda: est.adapt(huge, y_s), ValueError, "X holds 1e+39"),
        (
            lambda: make(name).fit(
                [(X, y) for X, y in tasks[:1]]
                + [(tasks[1][0].astype(np.float64) * 1e39, tasks[1][1])]
            ),
            ValueError,
            "Task 1: X holds",
        ),
    ]
    before = state_of(est)
    for call, expected, fragment in cases:
        with pytest.raises(expected) as info:
            call()
        assert fragment in str(info.value), str(info.value)
    assert_same(before, state_of(est))
