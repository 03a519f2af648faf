"""Data-parallel meta-training with torchrun: one MAML model, the meta-batch split over processes.

    torchrun --nproc_per_node=2 benchmarks/distributed_fit.py
    torchrun --nproc_per_node=2 benchmarks/distributed_fit.py --max-iter 2000 --out maml.pt

Every process runs this same script. It joins the process group torchrun
set up (gloo on CPU, nccl with one GPU per process), and fits the same
estimator: skmeta sees the initialised process group and meta-trains data
parallel (each process takes its share of every meta-batch of
``--meta-batch-size`` tasks; the meta-gradients are averaged). Only rank 0
shows the progress bar, writes the parameter file and prints; every rank
ends with the same parameters. Run without torchrun, it fits in one process.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.distributed as dist

from skmeta import MAMLRegressor
from skmeta.datasets import SinusoidTasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=300)
    parser.add_argument("--meta-batch-size", type=int, default=32)
    parser.add_argument("--out", default=None, help="save_params file, written by rank 0")
    args = parser.parse_args()

    device = "cpu"
    if "LOCAL_RANK" in os.environ:  # launched by torchrun
        local_rank = int(os.environ["LOCAL_RANK"])
        if torch.cuda.is_available():
            device = f"cuda:{local_rank}"
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if device != "cpu" else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    world_size = dist.get_world_size() if dist.is_initialized() else 1

    est = MAMLRegressor(
        max_iter=args.max_iter,
        meta_batch_size=args.meta_batch_size,
        device=device,
        random_state=0,
        verbose=1,  # a progress bar on rank 0 only
    )
    start = time.perf_counter()
    est.fit(SinusoidTasks(n_samples=20))
    elapsed = time.perf_counter() - start
    if args.out:
        est.save_params(args.out)  # rank 0 writes; the others skip

    # Every rank holds the same parameters: check it, as a demonstration.
    flat = torch.cat([p.detach().reshape(-1) for p in est.meta_params_.parameters()])
    if dist.is_initialized():
        reference = flat.clone()
        dist.broadcast(reference, src=0)
        assert torch.equal(flat, reference), "ranks disagree"
    if rank == 0:
        test_tasks = SinusoidTasks(n_samples=20).sample(100, random_state=1)
        print(
            f"{world_size} process(es) on {device}: {args.max_iter} meta-steps of "
            f"{args.meta_batch_size} tasks in {elapsed:.1f} s "
            f"({args.max_iter * args.meta_batch_size / elapsed:.0f} tasks/s, torch's first-use "
            "start-up included; benchmarks/scaling.py measures after a warm-up); "
            f"final meta-loss {est.loss_curve_[-1]:.3f}; few-shot R^2 on 100 new tasks "
            f"{est.score(test_tasks):.3f}"
        )
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
