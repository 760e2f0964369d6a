"""How well low confidence finds wrong pixels: AUROC, on labelled validation pixels, of each confidence signal of a
model (higher is better; 0.5 is chance). Prints a Markdown table; asserts nothing.

    python -m benchmarks.confidence [--models semflow symmetric] [--images 101] [--out runs/confidence.json]

Signals: the decoding margin at 1 step (what `segment(return_confidence=True)` returns); agreement of the 1-step and
2-step labels; for the symmetric formulation, the share of four noise seeds that agree with the seed-0 labels; and the
margin times each agreement.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from semflow.loading import load_pipeline
from semflow.metrics import auroc

from .report import publish


def signals(pipe, image) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The 1-step class ids and every confidence signal (H, W) in [0, 1] for one image."""
    first = pipe.segment(image, num_inference_steps=1, return_confidence=True)
    ids, margin = first.ids[0], first.confidence[0]
    steps_agree = (pipe.segment(image, num_inference_steps=2).ids[0] == ids).astype(np.float32)
    found = {"margin": margin, "1 vs 2 steps agree": steps_agree, "margin × steps agree": margin * steps_agree}
    if pipe.formulation.uses_noise:
        seeds_agree = np.mean([pipe.segment(image, seed=seed).ids[0] == ids for seed in (1, 2, 3, 4)], axis=0)
        found["seeds agree"] = seeds_agree.astype(np.float32)
        found["margin × seeds agree"] = margin * seeds_agree
    return ids, found


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.confidence", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["semflow", "symmetric"], help="embedded names or folders")
    parser.add_argument("--dataset", default="../shared/datasets/camvid")
    parser.add_argument("--images", type=int, default=101)
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    import datasets

    torch.set_num_threads(2)
    split = datasets.load_dataset(args.dataset, split="validation")
    results = {"command": "python -m benchmarks.confidence " + " ".join(argv if argv is not None else sys.argv[1:]),
               "models": {}}
    for model in args.models:
        pipe = load_pipeline(model, device="cpu")
        scores: dict[str, list[np.ndarray]] = {}
        wrong = []
        for index in range(min(args.images, len(split))):
            row = split[index]
            truth = np.asarray(row["mask"])
            labels, found = signals(pipe, row["image"])
            keep = truth != pipe.labels.ignore_id
            wrong.append((labels != truth)[keep])
            for name, confidence in found.items():
                scores.setdefault(name, []).append(1.0 - confidence[keep])  # low confidence = likely wrong
        wrong_pixels = np.concatenate(wrong)
        results["models"][model] = {"error_rate": float(wrong_pixels.mean()),
                                    "auroc": {name: auroc(np.concatenate(v), wrong_pixels)
                                              for name, v in scores.items()}}
    lines = ["| model | wrong pixels | " + " | ".join(f"AUROC: {n}" for n in _all_signals(results)) + " |",
             "| --- | --- |" + " --- |" * len(_all_signals(results))]
    for model, row in results["models"].items():
        cells = [f"{row['auroc'][n]:.3f}" if n in row["auroc"] else "–" for n in _all_signals(results)]
        lines.append(f"| {model} | {100 * row['error_rate']:.1f}% | " + " | ".join(cells) + " |")
    results["markdown"] = "\n".join(lines) + f"\n\nReproduce: `{results['command']}`"
    return publish(results, args.out)


def _all_signals(results: dict) -> list[str]:
    names: list[str] = []
    for row in results["models"].values():
        names += [n for n in row["auroc"] if n not in names]
    return names


if __name__ == "__main__":
    main()
