"""The functional inner loop: vmap path == loop path == plain autograd reference."""

import pytest
import torch
from torch import nn

from skmeta import _functional as fn
from skmeta._modules import MLP
from skmeta._tasks import MetaBatch


def ragged_batch(n_tasks=5, n_features=3, seed=0):
    """A meta-batch with unequal support/query sizes, zero-padded with weights."""
    gen = torch.Generator().manual_seed(seed)
    support_sizes = torch.randint(2, 7, (n_tasks,), generator=gen)
    query_sizes = torch.randint(3, 9, (n_tasks,), generator=gen)
    S, Q = int(support_sizes.max()), int(query_sizes.max())
    X_s = torch.randn(n_tasks, S, n_features, generator=gen)
    y_s = torch.randn(n_tasks, S, generator=gen)
    X_q = torch.randn(n_tasks, Q, n_features, generator=gen)
    y_q = torch.randn(n_tasks, Q, generator=gen)
    w_s = (torch.arange(S) < support_sizes[:, None]).float()
    w_q = (torch.arange(Q) < query_sizes[:, None]).float()
    # Padding rows hold garbage: masking must make it irrelevant.
    X_s[w_s == 0], X_q[w_q == 0] = 100.0, -100.0
    return MetaBatch(X_s, y_s, w_s, X_q, y_q, w_q), support_sizes, query_sizes


def reference_meta_gradient(model, batch, support_sizes, query_sizes, settings):
    """Straightforward MAML: per task, unpadded, torch.autograd.grad(create_graph=True)."""
    names = [name for name, _ in model.named_parameters()]
    meta_params = [p for _, p in model.named_parameters()]
    losses = []
    for t in range(batch.X_support.shape[0]):
        s, q = int(support_sizes[t]), int(query_sizes[t])
        X_s, y_s = batch.X_support[t, :s], batch.y_support[t, :s]
        X_q, y_q = batch.X_query[t, :q], batch.y_query[t, :q]
        params = list(meta_params)
        for _ in range(settings.steps):
            out = torch.func.functional_call(model, dict(zip(names, params)), (X_s,))
            inner = ((out.squeeze(-1) - y_s) ** 2).mean()
            grads = torch.autograd.grad(inner, params, create_graph=not settings.first_order)
            params = [p - settings.inner_lr * g for p, g in zip(params, grads)]
        out = torch.func.functional_call(model, dict(zip(names, params)), (X_q,))
        losses.append(((out.squeeze(-1) - y_q) ** 2).mean())
    return torch.autograd.grad(torch.stack(losses).mean(), meta_params)


def library_meta_gradient(model, batch, settings, batching):
    params = dict(model.named_parameters())
    loss = fn.meta_loss(model, fn.weighted_mse, params, {}, batch, settings, batching=batching)
    return torch.autograd.grad(loss, list(params.values()))


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 3])
def test_vmap_loop_and_reference_give_the_same_meta_gradient(first_order, steps):
    torch.manual_seed(0)
    model = MLP(3, 1, (16, 16))
    batch, support_sizes, query_sizes = ragged_batch()
    settings = fn.InnerLoop(inner_lr=0.05, steps=steps, first_order=first_order)

    reference = reference_meta_gradient(model, batch, support_sizes, query_sizes, settings)
    for batching in ("vmap", "loop"):
        ours = library_meta_gradient(model, batch, settings, batching)
        for g_ours, g_ref in zip(ours, reference):
            torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-6)


def test_first_and_second_order_gradients_differ():
    torch.manual_seed(0)
    model = MLP(3, 1, (16,))
    batch, _, _ = ragged_batch()
    second = library_meta_gradient(model, batch, fn.InnerLoop(0.1, 2, False), "vmap")
    first = library_meta_gradient(model, batch, fn.InnerLoop(0.1, 2, True), "vmap")
    assert any(not torch.allclose(a, b, atol=1e-6) for a, b in zip(second, first))


def test_adapt_batch_matches_adapt_per_task():
    torch.manual_seed(0)
    model = MLP(3, 1, (8,))
    batch, _, _ = ragged_batch()
    params = {k: v.detach() for k, v in model.named_parameters()}
    settings = fn.InnerLoop(0.1, 2)
    with torch.no_grad():
        batched = fn.adapt_batch(
            model,
            fn.weighted_mse,
            params,
            {},
            batch.X_support,
            batch.y_support,
            batch.w_support,
            settings,
        )
        looped = fn.adapt_batch(
            model,
            fn.weighted_mse,
            params,
            {},
            batch.X_support,
            batch.y_support,
            batch.w_support,
            settings,
            batching="loop",
        )
        for t in range(batch.X_support.shape[0]):
            single = fn.adapt(
                model,
                fn.weighted_mse,
                params,
                {},
                batch.X_support[t],
                batch.y_support[t],
                batch.w_support[t],
                settings,
            )
            for name in params:
                torch.testing.assert_close(batched[name][t], single[name])
                torch.testing.assert_close(looped[name][t], single[name])
        out_v = fn.predict_batch(model, batched, {}, batch.X_query)
        out_l = fn.predict_batch(model, batched, {}, batch.X_query, batching="loop")
    torch.testing.assert_close(out_v, out_l)


def test_adaptation_lowers_the_support_loss():
    torch.manual_seed(0)
    model = MLP(3, 1, (16,))
    batch, _, _ = ragged_batch()
    params = {k: v.detach() for k, v in model.named_parameters()}
    X, y, w = batch.X_support[0], batch.y_support[0], batch.w_support[0]
    with torch.no_grad():
        before = fn.task_loss(model, fn.weighted_mse, params, {}, X, y, w)
        adapted = fn.adapt(model, fn.weighted_mse, params, {}, X, y, w, fn.InnerLoop(0.05, 20))
        after = fn.task_loss(model, fn.weighted_mse, adapted, {}, X, y, w)
    assert after < 0.8 * before


def test_batchnorm_module_falls_back_to_the_loop():
    model = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    batch, _, _ = ragged_batch()
    params, buffers = dict(model.named_parameters()), dict(model.named_buffers())
    settings = fn.InnerLoop(0.01, 1)
    assert fn.choose_batching(model, fn.weighted_mse, params, buffers, batch, settings) == "loop"
    plain = MLP(3, 1)
    assert (
        fn.choose_batching(
            plain, fn.weighted_mse, dict(plain.named_parameters()), {}, batch, settings
        )
        == "vmap"
    )


def test_weighted_losses_ignore_padding():
    out = torch.tensor([[1.0], [2.0], [50.0]])
    y = torch.tensor([0.0, 0.0, 0.0])
    w = torch.tensor([1.0, 1.0, 0.0])
    assert fn.weighted_mse(out, y, w).item() == pytest.approx(2.5)
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [9.0, -9.0]])
    labels = torch.tensor([0, 1, 1])
    expected = torch.nn.functional.cross_entropy(logits[:2], labels[:2])
    assert fn.weighted_cross_entropy(logits, labels, w).item() == pytest.approx(expected.item())
