"""bitfab.sim.verilator_native: a failed build names the real error line, not Verilator's
closing summary."""

from __future__ import annotations

import pytest

from bitfab.errors import BitfabError
from bitfab.sim.verilator_native import compile_executable, first_build_error

BROKEN = """module broken(input wire clk, output reg [3:0] q);
  always @(posedge clk) q <= q + 1
endmodule
"""
MAIN = "int main() { return 0; }\n"


@pytest.mark.verilator
def test_syntax_error_is_named_with_its_line(tmp_path):
    with pytest.raises(BitfabError) as exc:
        compile_executable(BROKEN, "broken", MAIN, kind="test", cache_dir=tmp_path)
    msg = str(exc.value)
    assert "verilator build of broken (test) failed" in msg
    assert "%Error" in msg and "broken.v:3" in msg, msg
    assert "Exiting due to" not in msg, msg


def test_first_build_error_prefers_the_real_error(tmp_path):
    log = tmp_path / "build.log"
    log.write_text(
        "%Warning-WIDTH: a.v:2: width\n%Error: a.v:3:1: syntax error, unexpected endmodule\n"
        "%Error: Exiting due to 1 error(s)\n"
    )
    assert first_build_error(log) == "%Error: a.v:3:1: syntax error, unexpected endmodule"
    log.write_text("obj/x.cpp:5:3: error: 'foo' was not declared\nmake: *** [x.o] Error 1\n")
    assert first_build_error(log) == "obj/x.cpp:5:3: error: 'foo' was not declared"
    assert first_build_error(tmp_path / "none.log") is None


COUNTER = """module counter(input wire clk, output reg [3:0] q);
  always @(posedge clk) q <= q + 1;
endmodule
"""


@pytest.mark.verilator
def test_concurrent_builds_share_one_cache_entry(tmp_path):
    """Three processes build the same design into one cache at once: one entry, complete, and a
    later build is a cache hit (no entry lost to a concurrent writer)."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from bitfab.sim.verilator_native import compile_executable\n"
        f"x = compile_executable({COUNTER!r}, 'counter', {MAIN!r}, kind='test', "
        f"cache_dir={str(tmp_path)!r})\n"
        "print(json.dumps({'built': x.built, 'exe': str(x.exe)}))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(r["built"] for r in results) == 1, results  # the others waited and reused it
    assert len({r["exe"] for r in results}) == 1
    entries = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1 and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    again = compile_executable(COUNTER, "counter", MAIN, kind="test", cache_dir=tmp_path)
    assert not again.built and again.exe.is_file()
