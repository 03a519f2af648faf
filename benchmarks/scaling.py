"""Scaling out: one grid search on four engines, and data-parallel meta-training throughput.

1. The same ``GridSearchCV`` (MAMLRegressor on 40 fixed sinusoid tasks,
   ``inner_lr`` x ``first_order``, 4 candidates x 2 folds = 8 fits) run
   serially (``n_jobs=1``), with joblib's default loky backend
   (``n_jobs=2``), on a Dask ``LocalCluster`` (2 single-threaded worker
   processes) and on a local Ray (2 CPUs). Each engine runs the search twice:
   "cold" is the first search on fresh worker processes (each imports torch,
   scikit-learn and skmeta before its first fit), "warm" a second search on
   the same workers. The serial search runs in this process, already warm.
   Every run's ``cv_results_`` scores are checked to equal the serial run's.
2. Meta-training throughput (tasks per second) of ``MAMLRegressor`` on the
   sinusoid sampler with 1 and 2 processes on ``torch.distributed``'s gloo
   backend (the same global meta-batch, split across the ranks), after a
   warm-up fit in every process.

Each process gets torch threads = its share of the cores (1 on a 2-core
machine). Needs the ``distributed`` extra for Dask and Ray (skipped if
missing).

    OMP_NUM_THREADS=1 python benchmarks/scaling.py
    OMP_NUM_THREADS=1 python benchmarks/scaling.py --max-iter 100 --steps 50   # quicker
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import tempfile
import time

import joblib
import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from sklearn.model_selection import GridSearchCV, KFold

from skmeta import MAMLRegressor
from skmeta.datasets import SinusoidTasks

GRID = {"inner_lr": [0.003, 0.01, 0.03, 0.1], "first_order": [False, True]}


def search(max_iter: int, **kwargs) -> tuple[float, np.ndarray]:
    tasks = SinusoidTasks(n_samples=20).sample(40, random_state=0)
    est = MAMLRegressor(max_iter=max_iter, meta_batch_size=10, random_state=0)
    start = time.perf_counter()
    result = GridSearchCV(est, GRID, cv=KFold(2), refit=False, **kwargs).fit(tasks)
    return time.perf_counter() - start, result.cv_results_["mean_test_score"]


def grid_search_times(max_iter: int) -> None:
    """Print each engine's cold and warm wall time as it is measured."""
    search(max_iter, n_jobs=1)  # warms this process up (imports, first fit)
    serial, reference = search(max_iter, n_jobs=1)
    print(f"{'engine':<20} {'cold':>7} {'warm':>7} {'serial/cold':>12} {'serial/warm':>12}")
    print(f"{'n_jobs=1 (serial)':<20} {serial:7.2f} {'':>7} {1.0:12.2f}", flush=True)

    def run(label, **kwargs):
        cold, scores = search(max_iter, **kwargs)
        warm, scores_warm = search(max_iter, **kwargs)
        assert np.allclose(scores, reference, rtol=1e-6), (label, scores, reference)
        assert np.allclose(scores_warm, reference, rtol=1e-6)
        print(
            f"{label:<20} {cold:7.2f} {warm:7.2f} {serial / cold:12.2f} {serial / warm:12.2f}",
            flush=True,
        )

    run("loky, n_jobs=2", n_jobs=2)
    if importlib.util.find_spec("distributed"):
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        with cluster, Client(cluster), joblib.parallel_backend("dask"):
            run("Dask, 2 workers")
    else:
        print("distributed is not installed: Dask skipped")
    if importlib.util.find_spec("ray"):
        import ray
        from ray.util.joblib import register_ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        register_ray()
        try:
            with joblib.parallel_backend("ray"):
                run("Ray, 2 CPUs")
        finally:
            ray.shutdown()
    else:
        print("ray is not installed: Ray skipped")


def _throughput_rank(rank, world_size, port, steps, settings, out):
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    sampler = SinusoidTasks(n_samples=20)
    MAMLRegressor(max_iter=5, **settings).fit(sampler)  # warm-up: imports, first vmap
    dist.barrier()
    start = time.perf_counter()
    MAMLRegressor(max_iter=steps, **settings).fit(sampler)
    dist.barrier()
    elapsed = time.perf_counter() - start
    if rank == 0:
        with open(os.path.join(out, f"world{world_size}.txt"), "w") as f:
            f.write(str(steps * settings["meta_batch_size"] / elapsed))
    dist.destroy_process_group()


def throughput(world_size: int, steps: int, settings: dict) -> float:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(
            _throughput_rank,
            args=(world_size, port, steps, settings, out),
            nprocs=world_size,
        )
        with open(os.path.join(out, f"world{world_size}.txt")) as f:
            return float(f.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=300, help="outer steps per grid fit")
    parser.add_argument("--steps", type=int, default=200, help="outer steps, gloo throughput")
    parser.add_argument("--meta-batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, nargs="+", default=[40, 40], help="gloo MLP")
    parser.add_argument("--inner-steps", type=int, default=1, help="gloo inner steps")
    parser.add_argument("--skip-grid", action="store_true")
    parser.add_argument("--skip-gloo", action="store_true")
    args = parser.parse_args()
    print(
        f"{os.cpu_count()} cores, torch {torch.__version__}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, load {os.getloadavg()[0]:.1f}"
    )
    if not args.skip_grid:
        print(f"\nGridSearchCV, 8 fits of {args.max_iter} outer steps (seconds)")
        grid_search_times(args.max_iter)
    if not args.skip_gloo:
        print(
            f"\nData-parallel meta-training on gloo, meta-batch {args.meta_batch_size}, "
            f"{args.steps} steps, MLP {args.hidden}, {args.inner_steps} inner step(s)"
        )
        settings = dict(
            meta_batch_size=args.meta_batch_size,
            hidden_layer_sizes=tuple(args.hidden),
            inner_steps=args.inner_steps,
            random_state=0,
        )
        rates = {w: throughput(w, args.steps, settings) for w in (1, 2)}
        for world_size, rate in rates.items():
            print(
                f"{world_size} process(es): {rate:8.1f} tasks/s ({rate / rates[1]:.2f}x)",
                flush=True,
            )
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
