"""Sinusoid regression of the MAML paper (Finn et al., 2017, section 5.1).

Sine tasks (amplitude U[0.1, 5], phase U[0, pi], x U[-5, 5]); MLP 1-40-40-1
ReLU; meta-batch 25; one inner SGD step at 0.01 during meta-training; Adam
1e-3. As in the paper, one model is meta-trained per K, on tasks of K support
and K query points. Each model is then evaluated on fresh tasks with K
support and 100 query points: query MSE with 95% confidence intervals after
0 to 10 SGD steps at 0.01 from its initialisation, for

* second-order MAML (``MAMLRegressor``),
* first-order MAML (``MAMLRegressor(first_order=True)``),
* pretrain + fine-tune: one network trained on the pooled points of many
  tasks (``FineTuneRegressor``), fine-tuned with the same SGD steps,
* the same network trained from scratch on the K support points (Adam).

Every method is evaluated by the same vectorised code (all held-out tasks
adapted at once with ``skmeta._functional``); a check against the
estimators' own ``adapt``/``predict`` guards that shortcut.

    python benchmarks/sinusoid.py --quick     # the README demo: K=10, under 2 minutes
    python benchmarks/sinusoid.py             # the paper's settings: 70,000 meta-iterations

Independent models train in parallel (joblib, ``--jobs`` processes with one
torch thread each). Writes a markdown report (settings, versions, seed, run
times, the table with the paper's numbers beside ours) and a PNG under
benchmarks/results/ (``sinusoid.*``, or ``sinusoid_quick.*`` with --quick).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import joblib
import matplotlib
import numpy as np
import sklearn
import torch
from _stats import mean_ci  # benchmarks/ is on sys.path when a script runs
from joblib import Parallel, delayed
from torch.func import stack_module_state, vmap

from skmeta import FineTuneRegressor, MAMLRegressor
from skmeta import _functional as fn
from skmeta._modules import MLP
from skmeta.datasets import SinusoidTasks

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).parent / "results"
N_QUERY = 100
INNER_LR = 0.01
MAX_STEPS = 10
REPORTED_STEPS = (0, 1, 5, 10)
HIDDEN = (40, 40)
# From scratch: full-batch Adam on the K support points from a fresh initialisation.
SCRATCH_LR, SCRATCH_STEPS = 1e-2, 1000

# Reference values from the MAML paper (Finn et al., 2017, Table 2 / Figure 2), K = 5:
# query MSE after 1 and 10 gradient steps. The only numbers typed in by hand.
PAPER = {
    (5, "MAML (second order)"): {1: 0.67, 10: 0.35},
    (5, "pretrain + fine-tune"): {1: 2.41, 10: 2.19},
}

METHODS = ("MAML (second order)", "MAML (first order)", "pretrain + fine-tune")


# ---------------------------------------------------------------- training
def train_maml(k_shot: int, first_order: bool, iterations: int, seed: int):
    """Meta-train one MAMLRegressor on K-shot tasks (K support + K query points)."""
    torch.set_num_threads(1)
    maml = MAMLRegressor(
        hidden_layer_sizes=HIDDEN,
        inner_lr=INNER_LR,
        inner_steps=1,
        first_order=first_order,
        meta_lr=1e-3,
        meta_batch_size=25,
        max_iter=iterations,
        shots=k_shot,
        random_state=seed,
    )
    started = time.perf_counter()
    maml.fit(SinusoidTasks(n_samples=2 * k_shot))
    return maml, time.perf_counter() - started


def train_pretrained(n_tasks: int, n_samples: int, max_epochs: int, seed: int):
    """One network regressing the pooled points of many sine tasks (the paper's baseline)."""
    torch.set_num_threads(1)
    pretrained = FineTuneRegressor(
        hidden_layer_sizes=HIDDEN,
        lr=1e-3,
        max_epochs=max_epochs,
        batch_size=128,
        n_sampled_tasks=n_tasks,
        adapt_lr=INNER_LR,
        adapt_optimizer="sgd",
        random_state=seed,
    )
    started = time.perf_counter()
    pretrained.fit(SinusoidTasks(n_samples=n_samples))
    return pretrained, time.perf_counter() - started


# ---------------------------------------------------------------- evaluation
def eval_tasks(k_shot: int, n_tasks: int, seed: int) -> dict:
    """Fresh tasks with K support and N_QUERY query points, as stacked tensors."""
    family = SinusoidTasks(n_samples=k_shot + N_QUERY)
    tasks, amplitude, phase = family.sample(n_tasks, random_state=seed, return_functions=True)
    X = torch.from_numpy(np.stack([X for X, _ in tasks]))
    y = torch.from_numpy(np.stack([y for _, y in tasks]))
    return {
        "X_support": X[:, :k_shot],
        "y_support": y[:, :k_shot],
        "X_query": X[:, k_shot:],
        "y_query": y[:, k_shot:],
        "amplitude": amplitude,
        "phase": phase,
    }


def initial_params(estimator) -> dict:
    """The parameters adaptation starts from: meta-learned or pretrained."""
    return {name: p.detach() for name, p in estimator.module_.named_parameters()}


def adapted_predictions(module, params, tasks: dict, steps: int, X: torch.Tensor) -> torch.Tensor:
    """Predictions at ``X[t]`` after ``steps`` SGD steps on task t's support set, all tasks at once.

    Plain SGD at INNER_LR on all parameters: the adaptation of MAMLRegressor
    and of FineTuneRegressor(adapt_optimizer="sgd"), so one function serves both.
    """
    X_s, y_s = tasks["X_support"], tasks["y_support"]
    w_s = torch.ones_like(y_s)
    settings = fn.InnerLoop(INNER_LR, steps, first_order=True)
    with torch.no_grad():
        adapted = fn.adapt_batch(module, fn.weighted_mse, params, {}, X_s, y_s, w_s, settings)
        return fn.predict_batch(module, adapted, {}, X).squeeze(-1)


def adaptation_curve(estimator, tasks: dict) -> np.ndarray:
    """Query MSE of every task after 0..MAX_STEPS adaptation steps, shape (n_tasks, steps + 1)."""
    module, params = estimator.module_.eval(), initial_params(estimator)
    curve = [
        ((adapted_predictions(module, params, tasks, s, tasks["X_query"]) - tasks["y_query"]) ** 2)
        .mean(dim=1)
        .numpy()
        for s in range(MAX_STEPS + 1)
    ]
    return np.stack(curve, axis=1)


def check_against_estimator(estimator, tasks: dict, steps: int, n_tasks: int = 5) -> None:
    """The vectorised shortcut must predict what the estimator's own adapt/predict does."""
    ours = adapted_predictions(
        estimator.module_.eval(), initial_params(estimator), tasks, steps, tasks["X_query"]
    )
    estimator.set_params(adapt_steps=steps)
    for t in range(n_tasks):
        X_s, y_s = tasks["X_support"][t].numpy(), tasks["y_support"][t].numpy()
        theirs = estimator.adapt(X_s, y_s).predict(tasks["X_query"][t].numpy())
        np.testing.assert_allclose(ours[t].numpy(), theirs, rtol=1e-4, atol=1e-4)


def scratch_mse(tasks: dict, seed: int) -> np.ndarray:
    """Query MSE of a fresh 1-40-40-1 network per task, trained with Adam on its support set."""
    n_tasks = tasks["X_support"].shape[0]
    torch.manual_seed(seed)
    nets = [MLP(1, 1, HIDDEN) for _ in range(n_tasks)]
    params, _ = stack_module_state(nets)
    module = nets[0].eval()
    X_s, y_s = tasks["X_support"], tasks["y_support"]
    settings = fn.FineTune(SCRATCH_LR, SCRATCH_STEPS, optimizer="adam")

    def one_task(params_t, X_t, y_t):
        w_t = torch.ones_like(y_t)
        return fn.fine_tune(module, fn.weighted_mse, params_t, {}, X_t, y_t, w_t, settings)

    with torch.no_grad():
        trained = vmap(one_task)(params, X_s, y_s)
        outputs = fn.predict_batch(module, trained, {}, tasks["X_query"]).squeeze(-1)
    return ((outputs - tasks["y_query"]) ** 2).mean(dim=1).numpy()


# ---------------------------------------------------------------- report
def results_table(curves: dict, scratch: dict, ks, n_eval: int) -> list[str]:
    lines = [
        f"Query MSE (mean ± 95% CI over {n_eval} held-out tasks, {N_QUERY} query points each) "
        f"after n SGD steps at {INNER_LR} on the K support points. "
        "Paper: the MAML paper's reported values (Finn et al., 2017, Table 2 / Figure 2).",
        "",
        "| K | method | 0 steps | 1 step | 5 steps | 10 steps | paper, 1 step | paper, 10 steps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k in ks:
        for method in METHODS:
            cells = [
                "{:.3f} ± {:.3f}".format(*mean_ci(curves[k, method][:, s])) for s in REPORTED_STEPS
            ]
            paper = PAPER.get((k, method), {})
            refs = [f"{paper[s]:.2f}" if s in paper else "" for s in (1, 10)]
            lines.append(f"| {k} | {method} | " + " | ".join(cells + refs) + " |")
        mean, ci = mean_ci(scratch[k])
        lines.append(
            f"| {k} | from scratch on the K points ({SCRATCH_STEPS} Adam steps at {SCRATCH_LR}) "
            f"| | | | {mean:.3f} ± {ci:.3f} | | |"
        )
    return lines


def verdict(curves: dict, ks) -> list[str]:
    """Whether our MAML reaches the paper's figures (its value within or below our CI)."""
    lines = []
    for (k, method), reference in PAPER.items():
        if k not in ks or not method.startswith("MAML"):
            continue
        for steps, value in reference.items():
            mean, ci = mean_ci(curves[k, method][:, steps])
            reached = mean - ci <= value
            lines.append(
                f"- K={k}, {method}, {steps} step{'s' if steps != 1 else ''}: ours "
                f"{mean:.3f} ± {ci:.3f}, paper {value:.2f}: "
                + (
                    "reached (paper's value at or above our CI's lower end)."
                    if reached
                    else "NOT reached: our CI lies above the paper's value."
                )
            )
    return lines


def plot(curves, scratch, ks, examples, path: Path) -> None:
    """(a) MSE vs adaptation steps per method and K; (b) a few tasks before/after adaptation."""
    fig = plt.figure(figsize=(4.3 * max(len(ks), 3), 10))
    grid = fig.add_gridspec(3, max(len(ks), 3), height_ratios=(1.2, 1, 1))
    steps = np.arange(MAX_STEPS + 1)
    for col, k in enumerate(ks):
        ax = fig.add_subplot(grid[0, col])
        for i, method in enumerate(METHODS):
            means, cis = zip(*(mean_ci(curves[k, method][:, s]) for s in steps))
            means, cis = np.array(means), np.array(cis)
            ax.plot(steps, means, f"C{i}-o", ms=3, label=method)
            ax.fill_between(steps, means - cis, means + cis, color=f"C{i}", alpha=0.2)
            paper = PAPER.get((k, method))
            if paper:
                ax.plot(
                    list(paper),
                    list(paper.values()),
                    f"C{i}x",
                    ms=9,
                    mew=2,
                    label=f"{method}, paper",
                )
        ax.axhline(mean_ci(scratch[k])[0], color="C3", ls="--", label="from scratch (Adam)")
        ax.set_yscale("log")
        ax.set_xlabel("adaptation steps (SGD, lr 0.01)")
        ax.set_title(f"(a) K = {k}")
        if col == 0:
            ax.set_ylabel("query MSE")
            ax.legend(fontsize=7)
    k, tasks, estimators = examples
    x_grid = torch.linspace(-5, 5, 200).reshape(1, -1, 1)
    for row, method in enumerate(("MAML (second order)", "pretrain + fine-tune"), start=1):
        estimator = estimators[method]
        module, params = estimator.module_.eval(), initial_params(estimator)
        for col in range(grid.ncols):
            ax = fig.add_subplot(grid[row, col])
            one = {name: value[col : col + 1] for name, value in tasks.items()}
            X_grid = x_grid.expand(1, -1, -1)
            before = adapted_predictions(module, params, one, 0, X_grid)[0]
            after = adapted_predictions(module, params, one, MAX_STEPS, X_grid)[0]
            xs = x_grid[0, :, 0].numpy()
            truth = SinusoidTasks.evaluate(
                xs[:, None], tasks["amplitude"][col], tasks["phase"][col]
            )
            ax.plot(xs, truth, "k-", label="ground truth")
            ax.plot(xs, before.numpy(), "C0--", label="before adaptation")
            ax.plot(xs, after.numpy(), "C3-", label=f"after {MAX_STEPS} steps")
            ax.plot(one["X_support"][0, :, 0], one["y_support"][0], "k^", label="support points")
            ax.set_title(f"(b) {method}, K = {k}, task {col + 1}", fontsize=9)
            if col == 0:
                ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------- main
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short K=10 run for the README demo")
    parser.add_argument("--meta-iterations", type=int, default=None)
    parser.add_argument("--eval-tasks", type=int, default=None)
    parser.add_argument("--k-shot", type=int, nargs="+", default=None)
    parser.add_argument("--jobs", type=int, default=2, help="parallel training processes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    iterations = args.meta_iterations or (2000 if args.quick else 70000)
    n_eval = args.eval_tasks or (200 if args.quick else 600)
    ks = tuple(args.k_shot or ((10,) if args.quick else (5, 10, 20)))
    n_pretrain_tasks, pretrain_epochs = (1000, 50) if args.quick else (10000, 200)
    name = "sinusoid_quick" if args.quick else "sinusoid"
    RESULTS.mkdir(exist_ok=True)
    torch.set_num_threads(1)
    started_all = time.perf_counter()

    # Longest jobs first, so the two workers finish together.
    jobs = [(k, False) for k in ks] + [(k, True) for k in ks]
    print(
        f"training {len(jobs)} MAML models ({iterations} meta-iterations) and the pretrained "
        f"baseline on {args.jobs} processes...",
        flush=True,
    )
    trained = Parallel(n_jobs=args.jobs, verbose=10)(
        [delayed(train_maml)(k, fo, iterations, args.seed) for k, fo in jobs]
        + [delayed(train_pretrained)(n_pretrain_tasks, 20, pretrain_epochs, args.seed)]
    )
    *maml_runs, (pretrained, pretrain_seconds) = trained
    models, seconds = {}, {}
    for (k, first_order), (maml, took) in zip(jobs, maml_runs):
        method = METHODS[1] if first_order else METHODS[0]
        models[k, method], seconds[k, method] = maml, took
        models[k, METHODS[2]] = pretrained
    train_wall = time.perf_counter() - started_all

    started = time.perf_counter()
    curves, scratch, eval_sets = {}, {}, {}
    for k in ks:
        tasks = eval_tasks(k, n_eval, seed=args.seed + 1000 + k)
        eval_sets[k] = tasks
        for method in METHODS:
            check_against_estimator(models[k, method], tasks, steps=MAX_STEPS)
            curves[k, method] = adaptation_curve(models[k, method], tasks)
        scratch[k] = scratch_mse(tasks, seed=args.seed)
    eval_seconds = time.perf_counter() - started

    k_plot = 5 if 5 in ks else ks[0]
    examples = (
        k_plot,
        {name_: value[:3] for name_, value in eval_sets[k_plot].items()},
        {method: models[k_plot, method] for method in METHODS},
    )
    png = RESULTS / f"{name}.png"
    plot(curves, scratch, ks, examples, png)
    total = time.perf_counter() - started_all

    table = results_table(curves, scratch, ks, n_eval)
    checks = verdict(curves, ks)
    timing = [
        f"- MAML, K={k}, {method.split('(')[1].rstrip(')')}: {seconds[k, method]:.0f} s "
        f"({iterations * 25 / seconds[k, method]:.0f} tasks/s)"
        for k, method in seconds
    ]
    loss_tail = [
        f"- {method}, K={k}: mean meta-loss over the last 1000 iterations "
        f"{np.mean(models[k, method].loss_curve_[-1000:]):.3f}"
        for k, method in seconds
    ]
    report = [
        f"# Sinusoid regression ({'quick' if args.quick else 'full'} run)",
        "",
        "Generated by `python benchmarks/sinusoid.py"
        + (" --quick" if args.quick else "")
        + "`; nothing in this file is typed by hand except the paper's reference values.",
        "",
        *table,
        "",
        *(["Against the paper:", "", *checks, ""] if checks else []),
        "## Settings",
        "",
        "- Tasks: amplitude U[0.1, 5], phase U[0, π], x U[-5, 5]. Network 1-40-40-1 ReLU.",
        f"- MAML: one model per K and per order, meta-trained on tasks of K support + K query "
        f"points; {iterations} meta-iterations, meta-batch 25, 1 inner SGD step at {INNER_LR}, "
        "Adam 1e-3.",
        f"- Pretrain + fine-tune: one network (shared by all K) trained by FineTuneRegressor on "
        f"the pooled points of {n_pretrain_tasks} tasks of 20 points, Adam 1e-3, batch 128, "
        f"{pretrained.n_iter_} epochs (at most {pretrain_epochs}, early stopping on 10% "
        "held-out tasks); fine-tuned with the same SGD steps at 0.01 on all layers.",
        f"- From scratch: a freshly initialised 1-40-40-1 network per task, {SCRATCH_STEPS} "
        f"full-batch Adam steps at {SCRATCH_LR} on the K support points.",
        f"- Evaluation: {n_eval} fresh tasks per K (seed {args.seed} + 1000 + K), K support and "
        f"{N_QUERY} query points; all tasks adapted at once (vmap over tasks), checked against "
        "the estimators' own adapt/predict on 5 tasks.",
        f"- Seed {args.seed} for every model.",
        "",
        "## Run times",
        "",
        f"Training: {len(jobs) + 1} models on {args.jobs} processes with 1 torch thread each, "
        f"{train_wall:.0f} s wall clock. Evaluation: {eval_seconds:.0f} s. Total "
        f"{total:.0f} s.",
        "",
        *timing,
        f"- pretrained network: {pretrain_seconds:.0f} s",
        "",
        "Final meta-losses:",
        "",
        *loss_tail,
        "",
        "## Environment",
        "",
        f"{platform.platform()}, {platform.processor() or 'cpu'}, {joblib.cpu_count()} CPUs. "
        f"Python {platform.python_version()}, torch {torch.__version__}, scikit-learn "
        f"{sklearn.__version__}, numpy {np.__version__}, joblib {joblib.__version__}.",
        "",
        f"![sinusoid]({png.name})",
        "",
    ]
    (RESULTS / f"{name}.md").write_text("\n".join(report))
    print("\n".join(table + [""] + checks))
    print(f"\ntook {total:.0f} s; wrote {RESULTS / f'{name}.md'} and {png}")


if __name__ == "__main__":
    main()
