"""Import FINN (finn-plus) for the parts bitfab uses, without its build-settings machinery.

finn-plus imports ``finn.util.settings`` (which needs ``pyyaml`` and ``pydantic``) from every HW
custom op, but only reads the settings when it generates HLS/RTL code or runs Vivado, which bitfab
never does. When those two packages are missing, this module registers a stand-in
``finn.util.settings`` whose ``get_settings()`` raises, so streamlining, HW-layer conversion and
Python execution work. With both packages installed the real module is used unchanged.

Import this module before any ``finn`` module: ``from bitfab.dataflow import _finn  # noqa: F401``.
"""

from __future__ import annotations

import importlib.util
import sys
import types

#: True when the stand-in settings module is in use (pyyaml or pydantic missing).
SETTINGS_STUBBED = False


def _install_settings_stub() -> None:
    global SETTINGS_STUBBED
    if "finn.util.settings" in sys.modules:
        return
    if importlib.util.find_spec("yaml") is not None and importlib.util.find_spec("pydantic"):
        return
    mod = types.ModuleType("finn.util.settings")
    mod.__doc__ = "bitfab stand-in: FINN build settings are unavailable (pyyaml/pydantic missing)."

    def get_settings():  # noqa: ANN202 - mirrors finn's signature
        raise RuntimeError(
            "FINN build settings are unavailable (install pyyaml and pydantic); bitfab only uses "
            "FINN's Python execution, not its code generation"
        )

    mod.get_settings = get_settings
    sys.modules["finn.util.settings"] = mod
    SETTINGS_STUBBED = True


_install_settings_stub()
