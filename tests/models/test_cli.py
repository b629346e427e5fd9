"""``bitfab train`` through ``bitfab.cli.main``."""

from __future__ import annotations

import json

import pytest

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


def _train(tmp_path, *extra: str) -> list[str]:
    return [
        "train",
        *extra,
        "--epochs",
        "1",
        "--dataset",
        "digits",
        "--limit",
        "64",
        "--batch-size",
        "32",
        "--check-images",
        "20",
        "--quiet",
    ]


def test_train_cli_float_is_wbits_float(tmp_path, capsys):
    out = tmp_path / "float"
    assert main(_train(tmp_path, "--model", "tfc", "--float", "--out", str(out))) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["precision"] == "float" and m["quantizer"] is None
    assert m["config"]["wbits"] == [32] * 4 and m["config"]["abits"] == [32] * 3
    assert not (out / "model.onnx").exists() and (out / "checkpoint.pt").is_file()
    rc = main(_train(tmp_path, "--float", "--wbits", "2", "--out", str(tmp_path / "x")))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--float and --wbits 2 disagree" in err and "\n" not in err
    assert not (tmp_path / "x").exists()


def test_train_cli_json_config_and_quantizer(tmp_path, capsys):
    """A ModelConfig JSON (what 'bitfab mixed' writes) and a whole metrics.json both work."""
    cfg = {"model": "tfc", "wbits": [2, 4, 4, 2], "abits": [2, 2, 4], "in_bits": 8, "dropout": 0.0}
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(cfg))
    out = tmp_path / "run"
    rc = main(_train(tmp_path, "--config", str(path), "--quantizer", "lsq", "--out", str(out)))
    assert rc == 0, capsys.readouterr().err
    m = json.loads((out / "metrics.json").read_text())
    assert m["config"] == {**cfg, "quantizer": "lsq"} and m["quantizer"] == "lsq"
    assert m["export_check"]["ok"]
    assert "(lsq)" in capsys.readouterr().out
    # the run's own metrics.json is a config file too (its "config" dict)
    again = tmp_path / "again"
    rc = main(
        _train(tmp_path, "--config", str(out / "metrics.json"), "--float", "--out", str(again))
    )
    assert rc == 0
    assert json.loads((again / "metrics.json").read_text())["config"]["model"] == "tfc"


@pytest.mark.parametrize(
    "content, words",
    [
        ("{not json", "invalid JSON"),
        ("[2, 2]", "must be a JSON object"),
        ('{"model": "tfc", "bits": 2}', "unknown key(s) bits"),
        ('{"model": "tfc", "wbits": 9}', "wbits=9"),
        ('{"model": "tfc", "wbits": 1, "quantizer": "pact"}', "does not apply at 1 bit"),
    ],
)
def test_train_cli_bad_json_config_one_line(tmp_path, capsys, content, words):
    path = tmp_path / "bad.json"
    path.write_text(content)
    out = tmp_path / "o"
    rc = main(_train(tmp_path, "--config", str(path), "--out", str(out)))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and words in err and "\n" not in err
    assert not out.exists()


def test_train_cli_missing_config_and_1_bit_family(tmp_path, capsys):
    rc = main(
        _train(tmp_path, "--config", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o"))
    )
    assert rc == 2 and "config file not found" in capsys.readouterr().err
    rc = main(_train(tmp_path, "--wbits", "1", "--quantizer", "lsq", "--out", str(tmp_path / "o")))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "quantizer 'lsq' does not apply at 1 bit" in err and "\n" not in err
    assert not (tmp_path / "o").exists()
