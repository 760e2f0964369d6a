"""Equal-budget studies: every variant of a study trains for the same CPU time (each variant's steps from its own
measured one-thread CPU seconds per step) or the same optimizer steps, on the same data, then one table (Markdown +
JSON) of segmentation, synthesis, cycle, diversity and speed figures. Resumable: a finished variant is not trained or
evaluated again, an unfinished one resumes from its newest checkpoint.

    python -m benchmarks.study --study pretrained --minutes 40 [--out runs/study-pretrained] [--variants NAME ...]
        [--shipped symmetric semflow] [--model long=runs/long]
    python -m benchmarks.study --study formulations --steps 200
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semflow import SemFlowPipeline
from semflow.loading import EMBEDDED_MODELS, load_pipeline, model_folder, weights_hash
from training.baselines import load_trained
from training.card import total_hours, total_steps
from training.config import STREET_LIGHT, load_config
from training.data import load_split, resolve_label_set
from training.evaluate import synthesis_metrics
from training.model import build_pipeline
from training.run_folder import SUMMARY_FILE, RunFolder
from training.scores import labelled_pairs, segmentation_scores
from training.splits import held_out_splits
from training.trainable import Trainable

from .speed import timed
from .study_records import RECORDS, StudyRecords


@dataclass(frozen=True)
class Variant:
    """One row of a study: what it is, the preset it starts from and the TrainConfig keys over it."""

    description: str
    preset: str = "camvid-small"
    overrides: dict[str, Any] = field(default_factory=dict)


SYMMETRIC_DATA = {"formulation": "symmetric", "prediction": "data", "perturbation": 0.0, "photometric": STREET_LIGHT}
CROSS_ENTROPY = {"cross_entropy_weight": 0.1}
PERCEPTUAL = {"perceptual_weight": 0.25}
ADVERSARIAL = {"adversarial_weight": 0.05}
VARIANTS: dict[str, Variant] = {
    # the formulations study, on the camvid-small backbone
    "semflow": Variant("SemFlow, the camvid-small recipe (baseline)"),
    "semflow-aug": Variant("SemFlow + photometric augmentation", overrides={"photometric": STREET_LIGHT}),
    "symmetric-aug": Variant("symmetric formulation (SymmFlow), velocity prediction as in the paper, + augmentation",
                             overrides={**SYMMETRIC_DATA, "prediction": "velocity"}),
    "symmetric-data-aug": Variant("symmetric formulation, data prediction, + augmentation (the camvid-symmetric "
                                  "preset)", overrides=SYMMETRIC_DATA),
    "cross-entropy-aug": Variant("cross-entropy segmenter + augmentation (baseline, not shipped)",
                                 overrides={"formulation": "cross-entropy", "photometric": STREET_LIGHT}),
    "conditional-flow-aug": Variant("mask-conditioned noise → image flow + augmentation (baseline, not shipped)",
                                    overrides={"formulation": "conditional-flow", "photometric": STREET_LIGHT}),
    # the pretrained-encoder study: symmetric formulation, data prediction, augmentation throughout
    "scratch": Variant("from scratch: the earlier defaults' recipe (14 M UNet2DModel, space-to-depth 4)",
                       "camvid-symmetric"),
    "pretrained": Variant("pretrained encoder (EncoderUNet, ImageNet Lite0 trunk), the plain flow loss",
                          "camvid-pretrained"),
    "pretrained-ce": Variant("pretrained + cross-entropy on the decoded anchors (0.1)", "camvid-pretrained",
                             CROSS_ENTROPY),
    "pretrained-perceptual": Variant("pretrained + perceptual distance on the estimated image (0.25)",
                                     "camvid-pretrained", PERCEPTUAL),
    "pretrained-adversarial": Variant("pretrained + patch discriminator on the estimated image (0.05)",
                                      "camvid-pretrained", ADVERSARIAL),
    "pretrained-all": Variant("pretrained + all three terms", "camvid-pretrained",
                              {**CROSS_ENTROPY, **PERCEPTUAL, **ADVERSARIAL}),
    "pretrained-ce-segmenter": Variant("cross-entropy segmenter on the same pretrained encoder (ceiling, not shipped)",
                                       "camvid-pretrained", {"formulation": "cross-entropy"}),
}
# The drive-held-out study: every variant trains without drive 0006R0 and is chosen on it (training.splits); the
# flow variants keep the shipped models' synthesis term (perceptual 0.5) and differ in how they learn to segment.
HELD_OUT = {"held_out_drives": ["0006R0"]}
FLOW = {**HELD_OUT, "cross_entropy_weight": 0.1, "perceptual_weight": 0.5}
SEGMENTING = {**FLOW, "cross_entropy_weight": 1.0, "image_end_probability": 0.5}
FROM_CE_CLASSES = {**SEGMENTING, "mask_head": "classes", "init_net_from": "benchmarks/records/drives/judge"}
VARIANTS |= {
    "drive-ce-segmenter": Variant("cross-entropy segmenter on the pretrained encoder (the bar, not shipped)",
                                  "camvid-pretrained", {**HELD_OUT, "formulation": "cross-entropy"}),
    "drive-flow": Variant("the shipped models' recipe: symmetric, cross-entropy 0.1 + perceptual 0.5",
                          "camvid-pretrained", FLOW),
    "drive-ce1": Variant("cross-entropy 1.0, image end half the time", "camvid-pretrained", SEGMENTING),
    "drive-ce1-trunk05": Variant("drive-ce1 with the trunk at 0.05x the learning rate", "camvid-pretrained",
                                 {**SEGMENTING, "encoder_learning_rate_ratio": 0.05}),
    "drive-ce1-scale": Variant("drive-ce1 with scale augmentation 0.5-2.0", "camvid-pretrained",
                               {**SEGMENTING, "scale_range": [0.5, 2.0]}),
    "drive-from-ce": Variant("drive-ce1 started from the study's cross-entropy segmenter (its trunk and decoder; its "
                             "40 minutes come before this variant's)", "camvid-pretrained",
                             {**SEGMENTING, "init_net_from": "benchmarks/records/drives/judge"}),
    "drive-classes": Variant("drive-ce1 with the classes mask head: the net's class logits weigh the anchors of the "
                             "mask end", "camvid-pretrained", {**SEGMENTING, "mask_head": "classes"}),
    "drive-from-ce-classes": Variant("drive-from-ce with the classes mask head: it starts out segmenting exactly as "
                                     "the cross-entropy segmenter (whose 40 minutes come before this variant's)",
                                     "camvid-pretrained", FROM_CE_CLASSES),
    "drive-from-ce-classes-frozen": Variant("drive-from-ce-classes with the segmenter's trunk frozen (but for its "
                                            "weights that read the state, whose mask channels must learn)",
                                            "camvid-pretrained",
                                            {**FROM_CE_CLASSES, "encoder_learning_rate_ratio": 0.0}),
    "drive-from-ce-classes-ce3": Variant("drive-from-ce-classes with cross-entropy 3.0", "camvid-pretrained",
                                         {**FROM_CE_CLASSES, "cross_entropy_weight": 3.0}),
    "drive-from-ce-classes-lr1e4": Variant("drive-from-ce-classes at a fifth of the learning rate (1e-4)",
                                           "camvid-pretrained", {**FROM_CE_CLASSES, "learning_rate": 1e-4}),
    "drive-from-ce-classes-deeper": Variant("drive-from-ce-classes with the shipped models' decoder (ResNet blocks "
                                            "2/3/4/3/3, grown from the segmenter's: it still starts as the segmenter)",
                                            "camvid-pretrained",
                                            {**FROM_CE_CLASSES, "unet": {"extra_decoder_blocks": [1, 2, 3, 2, 2]}}),
    "drive-semflow": Variant("the paper's formulation, the shipped recipe (cross-entropy 0.1 + perceptual 0.5)",
                             "camvid-pretrained-semflow", FLOW),
    "drive-semflow-ce1": Variant("the paper's formulation, cross-entropy 1.0, image end half the time",
                                 "camvid-pretrained-semflow", SEGMENTING),
}
STUDIES = {
    "formulations": ["semflow", "semflow-aug", "symmetric-aug", "symmetric-data-aug", "cross-entropy-aug",
                     "conditional-flow-aug"],
    "pretrained": ["pretrained-ce-segmenter", "scratch", "pretrained", "pretrained-ce", "pretrained-perceptual",
                   "pretrained-adversarial", "pretrained-all"],
    "drives": ["drive-ce-segmenter", "drive-flow", "drive-ce1", "drive-classes", "drive-from-ce",
               "drive-from-ce-classes", "drive-from-ce-classes-frozen", "drive-from-ce-classes-ce3",
               "drive-from-ce-classes-lr1e4", "drive-from-ce-classes-deeper",
               "drive-ce1-trunk05", "drive-ce1-scale", "drive-semflow", "drive-semflow-ce1"],
}
# The judge of each study's cycle column: a fixed segmenter (a study variant, trained first, or an embedded model).
JUDGES = {"formulations": "semflow", "pretrained": "pretrained-ce-segmenter", "drives": "drive-ce-segmenter"}
# Studies that hold drives out (their variants' `held_out_drives`): the variants validate on the held-out frames every
# this many steps during training (the log shows where the best step is), and the table scores the held-out drive
# beside the same drive, with synthesis on the held-out drive's masks.
HELD_OUT_VALIDATION_STEPS = {"drives": 250}
EVAL_FILE = "study_eval.json"
SHIPPED_PREFIX = "shipped-"  # `--shipped NAME` scores an embedded model as a row; its results go to <out>/shipped-NAME
CALIBRATION_STEPS = 10  # optimizer steps timed to measure a variant's CPU seconds per step
CHECKPOINT_STEPS = 100  # a run stopped mid-variant loses at most this many steps (a few minutes on one thread)
TRAINING_THREADS = 1  # each variant trains on one CPU thread (two can train side by side on this machine)
UNTRAINED = "untrained"  # a row's latency timed on a fresh net of its architecture (its trained model was gone)


def variant_config(name: str, out: Path) -> Path:
    """The variant's TrainConfig overrides as a file beside its run folder."""
    config = out / f"{name}.config.json"
    config.write_text(json.dumps({**VARIANTS[name].overrides, "save_best": False}, indent=2))
    return config


