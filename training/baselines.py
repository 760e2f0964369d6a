"""Study baselines on the SemFlow backbone, never shipped: a cross-entropy segmenter (what being a flow costs
segmentation) and a mask-conditioned noise → image flow (a plain conditional generator for synthesis)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import UNet2DModel

from semflow import SemFlowPipeline, load_pipeline
from semflow.anchors import AnchorSpec, encode_anchors
from semflow.codec import PixelCodec
from semflow.flow import flow_loss
from semflow.formulation import SymmetricFormulation
from semflow.images import as_list, input_size, resize_ids, resize_images, to_ids, to_image_tensor, to_pil
from semflow.labels import LabelSet
from semflow.noise import draw
from semflow.outputs import SegmentationOutput, SynthesisOutput
from semflow.solvers import integrate
from semflow.velocity import net_output

from .data import position_weights
from .nets import fresh_net, load_net

BASELINES = ("cross-entropy", "conditional-flow")
SEGMENTER_TIME = 0.0  # the time the cross-entropy segmenter's net is called at (it has one)
CONFIG_FILE = "baseline.json"


@dataclass(frozen=True)
class BaselineConfig:
    """A baseline's defaults (`training.trainable.Defaults`)."""

    synthesis_steps: int = 10
    segmentation_steps: int = 1


