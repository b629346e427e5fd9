"""bitfab.cache.run_cached: a step is skipped only when its key matches and its outputs are intact."""

from __future__ import annotations

import json

from bitfab.cache import run_cached


def _step(calls: list):
    def work(tmp):
        calls.append(1)
        (tmp / "top.bin").write_bytes(bytes(range(256)) * 4)
        (tmp / "logs").mkdir()
        (tmp / "logs" / "pnr.log").write_text(f"run {len(calls)}\n")
        return {"bitstream": "top.bin", "runs": len(calls)}

    return work


def test_same_key_and_intact_outputs_are_cached(tmp_path):
    calls: list = []
    folder = tmp_path / "bitstream"
    r1, cached1, _ = run_cached(folder, "k1", {"x": 1}, _step(calls))
    r2, cached2, s2 = run_cached(folder, "k1", {"x": 1}, _step(calls))
    assert (cached1, cached2, len(calls)) == (False, True, 1)
    assert r2 == r1 and s2 == 0.0
    files = json.loads((folder / "step.json").read_text())["files"]
    assert sorted(files) == ["logs/pnr.log", "top.bin"] and files["top.bin"][0] == 1024


def test_a_deleted_output_reruns_the_step(tmp_path):
    calls: list = []
    folder = tmp_path / "bitstream"
    run_cached(folder, "k1", {}, _step(calls))
    (folder / "top.bin").unlink()
    res, cached, _ = run_cached(folder, "k1", {}, _step(calls))
    assert not cached and len(calls) == 2 and res["runs"] == 2
    assert (folder / "top.bin").is_file()


def test_an_edited_or_truncated_output_reruns_the_step(tmp_path):
    calls: list = []
    folder = tmp_path / "verify"
    run_cached(folder, "k1", {}, _step(calls))
    data = bytearray((folder / "top.bin").read_bytes())
    data[10] ^= 1  # same size, other bytes
    (folder / "top.bin").write_bytes(bytes(data))
    assert run_cached(folder, "k1", {}, _step(calls))[1] is False
    (folder / "logs" / "pnr.log").write_text("")
    assert run_cached(folder, "k1", {}, _step(calls))[1] is False
    assert len(calls) == 3


def test_other_key_or_a_step_json_without_manifest_reruns(tmp_path):
    calls: list = []
    folder = tmp_path / "compile"
    run_cached(folder, "k1", {}, _step(calls))
    assert run_cached(folder, "k2", {}, _step(calls))[1] is False
    meta = json.loads((folder / "step.json").read_text())
    del meta["files"]  # a step.json of an older bitfab: no manifest to check against
    (folder / "step.json").write_text(json.dumps(meta))
    assert run_cached(folder, "k2", {}, _step(calls))[1] is False
    assert run_cached(folder, "k2", {}, _step(calls))[1] is True
    assert len(calls) == 3