def train_command(name: str, folder: Path, config: Path, dataset: str, steps: int) -> list[str]:
    return [sys.executable, "-m", "training.train", "--dataset", dataset, "--output-dir", str(folder), "--preset",
            VARIANTS[name].preset, "--config", str(config), "--max-steps", str(steps), "--save-dtype", "fp16"]


def cpu_seconds_per_step(name: str, out: Path, dataset: str, steps: int = CALIBRATION_STEPS) -> float:
    """CPU seconds of one optimizer step of `name`'s training on one thread (its data, net, every loss term and the
    optimizer, all in this process), timed with the process's CPU clock after one warm-up step: other work on the
    machine slows the wall clock, not this."""
    from training.train import build_parser, loop, setup

    threads = torch.get_num_threads()
    torch.set_num_threads(TRAINING_THREADS)
    probe = out / "calibration" / name
    shutil.rmtree(probe, ignore_errors=True)
    command = train_command(name, probe, variant_config(name, out), dataset, steps + 1)
    args = build_parser().parse_args([*command[3:], "--validation-split", "none", "--num-workers", "0",
                                      "--checkpointing-steps", "1000000"])
    run = setup(args, " ".join(command))
    run.val_pairs, run.held_out_pairs = [], []  # training only: no validation (held-out drives' included)
    run.config.max_steps = 1
    loop(run)  # warm-up
    run.config.max_steps = 1 + steps
    start = time.process_time()
    loop(run)
    seconds = (time.process_time() - start) / steps
    torch.set_num_threads(threads)
    return seconds


