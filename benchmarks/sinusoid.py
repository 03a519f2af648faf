"""Sinusoid regression of the MAML paper (Finn et al., 2017, section 5.1), for the MAML family.

Sine tasks (amplitude U[0.1, 5], phase U[0, pi], x U[-5, 5]); MLP 1-40-40-1
ReLU; meta-batch 25; Adam 1e-3 for the meta-gradient methods. As in the
paper, one model is meta-trained per K and per method, on tasks of K support
and K query points. Each model is then evaluated on fresh tasks with K
support and 100 query points: query MSE with 95% confidence intervals after
0 to 10 steps of the method's own adaptation from its initialisation, for

* second-order MAML (``MAMLRegressor``): 1 inner SGD step at 0.01,
* first-order MAML (``MAMLRegressor(first_order=True)``),
* Meta-SGD (``MAMLRegressor(learn_inner_lr="per-parameter")``): learned
  per-entry step sizes, which it also uses at test time,
* ANIL (``MAMLRegressor(adapt_params="head")``): only the output layer adapts,
* MAML++ (``MAMLRegressor(learn_inner_lr="per-layer-per-step",
  multi_step_loss=True, inner_steps=5)``): learned per-layer per-step step
  sizes (LSLR) and the multi-step loss (MSL); 5 inner steps in meta-training,
* Reptile (``ReptileRegressor``): its own inner SGD steps,
* pretrain + fine-tune: one network trained on the pooled points of many
  tasks (``FineTuneRegressor``), fine-tuned with SGD at 0.01 on all layers,
* the same network trained from scratch on the K support points (Adam).

Every method is evaluated by one vectorised function (all held-out tasks
adapted at once with ``torch.func.vmap``) that runs the estimator's own
algorithm object (``_algorithm().adapt`` / ``.predict``), so each method
adapts as it was meta-trained to (learned step sizes, trainable subset,
inner rule); a check against the estimators' public ``adapt``/``predict``
guards that shortcut.

    python benchmarks/sinusoid.py --quick     # the README demo: K=10, about a minute
    python benchmarks/sinusoid.py             # the paper's settings: 70,000 meta-iterations
    python benchmarks/sinusoid.py --methods maml metasgd --k-shot 5

Independent models train in parallel (joblib, ``--jobs`` processes with one
torch thread each). Writes a markdown report (settings, versions, seed, run
times, the table with the published numbers beside ours) and a PNG under
benchmarks/results/ (``sinusoid.*``, or ``sinusoid_quick.*`` with --quick).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import joblib
import matplotlib
import numpy as np
import sklearn
import torch
from _stats import mean_ci  # benchmarks/ is on sys.path when a script runs
from joblib import Parallel, delayed
from torch.func import stack_module_state, vmap

from skmeta import FineTuneRegressor, MAMLRegressor, ReptileRegressor
from skmeta import _functional as fn
from skmeta._modules import MLP
from skmeta.datasets import SinusoidTasks

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).parent / "results"
N_QUERY = 100
INNER_LR = 0.01
META_LR = 1e-3
META_BATCH = 25
MAX_STEPS = 10
REPORTED_STEPS = (0, 1, 5, 10)
HIDDEN = (40, 40)
FULL_ITERATIONS = 70000
QUICK_ITERATIONS = 2000
# From scratch: full-batch Adam on the K support points from a fresh initialisation.
SCRATCH_LR, SCRATCH_STEPS = 1e-2, 1000
# MAML++ meta-trains through several inner steps (Antoniou et al. 2019).
MAMLPP_STEPS = 5
# Reptile: picked among a few (inner lr, inner steps, outer step size) around the package's
# defaults by short K=10 runs (2,000 meta-iterations), scored by the query MSE after 10
# adaptation steps on 200 validation tasks drawn with another seed than the evaluation's.
# All three are given explicitly, so a change of the package's defaults changes nothing here.
REPTILE = {"inner_lr": 0.02, "inner_steps": 10, "outer_step_size": 1.0}

MAML = "MAML (second order)"
FOMAML = "MAML (first order)"
METASGD = "Meta-SGD"
ANIL = "ANIL"
MAMLPP = "MAML++ (LSLR + MSL)"
REPTILE_LABEL = "Reptile"
FINETUNE = "pretrain + fine-tune"
SCRATCH = "from scratch"

# Published reference values: the only numbers typed in by hand.
MAML_PAPER = "MAML paper"
METASGD_PAPER = "Meta-SGD paper"
SOURCES = {
    MAML_PAPER: "Finn et al. (2017), the MAML paper, Table 2 / Figure 2: query MSE after 1 and "
    "10 gradient steps, K = 5",
    METASGD_PAPER: "Li et al. (2017), the Meta-SGD paper (arXiv 1707.09835), Table 1: query MSE "
    "after one step, mean ± the interval their table gives; their sine family is the MAML "
    "paper's",
}
# {source: {(K, method): {steps: (value, interval or None)}}}
REFERENCES = {
    MAML_PAPER: {
        (5, MAML): {1: (0.67, None), 10: (0.35, None)},
        (5, FINETUNE): {1: (2.41, None), 10: (2.19, None)},
    },
    METASGD_PAPER: {
        (5, MAML): {1: (1.13, 0.18)},
        (10, MAML): {1: (0.85, 0.14)},
        (20, MAML): {1: (0.71, 0.12)},
        (5, METASGD): {1: (0.90, 0.16)},
        (10, METASGD): {1: (0.53, 0.09)},
        (20, METASGD): {1: (0.31, 0.05)},
    },
}
REFERENCE_COLUMNS = ((MAML_PAPER, 1), (MAML_PAPER, 10), (METASGD_PAPER, 1))
# Methods whose own paper's figures we check (pretrain + fine-tune is the MAML paper's baseline).
VERDICT_METHODS = (MAML, METASGD)


# ---------------------------------------------------------------- methods
def _maml(**options) -> Callable:
    def make(k_shot: int, iterations: int, seed: int):
        settings = dict(inner_lr=INNER_LR, inner_steps=1) | options
        return MAMLRegressor(
            hidden_layer_sizes=HIDDEN,
            meta_lr=META_LR,
            meta_batch_size=META_BATCH,
            max_iter=iterations,
            shots=k_shot,
            random_state=seed,
            **settings,
        )

    return make


def _reptile(k_shot: int, iterations: int, seed: int):
    return ReptileRegressor(
        hidden_layer_sizes=HIDDEN,
        meta_batch_size=META_BATCH,
        max_iter=iterations,
        shots=k_shot,
        random_state=seed,
        **REPTILE,
    )


@dataclass(frozen=True)
class Method:
    """One row of the table.

    ``make(k, iterations, seed)`` builds the unfitted meta-learner (None for
    the pretrained network and for training from scratch); ``cost`` is the
    rough relative time of one meta-iteration (from the tasks/s of a quick
    run), only to start the longest jobs first; ``adaptation`` and
    ``settings`` describe it in the report.
    """

    key: str
    label: str
    adaptation: str
    settings: str
    make: Callable | None = None
    cost: float = 1.0


METHODS = (
    Method(
        "maml",
        MAML,
        f"SGD at {INNER_LR} on all parameters",
        f"1 inner SGD step at {INNER_LR}, second order, Adam {META_LR}",
        _maml(),
        cost=2.3,
    ),
    Method(
        "fomaml",
        FOMAML,
        f"SGD at {INNER_LR} on all parameters",
        f"1 inner SGD step at {INNER_LR}, first order, Adam {META_LR}",
        _maml(first_order=True),
        cost=1.5,
    ),
    Method(
        "metasgd",
        METASGD,
        "SGD with its learned per-entry step sizes, on all parameters",
        "learn_inner_lr='per-parameter' (one step size per parameter entry, initialised at "
        f"{INNER_LR}, meta-learned), 1 inner step, second order, Adam {META_LR}",
        _maml(learn_inner_lr="per-parameter"),
        cost=1.8,
    ),
    Method(
        "anil",
        ANIL,
        f"SGD at {INNER_LR} on the output layer only",
        f"adapt_params='head' (the inner loop adapts the output layer only), 1 inner SGD step "
        f"at {INNER_LR}, second order, Adam {META_LR}",
        _maml(adapt_params="head"),
        cost=1,
    ),
    Method(
        "mamlpp",
        MAMLPP,
        f"SGD with its learned per-layer step sizes of steps 1 to {MAMLPP_STEPS} (the last one "
        "beyond), on all parameters",
        "learn_inner_lr='per-layer-per-step' (LSLR: one step size per parameter tensor and "
        f"inner step, initialised at {INNER_LR}) and multi_step_loss=True (MSL: the query losses "
        "after every inner step, weights annealed to the last step over the first 10% of "
        f"meta-training); {MAMLPP_STEPS} inner steps (MAML++ meta-trains through several "
        f"steps, unlike the 1 step of the other MAML rows), second order, Adam {META_LR}",
        _maml(learn_inner_lr="per-layer-per-step", multi_step_loss=True, inner_steps=MAMLPP_STEPS),
        cost=5.7,
    ),
    Method(
        "reptile",
        REPTILE_LABEL,
        f"SGD at {REPTILE['inner_lr']} on all parameters",
        f"{REPTILE['inner_steps']} inner SGD steps at {REPTILE['inner_lr']} on the K support "
        f"points, outer step size {REPTILE['outer_step_size']} annealed linearly to 0 (no Adam: "
        "the outer update is the mean of the tasks' parameter moves)",
        _reptile,
        cost=6.2,
    ),
    Method(
        "finetune",
        FINETUNE,
        f"SGD at {INNER_LR} on all parameters",
        "see below",
    ),
    Method("scratch", SCRATCH, f"{SCRATCH_STEPS} Adam steps at {SCRATCH_LR}", "see below"),
)
BY_KEY = {m.key: m for m in METHODS}
BY_LABEL = {m.label: m for m in METHODS}
# What --quick runs unless --methods is given (each at QUICK_ITERATIONS): every method but
# MAML++, the slowest to meta-train (5 second-order inner steps), to keep the demo near a minute.
QUICK_METHODS = ("maml", "fomaml", "metasgd", "anil", "reptile", "finetune", "scratch")


def one_line(estimator) -> str:
    return " ".join(repr(estimator).split())


# ---------------------------------------------------------------- training
def train_meta(key: str, k_shot: int, iterations: int, seed: int):
    """Meta-train one model of method ``key`` on K-shot tasks (K support + K query points).

    Returns ``(estimator, seconds, message)``: when meta-training diverges (a
    NaN or inf meta-loss), the estimator stops and keeps its last finite
    parameters; the model is still evaluated and ``message`` says so.
    """
    torch.set_num_threads(1)
    estimator = BY_KEY[key].make(k_shot, iterations, seed)
    started = time.perf_counter()
    message = None
    try:
        estimator.fit(SinusoidTasks(n_samples=2 * k_shot))
    except FloatingPointError as error:
        message = str(error)
    return estimator, time.perf_counter() - started, message


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


def adapted_predictions(estimator, tasks: dict, steps: int, X: torch.Tensor) -> torch.Tensor:
    """Predictions at ``X[t]`` after ``steps`` adaptation steps on task t's support set.

    All tasks at once (vmap over tasks), with the estimator's own algorithm
    object: its update rule and step sizes (learned ones for Meta-SGD and
    MAML++), its trainable subset (the head for ANIL), Reptile's inner rule,
    the fine-tuning loop for the pretrained network. One function for every
    method; ``check_against_estimator`` compares it with ``adapt``/``predict``.
    """
    algorithm = estimator.set_params(adapt_steps=steps)._algorithm()
    net, meta = estimator._network(), estimator.meta_params_.tree(detach=True)
    X_s, y_s = tasks["X_support"], tasks["y_support"]
    adapt = fn.over_tasks(lambda X_t, y_t, w_t: algorithm.adapt(net, meta, X_t, y_t, w_t), "vmap")
    predict = fn.over_tasks(lambda adapted, X_t: algorithm.predict(net, meta, adapted, X_t), "vmap")
    with torch.no_grad():
        with estimator._module_mode(algorithm.adapt_in_train_mode):
            adapted = adapt(X_s, y_s, torch.ones_like(y_s))
        with estimator._module_mode(False):
            return predict(adapted, X).squeeze(-1)


def adaptation_curve(estimator, tasks: dict) -> np.ndarray:
    """Query MSE of every task after 0..MAX_STEPS adaptation steps, shape (n_tasks, steps + 1)."""
    curve = [
        ((adapted_predictions(estimator, tasks, s, tasks["X_query"]) - tasks["y_query"]) ** 2)
        .mean(dim=1)
        .numpy()
        for s in range(MAX_STEPS + 1)
    ]
    return np.stack(curve, axis=1)


CHECKED_TASKS = 5
DIVERGED = 1e4  # |prediction| beyond which adaptation has blown up (targets are within ±5)
# Tolerances of the check: exact up to float32 rounding, and for learned step sizes repeated
# past the steps they were meta-trained for, where the adaptation amplifies rounding.
STRICT, LOOSE = 1e-4, 1e-2


def check_against_estimator(estimator, tasks: dict) -> int:
    """The vectorised shortcut must predict what the estimator's own adapt/predict does.

    Compared on ``CHECKED_TASKS`` tasks after 1 step, after the method's own
    number of inner steps and after ``MAX_STEPS``, to ``STRICT`` tolerance.
    Meta-SGD's and MAML++'s learned step sizes repeated beyond the steps they
    were meta-trained for can approach divergence, which amplifies float32
    rounding: there the tolerance is ``LOOSE`` and predictions blown up beyond
    ``DIVERGED`` (or not finite) are not compared; returns their number.
    """
    trained_steps = getattr(estimator, "inner_steps", 1)
    learned_rates = bool(estimator.meta_params_.learned)
    skipped = 0
    for steps in sorted({1, trained_steps, MAX_STEPS}):
        ours = adapted_predictions(estimator, tasks, steps, tasks["X_query"]).numpy()
        estimator.set_params(adapt_steps=steps)
        past_training = learned_rates and steps > trained_steps
        tolerance = LOOSE if past_training else STRICT
        for t in range(CHECKED_TASKS):
            X_s, y_s = tasks["X_support"][t].numpy(), tasks["y_support"][t].numpy()
            theirs = estimator.adapt(X_s, y_s).predict(tasks["X_query"][t].numpy())
            compared = np.ones_like(theirs, dtype=bool)
            if past_training:
                compared = np.isfinite(theirs) & (np.abs(theirs) < DIVERGED)
                skipped += int((~compared).sum())
            np.testing.assert_allclose(
                ours[t][compared],
                theirs[compared],
                rtol=tolerance,
                atol=tolerance,
                err_msg=f"{type(estimator).__name__}, {steps} steps, task {t}",
            )
    return skipped


def scratch_mse(tasks: dict, seed: int) -> np.ndarray:
    """Query MSE of a fresh 1-40-40-1 network per task, trained with Adam on its support set."""
    n_tasks = tasks["X_support"].shape[0]
    torch.manual_seed(seed)
    nets = [MLP(1, 1, HIDDEN) for _ in range(n_tasks)]
    params, _ = stack_module_state(nets)
    module = nets[0].eval()
    net = fn.Network(module, fn.weighted_mse, {})
    X_s, y_s = tasks["X_support"], tasks["y_support"]
    rule = fn.Adam(SCRATCH_LR)

    def one_task(params_t, X_t, y_t):
        loss_of = net.support_loss(X_t, y_t, torch.ones_like(y_t))
        return fn.inner_loop(loss_of, params_t, rule, SCRATCH_STEPS, first_order=True)[-1]

    with torch.no_grad():
        trained = vmap(one_task)(params, X_s, y_s)
        outputs = vmap(net)(trained, tasks["X_query"]).squeeze(-1)
    return ((outputs - tasks["y_query"]) ** 2).mean(dim=1).numpy()


# ---------------------------------------------------------------- report
PLOT_TOP = 20.0  # upper end of panel (a)'s MSE axis
# A mean MSE above this is shown in scientific notation (adaptation diverged on some tasks).
LARGE = 1e3


def _cell(values) -> str:
    """``mean ± CI``; say so when some tasks' adaptation diverged to inf or NaN."""
    values = np.asarray(values)
    bad = int((~np.isfinite(values)).sum())
    if bad:
        return f"diverged ({bad}/{len(values)} tasks inf/NaN)"
    mean, ci = mean_ci(values)
    return f"{mean:.1e} ± {ci:.1e}" if mean > LARGE else f"{mean:.3f} ± {ci:.3f}"


