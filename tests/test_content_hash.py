"""bitfab.content_hash.source_hash: the caches' code key really covers the named sources."""

from __future__ import annotations

import hashlib

import bitfab
from bitfab import content_hash
from bitfab.content_hash import PACKAGE_ROOT, source_hash
from bitfab.flows.build import BUILD_STEPS
from bitfab.flows.mixed.search import COST_SOURCES

EMPTY = hashlib.sha256().hexdigest()


def test_package_root_is_the_bitfab_package():
    assert PACKAGE_ROOT == type(PACKAGE_ROOT)(bitfab.__file__).resolve().parent


def test_every_source_part_the_caches_name_exists():
    parts = {p for step in BUILD_STEPS for p in step.sources} | set(COST_SOURCES)
    missing = [p for p in sorted(parts) if not (PACKAGE_ROOT / p).exists()]
    assert missing == [], f"cache keys name sources that do not exist: {missing}"
    assert source_hash(COST_SOURCES) != EMPTY


def test_hash_follows_a_file_edit(tmp_path, monkeypatch):
    pkg = tmp_path / "bitfab"
    (pkg / "dataflow").mkdir(parents=True)
    (pkg / "dataflow" / "cost.py").write_text("A = 1\n")
    monkeypatch.setattr(content_hash, "PACKAGE_ROOT", pkg)
    before = source_hash(["dataflow"])
    (pkg / "dataflow" / "cost.py").write_text("A = 2\n")
    assert source_hash(["dataflow"]) != before != EMPTY
    assert source_hash(["nowhere"]) == EMPTY
