"""Training configuration: one dataclass, named presets, and loading from a JSON/YAML file plus overrides."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from semflow.annotation_layout import IMAGE_COLUMN, MASK_COLUMN

# Photometric augmentation for street scenes from other drives and in other light (training.photometric fields).
STREET_LIGHT = {"probability": 0.8, "brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.03, "gamma": 0.3,
                "white_balance": 0.08, "blur": 0.25, "noise": 0.02}

# The small CamVid default: exact pixel codec (space-to-depth 4), a from-scratch UNet2DModel that runs
# on a laptop CPU. The official-size layout: SD1.5 VAE latents and a UNet2DConditionModel from a base model.
PRESETS: dict[str, dict[str, Any]] = {
    "camvid-small": {
        "resolution": [352, 480],
        "crop": [224, 288],
        "pixel_factor": 4,
        "unet": {
            "block_out_channels": [64, 128, 192, 256],
            "layers_per_block": 1,
            "down_block_types": ["DownBlock2D"] * 4,
            "up_block_types": ["UpBlock2D"] * 4,
            "norm_num_groups": 32,
        },
        "perturbation": 40.0,
        "image_end_probability": 0.4,
        "class_balanced_loss": True,
        "class_weight_power": 0.5,
        "learning_rate": 4e-4,
        "batch_size": 8,
        "max_steps": 24000,
        "validation_steps": 2000,
        "validation_images": 101,
        "num_workers": 1,
        "save_best": True,
    },
    "sd15": {
        "base_model": "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "resolution": [512, 512],
        "crop": [512, 512],
        "scale_range": [1.0, 1.25],
        "anchor_k": 6,
        "anchor_s": 50.0,
        "perturbation": 6.375,
        "learning_rate": 2e-5,
        "warmup_steps": 500,
        "batch_size": 4,
        "mixed_precision": "bf16",
        "max_steps": 80000,
        "synthesis_steps": 25,
        "segmentation_steps": 25,
        "ema_decay": 0.9999,
    },
}


# Keys older config files use → their current names.
RENAMED = {"t0_probability": "image_end_probability"}

# camvid-small in the symmetric formulation with data prediction (no perturbation: its mask end is exact), with
# STREET_LIGHT.
PRESETS["camvid-symmetric"] = {**PRESETS["camvid-small"], "formulation": "symmetric", "prediction": "data",
                               "perturbation": 0.0, "photometric": STREET_LIGHT}

# The pretrained encoder (EncoderUNet: ImageNet EfficientNet-Lite0 trunk, time-conditioned decoder) on full-resolution
# pixels, symmetric formulation with data prediction, the trunk at a fifth of the decoder's learning rate.
PRESETS["camvid-pretrained"] = {**PRESETS["camvid-symmetric"], "net": "encoder-unet", "pixel_factor": 1, "unet": {},
                                "learning_rate": 5e-4, "encoder_learning_rate_ratio": 0.2}

# The same backbone in the paper's formulation (velocity prediction, the perturbation of camvid-small), for a fair
# comparison of the two formulations on one net.
PRESETS["camvid-pretrained-semflow"] = {**PRESETS["camvid-pretrained"], "formulation": "semflow",
                                        "prediction": "velocity",
                                        "perturbation": PRESETS["camvid-small"]["perturbation"]}

# Fine-tuning an existing model (--init-from) on a few corrected frames, e.g. the app's annotation folder: a gentle
# learning rate, a short run, no validation split (an annotation folder has none).
PRESETS["finetune"] = {**PRESETS["camvid-small"], "learning_rate": 1e-4, "warmup_steps": 20, "max_steps": 300,
                       "validation_split": None, "checkpointing_steps": 100, "save_best": False}


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as ``train_config.json`` beside the outputs and in the model card."""

    preset: str = "camvid-small"
    # data
    dataset: str = ""
    dataset_config: str | None = None
    train_split: str = "train"
    validation_split: str | None = "validation"
    held_out_drives: list[str] = field(default_factory=list)  # drives that never train and that score the run
    # (training.splits): every labelled frame of them, from both splits; the validation split keeps its other frames
    image_column: str = IMAGE_COLUMN  # the annotation folder's columns (semflow.annotation_layout) by default
    mask_column: str = MASK_COLUMN
    streaming: bool = False
    label_set: str | dict | None = None  # None: the init model's, else the dataset's id2label.json, else an error
    label_map: dict[str, int] | None = None  # dataset id → model id, applied before training
    # model
    formulation: str | None = None  # "semflow" (the paper), "symmetric" (SymmFlow), a study baseline; None: the
    # init model's formulation, else "semflow"
    prediction: str | None = None  # "velocity" or "data" (symmetric only); None: the init model's, else "velocity"
    mask_head: str = "anchors"  # a fresh net's mask end: "anchors" (colours) or "classes" (logits weighing them)
    init_from: str | None = None
    init_net_from: str | None = None  # a fresh EncoderUNet starts from this cross-entropy segmenter's net (a study
    # baseline's folder): its trunk and decoder
    base_model: str | None = None
    net: str = "unet2d"  # a fresh net: "unet2d" (UNet2DModel, from scratch) or "encoder-unet" (EncoderUNet, trunk from
    # ImageNet); `unet` holds its settings
    resolution: list[int] = field(default_factory=lambda: [352, 480])
    pixel_factor: int = 4
    unet: dict[str, Any] = field(default_factory=dict)
    anchor_k: int | None = None
    anchor_s: float | None = None
    perturbation: float = 40.0
    synthesis_steps: int = 10
    segmentation_steps: int = 1
    # augmentation
    crop: list[int] = field(default_factory=lambda: [224, 288])
    scale_range: list[float] = field(default_factory=lambda: [0.75, 1.5])
    hflip: bool = True
    photometric: dict[str, float] = field(default_factory=dict)  # training.photometric.Photometric fields; {} = off
    # objective
    t_distribution: str = "uniform"
    image_end_probability: float = 0.0  # chance of training exactly at the image end (where segmentation starts)
    class_balanced_loss: bool = False
    class_weight_power: float = 1.0  # median-frequency weights ** power (0.5: their square root)
    # terms beside the flow's MSE, on the net's estimate of the clean ends (training.objectives, training.adversarial)
    cross_entropy_weight: float = 0.0  # cross-entropy of the decoded anchors against the true ids
    perceptual_weight: float = 0.0  # LPIPS-style distance on frozen ImageNet features, estimated vs real image
    adversarial_weight: float = 0.0  # hinge loss of a mask-conditioned discriminator on the estimated image
    adversarial_start: int = 0  # optimizer steps before the adversarial term (and the discriminator) start
    discriminator: str = "patch"  # "patch" (on pixels) or "projected" (on frozen EfficientNet-Lite0 features)
    cycle_weight: float = 0.0  # cross-entropy of a frozen segmenter's one-step reading of the estimated image
    cycle_segmenter: str | None = None  # the model folder (or Hub id) of that segmenter; None: init_from
    # optimisation
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_steps: int = 20000
    max_minutes: float | None = None  # a training-time budget: the run ends at the first step past it
    learning_rate: float = 4e-4
    encoder_learning_rate_ratio: float = 1.0  # the pretrained trunk's learning rate / learning_rate
    discriminator_learning_rate: float = 2e-4
    min_learning_rate_ratio: float = 0.02
    warmup_steps: int = 200
    weight_decay: float = 0.01
    adam_beta2: float = 0.999
    max_grad_norm: float = 1.0
    ema_decay: float = 0.999
    mixed_precision: str = "no"
    seed: int = 0
    num_workers: int = 2
    # bookkeeping
    checkpointing_steps: int = 1000
    checkpoints_total_limit: int = 2
    validation_steps: int = 1000
    validation_images: int = 24
    sample_images: int = 4
    log_every: int = 20
    save_best: bool = False  # keep the EMA weights of the best validation mIoU in <output-dir>/best

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def started_from(config: dict[str, Any]) -> str | None:
    """The model a run's net started from (a config as its ``train_config.json`` holds it): `init_from`, else the
    cross-entropy segmenter of `init_net_from`; None for a fresh net."""
    return config.get("init_from") or config.get("init_net_from")


