"""The photo upload field: a `gr.Image` that hands the uploaded file to the app unopened, so that the app's own checks
word every problem (an empty file, a text file, a decompression bomb) instead of Gradio failing with a bare "Error"."""

from __future__ import annotations

import gradio as gr
from gradio.data_classes import ImageData

from gradio.events import Dependency

class ImageUpload(gr.Image):
    """`gr.Image(type="filepath")` in the page; its value reaches the app as the uploaded file's path, never decoded
    by Gradio (which opens the file with PIL before any event runs)."""

    is_template = True  # Gradio draws it with the Image component's frontend

    def __init__(self, **kwargs) -> None:
        super().__init__(type="filepath", image_mode=None, format="png", **kwargs)

    def preprocess(self, payload: ImageData | None) -> str | None:
        if payload is None:
            return None
        if payload.path is None or (payload.url or "").startswith("data:"):  # pasted: Gradio decodes it to a file
            try:
                return super().preprocess(payload)
            except Exception:
                raise gr.Error("That paste is not a readable image. Please upload a PNG or JPEG.",
                               print_exception=False) from None
        return str(payload.path)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component