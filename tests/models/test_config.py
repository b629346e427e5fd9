"""Config validation: bit ranges, per-layer lists, float mode, TOML files."""

from __future__ import annotations

import json

import pytest

from bitfab.errors import BitfabError
from bitfab.models.config import (
    ARCHS,
    ModelConfig,
    load_config_file,
    load_json,
    load_toml,
    make_config,
)


@pytest.mark.parametrize("model", sorted(ARCHS))
def test_scalar_bits_expand_per_layer(model):
    arch = ARCHS[model]
    cfg = make_config(model, 3, 2)
    assert cfg.wbits == (3,) * arch.n_weight_layers
    assert cfg.abits == (2,) * arch.n_acts
    assert cfg.in_bits == arch.default_in_bits
    assert cfg.precision == "w3a2"
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_mixed_lists_and_strings():
    cfg = make_config("tfc", [2, 4, 4, 2], "4,2,4", in_bits="8")
    assert cfg.wbits == (2, 4, 4, 2) and cfg.abits == (4, 2, 4) and cfg.in_bits == 8
    assert cfg.precision == "mixed"
    assert make_config("cnv-s", "2,2,2,2").abits == (2, 2, 2)  # abits default = wbits[0]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"wbits": 0}, "wbits=0"),
        ({"wbits": 9}, "wbits=9"),
        ({"wbits": [2, 4, 9, 2]}, r"wbits\[2\]=9"),
        ({"abits": [1, 0, 1]}, r"abits\[1\]=0"),
        ({"in_bits": 9}, "in_bits=9"),
        ({"wbits": 16}, "wbits=16"),
    ],
)
def test_out_of_range_bits_name_field_and_range(kwargs, field):
    with pytest.raises(BitfabError, match=field) as e:
        make_config("tfc", **{"wbits": 1, **kwargs})
    assert "1-8" in str(e.value)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"wbits": [2, 2, 2]}, "wbits has 3 entries but model tfc needs 4"),
        ({"abits": [2, 2, 2, 2]}, "abits has 4 entries but model tfc needs 3"),
        ({"wbits": "two"}, "not a bit width"),
        ({"wbits": 2.5}, "not a bit width"),
        ({"wbits": 32, "abits": 2}, "float model"),
        ({"dropout": 1.5}, "dropout"),
    ],
)
def test_bad_shapes_and_types(kwargs, words):
    with pytest.raises(BitfabError, match=words):
        make_config("tfc", **{"wbits": 1, **kwargs})


def test_unknown_model():
    with pytest.raises(BitfabError, match="unknown model 'vgg'"):
        make_config("vgg")


def test_float_mode():
    for spec in (32, "float"):
        cfg = make_config("cnv-s", spec)
        assert cfg.is_float and cfg.precision == "float" and cfg.in_bits == 32


def test_toml(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('model = "cnv-s"\nwbits = [2, 4, 4, 8]\nabits = [2, 1, 4]\nin_bits = 8\n')
    cfg = make_config(**load_toml(p))
    assert cfg.wbits == (2, 4, 4, 8) and cfg.abits == (2, 1, 4)
    p.write_text('model = "tfc"\nweights = 2\n')
    with pytest.raises(BitfabError, match="unknown key"):
        load_toml(p)
    p.write_text("model = \n")
    with pytest.raises(BitfabError, match="invalid TOML"):
        load_toml(p)
    with pytest.raises(BitfabError, match="not found"):
        load_toml(tmp_path / "none.toml")


@pytest.mark.parametrize("quantizer", ["finn", "stats", "lsq", "pact"])
def test_quantizer_round_trips_and_default_is_left_out(quantizer):
    cfg = make_config("cnv-s", [2, 4, 4, 2], [2, 4, 4], quantizer=quantizer)
    d = cfg.to_dict()
    assert ("quantizer" in d) == (quantizer != "finn")  # old configs still compare equal
    assert ModelConfig.from_dict(d) == cfg and cfg.quantizer == quantizer


def test_json_config_plain_or_metrics(tmp_path):
    cfg = {"model": "tfc", "wbits": [2, 4, 4, 2], "abits": [2, 2, 4], "in_bits": 8, "dropout": 0.0}
    plain = tmp_path / "c.json"
    plain.write_text(json.dumps(cfg))
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"test_accuracy": 0.5, "config": {**cfg, "quantizer": "lsq"}}))
    assert load_json(plain) == cfg and load_config_file(plain) == cfg
    assert make_config(**load_config_file(metrics)).quantizer == "lsq"
    toml = tmp_path / "c.toml"
    toml.write_text('model = "tfc"\nwbits = 2\nquantizer = "stats"\n')
    assert (
        load_config_file(toml)
        == load_toml(toml)
        == {
            "model": "tfc",
            "wbits": 2,
            "quantizer": "stats",
        }
    )


@pytest.mark.parametrize(
    "content, words",
    [
        ("{", "invalid JSON"),
        ('"tfc"', "must be a JSON object"),
        ('{"model": "tfc", "w": 2}', "unknown key(s) w"),
    ],
)
def test_bad_json_config_one_line(tmp_path, content, words):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(BitfabError) as e:
        load_config_file(p)
    assert words in str(e.value) and str(p) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(BitfabError, match="config file not found"):
        load_json(tmp_path / "missing.json")
