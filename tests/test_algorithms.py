"""Each algorithm's meta-gradient (or outer update) on one fixed meta-batch equals a
straightforward reference: plain autograd, a Python loop over tasks, no padding."""

import pytest
import torch
from torch.func import functional_call

from skmeta import _functional as fn
from skmeta._algorithms import (
    MAML,
    ProtoNet,
    Reptile,
    Step,
    distance_logits,
    multi_step_weights,
)
from skmeta._meta_parameters import MetaParameters
from skmeta._modules import MLP
from skmeta._tasks import MetaBatch
from skmeta._training import apply_update

BATCHINGS = ("vmap", "loop")
HEAD = ("layers.4.weight", "layers.4.bias")


def ragged_batch(n_tasks=5, n_features=3, seed=0, classes=None):
    """A meta-batch with unequal support/query sizes, zero-padded with weights.

    Regression targets, or class codes ``0..classes-1`` with every class in
    every support set.
    """
    gen = torch.Generator().manual_seed(seed)
    support_sizes = torch.randint(4, 8, (n_tasks,), generator=gen)
    query_sizes = torch.randint(3, 9, (n_tasks,), generator=gen)
    S, Q = int(support_sizes.max()), int(query_sizes.max())
    X_s = torch.randn(n_tasks, S, n_features, generator=gen)
    X_q = torch.randn(n_tasks, Q, n_features, generator=gen)
    if classes is None:
        y_s, y_q = torch.randn(n_tasks, S, generator=gen), torch.randn(n_tasks, Q, generator=gen)
    else:
        y_s = torch.arange(S).repeat(n_tasks, 1) % classes
        y_q = torch.randint(0, classes, (n_tasks, Q), generator=gen)
    w_s = (torch.arange(S) < support_sizes[:, None]).float()
    w_q = (torch.arange(Q) < query_sizes[:, None]).float()
    # Padding rows hold garbage: masking must make it irrelevant.
    X_s[w_s == 0], X_q[w_q == 0] = 100.0, -100.0
    return MetaBatch(X_s, y_s, w_s, X_q, y_q, w_q), support_sizes, query_sizes


def unpadded_tasks(batch, support_sizes, query_sizes):
    for t in range(batch.X_support.shape[0]):
        s, q = int(support_sizes[t]), int(query_sizes[t])
        yield (
            batch.X_support[t, :s],
            batch.y_support[t, :s],
            batch.X_query[t, :q],
            batch.y_query[t, :q],
        )


def mse(model, params, X, y):
    return ((functional_call(model, params, (X,)).squeeze(-1) - y) ** 2).mean()


def reference_maml_loss(
    model, meta, tasks, *, steps, first_order, step_size, trainable=None, weights=None
):
    """MAML by the book: per task, torch.autograd.grad(create_graph=True), a Python loop."""
    losses = []
    for X_s, y_s, X_q, y_q in tasks:
        params = dict(meta["init"])
        names = list(params) if trainable is None else list(trainable)
        path = []
        for k in range(steps):
            grads = torch.autograd.grad(
                mse(model, params, X_s, y_s),
                [params[n] for n in names],
                create_graph=not first_order,
            )
            params = {
                **params,
                **{n: params[n] - step_size(k, n) * g for n, g in zip(names, grads)},
            }
            path.append(params)
        if weights is None:
            losses.append(mse(model, path[-1], X_q, y_q))
        else:
            losses.append(sum(w * mse(model, p, X_q, y_q) for w, p in zip(weights, path)))
    return torch.stack(losses).mean()


def leaves(meta):
    return [(kind, name, t) for kind, ts in meta.items() for name, t in ts.items()]


def assert_same_gradient(ours: dict, reference_loss, meta):
    wrt = leaves(meta)
    reference = torch.autograd.grad(reference_loss, [t for *_, t in wrt])
    assert {(k, n) for k, ts in ours.items() for n in ts} == {(k, n) for k, n, _ in wrt}
    for (kind, name, _), g_ref in zip(wrt, reference):
        torch.testing.assert_close(
            ours[kind][name], g_ref, rtol=1e-4, atol=1e-6, msg=f"{kind} {name}"
        )


