"""The sweep's outputs: ``results.csv`` and ``report.html``.

``report.html`` is one self-contained file (no network, no external script or style): per
board, two scatter plots drawn here as inline SVG (accuracy vs images/s, images/s vs LUTs; the
Pareto points ringed and joined), the estimate-vs-synthesis errors, a table of every point
(click a header to sort; a few lines of inline JavaScript), per-layer breakdowns (cycles and
LUT estimate per layer) of the Pareto and synthesized points, and links to each built point's
``report.json`` and bitstream (paths relative to the report).
"""

from __future__ import annotations

import csv
import html
import io
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

#: results.csv columns (record fields; ``point.*`` from the point)
CSV_COLUMNS = (
    "name", "point.model", "point.precision", "point.wbits", "point.abits", "point.array",
    "point.board", "status", "stage", "reason", "accuracy", "lut", "ff", "bram", "dsp",
    "fmax_mhz", "clock_mhz", "cycles_per_image", "images_per_s", "images_per_s_per_lut",
    "source", "pareto", "cached", "seconds",
)  # fmt: skip

ARRAY_COLOURS = {"parallel": "#1f77b4", "bitserial": "#d62728", "bitfusion": "#2ca02c"}
MODEL_SHAPES = ("circle", "square", "triangle", "diamond")


def _get(rec: dict, col: str):  # noqa: ANN202
    if col.startswith("point."):
        return rec["point"].get(col[6:])
    return rec.get(col)


