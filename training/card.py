"""Model cards: a Hugging Face `ModelCard` with data, licence, command, config, metrics and a usage snippet."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from semflow.labels import LabelSet

from .config import TrainConfig
from .run_folder import CONFIG_FILE, EVALUATION_FILE, SPEED_FILE, SUMMARY_FILE, RunFolder

FORMULATION_TEXT = {
    "semflow": "[SemFlow](https://arxiv.org/abs/2405.20282) (the paper's formulation): one rectified-flow ODE between "
               "images (t=0) and semantic masks drawn as anchor colours (t=1). Segment by integrating image → mask, "
               "synthesize by integrating a perturbed mask → image.",
    "symmetric": "SemFlow in the symmetric formulation ([SymmFlow](https://arxiv.org/abs/2506.10634)): the state "
                 "holds image and mask channels, with Gaussian noise at the other end of each (t=0: noise and mask, "
                 "t=1: image and noise). Segment by integrating (image, noise) from t=1 to t=0, synthesize by "
                 "integrating (noise, mask) from t=0 to t=1.",
}

TEMPLATE = """---
{card_data}
---

# SemFlow — {labels_name}

{formulation_text}

- **Label set**: `{labels_name}` — {num_classes} classes{ignore}.
- **Velocity net**: `{unet_class}`, {parameters:.1f} M parameters; codec: {codec}; model resolution
  {height}x{width} (inputs are resized to it and outputs back to the input size).
- **Anchors** k={anchor_k}, s={anchor_s:g}; perturbation β={perturbation:g} (0..255 units).
- **Defaults**: segmentation {segmentation_steps} Euler step(s), synthesis {synthesis_steps} Euler steps.
- **Training data**: `{dataset}` (split `{train_split}`, {train_rows} rows). Licence of the data: {data_license}.

## Usage

```python
from semflow import SemFlowPipeline

pipe = SemFlowPipeline.from_pretrained("{repo_or_path}")
labels = pipe.segment(image).labels[0]                       # (H, W) uint8 class ids
images = pipe.synthesize(labels, seed=0, num_images_per_mask=4).images
```

or `python -m semflow segment street.png --out masks/ --model {repo_or_path}`.

## Training

{steps} optimiser steps in {hours:.2f} h on `{device}` ({num_processes} process(es)). Reproduce with:

```bash
{command}
```

<details><summary>Full training config</summary>

```json
{config_json}
```

</details>

## Metrics

