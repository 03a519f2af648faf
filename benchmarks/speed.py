"""Meta-training throughput of skmeta against bare torch.func and the peer libraries.

The setting is the sinusoid experiment of the MAML paper: MLP 1-40-40-1,
K = 10 support and 10 query points per task, MSE, one inner SGD step at 0.01,
Adam at 1e-3 for the meta-update. Every method trains on the SAME pre-drawn
meta-batches (each timing repeat replays the same list from its start), and
the methods are timed round-robin in one process, so that drifts of a shared
machine's speed hit all of them alike:

* ``skmeta eager``: ``MAMLRegressor.fit`` in steady state (warm-started, so
  building the module is paid once; the task path, validation, padding and
  support/query split are part of what is timed, as they are for a user);
* ``skmeta compiled``: the same with ``compile=True``, where this revision of
  skmeta has that option;
* ``bare torch.func``: the meta-step in a few lines of ``functional_call`` +
  ``grad`` + ``vmap``, with nothing around it (skmeta's overhead is the gap);
* ``bare torch.compile``: that meta-loss under ``torch.compile``;
* ``learn2learn``: ``MAML(net).clone()`` / ``adapt()`` per task;
* ``higher``: ``innerloop_ctx`` per task;
* ``per-task loop``: a Python loop over tasks with
  ``torch.autograd.grad(create_graph=True)``.

learn2learn and higher are not dependencies of skmeta: ``make peers`` builds
``.venv-peers`` with both (see ``benchmarks/README.md``); elsewhere their rows
say why they are absent. Compiled methods report what their first two meta-steps
cost (compilation included) next to the eager first steps.

    make peers
    OMP_NUM_THREADS=1 .venv-peers/bin/python benchmarks/speed.py --quick
    OMP_NUM_THREADS=1 .venv-peers/bin/python benchmarks/speed.py --write benchmarks/results/speed.md
    python benchmarks/speed.py --meta-batch 25   # any environment; absent peers are reported

The full run adds the throughput against inner steps and the memory of one
meta-step (each configuration in a fresh process: peak RSS growth on the
CPU, ``torch.cuda.max_memory_allocated`` on CUDA).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

sys.path.insert(0, str(Path(__file__).parent))

from _peers import load_higher, load_learn2learn_maml  # noqa: E402

from skmeta import MAMLRegressor  # noqa: E402
from skmeta._modules import MLP  # noqa: E402
from skmeta.datasets import SinusoidTasks  # noqa: E402

K = 10
INNER_LR = 0.01
META_LR = 1e-3
HIDDEN = (40, 40)


# ------------------------------------------------------------------ data
class Batches:
    """The same pre-drawn meta-batches for every method.

    ``tensors[i]`` is batch ``i`` as (support X, support y, query X, query y);
    ``tasks[i]`` the same rows as a list of (X_i, y_i) arrays, for the estimator.
    """

    def __init__(self, n_batches: int, n_tasks: int, seed: int = 0):
        sampler, rng = SinusoidTasks(2 * K), np.random.RandomState(seed)
        self.tasks = [sampler.sample(n_tasks, random_state=rng) for _ in range(n_batches)]
        self.tensors = []
        for tasks in self.tasks:
            X = torch.from_numpy(np.stack([X for X, _ in tasks])).float()
            y = torch.from_numpy(np.stack([y for _, y in tasks])).float()
            self.tensors.append((X[:, :K], y[:, :K], X[:, K:], y[:, K:]))


class Replay:
    """A task sampler that hands out the pre-drawn meta-batches in order."""

    def __init__(self, batches: Batches):
        self.batches, self.position = batches, 0

    def sample(self, n_tasks, random_state=None):
        tasks = self.batches.tasks[self.position % len(self.batches.tasks)]
        assert len(tasks) == n_tasks, (len(tasks), n_tasks)
        self.position += 1
        return tasks


def mse(out, y):
    return ((out.squeeze(-1) - y) ** 2).mean()


# ------------------------------------------------------------------ methods
class PerTaskLoop:
    """Reference MAML: a Python loop over tasks, autograd.grad(create_graph=True)."""

    name = "per-task loop"

    def __init__(self, batches: Batches, first_order: bool, steps: int = 1, seed: int = 0):
        torch.manual_seed(seed)
        self.net = MLP(1, 1, HIDDEN)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=META_LR)
        self.batches, self.first_order, self.steps = batches, first_order, steps
        self.names = [n for n, _ in self.net.named_parameters()]

    def run(self, n_iter: int) -> None:
        for i in range(n_iter):
            self.step(*self.batches.tensors[i % len(self.batches.tensors)])

    def step(self, X_s, y_s, X_q, y_q):
        losses = []
        for t in range(len(X_s)):
            params = list(self.net.parameters())
            for _ in range(self.steps):
                out = functional_call(self.net, dict(zip(self.names, params)), (X_s[t],))
                grads = torch.autograd.grad(
                    mse(out, y_s[t]), params, create_graph=not self.first_order
                )
                params = [p - INNER_LR * g for p, g in zip(params, grads)]
            out = functional_call(self.net, dict(zip(self.names, params)), (X_q[t],))
            losses.append(mse(out, y_q[t]))
        self.opt.zero_grad()
        torch.stack(losses).mean().backward()
        self.opt.step()


class BareTorchFunc(PerTaskLoop):
    """The same meta-step with functional_call + grad + vmap and nothing else."""

    name = "bare torch.func"

    def meta_loss(self, params, X_s, y_s, X_q, y_q):
        first_order, steps = self.first_order, self.steps

        def loss(p, X, y):
            return mse(functional_call(self.net, p, (X,)), y)

        def task(X_s, y_s, X_q, y_q):
            p = params
            for _ in range(steps):
                g = grad(loss)(p, X_s, y_s)
                if first_order:
                    g = {k: v.detach() for k, v in g.items()}
                p = {k: p[k] - INNER_LR * g[k] for k in p}
            return loss(p, X_q, y_q)

        return vmap(task)(X_s, y_s, X_q, y_q).mean()

    def step(self, X_s, y_s, X_q, y_q):
        self.opt.zero_grad()
        self.meta_loss(dict(self.net.named_parameters()), X_s, y_s, X_q, y_q).backward()
        self.opt.step()


class BareCompiled(BareTorchFunc):
    """The bare meta-loss (forward and backward) under torch.compile; Adam stays eager."""

    name = "bare torch.compile"
    eager = BareTorchFunc.name

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.meta_loss = torch.compile(self.meta_loss)


class SkmetaEager:
    """MAMLRegressor.fit on the replayed batches, warm-started."""

    name = "skmeta eager"
    options: dict = {}

    def __init__(self, batches: Batches, first_order: bool, steps: int = 1, seed: int = 0):
        self.sampler = Replay(batches)
        self.est = MAMLRegressor(
            hidden_layer_sizes=HIDDEN,
            inner_lr=INNER_LR,
            inner_steps=steps,
            first_order=first_order,
            meta_lr=META_LR,
            meta_batch_size=len(batches.tasks[0]),
            shots=K,
            max_iter=1,
            random_state=seed,
            warm_start=True,
            **self.options,
        )

    def run(self, n_iter: int) -> None:
        self.sampler.position = 0
        self.est.set_params(max_iter=n_iter).fit(self.sampler)


class SkmetaCompiled(SkmetaEager):
    name = "skmeta compiled"
    eager = SkmetaEager.name
    options = {"compile": True}


class Learn2Learn(PerTaskLoop):
    """learn2learn's MAML wrapper: clone() and adapt() per task."""

    name = "learn2learn"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        MAML, _ = load_learn2learn_maml()
        self.maml = MAML(self.net, lr=INNER_LR, first_order=self.first_order)
        self.opt = torch.optim.Adam(self.maml.parameters(), lr=META_LR)

    def step(self, X_s, y_s, X_q, y_q):
        self.opt.zero_grad()
        total = 0.0
        for t in range(len(X_s)):
            learner = self.maml.clone()
            for _ in range(self.steps):
                learner.adapt(mse(learner(X_s[t]), y_s[t]))
            total = total + mse(learner(X_q[t]), y_q[t])
        (total / len(X_s)).backward()
        self.opt.step()


