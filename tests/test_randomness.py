"""Every random draw comes from the estimator's own generators.

Dropout masks, module initialisation and fine-tune shuffling are drawn
from generators seeded by ``random_state``: torch's global generator is
never read nor reseeded, so results do not depend on it, on the thread, or
on the process.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_contract import ESTIMATORS, make, meta_state, tasks_for
from torch import nn

from skmeta._random import OwnGenerator, draws_random_numbers


def generator(seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_dropout_runs_depend_on_random_state_only(name):
    tasks = tasks_for(name)
    held_out = tasks[10:]
    results = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        est = make(name, module__dropout=0.3).fit(tasks[:10])
        assert est._draws_random_
        X, y = held_out[0]
        first = est.adapt(X, y).predict(X)
        second = est.adapt(X, y).predict(X)  # dropout is on while adapting
        np.testing.assert_array_equal(first, second)
        scores = [est.score(held_out), est.score(held_out)]
        assert scores[0] == scores[1]
        assert torch.equal(torch.get_rng_state(), state), "the global generator was read"
        results.append((meta_state(est), first, scores[0]))
    (params_1, predictions_1, score_1), (params_2, predictions_2, score_2) = results
    assert all(torch.equal(params_1[k], params_2[k]) for k in params_1)
    np.testing.assert_array_equal(predictions_1, predictions_2)
    assert score_1 == score_2


def test_dropout_masks_change_the_run():
    """The masks are real: the same seed without dropout trains differently."""
    tasks = tasks_for("MAML")
    with_dropout = meta_state(make("MAML", module__dropout=0.3).fit(tasks))
    without = meta_state(make("MAML").fit(tasks))
    assert not make("MAML").fit(tasks)._draws_random_
    assert any(not torch.equal(with_dropout[k], without[k]) for k in without)


SCRIPT = textwrap.dedent(
    """
    import hashlib, sys
    import numpy as np, torch
    sys.path.insert(0, "tests")
    torch.manual_seed(int(sys.argv[1]))  # a different global seed in each process
    from test_contract import make, tasks_for
    digest = hashlib.sha256()
    for name in ["MAML", "Reptile", "ProtoNet", "FineTune"]:
        tasks = tasks_for(name)
        est = make(name, module__dropout=0.3).fit(tasks[:10])
        X, y = tasks[10]
        digest.update(est.adapt(X, y).predict(X).tobytes())
        digest.update(np.float64(est.score(tasks[10:])).tobytes())
        for value in est.meta_params_.state_dict().values():
            digest.update(value.numpy().tobytes())
    print(digest.hexdigest())
    """
)


def test_same_random_state_gives_bit_identical_runs_across_processes():
    digests = [
        subprocess.run(
            [sys.executable, "-c", SCRIPT, seed],
            capture_output=True,
            text=True,
            check=True,
            env={"OMP_NUM_THREADS": "1", "PATH": ""},
        ).stdout.strip()
        for seed in ("1", "2")
    ]
    assert len(digests[0]) == 64
    assert digests[0] == digests[1]


def test_module_construction_matches_a_seeded_global_generator_without_touching_it():
    torch.manual_seed(3)
    reference = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)).state_dict()
    state = torch.get_rng_state()
    with OwnGenerator(generator(3)):
        built = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)).state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(reference[k], built[k]) for k in reference)


def test_dropout_masks_follow_the_generator():
    X = torch.ones(6, 5)
    with OwnGenerator(generator(0)):
        a = F.dropout(X, 0.5)
        channels = nn.Dropout2d(0.5)(torch.ones(2, 4, 3, 3))
    with OwnGenerator(generator(0)):
        b = F.dropout(X, 0.5)
    assert torch.equal(a, b)
    assert set(a.unique().tolist()) == {0.0, 2.0}
    # Dropout2d drops whole channels: every channel is all 0 or all 2.
    per_channel = channels.flatten(2)
    assert torch.equal(per_channel.min(-1).values, per_channel.max(-1).values)
    with OwnGenerator(generator(0)):
        assert torch.equal(F.dropout(X, 0.5, training=False), X)


def test_draws_are_recorded_and_unsupported_draws_refused():
    net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.2))
    X = torch.ones(2, 3)
    assert draws_random_numbers(lambda: net.train()(X))
    assert not draws_random_numbers(lambda: net.eval()(X))
    linear = nn.Linear(3, 3)
    assert not draws_random_numbers(lambda: linear(X))
    assert draws_random_numbers(lambda: nn.Linear(3, 3))  # its initialisation draws
    with pytest.raises(TypeError, match="alpha_dropout.*global generator"):
        with OwnGenerator(generator(0)):
            F.alpha_dropout(X, 0.5, training=True)


def test_threads_keep_their_own_generators():
    """A mode entered in one thread does not reach another thread's draws."""
    from concurrent.futures import ThreadPoolExecutor

    def draw(seed):
        with OwnGenerator(generator(seed)):
            return [torch.rand(3) for _ in range(200)]

    serial = [draw(seed) for seed in range(4)]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(draw, range(4)))
    for got, want in zip(threaded, serial):
        assert all(torch.equal(a, b) for a, b in zip(got, want))
