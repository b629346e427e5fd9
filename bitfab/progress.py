"""Progress display shared by the stages and the CLI: one rich progress bar helper."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def progress_bar(
    console: Any, label: str, total: int | None, transient: bool = True
) -> Iterator[Callable[[int, int | None], None]]:
    """A rich progress bar on ``console`` (None: stderr) for the ``with`` block; yields
    ``update(done, total, label=None)`` (``total`` may change, e.g. when the real count is
    known; ``label`` replaces the bar's text, e.g. to say what it waits for)."""
    from rich.progress import Progress

    with Progress(console=console, transient=transient) as bar:
        task = bar.add_task(label, total=total)

        def update(done: int, new_total: int | None = None, label: str | None = None) -> None:
            extra = {} if label is None else {"description": label}
            if new_total is None:
                bar.update(task, completed=done, **extra)
            else:
                bar.update(task, completed=done, total=new_total, **extra)

        yield update
