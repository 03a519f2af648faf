"""MAMLRegressor meta-training throughput: the working tree against another revision.

The sinusoid setting of the MAML paper (MLP 1-40-40-1, K = 10 support + 10
query points per task, one inner SGD step at 0.01, meta-batch 25, second
order unless ``--first-order``), timed for the working tree's ``skmeta`` and
for the ``skmeta`` of a git revision, side by side in one run:

* REV is checked out into a temporary ``git worktree`` (removed at the end);
* every measurement is a fresh subprocess of this Python with ``PYTHONPATH``
  set to one source tree, ``OMP_NUM_THREADS=1`` and ``torch.set_num_threads(1)``;
  it prints ``skmeta.__file__`` and is rejected unless that file lies in the
  intended tree (so an editable install of the package cannot shadow it);
* in each subprocess one short warm-up fit, then the timed
  ``MAMLRegressor(...).fit(SinusoidTasks(n_samples=20))`` of ``--iterations``
  meta-steps; tasks/s = iterations x meta-batch / seconds;
* the two revisions alternate for ``--repeats`` rounds, the one that goes first
  swapping every round (A B, B A, A B, ...), so neither always runs first;
* the median tasks/s of each with its min-max, and the median of the
  per-round ratios (current / REV) with its range;
* as a check that the same work is timed, the ``loss_curve_`` of every fit
  (same ``random_state``) is compared between the revisions.

    python benchmarks/compare_revisions.py --against a6a9d45
    python benchmarks/compare_revisions.py --against a6a9d45 --first-order
    python benchmarks/compare_revisions.py --against HEAD   # A/A run: the noise level

Writes ``benchmarks/results/compare_revisions.md`` (``--output`` to change).
Timings only mean something on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MARKER = "COMPARE_REVISIONS_RESULT "


# --------------------------------------------------------------------------
# The measurement, run in a fresh subprocess (``--worker``)
# --------------------------------------------------------------------------


def worker(config: dict) -> None:
    """Warm-up fit, then the timed fit; one JSON line on stdout."""
    import torch

    torch.set_num_threads(1)
    import skmeta
    from skmeta import MAMLRegressor
    from skmeta.datasets import SinusoidTasks

    print(f"skmeta imported from {skmeta.__file__}", flush=True)

    def make(max_iter):
        return MAMLRegressor(
            hidden_layer_sizes=(40, 40),
            inner_lr=0.01,
            inner_steps=1,
            first_order=config["first_order"],
            meta_batch_size=config["meta_batch"],
            shots=10,
            max_iter=max_iter,
            random_state=0,
        )

    warm = make(config["warmup"]).fit(SinusoidTasks(n_samples=20))
    est = make(config["iterations"])
    tasks = SinusoidTasks(n_samples=20)
    cpu0, t0 = time.process_time(), time.perf_counter()
    est.fit(tasks)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    result = {
        "skmeta_file": str(Path(skmeta.__file__).resolve()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "n_iter": int(est.n_iter_),
        "tasks_per_s": config["iterations"] * config["meta_batch"] / seconds,
        "cpu_tasks_per_s": config["iterations"] * config["meta_batch"] / cpu,
        "warmup_curve": [float(v) for v in warm.loss_curve_],
        "loss_curve": [float(v) for v in est.loss_curve_],
    }
    print(MARKER + json.dumps(result), flush=True)


def measure(tree: Path, config: dict) -> dict:
    """One fresh subprocess on the ``skmeta`` of ``tree``; checks where it came from."""
    env = dict(os.environ)
    env.update(PYTHONPATH=str(tree), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(config)],
        env=env,
        cwd=tempfile.gettempdir(),  # neither tree is the current directory
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"measurement on {tree} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    result = json.loads(lines[-1][len(MARKER) :])
    package = tree.resolve() / "skmeta"
    if not Path(result["skmeta_file"]).is_relative_to(package):
        raise RuntimeError(
            f"skmeta was imported from {result['skmeta_file']}, not from {package}: "
            "PYTHONPATH is shadowed, so the comparison would time the wrong code"
        )
    if result["n_iter"] != config["iterations"]:
        raise RuntimeError(f"fit on {tree} stopped after {result['n_iter']} meta-steps")
    return result


# --------------------------------------------------------------------------
# Revisions and the temporary worktree
# --------------------------------------------------------------------------


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def describe_current() -> str:
    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", "skmeta")
    return f"working tree at {head}" + (" + uncommitted changes in skmeta/" if dirty else "")


class Worktree:
    """``git worktree add --detach`` into a temporary folder; removed on exit."""

    def __init__(self, rev: str):
        self.rev = rev

    def __enter__(self) -> Path:
        self.tmp = Path(tempfile.mkdtemp(prefix="skmeta-rev-"))
        self.path = self.tmp / "tree"
        git("worktree", "add", "--detach", str(self.path), self.rev)
        return self.path

    def __exit__(self, *exc) -> None:
        try:
            git("worktree", "remove", "--force", str(self.path))
        finally:
            git("worktree", "prune")
            shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def first_difference(a: list, b: list) -> str:
    if a == b:
        return "identical"
    if len(a) != len(b):
        return f"differ (lengths {len(a)} and {len(b)})"
    i = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    worst = max(abs(x - y) for x, y in zip(a, b))
    return f"differ from meta-step {i} on (largest difference {worst:.3g})"


def curve_check(results: dict, key: str) -> str:
    """Every fit's curve against the first fit of the current tree."""
    reference = results["current"][0][key]
    same_within = {
        name: all(r[key] == results[name][0][key] for r in runs) for name, runs in results.items()
    }
    across = first_difference(reference, results["rev"][0][key])
    within = ", ".join(
        f"{name} {'repeatable' if ok else 'NOT repeatable'}" for name, ok in same_within.items()
    )
    return f"{across} between the revisions ({within} across rounds)"