def budgets(names: list[str], out: Path, records: StudyRecords, dataset: str, minutes: float,
            again: bool = False) -> dict[str, dict[str, Any]]:
    """The steps each variant gets in `minutes` of training on one CPU thread, from its CPU seconds per step
    (`cpu_seconds_per_step`), kept in the study's records; measured once (`again` measures anew)."""
    kept = {name: records.budget(name) for name in names}
    budget = {name: record for name, record in kept.items() if record and not again}
    for name in names:
        if budget.get(name, {}).get("minutes") == minutes and "cpu_seconds_per_step" in budget[name]:
            continue
        per_step = cpu_seconds_per_step(name, out, dataset)
        budget[name] = {"minutes": minutes, "cpu_seconds_per_step": per_step, "seconds_per_step": per_step,
                        "steps": max(1, int(minutes * 60 / per_step))}
        records.write_budget(name, budget[name])
        print(f"{name}: {per_step:.2f} CPU s per step, {budget[name]['steps']} steps in {minutes:g} minutes",
              flush=True)
    return budget


def train_variant(name: str, steps: int, out: Path, dataset: str, validation_steps: int | None = None) -> Path:
    """Train (or resume) one variant in a subprocess, validating every `validation_steps` (only at the end when
    None); returns its run folder."""
    folder = out / name
    summary = RunFolder(folder).read(SUMMARY_FILE)
    if summary and summary["steps"] >= steps:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    command = [*train_command(name, folder, variant_config(name, out), dataset, steps), "--validation-steps",
               str(validation_steps or steps), "--checkpointing-steps", str(CHECKPOINT_STEPS)]
    if RunFolder(folder).checkpoints():
        command.append("--resume")
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": str(TRAINING_THREADS)})
    return folder