{metrics}
"""


def write_model_card(
    folder: Path, config: TrainConfig | dict[str, Any], summary: dict[str, Any], repo_id: str | None = None,
    data_license: str | None = None,
) -> Path:
    """Render README.md in a saved pipeline folder from its config, the training summary and, when present,
    the evaluation results (``evaluation.json`` written by `training.evaluate`)."""
    folder = Path(folder)
    config = config.to_dict() if isinstance(config, TrainConfig) else dict(config)
    index = json.loads((folder / "model_index.json").read_text())
    labels = LabelSet.from_dict(index["label_set"])
    evaluation = RunFolder(folder).read(EVALUATION_FILE)
    speed = RunFolder(folder).read(SPEED_FILE)
    data_license = data_license or (evaluation or {}).get("data_license") or summary.get("data_license") or \
        "see the dataset card"
    card_data = ModelCardData(
        library_name="diffusers",
        license="cc-by-nc-4.0" if data_license.lower().startswith("cc-by-nc") else None,
        datasets=[config.get("dataset")] if config.get("dataset") and "/" in str(config.get("dataset")) and not
        Path(str(config.get("dataset"))).exists() else None,
        tags=["semflow", "rectified-flow", "semantic-segmentation", "semantic-image-synthesis", labels.name],
        pipeline_tag="image-segmentation",
    )
    text = TEMPLATE.format(
        card_data=card_data.to_yaml(),
        formulation_text=FORMULATION_TEXT[index.get("formulation", "semflow")],
        labels_name=labels.name,
        num_classes=labels.num_classes,
        ignore="" if labels.ignore_id is None else f", id {labels.ignore_id} = {labels.ignore_name} (ignored)",
        unet_class=index["unet"][1],
        parameters=_parameters(folder / "unet"),
        codec="SD VAE latents" if index.get("vae", [None])[0] else f"exact pixel codec (space-to-depth "
                                                                   f"{index.get('pixel_factor', 1)})",
        height=index["resolution"][0], width=index["resolution"][1],
        anchor_k=index["anchor_k"], anchor_s=index["anchor_s"], perturbation=index["perturbation"],
        segmentation_steps=index["segmentation_steps"], synthesis_steps=index["synthesis_steps"],
        dataset=config.get("dataset"), train_split=config.get("train_split"), train_rows=summary.get("train_rows"),
        data_license=data_license,
        repo_or_path=repo_id or _display_path(folder),
        steps=summary.get("steps"), hours=summary.get("wall_clock_s", 0) / 3600, device=summary.get("device"),
        num_processes=summary.get("num_processes", 1), command=_commands(summary),
        config_json=json.dumps(config, indent=2),
        metrics=_metrics_section(summary, evaluation, speed),
    )
    ModelCard(text).save(folder / "README.md")
    return folder / "README.md"


def _display_path(folder: Path) -> str:
    """The folder as a user would type it: relative to the working directory when inside it (no machine paths)."""
    try:
        return folder.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(folder)


def _commands(summary: dict[str, Any]) -> str:
    """The command, or every run's command in order when training was stopped and resumed."""
    runs = summary.get("runs") or []
    if len(runs) <= 1:
        return str(summary.get("command"))
    ends = [run["from_step"] for run in runs[1:]] + [summary.get("steps")]
    return "\n".join(f"# run {i + 1}: steps {run['from_step']} to {end}" + (" (stopped there)" if i + 1 < len(runs)
                      else "") + f"\n{run['command']}" for i, (run, end) in enumerate(zip(runs, ends)))


def rerender_model_card(folder: Path) -> Path:
    """Render the card again from what the folder holds (config, training summary, evaluation, speed)."""
    folder = Path(folder)
    run = RunFolder(folder)
    return write_model_card(folder, run.read(CONFIG_FILE), run.read(SUMMARY_FILE))


def _metrics_section(summary: dict[str, Any], evaluation: dict[str, Any] | None, speed: dict[str, Any] | None) -> str:
    lines = []
    last = summary.get("last_validation") or {}
    if last:
        lines.append(f"During training (EMA weights, validation subset): mIoU {last.get('val_miou')}, "
                     f"pixel accuracy {last.get('val_pixel_accuracy')}.")
    if evaluation:
        lines.append(evaluation.get("markdown", ""))
    if speed:
        lines.append(f"Speed on {speed['threads']} CPU threads ({speed['cpu']}), {speed['image']} input: segment "
                     f"{speed['segment_s']:.3f} s ({speed['segment_steps']} step), synthesize one image "
                     f"{speed['synthesize_s']:.2f} s ({speed['synthesis_steps']} steps); one bare forward of the net "
                     f"{speed['bare_forward_s']:.3f} s, so segment / forward = {speed['segment_over_forward']:.2f}. "
                     f"Reproduce: `{speed['command']}`.")
    if not lines:
        lines.append("Not evaluated yet: run `python -m training.evaluate --model <folder> --dataset <dataset> "
                     "--update-card`.")
    return "\n\n".join(lines)


def _parameters(unet_folder: Path) -> float:
    """Millions of parameters stored in the velocity net's safetensors files."""
    from safetensors import safe_open

    total = 0
    for path in unet_folder.glob("*.safetensors"):
        with safe_open(path, "pt") as f:
            total += sum(math.prod(f.get_slice(key).get_shape()) for key in f.keys())
    return total / 1e6
