"""Statistics shared by the benchmark scripts."""

import numpy as np


def mean_ci(values) -> tuple[float, float]:
    """Mean and half-width of the 95% normal confidence interval."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(1.96 * values.std(ddof=1) / np.sqrt(len(values)))
