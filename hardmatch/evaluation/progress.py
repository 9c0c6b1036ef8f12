"""The progress bar of an evaluation run."""

from __future__ import annotations

import sys
from typing import Sequence

from .specs import Task


class Progress:
    """A ``click.progressbar`` on stderr over the tasks to compute, showing "pair / pipeline"."""

    def __init__(self, tasks: Sequence[Task], enabled: bool, dataset: str) -> None:
        self._bar = None
        self._tasks, self._enabled, self._dataset = tasks, enabled, dataset

    def __enter__(self) -> "Progress":
        if self._enabled and self._tasks:
            import click

            self._bar = click.progressbar(length=len(self._tasks), label=f"eval {self._dataset}", file=sys.stderr,
                                          show_pos=True, item_show_func=lambda item: item)
            self._bar.__enter__()
        return self

    def show(self, task: Task) -> None:
        """Name the task about to run."""
        if self._bar is not None:
            self._bar.update(0, f"{task.pair.name} / {task.pipeline.label}")

    def advance(self, row: dict) -> None:
        """Count a finished row."""
        if self._bar is not None:
            self._bar.update(1, f"{row['pair']} / {row['pipeline']}")

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
