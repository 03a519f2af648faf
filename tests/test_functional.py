"""The functional core: the one inner loop, its update rules and the batching switch."""

import pytest
import torch
from torch import nn

from skmeta import _functional as fn
from skmeta._algorithms import MAML, FineTune
from skmeta._modules import MLP


def toy_problem(seed=0, n_features=3, hidden=(8,)):
    torch.manual_seed(seed)
    model = MLP(n_features, 1, hidden)
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    X, y = torch.randn(12, n_features), torch.randn(12)
    return model, params, X, y, torch.ones(12)


def test_weighted_losses_ignore_padding():
    out = torch.tensor([[1.0], [2.0], [50.0]])
    y = torch.tensor([0.0, 0.0, 0.0])
    w = torch.tensor([1.0, 1.0, 0.0])
    assert fn.weighted_mse(out, y, w).item() == pytest.approx(2.5)
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [9.0, -9.0]])
    labels = torch.tensor([0, 1, 1])
    expected = torch.nn.functional.cross_entropy(logits[:2], labels[:2])
    assert fn.weighted_cross_entropy(logits, labels, w).item() == pytest.approx(expected.item())


def test_no_weights_is_the_unit_weighted_loss_and_gradient():
    """w=None (a meta-batch without padding) gives the same loss and meta-gradient,
    bit for bit, as weights of ones, through a second-order inner step under vmap."""
    model, params, _, _, _ = toy_problem()
    params = {k: v.requires_grad_() for k, v in params.items()}
    X, y = torch.randn(4, 10, 3), torch.randn(4, 10)
    net = fn.Network(model, fn.weighted_mse, {}, fn.has_tied_tensors(model))
    assert net.tied is False
    shared = nn.Linear(3, 3)
    assert fn.has_tied_tensors(nn.Sequential(shared, nn.ReLU(), shared))

    def meta_loss(w):
        def task(X, y, w):
            adapted = fn.inner_loop(net.support_loss(X, y, w), params, fn.SGD(0.1), 1)[-1]
            return net.loss(adapted, X, y, w)

        loss = fn.over_tasks(task, "vmap")(X, y, w).mean()
        return loss, torch.autograd.grad(loss, list(params.values()))

    plain, weighted = meta_loss(None), meta_loss(torch.ones(4, 10))
    assert torch.equal(plain[0], weighted[0])
    assert all(torch.equal(a, b) for a, b in zip(plain[1], weighted[1]))
    logits, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, 1, 0])
    assert torch.equal(
        fn.weighted_cross_entropy(logits, labels, None),
        fn.weighted_cross_entropy(logits, labels, torch.ones(6)),
    )


def test_sgd_inner_loop_equals_plain_autograd_steps():
    model, params, X, y, w = toy_problem()
    net = fn.Network(model, fn.weighted_mse, {})
    with torch.no_grad():
        ours = fn.inner_loop(net.support_loss(X, y, w), params, fn.SGD(0.05), 4)[-1]
    reference = {k: v.clone().requires_grad_() for k, v in params.items()}
    for _ in range(4):
        loss = fn.weighted_mse(torch.func.functional_call(model, reference, (X,)), y, w)
        grads = torch.autograd.grad(loss, list(reference.values()))
        reference = {
            k: (v - 0.05 * g).detach().requires_grad_()
            for (k, v), g in zip(reference.items(), grads)
        }
    for name in params:
        torch.testing.assert_close(ours[name], reference[name].detach())


def test_adam_rule_matches_torch_optim_adam():
    model, params, X, y, w = toy_problem()
    net = fn.Network(model, fn.weighted_mse, {})
    with torch.no_grad():
        tuned = fn.inner_loop(net.support_loss(X, y, w), params, fn.Adam(0.01), 5)[-1]
    reference = MLP(3, 1, (8,))
    reference.load_state_dict(params)
    optimizer = torch.optim.Adam(reference.parameters(), lr=0.01)
    for _ in range(5):
        optimizer.zero_grad()
        fn.weighted_mse(reference(X), y, w).backward()
        optimizer.step()
    for name, p in reference.named_parameters():
        torch.testing.assert_close(tuned[name], p.detach())