def _reference(source: str, k: int, label: str, steps: int) -> str:
    value = REFERENCES[source].get((k, label), {}).get(steps)
    if value is None:
        return ""
    mean, interval = value
    return f"{mean:.2f}" if interval is None else f"{mean:.2f} ± {interval:.2f}"


def results_table(curves: dict, scratch: dict, ks, labels, n_eval: int) -> list[str]:
    header = ["K", "method", "0 steps", "1 step", "5 steps", "10 steps"] + [
        f"{source}, {steps} step{'s' if steps != 1 else ''}" for source, steps in REFERENCE_COLUMNS
    ]
    learners = [
        f"{label} ({steps} step{'s' if steps != 1 else ''}"
        + ("; it repeats its last step size beyond)" if label == MAMLPP else ")")
        for label, steps in ((METASGD, 1), (MAMLPP, MAMLPP_STEPS))
        if label in labels
    ]
    adaptations = "; ".join(
        f"{label}: {BY_LABEL[label].adaptation}" for label in labels if label != SCRATCH
    )
    lines = [
        f"Query MSE (mean ± 95% CI over {n_eval} held-out tasks, {N_QUERY} query points each) "
        "after n steps of each method's own adaptation on the K support points "
        f"({adaptations}).",
        "",
        *(
            [
                " and ".join(learners)
                + (
                    " learn their step sizes for the inner steps they meta-train with"
                    if len(learners) > 1
                    else " learns its step sizes for the inner steps it meta-trains with"
                )
                + "; applying them for more steps is outside what was learned and may diverge.",
                "",
            ]
            if learners
            else []
        ),
        "Published reference values (the only numbers typed in by hand):",
        "",
        *(f"- {source}: {text}." for source, text in SOURCES.items()),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for k in ks:
        for label in labels:
            if label == SCRATCH:
                mean, ci = mean_ci(scratch[k])
                cells = ["", "", "", f"{mean:.3f} ± {ci:.3f}"] + [""] * len(REFERENCE_COLUMNS)
                label = f"from scratch on the K points ({SCRATCH_STEPS} Adam steps at {SCRATCH_LR})"
            else:
                cells = [_cell(curves[k, label][:, s]) for s in REPORTED_STEPS] + [
                    _reference(source, k, label, s) for source, s in REFERENCE_COLUMNS
                ]
            lines.append(f"| {k} | {label} | " + " | ".join(cells) + " |")
    return lines


def reference_notes(ks, labels) -> list[str]:
    """Where the two papers disagree on the same method and setting, say so."""
    notes = []
    for k in ks:
        for label in labels:
            values = {
                source: refs[k, label][1]
                for source, refs in REFERENCES.items()
                if 1 in refs.get((k, label), {})
            }
            if len(values) > 1:
                quoted = ", ".join(
                    f"{_reference(source, k, label, 1)} in the {source}" for source in values
                )
                notes.append(f"- K={k}, {label}, 1 step: the two papers' values differ ({quoted}).")
    return notes


def verdict(curves: dict, ks) -> list[str]:
    """Whether our MAML and Meta-SGD reach the published figures (within or below our CI)."""
    lines = []
    for source, references in REFERENCES.items():
        for (k, label), reference in references.items():
            if k not in ks or label not in VERDICT_METHODS or (k, label) not in curves:
                continue
            for steps in reference:
                mean, ci = mean_ci(curves[k, label][:, steps])
                reached = mean - ci <= reference[steps][0]
                lines.append(
                    f"- K={k}, {label}, {steps} step{'s' if steps != 1 else ''}: ours "
                    f"{mean:.3f} ± {ci:.3f}, {source} {_reference(source, k, label, steps)}: "
                    + (
                        "reached (published value at or above our CI's lower end)."
                        if reached
                        else "NOT reached: our CI lies above the published value."
                    )
                )
    return lines


def plot(curves, scratch, ks, labels, examples, path: Path) -> None:
    """(a) MSE vs adaptation steps per method and K; (b) a few tasks before/after adaptation."""
    k_example, tasks, estimators = examples
    n_examples = len(tasks["amplitude"])
    width = 4.6 * max(len(ks) + 1, n_examples)
    fig = plt.figure(figsize=(width, 4.4 + 3.2 * len(estimators)))
    rows = fig.add_gridspec(1 + len(estimators), 1, height_ratios=(1.4,) + (1,) * len(estimators))
    top = rows[0].subgridspec(1, len(ks) + 1)
    steps = np.arange(MAX_STEPS + 1)
    markers = {MAML_PAPER: "x", METASGD_PAPER: "P"}
    for col, k in enumerate(ks):
        ax = fig.add_subplot(top[0, col])
        lowest = PLOT_TOP
        for i, label in enumerate(labels):
            if label == SCRATCH:
                lowest = min(lowest, mean_ci(scratch[k])[0])
                ax.axhline(mean_ci(scratch[k])[0], color="k", ls="--", label="from scratch (Adam)")
                continue
            color = f"C{i}"
            means, cis = map(np.array, zip(*(mean_ci(curves[k, label][:, s]) for s in steps)))
            lowest = min(lowest, np.nanmin(means))
            ax.plot(steps, means, "-o", color=color, ms=3, label=label)
            ax.fill_between(steps, means - cis, means + cis, color=color, alpha=0.15)
            for source, references in REFERENCES.items():
                reference = references.get((k, label))
                if reference:
                    lowest = min(lowest, *(value for value, _ in reference.values()))
                    ax.errorbar(
                        list(reference),
                        [value for value, _ in reference.values()],
                        yerr=[interval or 0.0 for _, interval in reference.values()],
                        fmt=markers[source],
                        color=color,
                        ms=9,
                        mew=2,
                        capsize=3,
                        label=f"{label}, {source}",
                    )
        ax.set_yscale("log")
        # Diverged curves leave the panel; CIs reaching below 0 are cut off at the bottom.
        ax.set_ylim(lowest / 2, min(ax.get_ylim()[1], PLOT_TOP))
        ax.set_xlabel("adaptation steps (each method's own rule)")
        ax.set_title(f"(a) K = {k}")
        if col == 0:
            ax.set_ylabel("query MSE")
    # One legend for row (a), in its own cell: every entry of every panel, once.
    entries = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    legend_ax = fig.add_subplot(top[0, len(ks)])
    legend_ax.axis("off")
    legend_ax.legend(entries.values(), entries.keys(), loc="center left", fontsize=8)
    x_grid = torch.linspace(-5, 5, 200).reshape(1, -1, 1)
    for row, (label, estimator) in enumerate(estimators.items(), start=1):
        cells = rows[row].subgridspec(1, n_examples)
        for col in range(n_examples):
            ax = fig.add_subplot(cells[0, col])
            one = {name: value[col : col + 1] for name, value in tasks.items()}
            before = adapted_predictions(estimator, one, 0, x_grid)[0]
            after = adapted_predictions(estimator, one, MAX_STEPS, x_grid)[0]
            xs = x_grid[0, :, 0].numpy()
            truth = SinusoidTasks.evaluate(
                xs[:, None], tasks["amplitude"][col], tasks["phase"][col]
            )
            ax.plot(xs, truth, "k-", label="ground truth")
            ax.plot(xs, before.numpy(), "C0--", label="before adaptation")
            ax.plot(xs, after.numpy(), "C3-", label=f"after {MAX_STEPS} steps")
            ax.plot(one["X_support"][0, :, 0], one["y_support"][0], "k^", label="support points")
            ax.set_title(f"(b) {label}, K = {k_example}, task {col + 1}", fontsize=9)
            if col == 0:
                ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def environment() -> str:
    return (
        f"{platform.platform()}, {platform.processor() or 'cpu'}, {joblib.cpu_count()} CPUs. "
        f"Python {platform.python_version()}, torch {torch.__version__}, scikit-learn "
        f"{sklearn.__version__}, numpy {np.__version__}, joblib {joblib.__version__}."
    )


# ---------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"short K=10 run for the README demo ({QUICK_ITERATIONS} meta-iterations)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=[m.key for m in METHODS],
        default=None,
        help="methods to run (default: all; --quick: " + " ".join(QUICK_METHODS) + ")",
    )
    parser.add_argument(
        "--meta-iterations",
        type=int,
        default=None,
        help="meta-iterations of every meta-trained model (overrides --quick and "
        "--full-iterations)",
    )
    parser.add_argument(
        "--full-iterations",
        type=int,
        default=FULL_ITERATIONS,
        help=f"meta-iterations of the full run (default {FULL_ITERATIONS}, the paper's)",
    )
    parser.add_argument("--eval-tasks", type=int, default=None)
    parser.add_argument("--k-shot", type=int, nargs="+", default=None)
    parser.add_argument("--jobs", type=int, default=2, help="parallel training processes")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    iterations = args.meta_iterations or (QUICK_ITERATIONS if args.quick else args.full_iterations)
    n_eval = args.eval_tasks or (200 if args.quick else 600)
    ks = tuple(args.k_shot or ((10,) if args.quick else (5, 10, 20)))
    keys = args.methods or (QUICK_METHODS if args.quick else [m.key for m in METHODS])
    chosen = [m for m in METHODS if m.key in keys]  # table order
    labels = [m.label for m in chosen]
    meta_methods = [m for m in chosen if m.make is not None]
    n_pretrain_tasks, pretrain_epochs = (1000, 50) if args.quick else (10000, 200)
    name = "sinusoid_quick" if args.quick else "sinusoid"
    RESULTS.mkdir(exist_ok=True)
    torch.set_num_threads(1)
    started_all = time.perf_counter()

    # Longest jobs first, so the workers finish together.
    jobs = sorted(
        ((m.key, k) for m in meta_methods for k in ks),
        key=lambda job: -BY_KEY[job[0]].cost * (1 + job[1] / 40),
    )
    print(
        f"training {len(jobs)} meta-learned models ({iterations} meta-iterations, meta-batch "
        f"{META_BATCH}, seed {args.seed})"
        + (" and the pretrained baseline" if FINETUNE in labels else "")
        + f" on {args.jobs} processes:",
        flush=True,
    )
    for key, k in jobs:
        estimator = BY_KEY[key].make(k, iterations, args.seed)
        print(f"  {BY_KEY[key].label}, K={k}: {one_line(estimator)}")
    calls = [delayed(train_meta)(key, k, iterations, args.seed) for key, k in jobs]
    if FINETUNE in labels:
        print(f"  {FINETUNE}: FineTuneRegressor on {n_pretrain_tasks} pooled tasks")
        calls.append(delayed(train_pretrained)(n_pretrain_tasks, 20, pretrain_epochs, args.seed))
    if SCRATCH in labels:
        print(f"  {SCRATCH}: a fresh network per held-out task, {SCRATCH_STEPS} Adam steps")
    trained = Parallel(n_jobs=args.jobs, verbose=10)(calls) if calls else []
    models, seconds, stopped = {}, {}, {}
    for (key, k), (estimator, took, message) in zip(jobs, trained):
        models[k, BY_KEY[key].label], seconds[k, BY_KEY[key].label] = estimator, took
        if message:
            stopped[k, BY_KEY[key].label] = message
            print(f"  {BY_KEY[key].label}, K={k}: {message}", flush=True)
    pretrained = pretrain_seconds = None
    if FINETUNE in labels:
        pretrained, pretrain_seconds = trained[-1]
        for k in ks:
            models[k, FINETUNE] = pretrained
    train_wall = time.perf_counter() - started_all

    print("evaluating...", flush=True)
    started = time.perf_counter()
    curves, scratch, eval_sets, unchecked = {}, {}, {}, {}
    for k in ks:
        tasks = eval_tasks(k, n_eval, seed=args.seed + 1000 + k)
        eval_sets[k] = tasks
        for label in labels:
            if label == SCRATCH:
                scratch[k] = scratch_mse(tasks, seed=args.seed)
                continue
            skipped = check_against_estimator(models[k, label], tasks)
            if skipped:
                unchecked[k, label] = skipped
            curves[k, label] = adaptation_curve(models[k, label], tasks)
    eval_seconds = time.perf_counter() - started

    k_plot = 5 if 5 in ks else ks[0]
    shown = [label for label in (MAML, FINETUNE) if label in labels]
    shown = shown or [label for label in labels if label != SCRATCH][:2]
    examples = (
        k_plot,
        {name_: value[:3] for name_, value in eval_sets[k_plot].items()},
        {label: models[k_plot, label] for label in shown},
    )
    png = RESULTS / f"{name}.png"
    plot(curves, scratch, ks, labels, examples, png)
    total = time.perf_counter() - started_all

    table = results_table(curves, scratch, ks, labels, n_eval)
    notes = reference_notes(ks, labels)
    checks = verdict(curves, ks)
    timing = [
        f"- {label}, K={k}: {took:.0f} s ({models[k, label].n_iter_ * META_BATCH / took:.0f} "
        "tasks/s)"
        for (k, label), took in seconds.items()
    ]
    if pretrained is not None:
        timing.append(f"- pretrained network: {pretrain_seconds:.0f} s")
    window = min(1000, iterations)
    loss_tail = [
        f"- {label}, K={k}: {np.mean(models[k, label].loss_curve_[-window:]):.4g} "
        f"(largest single meta-loss {np.max(models[k, label].loss_curve_):.4g})"
        for (k, label) in seconds
    ]
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python benchmarks/sinusoid.py", *given])
    omitted = [m.label for m in METHODS if m.label not in labels]
    settings = [
        "- Tasks: amplitude U[0.1, 5], phase U[0, π], x U[-5, 5]. Network 1-40-40-1 ReLU.",
        f"- Meta-learned models: one per K and per method, meta-trained on tasks of K support "
        f"+ K query points; {iterations} meta-iterations, meta-batch {META_BATCH}. "
        "Each is evaluated with its own adaptation (the estimator's algorithm with "
        "adapt_steps = n).",
        *(f"- {m.label}: {m.settings}." for m in meta_methods),
    ]
    if REPTILE_LABEL in labels:
        settings.append(
            "- Reptile's settings were picked among a few (inner lr, inner steps, outer step "
            "size) by short K=10 runs (2000 meta-iterations) scored by the query MSE after 10 "
            "steps on validation tasks drawn with another seed than the evaluation's."
        )
    if pretrained is not None:
        settings.append(
            f"- Pretrain + fine-tune: one network (shared by all K) trained by FineTuneRegressor "
            f"on the pooled points of {n_pretrain_tasks} tasks of 20 points, Adam 1e-3, batch "
            f"128, {pretrained.n_iter_} epochs (at most {pretrain_epochs}, early stopping on 10% "
            f"held-out tasks); fine-tuned with SGD steps at {INNER_LR} on all layers."
        )
    if SCRATCH in labels:
        settings.append(
            f"- From scratch: a freshly initialised 1-40-40-1 network per task, {SCRATCH_STEPS} "
            f"full-batch Adam steps at {SCRATCH_LR} on the K support points."
        )
    settings += [
        f"- Evaluation: {n_eval} fresh tasks per K (seed {args.seed} + 1000 + K), K support and "
        f"{N_QUERY} query points; all tasks adapted at once (vmap over tasks) by the "
        "estimators' own algorithm objects, checked against the estimators' adapt/predict "
        f"on {CHECKED_TASKS} tasks after 1 step, after the method's own inner steps and after "
        f"{MAX_STEPS} steps, to {STRICT:g} (to {LOOSE:g} for learned step sizes repeated past "
        "the steps they were meta-trained for, where adaptation can approach divergence and "
        "amplifies rounding; predictions blown up beyond "
        f"±{DIVERGED:g} are not compared, counted in query points"
        + (
            ": " + ", ".join(f"{n} for {label} at K={k}" for (k, label), n in unchecked.items())
            if unchecked
            else ""
        )
        + ").",
        f"- Seed {args.seed} for every model.",
    ]
    if omitted:
        why = " (the quick run leaves out the slowest to meta-train)" if args.quick else ""
        settings.append(f"- Not run here{why}; see `--methods`: {', '.join(omitted)}.")
    report = [
        f"# Sinusoid regression ({'quick' if args.quick else 'full'} run)",
        "",
        f"Generated by `{command}`; nothing in this file is typed by hand except the "
        "published reference values.",
        "",
        *table,
        "",
        *(["Note on the references:", "", *notes, ""] if notes else []),
        *(
            [
                "Meta-training diverged (NaN or inf meta-loss) and stopped early, keeping the "
                "last finite parameters, for:",
                "",
                *(f"- {label}, K={k}: {message}" for (k, label), message in stopped.items()),
                "",
            ]
            if stopped
            else []
        ),
        *(["Against the papers:", "", *checks, ""] if checks else []),
        "## Settings",
        "",
        *settings,
        "",
        "## Run times",
        "",
        f"Training: {len(calls)} models on {args.jobs} processes with 1 torch thread each, "
        f"{train_wall:.0f} s wall clock. Evaluation: {eval_seconds:.0f} s. Total "
        f"{total:.0f} s.",
        "",
        *timing,
        "",
        *(
            [
                f"Final meta-losses (mean over the last {window} iterations; for MAML++ the "
                "multi-step loss while it is annealed, then the last step's query loss; for "
                "Reptile the query loss after its inner steps on the support points):",
                "",
                *loss_tail,
                "",
            ]
            if loss_tail
            else []
        ),
        "## Environment",
        "",
        environment(),
        "",
        f"![sinusoid]({png.name})",
        "",
    ]
    (RESULTS / f"{name}.md").write_text("\n".join(report))
    print("\n".join(table + ([""] + notes if notes else []) + ([""] + checks if checks else [])))
    print("\n" + "\n".join(timing))
    print(
        f"\ntraining {train_wall:.0f} s, evaluation {eval_seconds:.0f} s; took {total:.0f} s; "
        f"wrote {RESULTS / f'{name}.md'} and {png}"
    )


if __name__ == "__main__":
    main()
