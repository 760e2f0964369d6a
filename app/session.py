"""What one browser tab is working on: the typed value its `gr.State` holds between events."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image

BLANK_LAYOUT = "blank-layout"  # the source of a layout painted from scratch


@dataclass(frozen=True)
class Session:
    """One tab's work; events return a new `Session` (`replace`) rather than changing this one.

    Attributes:
        image: The photo being annotated, at its editing size (None for a painted layout).
        source: Where the work came from: the uploaded file's name, a layout file's name, or `BLANK_LAYOUT`.
        ids: The last predicted mask of `image`, (H, W) class ids.
        steps: The steps that prediction took.
        synthesized: The images last synthesized from the editor's mask.
    """

    image: PIL.Image.Image | None = None
    source: str | None = None
    ids: np.ndarray | None = None
    steps: int | None = None
    synthesized: tuple[PIL.Image.Image, ...] = ()

    def replace(self, **changes: Any) -> Session:
        return dataclasses.replace(self, **changes)

    def image_to_save(self) -> tuple[PIL.Image.Image | None, str]:
        """The image a saved annotation pairs with the mask, and where it came from: the photo, else (for a painted
        layout) the first synthesized image."""
        if self.image is None and self.synthesized:
            return self.synthesized[0], "synthesized"
        return self.image, "upload"
