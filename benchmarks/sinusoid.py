"""Sinusoid regression of the MAML paper (Finn et al., 2017, section 5.1).

Meta-trains MAMLRegressor on sine tasks (amplitude U[0.1, 5], phase U[0, pi],
x U[-5, 5]; MLP 1-40-40-1; meta-batch 25; one inner SGD step at 0.01; Adam
1e-3), then adapts to fresh tasks from K support points and reports the mean
squared error on 100 query points after 0, 1 and 10 adaptation steps, with
95% confidence intervals, next to the paper's two baselines on the same
held-out tasks: the same network pretrained on the pooled points of many tasks
and fine-tuned with the same SGD steps (FineTuneRegressor), and the network
trained from scratch on the K points.

    python benchmarks/sinusoid.py --quick     # the README demo, about a minute
    python benchmarks/sinusoid.py             # longer meta-training

Prints a markdown table and writes it, the settings and a PNG of a few
adapted tasks under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import matplotlib
import numpy as np
import sklearn
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from skmeta import FineTuneRegressor, MAMLRegressor
from skmeta.datasets import SinusoidTasks

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).parent / "results"
N_QUERY = 100


def mean_ci(values) -> tuple[float, float]:
    """Mean and half-width of the 95% normal confidence interval."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(1.96 * values.std(ddof=1) / np.sqrt(len(values)))


def eval_tasks(k_shot: int, n_tasks: int, seed: int):
    """Fresh tasks with K support and N_QUERY query points, plus their functions."""
    family = SinusoidTasks(n_samples=k_shot + N_QUERY)
    tasks, amplitude, phase = family.sample(n_tasks, random_state=seed, return_functions=True)
    return [(X[:k_shot], y[:k_shot], X[k_shot:], y[k_shot:]) for X, y in tasks], amplitude, phase


def adapted_mse(estimator, tasks, steps: int) -> list[float]:
    """Query MSE of each task after ``steps`` adaptation steps (MAML or fine-tuning)."""
    estimator.set_params(adapt_steps=steps)
    errors = []
    for X_s, y_s, X_q, y_q in tasks:
        y_pred = estimator.adapt(X_s, y_s).predict(X_q)
        errors.append(float(np.mean((y_pred - y_q) ** 2)))
    return errors


def scratch_mse(tasks, seed: int) -> list[float]:
    """Query MSE of a 1-40-40-1 ReLU network trained from scratch on the support points."""
    import warnings

    errors = []
    for i, (X_s, y_s, X_q, y_q) in enumerate(tasks):
        net = MLPRegressor(hidden_layer_sizes=(40, 40), max_iter=500, random_state=seed + i)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            net.fit(X_s, y_s)
        errors.append(float(np.mean((net.predict(X_q) - y_q) ** 2)))
    return errors


