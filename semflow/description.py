"""A model described for people: what the records beside its weights say (its training data and evaluated figures),
and `SemFlowPipeline.describe`'s dict rendered as Markdown lines, as the card, the app and the command line show it."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

# The records a model folder keeps beside its weights (`training` writes them; every name is spelled here).
TRAIN_CONFIG_FILE = "train_config.json"
SUMMARY_FILE = "training_summary.json"
EVALUATION_FILE = "evaluation.json"
SPEED_FILE = "speed.json"


def read_record(folder: str | os.PathLike, name: str) -> dict[str, Any] | None:
    """The JSON record `name` in `folder`, or None where there is none (or it cannot be read)."""
    path = Path(folder) / name
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def model_records(folder: str | os.PathLike) -> dict[str, Any]:
    """What `SemFlowPipeline.describe` reports from the records beside a model's weights:

    - ``training_data``: the dataset and split it was trained on (and the drives held out of it), the rows and the
      data's licence (None when the folder has no training record);
    - ``evaluation``: the dataset, split and number of images of its evaluation, one row per segmentation setting
      (steps, solver, mIoU, pixel accuracy, seconds per image), the same rows on drives it never trained on
      (``held_out``, where it was scored there) and, where synthesis was scored, its FID and KID beside the
      real-vs-real reference and the cycle mIoU (its own, and a second segmenter's, the judge's) with each
      segmenter's mIoU on the real photos; None when the model was never evaluated.
    """
    config, summary = read_record(folder, TRAIN_CONFIG_FILE), read_record(folder, SUMMARY_FILE) or {}
    evaluation = read_record(folder, EVALUATION_FILE)
    training_data = None
    if config and config.get("dataset"):
        training_data = {"dataset": config["dataset"], "split": config.get("train_split"),
                         "held_out_drives": list(config.get("held_out_drives") or []),
                         "rows": summary.get("train_rows"), "license": summary.get("data_license")}
    return {"training_data": training_data, "evaluation": _evaluation(evaluation) if evaluation else None}


def _rows(rows: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [{key: row.get(key) for key in ("steps", "solver", "miou", "pixel_accuracy", "seconds_per_image")}
            for row in rows or []]


def _evaluation(record: dict[str, Any]) -> dict[str, Any]:
    held_out = record.get("held_out")
    synthesis = record.get("synthesis")
    scored = None
    if synthesis:
        cycle, judged = synthesis.get("cycle") or {}, synthesis.get("judged_cycle") or {}
        real = synthesis.get("real_vs_real") or {}
        scored = {"steps": synthesis.get("steps"), "seeds": synthesis.get("seeds"), "frames": synthesis.get("frames"),
                  "fid": synthesis.get("fid"),
                  "kid": synthesis.get("kid"), "real_fid": real.get("fid"), "real_kid": real.get("kid"),
                  "cycle_miou": cycle.get("miou"), "real_photo_miou": cycle.get("real_photo_miou"),
                  "judged_cycle_miou": judged.get("miou"), "judge_real_photo_miou": judged.get("real_photo_miou")}
    return {"dataset": record.get("dataset"), "split": record.get("split"), "images": record.get("images"),
            "segmentation": _rows(record.get("segmentation")),
            "held_out": {"drives": list(held_out.get("drives") or []), "images": held_out.get("images"),
                         "segmentation": _rows(held_out.get("segmentation"))} if held_out else None,
            "synthesis": scored}


def describe_lines(description: dict[str, Any]) -> list[str]:
    """The model itself (`SemFlowPipeline.describe`) as Markdown-friendly "**Name**: value" lines."""
    d = description
    labels = d["label_set"]
    ignore = "" if labels.get("ignore_id") is None else \
        f" (+ id {labels['ignore_id']} = {labels['ignore_name']}, ignored)"
    defaults = d["defaults"]
    return [
        f"**Formulation**: {d['formulation_summary']}; the net predicts "
        + ("the velocity" if d["prediction"] == "velocity" else "the clean ends (data prediction)")
        + (", the mask end as class logits whose softmax weighs the anchors (segmentation decodes their most "
           "probable class)" if d.get("mask_head") == "classes"
           else ""),
        f"**Label set**: `{labels['name']}`, {len(labels['class_names'])} classes{ignore}",
        f"**Model resolution**: {d['resolution']['width']}x{d['resolution']['height']} (inputs are resized to it and "
        f"results back to their size)",
        f"**Net**: {d['net']}" + (f" ({d['net_summary']})" if d.get("net_summary") else "") +
        f", {d['parameters_millions']:g} M parameters, on {d['codec']}",
        f"**Anchors**: k={d['anchors']['k']}, s={d['anchors']['s']:g}; perturbation β={d['perturbation']:g}",
        f"**Defaults**: segment {defaults['segmentation_steps']} step(s), synthesize {defaults['synthesis_steps']} "
        f"steps, {defaults['solver']}",
    ]


def training_data_line(description: dict[str, Any]) -> str | None:
    """"**Training data**: ..." from the description, or None when it does not say."""
    data = description.get("training_data")
    if not data:
        return None
    drives = data.get("held_out_drives") or []
    held_out = (" without the frames of drive" + ("s " if len(drives) > 1 else " ") +
                ", ".join(f"`{drive}`" for drive in drives)) if drives else ""
    rows = f", {data['rows']} rows" if data.get("rows") is not None else ""
    licence = f". Licence of the data: {data['license']}" if data.get("license") else ""
    return f"**Training data**: `{data['dataset']}` (split `{data.get('split')}`{held_out}{rows}){licence}"


def figures_markdown(description: dict[str, Any]) -> str | None:
    """The evaluated figures as Markdown: one table row per segmentation setting, then synthesis; None when the model
    was never evaluated."""
    evaluation = description.get("evaluation")
    if not evaluation:
        return None
    held_out = evaluation.get("held_out")
    if held_out:  # the same drives as training beside drives it never trained on, one column each
        drives = ", ".join(f"`{drive}`" for drive in held_out["drives"])
        parts = [f"Evaluated on `{evaluation['dataset']}`: the same drives as training (split `{evaluation['split']}`"
                 f", {evaluation['images']} images) and drives it never trained on ({drives}, {held_out['images']} "
                 f"images)."]
        rows = "\n".join(f"| {row['solver']} | {row['steps']} | {_figure(row['miou'])} | {_figure(other['miou'])} | "
                         f"{_figure(row['pixel_accuracy'])} / {_figure(other['pixel_accuracy'])} | "
                         f"{_figure(row['seconds_per_image'], '.3f')} |"
                         for row, other in zip(evaluation["segmentation"], held_out["segmentation"]))
        header = ("| solver | steps | mIoU, same drive | mIoU, held-out drive | pixel acc., same / held-out | "
                  "s / image |\n| --- | --- | --- | --- | --- | --- |\n")
    else:
        parts = [f"Evaluated on `{evaluation['dataset']}` split `{evaluation['split']}` ({evaluation['images']} "
                 f"images)." + ("" if (description.get("training_data") or {}).get("held_out_drives") else
                                " No drive was held out of its training data: this model has no figure on a drive it "
                                "never saw.")]
        rows = "\n".join(f"| {row['solver']} | {row['steps']} | {_figure(row['miou'])} | "
                         f"{_figure(row['pixel_accuracy'])} | {_figure(row['seconds_per_image'], '.3f')} |"
                         for row in evaluation["segmentation"])
        header = "| solver | steps | mIoU | pixel acc. | s / image |\n| --- | --- | --- | --- | --- |\n"
    if evaluation["segmentation"]:
        parts.append(header + rows)
    synthesis = evaluation.get("synthesis")
    if synthesis:
        frames = " of the held-out drives' masks" if synthesis.get("frames") == "held-out drives" else ""
        lines = [f"Synthesis{frames} ({synthesis['steps']} steps): FID {_figure(synthesis['fid'], '.1f')}, KID ×1000 "
                 f"{_thousandths(synthesis['kid'])}; real photos against real photos: FID "
                 f"{_figure(synthesis['real_fid'], '.1f')}, KID ×1000 {_thousandths(synthesis['real_kid'])}."]
        if synthesis.get("cycle_miou") is not None:
            lines.append(f"Cycle (segment the synthesized images, compare with their masks): mIoU "
                         f"{_figure(synthesis['cycle_miou'])} against {_figure(synthesis['real_photo_miou'])} on the "
                         f"real photos" + (f"; judged by a second segmenter: {_figure(synthesis['judged_cycle_miou'])}"
                                           f" against {_figure(synthesis['judge_real_photo_miou'])}"
                                           if synthesis.get("judged_cycle_miou") is not None else "") + ".")
        parts.append(" ".join(lines))
    return "\n\n".join(parts)


def describe_markdown(description: dict[str, Any]) -> str:
    """The whole description (the model, its training data, its figures) as Markdown paragraphs."""
    lines = describe_lines(description)
    data = training_data_line(description)
    figures = figures_markdown(description)
    return "\n\n".join([*lines, *([data] if data else []), *([f"**Figures**\n\n{figures}"] if figures else [])])


def plain(markdown: str) -> str:
    """Markdown as plain text for a terminal: emphasis and code marks dropped."""
    return re.sub(r"\*\*|`", "", markdown)


def _figure(value: float | None, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def _thousandths(value: float | None) -> str:
    return _figure(None if value is None else value * 1000, ".1f")