def maml_setup(seed=0):
    torch.manual_seed(seed)
    model = MLP(3, 1, (16, 16))
    init = {n: p.detach().clone().requires_grad_() for n, p in model.named_parameters()}
    batch, support_sizes, query_sizes = ragged_batch()
    net = fn.Network(model, fn.weighted_mse, {})
    return model, init, batch, list(unpadded_tasks(batch, support_sizes, query_sizes)), net


@pytest.mark.parametrize("batching", BATCHINGS)
@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 3])
def test_maml_meta_gradient_equals_the_reference(batching, first_order, steps):
    model, init, batch, tasks, net = maml_setup()
    meta = {"init": init}
    algorithm = MAML(inner_lr=0.05, inner_steps=steps, adapt_steps=steps, first_order=first_order)
    loss, grads = algorithm.outer_step(net, meta, batch, Step(), batching)
    reference = reference_maml_loss(
        model, meta, tasks, steps=steps, first_order=first_order, step_size=lambda k, n: 0.05
    )
    torch.testing.assert_close(loss, reference)
    assert_same_gradient(grads, reference, meta)


def test_first_and_second_order_gradients_differ():
    model, init, batch, _, net = maml_setup()
    meta = {"init": init}
    second = MAML(0.1, 2, 2).outer_step(net, meta, batch, Step(), "vmap")[1]["init"]
    first = MAML(0.1, 2, 2, first_order=True).outer_step(net, meta, batch, Step(), "vmap")[1][
        "init"
    ]
    assert any(not torch.allclose(second[n], first[n], atol=1e-6) for n in init)


@pytest.mark.parametrize("batching", BATCHINGS)
@pytest.mark.parametrize("first_order", [False, True])
def test_meta_sgd_gradient_reaches_the_learned_step_sizes(batching, first_order):
    model, init, batch, tasks, net = maml_setup()
    algorithm = MAML(0.05, 2, 2, first_order=first_order, learn_inner_lr="per-parameter")
    learned = algorithm.learned(init)["inner_lr"]
    # Distinct sizes per entry, so a mix-up of entries would show.
    gen = torch.Generator().manual_seed(1)
    sizes = {
        n: (t * torch.rand(t.shape, generator=gen) * 2).requires_grad_() for n, t in learned.items()
    }
    assert all(sizes[n].shape == init[n].shape for n in init)
    meta = {"init": init, "inner_lr": sizes}
    loss, grads = algorithm.outer_step(net, meta, batch, Step(), batching)
    reference = reference_maml_loss(
        model, meta, tasks, steps=2, first_order=first_order, step_size=lambda k, n: sizes[n]
    )
    assert_same_gradient(grads, reference, meta)
    assert all(grads["inner_lr"][n].abs().sum() > 0 for n in init)


@pytest.mark.parametrize("batching", BATCHINGS)
def test_lslr_gradient_per_layer_and_step(batching):
    model, init, batch, tasks, net = maml_setup()
    algorithm = MAML(0.05, 3, 3, learn_inner_lr="per-layer-per-step")
    learned = algorithm.learned(init)["log_inner_lr"]  # learned as logarithms: always positive
    assert all(torch.allclose(t.exp(), torch.full((3,), 0.05)) for t in learned.values())
    logs = {n: torch.tensor([0.05, 0.02, 0.08]).log().requires_grad_() for n in learned}
    meta = {"init": init, "log_inner_lr": logs}
    loss, grads = algorithm.outer_step(net, meta, batch, Step(), batching)
    reference = reference_maml_loss(
        model, meta, tasks, steps=3, first_order=False, step_size=lambda k, n: logs[n][k].exp()
    )
    assert_same_gradient(grads, reference, meta)