def write_csv(records: Sequence[dict], path: Path) -> None:
    """One row per point, :data:`CSV_COLUMNS` (atomic write)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([c.replace("point.", "") for c in CSV_COLUMNS])
    for r in records:
        w.writerow(["" if _get(r, c) is None else _get(r, c) for c in CSV_COLUMNS])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(buf.getvalue())
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# SVG scatter plots
# --------------------------------------------------------------------------------------------

W, H, ML, MR, MT, MB = 640, 400, 64, 34, 28, 46


def _esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer():
        if abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}"
    return f"{int(v):,}"


class _Axis:
    """Maps data to pixels, linear or log10, with 'nice' ticks."""

    def __init__(
        self, lo: float, hi: float, log: bool, p0: float, p1: float, percent: bool = False
    ) -> None:
        self.log = log
        self.percent = percent  # values are fractions, labelled as percentages
        if log:
            lo, hi = math.log10(lo), math.log10(hi)
            lo, hi = math.floor(lo), math.ceil(hi)
            if hi == lo:
                hi = lo + 1
        else:
            if hi == lo:
                lo, hi = lo - 0.5 * (abs(lo) or 1), hi + 0.5 * (abs(hi) or 1)
            pad = 0.06 * (hi - lo)
            lo, hi = lo - pad, hi + pad
        self.lo, self.hi, self.p0, self.p1 = lo, hi, p0, p1

    def __call__(self, v: float) -> float:
        x = math.log10(v) if self.log else v
        return self.p0 + (x - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)

    def ticks(self) -> list[tuple[float, str]]:
        if self.log:
            # within one or two decades also 2x and 5x (else "1,000" and "10,000" alone)
            mults = (1, 2, 5) if self.hi - self.lo <= 2 else (1,)
            vals = [m * 10.0**e for e in range(int(self.lo), int(self.hi) + 1) for m in mults]
            return [(v, _fmt(v)) for v in vals if self.lo <= math.log10(v) <= self.hi + 1e-9]
        span = self.hi - self.lo
        step = 10 ** math.floor(math.log10(span / 5))
        for m in (1, 2, 5, 10):
            if span / (step * m) <= 6:
                step *= m
                break
        t = math.ceil(self.lo / step) * step
        out = []
        while t <= self.hi + 1e-12:
            if self.percent:
                digits = max(0, -math.floor(math.log10(step * 100)))
                out.append((t, f"{t * 100:.{digits}f} %"))
            else:
                out.append((t, f"{t:.{max(0, -math.floor(math.log10(step)))}f}"))
            t += step
        return out


def _marker(shape: str, x: float, y: float, r: float, attrs: str) -> str:
    if shape == "square":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}" {attrs}/>'
    if shape == "triangle":
        pts = f"{x:.1f},{y - r * 1.2:.1f} {x - r * 1.1:.1f},{y + r * 0.8:.1f} {x + r * 1.1:.1f},{y + r * 0.8:.1f}"
        return f'<polygon points="{pts}" {attrs}/>'
    if shape == "diamond":
        pts = f"{x:.1f},{y - r * 1.3:.1f} {x + r:.1f},{y:.1f} {x:.1f},{y + r * 1.3:.1f} {x - r:.1f},{y:.1f}"
        return f'<polygon points="{pts}" {attrs}/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" {attrs}/>'


def scatter_svg(
    records: Sequence[dict],
    xkey: str,
    ykey: str,
    *,
    xlabel: str,
    ylabel: str,
    xlog: bool,
    ylog: bool,
    front_key: str,
    title: str,
    models: Sequence[str],
) -> str:
    """One scatter plot (inline SVG) of the ok points in ``records``; points with
    ``rec[front_key]`` are ringed and joined in x order (the 2-D Pareto front)."""

    def has(r: dict) -> bool:
        return (
            r.get(xkey) is not None
            and r.get(ykey) is not None
            and (not xlog or r[xkey] > 0)
            and (not ylog or r[ykey] > 0)
        )

    pts = [r for r in records if r.get("status") == "ok" and has(r)]
    nofit = [r for r in records if r.get("status") != "ok" and has(r)]  # estimated, not built
    out = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" role="img" aria-label="{_esc(title)}">',
        f'<text x="{W / 2:.0f}" y="16" text-anchor="middle" class="pt">{_esc(title)}</text>',
    ]
    if not pts and not nofit:
        out.append(
            f'<text x="{W / 2:.0f}" y="{H / 2:.0f}" text-anchor="middle">no ok points</text>'
        )
        return "\n".join(out + ["</svg>"])
    shown = pts + nofit
    xs, ys = [r[xkey] for r in shown], [r[ykey] for r in shown]
    ax = _Axis(min(xs), max(xs), xlog, ML, W - MR, percent=xkey == "accuracy")
    ay = _Axis(min(ys), max(ys), ylog, H - MB, MT, percent=ykey == "accuracy")
    out.append(
        f'<rect x="{ML}" y="{MT}" width="{W - ML - MR}" height="{H - MT - MB}" class="frame"/>'
    )
    for v, lab in ax.ticks():
        x = ax(v)
        out.append(f'<line x1="{x:.1f}" y1="{MT}" x2="{x:.1f}" y2="{H - MB}" class="grid"/>')
        out.append(f'<text x="{x:.1f}" y="{H - MB + 14}" text-anchor="middle">{_esc(lab)}</text>')
    for v, lab in ay.ticks():
        y = ay(v)
        out.append(f'<line x1="{ML}" y1="{y:.1f}" x2="{W - MR}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{ML - 4}" y="{y + 4:.1f}" text-anchor="end">{_esc(lab)}</text>')
    out.append(
        f'<text x="{(ML + W - MR) / 2:.0f}" y="{H - 8}" text-anchor="middle">{_esc(xlabel)}</text>'
    )
    out.append(
        f'<text transform="translate(14,{(MT + H - MB) / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{_esc(ylabel)}</text>'
    )
    pos = _spread([(ax(r[xkey]), ay(r[ykey])) for r in shown])
    at = {id(r): xy for r, xy in zip(shown, pos, strict=True)}
    fr = sorted((r for r in pts if r.get(front_key)), key=lambda r: (r[xkey], r[ykey]))
    if len(fr) > 1:
        path = " ".join(f"{at[id(r)][0]:.1f},{at[id(r)][1]:.1f}" for r in fr)
        out.append(f'<polyline points="{path}" class="front"/>')
    for r in nofit:  # hollow and dashed: estimated, but does not fit / failed (hover: why)
        p = r["point"]
        x, y = at[id(r)]
        colour = ARRAY_COLOURS.get(p["array"], "#777")
        shape = MODEL_SHAPES[models.index(p["model"]) % len(MODEL_SHAPES)]
        tip = f"{r['name']}: {r.get('reason') or r.get('status')}"
        out.append(
            f'<g class="pt-nofit" data-name="{_esc(r["name"])}"><title>{_esc(tip)}</title>'
            + _marker(shape, x, y, 4.5, f'fill="none" stroke="{colour}" stroke-dasharray="2 1.5"')
            + "</g>"
        )  # fmt: skip
    placed: list[tuple[float, float, float]] = []  # label boxes: (x0, x1, baseline)
    # the front last, so no other point covers a ringed one
    for r in sorted(pts, key=lambda r: bool(r.get(front_key))):
        p = r["point"]
        x, y = at[id(r)]
        colour = ARRAY_COLOURS.get(p["array"], "#777")
        shape = MODEL_SHAPES[models.index(p["model"]) % len(MODEL_SHAPES)]
        tip = (
            f"{r['name']}: accuracy {_fmt(r.get('accuracy'))}, {_fmt(r.get('images_per_s'))} "
            f"img/s, {_fmt(r.get('lut'))} LUT ({r.get('source')})"
        )
        cls = "pt-front" if r.get(front_key) else "pt-dot"
        fill = (
            f'fill="{colour}"'
            if r.get("source") == "synth"
            else f'fill="{colour}" fill-opacity="0.55"'
        )
        out.append(
            f'<g class="{cls}" data-name="{_esc(r["name"])}"><title>{_esc(tip)}</title>'
            + _marker(shape, x, y, 5.5 if r.get(front_key) else 4.5, f'{fill} stroke="{"#000" if r.get(front_key) else colour}"')
            + "</g>"
        )  # fmt: skip
        if r.get(front_key):  # the Pareto points carry their names, stacked when close
            anchor = "end" if x > (ML + W - MR) / 2 else "start"
            dx = -8 if anchor == "end" else 8
            width = 5.6 * len(r["name"])  # ~px at 10 px font
            x0 = x + dx - (width if anchor == "end" else 0)
            ly = y - 7
            while any(
                abs(ly - py) < 11 and x0 < px1 and px0 < x0 + width for px0, px1, py in placed
            ):
                ly -= 12
            placed.append((x0, x0 + width, ly))
            out.append(
                f'<text class="lbl" x="{x + dx:.1f}" y="{ly:.1f}" text-anchor="{anchor}">'
                f"{_esc(r['name'])}</text>"
            )
    out.append("</svg>")
    return "\n".join(out)


def _spread(xy: Sequence[tuple[float, float]], r: float = 7.0) -> list[tuple[float, float]]:
    """Pixel positions with coincident points (within 2 px) moved apart on a small circle of
    radius ``r`` around their common position, so none hides another."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (x, y) in enumerate(xy):
        groups.setdefault((round(x / 2), round(y / 2)), []).append(i)
    out = list(xy)
    for members in groups.values():
        if len(members) < 2:
            continue
        cx = sum(xy[i][0] for i in members) / len(members)
        cy = sum(xy[i][1] for i in members) / len(members)
        for k, i in enumerate(members):
            a = 2 * math.pi * k / len(members)
            out[i] = (cx + r * math.cos(a), cy + r * math.sin(a))
    return out


