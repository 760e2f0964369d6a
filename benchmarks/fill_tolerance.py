"""How much of a flood fill is really the clicked class, per tolerance: clicks on labelled pixels of validation frames,
the region `app.fill_tools.flood_region` fills from each, scored against the true masks. Prints a Markdown table;
asserts nothing.

    python -m benchmarks.fill_tolerance [--frames 101] [--clicks 20] [--model symmetric] [--out FILE]

Each click lands on a labelled pixel drawn uniformly (seeded), as a person clicks on something to fill it with its own
class; the mask being corrected is the model's prediction. Purity: of the labelled pixels a fill covers, the share
that truly has the clicked pixel's class (pixel-weighted over all clicks); a leak is a fill less than 90% pure; "asks"
counts the fills that would change more than `app.fill_tools.MAX_FILL_SHARE` of the image, which the app previews and
asks about first; the gain is the change in pixel agreement with the true mask a fill brings, per click. The
suggested default is the largest tolerance whose fills are at least `MIN_PURITY` pure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from app.fill_tools import DEFAULT_TOLERANCE, MAX_FILL_SHARE, flood_region
from semflow.loading import load_pipeline

from .report import publish

TOLERANCES = (4, 6, 8, 10, 12, 14, 16, 20, 24, 32)
LEAK_PURITY = 0.9  # a fill less pure than this spilled into other classes
MIN_PURITY = 0.97  # the suggested default: fewer than 3 wrong pixels in 100 filled


def clicks(truth: np.ndarray, ignore_id: int, count: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """`count` (x, y) points on labelled pixels of `truth`, drawn uniformly."""
    ys, xs = np.nonzero(truth != ignore_id)
    picked = rng.choice(len(xs), size=min(count, len(xs)), replace=False)
    return [(int(xs[i]), int(ys[i])) for i in picked]


def fill_outcome(photo: np.ndarray, truth: np.ndarray, predicted: np.ndarray, point: tuple[int, int], tolerance: int,
                 ignore_id: int) -> dict[str, float]:
    """One fill from `point` with the class truly there, on the predicted mask: what it covers and what it changes."""
    x, y = point
    region = flood_region(photo, point, tolerance)
    wanted = truth[y, x]
    labelled = truth != ignore_id
    changes = region & (predicted != wanted)
    return {"covered": int((region & labelled).sum()), "right": int((region & (truth == wanted)).sum()),
            "share": float(region.mean()), "changed": float(changes.mean()),
            "gain": float(((changes & (truth == wanted)).sum() - (changes & labelled & (predicted == truth)).sum())
                          / labelled.sum())}


def measure(split, pipe, tolerances: tuple[int, ...], frames: int, per_frame: int, seed: int = 0) -> dict:
    """Every click's outcome per tolerance."""
    rng = np.random.default_rng(seed)
    ignore_id = pipe.labels.ignore_id
    found: dict[int, list[dict[str, float]]] = {t: [] for t in tolerances}
    for index in range(min(frames, len(split))):
        row = split[index]
        photo, truth = np.asarray(row["image"].convert("RGB")), np.asarray(row["mask"])
        predicted = pipe.segment(row["image"]).ids[0]
        for point in clicks(truth, ignore_id, per_frame, rng):
            for tolerance in tolerances:
                found[tolerance].append(fill_outcome(photo, truth, predicted, point, tolerance, ignore_id))
    return found


def summary(fills: list[dict[str, float]]) -> dict[str, float]:
    covered, right, share, changed, gain = (np.asarray([f[k] for f in fills]) for k in
                                            ("covered", "right", "share", "changed", "gain"))
    purity = right / np.maximum(covered, 1)
    asks = changed > MAX_FILL_SHARE
    return {"clicks": len(fills), "purity": float(right.sum() / max(covered.sum(), 1)),
            "leaks": float((purity < LEAK_PURITY).mean()), "median_share": float(np.median(share)),
            "asks": float(asks.mean()),
            "purity_asked": float(right[asks].sum() / max(covered[asks].sum(), 1)) if asks.any() else float("nan"),
            "gain": float(gain.mean()), "gain_applied": float(np.where(asks, 0.0, gain).mean())}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fill_tolerance", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="../shared/datasets/camvid")
    parser.add_argument("--model", default="symmetric", help="the model whose predictions are corrected")
    parser.add_argument("--frames", type=int, default=101)
    parser.add_argument("--clicks", type=int, default=20, help="clicks per frame")
    parser.add_argument("--tolerances", type=int, nargs="+", default=list(TOLERANCES))
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    import datasets

    torch.set_num_threads(2)
    split = datasets.load_dataset(args.dataset, split="validation")
    pipe = load_pipeline(args.model, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    found = measure(split, pipe, tuple(args.tolerances), args.frames, args.clicks)
    rows = {tolerance: summary(fills) for tolerance, fills in found.items()}
    pure = [t for t, row in rows.items() if row["purity"] >= MIN_PURITY]
    suggested = max(pure) if pure else min(rows)
    command = "python -m benchmarks.fill_tolerance " + " ".join(argv if argv is not None else sys.argv[1:])
    frames = min(args.frames, len(split))
    lines = [f"{rows[suggested]['clicks']} clicks on {frames} validation frames ({args.clicks} a frame) correcting "
             f"the `{args.model}` model's predictions; fills changing more than {MAX_FILL_SHARE:.0%} of the image are "
             f"asked about first.", "",
             "| tolerance | fill purity | leaky fills (< 90% pure) | median fill (% of image) | fills that ask first "
             "| purity of those | agreement gain per click | gain per click, asked fills declined |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for tolerance, row in rows.items():
        mark = " (default)" if tolerance == DEFAULT_TOLERANCE else ""
        asked = "–" if np.isnan(row["purity_asked"]) else f"{100 * row['purity_asked']:.1f}%"
        lines.append(f"| {tolerance}{mark} | {100 * row['purity']:.1f}% | {100 * row['leaks']:.1f}% | "
                     f"{100 * row['median_share']:.2f} | {100 * row['asks']:.1f}% | {asked} | "
                     f"{100 * row['gain']:+.2f} pt | {100 * row['gain_applied']:+.2f} pt |")
    lines += ["", f"Largest tolerance with fills at least {MIN_PURITY:.0%} pure: {suggested} (the app's default: "
                  f"{DEFAULT_TOLERANCE}).", "", f"Reproduce: `{command.strip()}`"]
    markdown = "\n".join(lines)
    return publish({"command": command.strip(), "model": args.model, "frames": frames, "suggested": suggested,
                    "rows": rows, "markdown": markdown}, args.out)


if __name__ == "__main__":
    main()
