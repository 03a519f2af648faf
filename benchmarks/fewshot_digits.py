"""Few-shot classification on rotated digits (an Omniglot-style benchmark, no download).

Meta-trains the few-shot classifiers of skmeta on 5-way K-shot tasks drawn
from the 24 meta-train classes of skmeta.datasets.FewShotDigits (digits 0, 1,
5, 6, 8, 9 at four rotations), then adapts them to 5-way K-shot tasks from
the 16 held-out meta-test classes (digits 2, 3, 4, 7 at four rotations) and
reports the mean query accuracy (15 query images per class) with its 95%
confidence interval and the meta-training time. K = 1 and K = 5, one
meta-training per K and method:

* MAMLClassifier, second and first order, and its options: ANIL
  (``adapt_params="head"``), Meta-SGD (``learn_inner_lr="per-parameter"``)
  and MAML++'s LSLR + multi-step loss (``learn_inner_lr="per-layer-per-step",
  multi_step_loss=True``), all with MAML's settings (inner lr 0.4, 3 inner
  steps, meta-batch 16, Adam 3e-3, MLP 64-64);
* ReptileClassifier and ProtoNetClassifier, with settings chosen by
  ``--tune``: short runs of a small grid (TUNING_GRID) meta-trained on four
  of the six meta-train digits and scored on tasks of the other two, held
  out; it writes results/fewshot_digits_tuning.md (``--tune --methods
  maml-defaults`` measures MAMLClassifier's default ``inner_lr`` the same
  way, every other parameter at its default, and writes
  results/fewshot_digits_tuning_maml-defaults.md);
* pretrain + fine-tune (FineTuneClassifier: one network pretrained on the 24
  meta-train classes pooled, a new 5-unit head trained per task);
* the same network trained from scratch on each task's support images, with
  the adaptation budget (3 SGD steps) and with Adam for 500 epochs.

Every skmeta estimator is evaluated through its own adaptation and
prediction code, all tasks at once (the vectorised path its few-shot
``score`` uses, given this script's support/query split), checked against
its per-task ``adapt``/``predict_proba`` on a few tasks.

    python benchmarks/fewshot_digits.py --quick   # about 2 minutes
    python benchmarks/fewshot_digits.py           # the full run: 600 meta-test tasks
    python benchmarks/fewshot_digits.py --methods maml protonet   # a subset
    python benchmarks/fewshot_digits.py --tune    # choose Reptile's and ProtoNet's settings
    python benchmarks/fewshot_digits.py --tune --methods maml-defaults  # MAMLClassifier's inner_lr

Prints a markdown table and writes it, the settings and the run times, and a
PNG of accuracy against adaptation steps under benchmarks/results/
(fewshot_digits.*, fewshot_digits_quick.* with --quick; a run with --methods
writes *_subset.* instead, leaving the full reports alone). --quick
meta-trains 150 iterations instead of 3000, evaluates 100 meta-test tasks
instead of 600 and pretrains the fine-tune baseline on fewer tasks and epochs.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import sklearn
import torch
from _stats import mean_ci  # benchmarks/ is on sys.path when a script runs
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.utils import check_random_state

from skmeta import FineTuneClassifier, MAMLClassifier, ProtoNetClassifier, ReptileClassifier
from skmeta._tasks import MetaBatch
from skmeta.datasets import FewShotDigits, load_rotated_digits

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).parent / "results"
N_WAY, N_QUERY = 5, 15
K_SHOTS = (1, 5)
HIDDEN = (64, 64)
# Adaptation uses the step count meta-training optimised for: the init is tuned for it.
INNER_LR, INNER_STEPS, ADAPT_STEPS = 0.4, 3, 3
META_BATCH, META_LR = 16, 3e-3
CURVE_STEPS = (0, 1, 2, 3, 5, 10, 20)
CHECKED_TASKS = 5  # tasks on which the vectorised evaluation is checked against adapt/predict

# Reptile and ProtoNet: the settings --tune picked (see TUNING_GRID and the tuning report).
REPTILE = dict(inner_optimizer="sgd", inner_lr=0.1, inner_steps=10, outer_step_size=0.5)
PROTONET = dict(meta_lr=1e-2, meta_batch_size=16)

# Pretrain + fine-tune (the "Baseline" of few-shot classification): one network
# pretrained on the 24 meta-train classes pooled, a new 5-unit head trained per task.
FINETUNE_LR, FINETUNE_STEPS, PRETRAIN_LR = 0.1, 100, 3e-3


# ---------------------------------------------------------------- methods
@dataclass(frozen=True)
class Method:
    """A meta-learned method: its table label, estimator factory and plot colour."""

    label: str
    make: object  # (k_shot, iterations, seed) -> unfitted estimator
    color: str
    adapts_by_steps: bool = True  # False: no gradient steps (prototypes)


def maml(k_shot: int, iterations: int, seed: int, **options) -> MAMLClassifier:
    """A MAMLClassifier with the benchmark's MAML settings and the given options."""
    return MAMLClassifier(
        hidden_layer_sizes=HIDDEN,
        n_way=N_WAY,
        inner_lr=INNER_LR,
        inner_steps=INNER_STEPS,
        adapt_steps=ADAPT_STEPS,
        meta_lr=META_LR,
        meta_batch_size=META_BATCH,
        max_iter=iterations,
        shots=k_shot,
        random_state=seed,
        **options,
    )


