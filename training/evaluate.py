"""`python -m training.evaluate --model M --dataset D`: mIoU per steps/solver, FID/KID, diversity, cycle mIoU."""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image

from semflow import SemFlowPipeline, load_pipeline

from .baselines import load_trained
from .card import rerender_model_card
from .data import dataset_license, load_split
from .run_folder import EVALUATION_FILE
from .scores import SegmentationScores, cycle_scores, labelled_pairs, segmentation_scores
from .splits import held_out_splits


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__)
    p.add_argument("--model", default=None, help="model folder or Hub id (default: $SEMFLOW_MODEL / embedded)")
    p.add_argument("--dataset", required=True, help="Hub dataset id or local folder")
    p.add_argument("--split", default="validation")
    p.add_argument("--dataset-config", default=None)
    p.add_argument("--image-column", default="image")
    p.add_argument("--mask-column", default="mask")
    p.add_argument("--max-images", type=int, default=None, help="evaluate on the first N rows only")
    p.add_argument("--held-out-drives", nargs="+", default=[], metavar="DRIVE",
                   help="drives the model never trained on (e.g. 0006R0): every labelled frame of them, from the "
                        "reference split and --split, is scored beside --split's other frames, and synthesis is "
                        "scored on them")
    p.add_argument("--steps", type=int, nargs="+", default=[1, 25], help="segmentation step counts")
    p.add_argument("--solvers", nargs="+", default=["euler"], help="segmentation solvers")
    p.add_argument("--flip", action="store_true",
                   help="also score each steps/solver with the left-right flip's test-time augmentation")
    p.add_argument("--synthesis", action="store_true", help="also FID/KID, diversity and cycle consistency")
    p.add_argument("--synthesis-steps", type=int, default=None, help="default: the model's")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="synthesis seeds per mask")
    p.add_argument("--reference-split", default="train",
                   help="real images for the real-vs-real FID/KID reference (same count as the evaluated split)")
    p.add_argument("--judge", default=None,
                   help="a second segmenter (embedded name, folder, Hub id or a study baseline's folder) that also "
                        "scores the cycle, so that models whose own segmenters differ are compared under one judge")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: <model>/eval or ./eval)")
    p.add_argument("--update-card", action="store_true", help="write the results into the model folder's card")
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    if args.judge and not args.synthesis:
        p.error("--judge scores the cycle of the synthesized images: add --synthesis")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    command = "python -m training.evaluate " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None
                                                                                  else argv))
    pipe = _model(args)
    model_folder = Path(args.model) if args.model and Path(args.model).is_dir() else None
    out = args.out or (model_folder / "eval" if model_folder else Path("eval"))
    out.mkdir(parents=True, exist_ok=True)
    split = load_split(args.dataset, args.split, args.dataset_config)
    reference_split = load_split(args.dataset, args.reference_split, args.dataset_config) \
        if args.reference_split else None
    held_out_pairs = None
    if args.held_out_drives:  # the reference split's frames of them too; neither split keeps them
        reference_split, split, held_out = held_out_splits(reference_split, split, args.held_out_drives)
        held_out_pairs = labelled_pairs(held_out, args.image_column, args.mask_column, pipe, args.max_images)
    pairs = labelled_pairs(split, args.image_column, args.mask_column, pipe, args.max_images)
    names = pipe.labels.class_names
    results: dict[str, Any] = {
        "command": command, "model": str(pipe.name_or_path), "dataset": args.dataset, "split": args.split,
        "images": len(pairs), "evaluated_at": "ground-truth resolution", "data_license": dataset_license(args.dataset),
        "segmentation": [],
    }
    scored = [("segmentation", pairs, "")]
    if held_out_pairs is not None:
        results["held_out"] = {"drives": list(args.held_out_drives), "images": len(held_out_pairs),
                               "segmentation": []}
        scored.append(("held_out", held_out_pairs, "_held_out"))
    for steps, solver, flip in itertools.product(args.steps, args.solvers, [False, True] if args.flip else [False]):
        for key, frames, suffix in scored:
            scores = segmentation_scores(pipe, frames, steps=steps, solver=solver, flip=flip)
            rows = results[key] if key == "segmentation" else results[key]["segmentation"]
            rows.append({"steps": steps, "solver": solver + (" + flip" if flip else ""), **scores.as_dict(names)})
            where = "held-out drives" if suffix else args.split
            _bar_chart(scores, names, f"{pipe.labels.name} ({where}): IoU per class, {rows[-1]['solver']} {steps} "
                       f"step(s)", out / f"iou_{solver}{'_flip' if flip else ''}_{steps}{suffix}.png")
            print(f"{where}: {rows[-1]['solver']} {steps:3d} steps: mIoU {scores.miou:.2f}  pixel acc "
                  f"{scores.pixel_accuracy:.2f}  {scores.seconds_per_image:.3f} s/image")

    if args.synthesis:
        synthesized = held_out_pairs or pairs  # new drives' masks, when there are some
        reference = [image for image, _ in labelled_pairs(reference_split, args.image_column, args.mask_column, pipe,
                                                          len(synthesized))] if reference_split is not None else None
        judge = load_trained(args.judge, device=args.device) if args.judge else None
        results["synthesis"] = synthesis_metrics(pipe, synthesized, args.seeds, args.synthesis_steps, reference,
                                                 args.reference_split, judge=judge)
        results["synthesis"]["frames"] = "held-out drives" if held_out_pairs else args.split

    results["markdown"] = to_markdown(results)
    (out / EVALUATION_FILE).write_text(json.dumps(results, indent=2))
    (out / "evaluation.md").write_text(results["markdown"])
    print(f"wrote {out / EVALUATION_FILE} and {out / 'evaluation.md'}")
    if args.update_card:
        if model_folder is None:
            raise SystemExit("--update-card needs --model to be a local folder")
        (model_folder / EVALUATION_FILE).write_text(json.dumps(results, indent=2))
        rerender_model_card(model_folder)
    return results


