"""Cycle and synthesis figures of the streaming layers for docs/hw_layers.md.

Commands: ``.venv/bin/python -m tests.hw.layers.figures`` (cycle counts, one JSON row per
:data:`FIGURE_CONFIGS` entry) and ``.venv/bin/python -m tests.hw.layers.figures synth [target]``
(LUT/FF/carry/BRAM and Fmax per :data:`SYNTH_CONFIGS` entry).
"""

from __future__ import annotations

import json

import numpy as np

from bitfab.hw.elaboratable import unused_ok
from tests.hw.layers.cases import make_case, run_case

#: Layers simulated for docs/hw_layers.md (component, structural params, images per run).
FIGURE_CONFIGS = [
    (
        "Thresholding",
        dict(
            NumChannels=16,
            PE=4,
            input_kind="unsigned",
            input_bits=8,
            numSteps=3,
            numInputVectors=[1, 4, 4],
        ),
        1,
    ),
    (
        "MVAU",
        dict(
            MW=32,
            MH=16,
            PE=4,
            SIMD=8,
            input_kind="unsigned",
            input_bits=2,
            weight_kind="signed",
            weight_bits=2,
            numSteps=3,
            numInputVectors=[4],
        ),
        1,
    ),
    (
        "MVAU",
        dict(
            MW=32,
            MH=16,
            PE=4,
            SIMD=8,
            input_kind="unsigned",
            input_bits=1,
            weight_kind="unsigned",
            weight_bits=1,
            binaryXnorMode=1,
            numSteps=1,
            output_kind="bipolar",
            numInputVectors=[4],
        ),
        1,
    ),
    (
        "MVAU",
        dict(
            MW=32,
            MH=16,
            PE=4,
            SIMD=8,
            input_kind="unsigned",
            input_bits=2,
            weight_kind="signed",
            weight_bits=2,
            numSteps=3,
            numInputVectors=[4],
            array="bitserial",
        ),
        1,
    ),
    (
        "MVAU",
        dict(
            MW=32,
            MH=16,
            PE=4,
            SIMD=8,
            input_kind="unsigned",
            input_bits=2,
            weight_kind="signed",
            weight_bits=2,
            numSteps=3,
            numInputVectors=[4],
            array="bitfusion",
        ),
        1,
    ),
    (
        "SlidingWindow",
        dict(
            ConvKernelDim=[3, 3],
            IFMChannels=4,
            IFMDim=[8, 8],
            SIMD=2,
            input_kind="unsigned",
            input_bits=4,
            images=2,
        ),
        2,
    ),
    (
        "SlidingWindow",
        dict(
            ConvKernelDim=[2, 2],
            IFMChannels=4,
            IFMDim=[8, 8],
            SIMD=2,
            Stride=[2, 2],
            depthwise=1,
            input_kind="unsigned",
            input_bits=4,
            images=2,
        ),
        2,
    ),
    (
        "FMPadding",
        dict(
            ImgDim=[8, 8],
            Padding=[1, 1, 1, 1],
            NumChannels=4,
            SIMD=2,
            input_kind="unsigned",
            input_bits=4,
            numInputVectors=2,
        ),
        1,
    ),
    (
        "Pool",
        dict(
            Channels=4,
            PE=2,
            KernelSize=[2, 2],
            OutImgDims=[4, 4],
            input_kind="unsigned",
            input_bits=4,
            BatchSize=2,
        ),
        1,
    ),
    (
        "LabelSelect",
        dict(Labels=10, PE=2, input_kind="signed", input_bits=16, numInputVectors=[4]),
        1,
    ),
    (
        "StreamingDataWidthConverter",
        dict(inWidth=12, outWidth=8, data_kind="unsigned", data_bits=4, inShape=[1, 96]),
        1,
    ),
]


