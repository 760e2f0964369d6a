"""The training loop (nanoGPT-style): setup → loop → finish; data, model, EMA, checkpoints, validation, the final
save, model card and push."""

from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, is_tensorboard_available, set_seed
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from semflow import SemFlowPipeline
from semflow.codec import Codec
from semflow.flow import flow_loss
from semflow.formulation import FORMULATIONS
from semflow.labels import LabelSet
from semflow.loading import cpu_process_group, model_folder
from semflow.velocity import net_output

from .adversarial import DISCRIMINATORS, Critic
from .baselines import BASELINES, Baseline
from .card import write_model_card
from .config import PRESETS, ConfigError, TrainConfig, load_config, started_from
from .cycle import CycleSegmentation
from .data import (
    SegmentationStream,
    class_frequencies,
    dataset_license,
    load_split,
    median_frequency_weights,
    position_weights,
    resolve_label_set,
)
from .model import build_pipeline, state_inputs
from .nets import NETS
from .objectives import PerceptualDistance, anchor_cross_entropy, class_cross_entropy
from .photometric import Photometric
from .run_folder import CONFIG_FILE, SUMMARY_FILE, RunFolder
from .scores import labelled_pairs, sample_grid, segmentation_scores
from .splits import held_out_splits
from .trainable import Trainable

SAVE_DTYPES = ("fp32", "fp16")
SELECTION_KEY = "held_out_miou"  # what `save_best` keeps the best of, when the run holds drives out
CHOICES = {"preset": sorted(PRESETS), "formulation": [*FORMULATIONS, *BASELINES], "net": sorted(NETS),
           "mixed_precision": ["no", "fp16", "bf16"], "discriminator": list(DISCRIMINATORS)}


def build_parser() -> argparse.ArgumentParser:
    """Options for the run itself, then one ``--key`` per scalar `TrainConfig` field (lists and mappings: --config)."""
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__)
    p.add_argument("--output-dir", required=True, type=Path, help="the run folder (and final model folder)")
    p.add_argument("--config", default=None, help="JSON or YAML file of TrainConfig keys")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output-dir")
    p.add_argument("--push-to-hub", default=None, metavar="ORG/NAME", help="upload the final model to this repo")
    p.add_argument("--private", action="store_true", help="create the Hub repo as private")
    p.add_argument("--save-dtype", choices=SAVE_DTYPES, default="fp32", help="dtype of the saved weights")
    config_options = p.add_argument_group("TrainConfig fields (default: the preset's, then --config's)")
    for config_field in dataclasses.fields(TrainConfig):
        kind = _scalar_type(config_field.type)
        if kind is None:
            continue
        flag = "--" + config_field.name.replace("_", "-")
        if kind is bool:
            config_options.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            config_options.add_argument(flag, type=kind, default=None, choices=CHOICES.get(config_field.name),
                                        metavar=None if config_field.name in CHOICES else config_field.name.upper())
    return p


def _scalar_type(annotation: str) -> type | None:
    """int/float/str/bool for a scalar (or optional scalar) field annotation, else None."""
    names = [part.strip() for part in str(annotation).split("|")]
    for name, kind in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if name in names:
            return kind
    return None


@dataclass
class Run:
    """Everything the loop needs, made by `setup`."""

    config: TrainConfig
    folder: RunFolder
    accelerator: Accelerator
    model: Trainable
    net: torch.nn.Module
    ema: EMAModel
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    batches: Iterator
    val_pairs: list  # (image, ids) of the validation split: frames of the drives that train
    train_rows: int
    held_out_pairs: list = field(default_factory=list)  # frames of the held-out drives (`held_out_drives`)
    class_weights: torch.Tensor | None = None
    vae_generator: torch.Generator | None = None
    perceptual: PerceptualDistance | None = None  # with perceptual_weight
    critic: Critic | None = None  # with adversarial_weight
    cycle: CycleSegmentation | None = None  # with cycle_weight
    step: int = 0
    clock: dict[str, float] = field(default_factory=dict)  # seconds before this run: "elapsed_s", "train_s"
    history: list[dict[str, Any]] = field(default_factory=list)
    last_validation: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] | None = None  # how the init model (or `init_net_from`'s segmenter) was trained
    stop: Callable[[], bool] | None = None  # asked after each step: True ends the loop there (a cancelled job)
    on_step: Callable[[int, float, float], None] | None = None  # told each step, its loss and the training seconds