def load_model(folder: Path) -> Trainable:
    """A variant's trained folder, or an embedded model (its folder name after `SHIPPED_PREFIX`), on the CPU."""
    shipped = folder.name.startswith(SHIPPED_PREFIX)
    return load_trained(folder.name.removeprefix(SHIPPED_PREFIX) if shipped else folder, device="cpu")


def evaluate_variant(folder: Path, pairs: list, synthesis_pairs: list, reference: list, judge: SemFlowPipeline,
                     judge_real: Any, seeds: list[int], diversity_images: int,
                     held_out_pairs: list | None = None) -> dict[str, Any]:
    """Validation mIoU at 1 step on `pairs` (and on `held_out_pairs`, the frames of drives it never trained on, with
    the best step of its training's held-out validations), and synthesis metrics with the judge's cycle on
    `synthesis_pairs`."""
    model = load_model(folder)
    tasks = model.tasks
    result: dict[str, Any] = {"training_run": RunFolder(_embedded_folder(folder) or folder).read(SUMMARY_FILE)}
    scores = None
    if "segment" in tasks:
        scores = segmentation_scores(model, pairs, steps=1)
        result["val_miou"] = scores.miou
        result["per_class_iou"] = scores.per_class(model.labels.class_names)
        if held_out_pairs:
            held_out = segmentation_scores(model, held_out_pairs, steps=1)
            result["held_out_miou"] = held_out.miou
            result["held_out_per_class_iou"] = held_out.per_class(model.labels.class_names)
            validations = [r for r in RunFolder(folder).log() if "held_out_miou" in r]
            if validations:
                best = max(validations, key=lambda r: r["held_out_miou"])
                result["best_held_out_step"] = {"step": best["step"], "held_out_miou": best["held_out_miou"],
                                                "validations": [(r["step"], r["held_out_miou"]) for r in validations]}
    if "synthesize" in tasks:
        result["synthesis"] = synthesis_metrics(model, synthesis_pairs, seeds, reference_images=reference,
                                                reference_name="train", diversity_images=diversity_images,
                                                judge=judge, judge_real_scores=judge_real)
    return result