def reptile(k_shot: int, iterations: int, seed: int, **settings) -> ReptileClassifier:
    return ReptileClassifier(
        hidden_layer_sizes=HIDDEN,
        n_way=N_WAY,
        meta_batch_size=META_BATCH,
        max_iter=iterations,
        shots=k_shot,
        random_state=seed,
        **(settings or REPTILE),
    )


def protonet(k_shot: int, iterations: int, seed: int, **settings) -> ProtoNetClassifier:
    return ProtoNetClassifier(
        hidden_layer_sizes=HIDDEN,
        embedding_size=64,
        max_iter=iterations,
        shots=k_shot,
        random_state=seed,
        **(settings or PROTONET),
    )


def maml_defaults(k_shot: int, iterations: int, seed: int, **settings) -> MAMLClassifier:
    """A MAMLClassifier with every parameter at its default but those given (for --tune)."""
    return MAMLClassifier(
        n_way=N_WAY, shots=k_shot, max_iter=iterations, random_state=seed, **settings
    )


def _reptile_label() -> str:
    steps = REPTILE["inner_steps"]
    return (
        f"Reptile ({REPTILE['inner_optimizer'].upper()} lr {REPTILE['inner_lr']}, "
        f"{steps} inner and adaptation steps)"
    )


METHODS = {
    "maml": Method(
        f"MAML, second order ({ADAPT_STEPS} adaptation steps)",
        lambda k, n, s: maml(k, n, s),
        "C3",
    ),
    "fomaml": Method(
        f"MAML, first order ({ADAPT_STEPS} adaptation steps)",
        lambda k, n, s: maml(k, n, s, first_order=True),
        "C0",
    ),
    "anil": Method(
        f"ANIL: MAML adapting the head only ({ADAPT_STEPS} steps)",
        lambda k, n, s: maml(k, n, s, adapt_params="head"),
        "C1",
    ),
    "meta-sgd": Method(
        f"Meta-SGD: learned per-parameter inner lr ({ADAPT_STEPS} steps)",
        lambda k, n, s: maml(k, n, s, learn_inner_lr="per-parameter"),
        "C2",
    ),
    "maml++": Method(
        f"MAML++: LSLR + multi-step loss ({ADAPT_STEPS} steps)",
        lambda k, n, s: maml(k, n, s, learn_inner_lr="per-layer-per-step", multi_step_loss=True),
        "C4",
    ),
    "reptile": Method(_reptile_label(), lambda k, n, s: reptile(k, n, s), "C5"),
    "protonet": Method(
        "ProtoNet: nearest prototype (no gradient step)",
        lambda k, n, s: protonet(k, n, s),
        "C6",
        adapts_by_steps=False,
    ),
}
BASELINES = ("finetune", "scratch")