def test_fine_tuning_with_sgd_is_the_maml_adaptation():
    model, params, X, y, w = toy_problem()
    net, meta = fn.Network(model, fn.weighted_mse, {}), {"init": params}
    with torch.no_grad():
        tuned = FineTune(lr=0.05, steps=4).adapt(net, meta, X, y, w)
        adapted = MAML(inner_lr=0.05, inner_steps=1, adapt_steps=4).adapt(net, meta, X, y, w)
    for name in params:
        torch.testing.assert_close(tuned[name], adapted[name], rtol=0, atol=0)


def test_trainable_subset_updates_only_those_parameters():
    model, params, X, y, w = toy_problem()
    net = fn.Network(model, fn.weighted_mse, {})
    head = ("layers.2.weight", "layers.2.bias")
    with torch.no_grad():
        out = fn.inner_loop(net.support_loss(X, y, w), params, fn.SGD(0.1), 3, trainable=head)[-1]
    assert list(out) == list(params)  # every parameter, in the module's order
    for name in params:
        assert torch.equal(out[name], params[name]) == (name not in head), name


def test_trajectory_holds_every_step():
    model, params, X, y, w = toy_problem()
    net = fn.Network(model, fn.weighted_mse, {})
    loss_of = net.support_loss(X, y, w)
    with torch.no_grad():
        path = fn.inner_loop(loss_of, params, fn.SGD(0.05), 3, trajectory=True)
        for steps in range(4):
            last = fn.inner_loop(loss_of, params, fn.SGD(0.05), steps)[-1]
            for name in params:
                torch.testing.assert_close(path[steps][name], last[name], rtol=0, atol=0)
    assert len(path) == 4 and path[0] is params


def test_per_step_rule_uses_each_steps_size_and_repeats_the_last():
    model, params, X, y, w = toy_problem()
    net = fn.Network(model, fn.weighted_mse, {})
    sizes = {name: torch.tensor([0.1, 0.0]) for name in params}  # step 2 and later: no move
    loss_of = net.support_loss(X, y, w)
    with torch.no_grad():
        one = fn.inner_loop(loss_of, params, fn.SGD(0.1), 1)[-1]
        three = fn.inner_loop(loss_of, params, fn.PerStepSGD(sizes), 3)[-1]
    for name in params:
        torch.testing.assert_close(three[name], one[name])


def test_per_parameter_rule_scales_each_entry():
    model, params, X, y, w = toy_problem()
    net = fn.Network(model, fn.weighted_mse, {})
    loss_of = net.support_loss(X, y, w)
    sizes = {name: torch.full_like(p, 0.03) for name, p in params.items()}
    sizes["layers.0.weight"][0] = 0.0  # the first hidden unit's weights stay put
    with torch.no_grad():
        ours = fn.inner_loop(loss_of, params, fn.PerParameterSGD(sizes), 1)[-1]
        plain = fn.inner_loop(loss_of, params, fn.SGD(0.03), 1)[-1]
    torch.testing.assert_close(ours["layers.0.weight"][0], params["layers.0.weight"][0])
    torch.testing.assert_close(ours["layers.0.weight"][1:], plain["layers.0.weight"][1:])
    torch.testing.assert_close(ours["layers.2.bias"], plain["layers.2.bias"])


def test_adaptation_lowers_the_support_loss():
    model, params, X, y, w = toy_problem(hidden=(16,))
    net = fn.Network(model, fn.weighted_mse, {})
    with torch.no_grad():
        before = net.loss(params, X, y, w)
        after = net.loss(
            fn.inner_loop(net.support_loss(X, y, w), params, fn.SGD(0.05), 20)[-1], X, y, w
        )
    assert after < 0.8 * before


def test_over_tasks_loop_equals_vmap_on_nested_results():
    model, params, _, _, _ = toy_problem()
    net = fn.Network(model, fn.weighted_mse, {})
    gen = torch.Generator().manual_seed(0)
    X, y = torch.randn(4, 6, 3, generator=gen), torch.randn(4, 6, generator=gen)
    w = torch.ones(4, 6)

    def one_task(X_t, y_t, w_t):
        adapted = fn.inner_loop(net.support_loss(X_t, y_t, w_t), params, fn.SGD(0.1), 2)[-1]
        return adapted, net.loss(adapted, X_t, y_t, w_t)

    with torch.no_grad():
        (p_vmap, l_vmap), (p_loop, l_loop) = (
            fn.over_tasks(one_task, batching)(X, y, w) for batching in fn.BATCHINGS
        )
    torch.testing.assert_close(l_vmap, l_loop)
    for name in params:
        assert p_vmap[name].shape == (4, *params[name].shape)
        torch.testing.assert_close(p_vmap[name], p_loop[name])
    with pytest.raises(ValueError, match="batching must be one of"):
        fn.over_tasks(one_task, "threads")


