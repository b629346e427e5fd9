"""The PE array contract: :class:`PEArray`, the base class of every PE array.

It owns what the three arrays (:mod:`~bitfab.hw.arrays.parallel`,
:mod:`~bitfab.hw.arrays.bitserial`, :mod:`~bitfab.hw.arrays.bitfusion`) share by contract:
the constructor arguments and their validation, the attributes callers read, the port
signature and the rules the ports follow (docs/architecture.md, "PE array contract";
docs/hw_pe_arrays.md). The datapath builders they share are in :mod:`bitfab.hw.arrays.common`.
"""

from __future__ import annotations

from typing import ClassVar

from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bitfab.hw.arrays.common import (
    ArrayParams,
    input_layout,
    output_layout,
    silence_on_error,
    validate_params,
)


class PEArray(wiring.Component):
    """A PE array: ``pe`` dot products of ``simd``-lane folds, streamed in and out.

    Subclasses implement :meth:`elaborate`, :meth:`cycles_per_fold` and :attr:`latency`; they
    add keyword-only options of their own (checked after ``super().__init__``) and set the
    class attributes :attr:`kind`, :attr:`label` and :attr:`runtime_precision`.

    Parameters
    ----------
    pe : int
        PE rows (>= 1): one dot product (one output lane) per row.
    simd : int
        SIMD lanes (>= 1): products per row per fold.
    wbits, abits : int
        Elaborated maximum weight / activation width in bits (1-8; bipolar forces 1).
    wkind, akind : str
        ``"bipolar"`` (1 bit, 0 = -1, 1 = +1), ``"signed"`` (two's complement) or
        ``"unsigned"``.
    acc_width : int or None
        Accumulator / output lane width in bits, at least the signed width of one fold's dot
        product (:func:`~bitfab.hw.arrays.common.min_acc_width`) and at most 64. ``None``
        (default): that width + 8 guard bits (exact for up to 256 folds per dot product;
        longer dot products wrap modulo ``2**acc_width``, as any fixed-width accumulator does).
    reg_every : int
        Keyword only. A pipeline register after every ``reg_every`` adder-tree levels (0: none;
        default 1).

    Bad arguments raise ``ValueError`` naming the argument and its valid range
    (:func:`~bitfab.hw.arrays.common.validate_params`).

    Attributes
    ----------
    kind : str
        Class attribute: the array's canonical name, its key in
        :data:`bitfab.hw.arrays.ARRAYS` (``"parallel"``, ``"bitserial"``, ``"bitfusion"``).
    label : str
        Class attribute: the name error messages use (``"bit-serial array"``).
    runtime_precision : bool
        Class attribute: the array has the ``wbits_rt`` / ``abits_rt`` ports.
    params : ArrayParams
        The validated constructor arguments (``acc_width`` resolved).
    pe, simd, wbits, abits, wkind, akind, acc_width, reg_every :
        The validated constructor arguments.
    i : In(stream.Signature(StructLayout({"w": pe*simd*wbits, "a": simd*abits, "last": 1})))
        One fold per transfer: weight lane ``(p, s)`` (``wbits`` bits) at lane index
        ``p*simd + s`` of ``w``, activation lane ``s`` (``abits`` bits) of ``a``
        (:mod:`bitfab.hw.packing` layout). At a lower run-time width a value sits in the low
        bits of its lane, sign-extended for signed kinds. ``last = 1`` closes the dot product.
    o : Out(stream.Signature(ArrayLayout(signed(acc_width), pe)))
        One word per dot product; lane ``p`` is PE row ``p``:
        ``o[p] = sum over the folds and s of W[p, s] * A[s]``, with values as their kinds
        define them (bipolar as -1/+1), modulo ``2**acc_width``.
    wbits_rt, abits_rt : In(range(1, wbits + 1)), In(range(1, abits + 1))
        Only if :attr:`runtime_precision`: the run-time weight / activation width in bits,
        reset value = the maximum; keep them constant during a dot product.

    Notes
    -----
    Timing:

    * :meth:`cycles_per_fold` ``(wbits=None, abits=None) -> int``: clock cycles per fold at a
      run-time precision (default: the maxima); the performance model reads it.
    * :attr:`latency`: clock edges from the transfer of a dot product's last fold to its word
      on ``o`` (no stalls).
    * Steady state: the next fold is accepted back-to-back, so a dot product of ``n`` folds
      takes exactly ``n * cycles_per_fold`` cycles, plus ``latency`` once at the end.

    Streaming (back-pressure):

    * All pipeline registers share one enable ``adv``; ``adv`` is low only when a dot
      product's closing partial sum meets an output word that has not been taken
      (``o.valid & ~o.ready``). The array stalls only for real back-pressure, ``o`` holds its
      word until it is taken, nothing is dropped or duplicated.
    * ``i.ready = adv & (this is the last cycle of the current fold)``: a multi-cycle array
      reads the fold straight from the payload of ``i`` while it works on it (the stream rules
      keep it stable while ``valid`` is high and ``ready`` low) and takes it on its last cycle.
    * ``i.ready`` never depends on ``i.valid`` (no combinational loop with producers such as
      the MVAU). By default ``adv`` depends on ``o.ready`` through one LUT; with the output skid
      buffer (pipelines over ``common.SKID_MIN_BITS`` register bits, off by default) ``adv`` is
      a flip-flop and neither ``adv`` nor ``i.ready`` depends on ``o.ready`` combinationally.
    """

    #: canonical name = key in :data:`bitfab.hw.arrays.ARRAYS` (set by every subclass)
    kind: ClassVar[str] = ""
    #: name of the array in error messages
    label: ClassVar[str] = "PE array"
    #: the array has the ``wbits_rt`` / ``abits_rt`` run-time precision ports
    runtime_precision: ClassVar[bool] = False

    @silence_on_error
    def __init__(
        self,
        pe: int,
        simd: int,
        wbits: int,
        abits: int,
        wkind: str,
        akind: str,
        acc_width: int | None = None,
        *,
        reg_every: int = 1,
    ):
        self.params: ArrayParams = validate_params(
            pe, simd, wbits, abits, wkind, akind, acc_width, array=self.label
        )
        if not isinstance(reg_every, int) or reg_every < 0:
            raise ValueError(f"reg_every must be an integer >= 0, got {reg_every!r}")
        self.reg_every = reg_every
        p = self.params
        self.pe, self.simd, self.wbits, self.abits = p.pe, p.simd, p.wbits, p.abits
        self.wkind, self.akind, self.acc_width = p.wkind, p.akind, p.acc_width
        members = {
            "i": In(stream.Signature(input_layout(p.pe, p.simd, p.wbits, p.abits))),
            "o": Out(stream.Signature(output_layout(p.pe, p.acc_width))),
        }
        if self.runtime_precision:
            members["wbits_rt"] = In(range(1, p.wbits + 1), init=p.wbits)
            members["abits_rt"] = In(range(1, p.abits + 1), init=p.abits)
        super().__init__(members)

    # -- performance model ---------------------------------------------------------------------
    def cycles_per_fold(self, wbits: int | None = None, abits: int | None = None) -> int:
        """Clock cycles per fold at run-time precision ``wbits`` x ``abits`` bits (default: the
        maxima)."""
        raise NotImplementedError(f"{type(self).__name__} does not define cycles_per_fold")

    @property
    def latency(self) -> int:
        """Clock edges from the transfer of a dot product's last fold to its result on ``o``."""
        raise NotImplementedError(f"{type(self).__name__} does not define latency")

    def precision(self, wbits: int | None = None, abits: int | None = None) -> tuple[int, int]:
        """The run-time precision ``(wbits, abits)`` in bits (``None``: the maximum); a
        ``ValueError`` unless ``1 <= wbits <= self.wbits`` and ``1 <= abits <= self.abits``."""
        wbits = self.wbits if wbits is None else wbits
        abits = self.abits if abits is None else abits
        if not (1 <= wbits <= self.wbits and 1 <= abits <= self.abits):
            raise ValueError(
                f"run-time precision must be within 1..{self.wbits} x 1..{self.abits}, "
                f"got {wbits} x {abits}"
            )
        return wbits, abits

    # -- hardware ------------------------------------------------------------------------------
    def elaborate(self, platform):
        raise NotImplementedError(f"{type(self).__name__} does not define elaborate")


__all__ = ["PEArray"]
