"""Task samplers and task data sets."""

from ._digits import FewShotDigits, load_rotated_digits
from ._sinusoid import SinusoidTasks

__all__ = ["FewShotDigits", "SinusoidTasks", "load_rotated_digits"]
