"""``bitfab build`` across boards and PE arrays: resources, Fmax, images/s, build time.

For each model (tfc W1A1 ``runs/tfc_w1a1/model.onnx``, cnv-s W2A2 ``runs/cnv_w2a2/model.onnx``),
board (icebreaker, ulx3s-85f, orangecrab-25f) and array kind (parallel, bitserial, bitfusion)
it runs :func:`bitfab.flows.build.build` (folding chosen to fit, RTL verification, board top,
bitstream) and records the report's figures, or the failure and its reason. Builds go to
``--work`` (default ``~/.cache/bitfab/bench_boards``), so a rerun reuses unchanged steps (the
recorded build time is then the time the steps took when they ran, ``built_s``).

``--boards all`` builds for every board of the catalogue (``bitfab.boards.BOARDS``).

Results are merged into ``bench/results/boards.json`` after every build: runs already there are
kept, a run with the same model, board and array is replaced (each run records the command that
made it). ``--markdown`` also rewrites the table in ``docs/boards.md`` (between the
``<!-- boards table -->`` markers) from all the runs in the file.

    nice -n 5 .venv/bin/python bench/boards.py [--models tfc_w1a1] [--boards icebreaker|all]
        [--arrays parallel] [--verify-images 100] [--budget-s 3000] [--markdown]

Every catalogue board, tfc W1A1, one array, 50 verified images:

    nice -n 5 .venv/bin/python bench/boards.py --models tfc_w1a1 --boards all \
        --arrays parallel --verify-images 50 --markdown
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from bitfab.kinds import ARRAY_KINDS as ARRAYS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "boards.json"
DOC = ROOT / "docs" / "boards.md"
MODELS = {
    "tfc_w1a1": "runs/tfc_w1a1/model.onnx",
    "cnv_w2a2": "runs/cnv_w2a2/model.onnx",
    # bitfab train --model tfc --wbits 2 --abits 2 --epochs 10 --out runs/tfc_w2a2
    "tfc_w2a2": "runs/tfc_w2a2/model.onnx",
}
BOARDS = ("icebreaker", "ulx3s-85f", "orangecrab-25f")
#: design clock per board (MHz; boards not named: None = the oscillator). ULX3S-85F: 50 MHz
#: through the PLL (its earlier runs were made so, when the ECP5 board top on the bare oscillator
#: still failed in Amaranth; kept so the runs compare).
CLOCKS = {"ulx3s-85f": 50.0}
MARK_BEGIN, MARK_END = "<!-- boards table -->", "<!-- /boards table -->"


def _entry(
    model: str, board: str, array: str, rep: dict | None, err: str | None, wall: float
) -> dict:
    e = {
        "model": model,
        "board": board,
        "array": array,
        "ok": rep is not None,
        "wall_s": round(wall, 1),
        "requested_clock_mhz": CLOCKS.get(board),
    }
    if rep is None:
        e["error"] = err
        return e
    res = rep["resources"]
    e.update(
        {
            "device": rep["device"],
            "resources": {k: v["used"] for k, v in res.items()},
            "available": {k: v["available"] for k, v in res.items()},
            "fmax_mhz": rep["fmax_mhz"],
            "clock_mhz": rep["clock_mhz"],
            "timing_met": rep["timing_met"],
            "cycles_per_image": rep["cycles_per_image"],
            "images_per_s_at_clock": rep["images_per_s"],
            "images_per_s_at_fmax": rep["images_per_s_at_fmax"],
            "verification": rep["verification"],
            "golden_accuracy_on_sample": rep["accuracy"]["golden_on_verified_sample"],
            "model_test_accuracy": (rep["accuracy"].get("model") or {}).get("test_accuracy"),
            "folding": rep["fit"]["folding"],
            "bitstream_sha256": rep["bitstream"]["sha256"],
            # SPRAM weights (memory planner): the weight image the board boots from flash
            "weight_stores": rep["fit"].get("weight_stores") or {},
            "weight_image": rep.get("weight_image"),
            "spram_blocks": rep["resources"].get("SPRAM", {}).get("used"),
            "built_s": round(sum(s["built_seconds"] for s in rep["steps"].values()), 1),
            "step_s": {k: s["built_seconds"] for k, s in rep["steps"].items()},
            "cached": rep["cached"],
        }
    )
    return e


def _load() -> dict:
    if RESULTS.is_file():
        return json.loads(RESULTS.read_text())
    return {"runs": []}


def _save(data: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, RESULTS)


def table(runs: list[dict]) -> str:
    """Markdown table of the runs (measured here)."""
    lines = [
        "| model | board | array | LUT | FF | BRAM | Fmax MHz | cycles/img | img/s at Fmax | "
        "img/s at clock (MHz) | RTL check | build s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        if not r["ok"]:
            reason = (r.get("error") or "").replace("|", "/")
            lines.append(
                f"| {r['model']} | {r['board']} | {r['array']} | failed: {reason} |||||||||"
            )
            continue
        res, av = r["resources"], r["available"]
        cyc = r["cycles_per_image"]["measured"]
        lines.append(
            f"| {r['model']} | {r['board']} | {r['array']} | {res['LUT']}/{av['LUT']} | "
            f"{res['FF']} | {res['BRAM']}/{av['BRAM']} | {r['fmax_mhz']} | {cyc} | "
            f"{r['images_per_s_at_fmax']:,.0f} | {r['images_per_s_at_clock']:,.0f} "
            f"({r['clock_mhz']:g}) | {r['verification']['images']} img, "
            f"{r['verification']['mismatches']} mism. | {r['built_s']} |"
        )
    return "\n".join(lines)


def write_doc(runs: list[dict]) -> None:
    text = DOC.read_text() if DOC.is_file() else ""
    block = f"{MARK_BEGIN}\n{table(runs)}\n{MARK_END}"
    if MARK_BEGIN in text and MARK_END in text:
        a, b = text.index(MARK_BEGIN), text.index(MARK_END) + len(MARK_END)
        text = text[:a] + block + text[b:]
    else:
        text = text + "\n" + block + "\n"
    DOC.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--boards", default=",".join(BOARDS), help="comma list, or 'all'")
    ap.add_argument("--arrays", default=",".join(ARRAYS))
    ap.add_argument("--verify-images", type=int, default=100)
    ap.add_argument("--work", default=str(Path.home() / ".cache" / "bitfab" / "bench_boards"))
    ap.add_argument("--budget-s", type=float, default=None, help="skip builds after this long")
    ap.add_argument("--markdown", action="store_true", help="rewrite the table in docs/boards.md")
    args = ap.parse_args()

    from bitfab.boards import BOARDS as CATALOGUE
    from bitfab.errors import BitfabError
    from bitfab.flows.build import build

    boards = list(CATALOGUE) if args.boards == "all" else args.boards.split(",")

    data = _load()
    data["machine"] = {"cpu_count": os.cpu_count(), "platform": platform.platform()}
    data["command"] = "nice -n 5 .venv/bin/python bench/boards.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "markdown" and v
    )
    runs = {(r["model"], r["board"], r["array"]): r for r in data.get("runs", [])}
    start = time.perf_counter()
    for model in args.models.split(","):
        for board in boards:
            for array in args.arrays.split(","):
                if args.budget_s and time.perf_counter() - start > args.budget_s:
                    print(f"skip {model} {board} {array}: time budget")
                    continue
                t0 = time.perf_counter()
                rep, err = None, None
                try:
                    rep = build(
                        ROOT / MODELS[model],
                        board,
                        array,
                        Path(args.work) / f"{model}-{board}-{array}",
                        clock_mhz=CLOCKS.get(board),
                        verify_images=args.verify_images,
                        progress=False,
                    )
                except BitfabError as exc:
                    err = str(exc)
                except Exception as exc:  # a crash is a result too: record it
                    err = f"crash: {type(exc).__name__}: {str(exc).splitlines()[0]}"
                e = _entry(model, board, array, rep, err, time.perf_counter() - t0)
                e["command"] = data["command"]
                runs[(model, board, array)] = e
                print(json.dumps({k: e.get(k) for k in ("model", "board", "array", "ok", "fmax_mhz", "images_per_s_at_fmax", "error", "wall_s")}))  # fmt: skip
                data["runs"] = sorted(
                    runs.values(), key=lambda r: (r["model"], r["board"], r["array"])
                )
                _save(data)
    if args.markdown:
        write_doc(data["runs"])


if __name__ == "__main__":
    main()