class Baseline:
    """A velocity net (`UNet2DModel` or `EncoderUNet`) on the exact pixel codec that meets
    `training.trainable.Trainable` (what training, evaluation and the study ask of a model).

    - ``"cross-entropy"``: image → per-pixel class logits in one forward pass (at t=0); `segment` only.
    - ``"conditional-flow"``: the image path of the symmetric formulation, x_t = (1−t)·ξ + t·x, with the anchor mask
      as extra input channels, target x − ξ; `synthesize` integrates Gaussian noise at t=0 to the image at t=1;
      `synthesize` only.
    """

    vae = None
    prompt_embedding = None

    def __init__(self, kind: str, unet: UNet2DModel, labels: LabelSet, pixel_factor: int,
                 resolution: tuple[int, int], synthesis_steps: int = 10, name_or_path: str = "") -> None:
        if kind not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {kind!r}")
        self.kind, self.unet, self.labels = kind, unet, labels
        self.codec = PixelCodec(pixel_factor)
        self.anchor_spec = AnchorSpec.spread(labels.num_classes)
        self.resolution = tuple(resolution)
        self.tasks = ("segment",) if kind == "cross-entropy" else ("synthesize",)
        self.config = BaselineConfig(synthesis_steps=synthesis_steps)
        self.name_or_path = name_or_path

    @classmethod
    def build(cls, kind: str, labels: LabelSet, pixel_factor: int, resolution: tuple[int, int], net: str,
              unet_config: dict[str, Any], synthesis_steps: int = 10) -> Baseline:
        """A fresh `net` (`training.nets.fresh_net`) with the settings of `unet_config` and this baseline's input and
        output channels."""
        latent = 3 * pixel_factor**2
        channels_in = latent if kind == "cross-entropy" else 2 * latent
        channels_out = labels.num_classes * pixel_factor**2 if kind == "cross-entropy" else latent
        height, width = resolution
        unet = fresh_net(net, channels_in, channels_out, (height // pixel_factor, width // pixel_factor), unet_config)
        return cls(kind, unet, labels, pixel_factor, resolution, synthesis_steps)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **_: Any) -> Baseline:
        folder = Path(folder)
        config = json.loads((folder / CONFIG_FILE).read_text())
        unet = load_net(folder / "unet").float().eval()
        return cls(config["kind"], unet, LabelSet.from_dict(config["label_set"]), config["pixel_factor"],
                   tuple(config["resolution"]), config["synthesis_steps"], str(folder))

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        self.unet.save_pretrained(folder / "unet")
        (folder / CONFIG_FILE).write_text(json.dumps({
            "kind": self.kind, "label_set": self.labels.to_dict(), "pixel_factor": self.codec.factor,
            "resolution": list(self.resolution), "synthesis_steps": self.config.synthesis_steps}, indent=2))

    def set_progress_bar_config(self, **_: Any) -> None:
        """Baselines show no progress bar (a pipeline method the training loop calls)."""

    def to(self, device: str | torch.device) -> Baseline:
        self.unet.to(device)
        return self

    # --- training -------------------------------------------------------------------------------------------------

    def loss(self, net: torch.nn.Module, image: torch.Tensor, ids: torch.Tensor,
             class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """One batch of this baseline's objective. image: (B, 3, H, W) in [0, 1]; ids: (B, H, W)."""
        z_image = self.codec.encode(image * 2.0 - 1.0)
        if self.kind == "cross-entropy":
            logits = F.pixel_shuffle(net_output(net, z_image, SEGMENTER_TIME), self.codec.factor)
            weight = None if class_weights is None else class_weights.to(image.device)
            return F.cross_entropy(logits, ids.long(), weight=weight, ignore_index=self.labels.ignore_id
                                   if self.labels.ignore_id is not None else -100)
        z_mask = self.codec.encode(self._anchors(ids))
        noise = torch.randn_like(z_image)
        t = torch.rand(image.shape[0], device=image.device)
        x_t = SymmetricFormulation.image_path(z_image, noise, t)  # x_t = (1−t)·ξ + t·x
        velocity = net_output(net, torch.cat([x_t, z_mask], dim=1), t)
        weight = None if class_weights is None else position_weights(ids, class_weights, self.labels.num_classes,
                                                                      velocity.shape[-2:])
        return flow_loss(velocity, SymmetricFormulation.image_velocity(z_image, noise), weight)  # target x − ξ

    # --- evaluation -----------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def segment(self, images: Any, num_inference_steps: int | None = None, solver: str | None = None,
                batch_size: int = 4, **_: Any) -> SegmentationOutput:
        """Image(s) → class ids at each image's size (the argmax of the logits, upsampled bilinearly)."""
        self._need("segment")
        ids = []
        for image in as_list(images, "images"):
            pixels = to_image_tensor(image, "images")
            z = self.codec.encode(resize_images(pixels[None], self.resolution) * 2.0 - 1.0)
            logits = F.pixel_shuffle(net_output(self.unet, z, SEGMENTER_TIME), self.codec.factor)
            logits = F.interpolate(logits, size=tuple(pixels.shape[-2:]), mode="bilinear", align_corners=False)
            ids.append(resize_ids(logits.argmax(1).to(torch.uint8), input_size(image))[0].numpy())
        return SegmentationOutput(ids=ids, nfe=1)

    @torch.inference_mode()
    def synthesize(self, masks: Any, num_inference_steps: int | None = None, seed: int | None = 0,
                   num_images_per_mask: int = 1, **_: Any) -> SynthesisOutput:
        """Mask(s) → images: Euler from N(0, I) at t=0 to the image at t=1, conditioned on the anchor mask."""
        self._need("synthesize")
        steps = num_inference_steps or self.config.synthesis_steps
        seed = 0 if seed is None else seed
        images, seeds = [], []
        for mask in as_list(masks, "masks"):
            ids = to_ids(mask, "masks")
            z_mask = self.codec.encode(self._anchors(resize_ids(torch.from_numpy(ids)[None], self.resolution)))
            for variant in range(num_images_per_mask):
                noise = draw(z_mask.shape, torch.Generator().manual_seed(seed + variant))

                def velocity(x_t: torch.Tensor, t: float, z_mask=z_mask) -> torch.Tensor:
                    return net_output(self.unet, torch.cat([x_t, z_mask], dim=1), t)

                x = integrate(velocity, noise, 0.0, 1.0, steps, "euler").x
                images.append(to_pil(resize_images(self.codec.decode(x).clamp(-1, 1), ids.shape)[0]))
                seeds.append(seed + variant)
        return SynthesisOutput(images=images, seeds=seeds, nfe=steps)

    def _anchors(self, ids: torch.Tensor) -> torch.Tensor:
        return encode_anchors(ids, self.labels.num_classes, self.anchor_spec, self.labels.ignore_id).to(ids.device)

    def _need(self, task: str) -> None:
        if task not in self.tasks:
            raise ValueError(f"the {self.kind} baseline cannot {task}")


def load_trained(model: str | os.PathLike, device: str | torch.device | None = None) -> Baseline | SemFlowPipeline:
    """A trained model to score: a study baseline's folder (its `CONFIG_FILE`; float32 on `device`, CPU by default),
    or any SemFlow model `semflow.load_pipeline` finds (a folder, an embedded name, a Hub id).

    Raises:
        FileNotFoundError: a folder that holds neither (the sentence says what it looked for).
    """
    if (Path(model) / CONFIG_FILE).is_file():
        return Baseline.from_pretrained(model).to(device or "cpu")
    if Path(model).is_dir() and not (Path(model) / SemFlowPipeline.config_name).is_file():
        raise FileNotFoundError(f"{model} holds neither a SemFlow model ({SemFlowPipeline.config_name}) nor a study "
                                f"baseline ({CONFIG_FILE})")
    return load_pipeline(model, device=device)
