"""Output dataclasses of `SemFlowPipeline.segment` and `SemFlowPipeline.synthesize`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import PIL.Image
from diffusers.utils import BaseOutput

from .deprecation import renamed_attribute


@dataclass
class SegmentationOutput(BaseOutput):
    """Result of `SemFlowPipeline.segment`.

    Attributes:
        ids: One (H, W) uint8 array of class ids per input image, at that image's own (upright) size (`labels`, the
            pipeline's `LabelSet`, names them).
        trajectory: Per input, the states image → mask as RGB frames at the input's size (the first is the
            input as the model saw it, the last the predicted anchor image); ``None`` unless asked for.
        nfe: Velocity-net evaluations per batch.
        confidence: Per input, an (H, W) float32 map in [0, 1] of how clearly each pixel's class is the nearest
            anchor (`semflow.anchors.nearest_anchors`' margin); ``None`` unless asked for.
    """

    ids: list[np.ndarray]
    trajectory: list[list[PIL.Image.Image]] | None = None
    nfe: int = 0
    confidence: list[np.ndarray] | None = None

    labels = renamed_attribute("labels", "ids")  # its former name, which reads like the pipeline's `LabelSet`


@dataclass
class EditOutput(BaseOutput):
    """Result of `SemFlowPipeline.edit`.

    Attributes:
        images: One edited photo per variant (RGB, at the photo's size): the region re-synthesized from the edited
            mask; outside the region the photo's own pixels (with ``strength=0``).
        changed: (H, W) bool, the pixels whose class the edit changed (or the `region` asked for).
        region: (H, W) bool, the pixels that may differ from the photo: `changed` grown by the margin (with a
            strength above 0 the rest of the photo is restyled too).
        seeds: The seed of each variant, or ``None`` where a caller-supplied generator was used.
        nfe: Velocity-net evaluations per batch.
    """

    images: list[PIL.Image.Image]
    changed: np.ndarray
    region: np.ndarray
    seeds: list[int] | None = None
    nfe: int = 0


@dataclass
class SynthesisOutput(BaseOutput):
    """Result of `SemFlowPipeline.synthesize`.

    Attributes:
        images: RGB images at their mask's size, mask-major: ``images[m * num_images_per_mask + v]`` is variant
            `v` of mask `m`.
        seeds: The seed of each image (re-running with ``seed=seeds[k]`` and one variant reproduces image `k`), or
            ``None`` where a caller-supplied generator was used.
        trajectory: Per image, the states mask → image as RGB frames (first: the perturbed anchor image, last: the
            image); ``None`` unless asked for.
        nfe: Velocity-net evaluations per batch.
    """

    images: list[PIL.Image.Image]
    seeds: list[int] | None = None
    trajectory: list[list[PIL.Image.Image]] | None = None
    nfe: int = 0