def report(args, labels: dict, results: dict, started: float, loads: tuple) -> str:
    cur = [r["tasks_per_s"] for r in results["current"]]
    rev = [r["tasks_per_s"] for r in results["rev"]]
    ratios = [c / r for c, r in zip(cur, rev)]
    median_ratio = statistics.median(ratios)
    order = "first" if args.first_order else "second"
    first = results["current"][0]

    cur_cpu = [r["cpu_tasks_per_s"] for r in results["current"]]
    rev_cpu = [r["cpu_tasks_per_s"] for r in results["rev"]]
    cpu_ratios = [c / r for c, r in zip(cur_cpu, rev_cpu)]

    def row(name, values, cpu_values):
        return (
            f"| {name} | {statistics.median(values):.0f} | "
            f"{min(values):.0f}-{max(values):.0f} | {statistics.median(cpu_values):.0f} |"
        )

    change = (median_ratio - 1) * 100
    verdict = "met" if median_ratio >= 0.95 else "NOT met"
    lines = [
        "# MAMLRegressor throughput: working tree against " + labels["rev"],
        "",
        f"Generated by `python benchmarks/compare_revisions.py {' '.join(sys.argv[1:])}`.",
        "",
        f"Sinusoid setting: MLP 1-40-40-1, K=10 (+10 query), {order} order, "
        f"1 inner step at 0.01, meta-batch {args.meta_batch}. Each measurement: a fresh "
        f"process, one warm-up fit of {args.warmup} meta-steps, then the timed fit of "
        f"{args.iterations} meta-steps; {args.repeats} rounds, the two revisions alternating "
        "(the one run first swaps every round).",
        "",
        "| skmeta | tasks/s (median) | min-max | tasks per CPU-second (median) |",
        "|---|---|---|---|",
        row(f"current: {labels['current']}", cur, cur_cpu),
        row(f"REV: {labels['rev']}", rev, rev_cpu),
        "",
        f"Current / REV, median of the per-round ratios: **{median_ratio:.3f}** "
        f"({min(ratios):.3f}-{max(ratios):.3f}), i.e. the current code is "
        f"{abs(change):.1f}% {'slower' if change < 0 else 'faster'}. "
        f"Throughput within 5% of REV (median ratio at least 0.95): {verdict}. "
        "The same ratio on the processes' CPU time instead of wall time (less sensitive "
        "to other jobs taking the CPU, not to their sharing its caches): "
        f"{statistics.median(cpu_ratios):.3f} ({min(cpu_ratios):.3f}-{max(cpu_ratios):.3f}).",
        "",
        "Same work timed (`loss_curve_`, random_state=0):",
        "",
        f"- warm-up fits ({args.warmup} meta-steps): {curve_check(results, 'warmup_curve')}",
        f"- timed fits ({args.iterations} meta-steps): {curve_check(results, 'loss_curve')}",
        "",
        "Per round (CPU/wall: the measuring process's CPU time over its wall time; "
        "below 1 means it waited for the CPU):",
        "",
        "| round | first | current tasks/s | REV tasks/s | ratio | CPU/wall current | "
        "CPU/wall REV |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, (c, r) in enumerate(zip(results["current"], results["rev"])):
        lines.append(
            f"| {i + 1} | {'current' if i % 2 == 0 else 'REV'} | {c['tasks_per_s']:.0f} | "
            f"{r['tasks_per_s']:.0f} | {c['tasks_per_s'] / r['tasks_per_s']:.3f} | "
            f"{c['cpu_seconds'] / c['seconds']:.2f} | {r['cpu_seconds'] / r['seconds']:.2f} |"
        )
    lines += [
        "",
        f"skmeta imported from `{first['skmeta_file']}` (current) and "
        f"`{results['rev'][0]['skmeta_file']}` (REV, a temporary worktree), checked in "
        "every process.",
        "",
        f"Run {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
        f"{time.perf_counter() - started:.0f} s; torch {first['torch']} with "
        f"{first['threads']} thread(s), OMP_NUM_THREADS=1; Python {platform.python_version()}, "
        f"{platform.platform()}, {os.cpu_count()} CPUs; load average "
        f"{loads[0]:.2f} at the start, {loads[1]:.2f} at the end.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", help="git revision to compare with (e.g. a6a9d45)")
    parser.add_argument("--repeats", type=int, default=7, help="rounds (default 7)")
    parser.add_argument(
        "--iterations", type=int, default=300, help="meta-steps per timed fit (default 300)"
    )
    parser.add_argument(
        "--warmup", type=int, default=20, help="meta-steps of the warm-up fit (default 20)"
    )
    parser.add_argument("--meta-batch", type=int, default=25, help="tasks per meta-step")
    parser.add_argument("--first-order", action="store_true", help="first-order MAML")
    parser.add_argument("--output", type=Path, default=RESULTS / "compare_revisions.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return
    if not args.against:
        parser.error("--against REV is required (e.g. --against a6a9d45)")

    started, load0 = time.perf_counter(), os.getloadavg()[0]
    try:
        rev = git("rev-parse", "--verify", "--quiet", args.against + "^{commit}")
    except subprocess.CalledProcessError:
        parser.error(f"--against {args.against}: not a commit of {ROOT}")
    labels = {"current": describe_current(), "rev": f"{args.against} ({rev[:7]})"}
    config = {
        "first_order": args.first_order,
        "meta_batch": args.meta_batch,
        "iterations": args.iterations,
        "warmup": args.warmup,
    }
    results = {"current": [], "rev": []}
    with Worktree(rev) as rev_tree:
        trees = {"current": ROOT, "rev": rev_tree}
        for name, tree in trees.items():
            print(f"{name}: {labels[name]}, source tree {tree}")
        for i in range(args.repeats):
            for name in ("current", "rev") if i % 2 == 0 else ("rev", "current"):
                r = measure(trees[name], config)
                results[name].append(r)
                print(
                    f"round {i + 1}/{args.repeats} {name:>7}: {r['tasks_per_s']:7.0f} tasks/s "
                    f"({r['seconds']:.2f} s, skmeta from {r['skmeta_file']})",
                    flush=True,
                )
    torch_versions = {r["torch"] for runs in results.values() for r in runs}
    if len(torch_versions) != 1:
        raise RuntimeError(f"the processes ran different torch versions: {torch_versions}")

    text = report(args, labels, results, started, (load0, os.getloadavg()[0]))
    print()
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