def _model(args: argparse.Namespace) -> Any:
    """The model `--model` names, loaded as `training.baselines.load_trained` loads it (a SemFlow model, or a study
    baseline's folder), or a sentence saying why it cannot be scored as asked."""
    try:
        model = load_trained(args.model, device=args.device) if args.model else load_pipeline(device=args.device)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: --model {args.model}: {error}") from None
    for task, asked in (("segment", True), ("synthesize", args.synthesis)):
        if asked and task not in model.tasks:
            kind = getattr(model, "kind", "")
            raise SystemExit(f"error: --model {args.model} is a {kind} study baseline, which cannot {task}"
                             + ("; leave out --synthesis" if task == "synthesize" else ""))
    if args.update_card and not isinstance(model, SemFlowPipeline):
        raise SystemExit(f"error: --update-card writes a SemFlow model's card; {args.model} is a study baseline")
    return model


def synthesis_metrics(
    pipe: Any,
    pairs: list[tuple[PIL.Image.Image, np.ndarray]],
    seeds: list[int],
    steps: int | None = None,
    reference_images: list[PIL.Image.Image] | None = None,
    reference_name: str = "reference",
    diversity_images: int | None = None,
    judge: Any = None,
    real_scores: SegmentationScores | None = None,
    judge_real_scores: SegmentationScores | None = None,
) -> dict[str, Any]:
    """FID/KID of synthesized vs real images, a real-vs-real reference, diversity across seeds and cycle mIoU.

    Args:
        pairs: (real image, mask) pairs; every mask is synthesized with the first seed.
        seeds: The first seed makes the images scored by FID/KID and the cycle; the others only re-synthesize the
            first `diversity_images` masks (all when None) for the diversity figures.
        reference_images: Other real images, as many as `pairs`, for the real-vs-real FID/KID (the small-sample
            floor of FID on this many images).
        judge: A second segmenter for the cycle (e.g. a fixed model shared by a study), with its mIoU on the real
            photos of the same frames, so models that cannot segment get a cycle figure too.
        real_scores, judge_real_scores: The model's and the judge's scores on the real photos of `pairs`, when the
            caller has them already (computed here otherwise).
    """
    from .fid import fid, inception_features, kid

    masks, reals = [ids for _, ids in pairs], [image for image, _ in pairs]
    subset = len(masks) if diversity_images is None else min(diversity_images, len(masks))
    start = time.perf_counter()
    fakes_by_seed = [[pipe.synthesize(m, num_inference_steps=steps, seed=seed).images[0]
                      for m in (masks if k == 0 else masks[:subset])] for k, seed in enumerate(seeds)]
    seconds = (time.perf_counter() - start) / sum(len(fakes) for fakes in fakes_by_seed)
    real_features = inception_features(reals)
    fake_features = [inception_features(fakes) for fakes in fakes_by_seed]
    result: dict[str, Any] = {"steps": steps or pipe.config.synthesis_steps, "seeds": seeds,
                              "seconds_per_image": seconds, "per_seed": []}
    for seed, features in zip(seeds, fake_features):
        if len(features) == len(real_features):
            kid_mean, kid_std = kid(features, real_features)
            result["per_seed"].append({"seed": seed, "fid": fid(features, real_features), "kid": kid_mean,
                                       "kid_std": kid_std})
    result["fid"] = float(np.mean([r["fid"] for r in result["per_seed"]]))
    result["kid"] = float(np.mean([r["kid"] for r in result["per_seed"]]))
    if reference_images is not None:
        reference_features = inception_features(reference_images)
        kid_mean, kid_std = kid(reference_features, real_features)
        result["real_vs_real"] = {"split": reference_name, "images": len(reference_images),
                                  "fid": fid(reference_features, real_features), "kid": kid_mean, "kid_std": kid_std}
    if len(seeds) > 1:
        pixel_l1, feature_l2 = [], []
        for a, b in itertools.combinations(range(len(seeds)), 2):
            pixel_l1 += [np.abs(np.asarray(x, np.float32) - np.asarray(y, np.float32)).mean() / 255.0
                         for x, y in zip(fakes_by_seed[a][:subset], fakes_by_seed[b][:subset])]
            feature_l2 += list(np.linalg.norm(fake_features[a][:subset] - fake_features[b][:subset], axis=1))
        real_spread = np.linalg.norm(real_features[:subset, None] - real_features[None, :subset], axis=-1)
        result["diversity"] = {
            "images": subset,
            "pixel_l1_between_seeds": float(np.mean(pixel_l1)),
            "inception_l2_between_seeds": float(np.mean(feature_l2)),
            "inception_l2_between_real_images": float(real_spread[np.triu_indices(subset, 1)].mean()),
        }
    names = pipe.labels.class_names
    if "segment" in pipe.tasks:
        result["cycle"] = _cycle(pipe, masks, fakes_by_seed[0], real_scores or segmentation_scores(pipe, pairs), names)
    if judge is not None:
        result["judged_cycle"] = {"judge": str(judge.name_or_path), **_cycle(
            judge, masks, fakes_by_seed[0], judge_real_scores or segmentation_scores(judge, pairs), names)}
    return result


