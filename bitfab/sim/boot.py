"""RTL simulation of an accelerator with SPRAM weights, booted from a behavioural flash.

:func:`boot_design` is the design ``bitfab verify`` simulates for such an accelerator: the
``accelerator.v`` that ``bitfab compile`` wrote (unchanged), Yosys's ``SB_SPRAM256KA`` model,
the real boot loader (:class:`bitfab.hw.shell.flash_boot.FlashBoot`) and the behavioural SPI
flash (:mod:`bitfab.sim.spi_flash`) holding the weight image. Every simulation run boots: the
loader reads and checks the image and fills SPRAM, then the images stream through; a bad
image lets no image through (the run ends with no output and the loader's status).
"""

from __future__ import annotations

from pathlib import Path

from bitfab.hw.emit import verilog_text
from bitfab.hw.shell.flash_boot import FlashBoot
from bitfab.hw.weight_image import FLASH_OFFSET
from bitfab.sim.cell_models import models_for
from bitfab.sim.spi_flash import FLASH_MODEL, write_flash_file
from bitfab.sim.verilog import PortMap, VerilogDesign, port_map

#: Verilog module name of the boot top in simulation
BOOT_TOP = "bitfab_boot"


def boot_design(
    accelerator_v: str, acc, offset: int = FLASH_OFFSET, cell_models: str | None = None
) -> tuple[VerilogDesign, FlashBoot]:  # noqa: ANN001
    """The simulated board of ``acc`` (its ``accelerator.v`` text, or its gate-level netlist):
    loader + flash model + accelerator; ports ``i``, ``o`` (streams), ``status``, ``ready``
    (plain outputs). ``cell_models``: the primitive models to add (default: those
    ``accelerator_v`` needs, :func:`bitfab.sim.cell_models.models_for`; a netlist brings its
    family's whole cell library instead)."""
    boot = FlashBoot(acc, offset, instance=True, flash_model=True, host_load=False)
    top_v = verilog_text(boot, BOOT_TOP)
    ports = port_map(boot)
    models = models_for(accelerator_v) if cell_models is None else cell_models
    text = models + accelerator_v + FLASH_MODEL + top_v
    return VerilogDesign(text, BOOT_TOP, PortMap(streams=ports.streams, plain=ports.plain)), boot


def flash_plusargs(image: bytes, folder: Path) -> list[str]:
    """Write ``image`` as the flash model's file in ``folder``; the plusargs that load it."""
    path = write_flash_file(image, Path(folder) / "flash.hex")
    return [f"+bitfab_flash={path}"]
