"""Every command that writes ``--out`` refuses an unusable one before any work: one error line,
exit code 2, nothing written (the command's own example with its ``--out`` replaced)."""

from __future__ import annotations

import shlex

import pytest

from bitfab.cli import COMMANDS, build_parser, main


def _examples() -> list[tuple[str, list[str], str]]:
    """(command, argv of its first example, out kind) of every command with an --out."""
    choices = build_parser()._subparsers._group_actions[0].choices
    rows = []
    for name in (c.replace("_", "-") for c in COMMANDS):
        p = choices[name]
        kind = p.get_default("out_kind")
        if not kind:
            continue
        first = p.epilog.splitlines()[1].split("#")[0].split("&&")[0]
        rows.append((name, shlex.split(first)[1:], kind))
    return rows


EXAMPLES = _examples()


def _with_out(argv: list[str], out: str) -> list[str]:
    i = argv.index("--out")
    return [*argv[: i + 1], out, *argv[i + 2 :]]


def test_the_writing_commands_are_all_covered():
    assert {n for n, _, _ in EXAMPLES} >= {
        "train", "quantize", "mixed", "dataflow", "compile", "build", "flow", "explore", "synth",
    }  # fmt: skip


@pytest.mark.parametrize("name,argv,kind", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_unusable_out_is_one_clean_error(name, argv, kind, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "blocker"
    if kind == "folder":
        blocker.write_text("a file, not a folder")
        bad = [str(blocker), str(blocker / "deeper")]
    else:
        blocker.mkdir()
        bad = [str(blocker)]
    for out in bad:
        assert main(_with_out(argv, out)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: --out {out}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]