@pytest.mark.parametrize("batching", BATCHINGS)
def test_multi_step_loss_weights_every_steps_query_loss(batching):
    model, init, batch, tasks, net = maml_setup()
    meta = {"init": init}
    algorithm = MAML(0.05, 3, 3, msl_iterations=100)
    weights = multi_step_weights(3, 40, 100)
    loss, grads = algorithm.outer_step(net, meta, batch, Step(iteration=40), batching)
    reference = reference_maml_loss(
        model, meta, tasks, steps=3, first_order=False, step_size=lambda k, n: 0.05, weights=weights
    )
    torch.testing.assert_close(loss, reference)
    assert_same_gradient(grads, reference, meta)
    # After the annealing window: plain MAML's last-step loss.
    late = algorithm.outer_step(net, meta, batch, Step(iteration=100), batching)[0]
    plain = MAML(0.05, 3, 3).outer_step(net, meta, batch, Step(), batching)[0]
    torch.testing.assert_close(late, plain, rtol=0, atol=0)


def test_multi_step_weights_anneal_towards_the_last_step():
    assert multi_step_weights(4, 0, 100) == pytest.approx([0.25] * 4)
    middle, end = multi_step_weights(4, 50, 100), multi_step_weights(4, 100, 100)
    for weights in (middle, end, multi_step_weights(4, 10**6, 100)):
        assert sum(weights) == pytest.approx(1.0)
    assert middle[0] < 0.25 < middle[-1] < end[-1]
    assert end[:-1] == pytest.approx([0.03 / 4] * 3)  # MAML++'s floor for the earlier steps


@pytest.mark.parametrize("batching", BATCHINGS)
@pytest.mark.parametrize("learn_inner_lr", [None, "per-parameter"])
def test_anil_adapts_the_head_and_meta_learns_the_body(batching, learn_inner_lr):
    model, init, batch, tasks, net = maml_setup()
    algorithm = MAML(0.05, 2, 2, trainable=HEAD, learn_inner_lr=learn_inner_lr)
    meta = {"init": init}
    sizes = {}
    if learn_inner_lr:
        sizes = {n: t.requires_grad_() for n, t in algorithm.learned(init)["inner_lr"].items()}
        assert set(sizes) == set(HEAD)  # step sizes for the adapted parameters only
        meta["inner_lr"] = sizes
    loss, grads = algorithm.outer_step(net, meta, batch, Step(), batching)
    reference = reference_maml_loss(
        model,
        meta,
        tasks,
        steps=2,
        first_order=False,
        trainable=HEAD,
        step_size=lambda k, n: sizes.get(n, 0.05),
    )
    assert_same_gradient(grads, reference, meta)
    assert grads["init"]["layers.0.weight"].abs().sum() > 0  # the body is meta-learned
    with torch.no_grad():
        X_s, y_s, _, _ = tasks[0]
        adapted = algorithm.adapt(net, meta, X_s, y_s, torch.ones_like(y_s))
    for name in init:  # ...but not adapted
        assert torch.equal(adapted[name], init[name]) == (name not in HEAD), name


@pytest.mark.parametrize("batching", BATCHINGS)
@pytest.mark.parametrize("inner_optimizer", ["sgd", "adam"])
def test_reptile_update_is_eps_times_the_mean_difference(batching, inner_optimizer):
    model, _, batch, tasks, _ = maml_setup()
    meta_params = MetaParameters(model)
    theta = {n: p.detach().clone() for n, p in model.named_parameters()}
    net = fn.Network(model, fn.weighted_mse, {})
    algorithm = Reptile(0.05, 3, 3, inner_optimizer=inner_optimizer, outer_step_size=0.3)
    step = Step(iteration=7, fraction=0.25)
    loss, update = algorithm.outer_step(net, meta_params.tree(), batch, step, batching)
    phis, _ = algorithm._solutions(net, meta_params.tree(), batch, batching)
    apply_update(meta_params.tree(), update, algorithm.outer_update, optimizer=None)
    eps = 0.3 * (1 - 0.25)
    for name, p in model.named_parameters():
        expected = theta[name] + eps * (phis[name] - theta[name]).mean(dim=0)
        assert torch.equal(p.detach(), expected), name  # exactly, not approximately

    # Each task's solution phi_i is plain SGD/Adam on its own (unpadded) support rows.
    for t, (X_s, y_s, _, _) in enumerate(tasks):
        reference = MLP(3, 1, (16, 16))
        reference.load_state_dict(theta)
        optimizer = (torch.optim.Adam if inner_optimizer == "adam" else torch.optim.SGD)(
            reference.parameters(), lr=0.05
        )
        for _ in range(3):
            optimizer.zero_grad()
            ((reference(X_s).squeeze(-1) - y_s) ** 2).mean().backward()
            optimizer.step()
        for name, p in reference.named_parameters():
            torch.testing.assert_close(phis[name][t], p.detach(), rtol=1e-4, atol=1e-6)