def meta_train(method: str, k_shot: int, iterations: int, seed: int):
    """A method's estimator meta-trained on 5-way k-shot meta-train tasks, and its fit time."""
    estimator = METHODS[method].make(k_shot, iterations, seed)
    started = time.perf_counter()
    estimator.fit(FewShotDigits(N_WAY, k_shot, N_QUERY, split="meta-train"))
    return estimator, time.perf_counter() - started


# ---------------------------------------------------------------- evaluation
def episodes(tasks, k_shot: int) -> MetaBatch:
    """The tasks as one batch split like FewShotDigits: the first N_WAY * k_shot rows support.

    Labels become task-local codes ``0..N_WAY - 1`` in sorted label order,
    the coding ``adapt`` uses.
    """
    n_support = N_WAY * k_shot
    X = np.stack([X for X, _ in tasks]).astype(np.float32)
    codes = []
    for _, y in tasks:
        classes = np.unique(y[:n_support])
        if len(classes) != N_WAY or not np.isin(y[n_support:], classes).all():
            raise ValueError("a task's support rows must hold every one of its classes")
        codes.append(np.searchsorted(classes, y))
    y = torch.from_numpy(np.stack(codes).astype(np.int64))
    X = torch.from_numpy(X)
    w = torch.ones(y.shape, dtype=X.dtype)
    return MetaBatch(
        X[:, :n_support], y[:, :n_support], w[:, :n_support],
        X[:, n_support:], y[:, n_support:], w[:, n_support:],
    )  # fmt: skip


def adapted_logits(estimator, batch: MetaBatch, steps: int | None = None) -> torch.Tensor:
    """Query logits of every task after the estimator's adaptation on its support rows.

    All tasks at once, through the estimator's own algorithm (the vectorised
    path of its few-shot ``score``); ``steps`` overrides ``adapt_steps``.
    """
    previous = estimator.get_params()["adapt_steps"] if steps is not None else None
    if steps is not None:
        estimator.set_params(adapt_steps=steps)
    try:
        algorithm = estimator._algorithm(n_classes=N_WAY)
        return estimator._adapted_query_outputs(algorithm, batch)[..., :N_WAY]
    finally:
        if steps is not None:
            estimator.set_params(adapt_steps=previous)


def accuracies(estimator, batch: MetaBatch, steps: int | None = None) -> np.ndarray:
    """Query accuracy of every task (see :func:`adapted_logits`)."""
    logits = adapted_logits(estimator, batch, steps)
    return (logits.argmax(dim=-1) == batch.y_query).double().mean(dim=1).numpy()


def check_against_estimator(estimator, tasks, k_shot: int, steps: int | None = None) -> None:
    """The batched evaluation must give what the estimator's own adapt/predict_proba gives."""
    n_support = N_WAY * k_shot
    batch = episodes(tasks[:CHECKED_TASKS], k_shot)
    ours = torch.softmax(adapted_logits(estimator, batch, steps).double(), dim=-1).numpy()
    previous = estimator.get_params().get("adapt_steps")
    if steps is not None:
        estimator.set_params(adapt_steps=steps)
    try:
        for t, (X, y) in enumerate(tasks[:CHECKED_TASKS]):
            theirs = estimator.adapt(X[:n_support], y[:n_support]).predict_proba(X[n_support:])
            np.testing.assert_allclose(ours[t], theirs, rtol=1e-4, atol=1e-5)
    finally:
        if steps is not None:
            estimator.set_params(adapt_steps=previous)


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


