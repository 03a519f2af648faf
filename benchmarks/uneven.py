"""Cost of uneven task sizes: one 10,000-row task among 300 tasks of 20 rows.

Times ``MAMLRegressor.fit`` (20 outer steps, meta-batch 25) and few-shot
``score`` on the same tasks, and the peak resident memory of the process,
with and without the big task, each case in a fresh subprocess (peak RSS is
per process). The cost of the big task should follow its rows: a meta-step
pads its tasks to the largest task of its own meta-batch and draws at most
``MAX_QUERY_ROWS`` query rows per task, and ``score`` groups tasks by size.

    OMP_NUM_THREADS=1 python benchmarks/uneven.py
    OMP_NUM_THREADS=1 PYTHONPATH=/path/to/other/checkout python benchmarks/uneven.py

Prints one line per case and the ratios; run it on two checkouts to compare
revisions. Timings are the median of ``--repeats`` runs in the subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def make_tasks(big_rows: int, n_small: int = 300, small_rows: int = 20, n_features: int = 1):
    import numpy as np

    rng = np.random.RandomState(0)

    def sine(n):
        amplitude, phase = rng.uniform(0.1, 5.0), rng.uniform(0, np.pi)
        X = rng.uniform(-5, 5, (n, n_features)).astype(np.float32)
        return X, (amplitude * np.sin(X[:, 0] - phase)).astype(np.float32)

    tasks = [sine(small_rows) for _ in range(n_small)]
    if big_rows:
        tasks.insert(n_small // 2, sine(big_rows))
    return tasks


def run_case(big_rows: int, repeats: int, max_iter: int, n_features: int) -> dict:
    import numpy as np
    import torch

    from skmeta import MAMLRegressor

    torch.set_num_threads(1)
    tasks = make_tasks(big_rows, n_features=n_features)
    est = MAMLRegressor(max_iter=max_iter, meta_batch_size=25, shots=10, random_state=0)
    fit_times, score_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        est.fit(tasks)
        fit_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        score = est.score(tasks)
        score_times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "big_rows": big_rows,
        "fit_s": float(np.median(fit_times)),
        "score_s": float(np.median(score_times)),
        "peak_rss_mb": peak / 2**20,
        "score": score,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--n-features", type=int, default=1)
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(run_case(args.case, args.repeats, args.max_iter, args.n_features)))
        return
    results = {}
    for big_rows in (0, args.big_rows):
        command = [sys.executable, __file__, "--case", str(big_rows)]
        command += ["--repeats", str(args.repeats), "--max-iter", str(args.max_iter)]
        command += ["--n-features", str(args.n_features)]
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        output = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        results[big_rows] = json.loads(output.stdout.strip().splitlines()[-1])
    import skmeta

    print(
        f"skmeta from {os.path.dirname(skmeta.__file__)}; 300 tasks of 20 rows, "
        f"{args.n_features} feature(s), fit {args.max_iter} steps, meta-batch 25, 1 thread"
    )
    for big_rows, row in results.items():
        label = f"+ one {big_rows}-row task" if big_rows else "small tasks only"
        print(
            f"  {label:26s} fit {row['fit_s']:7.3f} s  score {row['score_s']:7.3f} s  "
            f"peak RSS {row['peak_rss_mb']:7.1f} MB  (score {row['score']:.3f})"
        )
    small, big = results[0], results[args.big_rows]
    print(
        f"  ratio with/without: fit {big['fit_s'] / small['fit_s']:.2f}x, "
        f"score {big['score_s'] / small['score_s']:.2f}x, "
        f"peak RSS {big['peak_rss_mb'] / small['peak_rss_mb']:.2f}x"
    )


if __name__ == "__main__":
    main()
