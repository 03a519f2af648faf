"""Torch in the worker processes of parallel engines (joblib's loky and
multiprocessing backends, Dask, Ray): intra-op threads, and CUDA after a fork.

A worker that runs one fit at a time should give torch its share of the
cores, not all of them: two workers on two cores, each with torch's default
of one thread per core, run four threads on two cores. The engines say what
a worker's share is through ``OMP_NUM_THREADS`` (joblib sets it to
``cpu_count // n_jobs`` for its workers, Dask's nanny to 1 per worker
thread) or their resource accounting (Ray's CPUs per task); torch reads
``OMP_NUM_THREADS`` only when it starts, so a forked worker keeps its
parent's thread count. :func:`use_worker_threads`, called when a fit starts,
applies the share.

``SKMETA_NUM_THREADS=N`` overrides it everywhere (also outside workers);
``SKMETA_NUM_THREADS=0`` leaves torch's setting alone.
"""

from __future__ import annotations

import multiprocessing
import os
import sys

import torch

ENV_THREADS = "SKMETA_NUM_THREADS"


def _positive_int(value: str | None) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _ray_cpus() -> int | None:
    """CPUs Ray assigned to the running task or actor; None outside a Ray worker."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    context = ray.get_runtime_context()
    if context.worker.mode != ray.WORKER_MODE:
        return None
    return max(1, int(context.get_assigned_resources().get("CPU", 1)))


def _in_dask_worker() -> bool:
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def worker_threads() -> int | None:
    """Intra-op threads torch should use in this process, or None to leave it alone.

    ``SKMETA_NUM_THREADS`` if set (``0``: None). Otherwise, in a Ray worker,
    the CPUs assigned to the task; in another worker process (a child
    process of joblib or Dask), ``OMP_NUM_THREADS`` as the engine set it.
    Elsewhere (the user's own process), None.
    """
    override = os.environ.get(ENV_THREADS)
    if override is not None and override.strip() != "":
        if override.strip() == "0":
            return None
        number = _positive_int(override)
        if number is None:
            raise ValueError(
                f"{ENV_THREADS} must be a non-negative integer (0: leave torch's threads "
                f"alone), got {override!r}."
            )
        return number
    ray_cpus = _ray_cpus()
    if ray_cpus is not None:
        return ray_cpus
    if multiprocessing.parent_process() is not None or _in_dask_worker():
        return _positive_int(os.environ.get("OMP_NUM_THREADS"))
    return None


def use_worker_threads() -> None:
    """Set torch's intra-op threads to :func:`worker_threads` when it gives a number."""
    threads = worker_threads()
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def in_bad_fork() -> bool:
    """True in a process forked after its parent initialised CUDA: CUDA cannot work here."""
    return bool(torch.cuda._is_in_bad_fork())
