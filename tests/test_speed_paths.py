"""Speed paths: padding per meta-batch and per score group, the query cap per
step, and the compiled meta-step (``compile=True``) against the eager one."""

import numpy as np
import pytest
import torch

from skmeta import MAMLClassifier, MAMLRegressor, ProtoNetClassifier, ReptileRegressor
from skmeta._tasks import MAX_QUERY_ROWS, FixedTasks, read_tasks, score_batches
from skmeta.datasets import FewShotDigits, SinusoidTasks

META = dict(max_iter=6, meta_batch_size=4, hidden_layer_sizes=(16,), random_state=0, shots=2)

# loss_curve_ and few-shot score of each case on equal-size tasks, recorded from
# the code before padding per meta-batch (commit a63352f): it must change nothing.
# Losses recorded with the code before padding per meta-batch (a63352f). Scores too, but
# re-recorded when the regressors' few-shot score became R² pooled over the query rows
# (issue 10); the classifiers' mean accuracy is now computed in float64 (exact fractions).
RECORDED = {
    "maml": (
        [
            8.694363594055176,
            2.918313503265381,
            8.482478141784668,
            5.567366123199463,
            5.325872421264648,
            5.117977142333984,
        ],
        -0.17885896603526552,
    ),
    "maml_all_tasks": (
        [
            6.371030807495117,
            6.089663028717041,
            6.483598232269287,
            6.31682825088501,
            6.063901424407959,
            5.454345226287842,
        ],
        -0.17547859729298199,
    ),
    "mamlpp": (
        [
            8.787303924560547,
            3.017754077911377,
            8.802948951721191,
            5.456396579742432,
            5.5946455001831055,
            5.0226874351501465,
        ],
        -0.2238563681259187,
    ),
    "reptile": (
        [
            10.03055191040039,
            3.4780001640319824,
            8.635212898254395,
            4.782615661621094,
            8.671706199645996,
            4.321402549743652,
        ],
        -0.7228763004964587,
    ),
    "maml_clf": (
        [
            1.0686628818511963,
            1.0556873083114624,
            1.0411807298660278,
            1.0246912240982056,
            1.0513782501220703,
            1.0263030529022217,
        ],
        4 / 9,
    ),
    "protonet": (
        [
            0.9033433198928833,
            0.888674259185791,
            0.875085711479187,
            0.8200676441192627,
            0.6950562596321106,
            0.6939088106155396,
        ],
        77 / 90,
    ),
}


def recorded_case(name):
    reg = SinusoidTasks(n_samples=12).sample(10, random_state=0)
    clf = FewShotDigits(3, 2, 3, split="meta-train").sample(10, random_state=0)
    return {
        "maml": (MAMLRegressor(**META), reg),
        "maml_all_tasks": (MAMLRegressor(**{**META, "meta_batch_size": 20}), reg),
        "mamlpp": (
            MAMLRegressor(
                **META, inner_steps=2, learn_inner_lr="per-layer-per-step", multi_step_loss=True
            ),
            reg,
        ),
        "reptile": (ReptileRegressor(**META), reg),
        "maml_clf": (MAMLClassifier(**META, inner_lr=0.3), clf),
        "protonet": (ProtoNetClassifier(**META), clf),
    }[name]


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_equal_size_tasks_give_the_recorded_losses_and_scores(name):
    est, tasks = recorded_case(name)
    est.fit(tasks)
    losses, score = RECORDED[name]
    assert [float(np.float32(v)) for v in est.loss_curve_] == losses
    assert est.score(tasks) == pytest.approx(score, rel=1e-12, abs=0)


class Draws:
    """A sampler of sinusoid tasks; ``change(draw, tasks)`` may alter the tasks of each draw."""

    def __init__(self, change=lambda draw, tasks: tasks, n_samples=12):
        self.sinusoid, self.change, self.draws = SinusoidTasks(n_samples=n_samples), change, 0

    def sample(self, n_tasks, random_state=None):
        tasks = self.sinusoid.sample(n_tasks, random_state=random_state)
        self.draws += 1
        return self.change(self.draws, tasks)


SAMPLED = dict(META, max_iter=5)


