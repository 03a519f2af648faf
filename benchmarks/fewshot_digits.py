"""Few-shot classification on rotated digits (an Omniglot-style benchmark, no download).

Meta-trains MAMLClassifier (second order and first order) on 5-way K-shot
tasks drawn from the 24 meta-train classes of skmeta.datasets.FewShotDigits
(digits 0, 1, 5, 6, 8, 9 at four rotations), then adapts to 5-way K-shot tasks
from the 16 held-out meta-test classes (digits 2, 3, 4, 7 at four rotations)
and reports the mean query accuracy (15 query images per class) with its 95%
confidence interval, next to the same network trained from scratch on each
task's support images, with the adaptation budget (3 SGD steps) and with Adam
for 500 epochs. K = 1 and K = 5, one meta-training per K and method. The
"pretrain + fine-tune" baseline (FineTuneClassifier) pretrains one network on
the 24 meta-train classes pooled and trains a new 5-unit head per task.

    python benchmarks/fewshot_digits.py --quick   # under 2 minutes
    python benchmarks/fewshot_digits.py           # the full run: 600 meta-test tasks

Prints a markdown table and writes it, the settings and the run time, and a
PNG of accuracy against adaptation steps under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import sklearn
import torch
from _stats import mean_ci  # benchmarks/ is on sys.path when a script runs
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from skmeta import FineTuneClassifier, MAMLClassifier
from skmeta.datasets import FewShotDigits

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).parent / "results"
N_WAY, N_QUERY = 5, 15
HIDDEN = (64, 64)
# Adaptation uses the step count meta-training optimised for: the init is tuned for it.
INNER_LR, INNER_STEPS, ADAPT_STEPS = 0.4, 3, 3
META_BATCH, META_LR = 16, 3e-3
CURVE_STEPS = (0, 1, 2, 3, 5, 10, 20)


def meta_train(k_shot: int, first_order: bool, iterations: int, seed: int):
    """A MAMLClassifier meta-trained on 5-way k-shot meta-train tasks, and its fit time."""
    maml = MAMLClassifier(
        hidden_layer_sizes=HIDDEN,
        inner_lr=INNER_LR,
        inner_steps=INNER_STEPS,
        adapt_steps=ADAPT_STEPS,
        first_order=first_order,
        meta_lr=META_LR,
        meta_batch_size=META_BATCH,
        max_iter=iterations,
        shots=k_shot,
        random_state=seed,
    )
    started = time.perf_counter()
    maml.fit(FewShotDigits(N_WAY, k_shot, N_QUERY, split="meta-train"))
    return maml, time.perf_counter() - started


def maml_accuracy(maml: MAMLClassifier, tasks, k_shot: int, steps: int) -> list[float]:
    """Query accuracy of each task after ``steps`` adaptation steps on its support set."""
    n_support = N_WAY * k_shot
    maml.set_params(adapt_steps=steps)
    accuracy = []
    for X, y in tasks:
        y_pred = maml.adapt(X[:n_support], y[:n_support]).predict(X[n_support:])
        accuracy.append(float(np.mean(y_pred == y[n_support:])))
    maml.set_params(adapt_steps=ADAPT_STEPS)
    return accuracy


def scratch_accuracy(tasks, k_shot: int, seed: int, *, same_budget: bool) -> list[float]:
    """Query accuracy of the same MLP trained from scratch on each support set.

    ``same_budget``: ADAPT_STEPS full-batch SGD steps at INNER_LR, what adapt
    gets; otherwise Adam for 500 epochs, a well-trained network.
    """
    n_support = N_WAY * k_shot
    if same_budget:
        solver = dict(solver="sgd", learning_rate_init=INNER_LR, momentum=0.0, shuffle=False)
        solver.update(batch_size=n_support, max_iter=ADAPT_STEPS)
    else:
        solver = dict(max_iter=500)
    accuracy = []
    for i, (X, y) in enumerate(tasks):
        net = MLPClassifier(hidden_layer_sizes=HIDDEN, random_state=seed + i, **solver)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            net.fit(X[:n_support], y[:n_support])
        accuracy.append(float(np.mean(net.predict(X[n_support:]) == y[n_support:])))
    return accuracy


# Pretrain + fine-tune (the "Baseline" of few-shot classification): one network
# pretrained on the 24 meta-train classes pooled, a new 5-unit head trained per task.
FINETUNE_LR, FINETUNE_STEPS, PRETRAIN_LR = 0.1, 100, 3e-3


def pretrain(n_tasks: int, max_epochs: int, seed: int):
    """A FineTuneClassifier pretrained on ``n_tasks`` pooled meta-train tasks, and its fit time.

    One network serves both K: pretraining sees every row of a task, whatever K.
    """
    finetune = FineTuneClassifier(
        hidden_layer_sizes=HIDDEN,
        lr=PRETRAIN_LR,
        n_sampled_tasks=n_tasks,
        max_epochs=max_epochs,
        adapt_lr=FINETUNE_LR,
        adapt_steps=FINETUNE_STEPS,
        adapt_layers="head",
        random_state=seed,
    )
    started = time.perf_counter()
    finetune.fit(FewShotDigits(N_WAY, 5, N_QUERY, split="meta-train"))
    return finetune, time.perf_counter() - started


def finetune_accuracy(finetune: FineTuneClassifier, tasks, k_shot: int) -> list[float]:
    """Query accuracy of each task after fine-tuning a new head on its support set."""
    n_support = N_WAY * k_shot
    accuracy = []
    for X, y in tasks:
        y_pred = finetune.adapt(X[:n_support], y[:n_support]).predict(X[n_support:])
        accuracy.append(float(np.mean(y_pred == y[n_support:])))
    return accuracy


def plot_curves(curves: dict, scratch: dict, same_budget: dict, path: Path) -> None:
    """Mean query accuracy against adaptation steps, one panel per K."""
    fig, axes = plt.subplots(1, len(scratch), figsize=(11, 3.8), sharey=True)
    for ax, k_shot in zip(np.atleast_1d(axes), sorted(scratch)):
        for color, (label, first_order) in zip(("C3", "C0"), (("MAML", False), ("FOMAML", True))):
            means, cis = zip(*curves[k_shot, first_order])
            means, cis = np.array(means), np.array(cis)
            ax.plot(CURVE_STEPS, means, "o-", color=color, label=label)
            ax.fill_between(CURVE_STEPS, means - cis, means + cis, color=color, alpha=0.2)
        ax.axhline(scratch[k_shot][0], color="k", ls="--", label="from scratch (Adam, 500 epochs)")
        ax.axhline(same_budget[k_shot][0], color="k", ls="-.", label="from scratch (same budget)")
        ax.axhline(1 / N_WAY, color="gray", ls=":", label="chance")
        ax.axvline(ADAPT_STEPS, color="gray", lw=0.5)
        ax.set_title(f"{N_WAY}-way {k_shot}-shot, meta-test classes")
        ax.set_xlabel("adaptation steps")
    np.atleast_1d(axes)[0].set_ylabel("query accuracy")
    np.atleast_1d(axes)[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run, under 2 minutes")
    parser.add_argument("--meta-iterations", type=int, default=None)
    parser.add_argument("--eval-tasks", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    iterations = args.meta_iterations or (150 if args.quick else 3000)
    n_eval = args.eval_tasks or (100 if args.quick else 600)
    name = "fewshot_digits_quick" if args.quick else "fewshot_digits"
    RESULTS.mkdir(exist_ok=True)
    run_started = time.perf_counter()

    accuracy, train_seconds, curves, scratch, same_budget = {}, {}, {}, {}, {}
    finetune, pretrain_seconds = pretrain(*((200, 20) if args.quick else (500, 100)), args.seed)
    print(f"pretraining: {pretrain_seconds:.1f} s, {finetune.n_iter_} epochs")
    finetuned = {}
    for k_shot in (1, 5):
        tasks = FewShotDigits(N_WAY, k_shot, N_QUERY, split="meta-test").sample(
            n_eval, random_state=args.seed + 1
        )
        for first_order in (False, True):
            maml, seconds = meta_train(k_shot, first_order, iterations, args.seed)
            train_seconds[k_shot, first_order] = seconds
            curves[k_shot, first_order] = [
                mean_ci(maml_accuracy(maml, tasks, k_shot, steps)) for steps in CURVE_STEPS
            ]
            accuracy[k_shot, first_order] = curves[k_shot, first_order][
                CURVE_STEPS.index(ADAPT_STEPS)
            ]
            print(f"{k_shot}-shot {'FOMAML' if first_order else 'MAML'}: {seconds:.1f} s")
        finetuned[k_shot] = mean_ci(finetune_accuracy(finetune, tasks, k_shot))
        scratch[k_shot] = mean_ci(scratch_accuracy(tasks, k_shot, args.seed, same_budget=False))
        same_budget[k_shot] = mean_ci(scratch_accuracy(tasks, k_shot, args.seed, same_budget=True))

    cell = lambda mean_and_ci: f"{100 * mean_and_ci[0]:.1f} ± {100 * mean_and_ci[1]:.1f} %"
    rows = [
        (
            f"MAML, second order ({ADAPT_STEPS} adaptation steps)",
            accuracy[1, False],
            accuracy[5, False],
            f"{train_seconds[1, False]:.0f} s / {train_seconds[5, False]:.0f} s",
        ),
        (
            f"MAML, first order ({ADAPT_STEPS} adaptation steps)",
            accuracy[1, True],
            accuracy[5, True],
            f"{train_seconds[1, True]:.0f} s / {train_seconds[5, True]:.0f} s",
        ),
        (
            f"pretrain + fine-tune a new head ({FINETUNE_STEPS} SGD steps)",
            finetuned[1],
            finetuned[5],
            f"{pretrain_seconds:.0f} s (one pretraining for both)",
        ),
        (
            f"same network from scratch, same budget ({ADAPT_STEPS} SGD steps)",
            same_budget[1],
            same_budget[5],
            "-",
        ),
        ("same network from scratch, Adam 500 epochs", scratch[1], scratch[5], "-"),
    ]
    table = [
        f"{N_WAY}-way, {N_QUERY} query images per class, {n_eval} meta-test tasks "
        "(16 held-out classes); mean query accuracy ± 95% CI",
        "",
        "| method | 1-shot | 5-shot | meta-training (1-shot / 5-shot) |",
        "|---|---|---|---|",
        *[
            f"| {method} | {cell(one)} | {cell(five)} | {time_} |"
            for method, one, five, time_ in rows
        ],
    ]
    total_seconds = time.perf_counter() - run_started
    settings = (
        f"meta-training: {iterations} iterations of {META_BATCH} tasks from the 24 meta-train "
        f"classes, MLP 64-{'-'.join(map(str, HIDDEN))}-{N_WAY}, inner lr {INNER_LR}, "
        f"{INNER_STEPS} inner steps, Adam {META_LR}, seed {args.seed}; {ADAPT_STEPS} adaptation "
        f"steps at test time. From scratch: MLPClassifier{HIDDEN}. "
        f"Whole run {total_seconds:.0f} s on {platform.processor() or 'cpu'} with "
        f"{torch.get_num_threads()} threads. Versions: torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, "
        f"Python {platform.python_version()}."
    )
    settings += (
        f" Pretrain + fine-tune: {finetune.n_sampled_tasks} meta-train tasks pooled "
        f"({len(finetune.pretrain_classes_)} classes), Adam {PRETRAIN_LR}, batch "
        f"{finetune.batch_size}, {finetune.n_iter_} epochs (at most {finetune.max_epochs}; "
        "early stopping on 10% held-out tasks); per task a zero-initialised "
        f"{N_WAY}-unit head, {FINETUNE_STEPS} full-batch "
        f"SGD steps at lr {FINETUNE_LR}, the rest of the network frozen."
    )
    report = "\n".join(
        [
            f"# Few-shot rotated digits ({'quick' if args.quick else 'full'} run)",
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
    plot_curves(curves, scratch, same_budget, png)
    (RESULTS / f"{name}.md").write_text(report)
    print(f"\nwrote {RESULTS / f'{name}.md'} and {png}")


if __name__ == "__main__":
    main()
