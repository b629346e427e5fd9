"""QAT training on the digits set: outputs, determinism, resume, and refusal paths."""

from __future__ import annotations

import json

import pytest
import torch

from bitfab.errors import BitfabError
from bitfab.models import train as train_mod
from bitfab.models.config import make_config
from bitfab.models.train import train

KW = {"dataset": "digits", "limit": 192, "batch_size": 64, "progress": False}


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


@pytest.mark.parametrize("quantizer", ["finn", "stats", "lsq", "pact"])
def test_train_resume_equals_uninterrupted(tmp_path, monkeypatch, quantizer):
    """Also for the quantizer families' own state (running statistics, LSQ step sizes and
    their first-batch initialisation, PACT clipping levels)."""
    cfg = make_config("tfc", [2, 4, 4, 2], [4, 2, 4], in_bits=8, quantizer=quantizer)
    full = train(cfg, tmp_path / "full", epochs=2, **KW)
    assert {p.name for p in (tmp_path / "full").iterdir()} == {
        "model.onnx",
        "metrics.json",
        "checkpoint.pt",
    }
    assert json.loads((tmp_path / "full" / "metrics.json").read_text()) == json.loads(
        json.dumps(full)
    )
    assert full["test_images"] == 360 and full["train_images"] == 192  # full digits test split
    chk = full["export_check"]
    assert chk["images"] == 360 and chk["disagree_not_tie"] == 0 and chk["ok"]
    assert full["config"]["wbits"] == [2, 4, 4, 2] and len(full["history"]) == 2
    assert full["quantizer"] == quantizer

    # Interrupt a 2-epoch run right after its first checkpoint, then resume it.
    real_save = train_mod._atomic_save

    def save_then_interrupt(obj, path):
        real_save(obj, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "_atomic_save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "half", epochs=2, **KW)
    monkeypatch.undo()
    assert [p.name for p in (tmp_path / "half").iterdir()] == [
        "checkpoint.pt"
    ]  # nothing half-written
    resumed = train(None, tmp_path / "half", epochs=2, resume=True, **{**KW, "batch_size": None})
    a, b = (
        _weights(tmp_path / "full" / "checkpoint.pt"),
        _weights(tmp_path / "half" / "checkpoint.pt"),
    )
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    assert resumed["test_accuracy"] == full["test_accuracy"]
    assert [h["train_loss"] for h in resumed["history"]] == [
        h["train_loss"] for h in full["history"]
    ]


def test_training_learns_digits(tmp_path):
    # Independent reference: chance level on 10 balanced classes is ~10%.
    m = train(make_config("tfc", 2, 2, in_bits=8), tmp_path / "r", epochs=3, **{**KW, "limit": 600})
    assert m["test_accuracy"] > 0.5


def test_refusals_leave_no_output(tmp_path):
    cfg = make_config("tfc", 1, 1)
    with pytest.raises(BitfabError, match="no checkpoint"):
        train(cfg, tmp_path / "none", epochs=1, resume=True, **KW)
    assert not (tmp_path / "none").exists()
    with pytest.raises(BitfabError, match="epochs"):
        train(cfg, tmp_path / "e", epochs=0, **KW)
    with pytest.raises(BitfabError, match="BITFAB_FASHION_MNIST"):
        train(cfg, tmp_path / "d", epochs=1, data_dir=tmp_path / "nodata", progress=False)
    assert not (tmp_path / "e").exists() and not (tmp_path / "d").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("keep")
    with pytest.raises(BitfabError, match="not empty"):
        train(cfg, tmp_path / "busy", epochs=1, **KW)
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["x"]


def test_resume_rejects_other_config(tmp_path):
    train(make_config("tfc", 1, 1), tmp_path / "r", epochs=1, **KW)
    with pytest.raises(BitfabError, match="differs"):
        train(make_config("tfc", 2, 2), tmp_path / "r", epochs=2, resume=True, **KW)
    with pytest.raises(BitfabError, match="lr"):
        train(None, tmp_path / "r", epochs=2, resume=True, **{**KW, "lr": 0.5})


def test_float_model_trains_without_export(tmp_path):
    m = train(make_config("cnv-s", "float"), tmp_path / "f", epochs=1, **KW)
    assert m["precision"] == "float" and m["export_check"] is None and m["lr"] == 0.01
    assert {p.name for p in (tmp_path / "f").iterdir()} == {"metrics.json", "checkpoint.pt"}