def test_batchnorm_module_falls_back_to_the_loop():
    model = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    probed = []
    assert fn.choose_batching(model, probed.append) == "loop"
    assert probed == []  # decided from the module alone
    assert fn.choose_batching(MLP(3, 1), lambda batching: None) == "vmap"

    def fails_under_vmap(batching):
        raise RuntimeError("data-dependent control flow")

    assert fn.choose_batching(MLP(3, 1), fails_under_vmap) == "loop"


def test_inner_loop_may_update_buffers_in_place():
    # BatchNorm in training mode writes its running statistics during the inner steps.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1)).train()
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    net = fn.Network(model, fn.weighted_mse, buffers)
    X, y, w = torch.randn(10, 3), torch.randn(10), torch.ones(10)
    before = buffers["1.running_mean"].clone()
    with torch.no_grad():
        fn.inner_loop(net.support_loss(X, y, w), params, fn.SGD(0.1), 2, buffers=buffers)
    assert not torch.equal(buffers["1.running_mean"], before)
    assert buffers["1.num_batches_tracked"].item() == 2


def network_outputs_and_grads(net, params, X, y, seed):
    """A second-order meta-gradient through one vmapped inner step, dropout drawn from ``seed``."""
    from skmeta._random import OwnGenerator

    params = {k: v.clone().requires_grad_() for k, v in params.items()}
    generator = torch.Generator().manual_seed(seed)

    def task(X, y):
        adapted = fn.inner_loop(net.support_loss(X, y, None), params, fn.SGD(0.1), 1)[-1]
        return net(adapted, X)

    with OwnGenerator(generator):
        outputs = fn.over_tasks(task, "vmap")(X, y)
    grads = torch.autograd.grad(outputs.square().mean(), list(params.values()))
    return outputs, grads


@pytest.mark.parametrize("dropout, training", [(0.0, False), (0.3, True), (0.3, False)])
def test_mlp_forward_with_is_functional_call_bit_for_bit(dropout, training):
    """The default MLP runs as a function of its parameters (no functional_call swap):
    outputs and second-order meta-gradients equal functional_call's exactly, dropout
    masks included."""
    torch.manual_seed(0)
    model = MLP(3, 1, (8, 8), dropout=dropout).train(training)
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    X, y = torch.randn(4, 6, 3), torch.randn(4, 6)
    direct = fn.Network(model, fn.weighted_mse, {})
    assert direct._forward_with
    swapped = fn.Network(model, fn.weighted_mse, {})
    object.__setattr__(swapped, "_forward_with", False)  # functional_call, as for any module
    out_direct, grads_direct = network_outputs_and_grads(direct, params, X, y, seed=5)
    out_swapped, grads_swapped = network_outputs_and_grads(swapped, params, X, y, seed=5)
    torch.testing.assert_close(out_direct, out_swapped, rtol=0, atol=0)
    for a, b in zip(grads_direct, grads_swapped):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    if training:  # the masks are drawn: another seed gives other outputs
        other, _ = network_outputs_and_grads(direct, params, X, y, seed=6)
        assert not torch.equal(other, out_direct)


def test_subclasses_and_hooked_mlps_go_through_functional_call():
    class Doubled(MLP):
        def forward(self, X):
            return 2 * super().forward(X)

    assert not fn.Network(Doubled(2, 1, (4,)), fn.weighted_mse, {})._forward_with
    model = MLP(2, 1, (4,))
    handle = model.layers[0].register_forward_hook(lambda module, args, out: out * 0)
    hooked = fn.Network(model, fn.weighted_mse, {})
    assert not hooked._forward_with
    params = dict(model.named_parameters())
    torch.testing.assert_close(  # the hook zeroed the first layer: the bias is left
        hooked(params, torch.randn(5, 2)), model.layers[2].bias.expand(5, 1), rtol=0, atol=0
    )
    handle.remove()
    assert fn.Network(model, fn.weighted_mse, {})._forward_with
