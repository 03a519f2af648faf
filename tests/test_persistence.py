"""Pickle/joblib round trips, tensors-only parameter files, GPU pickles on CPU machines."""

import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import skmeta._persistence
from skmeta import MAMLRegressor
from skmeta.datasets import SinusoidTasks

tasks = SinusoidTasks(n_samples=20).sample(12, random_state=0)
X_new, y_new = SinusoidTasks(n_samples=20).sample(1, random_state=1)[0]


def maml(**params):
    settings = dict(max_iter=30, meta_batch_size=4, shots=10, hidden_layer_sizes=(16,))
    return MAMLRegressor(**{**settings, "random_state": 0, **params})


def round_trip_pickle(est):
    return pickle.loads(pickle.dumps(est))


def round_trip_joblib(est):
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    buffer.seek(0)
    return joblib.load(buffer)


@pytest.mark.parametrize("round_trip", [round_trip_pickle, round_trip_joblib])
def test_round_trip_gives_identical_predictions(round_trip):
    est = maml().fit(tasks)
    restored = round_trip(est)
    np.testing.assert_array_equal(restored.predict(X_new), est.predict(X_new))
    assert restored.score(tasks[:4]) == est.score(tasks[:4])

    # Adapted before pickling: the adaptation travels with it.
    est.adapt(X_new[:10], y_new[:10])
    restored = round_trip(est)
    np.testing.assert_array_equal(restored.predict(X_new[10:]), est.predict(X_new[10:]))
    assert not np.array_equal(est.predict(X_new), maml().fit(tasks).predict(X_new))

    # Adapted after unpickling: the same adaptation.
    restored = round_trip(maml().fit(tasks)).adapt(X_new[:10], y_new[:10])
    np.testing.assert_array_equal(restored.predict(X_new[10:]), est.predict(X_new[10:]))


def test_unpickled_estimator_keeps_training_like_the_original():
    est = maml().fit(tasks)
    restored = round_trip_pickle(est)
    # The optimizer still drives the module's own parameters.
    first_param = next(restored.module_.parameters())
    assert restored.optimizer_.param_groups[0]["params"][0] is first_param
    est.partial_fit(tasks)
    restored.partial_fit(tasks)
    assert restored.loss_curve_ == est.loss_curve_
    for p, q in zip(restored.module_.parameters(), est.module_.parameters()):
        assert torch.equal(p, q)


def test_clone_of_fitted_and_unpickled_estimators():
    est = round_trip_pickle(maml().fit(tasks))
    fresh = clone(est)
    assert not hasattr(fresh, "module_")
    assert fresh.get_params() == maml().get_params()


def fake_cuda_pickle(est):
    """Pickle of ``est`` as if it had been fitted on a GPU (tensors stay on the CPU)."""
    est.device_ = torch.device("cuda")
    try:
        return pickle.dumps(est)
    finally:
        est.device_ = torch.device("cpu")


