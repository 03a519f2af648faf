"""Meta-training speed and memory of MAMLRegressor, against a per-task Python loop.

The setting is the sinusoid experiment of the MAML paper: MLP 1-40-40-1,
K = 10 support and 10 query points per task, inner SGD at 0.01, Adam 1e-3.
Every method draws its tasks from the same sampler, so data generation costs
the same everywhere. Measured, alternately and in one process:

* ``skmeta``: ``MAMLRegressor.fit`` (vmap over the meta-batch);
* ``bare torch.func``: the same meta-step written directly with
  ``functional_call`` + ``grad`` + ``vmap`` and no library around it, to
  measure skmeta's overhead;
* ``per-task loop``: the same maths with a Python loop over the tasks and
  ``torch.autograd.grad(create_graph=True)``, the way learn2learn and
  ``higher`` run MAML;
* ``learn2learn`` / ``higher``, when importable (they are not dependencies).

Then throughput against meta-batch size and inner steps, and the peak memory
of one meta-step against inner steps for second and first order (each
configuration in a fresh subprocess: peak RSS growth on the CPU,
``torch.cuda.max_memory_allocated`` on CUDA).

    python benchmarks/speed.py --quick
    python benchmarks/speed.py
    python benchmarks/speed.py --threads 1   # one torch thread

Writes ``benchmarks/results/speed.md`` and ``speed.png``.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
import torch
from torch.func import functional_call, grad, vmap

from skmeta import MAMLRegressor
from skmeta._modules import MLP
from skmeta.datasets import SinusoidTasks

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).parent / "results"
K = 10
INNER_LR = 0.01


def draw(sampler, rng, n_tasks, device):
    """Fresh tasks as (support X, support y, query X, query y) tensors."""
    tasks = sampler.sample(n_tasks, random_state=rng)
    X = torch.from_numpy(np.stack([X for X, _ in tasks])).to(device)
    y = torch.from_numpy(np.stack([y for _, y in tasks])).to(device)
    return X[:, :K], y[:, :K], X[:, K:], y[:, K:]


def mse(out, y):
    return ((out.squeeze(-1) - y) ** 2).mean()


class PerTaskLoop:
    """Reference MAML: a Python loop over tasks, autograd.grad(create_graph=True)."""

    name = "per-task loop"

    def __init__(self, device, n_tasks, steps, first_order, seed=0):
        torch.manual_seed(seed)
        self.net = MLP(1, 1, (40, 40)).to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self.sampler, self.rng = SinusoidTasks(2 * K), np.random.RandomState(seed)
        self.device, self.n_tasks, self.steps, self.first_order = (
            device,
            n_tasks,
            steps,
            first_order,
        )
        self.names = [n for n, _ in self.net.named_parameters()]

    def step(self):
        X_s, y_s, X_q, y_q = draw(self.sampler, self.rng, self.n_tasks, self.device)
        meta = list(self.net.parameters())
        losses = []
        for t in range(self.n_tasks):
            params = meta
            for _ in range(self.steps):
                out = functional_call(self.net, dict(zip(self.names, params)), (X_s[t],))
                grads = torch.autograd.grad(
                    mse(out, y_s[t]), params, create_graph=not self.first_order
                )
                params = [p - INNER_LR * g for p, g in zip(params, grads)]
            losses.append(
                mse(functional_call(self.net, dict(zip(self.names, params)), (X_q[t],)), y_q[t])
            )
        self.opt.zero_grad()
        torch.stack(losses).mean().backward()
        self.opt.step()

    def run(self, n_iter):
        for _ in range(n_iter):
            self.step()


class BareTorchFunc(PerTaskLoop):
    """The same meta-step with functional_call + grad + vmap and nothing else."""

    name = "bare torch.func"

    def step(self):
        X_s, y_s, X_q, y_q = draw(self.sampler, self.rng, self.n_tasks, self.device)
        params = dict(self.net.named_parameters())
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

        self.opt.zero_grad()
        vmap(task)(X_s, y_s, X_q, y_q).mean().backward()
        self.opt.step()


class Skmeta:
    """MAMLRegressor.fit on the sampler; warm-started so set-up is paid once."""

    name = "skmeta MAMLRegressor"

    def __init__(self, device, n_tasks, steps, first_order, seed=0):
        self.est = MAMLRegressor(
            inner_lr=INNER_LR,
            inner_steps=steps,
            first_order=first_order,
            meta_lr=1e-3,
            meta_batch_size=n_tasks,
            shots=K,
            max_iter=1,
            device=str(device),
            random_state=seed,
            warm_start=True,
        )
        self.sampler = SinusoidTasks(2 * K)
        self.est.fit(self.sampler)

    def run(self, n_iter):
        self.est.set_params(max_iter=n_iter).fit(self.sampler)


class Learn2Learn(PerTaskLoop):
    """learn2learn's MAML wrapper (clone + adapt per task), when installed."""

    name = "learn2learn"

    def __init__(self, *args, **kwargs):
        import learn2learn as l2l

        super().__init__(*args, **kwargs)
        self.maml = l2l.algorithms.MAML(self.net, lr=INNER_LR, first_order=self.first_order)
        self.opt = torch.optim.Adam(self.maml.parameters(), lr=1e-3)

    def step(self):
        X_s, y_s, X_q, y_q = draw(self.sampler, self.rng, self.n_tasks, self.device)
        self.opt.zero_grad()
        total = 0.0
        for t in range(self.n_tasks):
            learner = self.maml.clone()
            for _ in range(self.steps):
                learner.adapt(mse(learner(X_s[t]), y_s[t]))
            total = total + mse(learner(X_q[t]), y_q[t])
        (total / self.n_tasks).backward()
        self.opt.step()


