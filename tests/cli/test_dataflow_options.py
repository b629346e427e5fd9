"""``bitfab dataflow``'s --input/--head/--check choices mirror the dataflow stage's own (kept in
the CLI module so that '--help' does not import FINN)."""

from __future__ import annotations

from bitfab.cli import dataflow as cli_dataflow


def test_cli_choices_mirror_the_dataflow_stage():
    from bitfab.dataflow.convert import HEAD_MODES, INPUT_MODES
    from bitfab.dataflow.golden import SELF_CHECK_INPUTS

    assert cli_dataflow.INPUT_MODES == INPUT_MODES
    assert cli_dataflow.HEAD_MODES == HEAD_MODES
    assert cli_dataflow.SELF_CHECK_INPUTS == SELF_CHECK_INPUTS
