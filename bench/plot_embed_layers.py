#!/usr/bin/env python3
"""bench/plot_embed_layers.py WORK OUT.svg [DTYPE [BATCH]] - the device time
per layer of ecf8-embed by --weights mode, as grouped bars in a hand-written
SVG (standard library only).  Reads WORK/DTYPE-MODE-BATCH.json (written by
bench/embed.sh; default e4m3, batch 1) for MODE in uncompressed, decoded,
fused: their "layer_ms" (embeddings, encoder layers 0-5, pooling; ms per
pass) and "device"."""
import json
import sys
from xml.sax.saxutils import escape

MODES = ("uncompressed", "decoded", "fused")
COLOURS = {"uncompressed": "#7f7f7f", "decoded": "#1f77b4", "fused": "#ff7f0e"}


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    work, out = argv[1], argv[2]
    dtype = argv[3] if len(argv) > 3 else "e4m3"
    batch = argv[4] if len(argv) > 4 else "1"
    runs = {}
    for m in MODES:
        with open(f"{work}/{dtype}-{m}-{batch}.json") as f:
            runs[m] = json.load(f)
    n = len(runs[MODES[0]]["layer_ms"])
    labels = ["embed"] + [f"layer {i}" for i in range(n - 2)] + ["pool"]
    top = max(max(r["layer_ms"]) for r in runs.values()) or 1.0
    # A round axis maximum with 4-6 ticks.
    step = 10 ** len(str(int(top))) / 10 if top >= 1 else 0.1
    while top / step > 6:
        step *= 2
    while top / step < 3:
        step /= 2
    ymax = step * (int(top / step) + 1)

    W, Hh = 760, 420
    L, R, T, B = 70, 20, 75, 60
    pw, ph = W - L - R, Hh - T - B
    gw = pw / n
    bw = gw * 0.8 / len(MODES)
    y = lambda v: T + ph - v / ymax * ph
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{Hh}" '
         f'viewBox="0 0 {W} {Hh}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{Hh}" fill="white"/>',
         f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">ecf8-embed, '
         f'all-MiniLM-L6-v2, {escape(dtype.upper())}, batch {escape(batch)}: device time per '
         f'layer by --weights mode</text>',
         f'<text x="{W / 2}" y="36" text-anchor="middle" fill="#555">'
         f'{escape(runs[MODES[0]]["device"])}</text>']
    k = 0
    while k * step <= ymax + 1e-9:
        v = k * step
        s.append(f'<line x1="{L}" y1="{y(v):.1f}" x2="{L + pw}" y2="{y(v):.1f}" stroke="#ddd"/>')
        s.append(f'<text x="{L - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
        k += 1
    for i, lab in enumerate(labels):
        x0 = L + i * gw + gw * 0.1
        for j, m in enumerate(MODES):
            v = runs[m]["layer_ms"][i]
            s.append(f'<rect x="{x0 + j * bw:.1f}" y="{y(v):.1f}" width="{bw - 1:.1f}" '
                     f'height="{T + ph - y(v):.1f}" fill="{COLOURS[m]}">'
                     f'<title>{lab}, {m}: {v:.3f} ms</title></rect>')
        s.append(f'<text x="{L + (i + 0.5) * gw:.1f}" y="{T + ph + 18}" '
                 f'text-anchor="middle">{lab}</text>')
    s.append(f'<line x1="{L}" y1="{T}" x2="{L}" y2="{T + ph}" stroke="black"/>')
    s.append(f'<line x1="{L}" y1="{T + ph}" x2="{L + pw}" y2="{T + ph}" stroke="black"/>')
    s.append(f'<text x="{L + pw / 2}" y="{Hh - 12}" text-anchor="middle">'
             f'segment of the forward pass</text>')
    s.append(f'<text transform="translate(18,{T + ph / 2}) rotate(-90)" text-anchor="middle">'
             f'device time per pass (ms)</text>')
    # The legend: one row between the title and the plot.
    for j, m in enumerate(MODES):
        lx, ly = L + 40 + j * 210, 46
        tot = sum(runs[m]["layer_ms"])
        s.append(f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{COLOURS[m]}"/>')
        s.append(f'<text x="{lx + 18}" y="{ly + 10}">{m} ({tot:.1f} ms)</text>')
    s.append('</svg>')
    with open(out, "w") as f:
        f.write("\n".join(s) + "\n")


if __name__ == "__main__":
    main(sys.argv)
