"""bitfab.sim.junit: verification results as JUnit XML test cases."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bitfab.sim.junit import write_junit


def _rep(acc: str, passed: bool, images: int = 10) -> dict:
    rep = {"accelerator": acc, "backend": "verilator", "images": images, "passed": passed,
           "wall_s": 1.5, "cycles_per_image": 196}  # fmt: skip
    if not passed:
        rep["first_mismatch"] = {"image": 3, "message": "MVAU_1 differs", "detail": "word 2"}
    return rep


def test_cases_accumulate_and_failures_are_counted(tmp_path):
    f = tmp_path / "r.xml"
    write_junit(f, _rep("runs/a", True))
    write_junit(f, _rep("runs/b", False))
    write_junit(f, _rep("runs/a", True))  # same case again: replaced, not duplicated
    suite = ET.parse(f).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"runs/a (verilator, 10 images)", "runs/b (verilator, 10 images)"}
    fail = cases["runs/b (verilator, 10 images)"].find("failure")
    assert fail.get("message") == "image 3: MVAU_1 differs" and fail.text == "word 2"
    assert not list(tmp_path.glob(".*tmp*"))


def test_a_damaged_file_is_started_afresh(tmp_path):
    f = tmp_path / "r.xml"
    f.write_text("<testsuite><testcase")
    write_junit(f, _rep("runs/a", True))
    assert ET.parse(f).getroot().get("tests") == "1"
