"""The training loop (nanoGPT-style): data, model, EMA, checkpoints, validation, final save, model card and push."""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, is_tensorboard_available, set_seed
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from semflow import SemFlowPipeline
from semflow.anchors import encode_anchors
from semflow.flow import flow_loss, interpolate, sample_t, target_velocity
from semflow.perturbation import perturb
from semflow.velocity import predict_velocity

from .card import CONFIG_FILE, SUMMARY_FILE, write_model_card
from .config import PRESETS, TrainConfig, load_config
from .data import (
    SegmentationStream,
    class_frequencies,
    dataset_license,
    load_split,
    median_frequency_weights,
    resolve_label_set,
)
from .evaluation import labelled_pairs, sample_grid, segmentation_scores
from .model import build_pipeline

CHECKPOINT_PREFIX = "checkpoint-"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__)
    p.add_argument("--dataset", required=True, help="Hub dataset id or local folder (Hub layout or imagefolder)")
    p.add_argument("--output-dir", required=True, type=Path)
    p.add_argument("--config", default=None, help="JSON or YAML file of TrainConfig keys")
    p.add_argument("--preset", default=None, choices=sorted(PRESETS))
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output-dir")
    p.add_argument("--push-to-hub", default=None, metavar="ORG/NAME", help="upload the final model to this repo")
    p.add_argument("--private", action="store_true", help="create the Hub repo as private")
    p.add_argument("--init-from", default=None, help="fine-tune an existing SemFlow model (folder or Hub id)")
    p.add_argument("--label-set", default=None, help="built-in name or id2label.json (default: model's/dataset's)")
    p.add_argument("--dataset-config", default=None)
    p.add_argument("--image-column", default=None)
    p.add_argument("--mask-column", default=None)
    p.add_argument("--train-split", default=None)
    p.add_argument("--validation-split", default=None, help="'none' to skip validation")
    p.add_argument("--streaming", action="store_true", default=None, help="stream the training split")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default=None)
    p.add_argument("--num-workers", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--checkpointing-steps", type=int, default=None)
    p.add_argument("--validation-steps", type=int, default=None)
    p.add_argument("--save-dtype", choices=["fp32", "fp16"], default="fp32", help="dtype of the saved weights")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    command = "python -m training.train " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    config = load_config(
        args.config, args.preset, dataset=args.dataset, init_from=args.init_from, label_set=args.label_set,
        dataset_config=args.dataset_config, image_column=args.image_column, mask_column=args.mask_column,
        train_split=args.train_split, streaming=args.streaming, max_steps=args.max_steps, batch_size=args.batch_size,
        learning_rate=args.learning_rate, mixed_precision=args.mixed_precision, num_workers=args.num_workers,
        seed=args.seed, checkpointing_steps=args.checkpointing_steps, validation_steps=args.validation_steps,
    )
    if args.validation_split is not None:
        config.validation_split = None if args.validation_split.lower() == "none" else args.validation_split
    output_dir = args.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=config.mixed_precision,
        log_with="tensorboard" if is_tensorboard_available() else None,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )
    set_seed(config.seed)

    # Data and model.
    init = SemFlowPipeline.from_pretrained(config.init_from) if config.init_from else None
    labels = resolve_label_set(config.label_set, config.dataset, init.labels if init is not None else None)
    train_split = load_split(config.dataset, config.train_split, config.dataset_config, config.streaming)
    val_split = load_split(config.dataset, config.validation_split, config.dataset_config) \
        if config.validation_split else None
    pipe = build_pipeline(config, labels, init)
    pipe.set_progress_bar_config(disable=True)
    net = pipe.unet
    net.train()
    if pipe.vae is not None:
        pipe.vae.requires_grad_(False).eval().to(accelerator.device)
    if pipe.prompt_embedding is not None:
        pipe.prompt_embedding.to(accelerator.device)
    vae_generator = torch.Generator(accelerator.device).manual_seed(config.seed) if pipe.vae is not None else None
    class_weights = None
    if config.class_balanced_loss:
        if config.streaming:
            raise ValueError("class_balanced_loss needs a non-streaming dataset to count class frequencies")
        frequencies = class_frequencies(train_split, config.mask_column, labels, config.label_map)
        weights = median_frequency_weights(frequencies) ** config.class_weight_power
        class_weights = torch.tensor(weights, dtype=torch.float32)
        accelerator.print("class weights: " + ", ".join(f"{n} {w:.2f}" for n, w in zip(labels.class_names, weights)))

    ema = EMAModel(net.parameters(), decay=config.ema_decay, model_cls=type(net), model_config=net.config)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, betas=(0.9, config.adam_beta2),
                                  weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(step, config))
    net, optimizer, scheduler = accelerator.prepare(net, optimizer, scheduler)
    accelerator.register_for_checkpointing(ema)

    step, elapsed_before, history = resume(accelerator, output_dir) if args.resume else (0, 0.0, [])
    history = [*history, {"command": command, "from_step": step}]
    ema.to(accelerator.device)
    samples_per_step = config.batch_size * config.gradient_accumulation_steps * accelerator.num_processes
    stream = SegmentationStream(
        train_split, labels, config.image_column, config.mask_column, tuple(config.resolution), tuple(config.crop),
        tuple(config.scale_range), config.hflip, config.label_map,
        seed=config.seed + 1000 * accelerator.process_index,
        start_epoch=step * samples_per_step // max(_length(train_split), 1),
    )
    batches = iter(torch.utils.data.DataLoader(stream, batch_size=config.batch_size,
                                               num_workers=config.num_workers,
                                               persistent_workers=config.num_workers > 0))
    val_pairs = labelled_pairs(val_split, config.image_column, config.mask_column, pipe, config.validation_images,
                               config.label_map) if val_split is not None and accelerator.is_main_process else []
    if accelerator.is_main_process:
        (output_dir / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2))
        accelerator.init_trackers("semflow", config={k: v for k, v in config.to_dict().items()
                                                     if isinstance(v, (int, float, str, bool))})

    # The loop.
    log_path = output_dir / "log.jsonl"
    start_time, last, best = time.time(), {}, _read_json(output_dir / "best" / "best.json") or {}

    def elapsed() -> float:  # wall clock over every run of this output folder, resumed ones included
        return elapsed_before + time.time() - start_time

    progress = tqdm(total=config.max_steps, initial=step, disable=not accelerator.is_local_main_process,
                    desc="train")
    while step < config.max_steps:
        with accelerator.accumulate(net):
            image, ids = next(batches)
            loss = flow_matching_loss(pipe, net, image.to(accelerator.device), ids.to(accelerator.device),
                                      config.t_distribution, config.t0_probability, class_weights, vae_generator)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(net.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        if not accelerator.sync_gradients:
            continue
        step += 1
        ema.step(net.parameters())
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.4f}")
        record: dict[str, Any] = {}
        if step % config.log_every == 0 or step == config.max_steps:
            record = {"loss": loss.item(), "lr": scheduler.get_last_lr()[0]}
        if step % config.checkpointing_steps == 0 or step == config.max_steps:
            save_checkpoint(accelerator, output_dir, step, config.checkpoints_total_limit, elapsed(), history)
        if accelerator.is_main_process and val_pairs and (step % config.validation_steps == 0
                                                          or step == config.max_steps):
            with ema_weights(ema, net):
                record.update(validate(pipe, val_pairs, output_dir, step, config.sample_images))
                if config.save_best and record["val_miou"] > best.get("val_miou", -1.0):
                    best = {"step": step, "val_miou": record["val_miou"]}
                    pipe.save_pretrained(output_dir / "best")
                    (output_dir / "best" / "best.json").write_text(json.dumps(best))
            last = record
        if record and accelerator.is_main_process:
            record = {"step": step, "elapsed_s": round(elapsed(), 1), **record}
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            accelerator.log({k: v for k, v in record.items() if isinstance(v, (int, float))}, step=step)
    progress.close()

    # The result: EMA weights, saved with the config beside them, a model card, optionally pushed.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        ema.copy_to(net.parameters())
        pipe.unet = accelerator.unwrap_model(net).eval()
        save_final(pipe, output_dir, args.save_dtype)
        summary = {"command": command, "runs": history, "steps": step, "train_rows": _length(train_split),
                   "data_license": dataset_license(config.dataset),
                   "wall_clock_s": round(elapsed(), 1), "device": str(accelerator.device),
                   "num_processes": accelerator.num_processes, "last_validation": last, "best_validation": best}
        (output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
        write_model_card(output_dir, config, summary)
        if args.push_to_hub:
            from .push import push_model

            url = push_model(output_dir, args.push_to_hub, private=args.private or None)
            print(f"pushed to {url}")
    accelerator.end_training()
    return output_dir


def flow_matching_loss(
    pipe: SemFlowPipeline,
    net: torch.nn.Module,
    image: torch.Tensor,
    ids: torch.Tensor,
    t_distribution: str = "uniform",
    t0_probability: float = 0.0,
    class_weights: torch.Tensor | None = None,
    vae_generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One batch of the SemFlow objective: MSE between v(x_t, t) and z_mask − z_image.

    Args:
        image: (B, 3, H, W) in [0, 1]. ids: (B, H, W) class ids (or the ignore id).
        vae_generator: With a VAE codec, image latents are sampled from the posterior (as officially done).
    """
    labels, spec = pipe.labels, pipe.anchor_spec
    x_image = image * 2.0 - 1.0  # [0, 1] → model units
    x_mask = encode_anchors(ids, labels.num_classes, spec, labels.ignore_id).to(image.device)  # Eq. 7
    x_mask = perturb(x_mask, pipe.config.perturbation, spec)  # M' = M + ε, Eq. 14
    with torch.no_grad():
        z_image = pipe.codec.encode(x_image, vae_generator)
        z_mask = pipe.codec.encode(x_mask)
    t = sample_t(image.shape[0], t_distribution, t0_probability, device=image.device)
    x_t = interpolate(z_image, z_mask, t)  # x_t = t·z1 + (1−t)·z0
    velocity = predict_velocity(net, x_t, t, pipe.prompt_embedding)
    weight = None
    if class_weights is not None:
        pixel_weight = class_weights.to(image.device)[ids.clamp(0, labels.num_classes - 1)]
        pixel_weight = torch.where(ids < labels.num_classes, pixel_weight, torch.ones_like(pixel_weight))
        weight = torch.nn.functional.adaptive_avg_pool2d(pixel_weight[:, None], velocity.shape[-2:])
    return flow_loss(velocity, target_velocity(z_image, z_mask), weight)


def learning_rate_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to `min_learning_rate_ratio` at `max_steps`."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    floor = config.min_learning_rate_ratio
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@contextmanager
def ema_weights(ema: EMAModel, net: torch.nn.Module) -> Iterator[None]:
    """Swap the EMA weights into the net for evaluation, and back afterwards."""
    ema.store(net.parameters())
    ema.copy_to(net.parameters())
    net.eval()
    try:
        yield
    finally:
        ema.restore(net.parameters())
        net.train()


def validate(pipe: SemFlowPipeline, pairs: list, output_dir: Path, step: int, sample_images: int) -> dict[str, Any]:
    """Validation mIoU (at the pipeline's default steps) and a sample grid PNG."""
    scores = segmentation_scores(pipe, pairs)
    if sample_images:
        (output_dir / "samples").mkdir(exist_ok=True)
        spread = pairs[:: max(1, len(pairs) // sample_images)][:sample_images]  # not consecutive video frames
        sample_grid(pipe, spread).save(output_dir / "samples" / f"step-{step:07d}.png")
    return {"val_miou": round(scores.miou, 2), "val_pixel_accuracy": round(scores.pixel_accuracy, 2)}


def checkpoints(output_dir: Path) -> list[Path]:
    """Checkpoint folders, oldest first."""
    found = [p for p in output_dir.glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir() and p.name[len(CHECKPOINT_PREFIX):]
             .isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def save_checkpoint(
    accelerator: Accelerator, output_dir: Path, step: int, keep: int, elapsed_s: float = 0.0,
    history: list[dict[str, Any]] | None = None,
) -> None:
    """`checkpoint-{step}`: model, EMA, optimizer, scheduler and RNG states, plus the step, the wall clock so far
    and the commands that ran (`history`); keeps the newest `keep`."""
    folder = output_dir / f"{CHECKPOINT_PREFIX}{step}"
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        (folder / "step.json").write_text(json.dumps({"step": step, "elapsed_s": elapsed_s, "history": history or []}))
        for old in checkpoints(output_dir)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)


def resume(accelerator: Accelerator, output_dir: Path) -> tuple[int, float, list[dict[str, Any]]]:
    """Restore the newest checkpoint; returns its step, the wall clock spent so far and the earlier runs' commands
    (0, 0.0 and [] when there is none)."""
    found = checkpoints(output_dir)
    if not found:
        accelerator.print(f"no checkpoint in {output_dir}; starting from step 0")
        return 0, 0.0, []
    accelerator.load_state(str(found[-1]))
    state = json.loads((found[-1] / "step.json").read_text())
    accelerator.print(f"resumed from {found[-1]} at step {state['step']}")
    return state["step"], float(state.get("elapsed_s", 0.0)), list(state.get("history", []))


def save_final(pipe: SemFlowPipeline, output_dir: Path, save_dtype: str) -> None:
    """The pipeline folder: model_index.json and safetensors weights with their configs (fp16 halves the size)."""
    if save_dtype == "fp16":
        pipe.unet.half()
    pipe.save_pretrained(output_dir)
    pipe.unet.float()


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _length(split: Any) -> int:
    try:
        return len(split)
    except TypeError:  # a streaming split has no length
        return 0


if __name__ == "__main__":
    main()
