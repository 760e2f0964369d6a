"""Close the loop, measured: fine-tune a model on k corrected frames saved the way the app saves them, at a fixed
step budget, and score it on validation frames it never saw. Prints a Markdown table; asserts nothing.

    python -m benchmarks.close_loop [--model semflow] [--ks 10 25 50] [--steps 150] [--out runs/close_loop]

The corrections are simulated with the true validation masks of the first half of the validation split; the scores
are on its second half (later frames of the drive), so no scored frame was trained on. Each k fine-tunes with the
documented step: `python -m training.train --dataset <annotation folder> --init-from <model> --preset finetune`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from app.annotations import AnnotationStore
from semflow import SemFlowPipeline
from semflow.loading import load_pipeline
from training.data import load_split
from training.scores import labelled_pairs, segmentation_scores


def save_corrections(pairs: list, root: Path) -> Path:
    """The first frames' true masks saved as corrected annotations, through the app's annotation store."""
    store = AnnotationStore(root)
    if len(store.rows()) != len(pairs):
        for index, (image, ids) in enumerate(pairs):
            # Not "validation-…": `datasets` would take a file name with a split's name for that split.
            store.save(image, ids, {"annotator": "simulated (true mask)", "source_file": f"frame-{index:03d}"})
    return root


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.close_loop", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="semflow", help="the model that pre-annotates (embedded name or folder)")
    parser.add_argument("--dataset", default="../shared/datasets/camvid")
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 25, 50], help="corrected frames per run")
    parser.add_argument("--steps", type=int, default=150, help="fine-tuning steps of every run (the fixed budget)")
    parser.add_argument("--out", type=Path, default=Path("runs/close_loop"))
    args = parser.parse_args(argv)
    command = "python -m benchmarks.close_loop " + " ".join(argv if argv is not None else sys.argv[1:])
    torch.set_num_threads(2)
    base = load_pipeline(args.model, device="cpu")
    pairs = labelled_pairs(load_split(args.dataset, "validation"), "image", "mask", base)
    half = len(pairs) // 2
    pool, held_out = pairs[:half], pairs[half:]
    if max(args.ks) > len(pool):
        raise SystemExit(f"--ks may not exceed the {len(pool)} frames of the first half of validation")
    rows = [{"k": 0, "steps": 0, "seconds": 0.0, "miou": segmentation_scores(base, held_out).miou}]
    for k in args.ks:
        annotations = save_corrections(pool[:k], args.out / f"annotations-{k}")
        run = args.out / f"finetuned-{k}"
        start = time.time()
        subprocess.run([sys.executable, "-m", "training.train", "--dataset", str(annotations), "--init-from",
                        args.model, "--preset", "finetune", "--max-steps", str(args.steps), "--output-dir", str(run),
                        "--save-dtype", "fp32"], check=True)
        tuned = SemFlowPipeline.from_pretrained(run, dtype=torch.float32)
        tuned.set_progress_bar_config(disable=True)
        rows.append({"k": k, "steps": args.steps, "seconds": time.time() - start,
                     "miou": segmentation_scores(tuned, held_out).miou})
    lines = [f"Fine-tuning `{args.model}` on k corrected frames (first {half} validation frames, true masks as the "
             f"corrections), {args.steps} steps each; mIoU at 1 step on the other {len(held_out)} validation frames.",
             "", "| corrected frames k | steps | wall clock (2 CPU threads) | held-out mIoU | change |",
             "| --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['k'] or '0 (the model as shipped)'} | {row['steps']} | {row['seconds'] / 60:.1f} min | "
                     f"{row['miou']:.2f} | {row['miou'] - rows[0]['miou']:+.2f} |")
    lines += ["", f"Reproduce: `{command}`"]
    result = {"command": command, "rows": rows, "markdown": "\n".join(lines)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "close_loop.json").write_text(json.dumps(result, indent=2, default=float))
    print(result["markdown"])
    return result


if __name__ == "__main__":
    main()