def main(argv: list[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    command = "python -m training.train " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    run = setup(args, command)
    try:
        loop(run)
        return finish(run, args, command)
    finally:  # a process group left to the interpreter's exit aborts the process (SIGABRT) now and then
        run.accelerator.end_training()


def setup(args: argparse.Namespace, command: str) -> Run:
    """Config, accelerator, data, model, optimizer, EMA; restores the newest checkpoint with --resume."""
    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(TrainConfig)}
    config = load_config(args.config, overrides.pop("preset"), **overrides)
    if not config.dataset:
        raise ValueError("--dataset is required (a Hub dataset id or a local folder)")
    if isinstance(config.validation_split, str) and config.validation_split.lower() == "none":
        config.validation_split = None
    folder = RunFolder(args.output_dir)
    folder.path.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(
        cpu=cpu_process_group(),
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=config.mixed_precision,
        # the schedule counts optimizer steps, however many processes share each step's batch
        step_scheduler_with_optimizer=False,
        log_with="tensorboard" if is_tensorboard_available() else None,
        project_config=ProjectConfiguration(project_dir=str(folder.path), logging_dir=str(folder.logs)),
    )
    per_process_batch = process_batch(config.batch_size, accelerator.num_processes)
    set_seed(config.seed)  # the same initial weights in every process

    init = SemFlowPipeline.from_pretrained(model_folder(config.init_from)) if config.init_from else None
    labels = resolve_label_set(config.label_set, config.dataset, init.labels if init is not None else None)
    train_split = load_split(config.dataset, config.train_split, config.dataset_config, config.streaming)
    val_split = load_split(config.dataset, config.validation_split, config.dataset_config) \
        if config.validation_split else None
    held_out_split = None
    if config.held_out_drives:  # no frame of them trains; they score the run
        train_split, val_split, held_out_split = held_out_splits(train_split, val_split, config.held_out_drives)
        accelerator.print(f"held out drive(s) {config.held_out_drives}: {len(train_split)} training frames, "
                          f"{len(held_out_split)} held-out frames")
    model = build_pipeline(config, labels, init)
    model.set_progress_bar_config(disable=True)
    net = model.unet
    net.train()
    if model.vae is not None:
        model.vae.requires_grad_(False).eval().to(accelerator.device)
    if model.prompt_embedding is not None:
        model.prompt_embedding.to(accelerator.device)
    vae_generator = torch.Generator(accelerator.device).manual_seed(config.seed) if model.vae is not None else None
    class_weights = None
    if config.class_balanced_loss:
        if config.streaming:
            raise ValueError("class_balanced_loss needs a non-streaming dataset to count class frequencies")
        frequencies = class_frequencies(train_split, config.mask_column, labels, config.label_map)
        weights = median_frequency_weights(frequencies) ** config.class_weight_power
        class_weights = torch.tensor(weights, dtype=torch.float32)
        accelerator.print("class weights: " + ", ".join(f"{n} {w:.2f}" for n, w in zip(labels.class_names, weights)))

    ema = EMAModel(net.parameters(), decay=config.ema_decay, model_cls=type(net), model_config=net.config)
    optimizer = torch.optim.AdamW(parameter_groups(net, config), lr=config.learning_rate,
                                  betas=(0.9, config.adam_beta2), weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(step, config))
    net, optimizer, scheduler = accelerator.prepare(net, optimizer, scheduler)
    accelerator.register_for_checkpointing(ema)
    perceptual = PerceptualDistance().to(accelerator.device) if config.perceptual_weight else None
    critic = None
    if config.adversarial_weight:
        critic = Critic(config.discriminator_learning_rate, accelerator.device,
                        kind=config.discriminator).prepare(accelerator)
        accelerator.register_for_checkpointing(critic)
    cycle = CycleSegmentation(cycle_segmenter(config, labels)).to(accelerator.device) if config.cycle_weight else None
    set_seed(config.seed, device_specific=True)  # each process its own noise, times and perturbations

    step, clock, history = resume(accelerator, folder) if args.resume else (0, {}, [])
    ema.to(accelerator.device)
    samples_per_step = config.batch_size * config.gradient_accumulation_steps  # over all processes
    stream = SegmentationStream(
        train_split, labels, config.image_column, config.mask_column, tuple(config.resolution), tuple(config.crop),
        tuple(config.scale_range), config.hflip, config.label_map, seed=config.seed,
        start_epoch=step * samples_per_step // max(_length(train_split), 1),
        photometric=Photometric.from_dict(config.photometric),
        process_index=accelerator.process_index, num_processes=accelerator.num_processes,
    )
    batches = iter(torch.utils.data.DataLoader(stream, batch_size=per_process_batch,
                                               num_workers=config.num_workers,
                                               persistent_workers=config.num_workers > 0))
    val_pairs, held_out_pairs = ([labelled_pairs(split, config.image_column, config.mask_column, model,
                                                 config.validation_images, config.label_map)
                                  if split is not None and accelerator.is_main_process else []
                                  for split in (val_split, held_out_split)])
    if accelerator.is_main_process:
        folder.write(CONFIG_FILE, config.to_dict())
        accelerator.init_trackers("semflow", config={k: v for k, v in config.to_dict().items()
                                                     if isinstance(v, (int, float, str, bool))})
    return Run(config=config, folder=folder, accelerator=accelerator, model=model, net=net, ema=ema,
               optimizer=optimizer, scheduler=scheduler, batches=batches, val_pairs=val_pairs,
               held_out_pairs=held_out_pairs, train_rows=_length(train_split), class_weights=class_weights,
               vae_generator=vae_generator,
               perceptual=perceptual, critic=critic, cycle=cycle, step=step,
               clock=clock, history=[*history, {"command": command, "from_step": step}],
               lineage=init_lineage(started_from(config.to_dict())))


def loop(run: Run) -> None:
    """Optimizer steps up to `max_steps`, with EMA, logging, checkpoints and validation on the EMA weights."""
    config, accelerator, net = run.config, run.accelerator, run.net
    start, train_s = time.time(), 0.0
    best = run.folder.best_record()

    def clock() -> dict[str, float]:  # over every run of this folder, resumed ones included
        return {"elapsed_s": round(run.clock.get("elapsed_s", 0.0) + time.time() - start, 3),
                "train_s": round(run.clock.get("train_s", 0.0) + train_s, 3)}  # ms: tiny runs too

    progress = tqdm(total=config.max_steps, initial=run.step, disable=not accelerator.is_local_main_process,
                    desc="train")
    while run.step < config.max_steps:
        tick = time.perf_counter()
        with accelerator.accumulate(net):
            image, ids = next(run.batches)
            loss, terms, batch = training_loss(run, image.to(accelerator.device), ids.to(accelerator.device))
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(net.parameters(), config.max_grad_norm)
            run.optimizer.step()
            run.optimizer.zero_grad(set_to_none=True)
            if adversarial(run):  # the discriminator's step, on the same batch
                terms["critic"] = run.critic.step(batch.x_image, batch.image_end, batch.x_mask)
        if not accelerator.sync_gradients:
            continue
        run.scheduler.step()
        run.step += 1
        run.ema.step(net.parameters())
        train_s += time.perf_counter() - tick
        step = run.step
        # the last step: the run's length, or its time budget spent (this run's training time and earlier runs');
        # a stop asked for (a cancelled job) ends the loop too, logged and checkpointed, but not validated
        last = step == config.max_steps or (config.max_minutes is not None and
                                            run.clock.get("train_s", 0.0) + train_s >= 60 * config.max_minutes)
        ending = last or (run.stop is not None and run.stop())
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.4f}")
        if run.on_step is not None:
            run.on_step(step, loss.item(), run.clock.get("train_s", 0.0) + train_s)
        record: dict[str, Any] = {}
        if step % config.log_every == 0 or ending:  # the batch's mean over every process
            values = accelerator.reduce(torch.tensor([loss.item(), *terms.values()], device=accelerator.device),
                                        reduction="mean").tolist()
            record = {"loss": values[0], **{f"loss_{name}": value for name, value in zip(terms, values[1:])},
                      "lr": run.scheduler.get_last_lr()[0]}
        if step % config.checkpointing_steps == 0 or ending:
            save_checkpoint(accelerator, run.folder, step, config.checkpoints_total_limit,
                            {**clock(), "history": run.history})
        if accelerator.is_main_process and (run.val_pairs or run.held_out_pairs) and (
                step % config.validation_steps == 0 or last):
            with ema_weights(run.ema, net):
                record.update(validate(run.model, run.val_pairs, run.folder, step, config.sample_images,
                                       run.held_out_pairs))
                chosen_by = SELECTION_KEY if run.held_out_pairs else "val_miou"  # a drive it never trained on
                if config.save_best and record.get(chosen_by, -1.0) > best.get(chosen_by, -1.0):
                    best = {"step": step, chosen_by: record[chosen_by]}
                    run.folder.save_best(run.model, best)
            run.last_validation = record
        if record and accelerator.is_main_process:
            record = {"step": step, **clock(), **record}
            run.folder.append_log(record)
            accelerator.log({k: v for k, v in record.items() if isinstance(v, (int, float))}, step=step)
        if ending:
            break
    progress.close()
    run.clock = clock()