def _legend(models: Sequence[str], arrays: Sequence[str]) -> str:
    items = []
    for a in arrays:
        c = ARRAY_COLOURS.get(a, "#777")
        items.append(
            f'<span><svg width="14" height="14"><circle cx="7" cy="7" r="5" fill="{c}"/></svg> '
            f"{_esc(a)}</span>"
        )
    for i, m in enumerate(models):
        mark = _marker(MODEL_SHAPES[i % len(MODEL_SHAPES)], 7, 7, 5, 'fill="#555"')
        items.append(f'<span><svg width="14" height="14">{mark}</svg> {_esc(m)}</span>')
    items.append(
        "<span>black ring + line + name: Pareto front; faded: estimate, solid: synthesized; "
        "hollow dashed: estimated but does not fit (hover for why); coincident points are "
        "drawn side by side</span>"
    )
    return '<p class="legend">' + " &nbsp; ".join(items) + "</p>"


# --------------------------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------------------------

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:20px;color:#222}
h1{font-size:20px}h2{font-size:17px;margin-top:28px}h3{font-size:15px}
.plots{display:flex;flex-wrap:wrap;gap:12px}
svg.plot{border:1px solid #ddd;background:#fff;font-size:11px;width:calc(50% - 8px);min-width:420px;height:auto}
svg.plot .lbl{font-size:10px;fill:#333}
.scroll{overflow-x:auto;max-width:100%}
svg.plot .pt{font-weight:bold;font-size:12px}
svg.plot .frame{fill:none;stroke:#999}svg.plot .grid{stroke:#eee}
svg.plot .front{fill:none;stroke:#000;stroke-width:1.2;stroke-dasharray:4 3}
table{border-collapse:collapse;font-size:12px}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right;white-space:nowrap}
td.l,th.l{text-align:left}th{background:#f3f3f3;cursor:pointer;user-select:none}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
tr.failed td{color:#a00}td.reason{white-space:normal;max-width:420px;text-align:left}
.bar{display:inline-block;height:9px;background:#69c;vertical-align:middle}
.legend span{margin-right:10px}
"""

JS = """
(function(){
  function key(td){var v=td.getAttribute('data-v');if(v===null)v=td.textContent;
    var n=parseFloat(v);return isNaN(n)?{s:v.toLowerCase()}:{n:n};}
  function cmp(a,b){if(a.n!==undefined&&b.n!==undefined)return a.n-b.n;
    if(a.n!==undefined)return -1;if(b.n!==undefined)return 1;return a.s<b.s?-1:a.s>b.s?1:0;}
  var tables=document.querySelectorAll('table.sortable');
  tables.forEach(function(t){
    var ths=t.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths,function(th,col){
      th.addEventListener('click',function(){
        var asc=!th.classList.contains('sorted-asc');
        Array.prototype.forEach.call(ths,function(h){h.classList.remove('sorted-asc','sorted-desc');});
        th.classList.add(asc?'sorted-asc':'sorted-desc');
        var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
        rows.sort(function(r1,r2){var c=cmp(key(r1.cells[col]),key(r2.cells[col]));return asc?c:-c;});
        rows.forEach(function(r){body.appendChild(r);});
      });
    });
  });
  document.body.setAttribute('data-sortable-tables',String(tables.length));
  var plots=document.querySelectorAll('svg.plot');
  document.body.setAttribute('data-plot-widths',Array.prototype.map.call(plots,function(p){
    return Math.round(p.getBoundingClientRect().width);}).join(','));
  var t=document.getElementById('points');
  if(t)document.body.setAttribute('data-table-fits',String(t.parentNode.scrollWidth<=document.body.clientWidth+1||t.parentNode.classList.contains('scroll')));
  document.body.setAttribute('data-ready','1');
})();
"""

COLUMNS: tuple[tuple[str, str, Callable[[dict], object]], ...] = (
    ("point", "l", lambda r: r["name"]),
    ("model", "l", lambda r: r["point"]["model"]),
    ("W/A", "l", lambda r: r["point"]["precision"]),
    ("array", "l", lambda r: r["point"]["array"]),
    ("board", "l", lambda r: r["point"]["board"]),
    ("status", "l", lambda r: r["status"]),
    ("accuracy", "", lambda r: r.get("accuracy")),
    ("LUT", "", lambda r: r.get("lut")),
    ("FF", "", lambda r: r.get("ff")),
    ("BRAM", "", lambda r: r.get("bram")),
    ("DSP", "", lambda r: r.get("dsp")),
    ("Fmax MHz", "", lambda r: r.get("fmax_mhz")),
    ("clock MHz", "", lambda r: r.get("clock_mhz")),
    ("cycles/img", "", lambda r: r.get("cycles_per_image")),
    ("img/s", "", lambda r: r.get("images_per_s")),
    ("img/s/LUT", "", lambda r: r.get("images_per_s_per_lut")),
    ("source", "l", lambda r: r.get("source") or ""),
    ("Pareto", "l", lambda r: "yes" if r.get("pareto") else ""),
)


def _cell(v: object, cls: str) -> str:
    if isinstance(v, float) and cls != "l":
        shown = f"{v:.4f}" if abs(v) < 1 else _fmt(v)
        return f'<td data-v="{v!r}">{_esc(shown)}</td>'
    if isinstance(v, int) and not isinstance(v, bool):
        return f'<td data-v="{v}">{v:,}</td>'
    if v is None:
        return '<td data-v="">-</td>'
    return f'<td class="{cls}">{_esc(v)}</td>'


def _links(r: dict) -> str:
    s = r.get("synth")
    parts = (
        [f'<a href="points/{_esc(r["name"])}/estimate/accelerator.json">estimate</a>']
        if r.get("estimate")
        else []
    )
    if s:
        parts.append(f'<a href="{_esc(s["report"])}">build report</a>')
        parts.append(f'<a href="{_esc(s["bitstream"])}">bitstream</a>')
    return " ".join(parts)  # fmt: skip


def _points_table(records: Sequence[dict]) -> str:
    head = "".join(f'<th class="{c}">{_esc(n)}</th>' for n, c, _ in COLUMNS)
    rows = []
    for r in records:
        cells = "".join(_cell(f(r), c) for _, c, f in COLUMNS)
        reason = f'<td class="reason">{_esc(r.get("reason") or "")}</td>'
        rows.append(
            f'<tr class="{"ok" if r["status"] == "ok" else "failed"}">{cells}'
            f'<td class="l">{_links(r)}</td>{reason}</tr>'
        )
    return (
        f'<table class="sortable" id="points"><thead><tr>{head}<th class="l">links</th>'
        f'<th class="l">reason</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _layers(r: dict) -> str:
    est = r.get("estimate") or {}
    layers = est.get("layers") or []
    if not layers:
        return ""
    max_c = max((ly.get("cycles") or 0) for ly in layers) or 1
    max_l = max((ly.get("luts") or 0) for ly in layers) or 1
    rows = []
    for ly in layers:
        c, lu = ly.get("cycles") or 0, ly.get("luts") or 0
        rows.append(
            f'<tr><td class="l">{_esc(ly["name"])}</td><td class="l">{_esc(ly["op_type"])}</td>'
            f'<td class="l">{_esc(ly.get("array") or "")}</td>'
            f"<td>{_esc(ly.get('PE') or '')}</td><td>{_esc(ly.get('SIMD') or '')}</td>"
            f'<td data-v="{c}">{c:,} <span class="bar" style="width:{80 * c / max_c:.0f}px"></span></td>'
            f'<td data-v="{lu}">{lu:,} <span class="bar" style="width:{80 * lu / max_l:.0f}px"></span></td></tr>'
        )  # fmt: skip
    return (
        f'<details class="layers" open><summary><b>{_esc(r["name"])}</b>: '
        f"{_fmt(est.get('cycles_per_image'))} cycles/image (bottleneck "
        f"{_esc(est.get('bottleneck'))}), accelerator LUT estimate {_fmt(est.get('lut_accelerator'))}"
        f'</summary><table class="sortable"><thead><tr><th class="l">layer</th>'
        f'<th class="l">op</th><th class="l">array</th><th>PE</th><th>SIMD</th>'
        f"<th>cycles/image</th><th>LUT estimate</th></tr></thead><tbody>{''.join(rows)}"
        f"</tbody></table></details>"
    )


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def _errors(err: dict) -> str:
    if not any(v["points"] for v in err.values()):
        return "<p>No synthesized points: run with <code>--synth</code> or <code>--synth-pareto</code>.</p>"
    rows = "".join(
        f'<tr><td class="l">{_esc(k)}</td><td>{v["points"]}</td>'
        f"<td>{_pct(v['mean_abs'])}</td><td>{_pct(v['max_abs'])}</td>"
        f'<td class="l">{_esc(v["worst"] or "")}</td></tr>'
        for k, v in err.items()
    )
    return (
        '<table><thead><tr><th class="l">figure</th><th>points</th><th>mean |error|</th>'
        f'<th>max |error|</th><th class="l">worst point</th></tr></thead><tbody>{rows}'
        "</tbody></table><p>error = (estimate - synthesized) / synthesized; LUT: the fit "
        "model's logic cells vs nextpnr's; images/s: at the design clock vs at min(Fmax, clock).</p>"
    )


def render_html(results: dict) -> str:
    """The whole report page (a string)."""
    recs = results["points"]
    models = list(dict.fromkeys(r["point"]["model"] for r in recs))
    arrays = list(dict.fromkeys(r["point"]["array"] for r in recs))
    boards = list(dict.fromkeys(r["point"]["board"] for r in recs))
    c = results["counts"]
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        "<title>bitfab explore: design-space report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>bitfab explore: accuracy vs throughput vs LUTs</h1>",
        f"<p>{c['points']} points ({c['ok']} ok, {c['failed']} failed, {c['synthesized']} "
        f"synthesized, {c['cached']} from the cache); {_esc(results['executor'])}; "
        f"{results['seconds']:.1f} s. Models: "
        + ", ".join(
            f"{_esc(m['model'])} w{m['wbits']}a{m['abits']} "
            + (
                f"{m['accuracy']:.2%}"
                if m.get("accuracy") is not None
                else f"failed: {_esc(m.get('error'))}"
            )
            for m in results["models"]
        )  # fmt: skip
        + f" test accuracy ({results['spec']['train']['epochs']} epoch(s)).</p>",
        '<h2 id="pareto">Pareto fronts</h2>',
        _legend(models, arrays),
    ]
    for b in boards:
        sub = [r for r in recs if r["point"]["board"] == b]
        on = results["pareto"].get(b, [])
        unplotted = [r for r in sub if r["status"] != "ok" and r.get("images_per_s") is None]
        missing = (
            "<p class=\"unplotted\">Not plotted (no estimate): "
            + "; ".join(f"{_esc(r['name'])}: {_esc(r.get('reason') or r['status'])}" for r in unplotted)
            + "</p>"
            if unplotted
            else ""
        )  # fmt: skip
        parts.append(
            f"<h3>{_esc(b)}</h3><p>Pareto points (accuracy, images/s, LUTs): "
            f'{_esc(", ".join(on) or "none")}</p>{missing}<div class="plots">'
        )
        parts.append(
            scatter_svg(
                sub,
                "images_per_s",
                "accuracy",
                xlabel="images/s (log)",
                ylabel="test accuracy (%)",
                xlog=True,
                ylog=False,
                front_key="pareto_acc_ips",
                title=f"{b}: accuracy vs images/s",
                models=models,
            )  # fmt: skip
        )
        parts.append(
            scatter_svg(
                sub,
                "lut",
                "images_per_s",
                xlabel="LUTs (logic cells)",
                ylabel="images/s (log)",
                xlog=False,
                ylog=True,
                front_key="pareto_ips_lut",
                title=f"{b}: images/s vs LUTs",
                models=models,
            )  # fmt: skip
        )
        parts.append("</div>")
    parts += [
        '<h2 id="errors">Estimates vs synthesis</h2>',
        _errors(results["estimate_error"]),
        '<h2 id="table">All points</h2><p>Click a column header to sort. Figures are from '
        "synthesis where the point was built (source synth), else estimates.</p>",
        '<div class="scroll">' + _points_table(recs) + "</div>",
        '<h2 id="layers">Per-layer breakdown (Pareto and synthesized points)</h2>',
    ]
    chosen = [r for r in recs if r.get("pareto") or r.get("synth")]
    parts += [_layers(r) for r in chosen] or ["<p>none</p>"]
    parts.append(f"<script>{JS}</script></body></html>")
    return "\n".join(parts)


def write_html(results: dict, path: Path) -> None:
    """``report.html`` (atomic write)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(render_html(results), encoding="utf-8")
    os.replace(tmp, path)
