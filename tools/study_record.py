#!/usr/bin/env python3
"""Copies what a training study's report reads from one run into a folder small enough to commit (standard library).

    tools/study_record.py --run runs/long-study-24500/vanilla --record docs/data/long-study-24500/vanilla

A study run (scripts/clip_study.sh, scripts/long_study.sh) trains for hours and its folder (checkpoints of tens of
MB) stays on the machine that trained it. Its record is what tools/training_study_report.py needs to draw the study
again anywhere, from runs trained in different sessions or on different machines:
  metrics.jsonl   every validation record, and of the step records (one per step) those at a multiple of --every,
                  the first and the last, and the first that trained at the final clip alpha (the end of a warm-up,
                  which the report's dead-row column starts from);
  quantized/step-N/{fp,ptq-w8a8,awq-w8}.json   the evaluations of the latest quantized checkpoint (study_lib.sh's
                  quantize_latest), those that exist.
The record is replaced as a whole: written beside it, then renamed over it, so an interrupted copy leaves the old one.
"""
import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from training_study_report import SCHEMES, latest_quantized  # noqa: E402


def thinned(lines, every):
    """The lines of a metrics.jsonl that the record keeps (see the module's docstring), in their order."""
    records = [json.loads(line) for line in lines if line.strip()]
    steps = [r for r in records if "val_loss" not in r]
    keep = {id(r) for r in records if "val_loss" in r}
    if steps:
        keep |= {id(steps[0]), id(steps[-1])}
        keep |= {id(r) for r in steps if r["step"] % every == 0}
        if "clip_alpha" in steps[-1]:
            final_alpha = steps[-1]["clip_alpha"]
            keep.add(id(next(r for r in steps if r.get("clip_alpha") == final_alpha)))
    return [json.dumps(r, separators=(",", ":")) + "\n" for r in records if id(r) in keep]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="the run's directory (bert_train --out)")
    parser.add_argument("--record", required=True, help="the record's directory (replaced)")
    parser.add_argument("--every", type=int, default=50, help="keep the step records at multiples of this step")
    args = parser.parse_args()
    if args.every < 1:
        sys.exit("study_record: --every must be at least 1")
    metrics = os.path.join(args.run, "metrics.jsonl")
    try:
        with open(metrics) as f:
            kept = thinned(f.readlines(), args.every)
    except OSError as e:
        sys.exit(f"study_record: cannot read the run's metrics: {e}")
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        sys.exit(f"study_record: {metrics} is not a bert_train metrics.jsonl: {e}")

    staging = args.record.rstrip("/") + ".tmp"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    with open(os.path.join(staging, "metrics.jsonl"), "w") as f:
        f.writelines(kept)
    quantized = latest_quantized(args.run)
    if quantized:
        step, source = quantized
        os.makedirs(os.path.join(staging, "quantized", step))
        for scheme in SCHEMES:
            if os.path.exists(os.path.join(source, f"{scheme}.json")):
                shutil.copyfile(os.path.join(source, f"{scheme}.json"),
                                os.path.join(staging, "quantized", step, f"{scheme}.json"))
    old = args.record.rstrip("/") + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(args.record):
        os.rename(args.record, old)
    os.rename(staging, args.record)
    shutil.rmtree(old, ignore_errors=True)
    print(f"study_record: {args.record}: {len(kept)} metrics records"
          + (f", quantized evaluations of {quantized[0]}" if quantized else ""))


if __name__ == "__main__":
    main()