def finish(run: Run, args: argparse.Namespace, command: str) -> Path:
    """The result: EMA weights saved with the config beside them, the summary, a model card, optionally pushed."""
    accelerator, folder = run.accelerator, run.folder
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        run.ema.copy_to(run.net.parameters())
        run.model.unet = accelerator.unwrap_model(run.net).eval()
        save_final(run.model, folder.path, args.save_dtype)
        summary = {"command": command, "runs": run.history, "steps": run.step, "train_rows": run.train_rows,
                   "data_license": dataset_license(run.config.dataset), "save_dtype": args.save_dtype,
                   "wall_clock_s": run.clock.get("elapsed_s", 0.0), "train_s": run.clock.get("train_s", 0.0),
                   "seconds_per_step": run.clock.get("train_s", 0.0) / max(run.step, 1),
                   "device": str(accelerator.device), "num_processes": accelerator.num_processes,
                   "last_validation": run.last_validation, "best_validation": folder.best_record(),
                   "held_out_drives": run.config.held_out_drives,
                   "initialised_from": run.lineage}
        folder.write(SUMMARY_FILE, summary)
        if isinstance(run.model, SemFlowPipeline):
            write_model_card(folder.path, run.config, summary)
        if args.push_to_hub:
            from .push import push_model

            url = push_model(folder.path, args.push_to_hub, private=args.private or None)
            print(f"pushed to {url}")
    return folder.path


