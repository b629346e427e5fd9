"""New weights without re-synthesis: an accelerator with SPRAM weights on the simulated board
(bitfab.sim.board_sim: host link + boot loader + behavioural flash in Verilator) boots from
one model's weight image, takes another model's (same architecture) over the host link, and
then answers with the second model's golden classes; a foreign or corrupt image is refused
and the board keeps answering with the weights it has."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper

from bitfab.cli import main
from bitfab.errors import BitfabError
from bitfab.hw.accelerator import compile_accelerator
from bitfab.hw.compiler import MEMORY_PLAN_META
from tests.hw.test_compiler import tiny_dataflow

pytest.importorskip("serial")
pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def permuted(df: Path, layer: str, out: Path, seed: int) -> Path:
    """A second model of the same architecture: ``layer``'s neurons in another order (its
    weight columns and threshold rows, and the next MVAU's weight rows, permuted alike), so
    the network computes the same function... except that the next layer's weights are
    permuted too; we permute only this layer to get a *different* model."""
    m = ModelWrapper(str(df))
    node = next(n for n in m.graph.node if n.name == layer)
    w = m.get_initializer(node.input[1])
    t = m.get_initializer(node.input[2])
    perm = np.random.default_rng(seed).permutation(w.shape[1])
    m.set_initializer(node.input[1], w[:, perm])
    m.set_initializer(node.input[2], t[perm])
    out.parent.mkdir(parents=True, exist_ok=True)
    m.save(str(out))
    return out


@pytest.fixture(scope="module")
def two_models(request, tmp_path_factory):
    df = tiny_dataflow(Path(request.config.cache.mkdir("bitfab_accel")), "w2a2")
    root = tmp_path_factory.mktemp("weights_update")
    plan = {"MVAU_1": "spram", "MVAU_2": "spram"}
    a, b = root / "a", root / "b"
    m = ModelWrapper(str(df))
    m.set_metadata_prop(MEMORY_PLAN_META, json.dumps(plan))
    m.save(str(root / "a.onnx"))
    compile_accelerator(root / "a.onnx", a)
    permuted(root / "a.onnx", "MVAU_1", root / "b.onnx", seed=3)
    compile_accelerator(root / "b.onnx", b)
    return a, b


def golden_classes(acc: Path, n: int) -> list[int]:
    from bitfab.dataflow.golden import GoldenModel
    from bitfab.sim.verify import load_test_images

    return GoldenModel(acc / "dataflow.onnx").classify(load_test_images(n)).astype(int).tolist()


@pytest.mark.verilator
def test_new_weights_over_the_host_link_give_the_new_models_classes(two_models, tmp_path, capsys):
    from bitfab.host.run import run_images
    from bitfab.sim.board_sim import simulated_board

    a, b = two_models
    n = 40
    want_a, want_b = golden_classes(a, n), golden_classes(b, n)
    assert want_a != want_b  # the two models differ on these images
    assert (a / "accelerator.v").read_text() == (b / "accelerator.v").read_text()
    with simulated_board(a) as board:
        # generous reply timeouts: the simulated board is slow on a loaded machine
        rep = run_images(board.port, a, n, timeout_s=60)
        assert rep["classes"] == want_a and rep["weights_loaded"] is None
        rep = run_images(board.port, b, n, load_weights=True, timeout_s=60)  # same bitstream
        assert rep["classes"] == want_b
        assert rep["weights_loaded"]["bytes"] == (b / "weights.bin").stat().st_size
        # a corrupt image is refused by name; a refused load leaves no usable weights, and
        # the next good load restores the board
        bad = bytearray((a / "weights.bin").read_bytes())
        bad[40] ^= 1
        (tmp_path / "bad").mkdir()
        for f in ("accelerator.json", "accelerator.v", "dataflow.onnx"):
            (tmp_path / "bad" / f).write_bytes((a / f).read_bytes())
        (tmp_path / "bad" / "weights.bin").write_bytes(bytes(bad))
        capsys.readouterr()
        code = main(["run", "--port", board.port, "--acc", str(tmp_path / "bad"),
                     "--images", "4", "--load-weights", "--quiet", "--timeout", "60"])  # fmt: skip
        assert code == 2
        assert "refused the weight image" in capsys.readouterr().err
        # the board says so when asked (ping flags carry the loader status): no silent answers
        with pytest.raises(BitfabError, match="no usable weights: .*CRC-32 mismatch"):
            run_images(board.port, a, 4, timeout_s=60)
        rep = run_images(board.port, a, n, load_weights=True, timeout_s=60)
        assert rep["classes"] == want_a