def as_lists(change):
    """``change``, then every task as lists (which the checked path reads)."""
    return lambda draw, tasks: [(X.tolist(), y.tolist()) for X, y in change(draw, tasks)]


@pytest.fixture
def taken(monkeypatch):
    """What stack_equal_tasks returned for each later sampler draw (None: the checked
    path read it)."""
    import skmeta._tasks._sources as sources

    taken = []
    stack = sources.stack_equal_tasks
    monkeypatch.setattr(
        sources,
        "stack_equal_tasks",
        lambda estimator, tasks: taken.append(stack(estimator, tasks)) or taken[-1],
    )
    return taken


def test_equal_size_draws_skip_the_taskset_and_read_the_same_rows(taken):
    """Later draws of equal-size regression tasks are stacked directly (no TaskSet);
    the meta-batches, and so the fit, are those of the checked path, which lists of
    lists (not ndarrays) still take."""
    from skmeta._tasks import split_on_host

    fast = MAMLRegressor(**SAMPLED).fit(Draws())
    assert len(taken) == 4 and all(arrays is not None for arrays in taken)
    taken.clear()
    checked = MAMLRegressor(**SAMPLED).fit(Draws(as_lists(lambda draw, tasks: tasks)))
    assert len(taken) == 4 and all(arrays is None for arrays in taken)
    assert fast.loss_curve_ == checked.loss_curve_
    for a, b in zip(fast.meta_params_.parameters(), checked.meta_params_.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    # The stacked rows are those of a TaskSet of the draw, and split alike.
    from skmeta._tasks._readers import stack_equal_tasks

    tasks = SinusoidTasks(n_samples=12).sample(4, random_state=1)
    X, y = stack_equal_tasks(fast, tasks)
    X_set, y_set = read_tasks(fast, tasks, reset=False).equal_arrays()
    np.testing.assert_array_equal(X, X_set)
    np.testing.assert_array_equal(y, y_set)
    assert X.dtype == y.dtype == np.float32 and X.shape == (4, 12, 1)
    one = split_on_host(X, y, 2, 10, np.random.RandomState(0), torch.device("cpu"))
    other = split_on_host(X_set, y_set, 2, 10, np.random.RandomState(0), torch.device("cpu"))
    for a, b in zip(one, other):
        assert (a is None and b is None) or torch.equal(a, b)


def test_host_split_draws_each_task_a_random_support_and_query_set():
    from skmeta._tasks import split_on_host

    X = np.arange(3 * 30, dtype=np.float32).reshape(3, 30, 1)
    y = X[..., 0] * 10
    batch = split_on_host(X, y, 4, 7, np.random.RandomState(0), torch.device("cpu"))
    assert batch.X_support.shape == (3, 4, 1) and batch.X_query.shape == (3, 7, 1)
    assert batch.w_support is None and batch.w_query is None
    for t in range(3):
        support, query = batch.X_support[t, :, 0].tolist(), batch.X_query[t, :, 0].tolist()
        assert set(support).isdisjoint(query) and len(set(support + query)) == 11
        assert all(30 * t <= v < 30 * (t + 1) for v in support + query)  # its own rows
        torch.testing.assert_close(batch.y_support[t], batch.X_support[t, :, 0] * 10)
    other = split_on_host(X, y, 4, 7, np.random.RandomState(1), torch.device("cpu"))
    assert not torch.equal(other.X_support, batch.X_support)


def set_task(t, X=None, y=None, at_draw=3):
    """``change`` for Draws: task ``t`` of draw ``at_draw`` gets these X or y."""

    def change(draw, tasks):
        if draw == at_draw:
            X_t, y_t = tasks[t]
            tasks[t] = (X_t if X is None else X(X_t), y_t if y is None else y(y_t))
        return tasks

    return change


@pytest.mark.parametrize(
    "change, error, match",
    [
        (set_task(2, X=lambda X: np.where(X > 0, np.nan, X)), ValueError, "Task 2.*NaN"),
        (set_task(1, X=lambda X: X.astype(np.float64) * 1e39), ValueError, "Task 1.*float32"),
        (set_task(0, y=lambda y: np.full_like(y, np.inf)), ValueError, "Task 0.*infinity"),
        (set_task(3, X=lambda X: np.hstack([X, X])), ValueError, "Task 3 has 2 features"),
        (set_task(1, X=lambda X: X[:5]), ValueError, "Task 1: X has 5 rows but y has 12"),
        (
            lambda draw, tasks: [(X, y, y) for X, y in tasks] if draw == 3 else tasks,
            ValueError,
            "an \\(X, y\\) pair",
        ),
    ],
)
def test_bad_later_draws_get_the_checked_paths_error(change, error, match):
    est = MAMLRegressor(**SAMPLED)
    with pytest.raises(error, match=match) as info:
        est.fit(Draws(change))
    assert "Draws.sample(4, random_state) returned an invalid task" in str(info.value)
    assert est.n_iter_ == 0 and est.loss_curve_ == []  # failed within its first chunk


@pytest.mark.parametrize(
    "change",
    [
        set_task(2, X=lambda X: X.astype(np.float16)),
        set_task(2, y=lambda y: y.astype(np.float64)),
        set_task(0, X=lambda X: np.asfortranarray(np.hstack([X, 2 * X]))[:, :1]),
        set_task(1, X=lambda X: np.round(3 * X).astype(np.int64)),
        set_task(3, y=lambda y: (y > 0).astype(np.int32)),
    ],
    ids=["float16 X", "float64 y", "strided X", "int X", "int y"],
)
def test_equal_draws_of_other_dtypes_and_layouts_read_as_the_checked_path(change, taken):
    """Later draws with other float dtypes, non-contiguous arrays, or ints next to floats
    take the fast path and read the values the checked path reads."""
    fast = MAMLRegressor(**SAMPLED).fit(Draws(change))
    assert len(taken) == 4 and all(padded is not None for padded in taken)
    checked = MAMLRegressor(**SAMPLED).fit(Draws(as_lists(change)))
    assert len(checked.loss_curve_) == 5 and np.isfinite(checked.loss_curve_).all()
    assert fast.loss_curve_ == checked.loss_curve_


def uneven_tasks(sizes, n_features=2, seed=0):
    rng = np.random.RandomState(seed)
    return [(rng.randn(n, n_features), rng.randn(n)) for n in sizes]


def test_meta_batch_is_padded_to_its_own_largest_task():
    sizes = [12] * 9 + [3000]
    taskset = read_tasks(MAMLRegressor(), uneven_tasks(sizes), reset=True)
    source = FixedTasks(taskset, torch.device("cpu"), 4, stratify=False)
    assert source.padded is None  # unequal sizes: no task-set-wide padding
    assert source.rows.X.shape == (sum(sizes), 2)  # held as long rows: memory follows the data
    generator, rng = torch.Generator().manual_seed(0), np.random.RandomState(0)
    seen_big = seen_small = False
    for _ in range(30):
        state = rng.get_state()
        chosen = rng.choice(10, 3, replace=False).tolist()  # drawn on the host
        rng.set_state(state)
        batch = source.next_batch(3, generator, rng)
        n_query = max(sizes[t] for t in chosen) - 4
        assert batch.X_support.shape == (3, 4, 2)
        assert batch.X_query.shape == (3, min(n_query, MAX_QUERY_ROWS), 2)
        assert batch.w_query.sum(1).tolist() == [min(sizes[t] - 4, MAX_QUERY_ROWS) for t in chosen]
        seen_big |= 9 in chosen
        seen_small |= 9 not in chosen
    assert seen_big and seen_small
    # Without the big task a batch is (3, 8) rows; with it, the query cap holds it to 500.
    assert MAX_QUERY_ROWS == 500


def test_the_query_cap_draws_a_fresh_random_subset_of_a_big_task():
    tasks = uneven_tasks([10, 10, 2000])
    taskset = read_tasks(MAMLRegressor(), tasks, reset=True)
    source = FixedTasks(taskset, torch.device("cpu"), 5, stratify=False)
    a = source.next_batch(3, torch.Generator().manual_seed(0), np.random.RandomState(0))
    b = source.next_batch(3, torch.Generator().manual_seed(1), np.random.RandomState(1))
    assert a.y_query.shape == (3, MAX_QUERY_ROWS)
    big_y = set(np.float32(tasks[2][1]).tolist())
    drawn_a, drawn_b = set(a.y_query[2].tolist()), set(b.y_query[2].tolist())
    assert drawn_a <= big_y and len(drawn_a) == MAX_QUERY_ROWS and drawn_a != drawn_b
    assert set(a.y_support[2].tolist()).isdisjoint(drawn_a)


def test_score_groups_tasks_by_size_and_uses_every_query_row():
    sizes = [20] * 7 + [35, 1000]
    taskset = read_tasks(MAMLRegressor(), uneven_tasks(sizes), reset=True)
    chunks = list(score_batches(taskset, torch.device("cpu"), 5, False, torch.Generator(), 4))
    shapes = [tuple(c.X_query.shape) for c in chunks]
    assert shapes == [(4, 15, 2), (4, 30, 2), (1, 995, 2)]
    assert sum(c.w_query.sum().item() for c in chunks) == sum(sizes) - 5 * len(sizes)


def test_uneven_fit_and_score_run_and_stratified_rows_match_padding():
    rng = np.random.RandomState(0)
    tasks = [(rng.randn(n, 3), np.arange(n) % 3) for n in (9, 15, 30, 12, 600)]
    clf = MAMLClassifier(**{**META, "meta_batch_size": 3}, inner_lr=0.3).fit(tasks)
    assert len(clf.loss_curve_) == 6 and np.isfinite(clf.loss_curve_).all()
    assert 0.0 <= clf.score(tasks) <= 1.0
    # Long rows padded per batch draw exactly the split of the task-set-wide padding.
    taskset = read_tasks(MAMLRegressor(), tasks, reset=True, classification=True)
    old = taskset.to_padded(torch.device("cpu"), 2, stratify=True)
    new = taskset.to_rows(torch.device("cpu"), 2, stratify=True).padded(np.arange(5))
    for relabel_to in (None, 4):
        a = old.split(torch.Generator().manual_seed(1), relabel_to=relabel_to)
        b = new.split(torch.Generator().manual_seed(1), relabel_to=relabel_to)
        for x, y in zip(a, b):
            assert torch.equal(x, y)


# ---------------------------------------------------------------- compile=True
# Compile tests use cheap torch.compile backends ("aot_eager" traces the graph with
# dynamo and its backward with AOTAutograd, as inductor does, without generating C++);
# one test runs inductor itself. Deselect them with -m "not compile".
AOT = {"backend": "aot_eager"}
SMALL = dict(max_iter=1, meta_batch_size=3, hidden_layer_sizes=(8,), shots=2, random_state=0)
GRADIENT_CASES = {
    "MAML": lambda: MAMLRegressor(**SMALL),
    "first-order MAML": lambda: MAMLRegressor(**SMALL, first_order=True),
    "ANIL + Meta-SGD": lambda: MAMLRegressor(
        **SMALL, adapt_params="head", learn_inner_lr="per-parameter"
    ),
    "MAML++ (LSLR + MSL)": lambda: MAMLRegressor(
        **SMALL, inner_steps=2, learn_inner_lr="per-layer-per-step", multi_step_loss=5
    ),
    "MAMLClassifier": lambda: MAMLClassifier(**SMALL, inner_lr=0.3),
    "ProtoNet": lambda: ProtoNetClassifier(**SMALL),
    "Reptile": lambda: ReptileRegressor(**SMALL, inner_steps=2),
}


def one_step_both_ways(est, compile_options):
    """An eager and a compiled outer step of ``est`` on the same meta-batch."""
    from skmeta import _functional as fn
    from skmeta._algorithms import Step

    classification = est._target.classification
    if classification:
        tasks = FewShotDigits(3, 2, 3, split="meta-train").sample(3, random_state=0)
    else:
        tasks = SinusoidTasks(n_samples=8).sample(3, random_state=0)
    est.fit(tasks)
    taskset = read_tasks(est, tasks, reset=False, classification=classification)
    padded = taskset.to_padded(est.device_, 2, stratify=classification)
    batch = padded.split(torch.Generator().manual_seed(0))
    net = fn.Network(est.module_, est._target.loss, dict(est.module_.named_buffers()))
    meta = est.meta_params_.tree()
    algorithm = est._algorithm(n_classes=est._training_classes())
    step = Step(1, 0.25)
    eager = algorithm.outer_step(net, meta, batch, step, est.batching_)
    est.set_params(compile=compile_options)
    # The first step of a compiled fit is eager: it finds which meta-parameters get a
    # meta-gradient; the later ones run compiled.
    first = est._outer_step(algorithm, net, meta, batch, step)
    for (kind, tensors), (_, first_tensors) in zip(eager[1].items(), first[1].items()):
        assert all(torch.equal(tensors[name], first_tensors[name]) for name in tensors), kind
    compiled = est._outer_step(algorithm, net, meta, batch, step)
    return eager, compiled


@pytest.mark.compile
@pytest.mark.parametrize("name", sorted(GRADIENT_CASES))
def test_compiled_outer_step_gives_the_eager_meta_gradient(name):
    from torch._dynamo.backends.registry import lookup_backend

    graphs = []

    def counted_aot_eager(graph_module, example_inputs):  # proves the graph was compiled
        graphs.append(graph_module)
        return lookup_backend("aot_eager")(graph_module, example_inputs)

    (loss, update), (compiled_loss, compiled_update) = one_step_both_ways(
        GRADIENT_CASES[name](), {"backend": counted_aot_eager}
    )
    assert len(graphs) >= 1
    torch.testing.assert_close(compiled_loss, loss)
    assert update.keys() == compiled_update.keys() and update["init"]
    for kind, tensors in update.items():
        assert tensors.keys() == compiled_update[kind].keys()
        for param, value in tensors.items():
            torch.testing.assert_close(compiled_update[kind][param], value, rtol=1e-5, atol=1e-6)


@pytest.mark.compile
def test_inductor_compiled_maml_matches_eager_and_does_not_recompile():
    tasks = SinusoidTasks(n_samples=8).sample(6, random_state=0)
    params = dict(max_iter=4, meta_batch_size=3, hidden_layer_sizes=(8,), shots=2, random_state=0)
    eager = MAMLRegressor(**params).fit(tasks)
    compiled = MAMLRegressor(**params, compile=True).fit(tasks)
    assert compiled._compiled_cache.failure is None
    np.testing.assert_allclose(compiled.loss_curve_, eager.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(compiled.score(tasks), eager.score(tasks), rtol=1e-5)


class WithUnusedParameter(torch.nn.Module):
    """A 1-feature regressor with a parameter its forward never uses."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(1, 8)
        self.head = torch.nn.Linear(8, 1)
        self.unused = torch.nn.Parameter(torch.ones(3))

    def forward(self, X):
        return self.head(torch.relu(self.body(X)))


@pytest.mark.compile
def test_compiled_steps_give_no_gradient_to_what_the_loss_does_not_use():
    """As eagerly, a meta-parameter the loss does not use gets no meta-gradient (not a
    zero one): Adam skips it and keeps no state for it."""
    tasks = SinusoidTasks(n_samples=8).sample(6, random_state=0)
    params = {**SMALL, "max_iter": 4, "module": WithUnusedParameter}
    eager = MAMLRegressor(**params).fit(tasks)
    compiled = MAMLRegressor(**params, compile=AOT).fit(tasks)
    assert compiled._compiled_cache.failure is None
    assert len(compiled._compiled_cache.functions) == 1  # steps 2 to 4 ran compiled
    unused = compiled.module_.unused
    assert unused not in compiled.optimizer_.state
    assert torch.equal(unused, torch.ones(3))
    assert len(compiled.optimizer_.state) == len(eager.optimizer_.state) == 4
    np.testing.assert_allclose(compiled.loss_curve_, eager.loss_curve_, rtol=1e-5)
    for a, b in zip(compiled.meta_params_.parameters(), eager.meta_params_.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.compile
def test_one_graph_serves_every_step():
    graphs = []

    def counting_backend(graph_module, example_inputs):
        graphs.append(len(example_inputs))
        return graph_module.forward

    tasks = SinusoidTasks(n_samples=8).sample(6, random_state=0)
    params = {**SMALL, "meta_batch_size": 3, "max_iter": 2}  # the first step is eager
    est = MAMLRegressor(**params, compile={"backend": counting_backend})
    est.fit(tasks)
    compiled_once = len(graphs)
    assert compiled_once >= 1
    est.set_params(warm_start=True, max_iter=6).fit(tasks)
    assert len(graphs) == compiled_once  # six more steps, no recompilation


@pytest.mark.compile
def test_compilation_failure_falls_back_to_eager_with_one_warning(monkeypatch):
    tasks = SinusoidTasks(n_samples=8).sample(6, random_state=0)
    params = {**SMALL, "max_iter": 4}
    eager = MAMLRegressor(**params).fit(tasks)

    def broken(function, **options):
        raise RuntimeError("no C++ compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    est = MAMLRegressor(**params, compile=True)
    with pytest.warns(UserWarning, match=r"torch.compile failed \(RuntimeError: no C\+\+") as w:
        est.fit(tasks)
        assert est.score(tasks) == eager.score(tasks)
    assert len([x for x in w if "torch.compile" in str(x.message)]) == 1
    assert est.loss_curve_ == eager.loss_curve_

    # Failing when the compiled function runs (not when it is built) falls back the same way.
    def fails_later(function, **options):
        def run(*args):
            raise torch._dynamo.exc.Unsupported("vmap of this op")

        return run

    monkeypatch.setattr(torch, "compile", fails_later)
    est = MAMLRegressor(**params, compile=True)
    with pytest.warns(UserWarning, match="torch.compile failed .*Unsupported") as w:
        est.fit(tasks)
    assert len([x for x in w if "torch.compile" in str(x.message)]) == 1
    assert est.loss_curve_ == eager.loss_curve_


@pytest.mark.compile
def test_compile_option_survives_clone_pickle_and_grid_search():
    import pickle

    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV

    tasks = SinusoidTasks(n_samples=8).sample(6, random_state=0)
    est = MAMLRegressor(**{**SMALL, "max_iter": 2}, compile={"backend": "eager"}).fit(tasks)
    assert clone(est).get_params()["compile"] == {"backend": "eager"}
    loaded = pickle.loads(pickle.dumps(est))
    assert not hasattr(loaded, "_compiled_cache") and loaded.compile == {"backend": "eager"}
    assert loaded.score(tasks) == est.score(tasks)  # rebuilt lazily on first use
    assert loaded._compiled_cache.failure is None
    search = GridSearchCV(est, {"compile": [False, {"backend": "eager"}]}, cv=2).fit(tasks)
    assert [p["compile"] for p in search.cv_results_["params"]] == [False, {"backend": "eager"}]
    scores = search.cv_results_["mean_test_score"]
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-5)


def test_bad_compile_value_is_rejected():
    with pytest.raises(ValueError, match="compile must be True, False or a dict"):
        MAMLRegressor(compile="yes").fit(SinusoidTasks(n_samples=8).sample(3, random_state=0))


class HostReads(torch.overrides.TorchFunctionMode):
    """Records every copy of a tensor's values to the host (a device sync on CUDA)."""

    READS = (
        torch.Tensor.tolist,
        torch.Tensor.item,
        torch.Tensor.cpu,
        torch.Tensor.numpy,
        torch.Tensor.__bool__,
    )

    def __init__(self):
        super().__init__()
        self.reads = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.READS:
            self.reads.append(func.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("case", ["equal", "uneven", "sampler", "classifier"])
def test_meta_training_reads_the_device_once_per_check_only(case):
    """No host read (device sync) inside a meta-step: 40 outer steps read the device
    twice per check of 20 steps (the meta-losses, and whether the parameters are
    finite), whatever the tasks."""
    tasks = {
        "equal": SinusoidTasks(n_samples=12).sample(10, random_state=0),
        "uneven": uneven_tasks([12] * 9 + [40], n_features=1),
        "sampler": SinusoidTasks(n_samples=12),
        "classifier": FewShotDigits(3, 2, 3, split="meta-train").sample(10, random_state=0),
    }[case]
    cls = MAMLClassifier if case == "classifier" else MAMLRegressor
    est = cls(**{**META, "max_iter": 20, "warm_start": True}).fit(tasks)
    est.set_params(max_iter=40)
    with HostReads() as mode:
        est.fit(tasks)
    assert mode.reads == ["tolist", "__bool__"] * 2