def training_loss(run: Run, image: torch.Tensor,
                  ids: torch.Tensor) -> tuple[torch.Tensor, dict[str, float], FlowBatch | None]:
    """The objective of the run's model: its formulation's flow matching plus the config's extra terms on the net's
    estimate of the clean ends (or a study baseline's own loss); with each term's value for the log, and the batch
    (for the discriminator's step)."""
    if isinstance(run.model, Baseline):
        return run.model.loss(run.net, image, ids, run.class_weights), {}, None
    config, pipe = run.config, run.model
    batch = flow_matching(pipe, run.net, image, ids, config.t_distribution, config.image_end_probability,
                          run.class_weights, run.vae_generator)
    loss, terms = batch.loss, {"flow": batch.loss.item()}
    extra = []
    if config.cross_entropy_weight:  # of the net's class logits, or of its anchors' distances
        extra.append(("cross_entropy", config.cross_entropy_weight,
                      class_cross_entropy(batch.class_logits, ids, pipe.labels, run.class_weights)
                      if batch.class_logits is not None else
                      anchor_cross_entropy(batch.mask_end, ids, pipe.labels, pipe.anchor_spec, run.class_weights)))
    if run.perceptual is not None:
        extra.append(("perceptual", config.perceptual_weight, run.perceptual(batch.image_end, batch.x_image)))
    if run.cycle is not None:
        extra.append(("cycle", config.cycle_weight, run.cycle(batch.image_end, ids, run.class_weights)))
    if adversarial(run):
        extra.append(("adversarial", config.adversarial_weight,
                      run.critic.generator_loss(batch.image_end, batch.x_mask)))
    for name, weight, value in extra:
        loss = loss + weight * value
        terms[name] = value.item()
    return loss, terms, batch


def cycle_segmenter(config: TrainConfig, labels: LabelSet) -> SemFlowPipeline:
    """The frozen segmenter of the cycle term: `cycle_segmenter`, else the init model, loaded afresh (the trained net
    is a copy of the init model's, this one never moves).

    Raises:
        ValueError: neither is set, or the segmenter's classes are not the run's.
    """
    source = config.cycle_segmenter or config.init_from
    if not source:
        raise ValueError("cycle_weight needs a trained segmenter: set cycle_segmenter (a model folder or Hub id) or "
                         "init_from")
    segmenter = SemFlowPipeline.from_pretrained(model_folder(source))
    if list(segmenter.labels.class_names) != list(labels.class_names):
        raise ValueError(f"the cycle segmenter {source} reads the classes {list(segmenter.labels.class_names)}, "
                         f"not this run's {list(labels.class_names)}")
    return segmenter


