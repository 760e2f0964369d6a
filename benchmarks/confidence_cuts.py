"""The two confidence cuts of the app, measured: where the unsure heat-map stops tinting (`overlays.UNSURE_BELOW`, a
decoding margin) and when a picture is said not to look like a street scene (`service.UNFAMILIAR_SHARE` of the
validation frames' mean confidence). Prints two Markdown tables; asserts nothing.

    python -m benchmarks.confidence_cuts [--models symmetric semflow] [--frames 51]

Heat-map: on labelled pixels of validation frames spread over the split, per margin cut, the share of pixels tinted
(below the cut), the share of the wrong pixels among them (recall) and the error rate of the untinted ones.
Unfamiliar pictures: each frame's mean confidence as a share of the reference the app compares with (the mean over
its example photos), and the same for non-street pictures that scikit-image ships; per share, how many street frames
would be called unfamiliar (false alarms) and how many of the other pictures would (hits).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from app.overlays import UNSURE_BELOW
from app.service import UNFAMILIAR_SHARE, Studio
from app.settings import Settings
from semflow.loading import load_model

from .report import publish

MARGIN_CUTS = (0.3, 0.4, 0.5, 0.6, 0.7)
SHARES = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85)
OTHER_PICTURES = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins")  # scikit-image's, offline


def other_pictures() -> dict[str, PIL.Image.Image]:
    """Non-street pictures shipped inside scikit-image (those this install has), as RGB."""
    import skimage.data

    pictures = {}
    for name in OTHER_PICTURES:
        try:
            array = getattr(skimage.data, name)()
        except Exception:  # a picture this install would have to download
            continue
        pictures[name] = PIL.Image.fromarray(array).convert("RGB")
    return pictures


def measure(studio: Studio, frames: list[tuple[PIL.Image.Image, np.ndarray]],
            others: dict[str, PIL.Image.Image]) -> dict:
    labels = studio.labels
    margins, wrong, means = [], [], []
    for image, truth in frames:
        ids, _, confidence = studio.segment(image)
        keep = truth != labels.ignore_id
        margins.append(confidence[keep])
        wrong.append((ids != truth)[keep])
        means.append(float(confidence.mean()))
    margin, error = np.concatenate(margins), np.concatenate(wrong)
    heat = {}
    for cut in MARGIN_CUTS:
        tinted = margin < cut
        heat[f"{cut:g}"] = {"tinted": float(tinted.mean()), "wrong_tinted": float(tinted[error].mean()),
                            "error_untinted": float(error[~tinted].mean()) if (~tinted).any() else 0.0}
    typical = studio.typical_confidence()
    other = {name: float(studio.segment(picture)[2].mean()) for name, picture in others.items()}
    familiar = {}
    for share in SHARES:
        familiar[f"{share:g}"] = {"street_frames_flagged": int(sum(m < share * typical for m in means)),
                                  "other_pictures_flagged": int(sum(m < share * typical for m in other.values()))}
    return {"error_rate": float(error.mean()), "heat_map": heat, "typical": typical,
            "frame_means": {"min": min(means), "mean": float(np.mean(means)), "max": max(means)},
            "frame_min_share": min(means) / typical, "other_means": other, "familiar": familiar,
            "frames": len(frames), "others": len(other)}


def markdown(results: dict) -> str:
    models = list(results["models"])
    lines = [f"Heat-map cut (the app's: {UNSURE_BELOW:g}), labelled pixels of {results['frames']} validation frames:",
             "", "| model | margin cut | pixels tinted | wrong pixels tinted | error rate of untinted pixels |",
             "| --- | --- | --- | --- | --- |"]
    for model in models:
        for cut, row in results["models"][model]["heat_map"].items():
            mark = " (app)" if float(cut) == UNSURE_BELOW else ""
            lines.append(f"| {model} | {cut}{mark} | {100 * row['tinted']:.1f}% | {100 * row['wrong_tinted']:.1f}% | "
                         f"{100 * row['error_untinted']:.1f}% |")
    lines += ["", f"Unfamiliar-picture share (the app's: {UNFAMILIAR_SHARE:g} of the example photos' mean "
              f"confidence), {results['frames']} validation frames and {len(results['other_pictures'])} "
              f"scikit-image pictures ({', '.join(results['other_pictures'])}):", "",
              "| model | reference (example photos) | street frames: lowest / mean share | other pictures: highest "
              "share | " + " | ".join(f"flagged at {s:g}: street / other" for s in SHARES) + " |",
              "| --- | --- | --- | --- |" + " --- |" * len(SHARES)]
    for model in models:
        row = results["models"][model]
        typical, frames = row["typical"], row["frame_means"]
        cells = [f"{c['street_frames_flagged']} / {c['other_pictures_flagged']}" for c in row["familiar"].values()]
        lines.append(f"| {model} | {typical:.2f} | {frames['min'] / typical:.2f} / {frames['mean'] / typical:.2f} | "
                     f"{max(row['other_means'].values()) / typical:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\nReproduce: `{results['command']}`"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.confidence_cuts", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["symmetric", "semflow"], help="embedded names or folders")
    parser.add_argument("--dataset", default="../shared/datasets/camvid")
    parser.add_argument("--frames", type=int, default=51, help="validation frames, spread over the split")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    import datasets

    torch.set_num_threads(2)
    split = datasets.load_dataset(args.dataset, split="validation")
    indices = np.unique(np.linspace(0, len(split) - 1, min(args.frames, len(split))).round().astype(int))
    frames = [(split[int(i)]["image"].convert("RGB"), np.asarray(split[int(i)]["mask"])) for i in indices]
    others = other_pictures()
    results = {"command": "python -m benchmarks.confidence_cuts " + " ".join(argv if argv is not None else
                                                                              sys.argv[1:]),
               "frames": len(frames), "other_pictures": list(others), "models": {}}
    with tempfile.TemporaryDirectory() as scratch:  # the studio's annotation folder, never written
        for model in args.models:
            studio = Studio(load_model(model, device="cpu"), Settings(annotations_dir=Path(scratch)))
            results["models"][model] = measure(studio, frames, others)
    results["markdown"] = markdown(results)
    return publish(results, args.out)


if __name__ == "__main__":
    main()
