"""The Python API (bitfab.api via ``import bitfab``): every name is there, lazily, with a
docstring, and the README's "From Python" script runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import bitfab

README = Path(__file__).resolve().parents[1] / "README.md"
NAMES = ("train", "quantize", "dataflow", "compile", "verify", "build", "explore", "GoldenModel")


def test_import_bitfab_is_light_and_lazy():
    code = (
        "import sys, bitfab\n"
        "heavy = [m for m in ('torch', 'brevitas', 'qonnx', 'finn', 'amaranth') if m in sys.modules]\n"
        "print(heavy, sorted(set(bitfab.API) - set(dir(bitfab))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"


@pytest.mark.parametrize("name", NAMES)
def test_every_command_is_a_documented_callable(name):
    obj = getattr(bitfab, name)
    assert callable(obj)
    assert obj.__doc__ and len(obj.__doc__.split()) >= 8


def test_dataflow_stays_callable_after_its_subpackage_is_imported():
    import bitfab.dataflow.golden  # noqa: F401 - binds the subpackage to bitfab.dataflow

    assert callable(bitfab.dataflow)
    assert bitfab.dataflow.golden.GoldenModel is bitfab.GoldenModel


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'bulid'"):
        bitfab.bulid  # noqa: B018


def test_bad_input_is_one_bitfab_error(tmp_path):
    with pytest.raises(bitfab.BitfabError, match="wbits"):
        bitfab.train(tmp_path / "t", model="tfc", wbits=9)
    assert not (tmp_path / "t").exists()
    with pytest.raises(bitfab.BitfabError, match="no.onnx: no such file"):
        bitfab.compile(tmp_path / "no.onnx", tmp_path / "acc", array="systolic")


@pytest.mark.verilator
def test_readme_from_python_script_runs(tmp_path):
    text = README.read_text()
    section = text[text.index("## From Python") :]
    script = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr[-3000:]
    found = re.search(r"QAT accuracy ([\d.]+)%; (\d+) cycles/image planned, ([\d.]+) in RTL; "
                      r"golden model right on (\d+)/50", out.stdout)  # fmt: skip
    assert found, out.stdout
    acc, planned, rtl, right = float(found[1]), int(found[2]), float(found[3]), int(found[4])
    assert planned <= 2000 and rtl > 0
    assert acc > 30 and right > 10  # all 8x8 digits, 2 epochs: far above chance (10 %)
    assert (tmp_path / "runs/py/acc/accelerator.v").is_file()
    assert (tmp_path / "runs/py/acc/verify.json").is_file()
