"""Host side of the UART host link: ``bitfab run`` sends test images to a board and times them.

Protocol: :mod:`bitfab.hw.shell.protocol` (and ``docs/host_link.md``). :class:`BoardLink` wraps a
pyserial port: :meth:`BoardLink.ping` reads the board's image and vector sizes,
:meth:`BoardLink.classify` sends images pipelined (up to ``window`` requests outstanding, well
under the link's tag FIFO) and returns the classes in order. :func:`run_images` is the
``bitfab run`` command: Fashion-MNIST test images packed as ``bitfab verify`` packs them, the
classes, accuracy against the labels and the measured images per second (wall time from the
first byte sent to the last reply byte received, ping excluded).

An error reply, a corrupt reply or a board that does not answer within ``timeout_s`` raises
:class:`bitfab.errors.BitfabError` with one line naming what happened.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bitfab.errors import BitfabError
from bitfab.hw.shell.protocol import (
    CMD_CLASSIFY,
    CMD_PING,
    CMD_VECTOR,
    OK,
    OVERRUN,
    PING_BODY_BYTES,
    REPLY_MAGIC,
    STATUS_NAMES,
    ProtocolError,
    bytes_to_words,
    crc_ok,
    parse_ping_body,
    parse_reply,
    reply_length,
    request,
    word_bytes,
    words_to_bytes,
)

#: requests kept in flight (the board holds 8 tags)
DEFAULT_WINDOW = 4
#: seconds of silence that end the board's "ignore until quiet" after an overrun (its own
#: timeout is a few ms on a real board, tens of ms simulated)
QUIET_S = 0.3
#: times one image is resent after an overrun (one request at a time) before giving up
OVERRUN_RETRIES = 3


class BoardReplyError(BitfabError):
    """The board answered a request with an error status (:attr:`code`)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class BoardInfo:
    """What a ping reply says: bytes per image, bytes per output vector, class-index output."""

    image_bytes: int
    vector_bytes: int
    class_index: bool
    #: the weight loader's status (protocol.LOADER_STATUS) on a board with SPRAM weights,
    #: else None
    loader: int | None = None


