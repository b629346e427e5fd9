"""Write an output folder all at once: nothing half-written is left behind on failure."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def staged_output(out_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``out_dir``; on success move its files into ``out_dir``.

    On any exception the temporary folder is removed and ``out_dir`` is left as it was (if it did
    not exist before, it still does not). Files already in ``out_dir`` that the step does not
    write are kept; files it writes replace the old ones (each ``os.replace`` is atomic).
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    existed = out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        for item in tmp.iterdir():
            target = out / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(item, target)
    except BaseException:
        if not existed:
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