class Higher(PerTaskLoop):
    """higher's innerloop_ctx (a functional copy of the module per task)."""

    name = "higher"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.higher, _ = load_higher()
        self.inner_opt = torch.optim.SGD(self.net.parameters(), lr=INNER_LR)

    def step(self, X_s, y_s, X_q, y_q):
        self.opt.zero_grad()
        for t in range(len(X_s)):
            with self.higher.innerloop_ctx(
                self.net,
                self.inner_opt,
                copy_initial_weights=False,
                track_higher_grads=not self.first_order,
            ) as (fnet, diffopt):
                for _ in range(self.steps):
                    diffopt.step(mse(fnet(X_s[t]), y_s[t]))
                query_loss = mse(fnet(X_q[t]), y_q[t]) / len(X_s)
                if not self.first_order:
                    query_loss.backward()
                    continue
                # Untracked, the fast weights are detached leaves: their gradient is
                # the first-order meta-gradient, which higher leaves to the caller.
                grads = torch.autograd.grad(query_loss, fnet.fast_params)
                for param, g in zip(self.net.parameters(), grads):
                    param.grad = g if param.grad is None else param.grad + g
        self.opt.step()


ALL_METHODS = (
    SkmetaEager,
    SkmetaCompiled,
    BareTorchFunc,
    BareCompiled,
    Learn2Learn,
    Higher,
    PerTaskLoop,
)