def cycle_figures() -> list[dict]:
    """Simulate each :data:`FIGURE_CONFIGS` entry without gaps/stalls; return the figures."""
    rng = np.random.default_rng(0)
    rows = []
    for comp, p, runs in FIGURE_CONFIGS:
        case = make_case(comp, p, rng)
        run = run_case(case, gap=0, stall=0)
        if run.outputs != case.expected:
            raise AssertionError(f"{comp} {p}: wrong outputs")
        dut = case.build()
        unused_ok(dut)  # built only for its cycle formula
        rows.append(
            dict(
                layer=comp,
                params=p,
                words_in=len(case.inputs["i"]),
                words_out=len(case.expected["o"]),
                measured_cycles=run.cycles,
                finn_cycles=dut.cycles_per_image() * runs,
            )
        )
    return rows


#: Layers synthesized for docs/hw_layers.md (name, component, structural params).
SYNTH_CONFIGS = [
    (
        "MVAU_w1a1_32x32_pe8_simd8",
        "MVAU",
        dict(
            MW=32,
            MH=32,
            PE=8,
            SIMD=8,
            input_kind="unsigned",
            input_bits=1,
            weight_kind="unsigned",
            weight_bits=1,
            binaryXnorMode=1,
            numSteps=1,
            output_kind="unsigned",
            output_bits=1,
        ),
    ),
    (
        "MVAU_w2a2_72x8_pe8_simd8",
        "MVAU",
        dict(
            MW=72,
            MH=8,
            PE=8,
            SIMD=8,
            input_kind="signed",
            input_bits=2,
            weight_kind="signed",
            weight_bits=2,
            numSteps=3,
            ActVal=-2,
            output_kind="signed",
            output_bits=2,
            numInputVectors=[1, 24, 24],
        ),
    ),
    (
        "MVAU_w2a2_72x8_pe8_simd8_bitserial",
        "MVAU",
        dict(
            MW=72,
            MH=8,
            PE=8,
            SIMD=8,
            input_kind="signed",
            input_bits=2,
            weight_kind="signed",
            weight_bits=2,
            numSteps=3,
            ActVal=-2,
            output_kind="signed",
            output_bits=2,
            numInputVectors=[1, 24, 24],
            array="bitserial",
        ),
    ),
    (
        "MVAU_w2a2_256x64_pe4_simd16",
        "MVAU",
        dict(
            MW=256,
            MH=64,
            PE=4,
            SIMD=16,
            input_kind="unsigned",
            input_bits=2,
            weight_kind="signed",
            weight_bits=2,
            numSteps=3,
            output_kind="unsigned",
            output_bits=2,
        ),
    ),
    (
        "SWG_3x3_c8_26x26_simd8",
        "SlidingWindow",
        dict(
            ConvKernelDim=[3, 3],
            IFMChannels=8,
            IFMDim=[26, 26],
            SIMD=8,
            input_kind="signed",
            input_bits=2,
        ),
    ),
    (
        "Thresholding_c64_pe4_15steps_u8",
        "Thresholding",
        dict(NumChannels=64, PE=4, input_kind="unsigned", input_bits=8, numSteps=15),
    ),
    (
        "Pool_c16_pe8_2x2",
        "Pool",
        dict(
            Channels=16,
            PE=8,
            KernelSize=[2, 2],
            OutImgDims=[4, 4],
            input_kind="signed",
            input_bits=2,
        ),
    ),
]


def synth_figures(target: str = "ecp5-25f", out_root: str = "/tmp/bitfab-layer-synth"):
    """Synthesize and place-and-route each :data:`SYNTH_CONFIGS` layer with
    :func:`bitfab.fpga.synth.synthesize` (LUT fabric, out-of-context harness); yield rows."""
    from bitfab.fpga.synth import synthesize

    rng = np.random.default_rng(0)
    for name, comp, p in SYNTH_CONFIGS:
        dut = make_case(comp, p, rng).build()
        rep = synthesize(dut, target, f"{out_root}/{target}/{name}", name=name)
        d = rep.design_only
        yield dict(
            name=name,
            target=target,
            lut=d.lut,
            ff=d.ff,
            carry=d.carry,
            bram=d.bram,
            fmax_mhz=round(rep.fmax_mhz, 1),
        )


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["synth"]:
        for row in synth_figures(*sys.argv[2:3]):
            print(json.dumps(row), flush=True)
    else:
        for row in cycle_figures():
            print(json.dumps(row))