class Higher(PerTaskLoop):
    """higher's innerloop_ctx (monkeypatched functional copy per task), when installed."""

    name = "higher"

    def step(self):
        import higher

        X_s, y_s, X_q, y_q = draw(self.sampler, self.rng, self.n_tasks, self.device)
        inner_opt = torch.optim.SGD(self.net.parameters(), lr=INNER_LR)
        self.opt.zero_grad()
        for t in range(self.n_tasks):
            with higher.innerloop_ctx(
                self.net,
                inner_opt,
                copy_initial_weights=False,
                track_higher_grads=not self.first_order,
            ) as (fnet, diffopt):
                for _ in range(self.steps):
                    diffopt.step(mse(fnet(X_s[t]), y_s[t]))
                (mse(fnet(X_q[t]), y_q[t]) / self.n_tasks).backward()
        self.opt.step()


def available_methods():
    methods = [Skmeta, BareTorchFunc, PerTaskLoop]
    missing = []
    for module, cls in (("learn2learn", Learn2Learn), ("higher", Higher)):
        if importlib.util.find_spec(module):
            methods.append(cls)
        else:
            missing.append(module)
    return methods, missing


def throughput(cls, device, n_tasks, steps, first_order, n_iter, repeats):
    """tasks/s of each repeat (each repeat on a freshly built method, after a warm-up)."""
    runner = cls(device, n_tasks, steps, first_order)
    runner.run(2)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner.run(n_iter)
        rates.append(n_iter * n_tasks / (time.perf_counter() - start))
    return rates


