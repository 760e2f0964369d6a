"""What one browser tab is working on: the typed value its `gr.State` holds between events."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image

from .fill_tools import Fill

BLANK_LAYOUT = "blank-layout"  # the source of a layout painted from scratch
MADE_BY = "semflow-made-by"  # a synthesized image's `info` key: the identity of the model that made it


@dataclass(frozen=True, eq=False)  # eq=False: sessions hold arrays, which have no single truth value
class Session:
    """One tab's work; events return a new `Session` (`replace`) rather than changing this one.

    Attributes:
        image: The photo being annotated, at its editing size (None for a painted layout).
        background: What the mask editor shows under the mask: the photo, or the white canvas of a layout (None when
            the editor is empty). Every mask read back from the editor is checked against it
            (`editor.mask_from_editor`).
        source: Where the work came from: the uploaded file's name, a layout file's name, or `BLANK_LAYOUT`.
        ids: The mask as the tab last knew it (what it put into the editor, or read back from it), (H, W) class ids.
        prediction: The model's mask of `image` (its prediction, or a queue item's pre-annotation), to tell which
            pixels a person has corrected.
        steps: The steps that prediction took.
        confidence: Each pixel's confidence in that prediction, (H, W) in [0, 1].
        model: The model the tab works with (a name from `model.Models.choices`; None: the configured model).
        queue: The work queue the tab has open, as (location, split); None when none is.
        item: The id of the queue item in the editor (None for work from elsewhere).
        owner: The tab's name in the queue's claims (made when a queue is first opened).
        corner: The first corner (x, y) of a box being drawn for "replace a class in a box".
        fill: A fill shown as a preview that waits for the person's yes (it changes much of the image).
        origin: Where `image` came from: "upload", "example" (an example photo), "queue" (a queue item).
        made_by: The identity (``model``, ``model_revision``) of the model that made `prediction`; None when no model
            made the mask in the editor (a synthesized image names its own model: `MADE_BY`).
        started_from: What the queue item's mask in the editor started from, as its next version records it: a
            model's identity (its prediction), "version N", or None (nothing).
        opened_at: When the queue item was opened or last saved (seconds since the epoch): the time spent on it.
    """

    image: PIL.Image.Image | None = None
    background: PIL.Image.Image | None = None
    source: str | None = None
    ids: np.ndarray | None = None
    prediction: np.ndarray | None = None
    steps: int | None = None
    confidence: np.ndarray | None = None
    model: str | None = None
    queue: tuple[str, str] | None = None
    item: str | None = None
    owner: str | None = None
    corner: tuple[int, int] | None = None
    fill: Fill | None = None
    origin: str = "upload"
    made_by: dict[str, str] | None = None
    started_from: str | None = None
    opened_at: float | None = None

    def replace(self, **changes: Any) -> Session:
        return dataclasses.replace(self, **changes)

    def restart(self, **work: Any) -> Session:
        """New work (a new photo, layout or queue item) in this tab: all but the tab's model, queue and name start
        afresh."""
        return Session(model=self.model, queue=self.queue, owner=self.owner, **work)

    def image_to_save(self, synthesized: tuple[PIL.Image.Image, ...] = ()) -> tuple[PIL.Image.Image | None, str]:
        """The image a saved annotation pairs with the mask, and where it came from: the photo (an upload, an example
        photo, a queue item), else (for a painted layout) the first of the images last `synthesized` from it (the page
        keeps them beside the session, so that a synthesis never writes back an older session)."""
        if self.image is None and synthesized:
            return synthesized[0], "synthesized"
        return self.image, self.origin
