"""bitfab.staging: an output folder is written all at once, on any file system, and the litter of
a killed writer is swept."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bitfab.staging import staged_output, sweep_stale


def test_new_folder_appears_only_on_success(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), staged_output(out) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    with staged_output(out) as tmp:
        (tmp / "a.txt").write_text("whole")
    assert (out / "a.txt").read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_existing_folder_keeps_other_files_and_no_temp_litter(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    (out / "sub").mkdir()
    (out / "sub" / "old").write_text("old")
    with staged_output(out) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "new").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "sub"]
    assert [p.name for p in (out / "sub").iterdir()] == ["new"]


@pytest.mark.skipif(
    not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat("/dev").st_dev,
    reason="needs /dev/shm as a mount point of its own",
)
def test_output_that_is_a_mount_point_of_another_file_system():
    """/dev/shm is a tmpfs mounted on /dev (another file system): staging beside it in /dev
    would make every os.replace cross a device (EXDEV) - it must stage inside it."""
    out = Path("/dev/shm")
    name = f"bitfab-staging-{uuid.uuid4().hex}"
    try:
        with staged_output(out) as tmp:
            (tmp / name).write_text("ok")
        assert (out / name).read_text() == "ok"
        assert not [p for p in out.iterdir() if p.name.startswith(".shm.tmp-")]
    finally:
        (out / name).unlink(missing_ok=True)


def test_temp_folders_of_dead_processes_are_swept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(dead.stdout)
    stale = tmp_path / f".out.tmp-{pid}-abcd1234"
    stale.mkdir()
    (stale / "top.bin").write_bytes(b"\0" * 100)
    live = tmp_path / f".out.tmp-{os.getpid()}-live0000"
    live.mkdir()
    unrelated = tmp_path / ".out.tmp-notapid"
    unrelated.mkdir()
    with staged_output(tmp_path / "out") as tmp:
        (tmp / "x").write_text("x")
    assert not stale.exists()
    assert live.exists() and unrelated.exists()
    assert sweep_stale(tmp_path) == []


def test_an_output_that_cannot_be_created_is_one_bitfab_error(tmp_path):
    from bitfab.errors import BitfabError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with (
        pytest.raises(BitfabError, match=r"cannot write .*file/out"),
        staged_output(blocker / "out"),
    ):
        pass


def test_folder_lock_refuses_a_second_writer_and_dies_with_its_holder(tmp_path):
    from bitfab.errors import BitfabError
    from bitfab.staging import folder_lock

    with folder_lock(tmp_path, "bitfab build"):
        with pytest.raises(BitfabError, match=rf"another bitfab build \(pid {os.getpid()}\)"):
            with folder_lock(tmp_path, "bitfab build"):
                pass
    with folder_lock(tmp_path):  # released
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom bitfab.staging import folder_lock\n"
         f"with folder_lock({str(tmp_path)!r}):\n    print('held', flush=True); time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(BitfabError, match=rf"pid {holder.pid}"), folder_lock(tmp_path):
        pass
    holder.kill()
    holder.wait()
    with folder_lock(tmp_path):  # a killed holder leaves no stale lock
        pass
