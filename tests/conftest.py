"""Shared fixtures: small task families and a short-trained MAML model."""

import numpy as np
import pytest
import sklearn

from skmeta import MAMLRegressor
from skmeta.datasets import SinusoidTasks


@pytest.fixture
def routing():
    """Turn scikit-learn's metadata routing on for one test."""
    sklearn.set_config(enable_metadata_routing=True)
    try:
        yield
    finally:
        sklearn.set_config(enable_metadata_routing=False)


@pytest.fixture(scope="session")
def sine_tasks():
    """60 fixed sinusoid tasks of 20 points."""
    return SinusoidTasks(n_samples=20).sample(60, random_state=0)


@pytest.fixture(scope="session")
def long_format(sine_tasks):
    """The same tasks in long format: X, y, groups."""
    X = np.concatenate([X for X, _ in sine_tasks])
    y = np.concatenate([y for _, y in sine_tasks])
    groups = np.repeat(np.arange(len(sine_tasks)), [len(y) for _, y in sine_tasks])
    return X, y, groups


@pytest.fixture(scope="session")
def trained_maml():
    """A MAMLRegressor meta-trained briefly on the sinusoid family."""
    return MAMLRegressor(max_iter=1500, random_state=0).fit(SinusoidTasks(n_samples=20))
