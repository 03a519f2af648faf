"""Every estimator on CUDA: fit, adapt, predict, score, pickling and parameter files keep
every tensor on the GPU, runs are reproducible, and meta-gradients match the CPU's.

Skipped on machines without a GPU (CI has none); run on a GPU with
``pytest tests/test_cuda.py``.
"""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone, is_classifier
from test_algorithms import maml_setup, protonet_setup
from test_contract import ESTIMATORS, make, meta_state, new_task, tasks_for

from skmeta import _functional as fn
from skmeta._algorithms import MAML, ProtoNet, Reptile, Step
from skmeta._tasks import MetaBatch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def on_cuda(est):
    tensors = list(est.meta_params_.state_dict().values())
    tensors += list((getattr(est, "adapted_params_", None) or {}).values())
    return all(t.device.type == "cuda" for t in tensors)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_runs_on_cuda(name, tmp_path):
    tasks = tasks_for(name)
    est = make(name, device="cuda").fit(tasks)
    assert est.device_.type == "cuda" and on_cuda(est)
    again = make(name, device="cuda").fit(tasks)
    assert est.loss_curve_ == again.loss_curve_  # same random_state, same GPU run
    X_s, y_s, X_q = new_task(name)
    pred = est.adapt(X_s, y_s).predict(X_q)
    assert on_cuda(est) and isinstance(pred, np.ndarray)
    if is_classifier(est):
        np.testing.assert_allclose(est.predict_proba(X_q).sum(axis=1), 1.0, rtol=1e-6)
    assert np.isfinite(est.score(tasks_for(name, n_tasks=4, seed=5)))

    restored = pickle.loads(pickle.dumps(est))
    assert restored.device_.type == "cuda" and on_cuda(restored)
    np.testing.assert_array_equal(restored.predict(X_q), pred)
    est.save_params(tmp_path / "meta.pt")
    other = make(name, device="cuda", random_state=3).fit(tasks)
    other.load_params(tmp_path / "meta.pt")
    assert on_cuda(other)
    for key, value in meta_state(est).items():
        assert torch.equal(meta_state(other)[key], value), key
    if hasattr(est, "partial_fit"):
        est.partial_fit(tasks)
        assert on_cuda(est)
    assert clone(est).get_params()["device"] == "cuda"


def cuda_copy(tree):
    return {
        k: {n: t.detach().to(CUDA).requires_grad_(t.requires_grad) for n, t in ts.items()}
        for k, ts in tree.items()
    }


@pytest.mark.parametrize(
    "algorithm",
    [
        MAML(0.05, 2, 2),
        MAML(0.05, 2, 2, learn_inner_lr="per-parameter"),
        MAML(0.05, 3, 3, learn_inner_lr="per-layer-per-step", msl_iterations=10),
        MAML(0.05, 2, 2, trainable=("layers.4.weight", "layers.4.bias")),
    ],
    ids=["MAML", "Meta-SGD", "MAML++", "ANIL"],
)
def test_meta_gradient_on_cuda_equals_the_cpu_one(algorithm):
    model, init, batch, _, net = maml_setup()
    meta = {
        "init": init,
        **{
            k: {n: t.requires_grad_() for n, t in v.items()}
            for k, v in algorithm.learned(init).items()
        },
    }
    cpu_loss, cpu_grads = algorithm.outer_step(net, meta, batch, Step(), "vmap")
    gpu_net = fn.Network(model.to(CUDA), net.loss_fn, {})
    gpu_batch = MetaBatch(*(t.to(CUDA) for t in batch))
    gpu_loss, gpu_grads = algorithm.outer_step(gpu_net, cuda_copy(meta), gpu_batch, Step(), "vmap")
    torch.testing.assert_close(gpu_loss.cpu(), cpu_loss, rtol=1e-4, atol=1e-5)
    for kind, grads in cpu_grads.items():
        for name, g in grads.items():
            torch.testing.assert_close(gpu_grads[kind][name].cpu(), g, rtol=1e-3, atol=1e-5)


def test_protonet_and_reptile_on_cuda_equal_the_cpu():
    model, init, batch, _, net = protonet_setup()
    algorithm = ProtoNet(n_classes=3)
    cpu = algorithm.outer_step(net, {"init": init}, batch, Step(), "vmap")[1]["init"]
    gpu_net = fn.Network(model.to(CUDA), net.loss_fn, {})
    gpu_batch = MetaBatch(*(t.to(CUDA) for t in batch))
    gpu = algorithm.outer_step(gpu_net, cuda_copy({"init": init}), gpu_batch, Step(), "vmap")[1][
        "init"
    ]
    for name, g in cpu.items():
        torch.testing.assert_close(gpu[name].cpu(), g, rtol=1e-3, atol=1e-5)

    model, init, batch, _, net = maml_setup()
    reptile = Reptile(0.05, 3, 3, outer_step_size=0.5)
    cpu = reptile.outer_step(net, {"init": init}, batch, Step(), "vmap")[1]["init"]
    gpu_net = fn.Network(model.to(CUDA), net.loss_fn, {})
    gpu_batch = MetaBatch(*(t.to(CUDA) for t in batch))
    gpu = reptile.outer_step(gpu_net, cuda_copy({"init": init}), gpu_batch, Step(), "vmap")[1][
        "init"
    ]
    for name, inc in cpu.items():
        torch.testing.assert_close(gpu[name].cpu(), inc, rtol=1e-3, atol=1e-6)