# ---------------------------------------------------------------- tuning
# Short runs for Reptile's and ProtoNet's settings (MAML's family keeps MAML's), and for
# MAMLClassifier's default inner_lr ("maml-defaults": everything else at its default,
# max_iter included), validated on classes held out of meta-training: the meta-train
# digits split in two.
TUNE_TRAIN_DIGITS, TUNE_VALIDATION_DIGITS = (0, 1, 6, 9), (5, 8)
TUNE_ITERATIONS = {"reptile": 300, "protonet": 300, "maml-defaults": 1000}
TUNE_TASKS = 200
TUNING_GRID = {
    "reptile": [
        dict(inner_optimizer="sgd", inner_lr=0.4, inner_steps=3, outer_step_size=0.1),
        dict(inner_optimizer="sgd", inner_lr=0.4, inner_steps=3, outer_step_size=1.0),
        dict(inner_optimizer="sgd", inner_lr=0.1, inner_steps=10, outer_step_size=1.0),
        dict(inner_optimizer="sgd", inner_lr=0.1, inner_steps=10, outer_step_size=0.5),
        dict(inner_optimizer="sgd", inner_lr=0.2, inner_steps=10, outer_step_size=1.0),
        dict(inner_optimizer="sgd", inner_lr=0.4, inner_steps=10, outer_step_size=1.0),
        dict(inner_optimizer="adam", inner_lr=1e-3, inner_steps=10, outer_step_size=1.0),
        dict(inner_optimizer="adam", inner_lr=1e-2, inner_steps=5, outer_step_size=1.0),
    ],
    "protonet": [
        dict(meta_lr=3e-4, meta_batch_size=16),
        dict(meta_lr=1e-3, meta_batch_size=16),
        dict(meta_lr=3e-3, meta_batch_size=16),
        dict(meta_lr=1e-2, meta_batch_size=16),
        dict(meta_lr=1e-3, meta_batch_size=4),
    ],
    "maml-defaults": [dict(inner_lr=lr) for lr in (0.01, 0.1, 0.4, 1.0)],
}
CHOSEN = {
    "reptile": REPTILE,
    "protonet": PROTONET,
    "maml-defaults": {"inner_lr": MAMLClassifier().inner_lr},
}
MAKERS = {"reptile": reptile, "protonet": protonet, "maml-defaults": maml_defaults}
TUNED_SEPARATELY = ("maml-defaults",)  # not in a plain --tune run; not a benchmark method


