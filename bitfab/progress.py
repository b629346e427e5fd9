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
    ``update(done, total)`` (``total`` may change, e.g. when the real count is known)."""
    from rich.progress import Progress

    with Progress(console=console, transient=transient) as bar:
        task = bar.add_task(label, total=total)

        def update(done: int, new_total: int | None = None) -> None:
            if new_total is None:
                bar.update(task, completed=done)
            else:
                bar.update(task, completed=done, total=new_total)

        yield update
