"""Task samplers shipped with skmeta."""

import numpy as np
import pytest

from skmeta.datasets import SinusoidTasks


def test_sinusoid_tasks_shapes_ranges_and_reproducibility():
    family = SinusoidTasks(n_samples=15)
    tasks, amplitude, phase = family.sample(200, random_state=0, return_functions=True)
    assert len(tasks) == 200
    X, y = tasks[0]
    assert X.shape == (15, 1) and y.shape == (15,)
    X_all = np.concatenate([X for X, _ in tasks])
    assert X_all.min() >= -5 and X_all.max() <= 5
    assert amplitude.min() >= 0.1 and amplitude.max() <= 5
    assert phase.min() >= 0 and phase.max() <= np.pi
    for (X, y), a, p in zip(tasks[:5], amplitude, phase):
        np.testing.assert_allclose(y, SinusoidTasks.evaluate(X, a, p), rtol=1e-5, atol=1e-5)
    again = family.sample(200, random_state=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(tasks, again))
    other = family.sample(200, random_state=1)
    assert not np.array_equal(tasks[0][1], other[0][1])


def test_sinusoid_rejects_bad_size():
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        SinusoidTasks(n_samples=0)
