"""The sinusoid task family of the MAML paper (Finn et al., 2017, section 5.1)."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state


class SinusoidTasks:
    """Regression tasks ``y = amplitude * sin(x - phase)``, one per draw.

    Amplitude is uniform in ``amplitude_range``, phase in ``phase_range``
    and the inputs uniform in ``x_range``, as in the MAML paper. The object
    is a task sampler: pass it to ``fit`` for fresh tasks at every meta-batch,
    or call :meth:`sample` for a fixed, reproducible list of tasks.

    Parameters
    ----------
    n_samples : int, default=20
        Points per task.
    amplitude_range : tuple of float, default=(0.1, 5.0)
    phase_range : tuple of float, default=(0, pi)
    x_range : tuple of float, default=(-5.0, 5.0)

    Examples
    --------
    >>> from skmeta.datasets import SinusoidTasks
    >>> tasks = SinusoidTasks(n_samples=20).sample(3, random_state=0)
    >>> len(tasks), tasks[0][0].shape, tasks[0][1].shape
    (3, (20, 1), (20,))
    """

    def __init__(
        self,
        n_samples: int = 20,
        *,
        amplitude_range: tuple[float, float] = (0.1, 5.0),
        phase_range: tuple[float, float] = (0.0, np.pi),
        x_range: tuple[float, float] = (-5.0, 5.0),
    ):
        if int(n_samples) != n_samples or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}.")
        self.n_samples = int(n_samples)
        self.amplitude_range = amplitude_range
        self.phase_range = phase_range
        self.x_range = x_range

    def __repr__(self) -> str:
        return f"SinusoidTasks(n_samples={self.n_samples})"

    def sample_functions(self, n_tasks: int, random_state=None) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n_tasks`` (amplitude, phase) pairs."""
        rng = check_random_state(random_state)
        amplitude = rng.uniform(*self.amplitude_range, size=n_tasks)
        phase = rng.uniform(*self.phase_range, size=n_tasks)
        return amplitude, phase

    @staticmethod
    def evaluate(X: np.ndarray, amplitude: float, phase: float) -> np.ndarray:
        """The task's function at inputs ``X`` of shape (n, 1)."""
        return amplitude * np.sin(np.asarray(X)[:, 0] - phase)

    def sample(self, n_tasks: int, random_state=None, *, return_functions: bool = False):
        """Draw ``n_tasks`` tasks.

        Parameters
        ----------
        n_tasks : int
        random_state : int, RandomState instance or None
            The same int gives the same list of tasks.
        return_functions : bool, default=False
            Also return the amplitudes and phases, shape (n_tasks,) each.

        Returns
        -------
        tasks : list of (X, y)
            ``X`` float32 of shape (n_samples, 1), ``y`` float32 of shape (n_samples,).
        amplitude, phase : ndarray, only with ``return_functions=True``
        """
        rng = check_random_state(random_state)
        amplitude, phase = self.sample_functions(n_tasks, rng)
        X = rng.uniform(*self.x_range, size=(n_tasks, self.n_samples, 1)).astype(np.float32)
        y = (amplitude[:, None] * np.sin(X[..., 0] - phase[:, None])).astype(np.float32)
        tasks = [(X[t], y[t]) for t in range(n_tasks)]
        if return_functions:
            return tasks, amplitude, phase
        return tasks
