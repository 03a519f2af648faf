"""The outer loop: outer updates of all meta-parameters, divergence checks and rollback.

Knows no algorithm and no scikit-learn: it applies the ``(loss, update)``
that an algorithm's ``outer_step`` returns — a meta-gradient for the outer
optimizer, or an increment added in place (Reptile) — checks for
non-finite values once per chunk of steps, and on divergence restores the
meta-parameters and optimizer state of the last good check.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from ._meta_parameters import MetaParameters, Tree

# Meta-losses are copied to the host in chunks of this many steps: one sync per chunk.
CHECK_EVERY = 20


def _clone_state(state):
    """Copy of a (nested) state dict with its tensors cloned: deepcopy at a fraction of the cost."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {key: _clone_state(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_clone_state(value) for value in state)
    return copy.deepcopy(state)


def snapshot(meta_params: MetaParameters, optimizer) -> dict:
    """Copies of the meta-parameters (with buffers) and of the optimizer's state."""
    return {
        "meta_params": {k: v.detach().clone() for k, v in meta_params.state_dict().items()},
        # Adam's moments absorb a NaN gradient too; warm starts need them clean.
        "optimizer": None if optimizer is None else _clone_state(optimizer.state_dict()),
    }


def restore(meta_params: MetaParameters, optimizer, state: dict) -> None:
    meta_params.load_state_dict(state["meta_params"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])


# Devices with torch's fused Adam kernel: one kernel per parameter tensor instead of
# about ten small operations, a tenth of a millisecond per outer step for a small MLP.
_FUSED_ADAM_DEVICES = ("cpu", "cuda")


def outer_adam(params, lr: float, device) -> torch.optim.Adam:
    """The outer optimizer: Adam, fused where torch has the kernel.

    The fused kernel computes the same update as the per-tensor loop, up to
    float rounding (its operations are ordered differently: after 2,000
    steps on a 1-40-40-1 MLP, 2% of the entries differ, by one unit in the
    last place).
    """
    fused = torch.device(device).type in _FUSED_ADAM_DEVICES or None
    return torch.optim.Adam(params, lr=lr, fused=fused)


def apply_update(meta: Tree, update: Tree, outer_update: str, optimizer) -> None:
    """Apply an algorithm's outer update to the live meta-parameters ``meta``
    (``MetaParameters.tree()``, taken once per fit: it is the same tensors every step).

    ``"gradient"``: the update is the meta-gradient, stepped by ``optimizer``
    (meta-parameters without an entry get no gradient and are skipped).
    ``"increment"``: the update is added in place.
    """
    if outer_update == "gradient":
        for kind, tensors in meta.items():
            grads = update.get(kind, {})
            for name, param in tensors.items():
                param.grad = grads.get(name)
        optimizer.step()
    elif outer_update == "increment":
        with torch.no_grad():
            for kind, tensors in update.items():
                for name, increment in tensors.items():
                    meta[kind][name].add_(increment)
    else:
        raise ValueError(f"Unknown outer update {outer_update!r}")


def all_finite(tensors) -> bool:
    """Whether every tensor is free of NaN and inf, with one copy to the host."""
    tensors = [t.detach().reshape(-1) for t in tensors]
    return not tensors or bool(torch.isfinite(torch.cat(tensors)).all())


def run_outer_steps(
    meta_params: MetaParameters,
    optimizer,
    take_step: Callable[[int], torch.Tensor],
    n_steps: int,
    *,
    record: Callable[[list[float]], None],
    divergence_message: Callable[[int, float, bool], str],
    verbose: int | bool = 0,
) -> None:
    """Run ``take_step(i)`` for ``i < n_steps``, recording its meta-losses per chunk.

    ``take_step`` applies one outer update and returns the detached
    meta-loss (left on the device). Every :data:`CHECK_EVERY` steps the
    losses are copied to the host at once; when one is NaN or inf, or a
    meta-parameter is (a non-finite gradient with a finite loss), the
    meta-parameters and optimizer state of the previous check are restored
    and ``FloatingPointError(divergence_message(first_bad, loss,
    loss_was_finite))`` is raised, ``first_bad`` counting from the chunk's
    start. Otherwise ``record(losses)`` is called with the chunk.

    Any other exception raised during a chunk (by the module, a sampler's
    bad task, ``KeyboardInterrupt``) also restores the state of the previous
    check before it propagates, so that the meta-parameters and optimizer
    state always agree with what ``record`` has been given: the steps of an
    unfinished chunk are discarded.
    """
    pending: list[torch.Tensor] = []
    last_good = snapshot(meta_params, optimizer)
    diverged = None
    try:
        # leave=True: the bar stays on screen after fit, like scikit-learn's verbose output.
        with tqdm(total=n_steps, disable=not verbose, desc="meta-train", leave=True) as bar:
            for step in range(n_steps):
                pending.append(take_step(step))
                if len(pending) < CHECK_EVERY and step < n_steps - 1:
                    continue
                losses = torch.stack(pending).tolist()
                pending.clear()
                bad = [i for i, loss in enumerate(losses) if not math.isfinite(loss)]
                if not bad and not all_finite(meta_params.parameters()):
                    bad = [len(losses) - 1]  # finite losses: the last step's update was not
                if bad:
                    diverged = bad[0], losses[bad[0]]
                    break
                record(losses)
                bar.update(len(losses))
                bar.set_postfix(meta_loss=f"{losses[-1]:.4g}")
                # The state to come back to; after the last chunk, everything is recorded.
                last_good = snapshot(meta_params, optimizer) if step < n_steps - 1 else None
    except BaseException:
        # An error or interrupt inside a chunk (from the module, a sampler, Ctrl-C):
        # back to the chunk's start, the state that n_iter_ and loss_curve_ describe.
        if last_good is not None:
            restore(meta_params, optimizer, last_good)
        raise
    if diverged is not None:
        restore(meta_params, optimizer, last_good)
        first, loss = diverged
        raise FloatingPointError(divergence_message(first, loss, math.isfinite(loss)))
