"""End to end: ``bitfab run`` against the simulated board (bitfab.sim.board_sim) on a pty.

The board is the host link RTL (UARTs, protocol engine, the tiny trained tfc of
``tests/hw/test_compiler.tiny_dataflow`` compiled by ``bitfab compile``) in Verilator; the host
is the real ``bitfab run`` code over pyserial. Classes are checked against the golden model
(FINN's execution of the dataflow graph); bad frames must get their error reply and the link
must answer the next good frame.
"""

from __future__ import annotations

import os
import pty
import time
from pathlib import Path

import numpy as np
import pytest

from bitfab.cli import main
from bitfab.errors import BitfabError
from bitfab.hw.shell.protocol import crc8, request
from tests.hw.test_compiler import tiny_dataflow

pytest.importorskip("serial")


@pytest.fixture(scope="module")
def acc_dir(request, tmp_path_factory) -> Path:
    from bitfab.hw.accelerator import compile_accelerator

    df = tiny_dataflow(Path(request.config.cache.mkdir("bitfab_accel")))
    out = tmp_path_factory.mktemp("hostlink") / "acc"
    compile_accelerator(df, out, "parallel")
    return out


@pytest.fixture(scope="module")
def board(acc_dir):
    from bitfab.sim.board_sim import simulated_board

    with simulated_board(acc_dir) as sim:
        yield sim


def test_bitfab_run_classes_match_the_golden_model(board, acc_dir, capsys):
    from bitfab.dataflow.golden import GoldenModel
    from bitfab.host.run import run_images
    from bitfab.sim.verify import load_test_images

    n = 20
    golden = GoldenModel(acc_dir / "dataflow.onnx").classify(load_test_images(n)).tolist()
    rep = run_images(board.port, acc_dir, n, window=4)
    assert rep["classes"] == golden
    assert rep["images_per_s"] > 0
    assert rep["correct"] == sum(int(c == y) for c, y in zip(golden, rep["labels"], strict=True))
    # the command line: same classes printed, exit 0
    assert main(["run", "--port", board.port, "--acc", str(acc_dir), "--images", "6"]) == 0
    out = capsys.readouterr().out
    assert "classes: " + " ".join(map(str, golden[:6])) in out.splitlines()
    assert "6 images on" in out and "images/s" in out


def _reply(ser, n: int) -> bytes:
    data = ser.read(n)
    assert len(data) == n, f"short reply {data.hex()}"
    return data


def _error_reply(code: int) -> bytes:
    return bytes([0x5A, code, crc8(bytes([0x5A, code]))])


def test_bad_frames_get_error_replies_and_the_link_recovers(board, acc_dir):
    import serial

    from bitfab.dataflow.golden import GoldenModel
    from bitfab.host.run import image_payloads
    from bitfab.hw.accelerator import load_accelerator
    from bitfab.sim.verify import load_test_images

    acc, _ = load_accelerator(acc_dir)
    imgs = load_test_images(3)
    cls = GoldenModel(acc_dir / "dataflow.onnx").classify(imgs).tolist()
    pay = image_payloads(acc, imgs)
    good = [request(1, p) for p in pay]

    def ok(k: int) -> bytes:
        body = bytes([0x5A, 0, cls[k]])
        return body + bytes([crc8(body)])

    with serial.Serial(board.port, 115200, timeout=10) as ser:
        cases = [
            ("bad magic", b"\x42" + good[0][1:], 1, True),
            ("bad checksum", good[1][:-1] + bytes([good[1][-1] ^ 0x01]), 4, False),
            ("truncated", good[2][:300], 6, False),
            ("bad length", request(1, pay[0][:100]), 3, True),
        ]
        for k, (name, frame, code, quiet_after) in enumerate(cases):
            ser.write(frame)
            assert _reply(ser, 3) == _error_reply(code), name
            if quiet_after:
                time.sleep(2.0)  # the link ignores the rest until the line is quiet
            j = k % 3
            ser.write(good[j])
            assert _reply(ser, 4) == ok(j), f"after {name}"
        ser.timeout = 0.5
        assert ser.read(16) == b""  # no stray reply is pending


