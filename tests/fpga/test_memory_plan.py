"""The memory planner (bitfab.fpga.memory_plan): placements per device family, and the fit
and compile following its SPRAM choice."""

import dataclasses
import json
from pathlib import Path

import pytest

from bitfab.boards import get_target
from bitfab.fpga.memory_plan import memory_table, plan_summary, plan_weight_stores
from bitfab.hw.accelerator import Accelerator, compile_accelerator
from bitfab.hw.compiler import compile_graph, memory_plan_of
from bitfab.hw.elaboratable import unused_ok
from bitfab.hw.spram import spram_blocks
from tests.hw.test_compiler import tiny_dataflow

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


@pytest.fixture(scope="module")
def df(request) -> Path:
    return tiny_dataflow(Path(request.config.cache.mkdir("bitfab_accel")), "w2a2")


def rom_acc(df):
    return unused_ok(Accelerator(compile_graph(df, "parallel", weight_stores={})))


def test_table_lists_every_weight_memory_with_its_placement(df):
    acc = rom_acc(df)
    for board in ("icebreaker", "ulx3s-85f"):
        rows = memory_table(acc, get_target(board))
        mvaus = {ly.name for ly in acc.graph.layers if ly.op_type == "MVAU"}
        assert {r["unit"] for r in rows if r["role"] == "weights"} == mvaus
        assert all(r["place"] in ("bram", "logic", "lutram") for r in rows)  # no SPRAM yet
        assert any(r["unit"] == "host link" for r in rows)
        assert plan_summary(rows)["bram_blocks"] == sum(r["blocks"] for r in rows)


def test_no_spram_while_block_ram_suffices_or_on_devices_without(df):
    acc = rom_acc(df)
    roomy = dataclasses.replace(get_target("up5k"), bram_blocks=1000)
    assert plan_weight_stores(acc, roomy) == {}  # block RAM holds everything: no loader
    tight = dataclasses.replace(get_target("ulx3s-85f"), bram_blocks=1)
    assert plan_weight_stores(acc, tight) == {}  # ECP5: no SPRAM to move to


def test_weights_move_to_spram_when_block_ram_overflows(df):
    acc = rom_acc(df)
    rows = memory_table(acc, get_target("up5k"))
    need = plan_summary(rows)["bram_blocks"]
    tight = dataclasses.replace(get_target("up5k"), bram_blocks=need - 1)
    plan = plan_weight_stores(acc, tight)
    assert plan and set(plan.values()) == {"spram"}
    # every move pays: without any one of the planned units, more block RAMs are used
    for name in plan:
        rest = {k: v for k, v in plan.items() if k != name}
        fewer = unused_ok(Accelerator(compile_graph(df, "parallel", weight_stores=rest)))
        with_all = unused_ok(Accelerator(compile_graph(df, "parallel", weight_stores=plan)))
        assert (
            plan_summary(memory_table(fewer, tight))["bram_blocks"]
            > plan_summary(memory_table(with_all, tight))["bram_blocks"]
        )
    planned = unused_ok(Accelerator(compile_graph(df, "parallel", weight_stores=plan)))
    after = memory_table(planned, tight)
    assert plan_summary(after)["bram_blocks"] <= tight.bram_blocks
    spram = [r for r in after if r["place"] == "spram"]
    assert {r["unit"] for r in spram} == set(plan)
    assert sum(r["blocks"] for r in spram) == sum(
        spram_blocks(u.weight_width, u.SF * u.NF) for u in planned.loaded_units
    )
    # no more SPRAM than the device has
    one = dataclasses.replace(tight, spram_blocks=0)
    assert plan_weight_stores(acc, one) == {}


def test_compile_follows_the_plan_in_the_graph(df, tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper

    from bitfab.hw.compiler import MEMORY_PLAN_META

    m = ModelWrapper(str(df))
    name = next(n.name for n in m.graph.node if n.op_type == "MVAU")
    m.set_metadata_prop(MEMORY_PLAN_META, json.dumps({name: "spram"}))
    m.save(str(tmp_path / "dataflow.onnx"))
    assert memory_plan_of(ModelWrapper(str(tmp_path / "dataflow.onnx"))) == {name: "spram"}
    rep = compile_accelerator(tmp_path / "dataflow.onnx", tmp_path / "acc")
    assert rep["weight_stores"][name] == "spram"
    assert (tmp_path / "acc" / "weights.bin").stat().st_size == rep["weight_image"]["bytes"]
