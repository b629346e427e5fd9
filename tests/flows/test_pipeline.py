"""``bitfab flow`` (the main job): train -> dataflow -> golden check, reuse, and its errors."""

from __future__ import annotations

import json

from bitfab.cli import main


def test_flow_trains_streamlines_checks_and_reuses(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["flow", "--out", str(out), "--epochs", "1", "--check-images", "300"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    metrics = json.loads((out / "train" / "metrics.json").read_text())
    df = json.loads((out / "dataflow" / "dataflow.json").read_text())
    assert report["test_accuracy"] == metrics["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    assert report["dataflow"]["cycles_per_image"] == df["cycles_per_image"]
    assert report["dataflow"]["layers"] == len(df["layers"])
    g = report["golden_agreement"]
    assert g["images"] == 300 and g["real_mismatch_count"] == 0 and report["golden_agrees"]

    ckpt = out / "train" / "checkpoint.pt"
    before = ckpt.stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0  # same config and epochs: the training is reused, not redone
    assert ckpt.stat().st_mtime_ns == before
    assert "reusing the training" in capsys.readouterr().out


def test_flow_refuses_a_different_training_in_the_folder(tmp_path, capsys):
    out = tmp_path / "run"
    (out / "train").mkdir(parents=True)
    (out / "train" / "model.onnx").write_bytes(b"")
    (out / "train" / "metrics.json").write_text(
        json.dumps({"model": "sfc", "precision": "w2a2", "epochs": 3, "config": {}})
    )
    assert main(["flow", "--out", str(out), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different training" in err[0] and "--fresh" in err[0]
    assert not (out / "report.json").exists() and not (out / "dataflow").exists()


def test_flow_rejects_a_float_model_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["flow", "--out", str(out), "--wbits", "float"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "float" in err[0] and "1-8" in err[0]
    assert not out.exists()


def test_flow_refuses_an_unknown_board_or_a_bare_device_before_training(tmp_path, capsys):
    for board, words in (("no-such-board", "no-such-board"), ("up5k", "bare device")):
        out = tmp_path / board
        rc = main(["flow", "--out", str(out), "--epochs", "1", "--board", board])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and words in err[0], err
        assert not out.exists()  # nothing trained, nothing written
