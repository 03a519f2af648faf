"""Scaling out: grid search on joblib's engines (loky, Dask, Ray), torch threads and
CUDA in workers, small pickles, and data-parallel meta-training over torch.distributed.

The tests that start real engines (a Dask LocalCluster, a local Ray, loky
workers, two gloo processes) are marked ``engines``; deselect them with
``-m "not engines"``.
"""

import contextlib
import io
import os
import pickle
import socket

import joblib
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from test_contract import ESTIMATORS, META_TRAINED, make, tasks_for

from skmeta import MAMLRegressor, ReptileRegressor, _distributed, _workers
from skmeta._tasks import MetaBatch
from skmeta.datasets import SinusoidTasks

# ---------------------------------------------------------------- rank-aware split


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("n_tasks", [4, 5, 7, 12])
def test_shards_cover_the_batch_in_order(n_tasks, world_size):
    parts = [_distributed.shard_bounds(n_tasks, r, world_size) for r in range(world_size)]
    assert [p.start for p in parts] == [0] + [p.stop for p in parts[:-1]]
    assert parts[-1].stop == n_tasks
    sizes = [p.stop - p.start for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    assert sum(p.weight for p in parts) == pytest.approx(1.0)

    # Each rank's slice of the same draw; weighted shard means give the full mean.
    generator = torch.Generator().manual_seed(0)
    batch = MetaBatch(*(torch.randn(n_tasks, 3, generator=generator) for _ in range(6)))
    shards = [_distributed.shard(batch, r, world_size) for r in range(world_size)]
    for field in range(6):
        joined = torch.cat([part[field] for part, _ in shards])
        assert torch.equal(joined, batch[field])
    per_task = batch.y_query.mean(dim=1)
    weighted = sum(p.weight * part.y_query.mean(dim=1).mean() for part, p in shards)
    assert float(weighted) == pytest.approx(float(per_task.mean()), rel=1e-6)


def test_too_few_tasks_for_the_ranks_names_both():
    with pytest.raises(ValueError, match=r"has 1 task\(s\), fewer than the 2 processes"):
        _distributed.shard_bounds(1, 0, 2)


def test_no_process_group_means_no_data_parallelism():
    assert _distributed.process_group() is None
    assert _distributed.is_main_process()
    assert _distributed.broadcast_seed(123) == 123


# ---------------------------------------------------------------- threads, CUDA, pickles


def test_worker_threads_override_and_default(monkeypatch):
    monkeypatch.delenv(_workers.ENV_THREADS, raising=False)
    assert _workers.worker_threads() is None  # the user's own process: torch left alone
    monkeypatch.setenv(_workers.ENV_THREADS, "3")
    assert _workers.worker_threads() == 3
    monkeypatch.setenv(_workers.ENV_THREADS, "0")
    assert _workers.worker_threads() is None
    monkeypatch.setenv(_workers.ENV_THREADS, "many")
    with pytest.raises(ValueError, match="SKMETA_NUM_THREADS must be a non-negative integer"):
        _workers.worker_threads()


def test_fit_applies_the_thread_override(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv(_workers.ENV_THREADS, "1")
    torch.set_num_threads(2)
    try:
        est = MAMLRegressor(max_iter=1, meta_batch_size=2, shots=3, random_state=0)
        est.fit(tasks_for("MAML", 4))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_bad_fork_keeps_cuda_out(monkeypatch):
    from skmeta._estimators._params import resolve_device
    from skmeta._persistence import _device_available

    monkeypatch.setattr(torch.cuda, "_is_in_bad_fork", lambda: True)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="forked after its parent initialised CUDA"):
        resolve_device("cuda")
    # A pickle from a GPU loads onto the CPU there (with a warning) instead of touching CUDA.
    assert not _device_available(torch.device("cuda"))


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_pickles_hold_no_task_data(name):
    # GridSearchCV ships unfitted clones to workers: parameters only, no tensors.
    assert b"torch" not in pickle.dumps(clone(ESTIMATORS[name]))
    assert len(pickle.dumps(clone(ESTIMATORS[name]))) < 2000
    # A fitted estimator keeps its parameters (and optimizer state), never its tasks.
    tasks = tasks_for(name, n_tasks=64)
    fitted = pickle.dumps(make(name).fit(tasks))
    for X, _ in tasks[:8]:
        assert np.ascontiguousarray(X, dtype=np.float32).tobytes() not in fitted
    if name in META_TRAINED:  # and its size does not grow with the tasks
        assert len(pickle.dumps(make(name).fit(tasks[:8]))) == len(fitted)


# ---------------------------------------------------------------- grid search on engines

GRID = {"inner_lr": [0.01, 0.1], "first_order": [False, True]}


def grid_tasks():
    return SinusoidTasks(n_samples=8).sample(16, random_state=0)


def grid_search(**kwargs):
    est = MAMLRegressor(max_iter=10, meta_batch_size=4, hidden_layer_sizes=(16,), shots=3)
    est.set_params(random_state=0)
    return GridSearchCV(est, GRID, cv=KFold(2), refit=False, **kwargs).fit(grid_tasks())


@pytest.fixture(scope="module")
def serial_search():
    return grid_search(n_jobs=1)


def assert_same_scores(search, reference):
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        assert_allclose(search.cv_results_[key], reference.cv_results_[key], rtol=1e-6)
    assert search.cv_results_["params"] == reference.cv_results_["params"]


def thread_probe():
    """A function for a worker: spoil torch's thread count, fit, report the count the fit left.

    Nested, so that cloudpickle sends it by value (Ray's workers cannot import this module).
    """

    def probe() -> int:
        import torch

        from skmeta import MAMLRegressor
        from skmeta.datasets import SinusoidTasks

        torch.set_num_threads(3)
        tasks = SinusoidTasks(n_samples=8).sample(4, random_state=0)
        MAMLRegressor(max_iter=1, meta_batch_size=2, shots=3, random_state=0).fit(tasks)
        return torch.get_num_threads()

    return probe


@pytest.mark.engines
def test_loky_grid_search_equals_serial(serial_search):
    assert_same_scores(grid_search(n_jobs=2), serial_search)


@pytest.mark.engines
def test_dask_grid_search_equals_serial(serial_search, monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.delenv(_workers.ENV_THREADS, raising=False)
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with cluster, distributed.Client(cluster), joblib.parallel_backend("dask"):
        assert_same_scores(grid_search(), serial_search)
        # The nanny gives each single-threaded worker OMP_NUM_THREADS=1: its share.
        threads = joblib.Parallel()(joblib.delayed(thread_probe())() for _ in range(2))
    assert threads == [1, 1]


@pytest.mark.engines
def test_ray_grid_search_equals_serial(serial_search, monkeypatch):
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    monkeypatch.delenv(_workers.ENV_THREADS, raising=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        register_ray()
        with joblib.parallel_backend("ray"):
            assert_same_scores(grid_search(), serial_search)
            threads = joblib.Parallel()(joblib.delayed(thread_probe())() for _ in range(2))
        assert threads == [1, 1]  # one Ray CPU per task
    finally:
        ray.shutdown()


# ---------------------------------------------------------------- data parallel on gloo

META = dict(hidden_layer_sizes=(16, 16), meta_batch_size=6, max_iter=12, shots=5, random_state=0)
DATA_PARALLEL = {
    "MAML second order": (MAMLRegressor, dict(inner_steps=2)),
    "Meta-SGD": (MAMLRegressor, dict(learn_inner_lr="per-parameter")),
    "Reptile": (ReptileRegressor, dict(inner_steps=3)),
    "MAML, 5 tasks on 2 ranks": (MAMLRegressor, dict(meta_batch_size=5)),
}


def make_data_parallel(name):
    cls, params = DATA_PARALLEL[name]
    return cls(**{**META, **params})


def dp_tasks():
    return SinusoidTasks(n_samples=12).sample(30, random_state=0)


def fitted_state(est):
    params = {k: v.detach().clone() for k, v in est.meta_params_.state_dict().items()}
    return params, list(est.loss_curve_)


def _rank_main(rank, world_size, port, out):
    """One rank: meta-train every configuration, save what it ended with."""
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    try:
        results = {
            name: fitted_state(make_data_parallel(name).fit(dp_tasks())) for name in DATA_PARALLEL
        }
        # random_state=None: rank 0's seed everywhere, so still one run.
        unseeded = MAMLRegressor(**{**META, "random_state": None, "max_iter": 2, "verbose": 1})
        progress = io.StringIO()
        with contextlib.redirect_stderr(progress):
            unseeded.fit(dp_tasks())
        results["unseeded"] = fitted_state(unseeded)
        results["progress"] = progress.getvalue()
        unseeded.save_params(os.path.join(out, f"params-{rank}.pt"))
        try:
            MAMLRegressor(**{**META, "meta_batch_size": 1}).fit(dp_tasks())
        except ValueError as exc:
            results["error"] = str(exc)
        torch.save(results, os.path.join(out, f"rank-{rank}.pt"))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("gloo")
    mp.spawn(_rank_main, args=(2, free_port(), str(out)), nprocs=2)
    return out, [torch.load(out / f"rank-{rank}.pt") for rank in range(2)]


@pytest.mark.engines
@pytest.mark.parametrize("name", list(DATA_PARALLEL))
def test_two_gloo_ranks_equal_one_process(two_ranks, name):
    _, (rank0, rank1) = two_ranks
    params, losses = fitted_state(make_data_parallel(name).fit(dp_tasks()))
    assert set(rank0[name][0]) == set(params)
    for key, value in params.items():
        assert torch.equal(rank0[name][0][key], rank1[name][0][key]), key  # identical ranks
        assert_allclose(rank0[name][0][key], value, rtol=1e-5, atol=1e-6, err_msg=key)
    # loss_curve_ is the global mean meta-loss, the same on every rank.
    assert rank0[name][1] == rank1[name][1]
    assert_allclose(rank0[name][1], losses, rtol=1e-5)
    if name == "Meta-SGD":
        assert any("inner_lr" in key for key in params)  # learned step sizes were all-reduced


@pytest.mark.engines
def test_gloo_ranks_share_seed_progress_files_and_errors(two_ranks):
    out, (rank0, rank1) = two_ranks
    for key in rank0["unseeded"][0]:
        assert torch.equal(rank0["unseeded"][0][key], rank1["unseeded"][0][key])
    # Rank 0 alone shows progress and writes files.
    assert "meta-train" in rank0["progress"] and rank1["progress"] == ""
    assert (out / "params-0.pt").exists() and not (out / "params-1.pt").exists()
    assert "has 1 task(s), fewer than the 2 processes" in rank0["error"]