def test_run_reports_a_silent_port_as_one_error(acc_dir, capsys):
    master, slave = pty.openpty()  # nobody answers on this pty
    try:
        name = os.ttyname(slave)
        rc = main(
            ["run", "--port", name, "--acc", str(acc_dir), "--images", "2", "--timeout", "0.5"]
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and "no reply from the board" in err[0]
    finally:
        os.close(master)
        os.close(slave)
    rc = main(["run", "--port", "/dev/bitfab-no-such-port", "--acc", str(acc_dir), "--images", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "cannot open" in err[0]


def test_board_error_reply_is_a_bitfab_error(board):
    from bitfab.host.run import BoardLink

    with BoardLink(board.port, timeout_s=10) as link:
        bad = bytearray(request(3))
        bad[-1] ^= 0xFF
        link.ser.write(bytes(bad))
        with pytest.raises(BitfabError, match=r"error 4 \(bad checksum\)"):
            link.read_reply(5)
        info = link.ping()
    assert info.image_bytes == 784 and info.class_index
    assert info.vector_bytes == 1  # one 8-bit class word


# ---- board top -----------------------------------------------------------------------------------
def test_pll_settings_meet_the_device_equations():
    from bitfab.hw.shell.board_top import ecp5_pll, ice40_pll

    # icepll -i 12 -o 24 gives DIVR 0, DIVF 63, DIVQ 5, FILTER_RANGE 1
    p = ice40_pll(12.0, 24.0)
    assert (p["DIVR"], p["DIVF"], p["DIVQ"], p["FILTER_RANGE"]) == (0, 63, 5, 1)
    for f_in, f_out in [(12.0, 36.0), (12.0, 42.0), (16.0, 48.0), (48.0, 30.0)]:
        p = ice40_pll(f_in, f_out)
        pfd = f_in / (p["DIVR"] + 1)
        vco = pfd * (p["DIVF"] + 1)
        assert 10 <= pfd <= 133 and 533 <= vco <= 1066
        assert p["f_out_mhz"] == pytest.approx(vco / 2 ** p["DIVQ"])
        assert abs(p["f_out_mhz"] - f_out) / f_out < 0.02
    for f_in, f_out in [(25.0, 50.0), (25.0, 100.0), (48.0, 75.0)]:
        p = ecp5_pll(f_in, f_out)
        out = f_in / p["CLKI_DIV"] * p["CLKFB_DIV"]
        assert 400 <= out * p["CLKOP_DIV"] <= 800
        assert p["f_out_mhz"] == pytest.approx(out) and abs(out - f_out) / f_out < 0.02


def test_board_top_refuses_a_bare_device():
    # a platform without a "uart" resource is refused in tests/flows/test_board.py
    from bitfab.hw.shell.board_top import BoardTop
    from tests.hw.shell.test_host_link import ToyAcc

    acc = ToyAcc(3, False)
    acc.graph = None
    with pytest.raises(BitfabError, match="bare device"):
        BoardTop(acc, "up5k")


def _toy_graph_acc():
    """The toy accelerator of the host link tests, with the ``graph`` facts HostLink reads."""
    from types import SimpleNamespace

    from tests.hw.shell.test_host_link import ToyAcc

    acc = ToyAcc(3, False, cheap=True)
    fmt = SimpleNamespace
    acc.graph = SimpleNamespace(
        input_fmt=fmt(words=3), output_fmt=fmt(words=1), output_meaning="class index"
    )
    return acc


@pytest.mark.slow
@pytest.mark.parametrize(
    "board,mhz,prim,sync",
    [("icebreaker", 24, "SB_PLL40_PAD", "7eaa997e"), ("ulx3s-25f", 50, "EHXPLLL", "ffffbdb3")],
)
def test_board_top_bitstream_with_pll(tmp_path, board, mhz, prim, sync):
    from bitfab.fpga.bitstream import build_board_bitstream
    from bitfab.hw.shell.board_top import BoardTop

    top = BoardTop(_toy_graph_acc(), board, clock_mhz=mhz)
    assert top.clock_hz == mhz * 1e6 and top.pll["primitive"] == prim
    assert top.divisor == round(mhz * 1e6 / 115200)
    b = build_board_bitstream(top, board, tmp_path / board)
    assert bytes.fromhex(sync) in b.bitstream.read_bytes()[:4096]
    assert b.fmax_mhz is not None and b.fmax_mhz > mhz
    if board == "icebreaker":
        # clock pad, uart rx/tx, LEDs 0-6 (board red/green + the break-off's five)
        assert b.utilization["io"]["used"] == 1 + 2 + 7


def test_vector_replies_are_classified_by_argmax():
    """A raw-vector accelerator: the host unpacks the reply words and takes the argmax."""
    from types import SimpleNamespace

    from bitfab.host.run import vector_class
    from bitfab.hw.compiler import StreamFormat

    rng = np.random.default_rng(4)
    for lanes, bits in [(10, 8), (5, 12), (1, 16)]:
        fmt = StreamFormat(kind="signed", bits=bits, lanes=lanes, elements=10)
        acc = SimpleNamespace(graph=SimpleNamespace(output_fmt=fmt))
        vals = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), 10)
        words = []
        for w in range(10 // lanes):
            word = 0
            for i in range(lanes):
                word |= (int(vals[w * lanes + i]) & ((1 << bits) - 1)) << (i * bits)
            words.append(word)
        nbytes = (lanes * bits + 7) // 8
        vec = b"".join(w.to_bytes(nbytes, "little") for w in words)
        assert vector_class(acc, vec) == int(np.argmax(vals))


@pytest.fixture(scope="module")
def unfolded_acc(request, tmp_path_factory) -> Path:
    """The tiny tfc at PE = SIMD = 1 (what 'bitfab compile' gives by default): ~50,000 cycles per
    image, slower than the simulated link, so pipelined requests overrun the board's input."""
    from bitfab.dataflow.build import build_dataflow
    from bitfab.hw.accelerator import compile_accelerator

    df = tiny_dataflow(Path(request.config.cache.mkdir("bitfab_accel")))
    model = df.parent.parent / "train" / "model.onnx"
    out = tmp_path_factory.mktemp("hostlink_unfolded")
    build_dataflow(model, out / "df")
    compile_accelerator(out / "df" / "dataflow.onnx", out / "acc", "parallel")
    return out / "acc"


def test_run_holds_for_an_accelerator_slower_than_the_link(unfolded_acc):
    """Flow control: the board answers the first pipelined overrun with status 7; bitfab run
    sends the rest one request at a time and every class still matches the golden model."""
    from bitfab.dataflow.golden import GoldenModel
    from bitfab.host.run import run_images
    from bitfab.sim.board_sim import simulated_board
    from bitfab.sim.verify import load_test_images

    n = 8
    golden = GoldenModel(unfolded_acc / "dataflow.onnx").classify(load_test_images(n)).tolist()
    with simulated_board(unfolded_acc) as sim:
        rep = run_images(sim.port, unfolded_acc, n, window=4)
    assert rep["classes"] == golden
    assert rep["window_used"] == 1, "expected the overrun path (the link outpaces this design)"
