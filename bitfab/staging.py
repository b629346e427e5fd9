"""Write an output folder all at once: nothing half-written is left behind on failure.

The temporary folder lives on the same file system as the output, so every move is an atomic
``os.replace``: inside ``out_dir`` when it exists (it may be a mount point, a USB disk or a tmpfs
whose parent is another file system), beside it when it does not (the new folder is created in
that parent). Its name carries the process id (``.NAME.tmp-PID-XXXX``), so temporary folders of
a process that died without cleaning up (SIGKILL, power loss) are recognised and removed by the
next staged write into the same place.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bitfab.errors import BitfabError

_TMP = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep_stale(folder: Path) -> list[Path]:
    """Remove the temporary folders in ``folder`` left by processes that no longer run; returns
    what was removed."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        found = _TMP.match(entry.name)
        if found and entry.is_dir() and not _pid_alive(int(found["pid"])):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def staged_output(out_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder on ``out_dir``'s file system; on success move its files into
    ``out_dir``.

    On any exception the temporary folder is removed and ``out_dir`` is left as it was (if it did
    not exist before, it still does not). Files already in ``out_dir`` that the step does not
    write are kept; files it writes replace the old ones (each ``os.replace`` is atomic).
    """
    out = Path(out_dir)
    existed = out.is_dir()
    home = out if existed else out.parent
    try:
        home.mkdir(parents=True, exist_ok=True)
        sweep_stale(home)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=home))
    except OSError as e:
        raise BitfabError(f"cannot write {out}: {e.strerror or e}; choose another output") from None
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        out.mkdir(parents=True, exist_ok=True)
        for item in tmp.iterdir():
            target = out / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(item, target)
    except BaseException as e:
        if not existed:
            shutil.rmtree(out, ignore_errors=True)
        if isinstance(e, OSError):
            raise BitfabError(f"cannot write {out}: {e.strerror or e}") from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


LOCK_NAME = ".bitfab.lock"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], what: str = "bitfab") -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (``folder/.bitfab.lock``, ``flock``) for the block,
    or raise BitfabError at once if another process holds it (named by its pid). The lock goes
    with the process, so a killed holder never leaves the folder locked."""
    import fcntl

    path = Path(folder) / LOCK_NAME
    fh = open(path, "a+")  # noqa: SIM115 - held for the block
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            raise BitfabError(
                f"{folder}: another {what} (pid {holder}) is writing this folder; wait for it "
                "to finish or choose another --out"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        yield
    finally:
        fh.close()