def test_reptile_step_size_falls_linearly_to_zero():
    algorithm = Reptile(0.1, 1, 1, outer_step_size=0.5)
    sizes = [algorithm.step_size(Step(fraction=i / 4)) for i in range(4)]
    assert sizes == pytest.approx([0.5, 0.375, 0.25, 0.125])


def protonet_setup():
    torch.manual_seed(0)
    model = MLP(3, 4, (8,))  # a 4-dimensional embedding
    init = {n: p.detach().clone().requires_grad_() for n, p in model.named_parameters()}
    batch, support_sizes, query_sizes = ragged_batch(classes=3)
    net = fn.Network(model, fn.weighted_cross_entropy, {})
    return model, init, batch, list(unpadded_tasks(batch, support_sizes, query_sizes)), net


def test_protonet_logits_are_negative_squared_distances_to_prototypes():
    model, init, batch, tasks, net = protonet_setup()
    X_s, y_s, X_q, _ = tasks[0]
    with torch.no_grad():
        adapted = ProtoNet(n_classes=3).adapt(
            net, {"init": init}, X_s, y_s, torch.ones_like(y_s, dtype=torch.float)
        )
        logits = ProtoNet(n_classes=3).predict(net, {"init": init}, adapted, X_q)
        support, query = model(X_s), model(X_q)
    for c in range(3):
        prototype = support[y_s == c].mean(dim=0)
        torch.testing.assert_close(adapted["prototypes"][c], prototype)
        for i in range(len(X_q)):
            by_hand = -sum((query[i, d] - prototype[d]) ** 2 for d in range(4))
            torch.testing.assert_close(logits[i, c], by_hand)


@pytest.mark.parametrize("batching", BATCHINGS)
def test_protonet_meta_gradient_equals_the_reference(batching):
    model, init, batch, tasks, net = protonet_setup()
    meta = {"init": init}
    loss, grads = ProtoNet(n_classes=3).outer_step(net, meta, batch, Step(), batching)
    losses = []
    for X_s, y_s, X_q, y_q in tasks:
        support = functional_call(model, init, (X_s,))
        prototypes = torch.stack([support[y_s == c].mean(dim=0) for c in range(3)])
        query = functional_call(model, init, (X_q,))
        logits = -((query[:, None, :] - prototypes[None]) ** 2).sum(-1)
        losses.append(torch.nn.functional.cross_entropy(logits, y_q))
    reference = torch.stack(losses).mean()
    torch.testing.assert_close(loss, reference)
    assert_same_gradient(grads, reference, meta)


def test_protonet_prototype_slots_of_absent_classes_get_no_probability():
    # A 2-class task in a batch padded to 3 prototype slots: slot 2 is masked.
    model, init, _, _, net = protonet_setup()
    X = torch.randn(6, 3)
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    w = torch.ones(6)
    two = ProtoNet(n_classes=2).episode_loss(
        net,
        {"init": init},
        MetaBatch(X[None], y[None], w[None], X[None], y[None], w[None]),
        Step(),
        "vmap",
    )
    three = ProtoNet(n_classes=3).episode_loss(
        net,
        {"init": init},
        MetaBatch(X[None], y[None], w[None], X[None], y[None], w[None]),
        Step(),
        "vmap",
    )
    torch.testing.assert_close(two, three)
    assert distance_logits(torch.zeros(1, 2), torch.ones(3, 2)).shape == (1, 3)