def test_cuda_pickle_loads_on_cpu_with_a_warning(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    est = maml(device="cpu").fit(tasks).adapt(X_new[:10], y_new[:10])
    payload = fake_cuda_pickle(est)
    with pytest.warns(UserWarning, match="fitted on device 'cuda'.*loaded onto the CPU"):
        restored = pickle.loads(payload)
    assert restored.device_ == torch.device("cpu")
    np.testing.assert_array_equal(restored.predict(X_new), est.predict(X_new))
    restored.adapt(X_new[:5], y_new[:5]).partial_fit(tasks)  # usable on the CPU
    assert clone(restored).get_params()["device"] == "cpu"


def test_cuda_pickle_goes_back_to_the_gpu_when_there_is_one(monkeypatch):
    # No GPU here: record where the fitted state would be moved instead of moving it.
    moved = {}

    def record(value, device):
        moved[type(value).__name__] = device
        return value

    est = maml().fit(tasks).adapt(X_new[:10], y_new[:10])
    payload = fake_cuda_pickle(est)
    monkeypatch.setattr(skmeta._persistence, "_device_available", lambda device: True)
    monkeypatch.setattr(skmeta._persistence, "_to_device", record)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = pickle.loads(payload)
    assert restored.device_ == torch.device("cuda")
    cuda = torch.device("cuda")
    moved_kinds = ("MLP", "MetaParameters", "Adam", "dict")
    assert {name: moved[name] for name in moved_kinds} == dict.fromkeys(moved_kinds, cuda)


def test_pickling_does_not_move_the_estimator():
    est = maml().fit(tasks)
    est.device_ = torch.device("cuda")
    before = est.module_
    pickle.dumps(est)
    assert est.module_ is before and est.device_ == torch.device("cuda")


# ------------------------------------------------------------ save_params / load_params
def test_save_and_load_params(tmp_path):
    est = maml().fit(tasks)
    path = tmp_path / "meta.pt"
    est.save_params(path)
    state = torch.load(path, weights_only=True)
    assert set(state) == {"network", "learned", "about"} and state["learned"] == {}
    assert set(state["network"]) == set(est.module_.state_dict())
    tensors = state["network"].values()
    assert all(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in tensors)

    other = maml(random_state=1).fit(tasks).adapt(X_new[:10], y_new[:10])
    assert not np.array_equal(other.predict(X_new), est.predict(X_new))
    assert other.load_params(path) is other
    assert other.adapted_params_ is None
    np.testing.assert_array_equal(other.predict(X_new), est.predict(X_new))
    other.adapt(X_new[:10], y_new[:10])
    est.adapt(X_new[:10], y_new[:10])
    np.testing.assert_array_equal(other.predict(X_new), est.predict(X_new))
    assert len(other.optimizer_.state) == 0  # moments of the old parameters dropped
    other.partial_fit(tasks)


def test_load_params_needs_a_fitted_estimator(tmp_path):
    maml().fit(tasks).save_params(tmp_path / "meta.pt")
    with pytest.raises(NotFittedError, match="fit it first"):
        maml().load_params(tmp_path / "meta.pt")
    with pytest.raises(NotFittedError):
        maml().save_params(tmp_path / "other.pt")


def test_load_params_rejects_another_architecture(tmp_path):
    maml(hidden_layer_sizes=(16,)).fit(tasks).save_params(tmp_path / "meta.pt")
    est = maml(hidden_layer_sizes=(8,)).fit(tasks)
    with pytest.raises(ValueError, match=r"different architecture.*\(16, 1\) in the file"):
        est.load_params(tmp_path / "meta.pt")
    deeper = maml(hidden_layer_sizes=(16, 16)).fit(tasks)
    with pytest.raises(ValueError, match="missing 'layers.4.weight'"):
        deeper.load_params(tmp_path / "meta.pt")


CODE_RAN = []


def record_run(tag):
    CODE_RAN.append(tag)


class Payload:
    """Pickles to a call of ``record_run``: loading it would run code."""

    def __reduce__(self):
        return (record_run, ("ran",))


def test_load_params_cannot_run_code(tmp_path):
    est = maml().fit(tasks)
    path = tmp_path / "evil.pt"
    state = {
        "network": dict(est.module_.state_dict(), extra=Payload()),
        "learned": {},
        "about": {},
    }
    torch.save(state, path)
    with pytest.raises(ValueError, match="objects other than tensors"):
        est.load_params(path)
    assert CODE_RAN == []
    # The same file does run code through a plain pickle load: the test is meaningful.
    torch.load(path, weights_only=False)
    assert CODE_RAN == ["ran"]


@pytest.mark.parametrize(
    "content, message",
    [
        (torch.zeros(3), "is not a parameter file from save_params"),
        ({"layers.0.weight": torch.zeros(3)}, "is not a parameter file from save_params"),
        ({"network": {"layers.0.weight": [1.0]}, "learned": {}}, "not a parameter file"),
    ],
)
def test_load_params_rejects_other_files(tmp_path, content, message):
    torch.save(content, tmp_path / "x.pt")
    with pytest.raises(ValueError, match=message):
        maml().fit(tasks).load_params(tmp_path / "x.pt")


def test_load_params_rejects_non_finite_parameters(tmp_path):
    est = maml().fit(tasks)
    est.save_params(tmp_path / "nan.pt")
    state = torch.load(tmp_path / "nan.pt", weights_only=True)
    state["network"]["layers.0.bias"].fill_(float("nan"))
    torch.save(state, tmp_path / "nan.pt")
    before = est.predict(X_new)
    with pytest.raises(ValueError, match="contain NaN or inf"):
        est.load_params(tmp_path / "nan.pt")
    np.testing.assert_array_equal(est.predict(X_new), before)
