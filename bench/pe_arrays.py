"""PE-array microbenchmark: synthesis + place-and-route of bitfab's three PE arrays.

For each array kind (bit-parallel, bit-serial, bit-fusion) x precision (W1A1 bipolar, W2A2,
W4A4, W8A8 signed) x size (PE x SIMD) x device (iCE40 UP5K, ECP5), run
:func:`bitfab.fpga.synthesize` out of context (the array wrapped in the shift-chain / XOR-tree
harness, whose own cost is measured separately and subtracted) and record LUT, FF, carry, BRAM,
DSP, post-route Fmax and the throughput figures:

* ``macs_per_cycle = pe * simd / cycles_per_fold(w, a)`` (the array's own performance model);
* ``macs_per_cycle_per_lut`` (LUT = the array's 4-input LUTs, harness excluded);
* ``gmacs = macs_per_cycle * fmax_mhz / 1000``.

Arrays with run-time precision elaborated at 8 bits also get derived entries at lower run-time
precisions (same hardware, same Fmax, fewer cycles per fold). Every finished run is appended to
``bench/results/pe_arrays.json`` at once (re-running skips entries already there), and
``--table`` prints the markdown table for ``docs/pe_arrays.md``.

Run (one P&R at a time; the CPU is shared)::

    nice -n 5 .venv/bin/python bench/pe_arrays.py --deadline 21:35
    .venv/bin/python bench/pe_arrays.py --table
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bitfab.boards import get_target  # noqa: E402
from bitfab.errors import BitfabError  # noqa: E402
from bitfab.kinds import ARRAY_KINDS  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "pe_arrays.json"
PRECISIONS = {1: "bipolar", 2: "signed", 4: "signed", 8: "signed"}
CLOCK_MHZ = {"ice40": 50.0, "ecp5": 150.0}
TARGETS = {"ice40": "up5k", "ecp5": "ecp5-25f"}


def make_array(kind: str, pe: int, simd: int, bits: int, bricks: int | None = None):
    """Instantiate one array; ``kind`` is bitparallel / bitserial / bitfusion."""
    k = PRECISIONS[bits]
    if kind == "bitparallel":
        from bitfab.hw.arrays.parallel import BitParallelArray

        return BitParallelArray(pe, simd, bits, bits, k, k)
    if kind == "bitserial":
        from bitfab.hw.arrays.bitserial import BitSerialArray

        return BitSerialArray(pe, simd, bits, bits, k, k)
    if kind == "bitfusion":
        from bitfab.hw.arrays.bitfusion import BitFusionArray

        return BitFusionArray(pe, simd, bits, bits, k, k, bricks=bricks)
    raise ValueError(f"unknown array kind {kind!r}")


def plan() -> list[dict]:
    """The sweep, most informative runs first (later ones are skipped if time runs out).

    ``bits`` is the elaborated precision. ``bricks`` (bit-fusion only): None = default (one fold
    per cycle at full precision); ``"simd"`` = one brick per lane, a fixed budget whose
    throughput scales with the run-time precision (the Bit Fusion paper's operating mode; at
    least 16 bricks, the number one 8x8 product needs).
    W8A8 runs use a small 2x8 array (a 4x16 bit-parallel W8A8 array needs 13.5 k LUTs).
    """
    runs = []

    def add(kind, pe, simd, bits, family, target=None, bricks=None):
        runs.append(
            dict(
                kind=kind,
                pe=pe,
                simd=simd,
                bits=bits,
                family=family,
                target=target or TARGETS[family],
                bricks=max(simd, 16) if bricks == "simd" else bricks,
            )
        )

    # result keys keep the benchmark's first name for the bit-parallel array ("bitparallel")
    kinds = tuple("bitparallel" if k == "parallel" else k for k in ARRAY_KINDS)
    for family in ("ice40", "ecp5"):
        for bits in (1, 2, 4):
            for kind in kinds:
                add(kind, 4, 16, bits, family)
        add("bitserial", 4, 16, 8, family)
    # W1A1 MAC/LUT target on iCE40: wider folds amortize the per-row accumulators
    for pe, simd in ((8, 32), (8, 64)):
        for kind in kinds:
            add(kind, pe, simd, 1, "ice40")
    for family in ("ice40", "ecp5"):  # 8-bit comparison at a size that fits
        for kind in kinds:
            add(kind, 2, 8, 8, family)
        add("bitfusion", 2, 8, 8, family, bricks="simd")
    for family in ("ice40", "ecp5"):
        for bits in (1, 2, 4, 8):
            for kind in kinds:
                if (family, bits) != ("ice40", 1):  # measured above
                    add(kind, 8, 32, bits, family)
        add("bitfusion", 8, 32, 8, family, bricks="simd")
    for bits in (1, 2):
        for kind in kinds:
            add(kind, 16, 64, bits, "ecp5", target="ecp5-85f")
    for family in ("ice40", "ecp5"):  # large and slow: last
        add("bitparallel", 4, 16, 8, family)
        add("bitfusion", 4, 16, 8, family)
        add("bitfusion", 4, 16, 8, family, bricks="simd")
    return runs


def estimate_luts(spec: dict, runs: list[dict]) -> tuple[int, str] | None:
    """LUTs of ``spec`` scaled from the largest measured run of the same array on the same family
    (LUTs grow about linearly with pe*simd), with the key of that run; None if none measured."""
    size = spec["pe"] * spec["simd"]
    per_lane = spec["bricks"] is not None and spec["bricks"] == max(spec["simd"], 16)
    best = None
    for e in runs:
        if e.get("derived_from_run") or e.get("family") != spec["family"]:
            continue
        if e.get("status") == "ok":
            bits, lut = e["elaborated_bits"], e["lut"]
            e_per_lane = e.get("bricks_spec") == "simd"
        else:  # a failed run records the spec and, if Yosys got that far, its LUT count
            found = re.search(r"needs (\d+) LUTs", e.get("error", ""))
            bits, lut = e.get("bits"), int(found.group(1)) if found else None
            e_per_lane = e.get("bricks") is not None and e.get("bricks") == max(e["simd"], 16)
        if (e.get("kind"), bits) != (spec["kind"], spec["bits"]) or not lut:
            continue
        if spec["kind"] == "bitfusion" and e_per_lane != per_lane:
            continue
        if best is None or e["pe"] * e["simd"] > best[0]:
            best = (e["pe"] * e["simd"], lut, e["key"])
    if best is None:
        return None
    return round(best[1] * size / best[0]), best[2]


def run_key(r: dict) -> str:
    b = f"-b{r['bricks']}" if r.get("bricks") else ""
    return f"{r['kind']}{b}-w{r['bits']}a{r['bits']}-{r['pe']}x{r['simd']}-{r['target']}"


def _load() -> dict:
    if RESULTS.exists():
        return json.loads(RESULTS.read_text())
    return {"runs": []}


def _save(data: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=RESULTS.parent, prefix=".pe_arrays.", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1)
        fh.write("\n")
    os.replace(tmp, RESULTS)


def _meta(argv: list[str]) -> dict:
    import subprocess

    from bitfab.fpga import tool_version

    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "command": " ".join(["nice -n 5 .venv/bin/python bench/pe_arrays.py", *argv]),
        "git_head": head,
        "machine": {
            "host": platform.node(),
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "note": "2 cores shared with other jobs: tool times are noisy, Fmax/LUTs are not",
        },
        "tools": {t: tool_version(t) for t in ("yosys", "nextpnr-ice40", "nextpnr-ecp5")},
        "clock_constraint_mhz": CLOCK_MHZ,
        "method": (
            "out-of-context: bitfab.fpga.synthesize with the shift-chain/XOR-tree harness; "
            "LUT/FF/carry are the array's own (whole netlist minus the black-boxed harness, "
            "Yosys cell counts; ECP5 LUT = LUT4 + 2 per CCU2C); Fmax = nextpnr post-route, "
            "seed 1; no DSPs (synth_ice40 without -dsp, synth_ecp5 -nodsp)"
        ),
    }


def _entry(spec: dict, arr, report, rt_bits: int, derived: bool) -> dict:
    macs = spec["pe"] * spec["simd"] / arr.cycles_per_fold(rt_bits, rt_bits)
    lut = report.lut
    fmax = report.fmax_mhz
    return {
        "key": run_key(spec) + (f"@rt{rt_bits}" if derived else ""),
        "kind": spec["kind"],
        "bricks": getattr(arr, "bricks", None),
        "bricks_spec": "simd"
        if spec["bricks"] and spec["bricks"] == max(spec["simd"], 16)
        else None,
        "pe": spec["pe"],
        "simd": spec["simd"],
        "elaborated_bits": spec["bits"],
        "wbits": rt_bits,
        "abits": rt_bits,
        "kinds": PRECISIONS[spec["bits"]],
        "target": spec["target"],
        "family": spec["family"],
        "device": report.device,
        "derived_from_run": derived,
        "status": "ok",
        "lut": lut,
        "ff": report.ff,
        "carry": report.carry,
        "bram": report.bram,
        "dsp": report.dsp_cells,
        "harness": report.harness.as_dict() if report.harness else None,
        "logic_cells_placed": report.utilization.get("logic_cells"),
        "fmax_mhz": round(fmax, 2) if fmax else None,
        "clock_constraint_mhz": report.clock_mhz,
        "critical_path": report.critical_path,
        "cycles_per_fold": arr.cycles_per_fold(rt_bits, rt_bits),
        "macs_per_cycle": macs,
        "macs_per_cycle_per_lut": round(macs / lut, 4) if lut else None,
        "luts_per_mac": round(lut / macs, 3) if macs else None,
        "gmacs": round(macs * fmax / 1000, 3) if fmax else None,
        "times_s": report.times_s,
        "array_source_sha1": _source_sha1(arr),
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
    }


#: the source files that define a PE array of a kind besides its own module (the contract)
_SHARED_SOURCES = ("base.py", "common.py")


def _source_files(module_file: str) -> list[Path]:
    arrays = ROOT / "bitfab" / "hw" / "arrays"
    return [Path(module_file), *(arrays / name for name in _SHARED_SOURCES)]


def _source_sha1(arr) -> str:
    """SHA-1 of the array's module source, the PE array base class and common.py (which version
    was measured)."""
    import hashlib
    import inspect

    h = hashlib.sha1()
    for path in _source_files(inspect.getfile(type(arr))):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def current_source_sha1(kind: str) -> str:
    """What :func:`_source_sha1` gives for an array of ``kind`` with the files as they are now."""
    import hashlib
    import importlib

    from bitfab.hw.arrays import ARRAYS

    canonical = {"bitparallel": "parallel"}.get(kind, kind)
    module = importlib.import_module(ARRAYS[canonical][0])
    h = hashlib.sha1()
    for path in _source_files(module.__file__):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def retire_stale(data: dict) -> int:
    """Move runs measured on older array sources (or that errored) to ``data["superseded"]``."""
    keep, old = [], data.setdefault("superseded", [])
    for e in data["runs"]:
        sha = e.get("array_source_sha1")
        if e.get("status") == "error" or (sha and sha != current_source_sha1(e["kind"])):
            old.append(e)
        else:
            keep.append(e)
    moved = len(data["runs"]) - len(keep)
    data["runs"] = keep
    return moved


def run_one(spec: dict, work: Path, timeout_s: float = 3600.0) -> list[dict]:
    from bitfab.fpga import synthesize

    arr = make_array(spec["kind"], spec["pe"], spec["simd"], spec["bits"], spec["bricks"])
    out = work / run_key(spec)
    report = synthesize(
        arr, spec["target"], out, clock_mhz=CLOCK_MHZ[spec["family"]], seed=1, timeout_s=timeout_s
    )
    shutil.rmtree(out, ignore_errors=True)  # netlists are large; the figures are in the entry
    entries = [_entry(spec, arr, report, spec["bits"], derived=False)]
    if spec["kind"] != "bitparallel" and spec["bits"] == 8:
        for rt in (1, 2, 4):
            if rt == 1 and spec["kind"] == "bitfusion":
                continue  # 1-bit signed = a 2-bit brick slice: same as rt 2
            entries.append(_entry(spec, arr, report, rt, derived=True))
    return entries


def sweep(args) -> int:
    from rich.console import Console

    console = Console(stderr=True)
    data = _load()
    data["meta"] = _meta(sys.argv[1:])
    if args.rerun_stale:
        console.print(f"retired {retire_stale(data)} runs of older array sources")
        _save(data)
    done = {e["key"] for e in data["runs"]}
    todo = [s for s in plan() if run_key(s) not in done]
    if args.only:
        todo = [s for s in todo if any(o in run_key(s) for o in args.only)]
    deadline = None
    if args.deadline:
        hh, mm = map(int, args.deadline.split(":"))
        deadline = dt.datetime.now().replace(hour=hh, minute=mm, second=0, microsecond=0)
    work = Path(tempfile.mkdtemp(prefix="pe_arrays_", dir=args.work))
    durations: list[float] = []
    for n, spec in enumerate(todo, 1):
        key = run_key(spec)
        if deadline is not None:
            guess = max(durations[-5:], default=60.0) * (2.5 if spec["pe"] >= 16 else 1.0)
            if dt.datetime.now() + dt.timedelta(seconds=guess) > deadline:
                console.print(f"[yellow]skip {key}: would end after the deadline")
                continue
        est = estimate_luts(spec, data["runs"])
        cap = get_target(spec["target"]).luts
        if est is not None and est[0] > 1.05 * cap:
            msg = (
                f"predicted not to fit {spec['target']}: ~{est[0]} LUTs scaled from {est[1]}"
                f" (device has {cap}); not run to save time"
            )
            console.print(f"[yellow]skip {key}: {msg}")
            data["runs"].append({"key": key, **spec, "status": "skipped", "error": msg})
            _save(data)
            continue
        console.print(f"[bold]({n}/{len(todo)}) {key}")
        t0 = time.perf_counter()
        try:
            entries = run_one(spec, work, timeout_s=args.timeout)
        except BitfabError as exc:
            status = "timeout" if "timed out" in str(exc) else "does not fit"
            entries = [{"key": key, **spec, "status": status, "error": str(exc)}]
        except ValueError as exc:  # the array refuses these parameters
            entries = [{"key": key, **spec, "status": "unsupported", "error": str(exc)}]
        except Exception as exc:  # noqa: BLE001 - an array being edited must not stop the sweep
            entries = [
                {"key": key, **spec, "status": "error", "error": f"{type(exc).__name__}: {exc}"}
            ]
        dur = time.perf_counter() - t0
        durations.append(dur)
        for e in entries:
            e.setdefault("wall_s", round(dur, 1))
        data["runs"].extend(entries)
        _save(data)
        e = entries[0]
        if e["status"] == "ok":
            console.print(
                f"  LUT {e['lut']}  FF {e['ff']}  Fmax {e['fmax_mhz']} MHz  "
                f"MAC/cycle {e['macs_per_cycle']:g}  MAC/cycle/LUT {e['macs_per_cycle_per_lut']}"
                f"  ({dur:.0f} s)"
            )
        else:
            console.print(f"  [red]{e['status']}: {e['error']}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def table(_args) -> int:
    data = _load()
    rows = [e for e in data["runs"] if e.get("status") == "ok"]
    rows.sort(
        key=lambda e: (
            e["family"],
            e["pe"] * e["simd"],
            e["wbits"],
            e["kind"],
            e["derived_from_run"],
        )
    )
    print(
        "| array | elab. bits | run W/A | PE x SIMD | device | LUT | FF | Fmax MHz | "
        "cycles/fold | MAC/cycle | MAC/cycle/LUT | GMAC/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for e in rows:
        kind = e["kind"] + (f" (bricks={e['bricks']})" if e["kind"] == "bitfusion" else "")
        run = f"W{e['wbits']}A{e['abits']}" + (" (derived)" if e["derived_from_run"] else "")
        print(
            f"| {kind} | {e['elaborated_bits']} | {run} | {e['pe']}x{e['simd']} | "
            f"{e['target']} | {e['lut']} | {e['ff']} | {e['fmax_mhz']} | {e['cycles_per_fold']} "
            f"| {e['macs_per_cycle']:g} | {e['macs_per_cycle_per_lut']} | {e['gmacs']} |"
        )
    for e in data["runs"]:
        if e.get("status") != "ok":
            print(f"\n- {e['key']}: {e['status']}: {e.get('error', '')}")
    return 0


def summary(_args) -> int:
    """Print the targets as met / not met, from the recorded runs."""
    runs = [e for e in _load()["runs"] if e.get("status") == "ok"]
    real = [e for e in runs if not e["derived_from_run"]]

    def best(rows, key):
        return max(rows, key=lambda e: e[key]) if rows else None

    w1 = [e for e in runs if e["family"] == "ice40" and e["wbits"] == 1 and e["kinds"] == "bipolar"]
    b = best(w1, "macs_per_cycle_per_lut")
    if b:
        met = "met" if b["macs_per_cycle_per_lut"] >= 0.6 else "NOT met"
        print(
            f"- W1A1 >= 0.6 binary MAC/LUT/cycle on iCE40: {met}; best {b['macs_per_cycle_per_lut']}"
            f" ({b['kind']} {b['pe']}x{b['simd']}, {b['lut']} LUT)"
        )
    for fam, goal in (("ice40", 50.0), ("ecp5", 150.0)):
        rows = [e for e in real if e["family"] == fam and e["fmax_mhz"]]
        ok = [e for e in rows if e["fmax_mhz"] >= goal]
        if rows:
            top = best(rows, "fmax_mhz")
            low = min(rows, key=lambda e: e["fmax_mhz"])
            print(
                f"- Fmax >= {goal:g} MHz on {fam}: met by {len(ok)}/{len(rows)} runs; "
                f"range {low['fmax_mhz']}-{top['fmax_mhz']} MHz (worst {low['key']})"
            )
    bp = {
        (e["pe"], e["simd"], e["target"], e["wbits"]): e for e in real if e["kind"] == "bitparallel"
    }
    for e in runs:
        if e["kind"] != "bitfusion" or e["wbits"] not in (2, 4, 8):
            continue
        ref = bp.get((e["pe"], e["simd"], e["target"], e["wbits"]))
        if ref is None:
            continue
        ratio = e["luts_per_mac"] / ref["luts_per_mac"]
        met = "met" if ratio <= 1.5 else "NOT met"
        print(
            f"- bit-fusion (bricks={e['bricks']}, elaborated {e['elaborated_bits']} bit) at "
            f"W{e['wbits']}A{e['abits']}, {e['pe']}x{e['simd']} on {e['target']}: "
            f"{e['luts_per_mac']} vs bit-parallel {ref['luts_per_mac']} LUT/MAC = {ratio:.2f}x "
            f"({met}, target <= 1.5x)"
        )
    return 0


DOCS = ROOT / "docs" / "pe_arrays.md"
BEGIN, END = "<!-- pe_arrays results begin -->", "<!-- pe_arrays results end -->"


def update_docs(args) -> int:
    """Replace the generated block of docs/pe_arrays.md with the current table and summary."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        table(args)
        print("\nTargets (from the runs above):\n")
        summary(args)
    text = DOCS.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOCS.write_text(f"{head}{BEGIN}\n{buf.getvalue()}{END}{tail}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--deadline", help="HH:MM local time: skip runs predicted to end later")
    p.add_argument("--only", nargs="*", help="run only keys containing one of these strings")
    p.add_argument("--work", default=None, help="scratch folder for build outputs")
    p.add_argument(
        "--rerun-stale",
        action="store_true",
        help="re-run entries measured on older array sources (moved to 'superseded' in the JSON)",
    )
    p.add_argument("--timeout", type=float, default=480.0, help="per-tool timeout in seconds")
    p.add_argument("--table", action="store_true", help="print the markdown table and exit")
    p.add_argument("--summary", action="store_true", help="print targets met / not met and exit")
    p.add_argument(
        "--update-docs",
        action="store_true",
        help="rewrite the generated block of docs/pe_arrays.md from the JSON and exit",
    )
    args = p.parse_args(argv)
    if args.update_docs:
        return update_docs(args)
    if args.summary:
        return summary(args)
    return table(args) if args.table else sweep(args)


if __name__ == "__main__":
    raise SystemExit(main())