def availability() -> dict[str, str | None]:
    """Method name -> None if it can run here, else why not."""
    missing = {cls.name: None for cls in ALL_METHODS}
    if "compile" not in MAMLRegressor().get_params():
        missing[SkmetaCompiled.name] = "not available in this revision (no compile option)"
    for cls, load in ((Learn2Learn, load_learn2learn_maml), (Higher, load_higher)):
        loaded, why = load()
        if loaded is None:
            missing[cls.name] = why
    return missing


# ------------------------------------------------------------------ timing
def compare(methods, batches, n_iter, repeats, first_order, steps=1):
    """Round-robin timing of each method on the same batches.

    Returns (tasks/s of every repeat per method, seconds of the first two
    meta-steps). Each method takes its first two steps (compilation, if any:
    skmeta compiled runs its first step eagerly and compiles at the second)
    and warm-up steps before any timing.
    """
    torch._dynamo.reset()  # each configuration pays its own compilation
    runners, first_step = {}, {}
    for cls in methods:
        start = time.perf_counter()
        runner = cls(batches, first_order, steps)
        runner.run(2)
        first_step[cls.name] = time.perf_counter() - start
        runner.run(min(3, n_iter))
        runners[cls.name] = runner
    n_tasks = len(batches.tensors[0][0])
    rates = {name: [] for name in runners}
    for _ in range(repeats):
        for name, runner in runners.items():
            start = time.perf_counter()
            runner.run(n_iter)
            rates[name].append(n_iter * n_tasks / (time.perf_counter() - start))
    return rates, first_step


def gradient_check(methods, batches, first_order):
    """Max difference of each method's first meta-gradient from the per-task loop's.

    Same initial weights (same seed), same batch; relative to the largest entry
    of the reference. skmeta draws its own support/query split, and the compiled
    bare step is the eager one's function, so neither is in this check.
    """
    grads = {}
    for cls in methods:
        if not issubclass(cls, PerTaskLoop) or cls is BareCompiled:
            continue
        runner = cls(batches, first_order)
        runner.opt.step = lambda: None  # keep the gradient, skip the update
        runner.step(*batches.tensors[0])
        grads[cls.name] = torch.cat([p.grad.flatten() for p in runner.net.parameters()])
    reference = grads[PerTaskLoop.name]
    scale = reference.abs().max()
    return {
        name: float((g - reference).abs().max() / scale)
        for name, g in grads.items()
        if name != PerTaskLoop.name
    }