def adversarial(run: Run) -> bool:
    """Whether the adversarial term (and the discriminator) are on at this step."""
    return run.critic is not None and run.step >= run.config.adversarial_start


@dataclass
class FlowBatch:
    """One batch of flow matching: the MSE, and what the extra terms score (all pixels in model units, [-1, 1]).

    Attributes:
        loss: The flow's MSE between the net's output and its target.
        x_image, x_mask: The real images and their (perturbed) anchor masks.
        clean_ends: The net's estimate of the clean ends in the codec's space (encoded image, encoded mask).
        codec: Decodes them; `image_end` and `mask_end` are decoded when first asked for (a VAE decode is costly).
        class_logits: (B, classes, H, W) logits of the mask end, when the net gives them (the classes mask head).
    """

    loss: torch.Tensor
    x_image: torch.Tensor
    x_mask: torch.Tensor
    clean_ends: tuple[torch.Tensor, torch.Tensor]
    codec: Codec
    class_logits: torch.Tensor | None = None  # the mask end's, with the classes mask head

    @cached_property
    def image_end(self) -> torch.Tensor:
        """The net's estimate of the clean image."""
        return self.codec.decode(self.clean_ends[0])

    @cached_property
    def mask_end(self) -> torch.Tensor:
        """The net's estimate of the clean anchor mask."""
        return self.codec.decode(self.clean_ends[1])


def flow_matching(
    pipe: SemFlowPipeline,
    net: torch.nn.Module,
    image: torch.Tensor,
    ids: torch.Tensor,
    t_distribution: str = "uniform",
    image_end_probability: float = 0.0,
    class_weights: torch.Tensor | None = None,
    vae_generator: torch.Generator | None = None,
) -> FlowBatch:
    """One batch of flow matching in the pipeline's formulation: MSE between the net's output at (x_t, t) and its
    target (the velocity, or the clean ends when the net predicts data).

    Args:
        image: (B, 3, H, W) in [0, 1]. ids: (B, H, W) class ids (or the ignore id).
        image_end_probability: Chance of training exactly at the image end, where one-step segmentation starts.
        vae_generator: With a VAE codec, image latents are sampled from the posterior (as officially done).
    """
    labels, formulation, codec = pipe.labels, pipe.formulation, pipe.codec
    x_image = image * 2.0 - 1.0  # [0, 1] → model units
    x_mask = pipe.anchor_mask(ids)  # Eq. 7 and Eq. 14: M' = M + ε
    with torch.no_grad():
        z_image = codec.encode(x_image, vae_generator)
        z_mask = codec.encode(x_mask)
    t = formulation.training_times(image.shape[0], t_distribution, image_end_probability, device=image.device)
    x_t, target = formulation.training_pair(z_image, z_mask, t)
    # the velocity, or the clean ends (and the mask end's class logits, with the classes mask head)
    output, class_logits = pipe.read_output(net_output(net, x_t, t, pipe.prompt_embedding))
    weight = None if class_weights is None else position_weights(ids, class_weights, labels.num_classes,
                                                                  output.shape[-2:])
    return FlowBatch(loss=flow_loss(output, target, weight), x_image=x_image, x_mask=x_mask,
                     clean_ends=formulation.clean_ends(output, x_t, t), codec=codec, class_logits=class_logits)