# What the run does every so many optimizer steps: each must be at least 1.
EVERY = ("validation_steps", "checkpointing_steps", "log_every")


class ConfigError(ValueError):
    """A setting the run cannot use; the message names it (and its --option) and what it takes."""


def load_config(path: str | os.PathLike | None = None, preset: str | None = None, **overrides: Any) -> TrainConfig:
    """Defaults ← preset ← file (JSON or YAML) ← overrides (None values are skipped).

    Raises:
        ValueError: unknown preset or unknown keys (with their names).
        ConfigError: a setting out of range (`EVERY`'s counts below 1).
    """
    values: dict[str, Any] = {}
    if path is not None:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if str(path).endswith((".yaml", ".yml")):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a mapping of config keys")
    name = preset or values.get("preset") or TrainConfig.preset
    if name not in PRESETS:
        raise ValueError(f"unknown preset '{name}'; choose from {sorted(PRESETS)}")
    values = {RENAMED.get(k, k): v for k, v in values.items()}
    merged = {**PRESETS[name], **values, **{k: v for k, v in overrides.items() if v is not None}, "preset": name}
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(merged) - known)
    if unknown:
        raise ValueError(f"unknown config keys {unknown}")
    config = TrainConfig(**merged)
    for name in EVERY:  # before any process starts: every process of a launch refuses it alike
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            skip = "; to train without validation, give --validation-split none" if name == "validation_steps" else ""
            raise ConfigError(f"{name} (--{name.replace('_', '-')}) must be a whole number of optimizer steps, at "
                              f"least 1, got {value!r}{skip}")
    return config
