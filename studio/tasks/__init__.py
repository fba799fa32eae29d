"""Tasks: how a batch becomes a loss, which metrics, which preview arrays.

One module per task kind; :func:`get_task` maps a project's ``task`` name to its object.
"""

from studio.tasks.base import Task
from studio.tasks.classification import ClassificationTask

TASKS: dict[str, type[Task]] = {"classification": ClassificationTask}


def get_task(kind: str) -> Task:
    """The task object for ``kind`` (raises KeyError naming the known kinds)."""
    try:
        return TASKS[kind]()
    except KeyError:
        raise KeyError(f"unknown task {kind!r}; known: {', '.join(TASKS)}") from None


__all__ = ["TASKS", "ClassificationTask", "Task", "get_task"]
