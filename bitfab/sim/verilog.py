"""Turn an Amaranth component into Verilog text plus a description of its top-level ports.

The port description is read from the component's ``wiring`` signature (not hard-coded), so a
cocotb testbench can find every stream's flattened signal names (Amaranth joins the signature
path with ``__``: stream ``i`` becomes ``i__payload``, ``i__valid``, ``i__ready``) and every
plain input port (setup constants such as ``wbits_rt``).

Amaranth 0.5 keeps a structured payload (``StructLayout``/``ArrayLayout``) as ONE flat port of
the layout's total width; the per-field wires exist only inside the module. If a payload ever
comes out split per field (a signature member that is itself a sub-signature), the fields are
listed in :attr:`StreamPort.payload_fields` with their bit offsets so a driver can join them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from amaranth.hdl import Shape, ShapeCastable
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In

__all__ = ["PortMap", "StreamPort", "PlainPort", "VerilogDesign", "component_to_verilog"]


@dataclass(frozen=True)
class PlainPort:
    """A non-stream port: ``name`` is the Verilog port name, ``width`` in bits."""

    name: str
    width: int
    signed: bool
    direction: str  # "in" or "out" as seen from the component


@dataclass(frozen=True)
class StreamPort:
    """A ``lib.stream`` port of the component.

    ``direction`` is ``"in"`` for a stream the component consumes (testbench drives payload and
    valid, reads ready) and ``"out"`` for one it produces. ``width`` is the payload width in bits.
    ``payload`` is the Verilog name of the flat payload port, or ``None`` when the payload is
    split: then ``payload_fields`` lists ``(verilog_name, bit_offset, width)`` per field.
    ``valid``/``ready`` are ``None`` when the stream signature leaves them out (always ready /
    always valid streams).
    """

    attr: str
    direction: str
    width: int
    payload: str | None
    valid: str | None
    ready: str | None
    payload_fields: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True)
class PortMap:
    """All top-level ports: streams by attribute name, plain ports by Verilog name, clock, reset."""

    streams: dict[str, StreamPort] = field(default_factory=dict)
    plain: dict[str, PlainPort] = field(default_factory=dict)
    clk: str | None = "clk"
    rst: str | None = "rst"

    def to_json(self) -> dict:
        """A JSON-serialisable dict (read back with :meth:`from_json`)."""
        return {
            "streams": {k: asdict(v) for k, v in self.streams.items()},
            "plain": {k: asdict(v) for k, v in self.plain.items()},
            "clk": self.clk,
            "rst": self.rst,
        }

    @classmethod
    def from_json(cls, d: dict) -> PortMap:
        streams = {}
        for k, v in d["streams"].items():
            v = dict(v)
            v["payload_fields"] = tuple(tuple(f) for f in v.get("payload_fields", ()))
            streams[k] = StreamPort(**v)
        plain = {k: PlainPort(**v) for k, v in d["plain"].items()}
        return cls(streams=streams, plain=plain, clk=d.get("clk"), rst=d.get("rst"))


@dataclass(frozen=True)
class VerilogDesign:
    """Verilog text of a design, its top module name and its port map."""

    text: str
    top: str
    ports: PortMap


def _width(shape) -> tuple[int, bool]:
    if isinstance(shape, ShapeCastable):
        shape = shape.as_shape()
    s = Shape.cast(shape)
    return s.width, s.signed


def _name(path) -> str:
    # Same rule as amaranth.back.verilog.convert for a component's ports.
    return "__".join(map(str, path))


def _indices(dims: tuple[int, ...]):
    if not dims:
        yield ()
        return
    for i in range(dims[0]):
        for rest in _indices(dims[1:]):
            yield (i, *rest)


def _is_stream(sig) -> bool:
    if isinstance(sig, wiring.FlippedSignature):
        sig = sig.flip()
    return isinstance(sig, stream.Signature)


def _stream_port(path: tuple, sig) -> StreamPort:
    # ``sig.members`` carry flows as seen from the component (a FlippedSignature flips them).
    members = sig.members
    base = _name(path)
    pm = members["payload"]
    direction = "in" if pm.flow == In else "out"
    fields: list[tuple[str, int, int]] = []
    if pm.is_port:
        width, _ = _width(pm.shape)
        payload: str | None = f"{base}__payload"
    else:  # a sub-signature payload (not produced by lib.stream today): one port per field
        payload = None
        offset = 0
        for sub_path, sub_member in pm.signature.members.flatten():
            if not sub_member.is_port:
                continue
            w, _ = _width(sub_member.shape)
            fields.append((_name((*path, "payload", *sub_path)), offset, w))
            offset += w
        width = offset
    return StreamPort(
        attr=base,
        direction=direction,
        width=width,
        payload=payload,
        valid=f"{base}__valid" if "valid" in members else None,
        ready=f"{base}__ready" if "ready" in members else None,
        payload_fields=tuple(fields),
    )


def port_map(component: wiring.Component) -> PortMap:
    """Describe the top-level ports of ``component`` from its signature.

    Stream members (``amaranth.lib.stream.Signature``, either direction) become
    :class:`StreamPort` entries keyed by their flattened attribute path (``"i"``, or ``"x__0"``
    for element 0 of an array of streams); every other port member becomes a
    :class:`PlainPort` keyed by its Verilog name (``"wbits_rt"``).
    """
    streams: dict[str, StreamPort] = {}
    plain: dict[str, PlainPort] = {}

    def walk(members, prefix: tuple) -> None:
        for name, member in members.items():
            for idx in _indices(member.dimensions):
                path = (*prefix, name, *idx)
                if member.is_port:
                    w, s = _width(member.shape)
                    d = "in" if member.flow == In else "out"
                    plain[_name(path)] = PlainPort(_name(path), w, s, d)
                elif _is_stream(member.signature):
                    streams[_name(path)] = _stream_port(path, member.signature)
                else:
                    walk(member.signature.members, path)

    walk(component.signature.members, ())
    return PortMap(streams=streams, plain=plain)


def component_to_verilog(component: wiring.Component, name: str = "top") -> VerilogDesign:
    """Convert ``component`` to Verilog (module ``name``) and describe its ports.

    ``clk``/``rst`` are set to ``None`` in the port map when the design has no ``sync`` domain
    (purely combinational; the Verilog then has no such ports).
    """
    from bitfab.hw.emit import verilog_text

    text = verilog_text(component, name)
    ports = port_map(component)
    # Amaranth writes submodules as separate modules (named "top.sub"): read the top's header.
    m = re.search(r"^module\s+\\?" + re.escape(name) + r"\s*\(([^)]*)\)\s*;", text, re.M)
    if m is None:
        raise RuntimeError(f"no module {name!r} in the Verilog that Amaranth wrote")
    header = "(" + m.group(1)
    names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_$]*", header.split("(", 1)[-1]))
    clk = "clk" if "clk" in names else None
    rst = "rst" if "rst" in names else None
    ports = PortMap(streams=ports.streams, plain=ports.plain, clk=clk, rst=rst)
    missing = [
        n
        for sp in ports.streams.values()
        for n in (sp.payload, sp.valid, sp.ready, *(f[0] for f in sp.payload_fields))
        if n is not None and n not in names
    ] + [n for n in ports.plain if n not in names]
    if missing:
        raise RuntimeError(
            f"port map of {type(component).__name__} names ports missing from the Verilog: "
            f"{missing}; the signature walk and amaranth.back.verilog disagree"
        )
    return VerilogDesign(text=text, top=name, ports=ports)
