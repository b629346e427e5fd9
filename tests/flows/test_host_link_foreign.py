"""``bitfab run --random N`` / ``--inputs FILE`` on the simulated board (bitfab.sim.board_sim) for
a foreign non-image model with a values head (examples/foreign_corpus.py ``regression``:
three signed 4-bit outputs): every output the board returns equals the golden model's."""

from __future__ import annotations

import numpy as np
import pytest

from bitfab.cli import main
from examples import foreign_corpus as fc

pytest.importorskip("serial")


@pytest.fixture(scope="module")
def acc_dir(foreign_models, tmp_path_factory):
    path, _ = foreign_models[("regression", "legacy")]
    root = tmp_path_factory.mktemp("hostlink_foreign")
    assert main(["dataflow", str(path), "--out", str(root / "df")]) == 0
    acc = root / "acc"
    assert main(["compile", str(root / "df" / "dataflow.onnx"), "--out", str(acc)]) == 0
    return acc


@pytest.mark.verilator
def test_run_random_and_file_inputs_match_the_golden_model(acc_dir, tmp_path, capsys):
    from bitfab.dataflow.golden import GoldenModel
    from bitfab.dataflow.inputs import random_inputs
    from bitfab.host.run import run_images
    from bitfab.sim.board_sim import simulated_board

    golden = GoldenModel(acc_dir / "dataflow.onnx")
    with simulated_board(acc_dir) as board:
        rep = run_images(board.port, acc_dir, None, random=24, seed=5)
        want = golden.outputs(random_inputs(golden.input_rec, 24, seed=5)).astype(int)
        assert rep["outputs"] == want.tolist() and rep["golden_matches"] == 24
        assert len({tuple(o) for o in rep["outputs"]}) > 1  # not a constant answer
        assert rep["inputs"] == {"source": "random", "count": 24, "seed": 5, "grid": "INT4"}
        x = np.random.default_rng(2).normal(size=(10, fc.FEATURES["regression"])) * 3
        np.save(tmp_path / "x.npy", x.astype(np.float32))
        capsys.readouterr()
        args = ["run", "--port", board.port, "--acc", str(acc_dir), "--quiet"]
        assert main([*args, "--inputs", str(tmp_path / "x.npy")]) == 0
        assert "10/10 outputs equal the golden model's" in capsys.readouterr().out
        # a feature model has no test images: the plain command says what to give instead
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "not a 28 x 28 image" in err and "--random N" in err
