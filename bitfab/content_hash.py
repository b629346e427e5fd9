"""Content hashes that key bitfab's caches (build steps, explore points, mixed-precision costs).

A cache entry is valid when the SHA-256 of everything it was made from matches: input files
(:func:`sha256_file`), the bitfab sources the work runs (:func:`source_hash`), the versions of the
packages it uses (:func:`package_versions`) and the options (:func:`content_key`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

#: The bitfab package folder (``parts`` of :func:`source_hash` are relative to it).
PACKAGE_ROOT = Path(__file__).resolve().parent  # the bitfab package folder


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_hash(parts: Iterable[str]) -> str:
    """SHA-256 over bitfab's Python sources under ``parts`` (folders or files relative to the
    package; a missing part counts as empty), each file by its relative path and bytes."""
    files: set[Path] = set()
    for part in parts:
        p = PACKAGE_ROOT / part
        files.update(p.rglob("*.py") if p.is_dir() else [p] if p.is_file() else [])
    h = hashlib.sha256()
    for p in sorted(files):
        h.update(p.relative_to(PACKAGE_ROOT).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """Installed version of each package (``"absent"`` when it is not installed)."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def content_key(inputs: dict[str, Any]) -> str:
    """SHA-256 of ``inputs`` as canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