def parameter_groups(net: torch.nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: a pretrained trunk (an `EncoderUNet`'s ``trunk.``) at
    ``encoder_learning_rate_ratio`` × the learning rate, everything else at it. At ratio 0 the trunk is frozen (no
    gradients kept), but for its weights that read the state (`state_inputs`), whose mask channels a net started from
    a segmenter must learn; they train at the learning rate."""
    frozen = config.encoder_learning_rate_ratio == 0
    reading = state_inputs(net) if frozen else {}
    trunk, rest = [], []
    for name, parameter in net.named_parameters():
        if not name.startswith("trunk.") or (frozen and name in reading):
            rest.append(parameter)
        elif frozen:
            parameter.requires_grad_(False)
        else:
            trunk.append(parameter)
    groups = [{"params": rest, "lr": config.learning_rate}]
    if trunk:
        groups.append({"params": trunk, "lr": config.learning_rate * config.encoder_learning_rate_ratio})
    return groups


def process_batch(batch_size: int, num_processes: int) -> int:
    """Each process's share of the config's batch (the batch of one optimizer step, over all processes).

    Raises:
        ValueError: the batch does not split evenly.
    """
    if batch_size % num_processes:
        raise ValueError(f"batch_size {batch_size} does not split evenly over {num_processes} processes; choose a "
                         f"multiple of {num_processes}")
    return batch_size // num_processes


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


def validate(model: Trainable, pairs: list, folder: RunFolder, step: int, sample_images: int,
             held_out_pairs: list = ()) -> dict[str, Any]:
    """mIoU (at the model's default steps, when it segments) on the validation frames (``val_``) and on the held-out
    drives' frames (``held_out_``), and a sample grid PNG (of held-out frames when there are some)."""
    record: dict[str, Any] = {}
    if "segment" in model.tasks:
        for prefix, scored in (("val", pairs), ("held_out", held_out_pairs)):
            if scored:
                scores = segmentation_scores(model, scored)
                record |= {f"{prefix}_miou": round(scores.miou, 2),
                           f"{prefix}_pixel_accuracy": round(scores.pixel_accuracy, 2)}
    shown = held_out_pairs or pairs
    if sample_images and shown:
        spread = shown[:: max(1, len(shown) // sample_images)][:sample_images]  # not consecutive video frames
        sample_grid(model, spread).save(folder.sample_path(step))
    return record


def init_lineage(init_from: str | None, depth: int = 8) -> dict[str, Any] | None:
    """How the model a run starts from was trained, read now (an embedded model may be replaced by this run's
    result): its name, steps, wall clock, device and commands, and the same for the model it started from in turn.
    None for a fresh net; only the name for a model without a training summary."""
    if not init_from or depth == 0:
        return None
    try:
        run = RunFolder(model_folder(init_from))
    except (OSError, ValueError):  # an ancestor no longer at hand (a Hub model not cached, a folder moved): its name
        return {"model": init_from}
    summary, config = run.read(SUMMARY_FILE) or {}, run.read(CONFIG_FILE) or {}
    keys = ("steps", "wall_clock_s", "device", "runs", "command", "best_validation", "averaged_from")
    return {"model": init_from, **{key: summary[key] for key in keys if key in summary},
            "initialised_from": summary.get("initialised_from") or init_lineage(started_from(config), depth - 1)}


def save_checkpoint(accelerator: Accelerator, folder: RunFolder, step: int, keep: int, state: dict[str, Any]) -> None:
    """`checkpoint-{step}`: model, EMA, optimizer, scheduler and RNG states, plus the step and `state` (wall clock,
    training seconds, the commands that ran); keeps the newest `keep`."""
    accelerator.save_state(str(folder.checkpoint(step)))
    if accelerator.is_main_process:
        folder.write_checkpoint_state(step, state)
        folder.prune_checkpoints(keep)


def resume(accelerator: Accelerator, folder: RunFolder) -> tuple[int, dict[str, float], list[dict[str, Any]]]:
    """Restore the newest checkpoint; returns its step, the seconds spent so far ("elapsed_s", "train_s") and the
    earlier runs' commands (0, {} and [] when there is none)."""
    found = folder.checkpoints()
    if not found:
        accelerator.print(f"no checkpoint in {folder.path}; starting from step 0")
        return 0, {}, []
    accelerator.load_state(str(found[-1]))
    state = folder.read_checkpoint_state(found[-1])
    accelerator.print(f"resumed from {found[-1]} at step {state['step']}")
    clock = {key: float(state[key]) for key in ("elapsed_s", "train_s") if key in state}
    return state["step"], clock, list(state.get("history", []))


def save_final(model: Trainable, folder: Path, save_dtype: str) -> None:
    """The model folder: config and safetensors weights beside it (fp16 halves the size)."""
    if save_dtype == "fp16":
        model.unet.half()
    model.save_pretrained(folder)
    model.unet.float()


def _length(split: Any) -> int:
    try:
        return len(split)
    except TypeError:  # a streaming split has no length
        return 0


if __name__ == "__main__":
    try:
        main()
    except ConfigError as error:  # a setting the run cannot use: a sentence, not a traceback, in every process
        sys.exit(f"error: {error}")