def plot_tasks(maml: MAMLRegressor, tasks, amplitude, phase, steps: int, path: Path) -> None:
    """Ground truth, support points and predictions before/after adaptation (paper's Fig. 2)."""
    grid = np.linspace(-5, 5, 200, dtype=np.float32)[:, None]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
    for ax, (X_s, y_s, _, _), a, p in zip(axes, tasks, amplitude, phase):
        maml.set_params(adapt_steps=0)
        before = maml.adapt(X_s, y_s).predict(grid)
        maml.set_params(adapt_steps=steps)
        after = maml.adapt(X_s, y_s).predict(grid)
        ax.plot(grid[:, 0], SinusoidTasks.evaluate(grid, a, p), "k-", label="ground truth")
        ax.plot(grid[:, 0], before, "C0--", label="meta-init (0 steps)")
        ax.plot(grid[:, 0], after, "C3-", label=f"after {steps} steps")
        ax.plot(X_s[:, 0], y_s, "k^", label=f"{len(y_s)} support points")
        ax.set_xlabel("x")
    axes[0].set_ylabel("y")
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle("MAMLRegressor on held-out sine tasks")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run for the README demo")
    parser.add_argument("--meta-iterations", type=int, default=None)
    parser.add_argument("--eval-tasks", type=int, default=None)
    parser.add_argument("--k-shot", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    iterations = args.meta_iterations or (3000 if args.quick else 20000)
    n_eval = args.eval_tasks or (100 if args.quick else 600)
    k_shot, steps_list = args.k_shot, (0, 1, 10)
    name = "sinusoid_quick" if args.quick else "sinusoid"
    RESULTS.mkdir(exist_ok=True)

    maml = MAMLRegressor(
        hidden_layer_sizes=(40, 40),
        inner_lr=0.01,
        inner_steps=1,
        meta_lr=1e-3,
        meta_batch_size=25,
        max_iter=iterations,
        shots=k_shot,
        random_state=args.seed,
        verbose=1,
    )
    started = time.perf_counter()
    maml.fit(SinusoidTasks(n_samples=2 * k_shot))
    train_seconds = time.perf_counter() - started

    n_pretrain_tasks = 1000 if args.quick else 10000
    finetune = FineTuneRegressor(
        hidden_layer_sizes=(40, 40),
        lr=1e-3,
        max_epochs=50 if args.quick else 200,
        batch_size=128,
        n_sampled_tasks=n_pretrain_tasks,
        adapt_lr=0.01,
        adapt_optimizer="sgd",
        random_state=args.seed,
    )
    started = time.perf_counter()
    finetune.fit(SinusoidTasks(n_samples=2 * k_shot))
    pretrain_seconds = time.perf_counter() - started

    tasks, amplitude, phase = eval_tasks(k_shot, n_eval, seed=args.seed + 1)
    rows = []
    for steps in steps_list:
        mean, ci = mean_ci(adapted_mse(maml, tasks, steps))
        rows.append((f"MAML, {steps} adaptation step{'s' if steps != 1 else ''}", mean, ci))
    for steps in steps_list:
        mean, ci = mean_ci(adapted_mse(finetune, tasks, steps))
        plural = "s" if steps != 1 else ""
        rows.append((f"pretrain + fine-tune, {steps} fine-tuning step{plural}", mean, ci))
    mean, ci = mean_ci(scratch_mse(tasks, seed=args.seed))
    rows.append((f"same network from scratch on the {k_shot} points (Adam)", mean, ci))

    table = [
        f"K = {k_shot} support points, {N_QUERY} query points, {n_eval} held-out tasks",
        "",
        "| method | query MSE | 95% CI |",
        "|---|---|---|",
        *[f"| {method} | {mean:.3f} | ± {ci:.3f} |" for method, mean, ci in rows],
    ]
    settings = (
        f"meta-training: {iterations} iterations, meta-batch 25, inner lr 0.01, 1 inner step, "
        f"second order, Adam 1e-3, seed {args.seed}; took {train_seconds:.1f} s "
        f"({iterations * 25 / train_seconds:.0f} tasks/s) on {platform.processor() or 'cpu'} "
        f"with {torch.get_num_threads()} threads. Versions: torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, "
        f"Python {platform.python_version()}.\n\n"
        f"pretrain + fine-tune: {n_pretrain_tasks} tasks of {2 * k_shot} points pooled, "
        f"Adam 1e-3, batch 128, {finetune.n_iter_} epochs (early stopping on 10% held-out "
        f"tasks), took {pretrain_seconds:.1f} s; fine-tuning: SGD 0.01 on all layers."
    )
    report = "\n".join(
        [
            f"# Sinusoid regression ({'quick' if args.quick else 'full'} run)",
            "",
            *table,
            "",
            settings,
            "",
        ]
    )
    print("\n".join(table))
    print()
    print(settings)

    png = RESULTS / f"{name}.png"
    plot_tasks(maml, tasks[:3], amplitude[:3], phase[:3], steps=10, path=png)
    (RESULTS / f"{name}.md").write_text(report)
    print(f"\nwrote {RESULTS / f'{name}.md'} and {png}")


if __name__ == "__main__":
    main()