def latency(model: Trainable, image: Any, mask: Any) -> dict[str, Any]:
    """Median seconds of segmenting one 480x360 image and of synthesizing one at the default steps, on 2 CPU threads,
    measured apart from training and evaluation."""
    tasks = model.tasks
    result = {}
    if "segment" in tasks:
        result["segment_s"] = _median_seconds(lambda: model.segment(image), 5)
    if "synthesize" in tasks:
        result["synthesize_s"] = _median_seconds(lambda: model.synthesize(mask, seed=0), 3)
    return result


def untrained_model(name: str, dataset: str) -> Trainable:
    """A fresh net of variant `name` (its preset and overrides: the same architecture, codec and default steps as its
    trained model), to time when the trained model is gone: the cost of a forward does not depend on the weights."""
    variant = VARIANTS[name]
    config = load_config(preset=variant.preset, **{**variant.overrides, "dataset": dataset})
    return build_pipeline(config, resolve_label_set(config.label_set, dataset, None))


def _embedded_folder(folder: Path) -> Path | None:
    """The embedded model a shipped row (`SHIPPED_PREFIX` + its name) scores, else None."""
    return model_folder(folder.name.removeprefix(SHIPPED_PREFIX)) if folder.name.startswith(SHIPPED_PREFIX) else None


def _evaluation(name: str, folder: Path, records: StudyRecords) -> dict[str, Any] | None:
    """A row's evaluation: from its run folder when it is here, else from the study's records; a shipped row's only
    while it is of the weights embedded now."""
    evaluation = RunFolder(folder).read(EVAL_FILE) or records.evaluation(name)
    embedded = _embedded_folder(folder)
    if evaluation and embedded and evaluation.get("weights") != weights_hash(embedded):
        return None
    return evaluation


def _named_folder(text: str) -> tuple[str, Path]:
    """`--model NAME=FOLDER`: a trained model folder scored as the row NAME."""
    name, _, folder = text.partition("=")
    if not name or not folder:
        raise argparse.ArgumentTypeError(f"'{text}' is not NAME=FOLDER (e.g. long=runs/long)")
    if name in VARIANTS or name.startswith(SHIPPED_PREFIX):
        raise argparse.ArgumentTypeError(f"'{name}' names a study variant or a shipped row; choose another name")
    return name, Path(folder)


def _model_here(folder: Path) -> bool:
    """Whether a row's model is here to time (a shipped model always is; a recorded variant's run may be gone)."""
    return folder.name.startswith(SHIPPED_PREFIX) or (folder / SUMMARY_FILE).is_file()


def _steps_done(folder: Path) -> int:
    """Optimizer steps a variant's run folder holds: its final model's, else its newest checkpoint's."""
    run = RunFolder(folder)
    summary = run.read(SUMMARY_FILE)
    if summary:
        return summary["steps"]
    found = run.checkpoints() if folder.is_dir() else []
    return run.read_checkpoint_state(found[-1])["step"] if found else 0


def _median_seconds(fn, repeats: int) -> float:
    return statistics.median(timed(fn, repeats, warmup=1))


