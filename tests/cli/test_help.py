"""Every command's ``--help`` (built from bitfab.cli.COMMANDS) ends with examples that parse, and
the PE array aliases are mapped to the canonical kinds on the command line only."""

from __future__ import annotations

import shlex

import pytest

from bitfab.boards import target_names
from bitfab.cli import COMMANDS, build_parser, main
from bitfab.cli.common import ARRAY_ALIASES, array_flag
from bitfab.errors import BitfabError
from bitfab.kinds import ARRAY_KINDS, array_kind


def _subparsers() -> dict:
    parser = build_parser()
    return parser._subparsers._group_actions[0].choices


def test_every_command_module_is_registered_once():
    names = _subparsers()
    assert sorted(names) == sorted(c.replace("_", "-") for c in COMMANDS)


@pytest.mark.parametrize("command", [c.replace("_", "-") for c in COMMANDS])
def test_help_ends_with_examples_that_parse(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    tail = out[out.rindex("examples:") :].splitlines()[1:]
    examples = [line.split("#")[0].strip() for line in tail if line.strip()]
    assert 1 <= len(examples) <= 2, out
    parser = build_parser()
    used = []
    for example in examples:  # each part of "A && B" is a bitfab command line that parses
        for part in example.split("&&"):
            words = shlex.split(part)
            assert words[0] == "bitfab", example
            args = parser.parse_args(words[1:])
            assert callable(args.func)
            for attr in ("board", "target"):  # boards named in examples exist
                if getattr(args, attr, None):
                    assert getattr(args, attr) in target_names(), example
            used.append(args.command)
    assert command in used, f"no example of {command} itself: {examples}"


def test_top_level_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command.replace("_", "-") in out


@pytest.mark.parametrize("alias,kind", sorted(ARRAY_ALIASES.items()))
def test_cli_maps_array_aliases(alias, kind):
    assert array_flag(alias) == kind
    assert array_flag(alias.upper()) == kind
    args = build_parser().parse_args(["compile", "x.onnx", "--array", alias, "--out", "o"])
    assert args.array == kind


@pytest.mark.parametrize("alias", sorted(ARRAY_ALIASES))
def test_api_takes_canonical_kinds_only(alias):
    assert [array_kind(k) for k in ARRAY_KINDS] == list(ARRAY_KINDS)
    with pytest.raises(BitfabError, match="expected one of parallel, bitserial, bitfusion"):
        array_kind(alias)


def test_unknown_array_is_a_usage_error(capsys):
    assert main(["compile", "x.onnx", "--array", "systolic", "--out", "o"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: --array 'systolic': expected one of parallel, bitserial, bitfusion "
        "(see 'bitfab compile --help')"
    ]


def test_missing_argument_is_one_line(capsys):
    assert main(["build"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the following arguments are required")


def test_explore_array_list_maps_each_alias():
    args = build_parser().parse_args(
        ["explore", "--out", "o", "--array", "bitparallel,bitserial,bit-serial"]
    )
    assert args.array == "parallel,bitserial,bitserial"
