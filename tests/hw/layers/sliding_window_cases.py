"""SlidingWindow (FINN ``ConvolutionInputGenerator``) cases: qonnx ``im2col`` stream order in
numpy and the case maker (independent of ``bitfab.hw.layers.sliding_window``).
"""

from __future__ import annotations

import numpy as np

from tests.hw.arrays.pe_cases import rand_values
from tests.hw.layers.cases import Case, words_of


def ref_sliding_window(img: np.ndarray, k, stride, dilation, simd: int, depthwise: bool):
    """FINN ConvolutionInputGenerator stream for one NHWC image ``img`` [H, W, C], as a flat
    list of element values in stream order.

    Non-depthwise (qonnx Im2Col order): for each output pixel (oy, ox), kernel row ky, kernel
    column kx, channel c. Depthwise (FINN HW layout ``(OH, OW, C/SIMD, KH, KW, SIMD)``): channel
    fold outermost inside the pixel.
    """
    h, w, c = img.shape
    kh, kw = k
    sh, sw = stride
    dh, dw = dilation
    oh = (h - dh * (kh - 1) - 1) // sh + 1
    ow = (w - dw * (kw - 1) - 1) // sw + 1
    out = []
    for oy in range(oh):
        for ox in range(ow):
            if depthwise:
                for cf in range(c // simd):
                    for ky in range(kh):
                        for kx in range(kw):
                            px = img[oy * sh + ky * dh, ox * sw + kx * dw]
                            out.extend(px[cf * simd : (cf + 1) * simd])
            else:
                for ky in range(kh):
                    for kx in range(kw):
                        out.extend(img[oy * sh + ky * dh, ox * sw + kx * dw])
    return np.array(out, dtype=np.int64)


def case_sliding_window(p: dict, rng) -> Case:
    """p: ConvKernelDim, IFMChannels, IFMDim, SIMD, Stride, [Dilation], [depthwise],
    input_kind, input_bits, [images]."""
    kh, kw = p["ConvKernelDim"]
    h, w = p["IFMDim"]
    c, simd = p["IFMChannels"], p["SIMD"]
    sh, sw = p.get("Stride", [1, 1])
    dh, dw = p.get("Dilation", [1, 1])
    dwise = int(p.get("depthwise", 0))
    ik, ib = p["input_kind"], p["input_bits"]
    nimg = p.get("images", 1)
    oh = (h - dh * (kh - 1) - 1) // sh + 1
    ow = (w - dw * (kw - 1) - 1) // sw + 1
    imgs = rand_values(rng, ik, ib, (nimg, h, w, c))
    out = np.concatenate(
        [ref_sliding_window(im, (kh, kw), (sh, sw), (dh, dw), simd, bool(dwise)) for im in imgs]
    )
    params = dict(
        ConvKernelDim=[kh, kw],
        IFMChannels=c,
        IFMDim=[h, w],
        OFMDim=[oh, ow],
        SIMD=simd,
        Stride=[sh, sw],
        Dilation=[dh, dw],
        depthwise=dwise,
        input_kind=ik,
        input_bits=ib,
    )
    return Case(
        "ConvolutionInputGenerator",
        params,
        inputs={"i": words_of(imgs, simd, ib, ik)},
        expected={"o": words_of(out, simd, ib, ik)},
    )