def to_markdown(rows: dict[str, dict[str, Any]], budget: str, frames: int, synthesis_frames: int, command: str) -> str:
    def cell(value: Any, digits: int = 1) -> str:
        return "–" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{value:.{digits}f}"

    lines = [f"Equal budget: {budget}, on the 367 CamVid training frames. Segmentation on the {frames} validation "
             f"frames; synthesis (FID, KID, cycle, diversity) on {synthesis_frames} of them spread over the split.",
             "",
             "| variant | steps | val mIoU, 1 step | cycle mIoU (own) | cycle / real (own) | cycle mIoU (judge) | "
             "FID | KID×1000 | FID / real-vs-real | seed diversity L1 | CPU s / step | segment s | synthesize s |",
             "| --- |" + " --- |" * 12]
    reference = None
    for name, row in rows.items():
        synthesis = row.get("synthesis") or {}
        own, judged = synthesis.get("cycle") or {}, synthesis.get("judged_cycle") or {}
        reference = synthesis.get("real_vs_real") or reference
        ratio = synthesis["fid"] / synthesis["real_vs_real"]["fid"] if synthesis.get("real_vs_real") else None
        budget = row["budget"]
        mark = " *" if row["latency"].get("timed_on") == UNTRAINED else ""  # the footnote's
        segment_s, synthesize_s = (cell(row["latency"].get(key), digits) + mark if key in row["latency"] else "–"
                                   for key, digits in (("segment_s", 3), ("synthesize_s", 2)))
        hours = f"{total_hours(row['training_run']):.1f} h" if name not in VARIANTS else ""
        described = (f"{name}: {VARIANTS[name].description}" if name in VARIANTS else
                     f"{name}: the embedded `{name.removeprefix(SHIPPED_PREFIX)}` model, for comparison (trained "
                     f"outside the study, {hours})" if name.startswith(SHIPPED_PREFIX) else
                     f"{name}: `{row['folder']}`, trained outside the study's budget ({hours}, every model it was "
                     f"initialised from included)")
        lines.append(
            f"| {described} | {total_steps(row['training_run'])} | {cell(row.get('val_miou'))} | "
            f"{cell(own.get('miou'))} | {cell(own.get('ratio'), 2)} | {cell(judged.get('miou'))} | "
            f"{cell(synthesis.get('fid'))} | {cell(1000 * synthesis['kid'] if 'kid' in synthesis else None)} | "
            f"{cell(ratio, 2)} | {cell((synthesis.get('diversity') or {}).get('pixel_l1_between_seeds'), 3)} | "
            f"{cell(budget and budget['cpu_seconds_per_step'], 2)} | {segment_s} | {synthesize_s} |")
    if reference:
        lines += ["", f"Real-vs-real reference: {reference['images']} training frames vs the validation frames, FID "
                      f"{reference['fid']:.1f}, KID×1000 {1000 * reference['kid']:.1f} (the floor of FID at this "
                      f"sample size)."]
    judge = next((r["synthesis"]["judged_cycle"] for r in rows.values() if (r.get("synthesis") or {}).get(
        "judged_cycle")), None)
    if judge:
        lines += ["", f"Judge for the cycle column: `{Path(judge['judge']).name}` (one fixed segmenter for every "
                      f"row), mIoU {judge['real_photo_miou']:.1f} on the real photos of the same frames."]
    lines += ["", "Seed diversity: mean absolute pixel difference (0..1) between two seeds of the same mask. "
                  "CPU s / step: one optimizer step of the variant's own training (its preset's batch and crop, data, "
                  "every loss term) on one CPU thread, timed in-process after a warm-up; each variant trains for "
                  "the budget divided by it. Latency: one 480x360 input at the model's default steps on 2 CPU "
                  "threads (*: timed on an untrained net of the variant's architecture, its trained model not kept; "
                  "a forward costs the same whatever the weights).",
              "", f"Reproduce: `{command}`"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.study", description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=list(STUDIES), default="pretrained")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float, help="training wall clock per variant (steps from its s / step)")
    budget.add_argument("--steps", type=int, help="optimizer steps per variant")
    parser.add_argument("--out", type=Path, default=None, help="default: runs/study-<study>")
    parser.add_argument("--dataset", default="../shared/datasets/camvid")
    parser.add_argument("--variants", nargs="+", default=None, choices=list(VARIANTS),
                        help="a subset of the study's variants (default: all of them)")
    parser.add_argument("--shipped", nargs="*", default=[], choices=list(EMBEDDED_MODELS),
                        help="embedded models scored as extra rows on the same frames (trained elsewhere, no budget)")
    parser.add_argument("--model", nargs="*", default=[], type=_named_folder, metavar="NAME=FOLDER",
                        help="trained model folders scored as extra rows on the same frames (e.g. a long run; no "
                             "budget), recorded as NAME")
    parser.add_argument("--records", type=Path, default=None,
                        help=f"the study's committed records (default: {RECORDS.name}/<study> beside this file)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--synthesis-frames", type=int, default=None,
                        help="synthesis metrics on this many validation frames spread over the split (default: all)")
    parser.add_argument("--diversity-images", type=int, default=32, help="masks synthesized with every seed")
    parser.add_argument("--keep", nargs="+", default=[], choices=list(VARIANTS),
                        help="copy these trained variants' models into the records (what a later run goes on "
                             "training with --init-from)")
    parser.add_argument("--recalibrate", action="store_true", help="measure the seconds per step anew")
    parser.add_argument("--calibrate-only", action="store_true", help="measure the budgets, train nothing")
    parser.add_argument("--no-table", action="store_true",
                        help="train and evaluate the variants, but measure no latency and write no table (to run "
                             "several variant subsets side by side; a last run without it writes the table)")
    parser.add_argument("--train-only", action="store_true",
                        help="train the variants, evaluate nothing (beside a run that trains the judge first)")
    parser.add_argument("--so-far", action="store_true",
                        help="train and evaluate nothing: the table of the variants evaluated so far, naming those "
                             "still training, without latency (written beside the study's table, not over it)")
    args = parser.parse_args(argv)
    command = "python -m benchmarks.study " + " ".join(argv if argv is not None else sys.argv[1:])
    out = args.out or Path(f"runs/study-{args.study}")
    names = args.variants or STUDIES[args.study]
    out.mkdir(parents=True, exist_ok=True)
    judge_name = JUDGES[args.study]
    records = StudyRecords(args.records or RECORDS / args.study)
    costs = budgets(names, out, records, args.dataset, args.minutes or 0.0, again=args.recalibrate)
    if args.calibrate_only:
        return costs
    pending = {name: _steps_done(out / name) for name in names if _evaluation(name, out / name, records) is None}
    folders = {**{name: out / name for name in names + [SHIPPED_PREFIX + shipped for shipped in args.shipped]},
               **dict(args.model)}  # each row's model (or run) folder
    if args.so_far:
        names = [name for name in names if name not in pending]
        folders = {name: folder for name, folder in folders.items() if name in names or
                   _evaluation(name, folder, records)}
    # only variants not yet evaluated train (a recorded one may have been trained by an earlier run), each just
    # before its evaluation, so that its record lands as soon as it is done; several processes may train disjoint
    # subsets side by side
    to_train = {name: args.steps or costs[name]["steps"] for name in ([] if args.so_far else pending)}
    for name, folder in args.model:  # before any work: a model row must be here, or evaluated by an earlier run
        if not _model_here(folder) and _evaluation(name, folder, records) is None:
            raise SystemExit(f"--model {name}={folder}: no trained model there ({SUMMARY_FILE} missing) and no "
                             f"recorded evaluation of {name}")
    for name in args.keep:  # before any work: a model to keep must be here or trained by this run
        if name not in to_train and not _model_here(out / name):
            raise SystemExit(f"--keep {name}: {out / name} holds no trained model (train it first, in this run)")
    if args.train_only:
        for name, steps in to_train.items():
            train_variant(name, steps, out, args.dataset, HELD_OUT_VALIDATION_STEPS.get(args.study))
        return costs
    if judge_name in to_train:  # the cycle column needs its judge before any evaluation
        train_variant(judge_name, to_train.pop(judge_name), out, args.dataset,
                      HELD_OUT_VALIDATION_STEPS.get(args.study))

    torch.set_num_threads(2)
    if judge_name in VARIANTS:
        if not records.judge and RunFolder(out / judge_name).read(SUMMARY_FILE):
            records.keep_judge(out / judge_name, EVAL_FILE)  # later runs judge with this same segmenter
        if not records.judge:
            raise SystemExit(f"the judge of the cycle column, {judge_name}, is not trained yet: include it in "
                             "--variants")
        # by its path from here, which the records store (an absolute one names this machine)
        judge = load_model(Path(os.path.relpath(records.judge)))
    else:
        judge = load_pipeline(judge_name, device="cpu")
    train_split, val_split = load_split(args.dataset, "train"), load_split(args.dataset, "validation")
    held_out_split = None
    held_out_drives = HELD_OUT["held_out_drives"] if args.study in HELD_OUT_VALIDATION_STEPS else []
    if held_out_drives:
        train_split, val_split, held_out_split = held_out_splits(train_split, val_split, held_out_drives)
    pairs = labelled_pairs(val_split, "image", "mask", judge)
    held_out_pairs = labelled_pairs(held_out_split, "image", "mask", judge) if held_out_split is not None else None
    scored = held_out_pairs or pairs  # synthesis on the held-out drive's masks, when there is one
    stride = max(1, len(scored) // args.synthesis_frames) if args.synthesis_frames else 1
    synthesis_pairs = scored[::stride][:args.synthesis_frames]
    reference = [image for image, _ in labelled_pairs(train_split, "image", "mask", judge, len(synthesis_pairs))]
    judge_real = segmentation_scores(judge, synthesis_pairs, steps=1)
    rows = {}
    for name, folder in folders.items():
        cached = _evaluation(name, folder, records)
        if cached is None:
            if name in to_train:
                train_variant(name, to_train[name], out, args.dataset, HELD_OUT_VALIDATION_STEPS.get(args.study))
            print(f"evaluating {name}", flush=True)
            cached = evaluate_variant(folder, pairs, synthesis_pairs, reference, judge, judge_real, args.seeds,
                                      args.diversity_images, held_out_pairs)
            if embedded := _embedded_folder(folder):  # its record holds for these weights only (see _evaluation)
                cached["weights"] = weights_hash(embedded)
            RunFolder(folder).write(EVAL_FILE, cached)
        records.write_evaluation(name, cached)
        rows[name] = {**cached, "budget": costs.get(name), "folder": str(folder)}
    for name in args.keep:
        print(f"kept {name} in {records.keep_model(name, out / name, EVAL_FILE)}", flush=True)
    if args.no_table:
        return {}
    image, mask = pairs[0]
    for name, row in rows.items():
        if args.so_far:  # latency wants a quiet machine, which a study still training does not leave
            row.setdefault("latency", {})
        if "latency" not in row:
            kept = records.judge if name == judge_name else records.model(name)
            folder = folders[name] if _model_here(folders[name]) else kept
            if folder:
                row["latency"] = latency(load_model(folder), image, mask)
            elif name in VARIANTS:  # its trained model is gone: the same architecture, untrained
                row["latency"] = {**latency(untrained_model(name, args.dataset), image, mask),
                                  "timed_on": UNTRAINED}
            else:  # a model row whose folder is gone: nothing to time
                row["latency"] = {}
                continue
            evaluation = {k: v for k, v in row.items() if k not in ("budget", "folder")}
            RunFolder(folders[name]).write(EVAL_FILE, evaluation)
            records.write_evaluation(name, evaluation)
    preset = load_config(preset=VARIANTS[names[0]].preset)
    budget_text = (f"{args.minutes:g} minutes of one-thread CPU time each (batch {preset.batch_size} of "
                   f"{preset.crop[0]}x{preset.crop[1]} crops)" if args.minutes else
                   f"{args.steps} optimizer steps of batch {preset.batch_size} each")
    markdown = to_markdown(rows, budget_text, len(pairs), len(synthesis_pairs), command)
    if args.so_far and pending:
        progress = ", ".join(f"{name} {done} / {costs[name]['steps']}" for name, done in pending.items())
        markdown += f"\n\nNot in the table yet, still training or being evaluated (steps done of budget): {progress}."
    study = {"command": command, "study": args.study, "minutes": args.minutes, "steps": args.steps,
             "variants": {n: VARIANTS[n].description for n in rows if n in VARIANTS}, "rows": rows,
             "markdown": markdown}
    stem = "study-so-far" if args.so_far else "study"
    RunFolder(out).write(f"{stem}.json", study)
    (out / f"{stem}.md").write_text(markdown + "\n")
    print(markdown)
    return study


if __name__ == "__main__":
    main()