class BoardLink:
    """A board (or simulated board) on serial ``port`` at ``baud``; replies must start within
    ``timeout_s`` seconds."""

    def __init__(self, port: str, baud: int = 115200, timeout_s: float = 5.0) -> None:
        import serial

        try:
            self.ser = serial.Serial(port, baud, timeout=timeout_s, write_timeout=timeout_s)
        except (serial.SerialException, OSError) as e:
            raise BitfabError(f"--port {port}: cannot open ({e}); check the device path") from None
        self.port = port
        self.baud = baud
        self.timeout_s = timeout_s
        self.ser.reset_input_buffer()

    def close(self) -> None:
        self.ser.close()

    def __enter__(self) -> BoardLink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read(self, n: int, what: str) -> bytes:
        data = self.ser.read(n)
        if len(data) != n:
            raise BitfabError(
                f"{self.port}: no reply from the board within {self.timeout_s:g} s ({what}, got "
                f"{len(data)} of {n} bytes); is it programmed with this accelerator and baud rate?"
            )
        return data

    def read_reply(self, body_len: int) -> bytes:
        """One reply whose ok body has ``body_len`` bytes; returns the body. Raises on an
        error status or a bad checksum."""
        head = self._read(2, "reply header")
        if head[0] != REPLY_MAGIC:
            raise BitfabError(
                f"{self.port}: corrupt reply (byte 0x{head[0]:02x}, expected 0x{REPLY_MAGIC:02x}); "
                "check the baud rate"
            )
        code = head[1]
        rest = reply_length(code, body_len) - len(head)
        frame = head + self._read(rest, "reply" if code == OK else "error reply")
        if code != OK:
            name = STATUS_NAMES.get(code, "unknown error")
            raise BoardReplyError(
                f"{self.port}: board replied error {code} ({name})"
                + ("" if crc_ok(frame) else ", and the reply's checksum is wrong"),
                code,
            )
        try:
            _, body = parse_reply(frame)
        except ProtocolError:  # magic and length are right by construction: the checksum
            raise BitfabError(f"{self.port}: reply checksum mismatch; check the link") from None
        return body

    def load_weights(self, image: bytes, timeout_s: float | None = None) -> None:
        """Send a weight image (``bitfab.hw.weight_image``) with the load command and wait for
        the board's verdict; raises BitfabError naming why the board refused it. Send it with
        no other request outstanding."""
        from bitfab.hw.shell.protocol import CMD_LOAD, LOADER_OK, LOADER_STATUS

        old, old_w = self.ser.timeout, self.ser.write_timeout
        # the board answers once the last byte is in and checked (10 bits a byte on the line)
        wait = max(old or 0, timeout_s or 0) + 12 * len(image) / max(self.baud, 1)
        self.ser.timeout = self.ser.write_timeout = wait
        try:
            self.ser.write(request(CMD_LOAD, image))
            body = self.read_reply(1)
        except BoardReplyError as e:
            raise BitfabError(
                f"{self.port}: load refused ({e}); does this board keep its weights in SPRAM?"
            ) from None
        finally:
            self.ser.timeout, self.ser.write_timeout = old, old_w
        if body[0] != LOADER_OK:
            why = LOADER_STATUS.get(body[0], f"status {body[0]}")
            raise BitfabError(f"{self.port}: the board refused the weight image: {why}")

    def ping(self) -> BoardInfo:
        """Ask the board for its sizes."""
        from bitfab.hw.shell.protocol import FLAG_LOADABLE, LOADER_SHIFT

        self.ser.write(request(CMD_PING))
        body = self.read_reply(PING_BODY_BYTES)
        loader = (body[4] >> LOADER_SHIFT) & 7 if body[4] & FLAG_LOADABLE else None
        return BoardInfo(*parse_ping_body(body), loader=loader)

    def wait_weights(self, timeout_s: float) -> BoardInfo:
        """Ping until the board's weight loader is done (a board with SPRAM weights boots from
        flash); BitfabError naming why if it refused its image. Boards without: at once."""
        from bitfab.hw.shell.protocol import LOADER_BUSY, LOADER_OK, LOADER_STATUS

        t_end = time.perf_counter() + timeout_s
        info = self.ping()
        while info.loader == LOADER_BUSY and time.perf_counter() < t_end:
            time.sleep(0.05)
            info = self.ping()
        if info.loader is not None and info.loader != LOADER_OK:
            why = LOADER_STATUS.get(info.loader, f"status {info.loader}")
            raise BitfabError(
                f"{self.port}: the board has no usable weights: {why}; flash the build's "
                "weights.bin (bitfab program BUILD) or send them with --load-weights"
            )
        return info

    def classify(
        self,
        payloads: Sequence[bytes],
        *,
        vector_bytes: int = 0,
        window: int = DEFAULT_WINDOW,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[tuple[int, bytes]]:
        """Send each image payload (``vector_bytes`` > 0: ask for the output vector too), at
        most ``window`` outstanding; returns ``(class byte, vector bytes)`` per image.

        Flow control: a link faster than the accelerator fills the board's input FIFO when
        requests are pipelined, and the board answers "overrun" (status 7) and ignores the line
        until it is quiet. Then the requests from the overrun one on are sent again, one at a
        time (each after the previous reply, so the accelerator has finished it); only an image
        that overruns even alone, :data:`OVERRUN_RETRIES` times, is an error."""
        cmd = CMD_VECTOR if vector_bytes else CMD_CLASSIFY
        frames = [request(cmd, p) for p in payloads]
        out: list[tuple[int, bytes]] = []
        n = len(payloads)
        sent = 0  # frames[:sent] are written; replies come back in order
        retries = 0
        window = max(1, window)
        while len(out) < n:
            while sent < n and sent - len(out) < window:
                self.ser.write(frames[sent])
                sent += 1
            try:
                body = self.read_reply(1 + vector_bytes)
            except BoardReplyError as e:
                if e.code != OVERRUN or (window == 1 and retries >= OVERRUN_RETRIES):
                    if e.code == OVERRUN:
                        raise BitfabError(
                            f"{e}: even one request at a time; the accelerator reads an image "
                            "slower than the link delivers it: use a lower --baud or a folded "
                            "accelerator (bitfab build fits one)"
                        ) from None
                    raise
                retries = retries + 1 if window == 1 else 1
                window = 1
                self._wait_quiet()
                sent = len(out)  # resend from the image that overran
                continue
            out.append((body[0], body[1:]))
            if window == 1:
                retries = 0
            if progress:
                progress(len(out), n)
        self.window_used = window
        return out

    def _wait_quiet(self) -> None:
        """Read and drop whatever the board still sends until the line has been quiet for
        :data:`QUIET_S` (so the board's ignore-until-quiet state ends)."""
        old = self.ser.timeout
        self.ser.timeout = QUIET_S
        try:
            while self.ser.read(4096):
                pass
        finally:
            self.ser.timeout = old


def image_payloads(acc, images: np.ndarray, input_rec: dict | None = None) -> list[bytes]:  # noqa: ANN001 - Accelerator
    """The request payload of each image: the accelerator's input words for it (as
    ``bitfab.sim.verify.golden_streams`` packs them), each word little-endian. ``input_rec``
    (:func:`bitfab.dataflow.inputs.input_record`): model-order inputs are put in the graph
    input's order first (a multi-channel CNN's NHWC)."""
    from bitfab.dataflow.inputs import to_graph_order
    from bitfab.hw.compiler import tensor_words

    fmt = acc.graph.input_fmt
    x = to_graph_order(input_rec, images) if input_rec else images.reshape(len(images), -1)
    words = tensor_words(x, fmt)
    k = fmt.words
    return [words_to_bytes(words[i * k : (i + 1) * k], fmt.width) for i in range(len(images))]


def vector_class(acc, vec: bytes) -> int:  # noqa: ANN001 - Accelerator
    """Class (argmax, first on ties) of a raw output vector reply."""
    from bitfab.hw.compiler import words_tensor

    fmt = acc.graph.output_fmt
    return int(np.argmax(words_tensor(bytes_to_words(vec, fmt.width), fmt)[0]))


def run_images(
    port: str,
    acc_dir: str | os.PathLike[str],
    images: int | None,
    *,
    baud: int = 115200,
    window: int = DEFAULT_WINDOW,
    timeout_s: float = 5.0,
    dataset: str = "fashion-mnist",
    progress: Callable[[int, int], None] | None = None,
    inputs: str | os.PathLike[str] | None = None,
    random: int | None = None,
    seed: int = 0,
    load_weights: bool = False,
) -> dict:
    """``bitfab run``: classify the first ``images`` test images on the board at ``port``, or
    run the inputs of the file ``inputs`` / ``random`` random inputs over the input grid
    (:func:`bitfab.sim.verify.verification_inputs`), whose outputs are compared with the golden
    model instead of labels. Returns ``classes`` (a class head) or ``outputs`` (a values head:
    the accelerator's integers), ``labels``/``correct``/``accuracy`` (test images only),
    ``golden_matches`` (own inputs), ``images_per_s``, ``seconds``, ``inputs`` (the source).
    ``load_weights``: first send ``acc_dir``'s weight image over the link (a board whose
    weights sit in SPRAM takes new weights of the same architecture without a new bitstream);
    ``weights_loaded`` in the result."""
    from pathlib import Path

    from bitfab.dataflow.golden import GoldenModel
    from bitfab.hw.accelerator import load_accelerator
    from bitfab.hw.compiler import words_tensor
    from bitfab.models.data import load_dataset
    from bitfab.sim.verify import verification_inputs

    acc, _ = load_accelerator(acc_dir)
    dataflow = Path(acc_dir) / "dataflow.onnx"
    imgs, source = verification_inputs(dataflow, images, dataset, inputs, random, seed)
    golden = GoldenModel(dataflow)
    payloads = image_payloads(acc, imgs, golden.input_rec)
    g = acc.graph
    class_index = g.output_meaning == "class index"
    vec_bytes = g.output_fmt.words * word_bytes(g.output_fmt.width)
    with BoardLink(port, baud, timeout_s) as link:
        info = link.ping()
        if info.loader is not None and not load_weights:
            info = link.wait_weights(timeout_s)  # booting from flash, or refused its image
        if info.image_bytes != len(payloads[0]) or info.class_index != class_index:
            raise BitfabError(
                f"the board's accelerator takes {info.image_bytes}-byte images"
                f"{' (class index out)' if info.class_index else ''}, {acc_dir} needs "
                f"{len(payloads[0])}: program the board with this accelerator's bitstream"
            )
        loaded = None
        if load_weights:
            from bitfab.hw.accelerator import WEIGHTS_FILE
            from bitfab.sim.verify import weight_image_of

            if not acc.loaded_units:
                raise BitfabError(
                    f"--load-weights: {acc_dir} keeps its weights in the bitstream (no SPRAM "
                    "weights); a new model needs a new bitstream ('bitfab build')"
                )
            image = weight_image_of(Path(acc_dir), None)
            t_load = time.perf_counter()
            link.load_weights(image)
            loaded = {"file": str(Path(acc_dir) / WEIGHTS_FILE), "bytes": len(image),
                      "seconds": round(time.perf_counter() - t_load, 3)}  # fmt: skip
        t0 = time.perf_counter()
        replies = link.classify(
            payloads, vector_bytes=0 if class_index else vec_bytes, window=window,
            progress=progress,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
    rep: dict = {"port": port, "accelerator": str(acc_dir), "images": len(imgs), "inputs": source}
    if golden.head == "class":
        classes = [c if class_index else vector_class(acc, v) for c, v in replies]
        rep["classes"] = classes
        got = np.asarray(classes, dtype=np.int64).reshape(-1, 1)
    else:
        got = np.concatenate(
            [words_tensor(bytes_to_words(v, g.output_fmt.width), g.output_fmt) for _, v in replies]
        )
        rep["outputs"] = got.tolist()
    if source["source"] == "dataset" and golden.head == "class":
        _, labels = load_dataset(dataset, "test")
        labels = np.asarray(labels[: len(imgs)])
        correct = int(np.sum(got[:, 0] == labels))
        rep.update(labels=labels.tolist(), correct=correct, accuracy=correct / len(imgs))
    else:  # own inputs, or a values head: the board's outputs against the golden model's
        want = golden.outputs(imgs).astype(np.int64)
        rep["golden_matches"] = int(np.sum(np.all(want.reshape(len(imgs), -1) == got, axis=1)))
    rep.update(
        seconds=round(seconds, 4),
        images_per_s=round(len(imgs) / seconds, 2) if seconds > 0 else None,
    )
    return {
        **rep,
        "baud": baud,
        "window": window,
        # 1 when the board overran pipelined requests and the rest went one at a time
        "window_used": link.window_used,
        "weights_loaded": loaded,
    }
