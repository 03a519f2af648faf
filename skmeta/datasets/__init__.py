"""Task samplers and task data sets."""

from ._sinusoid import SinusoidTasks

__all__ = ["SinusoidTasks"]
