"""Shared plumbing of the quantization-methods benchmark (bench/methods.py and its parts).

``bench/results/methods.json`` holds one entry per part (``ptq``, ``datafree``, ``qat``, ``mixed``),
each ``{"rows": [...], "command": str, "machine": {...}, "seconds": float}``. Parts are run by
their own scripts (``bench/methods_<part>.py``) and merged here under a file lock, so two parts can
run at the same time without losing each other's rows.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import sys
from pathlib import Path

import psutil

RESULTS = Path(__file__).resolve().parent / "results" / "methods.json"


def machine() -> dict:
    """The machine a part ran on (cores, RAM, platform, load average at the end)."""
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def merge_part(part: str, rows: list[dict], seconds: float, path: Path = RESULTS) -> None:
    """Write ``rows`` as part ``part`` of ``path`` (other parts are kept)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {}
        data.setdefault("benchmark", "methods")
        data.setdefault("dataset", "fashion-mnist")
        data.setdefault("parts", {})
        data["parts"][part] = {
            "rows": rows,
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "machine": machine(),
            "seconds": round(seconds, 1),
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.replace(path)
