"""JUnit XML for ``bitfab verify --junit FILE``: each verified accelerator is one test case, so a
CI dashboard (GitLab, Jenkins, GitHub test reporters) lists it with its result and time.

A file that already holds bitfab test cases gets the new one added (or replaced, same name), so
several ``bitfab verify --junit results.xml`` calls in one CI job give one report.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

SUITE = "bitfab verify"


def case_name(rep: dict) -> str:
    """``ACC_DIR (backend, N images)``: the test case's name."""
    what = rep.get("family") and f"{rep['family']} netlist" or rep.get("backend", "rtl")
    return f"{rep['accelerator']} ({what}, {rep['images']} images)"


def write_junit(path: str | os.PathLike[str], rep: dict) -> None:
    """Add the verification report ``rep`` (``bitfab.sim.verify.verify`` or the gate-level one,
    with ``accelerator`` set) as a test case to the JUnit file at ``path``, atomically."""
    path = Path(path)
    suite = None
    if path.is_file():
        try:
            root = ET.parse(path).getroot()
            suite = root if root.tag == "testsuite" else root.find(f"testsuite[@name='{SUITE}']")
        except ET.ParseError:
            suite = None  # not ours or damaged: start afresh
    if suite is None:
        suite = ET.Element("testsuite", name=SUITE)
    name = case_name(rep)
    for old in suite.findall("testcase"):
        if old.get("name") == name:
            suite.remove(old)
    case = ET.SubElement(
        suite, "testcase", classname="bitfab.verify", name=name, time=f"{rep.get('wall_s', 0)}"
    )
    if not rep["passed"]:
        fm = rep.get("first_mismatch") or {}
        msg = f"image {fm.get('image')}: {fm.get('message', 'mismatch')}"
        failure = ET.SubElement(case, "failure", message=msg, type="mismatch")
        failure.text = str(fm.get("detail", ""))
    props = ET.SubElement(case, "properties")
    for key in ("cycles_per_image", "latency", "cycles_per_s"):
        if rep.get(key) is not None:
            ET.SubElement(props, "property", name=key, value=str(rep[key]))
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", "0")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    ET.ElementTree(suite).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)