def paired_ratio(rates, name, reference):
    """Median over repeats of the per-repeat throughput ratio (drifts cancel in pairs)."""
    if reference not in rates or name not in rates:
        return None
    return float(np.median(np.asarray(rates[name]) / np.asarray(rates[reference])))


def fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}x"


# ------------------------------------------------------------------ memory
def _rss_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_probe(device_name: str, steps: int, first_order: bool, n_tasks: int) -> int:
    """Peak memory growth (bytes) of one MAMLRegressor meta-step; run in a fresh process."""
    device = torch.device(device_name)
    est = MAMLRegressor(
        inner_steps=1,
        first_order=True,
        meta_batch_size=n_tasks,
        shots=K,
        max_iter=1,
        device=device_name,
        random_state=0,
        warm_start=True,
    )
    sampler = SinusoidTasks(2 * K)
    est.fit(sampler)  # warm-up: builds the module, optimizer state and thread pools
    est.set_params(inner_steps=steps, first_order=first_order)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        est.fit(sampler)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed memory back, so growth is visible
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark (VmHWM)
    before = _rss_bytes("VmRSS")
    est.fit(sampler)
    return _rss_bytes("VmHWM") - before


def measure_memory(device, steps_list, n_tasks):
    out = {}
    for first_order in (False, True):
        for steps in steps_list:
            cmd = [
                sys.executable,
                __file__,
                "--memory-probe",
                json.dumps([str(device), steps, first_order, n_tasks]),
            ]
            result = subprocess.run(cmd, capture_output=True, text=True, check=True)
            out[(first_order, steps)] = int(result.stdout.strip().splitlines()[-1])
    return out


