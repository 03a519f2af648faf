"""Task input and its representation inside skmeta.

The only place task input is parsed (:mod:`._readers`), the one
representation inside (:class:`TaskSet`, :class:`PaddedTasks`,
:class:`MetaBatch`, in :mod:`._taskset`) and the sources of meta-batches
during meta-training (:mod:`._sources`). Data flows one way: input ->
``TaskSet`` -> padded tensors on the device -> ``MetaBatch``.
"""

from ._readers import (
    draw_tasks,
    has_tasks,
    is_sampler,
    is_task_list,
    read_features,
    read_task,
    read_tasks,
)
from ._sources import FixedTasks, SampledTasks, score_batches
from ._taskset import (
    MAX_QUERY_ROWS,
    MetaBatch,
    PaddedTasks,
    TaskRows,
    TaskSet,
    split_on_host,
    task_name,
)

__all__ = [
    "FixedTasks",
    "MetaBatch",
    "MAX_QUERY_ROWS",
    "PaddedTasks",
    "SampledTasks",
    "TaskRows",
    "TaskSet",
    "draw_tasks",
    "has_tasks",
    "is_sampler",
    "is_task_list",
    "read_features",
    "read_task",
    "read_tasks",
    "score_batches",
    "split_on_host",
    "task_name",
]