def compare(methods, device, n_tasks, steps, first_order, n_iter, repeats):
    """Methods measured alternately, repeat by repeat, so drifts hit all alike."""
    runners = {cls.name: cls(device, n_tasks, steps, first_order) for cls in methods}
    for runner in runners.values():
        runner.run(2)
    rates = {name: [] for name in runners}
    for _ in range(repeats):
        for name, runner in runners.items():
            start = time.perf_counter()
            runner.run(n_iter)
            rates[name].append(n_iter * n_tasks / (time.perf_counter() - start))
    return rates


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
def stats(rates):
    rates = np.asarray(rates)
    return float(np.median(rates)), float(rates.min()), float(rates.max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's own choice)"
    )
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        device, steps, first_order, n_tasks = json.loads(args.memory_probe)
        print(memory_probe(device, steps, first_order, n_tasks))
        return

    device = torch.device(args.device)
    n_iter, repeats = (10, 3) if args.quick else (200, 9)
    methods, missing = available_methods()
    started = time.perf_counter()
    lines = [f"# Meta-training speed ({'quick' if args.quick else 'full'} run)", ""]

    # 1. Head to head at the paper's setting, second and first order.
    lines += [
        "Sinusoid setting: MLP 1-40-40-1, meta-batch 25, K=10 (+10 query), "
        f"1 inner step. tasks/s, median of {repeats} alternating repeats of "
        f"{n_iter} meta-steps (min-max).",
        "",
        "| order | method | tasks/s | min-max | vs per-task loop |",
        "|---|---|---|---|---|",
    ]
    head_to_head = {}
    for first_order in (False, True):
        rates = compare(methods, device, 25, 1, first_order, n_iter, repeats)
        head_to_head[first_order] = rates
        loop_median = stats(rates[PerTaskLoop.name])[0]
        for name, values in rates.items():
            median, low, high = stats(values)
            lines.append(
                f"| {'first' if first_order else 'second'} | {name} | {median:.0f} | "
                f"{low:.0f}-{high:.0f} | {median / loop_median:.2f}x |"
            )
    second = head_to_head[False]
    # Paired: each repeat runs skmeta and the bare step back to back, so drifts of the
    # machine's speed between repeats cancel in the per-repeat ratio.
    paired = np.asarray(second[BareTorchFunc.name]) / np.asarray(second[Skmeta.name])
    overhead = float(np.median(paired)) - 1
    speedup = stats(second[Skmeta.name])[0] / stats(second[PerTaskLoop.name])[0]
    lines += [
        "",
        f"Second order: skmeta is {speedup:.1f}x the per-task loop; its overhead over "
        f"the bare torch.func step is {100 * overhead:+.1f}% of the bare step's time (median "
        f"of the per-repeat ratios; {100 * (paired.min() - 1):+.1f}% to "
        f"{100 * (paired.max() - 1):+.1f}%).",
    ]
    if missing:
        lines.append(f"Not installed, so not measured: {', '.join(missing)}.")

    # 2. Scaling with meta-batch size and inner steps (second order).
    batch_sizes, steps_list = (1, 5, 25, 100), (1, 5, 10)
    scaling_iter, scaling_repeats = max(3, n_iter // 4), max(2, repeats // 2)
    by_batch = {
        cls.name: [
            stats(throughput(cls, device, b, 1, False, scaling_iter, scaling_repeats))[0]
            for b in batch_sizes
        ]
        for cls in (Skmeta, PerTaskLoop)
    }
    by_steps = {
        cls.name: [
            stats(throughput(cls, device, 25, s, False, scaling_iter, scaling_repeats))[0]
            for s in steps_list
        ]
        for cls in (Skmeta, PerTaskLoop)
    }
    lines += [
        "",
        "Scaling, second order (tasks/s, median):",
        "",
        "| meta-batch | " + " | ".join(map(str, batch_sizes)) + " |",
        "|---|" + "---|" * len(batch_sizes),
    ]
    lines += [
        f"| {name} | " + " | ".join(f"{v:.0f}" for v in values) + " |"
        for name, values in by_batch.items()
    ]
    lines += [
        "",
        "| inner steps (meta-batch 25) | " + " | ".join(map(str, steps_list)) + " |",
        "|---|" + "---|" * len(steps_list),
    ]
    lines += [
        f"| {name} | " + " | ".join(f"{v:.0f}" for v in values) + " |"
        for name, values in by_steps.items()
    ]

    # 3. Memory of one meta-step against inner steps.
    memory = measure_memory(device, steps_list, 100)
    kind = "CUDA max_memory_allocated" if device.type == "cuda" else "peak RSS growth"
    lines += [
        "",
        f"Memory of one meta-step, meta-batch 100 ({kind}, MiB):",
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

    elapsed = time.perf_counter() - started
    lines += [
        "",
        f"Device {device} ({platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads); torch {torch.__version__}, "
        f"Python {platform.python_version()}; the run took {elapsed:.0f} s.",
    ]
    report = "\n".join(lines) + "\n"
    print(report)

    RESULTS.mkdir(exist_ok=True)
    name = "speed_quick" if args.quick else "speed"
    (RESULTS / f"{name}.md").write_text(report)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for method, values in by_batch.items():
        axes[0].plot(batch_sizes, values, "o-", label=method)
    for method, values in by_steps.items():
        axes[1].plot(steps_list, values, "o-", label=method)
    for first_order in (False, True):
        axes[2].plot(
            steps_list,
            [memory[(first_order, s)] / 2**20 for s in steps_list],
            "o-",
            label="first order" if first_order else "second order",
        )
    axes[0].set(xscale="log", yscale="log", xlabel="meta-batch size", ylabel="tasks/s")
    axes[1].set(yscale="log", xlabel="inner steps", ylabel="tasks/s")
    axes[2].set(xlabel="inner steps", ylabel="MiB", title=kind)
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=110)
    print(f"wrote {RESULTS / f'{name}.md'} and {RESULTS / f'{name}.png'}")


if __name__ == "__main__":
    main()