class DigitTasks:
    """5-way k-shot tasks from some of the rotated digits, laid out as FewShotDigits lays
    them out (support rows first); a task sampler for ``fit``."""

    def __init__(self, digits, k_shot: int):
        X, y = load_rotated_digits("meta-train")
        keep = np.isin(y // 4, digits)  # class = 4 * digit + rotation
        self.X, self.y, self.k_shot = X[keep], y[keep], k_shot
        self.rows = {c: np.flatnonzero(self.y == c) for c in np.unique(self.y)}

    def sample(self, n_tasks: int, random_state=None):
        rng = check_random_state(random_state)
        tasks = []
        for _ in range(n_tasks):
            chosen = rng.choice(sorted(self.rows), N_WAY, replace=False)
            picks = [rng.choice(self.rows[c], self.k_shot + N_QUERY, replace=False) for c in chosen]
            support = rng.permutation(np.concatenate([p[: self.k_shot] for p in picks]))
            query = rng.permutation(np.concatenate([p[self.k_shot :] for p in picks]))
            rows = np.concatenate([support, query])
            tasks.append((self.X[rows], self.y[rows]))
        return tasks


def tune(args) -> None:
    """Short runs of every TUNING_GRID setting, scored on held-out meta-train classes.

    Each setting is meta-trained on tasks of the meta-train digits
    TUNE_TRAIN_DIGITS and validated on tasks of the other meta-train digits,
    TUNE_VALIDATION_DIGITS, which it never saw; the setting with the best mean
    validation accuracy over 1-shot and 5-shot is the best. The meta-test
    score is printed for information only and is not used for the choice.
    """
    n_eval = args.eval_tasks or TUNE_TASKS
    started_all = time.perf_counter()
    validation, test = {}, {}
    for k in K_SHOTS:
        validation[k] = episodes(
            DigitTasks(TUNE_VALIDATION_DIGITS, k).sample(n_eval, random_state=args.seed + 1000),
            k,
        )
        test[k] = episodes(
            FewShotDigits(N_WAY, k, N_QUERY, split="meta-test").sample(
                n_eval, random_state=args.seed + 1
            ),
            k,
        )
    digits = lambda ds: ", ".join(map(str, ds))
    lines = [
        f"# Few-shot rotated digits: choosing the settings of {', '.join(args.methods)} (`--tune`)",
        "",
        f"Runs of the meta-iterations given per method below, per setting and K (seed "
        f"{args.seed}), 5-way, meta-trained on the meta-train digits {digits(TUNE_TRAIN_DIGITS)} "
        f"({4 * len(TUNE_TRAIN_DIGITS)} classes) only. Validation: {n_eval} 5-way tasks "
        f"of the other meta-train digits, {digits(TUNE_VALIDATION_DIGITS)} "
        f"({4 * len(TUNE_VALIDATION_DIGITS)} classes, never seen in these runs). The "
        "setting with the best mean validation accuracy over 1-shot and 5-shot is chosen. "
        f"Meta-test: the first {n_eval} meta-test tasks of the benchmark, for information "
        "only (not used for the choice). Mean query accuracy after each method's own "
        "adaptation (Reptile: its inner steps); training time of each run.",
        "",
    ]
    for method in args.methods:
        iterations = args.meta_iterations or TUNE_ITERATIONS[method]
        lines += [
            f"## {method}",
            "",
            f"{iterations} meta-iterations per run.",
            "",
            "| setting | val 1-shot | val 5-shot | val mean | meta-test 1-shot | "
            "meta-test 5-shot | fit (1-shot / 5-shot) |",
            "|---|---|---|---|---|---|---|",
        ]
        scores = []
        for settings in TUNING_GRID[method]:
            val, tst, seconds = {}, {}, {}
            for k in K_SHOTS:
                estimator = MAKERS[method](k, iterations, args.seed, **settings)
                started = time.perf_counter()
                estimator.fit(DigitTasks(TUNE_TRAIN_DIGITS, k))
                seconds[k] = time.perf_counter() - started
                val[k] = accuracies(estimator, validation[k]).mean()
                tst[k] = accuracies(estimator, test[k]).mean()
            mean = float(np.mean(list(val.values())))
            scores.append(mean)
            text = ", ".join(f"{key}={value}" for key, value in settings.items())
            row = (
                f"| {text} | {100 * val[1]:.1f} % | {100 * val[5]:.1f} % | {100 * mean:.1f} % | "
                f"{100 * tst[1]:.1f} % | {100 * tst[5]:.1f} % | "
                f"{seconds[1]:.0f} s / {seconds[5]:.0f} s |"
            )
            lines.append(row)
            print(f"{method}: {row}", flush=True)
        best = TUNING_GRID[method][int(np.argmax(scores))]
        uses = "it" if best == CHOSEN[method] else CHOSEN[method]
        lines += ["", f"Best by validation: {best}; the benchmark uses {uses}.", ""]
    lines.append(
        f"Whole tuning run {time.perf_counter() - started_all:.0f} s, "
        f"{torch.get_num_threads()} torch thread(s)."
    )
    plain = [m for m in CHOSEN if m not in TUNED_SEPARATELY]
    subset = "" if args.methods == plain else "_" + "_".join(args.methods)
    path = RESULTS / f"fewshot_digits_tuning{subset}.md"
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwrote {path}")


# ---------------------------------------------------------------- report
def plot_curves(methods, curves, flat, starred, scratch, same_budget, path: Path) -> None:
    """Mean query accuracy against adaptation steps, one panel per K.

    ``starred[k, method]``: (steps, accuracy) of the method's table row, marked by a star.
    """
    ks = sorted({k for k, _ in curves} | {k for k, _ in flat} | set(scratch))
    fig, axes = plt.subplots(1, len(ks), figsize=(12, 4.8), sharey=True, squeeze=False)
    for ax, k_shot in zip(axes[0], ks):
        for method in methods:
            if (k_shot, method) in curves:
                means, cis = (np.array(v) for v in zip(*curves[k_shot, method]))
                color, label = METHODS[method].color, METHODS[method].label.split(" (")[0]
                ax.plot(CURVE_STEPS, means, "o-", ms=3, color=color, label=label)
                ax.fill_between(CURVE_STEPS, means - cis, means + cis, color=color, alpha=0.15)
                steps, (mean, _) = starred[k_shot, method]
                ax.plot(steps, mean, "*", ms=11, color=color, mec="k")
            elif (k_shot, method) in flat:
                color = METHODS[method].color
                label = METHODS[method].label.split(":")[0] + " (no steps)"
                ax.axhline(flat[k_shot, method][0], color=color, ls="--", label=label)
        if k_shot in scratch:
            adam, sgd = "from scratch (Adam, 500 epochs)", f"from scratch ({ADAPT_STEPS} SGD steps)"
            ax.axhline(scratch[k_shot][0], color="k", ls="--", label=adam)
            ax.axhline(same_budget[k_shot][0], color="k", ls="-.", label=sgd)
        ax.axhline(1 / N_WAY, color="gray", ls=":", label="chance")
        ax.axvline(ADAPT_STEPS, color="gray", lw=0.5)
        ax.set_xscale("symlog", linthresh=3)
        ax.set_xticks(CURVE_STEPS, [str(s) for s in CURVE_STEPS])
        ax.set_xlim(-0.3, max(CURVE_STEPS) * 1.1)
        ax.set_title(f"{N_WAY}-way {k_shot}-shot, meta-test classes")
        ax.set_xlabel("adaptation steps")
    axes[0][0].set_ylabel("query accuracy")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if curves:
        star = plt.Line2D([], [], ls="", marker="*", ms=11, color="w", mec="k")
        handles, labels = [*handles, star], [*labels, "the table's step count"]
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.17, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cell(mean_and_ci) -> str:
    return f"{100 * mean_and_ci[0]:.1f} ± {100 * mean_and_ci[1]:.1f} %"


def main(argv=None) -> None:
    every = [*METHODS, *BASELINES]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run, about 2 minutes")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=[*every, *TUNED_SEPARATELY],
        default=every,
        metavar="METHOD",
        help=f"methods to run (default: all): {' '.join(every)}; with --tune also "
        f"{' '.join(TUNED_SEPARATELY)}",
    )
    parser.add_argument("--meta-iterations", type=int, default=None)
    parser.add_argument("--eval-tasks", type=int, default=None)
    parser.add_argument(
        "--tune",
        action="store_true",
        help="instead of the benchmark, rerun the choice of Reptile's and ProtoNet's settings",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    RESULTS.mkdir(exist_ok=True)
    if args.tune:
        plain = [m for m in CHOSEN if m not in TUNED_SEPARATELY]
        args.methods = [m for m in CHOSEN if m in args.methods] or plain
        tune(args)
        return
    if any(m in TUNED_SEPARATELY for m in args.methods):
        parser.error(f"{', '.join(TUNED_SEPARATELY)} is for --tune only.")
    methods = [m for m in every if m in args.methods]  # in table order, without repeats
    learned = [m for m in methods if m in METHODS]
    iterations = args.meta_iterations or (150 if args.quick else 3000)
    n_eval = args.eval_tasks or (100 if args.quick else 600)
    name = "fewshot_digits_quick" if args.quick else "fewshot_digits"
    if methods != every:
        name += "_subset"
    run_started = time.perf_counter()

    accuracy, train_seconds, eval_seconds, tasks_per_second = {}, {}, {}, {}
    table_steps = {}  # (K, method) -> adaptation steps of the table's accuracy
    curves, flat, scratch, same_budget, finetuned = {}, {}, {}, {}, {}
    if "finetune" in methods:
        finetune, pretrain_seconds = pretrain(*((200, 20) if args.quick else (500, 100)), args.seed)
        print(f"pretraining: {pretrain_seconds:.1f} s, {finetune.n_iter_} epochs", flush=True)
    for k_shot in K_SHOTS:
        tasks = FewShotDigits(N_WAY, k_shot, N_QUERY, split="meta-test").sample(
            n_eval, random_state=args.seed + 1
        )
        batch = episodes(tasks, k_shot)
        for method in learned:
            estimator, seconds = meta_train(method, k_shot, iterations, args.seed)
            train_seconds[k_shot, method] = seconds
            tasks_per_second[k_shot, method] = iterations * estimator.meta_batch_size / seconds
            started = time.perf_counter()
            if METHODS[method].adapts_by_steps:
                own_steps = estimator.get_params()["adapt_steps"]
                own_steps = estimator.inner_steps if own_steps is None else own_steps
                table_steps[k_shot, method] = own_steps
                check_against_estimator(estimator, tasks, k_shot, steps=max(CURVE_STEPS))
                by_steps = {s: mean_ci(accuracies(estimator, batch, s)) for s in CURVE_STEPS}
                curves[k_shot, method] = [by_steps[s] for s in CURVE_STEPS]
                if own_steps not in by_steps:
                    by_steps[own_steps] = mean_ci(accuracies(estimator, batch, own_steps))
                accuracy[k_shot, method] = by_steps[own_steps]
            else:
                check_against_estimator(estimator, tasks, k_shot)
                accuracy[k_shot, method] = flat[k_shot, method] = mean_ci(
                    accuracies(estimator, batch)
                )
            eval_seconds[k_shot, method] = time.perf_counter() - started
            print(
                f"{k_shot}-shot {method}: meta-training {seconds:.1f} s "
                f"({tasks_per_second[k_shot, method]:.0f} tasks/s), "
                f"evaluation {eval_seconds[k_shot, method]:.1f} s, "
                f"accuracy {cell(accuracy[k_shot, method])}",
                flush=True,
            )
        if "finetune" in methods:
            started = time.perf_counter()
            check_against_estimator(finetune, tasks, k_shot)
            finetuned[k_shot] = mean_ci(accuracies(finetune, batch))
            eval_seconds[k_shot, "finetune"] = time.perf_counter() - started
        if "scratch" in methods:
            started = time.perf_counter()
            scratch[k_shot] = mean_ci(scratch_accuracy(tasks, k_shot, args.seed, same_budget=False))
            same_budget[k_shot] = mean_ci(
                scratch_accuracy(tasks, k_shot, args.seed, same_budget=True)
            )
            eval_seconds[k_shot, "scratch"] = time.perf_counter() - started

    rows = []
    for method in learned:
        times = " / ".join(f"{train_seconds[k, method]:.0f} s" for k in K_SHOTS)
        rows.append((METHODS[method].label, accuracy[1, method], accuracy[5, method], times))
    if "finetune" in methods:
        rows.append(
            (
                f"pretrain + fine-tune a new head ({FINETUNE_STEPS} SGD steps)",
                finetuned[1],
                finetuned[5],
                f"{pretrain_seconds:.0f} s (one pretraining for both)",
            )
        )
    if "scratch" in methods:
        rows += [
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
            f"| {label} | {cell(one)} | {cell(five)} | {time_} |"
            for label, one, five, time_ in rows
        ],
    ]
    total_seconds = time.perf_counter() - run_started

    settings = [
        f"Meta-training: {iterations} iterations per method and K, 5-way tasks from the 24 "
        f"meta-train classes (K support and {N_QUERY} query images per class), MLP "
        f"64-{'-'.join(map(str, HIDDEN))}-{N_WAY} (ReLU; 64 pixels in), seed {args.seed}.",
        f"MAML and its options: {N_WAY} output units, inner lr {INNER_LR}, {INNER_STEPS} inner "
        f"steps, meta-batch {META_BATCH}, Adam {META_LR}; {ADAPT_STEPS} adaptation steps at test "
        "time (learned step sizes for Meta-SGD and MAML++, which start at the inner lr; "
        "MAML++'s multi-step loss anneals over the first tenth of the iterations; "
        "ANIL adapts the output layer only, second order). MAML++ here is LSLR + MSL only "
        "(none of its other changes).",
        f"Reptile: {REPTILE['inner_optimizer'].upper()} lr {REPTILE['inner_lr']}, "
        f"{REPTILE['inner_steps']} inner steps on the support images, outer step size "
        f"{REPTILE['outer_step_size']} annealed linearly to 0, meta-batch {META_BATCH}; the "
        "same steps at test time.",
        f"ProtoNet: embedding MLP 64-{'-'.join(map(str, HIDDEN))}-64, squared Euclidean "
        f"distance, Adam {PROTONET['meta_lr']}, meta-batch {PROTONET['meta_batch_size']} "
        "5-way episodes.",
        "Reptile's and ProtoNet's settings were chosen by `--tune` among "
        f"{len(TUNING_GRID['reptile'])} and {len(TUNING_GRID['protonet'])} settings "
        f"({TUNE_ITERATIONS['reptile']}-iteration runs meta-trained on the meta-train digits "
        f"{', '.join(map(str, TUNE_TRAIN_DIGITS))} and scored on {TUNE_TASKS} tasks of the "
        f"held-out meta-train digits {', '.join(map(str, TUNE_VALIDATION_DIGITS))}; best "
        "mean of 1-shot and 5-shot): the settings tried and their scores are in "
        "`fewshot_digits_tuning.md`.",
        f"Evaluation: every estimator through its own adapt/predict code, all tasks at once "
        f"(vectorised), checked against its per-task adapt/predict_proba on {CHECKED_TASKS} "
        "tasks. From scratch: MLPClassifier(64, 64).",
    ]
    if "finetune" in methods:
        settings.append(
            f"Pretrain + fine-tune: {finetune.n_sampled_tasks} meta-train tasks pooled "
            f"({len(finetune.pretrain_classes_)} classes), Adam {PRETRAIN_LR}, batch "
            f"{finetune.batch_size}, {finetune.n_iter_} epochs (at most {finetune.max_epochs}; "
            "early stopping on 10% held-out tasks); per task a zero-initialised "
            f"{N_WAY}-unit head, {FINETUNE_STEPS} full-batch SGD steps at lr {FINETUNE_LR}, "
            "the rest of the network frozen."
        )
    if args.quick:
        settings.append(
            f"Quick run: {iterations} meta-iterations (the full run: 3000) and {n_eval} "
            "meta-test tasks (the full run: 600); fewer pretraining tasks and epochs."
        )
    timing = ["| method | K | meta-training | tasks/s | evaluation |", "|---|---|---|---|---|"]
    for k in K_SHOTS:
        for method in learned:
            timing.append(
                f"| {method} | {k} | {train_seconds[k, method]:.1f} s | "
                f"{tasks_per_second[k, method]:.0f} | "
                f"{eval_seconds[k, method]:.1f} s |"
            )
        for method in BASELINES:
            if (k, method) in eval_seconds:
                timing.append(f"| {method} | {k} | - | - | {eval_seconds[k, method]:.1f} s |")
    environment = (
        f"Whole run {total_seconds:.0f} s on {platform.processor() or 'cpu'} with "
        f"{torch.get_num_threads()} torch thread(s). Versions: torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, "
        f"Python {platform.python_version()}."
    )
    report = "\n".join(
        [
            f"# Few-shot rotated digits ({'quick' if args.quick else 'full'} run)",
            "",
            *table,
            "",
            *(f"- {line}" for line in settings),
            "",
            "Run times (evaluation: the accuracy at every step count of the curves, "
            f"{len(CURVE_STEPS)} of them, for the methods adapting by steps):",
            "",
            *timing,
            "",
            environment,
            "",
        ]
    )
    print("\n".join(table))
    print()
    print("\n".join(settings))
    print()
    print("\n".join(timing))
    print(environment)

    png = RESULTS / f"{name}.png"
    starred = {key: (table_steps[key], accuracy[key]) for key in curves}
    plot_curves(learned, curves, flat, starred, scratch, same_budget, png)
    (RESULTS / f"{name}.md").write_text(report)
    print(f"\nwrote {RESULTS / f'{name}.md'} and {png}")


if __name__ == "__main__":
    main()
