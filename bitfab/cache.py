"""bitfab's caches: one root folder, and the content-hash step cache of the build.

**One root.** Every cache lives under :func:`cache_root` (``$BITFAB_CACHE``, default
``~/.cache/bitfab``): ``sim/`` (Verilator/Icarus builds), ``explore/`` (trained models of a sweep),
``mixed/`` (mixed-precision cost tables). ``$BITFAB_SIM_CACHE`` still overrides ``sim/`` alone
(the older name of that folder's variable).

**Step cache.** A step of a build writes one folder; :func:`run_cached` runs its work into a fresh
folder unless the folder's ``step.json`` was written for the same key (the SHA-256 of the step's
inputs, :func:`bitfab.content_hash.content_key`) **and** every file the step wrote is still
there with the size and SHA-256 recorded in ``step.json`` (``files``): a deleted or edited output
makes the step run again instead of reporting a file that is gone. The folder is written all at
once (:func:`bitfab.staging.staged_output`) and ``step.json`` last, so an interrupted step is
redone.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bitfab.content_hash import sha256_file
from bitfab.staging import staged_output

#: The sub-folders of the cache root bitfab uses.
CACHE_KINDS = ("sim", "explore", "mixed")


def cache_root() -> Path:
    """``$BITFAB_CACHE``, or ``~/.cache/bitfab``."""
    env = os.environ.get("BITFAB_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "bitfab"


def cache_dir(kind: str) -> Path:
    """The cache folder of ``kind`` (one of :data:`CACHE_KINDS`) under :func:`cache_root`;
    ``sim`` honours ``$BITFAB_SIM_CACHE`` first."""
    if kind not in CACHE_KINDS:
        raise ValueError(f"unknown cache {kind!r}; expected one of {CACHE_KINDS}")
    if kind == "sim" and os.environ.get("BITFAB_SIM_CACHE"):
        return Path(os.environ["BITFAB_SIM_CACHE"])
    return cache_root() / kind


def manifest(folder: Path) -> dict[str, list]:
    """``{relative path: [size in bytes, sha256]}`` of every file below ``folder`` except
    ``step.json``."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != "step.json":
            files[path.relative_to(folder).as_posix()] = [path.stat().st_size, sha256_file(path)]
    return files


def outputs_intact(folder: Path, files: dict) -> bool:
    """Every file of ``files`` (a :func:`manifest`) is in ``folder`` with its size and hash."""
    for rel, (size, digest) in files.items():
        path = folder / rel
        try:
            if path.stat().st_size != size or sha256_file(path) != digest:
                return False
        except OSError:
            return False
    return True


def cached_result(folder: Path, key: str) -> dict | None:
    """The ``step.json`` of ``folder`` if it was written for ``key`` and the files it lists are
    intact (:func:`outputs_intact`), else None."""
    meta = folder / "step.json"
    if not meta.is_file():
        return None
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    files = data.get("files")
    if not isinstance(files, dict) or not outputs_intact(folder, files):
        return None
    return data


def run_cached(
    folder: Path, key: str, inputs: dict[str, Any], work: Callable[[Path], dict]
) -> tuple[dict, bool, float]:
    """Run ``work(tmp)`` into a fresh ``folder`` unless its ``step.json`` matches ``key``.

    Returns ``(result, cached, seconds)``: ``result`` is what ``work`` returned (stored in
    ``step.json`` with ``inputs`` and the seconds it took), or the stored one when cached.
    """
    hit = cached_result(folder, key)
    if hit is not None:
        return hit["result"], True, 0.0
    t0 = time.perf_counter()
    if folder.exists():
        shutil.rmtree(folder)
    with staged_output(folder) as tmp:
        result = work(tmp)
        seconds = round(time.perf_counter() - t0, 2)
        meta = {
            "key": key,
            "inputs": inputs,
            "result": result,
            "seconds": seconds,
            "files": manifest(tmp),
        }
        (tmp / "step.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return result, False, seconds
