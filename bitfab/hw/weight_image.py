"""The weight image: what the boot loader reads from flash (or the host link sends) into SPRAM.

Layout (bytes, little endian), :data:`HEADER_BYTES` of header, then the payload, then its CRC:

====== ======= ===============================================================================
offset bytes   content
====== ======= ===============================================================================
0      4       magic ``b"BFW1"``
4      4       design id (:func:`design_id`): CRC-32 of what the bitstream fixes, so an
               image for another architecture (or other fixed-layer weights) is refused
8      4       payload word count ``n``
12     2n      the load words (16 bits each, :func:`bitfab.hw.accelerator.Accelerator.weight_load_words`:
               per SPRAM MVAU its weights, then its threshold tables)
12+2n  4       CRC-32 (ISO-HDLC, zlib's) of the payload bytes
====== ======= ===============================================================================

An erased flash (all ``0xFF``) fails the magic; a short or corrupted image fails the CRC.
"""

from __future__ import annotations

import struct
import zlib

MAGIC = b"BFW1"
HEADER_BYTES = 12
CRC_BYTES = 4
#: default flash offset of the image on iCE40 boards: 1 MiB, past any iCE40 bitstream
#: (a UP5K bitstream is 104,090 bytes) on the 16 MiB flash of the iCEBreaker
FLASH_OFFSET = 0x100000


def layout(acc) -> list[tuple[str, int, int]]:  # noqa: ANN001 - Accelerator
    """``(unit name, word width bits, depth words)`` of every SPRAM unit, in load order."""
    out = []
    for spec, unit in zip(acc.graph.layers, acc.units, strict=True):
        if unit in acc.loaded_units:
            out.append((spec.name, unit.weight_width, unit.SF * unit.NF))
    return out


def design_id(acc) -> int:  # noqa: ANN001
    """32-bit id of everything the bitstream fixes: every layer's type and attributes, the
    parameters of the layers whose parameters are not loaded (their values), the shapes and
    bit widths of the loaded ones (not their values), the array kinds and FIFO depths. Two
    models share it exactly when one's weight image can run on the other's bitstream."""
    import json

    import numpy as np

    crc = 0
    for spec, unit in zip(acc.graph.layers, acc.units, strict=True):
        loaded = unit in acc.loaded_units
        desc = {
            "name": spec.name,
            "op": spec.op_type,
            "attrs": {k: v for k, v in sorted(spec.attrs.items())},
            "array": spec.array,
            "store": spec.weight_store,
            "inits": [list(np.shape(t)) for t in spec.inits],
        }
        if loaded:
            desc["tbits"] = getattr(unit, "tbits", None)
            desc["width"] = unit.weight_width
        crc = zlib.crc32(json.dumps(desc, default=str, sort_keys=True).encode(), crc)
        if not loaded:
            for t in spec.inits:
                crc = zlib.crc32(np.ascontiguousarray(np.asarray(t, dtype=np.int64)).tobytes(), crc)
    crc = zlib.crc32(json.dumps(list(acc.fifo_depths)).encode(), crc)
    return crc


def header(acc) -> bytes:  # noqa: ANN001
    """The 12 header bytes the loader of ``acc`` expects."""
    n = sum(len(u.weight_load_words()) for u in acc.loaded_units)
    return MAGIC + struct.pack("<II", design_id(acc), n)


def image_bytes(acc) -> bytes:  # noqa: ANN001
    """The whole weight image of ``acc``."""
    words = acc.weight_load_words()
    payload = struct.pack(f"<{len(words)}H", *words)
    return header(acc) + payload + struct.pack("<I", zlib.crc32(payload))


def check_image(data: bytes, acc) -> str | None:  # noqa: ANN001
    """Why the boot loader of ``acc`` would refuse weight image ``data`` (the same checks, in
    the same order), or ``None`` if it would load it."""
    want = header(acc)
    n = struct.unpack("<I", want[8:12])[0]
    if data[:4] != MAGIC:
        return "no weight image (wrong magic)"
    if data[4:8] != want[4:8]:
        return "the weight image is for another architecture (design id differs)"
    if data[8:12] != want[8:12]:
        return "the weight image has another word count than this design"
    payload = data[HEADER_BYTES : HEADER_BYTES + 2 * n]
    crc = data[HEADER_BYTES + 2 * n : HEADER_BYTES + 2 * n + CRC_BYTES]
    if len(crc) < CRC_BYTES or struct.pack("<I", zlib.crc32(payload)) != crc:
        return "the weight image is corrupted or short (CRC-32 mismatch)"
    return None
