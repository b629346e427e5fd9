"""``bitfab train`` through ``bitfab.cli.main``."""

from __future__ import annotations

import json

from bitfab.cli import main


def test_train_cli_writes_outputs(tmp_path, capsys):
    cfg = tmp_path / "mixed.toml"
    cfg.write_text('model = "cnv-s"\nwbits = [2, 4, 4, 2]\nabits = [2, 1, 4]\n')
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--config",
            str(cfg),
            "--in-bits",
            "4",
            "--epochs",
            "1",
            "--out",
            str(out),
            "--dataset",
            "digits",
            "--limit",
            "64",
            "--batch-size",
            "32",
            "--check-images",
            "40",
            "--quiet",
        ]
    )
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["config"] == {
        "model": "cnv-s",
        "wbits": [2, 4, 4, 2],
        "abits": [2, 1, 4],
        "in_bits": 4,
        "dropout": 0.0,
    }
    assert m["export_check"]["images"] == 40 and m["export_check"]["ok"]
    assert (out / "model.onnx").stat().st_size > 0 and (out / "checkpoint.pt").is_file()
    assert "test accuracy" in capsys.readouterr().out


def test_train_cli_bad_bits_exit_2_no_folder(tmp_path, capsys):
    out = tmp_path / "bad"
    rc = main(
        [
            "train",
            "--model",
            "tfc",
            "--wbits",
            "9",
            "--abits",
            "1",
            "--epochs",
            "1",
            "--out",
            str(out),
            "--dataset",
            "digits",
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "wbits=9" in err and "1-8" in err and "\n" not in err
    assert not out.exists()
    rc = main(
        ["train", "--model", "cnv-s", "--wbits", "2,2", "--out", str(out), "--dataset", "digits"]
    )
    assert rc == 2 and "wbits has 2 entries" in capsys.readouterr().err
    assert not out.exists()


def test_train_cli_missing_data(tmp_path, capsys):
    rc = main(
        [
            "train",
            "--model",
            "tfc",
            "--out",
            str(tmp_path / "o"),
            "--data-dir",
            str(tmp_path / "nd"),
        ]
    )
    assert rc == 2 and "apt-get install dataset-fashion-mnist" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