def _cycle(segmenter: Any, masks: list, fakes: list, real: SegmentationScores, names: list[str]) -> dict[str, Any]:
    """How well `segmenter` finds each mask in its synthesized image, beside how well it does on the real photos."""
    cycle = cycle_scores(segmenter, masks, fakes)
    return {"miou": cycle.miou, "pixel_accuracy": cycle.pixel_accuracy, "per_class_iou": cycle.per_class(names),
            "real_photo_miou": real.miou, "ratio": cycle.miou / real.miou if real.miou else float("nan")}


def to_markdown(results: dict[str, Any]) -> str:
    held_out = results.get("held_out")
    if held_out:
        drives = ", ".join(f"`{drive}`" for drive in held_out["drives"])
        lines = [f"Evaluated on `{results['dataset']}`: the same drives as training (split `{results['split']}` "
                 f"without {drives}, {results['images']} images) and drives it never trained on ({drives}: every "
                 f"labelled frame of them, {held_out['images']} images); predictions compared at the ground truth's "
                 f"resolution, ignore id excluded.", "",
                 "| solver | steps | mIoU, same drive | mIoU, held-out drive | pixel acc., same / held-out | "
                 "s / image |", "| --- | --- | --- | --- | --- | --- |"]
        columns = [("same drive", results["segmentation"]), ("held-out drive", held_out["segmentation"])]
        for row, other in zip(results["segmentation"], held_out["segmentation"]):
            lines.append(f"| {row['solver']} | {row['steps']} | {row['miou']:.2f} | {other['miou']:.2f} | "
                         f"{row['pixel_accuracy']:.2f} / {other['pixel_accuracy']:.2f} | "
                         f"{row['seconds_per_image']:.3f} |")
    else:
        lines = [f"Evaluated on `{results['dataset']}` split `{results['split']}` ({results['images']} images), "
                 f"predictions compared at the ground truth's resolution, ignore id excluded.", "",
                 "| solver | steps | mIoU | pixel acc. | s / image |", "| --- | --- | --- | --- | --- |"]
        columns = [("", results["segmentation"])]
        for row in results["segmentation"]:
            lines.append(f"| {row['solver']} | {row['steps']} | {row['miou']:.2f} | {row['pixel_accuracy']:.2f} | "
                         f"{row['seconds_per_image']:.3f} |")
    if results["segmentation"]:
        settings = [(where, r) for where, rows in columns for r in rows]
        lines += ["", "| class | " + " | ".join(f"{r['solver']} {r['steps']}" + (f", {where}" if where else "")
                                                 for where, r in settings) + " |",
                  "| --- |" + " --- |" * len(settings)]
        for name in settings[0][1]["per_class_iou"]:
            cells = [r["per_class_iou"][name] for _, r in settings]
            lines.append(f"| {name} | " + " | ".join("–" if c is None else f"{c:.1f}" for c in cells) + " |")
    synthesis = results.get("synthesis")
    if synthesis:
        frames = " of the held-out drives' masks" if synthesis.get("frames") == "held-out drives" else ""
        lines += ["", f"Synthesis{frames} ({synthesis['steps']} steps, seeds {synthesis['seeds']}, "
                      f"{synthesis['seconds_per_image']:.2f} s / image):", "",
                  "| comparison | FID | KID ×1000 |", "| --- | --- | --- |",
                  f"| synthesized vs real | {synthesis['fid']:.1f} | {1000 * synthesis['kid']:.1f} |"]
        reference = synthesis.get("real_vs_real")
        if reference:
            lines.append(f"| real ({reference['split']}, {reference['images']} images) vs real (reference) | "
                         f"{reference['fid']:.1f} | {1000 * reference['kid']:.1f} |")
        diversity = synthesis.get("diversity")
        if diversity:
            lines += ["", f"Diversity across seeds: mean pixel L1 {diversity['pixel_l1_between_seeds']:.3f} "
                          f"(0..1), Inception-feature L2 {diversity['inception_l2_between_seeds']:.2f} "
                          f"(between different real images: {diversity['inception_l2_between_real_images']:.2f})."]
        cycle = synthesis.get("cycle")
        if cycle:
            lines += ["", f"Cycle consistency (segment the synthesized images, compare with their masks): mIoU "
                          f"{cycle['miou']:.2f}, pixel acc. {cycle['pixel_accuracy']:.2f}; the same model on the "
                          f"real photos of these frames: mIoU {cycle['real_photo_miou']:.2f}, so cycle / real = "
                          f"{cycle['ratio']:.2f}.", "", "| class | cycle IoU |", "| --- | --- |"]
            lines += [f"| {name} | {'–' if value is None else f'{value:.1f}'} |"
                      for name, value in cycle["per_class_iou"].items()]
        judged = synthesis.get("judged_cycle")
        if judged:
            lines += ["", f"The same cycle judged by `{judged['judge']}` (one segmenter for every model compared): "
                          f"mIoU {judged['miou']:.2f}; that judge on the real photos: mIoU "
                          f"{judged['real_photo_miou']:.2f}, so judged cycle / real = {judged['ratio']:.2f}."]
    lines += ["", f"Reproduce: `{results['command']}`"]
    return "\n".join(lines)


def _bar_chart(scores: SegmentationScores, names: tuple[str, ...], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = [v if v is not None else 0.0 for v in scores.per_class(names).values()]
    figure, axes = plt.subplots(figsize=(max(6, 0.45 * len(names)), 3.6), dpi=100)
    axes.bar(range(len(names)), values, color="#4c72b0")
    axes.axhline(scores.miou, color="#dd8452", linestyle="--", label=f"mIoU {scores.miou:.1f}")
    axes.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    axes.set_ylim(0, 100)
    axes.set_ylabel("IoU (%)")
    axes.set_title(title, fontsize=10)
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


if __name__ == "__main__":
    main()
