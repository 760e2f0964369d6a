"""What the training loop, validation, evaluation and the study ask of a model: the protocol that a `SemFlowPipeline`
and a study `Baseline` both meet."""

from __future__ import annotations

import os
from typing import Any, Protocol

import torch

from semflow.labels import LabelSet
from semflow.outputs import SegmentationOutput, SynthesisOutput

TASKS = ("segment", "synthesize")


class Defaults(Protocol):
    """The defaults a trainable model runs at (a pipeline's config has these among its settings)."""

    synthesis_steps: int
    segmentation_steps: int


class Trainable(Protocol):
    """A model a run trains and scores: its net, its label set, which of `TASKS` it does, and those calls.

    Attributes:
        unet: The net the run's optimizer trains.
        tasks: What it does: ``("segment", "synthesize")`` for a pipeline, one of them for a baseline.
    """

    unet: torch.nn.Module
    tasks: tuple[str, ...]

    @property
    def labels(self) -> LabelSet: ...

    @property
    def config(self) -> Defaults: ...

    @property
    def name_or_path(self) -> str | None: ...

    def segment(self, images: Any, num_inference_steps: int | None = None, **kwargs: Any) -> SegmentationOutput: ...

    def synthesize(self, masks: Any, num_inference_steps: int | None = None, **kwargs: Any) -> SynthesisOutput: ...

    def save_pretrained(self, save_directory: str | os.PathLike) -> None: ...

    def set_progress_bar_config(self, **kwargs: Any) -> None: ...
