"""SIGTERM and Ctrl-C of a running command: one error line with what to do next, exit 143 / 130,
nothing half-written."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest


@pytest.mark.parametrize("sig,code,word", [(signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                           (signal.SIGINT, 130, "interrupted")])  # fmt: skip
def test_train_stopped_midway(tmp_path, sig, code, word):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "bitfab", "train", "--model", "tfc", "--wbits", "1",
            "--epochs", "1000", "--dataset", "digits", "--quiet", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoint.pt").exists() and time.time() < deadline:  # an epoch is done
        time.sleep(0.2)
    assert (out / "checkpoint.pt").exists(), proc.stderr.read() if proc.poll() is not None else ""
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert lines == [f"error: {word}; rerun with --resume to continue from the last finished "
                     "epoch"], err  # fmt: skip
    assert not (out / "model.onnx").exists() and not (out / "metrics.json").exists()
    assert not [p for p in tmp_path.rglob(".*tmp-*")], "staging litter"
