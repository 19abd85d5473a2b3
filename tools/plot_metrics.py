#!/usr/bin/env python3
"""Draws the loss curve of a bert_train run as an SVG, with no dependency beyond Python.

    tools/plot_metrics.py RUN/metrics.jsonl [more.jsonl ...] -o loss.svg [--smooth 20]

Each metrics file becomes one training-loss line (a moving average over --smooth
steps) and, where the run evaluated, one line of validation loss points; several
files are overlaid (e.g. a softmax and a clipped-softmax run) with a legend.
"""
import argparse
import json
import math
import sys

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
WIDTH, HEIGHT = 800, 480
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 30, 50


def read_run(path):
    train, validation = [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"plot_metrics: {path}:{number}: not JSON ({e})")
            if "loss" in record:
                train.append((record["step"], record["loss"]))
            if "val_loss" in record:
                validation.append((record["step"], record["val_loss"]))
    if not train:
        sys.exit(f"plot_metrics: {path} holds no training loss")
    return train, validation


def moving_average(points, window):
    out, total = [], 0.0
    for i, (step, value) in enumerate(points):
        total += value
        if i >= window:
            total -= points[i - window][1]
        out.append((step, total / min(i + 1, window)))
    return out


def nice_ticks(low, high, count=5):
    span = (high - low) or 1.0
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.ceil(low / step) * step
    ticks = []
    while first <= high + 1e-9:
        ticks.append(first)
        first += step
    return ticks


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", nargs="+", help="metrics.jsonl files written by bert_train")
    parser.add_argument("-o", "--output", required=True, help="the SVG file to write")
    parser.add_argument("--smooth", type=int, default=20, help="moving-average window of the training loss")
    args = parser.parse_args()
    runs = [(path, *read_run(path)) for path in args.metrics]

    all_points = [p for _, train, validation in runs for p in train + validation]
    x_low, x_high = 0, max(step for step, _ in all_points)
    y_low = min(value for _, value in all_points)
    y_high = max(value for _, value in all_points)
    margin = 0.05 * ((y_high - y_low) or 1.0)
    y_low, y_high = y_low - margin, y_high + margin

    def x(step):
        return LEFT + (WIDTH - LEFT - RIGHT) * (step - x_low) / ((x_high - x_low) or 1)

    def y(value):
        return HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * (value - y_low) / (y_high - y_low)

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" '
           f'font-size="12"><rect width="100%" height="100%" fill="white"/>']
    for tick in nice_ticks(y_low, y_high):
        svg.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>')
        svg.append(f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>')
    for tick in nice_ticks(x_low, x_high):
        svg.append(f'<text x="{x(tick):.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">{tick:g}</text>')
    svg.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 12}" text-anchor="middle">step</text>')
    svg.append(f'<text x="16" y="{(TOP + HEIGHT - BOTTOM) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(TOP + HEIGHT - BOTTOM) / 2})">MLM loss (nats)</text>')
    for index, (path, train, validation) in enumerate(runs):
        color = COLORS[index % len(COLORS)]
        line = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in moving_average(train, args.smooth))
        svg.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{line}"/>')
        for s, v in validation:
            svg.append(f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="4" fill="white" stroke="{color}" stroke-width="2"/>')
        legend_y = TOP + 16 * index
        svg.append(f'<line x1="{WIDTH - RIGHT - 260}" x2="{WIDTH - RIGHT - 240}" y1="{legend_y}" y2="{legend_y}" '
                   f'stroke="{color}" stroke-width="2"/>')
        label = path.replace("&", "&amp;").replace("<", "&lt;")
        svg.append(f'<text x="{WIDTH - RIGHT - 234}" y="{legend_y + 4}">{label} (o: validation)</text>')
    svg.append("</svg>")
    with open(args.output, "w") as f:
        f.write("\n".join(svg) + "\n")
    print(f"plot_metrics: wrote {args.output}")


if __name__ == "__main__":
    main()