# ------------------------------------------------------------------ report
def head_to_head(batch_sizes, tasks_per_repeat, repeats, missing):
    methods = [cls for cls in ALL_METHODS if missing[cls.name] is None]
    lines = [
        "| meta-batch | order | method | tasks/s (median) | min-max "
        "| vs learn2learn | vs bare torch.func |",
        "|---|---|---|---|---|---|---|",
    ]
    compile_lines, check_lines = [], []
    for n_tasks in batch_sizes:
        n_iter = max(2, tasks_per_repeat // n_tasks)
        batches = Batches(n_iter, n_tasks)
        for first_order in (False, True):
            order = "first" if first_order else "second"
            if n_tasks == batch_sizes[0]:
                diffs = gradient_check(methods, batches, first_order)
                check_lines.append(
                    f"- {order} order: "
                    + ", ".join(f"{name} {diff:.1e}" for name, diff in diffs.items())
                )
            rates, first_step = compare(methods, batches, n_iter, repeats, first_order)
            for cls in ALL_METHODS:
                if cls.name not in rates:
                    lines.append(f"| {n_tasks} | {order} | {cls.name} | - | - | - | - |")
                    continue
                values = np.asarray(rates[cls.name])
                lines.append(
                    f"| {n_tasks} | {order} | {cls.name} | {np.median(values):.0f} | "
                    f"{values.min():.0f}-{values.max():.0f} | "
                    f"{fmt_ratio(paired_ratio(rates, cls.name, Learn2Learn.name))} | "
                    f"{fmt_ratio(paired_ratio(rates, cls.name, BareTorchFunc.name))} |"
                )
            for cls in (SkmetaCompiled, BareCompiled):
                if cls.name in first_step:
                    compile_lines.append(
                        f"- meta-batch {n_tasks}, {order} order, {cls.name}: first two "
                        f"meta-steps {first_step[cls.name]:.1f} s against "
                        f"{1000 * first_step[cls.eager]:.0f} ms for {cls.eager}"
                    )
            print(f"  done: meta-batch {n_tasks}, {order} order", file=sys.stderr, flush=True)
    return lines, compile_lines, check_lines


def inner_steps_scaling(steps_list, tasks_per_repeat, repeats):
    batches = Batches(max(2, tasks_per_repeat // 25), 25)
    n_iter = len(batches.tasks)
    lines = [
        "| inner steps (meta-batch 25, second order) | " + " | ".join(map(str, steps_list)) + " |",
        "|---|" + "---|" * len(steps_list),
    ]
    by_method = {SkmetaEager.name: [], PerTaskLoop.name: []}
    for steps in steps_list:
        rates, _ = compare([SkmetaEager, PerTaskLoop], batches, n_iter, repeats, False, steps)
        for name in by_method:
            by_method[name].append(np.median(rates[name]))
    lines += [
        f"| {name} | " + " | ".join(f"{v:.0f}" for v in values) + " |"
        for name, values in by_method.items()
    ]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's own choice)"
    )
    parser.add_argument(
        "--meta-batch", type=int, nargs="+", default=[25, 100], help="meta-batch sizes to time"
    )
    parser.add_argument("--write", metavar="PATH", help="also write the report (markdown) there")
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        device, steps, first_order, n_tasks = json.loads(args.memory_probe)
        print(memory_probe(device, steps, first_order, n_tasks))
        return

    tasks_per_repeat, repeats = (300, 3) if args.quick else (2500, 7)
    # A fresh inductor cache, so that the compile times reported are a first run's,
    # not those of a graph compiled by an earlier run and found on disk.
    inductor_cache = tempfile.TemporaryDirectory(prefix="speed-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = inductor_cache.name
    missing = availability()
    started = time.perf_counter()
    lines = [
        f"# Meta-training speed ({'quick' if args.quick else 'full'} run)",
        "",
        "Sinusoid: MLP 1-40-40-1, K=10 support + 10 query, MSE, 1 inner SGD step at 0.01, "
        "Adam 1e-3; every method on the same pre-drawn meta-batches, timed round-robin in one "
        f"process, after a warm-up. tasks/s: median of {repeats} repeats of about "
        f"{tasks_per_repeat} tasks each (min-max). Ratios: median of the per-repeat ratios "
        "(the methods of one repeat run back to back).",
        "",
    ]
    rows, compile_lines, check_lines = head_to_head(
        args.meta_batch, tasks_per_repeat, repeats, missing
    )
    lines += rows
    lines += [
        "",
        "Same maths: the first meta-gradient (same initial weights, same batch, meta-batch "
        f"{args.meta_batch[0]}) against the per-task loop's, max difference relative to its "
        "largest entry:",
        "",
        *check_lines,
    ]
    absent = [f"- {name}: {why}" for name, why in missing.items() if why is not None]
    if absent:
        lines += ["", "Not measured (rows marked -):", "", *absent]
    if compile_lines:
        lines += [
            "",
            "Compilation, paid once per configuration (empty on-disk inductor cache):",
            "",
            *compile_lines,
        ]

    if not args.quick:
        steps_list = (1, 5, 10)
        lines += ["", "Throughput against inner steps (tasks/s, median):", ""]
        lines += inner_steps_scaling(steps_list, tasks_per_repeat, repeats)
        memory = measure_memory("cpu", steps_list, 100)
        lines += [
            "",
            "Memory of one skmeta meta-step, meta-batch 100 (peak RSS growth, MiB):",
            "",
            "| inner steps | " + " | ".join(map(str, steps_list)) + " |",
            "|---|" + "---|" * len(steps_list),
        ]
        for first_order in (False, True):
            lines.append(
                f"| {'first' if first_order else 'second'} order | "
                + " | ".join(f"{memory[(first_order, s)] / 2**20:.1f}" for s in steps_list)
                + " |"
            )

    versions = [f"torch {torch.__version__}"]
    for load in (load_learn2learn_maml, load_higher):
        loaded, note = load()
        if loaded is not None:
            versions.append(note)
    lines += [
        "",
        f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), "
        f"{torch.get_num_threads()} torch threads (OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}); {', '.join(versions)}, "
        f"Python {platform.python_version()}; the run took {time.perf_counter() - started:.0f} s.",
    ]
    inductor_cache.cleanup()
    report = "\n".join(lines) + "\n"
    print(report)
    if args.write:
        Path(args.write).write_text(report)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
