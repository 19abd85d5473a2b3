#!/usr/bin/env python3
"""Writes docs/<study>.md and docs/<study>.svg from the runs of a training study (standard library only).

    tools/training_study_report.py --study clip_study --runs docs/data/clip-study-16000 --docs docs --steps 16000

The studies (STUDIES below) are scripts/clip_study.sh (issue 16 (a): what makes clipped softmax at the seed's alpha
train) and scripts/long_study.sh (issue 16 (b): vanilla, clipped and gated attention over 100M tokens of a larger
corpus, do outliers emerge). Reads RUNS/<run>/metrics.jsonl (bert_train: the validation records, and the clip_alpha
of the step records) and RUNS/<run>/quantized/ (study_lib.sh's quantize_latest) of the study's runs, where RUNS is the
study's records (tools/study_record.py, which the scripts commit) or the runs' directory itself. The tables hold
the numbers as measured; the findings are sentences computed from them, so they follow the numbers on a rerun. A run
that is missing or unfinished is reported as such.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from outlier_study_report import fmt, line_chart, markdown_table  # noqa: E402

TITLES = {  # run directory -> title
    "vanilla": "vanilla softmax",
    "clipped": "clipped softmax, BERT init",
    "clipped-ref": "clipped softmax, reference init",
    "clipped-warmup": "clipped softmax, alpha warm-up",
    "clipped-ref-warmup": "clipped softmax, reference init + alpha warm-up",
    "clipped-ref-ramp": "clipped softmax, reference init + alpha ramp from 0",
    "gated": "gated attention",
}
METRICS = ("Dead rows: the fraction of attention rows whose every probability is clipped to 0 (they pass no gradient "
           "to Q and K), mean over layers; sink share: the fraction of heads putting at least 0.3 of their attention "
           "on [CLS]/[SEP], mean over layers; kurtosis: the seed's (max over layers); RMS kurtosis: He et al.'s, of "
           "the per-neuron RMS (docs/design.md, Outlier metrics).")
STUDIES = {
    "clip_study": {
        "script": "scripts/clip_study.sh",
        "default_steps": 16000,
        "runs": ["vanilla", "clipped", "clipped-ref", "clipped-warmup", "clipped-ref-warmup", "clipped-ref-ramp",
                 "gated"],
        "heading": "Clipped softmax at the seed's alpha on a small BERT",
        "intro": "Issue 16, study (a): the seed paper's clipped softmax (gamma = -alpha/T, zeta = 1, alpha = 3.2) on a "
                 "BERT small enough for a CPU, against vanilla softmax and gated attention on the same budget, and what "
                 "it takes to make it train: the reference code's attention initialisation and an alpha warm-up.",
        "setup": "mini preset (4 layers, hidden 256, 4 heads), T = 128, batch 32, {steps} steps ({tokens:.1f}M "
                 "tokens), lr 1e-3 with a 10% warm-up and linear decay, weight decay 0.01, bf16 mixed precision, on "
                 "the KJV with one [SEP] per sentence (`bert_prep --sentences`). Validation on the held-out 2% of "
                 "chapters (20 batches, MLM-masked as in training).",
        "chart": "Clipped softmax at alpha = 3.2, mini, T = 128",
    },
    "long_study": {
        "script": "scripts/long_study.sh",
        "default_steps": 24500,
        "runs": ["vanilla", "clipped-ref-warmup", "gated"],
        "heading": "Do outliers emerge over 100M tokens? Vanilla, clipped and gated attention",
        "intro": "Issue 16, study (b): the longest run a CPU session's background affords, toward the regime where "
                 "the literature sees outliers and attention sinks grow (T >= 128, a [SEP] after every sentence, long "
                 "training, weight decay 0.1): vanilla softmax, clipped softmax at the seed's alpha = 3.2 as it trains "
                 "on a small model (reference init and a 30% alpha warm-up, docs/clip_study.md), and gated attention, "
                 "each then quantized with the seed's W8A8 and with AWQ W8.",
        "setup": "4 layers, hidden 128, 4 heads, FFN 512 (the mini preset at half its width), T = 128, batch 32, "
                 "{steps} steps ({tokens:.1f}M tokens), lr 1e-3 with a 10% warm-up and linear decay, weight decay 0.1, "
                 "bf16 mixed precision, on "
                 "scripts/make_long_corpus.sh's corpus (public-domain texts from Debian packages: the KJV and the World "
                 "English Bible, Spurgeon's Treasury of David, Matthew Henry's Concise Commentary and the Scofield "
                 "notes; about 4.6M words) with one [SEP] per sentence and an 8000-word vocabulary learnt on it. "
                 "Validation on a held-out 2% of its documents (20 batches, MLM-masked as in training).",
        "chart": "Vanilla, clipped and gated attention, 4 layers, hidden 128, T = 128, 100M tokens",
    },
}
WITHIN = 0.15  # the bar: clipped softmax within 15% of vanilla's validation perplexity
DEAD_AFTER_WARMUP = 0.10  # and fewer than 10% of the attention rows dead once alpha has reached its target


def records(path):
    """(validation records, {step: clip_alpha}) of a bert_train metrics.jsonl."""
    evals, alphas = [], {}
    with open(path) as f:
        for r in map(json.loads, filter(str.strip, f)):
            if "val_loss" in r:
                evals.append(r)
            elif "clip_alpha" in r:
                alphas[r["step"]] = r["clip_alpha"]
    return evals, alphas


SCHEMES = ("fp", "ptq-w8a8", "awq-w8")  # the evaluations quantize_latest (scripts/study_lib.sh) writes per step


def latest_quantized(run_dir):
    """(step directory name, its path) of a run's latest quantized checkpoint (study_lib.sh's quantize_latest), or
    None if there is none or its FP evaluation is missing."""
    root = os.path.join(run_dir, "quantized")
    steps = sorted(d for d in os.listdir(root) if d.startswith("step-")) if os.path.isdir(root) else []
    if not steps or not os.path.exists(os.path.join(root, steps[-1], "fp.json")):
        return None
    return steps[-1], os.path.join(root, steps[-1])


def quantized_evals(run_dir):
    """{"step", "fp", "ptq-w8a8", "awq-w8"} of the latest quantized checkpoint of a run, or None; a scheme missing
    there is left out."""
    latest = latest_quantized(run_dir)
    if latest is None:
        return None
    result = {"step": int(latest[0][len("step-"):])}
    for scheme in SCHEMES:
        path = os.path.join(latest[1], f"{scheme}.json")
        if os.path.exists(path):
            with open(path) as f:
                result[scheme] = json.load(f)
    return result


def warmup_end(alphas):
    """The first step that trained with the final alpha (1 without a warm-up)."""
    target = alphas[max(alphas)]
    return min(s for s, a in alphas.items() if a == target)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=sorted(STUDIES), required=True)
    parser.add_argument("--runs", required=True)
    parser.add_argument("--docs", required=True)
    parser.add_argument("--steps", type=int, required=True)
    args = parser.parse_args()
    study = STUDIES[args.study]

    runs = {}
    for name in study["runs"]:
        title = TITLES[name]
        path = os.path.join(args.runs, name, "metrics.jsonl")
        if not os.path.exists(path):
            continue
        evals, alphas = records(path)
        if evals:
            runs[name] = {"title": title, "evals": evals, "alphas": alphas, "last": evals[-1]}
    if "vanilla" not in runs:
        sys.exit(f"training_study_report: no vanilla run with a validation record under {args.runs}")
    vanilla = runs["vanilla"]["last"]
    unigram = vanilla["val_unigram_perplexity"]
    vanilla_at = {e["step"]: e for e in runs["vanilla"]["evals"]}  # vanilla's evaluation at each step

    def vs_vanilla(last):
        """A run's perplexity over vanilla's at the same step (an unfinished run is compared where it stopped)."""
        return last["val_perplexity"] / vanilla_at.get(last["step"], vanilla)["val_perplexity"]

    rows = []
    for name, r in runs.items():
        last = r["last"]
        dead_end = last.get("val_dead_row_fraction")
        dead_warm = None
        if r["alphas"]:
            end = warmup_end(r["alphas"])
            after = [e for e in r["evals"] if e["step"] >= end]
            dead_warm = after[0].get("val_dead_row_fraction") if after else None
            r["dead_after_warmup"], r["dead_step"] = dead_warm, after[0]["step"] if after else None
        rows.append([r["title"], f"{last['step']}", fmt(last["val_perplexity"]),
                     f"{vs_vanilla(last):.2f}x",
                     "—" if dead_warm is None else f"{dead_warm:.1%} (step {r['dead_step']})",
                     "—" if dead_end is None else f"{dead_end:.1%}", fmt(last.get("val_sink_share")),
                     fmt(last.get("val_special_token_mass"), 3), fmt(last["val_max_kurtosis"]),
                     fmt(last.get("val_max_rms_kurtosis")), fmt(last["val_max_ffn_output_inf_norm"])])

    clipped = {n: r for n, r in runs.items() if n.startswith("clipped")}
    missing = [TITLES[n] for n in study["runs"] if n not in runs or runs[n]["last"]["step"] < args.steps]
    finished = len(study["runs"]) - len(missing)
    lines = [
        f"# {study['heading']}",
        "",
        *([f"**In progress:** {finished} of {len(study['runs'])} runs have finished; the figures below are those "
           "measured so far.", ""] if missing else []),
        f"{study['intro']} Produced by",
        "",
        "```sh",
        study["script"] if args.steps == study["default_steps"] else f"STEPS={args.steps} {study['script']}",
        "```",
        "",
        study["setup"].format(steps=args.steps, tokens=args.steps * 32 * 128 / 1e6) + " " + METRICS,
        "",
    ]
    lines += markdown_table(["run", "step", "val perplexity", "vs vanilla at that step", "dead rows, first evaluation at alpha 3.2",
                             "dead rows at the end", "sink share", "special-token mass", "max kurtosis",
                             "max RMS kurtosis", "max FFN out inf-norm"], rows)
    lines += ["", f"Unigram perplexity of the validation tokens: {unigram:.2f}.", ""]
    quantized = {name: q for name in runs if (q := quantized_evals(os.path.join(args.runs, name)))}
    if quantized:
        lines += ["**Quantized** (each run's latest checkpoint; bert_eval on the whole validation split): W8A8 is the "
                  "seed paper's, PTQ with per-tensor symmetric int8 weights and asymmetric 8-bit min-max activations at "
                  "every tap; AWQ W8 quantizes the weights only.", ""]
        quant_rows = []
        for name, q in quantized.items():
            fp = q["fp"]["perplexity"]
            quant_rows.append([runs[name]["title"], str(q["step"]), fmt(fp), fmt(q["fp"]["max_kurtosis"]),
                               *(f"{q[s]['perplexity']:.2f} ({q[s]['perplexity'] / fp:.2f}x)" if s in q else "—"
                                 for s in ("ptq-w8a8", "awq-w8"))])
        lines += markdown_table(["run", "step", "FP perplexity", "max kurtosis", "W8A8 perplexity (x FP)",
                                 "AWQ W8 perplexity (x FP)"], quant_rows)
        lines.append("")
    lines += ["**Findings.**", ""]
    budget_ok = vanilla["val_perplexity"] < 0.5 * unigram
    lines.append(f"- The budget: vanilla ends at perplexity {vanilla['val_perplexity']:.2f}, "
                 + ("below" if budget_ok else "NOT below") + f" half the unigram baseline ({0.5 * unigram:.2f}).")
    for name, r in clipped.items():
        ratio = vs_vanilla(r["last"])
        dead = r.get("dead_after_warmup")
        verdict = "within" if ratio <= 1 + WITHIN else "not within"
        text = (f"- {r['title']}: perplexity {r['last']['val_perplexity']:.2f} at step {r['last']['step']}, "
                f"{ratio:.2f}x vanilla's at that step ({verdict} {WITHIN:.0%})")
        if dead is not None:
            text += (f"; {dead:.1%} of attention rows dead at step {r['dead_step']}, the first evaluation at alpha 3.2 "
                     + ("(below" if dead < DEAD_AFTER_WARMUP else "(not below") + f" {DEAD_AFTER_WARMUP:.0%})")
        lines.append(text + ".")
    if "gated" in runs:
        g = runs["gated"]["last"]
        lines.append(f"- Gated attention: perplexity {g['val_perplexity']:.2f} at step {g['step']}, "
                     f"{vs_vanilla(g):.2f}x vanilla's at that step.")
    for name, r in runs.items():  # the outliers each method leaves, against vanilla's at the same step
        last = r["last"]
        ref = vanilla_at.get(last["step"], vanilla)
        if name == "vanilla":
            lines.append(f"- Outliers: vanilla's max kurtosis is {last['val_max_kurtosis']:.1f} and its largest FFN "
                         f"output {last['val_max_ffn_output_inf_norm']:.1f} at step {last['step']}.")
        else:
            lines.append(f"- {r['title']}: max kurtosis {last['val_max_kurtosis']:.1f} "
                         f"({last['val_max_kurtosis'] / ref['val_max_kurtosis']:.2f}x vanilla's at that step), "
                         f"largest FFN output {last['val_max_ffn_output_inf_norm']:.1f} "
                         f"({last['val_max_ffn_output_inf_norm'] / ref['val_max_ffn_output_inf_norm']:.2f}x).")
    for name, q in quantized.items():
        if "ptq-w8a8" in q:
            fp, w8a8 = q["fp"]["perplexity"], q["ptq-w8a8"]["perplexity"]
            lines.append(f"- W8A8 of {runs[name]['title']} at step {q['step']}: perplexity {fp:.2f} -> {w8a8:.2f} "
                         f"({(w8a8 / fp - 1):+.1%}).")
    if missing:
        lines.append(f"- Not run yet, or not finished at {args.steps} steps (figures are from the last evaluation): "
                     + "; ".join(missing) + ".")
    lines += ["", f"![curves over training]({args.study}.svg)", ""]
    with open(os.path.join(args.docs, f"{args.study}.md"), "w") as f:
        f.write("\n".join(lines))

    def series(key):  # every run in every panel (empty where it lacks the metric), so colours match the legend
        return [(r["title"], [(e["step"], e[key]) for e in r["evals"] if e.get(key) is not None])
                for r in runs.values()]
    panels = [("validation perplexity", series("val_perplexity")),
              ("dead attention rows (fraction)", series("val_dead_row_fraction")),
              ("attention sink share", series("val_sink_share")),
              ("max kurtosis (the seed's), log scale", series("val_max_kurtosis"), "log"),
              ("max RMS kurtosis (He et al.'s), log scale", series("val_max_rms_kurtosis"), "log"),
              ("max FFN output inf-norm, log scale", series("val_max_ffn_output_inf_norm"), "log")]
    line_chart(os.path.join(args.docs, f"{args.study}.svg"), study["chart"],
               [p for p in panels if any(points for _, points in p[1])])  # no clipped run yet: no dead-row panel


if __name__ == "__main__":
    main()
